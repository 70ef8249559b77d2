"""`polyoms sim`: the local exchange on a port, speaking Polymarket's CLOB REST protocol."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import signal
from pathlib import Path
from typing import Annotated, Final

import typer
from rich.console import Console

from polyoms.core.errors import PolyomsError
from polyoms.core.units import to_micro
from polyoms.exchange.api.faults import REHEARSAL
from polyoms.exchange.api.runner import STATE_FILE, SimServer, StateSaver, build_service, open_state_dir
from polyoms.ops.logs import configure_logging

log = logging.getLogger("polyoms.sim")

UNAUTHENTICATED_ADMIN: Final = (
    "--host {host} is not a loopback address: anyone who can reach it can call /_sim/fund, "
    "/_sim/markets and /_sim/faults, which are unauthenticated (they mint funds and switch faults); "
    "keep the local exchange on 127.0.0.1 unless the network is yours alone"
)


def is_loopback(host: str) -> bool:
    """True for names and addresses that only this machine reaches (localhost, 127.0.0.0/8, ::1)."""
    if host.strip().lower().rstrip(".") == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip().strip("[]")).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to anything


def sim(
    host: Annotated[str, typer.Option("--host", help="Address to bind (keep it on loopback).")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="TCP port (0 = any free port).")] = 8080,
    config: Annotated[Path | None, typer.Option("--config", help="Markets file (TOML or JSON).")] = None,
    seed: Annotated[
        int, typer.Option("--seed", help="Seed for ids and faults (reproducible runs); API keys stay secret.")
    ] = 0,
    fund: Annotated[
        str | None, typer.Option("--fund", help="Give every new address this much pUSD automatically.")
    ] = None,
    chain_id: Annotated[int, typer.Option("--chain-id", help="Chain id orders must be signed for.")] = 137,
    scenario: Annotated[
        str | None,
        typer.Option(
            "--scenario",
            help="Background traders and a reference price feed: calm, trending, jump, thin, tick_size_change, "
            "resolution.",
        ),
    ] = None,
    faults: Annotated[bool, typer.Option("--faults", help="Switch on a moderate mix of every fault.")] = False,
    state_dir: Annotated[
        Path | None,
        typer.Option(
            "--state-dir",
            help="Keep the exchange here: restored on start, saved every few seconds and on stop; finished "
            "history moves into a SQLite archive there. Without it everything stays in memory.",
        ),
    ] = None,
) -> None:
    """Serve the local exchange's REST API at http://HOST:PORT until interrupted."""
    console = Console(stderr=True)
    configure_logging(level="WARNING")  # the exchange's own warnings (dropped subscribers, errors)
    if not is_loopback(host):
        warning = UNAUTHENTICATED_ADMIN.format(host=host)
        console.print(f"[bold yellow]warning:[/] {warning}", highlight=False, soft_wrap=True)
        log.warning(warning)
    try:
        snapshot, archive = open_state_dir(state_dir) if state_dir is not None else (None, None)
        service = build_service(
            config,
            seed=seed,
            auto_fund=to_micro(fund, "fund") if fund else 0,
            chain_id=chain_id,
            scenario=scenario,
            faults=REHEARSAL if faults else None,
            snapshot=snapshot,
            archive=archive,
        )
    except PolyomsError as exc:
        console.print(f"[bold red]error:[/] {exc}", highlight=False)
        raise typer.Exit(2) from None

    saver = StateSaver(service, state_dir / STATE_FILE) if state_dir is not None else None

    async def serve() -> None:
        server = SimServer(service, host, port)
        try:
            url = await server.start()
        except OSError as exc:
            console.print(f"[bold red]error:[/] cannot listen on {host}:{port}: {exc.strerror}", highlight=False)
            raise typer.Exit(2) from None
        if saver is not None:
            await saver.start()
        markets = service.exchange.markets()
        life = f", scenario {scenario}" if scenario else ""
        if snapshot is not None:
            life += f", restored from {state_dir}"
        fault_note = ", faults ON" if service.faults.config.any_on() else ""
        console.print(
            f"polyoms sim: {len(markets)} markets at [bold]{url}[/]{life}{fault_note}; "
            f"WebSockets at {url.replace('http', 'ws')}/ws/market, /ws/user, /ws/live-data (Ctrl-C to stop)",
            highlight=False,
        )
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        await server.stop()
        if saver is not None:
            await saver.stop()

    try:
        asyncio.run(serve())
    finally:
        if service.exchange.archive is not None:
            service.exchange.archive.close()
