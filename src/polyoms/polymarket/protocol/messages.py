"""Market-channel WebSocket messages (doc §6.2): wire schemas, decoders into typed events, encoders.

Decoding: `decode_market_frame(data)` takes one text frame exactly as received (an object, an array
of objects, or the literal `PONG`) and returns typed events from `polyoms.core.market_events`. Extra
keys are ignored and optional fields may be missing; an unknown `event_type` becomes `UnknownEvent`;
a known event that does not fit its schema raises `MalformedMessageError` (fail closed: a stream
client should then distrust the affected books).

All three `price_change` formats become one `PriceChange`:
  legacy (2024-08): top-level asset_id/price/size/side/hash, one change;
  2024 `changes[]`: top-level asset_id and hash, several changes;
  current `price_changes[]`: per-entry asset_id/hash/best_bid/best_ask, possibly several assets.

Encoding (`encode_market_event`, `encode_market_frame`) produces the venue's field names and string
formats, so the local exchange can speak the same protocol; `decode(encode(e)) == e`.

The user channel is in `user_messages`, RTDS in `rtds`, REST bodies in `rest`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Final, Literal

import msgspec

from polyoms.core import speedups
from polyoms.core.errors import InputError, MalformedMessageError
from polyoms.core.market_events import (
    BestBidAsk,
    BookSnapshot,
    LastTradePrice,
    Level,
    MarketEvent,
    MarketEventMessage,
    MarketResolved,
    NewMarket,
    PriceChange,
    PriceLevelChange,
    TextFrame,
    TickSizeChange,
    UnknownEvent,
)
from polyoms.core.units import fmt_micro
from polyoms.polymarket.protocol import codec
from polyoms.polymarket.protocol.book_hash import book_hash, legacy_book_hash, summary_hash
from polyoms.polymarket.protocol.codec import (
    Number,
    TextFrameError,
    fmt_optional,
    malformed,
    ts_text,
)

# --- wire schemas ----------------------------------------------------------------------------------
# Field types follow what the venue has sent; numbers that are documented as strings also accept JSON
# numbers where the venue has been seen to vary (REST), and are converted exactly.


class WireLevel(msgspec.Struct, gc=False):
    price: str
    size: str


class WireBook(msgspec.Struct, tag="book", tag_field="event_type", gc=False):
    """`book` event and REST OrderBookSummary (the tag is optional when decoded on its own)."""

    asset_id: str
    market: str = ""
    bids: list[WireLevel] = []
    asks: list[WireLevel] = []
    timestamp: str | int | None = None
    hash: str = ""
    min_order_size: Number | None = None
    tick_size: Number | None = None
    neg_risk: bool | None = None
    last_trade_price: Number | None = None


class WireChange(msgspec.Struct, gc=False):
    """One entry of `changes[]` (2024) or `price_changes[]` (current)."""

    price: str
    size: str
    side: str
    asset_id: str = ""
    hash: str = ""
    best_bid: str | None = None
    best_ask: str | None = None


class WirePriceChange(msgspec.Struct, tag="price_change", tag_field="event_type", gc=False):
    """Every field any of the three formats uses."""

    market: str = ""
    price_changes: list[WireChange] | None = None
    changes: list[WireChange] | None = None
    asset_id: str = ""
    price: str | None = None
    size: str | None = None
    side: str | None = None
    hash: str = ""
    timestamp: str | int | None = None


class WireLastTradePrice(msgspec.Struct, tag="last_trade_price", tag_field="event_type", gc=False):
    asset_id: str
    price: str
    size: str
    market: str = ""
    side: str | None = None
    fee_rate_bps: Number | None = None
    timestamp: str | int | None = None
    transaction_hash: str | None = None


class WireTickSizeChange(msgspec.Struct, tag="tick_size_change", tag_field="event_type", gc=False):
    asset_id: str
    old_tick_size: Number
    new_tick_size: Number
    market: str = ""
    timestamp: str | int | None = None


class WireBestBidAsk(msgspec.Struct, tag="best_bid_ask", tag_field="event_type", gc=False):
    asset_id: str
    market: str = ""
    best_bid: str | None = None
    best_ask: str | None = None
    spread: str | None = None
    timestamp: str | int | None = None


class WireEventMessage(msgspec.Struct, gc=False):
    id: str | int = ""
    ticker: str = ""
    slug: str = ""
    title: str = ""
    description: str = ""


class WireNewMarket(msgspec.Struct, tag="new_market", tag_field="event_type"):
    id: str | int
    market: str
    question: str = ""
    slug: str = ""
    description: str = ""
    assets_ids: list[str] | None = None
    outcomes: list[str] | None = None
    event_message: WireEventMessage | None = None
    timestamp: str | int | None = None
    tags: list[str] | None = None
    condition_id: str = ""
    active: bool | None = None
    clob_token_ids: list[str] | None = None
    sports_market_type: str | None = None
    line: Number | None = None
    game_start_time: str | None = None
    order_price_min_tick_size: Number | None = None
    group_item_title: str | None = None
    taker_base_fee: Number | None = None
    fees_enabled: bool | None = None
    fee_schedule: dict[str, Any] | None = None


class WireMarketResolved(msgspec.Struct, tag="market_resolved", tag_field="event_type"):
    id: str | int
    market: str
    winning_asset_id: str
    winning_outcome: str
    question: str = ""
    assets_ids: list[str] | None = None
    event_message: WireEventMessage | None = None
    timestamp: str | int | None = None
    tags: list[str] | None = None


WireMarketEvent = (
    WireBook
    | PriceChange
    | WireLastTradePrice
    | WireTickSizeChange
    | WireBestBidAsk
    | WireNewMarket
    | WireMarketResolved
)
# For the slow path (one object at a time): price_change in any of the three formats.
WIRE_MARKET_TYPES: Final[dict[str, type[WireMarketEvent | WirePriceChange]]] = {
    "book": WireBook,
    "price_change": WirePriceChange,
    "last_trade_price": WireLastTradePrice,
    "tick_size_change": WireTickSizeChange,
    "best_bid_ask": WireBestBidAsk,
    "new_market": WireNewMarket,
    "market_resolved": WireMarketResolved,
}

_frame_decoder: Final = msgspec.json.Decoder(WireMarketEvent | list[WireMarketEvent])
_price_change_decoder: Final = msgspec.json.Decoder(PriceChange)
_any_price_change_decoder: Final = msgspec.json.Decoder(WirePriceChange)
_book_decoder: Final = msgspec.json.Decoder(WireBook)
_books_decoder: Final = msgspec.json.Decoder(list[WireBook])

# --- wire -> typed ---------------------------------------------------------------------------------


def _levels(levels: list[WireLevel], what: str) -> tuple[Level, ...]:
    price, size = codec.price, codec.size
    return tuple([(price(lv.price, what), size(lv.size, what)) for lv in levels])


def wire_book_hash(w: WireBook) -> bool | None:
    """Does the served hash reproduce? Checked on the strings exactly as served.

    Snapshots carrying the newer fields (tick_size...) use doc §6.5 (reproduces on real 2026 books);
    older ones a 5-key variant (market, asset_id, hash, bids, asks: no timestamp) that reproduces the
    recorded 2024 books. A bare snapshot that matches neither gives None (the algorithm is unknown
    there, e.g. a newer WS snapshot without the extra fields), never False.
    """
    if not w.hash:
        return None
    bids = [{"price": lv.price, "size": lv.size} for lv in w.bids]
    asks = [{"price": lv.price, "size": lv.size} for lv in w.asks]
    if w.tick_size is not None or w.min_order_size is not None or w.last_trade_price is not None:
        timestamp: Any = w.timestamp if w.timestamp is not None else ""  # hashed as served (str or number)
        served = book_hash(
            w.market,
            w.asset_id,
            timestamp,
            bids,
            asks,
            w.min_order_size,
            w.tick_size,
            bool(w.neg_risk),
            w.last_trade_price,
        )
        return served == w.hash
    if legacy_book_hash(w.market, w.asset_id, bids, asks) == w.hash:
        return True
    return None


def book_from_wire(w: WireBook, *, verify_hash: bool = False) -> BookSnapshot:
    return BookSnapshot(
        market=w.market,
        asset_id=w.asset_id,
        bids=_levels(w.bids, "bid"),
        asks=_levels(w.asks, "ask"),
        timestamp_ms=codec.integer(w.timestamp, "timestamp"),
        hash=w.hash,
        min_order_size=codec.optional_number(w.min_order_size, "min_order_size"),
        tick_size=codec.tick(w.tick_size),
        neg_risk=w.neg_risk,
        last_trade_price=codec.optional_number(w.last_trade_price, "last_trade_price"),
        hash_verified=wire_book_hash(w) if verify_hash else None,
    )


def price_change_from_wire(w: WirePriceChange) -> PriceChange:
    """Normalize any of the three formats into the current one, keeping the venue's text."""
    ts = "" if w.timestamp is None else str(w.timestamp)
    if w.price_changes is not None:
        changes = [_change(e, e.asset_id, e.hash, e.best_bid, e.best_ask) for e in w.price_changes]
        if not all(c.asset_id for c in changes):
            malformed("price_change entry without asset_id", event_type="price_change")
        return PriceChange(w.market, tuple(changes), ts)
    if not w.asset_id:
        malformed("price_change without asset_id", event_type="price_change")
    if w.changes is not None:
        last = len(w.changes) - 1
        changes = [_change(e, w.asset_id, w.hash if k == last else "") for k, e in enumerate(w.changes)]
    elif w.price is not None and w.size is not None and w.side is not None:
        changes = [_change(WireChange(w.price, w.size, w.side), w.asset_id, w.hash)]
    else:
        malformed("price_change without price_changes, changes or price/size/side", event_type="price_change")
    return PriceChange(w.market, tuple(changes), ts)


def _change(
    e: WireChange, asset_id: str, hash_: str, best_bid: str | None = None, best_ask: str | None = None
) -> PriceLevelChange:
    return PriceLevelChange(asset_id, e.price, e.size, e.side, hash_, best_bid, best_ask)


def _last_trade_price(w: WireLastTradePrice) -> LastTradePrice:
    return LastTradePrice(
        market=w.market,
        asset_id=w.asset_id,
        price=codec.price(w.price),
        size=codec.size(w.size),
        side=codec.optional_side(w.side),
        timestamp_ms=codec.integer(w.timestamp, "timestamp"),
        fee_rate_bps=codec.integer(w.fee_rate_bps, "fee_rate_bps"),
        transaction_hash=w.transaction_hash,
    )


def _tick_size_change(w: WireTickSizeChange) -> TickSizeChange:
    return TickSizeChange(
        market=w.market,
        asset_id=w.asset_id,
        old_tick_size=codec.required_tick(w.old_tick_size, "old_tick_size"),
        new_tick_size=codec.required_tick(w.new_tick_size, "new_tick_size"),
        timestamp_ms=codec.integer(w.timestamp, "timestamp"),
    )


def _best_bid_ask(w: WireBestBidAsk) -> BestBidAsk:
    return BestBidAsk(
        market=w.market,
        asset_id=w.asset_id,
        best_bid=codec.best_bid(w.best_bid),
        best_ask=codec.best_ask(w.best_ask),
        spread=codec.optional_number(w.spread, "spread"),
        timestamp_ms=codec.integer(w.timestamp, "timestamp"),
    )


def _event_message(w: WireEventMessage | None) -> MarketEventMessage | None:
    if w is None:
        return None
    return MarketEventMessage(str(w.id), w.ticker, w.slug, w.title, w.description)


def _text(value: Number | None) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else repr(value)


def _new_market(w: WireNewMarket) -> NewMarket:
    return NewMarket(
        id=str(w.id),
        market=w.market,
        question=w.question,
        slug=w.slug,
        description=w.description,
        assets_ids=tuple(w.assets_ids or ()),
        outcomes=tuple(w.outcomes or ()),
        event_message=_event_message(w.event_message),
        timestamp_ms=codec.integer(w.timestamp, "timestamp"),
        tags=tuple(w.tags or ()),
        condition_id=w.condition_id,
        active=w.active,
        clob_token_ids=tuple(w.clob_token_ids or ()),
        sports_market_type=w.sports_market_type or "",
        line=_text(w.line),
        game_start_time=w.game_start_time or "",
        order_price_min_tick_size=codec.tick(w.order_price_min_tick_size, "order_price_min_tick_size"),
        group_item_title=w.group_item_title or "",
        taker_base_fee=codec.decimal(w.taker_base_fee, "taker_base_fee"),
        fees_enabled=w.fees_enabled,
        fee_schedule=w.fee_schedule,
    )


def _market_resolved(w: WireMarketResolved) -> MarketResolved:
    return MarketResolved(
        id=str(w.id),
        market=w.market,
        winning_asset_id=w.winning_asset_id,
        winning_outcome=w.winning_outcome,
        question=w.question,
        assets_ids=tuple(w.assets_ids or ()),
        event_message=_event_message(w.event_message),
        timestamp_ms=codec.integer(w.timestamp, "timestamp"),
        tags=tuple(w.tags or ()),
    )


def market_event_from_wire(
    w: WireMarketEvent | WirePriceChange, *, verify_book_hash: bool = False, strict: bool = False
) -> MarketEvent:
    kind = type(w)
    if kind is PriceChange:
        if strict:
            w.validate()  # type: ignore[union-attr]
        return w  # type: ignore[return-value]
    if kind is WirePriceChange:
        event = price_change_from_wire(w)  # type: ignore[arg-type]
        if strict:
            event.validate()
        return event
    if kind is WireBook:
        return book_from_wire(w, verify_hash=verify_book_hash)  # type: ignore[arg-type]
    return _CONVERTERS[kind](w)


_CONVERTERS: Final[dict[type, Callable[[Any], MarketEvent]]] = {
    WireLastTradePrice: _last_trade_price,
    WireTickSizeChange: _tick_size_change,
    WireBestBidAsk: _best_bid_ask,
    WireNewMarket: _new_market,
    WireMarketResolved: _market_resolved,
}

# --- frames ----------------------------------------------------------------------------------------

_PRICE_CHANGES_KEY: Final = b'"price_changes":'


def decode_market_frame(
    data: bytes | str, *, verify_book_hash: bool = False, strict: bool = False
) -> list[MarketEvent]:
    """Every event in one market-channel text frame, in order ([] for a keepalive).

    `verify_book_hash`: check each snapshot's hash (sets `BookSnapshot.hash_verified`).
    `strict`: also parse every price_change value now (otherwise they are parsed when used, and the
    book mirror rejects a malformed one); every other event is always checked while decoding.
    """
    # Most frames are one current-format price_change object: decode those straight into the typed
    # struct, without the union's tag lookahead (event_type comes last on the venue). The key sits in
    # the first few hundred bytes whatever the key order; a look-alike takes the general path. With
    # the C extension, its parser tries first (same frames, same result; None for anything it does
    # not recognise, which then goes to msgspec as without it).
    if not strict and type(data) is bytes:
        fast = speedups.decode_price_change_frame
        if fast is not None:
            event = fast(data)
            if event is not None:
                return [event]
        if data[:1] == b"{" and data.find(_PRICE_CHANGES_KEY, 0, 256) > 0:
            try:
                return [_price_change_decoder.decode(data)]
            except msgspec.DecodeError:
                pass
    try:
        frame = codec.json_or_text(data)
    except TextFrameError as text:
        return [TextFrame(text.text)]
    if frame is None:
        return []
    try:
        wire = _frame_decoder.decode(frame)
    except msgspec.ValidationError:
        return _decode_each(frame, verify_book_hash, strict)
    except msgspec.DecodeError as exc:
        malformed(f"market frame is not valid JSON: {exc}")
    try:
        if type(wire) is list:
            return [market_event_from_wire(w, verify_book_hash=verify_book_hash, strict=strict) for w in wire]
        return [market_event_from_wire(wire, verify_book_hash=verify_book_hash, strict=strict)]
    except MalformedMessageError:
        raise
    except InputError as exc:  # a typed error from below the codec: report it as a malformed message
        malformed(str(exc))


def _decode_each(frame: bytes | str, verify_book_hash: bool, strict: bool) -> list[MarketEvent]:
    """Slow path: an unknown event type, an older price_change format, or a malformed known event."""
    out: list[MarketEvent] = []
    for obj in codec.decode_objects(frame):
        event_type = obj.get("event_type")
        cls = WIRE_MARKET_TYPES.get(event_type) if isinstance(event_type, str) else None
        if cls is None:
            out.append(UnknownEvent(str(event_type or ""), obj))
            continue
        wire = codec.convert(obj, cls, event_type)  # type: ignore[arg-type]
        out.append(market_event_from_wire(wire, verify_book_hash=verify_book_hash, strict=strict))
    return out


def decode_price_change(data: bytes | str, *, strict: bool = False) -> PriceChange:
    """One price_change object (any of the three formats), without frame handling."""
    fast = speedups.decode_price_change_frame
    event = None if fast is None else fast(data)  # what msgspec would return, or None
    if event is None:
        try:
            event = _price_change_decoder.decode(data)
        except msgspec.DecodeError:
            try:
                event = price_change_from_wire(_any_price_change_decoder.decode(data))
            except msgspec.DecodeError as exc:
                malformed(f"price_change: {exc}", event_type="price_change")
    if strict:
        event.validate()
    return event


def decode_book(data: bytes | str, *, verify_hash: bool = False) -> BookSnapshot:
    """One book object: a WS `book` event or the REST /book body."""
    try:
        return book_from_wire(_book_decoder.decode(data), verify_hash=verify_hash)
    except msgspec.DecodeError as exc:
        malformed(f"book: {exc}", event_type="book")


def decode_books(data: bytes | str, *, verify_hash: bool = False) -> list[BookSnapshot]:
    """POST /books: an array of book summaries."""
    try:
        return [book_from_wire(w, verify_hash=verify_hash) for w in _books_decoder.decode(data)]
    except msgspec.DecodeError as exc:
        malformed(f"books: {exc}", event_type="book")


# --- typed -> wire ---------------------------------------------------------------------------------

PriceChangeFormat = Literal["current", "changes", "legacy"]


def _levels_wire(levels: Iterable[Level]) -> list[dict[str, str]]:
    return [{"price": fmt_micro(p), "size": fmt_micro(s)} for p, s in levels]


def book_summary(snapshot: BookSnapshot) -> dict[str, Any]:
    """The REST /book body in the §6.5 key order; the hash is computed when the snapshot has none.

    With `tick_size` set, every newer field is emitted (absent ones as the venue does: "" for
    last_trade_price) and hashed per §6.5; without it, the older 5-key hash.
    """
    body: dict[str, Any] = {"market": snapshot.market, "asset_id": snapshot.asset_id}
    if snapshot.timestamp_ms is not None:
        body["timestamp"] = str(snapshot.timestamp_ms)
    body["hash"] = snapshot.hash
    body["bids"] = _levels_wire(snapshot.bids)
    body["asks"] = _levels_wire(snapshot.asks)
    if snapshot.tick_size is not None:
        body["min_order_size"] = fmt_optional(snapshot.min_order_size)
        body["tick_size"] = str(snapshot.tick_size)
        body["neg_risk"] = bool(snapshot.neg_risk)
        body["last_trade_price"] = fmt_optional(snapshot.last_trade_price)
    if not snapshot.hash:
        body["hash"] = summary_hash(body)
    return body


def _book_wire(e: BookSnapshot) -> dict[str, Any]:
    return {"event_type": "book", **book_summary(e)}


def price_change_wire(e: PriceChange, fmt: PriceChangeFormat = "current") -> dict[str, Any]:
    """`current` is what the venue sends today; the older formats (one asset, no best prices) are for
    replaying history and fault drills."""
    if fmt == "current":
        out: dict[str, Any] = msgspec.to_builtins(e)
        return out
    assets = {c.asset_id for c in e.changes}
    if len(assets) != 1:
        raise ValueError(f"the {fmt} price_change format carries exactly one asset, not {len(assets)}")
    if any(c.best_bid_text is not None or c.best_ask_text is not None for c in e.changes):
        raise ValueError(f"the {fmt} price_change format has no best_bid/best_ask")
    if any(c.hash for c in e.changes[:-1]):
        raise ValueError(f"the {fmt} price_change format has one hash, for the last change")
    head = {"event_type": "price_change", "asset_id": e.changes[0].asset_id, "market": e.market}
    tail = {"hash": e.changes[-1].hash, "timestamp": e.timestamp_text}
    if fmt == "changes":
        changes = [{"price": c.price_text, "side": c.side_text, "size": c.size_text} for c in e.changes]
        return {**head, "changes": changes, **tail}
    if len(e.changes) != 1:
        raise ValueError("the legacy price_change format carries exactly one change")
    c = e.changes[0]
    return {**head, "price": c.price_text, "side": c.side_text, "size": c.size_text, **tail}


def _optional(out: dict[str, Any], key: str, value: Any) -> None:
    if value is not None:
        out[key] = value


def _last_trade_price_wire(e: LastTradePrice) -> dict[str, Any]:
    out: dict[str, Any] = {
        "event_type": "last_trade_price",
        "asset_id": e.asset_id,
        "market": e.market,
        "price": fmt_micro(e.price),
        "size": fmt_micro(e.size),
    }
    _optional(out, "fee_rate_bps", None if e.fee_rate_bps is None else str(e.fee_rate_bps))
    _optional(out, "side", None if e.side is None else e.side.name)
    out["timestamp"] = ts_text(e.timestamp_ms)
    _optional(out, "transaction_hash", e.transaction_hash)
    return out


def _tick_size_change_wire(e: TickSizeChange) -> dict[str, Any]:
    return {
        "event_type": "tick_size_change",
        "asset_id": e.asset_id,
        "market": e.market,
        "old_tick_size": str(e.old_tick_size),
        "new_tick_size": str(e.new_tick_size),
        "timestamp": ts_text(e.timestamp_ms),
    }


def _best_bid_ask_wire(e: BestBidAsk) -> dict[str, Any]:
    out: dict[str, Any] = {"event_type": "best_bid_ask", "market": e.market, "asset_id": e.asset_id}
    _optional(out, "best_bid", None if e.best_bid is None else fmt_micro(e.best_bid))
    _optional(out, "best_ask", None if e.best_ask is None else fmt_micro(e.best_ask))
    _optional(out, "spread", None if e.spread is None else fmt_micro(e.spread))
    out["timestamp"] = ts_text(e.timestamp_ms)
    return out


def _event_message_wire(m: MarketEventMessage | None) -> dict[str, str] | None:
    if m is None:
        return None
    return {"id": m.id, "ticker": m.ticker, "slug": m.slug, "title": m.title, "description": m.description}


def _new_market_wire(e: NewMarket) -> dict[str, Any]:
    out: dict[str, Any] = {
        "event_type": "new_market",
        "id": e.id,
        "question": e.question,
        "market": e.market,
        "slug": e.slug,
        "description": e.description,
        "assets_ids": list(e.assets_ids),
        "outcomes": list(e.outcomes),
    }
    _optional(out, "event_message", _event_message_wire(e.event_message))
    out["timestamp"] = ts_text(e.timestamp_ms)
    out["tags"] = list(e.tags)
    out["condition_id"] = e.condition_id
    _optional(out, "active", e.active)
    out["clob_token_ids"] = list(e.clob_token_ids)
    out["sports_market_type"] = e.sports_market_type
    out["line"] = e.line
    out["game_start_time"] = e.game_start_time
    out["order_price_min_tick_size"] = "" if e.order_price_min_tick_size is None else str(e.order_price_min_tick_size)
    out["group_item_title"] = e.group_item_title
    _optional(out, "taker_base_fee", e.taker_base_fee)
    _optional(out, "fees_enabled", e.fees_enabled)
    _optional(out, "fee_schedule", e.fee_schedule)
    return out


def _market_resolved_wire(e: MarketResolved) -> dict[str, Any]:
    out: dict[str, Any] = {
        "event_type": "market_resolved",
        "id": e.id,
        "question": e.question,
        "market": e.market,
        "assets_ids": list(e.assets_ids),
        "winning_asset_id": e.winning_asset_id,
        "winning_outcome": e.winning_outcome,
    }
    _optional(out, "event_message", _event_message_wire(e.event_message))
    out["timestamp"] = ts_text(e.timestamp_ms)
    out["tags"] = list(e.tags)
    return out


def market_event_wire(event: MarketEvent, *, price_change_format: PriceChangeFormat = "current") -> dict[str, Any]:
    """The venue's JSON object for one typed event (not for TextFrame, which is not JSON)."""
    if isinstance(event, PriceChange):
        return price_change_wire(event, price_change_format)
    if isinstance(event, BookSnapshot):
        return _book_wire(event)
    if isinstance(event, LastTradePrice):
        return _last_trade_price_wire(event)
    if isinstance(event, TickSizeChange):
        return _tick_size_change_wire(event)
    if isinstance(event, BestBidAsk):
        return _best_bid_ask_wire(event)
    if isinstance(event, NewMarket):
        return _new_market_wire(event)
    if isinstance(event, MarketResolved):
        return _market_resolved_wire(event)
    if isinstance(event, UnknownEvent):
        return event.data
    raise TypeError(f"{type(event).__name__} has no JSON form")


def encode_market_event(event: MarketEvent, *, price_change_format: PriceChangeFormat = "current") -> bytes:
    """One event as one frame: compact JSON, or the raw text of a TextFrame."""
    if isinstance(event, TextFrame):
        return event.text.encode()
    return codec.encoder.encode(market_event_wire(event, price_change_format=price_change_format))


def encode_market_frame(events: Iterable[MarketEvent]) -> bytes:
    """Several events as one frame: a JSON array (as the venue sends its initial book dump)."""
    return codec.encoder.encode([market_event_wire(e) for e in events])
