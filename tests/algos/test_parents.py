"""The ParentManager API: start / status / list / cancel / wait, running on its own (autorun, with an
injected sleep on the virtual clock), refusing bad specs before anything is journaled, failing closed
when admission is closed, and isolating an algorithm that raises."""

from __future__ import annotations

import asyncio

import pytest

from polyoms.algos.adaptive import AdaptiveSpec, AdaptiveState
from polyoms.algos.base import AlgoConfigError, Obs, ParentState
from polyoms.algos.books import ExchangeBooks
from polyoms.algos.iceberg import IcebergSpec
from polyoms.algos.parents import HOLD_MS, ParentManager, UnknownParentError
from polyoms.algos.single import OrderSpec
from polyoms.algos.urgency import Urgency
from polyoms.backtest.scenarios import ALPHA, BETA, World, m, new_world
from polyoms.core.enums import Side
from polyoms.core.errors import InputError
from polyoms.core.units import MICRO

P = ParentState


def autorun(w: World) -> ParentManager:
    """A second manager over the same OMS that drives itself; its sleep moves the virtual clock."""

    async def sleep(seconds: float) -> None:
        w.clock.advance(int(seconds * 1000))
        w.service.tick()
        w.exchange.advance()
        await asyncio.sleep(0)

    return ParentManager(w.manager, clock=w.clock, book_source=ExchangeBooks(w.exchange), sleep=sleep)


def test_start_status_list_cancel_wait_on_their_own() -> None:
    async def body() -> None:
        w = await new_world(2)
        pm = autorun(w)
        try:
            yes, beta = w.yes(ALPHA), w.yes(BETA)
            await w.book(yes, asks=[("0.50", 20)])
            await w.book(beta, bids=[("0.30", 10)], asks=[("0.70", 10)])
            taker = await pm.start(OrderSpec.limit(yes, Side.BUY, m("0.50"), m(10)))
            patient = Urgency.custom(patience_s=3_600, max_adjustments=1, step=m("0.01"))  # virtual time flies here
            spec = AdaptiveSpec(beta, Side.BUY, m("0.40"), m(10), urgency=patient, start_price=m("0.35"))
            resting = await pm.start(spec)
            st = pm.status(resting)  # the first child is journaled by the time start returns
            assert st.state is P.WORKING and len(st.child_order_ids) == 1 and st.filled == 0
            assert [s.parent_id for s in pm.list()] == [taker, resting] and set(pm.active) == {taker, resting}
            done = await pm.wait(taker, timeout_s=10)
            assert done.state is P.DONE and done.filled == 10 * MICRO and done.avg_price == 500_000
            assert done.ended_ms is not None and done.ended_ms - done.started_ms >= 12_000  # final fills awaited
            pending = await pm.wait(resting, timeout_s=0.05)
            assert not pending.done  # a timeout returns the status as it is
            await pm.cancel(resting)
            cancelled = await pm.wait(resting, timeout_s=10)
            assert cancelled.state is P.CANCELLED and cancelled.reason == "cancelled by the user"
            assert w.exchange.get_order(cancelled.child_order_ids[0]).status.startswith("CANCEL")  # type: ignore[union-attr]
            assert pm.active == []
            with pytest.raises(UnknownParentError) as info:
                pm.status("nope")
            assert isinstance(info.value, InputError) and isinstance(info.value, KeyError)
        finally:
            await pm.close()
            await w.close()

    asyncio.run(body())


def test_bad_specs_are_refused_before_anything_is_journaled() -> None:
    async def body() -> None:
        w = await new_world(2)
        try:
            yes = w.yes(ALPHA)
            for spec in (
                IcebergSpec(yes, Side.BUY, m(10), m("0.505"), display=m(5)),  # off the grid
                IcebergSpec(yes, Side.BUY, m(3), m("0.50"), display=m(3)),  # below the market minimum
                AdaptiveSpec("12345", Side.BUY, m("0.40"), m(10)),  # a token nobody knows
            ):
                with pytest.raises(AlgoConfigError):
                    await w.parents.start(spec)
            assert w.engine.state.orders == {} and w.parents.list() == []
        finally:
            await w.close()

    asyncio.run(body())


def test_closed_admission_fails_the_parent_and_sends_nothing() -> None:
    async def body() -> None:
        w = await new_world(2)
        try:
            w.engine.flags.kill_switch = True
            pid = await w.parents.start(IcebergSpec(w.yes(ALPHA), Side.BUY, m(10), m("0.50"), display=m(5)))
            await w.parents.settle()
            st = w.parents.status(pid)
            assert st.state is P.FAILED and "TradingHaltedError" in st.reason and "TradingHaltedError" in st.error
            assert w.engine.state.orders == {} and not w.venue.posts  # nothing signed into the journal, nothing sent
        finally:
            await w.close()

    asyncio.run(body())


def test_a_passing_refusal_holds_the_child_until_admission_reopens() -> None:
    """A user-stream gap closes admission for a moment: the tranche is held (SUBMITTING, nothing signed
    into the journal or sent), placed once the OMS has resynced, and the parent completes."""

    async def body() -> None:
        w = await new_world(2)
        try:
            yes = w.yes(ALPHA)
            await w.book(yes, asks=[("0.50", 20)])
            w.engine.flags.user_stream_gapped = True
            pid = await w.parents.start(IcebergSpec(yes, Side.BUY, m(10), m("0.50"), display=m(10)))
            await w.parents.settle()
            st = w.parents.status(pid)
            assert st.state is P.WORKING and st.child_order_ids == () and "user stream gapped" in st.error
            assert w.engine.state.orders == {} and not w.venue.posts
            w.clock.advance(5_000)
            await w.parents.settle()
            assert w.parents.status(pid).state is P.WORKING  # still held: the gap is not over
            w.engine.flags.user_stream_gapped = False
            wake = w.parents.next_wake_ms()
            assert wake is not None and wake <= w.clock.now_ms() + 1_000  # held children want a retry soon
            w.clock.advance(wake - w.clock.now_ms())
            await w.parents.settle()
            st = w.parents.status(pid)
            assert len(st.child_order_ids) == 1 and st.filled == 10 * MICRO
            assert sum(w.venue.posts.values()) == 1  # sent once, after the gap
        finally:
            await w.close()

    asyncio.run(body())


def test_a_passing_refusal_that_lasts_too_long_fails_and_a_cancel_while_held_sends_nothing() -> None:
    async def body() -> None:
        w = await new_world(2)
        try:
            yes = w.yes(ALPHA)
            w.engine.flags.heartbeat_failed = True
            stuck = await w.parents.start(IcebergSpec(yes, Side.BUY, m(10), m("0.40"), display=m(5)))
            cancelled = await w.parents.start(IcebergSpec(yes, Side.BUY, m(10), m("0.40"), display=m(5)))
            await w.parents.cancel(cancelled)
            await w.parents.settle()
            st = w.parents.status(cancelled)
            assert st.state is P.CANCELLED and st.filled == 0 and st.child_order_ids == ()
            w.clock.advance(HOLD_MS)
            await w.parents.settle()
            st = w.parents.status(stuck)
            assert st.state is P.FAILED and "heartbeat failed" in st.reason
            assert w.engine.state.orders == {} and not w.venue.posts
        finally:
            await w.close()

    asyncio.run(body())


def test_an_algorithm_that_raises_fails_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    async def body() -> None:
        w = await new_world(2)
        try:
            a, b = w.yes(ALPHA), w.yes(BETA)
            await w.book(a, bids=[("0.30", 10)], asks=[("0.70", 10)])
            await w.book(b, bids=[("0.30", 10)], asks=[("0.70", 10)])
            ice = await w.parents.start(IcebergSpec(a, Side.BUY, m(20), m("0.40"), display=m(10)))
            ada = await w.parents.start(AdaptiveSpec(b, Side.BUY, m("0.40"), m(10), start_price=m("0.35")))

            def broken(self: AdaptiveState, obs: Obs) -> object:
                raise ZeroDivisionError("a bug")

            monkeypatch.setattr(AdaptiveState, "step", broken)
            w.clock.advance(1_000)
            await w.parents.settle()
            st = w.parents.status(ada)
            assert st.state is P.FAILED and "ZeroDivisionError: a bug" in st.reason
            await w.engine.drain()
            assert w.engine.state.order(st.child_order_ids[0]).state.value == "CANCELLED"  # its child was pulled
            assert w.parents.status(ice).state is P.WORKING  # the other parent goes on
            assert any("ZeroDivisionError" in e for e in w.parents.errors)
        finally:
            await w.close()

    asyncio.run(body())
