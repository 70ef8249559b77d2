"""The REST fallback's pure policy (oms/fallback.py): when to degrade, how often to poll, reduce-only."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from polyoms.core.clock import VirtualClock
from polyoms.core.enums import Side
from polyoms.core.errors import ConfigError
from polyoms.core.market_events import BookSnapshot
from polyoms.core.units import MICRO
from polyoms.oms.errors import TradingHaltedError
from polyoms.oms.fallback import (
    DEGRADED,
    LIVE,
    BookWatch,
    FallbackConfig,
    ReduceLeg,
    StreamWatch,
    poll_interval_s,
    quote_of,
    reduce_only_errors,
)
from polyoms.oms.manager import OrderManager
from polyoms.oms.oms_state import OmsState
from polyoms.oms.risk import BookQuote
from polyoms.oms.state import OrderState as S
from polyoms.ops.fallback import poll_cost, quotas_of
from polyoms.polymarket.client.ratelimit import IpLimiter, LimitsConfig
from tests.oms.test_engine_inprocess import rig

W = "0x" + "ab" * 20


def test_degrades_after_the_threshold_of_continuous_ill_health_and_recovers_when_healthy() -> None:
    w = StreamWatch(after_ms=1_000)
    assert w.observe(0, healthy=True) is None and w.mode == LIVE
    assert w.observe(100, healthy=False) is None  # the clock starts here
    assert w.observe(1_099, healthy=False) is None
    assert w.observe(1_100, healthy=False) == DEGRADED
    assert w.observe(5_000, healthy=False) is None and w.mode == DEGRADED
    assert w.observe(5_100, healthy=True) == LIVE
    assert w.down_since_ms is None
    # A short blip does not degrade; the clock restarts after a healthy observation.
    assert w.observe(6_000, healthy=False) is None
    assert w.observe(6_500, healthy=True) is None
    assert w.observe(7_000, healthy=False) is None
    assert w.observe(7_999, healthy=False) is None and w.mode == LIVE


def test_zero_threshold_is_off() -> None:
    w = StreamWatch(after_ms=0)
    assert w.observe(0, healthy=False) is None
    assert w.observe(10**9, healthy=False) is None and w.mode == LIVE
    assert not FallbackConfig(0).enabled and FallbackConfig(0.5).enabled
    for bad in (-1.0, float("nan"), float("inf")):
        with pytest.raises(ConfigError):
            FallbackConfig(bad)
    with pytest.raises(ConfigError):
        FallbackConfig(1, budget_share=0)


def test_poll_interval_follows_the_clients_limits() -> None:
    # Default limits (80 % margin): the ledger group allows 720 per 10 s; a poll costs 2 of it.
    quotas = quotas_of(IpLimiter(LimitsConfig()))
    assert quotas["clob:ledger"] == [(720, 10_000)]
    # 2 / (0.1 × 72 per s) = 0.28 s: the floor wins.
    assert poll_interval_s(quotas, poll_cost(), budget_share=0.1, min_interval_s=0.5) == 0.5
    # A tight override: 20 per 10 s on /data/trades; a tenth of it is 0.2 per s → one poll per 5 s.
    tight = quotas_of(IpLimiter(LimitsConfig(margin=1.0, overrides={"clob:/data/trades": ((20, 10.0),)})))
    assert poll_interval_s(tight, poll_cost(), budget_share=0.1, min_interval_s=0.5) == pytest.approx(5.0)
    # Books: one POST /books per 500 tokens against its quota (400 per 10 s at the default margin).
    assert poll_interval_s(quotas, poll_cost(1_000), budget_share=0.01, min_interval_s=0.1) == pytest.approx(5.0)
    # Limits disabled: only the floor.
    assert quotas_of(IpLimiter(LimitsConfig(enabled=False))) == {}
    assert poll_interval_s({}, poll_cost(), min_interval_s=0.7) == 0.7
    # The REST view may be 4 intervals old, at least min_view_age_s.
    assert FallbackConfig(1).max_view_age_ms(0.5) == 5_000
    assert FallbackConfig(1).max_view_age_ms(5.0) == 20_000


def _state_with_shares(token: str, shares: int) -> OmsState:
    st = OmsState(VirtualClock(0))
    st.add_wallet(W, ["owner"])
    st.set_balance(W, cash=100 * MICRO, positions={token: shares}, markets={token: "0xm"}, reason="test")
    return st


def test_reduce_only_admits_sells_of_held_shares_and_refuses_buys() -> None:
    st = _state_with_shares("1", 10 * MICRO)
    why = "degraded-rest mode for 3.0 s (user stream down)"
    assert reduce_only_errors(st, W, [ReduceLeg("1", Side.SELL, 10 * MICRO)], why) == []
    [buy] = reduce_only_errors(st, W, [ReduceLeg("1", Side.SELL, MICRO), ReduceLeg("2", Side.BUY, MICRO)], why)
    assert buy.context["rule"] == "degraded_reduce_only" and "a BUY adds risk" in buy.message
    assert buy.message.startswith(why) and "cancels" in buy.message
    # Two SELLs of one token count together against what is held.
    [over] = reduce_only_errors(
        st, W, [ReduceLeg("1", Side.SELL, 6 * MICRO), ReduceLeg("1", Side.SELL, 5 * MICRO)], why
    )
    assert "11 shares exceeds the 10 held" in over.message
    [none] = reduce_only_errors(st, W, [ReduceLeg("3", Side.SELL, MICRO)], why)
    assert "exceeds the 0 held" in none.message


def test_book_watch_and_rest_quotes() -> None:
    bw = BookWatch(after_ms=1_000)
    assert bw.due(0, ["a", "b"], degraded=False) == []
    assert bw.due(999, ["a", "b"], degraded=False) == []
    assert bw.due(1_000, ["a"], degraded=False) == ["a"]  # b is trusted again: forgotten
    assert bw.due(1_500, ["a", "b"], degraded=False) == ["a"]
    assert bw.due(1_500, ["a", "b"], degraded=True) == ["a", "b"]  # degraded: every untrusted one now
    book = BookSnapshot(
        "0xm", "1", bids=((400_000, 5 * MICRO), (450_000, MICRO), (470_000, 0)), asks=((600_000, MICRO), (550_000, 2))
    )
    assert quote_of(book) == BookQuote(450_000, 550_000)
    assert quote_of(BookSnapshot("0xm", "1", bids=(), asks=())) == BookQuote(None, None)


def test_engine_degraded_admission_ages_with_the_rest_view(tmp_path: Path) -> None:
    """On the in-process exchange and a virtual clock: degraded, admission is closed until a poll is
    applied, reduce-only while the view is fresh (even with the stream gapped), closed again once the
    view is older than its limit, and as before once the engine leaves degraded mode."""
    r = rig(tmp_path)

    async def body() -> None:
        engine = r.new_engine()
        mgr = OrderManager(engine, actor="t")
        market = r.market.condition_id
        async with engine:
            engine.stream_gapped("socket lost: test")
            await engine.enter_degraded("user stream not confirmed for 1.0 s: test", 5_000)
            assert engine.stream_mode == DEGRADED
            [stale] = engine.admission_errors()
            assert stale.context["rule"] == "degraded_stale" and "no REST poll yet" in stale.message
            assert "cancels work" in stale.message
            with pytest.raises(TradingHaltedError):
                await mgr.submit_limit(r.yes, "SELL", "0.60", "5", tick="0.01", market=market)
            await engine.rest_poll()
            assert engine.admission_errors() == []
            assert "reduce-only" in engine.admission_note() and "REST view 0.0 s old" in engine.admission_note()
            with pytest.raises(TradingHaltedError) as buy:
                await mgr.submit_limit(r.yes, "BUY", "0.30", "5", tick="0.01", market=market)
            assert buy.value.context["rule"] == "degraded_reduce_only"
            sell = await mgr.submit_limit(r.yes, "SELL", "0.60", "5", tick="0.01", market=market)
            await engine.drain()
            assert engine.state.order(sell).state is S.LIVE
            await mgr.cancel(sell)  # cancels never go through admission
            await engine.drain()
            assert engine.state.order(sell).state is S.CANCELLED
            r.clock.advance(5_001)
            [aged] = engine.admission_errors()
            assert aged.context["rule"] == "degraded_stale" and "last REST poll 5.0 s ago" in aged.message
            await engine.leave_degraded()
            assert engine.stream_mode == LIVE and engine.admission_note() == ""
            # Live again, the gap rule applies as before (the stream's resync reopens it).
            [gap] = engine.admission_errors()
            assert gap.context["rule"] == "user_stream"
            await engine.stream_live()
            assert engine.admission_errors() == []
            bought = await mgr.submit_limit(r.yes, "BUY", "0.30", "5", tick="0.01", market=market)
            await engine.drain()
            assert engine.state.order(bought).state is S.LIVE

    asyncio.run(body())
