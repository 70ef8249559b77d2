"""The order manager: the OMS as algos, the CLI and the dashboard see it.

`place(request, instrument)` has the venue adapter prepare (sign) the order, journals it and returns its id
(the sending runs afterwards, in the engine's I/O). The outcome arrives as notifications (`subscribe`)
and in `status(id)`: the order's audit trail, its fills and, for a refused order, the venue's typed error.
Admission errors (fail closed: UNKNOWN orders, heartbeat lost, kill switch...) are raised before anything
is prepared, journaled or sent.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

from polyoms.core.enums import OrderType, Side
from polyoms.core.errors import PolyomsError
from polyoms.core.units import Micro, tick_size, to_micro
from polyoms.core.venue import Instrument, OrderRequest, PreparedOrder
from polyoms.oms.engine import Engine
from polyoms.oms.errors import UnknownOrderError
from polyoms.oms.fills import Fill
from polyoms.oms.inputs import Notification
from polyoms.oms.state import TERMINAL, AuditEntry, OrderRecord, OrderState


@dataclass(frozen=True, slots=True)
class OrderSnapshot:
    order_id: str
    state: OrderState
    size: Micro
    filled: Micro
    price: Micro
    side: str
    token_id: str
    history: tuple[AuditEntry, ...]
    fills: tuple[Fill, ...]
    error: PolyomsError | None
    pending_cancel: bool

    @property
    def done(self) -> bool:
        return self.state in TERMINAL


class OrderManager:
    def __init__(self, engine: Engine, *, actor: str = "operator") -> None:
        self.engine = engine
        self.actor = actor

    def prepare(self, request: OrderRequest, instrument: Instrument) -> PreparedOrder:
        """The venue adapter's order for `request` (signed, keyed), after the admission check: nothing is
        prepared or signed while admission is closed."""
        errors = self.engine.admission_errors()
        if errors:
            raise errors[0]
        return self.engine.venue.prepare(request, instrument)

    async def place(
        self, request: OrderRequest, instrument: Instrument, *, market: str = "", actor: str | None = None
    ) -> str:
        """Prepare and `submit` one order; its id once journaled."""
        order = self.prepare(request, instrument)
        return await self.submit(order, market=market or instrument.market, actor=actor)

    async def submit(self, order: PreparedOrder, *, market: str = "", actor: str | None = None) -> str:
        """Journal and send one prepared order; its id (its exactly-once key) once journaled."""
        (order_id,) = await self.engine.submit([order], market=market, actor=actor or self.actor)
        return order_id

    async def submit_many(
        self, orders: list[PreparedOrder], *, market: str = "", actor: str | None = None
    ) -> list[str]:
        """A batch (sent at most `MAX_BATCH` per request); one outcome per order, in `status`."""
        return await self.engine.submit(orders, market=market, actor=actor or self.actor)

    async def submit_limit(
        self,
        token_id: str,
        side: Side | str,
        price: str,
        size: str,
        *,
        tick: str,
        market: str = "",
        order_type: OrderType = OrderType.GTC,
        post_only: bool = False,
        neg_risk: bool = False,
        expiration: int = 0,
        actor: str | None = None,
    ) -> str:
        """A limit order from decimal strings on a uniform `tick` grid (`place` with the request built).
        `neg_risk` must be the market's flag on Polymarket: it selects the exchange contract the order is
        signed for (a wrong one is refused as an invalid signature)."""
        grid = tick_size(tick)
        request = OrderRequest(
            token_id=token_id,
            side=Side.parse(side),
            price=to_micro(price, "price"),
            size=to_micro(size, "size"),
            order_type=order_type,
            expiration=expiration,
            post_only=post_only,
        )
        instrument = Instrument(token_id, grid, market, neg_risk=neg_risk, min_size=0, venue=self.engine.venue.name)
        return await self.place(request, instrument, market=market, actor=actor)

    def status(self, order_id: str) -> OrderSnapshot:
        st = self.engine.state
        o: OrderRecord = st.order(order_id)
        return OrderSnapshot(
            order_id=o.order_id,
            state=o.state,
            size=o.size,
            filled=o.filled,
            price=o.price,
            side=o.side.name,
            token_id=o.token_id,
            history=tuple(o.history),
            fills=tuple(st.fills_of(order_id)),
            error=self.engine.errors.get(order_id),
            pending_cancel=o.pending_cancel,
        )

    async def cancel(self, order_id: str, actor: str | None = None) -> None:
        if order_id not in self.engine.state.orders:
            raise UnknownOrderError(f"unknown order {order_id}", order_id=order_id)
        await self.engine.cancel([order_id], actor or self.actor)

    async def cancel_all(self, actor: str | None = None) -> None:
        await self.engine.cancel_all(actor or self.actor)

    def list(self, *, open_only: bool = False) -> list[OrderSnapshot]:
        st = self.engine.state
        ids = [o.order_id for o in (st.open_orders() if open_only else st.orders.values())]
        return [self.status(i) for i in ids]

    async def events(self) -> AsyncIterator[Notification]:
        """Every order/fill update and anomaly from now on (until the consumer stops iterating)."""
        q = self.engine.subscribe()
        try:
            while True:
                yield await q.get()
        finally:
            self.engine.unsubscribe(q)

    def subscribe(self) -> asyncio.Queue[Notification]:
        return self.engine.subscribe()
