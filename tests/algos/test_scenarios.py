"""Every algorithm against the local exchange in process on a virtual clock, in the scripted scenarios of
`polyoms.backtest.scenarios` (the ones the report measures): prices paid, limits never breached, exposure
after unwinding, decision logs — and, after each run, the OMS ledger equal to the exchange's balances."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable
from fractions import Fraction
from typing import TypeVar

import pytest

from polyoms.algos.base import Action, ParentState
from polyoms.algos.parents import ParentStatus
from polyoms.algos.sizing import kelly_shares
from polyoms.backtest.scenarios import (
    ALPHA,
    BACKTEST_LATENCY,
    BETA,
    CUP,
    CUP_OUTCOMES,
    KELLY,
    SCENARIOS,
    ScenarioRun,
    m,
    run_scenario,
)
from polyoms.core.enums import Side
from polyoms.core.units import MICRO
from polyoms.oms.fills import Fill, FillTier
from polyoms.oms.state import OrderRecord, OrderState

P = ParentState
T = TypeVar("T")


def scenario(name: str, check: Callable[[ScenarioRun], T], seed: int = 1) -> T:
    async def body() -> T:
        run = await run_scenario(name, seed)
        try:
            result = check(run)
            assert run.world.problems() == []  # the OMS ledger equals the exchange's balances
            assert run.world.engine.state.open_orders() == [] or any(not s.done for s in run.statuses)
            return result
        finally:
            await run.world.close()

    return asyncio.run(body())


def children(run: ScenarioRun, st: ParentStatus) -> list[OrderRecord]:
    return [run.world.engine.state.order(oid) for oid in st.child_order_ids]


def fills(run: ScenarioRun, st: ParentStatus) -> list[Fill]:
    state = run.world.engine.state
    return [f for oid in st.child_order_ids for f in state.fills_of(oid) if f.tier is not FillTier.VOIDED]


def actions(st: ParentStatus) -> list[Action]:
    return [d.action for d in st.decisions]


# --- iceberg ---------------------------------------------------------------------------------------------


def test_iceberg_partial_fills_one_tranche_at_a_time() -> None:
    def check(run: ScenarioRun) -> None:
        st = run.status()
        assert st.state is P.DONE and st.filled == st.target == 100 * MICRO and st.remaining == 0
        assert st.avg_price == 500_000 and {f.price for f in fills(run, st)} == {500_000}
        kids = children(run, st)
        assert all(20 * MICRO * 8 // 10 <= k.size <= 24 * MICRO or k is kids[-1] for k in kids)  # display ±20 %
        for a, b in itertools.pairwise(kids):  # the next tranche only once the last one filled
            assert a.state is OrderState.FILLED and a.history[-1].ts_ms <= b.created_ms
        places = [d.ts_ms for d in st.decisions if d.action is Action.PLACE]
        pauses = [d.ts_ms for d in st.decisions if d.action is Action.PAUSE]
        for paused, placed in zip(pauses, places[1:], strict=True):
            assert 1_000 <= placed - paused <= 3_000
        assert sum(k.filled for k in kids) == 100 * MICRO and all(f.tier is FillTier.CONFIRMED for f in fills(run, st))

    scenario("iceberg/partial-fills", check)


def test_iceberg_timeout_reports_exactly_what_filled() -> None:
    def check(run: ScenarioRun) -> None:
        st = run.status()
        assert st.state is P.EXPIRED and "timeout" in st.reason
        sold_to_us = sum(q for _, _, _, q in run.world.taken)
        assert 0 < st.filled == sold_to_us == sum(f.size for f in fills(run, st)) < st.target
        assert st.remaining == st.target - st.filled
        assert all(not k.is_open for k in children(run, st))
        assert run.world.position(run.world.yes(ALPHA)) == st.filled

    scenario("iceberg/timeout", check)


def test_iceberg_settlement_failure_is_worked_again() -> None:
    def check(run: ScenarioRun) -> None:
        st = run.status()
        state = run.world.engine.state
        voided = [f for oid in st.child_order_ids for f in state.fills_of(oid) if f.tier is FillTier.VOIDED]
        assert voided and voided[0].size == 7 * MICRO
        assert st.state is P.DONE and st.filled == 60 * MICRO  # the voided 7 were bought again
        assert all(f.tier is FillTier.CONFIRMED for f in fills(run, st))
        assert run.world.position(run.world.yes(ALPHA)) == 60 * MICRO

    scenario("iceberg/settlement-failure", check)


def test_iceberg_thin_book_sells_down_the_ladder_never_below_its_limit() -> None:
    def check(run: ScenarioRun) -> None:
        st = run.status()
        assert st.state is P.DONE and st.filled == 60 * MICRO
        prices = [f.price for f in fills(run, st)]
        assert min(prices) >= 450_000 and max(prices) == 500_000
        assert st.slippage is not None and st.slippage > 0  # a thin book costs: sold below the arrival mid

    scenario("iceberg/thin-book", check)


# --- adaptive --------------------------------------------------------------------------------------------


def test_adaptive_undercut_raises_by_cancel_confirm_replace() -> None:
    def check(run: ScenarioRun) -> None:
        st = run.status()
        assert st.state is P.DONE and st.filled == 40 * MICRO and st.adjustments == 2
        raises = [d for d in st.decisions if d.action is Action.RAISE_BID]
        assert [d.price for d in raises] == [470_000, 490_000] and all("undercut" in d.reason for d in raises)
        kids = children(run, st)
        assert [k.price for k in kids] == [440_000, 470_000, 490_000]
        assert all(k.price <= 500_000 for k in kids) and all(f.price <= 500_000 for f in fills(run, st))
        for old, new in itertools.pairwise(kids):  # replaced only after the cancel was confirmed
            assert old.state is OrderState.CANCELLED and old.history[-1].seq < new.history[0].seq
            assert new.size == 40 * MICRO - sum(k.filled for k in kids[: kids.index(new)])
        assert kids[0].filled == 5 * MICRO  # the small sale partly filled the first order

    scenario("adaptive/undercut", check)


def test_adaptive_sell_lowers_its_ask_never_below_its_limit() -> None:
    def check(run: ScenarioRun) -> None:
        st = run.status()
        assert st.state is P.DONE and Action.LOWER_ASK in actions(st) and Action.RAISE_BID not in actions(st)
        assert all(k.price >= 500_000 for k in children(run, st)) and st.avg_price == 520_000

    scenario("adaptive/undercut-sell", check)


def test_adaptive_trend_chases_to_the_limit_and_gives_up() -> None:
    def check(run: ScenarioRun) -> None:
        st = run.status()
        assert st.state is P.GAVE_UP and st.filled == 0
        prices = [k.price for k in children(run, st)]
        assert max(prices) == 550_000 and prices == sorted(prices)  # up to the limit, never beyond
        assert actions(st).count(Action.RAISE_BID) == 5 and actions(st)[-2] is Action.GIVE_UP
        assert "at the limit" in st.reason and "stale" in st.reason
        assert run.world.engine.state.open_orders() == []

    scenario("adaptive/trend", check)


def test_urgency_trades_price_for_time() -> None:
    def measure(run: ScenarioRun) -> tuple[Fraction, int, int, list[int]]:
        st = run.status()
        assert st.state is P.DONE and st.avg_price is not None and st.ended_ms is not None
        steps = [b.price - a.price for a, b in zip(children(run, st), children(run, st)[1:], strict=False)]
        return st.avg_price, st.ended_ms - st.started_ms, st.adjustments, steps

    low, medium, high = (scenario(f"adaptive/stale-{u}", measure) for u in ("low", "medium", "high"))
    assert low[0] < medium[0] < high[0]  # patience buys a better price...
    assert high[1] < medium[1] and high[1] < low[1]  # ...impatience buys time
    assert (low[2], medium[2], high[2]) == (0, 5, 5)
    assert set(medium[3]) == {5_000} and set(high[3]) == {10_000}  # 0.5¢ and 1¢ steps on a 0.1¢ grid


# --- micro-price and Kelly ----------------------------------------------------------------------------


def test_microprice_follows_the_imbalance_inside_its_limit() -> None:
    def check(run: ScenarioRun) -> None:
        st = run.status()
        assert st.state is P.DONE and st.filled == 40 * MICRO
        # 0.512 (heavy bid), 0.482 after the flip, 0.510 after the move: each the floor of the micro-price
        assert [k.price for k in children(run, st)] == [512_000, 482_000, 510_000]
        assert all(f.price <= 515_000 for f in fills(run, st))
        assert [d.action for d in st.decisions].count(Action.REPRICE) == 2

    scenario("microprice/imbalance", check)


def test_microprice_thin_book_is_held_at_the_aggression_limit() -> None:
    def check(run: ScenarioRun) -> None:
        st = run.status()
        assert st.state is P.EXPIRED and st.filled == 0
        assert [k.price for k in children(run, st)] == [609_000, 620_000]
        assert any("target is the current price" in d.reason for d in st.decisions)

    scenario("microprice/thin-book", check)


def test_kelly_sizes_shrink_with_the_edge_and_stop_at_none() -> None:
    def check(run: ScenarioRun) -> None:
        st = run.status()
        kids = children(run, st)
        assert kids[0].size == kelly_shares(KELLY, 500_000, 1_000 * MICRO) == 100 * MICRO  # the whole bankroll
        assert [k.size for k in kids[:3]] == sorted((k.size for k in kids[:3]), reverse=True)
        assert all(k.price < 600_000 for k in kids)  # never an order without edge (p = 0.60)
        no_edge = [d for d in st.decisions if d.action is Action.NO_EDGE]
        assert no_edge and no_edge[0].ts_ms - st.started_ms == 30_000
        assert not any(30_000 < k.created_ms - st.started_ms < 40_000 for k in kids)  # nothing while no edge
        assert st.state is P.DONE and st.filled == st.target

    scenario("kelly/trend", check)


# --- multi-leg -------------------------------------------------------------------------------------------


def test_complete_set_in_parallel() -> None:
    def check(run: ScenarioRun) -> None:
        st, w = run.status(), run.world
        assert st.state is P.DONE and st.legging_cost is None
        assert [(leg.filled, leg.avg_price) for leg in st.legs] == [(20 * MICRO, 470_000), (20 * MICRO, 550_000)]
        assert w.position(w.yes(ALPHA)) == w.position(w.no(ALPHA)) == 20 * MICRO
        assert {k.order_type.value for k in children(run, st)} == {"FOK"}

    scenario("multileg/complete-set", check)


def test_one_leg_killed_is_unwound_within_limits() -> None:
    def check(run: ScenarioRun) -> None:
        st, w = run.status(), run.world
        assert st.state is P.UNWOUND and "FokNotFilledError" in st.reason
        yes, no = w.yes(ALPHA), w.no(ALPHA)
        assert w.position(yes) - w.position(no) == 0  # flat: every YES has its NO
        # 5 complements at 0.55 then 15 at 0.54 against YES bought at 0.47: (0.02 × 5 + 0.01 × 15)
        assert st.legging_cost == 250_000
        unwinds = [k for k in children(run, st)[2:]]
        assert all(k.token_id == no and k.side is Side.BUY and k.price <= 550_000 for k in unwinds)
        assert Action.WAIT in actions(st)  # nothing within limits until the buyer showed up

    scenario("multileg/one-leg-killed", check)


def test_neg_risk_outcome_set_sequential() -> None:
    def check(run: ScenarioRun) -> None:
        st, w = run.status(), run.world
        assert st.state is P.DONE
        assert sum(leg.avg_price or 0 for leg in st.legs) == 950_000  # 0.95 for a sure 1
        assert all(w.position(w.yes(f"{CUP}-{o.lower()}")) == 20 * MICRO for o in CUP_OUTCOMES)
        created = [k.created_ms for k in children(run, st)]
        assert created == sorted(created)

    scenario("multileg/neg-risk-sequential", check)


def test_leg_timeout_unwinds_the_legs_already_bought() -> None:
    def check(run: ScenarioRun) -> None:
        st, w = run.status(), run.world
        assert st.state is P.UNWOUND and "leg 3" in st.reason
        for outcome in ("red", "green"):
            market = f"{CUP}-{outcome}"
            assert w.position(w.yes(market)) == w.position(w.no(market)) == 20 * MICRO  # flat: complete sets
        assert w.position(w.yes(f"{CUP}-blue")) == 0
        assert st.legging_cost == 400_000  # 1¢ a share on 40 shares
        assert [leg.residual for leg in st.legs] == [0, 0, 0]

    scenario("multileg/leg-timeout", check)


def test_settlement_failure_leaves_a_naked_leg_that_is_sold_back() -> None:
    def check(run: ScenarioRun) -> None:
        st, w = run.status(), run.world
        assert st.state is P.UNWOUND and "settlement failure" in st.reason
        assert w.position(w.yes(BETA)) == w.position(w.no(BETA)) == 0  # flat again
        sells = [k for k in children(run, st) if k.side is Side.SELL]
        assert len(sells) == 1 and sells[0].price == m("0.44") and sells[0].filled == 20 * MICRO
        assert st.legging_cost == 400_000  # bought at 0.47, sold back at 0.45

    scenario("multileg/settlement-failure", check)


# --- many parents at once --------------------------------------------------------------------------------


def test_many_parents_run_concurrently_with_status_progress_and_cancel() -> None:
    def check(run: ScenarioRun) -> None:
        states = [s.state for s in run.statuses]
        assert states == [P.DONE, P.CANCELLED, P.DONE, P.DONE]
        ids = [set(s.child_order_ids) for s in run.statuses]
        assert all(not (a & b) for i, a in enumerate(ids) for b in ids[i + 1 :])  # no shared children
        orders = run.world.engine.state.orders
        for s in run.statuses:
            assert {orders[oid].actor for oid in s.child_order_ids} == {f"algo:{s.parent_id}"}
        assert [s.progress for s in run.statuses] == [1, 0, 1, 1]
        assert run.world.parents.active == []

    scenario("parents/concurrent", check)


@pytest.mark.parametrize("name", ["iceberg/partial-fills", "multileg/one-leg-killed"])
def test_a_seed_replays_the_same_run(name: str) -> None:
    def log(run: ScenarioRun) -> list[str]:
        return [f"{d.ts_ms - run.status().started_ms} {d}" for s in run.statuses for d in s.decisions]

    assert scenario(name, log, seed=5) == scenario(name, log, seed=5)


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_with_latency_every_scenario_ends_and_the_ledger_agrees(name: str) -> None:
    async def body() -> list[str]:
        run = await run_scenario(name, 2, BACKTEST_LATENCY)
        try:
            assert all(s.done for s in run.statuses) and run.world.problems() == []
            return [f"{d.ts_ms} {d}" for s in run.statuses for d in s.decisions]
        finally:
            await run.world.close()

    assert asyncio.run(body()) == asyncio.run(body())  # the latency draws replay with the seed


def test_every_scenario_is_covered() -> None:
    tested = {
        "iceberg/partial-fills", "iceberg/timeout", "iceberg/settlement-failure", "iceberg/thin-book",
        "iceberg/adaptive-undercut",
        "adaptive/undercut", "adaptive/undercut-sell", "adaptive/trend", "adaptive/stale-low",
        "adaptive/stale-medium", "adaptive/stale-high", "microprice/imbalance", "microprice/thin-book",
        "kelly/trend", "multileg/complete-set", "multileg/one-leg-killed", "multileg/neg-risk-sequential",
        "multileg/leg-timeout", "multileg/settlement-failure", "parents/concurrent",
    }  # fmt: skip
    assert set(SCENARIOS) == tested
