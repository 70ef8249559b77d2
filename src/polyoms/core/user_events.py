"""What the venue says about our own orders and trades (user channel, /data/trades), typed and exact.

Statuses are normalized (the venue sometimes prefixes them `TRADE_STATUS_` / `ORDER_STATUS_`).
Top-level trade fields are the TAKER's view; a maker reads its own fill from `maker_orders`.
"""

from __future__ import annotations

from enum import StrEnum
from typing import TypeVar

import msgspec

from polyoms.core.enums import OrderType, Side
from polyoms.core.errors import MalformedMessageError
from polyoms.core.market_events import TextFrame, UnknownEvent
from polyoms.core.units import Micro

E = TypeVar("E", bound=StrEnum)


def _parse_enum(cls: type[E], value: str, prefix: str, what: str) -> E:
    text = value.strip().upper()
    if text.startswith(prefix):
        text = text[len(prefix) :]
    try:
        return cls(text)
    except ValueError:
        raise MalformedMessageError(f"unknown {what} {value!r}", field=what, value=value) from None


class TradeStatus(StrEnum):
    MATCHED = "MATCHED"
    MINED = "MINED"
    CONFIRMED = "CONFIRMED"
    RETRYING = "RETRYING"
    FAILED = "FAILED"
    # Listed in some of the venue's enums (doc §4.7); never seen on the wire here.
    MATCHED_NOT_BROADCASTED = "MATCHED_NOT_BROADCASTED"

    @classmethod
    def parse(cls, value: str) -> TradeStatus:
        return _parse_enum(cls, value, "TRADE_STATUS_", "trade status")

    @property
    def is_final(self) -> bool:
        """CONFIRMED and FAILED never change again."""
        return self in (TradeStatus.CONFIRMED, TradeStatus.FAILED)


class OrderEventType(StrEnum):
    PLACEMENT = "PLACEMENT"
    UPDATE = "UPDATE"
    CANCELLATION = "CANCELLATION"

    @classmethod
    def parse(cls, value: str) -> OrderEventType:
        return _parse_enum(cls, value, "ORDER_EVENT_TYPE_", "order event type")


class OrderStatus(StrEnum):
    LIVE = "LIVE"
    MATCHED = "MATCHED"
    DELAYED = "DELAYED"
    UNMATCHED = "UNMATCHED"
    CANCELED = "CANCELED"

    @classmethod
    def parse(cls, value: str) -> OrderStatus:
        text = value.strip().upper()
        if text.endswith("CANCELLED"):  # both spellings occur in the venue's texts
            text = text[: -len("CANCELLED")] + "CANCELED"
        return _parse_enum(cls, text, "ORDER_STATUS_", "order status")


class TraderSide(StrEnum):
    TAKER = "TAKER"
    MAKER = "MAKER"

    @classmethod
    def parse(cls, value: str) -> TraderSide:
        return _parse_enum(cls, value, "", "trader side")


class OrderEvent(msgspec.Struct, frozen=True, gc=False, array_like=True):
    """User channel `order`: PLACEMENT, UPDATE (size_matched grew) or CANCELLATION.

    `original_size` is in shares, except for market BUY orders where the venue reports the pUSD
    amount (doc §6.3). `created_at` is in seconds, `timestamp_ms` in milliseconds.
    """

    type: OrderEventType
    id: str
    market: str
    asset_id: str
    side: Side
    price: Micro
    original_size: Micro
    size_matched: Micro
    status: OrderStatus
    owner: str = ""
    order_owner: str = ""
    outcome: str = ""
    associate_trades: tuple[str, ...] = ()
    order_type: OrderType | None = None
    expiration: int = 0
    maker_address: str = ""
    created_at: int | None = None
    timestamp_ms: int | None = None


class MakerOrderFill(msgspec.Struct, frozen=True, gc=False, array_like=True):
    """One maker order matched by a trade. Its token, side and price can differ from the taker's
    (a complementary-token maker in a MINT/MERGE match); older messages omit `side`."""

    order_id: str
    matched_amount: Micro
    price: Micro
    asset_id: str
    owner: str = ""
    maker_address: str = ""
    fee_rate_bps: int | None = None
    outcome: str = ""
    outcome_index: int | None = None
    side: Side | None = None


class TradeEvent(msgspec.Struct, frozen=True, gc=False, array_like=True):
    """User channel `trade` and a /data/trades item; each status change re-sends the whole trade.

    Times: `match_time` and `last_update` are seconds; `timestamp_ms` is milliseconds (the venue sends
    this field in seconds in some messages and milliseconds in others; the decoder normalizes).
    """

    id: str
    taker_order_id: str
    market: str
    asset_id: str
    side: Side
    size: Micro
    price: Micro
    status: TradeStatus
    maker_orders: tuple[MakerOrderFill, ...] = ()
    fee_rate_bps: int | None = None
    outcome: str = ""
    owner: str = ""
    trade_owner: str = ""
    maker_address: str = ""
    transaction_hash: str = ""
    bucket_index: int | None = None
    trader_side: TraderSide | None = None
    match_time: int | None = None
    last_update: int | None = None
    timestamp_ms: int | None = None
    err_msg: str = ""

    def fills_of(self, *, owner: str | None = None, maker_address: str | None = None) -> tuple[MakerOrderFill, ...]:
        """The maker entries that belong to us (other users' makers share the array)."""
        want_address = maker_address.lower() if maker_address else None
        return tuple(
            m
            for m in self.maker_orders
            if (owner is None or m.owner == owner) and (want_address is None or m.maker_address.lower() == want_address)
        )


UserEvent = OrderEvent | TradeEvent | UnknownEvent | TextFrame
