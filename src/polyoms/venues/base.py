"""The Venue port: everything the OMS engine asks of a venue, and nothing venue-specific.

Adapters: `venues.inprocess` (the local exchange called directly, virtual clock: backtests and fast
tests) and `venues.polymarket` (the async REST client: the real venue, or `polyoms sim` over sockets).
The engine only ever talks to this interface, so the three venues share one code path.

Contract
* `submit(orders)`: at most 15 signed orders, each POSTed at most once (never retried here). One
  `SubmitOutcome` per order in request order: an acknowledgement (`response`), a definite refusal
  (`error`, typed), or an unknown outcome (`unknown`: timeout / 5xx / unreadable answer — the order
  may or may not rest; the engine resolves it from evidence, never by sending again).
* cancels answer with the venue's `canceled` / `not_canceled`.
* queries return the venue's truth typed as the reconciliation reads it (`VenueOrder`, `TradeEvent`).
* user events (`OrderEvent` / `TradeEvent` of `core.user_events`, the very types the user channel
  decodes to) are pushed to the sink set with `set_user_sink`.
* `heartbeat()` keeps the venue's dead-man switch alive; raises on failure.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from polyoms.core.errors import PolyomsError
from polyoms.core.user_events import OrderEvent, TradeEvent
from polyoms.oms.reconcile import VenueOrder
from polyoms.polymarket.client.models import OpenOrder
from polyoms.polymarket.protocol.order import SignedOrder
from polyoms.polymarket.protocol.wire import OrderResponse

UserEvent = OrderEvent | TradeEvent
UserSink = Callable[[UserEvent], None]
MAX_BATCH = 15


@dataclass(frozen=True, slots=True)
class SubmitOutcome:
    """What became of one order of a submission: exactly one of `response`, `error`, `unknown`."""

    order_id: str
    response: OrderResponse | None = None
    error: PolyomsError | None = None
    unknown: str = ""
    """Non-empty (the cause) when the venue may or may not have the order."""


@dataclass(frozen=True, slots=True)
class CancelAnswer:
    canceled: tuple[str, ...] = ()
    not_canceled: dict[str, str] = field(default_factory=dict)


class Venue(Protocol):
    """The port (module doc). `wallet` is the maker address the OMS ledgers; `owner` the API key."""

    @property
    def wallet(self) -> str: ...

    @property
    def owner(self) -> str: ...

    def set_user_sink(self, sink: UserSink | None) -> None: ...

    async def submit(self, orders: Sequence[SignedOrder]) -> list[SubmitOutcome]: ...

    async def cancel(self, order_ids: Sequence[str]) -> CancelAnswer: ...

    async def cancel_all(self) -> CancelAnswer: ...

    async def get_order(self, order_id: str) -> VenueOrder | None: ...

    async def open_orders(self) -> list[VenueOrder]: ...

    async def trades(self, after_s: int | None = None) -> list[TradeEvent]: ...

    async def balances(self, token_ids: Sequence[str]) -> tuple[int, dict[str, int]]:
        """(pUSD, shares per token) of `wallet`, in micro-units."""
        ...

    async def heartbeat(self) -> str: ...

    async def close(self) -> None: ...


def from_open_order(o: OpenOrder) -> VenueOrder:
    """GET /data/order(s) item (the client's typed `OpenOrder`) as the reconciliation reads it."""
    return VenueOrder(
        id=o.id,
        status=o.status,
        market=o.market,
        asset_id=o.asset_id,
        side=o.side,
        price=o.price,
        original_size=o.original_size,
        size_matched=o.size_matched,
        order_type=o.order_type,
        expiration=o.expiration,
        owner=o.owner,
        maker_address=o.maker_address,
        created_at=o.created_at,
    )
