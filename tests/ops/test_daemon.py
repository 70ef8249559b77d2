"""The daemon end to end: the embedded exchange over sockets with the live client, fills through the
user stream into the ledger, graceful shutdown, one daemon per state dir, `polyoms run` as a process
stopped by SIGTERM, the Polymarket venue path (against the local exchange) with journal recovery after
a restart, and the config's typed validation."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from polyoms.cli.main import app
from polyoms.core.errors import ConfigError
from polyoms.core.units import MICRO
from polyoms.exchange.api.runner import ThreadedSim, build_service
from polyoms.oms.state import OrderState
from polyoms.ops import schema as api
from polyoms.ops.config import PolymarketConfig, Secrets, VenueConfig, load_config
from polyoms.ops.daemon import TOKEN_FILE, URL_FILE, Daemon, DaemonError, DaemonThread, read_endpoint
from polyoms.polymarket.client import Wallet
from polyoms.polymarket.client.ws_common import ws_url
from tests.ops.daemon_helpers import (
    FAST_SETTLEMENT,
    KEY_DAEMON,
    KEY_OTHER,
    Counterparty,
    first_market,
    fund,
    local_config,
    start_daemon,
    wait_until,
)

S = OrderState


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[DaemonThread, Daemon]]:
    yield from start_daemon(tmp_path_factory)


def test_state_dir_holds_the_endpoint_privately(running: tuple[DaemonThread, Daemon]) -> None:
    _, d = running
    assert stat.S_IMODE(d.state_dir.stat().st_mode) == 0o700
    for name in (TOKEN_FILE, URL_FILE):
        assert stat.S_IMODE((d.state_dir / name).stat().st_mode) == 0o600
    assert (d.state_dir / TOKEN_FILE).read_text().strip() == d.token  # the token and nothing else
    ep = read_endpoint(d.state_dir)
    assert ep is not None and ep.url == d.control_url and ep.url.startswith("http://127.0.0.1:")
    assert d.venue_url.startswith("http://127.0.0.1:") and d.venue is not None
    # The daemon's wallet was funded through the exchange's /_sim/fund and bootstrapped into the ledger.
    assert d.state is not None
    assert d.state.ledger(d.venue.wallet).cash == 1_000 * MICRO
    for path in d.state_dir.rglob("*"):
        if path.is_file() and path.suffix != ".sqlite":
            assert KEY_DAEMON[2:] not in path.read_text(errors="replace")


def test_a_fill_travels_from_the_exchange_to_the_ledger(running: tuple[DaemonThread, Daemon]) -> None:
    thread, d = running
    assert d.desk is not None and d.state is not None and d.venue is not None and d.sim_service is not None
    desk, state, wallet = d.desk, d.state, d.venue.wallet
    _, yes, _ = first_market(d)

    async def bid() -> str:
        acc = await desk.add_order(api.OrderBody(token_id=yes, side="BUY", price="0.40", size="25"))
        assert acc.order_id is not None
        return acc.order_id

    oid = thread.call(bid)
    assert wait_until(thread, lambda: state.order(oid).state is S.LIVE)
    them = Counterparty(d.venue_url)
    fund(d.venue_url, them.address(), "100", {yes: "100"})
    assert them.post("SELL", yes, "0.40", "10") == "matched"
    # The fill arrives through the user stream, settles (CONFIRMED), and the ledger equals the exchange.
    assert wait_until(
        thread,
        lambda: (
            state.ledger(wallet).positions.get(yes) is not None
            and state.ledger(wallet).positions[yes].confirmed == 10 * MICRO
        ),
    )
    st = desk.order_status(oid)
    assert isinstance(st, api.OrderView)
    assert st.state == S.PARTIALLY_FILLED and st.filled == "10"
    assert [f.tier for f in st.fills] == ["CONFIRMED"] and st.fills[0].price == "0.4"
    truth = thread.call(lambda: _balances(d, wallet))
    lg = state.ledger(wallet)
    assert lg.cash == truth[0] and lg.positions[yes].confirmed == truth[1][yes]
    # A FOK market SELL of part of what we hold, priced from the book: our bid is cancelled first so
    # the best bid is the counterparty's.
    thread.call(lambda: desk.cancel(oid))
    assert wait_until(thread, lambda: state.order(oid).state is S.CANCELLED)
    assert them.post("BUY", yes, "0.35", "20") == "live"

    async def sell() -> api.OrderAccepted:
        return await desk.add_order(api.OrderBody(token_id=yes, side="SELL", kind="market", size="5"))

    acc = thread.call(sell)
    assert acc.order_type == "FOK" and acc.size == "5" and acc.price == "0.35" and acc.order_id is not None
    sold = acc.order_id
    assert wait_until(
        thread,
        lambda: state.order(sold).state is S.FILLED and state.ledger(wallet).positions[yes].confirmed == 5 * MICRO,
    )


async def _balances(d: Daemon, wallet: str) -> tuple[int, dict[str, int]]:
    assert d.venue is not None and d.engine is not None
    await d.engine.drain()
    tokens = sorted(d.engine.state.ledger(wallet).positions)
    return await d.venue.balances(tokens)


def test_one_daemon_per_state_dir(running: tuple[DaemonThread, Daemon]) -> None:
    _, d = running
    cfg = local_config(d.state_dir)

    async def second() -> None:
        await Daemon(cfg, Secrets(KEY_OTHER)).start()

    with pytest.raises(DaemonError, match="another polyoms daemon runs on"):
        asyncio.run(second())
    assert read_endpoint(d.state_dir) is not None  # the running daemon's files are untouched


def test_graceful_stop_cancels_open_orders_and_removes_the_endpoint(tmp_path: Path) -> None:
    thread = DaemonThread(local_config(tmp_path), Secrets(KEY_OTHER), settlement=FAST_SETTLEMENT)
    with thread as d:
        assert d.desk is not None and d.sim_service is not None
        desk = d.desk
        _, yes, _ = first_market(d)

        async def place() -> str:
            acc = await desk.add_order(api.OrderBody(token_id=yes, side="BUY", price="0.30", size="10"))
            assert acc.order_id is not None
            return acc.order_id

        oid = thread.call(place)
        assert wait_until(
            thread, lambda: d.sim_service is not None and d.sim_service.exchange.get_order(oid) is not None
        )
        exchange = d.sim_service.exchange
        stop = CliRunner().invoke(app, ["stop", "--state-dir", str(tmp_path)], env={"POLYOMS_CONTROL_URL": ""})
        assert stop.exit_code == 0 and "daemon shutting down" in stop.stdout, stop.output
        assert thread.call(lambda: asyncio.wait_for(d.wait_closed(), 5)) is None
        thread.call(d.stop)
        order = exchange.get_order(oid)
        assert order is None or order.status != "LIVE"
        assert d.state is not None and d.state.order(oid).state is S.CANCELLED
        assert read_endpoint(tmp_path) is None


def test_polyoms_run_as_a_process_stops_on_sigterm(tmp_path: Path) -> None:
    env = {**os.environ, "POLYOMS_STATE_DIR": str(tmp_path), "PYTHONUNBUFFERED": "1", "POLYOMS_PRIVATE_KEY": KEY_OTHER}
    config = tmp_path / "polyoms.toml"
    config.write_text('[local]\nscenario = ""\nseed = 4\n[log]\njson = true\nlevel = "info"\n')
    proc = subprocess.Popen(
        [sys.executable, "-m", "polyoms.cli.main", "run", "--config", str(config)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 30
        while read_endpoint(tmp_path) is None and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.1)
        assert read_endpoint(tmp_path) is not None, proc.stderr.read().decode() if proc.poll() is not None else ""
        status = subprocess.run(
            [sys.executable, "-m", "polyoms.cli.main", "status", "--json", "--state-dir", str(tmp_path)],
            env=env,
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert status.returncode == 0, status.stderr
        assert '"venue": "local"' in status.stdout and '"admission_open": true' in status.stdout
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
        err = proc.stderr.read().decode()
        out = proc.stdout.read().decode()
        assert "Traceback" not in err and "polyoms daemon stopped" in err
        assert KEY_OTHER[2:].lower() not in (err + out).lower()  # never logged, in any spelling of hex
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert read_endpoint(tmp_path) is None


def test_polymarket_venue_path_recovers_its_journal(tmp_path: Path) -> None:
    """venue = "polymarket" pointed at the local exchange: key from the secrets, credentials derived by
    L1, the journal kept across a restart (orders left resting are recovered and reconciled)."""
    with ThreadedSim(build_service(seed=21, settlement=FAST_SETTLEMENT)) as sim:
        ws_base = ws_url(sim.url, "user").removesuffix("/ws/user")
        pm = PolymarketConfig(clob_url=sim.url, gamma_url=sim.url, data_url=sim.url, ws_url=ws_base)
        base = local_config(tmp_path)
        cfg = dataclasses.replace(
            base,
            venue=VenueConfig("polymarket"),
            polymarket=pm,
            engine=dataclasses.replace(base.engine, cancel_on_stop=False),
        )
        fund(sim.url, Wallet.from_key(KEY_OTHER).address, "50")
        token = next(m for m in sim.service.exchange.markets() if m.tick.text == "0.01").yes_token_id
        thread = DaemonThread(cfg, Secrets(KEY_OTHER))
        with thread as d:
            assert d.desk is not None and d.state is not None and not d.recovered
            desk = d.desk

            async def place() -> str:
                acc = await desk.add_order(api.OrderBody(token_id=token, side="BUY", price="0.20", size="10"))
                assert acc.order_id is not None
                return acc.order_id

            oid = thread.call(place)
            assert wait_until(thread, lambda: d.state is not None and d.state.order(oid).state is S.LIVE)
            journal = d.state.journal
            assert journal is not None and journal.path.exists()
            assert journal.writer == "process"  # the daemon's default: commits on the other core
        again = DaemonThread(cfg, Secrets(KEY_OTHER))
        with again as d2:
            assert d2.recovered and d2.state is not None
            o = d2.state.order(oid)
            assert o.state is S.LIVE and o.history[0].to_state is S.SUBMITTING  # the audit trail survived
            assert d2.state.ledger(o.wallet).reserved > 0
            assert sim.service.exchange.get_order(oid) is not None
            assert d2.engine is not None and d2.engine.admission_errors() == []
            assert d2.engine.stats.reconciliations >= 1


def test_config_validation_is_typed(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    cases = {
        'venue = "binance"\n': "venue.kind: unknown venue kind 'binance': one of polymarket, local, inprocess",
        '[venue]\nkind = "kalshi"\n': "venue.kind: unknown venue kind 'kalshi'",
        '[control]\nhost = "0.0.0.0"\n': "loopback",
        "[local]\nfunds = 10\n": "unknown setting(s) funds",
        "[risk]\nmax_order_notional = 1.5\n": "not a float",
        "[engine]\nheartbeat_s = -1\n": "engine.heartbeat_s",
        '[engine]\njournal_writer = "disk"\n': "engine.journal_writer must be one of 'inline', 'thread', 'process'",
        '[local]\nscenario = "bogus"\n': "local.scenario",
        "[polymarket]\nsignature_type = 9\n": "signature type",
        "not toml = = \n": "not valid TOML",
    }
    for text, expected in cases.items():
        bad.write_text(text)
        with pytest.raises(ConfigError, match=expected.replace("(", r"\(").replace(")", r"\)")):
            load_config(bad, env={})
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "missing.toml", env={})
    proxy = tmp_path / "proxy.toml"
    proxy.write_text('venue = "polymarket"\n[polymarket]\nsignature_type = 1\n')
    with pytest.raises(ConfigError, match=r"needs polymarket\.funder"):
        load_config(proxy, env={})
    ok = load_config(None, env={"POLYOMS_STATE_DIR": str(tmp_path), "POLYOMS_CONTROL_PORT": "0"})
    assert ok.venue.kind == "local" and ok.state_dir == tmp_path and ok.local.scenario == "calm"
