"""What the exchange tells the outside world happened: order updates and trades.

The WebSocket channels are built on these later. An `OrderEvent` snapshots the fields that change
(status, size matched) and points at the order record for the static ones. Kinds follow the user
channel (doc §6.3): PLACEMENT when an order comes to rest on the book, UPDATE when it matches (for a
taker that does not rest, one UPDATE with its final status), CANCELLATION with a reason.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from polyoms.exchange.orders import Order
from polyoms.exchange.trades import Trade

PLACEMENT: Final = "PLACEMENT"
UPDATE: Final = "UPDATE"
CANCELLATION: Final = "CANCELLATION"


class OrderEvent:
    __slots__ = ("kind", "order", "reason", "size_matched", "status", "timestamp_ms", "trade_ids")

    def __init__(
        self,
        kind: str,
        order: Order,
        timestamp_ms: int,
        trade_ids: tuple[str, ...] = (),
        reason: str = "",
    ) -> None:
        self.kind = kind
        self.order = order
        self.status = order.status
        self.size_matched = order.size_matched
        self.timestamp_ms = timestamp_ms
        self.trade_ids = trade_ids
        self.reason = reason

    def __repr__(self) -> str:
        extra = f" reason={self.reason!r}" if self.reason else ""
        return f"OrderEvent({self.kind} {self.order.order_id[:10]}… {self.status} matched={self.size_matched}{extra})"


class TradeEvent:
    __slots__ = ("timestamp_ms", "trade")

    def __init__(self, trade: Trade, timestamp_ms: int) -> None:
        self.trade = trade
        self.timestamp_ms = timestamp_ms

    def __repr__(self) -> str:
        return f"TradeEvent({self.trade!r})"


Event = OrderEvent | TradeEvent
Listener = Callable[[Event], None]


class EventLog:
    """A listener that keeps every event, in order."""

    __slots__ = ("events",)

    def __init__(self) -> None:
        self.events: list[Event] = []

    def __call__(self, event: Event) -> None:
        self.events.append(event)

    def order_events(self, order_id: str | None = None) -> list[OrderEvent]:
        return [
            e for e in self.events if isinstance(e, OrderEvent) and (order_id is None or e.order.order_id == order_id)
        ]

    def trade_events(self) -> list[TradeEvent]:
        return [e for e in self.events if isinstance(e, TradeEvent)]

    def clear(self) -> None:
        self.events.clear()
