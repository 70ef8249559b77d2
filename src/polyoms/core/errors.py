"""The typed error hierarchy.

One class per concept, whoever detected it: a price off the tick grid is an `InvalidPriceError`
whether polyoms refused it before signing (`source="local"`) or the venue rejected it
(`source="venue"`). Callers catch the concept; `source`, `status` and `venue_message` say where it
came from. Context (token, side, price, size, amounts...) travels with the error; secrets never do.
"""

from __future__ import annotations

from typing import Any


class PolyomsError(Exception):
    """Base of every error polyoms raises on purpose."""

    def __init__(
        self,
        message: str,
        *,
        source: str = "local",
        status: int | None = None,
        venue_message: str | None = None,
        **context: Any,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.source = source
        self.status = status
        self.venue_message = venue_message
        self.context = {k: v for k, v in context.items() if v is not None}

    def __str__(self) -> str:
        if not self.context:
            return self.message
        ctx = ", ".join(f"{k}={v}" for k, v in self.context.items())
        return f"{self.message} ({ctx})"


# --- input and configuration -------------------------------------------------------------------


class InputError(PolyomsError, ValueError):
    """Bad input from a user, a config file or an API caller."""


class InvalidAmountError(InputError):
    """Not a finite number, or not representable exactly."""


class InvalidTickSizeError(InputError):
    """A tick size the venue does not use."""


class InvalidAddressError(InputError):
    """Not a 20-byte hex address."""


class InvalidKeyError(InputError):
    """A private key or API credential that cannot be used (its value is never shown)."""


class ConfigError(InputError):
    """A configuration value that cannot be used."""


# --- orders ------------------------------------------------------------------------------------


class OrderError(PolyomsError):
    """An order that cannot be placed as specified."""


class ReduceOnlyError(OrderError):
    """A reduce-only order that would add to a position (a BUY, or a SELL of more than is held)."""


class InvalidOrderError(OrderError, InputError):
    """Malformed order (the venue's `Invalid order payload`) or an inconsistent request."""


class InvalidPriceError(InvalidOrderError):
    """Price off the tick grid or outside [tick, 1 - tick]."""


InvalidTickError = InvalidPriceError


class InvalidSizeError(InvalidOrderError):
    """Size or amount that is zero, negative, NaN, infinite or too precise."""


class TooManyDecimalsError(InvalidSizeError):
    """More decimals than the venue accepts for this quantity."""


class BelowMinimumSizeError(InvalidOrderError):
    """Below the market's minimum size, or a marketable BUY under $1."""


class InvalidOrderTypeError(InvalidOrderError):
    """An order type / flag combination the venue refuses (postOnly with FOK/FAK...)."""


class InvalidExpirationError(InvalidOrderError):
    """GTD expiration in the past or too soon, or an expiration on a non-GTD order."""


class InsufficientBalanceError(OrderError):
    """`not enough balance / allowance`, counting what open orders already reserve."""


class InvalidSignatureError(OrderError):
    """The order's signature does not recover to its signer (or the wrong domain was used)."""


class PostOnlyWouldCrossError(OrderError):
    """A postOnly order that would take liquidity."""


class FokNotFilledError(OrderError):
    """A FOK order that could not fill completely (nothing filled)."""


class FakNoMatchError(OrderError):
    """A FAK order with nothing to match against (nothing filled)."""


class DuplicateOrderError(OrderError):
    """An order hash the venue has already seen."""


class OrderVersionMismatchError(OrderError):
    """Signed for another exchange version; refresh /version and sign again."""


class MarketNotReadyError(OrderError):
    """The market does not accept orders (not open yet, closed or resolved)."""


class OrderDelayedError(OrderError):
    """The venue held the order (matching delay); its outcome comes later."""


class OrderRejectedError(OrderError):
    """Any other order rejection from the venue."""


class AccountRestrictedError(OrderError):
    """Address banned, closed-only, or maker not allowed."""


# --- venue and transport -----------------------------------------------------------------------


class VenueError(PolyomsError):
    """The venue answered with an error not covered by a more specific class."""


class AuthError(VenueError):
    """Missing or invalid L1/L2 authentication (401), or API-key creation failures."""


class NotFoundError(VenueError):
    """The venue does not know the requested object (404)."""


class RateLimitedError(VenueError):
    """429; `retry_after` seconds when the venue said."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.retry_after = retry_after


class VenueUnavailableError(VenueError):
    """The venue cannot take the request now (5xx, timeouts, maintenance)."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.retry_after = retry_after


class VenueRestartingError(VenueUnavailableError):
    """HTTP 425: the matching engine is restarting (weekly, ~90 s)."""


class PostOnlyModeError(VenueUnavailableError):
    """503 post_only_mode: only post-only orders and cancels are accepted for a while."""


class CancelOnlyError(VenueUnavailableError):
    """503: trading is cancel-only."""


class TradingDisabledError(VenueUnavailableError):
    """503: trading is disabled venue-wide."""


class MalformedMessageError(VenueError):
    """A venue message (WebSocket frame or REST body) that does not fit its schema.

    Raised for a known message kind with missing or mistyped fields, or numbers that cannot be read
    exactly; an unknown `event_type` is not an error (it decodes to an "unknown event" value).
    """
