"""Errors only the client can raise (the venue's own errors are in `polyoms.core.errors`)."""

from __future__ import annotations

from typing import Any

from polyoms.core.errors import VenueError, VenueUnavailableError


class CircuitOpenError(VenueUnavailableError):
    """The host's circuit breaker is open: the request was NOT sent. `retry_after` = seconds to the probe."""


class OrderOutcomeUnknownError(VenueError):
    """POST /order or /orders left without a usable answer (timeout, 5xx, dropped connection).

    The orders may or may not exist on the venue. They must NOT be sent again: the OMS resolves each
    by its id (the order hash) from the user stream, GET /data/order or /data/trades. Deliberately not
    a VenueUnavailableError, so that a handler retrying "unavailable" errors never re-posts an order.
    """

    def __init__(self, message: str, *, order_ids: tuple[str, ...], reason: str, **kw: Any) -> None:
        super().__init__(message, order_ids=list(order_ids), reason=reason, **kw)
        self.order_ids = order_ids
        self.reason = reason
