"""Parent orders survive a crash: journaled when they start (before their first child), recovered by a
restarted manager, resumed or interrupted per their policy with exactly what their children filled, and
their ids never repeat. The whole stack in process on a virtual clock (the local exchange, the OMS with a
SQLite journal): the "crash" abandons the engine and its journal as a killed process would
(`Engine.crash`), the exchange goes on, and a new OMS is recovered from the file."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Sequence
from pathlib import Path

import pytest

from polyoms.algos.base import AlgoConfigError, ParentState
from polyoms.algos.books import ExchangeBooks
from polyoms.algos.catalog import build_spec, on_restart_of
from polyoms.algos.iceberg import IcebergSpec
from polyoms.algos.multileg import LegSpec, MultiLegSpec
from polyoms.algos.parents import ParentManager, ParentStatus, decode_spec, encode_spec
from polyoms.algos.single import OrderSpec
from polyoms.backtest.scenarios import ALPHA, BETA, CASH, SHARES, Event, World, _key, m, scenario_markets
from polyoms.core.clock import VirtualClock
from polyoms.core.enums import Side
from polyoms.core.errors import InputError
from polyoms.core.units import MICRO, Micro
from polyoms.exchange.api.faults import FaultConfig, Faults
from polyoms.exchange.api.service import SimService
from polyoms.exchange.engine import Exchange
from polyoms.exchange.settlement import SettlementConfig
from polyoms.oms.engine import Engine
from polyoms.oms.fills import FillTier
from polyoms.oms.journal import Journal, open_journal
from polyoms.oms.journal_recovery import recover
from polyoms.oms.manager import OrderManager
from polyoms.oms.oms_state import OmsState
from polyoms.oms.state import OrderState
from polyoms.polymarket.client.wallet import Wallet
from polyoms.venues.inprocess import InProcessVenue

P = ParentState
START_MS = 1_777_000_000_000


def _world(
    clock: VirtualClock,
    service: SimService,
    venue: InProcessVenue,
    them: InProcessVenue,
    state: OmsState,
    on_restart: str = "interrupt",
) -> World:
    markets = {mk.slug: mk for mk in scenario_markets()}
    engine = Engine(state, venue, markets={t: mk.condition_id for mk in markets.values() for t in mk.token_ids})
    engine.start()
    manager = OrderManager(engine, actor="test")
    parents = ParentManager(
        manager,
        clock=clock,
        book_source=ExchangeBooks(service.exchange),
        seed=1,
        autorun=False,
        on_restart=on_restart,
    )
    w_them = Wallet.from_key(_key("them"), name="them")
    return World(
        1, clock, service, venue, engine, manager, parents, them, w_them.order_builder(clock=clock), markets, START_MS
    )


async def journaled_world(path: Path, on_restart: str = "interrupt") -> World:
    """`scenarios.new_world` with the OMS journaled to `path`."""
    clock = VirtualClock(START_MS)
    markets = scenario_markets()
    exchange = Exchange(markets, clock, seed=1, settlement=SettlementConfig())
    service = SimService(exchange, clock, seed=1)
    service.faults = Faults(FaultConfig(seed=1))
    service.apply_fault_config()
    us, them = Wallet.from_key(_key("us"), name="us"), Wallet.from_key(_key("them"), name="them")
    tokens = [t for mk in markets for t in mk.token_ids]
    service.fund(us.address, CASH, dict.fromkeys(tokens, SHARES))
    service.fund(them.address, 1_000 * CASH, dict.fromkeys(tokens, 1_000 * SHARES))
    venue = InProcessVenue(service, us.address, builder=us.order_builder(clock=clock), seed=1)
    other = InProcessVenue(service, them.address, seed=2)
    state = OmsState(clock)
    open_journal(path, state)
    state.add_wallet(us.address, [venue.owner])
    state.set_balance(us.address, cash=CASH, positions=dict.fromkeys(tokens, SHARES))
    return _world(clock, service, venue, other, state, on_restart)


async def crash_and_restart(w: World, path: Path, on_restart: str, down_ms: int = 2_000) -> World:
    """Die (nothing more written), let the exchange go on for `down_ms`, recover a new OMS from the journal
    (in-flight intents UNKNOWN, reconciled with the exchange) and a new manager over it."""
    await w.parents.close()
    await w.engine.crash()
    w._advance_to(w.clock.now_ms() + down_ms)
    state = recover(path, w.clock)
    again = _world(w.clock, w.service, w.venue, w.them, state, on_restart)
    await again.engine.call(lambda s: s.after_restart())
    await again.engine.reconcile()
    return again


def attributed(w: World, pid: str) -> tuple[Micro, Micro, Micro]:
    """(shares, pUSD, fees) of the OMS's fill records of the orders submitted as the parent's children."""
    st = w.engine.state
    shares = cash = fees = 0
    for o in st.orders.values():
        if o.actor != f"algo:{pid}":
            continue
        for f in st.fills_of(o.order_id):
            if f.tier is not FillTier.VOIDED:
                shares, cash, fees = shares + f.size, cash + f.cash, fees + f.fee
    return shares, cash, fees


def assert_exact(w: World, s: ParentStatus) -> None:
    assert (s.filled, s.notional, s.fees) == attributed(w, s.parent_id)


async def iceberg_partly_filled(w: World, size: int = 30, took: int = 4) -> str:
    """An iceberg BUY at 0.50 showing 10: its first tranche rests, `took` shares of it are sold into it
    (settled), the rest of it still rests when the process dies."""
    yes = w.yes(ALPHA)
    pid = await w.parents.start(IcebergSpec(yes, Side.BUY, m(size), m("0.50"), display=m(10), variance_bps=0))
    await w.parents.settle()
    assert await w.take(yes, Side.SELL, "0.50", took) == took * MICRO
    await w.wait(30_000)  # settled: the fills are final
    st = w.parents.status(pid)
    assert st.state is P.WORKING and st.filled == took * MICRO and len(st.child_order_ids) == 1
    return pid


def test_the_record_is_committed_before_the_first_child_is_sent(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite"

    async def body() -> None:
        w = await journaled_world(path)
        seen: list[list[str]] = []
        submit = w.venue.submit

        async def spy(orders: Sequence[object]) -> object:
            # What another process reading the file sees when the child reaches the venue.
            with sqlite3.connect(path) as conn:
                seen.append([r[0] for r in conn.execute("SELECT parent_id FROM parents")])
            return await submit(orders)  # type: ignore[arg-type]

        w.venue.submit = spy  # type: ignore[method-assign,assignment]
        try:
            pid = await w.parents.start(IcebergSpec(w.yes(ALPHA), Side.BUY, m(10), m("0.50"), display=m(5)))
            await w.engine.drain()
            assert seen == [[pid]]
            (rec,) = w.engine.state.journal.parents()  # type: ignore[union-attr]
            assert (rec.parent_id, rec.no, rec.family, rec.kind, rec.state, rec.ended) == (
                pid,
                1,
                "algo",
                "iceberg",
                "WORKING",
                False,
            )
            assert rec.actor == f"algo:{pid}" and rec.on_restart == "interrupt"
            assert decode_spec(rec.spec)[0] == w.parents._parent(pid).spec
        finally:
            await w.close()

    asyncio.run(body())


def test_interrupt_cancels_what_rests_and_reports_exactly_what_filled(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite"

    async def body() -> None:
        w = await journaled_world(path)
        pid = await iceberg_partly_filled(w)
        child = w.parents.status(pid).child_order_ids[0]
        w = await crash_and_restart(w, path, "interrupt")
        try:
            assert await w.parents.recover() == [pid]
            await w.wait(10_000)
            st = w.parents.status(pid)
            assert st.state is P.CANCELLED and st.done and st.interrupted and st.restarts == 1
            assert st.filled == 4 * MICRO and st.remaining == 26 * MICRO and st.target == 30 * MICRO
            assert st.child_order_ids == (child,) and "interrupted by a restart" in st.reason
            assert_exact(w, st)
            assert w.engine.state.order(child).state is OrderState.CANCELLED
            assert w.exchange.get_order(child).status.startswith("CANCEL")  # type: ignore[union-attr]
            assert w.engine.state.open_orders() == []
            # The new id is numbered past the journaled one; the old one still answers.
            nxt = await w.parents.start(IcebergSpec(w.yes(BETA), Side.BUY, m(10), m("0.40"), display=m(5)))
            assert nxt == "iceberg-2" and nxt != pid
            assert {s.parent_id for s in w.parents.list()} == {pid, nxt}
            recs = {r.parent_id: r for r in w.engine.state.journal.parents()}  # type: ignore[union-attr]
            assert recs[pid].ended and recs[pid].interrupted and recs[pid].state == "CANCELLED"
            await w.parents.cancel(nxt)
            await w.wait(10_000)
        finally:
            await w.close()
        # The ending is journaled: a second restart finds it ended, with the same numbers.
        w2 = await crash_and_restart(w, path, "resume")
        try:
            assert await w2.parents.recover() == []
            again = w2.parents.status(pid)
            assert again.state is P.CANCELLED and again.interrupted and again.filled == 4 * MICRO
            assert_exact(w2, again)
            assert w2.parents.status("iceberg-2").state is P.CANCELLED
            assert await w2.parents.start(OrderSpec.limit(w2.yes(BETA), Side.BUY, m("0.30"), m(5))) == "order-3"
        finally:
            await w2.close()

    asyncio.run(body())


def test_resume_works_what_is_left_and_adds_both_runs(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite"

    async def body() -> None:
        w = await journaled_world(path, on_restart="resume")
        pid = await iceberg_partly_filled(w)
        first = w.parents.status(pid).child_order_ids[0]
        w = await crash_and_restart(w, path, "interrupt")  # the parent's own policy (resume) wins
        try:
            assert await w.parents.recover() == [pid]
            await w.parents.settle()
            st = w.parents.status(pid)
            assert st.state is P.WORKING and not st.interrupted and st.restarts == 1
            assert w.engine.state.order(first).state is OrderState.CANCELLED  # stopped, then replaced
            assert len(st.child_order_ids) == 2 and st.child_order_ids[0] == first
            assert w.engine.state.order(st.child_order_ids[1]).size == 10 * MICRO
            assert any("resumed after a restart" in d.reason for d in st.decisions)
            yes = w.yes(ALPHA)

            async def sell(world: World) -> None:
                await world.take(yes, Side.SELL, "0.50", 10)

            await w.run([pid], [Event(w.now + k * 5_000, sell) for k in range(1, 8)])
            done = w.parents.status(pid)
            assert done.state is P.DONE and done.filled == 30 * MICRO and done.remaining == 0
            assert_exact(w, done)
            assert w.problems() == []
        finally:
            await w.close()

    asyncio.run(body())


def test_a_parent_cancelled_before_the_crash_is_not_resumed(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite"

    async def body() -> None:
        w = await journaled_world(path, on_restart="resume")
        pid = await iceberg_partly_filled(w)
        # The cancel is requested (journaled) but the process dies before the venue answers it.
        hold = asyncio.Event()

        async def hang(order_ids: object) -> object:
            await hold.wait()
            raise AssertionError("unreachable")

        w.venue.cancel = hang  # type: ignore[method-assign,assignment]
        await w.parents.cancel(pid)
        w = await crash_and_restart(w, path, "resume")
        w.venue.__dict__.pop("cancel", None)
        try:
            await w.parents.recover()
            await w.wait(10_000)
            st = w.parents.status(pid)
            assert st.state is P.CANCELLED and not st.interrupted and "asked for before the restart" in st.reason
            assert st.filled == 4 * MICRO and len(st.child_order_ids) == 1
            assert_exact(w, st)
        finally:
            await w.close()

    asyncio.run(body())


def test_what_cannot_resume_is_interrupted(tmp_path: Path) -> None:
    """A basket is never resumed (its legs' state is not rebuilt): interrupted even under "resume". A
    parent that crashed before its first child resumes from zero."""
    path = tmp_path / "journal.sqlite"

    async def body() -> None:
        w = await journaled_world(path, on_restart="resume")
        legs = (LegSpec(w.yes(ALPHA), m(5), m("0.40")), LegSpec(w.yes(BETA), m(5), m("0.40")))
        basket = await w.parents.start(MultiLegSpec(legs))
        w.engine.flags.user_stream_gapped = True  # its child is held: nothing sent yet
        early = await w.parents.start(IcebergSpec(w.yes(BETA), Side.BUY, m(10), m("0.30"), display=m(5)))
        assert w.parents.status(early).child_order_ids == ()
        w = await crash_and_restart(w, path, "resume")
        try:
            assert sorted(await w.parents.recover()) == sorted([basket, early])
            await w.wait(10_000)
            b = w.parents.status(basket)
            assert b.state is P.CANCELLED and b.interrupted and "cannot resume" in b.reason
            assert_exact(w, b)
            e = w.parents.status(early)
            assert e.state is P.WORKING and len(e.child_order_ids) == 1 and e.filled == 0
        finally:
            await w.close()

    asyncio.run(body())


def test_specs_round_trip_exactly_and_policies_are_checked(tmp_path: Path) -> None:
    from fractions import Fraction

    from polyoms.algos.adaptive import AdaptivePricing, AdaptiveSpec
    from polyoms.algos.microprice import MicroPriceSpec
    from polyoms.algos.sizing import KellySizing
    from polyoms.algos.urgency import Urgency

    specs = [
        IcebergSpec("t", Side.BUY, m(10), m("0.5"), display=m(5), adaptive=AdaptivePricing(limit=m("0.6"))),
        AdaptiveSpec("t", Side.SELL, m("0.4"), m(10), urgency=Urgency.HIGH, timeout_ms=9_000),
        MicroPriceSpec("t", Side.BUY, m("0.5"), kelly=KellySizing(Fraction(3, 5), Fraction(1, 3))),
        MultiLegSpec((LegSpec("a", m(5), m("0.4")), LegSpec("b", m(5), m("0.5"), Side.SELL))),
        OrderSpec.limit("t", Side.BUY, m("0.5"), m(5)),
    ]
    for spec in specs:
        assert decode_spec(encode_spec(spec, Fraction(1, 3))) == (spec, Fraction(1, 3))
    # The daemon's per-parent override: a param of every algo, checked, and not part of the spec.
    params = {"display": "5", "on_restart": "Resume"}
    assert on_restart_of(params) == "resume" and on_restart_of({}) is None
    assert build_spec("iceberg", "t", Side.BUY, m(10), "0.5", params) == build_spec(
        "iceberg", "t", Side.BUY, m(10), "0.5", {"display": "5"}
    )
    with pytest.raises(InputError, match="on_restart"):
        on_restart_of({"on_restart": "later"})

    async def body() -> None:
        w = await journaled_world(tmp_path / "j.sqlite")
        try:
            with pytest.raises(AlgoConfigError, match="on_restart"):
                await w.parents.start(OrderSpec.limit(w.yes(ALPHA), Side.BUY, m("0.4"), m(5)), on_restart="later")
            assert w.parents.list() == [] and w.engine.state.journal.parents() == []  # type: ignore[union-attr]
            with pytest.raises(AlgoConfigError, match="on_restart"):
                ParentManager(w.manager, clock=w.clock, book_source=ExchangeBooks(w.exchange), on_restart="maybe")
        finally:
            await w.close()

    asyncio.run(body())


def test_ids_continue_past_the_journal_even_without_recover(tmp_path: Path) -> None:
    """A manager over a recovered OMS numbers its parents past the journal's, recover() called or not."""
    path = tmp_path / "journal.sqlite"

    async def body() -> None:
        w = await journaled_world(path)
        ids = [await w.parents.start(OrderSpec.limit(w.yes(ALPHA), Side.BUY, m("0.30"), m(5))) for _ in range(3)]
        assert ids == ["order-1", "order-2", "order-3"]
        w = await crash_and_restart(w, path, "interrupt")
        try:
            assert await w.parents.start(OrderSpec.limit(w.yes(ALPHA), Side.BUY, m("0.30"), m(5))) == "order-4"
        finally:
            await w.close()
        j = Journal(path)
        try:
            assert [r.no for r in j.parents()] == [1, 2, 3, 4]
        finally:
            j.close()

    asyncio.run(body())


def test_a_parent_journaled_under_an_older_name_recovers_under_the_registered_one(tmp_path: Path) -> None:
    """Journals written before the catalog hold kind "microprice" (ids "microprice-<n>"): such a parent
    recovers and resumes as a micro-price parent under its own id; new ids use the registered name."""
    from polyoms.algos.base import Action
    from polyoms.algos.microprice import MicroPriceSpec
    from polyoms.oms.journal import ParentRecord

    path = tmp_path / "journal.sqlite"

    async def body() -> None:
        w = await journaled_world(path)
        spec = MicroPriceSpec(w.yes(ALPHA), Side.BUY, m("0.50"), m(10))
        old = ParentRecord(
            parent_id="microprice-1",
            no=1,
            family="algo",
            kind="microprice",
            spec=encode_spec(spec),
            on_restart="resume",
            started_ms=w.clock.now_ms(),
        )
        journal = w.engine.state.journal
        assert journal is not None
        await w.engine.call(lambda _s: journal.commit_parent(old))
        w = await crash_and_restart(w, path, "interrupt")
        try:
            assert await w.parents.recover() == ["microprice-1"]
            await w.parents.settle()
            st = w.parents.status("microprice-1")
            assert (st.kind, st.state, st.restarts) == ("micro-price", P.WORKING, 1)
            assert any(d.action is Action.RESUME for d in st.decisions)  # started again through the catalog
            nxt = await w.parents.start(MicroPriceSpec(w.yes(BETA), Side.BUY, m("0.40"), m(10)))
            assert nxt == "micro-price-2"
            recs = {r.parent_id: r for r in w.engine.state.journal.parents()}  # type: ignore[union-attr]
            assert recs["microprice-1"].kind == "micro-price"  # written again under the registered name
            for pid in (old.parent_id, nxt):
                await w.parents.cancel(pid)
            await w.wait(10_000)
        finally:
            await w.close()

    asyncio.run(body())
