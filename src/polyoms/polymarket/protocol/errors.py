"""The venue's error catalogue: status codes and message strings to typed errors (protocol doc §5).

Matching is by substring on the lower-cased message because wording varies slightly between
endpoints and versions; the most specific pattern comes first. The local exchange emits the
exact strings listed in `exchange/messages.py`, so both directions are checked by tests.
"""

from __future__ import annotations

from typing import Any

import msgspec

from polyoms.core.errors import (
    AccountRestrictedError,
    AuthError,
    BelowMinimumSizeError,
    CancelOnlyError,
    DuplicateOrderError,
    FakNoMatchError,
    FokNotFilledError,
    InsufficientBalanceError,
    InvalidExpirationError,
    InvalidOrderError,
    InvalidPriceError,
    InvalidSignatureError,
    MarketNotReadyError,
    NotFoundError,
    OrderDelayedError,
    OrderRejectedError,
    OrderVersionMismatchError,
    PolyomsError,
    PostOnlyModeError,
    PostOnlyWouldCrossError,
    RateLimitedError,
    TradingDisabledError,
    VenueError,
    VenueRestartingError,
    VenueUnavailableError,
)

# (substring of the lower-cased message, class); first match wins.
MESSAGE_PATTERNS: tuple[tuple[str, type[PolyomsError]], ...] = (
    ("order_version_mismatch", OrderVersionMismatchError),
    ("post_only_mode", PostOnlyModeError),
    ("post-only mode", PostOnlyModeError),
    ("invalid post-only order", PostOnlyWouldCrossError),
    ("breaks minimum tick size", InvalidPriceError),
    ("lower than the minimum", BelowMinimumSizeError),
    ("min size: $", BelowMinimumSizeError),
    ("duplicated", DuplicateOrderError),
    ("not enough balance", InsufficientBalanceError),
    ("allowance is not enough", InsufficientBalanceError),
    ("invalid expiration", InvalidExpirationError),
    ("invalid signature", InvalidSignatureError),
    ("fok orders are", FokNotFilledError),
    ("no orders found to match with fak", FakNoMatchError),
    ("not yet ready to process new orders", MarketNotReadyError),
    ("match delayed", OrderDelayedError),
    ("address banned", AccountRestrictedError),
    ("closed only mode", AccountRestrictedError),
    ("maker address not allowed", AccountRestrictedError),
    ("order signer address has to be", AuthError),
    ("order owner has to be", AuthError),
    ("cancel-only", CancelOnlyError),
    ("trading is currently disabled", TradingDisabledError),
    ("invalid l1 request headers", AuthError),
    ("unauthorized", AuthError),
    ("could not create api key", AuthError),
    ("could not derive api key", AuthError),
    ("too many orders in payload", InvalidOrderError),
    ("invalid order payload", InvalidOrderError),
    ("too many requests", RateLimitedError),
    # The dead-man switch's chain broke: the body names the id to continue with (doc §4.8).
    ("invalid heartbeat id", VenueError),
    ("not found", NotFoundError),
    # Legacy V1 error codes (doc §5.2), still possible in `errorMsg` of batch items.
    ("invalid_order_min_tick_size", InvalidPriceError),
    ("invalid_order_min_size", BelowMinimumSizeError),
    ("invalid_order_not_enough_balance", InsufficientBalanceError),
    ("invalid_order_expiration", InvalidExpirationError),
    ("invalid_order_error", InvalidOrderError),
    ("fok_order_not_filled_error", FokNotFilledError),
    ("delaying_order_error", OrderRejectedError),
    ("order_delayed", OrderDelayedError),
    ("market_not_ready", MarketNotReadyError),
    ("execution_error", OrderRejectedError),
)

_STATUS_CLASSES: dict[int, type[PolyomsError]] = {
    401: AuthError,
    404: NotFoundError,
    425: VenueRestartingError,
    429: RateLimitedError,
}


def error_message(body: bytes | str | dict[str, Any] | None) -> tuple[str, dict[str, Any]]:
    """(message, decoded JSON object or {}) from an error body of any shape."""
    if body is None:
        return "", {}
    data: Any = body
    if isinstance(body, bytes | str):
        try:
            data = msgspec.json.decode(body)
        except msgspec.DecodeError:
            text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
            return text.strip(), {}
    if isinstance(data, dict):
        for key in ("error", "errorMsg", "error_msg", "message"):
            value = data.get(key)
            if isinstance(value, str) and value:
                return value, data
        return "", data
    if isinstance(data, str):
        return data, {}
    return "", {}


def classify(message: str, status: int | None = None) -> type[PolyomsError]:
    lowered = message.lower()
    for pattern, cls in MESSAGE_PATTERNS:
        if pattern in lowered:
            return cls
    if status is not None:
        if status in _STATUS_CLASSES:
            return _STATUS_CLASSES[status]
        if status >= 500:
            return VenueUnavailableError
        if status == 400:
            return OrderRejectedError
    return VenueError


def error_from_response(
    status: int | None,
    body: bytes | str | dict[str, Any] | None,
    *,
    retry_after: float | None = None,
    **context: Any,
) -> PolyomsError:
    """The typed error for a venue answer (an HTTP error, or a batch item with success=false)."""
    message, data = error_message(body)
    if retry_after is None and isinstance(data.get("retry_after_seconds"), int | float):
        retry_after = float(data["retry_after_seconds"])
    cls = classify(message, status)
    text = message or f"HTTP {status}"
    kwargs: dict[str, Any] = {"source": "venue", "status": status, "venue_message": message or None, **context}
    if issubclass(cls, RateLimitedError | VenueUnavailableError):
        return cls(text, retry_after=retry_after, **kwargs)
    return cls(text, **kwargs)
