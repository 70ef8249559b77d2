"""Fair-value models and the agents' pure decisions, on hand-made observations."""

from __future__ import annotations

import random
from dataclasses import replace

import pytest

from polyoms.core.units import MICRO
from polyoms.exchange.fees import NO_FEES, FeeCurve
from polyoms.exchange.life.agents import (
    AgentCancel,
    AgentPlace,
    AgentQuote,
    InformedParams,
    InformedTrader,
    LiquidityProvider,
    LPParams,
    NaiveParams,
    NaiveQuoter,
    NoiseParams,
    NoiseTaker,
    Observation,
    fee_per_share,
    reconcile,
    shares,
)
from polyoms.exchange.life.fair_value import (
    LogitParams,
    LogitWalk,
    clamp_price,
    probability_to_micro,
    snap_down,
    snap_nearest,
    snap_up,
)

TICK = 10_000
NOW = 1_777_000_000_000


def obs(**kw: object) -> Observation:
    base = Observation(
        now_ms=NOW,
        tick=TICK,
        min_size=5 * MICRO,
        fee=NO_FEES,
        accepting=True,
        best_bid=490_000,
        best_ask=510_000,
        bid_size=100 * MICRO,
        ask_size=100 * MICRO,
        other_bid=490_000,
        other_ask=510_000,
        position=0,
    )
    return replace(base, **kw)  # type: ignore[arg-type]


def places(cmds: list[AgentPlace | AgentCancel]) -> list[AgentPlace]:
    return [c for c in cmds if isinstance(c, AgentPlace)]


# --- fair value -----------------------------------------------------------------------------------


def test_float_to_grid_is_exact_integer_rounding() -> None:
    assert probability_to_micro(0.4234565) == 423_457
    assert probability_to_micro(0.0) == 0 and probability_to_micro(1.5) == MICRO
    assert probability_to_micro(float("nan")) == 0
    assert snap_down(423_457, TICK) == 420_000 and snap_up(423_457, TICK) == 430_000
    assert snap_up(420_000, TICK) == 420_000 and snap_nearest(425_000, TICK) == 430_000
    assert clamp_price(0, TICK) == TICK and clamp_price(MICRO, TICK) == MICRO - TICK


def test_logit_walk_is_bounded_seeded_and_read_order_free() -> None:
    p = LogitParams(start=0.5, vol_per_day=6.0, jump_rate_per_day=200.0, jump_std=1.5, floor=0.1, cap=0.9)
    a = LogitWalk(p, seed=4, name="m", start_ms=0)
    b = LogitWalk(p, seed=4, name="m", start_ms=0)
    seen = [a.value_at(t * 60_000) for t in range(1, 1441)]
    assert min(seen) >= 100_000 and max(seen) <= 900_000
    assert max(seen) - min(seen) > 500_000  # it does move, all over its range
    assert b.value_at(1440 * 60_000) == seen[-1]
    assert LogitWalk(p, seed=5, name="m", start_ms=0).value_at(1440 * 60_000) != seen[-1]
    assert LogitWalk(p, seed=4, name="other", start_ms=0).value_at(1440 * 60_000) != seen[-1]


def test_logit_drift_moves_the_value_its_way() -> None:
    up = LogitWalk(LogitParams(start=0.3, vol_per_day=0.2, drift_per_day=3.0), seed=1, name="u", start_ms=0)
    down = LogitWalk(LogitParams(start=0.7, vol_per_day=0.2, drift_per_day=-3.0), seed=1, name="d", start_ms=0)
    assert up.value_at(86_400_000) > 800_000 and down.value_at(86_400_000) < 200_000


# --- agents ---------------------------------------------------------------------------------------


def test_noise_taker_takes_through_the_touch_on_a_poisson_clock() -> None:
    agent = NoiseTaker("n", random.Random(1), NoiseParams(rate_per_min=2.0, slippage_ticks=2))
    gaps, sides = [], []
    for _ in range(2_000):
        d = agent.decide(obs(), fair=123_456)  # the fair value is none of its business
        assert d.wake_ms is not None and d.wake_ms > NOW
        gaps.append(d.wake_ms - NOW)
        (cmd,) = places(d.commands)
        assert cmd.take and cmd.size >= 5 * MICRO and cmd.size % 10_000 == 0
        assert cmd.price == (530_000 if cmd.is_bid else 470_000)
        sides.append(cmd.is_bid)
    assert sum(gaps) / len(gaps) == pytest.approx(30_000, rel=0.08)
    assert 0.45 < sum(sides) / len(sides) < 0.55
    # Nothing to take, or a market not accepting orders: no order, but it keeps its schedule.
    empty = agent.decide(obs(best_bid=None, best_ask=None), 0)
    assert empty.commands == [] and empty.wake_ms is not None
    assert agent.decide(obs(accepting=False), 0).commands == []


def test_liquidity_provider_quotes_a_ladder_around_its_lagging_estimate() -> None:
    p = LPParams(half_spread=5_000, levels=3, level_step=10_000, size=60.0, noise=0, lag_ms=60_000)
    lp = LiquidityProvider("lp", random.Random(1), p)
    first = places(lp.decide(obs(other_bid=None, other_ask=None), fair=503_000).commands)
    bids = sorted((c.price for c in first if c.is_bid), reverse=True)
    asks = sorted(c.price for c in first if not c.is_bid)
    assert bids == [490_000, 480_000, 470_000] and asks == [510_000, 520_000, 530_000]
    assert all(c.post_only and not c.take for c in first)
    assert [c.size for c in first if c.is_bid] == [60 * MICRO, 120 * MICRO, 180 * MICRO]

    # One minute later the hidden value has jumped 5 ticks; the estimate has moved only 1 − e^-1 of it.
    later = obs(now_ms=NOW + 60_000, other_bid=None, other_ask=None)
    lp.decide(later, fair=553_000)
    assert lp.estimate == pytest.approx(503_000 + 50_000 * (1 - 2.718281828459045**-1), rel=1e-9)


def test_liquidity_provider_keeps_queue_position_and_skews_against_inventory() -> None:
    p = LPParams(half_spread=5_000, levels=1, size=60.0, noise=0, skew_per_kshare=10_000, max_position=2_000.0)
    resting = (AgentQuote("0xa", True, 490_000, 10 * MICRO), AgentQuote("0xb", False, 520_000, 60 * MICRO))
    # Without reactions: the bid is where it should be (even partly filled): kept. The ask moved:
    # cancelled, then replaced.
    still = LiquidityProvider("lp0", random.Random(1), replace(p, react_ms=0))
    cmds = still.decide(obs(quotes=resting, other_bid=None, other_ask=None), fair=503_000).commands
    assert cmds == [AgentCancel("0xb"), AgentPlace(False, 510_000, 60 * MICRO, post_only=True)]
    # With them (the default) the partly filled bid is kept too, and topped up at the back of the queue.
    lp = LiquidityProvider("lp", random.Random(1), p)
    cmds = lp.decide(obs(quotes=resting, other_bid=None, other_ask=None), fair=503_000).commands
    assert cmds == [
        AgentCancel("0xb"),
        AgentPlace(True, 490_000, 50 * MICRO, post_only=True),
        AgentPlace(False, 510_000, 60 * MICRO, post_only=True),
    ]

    # Around 0.505: 0.50 / 0.51 flat; long 1,000 shares shifts the center 1 ¢ down, to 0.49 / 0.50.
    lp2 = LiquidityProvider("lp2", random.Random(1), p)
    flat = places(lp2.decide(obs(other_bid=None, other_ask=None), fair=505_000).commands)
    assert {(c.is_bid, c.price) for c in flat} == {(True, 500_000), (False, 510_000)}
    lp3 = LiquidityProvider("lp3", random.Random(1), p)
    long = places(lp3.decide(obs(position=1_000 * MICRO, other_bid=None, other_ask=None), fair=505_000).commands)
    assert {(c.is_bid, c.price) for c in long} == {(True, 490_000), (False, 500_000)}
    lp4 = LiquidityProvider("lp4", random.Random(1), p)
    full = places(lp4.decide(obs(position=2_000 * MICRO, other_bid=None, other_ask=None), fair=505_000).commands)
    assert all(not c.is_bid for c in full)  # at its limit it only offers


def test_liquidity_provider_never_crosses_the_others() -> None:
    lp = LiquidityProvider("lp", random.Random(1), LPParams(noise=0, levels=2))
    cmds = places(lp.decide(obs(other_bid=490_000, other_ask=510_000), fair=600_000).commands)
    assert max(c.price for c in cmds if c.is_bid) < 510_000
    assert min(c.price for c in cmds if not c.is_bid) > 490_000


def test_informed_trader_takes_only_beyond_its_edge_and_the_fee() -> None:
    p = InformedParams(edge=10_000, clip=150.0, max_position=200.0)
    inf = InformedTrader("i", random.Random(1), p)
    assert places(inf.decide(obs(), fair=515_000).commands) == []  # 510 + 10 > 515
    (buy,) = places(inf.decide(obs(), fair=530_000).commands)
    assert buy == AgentPlace(True, 520_000, 150 * MICRO, take=True)  # pays at most fair − edge
    (sell,) = places(inf.decide(obs(), fair=470_000).commands)
    assert sell == AgentPlace(False, 480_000, 150 * MICRO, take=True)
    # Position limit: only what is left of it.
    (rest,) = places(inf.decide(obs(position=120 * MICRO), fair=530_000).commands)
    assert rest.size == 80 * MICRO
    assert places(inf.decide(obs(position=200 * MICRO), fair=530_000).commands) == []
    # A taker fee (0.07 × p(1−p): 1.75 ¢ at 0.5) must be covered too.
    crypto = FeeCurve("0.07", 1)
    assert fee_per_share(crypto, 500_000) == 17_500
    assert places(inf.decide(obs(fee=crypto), fair=530_000).commands) == []
    (fee_buy,) = places(inf.decide(obs(fee=crypto), fair=540_000).commands)
    assert fee_buy.price == snap_down(540_000 - 10_000 - fee_per_share(crypto, 540_000), TICK)


def test_naive_quoter_quotes_the_others_mid_and_ignores_value() -> None:
    nq = NaiveQuoter("q", random.Random(1), NaiveParams(half_spread=10_000, size=50.0, requote_ms=10_000))
    d = nq.decide(obs(other_bid=490_000, other_ask=520_000), fair=900_000)
    assert d.wake_ms == NOW + 10_000
    # Mid 0.505 ± 0.01, snapped outwards to the grid.
    assert d.commands == [
        AgentPlace(True, 490_000, 50 * MICRO, post_only=True),
        AgentPlace(False, 520_000, 50 * MICRO, post_only=True),
    ]
    gone = nq.decide(obs(other_bid=None, quotes=(AgentQuote("0x1", True, 480_000, MICRO),)), fair=0)
    assert gone.commands == [AgentCancel("0x1")]


def test_reconcile_and_sizes() -> None:
    assert shares(12.345) == 12_340_000 and shares(-1) == 0
    cmds = reconcile(
        (AgentQuote("0x1", True, 480_000, MICRO), AgentQuote("0x2", True, 480_000, MICRO)),
        [(True, 480_000, 5 * MICRO), (False, 520_000, 5 * MICRO)],
        post_only=True,
    )
    # One order per wanted level is kept; a duplicate at the same price goes.
    assert cmds == [AgentCancel("0x2"), AgentPlace(False, 520_000, 5 * MICRO, post_only=True)]


def test_reconcile_tops_up_levels_eaten_into() -> None:
    quotes = (
        AgentQuote("0x1", True, 480_000, 20 * MICRO),
        AgentQuote("0x2", True, 480_000, 30 * MICRO),
        AgentQuote("0x3", False, 520_000, 58 * MICRO),
    )
    wanted = [(True, 480_000, 60 * MICRO), (False, 520_000, 60 * MICRO)]
    # Both orders at 0.48 are kept (50 of 60): 10 more at the back; 0.52 is short by less than the minimum.
    assert reconcile(quotes, wanted, post_only=True, top_up_min=5 * MICRO) == [
        AgentPlace(True, 480_000, 10 * MICRO, post_only=True)
    ]


def test_liquidity_provider_reacts_to_a_fill_partly_first_then_fully() -> None:
    p = LPParams(half_spread=5_000, levels=1, size=60.0, noise=0, react_ms=1_000, refill_ms=2_000)
    lp = LiquidityProvider("lp", random.Random(3), p)
    lp.decide(obs(other_bid=None, other_ask=None), fair=503_000)  # quotes 0.49 / 0.51
    before = lp.estimate
    assert before is not None
    # Its ask is lifted for 200 shares: the estimate moves up (capped) and a reaction is due, once.
    due = lp.on_fill(NOW + 100, False, 200 * MICRO)
    assert due is not None and NOW + 100 < due < NOW + 100 + 20_000
    assert lp.estimate == pytest.approx(before + min(p.impact_cap, p.impact_per_kshare * 0.2))
    assert lp.on_fill(NOW + 150, False, 10 * MICRO) is None  # already reacting; still learns
    bid = AgentQuote("0xb", True, 490_000, 60 * MICRO)
    first = lp.decide(obs(now_ms=due, quotes=(bid,), other_bid=None, other_ask=None), fair=503_000)
    # The first refill re-quotes half of the missing ask, and asks for a second look later.
    asks = [c for c in places(first.commands) if not c.is_bid]
    assert [c.size for c in asks] == [30 * MICRO]
    assert first.react_ms is not None and first.react_ms > due
    quotes = tuple(AgentQuote(f"0x{i}", c.is_bid, c.price, c.size) for i, c in enumerate(places(first.commands)))
    full = lp.decide(obs(now_ms=first.react_ms, quotes=quotes, other_bid=None, other_ask=None), fair=503_000)
    assert full.react_ms is None
    assert {c.size for c in places(full.commands) if not c.is_bid} == {30 * MICRO}  # topped up to 60
    # Reactions off: no reaction, no learning.
    still = LiquidityProvider("lp2", random.Random(3), replace(p, react_ms=0, impact_per_kshare=0))
    still.decide(obs(), fair=503_000)
    est = still.estimate
    assert still.on_fill(NOW, True, 500 * MICRO) is None and still.estimate == est
