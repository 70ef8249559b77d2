"""What reconciliation found and how to repair it: the differences and actions of a `RepairBatch`.

A leaf module of plain records: reconciliation (`oms.reconcile`) builds them, the state applies them,
and the journal stores a batch as the `reconcile` input and reads it back, without depending on how
the differences are found.
"""

from __future__ import annotations

from typing import Final

import msgspec

from polyoms.core.user_events import OrderEvent, TradeEvent
from polyoms.oms.state import OrderState

# Diff kinds
MISSED_TRADE: Final = "MISSED_TRADE"
TRADE_BEHIND: Final = "TRADE_BEHIND"
ORDER_UNKNOWN_LOCALLY: Final = "ORDER_UNKNOWN_LOCALLY"
ORDER_BEHIND: Final = "ORDER_BEHIND"
TERMINAL_BUT_OPEN: Final = "TERMINAL_BUT_OPEN"
ORDER_MISSING_AT_VENUE: Final = "ORDER_MISSING_AT_VENUE"
ORDER_UNRESOLVED: Final = "ORDER_UNRESOLVED"
HOLD_RELEASED: Final = "HOLD_RELEASED"
CASH_DRIFT: Final = "CASH_DRIFT"
SHARES_DRIFT: Final = "SHARES_DRIFT"
BALANCE_DEFERRED: Final = "BALANCE_DEFERRED"


class Diff(msgspec.Struct, frozen=True, omit_defaults=True):
    kind: str
    detail: str
    order_id: str = ""
    trade_id: str = ""
    wallet: str = ""
    token_id: str = ""
    local: int | None = None
    venue: int | None = None


class ApplyTrade(msgspec.Struct, frozen=True, tag=True):
    event: TradeEvent


class ApplyOrder(msgspec.Struct, frozen=True, tag=True):
    event: OrderEvent


class Resolve(msgspec.Struct, frozen=True, tag=True):
    order_id: str
    to: OrderState
    evidence: str


class SetCash(msgspec.Struct, frozen=True, tag=True):
    wallet: str
    cash: int


class SetShares(msgspec.Struct, frozen=True, tag=True):
    wallet: str
    token_id: str
    shares: int
    market: str = ""


class ReleaseHold(msgspec.Struct, frozen=True, tag=True):
    order_id: str


class CancelAtVenue(msgspec.Struct, frozen=True, tag=True):
    order_id: str


Action = ApplyTrade | ApplyOrder | Resolve | SetCash | SetShares | ReleaseHold | CancelAtVenue


class RepairBatch(msgspec.Struct, frozen=True):
    as_of_ms: int
    diffs: tuple[Diff, ...] = ()
    actions: tuple[Action, ...] = ()

    @property
    def venue_cancels(self) -> list[str]:
        """Order ids the engine must cancel at the venue."""
        return [a.order_id for a in self.actions if isinstance(a, CancelAtVenue)]

    @property
    def clean(self) -> bool:
        return not self.diffs
