"""Errors of the OMS core, all subclasses of the core hierarchy (`polyoms.core.errors`).

Only what the core had no concept for: a transition the order state machine forbids, a journal that
cannot be trusted, and the pre-trade risk limits. Existing concepts (insufficient balance, a market
that does not accept orders, a malformed order) are raised with their core classes.
"""

from __future__ import annotations

from typing import Any

from polyoms.core.errors import OrderError, PolyomsError


class OmsError(PolyomsError):
    """Base of the errors the OMS core raises for its own reasons."""


class IllegalTransitionError(OmsError):
    """The order state machine refused a transition; context: order_id, from_state, to_state, cause."""

    def __init__(self, message: str, *, order_id: str, from_state: str | None, to_state: str, cause: str, **kw: Any):
        super().__init__(message, order_id=order_id, from_state=from_state, to_state=to_state, cause=cause, **kw)
        self.order_id = order_id
        self.from_state = from_state
        self.to_state = to_state
        self.cause = cause


class UnknownOrderError(OmsError, KeyError):
    """A command names an order id the OMS has never seen."""

    def __str__(self) -> str:  # KeyError would quote the message
        return PolyomsError.__str__(self)


class DuplicateIntentError(OmsError):
    """An intent for an order id that is already journaled: exactly-once submission forbids a re-send."""


class JournalError(OmsError):
    """The journal cannot be opened, written or trusted (fail closed: do not trade on it)."""


class JournalMismatchError(JournalError):
    """Replaying the event log does not reproduce the current-state tables written with it."""


# --- pre-trade risk ------------------------------------------------------------------------------


class RiskRejectedError(OrderError):
    """An order refused by a pre-trade risk rule before anything was signed or sent; context: rule."""


class TradingHaltedError(RiskRejectedError):
    """Admission is closed: kill switch, or a fail-closed condition (unknown order outstanding,
    heartbeat failed, gapped user stream, untrusted book)."""


class RiskLimitError(RiskRejectedError):
    """A configured limit would be breached: order notional, per-market or total exposure."""


class SpreadTooWideError(RiskRejectedError):
    """The book's spread is wider than the configured guard (or one side is empty)."""


class ConfirmationRequiredError(RiskRejectedError):
    """An order above the confirmation threshold (default $1,000 notional) needs explicit confirmation."""


class OrderRateLimitError(RiskRejectedError):
    """Too many orders in the sliding window."""
