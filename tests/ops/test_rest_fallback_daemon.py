"""The WebSocket → REST fallback end to end: a daemon on the embedded exchange over real sockets, its
streams silenced (stall) or dropped on every frame (disconnect) with the exchange's runtime faults.

Beyond `rest_fallback_after_s` the engine is degraded-rest: a counterparty's fill on our resting order is
learned by polling REST while the stream is down, admission is reduce-only (a BUY is refused with a clear
error, a SELL of held shares and cancels work), and the engine returns to live once the stream is back;
nothing is counted twice (the order's fills equal the trade, the ledger equals the exchange's balances)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest

from polyoms.core.units import MICRO
from polyoms.oms.errors import TradingHaltedError
from polyoms.oms.state import OrderState
from polyoms.ops import schema as api
from polyoms.ops.config import EngineConfig, Secrets
from polyoms.ops.daemon import Daemon, DaemonThread
from polyoms.polymarket.client.ws_common import BackoffPolicy
from tests.ops.daemon_helpers import (
    FAST_SETTLEMENT,
    KEY_DAEMON,
    Counterparty,
    first_market,
    fund,
    local_config,
    wait_until,
)

S = OrderState
TUNING: dict[str, Any] = {
    # Pings every 0.5 s: the stream is unconfirmed ~1 s after its last PONG; the watchdog drops a silent
    # socket only after 20 s, so a fill made once degraded is learned by the polls, not a reconnect's
    # backfill (and a reset of the faults lets the stalled socket speak again: no reconnect needed).
    "ping_interval_s": 0.5,
    "stale_after_s": 20.0,
    "tick_s": 0.05,
    "backoff": BackoffPolicy(0.05, 0.3),
}


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[tuple[DaemonThread, Daemon]]:
    cfg = local_config(
        tmp_path / "state",
        engine=EngineConfig(heartbeat_s=1.0, reconcile_every_s=300.0, maintenance_s=0.2, rest_fallback_after_s=1.0),
    )
    thread = DaemonThread(cfg, Secrets(KEY_DAEMON), settlement=FAST_SETTLEMENT, stream_tuning=TUNING)
    with thread as d:
        yield thread, d


def faults(d: Daemon, **switches: Any) -> None:
    resp = httpx.post(f"{d.venue_url}/_sim/faults", json=switches, timeout=10)
    assert resp.status_code == 200, resp.text


def until(thread: DaemonThread, predicate: Any, timeout_s: float = 20.0) -> bool:
    return wait_until(thread, predicate, timeout_s)


def status(d: Daemon) -> api.StatusView:
    """The status the control API serves (read here, between the daemon loop's steps, like it does)."""
    return msgspec.convert(d._status(), api.StatusView)


async def _ledger_vs_exchange(d: Daemon) -> tuple[tuple[int, dict[str, int]], tuple[int, dict[str, int]]]:
    assert d.engine is not None and d.venue is not None
    await d.engine.drain()
    await d.engine.reconcile()  # settles the tiers; balances are compared, not repaired, below
    lg = d.engine.state.ledger(d.venue.wallet)
    tokens = sorted(lg.positions)
    venue = await d.venue.balances(tokens)
    return (lg.cash, {t: lg.positions[t].confirmed for t in tokens}), venue


def _bid_and_degrade(thread: DaemonThread, d: Daemon, fault: dict[str, Any]) -> tuple[str, str]:
    """A resting BUY 25 @ 0.40, then the fault, until the engine is degraded; returns (order id, token)."""
    assert d.desk is not None and d.engine is not None
    desk, engine = d.desk, d.engine
    _, yes, _ = first_market(d)
    assert status(d).stream_mode == "live" and status(d).stream_mode_note == ""

    async def bid() -> str:
        acc = await desk.add_order(api.OrderBody(token_id=yes, side="BUY", price="0.40", size="25"))
        assert acc.order_id is not None
        return acc.order_id

    oid = thread.call(bid)
    assert until(thread, lambda: engine.state.order(oid).state is S.LIVE)
    faults(d, **fault)
    assert until(thread, lambda: engine.degraded != "" and not engine.admission_errors())
    st = status(d)
    assert st.stream_mode == "degraded-rest" and st.admission_open
    assert "reduce-only" in st.stream_mode_note and "BUYs refused" in st.stream_mode_note
    return oid, yes


def _counterparty_fill(thread: DaemonThread, d: Daemon, oid: str, yes: str) -> None:
    assert d.engine is not None and d.venue is not None
    state, wallet = d.engine.state, d.venue.wallet
    them = Counterparty(d.venue_url)
    fund(d.venue_url, them.address(), "100", {yes: "100"})
    assert them.post("SELL", yes, "0.40", "10") == "matched"
    assert until(
        thread,
        lambda: (
            state.order(oid).state is S.PARTIALLY_FILLED
            and (p := state.ledger(wallet).positions.get(yes)) is not None
            and p.confirmed == 10 * MICRO
        ),
    )
    assert d.engine.degraded  # still degraded: it was the polls


def _recover_and_check(thread: DaemonThread, d: Daemon, oid: str, yes: str) -> int:
    """Back to live; the stream's backfill after a resync re-delivers what the polls learned, and the
    OMS keeps it once. Returns how many trades that backfill emitted."""
    assert d.engine is not None and d.desk is not None and d.user_stream is not None
    engine, desk, stream = d.engine, d.desk, d.user_stream
    faults(d, reset=True)
    assert until(thread, lambda: not engine.degraded, timeout_s=30)
    st = status(d)
    assert st.stream_mode == "live" and st.stream_mode_note == "" and st.admission_open
    backfills, backfilled = stream.stats.backfills, stream.stats.backfilled_trades

    async def resync() -> None:
        stream.resync("test: the stream's own backfill after the polls")

    thread.call(resync)
    assert until(thread, lambda: stream.stats.backfills > backfills and stream.confirmed)
    assert until(thread, lambda: not engine.flags.user_stream_gapped and not engine.degraded)

    # New risk is admitted again.
    async def buy() -> str | None:
        return (await desk.add_order(api.OrderBody(token_id=yes, side="BUY", price="0.10", size="5"))).order_id

    again = thread.call(buy)
    assert again is not None and until(thread, lambda: engine.state.order(again).state is S.LIVE)
    # Exactly once: the order's fills are the one trade; the ledger equals the exchange.
    assert sum(f.size for f in engine.state.fills_of(oid)) == 10 * MICRO
    local, venue = thread.call(lambda: _ledger_vs_exchange(d))
    assert local == venue
    assert not [e for e in engine.stats.errors if "contradicting" in e or "refused" in e]
    return stream.stats.backfilled_trades - backfilled


def test_silent_stall_degrades_learns_fills_by_polling_reduce_only_and_recovers(
    daemon: tuple[DaemonThread, Daemon],
) -> None:
    thread, d = daemon
    assert d.engine is not None and d.desk is not None and d.fallback is not None
    engine, desk, fb = d.engine, d.desk, d.fallback
    oid, yes = _bid_and_degrade(thread, d, {"ws_stall_rate": 1.0, "ws_stall_s": 120})
    reconnects = d.user_stream.reconnects if d.user_stream is not None else -1
    _counterparty_fill(thread, d, oid, yes)
    # Learned by a poll (a MISSED_TRADE of the fallback's reconciliation), not by a reconnect's backfill.
    assert fb.stats.trades_learned >= 1 and fb.stats.polls >= 1
    assert d.user_stream is not None and d.user_stream.reconnects == reconnects
    assert d.metrics is not None
    rendered = d.metrics.render().decode()
    assert f'polyoms_risk_flag{{flag="degraded_rest",wallet="{d.venue.wallet}"}} 1.0' in rendered

    # Admission: a BUY is refused with the reason; nothing is journaled for it.
    async def add(side: str, price: str, size: str) -> str | None:
        acc = await desk.add_order(api.OrderBody(token_id=yes, side=side, price=price, size=size))
        return acc.order_id

    orders_before = len(engine.state.orders)
    with pytest.raises(TradingHaltedError) as refused:
        thread.call(lambda: add("BUY", "0.30", "5"))
    assert refused.value.context["rule"] == "degraded_reduce_only"
    assert "degraded-rest" in refused.value.message and "a BUY adds risk" in refused.value.message
    # A SELL beyond the shares held is refused too.
    with pytest.raises(TradingHaltedError) as too_big:
        thread.call(lambda: add("SELL", "0.70", "20"))
    assert "exceeds the 10 held" in too_big.value.message
    assert len(engine.state.orders) == orders_before
    # A SELL of held shares is admitted (priced against the REST book: the market stream is silent too).
    sold = thread.call(lambda: add("SELL", "0.70", "5"))
    assert sold is not None and until(thread, lambda: engine.state.order(sold).state is S.LIVE)
    # Cancels work: the rest of the bid.
    thread.call(lambda: desk.cancel(oid))
    assert until(thread, lambda: engine.state.order(oid).state is S.CANCELLED)
    assert engine.degraded

    # The stalled stream never saw the trade: its backfill emits it now, and it is still counted once.
    assert _recover_and_check(thread, d, oid, yes) >= 1


def test_disconnect_on_every_frame_degrades_and_recovers_without_double_counting(
    daemon: tuple[DaemonThread, Daemon],
) -> None:
    thread, d = daemon
    assert d.engine is not None and d.desk is not None
    engine, desk = d.engine, d.desk
    # The stream flaps: each reconnect backfills and goes LIVE, the first frame after drops it again.
    oid, yes = _bid_and_degrade(thread, d, {"ws_disconnect_rate": 1.0})
    assert d.user_stream is not None
    assert until(thread, lambda: d.user_stream is not None and d.user_stream.reconnects >= 2)
    # A fill while flapping: learned once, by whichever of the polls and the backfills comes first.
    _counterparty_fill(thread, d, oid, yes)
    thread.call(lambda: desk.cancel(oid))
    assert until(thread, lambda: engine.state.order(oid).state is S.CANCELLED)
    # The market stream never delivers a frame either (its book dump drops it): the books of the tokens
    # we hold come from REST, and pre-trade risk prices a SELL of held shares against them.
    assert d.market_stream is not None and d.fallback is not None and d.manager is not None
    assert until(thread, lambda: engine.rest_quote(yes) is not None)
    assert not d.market_stream.is_trusted(yes) and d.fallback.stats.book_polls >= 1
    cond, manager = first_market(d)[0], d.manager
    sold = thread.call(lambda: manager.submit_limit(yes, "SELL", "0.70", "5", tick="0.01", market=cond))
    assert until(thread, lambda: engine.state.order(sold).state is S.LIVE)
    assert engine.degraded
    _recover_and_check(thread, d, oid, yes)
