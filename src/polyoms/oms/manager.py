"""The order manager: the OMS as algos, the CLI and the dashboard see it.

`submit(...)` returns the order id as soon as the intent is journaled (the POST runs afterwards, in the
engine's I/O); the outcome arrives as notifications (`subscribe`) and in `status(id)`, which carries the
order's audit trail, its fills and, for a refused order, the venue's typed error. Admission errors
(fail closed: UNKNOWN orders, heartbeat lost, kill switch...) are raised by `submit` before anything
is journaled or sent.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

from polyoms.core.enums import OrderType, Side
from polyoms.core.errors import PolyomsError
from polyoms.core.units import Micro
from polyoms.oms.engine import Engine
from polyoms.oms.errors import UnknownOrderError
from polyoms.oms.fills import Fill
from polyoms.oms.inputs import Notification
from polyoms.oms.state import TERMINAL, AuditEntry, OrderRecord, OrderState
from polyoms.polymarket.protocol.order import OrderBuilder, SignedOrder


@dataclass(frozen=True, slots=True)
class OrderStatus:
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
    def __init__(self, engine: Engine, builder: OrderBuilder | None = None, *, actor: str = "operator") -> None:
        self.engine = engine
        self.builder = builder
        self.actor = actor

    async def submit(
        self, order: SignedOrder, *, market: str = "", actor: str | None = None, notional: bool = False
    ) -> str:
        """Journal and send one signed order; its id (= its hash) once journaled."""
        (order_id,) = await self.engine.submit([order], market=market, actor=actor or self.actor, notional=notional)
        return order_id

    async def submit_many(self, orders: list[SignedOrder], *, market: str = "", actor: str | None = None) -> list[str]:
        """A batch (sent 15 per POST /orders); one outcome per order, in `status`."""
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
        """Sign a limit order with the manager's builder, then `submit` it. Admission is checked first:
        nothing is signed while admission is closed. `neg_risk` must be the market's flag: it selects the
        exchange contract the order is signed for (a wrong one is refused as an invalid signature)."""
        if self.builder is None:
            raise ValueError("this manager has no order builder: submit signed orders")
        errors = self.engine.admission_errors()
        if errors:
            raise errors[0]
        order = self.builder.limit(
            token_id,
            side,
            price,
            size,
            tick=tick,
            neg_risk=neg_risk,
            order_type=order_type,
            expiration=expiration,
            post_only=post_only,
        )
        return await self.submit(order, market=market, actor=actor)

    def status(self, order_id: str) -> OrderStatus:
        st = self.engine.state
        o: OrderRecord = st.order(order_id)
        return OrderStatus(
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

    def list(self, *, open_only: bool = False) -> list[OrderStatus]:
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
