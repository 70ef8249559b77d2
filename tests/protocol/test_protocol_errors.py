"""The venue's error catalogue (protocol doc §5.2) maps to the typed error hierarchy."""

from __future__ import annotations

import json

import pytest

from polyoms.core.errors import (
    AccountRestrictedError,
    AuthError,
    BelowMinimumSizeError,
    CancelOnlyError,
    DuplicateOrderError,
    FakNoMatchError,
    FokNotFilledError,
    InputError,
    InsufficientBalanceError,
    InvalidExpirationError,
    InvalidOrderError,
    InvalidOrderTypeError,
    InvalidPriceError,
    InvalidSignatureError,
    InvalidSizeError,
    MarketNotReadyError,
    NotFoundError,
    OrderDelayedError,
    OrderError,
    OrderRejectedError,
    OrderVersionMismatchError,
    PolyomsError,
    PostOnlyModeError,
    PostOnlyWouldCrossError,
    RateLimitedError,
    TooManyDecimalsError,
    TradingDisabledError,
    VenueError,
    VenueRestartingError,
    VenueUnavailableError,
)
from polyoms.polymarket.protocol import errors as venue_errors
from polyoms.polymarket.protocol.errors import (
    _STATUS_CLASSES,
    MESSAGE_PATTERNS,
    classify,
    error_from_response,
    error_message,
)

OID = "0x0b5d6a9c5e3f1e2d4c3b2a19081726354453627180910a0b0c0d0e0f10111213"

# (HTTP status, message exactly as the venue sends it, class)
CATALOGUE: list[tuple[int, str, type[PolyomsError]]] = [
    # service-wide
    (401, "Unauthorized/Invalid api key", AuthError),
    (401, "Invalid L1 Request headers", AuthError),
    (400, "Could not create api key", AuthError),
    (400, "Could not derive api key!", AuthError),
    (503, "Trading is currently disabled. Check polymarket.com for updates", TradingDisabledError),
    (
        503,
        "Trading is currently cancel-only. New orders are not accepted, but cancels are allowed.",
        CancelOnlyError,
    ),
    (503, "post-only mode: only post-only orders and cancels are allowed", PostOnlyModeError),
    (429, "Too Many Requests", RateLimitedError),
    # POST /order, /orders: request validation
    (400, "Invalid order payload", InvalidOrderError),
    (400, "the order owner has to be the owner of the API KEY", AuthError),
    (400, "the order signer address has to be the address of the API KEY", AuthError),
    (400, "maker address not allowed, please use the deposit wallet flow", AccountRestrictedError),
    (400, "'0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266' address banned", AccountRestrictedError),
    (400, "'0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266' address in closed only mode", AccountRestrictedError),
    (400, "Too many orders in payload: 16, max allowed: 15", InvalidOrderError),
    (400, "order_version_mismatch", OrderVersionMismatchError),
    (400, "Invalid Heartbeat ID", VenueError),
    (400, "invalid order: order_version_mismatch (expected 2)", OrderVersionMismatchError),
    # order processing
    (400, "invalid post-only order: order crosses book", PostOnlyWouldCrossError),
    (400, f"order {OID} is invalid. Price (0.555) breaks minimum tick size rule: 0.01", InvalidPriceError),
    (400, f"order {OID} is invalid. Size (1) lower than the minimum: 5", BelowMinimumSizeError),
    (400, "invalid amount for a marketable BUY order ($0.5), min size: $1", BelowMinimumSizeError),
    (400, f"order {OID} is invalid. Duplicated.", DuplicateOrderError),
    (400, "not enough balance / allowance", InsufficientBalanceError),
    (400, "the balance is not enough -> balance: 0, allowance is not enough -> allowance: 0", InsufficientBalanceError),
    (400, "invalid nonce", OrderRejectedError),
    (400, "invalid expiration", InvalidExpirationError),
    (400, "order canceled in the CTF exchange contract", OrderRejectedError),
    (400, "order match delayed due to market conditions", OrderDelayedError),
    (400, "order couldn't be fully filled. FOK orders are fully filled or killed.", FokNotFilledError),
    (
        400,
        "no orders found to match with FAK order. FAK orders are partially filled or killed if no match is found.",
        FakNoMatchError,
    ),
    (400, "the market is not yet ready to process new orders", MarketNotReadyError),
    (404, "No orderbook exists for the requested token id", NotFoundError),
    (400, "invalid signature", InvalidSignatureError),
    # matching engine (500-class)
    (500, "there are no matching orders", VenueUnavailableError),
    (500, "FOK orders are filled or killed", FokNotFilledError),
    (500, "the trade contains rounding issues", VenueUnavailableError),
    (
        500,
        "the price of the taker's order has a discrepancy greater than allowed with the worst maker order",
        VenueUnavailableError,
    ),
    (500, "could not insert order", VenueUnavailableError),
]

# Legacy V1 codes that may still arrive in `errorMsg` of batch items (no HTTP status of their own).
LEGACY: list[tuple[str, type[PolyomsError]]] = [
    ("INVALID_ORDER_MIN_TICK_SIZE", InvalidPriceError),
    ("INVALID_ORDER_MIN_SIZE", BelowMinimumSizeError),
    ("INVALID_ORDER_DUPLICATED", DuplicateOrderError),
    ("INVALID_ORDER_NOT_ENOUGH_BALANCE", InsufficientBalanceError),
    ("INVALID_ORDER_EXPIRATION", InvalidExpirationError),
    ("INVALID_ORDER_ERROR", InvalidOrderError),
    ("EXECUTION_ERROR", OrderRejectedError),
    ("ORDER_DELAYED", OrderDelayedError),
    ("DELAYING_ORDER_ERROR", OrderRejectedError),
    ("FOK_ORDER_NOT_FILLED_ERROR", FokNotFilledError),
    ("MARKET_NOT_READY", MarketNotReadyError),
]


@pytest.mark.parametrize(("status", "message", "cls"), CATALOGUE, ids=[m[:48] for _, m, _ in CATALOGUE])
def test_catalogue_message_maps_to_its_class(status: int, message: str, cls: type[PolyomsError]) -> None:
    body = json.dumps({"error": message}).encode()
    err = error_from_response(status, body, order_id=OID, token_id="1234")
    assert type(err) is cls
    assert err.source == "venue"
    assert err.status == status
    assert err.venue_message == message
    assert err.message == message
    assert err.context == {"order_id": OID, "token_id": "1234"}
    assert message in str(err) and OID in str(err)
    # the same answer through every body shape the venue (or a batch item) uses
    assert type(error_from_response(status, message)) is cls
    assert type(error_from_response(status, {"error": message})) is cls
    assert type(error_from_response(status, {"success": False, "errorMsg": message})) is cls


def test_each_venue_text_constant_is_a_catalogue_text_and_maps_to_its_class() -> None:
    """The constants the local exchange and the client use are the catalogue's texts, word for word."""
    texts: list[tuple[int, str, type[PolyomsError]]] = [
        (400, venue_errors.INVALID_ORDER_PAYLOAD, InvalidOrderError),
        (400, venue_errors.too_many_orders(16, 15), InvalidOrderError),
        (400, venue_errors.OWNER_MISMATCH, AuthError),
        (400, venue_errors.SIGNER_MISMATCH, AuthError),
        (400, venue_errors.INVALID_SIGNATURE, InvalidSignatureError),
        (400, venue_errors.ORDER_VERSION_MISMATCH, OrderVersionMismatchError),
        (400, venue_errors.POST_ONLY_CROSSES, PostOnlyWouldCrossError),
        (400, venue_errors.invalid_tick(OID, "0.555", "0.01"), InvalidPriceError),
        (400, venue_errors.below_min_size(OID, 1_000_000, 5_000_000), BelowMinimumSizeError),
        (400, venue_errors.marketable_buy_min(500_000), BelowMinimumSizeError),
        (400, venue_errors.FOK_NOT_FILLED, FokNotFilledError),
        (400, venue_errors.FAK_NO_MATCH, FakNoMatchError),
        (400, venue_errors.duplicated(OID), DuplicateOrderError),
        (400, venue_errors.NOT_ENOUGH_BALANCE, InsufficientBalanceError),
        (400, venue_errors.MARKET_NOT_READY, MarketNotReadyError),
        (400, venue_errors.INVALID_EXPIRATION, InvalidExpirationError),
        (404, venue_errors.NO_ORDERBOOK, NotFoundError),
        (400, venue_errors.INVALID_HEARTBEAT, VenueError),
        (401, venue_errors.L1_REFUSED, AuthError),
        (401, venue_errors.L2_REFUSED, AuthError),
        (400, venue_errors.DERIVE_KEY_FAILED, AuthError),
        (503, venue_errors.POST_ONLY_MODE, PostOnlyModeError),
        (429, venue_errors.TOO_MANY_REQUESTS, RateLimitedError),
    ]
    catalogue = {(status, message) for status, message, _ in CATALOGUE}
    for status, text, cls in texts:
        assert classify(text, status) is cls, text
        assert (status, text) in catalogue, text


@pytest.mark.parametrize(("code", "cls"), LEGACY)
def test_legacy_v1_error_codes_in_batch_items(code: str, cls: type[PolyomsError]) -> None:
    err = error_from_response(None, {"success": False, "errorMsg": code, "orderID": OID}, order_id=OID)
    assert type(err) is cls
    assert (err.source, err.status, err.venue_message) == ("venue", None, code)
    assert err.context == {"order_id": OID}
    assert type(error_from_response(400, {"error": code})) is cls


def test_post_only_mode_with_retry_after_seconds() -> None:
    body = (
        b'{"error":"post-only mode: only post-only orders and cancels are allowed",'
        b'"code":"post_only_mode","retry_after_seconds":90}'
    )
    err = error_from_response(503, body, order_id=OID)
    assert type(err) is PostOnlyModeError
    assert isinstance(err, VenueUnavailableError)
    assert err.retry_after == 90.0
    assert (err.source, err.status) == ("venue", 503)
    assert err.context == {"order_id": OID}
    # the Retry-After header, when the caller passes it, wins over the body
    assert error_from_response(503, body, retry_after=5.0).retry_after == 5.0  # type: ignore[attr-defined]


def test_cancel_only_and_disabled_are_unavailable_not_rejections() -> None:
    for message, cls in (
        ("Trading is currently cancel-only. New orders are not accepted, but cancels are allowed.", CancelOnlyError),
        ("Trading is currently disabled. Check polymarket.com for updates", TradingDisabledError),
    ):
        err = error_from_response(503, {"error": message}, retry_after=30)
        assert type(err) is cls and isinstance(err, VenueUnavailableError)
        assert not isinstance(err, OrderError)
        assert err.retry_after == 30  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("status", "body", "cls"),
    [
        (401, b"", AuthError),
        (401, b'{"error":"something new"}', AuthError),
        (404, b'{"error":"order not found"}', NotFoundError),
        (404, b"", NotFoundError),
        (425, b"", VenueRestartingError),
        (425, b"Too Early", VenueRestartingError),
        (429, b"", RateLimitedError),
        (429, b"rate limited, slow down", RateLimitedError),
        (500, b"", VenueUnavailableError),
        (500, b"<html>internal error</html>", VenueUnavailableError),
        (502, b"Bad Gateway", VenueUnavailableError),
        (503, b"", VenueUnavailableError),
        (504, b'{"error":"upstream timeout"}', VenueUnavailableError),
        (400, b'{"error":"something the catalogue does not know"}', OrderRejectedError),
        (418, b'{"error":"I am a teapot"}', VenueError),
    ],
)
def test_status_codes_without_a_known_message(status: int, body: bytes, cls: type[PolyomsError]) -> None:
    err = error_from_response(status, body, path="/order")
    assert type(err) is cls
    assert (err.source, err.status) == ("venue", status)
    assert err.context == {"path": "/order"}
    assert err.message  # never empty: falls back to "HTTP <status>"
    if not body:
        assert err.message == f"HTTP {status}" and err.venue_message is None


def test_rate_limited_keeps_retry_after() -> None:
    err = error_from_response(429, {"error": "Too Many Requests"}, retry_after=2.5)
    assert isinstance(err, RateLimitedError) and err.retry_after == 2.5
    assert error_from_response(429, {"error": "Too Many Requests", "retry_after_seconds": 7}).retry_after == 7.0  # type: ignore[attr-defined]


def test_venue_errors_are_the_same_classes_as_local_ones() -> None:
    """One class per concept: a venue tick-size rejection is caught like a local one."""
    err = error_from_response(
        400, {"error": f"order {OID} is invalid. Price (0.555) breaks minimum tick size rule: 0.01"}
    )
    assert isinstance(err, InvalidPriceError) and isinstance(err, InputError) and isinstance(err, ValueError)
    with pytest.raises(InvalidPriceError):
        raise err


def test_error_message_extraction() -> None:
    assert error_message(None) == ("", {})
    assert error_message(b'{"error":"x","code":"c"}') == ("x", {"error": "x", "code": "c"})
    assert error_message('{"errorMsg":"y"}')[0] == "y"
    assert error_message({"error_msg": "z"})[0] == "z"
    assert error_message({"message": "m"})[0] == "m"
    assert error_message(b'"plain json string"') == ("plain json string", {})
    assert error_message(b"  not json  ") == ("not json", {})
    assert error_message(b"[1, 2]") == ("", {})
    assert error_message({"error": ""}) == ("", {"error": ""})


def test_classify_prefers_the_most_specific_pattern() -> None:
    # "post-only mode" (503) vs "invalid post-only order" (400)
    assert classify("post-only mode: only post-only orders and cancels are allowed") is PostOnlyModeError
    assert classify("invalid post-only order: order crosses book") is PostOnlyWouldCrossError
    # a FAK message mentions neither FOK nor "not found"
    assert classify("no orders found to match with FAK order.") is FakNoMatchError
    assert classify("ORDER NOT FOUND") is NotFoundError
    assert classify("unknown", None) is VenueError


def test_venue_messages_never_leak_into_local_errors_as_local() -> None:
    err = error_from_response(400, {"error": "invalid signature"})
    assert err.source == "venue" and err.venue_message == "invalid signature"
    assert isinstance(err, InvalidSignatureError)


def test_every_pattern_and_status_class_is_exercised_by_the_catalogue() -> None:
    """No dead pattern: each class `classify` can return by message or status appears above."""
    reached = {cls for _, _, cls in CATALOGUE} | {cls for _, cls in LEGACY}
    reached |= {NotFoundError, VenueRestartingError, VenueError}  # status-only / fallback rows
    by_pattern = {cls for _, cls in MESSAGE_PATTERNS}
    by_status = set(_STATUS_CLASSES.values()) | {VenueUnavailableError, OrderRejectedError, VenueError}
    assert by_pattern | by_status <= reached
    # and every catalogue row is matched by a pattern or a status, never by accident of order
    for status, message, cls in CATALOGUE:
        assert classify(message, status) is cls
    # local-only classes are never produced from a venue answer
    assert not ({InvalidSizeError, TooManyDecimalsError, InvalidOrderTypeError} & (by_pattern | by_status))
