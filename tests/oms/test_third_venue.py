"""The OMS on a venue that is not Polymarket: client order ids as the exactly-once key, fills final at once.

`CidVenue` exists only here. It keys orders by a client id it mints in `prepare`, gives them ids of its
own and cancels only by those (so the OMS must remember them, across a restart too), reports every fill
CONFIRMED (`SettlementModel.IMMEDIATE`) and knows nothing of signing, hashes or pUSD. The OMS, its journal
and its recovery run unchanged through submit, fill, cancel, a crash and a restart.
"""

from __future__ import annotations

import asyncio
import itertools
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import pytest

from polyoms.core.clock import VirtualClock
from polyoms.core.enums import OrderType, Side
from polyoms.core.errors import InvalidPriceError, ReduceOnlyError
from polyoms.core.units import MICRO, TickSize, tick_size
from polyoms.core.user_events import (
    MakerOrderFill,
    OrderEvent,
    OrderEventType,
    OrderStatus,
    TradeEvent,
    TraderSide,
    TradeStatus,
)
from polyoms.core.venue import (
    Ack,
    CancelAnswer,
    Instrument,
    OrderRef,
    OrderReport,
    OrderRequest,
    PreparedOrder,
    PriceBand,
    PriceGrid,
    ReportStatus,
    SettlementModel,
    SubmitOutcome,
    UserSink,
)
from polyoms.oms.engine import Engine, recover_from
from polyoms.oms.fills import FillTier
from polyoms.oms.journal import open_journal
from polyoms.oms.manager import OrderManager
from polyoms.oms.oms_state import OmsState
from polyoms.oms.state import OrderState

WALLET = "acct-7"
START_MS = 1_790_000_000_000
TOKEN = "KXRAIN-26DEC07-T1"
CENT: TickSize = tick_size("0.01")
# Kalshi-style bands: a finer tick in the tails.
GRID = PriceGrid(
    (
        PriceBand(1_000, 99_000, 1_000),
        PriceBand(100_000, 900_000, 10_000),
        PriceBand(901_000, 999_000, 1_000),
    )
)
INSTRUMENT = Instrument(TOKEN, CENT, "KXRAIN-26DEC07", venue="cid", grid=GRID, lot=10_000, min_size=10_000)


class CidVenue:
    """A venue with client order ids, immediate settlement and its own order ids (test-only)."""

    name = "cid"
    settlement = SettlementModel.IMMEDIATE
    expiry_lead_s = 0

    def __init__(self) -> None:
        self._sink: UserSink | None = None
        self._cids = (f"cid-{n}" for n in itertools.count(1))
        self._venue_ids = (f"V{n:06d}" for n in itertools.count(1))
        self.book: dict[str, OrderReport] = {}
        """Resting orders by client id (the venue looks our orders up by it)."""
        self.sent: Counter[str] = Counter()
        self.venue_ids: dict[str, str] = {}
        """The venue's id → our client id."""
        self.history: list[TradeEvent] = []
        self.cash = 100 * MICRO
        self.shares: Counter[str] = Counter()

    @property
    def wallet(self) -> str:
        return WALLET

    @property
    def owner(self) -> str:
        return "key-7"

    def set_user_sink(self, sink: UserSink | None) -> None:
        self._sink = sink

    def prepare(self, request: OrderRequest, instrument: Instrument) -> PreparedOrder:
        instrument.prices.check(request.price)
        cost = request.size * request.price // MICRO
        return PreparedOrder(
            key=request.client_id or next(self._cids),  # the caller's client id, when it gave one
            token_id=request.token_id,
            side=request.side,
            order_type=request.order_type,
            price=request.price,
            size=request.size,
            maker_amount=cost if request.side is Side.BUY else request.size,
            taker_amount=request.size if request.side is Side.BUY else cost,
            post_only=request.post_only,
            reduce_only=request.reduce_only,
            client_id=request.client_id,
            payload={"client_order_id": "pending"},
        )

    async def submit(self, orders: Sequence[PreparedOrder]) -> list[SubmitOutcome]:
        out = []
        for o in orders:
            self.sent[o.key] += 1
            self.book[o.key] = OrderReport(
                id=o.key,
                status=ReportStatus.LIVE,
                market=INSTRUMENT.market,
                asset_id=o.token_id,
                side=o.side,
                price=o.price,
                original_size=o.size,
                size_matched=0,
                order_type=o.order_type,
                owner=self.owner,
                maker_address=WALLET,
            )
            venue_id = next(self._venue_ids)
            self.venue_ids[venue_id] = o.key
            out.append(SubmitOutcome(o.key, ack=Ack(OrderStatus.LIVE, venue_id=venue_id)))
        return out

    def fill(self, key: str, size: int, trade_id: str) -> None:
        """Someone takes `size` of our resting order: one final fill, reported once."""
        o = self.book[key]
        matched = o.size_matched + size
        status = ReportStatus.MATCHED if matched >= o.original_size else ReportStatus.LIVE
        self.book[key] = o = OrderReport(**{**_fields(o), "size_matched": matched, "status": status})
        trade = TradeEvent(
            id=trade_id,
            taker_order_id="someone-else",
            market=o.market,
            asset_id=o.asset_id,
            side=o.side.opposite,
            size=size,
            price=o.price,
            status=TradeStatus.CONFIRMED,
            maker_orders=(MakerOrderFill(key, size, o.price, o.asset_id, self.owner, WALLET, 0, side=o.side),),
            fee_rate_bps=0,
            trader_side=TraderSide.MAKER,  # the top-level fields are the taker's: someone else
            match_time=START_MS // 1000 + len(self.history) + 1,
        )
        self.history.append(trade)
        signed = size if o.side is Side.BUY else -size
        self.shares[o.asset_id] += signed
        self.cash -= signed * o.price // MICRO
        if o.status is ReportStatus.MATCHED:
            del self.book[key]
        if self._sink is not None:
            self._sink(trade)

    async def cancel(self, orders: Sequence[OrderRef]) -> CancelAnswer:
        # This venue knows orders to cancel by its own ids only.
        done = tuple(
            o.key for o in orders if self.venue_ids.get(o.venue_id) == o.key and self.book.pop(o.key, None) is not None
        )
        for k in done:
            if self._sink is not None:
                self._sink(_cancelled(k))
        return CancelAnswer(done, {o.key: "unknown order id" for o in orders if o.key not in done})

    async def cancel_all(self) -> CancelAnswer:
        mine = {key: vid for vid, key in self.venue_ids.items()}
        return await self.cancel([OrderRef(k, mine[k]) for k in list(self.book)])

    async def get_order(self, order_id: str) -> OrderReport | None:
        return self.book.get(order_id)

    async def open_orders(self) -> list[OrderReport]:
        return list(self.book.values())

    async def trades(self, after_s: int | None = None) -> list[TradeEvent]:
        return [t for t in self.history if after_s is None or (t.match_time or 0) >= after_s]

    async def balances(self, token_ids: Sequence[str]) -> tuple[int, dict[str, int]]:
        return self.cash, {t: self.shares[t] for t in token_ids}

    async def heartbeat(self) -> str:
        return "no dead-man switch here"

    async def close(self) -> None:
        self._sink = None


def _fields(o: OrderReport) -> dict[str, object]:
    return {f: getattr(o, f) for f in o.__struct_fields__}


def _cancelled(key: str) -> OrderEvent:
    return OrderEvent(
        type=OrderEventType.CANCELLATION,
        id=key,
        market=INSTRUMENT.market,
        asset_id=TOKEN,
        side=Side.BUY,
        price=0,
        original_size=0,
        size_matched=0,
        status=OrderStatus.CANCELED,
    )


def _engine(path: Path, venue: CidVenue, clock: VirtualClock) -> Engine:
    state = OmsState(clock)
    open_journal(path, state)
    state.add_wallet(WALLET, [venue.owner])
    state.set_balance(WALLET, cash=venue.cash, positions={TOKEN: venue.shares[TOKEN]})
    return Engine(state, venue, markets={TOKEN: INSTRUMENT.market})


async def _settle(engine: Engine) -> None:
    for _ in range(5):
        await engine.drain()
        await asyncio.sleep(0)


def test_a_client_id_venue_runs_the_oms_unchanged(tmp_path: Path) -> None:
    clock = VirtualClock(START_MS)
    venue = CidVenue()
    journal = tmp_path / "cid.db"

    async def first_life() -> tuple[str, str, str]:
        engine = _engine(journal, venue, clock)
        engine.start()
        manager = OrderManager(engine, actor="test")
        try:
            # 0.955 is on this venue's grid (tick 0.001 above 0.90), not on a uniform cent grid.
            fine = await manager.place(
                OrderRequest(token_id=TOKEN, side=Side.BUY, price=955_000, size=10 * MICRO), INSTRUMENT
            )
            rest = await manager.place(
                OrderRequest(token_id=TOKEN, side=Side.BUY, price=400_000, size=20 * MICRO, order_type=OrderType.GTC),
                INSTRUMENT,
            )
            await _settle(engine)
            assert fine.startswith("cid-") and rest.startswith("cid-")
            assert manager.status(fine).state is OrderState.LIVE

            venue.fill(fine, 10 * MICRO, "T1")  # final at once
            venue.fill(rest, 5 * MICRO, "T2")
            await _settle(engine)
            done = manager.status(fine)
            assert done.state is OrderState.FILLED
            assert [f.tier for f in done.fills] == [FillTier.CONFIRMED]
            assert manager.status(rest).state is OrderState.PARTIALLY_FILLED
            pos = engine.state.ledger(WALLET).positions[TOKEN]
            assert (pos.confirmed, pos.prov_in) == (15 * MICRO, 0)  # nothing provisional on this venue
            assert engine.state.ledger(WALLET).cash == 100 * MICRO - (10 * 955_000 + 5 * 400_000) == venue.cash

            cancel_me = await manager.place(
                OrderRequest(token_id=TOKEN, side=Side.BUY, price=300_000, size=10 * MICRO), INSTRUMENT
            )
            await _settle(engine)
            await manager.cancel(cancel_me)
            await _settle(engine)
            assert manager.status(cancel_me).state is OrderState.CANCELLED
            keep = await manager.place(
                OrderRequest(token_id=TOKEN, side=Side.BUY, price=200_000, size=10 * MICRO), INSTRUMENT
            )
            await _settle(engine)
            return fine, rest, keep
        finally:
            await engine.stop()

    fine, rest, keep = asyncio.run(first_life())
    # The crash: the state is gone, the journal and the venue remain. Meanwhile the rest fills.
    venue.fill(rest, 15 * MICRO, "T3")

    async def second_life() -> None:
        engine = await recover_from(journal, venue, clock, markets={TOKEN: INSTRUMENT.market})
        try:
            await _settle(engine)
            manager = OrderManager(engine, actor="test")
            assert manager.status(fine).state is OrderState.FILLED
            recovered = manager.status(rest)
            assert recovered.state is OrderState.FILLED, recovered.history
            assert {f.tier for f in recovered.fills} == {FillTier.CONFIRMED}
            assert engine.state.ledger(WALLET).positions[TOKEN].confirmed == 30 * MICRO
            assert engine.state.check_invariants() == []
            # Exactly once: nothing was sent again; a new order gets a new client id.
            assert set(venue.sent.values()) == {1}
            again = await manager.place(
                OrderRequest(token_id=TOKEN, side=Side.SELL, price=960_000, size=10 * MICRO), INSTRUMENT
            )
            assert again not in (fine, rest, keep) and venue.sent[again] == 1
            # Cancelled by the venue's own id, which the journal kept across the restart.
            assert engine.state.ref(keep).venue_id.startswith("V")
            await manager.cancel(keep)
            await _settle(engine)
            assert manager.status(keep).state is OrderState.CANCELLED
        finally:
            await engine.stop()

    asyncio.run(second_life())


def test_reduce_only_and_client_ids_on_a_venue_without_the_flag(tmp_path: Path) -> None:
    """Reduce-only is the OMS's check, at admission: nothing is journaled or sent for a refused order."""
    clock = VirtualClock(START_MS)
    venue = CidVenue()
    venue.shares[TOKEN] = 12 * MICRO

    async def main() -> None:
        engine = _engine(tmp_path / "ro.db", venue, clock)
        engine.start()
        manager = OrderManager(engine, actor="test")
        try:

            def sell(size: int, **kw: object) -> OrderRequest:
                return OrderRequest(token_id=TOKEN, side=Side.SELL, price=500_000, size=size, reduce_only=True, **kw)

            with pytest.raises(ReduceOnlyError, match="BUY would add"):
                await manager.place(
                    OrderRequest(token_id=TOKEN, side=Side.BUY, price=400_000, size=MICRO, reduce_only=True), INSTRUMENT
                )
            with pytest.raises(ReduceOnlyError, match="exceeds the 12 held"):
                await manager.place(sell(13 * MICRO), INSTRUMENT)
            assert not engine.state.orders and not venue.sent
            first = await manager.place(sell(8 * MICRO, client_id="my-exit-1"), INSTRUMENT)
            assert first == "my-exit-1" and engine.state.order(first).client_tag == "my-exit-1"
            await _settle(engine)
            # The 8 are now reserved by the resting SELL: only 4 remain to reduce with.
            with pytest.raises(ReduceOnlyError, match="exceeds the 4 held"):
                await manager.place(sell(5 * MICRO), INSTRUMENT)
            await manager.place(sell(4 * MICRO), INSTRUMENT)
            assert len(venue.sent) == 2 and venue.sent[first] == 1
        finally:
            await engine.stop()

    asyncio.run(main())


def test_the_grid_refuses_prices_off_its_bands() -> None:
    venue = CidVenue()
    for bad in (955_500, 405_000, 0, 1_000_000):
        with pytest.raises(InvalidPriceError, match="not on the market's price grid"):
            venue.prepare(OrderRequest(token_id=TOKEN, side=Side.BUY, price=bad, size=MICRO), INSTRUMENT)
    assert GRID.round_down(955_500) == 955_000 and GRID.round_up(405_000) == 410_000
    assert GRID.step_at(950_000) == 1_000 and GRID.step_at(500_000) == 10_000
