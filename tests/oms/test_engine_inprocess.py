"""The OMS engine against the local exchange in process, on a virtual clock (the backtest venue).

User events reach the engine from the exchange's listener, rendered in the venue's JSON and decoded by
the protocol decoder (`venues.inprocess`). The helpers here are shared with the crash test.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from polyoms.core.clock import VirtualClock
from polyoms.core.enums import Side
from polyoms.core.errors import VenueUnavailableError
from polyoms.core.units import MICRO
from polyoms.core.user_events import TradeStatus
from polyoms.core.venue import UserEvent
from polyoms.exchange.api.faults import FaultConfig
from polyoms.exchange.api.runner import build_service
from polyoms.exchange.api.service import SimService
from polyoms.exchange.markets import MarketSpec
from polyoms.exchange.settlement import SettlementConfig
from polyoms.oms.engine import Engine, RiskConfig
from polyoms.oms.errors import DuplicateIntentError, RiskLimitError, TradingHaltedError
from polyoms.oms.fills import FillTier
from polyoms.oms.inputs import FillUpdate, Notification, OrderUpdate
from polyoms.oms.journal import open_journal
from polyoms.oms.manager import OrderManager
from polyoms.oms.oms_state import OmsState
from polyoms.oms.risk import BookQuote, MarketRules, RiskLimits
from polyoms.oms.state import OrderState
from polyoms.polymarket.client import Wallet
from polyoms.polymarket.protocol.order import OrderBuilder
from polyoms.venues.inprocess import InProcessVenue
from polyoms.venues.polymarket_orders import prepared

S = OrderState
KEY_US = "0x7c852118294e51e653712a81e05800f419141751be58f605c371e15141b007a6"
KEY_THEM = "0x47e179ec197488593b187f80a00eb0da91f1b9d0b13f8733639f19c30a34926a"
START_MS = 1_777_000_000_000
CASH = 1_000 * MICRO
SHARES = 200 * MICRO


@dataclass
class Rig:
    clock: VirtualClock
    service: SimService
    market: MarketSpec
    us: Wallet
    builder: OrderBuilder
    venue: InProcessVenue
    them: InProcessVenue
    them_builder: OrderBuilder
    journal: Path

    @property
    def yes(self) -> str:
        return self.market.yes_token_id

    @property
    def no(self) -> str:
        return self.market.no_token_id

    def step(self, ms: int) -> None:
        """Time passes at the exchange: settlement, expiry, the heartbeat dead-man switch."""
        self.clock.advance(ms)
        self.service.tick()
        self.service.exchange.advance()

    def new_engine(self, **kw: Any) -> Engine:
        state = OmsState(self.clock)
        open_journal(self.journal, state)
        state.add_wallet(self.us.address, [self.venue.owner])
        state.set_balance(self.us.address, cash=CASH, positions={self.yes: SHARES, self.no: SHARES})
        return Engine(state, self.venue, markets=self.token_markets(), **kw)

    def token_markets(self) -> dict[str, str]:
        return {t: self.market.condition_id for t in self.market.token_ids}

    async def theirs(self, side: Side, price: str, size: str, token: str | None = None) -> None:
        order = self.them_builder.limit(token or self.yes, side, price, size, tick=self.market.tick)
        (out,) = await self.them.submit([prepared(order)])
        assert out.ack is not None, out


def rig(tmp_path: Path, *, seed: int = 1, failure_rate: float = 0.0, lose: float = 0.0) -> Rig:
    clock = VirtualClock(START_MS)
    faults = FaultConfig(settlement_failure_rate=failure_rate)
    service = build_service(seed=seed, clock=clock, settlement=SettlementConfig(), faults=faults)
    market = next(m for m in service.exchange.markets() if m.tick.text == "0.01" and m.fee.rate_num == 0)
    us, them = Wallet.from_key(KEY_US, name="us"), Wallet.from_key(KEY_THEM, name="them")
    service.fund(us.address, CASH, {market.yes_token_id: SHARES, market.no_token_id: SHARES})
    service.fund(them.address, 100 * CASH, {t: 100 * SHARES for t in market.token_ids})
    builder = us.order_builder()
    venue = InProcessVenue(service, us.address, builder=builder, seed=seed, lose_answer_rate=lose)
    other = InProcessVenue(service, them.address, seed=seed + 1)
    return Rig(clock, service, market, us, builder, venue, other, them.order_builder(), tmp_path / "j.db")


def drain_queue(q: asyncio.Queue[Notification]) -> list[Notification]:
    out = []
    while not q.empty():
        out.append(q.get_nowait())
    return out


def assert_ledger_matches_exchange(r: Rig, engine: Engine) -> None:
    lg = engine.state.ledger(r.us.address)
    bal = r.service.exchange.balances(r.us.address)
    assert (lg.prov_in, lg.prov_out, lg.reserved) == (0, 0, 0)
    assert lg.cash == bal.pusd
    for token in r.market.token_ids:
        pos = lg.positions[token]
        assert (pos.confirmed, pos.prov_in, pos.prov_out) == (bal.token(token).balance, 0, 0)
    assert engine.state.check_invariants() == []


def run(coro: Any) -> Any:
    return asyncio.run(coro)


# --- tests ----------------------------------------------------------------------------------------


def test_submit_rest_fill_confirm_and_cancel(tmp_path: Path) -> None:
    r = rig(tmp_path)

    async def body() -> None:
        engine = r.new_engine()
        mgr = OrderManager(engine, actor="algo-1")
        async with engine:
            events = mgr.subscribe()
            a = await mgr.submit_limit(r.yes, "BUY", "0.40", "20", tick="0.01", market=r.market.condition_id)
            b = await mgr.submit_limit(r.yes, "BUY", "0.30", "10", tick="0.01")
            assert mgr.status(b).state is S.SUBMITTING  # returned at once, before the answer
            await engine.drain()
            assert mgr.status(a).state is S.LIVE and mgr.status(b).state is S.LIVE
            await r.theirs(Side.SELL, "0.40", "5")
            await engine.drain()
            st = mgr.status(a)
            assert st.state is S.PARTIALLY_FILLED and st.filled == 5 * MICRO
            assert [f.tier for f in st.fills] == [FillTier.PROVISIONAL]
            r.step(15_000)
            await engine.drain()
            assert [f.tier for f in mgr.status(a).fills] == [FillTier.CONFIRMED]
            await mgr.cancel(a)
            await mgr.cancel_all()
            await engine.drain()
            assert mgr.status(a).state is S.CANCELLED and mgr.status(b).state is S.CANCELLED
            reasons = [h.reason for h in mgr.status(a).history]
            assert reasons[0] == "intent journaled" and "cancel requested" in reasons
            assert any("matched=5000000" in x for x in reasons) and "CANCELED" in reasons[-1]
            notes = drain_queue(events)
            assert any(isinstance(n, FillUpdate) and n.change == "confirmed" and n.owner == "algo-1" for n in notes)
            assert {s.order_id for s in mgr.list()} == {a, b} and mgr.list(open_only=True) == []
            assert all(n == 1 for n in r.venue.posts.values()) and len(r.venue.posts) == 2
            (batch,) = await engine.reconcile()
            assert batch.clean, batch.diffs
        assert_ledger_matches_exchange(r, engine)

    run(body())


def test_batch_submission_has_per_order_outcomes(tmp_path: Path) -> None:
    r = rig(tmp_path)

    async def body() -> None:
        engine = r.new_engine()
        async with engine:
            good = [r.builder.limit(r.yes, "BUY", f"0.{10 + i}", "5", tick="0.01") for i in range(16)]
            too_big = r.builder.limit(r.no, "SELL", "0.90", "5000", tick="0.01")  # more shares than we have
            ids = await engine.submit([prepared(o) for o in (*good, too_big)])
            await engine.drain()
            states = [engine.state.order(i).state for i in ids]
            assert states[:16] == [S.LIVE] * 16 and states[16] is S.REJECTED
            assert type(engine.errors[too_big.order_id]).__name__ == "InsufficientBalanceError"
            assert sorted(r.venue.posts.values()) == [1] * 17  # two POSTs (15 + 2), each order once

    run(body())


def test_settlement_failed_after_matched_restores_ledger_and_notifies(tmp_path: Path) -> None:
    r = rig(tmp_path, failure_rate=1.0)

    async def body() -> None:
        engine = r.new_engine()
        mgr = OrderManager(engine, actor="algo-7")
        async with engine:
            events = mgr.subscribe()
            await r.theirs(Side.SELL, "0.50", "10")
            oid = await mgr.submit_limit(r.yes, "BUY", "0.50", "10", tick="0.01")
            await engine.drain()
            lg = engine.state.ledger(r.us.address)
            assert lg.positions[r.yes].prov_in == 10 * MICRO and mgr.status(oid).filled == 10 * MICRO
            r.step(60_000)
            await engine.drain()
            (fill,) = mgr.status(oid).fills
            assert fill.tier is FillTier.VOIDED and fill.status is TradeStatus.FAILED
            assert mgr.status(oid).filled == 0
            notes = drain_queue(events)
            assert any(isinstance(n, FillUpdate) and n.change == "voided" and n.owner == "algo-7" for n in notes)
        assert lg.cash == CASH and lg.positions[r.yes].confirmed == SHARES
        assert_ledger_matches_exchange(r, engine)

    run(body())


class Scrambler:
    """Between the venue and the engine: duplicates some user events, holds some back and releases them
    later in a shuffled order."""

    def __init__(self, sink: Callable[[UserEvent], None], rng: random.Random) -> None:
        self.sink, self.rng, self.held = sink, rng, list[UserEvent]()
        self.duplicated = 0

    def __call__(self, ev: UserEvent) -> None:
        if self.rng.random() < 0.3:
            self.held.append(ev)
        else:
            self.sink(ev)
        if self.rng.random() < 0.3:
            self.duplicated += 1
            self.sink(ev)

    def release(self) -> None:
        self.rng.shuffle(self.held)
        held, self.held = self.held, []
        for ev in held:
            self.sink(ev)


@pytest.mark.parametrize("seed", range(3))
def test_duplicated_and_reordered_user_events(tmp_path: Path, seed: int) -> None:
    r = rig(tmp_path, seed=seed, failure_rate=0.3)
    rng = random.Random(seed)

    async def body() -> None:
        engine = r.new_engine()
        async with engine:
            scrambler = Scrambler(engine._on_user_event, rng)
            r.venue.set_user_sink(scrambler)
            for i in range(12):
                side = Side.BUY if i % 2 else Side.SELL
                price = "0.45" if side is Side.BUY else "0.55"
                await engine.submit([prepared(r.builder.limit(r.yes, side, price, "10", tick="0.01"))])
                await engine.drain()
                await r.theirs(Side.SELL if side is Side.BUY else Side.BUY, price, "6")
                r.step(1_000)
                if rng.random() < 0.4:
                    scrambler.release()
                await engine.drain()
            await engine.cancel_all()
            await engine.drain()
            r.step(120_000)
            scrambler.release()
            await engine.drain()
            assert scrambler.duplicated > 0
            assert engine.state.open_orders() == []
            (batch,) = await engine.reconcile()
            assert batch.clean, batch.diffs  # the events alone got everything right
        assert_ledger_matches_exchange(r, engine)
        assert any(f.tier is FillTier.VOIDED for f in engine.state.fills.values()) or seed == 1

    run(body())


def test_lost_answer_makes_unknown_and_evidence_resolves_it(tmp_path: Path) -> None:
    r = rig(tmp_path, lose=1.0)

    async def body() -> None:
        engine = r.new_engine(unknown_grace_ms=5_000)
        mgr = OrderManager(engine)
        async with engine:
            r.venue.set_user_sink(None)  # no user stream either: only queries can tell
            oid = await mgr.submit_limit(r.yes, "BUY", "0.40", "10", tick="0.01")
            await engine.drain()
            assert mgr.status(oid).state is S.UNKNOWN
            with pytest.raises(TradingHaltedError) as info:
                await mgr.submit_limit(r.yes, "BUY", "0.41", "10", tick="0.01")
            assert info.value.context["rule"] == "unknown_order"
            assert await engine.resolve_unknown() == []
            assert mgr.status(oid).state is S.LIVE  # GET /data/order found it resting
            assert r.venue.posts[oid] == 1 and len(r.venue.posts) == 1  # never re-sent
            assert engine.admission_errors() == []

    run(body())


def test_unknown_order_that_never_arrived_is_rejected_after_the_grace(tmp_path: Path) -> None:
    r = rig(tmp_path)

    async def body() -> None:
        engine = r.new_engine(unknown_grace_ms=5_000)
        async with engine:
            order = r.builder.limit(r.yes, "BUY", "0.40", "10", tick="0.01")

            async def lost(orders: Any) -> Any:
                raise VenueUnavailableError("connection reset")  # untyped by the adapter: unknown

            r.venue.submit = lost  # type: ignore[method-assign]
            await engine.submit([prepared(order)])
            await engine.drain()
            assert engine.state.order(order.order_id).state is S.UNKNOWN
            assert await engine.resolve_unknown() == [order.order_id]  # too young to conclude
            r.step(6_000)
            assert await engine.resolve_unknown() == []
            assert engine.state.order(order.order_id).state is S.REJECTED
            assert r.service.exchange.get_order(order.order_id) is None

    run(body())


def test_heartbeat_loss_closes_admission_until_resynced(tmp_path: Path) -> None:
    r = rig(tmp_path)

    async def body() -> None:
        engine = r.new_engine()
        mgr = OrderManager(engine)
        async with engine:
            assert await engine.heartbeat_once()
            oid = await mgr.submit_limit(r.yes, "BUY", "0.40", "10", tick="0.01")
            await engine.drain()
            real = r.venue.heartbeat

            async def down() -> str:
                raise VenueUnavailableError("heartbeat: 503")

            r.venue.heartbeat = down  # type: ignore[method-assign]
            r.venue.set_user_sink(None)  # the stream is down too: the cancel is not seen
            assert not await engine.heartbeat_once()
            assert engine.flags.heartbeat_failed and engine.presumed_cancelled == {oid}
            with pytest.raises(TradingHaltedError) as info:
                await mgr.submit_limit(r.yes, "BUY", "0.41", "10", tick="0.01")
            assert info.value.context["rule"] == "heartbeat"
            r.step(16_000)  # the venue's dead-man switch fires
            assert r.service.exchange.get_order(oid).status.startswith("CANCEL")  # type: ignore[union-attr]
            assert mgr.status(oid).state is S.LIVE  # no evidence yet
            r.venue.heartbeat = real  # type: ignore[method-assign]
            r.venue.set_user_sink(engine._on_user_event)
            assert await engine.heartbeat_once()  # back: resync, then admission reopens
            assert mgr.status(oid).state is S.CANCELLED
            assert not engine.flags.heartbeat_failed and engine.presumed_cancelled == set()
            await mgr.submit_limit(r.yes, "BUY", "0.41", "10", tick="0.01")

    run(body())


def test_post_only_window_refuses_takers_with_typed_errors(tmp_path: Path) -> None:
    r = rig(tmp_path)

    async def body() -> None:
        engine = r.new_engine()
        async with engine:
            r.service.faults.update({"restart_window_s": 0, "post_only_window_s": 60})
            r.service.faults.restart(r.clock.now_ms())
            taker = r.builder.limit(r.yes, "BUY", "0.40", "10", tick="0.01")
            maker = r.builder.limit(r.yes, "BUY", "0.39", "10", tick="0.01", post_only=True)
            await engine.submit([prepared(taker), prepared(maker)])
            await engine.drain()
            assert engine.state.order(taker.order_id).state is S.REJECTED
            assert type(engine.errors[taker.order_id]).__name__ == "PostOnlyModeError"
            assert engine.state.order(maker.order_id).state is S.LIVE
            assert r.venue.posts == {taker.order_id: 1, maker.order_id: 1}

    run(body())


def test_the_same_order_is_never_sent_twice(tmp_path: Path) -> None:
    r = rig(tmp_path)

    async def body() -> None:
        engine = r.new_engine()
        async with engine:
            order = r.builder.limit(r.yes, "BUY", "0.40", "10", tick="0.01")
            await engine.submit([prepared(order)])
            await engine.drain()
            with pytest.raises(DuplicateIntentError):
                await engine.submit([prepared(order)])  # a caller "retrying" after a timeout
            await engine.drain()
            assert r.venue.posts == {order.order_id: 1}

    run(body())


def test_manager_event_stream_and_risk_refusals(tmp_path: Path) -> None:
    r = rig(tmp_path)
    quotes: dict[str, BookQuote | None] = {r.yes: BookQuote(390_000, 410_000), r.no: None}
    risk = RiskConfig(
        markets={r.market.condition_id: MarketRules(r.market.condition_id, r.market.token_ids, fee_rate_bps=0)},
        quote=quotes.get,
        limits=RiskLimits(max_order_notional=50 * MICRO),
    )

    async def body() -> None:
        engine = r.new_engine(risk=risk)
        mgr = OrderManager(engine, actor="algo-3")
        books: list[object] = []
        engine.market_handlers.append(books.append)
        async with engine:
            engine.market_event({"event_type": "book", "asset_id": r.yes})
            await engine.drain()
            assert books == [{"event_type": "book", "asset_id": r.yes}]
            seen: list[Notification] = []

            async def consume() -> None:
                async for n in mgr.events():
                    seen.append(n)

            consumer = asyncio.create_task(consume())
            await asyncio.sleep(0)
            oid = await mgr.submit_limit(r.yes, "BUY", "0.40", "10", tick="0.01")
            with pytest.raises(RiskLimitError) as too_big:
                await mgr.submit_limit(r.yes, "BUY", "0.40", "200", tick="0.01")
            assert too_big.value.context["rule"] == "max_order_notional"
            with pytest.raises(TradingHaltedError) as no_book:
                await mgr.submit_limit(r.no, "BUY", "0.40", "10", tick="0.01")
            assert no_book.value.context["rule"] == "untrusted_book"
            await engine.drain()
            await asyncio.sleep(0)
            consumer.cancel()
            assert [(n.order_id, n.to_state) for n in seen if isinstance(n, OrderUpdate)] == [(oid, S.LIVE)]
            assert list(engine.state.orders) == [oid] and list(r.venue.posts) == [oid]  # refusals: nothing sent

    run(body())


def test_maintenance_timer_resolves_unknown_orders_within_bounded_time(tmp_path: Path) -> None:
    r = rig(tmp_path, lose=1.0)

    async def body() -> None:
        engine = r.new_engine(unknown_grace_ms=5_000)
        slept: list[float] = []

        async def virtual_sleep(s: float) -> None:
            slept.append(s)
            r.step(int(s * 1000))
            await asyncio.sleep(0)

        async with engine:
            r.venue.set_user_sink(None)
            order = r.builder.limit(r.yes, "BUY", "0.40", "10", tick="0.01")
            await engine.submit([prepared(order)])
            await engine.drain()
            assert engine.state.unknown == {order.order_id}
            timer = asyncio.create_task(
                engine.run_maintenance(interval_s=1.0, reconcile_every_s=30, sleep=virtual_sleep)
            )
            while engine.state.unknown and len(slept) < 20:
                await asyncio.sleep(0)
            timer.cancel()
            assert engine.state.order(order.order_id).state is S.LIVE and len(slept) <= 2
            assert r.venue.posts == {order.order_id: 1}

    run(body())


def test_heartbeat_task_and_stream_gap(tmp_path: Path) -> None:
    r = rig(tmp_path)

    async def body() -> None:
        engine = r.new_engine()
        beats: list[float] = []

        async def virtual_sleep(s: float) -> None:
            beats.append(s)
            if len(beats) >= 4:
                raise asyncio.CancelledError
            r.step(int(s * 1000))

        async with engine:
            with pytest.raises(asyncio.CancelledError):
                await engine.run_heartbeats(5.0, sleep=virtual_sleep)
            assert beats == [5.0] * 4 and r.service.heartbeats.active(r.venue.caller.address.lower())
            (oid,) = await engine.submit([prepared(r.builder.limit(r.yes, "BUY", "0.40", "10", tick="0.01"))])
            await engine.drain()
            engine.stream_gapped("socket closed")
            r.venue.set_user_sink(None)  # what happens now is not heard
            await r.theirs(Side.SELL, "0.40", "6")
            await engine.drain()
            assert [e.context["rule"] for e in engine.admission_errors()] == ["user_stream"]
            assert engine.state.order(oid).filled == 0
            r.venue.set_user_sink(engine._on_user_event)
            await engine.stream_live()  # backfilled by reconciliation, then admission reopens
            assert engine.admission_errors() == []
            o = engine.state.order(oid)
            assert o.state is S.PARTIALLY_FILLED and o.filled == 6 * MICRO

    run(body())
