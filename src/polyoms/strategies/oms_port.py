"""The strategy manager's `OrderPort` over the OMS: requests prepared by the venue, sent through the engine."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from polyoms.core.venue import Instrument, OrderRequest
from polyoms.oms.manager import OrderManager


class ManagerPort:
    """Places a strategy's requests as one batch under its `actor` (how the manager finds its own
    orders again) and cancels by id. `instruments`: token → the rules its orders are prepared with."""

    def __init__(self, manager: OrderManager, instruments: Mapping[str, Instrument], *, actor: str) -> None:
        self.manager = manager
        self.instruments = instruments
        self.actor = actor

    async def place(self, requests: Sequence[OrderRequest]) -> list[str]:
        if not requests:
            return []
        prepared = [self.manager.prepare(r, self.instruments[r.token_id]) for r in requests]
        markets = {self.instruments[r.token_id].market for r in requests}
        market = markets.pop() if len(markets) == 1 else ""
        return await self.manager.submit_many(prepared, market=market, actor=self.actor)

    async def cancel(self, order_ids: Sequence[str]) -> None:
        if order_ids:  # one request for all of them (the manager only cancels orders it knows)
            await self.manager.engine.cancel(order_ids, self.actor)
