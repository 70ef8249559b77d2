"""The iceberg with adaptive pricing (`IcebergSpec.adaptive`): its live tranche repriced by the adaptive
rules — undercut, trend, partial fills across tranches — on the local exchange with a virtual clock (the
OMS ledger equal to the exchange's balances after every run), by hand on paper, and as a property over
random books and fills: never beyond the limit, never more live than what remains."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import TypeVar

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from polyoms.algos import pricing as px
from polyoms.algos.adaptive import AdaptivePricing
from polyoms.algos.base import CENT, Action, AlgoConfigError, BookTop, Instrument, ParentState
from polyoms.algos.catalog import build_spec
from polyoms.algos.iceberg import IcebergSpec, IcebergState
from polyoms.algos.parents import ParentStatus
from polyoms.algos.urgency import Urgency, UrgencyParams
from polyoms.backtest.scenarios import ALPHA, Event, ScenarioRun, World, m, new_world, run_scenario, take, yes_of
from polyoms.core.enums import Side
from polyoms.core.errors import InputError
from polyoms.core.units import MICRO, TICK_SIZES
from polyoms.oms.state import OrderRecord, OrderState

from .paper import Paper

P = ParentState
T = TypeVar("T")
T01 = TICK_SIZES["0.01"]
YES = "101"


def on_exchange(make: Callable[[], Awaitable[ScenarioRun]], check: Callable[[ScenarioRun], T]) -> T:
    async def body() -> T:
        run = await make()
        try:
            result = check(run)
            assert run.world.problems() == []  # the OMS ledger equals the exchange's balances
            assert run.world.engine.state.open_orders() == []
            return result
        finally:
            await run.world.close()

    return asyncio.run(body())


def children(run: ScenarioRun, st: ParentStatus) -> list[OrderRecord]:
    return [run.world.engine.state.order(oid) for oid in st.child_order_ids]


def placements(st: ParentStatus) -> list[str]:
    """The reason of every PLACE, one per child in order."""
    return [d.reason for d in st.decisions if d.action is Action.PLACE]


def check_children(run: ScenarioRun, limit: int) -> list[OrderRecord]:
    """What holds for every adaptive iceberg: one child live at a time, each at most what remained, within
    the limit; a replacement only after its predecessor's cancel was confirmed, for exactly its remainder;
    the next tranche at the price the last one reached."""
    st = run.status()
    kids = children(run, st)
    reasons = placements(st)
    assert len(reasons) == len(kids)
    assert all(px.within(st.side or Side.BUY, k.price, limit) for k in kids)
    for i, (a, b) in enumerate(itertools.pairwise(kids)):
        assert not a.is_open and a.history[-1].seq < b.history[0].seq  # ended before the next one
        assert b.size <= st.target - sum(k.filled for k in kids[: i + 1])  # never more than what remains
        if reasons[i + 1].startswith("replacement of"):
            assert a.state is OrderState.CANCELLED and b.size == a.size - a.filled
            assert px.more_aggressive(st.side or Side.BUY, b.price, a.price)
        else:
            assert b.price >= a.price if st.side is Side.BUY else b.price <= a.price  # not back to the start
    return kids


# --- on the exchange ----------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [1, 7])
def test_undercut_raises_the_live_tranche_and_the_next_tranche_starts_there(seed: int) -> None:
    def check(run: ScenarioRun) -> None:
        st = run.status()
        assert st.state is P.DONE and st.filled == st.target == 60 * MICRO and st.remaining == 0
        raises = [d for d in st.decisions if d.action is Action.RAISE_BID]
        assert [d.price for d in raises] == [470_000, 490_000] and st.adjustments == 2
        assert all("undercut" in d.reason for d in raises)
        assert [d.reason.rsplit("(", 1)[-1] for d in raises] == ["adjustment 1)", "adjustment 2)"]  # parent-wide
        kids = check_children(run, 500_000)
        assert kids[0].price == 440_000  # joined the best bid (no start price)
        assert kids[0].filled == 5 * MICRO  # the small sale, before the first reprice
        tranche_starts = [k.price for k, r in zip(kids, placements(st), strict=True) if r.startswith("tranche")]
        assert tranche_starts[:2] == [440_000, 470_000] and set(tranche_starts[2:]) == {490_000}
        assert sum(k.filled for k in kids) == 60 * MICRO == run.world.position(run.world.yes("algos-beta"))
        assert max(k.price for k in kids) <= 500_000

    on_exchange(lambda: run_scenario("iceberg/adaptive-undercut", seed), check)


def test_the_undercut_scenario_replays_from_its_seed() -> None:
    def log(run: ScenarioRun) -> list[str]:
        return [f"{d.ts_ms - run.status().started_ms} {d}" for d in run.status().decisions]

    first = on_exchange(lambda: run_scenario("iceberg/adaptive-undercut", 5), log)
    assert first == on_exchange(lambda: run_scenario("iceberg/adaptive-undercut", 5), log)


async def trend(seed: int) -> ScenarioRun:
    """BUY 40 from 0.46 up to 0.55 (HIGH), shown ~10: a sale fills 3 of the first tranche, then the market
    climbs 2¢ every 4 s, always bidding over us."""
    w = await new_world(seed)
    yes = w.yes(ALPHA)
    await w.book(yes, bids=[("0.45", 50)], asks=[("0.50", 50)])
    pricing = AdaptivePricing(m("0.55"), urgency=Urgency.HIGH)
    spec = IcebergSpec(yes, Side.BUY, m(40), m("0.46"), display=m(10), timeout_ms=300_000, adaptive=pricing)
    pid = await w.parents.start(spec)

    def level(k: int) -> Callable[[World], Awaitable[object]]:
        async def act(world: World) -> None:
            await world.pull_all()
            await world.book(yes, bids=[(f"0.{45 + 2 * k}", 50)], asks=[(f"0.{50 + 2 * k}", 50)])

        return act

    script = [
        Event(2_000, take(yes_of(ALPHA), Side.SELL, "0.46", 3)),
        *(Event(4_000 * k, level(k)) for k in range(1, 10)),
    ]
    await w.run([pid], script)
    await w.wait(15_000)
    return ScenarioRun("iceberg + adaptive", "trend", seed, w, [pid])


def test_trend_chases_to_the_limit_never_beyond_and_gives_up_with_what_filled() -> None:
    def check(run: ScenarioRun) -> None:
        st = run.status()
        assert st.state is P.GAVE_UP and st.filled == 3 * MICRO  # ends with exactly what filled
        assert "stale" in st.reason and "at the limit 0.55" in st.reason
        kids = check_children(run, 550_000)
        prices = [k.price for k in kids]
        assert prices[0] == 460_000 and max(prices) == 550_000 and prices == sorted(prices)
        assert kids[1].size == kids[0].size - 3 * MICRO  # the first replacement: the tranche's remainder
        assert st.adjustments == len(kids) - 1 == [d.action for d in st.decisions].count(Action.RAISE_BID)
        assert st.adjustments <= Urgency.HIGH.params.max_adjustments
        acts = [d.action for d in st.decisions]
        assert acts[-2:] == [Action.GIVE_UP, Action.DONE]
        # at the limit and only undercut, it waited there for its patience before giving up
        waits = [d for d in st.decisions if d.action is Action.WAIT and "at the limit" in d.reason]
        assert waits and all(d.price == 550_000 for d in waits)
        assert run.world.position(run.world.yes(ALPHA)) == 3 * MICRO

    on_exchange(lambda: trend(3), check)


async def partial_fills(seed: int) -> ScenarioRun:
    """BUY 50 up to 0.50 (MEDIUM), shown ~10, joining the best bid: a seller hits the best bid with 4
    shares every 2 s while a competitor bids 1¢ higher every 15 s."""
    w = await new_world(seed)
    yes = w.yes(ALPHA)
    await w.book(yes, bids=[("0.40", 5)], asks=[("0.60", 50)])
    spec = IcebergSpec(
        yes, Side.BUY, m(50), None, display=m(10), timeout_ms=300_000, adaptive=AdaptivePricing(m("0.50"))
    )
    pid = await w.parents.start(spec)

    def competitor(price: str) -> Callable[[World], Awaitable[object]]:
        async def act(world: World) -> str:
            return await world.quote(yes, Side.BUY, price, 5)

        return act

    script = [
        *(Event(3_000 + 2_000 * i, take(yes_of(ALPHA), Side.SELL, "0.40", 4)) for i in range(60)),
        *(Event(5_000 + 15_000 * i, competitor(f"0.{42 + 2 * i}")) for i in range(4)),
    ]
    await w.run([pid], script)
    await w.wait(15_000)
    return ScenarioRun("iceberg + adaptive", "partial fills", seed, w, [pid])


@pytest.mark.parametrize("seed", [2, 9])
def test_partial_fills_across_tranches_with_repricing_fill_exactly_the_target(seed: int) -> None:
    def check(run: ScenarioRun) -> None:
        st = run.status()
        assert st.state is P.DONE and st.filled == st.target == 50 * MICRO
        kids = check_children(run, 500_000)
        assert sum(k.filled for k in kids) == 50 * MICRO == run.world.position(run.world.yes(ALPHA))
        replaced = [a for a, r in zip(kids, placements(st)[1:], strict=False) if r.startswith("replacement")]
        assert any(0 < k.filled < k.size for k in replaced)  # a partly filled tranche was moved
        assert sum(r.startswith("tranche") for r in placements(st)) >= 4  # over several tranches
        assert 0 < st.adjustments <= Urgency.MEDIUM.params.max_adjustments
        assert st.adjustments == [d.action for d in st.decisions].count(Action.RAISE_BID)

    on_exchange(lambda: partial_fills(seed), check)


# --- on paper -----------------------------------------------------------------------------------------


def inst() -> Instrument:
    return Instrument(YES, T01, "0xmarket", "202")


def book(bid: int | None, ask: int | None) -> dict[str, BookTop]:
    level = 100 * MICRO
    return {YES: BookTop(YES, ((bid, level),) if bid else (), ((ask, level),) if ask else ())}


def test_a_tranche_left_below_the_minimum_hands_the_new_price_to_the_next_tranche() -> None:
    pricing = AdaptivePricing(500_000)
    spec = IcebergSpec(YES, Side.BUY, 30 * MICRO, 440_000, display=10 * MICRO, variance_bps=0, pause_ms=(1_000, 1_000),
                       adaptive=pricing)  # fmt: skip
    paper = Paper(IcebergState.start(spec, inst(), 0, seed=1))
    paper.step(0, book(440_000, 520_000))
    paper.fill("t1", 7 * MICRO)  # 3 left: below the market's minimum of 5
    paper.step(1_000, book(460_000, 520_000))
    assert paper.decisions[-1].action is Action.RAISE_BID and paper.cancelled == ["t1"]
    paper.step(1_000)
    assert paper.decisions[-1].action is Action.PAUSE and len(paper.placed) == 1  # nothing of 3 shares
    paper.step(2_000)
    assert [(p.price, p.size) for p in paper.placed] == [(440_000, 10 * MICRO), (470_000, 10 * MICRO)]
    assert paper.state.progress(paper.obs()).adjustments == 1


def test_with_its_budget_spent_an_undercut_tranche_waits_and_a_stale_one_gives_up() -> None:
    pricing = AdaptivePricing(500_000, urgency=Urgency.custom(patience_s=10, max_adjustments=1, step=CENT))
    spec = IcebergSpec(YES, Side.BUY, 20 * MICRO, None, display=10 * MICRO, adaptive=pricing)
    paper = Paper(IcebergState.start(spec, inst(), 0, seed=1))
    paper.step(0, book(450_000, 520_000))
    assert paper.placed[0].price == 450_000  # joined the best bid
    paper.step(1_000, book(470_000, 520_000))
    paper.step(1_000)
    assert [p.price for p in paper.placed] == [450_000, 480_000]
    paper.step(2_000, book(490_000, 520_000))
    assert paper.decisions[-1].action is Action.WAIT and "1 adjustments used" in paper.decisions[-1].reason
    assert paper.state.phase is P.WORKING
    paper.step(12_000)  # no fill for 11 s: stale, and no adjustment left
    give_up = paper.decisions[-1]
    assert give_up.action is Action.GIVE_UP and "stale" in give_up.reason and give_up.price == 480_000
    paper.step(12_100)
    assert paper.state.phase is P.GAVE_UP and paper.live() == []


def test_without_a_book_the_first_tranche_starts_at_the_limit_and_specs_are_checked() -> None:
    spec = IcebergSpec(YES, Side.SELL, 20 * MICRO, None, display=10 * MICRO, adaptive=AdaptivePricing(600_000))
    paper = Paper(IcebergState.start(spec, inst(), 0, seed=1))
    paper.step(0)
    assert paper.placed[0].price == 600_000
    with pytest.raises(AlgoConfigError):
        IcebergSpec(YES, Side.BUY, 20 * MICRO, None, display=10 * MICRO)  # no price and nothing to find one
    for bad in (
        IcebergSpec(YES, Side.BUY, 20 * MICRO, 520_000, display=10 * MICRO, adaptive=AdaptivePricing(500_000)),
        IcebergSpec(YES, Side.SELL, 20 * MICRO, 480_000, display=10 * MICRO, adaptive=AdaptivePricing(500_000)),
        IcebergSpec(YES, Side.BUY, 20 * MICRO, None, display=10 * MICRO, adaptive=AdaptivePricing(505_000)),
    ):
        with pytest.raises(AlgoConfigError):
            IcebergState.start(bad, inst(), 0, seed=1)  # beyond the limit, or a limit off the grid
    with pytest.raises(AlgoConfigError):
        AdaptivePricing(500_000, urgency="urgent")  # type: ignore[arg-type]
    with pytest.raises(AlgoConfigError):
        AdaptivePricing(500_000, check_ms=0)


def test_the_control_api_builds_an_adaptive_iceberg() -> None:
    spec = build_spec(
        "iceberg", YES, Side.BUY, 60 * MICRO, "0.45", {"limit": "0.55", "urgency": "high", "undercut_margin": "0.02"}
    )
    assert isinstance(spec, IcebergSpec) and spec.price == 450_000
    assert spec.adaptive == AdaptivePricing(550_000, urgency=Urgency.HIGH.params, undercut_margin=20_000)
    plain = build_spec("iceberg", YES, Side.BUY, 60 * MICRO, "0.45", {})
    assert isinstance(plain, IcebergSpec) and plain.adaptive is None
    with pytest.raises(InputError, match="need limit="):
        build_spec("iceberg", YES, Side.BUY, 60 * MICRO, "0.45", {"urgency": "high"})


# --- the property -------------------------------------------------------------------------------------

events = st.lists(
    st.tuples(
        st.one_of(st.none(), st.integers(1, 98)),  # others' best bid (cents)
        st.one_of(st.none(), st.integers(1, 30)),  # spread to their best ask (cents)
        st.integers(0, 4),  # to us: nothing, a partial fill, the rest, a venue cancel, a voided fill
        st.integers(1, 900),  # shares/100 of a partial fill
        st.integers(100, 20_000),  # ms until the next look
    ),
    min_size=1,
    max_size=50,
)


@settings(max_examples=150, deadline=None)
@given(
    script=events,
    side=st.sampled_from([Side.BUY, Side.SELL]),
    limit_c=st.integers(5, 95),
    start_c=st.one_of(st.none(), st.integers(1, 99)),
    urgency=st.sampled_from([*Urgency, UrgencyParams(3_000, 20, 2 * CENT)]),
    seed=st.integers(0, 2**32),
)
def test_the_tranche_never_passes_the_limit_nor_shows_more_than_remains(
    script: list[tuple[int | None, int | None, int, int, int]],
    side: Side,
    limit_c: int,
    start_c: int | None,
    urgency: Urgency | UrgencyParams,
    seed: int,
) -> None:
    limit = limit_c * CENT
    start = None if start_c is None else px.cap(side, start_c * CENT, limit)
    target = 50 * MICRO
    pricing = AdaptivePricing(limit, urgency=urgency)
    spec = IcebergSpec(YES, side, target, start, display=10 * MICRO, timeout_ms=900_000, adaptive=pricing)
    paper = Paper(IcebergState.start(spec, inst(), 0, seed))

    def invariants() -> None:
        filled = sum(v.filled for v in paper.views.values())
        live = paper.live()
        assert len(live) <= 1 and filled <= target
        for k in live:
            v = paper.views[k]
            assert v.size - v.filled <= target - filled  # never more live than what remains
        for p in paper.placed:
            assert px.within(side, p.price, limit) and T01.on_grid(p.price)

    now = 0
    for bid_c, spread_c, event, qty, wait_ms in script:
        bid = None if bid_c is None else bid_c * CENT
        ask = None if spread_c is None else min((bid_c or 1) + spread_c, 99) * CENT
        paper.step(now, book(bid, ask))
        invariants()
        live = paper.live()
        if live:
            v = paper.views[live[-1]]
            left = v.size - v.filled
            if event == 1:
                paper.fill(v.key, min(qty * 10_000, left))
            elif event == 2:
                paper.fill(v.key, left)
            elif event == 3:
                paper.views[v.key] = replace(v, state=OrderState.CANCELLED)
        if event == 4:  # a settlement failure voids a fill of an ended child
            ended = [k for k, v in paper.views.items() if not v.is_open and v.filled > 0]
            if ended:
                paper.void(ended[0], min(paper.views[ended[0]].filled, qty * 10_000))
        now += wait_ms
        paper.step(now, book(bid, ask))
        invariants()
    state = paper.state
    assert isinstance(state, IcebergState)
    params = urgency if isinstance(urgency, UrgencyParams) else urgency.params
    assert state.adjustments <= params.max_adjustments
    moves = [d.action for d in paper.decisions if d.action in (Action.RAISE_BID, Action.LOWER_ASK)]
    assert len(moves) == state.adjustments
    assert set(moves) <= {Action.RAISE_BID if side is Side.BUY else Action.LOWER_ASK}
