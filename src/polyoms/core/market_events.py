"""Market data as typed events: what the market channel and the reference feeds tell us.

Venue-neutral and exact: prices and sizes are integer micro-units, sides are `Side`, timestamps
are integers. The protocol layer (`polymarket/protocol/messages.py`) decodes the venue's JSON into
these and encodes them back; the order-book mirror (`core/book.py`) applies them.

One exception, for speed: `PriceChange` (by far the most frequent message) keeps the venue's strings
and exposes the typed values as properties, so that decoding it allocates nothing per entry and the
book mirror can apply it with table lookups (see `PriceLevelChange`).

The structs are frozen and hold no references back to anything (gc=False is safe and makes
creating them on the hot path cheaper).
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from typing import Any, Final, NoReturn

import msgspec

from polyoms.core.enums import Side
from polyoms.core.errors import InputError, MalformedMessageError
from polyoms.core.units import MICRO, PRICE_TEXT, Micro, TickSize, fmt_micro, parse_micro

Level = tuple[Micro, Micro]
"""(price, size) of one price level."""


class BookSnapshot(msgspec.Struct, frozen=True, gc=False):
    """A full book of one token (`book` event, REST /book).

    `bids` and `asks` are kept in the order served, which on the venue is best level LAST
    (bids ascending, asks descending). The optional fields exist only in newer snapshots; their
    presence selects the venue's hash algorithm. `hash_verified` is set by a decoder asked to check
    the hash: True (reproduced), False (a mismatch) or None (not checked or no known algorithm).
    """

    market: str
    asset_id: str
    bids: tuple[Level, ...]
    asks: tuple[Level, ...]
    timestamp_ms: int | None = None
    hash: str = ""
    min_order_size: Micro | None = None
    tick_size: TickSize | None = None
    neg_risk: bool | None = None
    last_trade_price: Micro | None = None
    hash_verified: bool | None = None


class PriceLevelChange(msgspec.Struct, frozen=True, gc=False, omit_defaults=True):
    """One level of one token's book set to a new total size (0 removes the level).

    This struct is also the wire schema of one entry of the current `price_changes[]` format: the venue's
    strings are decoded straight into it and kept (`*_text`), and the typed values are properties
    (`price`, `size`, `side`, `best_bid`, `best_ask`: exact micro-units and `Side`, parsed on access).
    price_change is by far the most frequent message; the book mirror applies the strings directly
    (a table lookup for the price, one int() for the size), so decoding allocates nothing per entry
    beyond what msgspec creates. Build one from typed values with `PriceLevelChange.of`.

    Values are validated when used: a malformed one raises `MalformedMessageError` from its property,
    and the book mirror rejects it (and stops trusting the book). `validate()` checks eagerly.

    `best_bid`/`best_ask` are the venue's best prices after the change (current format only; None when
    not sent). An empty side keeps the venue's markers: best bid 0 = no bids, best ask 1 = no asks.
    `hash` is the venue's hash for the change; what it hashes is unconfirmed (doc §6.2), so it is
    carried but never relied on.
    """

    asset_id: str
    price_text: str = msgspec.field(name="price")
    size_text: str = msgspec.field(name="size")
    side_text: str = msgspec.field(name="side")
    hash: str = ""
    best_bid_text: str | None = msgspec.field(default=None, name="best_bid")
    best_ask_text: str | None = msgspec.field(default=None, name="best_ask")

    @classmethod
    def of(
        cls,
        asset_id: str,
        side: Side,
        price: Micro,
        size: Micro,
        *,
        best_bid: Micro | None = None,
        best_ask: Micro | None = None,
        hash: str = "",
    ) -> PriceLevelChange:
        """From typed values, in the venue's canonical spelling."""
        if not 0 < price < MICRO:
            raise MalformedMessageError(f"price {price} is not inside (0, 1)", field="price", value=price)
        if size < 0:
            raise MalformedMessageError(f"size {size} is negative", field="size", value=size)
        return cls(
            asset_id,
            fmt_micro(price),
            fmt_micro(size),
            side.name,
            hash,
            None if best_bid is None else fmt_micro(best_bid),
            None if best_ask is None else fmt_micro(best_ask),
        )

    @property
    def price(self) -> Micro:
        return price_from_text(self.price_text)

    @property
    def size(self) -> Micro:
        return size_from_text(self.size_text)

    @property
    def side(self) -> Side:
        return side_from_text(self.side_text)

    @property
    def best_bid(self) -> Micro | None:
        return best_from_text(self.best_bid_text, "best_bid", 0)

    @property
    def best_ask(self) -> Micro | None:
        return best_from_text(self.best_ask_text, "best_ask", MICRO)

    def validate(self) -> None:
        """Parse every value now (raises MalformedMessageError)."""
        _ = (self.price, self.size, self.side, self.best_bid, self.best_ask)


class PriceChange(msgspec.Struct, frozen=True, gc=False, tag="price_change", tag_field="event_type"):
    """`price_change`: level updates, normalized from all three wire formats into the current one.

    Also the current format's wire schema (decoded straight, see `PriceLevelChange`). The older formats
    carried one hash per message; it is put on the message's last change, the others get "".
    """

    market: str
    changes: tuple[PriceLevelChange, ...] = msgspec.field(name="price_changes")
    timestamp_text: str = msgspec.field(default="", name="timestamp")

    @classmethod
    def of(cls, market: str, changes: Iterable[PriceLevelChange], timestamp_ms: int | None = None) -> PriceChange:
        return cls(market, tuple(changes), "" if timestamp_ms is None else str(timestamp_ms))

    @property
    def timestamp_ms(self) -> int | None:
        text = self.timestamp_text
        if text.isdecimal() and text.isascii():
            return int(text)
        if not text:
            return None
        raise MalformedMessageError(f"timestamp {text!r} is not a whole number", field="timestamp", value=text)

    def validate(self) -> None:
        _ = self.timestamp_ms
        for change in self.changes:
            change.validate()


# --- venue text to exact values (shared with the protocol codecs) -------------------------------------

SIDE_TEXT: Final[dict[str, Side]] = {"BUY": Side.BUY, "SELL": Side.SELL, "buy": Side.BUY, "sell": Side.SELL}


def _malformed(what: str, text: object, why: str) -> NoReturn:
    raise MalformedMessageError(f"{what} {text!r} {why}", source="venue", field=what, value=text)


def decimal_text_to_micro(text: str, what: str) -> Micro:
    try:
        return parse_micro(text, what)
    except InputError:
        _malformed(what, text, "is not an exact decimal with at most 6 places")


def price_from_text(text: str, what: str = "price") -> Micro:
    """A level price: strictly inside (0, 1)."""
    value = PRICE_TEXT.get(text)
    if value is not None:
        return value
    value = decimal_text_to_micro(text, what)
    if not 0 < value < MICRO:
        _malformed(what, text, "is not inside (0, 1)")
    return value


def size_from_text(text: str, what: str = "size") -> Micro:
    """A size or amount: non-negative."""
    value = decimal_text_to_micro(text, what)
    if value < 0:
        _malformed(what, text, "is negative")
    return value


def side_from_text(text: str, what: str = "side") -> Side:
    value = SIDE_TEXT.get(text)
    if value is None:
        try:
            value = Side.parse(text)
        except InputError:
            _malformed(what, text, "is not BUY or SELL")
    return value


def best_from_text(text: str | None, what: str, empty: Micro) -> Micro | None:
    """A best-price field: None when absent, `empty` for "" (an empty side), else inside [0, 1]."""
    if text is None:
        return None
    value = PRICE_TEXT.get(text)
    if value is not None:
        return value
    if text == "":
        return empty
    value = decimal_text_to_micro(text, what)
    if not 0 <= value <= MICRO:
        _malformed(what, text, "is not inside [0, 1]")
    return value


class LastTradePrice(msgspec.Struct, frozen=True, gc=False):
    """`last_trade_price`: a trade happened; `side` is the taker's."""

    market: str
    asset_id: str
    price: Micro
    size: Micro
    side: Side | None
    timestamp_ms: int | None = None
    fee_rate_bps: int | None = None
    transaction_hash: str | None = None


class TickSizeChange(msgspec.Struct, frozen=True, gc=False):
    """`tick_size_change`: the token's price grid changed; a book mirror must wait for a new snapshot."""

    market: str
    asset_id: str
    old_tick_size: TickSize
    new_tick_size: TickSize
    timestamp_ms: int | None = None


class BestBidAsk(msgspec.Struct, frozen=True, gc=False):
    """`best_bid_ask` (custom feature). None for an empty side."""

    market: str
    asset_id: str
    best_bid: Micro | None
    best_ask: Micro | None
    spread: Micro | None = None
    timestamp_ms: int | None = None


class MarketEventMessage(msgspec.Struct, frozen=True, gc=False):
    """The `event_message` object of new_market / market_resolved: the parent event."""

    id: str = ""
    ticker: str = ""
    slug: str = ""
    title: str = ""
    description: str = ""


class NewMarket(msgspec.Struct, frozen=True):
    """`new_market` (custom feature). Later fields are optional on the venue."""

    id: str
    market: str
    question: str = ""
    slug: str = ""
    description: str = ""
    assets_ids: tuple[str, ...] = ()
    outcomes: tuple[str, ...] = ()
    event_message: MarketEventMessage | None = None
    timestamp_ms: int | None = None
    tags: tuple[str, ...] = ()
    condition_id: str = ""
    active: bool | None = None
    clob_token_ids: tuple[str, ...] = ()
    sports_market_type: str = ""
    line: str = ""
    game_start_time: str = ""
    order_price_min_tick_size: TickSize | None = None
    group_item_title: str = ""
    taker_base_fee: Decimal | None = None
    fees_enabled: bool | None = None
    fee_schedule: dict[str, Any] | None = None


class MarketResolved(msgspec.Struct, frozen=True):
    """`market_resolved` (custom feature)."""

    id: str
    market: str
    winning_asset_id: str
    winning_outcome: str
    question: str = ""
    assets_ids: tuple[str, ...] = ()
    event_message: MarketEventMessage | None = None
    timestamp_ms: int | None = None
    tags: tuple[str, ...] = ()


class CryptoPricePoint(msgspec.Struct, frozen=True, gc=False):
    """One reference price; exact Decimal (these are USD quotes of other assets, not pUSD amounts)."""

    timestamp_ms: int
    value: Decimal


class CryptoPrices(msgspec.Struct, frozen=True, gc=False):
    """RTDS `crypto_prices*`: one `update`, or the backfill sent on `subscribe` (several points)."""

    topic: str
    type: str
    symbol: str
    timestamp_ms: int
    points: tuple[CryptoPricePoint, ...]


class UnknownEvent(msgspec.Struct, frozen=True):
    """A JSON object whose `event_type` (or RTDS topic) we do not know; kept whole for logging."""

    event_type: str
    data: dict[str, Any]


class TextFrame(msgspec.Struct, frozen=True, gc=False):
    """A non-JSON text frame other than the keepalive (e.g. an error text on a bad subscription)."""

    text: str


MarketEvent = (
    BookSnapshot
    | PriceChange
    | LastTradePrice
    | TickSizeChange
    | BestBidAsk
    | NewMarket
    | MarketResolved
    | UnknownEvent
    | TextFrame
)
RtdsEvent = CryptoPrices | UnknownEvent | TextFrame
