"""Restarting the default daemon (the embedded exchange) is a recovery: the wallet key and the
exchange's state persist under the state dir, the journal is recovered and reconciled against the
restored exchange. Over real sockets: a graceful restart keeps wallet, journal, resting orders and
balances; after `kill -9` the exchange comes back from its last snapshot, older than the journal, and
the reconciliation settles the orders only the journal knows; `--fresh` starts over."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import signal
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from polyoms.core.errors import ConfigError
from polyoms.core.units import MICRO
from polyoms.oms.state import OrderState
from polyoms.ops import schema as api
from polyoms.ops.config import DaemonConfig, Secrets
from polyoms.ops.daemon import Daemon, DaemonError, DaemonThread
from polyoms.venues.local_factory import EXCHANGE_FILE, LOCAL_DIR, WALLET_KEY_FILE
from tests.ops.daemon_helpers import (
    FAST_SETTLEMENT,
    KEY_OTHER,
    Counterparty,
    first_market,
    fund,
    local_config,
    wait_until,
)

S = OrderState
REPO = Path(__file__).resolve().parents[2]


def keep_orders(state_dir: Path) -> DaemonConfig:
    base = local_config(state_dir)
    return dataclasses.replace(base, engine=dataclasses.replace(base.engine, cancel_on_stop=False))


def place(thread: DaemonThread, d: Daemon, token: str, price: str, size: str) -> str:
    assert d.desk is not None and d.state is not None
    desk, state = d.desk, d.state

    async def go() -> str:
        acc = await desk.add_order(api.OrderBody(token_id=token, side="BUY", price=price, size=size))
        assert acc.order_id is not None
        return acc.order_id

    oid = thread.call(go)
    assert wait_until(thread, lambda: state.order(oid).state is S.LIVE)
    return oid


def venue_truth(thread: DaemonThread, d: Daemon) -> tuple[int, dict[str, int]]:
    async def go() -> tuple[int, dict[str, int]]:
        assert d.venue is not None and d.engine is not None
        await d.engine.drain()
        return await d.venue.balances(sorted(d.engine.state.ledger(d.venue.wallet).positions))

    return thread.call(go)


def test_a_graceful_restart_recovers_everything_and_fresh_starts_over(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    cfg = keep_orders(tmp_path)
    thread = DaemonThread(cfg, Secrets(None), settlement=FAST_SETTLEMENT)
    with thread as d:
        assert not d.restored and not d.recovered and d.venue is not None and d.state is not None
        wallet, state = d.venue.wallet, d.state
        _, yes, _ = first_market(d)
        oid = place(thread, d, yes, "0.40", "25")
        them = Counterparty(d.venue_url)
        fund(d.venue_url, them.address(), "100", {yes: "100"})
        assert them.post("SELL", yes, "0.40", "10") == "matched"
        assert wait_until(
            thread,
            lambda: (
                yes in state.ledger(wallet).positions and state.ledger(wallet).positions[yes].confirmed == 10 * MICRO
            ),
        )
        cash, reserved = state.ledger(wallet).cash, state.ledger(wallet).reserved
        assert venue_truth(thread, d) == (cash, {yes: 10 * MICRO})
    local = tmp_path / LOCAL_DIR
    for name in (WALLET_KEY_FILE, EXCHANGE_FILE):
        assert stat.S_IMODE((local / name).stat().st_mode) == 0o600
    key = (local / WALLET_KEY_FILE).read_text().strip()
    saved = (local / EXCHANGE_FILE).read_text()
    assert key[2:] not in saved and oid in saved

    again = DaemonThread(cfg, Secrets(None), settlement=FAST_SETTLEMENT)
    with again as d2:
        assert d2.restored and d2.recovered and d2.venue is not None and d2.state is not None
        assert d2.venue.wallet == wallet  # the same wallet, from the key file
        st = d2.state
        o = st.order(oid)
        assert o.state is S.PARTIALLY_FILLED and o.history[0].to_state is S.SUBMITTING  # the journal survived
        assert d2.sim_service is not None
        resting = d2.sim_service.exchange.get_order(oid)
        assert resting is not None and resting.resting and resting.remaining == 15 * MICRO
        lg = st.ledger(wallet)
        assert (lg.cash, lg.reserved, lg.positions[yes].confirmed) == (cash, reserved, 10 * MICRO)
        assert venue_truth(again, d2) == (cash, {yes: 10 * MICRO})  # not funded a second time
        assert d2.engine is not None and d2.engine.admission_errors() == []
        # The counterparty's API credentials still work (the exchange's auth secret was kept), and our
        # resting bid still trades.
        assert Counterparty(d2.venue_url).post("SELL", yes, "0.40", "15") == "matched"
        assert wait_until(again, lambda: st.order(oid).state is S.FILLED)

    with caplog.at_level(logging.WARNING, logger="polyoms.ops.daemon"):
        fresh = DaemonThread(cfg, Secrets(None), settlement=FAST_SETTLEMENT, fresh=True)
        with fresh as d3:
            assert not d3.restored and not d3.recovered and d3.venue is not None and d3.state is not None
            assert d3.venue.wallet != wallet and not d3.state.orders
            assert d3.state.ledger(d3.venue.wallet).cash == cfg.local.fund
    assert "--fresh: deleted the local session" in caplog.text
    assert all(n in caplog.text for n in (EXCHANGE_FILE, WALLET_KEY_FILE, "journal.sqlite"))
    assert key[2:] not in caplog.text


_CRASHING_DAEMON = textwrap.dedent(
    """
    import asyncio, dataclasses, sys
    from pathlib import Path
    from polyoms.ops import schema as api
    from polyoms.ops.config import Secrets
    from polyoms.ops.daemon import Daemon
    from tests.ops.daemon_helpers import FAST_SETTLEMENT, local_config

    async def main() -> None:
        base = local_config(Path(sys.argv[1]))
        cfg = dataclasses.replace(base, engine=dataclasses.replace(base.engine, cancel_on_stop=False))
        # No periodic snapshot: the one taken at start is the last the exchange gets.
        d = Daemon(cfg, Secrets(None), settlement=FAST_SETTLEMENT, snapshot_s=3600)
        await d.start()
        assert d.desk is not None and d.state is not None and d.restored
        acc = await d.desk.add_order(api.OrderBody(token_id=sys.argv[2], side="BUY", price="0.20", size="10"))
        while d.state.order(acc.order_id).state.value != "LIVE":
            await asyncio.sleep(0.05)
        print("PLACED", acc.order_id, flush=True)
        await asyncio.sleep(3600)

    asyncio.run(main())
    """
)


def test_kill_9_comes_back_from_the_last_snapshot_and_reconciles(tmp_path: Path) -> None:
    cfg = keep_orders(tmp_path)
    thread = DaemonThread(cfg, Secrets(None), settlement=FAST_SETTLEMENT, snapshot_s=0.2)
    with thread as d:
        assert d.venue is not None
        wallet = d.venue.wallet
        _, yes, _ = first_market(d)
        kept = place(thread, d, yes, "0.30", "10")
        assert d.state is not None
        reserved = d.state.ledger(wallet).reserved
        # The periodic save has it while the daemon runs.
        path = tmp_path / LOCAL_DIR / EXCHANGE_FILE
        assert wait_until(thread, lambda: kept.encode() in path.read_bytes())

    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-c", _CRASHING_DAEMON, str(tmp_path), yes],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()  # blocks until placed (or the process died)
        assert line.startswith("PLACED "), proc.stderr.read() if proc.poll() is not None else line
        lost = line.split()[1]
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    saved = json.loads((tmp_path / LOCAL_DIR / EXCHANGE_FILE).read_bytes())
    ids = {o[0] for o in saved["exchange"]["orders"]}
    assert kept in ids and lost not in ids  # the snapshot is older than the journal

    start = time.monotonic()
    again = DaemonThread(cfg, Secrets(None), settlement=FAST_SETTLEMENT)
    with again as d2:
        assert d2.restored and d2.recovered and d2.venue is not None and d2.state is not None
        assert d2.venue.wallet == wallet and d2.sim_service is not None and d2.engine is not None
        st, ex = d2.state, d2.sim_service.exchange
        # The order the exchange kept is still resting; the one only the journal knew is concluded.
        assert st.order(kept).state is S.LIVE and ex.get_order(kept) is not None and ex.get_order(kept).resting
        assert wait_until(again, lambda: st.order(lost).state.is_terminal, timeout_s=20)
        assert st.order(lost).state is S.CANCELLED and ex.get_order(lost) is None
        assert st.order(lost).filled == 0
        lg = st.ledger(wallet)
        assert venue_truth(again, d2) == (lg.cash, {}) and lg.cash == cfg.local.fund
        assert lg.reserved == reserved  # only the kept bid's
        assert d2.engine.admission_errors() == []
    assert time.monotonic() - start < 30


def test_a_corrupt_snapshot_or_another_wallet_refuses_to_start(tmp_path: Path) -> None:
    cfg = keep_orders(tmp_path)
    with DaemonThread(cfg, Secrets(None), settlement=FAST_SETTLEMENT):
        pass
    path = tmp_path / LOCAL_DIR / EXCHANGE_FILE
    good = path.read_bytes()
    path.write_bytes(good[: len(good) // 2])
    with pytest.raises(DaemonError, match=r"not a polyoms exchange snapshot.*--fresh"):
        DaemonThread(cfg, Secrets(None), settlement=FAST_SETTLEMENT).__enter__()
    assert path.read_bytes() == good[: len(good) // 2]  # left as found, for the operator to look at
    path.write_bytes(good)
    key = tmp_path / LOCAL_DIR / WALLET_KEY_FILE
    key.chmod(0o644)
    with pytest.raises(ConfigError, match="chmod 600"):
        DaemonThread(cfg, Secrets(None), settlement=FAST_SETTLEMENT).__enter__()
    key.chmod(0o600)
    with pytest.raises(DaemonError, match=r"belongs to wallet\(s\) 0x.*use the same key, or start over"):
        DaemonThread(cfg, Secrets(KEY_OTHER), settlement=FAST_SETTLEMENT).__enter__()
    assert path.read_bytes() == good  # a refused start changes no saved state
    with pytest.raises(DaemonError, match="scenario none with seed 3, the config asks for scenario calm"):
        DaemonThread(
            dataclasses.replace(cfg, local=dataclasses.replace(cfg.local, scenario="calm")), Secrets(None)
        ).__enter__()


def test_polyoms_run_refuses_a_corrupt_session_and_fresh_starts_over(tmp_path: Path) -> None:
    local = tmp_path / LOCAL_DIR
    local.mkdir(mode=0o700)
    (local / EXCHANGE_FILE).write_bytes(b'{"version": 1, "saved_at_ms": ')
    (local / WALLET_KEY_FILE).touch(mode=0o600)
    config = tmp_path / "polyoms.toml"
    config.write_text('[local]\nscenario = ""\nseed = 3\n[log]\njson = true\nlevel = "info"\n')
    env = {**os.environ, "POLYOMS_STATE_DIR": str(tmp_path), "PYTHONUNBUFFERED": "1", "POLYOMS_PRIVATE_KEY": ""}
    cmd = [sys.executable, "-m", "polyoms.cli.main", "run", "--config", str(config)]
    refused = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60)
    assert refused.returncode == 1 and "Traceback" not in refused.stderr
    assert "not a polyoms exchange snapshot" in refused.stderr and "polyoms run --fresh" in refused.stderr
    assert (local / EXCHANGE_FILE).exists()  # nothing deleted without being asked
    proc = subprocess.Popen([*cmd, "--fresh"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while not (tmp_path / "control.url").exists() and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.1)
        assert (tmp_path / "control.url").exists(), proc.stderr.read() if proc.poll() is not None else "timeout"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
        assert proc.stderr is not None
        err = proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert "--fresh: deleted the local session" in err and f"{EXCHANGE_FILE}, {WALLET_KEY_FILE}" in err
    assert json.loads((local / EXCHANGE_FILE).read_bytes())["version"] == 1  # a new, valid session
    assert stat.S_IMODE((local / WALLET_KEY_FILE).stat().st_mode) == 0o600


def test_the_background_traders_resume_after_a_restart(tmp_path: Path) -> None:
    base = local_config(tmp_path)
    cfg = dataclasses.replace(base, local=dataclasses.replace(base.local, scenario="calm"))
    thread = DaemonThread(cfg, Secrets(None), settlement=FAST_SETTLEMENT)
    with thread as d:
        assert d.sim_service is not None and d.sim_service.life is not None
        life, ex = d.sim_service.life, d.sim_service.exchange
        assert wait_until(thread, lambda: life.stats.orders > 20 and len(ex.all_trades) > 0)
        wallet = d.venue.wallet if d.venue is not None else ""
    funded, orders = ex.ledger.funded_pusd, len(ex.all_orders)
    resting = {o.order_id for o in ex.open_orders()}
    again = DaemonThread(cfg, Secrets(None), settlement=FAST_SETTLEMENT)
    with again as d2:
        assert d2.restored and d2.sim_service is not None and d2.venue is not None
        life2, ex2 = d2.sim_service.life, d2.sim_service.exchange
        assert life2 is not None and life2.stats.orders >= life.stats.orders
        assert d2.venue.wallet == wallet and ex2.ledger.funded_pusd == funded  # nobody funded twice
        assert len(ex2.all_orders) >= orders and resting <= set(ex2.all_orders)
        assert wait_until(again, lambda: len(ex2.all_orders) > orders)  # the traders go on trading
        assert ex2.ledger.funded_pusd == funded
