"""Shared pieces of the venue message codecs: exact number conversion, timestamps, frame handling.

Every venue number is a decimal string (sometimes a JSON number) and becomes integer micro-units
here, never a float. Prices hit a precomputed table of every price on the finest grid first (one dict
lookup); anything else is parsed exactly by `polyoms.core.units`. The text-to-value rules themselves
live with the typed events (`core.market_events`), which parse their own text lazily.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Final, NoReturn, TypeVar

import msgspec

from polyoms.core.enums import Side
from polyoms.core.errors import InputError, MalformedMessageError
from polyoms.core.market_events import (
    SIDE_TEXT,
    best_from_text,
    decimal_text_to_micro,
    price_from_text,
    side_from_text,
    size_from_text,
)
from polyoms.core.units import MICRO, PRICE_TEXT, Micro, TickSize, fmt_micro, tick_size, to_micro

PRICES: Final = PRICE_TEXT
SIDES: Final = SIDE_TEXT

# Millisecond timestamps are > 1e11 from 1973 on; a smaller value is in seconds.
_SECONDS_LIMIT: Final = 100_000_000_000

encoder: Final = msgspec.json.Encoder(decimal_format="number")

Number = str | int | float


def malformed(message: str, **context: Any) -> NoReturn:
    raise MalformedMessageError(message, source="venue", **context)


price = price_from_text
size = size_from_text
side = side_from_text


def number(value: Number, what: str) -> Micro:
    """Any exact decimal (string or JSON number) to micro-units."""
    if isinstance(value, str):
        return decimal_text_to_micro(value, what)
    try:
        return to_micro(value, what)
    except InputError:
        malformed(f"{what} {value!r} is not an exact decimal with at most 6 places", field=what, value=value)


def optional_number(value: Number | None, what: str) -> Micro | None:
    return None if value is None or value == "" else number(value, what)


def best_bid(text: str | None) -> Micro | None:
    return best_from_text(text, "best_bid", 0)


def best_ask(text: str | None) -> Micro | None:
    return best_from_text(text, "best_ask", MICRO)


def optional_side(text: str | None) -> Side | None:
    return None if text is None or text == "" else side(text)


def tick(value: Number | None, what: str = "tick_size") -> TickSize | None:
    if value is None or value == "":
        return None
    try:
        return tick_size(value)
    except InputError:
        malformed(f"unknown {what} {value!r}", field=what, value=value)


def required_tick(value: Number, what: str) -> TickSize:
    result = tick(value, what)
    if result is None:
        malformed(f"{what} is missing", field=what)
    return result


def integer(value: Number | None, what: str) -> int | None:
    """A whole number sent as a string or a number ("0", 1725841741); "" and null are absent."""
    if value is None or value == "":
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.isdigit() and value.isascii():
        return int(value)
    malformed(f"{what} must be a whole number, got {value!r}", field=what, value=value)


def timestamp_ms(value: Number | None) -> int | None:
    """Milliseconds; the venue sends some of these in seconds (user-channel trades), scaled here."""
    result = integer(value, "timestamp")
    if result is not None and result < _SECONDS_LIMIT:
        result *= 1000
    return result


def decimal(value: Number | Decimal | None, what: str) -> Decimal | None:
    if value is None or value == "":
        return None
    if isinstance(value, Decimal):
        return value
    try:
        return Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
    except ArithmeticError:
        malformed(f"{what} is not a number: {value!r}", field=what, value=value)


def ts_text(value: int | None) -> str:
    return "" if value is None else str(value)


def fmt_optional(value: Micro | None) -> str:
    return "" if value is None else fmt_micro(value)


# --- frames ---------------------------------------------------------------------------------------

KEEPALIVES: Final = frozenset({"PONG", "PING", "pong", "ping"})


def json_or_text(data: bytes | str) -> bytes | str | None:
    """The frame if it holds JSON; None for a keepalive or an empty frame; else raises _TextFrame."""
    head = data.lstrip()[:1]
    if head in (b"{", b"[", "{", "["):
        return data
    text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
    text = text.strip()
    if not text or text in KEEPALIVES:
        return None
    raise TextFrameError(text)


class TextFrameError(Exception):
    """Internal: the frame is plain text (not JSON, not a keepalive)."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text


def decode_objects(data: bytes | str) -> list[dict[str, Any]]:
    """A frame as a list of JSON objects (one object or an array of them), untyped."""
    try:
        value = msgspec.json.decode(data)
    except msgspec.DecodeError as exc:
        malformed(f"frame is not valid JSON: {exc}")
    items = value if isinstance(value, list) else [value]
    for item in items:
        if not isinstance(item, dict):
            malformed(f"frame item is not a JSON object: {item!r}"[:200])
    return items


T = TypeVar("T")


def convert(obj: dict[str, Any], cls: type[T], what: str) -> T:
    try:
        return msgspec.convert(obj, cls)
    except msgspec.ValidationError as exc:
        malformed(f"{what}: {exc}", event_type=what)
