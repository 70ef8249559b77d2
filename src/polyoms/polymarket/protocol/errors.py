"""The venue's error catalogue (protocol doc §5): its exact message texts, and status codes and
messages to typed errors.

The texts are defined here once: the local exchange answers with them and the client refers to them.
Matching is by substring on the lower-cased message because wording varies slightly between endpoints
and versions; the most specific pattern comes first. Tests check both directions.
"""

from __future__ import annotations

from typing import Any, Final

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
from polyoms.core.units import fmt_micro

# --- the venue's texts (protocol doc §5.2; SDKs pattern-match some): never reworded ----------------
# Templates use `str.format` fields; the functions below fill them with venue-style numbers.

INVALID_ORDER_PAYLOAD: Final = "Invalid order payload"
TOO_MANY_ORDERS: Final = "Too many orders in payload: {n}, max allowed: {max}"
OWNER_MISMATCH: Final = "the order owner has to be the owner of the API KEY"
SIGNER_MISMATCH: Final = "the order signer address has to be the address of the API KEY"
INVALID_SIGNATURE: Final = "invalid signature"
ORDER_VERSION_MISMATCH: Final = "order_version_mismatch"
POST_ONLY_CROSSES: Final = "invalid post-only order: order crosses book"
INVALID_TICK: Final = "order {id} is invalid. Price ({price}) breaks minimum tick size rule: {tick}"
BELOW_MIN_SIZE: Final = "order {id} is invalid. Size ({size}) lower than the minimum: {min}"
MARKETABLE_BUY_MIN: Final = "invalid amount for a marketable BUY order (${amount}), min size: $1"
FOK_NOT_FILLED: Final = "order couldn't be fully filled. FOK orders are fully filled or killed."
FAK_NO_MATCH: Final = (
    "no orders found to match with FAK order. FAK orders are partially filled or killed if no match is found."
)
DUPLICATED: Final = "order {id} is invalid. Duplicated."
NOT_ENOUGH_BALANCE: Final = "not enough balance / allowance"
MARKET_NOT_READY: Final = "the market is not yet ready to process new orders"
INVALID_EXPIRATION: Final = "invalid expiration"
NO_ORDERBOOK: Final = "No orderbook exists for the requested token id"
"""The /book answer for an unknown token (404)."""
INVALID_HEARTBEAT: Final = "Invalid Heartbeat ID"
L1_REFUSED: Final = "Invalid L1 Request headers"
L2_REFUSED: Final = "Unauthorized/Invalid api key"
DERIVE_KEY_FAILED: Final = "Could not derive api key!"
POST_ONLY_MODE: Final = "post-only mode: only post-only orders and cancels are allowed"
POST_ONLY_MODE_CODE: Final = "post_only_mode"
"""The `code` field of the 503 answer in post-only mode."""
TOO_MANY_REQUESTS: Final = "Too Many Requests"


def too_many_orders(count: int, maximum: int) -> str:
    return TOO_MANY_ORDERS.format(n=count, max=maximum)


def invalid_tick(order_id: str, price_text: str, tick_text: str) -> str:
    return INVALID_TICK.format(id=order_id, price=price_text, tick=tick_text)


def below_min_size(order_id: str, size_micro: int, min_micro: int) -> str:
    return BELOW_MIN_SIZE.format(id=order_id, size=fmt_micro(size_micro), min=fmt_micro(min_micro))


def marketable_buy_min(amount_micro: int) -> str:
    return MARKETABLE_BUY_MIN.format(amount=fmt_micro(amount_micro))


def duplicated(order_id: str) -> str:
    return DUPLICATED.format(id=order_id)


# --- texts to typed errors ------------------------------------------------------------------------

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
