"""`polyoms run` (the daemon) and `polyoms doctor` (is this setup able to trade?)."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from polyoms.core.errors import PolyomsError
from polyoms.ops.config import DaemonConfig, LogConfig, load_config, load_secrets
from polyoms.ops.daemon import Daemon
from polyoms.ops.daemon import run as run_daemon
from polyoms.ops.doctor import Severity, diagnose
from polyoms.venues.registry import VENUES, venue_kind

ConfigOpt = Annotated[Path | None, typer.Option("--config", help="Daemon config file (TOML).")]
StateDirOpt = Annotated[Path | None, typer.Option("--state-dir", help="Journal, control token and URL live here.")]
VenueOpt = Annotated[
    str | None, typer.Option("--venue", help="The venue kind: " + ", ".join(VENUES.names()) + " ([venue] kind).")
]


def _fail(message: str, code: int = 2) -> typer.Exit:
    Console(stderr=True).print(f"[bold red]error:[/] {escape(message)}", highlight=False)
    return typer.Exit(code)


def _config(config: Path | None, state_dir: Path | None, venue: str | None, port: int | None) -> DaemonConfig:
    cfg = load_config(config)
    if venue is not None:
        try:
            kind = VENUES.canonical(venue)
        except PolyomsError as exc:
            raise typer.BadParameter(f"--venue: {exc.message}") from None
        cfg = dataclasses.replace(cfg, venue=dataclasses.replace(cfg.venue, kind=kind))
    if state_dir is not None:
        cfg = dataclasses.replace(cfg, state_dir=state_dir.expanduser())
    if port is not None:
        cfg = dataclasses.replace(cfg, control=dataclasses.replace(cfg.control, port=port))
    return cfg


def _configure_logging(log: LogConfig) -> bool:
    """Logs to stderr; True when they are JSON lines (then nothing else may be printed there)."""
    try:
        from polyoms.ops.logs import configure_logging
    except ImportError:  # structured logging not installed: plain lines on stderr
        logging.basicConfig(level=log.level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        return False
    configure_logging(json=log.json, level=log.level)
    return (not sys.stderr.isatty()) if log.json is None else log.json


def run(
    config: ConfigOpt = None,
    state_dir: StateDirOpt = None,
    venue: VenueOpt = None,
    port: Annotated[int | None, typer.Option("--port", help="Control API port on 127.0.0.1 (0 = any).")] = None,
    fresh: Annotated[
        bool,
        typer.Option(
            "--fresh",
            help="The local venue: delete the saved session (exchange state, journal, wallet key in STATE_DIR/local) "
            "and start over with a new exchange and wallet. Without it a restart recovers the session.",
        ),
    ] = False,
) -> None:
    """Run the daemon: an engine on a venue, with a control API on 127.0.0.1 for the CLI (Ctrl-C stops it)."""
    try:
        cfg = _config(config, state_dir, venue, port)
        secrets = load_secrets(cfg, required=venue_kind(cfg.venue.kind).needs_key)
    except PolyomsError as exc:
        raise _fail(str(exc)) from None
    json_logs = _configure_logging(cfg.log)
    console = Console(stderr=True)

    def ready(d: Daemon) -> None:
        wallet = d.venue.wallet if d.venue is not None else "?"
        if json_logs:  # the banner is a log event like any other: stderr stays one JSON object per line
            logging.getLogger("polyoms.daemon").info(
                "daemon ready: venue %s at %s, control API %s",
                cfg.venue.kind,
                d.venue_url,
                d.control_url,
                extra={"wallet": wallet, "control_url": d.control_url, "venue_url": d.venue_url},
            )
            return
        console.print(
            f"polyoms daemon: venue [bold]{cfg.venue.kind}[/] at {d.venue_url}, wallet {wallet}\n"
            f"control API {d.control_url} (token in {cfg.state_dir / 'control.token'}); Ctrl-C or "
            "`polyoms stop` to stop",
            highlight=False,
        )

    try:
        asyncio.run(run_daemon(cfg, secrets, on_ready=ready, fresh=fresh))
    except PolyomsError as exc:
        raise _fail(str(exc), 1) from None
    except KeyboardInterrupt:  # a second Ctrl-C during shutdown
        raise typer.Exit(130) from None


def doctor(
    config: ConfigOpt = None,
    state_dir: StateDirOpt = None,
    venue: VenueOpt = None,
) -> None:
    """Check the key, API credentials, signature type vs funder, balances and allowances, clock skew and
    venue reachability; print the exact fix for each problem (exit 1 if any is an error)."""
    try:
        cfg = _config(config, state_dir, venue, None)
    except PolyomsError as exc:
        raise _fail(str(exc)) from None
    findings = asyncio.run(diagnose(cfg))
    console = Console()
    if console.width < 120:
        console = Console(width=120)
    marks = {Severity.OK: "[green]ok  [/]", Severity.WARN: "[yellow]warn[/]", Severity.ERROR: "[red]FAIL[/]"}
    for f in findings:
        console.print(f"{marks[f.severity]} {f.check:<16} {escape(f.message)}", highlight=False)
        if f.fix and not f.ok:
            console.print(f"     {'':<16} [bold]fix:[/] {escape(f.fix)}", highlight=False)
    errors = sum(1 for f in findings if f.severity is Severity.ERROR)
    warns = sum(1 for f in findings if f.severity is Severity.WARN)
    console.print(f"{errors} error(s), {warns} warning(s)", highlight=False)
    if errors:
        raise typer.Exit(1)
