"""The order state machine: states, the explicit transition table, the audit trail, evidence → state.

States
    SUBMITTING        intent journaled (and committed) before the POST; no answer yet
    UNKNOWN           sent, but no usable answer (timeout, 5xx, crash between intent and answer)
    LIVE              acknowledged by the venue (resting, or held by a matching delay); nothing matched
    PARTIALLY_FILLED  part of it matched; the rest may still match
    FILLED            done by matching (for FOK/FAK and dollar-sized market BUYs: done, whatever the
                      share count; the fills say what was bought)                         terminal
    CANCELLED         cancelled (by us, cancel-all, heartbeat timeout, market close...)   terminal
    EXPIRED           a GTD order cancelled by the venue at its expiration                terminal
    REJECTED          the venue refused it (or, for an UNKNOWN order, evidence shows it
                      never reached the book and never traded)                            terminal

A cancel in flight is a flag (`pending_cancel`), not a state: the order is still live and may still fill
until the venue's answer, and a flag keeps the table small (no "pending cancel × partially filled").

Evidence only moves an order forward. Evidence about an earlier stage than the order has reached (a
PLACEMENT after the first fill, an HTTP timeout after the WebSocket said LIVE, anything after a terminal
state) is stale and absorbed: counted on the order, never a transition. Evidence that contradicts the
table (the venue says REJECTED for an order it already reported LIVE) raises IllegalTransitionError,
with the order id, both states and the cause: the engine must fail closed on it, not guess.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final

import msgspec

from polyoms.core.enums import OrderType, Side
from polyoms.core.units import MICRO, Micro
from polyoms.core.user_events import OrderEvent, OrderEventType, OrderStatus
from polyoms.core.venue import PreparedOrder
from polyoms.oms.errors import IllegalTransitionError


class OrderState(StrEnum):
    SUBMITTING = "SUBMITTING"
    UNKNOWN = "UNKNOWN"
    LIVE = "LIVE"
    PARTIALLY_FILLED = "PARTIALLY_FILLED"
    FILLED = "FILLED"
    CANCELLED = "CANCELLED"
    EXPIRED = "EXPIRED"
    REJECTED = "REJECTED"

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL


S = OrderState
TERMINAL: Final = frozenset({S.FILLED, S.CANCELLED, S.EXPIRED, S.REJECTED})
OPEN: Final = frozenset({S.SUBMITTING, S.UNKNOWN, S.LIVE, S.PARTIALLY_FILLED})
WORKING: Final = frozenset({S.LIVE, S.PARTIALLY_FILLED})
"""Acknowledged and not finished: the venue has the order."""


def resting_size(state: OrderState, ioc: bool, size: Micro, matched: Micro) -> Micro:
    """What of an order rests in the book (what the book shows of ours): its unmatched size while it is
    working, 0 for a FOK/FAK or dollar-sized order (they never rest) or one not working."""
    if state not in WORKING or ioc:
        return 0
    left = size - matched
    return left if left > 0 else 0


TRANSITIONS: Final[dict[OrderState, frozenset[OrderState]]] = {
    S.SUBMITTING: frozenset({S.UNKNOWN, S.LIVE, S.PARTIALLY_FILLED, S.FILLED, S.CANCELLED, S.EXPIRED, S.REJECTED}),
    # UNKNOWN leaves only on evidence (user stream, /data/order, /data/trades, a cancel answer), never
    # by re-sending; REJECTED from here means "never reached the venue" (reconciliation, after a grace).
    S.UNKNOWN: frozenset({S.LIVE, S.PARTIALLY_FILLED, S.FILLED, S.CANCELLED, S.EXPIRED, S.REJECTED}),
    S.LIVE: frozenset({S.PARTIALLY_FILLED, S.FILLED, S.CANCELLED, S.EXPIRED}),
    S.PARTIALLY_FILLED: frozenset({S.FILLED, S.CANCELLED, S.EXPIRED}),
    S.FILLED: frozenset(),
    S.CANCELLED: frozenset(),
    S.EXPIRED: frozenset(),
    S.REJECTED: frozenset(),
}

# How far an order has got: evidence ranked below the current state is stale (module doc).
_RANK: Final[dict[OrderState, int]] = {
    S.SUBMITTING: 0,
    S.UNKNOWN: 0,
    S.LIVE: 1,
    S.PARTIALLY_FILLED: 2,
    S.FILLED: 3,
    S.CANCELLED: 3,
    S.EXPIRED: 3,
    S.REJECTED: 3,
}

# Audit entry kinds besides state changes (from_state == to_state for these).
CANCEL_REQUESTED: Final = "cancel_requested"
CANCEL_CLEARED: Final = "cancel_cleared"
STATE: Final = "state"


class AuditEntry(msgspec.Struct, frozen=True, array_like=True, gc=False):
    """One line of an order's audit trail. `seq` is the journal sequence number of the input that
    caused it; `actor` an algorithm id, a person, or `venue:<source>` / `reconcile` / `system`."""

    ts_ms: int
    kind: str
    from_state: OrderState | None
    to_state: OrderState
    reason: str
    actor: str
    seq: int


class OrderIntent(msgspec.Struct, frozen=True, gc=False):
    """What is journaled (and committed) before a byte is sent. No signature, no key, no secret.

    `size` is in shares (for a dollar-sized market BUY: the minimum shares at the worst price);
    `maker_amount` is what the order gives (pUSD for a BUY, shares for a SELL) and bounds what it
    reserves. `fee_rate_bps` None means the market's fee rate is not known: reserve the contract cap.
    """

    order_id: str
    wallet: str
    market: str
    token_id: str
    side: Side
    order_type: OrderType
    price: Micro
    size: Micro
    maker_amount: Micro
    taker_amount: Micro
    actor: str
    notional: bool = False
    expiration: int = 0
    post_only: bool = False
    fee_rate_bps: int | None = None
    fee_exponent: int = 1
    client_tag: str = ""


def intent_from_prepared(
    order: PreparedOrder,
    *,
    wallet: str,
    market: str,
    actor: str,
    fee_rate_bps: int | None = None,
    fee_exponent: int = 1,
    client_tag: str = "",
) -> OrderIntent:
    """The OrderIntent journaled for an order the venue adapter prepared (its key is the order id)."""
    return OrderIntent(
        order_id=order.key,
        wallet=wallet.lower(),
        market=market,
        token_id=order.token_id,
        side=order.side,
        order_type=order.order_type,
        price=order.price,
        size=order.size,
        maker_amount=order.maker_amount,
        taker_amount=order.taker_amount,
        actor=actor,
        notional=order.notional,
        expiration=order.expiration,
        post_only=order.post_only,
        fee_rate_bps=fee_rate_bps,
        fee_exponent=fee_exponent,
        client_tag=order.client_id or client_tag,
    )


class OrderRecord(msgspec.Struct, gc=False):
    """One order as the OMS knows it. Mutated only by the single writer (OmsState).

    `venue_matched` is the largest `size_matched` the user channel reported (shares; not used for
    FOK/FAK BUYs, whose venue sizes are in pUSD); `filled`/`filled_cash`/`fees` sum the order's
    non-voided fills. `awaiting_fills` keeps the reservation of an order that an acknowledgement
    finished (FOK/FAK "matched") until its fills arrive, so the money cannot be spent twice meanwhile.
    """

    order_id: str
    wallet: str
    market: str
    token_id: str
    side: Side
    order_type: OrderType
    price: Micro
    size: Micro
    maker_amount: Micro
    taker_amount: Micro
    notional: bool
    expiration: int
    post_only: bool
    fee_rate_bps: int | None
    fee_exponent: int
    actor: str
    origin: str
    created_ms: int
    state: OrderState
    no: int = 0
    """Ordinal of the order in this OMS (creation order; the journal's row key)."""
    client_tag: str = ""
    pending_cancel: bool = False
    venue_status: str = ""
    venue_matched: Micro = 0
    filled: Micro = 0
    filled_cash: Micro = 0
    fees: Micro = 0
    voided: Micro = 0
    awaiting_fills: bool = False
    reserved_cash: Micro = 0
    reserved_shares: Micro = 0
    stale_events: int = 0
    # The growing lists last: the journal's orders table keeps the fields before them (ORDER_SCALARS).
    pending_trades: list[str] = msgspec.field(default_factory=list)
    trade_ids: list[str] = msgspec.field(default_factory=list)
    history: list[AuditEntry] = msgspec.field(default_factory=list)

    @property
    def is_open(self) -> bool:
        return self.state in OPEN

    @property
    def is_ioc(self) -> bool:
        """FOK/FAK and dollar-sized BUYs: finished by a terminal status, never by a share count."""
        return self.notional or self.order_type in (OrderType.FOK, OrderType.FAK)

    @property
    def venue_sizes_in_pusd(self) -> bool:
        """The venue reports a FOK/FAK BUY's `original_size` / `size_matched` in pUSD (doc §4.6, §6.3),
        however it was built: its share count comes from its fills only."""
        return self.side is Side.BUY and (self.notional or self.order_type in (OrderType.FOK, OrderType.FAK))

    @property
    def in_book(self) -> Micro:
        """Shares of it resting in the book (`resting_size`)."""
        return resting_size(self.state, self.is_ioc, self.size, self.matched)

    @property
    def matched(self) -> Micro:
        return self.venue_matched if self.venue_matched > self.filled else self.filled

    @property
    def last_ts_ms(self) -> int:
        return self.history[-1].ts_ms if self.history else self.created_ms


ORDER_SCALARS: Final = len(OrderRecord.__struct_fields__) - 3


def record_from_intent(intent: OrderIntent, ts_ms: int, seq: int) -> OrderRecord:
    o = OrderRecord(
        order_id=intent.order_id,
        wallet=intent.wallet,
        market=intent.market,
        token_id=intent.token_id,
        side=intent.side,
        order_type=intent.order_type,
        price=intent.price,
        size=intent.size,
        maker_amount=intent.maker_amount,
        taker_amount=intent.taker_amount,
        notional=intent.notional,
        expiration=intent.expiration,
        post_only=intent.post_only,
        fee_rate_bps=intent.fee_rate_bps,
        fee_exponent=intent.fee_exponent,
        actor=intent.actor,
        origin="local",
        created_ms=ts_ms,
        state=S.SUBMITTING,
        client_tag=intent.client_tag,
    )
    o.history.append(AuditEntry(ts_ms, STATE, None, S.SUBMITTING, "intent journaled", intent.actor, seq))
    return o


def adopted_record(
    order_id: str,
    *,
    wallet: str,
    market: str,
    token_id: str,
    side: Side,
    order_type: OrderType,
    price: Micro,
    size: Micro,
    expiration: int,
    state: OrderState,
    ts_ms: int,
    seq: int,
    reason: str,
    actor: str,
) -> OrderRecord:
    """An order the venue knows and we did not place (or whose intent we lost): origin "external".
    Its `size` is 0 when the evidence does not say (a fill seen before any order event); for a FOK/FAK
    BUY it is the venue's `original_size`, which is pUSD (see external_amounts)."""
    size, maker_amount, taker_amount, notional = external_amounts(side, order_type, price, size)
    o = OrderRecord(
        order_id=order_id,
        wallet=wallet,
        market=market,
        token_id=token_id,
        side=side,
        order_type=order_type,
        price=price,
        size=size,
        maker_amount=maker_amount,
        taker_amount=taker_amount,
        notional=notional,
        expiration=expiration,
        post_only=False,
        fee_rate_bps=None,
        fee_exponent=1,
        actor=actor,
        origin="external",
        created_ms=ts_ms,
        state=state,
    )
    o.history.append(AuditEntry(ts_ms, STATE, None, state, reason, actor, seq))
    return o


def external_amounts(side: Side, order_type: OrderType, price: Micro, original: Micro) -> tuple[int, int, int, bool]:
    """(size in shares, maker amount, taker amount, dollar-sized) of an order known only from the venue's
    report: a FOK/FAK BUY's `original_size` is its pUSD budget, anything else's is shares."""
    if side is Side.BUY and order_type in (OrderType.FOK, OrderType.FAK):
        shares = original * MICRO // price if price else 0
        return shares, original, shares, True
    if side is Side.BUY:
        return original, original * price // MICRO, original, False
    return original, original, original * price // MICRO, False


def transition(o: OrderRecord, to: OrderState, ts_ms: int, reason: str, actor: str, seq: int) -> None:
    """Move `o` to `to` per the table, recording who, why and when; raises on anything else."""
    frm = o.state
    if to not in TRANSITIONS[frm]:
        raise IllegalTransitionError(
            f"illegal order transition {frm} -> {to}", order_id=o.order_id, from_state=frm, to_state=to, cause=reason
        )
    last = o.history[-1].ts_ms if o.history else o.created_ms
    # The audit trail's timestamps never go back, even if the injected clock does.
    o.history.append(AuditEntry(ts_ms if ts_ms > last else last, STATE, frm, to, reason, actor, seq))
    o.state = to
    if to in TERMINAL and o.pending_cancel:
        o.pending_cancel = False


def note(o: OrderRecord, kind: str, ts_ms: int, reason: str, actor: str, seq: int) -> None:
    """An audit entry that does not change the state (cancel requested / cleared)."""
    last = o.history[-1].ts_ms if o.history else o.created_ms
    o.history.append(AuditEntry(ts_ms if ts_ms > last else last, kind, o.state, o.state, reason, actor, seq))


def advance(o: OrderRecord, to: OrderState, ts_ms: int, reason: str, actor: str, seq: int) -> bool:
    """Apply evidence that the order has reached `to`: True if it moved, False if the evidence was
    already known or stale (module doc). Contradictions raise IllegalTransitionError."""
    frm = o.state
    if to is frm:
        return False
    if _RANK[to] < _RANK[frm] or frm in TERMINAL:
        o.stale_events += 1
        return False
    transition(o, to, ts_ms, reason, actor, seq)
    return True


# --- evidence → target state ----------------------------------------------------------------------


def by_matched(o: OrderRecord) -> OrderState:
    """For share-sized orders that may rest: LIVE / PARTIALLY_FILLED / FILLED by the matched size."""
    matched = o.matched
    if o.size and matched >= o.size:
        return S.FILLED
    return S.PARTIALLY_FILLED if matched > 0 else S.LIVE


def gtd_expired(o: OrderRecord, ts_ms: int) -> bool:
    """A GTD order the venue has ended by now. `expiration` is when the venue ends it (the adapter took
    off any security lead the venue applies to what was signed)."""
    if o.order_type is not OrderType.GTD or o.expiration <= 0:
        return False
    return ts_ms // 1000 >= o.expiration


def done_target(o: OrderRecord, ts_ms: int | None) -> OrderState:
    """The terminal state of an order the venue reports gone (cancellation, cancel answer, absent from
    the open orders): IOC orders are FILLED if anything matched, else CANCELLED; a GTD order past its
    effective expiry (`gtd_expired`) is EXPIRED; anything else CANCELLED (partial fills stay on the order)."""
    if o.is_ioc:
        return S.FILLED if o.matched > 0 else S.CANCELLED
    if ts_ms is not None and gtd_expired(o, ts_ms):
        return S.EXPIRED
    return S.CANCELLED


def ack_target(o: OrderRecord, status: OrderStatus) -> OrderState | None:
    """The acknowledgement's status → state; None for one an acknowledgement cannot carry.

    MATCHED finishes a FOK/FAK; for an order that may rest it says only "accepted" (its fills, the
    facts, arrive on the user stream and move it). DELAYED is accepted but held: LIVE.
    """
    if status in (OrderStatus.LIVE, OrderStatus.DELAYED):
        return S.LIVE
    if status is OrderStatus.MATCHED:
        return S.FILLED if o.is_ioc else S.LIVE
    if status is OrderStatus.UNMATCHED:
        return done_target(o, None) if o.is_ioc else S.LIVE
    return None


def order_event_target(o: OrderRecord, ev: OrderEvent) -> OrderState:
    """User-channel order event → state (after `venue_matched` has been updated from it)."""
    status = ev.status
    if ev.type is OrderEventType.CANCELLATION or status is OrderStatus.CANCELED:
        return done_target(o, ev.timestamp_ms)
    if status is OrderStatus.MATCHED:
        return S.FILLED
    if status is OrderStatus.UNMATCHED and o.is_ioc:
        return done_target(o, ev.timestamp_ms)
    if o.is_ioc:
        return S.FILLED if o.matched > 0 else S.LIVE
    return by_matched(o)


def fill_target(o: OrderRecord) -> OrderState:
    """After a fill: an IOC order that traded is done (it never rests); others by the matched size."""
    if o.is_ioc:
        return S.FILLED
    return by_matched(o)
