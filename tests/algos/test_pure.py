"""The pure pieces: Kelly, micro-price, tranche sizing, grid stepping, urgency presets, the unwinder's
limits — properties over random inputs — and the state machines stepped by hand on paper."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from polyoms.algos import pricing as px
from polyoms.algos import rng
from polyoms.algos import unwinder as uw
from polyoms.algos.adaptive import AdaptiveSpec, AdaptiveState
from polyoms.algos.base import LOT, Action, AlgoConfigError, BookTop, Instrument, Obs, ParentState
from polyoms.algos.iceberg import IcebergSpec, IcebergState, tranche_size
from polyoms.algos.microprice import in_band, micro_price, target_price
from polyoms.algos.multileg import LegMode, LegSpec, MultiLegSpec, MultiLegState
from polyoms.algos.sizing import KellySizing, KellyVerdict, edge, kelly_fraction, kelly_shares, kelly_verdict
from polyoms.algos.urgency import PRESETS, Urgency, UrgencyParams, resolve
from polyoms.core.enums import Side
from polyoms.core.errors import ConfigError
from polyoms.core.units import MICRO, TICK_SIZES, TickSize
from polyoms.oms.state import OrderState

from .paper import Paper

T01, T001 = TICK_SIZES["0.01"], TICK_SIZES["0.001"]
ticks = st.sampled_from([TICK_SIZES[t] for t in ("0.1", "0.01", "0.001", "0.0001")])
probabilities = st.fractions(min_value=Fraction(1, 1000), max_value=Fraction(999, 1000))
prices = st.integers(1, 999).map(lambda c: c * 1_000)
sides = st.sampled_from([Side.BUY, Side.SELL])
YES, NO = "101", "202"


def inst(token: str = YES, tick: TickSize = T01, complement: str = NO) -> Instrument:
    return Instrument(token, tick, "0xmarket", complement)


def top(bid: int | None, ask: int | None, bid_size: int = 100 * MICRO, ask_size: int = 100 * MICRO) -> BookTop:
    return BookTop(YES, ((bid, bid_size),) if bid else (), ((ask, ask_size),) if ask else ())


# --- Kelly ----------------------------------------------------------------------------------------------


@given(p=probabilities, price=prices)
def test_kelly_fraction_is_the_edge_over_the_odds(p: Fraction, price: int) -> None:
    c = Fraction(price, MICRO)
    assert kelly_fraction(p, price, Side.BUY) == (p - c) / (1 - c)
    assert kelly_fraction(p, price, Side.SELL) == (c - p) / c
    assert (kelly_fraction(p, price) > 0) == (edge(p, price) > 0) == (p > c)


@given(p=probabilities, price=prices, bankroll=st.integers(0, 10**12), k=st.fractions(Fraction(1, 100), 1), side=sides)
def test_kelly_shares_never_stake_more_than_asked_and_nothing_without_edge(
    p: Fraction, price: int, bankroll: int, k: Fraction, side: Side
) -> None:
    sizing = KellySizing(p, k)
    shares = kelly_shares(sizing, price, bankroll, side)
    f = kelly_fraction(p, price, side)
    assert shares >= 0 and shares % LOT == 0
    if f <= 0:
        assert shares == 0
    per_share = price if side is Side.BUY else MICRO - price
    assert shares * per_share <= k * f * bankroll * MICRO if f > 0 else shares == 0


@given(p=probabilities, a=prices, b=prices, bankroll=st.integers(10**6, 10**10))
def test_kelly_buys_less_at_a_higher_price(p: Fraction, a: int, b: int, bankroll: int) -> None:
    lo, hi = min(a, b), max(a, b)
    sizing = KellySizing(p, Fraction(1, 4))
    assert kelly_shares(sizing, hi, bankroll) <= kelly_shares(sizing, lo, bankroll)


def test_kelly_example_and_input_checks() -> None:
    sizing = KellySizing(Decimal("0.60"), "0.25")  # Decimal and decimal strings are exact
    assert sizing.probability == Fraction(3, 5) and sizing.fraction == Fraction(1, 4)
    # f* = (0.6 - 0.5) / 0.5 = 0.2; a quarter of it on 1,000 pUSD = 50 pUSD = 100 shares at 0.50
    assert kelly_shares(sizing, 500_000, 1_000 * MICRO) == 100 * MICRO
    assert kelly_shares(sizing, 600_000, 1_000 * MICRO) == 0  # zero edge: no order
    assert kelly_shares(KellySizing(Fraction(3, 5), Fraction(1, 4), max_stake=10 * MICRO), 500_000, 10**9) == 20 * MICRO
    assert kelly_verdict(sizing, 650_000, Side.BUY, 0, 0, 5 * MICRO) is KellyVerdict.NO_EDGE
    assert kelly_verdict(sizing, 590_000, Side.BUY, 3 * MICRO, 0, 5 * MICRO) is KellyVerdict.TOO_SMALL
    assert kelly_verdict(sizing, 590_000, Side.BUY, 13 * MICRO, 10 * MICRO, 5 * MICRO) is KellyVerdict.REACHED
    for bad in (0.6, True, Fraction(0), Fraction(1), "x"):
        with pytest.raises(AlgoConfigError):
            KellySizing(bad)  # type: ignore[arg-type]
    with pytest.raises(ConfigError):  # the typed hierarchy: an AlgoConfigError is a ConfigError
        KellySizing(Fraction(1, 2), Fraction(3, 2))


# --- micro-price ----------------------------------------------------------------------------------------


@given(
    bid=st.integers(1, 998).map(lambda c: c * 1_000),
    spread=st.integers(1, 50).map(lambda c: c * 1_000),
    bs=st.integers(1, 10**9),
    as_=st.integers(1, 10**9),
)
def test_micro_price_lies_between_bid_and_ask_and_leans_to_the_heavy_side(
    bid: int, spread: int, bs: int, as_: int
) -> None:
    ask = min(bid + spread, 999_000)
    mp = micro_price(bid, bs, ask, as_)
    assert mp is not None and bid <= mp <= ask
    mid = Fraction(bid + ask, 2)
    if bs > as_:
        assert mp >= mid  # more bids than asks: the next trade is likelier at the ask
    elif bs == as_:
        assert mp == mid
    assert micro_price(None, bs, ask, as_) is None and micro_price(bid, 0, ask, as_) is None


@given(
    mp=st.fractions(Fraction(1_000), Fraction(999_000)),
    side=sides,
    offset=st.integers(0, 500),
    limit=prices,
    tick=ticks,
)
def test_micro_price_target_is_on_the_grid_and_never_beyond_the_limit(
    mp: Fraction, side: Side, offset: int, limit: int, tick: TickSize
) -> None:
    p = target_price(mp, side, offset, limit, tick)
    assert tick.on_grid(p)
    assert px.within(side, p, px.grid_limit(side, limit, tick))
    if px.within(side, int(mp), limit) and tick.min_price <= mp <= tick.max_price and offset == 0:
        # passive side of the micro-price: a BUY at or below it, a SELL at or above it
        assert (p <= mp) if side is Side.BUY else (p >= mp)


def test_band() -> None:
    mp = Fraction(500_000)
    assert in_band(502_500, mp, 50) and in_band(497_500, mp, 50)
    assert not in_band(502_501, mp, 50)


# --- tranches --------------------------------------------------------------------------------------------


@given(
    display=st.integers(5, 500).map(lambda n: n * MICRO),
    variance=st.integers(0, 5_000),
    remaining=st.integers(0, 100_000).map(lambda n: n * LOT),
    u=st.integers(0, 2**64 - 1),
)
def test_tranches_stay_in_bounds_and_never_exceed_what_remains(
    display: int, variance: int, remaining: int, u: int
) -> None:
    venue_min = 5 * MICRO
    spread = display * variance // 10_000
    lo = max(display - spread - (display - spread) % LOT, venue_min)
    hi = display + spread - (display + spread) % LOT
    size = tranche_size(display, variance, lo, hi, remaining, venue_min, u)
    assert size % LOT == 0 and 0 <= size <= remaining
    if remaining < venue_min:
        assert size == 0  # nothing valid can be placed
        return
    assert size >= venue_min
    tail = remaining - size
    assert tail == 0 or tail >= venue_min  # never strands a remainder too small to place
    # The bounds give way only to that rule: the whole remainder when it cannot make two valid orders,
    # or a tranche that leaves exactly the minimum for the last one.
    assert size <= hi or (size == remaining and remaining < 2 * venue_min)
    assert size >= min(lo, remaining) or tail == venue_min


def test_tranche_draws_are_reproducible() -> None:
    draws = [rng.between(42, n, 1_000, 3_000) for n in range(200)]
    assert draws == [rng.between(42, n, 1_000, 3_000) for n in range(200)]
    assert min(draws) >= 1_000 and max(draws) <= 3_000 and len(set(draws)) > 100


# --- grid stepping and urgency ---------------------------------------------------------------------------


@given(price=st.integers(-MICRO, 2 * MICRO), limit=prices, side=sides, tick=ticks)
def test_bounded_prices_are_on_the_grid_and_within_the_limit(
    price: int, limit: int, side: Side, tick: TickSize
) -> None:
    p = px.bounded(side, price, limit, tick)
    assert tick.on_grid(p)
    gl = px.grid_limit(side, limit, tick)
    assert px.within(side, p, gl)
    if px.within(side, gl, limit):  # a limit inside the venue's range is never passed
        assert px.within(side, p, limit)


def test_urgency_presets_and_steps_on_the_grid() -> None:
    assert [(p.patience_ms, p.max_adjustments, p.step) for p in PRESETS.values()] == [
        (60_000, 3, 3_000),
        (30_000, 5, 5_000),
        (10_000, 10, 10_000),
    ]
    # 0.3 / 0.5 / 1¢ where the grid allows it, one tick (rounded to the grid) where it does not
    assert [Urgency(u).params.effective_step(T001) for u in ("LOW", "MEDIUM", "HIGH")] == [3_000, 5_000, 10_000]
    assert [Urgency(u).params.effective_step(T01) for u in ("LOW", "MEDIUM", "HIGH")] == [10_000, 10_000, 10_000]
    assert Urgency.custom(patience_s=5, max_adjustments=2, step=20_000).effective_step(T01) == 20_000
    assert resolve("high") == PRESETS[Urgency.HIGH]
    with pytest.raises(AlgoConfigError):
        resolve("urgent")
    with pytest.raises(AlgoConfigError):
        UrgencyParams(0, 3, 1_000)


# --- adaptive: never beyond the limit, whatever the book does -------------------------------------------

books = st.lists(
    st.tuples(
        st.one_of(st.none(), st.integers(1, 99)),  # others' best bid (cents)
        st.integers(0, 30),  # spread (cents)
        st.integers(0, 3),  # what happens to us: nothing, partial fill, full fill, an external cancel
        st.integers(1, 20),  # seconds until the next look
    ),
    min_size=1,
    max_size=40,
)


@settings(max_examples=150, deadline=None)
@given(script=books, side=sides, limit_c=st.integers(5, 95), urgency=st.sampled_from(list(Urgency)))
def test_adaptive_never_prices_beyond_its_limit(
    script: list[tuple[int | None, int, int, int]], side: Side, limit_c: int, urgency: Urgency
) -> None:
    limit = limit_c * 10_000
    spec = AdaptiveSpec(YES, side, limit, 50 * MICRO, urgency=urgency, timeout_ms=600_000)
    paper = Paper(AdaptiveState.start(spec, inst(), 0))
    now = 0
    for bid_c, spread_c, event, wait_s in script:
        bid = None if bid_c is None else bid_c * 10_000
        ask = None if bid is None else min(bid + max(spread_c, 1) * 10_000, 990_000)
        paper.step(now, {YES: top(bid, ask)})
        live = paper.live()
        if live and event == 1:
            paper.fill(live[-1], 5 * MICRO)
        elif live and event == 2:
            paper.fill(live[-1], paper.views[live[-1]].size - paper.views[live[-1]].filled)
        elif live and event == 3:  # the venue cancels it (heartbeat, market change...)
            paper.views[live[-1]] = replace(paper.views[live[-1]], state=OrderState.CANCELLED)
        now += wait_s * 1_000
        paper.step(now, {YES: top(bid, ask)})
    state = paper.state
    assert isinstance(state, AdaptiveState)
    for p in paper.placed:
        assert px.within(side, p.price, limit) and T01.on_grid(p.price)
    assert state.adjustments <= urgency.params.max_adjustments
    allowed = {Action.PLACE, Action.WAIT, Action.RAISE_BID, Action.LOWER_ASK, Action.GIVE_UP, Action.STOP,
               Action.SETTLE, Action.DONE, Action.REFRESH, Action.RESUME}  # fmt: skip
    assert {d.action for d in paper.decisions} <= allowed
    wrong = Action.LOWER_ASK if side is Side.BUY else Action.RAISE_BID
    assert wrong not in {d.action for d in paper.decisions}
    # one live child at a time: every placement came after the previous child was final
    assert len(paper.live()) <= 1


def test_adaptive_reprices_by_cancel_confirm_replace() -> None:
    spec = AdaptiveSpec(YES, Side.BUY, 500_000, 40 * MICRO, urgency=Urgency.MEDIUM)
    paper = Paper(AdaptiveState.start(spec, inst(), 0))
    paper.step(0, {YES: top(440_000, 520_000)})
    assert [p.price for p in paper.placed] == [440_000]
    paper.fill("c1", 5 * MICRO)
    paper.step(5_000, {YES: top(460_000, 520_000)})  # undercut by 2¢: cancel first
    assert paper.cancelled == ["c1"] and len(paper.placed) == 1
    assert paper.decisions[-1].action is Action.RAISE_BID and "undercut" in paper.decisions[-1].reason
    paper.step(5_000)  # the cancel is confirmed (paper confirms at once): replace what remains
    assert [(p.price, p.size) for p in paper.placed] == [(440_000, 40 * MICRO), (470_000, 35 * MICRO)]


# --- iceberg: voids, stops ----------------------------------------------------------------------------


def test_iceberg_redoes_a_voided_fill_after_settling_and_reports_exactly_what_filled_on_cancel() -> None:
    spec = IcebergSpec(YES, Side.BUY, 20 * MICRO, 500_000, display=10 * MICRO, variance_bps=0, pause_ms=(1_000, 1_000))
    paper = Paper(IcebergState.start(spec, inst(), 0, seed=3))
    paper.step(0)
    paper.fill("t1", 10 * MICRO)
    paper.step(100)  # tranche filled: pause
    paper.step(1_100)
    paper.fill("t2", 10 * MICRO)
    paper.step(1_200)
    assert paper.state.phase is ParentState.SETTLING
    paper.void("t2", 6 * MICRO)  # settlement FAILED for 6 of them
    paper.confirm_all()
    paper.step(13_000)
    assert paper.decisions[-1].action is Action.RESUME and paper.state.phase is ParentState.WORKING
    paper.step(13_000)
    assert paper.placed[-1].size == 6 * MICRO  # exactly the voided quantity again
    paper.fill("t3", 1 * MICRO)
    paper.cancel_requested = True
    paper.step(14_000)
    assert paper.cancelled == ["t3"]
    paper.confirm_all()
    paper.step(14_100)
    assert paper.state.phase is ParentState.CANCELLED
    assert paper.state.progress(paper.obs()).filled == 15 * MICRO  # 10 + 4 + 1, nothing more, nothing less


def test_iceberg_tail_below_the_market_minimum_is_not_stranded() -> None:
    spec = IcebergSpec(YES, Side.BUY, 23 * MICRO, 500_000, display=10 * MICRO, variance_bps=0)
    paper = Paper(IcebergState.start(spec, inst(), 0, seed=1))
    sizes = []
    t = 0
    while paper.state.phase is ParentState.WORKING and t < 100_000:
        paper.step(t)
        for k in paper.live():
            sizes.append(paper.views[k].size)
            paper.fill(k, paper.views[k].size, final=True)
        t += 1_000
    assert sum(sizes) == 23 * MICRO and min(sizes) >= 5 * MICRO


# --- multi-leg and the unwinder on paper ------------------------------------------------------------------


@settings(max_examples=100, deadline=None)
@given(
    entry=st.integers(5, 95).map(lambda c: c * 10_000),
    bid=st.integers(1, 98).map(lambda c: c * 10_000),
    comp_ask=st.integers(2, 99).map(lambda c: c * 10_000),
    max_loss=st.integers(0, 5).map(lambda c: c * 10_000),
    method=st.sampled_from(list(uw.UnwindMethod)),
)
def test_unwinder_never_trades_beyond_its_loss_limit(
    entry: int, bid: int, comp_ask: int, max_loss: int, method: uw.UnwindMethod
) -> None:
    policy = uw.UnwindPolicy(method, max_loss=max_loss)
    e = uw.Exposure(inst(), Side.BUY, 20 * MICRO, Fraction(entry), sellable=20 * MICRO)
    books = {YES: BookTop(YES, ((bid, 100 * MICRO),), ()), NO: BookTop(NO, (), ((comp_ask, 100 * MICRO),))}
    _, places, decisions = uw.plan(Obs(0, {}, books), policy, e, uw.UnwindTask(0), 0)
    for p in places:
        if p.side is Side.SELL:
            assert p.token_id == YES and p.price >= entry - max_loss and method is not uw.UnwindMethod.BUY_COMPLEMENT
        else:
            assert p.token_id == NO and p.price + entry - MICRO <= max_loss and method is not uw.UnwindMethod.SELL_BACK
    assert places or decisions[0].action is Action.WAIT


def test_parallel_basket_unwinds_the_naked_leg_and_reports_the_legging_cost() -> None:
    spec = MultiLegSpec.complete_set(YES, NO, 20 * MICRO, 480_000, 560_000, mode=LegMode.PARALLEL)
    state = MultiLegState.start(spec, (inst(YES, complement=NO), inst(NO, complement=YES)), 0)
    paper = Paper(state)
    paper.books = {YES: BookTop(YES, ((450_000, 100 * MICRO),), ((470_000, 50 * MICRO),)),
                   NO: BookTop(NO, ((530_000, 50 * MICRO),), ((550_000, 5 * MICRO),))}  # fmt: skip
    paper.step(0)
    assert [(p.order_type.value, p.batch) for p in paper.placed] == [("FOK", "basket"), ("FOK", "basket")]
    paper.fill("l1", 20 * MICRO, 470_000)  # YES filled, NO killed (left CANCELLED with nothing)
    paper.step(10)
    unwind = paper.placed[-1]
    assert (unwind.token_id, unwind.side, unwind.price) == (NO, Side.BUY, 550_000)  # the complement, cheaper
    paper.fill(unwind.key, 20 * MICRO, 550_000)
    paper.confirm_all()
    paper.step(20)
    assert paper.state.phase is ParentState.UNWOUND
    # 20 × (0.47 + 0.55 − 1) = 0.40 pUSD
    assert paper.state.legging_cost(paper.obs()) == 400_000


def test_specs_refuse_bad_input_before_anything_is_sent() -> None:
    with pytest.raises(AlgoConfigError):
        IcebergState.start(IcebergSpec(YES, "BUY", 20 * MICRO, 505_000, display=10 * MICRO), inst(), 0, seed=1)
    with pytest.raises(AlgoConfigError):
        IcebergSpec(YES, "HOLD", 20 * MICRO, 500_000, display=10 * MICRO)  # type: ignore[arg-type]
    with pytest.raises(AlgoConfigError):
        AdaptiveState.start(AdaptiveSpec(YES, Side.BUY, 500_000, 3 * MICRO), inst(), 0)  # below the minimum
    with pytest.raises(AlgoConfigError):
        AdaptiveSpec(YES, Side.BUY, 500_000)  # neither a size nor Kelly
    with pytest.raises(AlgoConfigError):
        MultiLegSpec((LegSpec(YES, 5 * MICRO, 500_000),))
