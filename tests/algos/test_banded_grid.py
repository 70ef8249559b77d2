"""The algorithms on a banded price grid (Kalshi-style: 0.001 steps below 0.10 and above 0.90, 0.01 in
between): they price on the instrument's grid, not on its finest tick, so every price they place is one
the venue accepts; they step by the grid's step where the price is, and stop at the grid's ends. Driven
on paper, like test_pure."""

from __future__ import annotations

from dataclasses import replace
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from polyoms.algos import orders
from polyoms.algos import pricing as px
from polyoms.algos import unwinder as uw
from polyoms.algos.adaptive import AdaptivePricing, AdaptiveSpec, AdaptiveState, entry_price
from polyoms.algos.base import Action, AlgoConfigError, BookTop, Instrument
from polyoms.algos.iceberg import IcebergSpec, IcebergState
from polyoms.algos.microprice import MicroPriceSpec, MicroPriceState, target_price
from polyoms.algos.single import OrderSpec, SingleState
from polyoms.algos.sizing import KellySizing
from polyoms.algos.urgency import Urgency, UrgencyParams
from polyoms.core.enums import Side
from polyoms.core.errors import InvalidPriceError
from polyoms.core.units import MICRO, TICK_SIZES
from polyoms.core.venue import PriceBand, PriceGrid
from polyoms.oms.state import OrderState

from .paper import Paper

T001 = TICK_SIZES["0.001"]
GRID = PriceGrid(
    (PriceBand(1_000, 99_000, 1_000), PriceBand(100_000, 900_000, 10_000), PriceBand(901_000, 999_000, 1_000))
)
SHARED = PriceGrid(
    (PriceBand(1_000, 100_000, 1_000), PriceBand(100_000, 900_000, 10_000), PriceBand(900_000, 999_000, 1_000))
)
"""The same prices, with bands that meet on their boundaries (the finer step counts there)."""
YES, NO = "101", "202"
INST = Instrument(YES, T001, "0xmarket", NO, grid=GRID)
GRID_PRICES = sorted({p for b in GRID.bands for p in range(b.start, b.end + 1, b.step)})
MEDIUM = Urgency.MEDIUM.params  # 30 s patience, 0.5¢ steps


def top(bid: int | None, ask: int | None, bid_size: int = 100 * MICRO, ask_size: int = 100 * MICRO) -> BookTop:
    return BookTop(YES, ((bid, bid_size),) if bid else (), ((ask, ask_size),) if ask else ())


def reprice(paper: Paper, at_ms: int, book: BookTop) -> None:
    """One review that reprices, then the confirmed cancel's replacement."""
    paper.step(at_ms, {YES: book})
    assert paper.decisions[-1].action in (Action.RAISE_BID, Action.LOWER_ASK), paper.decisions[-1]
    paper.step(at_ms)


def test_urgency_steps_follow_the_band_where_the_order_moves() -> None:
    assert MEDIUM.effective_step(GRID, 90_000, Side.BUY) == 5_000  # 0.5¢ where the grid moves by 0.1¢
    assert MEDIUM.effective_step(GRID, 500_000, Side.BUY) == 10_000  # one step where it moves by cents
    assert MEDIUM.effective_step(GRID, 100_000, Side.SELL) == 5_000  # 0.10 → 0.099 is a 0.1¢ step
    assert MEDIUM.effective_step(GRID, 99_000, Side.BUY) == 5_000  # and so is 0.099 → 0.10
    assert MEDIUM.effective_step(SHARED, 100_000, Side.SELL) == 5_000  # down from the boundary: the fine band
    assert MEDIUM.effective_step(SHARED, 100_000, Side.BUY) == 10_000  # up from it: the coarse band
    low = Urgency.LOW.params  # 0.3¢
    assert [low.effective_step(GRID, p, Side.SELL) for p in (950_000, 500_000, 1_000)] == [3_000, 10_000, 3_000]
    assert low.effective_step(GRID, 999_000, Side.BUY) == 3_000  # at the top end: the step there
    assert low.effective_step(GRID) == 3_000  # without a price: the finest step


def test_adaptive_buy_steps_across_the_band_edge_and_undercuts_by_the_local_step() -> None:
    spec = AdaptiveSpec(YES, Side.BUY, 150_000, 50 * MICRO, urgency=Urgency.MEDIUM)
    paper = Paper(AdaptiveState.start(spec, INST, 0))
    quiet = top(90_000, 130_000)
    paper.step(0, {YES: quiet})  # joins the best bid
    reprice(paper, 30_000, quiet)  # stale: 0.09 + 0.005
    reprice(paper, 60_000, quiet)  # stale: 0.095 + 0.005 = 0.10, the edge of the cent band
    reprice(paper, 90_000, quiet)  # stale: above 0.10 the grid moves by 0.01, not 0.005
    assert [p.price for p in paper.placed] == [90_000, 95_000, 100_000, 110_000]
    reprice(paper, 91_000, top(120_000, 130_000))  # undercut by 0.12: one step (0.01) better
    reprice(paper, 92_000, top(140_000, 150_000))  # undercut at 0.14: 0.15 is the limit
    assert [p.price for p in paper.placed][4:] == [130_000, 150_000]
    assert all(GRID.on_grid(p.price) for p in paper.placed)


def test_adaptive_sell_steps_down_into_the_fine_band() -> None:
    spec = AdaptiveSpec(YES, Side.SELL, 880_000, 50 * MICRO, urgency=Urgency.MEDIUM)
    paper = Paper(AdaptiveState.start(spec, INST, 0))
    quiet = top(800_000, 910_000)
    paper.step(0, {YES: quiet})
    reprice(paper, 30_000, quiet)  # 0.91 − 0.005 = 0.905
    reprice(paper, 60_000, quiet)  # 0.905 − 0.005 = 0.90, the top of the cent band
    reprice(paper, 90_000, quiet)  # below 0.90: cents
    reprice(paper, 91_000, top(800_000, 870_000))  # undercut below the limit: the limit
    assert [p.price for p in paper.placed] == [910_000, 905_000, 900_000, 890_000, 880_000]
    # An empty side: one grid step inside the other side (0.10 → 0.11 for a SELL, not 0.101).
    assert entry_price(Side.SELL, GRID, top(100_000, None), 50_000, None, False) == 110_000
    assert entry_price(Side.BUY, GRID, top(None, 100_000), 500_000, None, False) == 99_000


def test_post_only_pulls_back_by_the_step_below_or_above_the_other_side() -> None:
    assert px.passive(Side.BUY, 150_000, 100_000, GRID) == 99_000
    assert px.passive(Side.SELL, 50_000, 100_000, GRID) == 110_000
    assert px.passive(Side.SELL, 50_000, 99_000, GRID) == 100_000
    # At the grid's ends nothing is passive: no price.
    assert entry_price(Side.BUY, GRID, top(None, 1_000), 500_000, None, True) is None
    assert entry_price(Side.SELL, GRID, top(999_000, None), 500_000, None, True) is None
    assert entry_price(Side.BUY, GRID, top(None, 2_000), 500_000, None, True) == 1_000


def test_prices_clamp_at_the_grids_ends() -> None:
    assert px.bounded(Side.BUY, 2 * MICRO, MICRO, GRID) == 999_000
    assert px.bounded(Side.SELL, -MICRO, 0, GRID) == 1_000
    assert px.better(Side.BUY, 999_000, GRID) == 999_000 and px.better(Side.SELL, 1_000, GRID) == 1_000
    spec = AdaptiveSpec(YES, Side.BUY, 999_000, 10 * MICRO, urgency=Urgency.HIGH, undercut_margin=1_000)
    paper = Paper(AdaptiveState.start(spec, INST, 0))
    paper.step(0, {YES: top(990_000, None)})
    reprice(paper, 1_000, top(998_000, None))  # undercut: one step better is 0.999, the top
    assert [p.price for p in paper.placed] == [990_000, 999_000]
    paper.step(2_000, {YES: top(999_000, None)})
    assert paper.decisions[-1].action is Action.WAIT  # at the top: nothing better exists


def test_micro_price_targets_the_band_not_the_finest_tick() -> None:
    mp = Fraction(99_000 + 110_000, 2)  # 0.1045, in the cent band
    assert target_price(mp, Side.BUY, 0, 200_000, GRID) == 100_000  # not 0.104
    assert target_price(mp, Side.SELL, 0, 50_000, GRID) == 110_000  # not 0.105
    assert target_price(Fraction(95_500), Side.BUY, 0, 200_000, GRID) == 95_000  # 0.001 steps below 0.10
    spec = MicroPriceSpec(YES, Side.BUY, 200_000, 10 * MICRO)
    paper = Paper(MicroPriceState.start(spec, INST, 0))
    paper.step(0, {YES: top(99_000, 110_000)})
    assert [p.price for p in paper.placed] == [100_000]
    posted = Paper(MicroPriceState.start(MicroPriceSpec(YES, Side.BUY, 200_000, 10 * MICRO, post_only=True), INST, 0))
    posted.step(0, {YES: top(95_000, 100_000, ask_size=MICRO)})  # the micro-price leans to 0.10: stay below
    assert [p.price for p in posted.placed] == [99_000]


def test_kelly_limit_is_the_last_grid_price_with_edge() -> None:
    kelly = KellySizing(Fraction(1045, 10_000))
    buy = AdaptiveState.start(AdaptiveSpec(YES, Side.BUY, 500_000, kelly=kelly), INST, 0)
    sell = AdaptiveState.start(AdaptiveSpec(YES, Side.SELL, 50_000, kelly=kelly), INST, 0)
    assert (buy.limit_px, sell.limit_px) == (100_000, 110_000)
    at_edge = KellySizing(Fraction(1, 10))  # 0.10 itself has no edge
    assert AdaptiveState.start(AdaptiveSpec(YES, Side.BUY, 500_000, kelly=at_edge), INST, 0).limit_px == 99_000


def test_unwinder_limits_round_to_the_band() -> None:
    e = uw.Exposure(INST, Side.BUY, 20 * MICRO, Fraction(104_900), sellable=20 * MICRO)
    policy = uw.UnwindPolicy(uw.UnwindMethod.SELL_BACK, max_loss=0)
    assert uw.sell_back_worst(e, policy) == 110_000  # ceiled: never below entry − max_loss
    assert uw.complement_worst(e, policy) == 890_000  # floored: 1 − 0.105, on the cent band


def test_prices_off_the_band_are_refused_before_anything_is_sent() -> None:
    with pytest.raises(AlgoConfigError, match="price grid"):
        AdaptiveState.start(AdaptiveSpec(YES, Side.BUY, 105_000, 10 * MICRO), INST, 0)  # on 0.001, not 0.01
    with pytest.raises(AlgoConfigError):
        MicroPriceState.start(MicroPriceSpec(YES, Side.BUY, 105_000, 10 * MICRO), INST, 0)
    with pytest.raises(AlgoConfigError):
        IcebergState.start(IcebergSpec(YES, Side.BUY, 20 * MICRO, 105_000, display=10 * MICRO), INST, 0, seed=1)
    with pytest.raises(InvalidPriceError):
        SingleState.start(OrderSpec.limit(YES, Side.BUY, 105_000, 10 * MICRO), INST, 0)
    with pytest.raises(InvalidPriceError):
        orders.market_sell("o", YES, 10 * MICRO, 905_500, tick=T001, grid=GRID)
    assert orders.limit("o", YES, Side.BUY, 95_000, 10 * MICRO, tick=T001, grid=GRID).price == 95_000
    SingleState.start(OrderSpec.limit(YES, Side.BUY, 110_000, 10 * MICRO), INST, 0)


# --- properties: whatever the book does, only grid prices within the limit ----------------------------

grid_prices = st.sampled_from(GRID_PRICES)
script = st.lists(
    st.tuples(
        st.one_of(st.none(), grid_prices),  # others' best bid
        st.integers(1, 30),  # grid steps from it to their best ask
        st.integers(0, 3),  # to us: nothing, a partial fill, the rest, a venue cancel
        st.integers(1, 40),  # seconds to the next look
    ),
    min_size=1,
    max_size=40,
)


def run(paper: Paper, events: list[tuple[int | None, int, int, int]]) -> None:
    now = 0
    for bid, steps, event, wait_s in events:
        ask = None if bid is None else GRID_PRICES[min(GRID_PRICES.index(bid) + steps, len(GRID_PRICES) - 1)]
        book = {YES: top(bid, ask)}
        paper.step(now, book)
        live = paper.live()
        if live and event == 1:
            paper.fill(live[-1], 5 * MICRO)
        elif live and event == 2:
            paper.fill(live[-1], paper.views[live[-1]].size - paper.views[live[-1]].filled)
        elif live and event == 3:  # the venue cancels it
            paper.views[live[-1]] = replace(paper.views[live[-1]], state=OrderState.CANCELLED)
        now += wait_s * 1_000
        paper.step(now, book)


@settings(max_examples=100, deadline=None)
@given(
    events=script,
    side=st.sampled_from([Side.BUY, Side.SELL]),
    limit=grid_prices,
    urgency=st.sampled_from([*Urgency, UrgencyParams(5_000, 20, 3_000)]),
    post_only=st.booleans(),
    algo=st.sampled_from(["adaptive", "iceberg", "micro-price"]),
)
def test_only_grid_prices_within_the_limit_are_ever_placed(
    events: list[tuple[int | None, int, int, int]],
    side: Side,
    limit: int,
    urgency: Urgency | UrgencyParams,
    post_only: bool,
    algo: str,
) -> None:
    size = 50 * MICRO
    if algo == "adaptive":
        spec = AdaptiveSpec(YES, side, limit, size, urgency=urgency, post_only=post_only, timeout_ms=900_000)
        paper = Paper(AdaptiveState.start(spec, INST, 0))
    elif algo == "iceberg":
        pricing = AdaptivePricing(limit, urgency=urgency)
        ice = IcebergSpec(
            YES, side, size, None, display=10 * MICRO, post_only=post_only, timeout_ms=900_000, adaptive=pricing
        )
        paper = Paper(IcebergState.start(ice, INST, 0, seed=7))
    else:
        micro = MicroPriceSpec(YES, side, limit, size, post_only=post_only, timeout_ms=900_000)
        paper = Paper(MicroPriceState.start(micro, INST, 0))
    run(paper, events)
    for p in paper.placed:
        assert INST.prices.on_grid(p.price) and px.within(side, p.price, limit), p
