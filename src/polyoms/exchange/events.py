"""What the exchange tells the outside world happened: order updates, trades, market changes.

The WebSocket channels are built on these. An `ExchangeOrderEvent` snapshots the fields that change (status,
size matched) and points at the order record for the static ones. Kinds follow the user channel (doc
§6.3): PLACEMENT when an order comes to rest on the book, UPDATE when it matches (for a taker that does
not rest, one UPDATE with its final status), CANCELLATION with a reason.

An `ExchangeTradeEvent` is sent when a trade is matched and again at every settlement status change (MINED,
CONFIRMED, RETRYING, FAILED), as the venue re-sends the full trade with the same id; `status` and
`transaction_hash` are snapshots, the rest is read from the trade record (fixed after the match, but
for `err_msg`, set before the FAILED event).

Market events: `TickSizeChangeEvent` after a market's tick changed (orders off the new grid have
already been cancelled, with CANCELLATION events, and the book re-indexed: render fresh `book`
snapshots for both tokens after the `tick_size_change` messages); `MarketResolvedEvent` after a market
resolved (its orders cancelled, the market closed, every share redeemed).

Listeners should ignore event types they do not know: more may be added.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from polyoms.core.units import TickSize
from polyoms.exchange.markets import MarketSpec
from polyoms.exchange.orders import Order
from polyoms.exchange.trades import Trade

PLACEMENT: Final = "PLACEMENT"
UPDATE: Final = "UPDATE"
CANCELLATION: Final = "CANCELLATION"


class ExchangeOrderEvent:
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
        order = f"{self.order.order_id[:10]}… {self.status} matched={self.size_matched}"
        return f"ExchangeOrderEvent({self.kind} {order}{extra})"


class ExchangeTradeEvent:
    __slots__ = ("status", "timestamp_ms", "trade", "transaction_hash")

    def __init__(self, trade: Trade, timestamp_ms: int) -> None:
        self.trade = trade
        self.timestamp_ms = timestamp_ms
        self.status = trade.status
        self.transaction_hash = trade.transaction_hash

    def __repr__(self) -> str:
        return f"ExchangeTradeEvent({self.status} {self.trade!r})"


class TickSizeChangeEvent:
    """A market's minimum tick changed (both tokens: the NO book mirrors the YES one)."""

    __slots__ = ("canceled", "market", "new_tick", "no_token_id", "old_tick", "timestamp_ms", "yes_token_id")

    def __init__(
        self, spec: MarketSpec, old_tick: TickSize, new_tick: TickSize, canceled: tuple[str, ...], timestamp_ms: int
    ) -> None:
        self.market = spec.condition_id
        self.yes_token_id = spec.yes_token_id
        self.no_token_id = spec.no_token_id
        self.old_tick = old_tick
        self.new_tick = new_tick
        self.canceled = canceled
        """Ids of the orders cancelled because their price was off the new grid."""
        self.timestamp_ms = timestamp_ms

    @property
    def token_ids(self) -> tuple[str, str]:
        return (self.yes_token_id, self.no_token_id)

    def __repr__(self) -> str:
        return f"TickSizeChangeEvent({self.market[:10]}… {self.old_tick.text} -> {self.new_tick.text})"


class MarketResolvedEvent:
    """A market resolved: `winning_token_id` redeems 1 pUSD per share, the other token nothing."""

    __slots__ = ("spec", "timestamp_ms", "winning_outcome", "winning_token_id")

    def __init__(self, spec: MarketSpec, winning_token_id: str, timestamp_ms: int) -> None:
        self.spec = spec
        """The market as resolved (closed, winner set): question, slug, token ids, outcomes."""
        self.winning_token_id = winning_token_id
        self.winning_outcome = spec.outcome_of(winning_token_id)
        self.timestamp_ms = timestamp_ms

    @property
    def market(self) -> str:
        return self.spec.condition_id

    def __repr__(self) -> str:
        return f"MarketResolvedEvent({self.market[:10]}… winner={self.winning_outcome})"


class NewMarketEvent:
    """A market was listed while the exchange runs."""

    __slots__ = ("spec", "timestamp_ms")

    def __init__(self, spec: MarketSpec, timestamp_ms: int) -> None:
        self.spec = spec
        self.timestamp_ms = timestamp_ms

    def __repr__(self) -> str:
        return f"NewMarketEvent({self.spec.slug})"


Event = ExchangeOrderEvent | ExchangeTradeEvent | TickSizeChangeEvent | MarketResolvedEvent | NewMarketEvent
Listener = Callable[[Event], None]


class EventLog:
    """A listener that keeps every event, in order."""

    __slots__ = ("events",)

    def __init__(self) -> None:
        self.events: list[Event] = []

    def __call__(self, event: Event) -> None:
        self.events.append(event)

    def order_events(self, order_id: str | None = None) -> list[ExchangeOrderEvent]:
        return [
            e
            for e in self.events
            if isinstance(e, ExchangeOrderEvent) and (order_id is None or e.order.order_id == order_id)
        ]

    def trade_events(self, trade_id: str | None = None) -> list[ExchangeTradeEvent]:
        return [
            e
            for e in self.events
            if isinstance(e, ExchangeTradeEvent) and (trade_id is None or e.trade.trade_id == trade_id)
        ]

    def market_events(self) -> list[TickSizeChangeEvent | MarketResolvedEvent]:
        return [e for e in self.events if isinstance(e, TickSizeChangeEvent | MarketResolvedEvent)]

    def clear(self) -> None:
        self.events.clear()
