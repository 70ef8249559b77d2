"""HTTP plumbing shared by the handlers: JSON in and out, venue-style errors, cursors."""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Sequence
from itertools import accumulate
from typing import Any, Final, TypeVar

import msgspec
from aiohttp import web

from polyoms.core.errors import (
    AuthError,
    CancelOnlyError,
    InputError,
    NotFoundError,
    OrderError,
    PolyomsError,
    PostOnlyModeError,
    RateLimitedError,
    TradingDisabledError,
    VenueRestartingError,
    VenueUnavailableError,
)
from polyoms.polymarket.protocol import errors as venue_errors
from polyoms.polymarket.protocol.wire import PmPage

# ASCII digits only: int() and str.isdigit() also take "²", Arabic-Indic digits, "1_0" and " 5 ".
_UINT = re.compile(r"[0-9]{1,18}")
MAX_QUERY_INT: Final = 10**18 - 1
# Far deeper than any request the venue's clients send (an order batch is 3 levels deep).
MAX_JSON_DEPTH: Final = 64
# A string literal; an unterminated one runs to the end, so that no match is ever retried (linear).
_JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*(?:"|\\?\Z)', re.DOTALL)
_NOT_BRACKET: Final = bytes(sorted(set(range(256)) - set(b"[]{}")))
_STEP: Final = [1 if b in b"[{" else -1 if b in b"]}" else 0 for b in range(256)]
FIRST_CURSOR: Final = "MA=="
END_CURSOR: Final = "LTE="
_encoder = msgspec.json.Encoder(decimal_format="number")
T = TypeVar("T")


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(body=_encoder.encode(data), status=status, content_type="application/json", headers=headers)


def error_body(message: str, **extra: Any) -> dict[str, Any]:
    return {"error": message, **extra}


def status_for(exc: PolyomsError) -> int:
    if exc.status is not None:
        return exc.status
    if isinstance(exc, AuthError):
        return 401
    if isinstance(exc, NotFoundError):
        return 404
    if isinstance(exc, RateLimitedError):
        return 429
    if isinstance(exc, VenueRestartingError):
        return 425
    if isinstance(exc, PostOnlyModeError | CancelOnlyError | TradingDisabledError):
        return 503
    if isinstance(exc, VenueUnavailableError):
        return 500
    if isinstance(exc, InputError | OrderError):
        return 400
    return 500


def error_response(exc: PolyomsError) -> web.Response:
    headers: dict[str, str] = {}
    extra: dict[str, Any] = {}
    retry_after = getattr(exc, "retry_after", None)
    if retry_after is not None:
        headers["Retry-After"] = str(int(retry_after))
        if isinstance(exc, PostOnlyModeError):
            extra = {"code": venue_errors.POST_ONLY_MODE_CODE, "retry_after_seconds": int(retry_after)}
    return json_response(error_body(exc.message, **extra), status=status_for(exc), headers=headers or None)


def too_deep(data: bytes | str, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether JSON text nests arrays/objects deeper than `limit` (strings do not count).

    The decoder recurses in C up to the interpreter's recursion limit, which libraries raise
    (py_ecc sets 100,000): deep enough input then overflows the stack instead of raising.
    """
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data
    if raw.count(b"[") + raw.count(b"{") <= limit:  # every body the venue's clients send
        return False
    brackets = _JSON_STRING.sub(b"", raw).translate(None, _NOT_BRACKET)
    return max(accumulate(map(_STEP.__getitem__, brackets)), default=0) > limit


def decode_json(body: bytes, message: str = "Invalid payload") -> Any:
    if not body:
        return None
    if too_deep(body):
        raise InputError(message, status=400)
    try:
        return msgspec.json.decode(body)
    except (msgspec.DecodeError, RecursionError):
        raise InputError(message, status=400) from None


def parse_uint(text: str) -> int | None:
    """A non-negative decimal integer of ASCII digits (at most 18), else None."""
    return int(text) if _UINT.fullmatch(text) else None


def query(request: web.Request, name: str, *, required: bool = False) -> str | None:
    value = request.query.get(name)
    if required and not value:
        raise InputError(f"missing required parameter: {name}", status=400)
    return value or None


def int_query(request: web.Request, name: str, *, maximum: int = MAX_QUERY_INT) -> int | None:
    """An optional integer query parameter in [0, maximum], or a 400 naming it."""
    value = query(request, name)
    if value is None:
        return None
    number = parse_uint(value)
    if number is None or number > maximum:
        raise InputError(f"invalid {name}: expected an integer in [0, {maximum}]", status=400)
    return number


def encode_cursor(offset: int) -> str:
    return base64.b64encode(str(offset).encode()).decode("ascii")


def decode_cursor(cursor: str | None) -> int:
    if not cursor or cursor == FIRST_CURSOR:
        return 0
    if cursor == END_CURSOR:
        return -1
    try:
        text = base64.b64decode(cursor, validate=True).decode("ascii")
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise InputError("invalid next_cursor", status=400) from None
    if text == "-1":
        return -1
    offset = parse_uint(text)
    if offset is None:
        raise InputError("invalid next_cursor", status=400)
    return offset


def paginate(items: Sequence[T], cursor: str | None, limit: int) -> tuple[Sequence[T], str]:
    """One page and the cursor of the next (`LTE=` when this is the last)."""
    offset = decode_cursor(cursor)
    if offset < 0:
        return [], END_CURSOR
    page = items[offset : offset + limit]
    end = offset + len(page)
    return page, (encode_cursor(end) if end < len(items) else END_CURSOR)


def page_body(items: Sequence[T], next_cursor: str, limit: int) -> PmPage[T]:
    return PmPage(limit, len(items), next_cursor, list(items))
