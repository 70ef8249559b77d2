"""HTTP plumbing shared by the handlers: JSON in and out, venue-style errors, cursors."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
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
            extra = {"code": "post_only_mode", "retry_after_seconds": int(retry_after)}
    return json_response(error_body(exc.message, **extra), status=status_for(exc), headers=headers or None)


def bad_request(message: str) -> web.HTTPException:
    return web.HTTPBadRequest(body=_encoder.encode(error_body(message)), content_type="application/json")


def decode_json(body: bytes, message: str = "Invalid payload") -> Any:
    try:
        return msgspec.json.decode(body) if body else None
    except msgspec.DecodeError:
        raise InputError(message, status=400) from None


def query(request: web.Request, name: str, *, required: bool = False) -> str | None:
    value = request.query.get(name)
    if required and not value:
        raise InputError(f"missing required parameter: {name}", status=400)
    return value or None


def encode_cursor(offset: int) -> str:
    return base64.b64encode(str(offset).encode()).decode("ascii")


def decode_cursor(cursor: str | None) -> int:
    if not cursor or cursor == FIRST_CURSOR:
        return 0
    if cursor == END_CURSOR:
        return -1
    try:
        offset = int(base64.b64decode(cursor, validate=True).decode("ascii"))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise InputError("invalid next_cursor", status=400) from None
    if offset < 0:
        return -1
    return offset


def paginate(items: Sequence[T], cursor: str | None, limit: int) -> tuple[Sequence[T], str]:
    """One page and the cursor of the next (`LTE=` when this is the last)."""
    offset = decode_cursor(cursor)
    if offset < 0:
        return [], END_CURSOR
    page = items[offset : offset + limit]
    end = offset + len(page)
    return page, (encode_cursor(end) if end < len(items) else END_CURSOR)


def page_body(items: Sequence[Any], next_cursor: str, limit: int) -> dict[str, Any]:
    return {"limit": limit, "count": len(items), "next_cursor": next_cursor, "data": list(items)}
