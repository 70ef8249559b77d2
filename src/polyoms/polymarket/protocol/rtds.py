"""RTDS, the real-time data service (doc §6.7): crypto reference prices.

Frames are `{"topic", "type", "timestamp", "payload"}`. For `crypto_prices*` topics an `update`
carries one point (`payload.value`, and on newer messages `payload.full_accuracy_value` as a string),
and the answer to `subscribe` carries a backfill (`payload.data[]`). Both become `CryptoPrices`.
Values are exact Decimals read from the JSON text (no float), preferring `full_accuracy_value`.
Other topics decode to `UnknownEvent` (their shapes are not needed for trading).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Final

import msgspec

from polyoms.core.market_events import CryptoPricePoint, CryptoPrices, RtdsEvent, TextFrame, UnknownEvent
from polyoms.polymarket.protocol import codec
from polyoms.polymarket.protocol.codec import TextFrameError, malformed


class WirePricePoint(msgspec.Struct, gc=False):
    timestamp: int
    value: Decimal


class WireCryptoPayload(msgspec.Struct, gc=False):
    symbol: str
    timestamp: int | None = None
    value: Decimal | None = None
    full_accuracy_value: Decimal | None = None
    data: list[WirePricePoint] | None = None


class WireRtds(msgspec.Struct, gc=False):
    """The envelope; the payload stays raw JSON until the topic says how to read it (exact numbers)."""

    topic: str
    type: str = ""
    timestamp: int | None = None
    payload: msgspec.Raw = msgspec.Raw(b"null")


_decoder: Final = msgspec.json.Decoder(WireRtds | list[WireRtds])
_crypto_payload: Final = msgspec.json.Decoder(WireCryptoPayload)

CRYPTO_TOPICS: Final = frozenset({"crypto_prices", "crypto_prices_chainlink"})


def _crypto(w: WireRtds) -> CryptoPrices:
    try:
        p = _crypto_payload.decode(w.payload)
    except msgspec.DecodeError as exc:
        malformed(f"{w.topic} payload: {exc}", event_type=w.topic)
    if p.data is not None:
        points = tuple(CryptoPricePoint(d.timestamp, d.value) for d in p.data)
    else:
        value = p.full_accuracy_value if p.full_accuracy_value is not None else p.value
        if value is None or p.timestamp is None:
            malformed(f"{w.topic} update without value/timestamp", event_type=w.topic)
        points = (CryptoPricePoint(p.timestamp, value),)
    return CryptoPrices(
        topic=w.topic,
        type=w.type,
        symbol=p.symbol,
        timestamp_ms=w.timestamp if w.timestamp is not None else (points[-1].timestamp_ms if points else 0),
        points=points,
    )


def _event(w: WireRtds) -> RtdsEvent:
    if w.topic in CRYPTO_TOPICS:
        return _crypto(w)
    data = {"topic": w.topic, "type": w.type, "timestamp": w.timestamp, "payload": msgspec.json.decode(w.payload)}
    return UnknownEvent(w.topic, data)


def decode_rtds_frame(data: bytes | str) -> list[RtdsEvent]:
    """Every message in one RTDS text frame ([] for a keepalive)."""
    try:
        frame = codec.json_or_text(data)
    except TextFrameError as text:
        return [TextFrame(text.text)]
    if frame is None:
        return []
    try:
        wire = _decoder.decode(frame)
    except msgspec.ValidationError:
        # Not the topic envelope (e.g. an error object): keep it whole.
        return [UnknownEvent(str(obj.get("type", "")), obj) for obj in codec.decode_objects(frame)]
    except msgspec.DecodeError as exc:
        malformed(f"RTDS frame is not valid JSON: {exc}")
    items = wire if isinstance(wire, list) else [wire]
    return [_event(w) for w in items]


def crypto_prices_wire(e: CryptoPrices) -> dict[str, Any]:
    if len(e.points) == 1 and e.type != "subscribe":
        point = e.points[0]
        payload: dict[str, Any] = {
            "symbol": e.symbol,
            "timestamp": point.timestamp_ms,
            "value": point.value,
            "full_accuracy_value": str(point.value),
        }
    else:
        payload = {"symbol": e.symbol, "data": [{"timestamp": p.timestamp_ms, "value": p.value} for p in e.points]}
    return {"topic": e.topic, "type": e.type, "timestamp": e.timestamp_ms, "payload": payload}


def encode_rtds_event(event: RtdsEvent) -> bytes:
    if isinstance(event, TextFrame):
        return event.text.encode()
    if isinstance(event, UnknownEvent):
        return codec.encoder.encode(event.data)
    return codec.encoder.encode(crypto_prices_wire(event))
