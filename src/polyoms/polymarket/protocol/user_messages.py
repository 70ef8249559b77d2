"""User-channel WebSocket messages (doc §6.3) and /data/trades items (§4.7): schemas, decoders, encoders.

`decode_user_frame(data)` takes one text frame as received and returns typed `OrderEvent` /
`TradeEvent`s (exact micro-units, normalized statuses); unknown event types become `UnknownEvent`, a
malformed known event raises `MalformedMessageError`. Every value is checked while decoding: these
events move positions, and they are few.

Quirks handled (from recorded messages): statuses may be prefixed `TRADE_STATUS_`/`ORDER_STATUS_`;
older maker entries have no `side`; the trade `timestamp` is milliseconds in some messages and seconds
in others (normalized to ms); the match time is `match_time` (recorded) or `matchtime` (docs).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Final, TypeVar

import msgspec
from msgspec import UNSET, UnsetType

from polyoms.core import speedups
from polyoms.core.enums import OrderType
from polyoms.core.errors import InputError, MalformedMessageError
from polyoms.core.market_events import TextFrame, UnknownEvent
from polyoms.core.units import MICRO, Micro, fmt_micro, parse_micro
from polyoms.core.user_events import (
    MakerOrderFill,
    OrderEvent,
    OrderEventType,
    OrderStatus,
    TradeEvent,
    TraderSide,
    TradeStatus,
    UserEvent,
)
from polyoms.polymarket.protocol import codec
from polyoms.polymarket.protocol.codec import _SECONDS_LIMIT, Number, TextFrameError, malformed
from polyoms.polymarket.protocol.wire import PmPage

T = TypeVar("T")

# --- wire schemas ----------------------------------------------------------------------------------


class PmOrderMessage(msgspec.Struct, tag="order", tag_field="event_type", gc=False):
    id: str
    asset_id: str
    side: str
    price: str
    original_size: Number
    status: str
    type: str = "PLACEMENT"
    market: str = ""
    size_matched: Number = "0"
    owner: str = ""
    order_owner: str = ""
    outcome: str = ""
    associate_trades: list[str] | None = None
    order_type: str | None = None
    expiration: str | int | None = None
    maker_address: str = ""
    created_at: str | int | None = None
    timestamp: str | int | None = None


class PmMakerOrder(msgspec.Struct, kw_only=True, gc=False):
    """One maker of a trade, in a user-channel trade and a /data/trades item (fields in the REST key
    order; the REST item has no `outcome_index`)."""

    order_id: str
    owner: str = ""
    maker_address: str = ""
    matched_amount: Number
    price: str
    fee_rate_bps: Number | None = None
    asset_id: str = ""
    outcome: str = ""
    side: str | None = None
    outcome_index: int | UnsetType | None = UNSET


class PmTradeMessage(msgspec.Struct, tag="trade", tag_field="event_type", gc=False):
    """User-channel `trade` event."""

    id: str
    asset_id: str
    side: str
    size: Number
    price: str
    status: str
    taker_order_id: str = ""
    market: str = ""
    maker_orders: list[PmMakerOrder] | None = None
    fee_rate_bps: Number | None = None
    outcome: str = ""
    owner: str = ""
    trade_owner: str = ""
    maker_address: str = ""
    transaction_hash: str | None = None
    bucket_index: int | None = None
    trader_side: str | None = None
    match_time: str | int | None = None
    matchtime: str | int | None = None
    last_update: str | int | None = None
    timestamp: str | int | None = None
    err_msg: str | None = None
    type: str = "TRADE"


class PmTrade(msgspec.Struct, kw_only=True, gc=False):
    """A GET /data/trades item, fields in the venue's key order. It also reads a user-channel trade
    on its own (`decode_trade`): the fields only that message has are `UNSET` here, never written."""

    id: str
    taker_order_id: str = ""
    market: str = ""
    asset_id: str
    side: str
    size: Number
    fee_rate_bps: Number | None = None
    price: str
    status: str
    match_time: str | int | None = None
    last_update: str | int | None = None
    outcome: str = ""
    bucket_index: int | None = None
    owner: str = ""
    maker_address: str = ""
    transaction_hash: str | None = None
    maker_orders: list[PmMakerOrder] | None = None
    trader_side: str | None = None
    err_msg: str | UnsetType | None = UNSET
    trade_owner: str | UnsetType = UNSET
    matchtime: str | int | UnsetType | None = UNSET
    timestamp: str | int | UnsetType | None = UNSET


PmUserMessage = PmOrderMessage | PmTradeMessage
PM_USER_TYPES: Final[dict[str, type[PmUserMessage]]] = {"order": PmOrderMessage, "trade": PmTradeMessage}

_frame_decoder: Final = msgspec.json.Decoder(PmUserMessage | list[PmUserMessage])
_trade_decoder: Final = msgspec.json.Decoder(PmTrade)
_trades_page_decoder: Final = msgspec.json.Decoder(PmPage[PmTrade])


class TradesPage(msgspec.Struct, frozen=True):
    """GET /data/trades: one page (`next_cursor` "LTE=" marks the end)."""

    data: tuple[TradeEvent, ...]
    next_cursor: str = ""
    limit: int | None = None
    count: int | None = None


# --- wire -> typed ---------------------------------------------------------------------------------


def _unit_price(text: str, what: str = "price") -> Micro:
    """A fill or order price: inside [0, 1] (market orders may carry 0 or 1 at the edges)."""
    value = codec.PRICES.get(text)
    if value is not None:
        return value
    value = codec.number(text, what)
    if not 0 <= value <= MICRO:
        malformed(f"{what} {text!r} is not inside [0, 1]", field=what, value=text)
    return value


def _amount(value: Number, what: str) -> Micro:
    result = codec.number(value, what)
    if result < 0:
        malformed(f"{what} {value!r} is negative", field=what, value=value)
    return result


def order_from_wire(w: PmOrderMessage) -> OrderEvent:
    order_type = None
    if w.order_type:
        try:
            order_type = OrderType.parse(w.order_type)
        except InputError:
            malformed(f"unknown order_type {w.order_type!r}", field="order_type", value=w.order_type)
    return OrderEvent(
        type=OrderEventType.parse(w.type),
        id=w.id,
        market=w.market,
        asset_id=w.asset_id,
        side=codec.side(w.side),
        price=_unit_price(w.price),
        original_size=_amount(w.original_size, "original_size"),
        size_matched=_amount(w.size_matched, "size_matched"),
        status=OrderStatus.parse(w.status),
        owner=w.owner,
        order_owner=w.order_owner,
        outcome=w.outcome,
        associate_trades=tuple(w.associate_trades or ()),
        order_type=order_type,
        expiration=codec.integer(w.expiration, "expiration") or 0,
        maker_address=w.maker_address,
        created_at=codec.integer(w.created_at, "created_at"),
        timestamp_ms=codec.timestamp_ms(w.timestamp),
    )


def _given(value: T | UnsetType) -> T | None:
    return None if isinstance(value, UnsetType) else value


def _maker(m: PmMakerOrder) -> MakerOrderFill:
    return MakerOrderFill(
        order_id=m.order_id,
        matched_amount=_amount(m.matched_amount, "matched_amount"),
        price=_unit_price(m.price),
        asset_id=m.asset_id,
        owner=m.owner,
        maker_address=m.maker_address,
        fee_rate_bps=codec.integer(m.fee_rate_bps, "fee_rate_bps"),
        outcome=m.outcome,
        outcome_index=_given(m.outcome_index),
        side=codec.optional_side(m.side),
    )


def trade_from_wire(w: PmTradeMessage | PmTrade) -> TradeEvent:
    match_time = w.match_time if w.match_time is not None else _given(w.matchtime)
    return TradeEvent(
        id=w.id,
        taker_order_id=w.taker_order_id,
        market=w.market,
        asset_id=w.asset_id,
        side=codec.side(w.side),
        size=_amount(w.size, "size"),
        price=_unit_price(w.price),
        status=TradeStatus.parse(w.status),
        maker_orders=tuple(_maker(m) for m in w.maker_orders or ()),
        fee_rate_bps=codec.integer(w.fee_rate_bps, "fee_rate_bps"),
        outcome=w.outcome,
        owner=w.owner,
        trade_owner=w.trade_owner or "",
        maker_address=w.maker_address,
        transaction_hash=w.transaction_hash or "",
        bucket_index=w.bucket_index,
        trader_side=TraderSide.parse(w.trader_side) if w.trader_side else None,
        match_time=codec.integer(match_time, "match_time"),
        last_update=codec.integer(w.last_update, "last_update"),
        timestamp_ms=codec.timestamp_ms(_given(w.timestamp)),
        err_msg=w.err_msg or "",
    )


def user_event_from_wire(w: PmUserMessage) -> OrderEvent | TradeEvent:
    return order_from_wire(w) if type(w) is PmOrderMessage else trade_from_wire(w)  # type: ignore[arg-type]


# --- fast path --------------------------------------------------------------------------------------
# The common shape (statuses, types and sides spelled canonically, amounts as decimal strings, times as
# digit strings) is decoded by msgspec straight into structs whose enum fields it validates itself; the
# few remaining conversions are done inline below. Anything else — a prefixed status, a JSON number, an
# unusual value, a keepalive, a malformed event — makes the fast path give up (`_Fallback` or any
# error) and the frame goes through the general path above, which gives the same events or raises the
# same error: the fast path only accepts what the general one maps to the identical result.


class _Fallback(Exception):
    pass


class _FastOrder(msgspec.Struct, tag="order", tag_field="event_type", gc=False):
    id: str
    asset_id: str
    side: str
    price: str
    original_size: str
    status: OrderStatus
    type: OrderEventType = OrderEventType.PLACEMENT
    market: str = ""
    size_matched: str = "0"
    owner: str = ""
    order_owner: str = ""
    outcome: str = ""
    associate_trades: tuple[str, ...] | None = None
    order_type: OrderType | None = None
    expiration: str | int | None = None
    maker_address: str = ""
    created_at: str | int | None = None
    timestamp: str | int | None = None


class _FastMaker(msgspec.Struct, gc=False):
    order_id: str
    matched_amount: str
    price: str
    asset_id: str = ""
    owner: str = ""
    maker_address: str = ""
    fee_rate_bps: str | int | None = None
    outcome: str = ""
    outcome_index: int | None = None
    side: str | None = None


class _FastTrade(msgspec.Struct, tag="trade", tag_field="event_type", gc=False):
    id: str
    asset_id: str
    side: str
    size: str
    price: str
    status: TradeStatus
    taker_order_id: str = ""
    market: str = ""
    maker_orders: list[_FastMaker] | None = None
    fee_rate_bps: str | int | None = None
    outcome: str = ""
    owner: str = ""
    trade_owner: str = ""
    maker_address: str = ""
    transaction_hash: str | None = None
    bucket_index: int | None = None
    trader_side: TraderSide | None = None
    match_time: str | int | None = None
    matchtime: str | int | None = None
    last_update: str | int | None = None
    timestamp: str | int | None = None
    err_msg: str | None = None
    type: str = "TRADE"


_fast_decoder: Final = msgspec.json.Decoder(_FastOrder | _FastTrade | list[_FastOrder | _FastTrade])
_SIDE_TEXT: Final = codec.SIDES
_PRICE_TEXT: Final = codec.PRICES


def _f_price(text: str) -> Micro:
    value = _PRICE_TEXT.get(text)
    if value is None:
        value = parse_micro(text)
        if not 0 <= value <= MICRO:
            raise _Fallback
    return value


_AMOUNTS: Final[dict[str, Micro]] = {}
"""Amount text → micro-units seen so far (sizes repeat: every status of a trade re-sends them); bounded."""


def _f_amount(text: str) -> Micro:
    value = _AMOUNTS.get(text)
    if value is None:
        value = parse_micro(text)
        if value < 0:
            raise _Fallback
        if len(_AMOUNTS) < 100_000:
            _AMOUNTS[text] = value
    return value


def _f_int(value: str | int | None) -> int | None:
    """codec.integer for the values it accepts; anything else falls back."""
    if value is None or value == "":
        return None
    t = type(value)
    if t is str:
        if value.isdigit() and value.isascii():  # type: ignore[union-attr]
            return int(value)
    elif t is int:
        return value  # type: ignore[return-value]
    raise _Fallback


def _f_ts(value: str | int | None) -> int | None:
    result = _f_int(value)
    if result is not None and result < _SECONDS_LIMIT:
        result *= 1000
    return result


def _f_order(w: _FastOrder) -> OrderEvent:
    return OrderEvent(
        w.type,
        w.id,
        w.market,
        w.asset_id,
        _SIDE_TEXT[w.side],
        _f_price(w.price),
        _f_amount(w.original_size),
        _f_amount(w.size_matched),
        w.status,
        w.owner,
        w.order_owner,
        w.outcome,
        w.associate_trades or (),
        w.order_type,
        _f_int(w.expiration) or 0,
        w.maker_address,
        _f_int(w.created_at),
        _f_ts(w.timestamp),
    )


def _f_trade(w: _FastTrade) -> TradeEvent:
    makers: tuple[MakerOrderFill, ...] = ()
    if w.maker_orders:
        side_text, amounts, prices = _SIDE_TEXT, _AMOUNTS, _PRICE_TEXT
        makers = tuple(
            [
                MakerOrderFill(
                    m.order_id,
                    amounts.get(m.matched_amount) or _f_amount(m.matched_amount),
                    prices.get(m.price) or _f_price(m.price),
                    m.asset_id,
                    m.owner,
                    m.maker_address,
                    0 if m.fee_rate_bps == "0" else _f_int(m.fee_rate_bps),
                    m.outcome,
                    m.outcome_index,
                    side_text[m.side] if m.side else None,
                )
                for m in w.maker_orders
            ]
        )
    match_time = w.match_time if w.match_time is not None else w.matchtime
    if type(match_time) is str and match_time.isdigit() and match_time.isascii():
        match_time = int(match_time)
    elif type(match_time) is not int:
        match_time = _f_int(match_time)
    last_update = w.last_update
    if type(last_update) is str and last_update.isdigit() and last_update.isascii():
        last_update = int(last_update)
    elif type(last_update) is not int:
        last_update = _f_int(last_update)
    ts = w.timestamp
    if type(ts) is str and ts.isdigit() and ts.isascii():
        ts = int(ts)
        if ts < _SECONDS_LIMIT:
            ts *= 1000
    else:
        ts = _f_ts(ts)
    return TradeEvent(
        w.id,
        w.taker_order_id,
        w.market,
        w.asset_id,
        _SIDE_TEXT[w.side],
        _f_amount(w.size),
        _f_price(w.price),
        w.status,
        makers,
        _f_int(w.fee_rate_bps),
        w.outcome,
        w.owner,
        w.trade_owner,
        w.maker_address,
        w.transaction_hash or "",
        w.bucket_index,
        w.trader_side,
        match_time,
        last_update,
        ts,
        w.err_msg or "",
    )


# The same fast path compiled (polyoms._speedups, optional): it reads these structs' layout and gives
# the same events as `_fast`, or None for anything it does not fully recognise (then `_fast` runs).
speedups.bind_user_frame(
    (_FastOrder, _FastTrade, _FastMaker), (OrderEvent, TradeEvent, MakerOrderFill), _SIDE_TEXT, _SECONDS_LIMIT
)


def _fast(data: bytes | str) -> list[UserEvent] | None:
    """The frame's events by the fast path, or None when it does not apply (see above)."""
    try:
        wire = _fast_decoder.decode(data)
        if type(wire) is _FastTrade:
            return [_f_trade(wire)]
        if type(wire) is _FastOrder:
            return [_f_order(wire)]
        assert type(wire) is list
        return [_f_trade(w) if type(w) is _FastTrade else _f_order(w) for w in wire]
    except Exception:
        return None


def decode_user_frame(data: bytes | str) -> list[UserEvent]:
    """Every event in one user-channel text frame, in order ([] for a keepalive)."""
    compiled = speedups.decode_user_frame  # read on each call: speedups.disabled() switches it off
    events = compiled(data) if compiled is not None else None
    if events is None:
        events = _fast(data)
    if events is not None:
        return events
    try:
        frame = codec.json_or_text(data)
    except TextFrameError as text:
        return [TextFrame(text.text)]
    if frame is None:
        return []
    try:
        wire = _frame_decoder.decode(frame)
    except msgspec.ValidationError:
        return _decode_each(frame)
    except msgspec.DecodeError as exc:
        malformed(f"user frame is not valid JSON: {exc}")
    try:
        if type(wire) is list:
            return [user_event_from_wire(w) for w in wire]
        return [user_event_from_wire(wire)]
    except MalformedMessageError:
        raise
    except InputError as exc:
        malformed(str(exc))


def _decode_each(frame: bytes | str) -> list[UserEvent]:
    out: list[UserEvent] = []
    for obj in codec.decode_objects(frame):
        event_type = obj.get("event_type")
        cls = PM_USER_TYPES.get(event_type) if isinstance(event_type, str) else None
        if cls is None:
            out.append(UnknownEvent(str(event_type or ""), obj))
            continue
        out.append(user_event_from_wire(codec.convert(obj, cls, event_type)))  # type: ignore[arg-type]
    return out


def decode_trade(data: bytes | str) -> TradeEvent:
    """One trade object: a /data/trades item or a user-channel trade event."""
    try:
        return trade_from_wire(_trade_decoder.decode(data))
    except msgspec.DecodeError as exc:
        malformed(f"trade: {exc}", event_type="trade")


def decode_trades_page(data: bytes | str) -> TradesPage:
    try:
        page = _trades_page_decoder.decode(data)
    except msgspec.DecodeError as exc:
        malformed(f"trades page: {exc}", event_type="trade")
    return TradesPage(tuple(trade_from_wire(t) for t in page.data), page.next_cursor, page.limit, page.count)


# --- typed -> wire ---------------------------------------------------------------------------------


def order_event_wire(e: OrderEvent) -> dict[str, Any]:
    """Key order of the recorded messages (alphabetical, as the venue serializes them)."""
    return {
        "asset_id": e.asset_id,
        "associate_trades": list(e.associate_trades) if e.associate_trades else None,
        "created_at": codec.ts_text(e.created_at),
        "event_type": "order",
        "expiration": str(e.expiration),
        "id": e.id,
        "maker_address": e.maker_address,
        "market": e.market,
        "order_owner": e.order_owner,
        "order_type": e.order_type.value if e.order_type is not None else "",
        "original_size": fmt_micro(e.original_size),
        "outcome": e.outcome,
        "owner": e.owner,
        "price": fmt_micro(e.price),
        "side": e.side.name,
        "size_matched": fmt_micro(e.size_matched),
        "status": e.status.value,
        "timestamp": codec.ts_text(e.timestamp_ms),
        "type": e.type.value,
    }


def _maker_wire(m: MakerOrderFill) -> PmMakerOrder:
    return PmMakerOrder(
        order_id=m.order_id,
        owner=m.owner,
        maker_address=m.maker_address,
        matched_amount=fmt_micro(m.matched_amount),
        price=fmt_micro(m.price),
        fee_rate_bps="" if m.fee_rate_bps is None else str(m.fee_rate_bps),
        asset_id=m.asset_id,
        outcome=m.outcome,
        side=None if m.side is None else m.side.name,
        outcome_index=UNSET if m.outcome_index is None else m.outcome_index,
    )


def trade_wire(e: TradeEvent) -> dict[str, Any]:
    """A user-channel trade event."""
    out: dict[str, Any] = {
        "event_type": "trade",
        "type": "TRADE",
        "id": e.id,
        "taker_order_id": e.taker_order_id,
        "market": e.market,
        "asset_id": e.asset_id,
        "side": e.side.name,
        "size": fmt_micro(e.size),
        "fee_rate_bps": "" if e.fee_rate_bps is None else str(e.fee_rate_bps),
        "price": fmt_micro(e.price),
        "status": e.status.value,
        "match_time": codec.ts_text(e.match_time),
        "last_update": codec.ts_text(e.last_update),
        "timestamp": codec.ts_text(e.timestamp_ms),
        "outcome": e.outcome,
        "owner": e.owner,
        "trade_owner": e.trade_owner,
        "maker_address": e.maker_address,
        "transaction_hash": e.transaction_hash,
    }
    if e.bucket_index is not None:
        out["bucket_index"] = e.bucket_index
    if e.trader_side is not None:
        out["trader_side"] = e.trader_side.value
    if e.err_msg:
        out["err_msg"] = e.err_msg
    out["maker_orders"] = [_maker_wire(m) for m in e.maker_orders]
    return out


def trade_item(e: TradeEvent) -> PmTrade:
    """A GET /data/trades item."""
    return PmTrade(
        id=e.id,
        taker_order_id=e.taker_order_id,
        market=e.market,
        asset_id=e.asset_id,
        side=e.side.name,
        size=fmt_micro(e.size),
        fee_rate_bps="" if e.fee_rate_bps is None else str(e.fee_rate_bps),
        price=fmt_micro(e.price),
        status=e.status.value,
        match_time=codec.ts_text(e.match_time),
        last_update=codec.ts_text(e.last_update),
        outcome=e.outcome,
        bucket_index=e.bucket_index,
        owner=e.owner,
        maker_address=e.maker_address,
        transaction_hash=e.transaction_hash,
        maker_orders=[_maker_wire(m) for m in e.maker_orders],
        trader_side=None if e.trader_side is None else e.trader_side.value,
        err_msg=e.err_msg or UNSET,
    )


def user_event_wire(event: UserEvent) -> dict[str, Any]:
    if isinstance(event, OrderEvent):
        return order_event_wire(event)
    if isinstance(event, TradeEvent):
        return trade_wire(event)
    if isinstance(event, UnknownEvent):
        return event.data
    raise TypeError(f"{type(event).__name__} has no JSON form")


def encode_user_event(event: UserEvent) -> bytes:
    if isinstance(event, TextFrame):
        return event.text.encode()
    return codec.encoder.encode(user_event_wire(event))


def encode_user_frame(events: Iterable[UserEvent]) -> bytes:
    return codec.encoder.encode([user_event_wire(e) for e in events])


def encode_trades_page(page: TradesPage) -> bytes:
    count = len(page.data)
    return codec.encoder.encode(
        PmPage(
            page.limit if page.limit is not None else count,
            page.count if page.count is not None else count,
            page.next_cursor,
            [trade_item(t) for t in page.data],
        )
    )
