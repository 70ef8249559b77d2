"""The OMS's inputs and notifications as typed records.

Every input is journaled (in the same form) before or with its effects, and recovery replays exactly
these records through the same code, so they hold everything the state depends on — and nothing
secret: no private key, API secret, passphrase or signature ever appears in one.
"""

from __future__ import annotations

from typing import Final

import msgspec

from polyoms.core.user_events import OrderEvent, TradeEvent
from polyoms.core.venue import Ack
from polyoms.oms.fills import Fill, FillTier
from polyoms.oms.repairs import RepairBatch
from polyoms.oms.state import OrderIntent, OrderState


class WalletConfig(msgspec.Struct, frozen=True):
    """A funder address (lower case) and the API-key owners (UUIDs, not secrets) that trade it."""

    address: str
    owners: tuple[str, ...] = ()


class AckInput(msgspec.Struct, frozen=True):
    """The venue accepted the order (its answer, read by the adapter into the domain's `Ack`)."""

    order_id: str
    ack: Ack
    actor: str


class RejectInput(msgspec.Struct, frozen=True):
    """The venue refused the order (4xx / success=false): error class name and message, no request."""

    order_id: str
    error: str
    message: str
    status: int | None
    actor: str


class SendFailedInput(msgspec.Struct, frozen=True):
    """No usable answer (timeout, connection reset, 5xx): the order becomes UNKNOWN."""

    order_id: str
    cause: str
    actor: str


class CancelRequestInput(msgspec.Struct, frozen=True):
    order_ids: tuple[str, ...]
    actor: str
    reason: str


class CancelAnswerInput(msgspec.Struct, frozen=True):
    """DELETE /order(s) answer: `canceled` ids and `not_canceled` id → reason."""

    canceled: tuple[str, ...]
    not_canceled: dict[str, str]
    actor: str


class ResolveInput(msgspec.Struct, frozen=True):
    """Evidence-based resolution of an order's state from outside the user stream (reconciliation,
    /data/order): `to` is where the evidence says it is; `evidence` says which."""

    order_id: str
    to: OrderState
    evidence: str
    actor: str


class BalanceInput(msgspec.Struct, frozen=True):
    """Set the confirmed pUSD and/or token balances of a wallet (bootstrap, reconciliation repair).

    `cash` None leaves pUSD alone; `positions` maps token id → confirmed shares wanted; `markets` names
    the market of a token when known."""

    wallet: str
    cash: int | None
    positions: dict[str, int]
    reason: str
    actor: str
    markets: dict[str, str] = msgspec.field(default_factory=dict)


class RestartInput(msgspec.Struct, frozen=True):
    """After recovery: every SUBMITTING order may or may not have been sent; it becomes UNKNOWN."""

    reason: str


class TradeInput(msgspec.Struct, frozen=True):
    """A trade from a source other than the user channel (/data/trades during reconciliation)."""

    event: TradeEvent
    source: str


# Journal kinds of inputs (replayed by recovery) and outputs (derived; kept for audit and queries).
K_WALLET: Final = "wallet"
K_INTENT: Final = "intent"
K_ACK: Final = "ack"
K_REJECT: Final = "reject"
K_SEND_FAILED: Final = "send_failed"
K_CANCEL_REQUEST: Final = "cancel_request"
K_CANCEL_ANSWER: Final = "cancel_answer"
K_ORDER: Final = "order"
K_TRADE: Final = "trade"
K_TRADE_REST: Final = "trade_rest"
K_RESOLVE: Final = "resolve"
K_BALANCE: Final = "balance"
K_RESTART: Final = "restart"
K_RECONCILE: Final = "reconcile"

INPUT_TYPES: Final[dict[str, type]] = {
    K_WALLET: WalletConfig,
    K_INTENT: OrderIntent,
    K_ACK: AckInput,
    K_REJECT: RejectInput,
    K_SEND_FAILED: SendFailedInput,
    K_CANCEL_REQUEST: CancelRequestInput,
    K_CANCEL_ANSWER: CancelAnswerInput,
    K_ORDER: OrderEvent,
    K_TRADE: TradeEvent,
    K_TRADE_REST: TradeInput,
    K_RESOLVE: ResolveInput,
    K_BALANCE: BalanceInput,
    K_RESTART: RestartInput,
    K_RECONCILE: RepairBatch,
}

O_TRANSITION: Final = "transition"
O_NOTE: Final = "note"
O_FILL: Final = "fill"
O_FILL_STATUS: Final = "fill_status"
O_CONFIRM: Final = "confirm"
O_VOID: Final = "void"
O_ANOMALY: Final = "anomaly"
O_DIFF: Final = "diff"
O_ADOPT: Final = "adopt"
OUTPUT_KINDS: Final = frozenset(
    {O_TRANSITION, O_NOTE, O_FILL, O_FILL_STATUS, O_CONFIRM, O_VOID, O_ANOMALY, O_DIFF, O_ADOPT}
)


# --- notifications (to the engine, which routes them to the order's owner) -----------------------


class OrderUpdate(msgspec.Struct, frozen=True, gc=False):
    order_id: str
    owner: str
    from_state: OrderState | None
    to_state: OrderState
    reason: str


class FillUpdate(msgspec.Struct, frozen=True, gc=False):
    """`change`: "new" (first seen), "confirmed", "voided" (FAILED: position and cash restored), or
    "status" (a provisional status change, MATCHED → MINED...). `tier` is the fill's tier after this
    change; `fill` is the live record (it may have moved on by the time the owner reads it)."""

    change: str
    owner: str
    tier: FillTier
    fill: Fill


class Anomaly(msgspec.Struct, frozen=True, gc=False):
    """Evidence the OMS could not use as is (kept, journaled, and shown to the operator)."""

    kind: str
    detail: str
    order_id: str = ""
    trade_id: str = ""


Notification = OrderUpdate | FillUpdate | Anomaly
