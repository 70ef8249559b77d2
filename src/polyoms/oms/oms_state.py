"""OmsState: orders, fills and ledgers, owned by one writer and changed only through its inputs.

Every public `on_*` / command method is one input: it takes the time from the injected clock, gets the
next journal sequence number, is journaled (when a journal is attached), and is applied by a private
`_apply_*` that depends on nothing but the state, the input, its time and its sequence number. Recovery
feeds the journaled inputs back through the same `_apply_*` functions, so the rebuilt state is the
state that was written, field for field (`snapshot()` compares them).

Apply functions check before they change anything: an input that raises (IllegalTransitionError for
contradicting evidence) has changed nothing, live or in replay; it stays in the journal as evidence.

The engine (single writer, architecture principle 5) calls:
    submit(intent)            before the POST: journals and commits the intent synchronously
    on_ack / on_reject / on_send_failed            the POST's outcome (none of them moves a position)
    request_cancel / on_cancel_answer              cancels
    on_order_event / on_trade_event                the user channel (duplicates and reordering welcome)
    on_rest_trade / resolve / set_balance / apply_reconciliation     reconciliation
    after_restart()           once after recover(): in-flight intents become UNKNOWN
    flush()                   per batch of events (one SQLite transaction)
    drain_notifications()     order/fill updates for the orders' owners, anomalies for the operator
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

import msgspec

from polyoms.core.clock import Clock
from polyoms.core.enums import OrderType
from polyoms.core.errors import PolyomsError
from polyoms.core.user_events import OrderEvent, OrderEventType, TradeEvent
from polyoms.core.venue import Ack, OrderRef
from polyoms.oms import inputs
from polyoms.oms.errors import DuplicateIntentError, IllegalTransitionError, JournalError, UnknownOrderError
from polyoms.oms.fills import STATUS_RANK, TIER, Fill, FillTier, Identity, Leg, legs_of
from polyoms.oms.inputs import (
    AckInput,
    Anomaly,
    BalanceInput,
    CancelAnswerInput,
    CancelRequestInput,
    FillUpdate,
    Notification,
    OrderUpdate,
    RejectInput,
    ResolveInput,
    RestartInput,
    SendFailedInput,
    TradeInput,
    WalletConfig,
)
from polyoms.oms.ledger import WalletLedger, check_invariants, reservation
from polyoms.oms.repairs import ApplyOrder, ApplyTrade, ReleaseHold, RepairBatch, Resolve, SetCash, SetShares
from polyoms.oms.state import (
    _RANK,
    CANCEL_CLEARED,
    CANCEL_REQUESTED,
    OPEN,
    STATE,
    TERMINAL,
    TRANSITIONS,
    AuditEntry,
    OrderIntent,
    OrderRecord,
    OrderState,
    ack_target,
    adopted_record,
    done_target,
    external_amounts,
    fill_target,
    note,
    order_event_target,
    record_from_intent,
    transition,
)

if TYPE_CHECKING:
    from polyoms.oms.journal import Journal

S = OrderState
_PROVISIONAL = FillTier.PROVISIONAL
_CONFIRMED = FillTier.CONFIRMED
_VOIDED = FillTier.VOIDED
VENUE_WS = "venue:ws"
VENUE_REST = "venue:rest"


class OmsState:
    """The OMS's trading state. Not thread-safe by design: one task owns it (module doc)."""

    def __init__(self, clock: Clock, *, default_fee_exponent: int = 1) -> None:
        self.clock = clock
        self.default_fee_exponent = default_fee_exponent
        self.orders: dict[str, OrderRecord] = {}
        self.fills: dict[tuple[str, str], Fill] = {}
        self.ledgers: dict[str, WalletLedger] = {}
        self.wallets: dict[str, WalletConfig] = {}
        self.identity = Identity()
        self.order_wallet: dict[str, str] = {}
        self.unknown: set[str] = set()
        """Ids of orders in UNKNOWN (fail closed while any is outstanding)."""
        self.seq = 0
        """Last journal sequence number used (inputs and their outputs share one counter)."""
        self.trade_checkpoint_s = 0
        """Latest `match_time` (unix seconds) of any trade applied: reconciliation asks for trades after it."""
        self.anomaly_count = 0
        self.venue_ids: dict[str, str] = {}
        """Our key → the venue's own id, where the venue's acknowledgement gave one that differs (a venue
        with client order ids); rebuilt by replaying the acknowledgements."""
        self.halted = ""
        """Non-empty when the journal failed: nothing new may be sent (fail closed)."""
        self.notifications: list[Notification] = []
        self._journal: Journal | None = None
        self._trade_orders: dict[str, tuple[int, str, tuple[str, ...]]] = {}
        """Trade id → (maker entries, taker order id, our orders with a fill in it), for trades whose legs
        were all attributed: every status of a trade re-sends the same match, so its later statuses skip
        the attribution (`legs_of`, the costliest part of applying one). Derived state: rebuilt by replay,
        and cleared whenever what attribution reads can change (a wallet added, an order adopted)."""

    # --- journal plumbing -------------------------------------------------------------------------

    def attach_journal(self, journal: Journal) -> None:
        """Journal every input from now on. The journal must hold exactly this state's history (a new
        file for a new state, or the file `journal_recovery.recover` rebuilt it from)."""
        journal.bind(self)
        self._journal = journal

    @property
    def journal(self) -> Journal | None:
        return self._journal

    def _input(self, kind: str, ts: int, payload: Any, order_id: str | None = None, trade_id: str | None = None) -> int:
        seq = self.seq = self.seq + 1
        j = self._journal
        if j is not None:
            j.add_input(seq, ts, kind, order_id, trade_id, payload)
        return seq

    def _output(
        self, kind: str, ts: int, cause: int, payload: Any, order_id: str | None = None, trade_id: str | None = None
    ) -> None:
        # Outputs are numbered right after their input (cause) and stored with it (journal.py).
        seq = self.seq = self.seq + 1
        j = self._journal
        if j is not None:
            j.effects.append((seq, kind, order_id, trade_id, payload))

    def _dirty_order(self, o: OrderRecord) -> None:
        j = self._journal
        if j is not None:
            j.dirty_orders[o.order_id] = o

    def _dirty_fill(self, f: Fill) -> None:
        j = self._journal
        if j is not None:
            j.dirty_fills[(f.trade_id, f.order_id)] = f

    def _dirty_wallet(self, wallet: str, token_id: str | None = None) -> None:
        j = self._journal
        if j is not None:
            j.dirty_wallets.add(wallet)
            if token_id is not None:
                j.dirty_positions.add((wallet, token_id))

    def flush(self, *, wait: bool = False) -> None:
        """Commit everything applied since the last flush (one transaction). The engine calls it per
        batch of events; an intent commits on its own (`submit`). A journal failure halts the OMS."""
        if self._journal is not None:
            try:
                self._journal.flush(wait=wait)
            except Exception as exc:
                self.halted = f"journal write failed: {exc}"
                raise

    def drain_notifications(self) -> list[Notification]:
        out, self.notifications = self.notifications, []
        return out

    # --- queries ----------------------------------------------------------------------------------

    def ledger(self, wallet: str) -> WalletLedger:
        return self.ledgers[wallet.lower()]

    def order(self, order_id: str) -> OrderRecord:
        o = self.orders.get(order_id)
        if o is None:
            raise UnknownOrderError(f"unknown order {order_id}", order_id=order_id)
        return o

    def open_orders(self, wallet: str | None = None) -> list[OrderRecord]:
        return [o for o in self.orders.values() if o.state in OPEN and (wallet is None or o.wallet == wallet)]

    def fills_of(self, order_id: str) -> list[Fill]:
        o = self.orders.get(order_id)
        if o is None:
            return []
        return [f for t in dict.fromkeys(o.trade_ids) if (f := self.fills.get((t, order_id))) is not None]

    def check_invariants(self) -> list[str]:
        problems = check_invariants(self.ledgers, self.orders.values(), self.fills.values())
        unknown = {o.order_id for o in self.orders.values() if o.state is S.UNKNOWN}
        if unknown != self.unknown:
            problems.append(f"unknown-order index {sorted(self.unknown)} != {sorted(unknown)}")
        for o in self.orders.values():
            if o.pending_cancel and o.state not in OPEN:
                problems.append(f"order {o.order_id}: cancel pending on a {o.state} order")
            if self.order_wallet.get(o.order_id) != o.wallet:
                problems.append(f"order {o.order_id}: wallet index out of date")
        return problems

    def snapshot(self) -> dict[str, Any]:
        """Everything the state is, as plain data (for equality after recovery)."""
        plain: dict[str, Any] = msgspec.to_builtins(
            {
                "seq": self.seq,
                "trade_checkpoint_s": self.trade_checkpoint_s,
                "anomaly_count": self.anomaly_count,
                "wallets": self.wallets,
                "orders": self.orders,
                "fills": {f"{t}|{o}": f for (t, o), f in self.fills.items()},
                "ledgers": self.ledgers,
                "unknown": sorted(self.unknown),
            }
        )
        return plain

    # --- wallets and balances ---------------------------------------------------------------------

    def add_wallet(self, address: str, owners: Iterable[str] = ()) -> WalletLedger:
        cfg = WalletConfig(address.lower(), tuple(owners))
        ts = self.clock.now_ms()
        seq = self._input(inputs.K_WALLET, ts, cfg)
        self._apply_wallet(cfg, ts, seq)
        return self.ledgers[cfg.address]

    def _apply_wallet(self, cfg: WalletConfig, ts: int, seq: int) -> None:
        self.wallets[cfg.address] = cfg
        if cfg.address not in self.ledgers:
            self.ledgers[cfg.address] = WalletLedger(cfg.address)
        owners = dict(self.identity.owners)
        for owner in cfg.owners:
            owners[owner] = cfg.address
        self.identity = Identity(owners, self.identity.addresses | {cfg.address})
        self._trade_orders.clear()
        self._dirty_wallet(cfg.address)

    def set_balance(
        self,
        wallet: str,
        *,
        cash: int | None = None,
        positions: dict[str, int] | None = None,
        markets: dict[str, str] | None = None,
        reason: str = "balance snapshot",
        actor: str = "system",
    ) -> None:
        """Make the confirmed pUSD / share balances equal these values (bootstrap or repair)."""
        inp = BalanceInput(wallet.lower(), cash, dict(positions or {}), reason, actor, dict(markets or {}))
        if inp.wallet not in self.ledgers:
            raise UnknownOrderError(f"unknown wallet {wallet}", wallet=wallet)
        ts = self.clock.now_ms()
        seq = self._input(inputs.K_BALANCE, ts, inp)
        self._apply_balance(inp, ts, seq)

    def _apply_balance(self, inp: BalanceInput, ts: int, seq: int) -> None:
        lg = self.ledgers[inp.wallet]
        if inp.cash is not None and inp.cash != lg.cash:
            lg.adjust_cash(inp.cash - lg.cash)
        for token, shares in inp.positions.items():
            pos = lg.position(token, inp.markets.get(token, ""))
            if shares != pos.confirmed:
                lg.adjust_shares(token, shares - pos.confirmed)
            self._dirty_wallet(inp.wallet, token)
        self._dirty_wallet(inp.wallet)

    # --- submission -------------------------------------------------------------------------------

    def submit(self, intent: OrderIntent) -> OrderRecord:
        """Record the intent to send `intent.order_id` and commit it synchronously.

        Call it after signing (the order id is the order hash) and before a byte is sent; send only if
        it returns. An order id already known is refused: exactly-once submission never re-sends.
        """
        if intent.order_id in self.orders:
            raise DuplicateIntentError(
                f"order {intent.order_id} is already journaled; an order is never sent twice",
                order_id=intent.order_id,
            )
        if intent.wallet not in self.ledgers:
            raise UnknownOrderError(f"unknown wallet {intent.wallet}", wallet=intent.wallet)
        if self.halted:
            raise JournalError(f"OMS halted: {self.halted}", order_id=intent.order_id)
        ts = self.clock.now_ms()
        seq = self._input(inputs.K_INTENT, ts, intent, order_id=intent.order_id)
        o = self._apply_intent(intent, ts, seq)
        j = self._journal
        if j is not None:
            try:
                j.commit_intent()
            except Exception as exc:
                # Not durable, so it must not be sent: close it locally and stop admitting orders.
                self.halted = f"journal write failed: {exc}"
                transition(o, S.REJECTED, ts, "journal write failed; never sent", "system", seq)
                self._reserve(o)
                raise
        return o

    def _apply_intent(self, intent: OrderIntent, ts: int, seq: int) -> OrderRecord:
        o = record_from_intent(intent, ts, seq)
        o.no = len(self.orders) + 1
        self.orders[o.order_id] = o
        self.order_wallet[o.order_id] = o.wallet
        self._output(inputs.O_TRANSITION, ts, seq, o.history[-1], order_id=o.order_id)
        self._reserve(o)
        self._dirty_order(o)
        return o

    def on_ack(self, order_id: str, ack: Ack, actor: str = VENUE_REST) -> OrderRecord:
        """The venue accepted the order (its answer). Moves the state, never a position."""
        o = self.order(order_id)
        inp = AckInput(order_id, ack, actor)
        ts = self.clock.now_ms()
        seq = self._input(inputs.K_ACK, ts, inp, order_id=order_id)
        self._apply_ack(inp, ts, seq)
        return o

    def _apply_ack(self, inp: AckInput, ts: int, seq: int) -> None:
        o = self.orders[inp.order_id]
        a = inp.ack
        if a.venue_id and a.venue_id != o.order_id:
            self.venue_ids[o.order_id] = a.venue_id
        word = a.raw_status or (a.status.lower() if a.status is not None else "")
        target = None if a.status is None else ack_target(o, a.status)
        if target is None:
            self._anomaly("ack_status", f"unknown order status {word!r} in the venue's answer", ts, seq, o.order_id)
            target = S.LIVE
        self._check(o, target, f"ack {word}")
        if target is S.FILLED and o.state in OPEN:
            # Finished by the answer, but its fills are still on their way: keep the money locked.
            pending = [t for t in a.trade_ids if t not in o.trade_ids]
            o.pending_trades = pending
            o.awaiting_fills = bool(pending) or not o.trade_ids
        self._evidence(o, target, ts, f"ack {word}", inp.actor, seq)

    def on_reject(self, order_id: str, error: PolyomsError | str, actor: str = VENUE_REST) -> OrderRecord:
        """The venue refused the order (4xx, success=false). Only the error's class and message are kept."""
        o = self.order(order_id)
        if isinstance(error, PolyomsError):
            inp = RejectInput(order_id, type(error).__name__, error.message, error.status, actor)
        else:
            inp = RejectInput(order_id, "Rejected", str(error), None, actor)
        ts = self.clock.now_ms()
        seq = self._input(inputs.K_REJECT, ts, inp, order_id=order_id)
        self._apply_reject(inp, ts, seq)
        return o

    def _apply_reject(self, inp: RejectInput, ts: int, seq: int) -> None:
        o = self.orders[inp.order_id]
        self._evidence(o, S.REJECTED, ts, f"rejected: {inp.error}: {inp.message}", inp.actor, seq)

    def on_send_failed(self, order_id: str, cause: str, actor: str = "system") -> OrderRecord:
        """Sent (or maybe sent) without a usable answer: UNKNOWN until evidence resolves it."""
        o = self.order(order_id)
        inp = SendFailedInput(order_id, cause, actor)
        ts = self.clock.now_ms()
        seq = self._input(inputs.K_SEND_FAILED, ts, inp, order_id=order_id)
        self._apply_send_failed(inp, ts, seq)
        return o

    def _apply_send_failed(self, inp: SendFailedInput, ts: int, seq: int) -> None:
        o = self.orders[inp.order_id]
        if o.state is S.SUBMITTING:
            self._evidence(o, S.UNKNOWN, ts, f"no answer: {inp.cause}", inp.actor, seq)
        else:
            o.stale_events += 1  # the user stream (or an answer) got there first
            self._dirty_order(o)

    # --- cancels ----------------------------------------------------------------------------------

    def request_cancel(self, order_ids: Iterable[str], actor: str, reason: str = "") -> None:
        """Flag the orders as cancel-pending (the engine then sends DELETE by id)."""
        ids = tuple(order_ids)
        for oid in ids:
            o = self.order(oid)
            if o.state not in OPEN:
                raise IllegalTransitionError(
                    f"cannot cancel a {o.state} order",
                    order_id=oid,
                    from_state=o.state,
                    to_state="cancel requested",
                    cause=reason or "cancel request",
                )
        inp = CancelRequestInput(ids, actor, reason)
        ts = self.clock.now_ms()
        seq = self._input(inputs.K_CANCEL_REQUEST, ts, inp)
        self._apply_cancel_request(inp, ts, seq)

    def _apply_cancel_request(self, inp: CancelRequestInput, ts: int, seq: int) -> None:
        for oid in inp.order_ids:
            o = self.orders[oid]
            if o.state in OPEN and not o.pending_cancel:
                o.pending_cancel = True
                note(o, CANCEL_REQUESTED, ts, inp.reason or "cancel requested", inp.actor, seq)
                self._output(inputs.O_NOTE, ts, seq, o.history[-1], order_id=oid)
                self._dirty_order(o)

    def on_cancel_answer(
        self, canceled: Iterable[str], not_canceled: dict[str, str] | None = None, actor: str = VENUE_REST
    ) -> None:
        """DELETE /order(s) answer. `canceled` is evidence (→ CANCELLED); a `not_canceled` reason only
        clears the pending flag: the order may have filled, or (if UNKNOWN) never arrived — its trades or
        reconciliation will tell."""
        inp = CancelAnswerInput(tuple(canceled), dict(not_canceled or {}), actor)
        ts = self.clock.now_ms()
        seq = self._input(inputs.K_CANCEL_ANSWER, ts, inp)
        self._apply_cancel_answer(inp, ts, seq)

    def _apply_cancel_answer(self, inp: CancelAnswerInput, ts: int, seq: int) -> None:
        for oid in inp.canceled:
            o = self.orders.get(oid)
            if o is None:
                self._anomaly("cancel_answer", "venue cancelled an order we do not know", ts, seq, oid)
                continue
            self._evidence(o, done_target(o, None), ts, "cancel answer: canceled", inp.actor, seq)
        for oid, why in inp.not_canceled.items():
            o = self.orders.get(oid)
            if o is None:
                continue
            if o.pending_cancel:
                o.pending_cancel = False
                note(o, CANCEL_CLEARED, ts, f"not canceled: {why}", inp.actor, seq)
                self._output(inputs.O_NOTE, ts, seq, o.history[-1], order_id=oid)
                self._dirty_order(o)

    # --- user channel -----------------------------------------------------------------------------

    def on_order_event(self, ev: OrderEvent, actor: str = VENUE_WS) -> OrderRecord | None:
        ts = self.clock.now_ms()
        seq = self._input(inputs.K_ORDER, ts, ev, order_id=ev.id)
        return self._apply_order_event(ev, ts, seq, actor)

    def _apply_order_event(self, ev: OrderEvent, ts: int, seq: int, actor: str) -> OrderRecord | None:
        o = self.orders.get(ev.id)
        if o is None:
            return self._adopt_from_order_event(ev, ts, seq, actor)
        if not o.size and o.origin == "external" and ev.original_size:
            self._complete_external(o, ev)
        if not o.venue_sizes_in_pusd:
            m = ev.size_matched
            if m < o.venue_matched:
                if ev.type is not OrderEventType.CANCELLATION:
                    o.stale_events += 1  # an older UPDATE re-delivered or overtaken: ignored
                    self._dirty_order(o)
                    return o
            else:
                o.venue_matched = m
        o.venue_status = ev.status
        target = order_event_target(o, ev)
        # The reason is only written when the order moves (most events confirm its state): not built otherwise.
        reason = "" if target is o.state else f"{ev.type} {ev.status} matched={ev.size_matched}"
        self._evidence(o, target, ts, reason, actor, seq)
        return o

    def on_trade_event(self, ev: TradeEvent, actor: str = VENUE_WS) -> list[Fill]:
        ts = self.clock.now_ms()
        seq = self._input(inputs.K_TRADE, ts, ev, order_id=ev.taker_order_id, trade_id=ev.id)
        return self._apply_trade(ev, ts, seq, actor)

    def on_rest_trade(self, ev: TradeEvent, source: str = "/data/trades") -> list[Fill]:
        """A trade from the venue's trade history (reconciliation): same rules as the user channel."""
        ts = self.clock.now_ms()
        inp = TradeInput(ev, source)
        seq = self._input(inputs.K_TRADE_REST, ts, inp, order_id=ev.taker_order_id, trade_id=ev.id)
        return self._apply_trade(ev, ts, seq, f"venue:{source}", attribute=True)

    def _apply_trade(self, ev: TradeEvent, ts: int, seq: int, actor: str, *, attribute: bool = False) -> list[Fill]:
        """`attribute`: find our legs even when the trade was seen before (reconciliation: the safety net)."""
        mt = ev.match_time
        if mt is not None and mt > self.trade_checkpoint_s:
            self.trade_checkpoint_s = mt
        known = None if attribute else self._trade_orders.get(ev.id)
        if known is not None and known[0] == len(ev.maker_orders) and known[1] == ev.taker_order_id:
            tier = TIER[ev.status]
            fills, orders = self.fills, self.orders
            out: list[Fill] = []
            for oid in known[2]:
                f = fills[(ev.id, oid)]
                self._update_fill(f, orders[oid], tier, ev, ts, seq)
                out.append(f)
            return out
        taker = self.orders.get(ev.taker_order_id)
        exponent = taker.fee_exponent if taker is not None else self.default_fee_exponent
        default_wallet = next(iter(self.ledgers)) if len(self.ledgers) == 1 else None
        legs, problems = legs_of(ev, self.order_wallet, self.identity, exponent, default_wallet)
        for p in problems:
            self._anomaly("attribution", p, ts, seq, trade_id=ev.id)
        status = ev.status
        tier = TIER[status]
        out = []
        for leg in legs:
            key = (ev.id, leg.order_id)
            o = self.orders.get(leg.order_id)
            if o is None:
                o = self._adopt_from_leg(ev, leg, ts, seq, actor)
            seen = self.fills.get(key)
            if seen is None:
                f = self._new_fill(ev, leg, o, tier, ts, seq, actor)
            else:
                f = seen
                self._update_fill(f, o, tier, ev, ts, seq)
            out.append(f)
        if legs and not problems:
            self._trade_orders[ev.id] = (len(ev.maker_orders), ev.taker_order_id, tuple(f.order_id for f in out))
        return out

    def _new_fill(
        self, ev: TradeEvent, leg: Leg, o: OrderRecord, tier: FillTier, ts: int, seq: int, actor: str
    ) -> Fill:
        f = Fill(
            ev.id,
            leg.order_id,
            o.wallet,
            ev.market,
            leg.token_id,
            leg.side,
            leg.role,
            leg.price,
            leg.size,
            leg.cash,
            leg.fee,
            ev.status,
            tier,
            ts,
            ts,
            ev.match_time,
            seq,
            len(self.fills) + 1,
        )
        self.fills[(ev.id, leg.order_id)] = f
        o.trade_ids.append(ev.id)
        if tier is _VOIDED:
            # First seen as FAILED: it never counted, so there is nothing to restore.
            o.voided += leg.size
            self._output(inputs.O_VOID, ts, seq, f, order_id=o.order_id, trade_id=ev.id)
            self.notifications.append(FillUpdate("voided", o.actor, tier, f))
        else:
            self.ledgers[o.wallet].add_fill(f)
            o.filled += leg.size
            o.filled_cash += leg.cash
            o.fees += leg.fee
            self._output(inputs.O_FILL, ts, seq, f, order_id=o.order_id, trade_id=ev.id)
            self.notifications.append(FillUpdate("new", o.actor, tier, f))
            if o.size or o.origin == "local":
                target = fill_target(o)
                reason = "" if target is o.state else f"fill {ev.id} {ev.status}"
                self._evidence(o, target, ts, reason, actor, seq, reserve=False)
        if o.awaiting_fills:
            pending = o.pending_trades
            if pending:
                if ev.id in pending:
                    pending.remove(ev.id)
                o.awaiting_fills = bool(pending)
            else:
                o.awaiting_fills = False
        self._reserve(o)
        self._dirty_order(o)
        self._dirty_fill(f)
        self._dirty_wallet(o.wallet, f.token_id)
        return f

    def _update_fill(self, f: Fill, o: OrderRecord, tier: FillTier, ev: TradeEvent, ts: int, seq: int) -> None:
        status = ev.status
        old = f.status
        if status is old:
            return  # the same status again: a duplicate delivery
        if f.tier is not _PROVISIONAL:
            if tier is not _PROVISIONAL:
                self._anomaly(
                    "trade_status",
                    f"trade {f.trade_id} is {old} and now says {status}",
                    ts,
                    seq,
                    f.order_id,
                    f.trade_id,
                )
            return  # a provisional status after a final one: stale
        if tier is _PROVISIONAL:
            if STATUS_RANK[status] < STATUS_RANK[old]:
                return  # e.g. MATCHED re-delivered after MINED
            f.status = status
            f.updated_ms = ts
            self._output(inputs.O_FILL_STATUS, ts, seq, (status,), order_id=f.order_id, trade_id=f.trade_id)
            self.notifications.append(FillUpdate("status", o.actor, tier, f))
            self._dirty_fill(f)
            return
        lg = self.ledgers[f.wallet]
        f.status = status
        f.tier = tier
        f.updated_ms = ts
        if tier is _CONFIRMED:
            lg.confirm(f)
            self._output(inputs.O_CONFIRM, ts, seq, (status,), order_id=f.order_id, trade_id=f.trade_id)
            self.notifications.append(FillUpdate("confirmed", o.actor, tier, f))
        else:
            lg.void(f)
            o.filled -= f.size
            o.filled_cash -= f.cash
            o.fees -= f.fee
            o.voided += f.size
            self._output(inputs.O_VOID, ts, seq, (status, ev.err_msg), order_id=f.order_id, trade_id=f.trade_id)
            self.notifications.append(FillUpdate("voided", o.actor, tier, f))
            self._reserve(o)
            self._dirty_order(o)
        self._dirty_fill(f)
        self._dirty_wallet(f.wallet, f.token_id)

    # --- evidence from outside the user channel -------------------------------------------------

    def resolve(self, order_id: str, to: OrderState, evidence: str, actor: str = "reconcile") -> OrderRecord:
        """Apply evidence that `order_id` is in state `to` (e.g. /data/order, or reconciliation)."""
        o = self.order(order_id)
        self._check(o, to, evidence)
        inp = ResolveInput(order_id, to, evidence, actor)
        ts = self.clock.now_ms()
        seq = self._input(inputs.K_RESOLVE, ts, inp, order_id=order_id)
        self._apply_resolve(inp, ts, seq)
        return o

    def _apply_resolve(self, inp: ResolveInput, ts: int, seq: int) -> None:
        self._evidence(self.orders[inp.order_id], inp.to, ts, inp.evidence, inp.actor, seq)

    def after_restart(self, reason: str = "restart: intent journaled, answer lost") -> list[str]:
        """After recover(): SUBMITTING orders may or may not have reached the venue → UNKNOWN."""
        inp = RestartInput(reason)
        ts = self.clock.now_ms()
        seq = self._input(inputs.K_RESTART, ts, inp)
        return self._apply_restart(inp, ts, seq)

    def _apply_restart(self, inp: RestartInput, ts: int, seq: int) -> list[str]:
        moved = [o.order_id for o in self.orders.values() if o.state is S.SUBMITTING]
        for oid in moved:
            self._evidence(self.orders[oid], S.UNKNOWN, ts, inp.reason, "system", seq)
        return moved

    def ref(self, order_id: str) -> OrderRef:
        """How a cancel names the order at the venue."""
        return OrderRef(order_id, self.venue_ids.get(order_id, ""))

    def apply_reconciliation(self, batch: RepairBatch) -> None:
        """Journal the reconciliation's diffs and apply its repairs (reconcile.diff computes them); a
        Resolve that contradicts the state machine raises before anything is journaled or changed."""
        for a in batch.actions:
            if isinstance(a, Resolve):
                o = self.orders.get(a.order_id)
                if o is None:
                    raise IllegalTransitionError(
                        "reconciliation resolves an order we do not know",
                        order_id=a.order_id,
                        from_state=None,
                        to_state=a.to,
                        cause=a.evidence,
                    )
                self._check(o, a.to, a.evidence)
        ts = self.clock.now_ms()
        seq = self._input(inputs.K_RECONCILE, ts, batch)
        self._apply_repair(batch, ts, seq)

    def _apply_repair(self, batch: RepairBatch, ts: int, seq: int) -> None:
        actor = "reconcile"
        for d in batch.diffs:
            self._output(inputs.O_DIFF, ts, seq, d, order_id=d.order_id or None, trade_id=d.trade_id or None)
        for a in batch.actions:
            if isinstance(a, ApplyTrade):
                self._apply_trade(a.event, ts, seq, actor)
            elif isinstance(a, ApplyOrder):
                self._apply_order_event(a.event, ts, seq, actor)
            elif isinstance(a, Resolve):
                o = self.orders.get(a.order_id)
                if o is None:
                    continue
                try:
                    # Checked on entry; an earlier action of this batch can still have moved the order
                    # (its trades arrived with it): then the venue contradicts itself — kept as an anomaly.
                    self._check(o, a.to, a.evidence)
                except IllegalTransitionError as exc:
                    self._anomaly("reconcile", str(exc), ts, seq, a.order_id)
                    continue
                self._evidence(o, a.to, ts, f"reconcile: {a.evidence}", actor, seq)
            elif isinstance(a, SetCash):
                if a.wallet in self.ledgers:
                    self._apply_balance(BalanceInput(a.wallet, a.cash, {}, "reconcile: cash drift", actor), ts, seq)
            elif isinstance(a, SetShares):
                if a.wallet in self.ledgers:
                    inp = BalanceInput(
                        a.wallet, None, {a.token_id: a.shares}, "reconcile: shares drift", actor, {a.token_id: a.market}
                    )
                    self._apply_balance(inp, ts, seq)
            elif isinstance(a, ReleaseHold):
                o = self.orders.get(a.order_id)
                if o is not None and o.awaiting_fills:
                    o.awaiting_fills = False
                    o.pending_trades = []
                    self._reserve(o)
                    self._dirty_order(o)
            # CancelAtVenue: for the engine to send; the state does not change until the venue answers.

    # --- internals --------------------------------------------------------------------------------

    def _check(self, o: OrderRecord, to: OrderState, cause: str) -> None:
        """Raise now (before anything changes) if evidence for `to` contradicts the table."""
        frm = o.state
        if to is frm or frm in TERMINAL or _RANK[to] < _RANK[frm]:
            return
        if to not in TRANSITIONS[frm]:
            raise IllegalTransitionError(
                f"illegal order transition {frm} -> {to}", order_id=o.order_id, from_state=frm, to_state=to, cause=cause
            )

    def _evidence(
        self, o: OrderRecord, to: OrderState, ts: int, reason: str, actor: str, seq: int, *, reserve: bool = True
    ) -> bool:
        """Evidence that `o` is in `to`: move forward, absorb stale evidence, raise on contradiction."""
        frm = o.state
        if to is frm:
            moved = False
        elif frm in TERMINAL or _RANK[to] < _RANK[frm]:
            o.stale_events += 1
            moved = False
        else:
            transition(o, to, ts, reason, actor, seq)
            self._output(inputs.O_TRANSITION, ts, seq, o.history[-1], order_id=o.order_id)
            self.notifications.append(OrderUpdate(o.order_id, o.actor, frm, to, reason))
            if frm is S.UNKNOWN:
                self.unknown.discard(o.order_id)
            elif to is S.UNKNOWN:
                self.unknown.add(o.order_id)
            moved = True
        if reserve:
            self._reserve(o)
        self._dirty_order(o)
        return moved

    def _reserve(self, o: OrderRecord) -> None:
        cash, shares = reservation(o)
        dc = cash - o.reserved_cash
        ds = shares - o.reserved_shares
        if dc or ds:
            lg = self.ledgers[o.wallet]
            if dc:
                lg.reserved += dc
                o.reserved_cash = cash
                self._dirty_wallet(o.wallet)
            if ds:
                lg.position(o.token_id, o.market).reserved += ds
                o.reserved_shares = shares
                self._dirty_wallet(o.wallet, o.token_id)

    def _anomaly(self, kind: str, detail: str, ts: int, seq: int, order_id: str = "", trade_id: str = "") -> None:
        self.anomaly_count += 1
        a = Anomaly(kind, detail, order_id, trade_id)
        self.notifications.append(a)
        self._output(inputs.O_ANOMALY, ts, seq, a, order_id=order_id or None, trade_id=trade_id or None)

    def _wallet_of(self, owner: str, order_owner: str, address: str) -> str | None:
        """The wallet of an order event (they are all ours: the channel is scoped to our API key)."""
        w = None
        if address:
            a = address.lower()
            if a in self.ledgers:
                w = a
        if w is None:
            owners = self.identity.owners
            w = owners.get(owner) or owners.get(order_owner)
        if w is None and len(self.ledgers) == 1:
            w = next(iter(self.ledgers))
        return w

    def _adopt(self, o: OrderRecord, ts: int, seq: int) -> OrderRecord:
        self._trade_orders.clear()
        o.no = len(self.orders) + 1
        self.orders[o.order_id] = o
        self.order_wallet[o.order_id] = o.wallet
        if o.state is S.UNKNOWN:
            self.unknown.add(o.order_id)
        self._output(inputs.O_ADOPT, ts, seq, o.history[-1], order_id=o.order_id)
        self.notifications.append(OrderUpdate(o.order_id, o.actor, None, o.state, o.history[-1].reason))
        self._reserve(o)
        self._dirty_order(o)
        return o

    def _adopt_from_order_event(self, ev: OrderEvent, ts: int, seq: int, actor: str) -> OrderRecord | None:
        wallet = self._wallet_of(ev.owner, ev.order_owner, ev.maker_address)
        if wallet is None:
            self._anomaly("adoption", "order event for an order of no wallet we know", ts, seq, ev.id)
            return None
        o = adopted_record(
            ev.id,
            wallet=wallet,
            market=ev.market,
            token_id=ev.asset_id,
            side=ev.side,
            order_type=ev.order_type or OrderType.GTC,
            price=ev.price,
            size=ev.original_size,
            expiration=ev.expiration,
            state=S.LIVE,
            ts_ms=ts,
            seq=seq,
            reason="",
            actor=actor,
        )
        if not o.venue_sizes_in_pusd:
            o.venue_matched = ev.size_matched
        o.venue_status = ev.status
        # Its first state is whatever the event says; the creation entry records that directly.
        o.state = order_event_target(o, ev)
        reason = f"adopted: {ev.type} {ev.status} of an order we did not place"
        o.history[-1] = AuditEntry(ts, STATE, None, o.state, reason, actor, seq)
        return self._adopt(o, ts, seq)

    def _adopt_from_leg(self, ev: TradeEvent, leg: Leg, ts: int, seq: int, actor: str) -> OrderRecord:
        # A fill of an order we never saw: it exists and traded, but whether it is still open is not
        # known (size unknown) — UNKNOWN, so admission stays closed until evidence arrives.
        o = adopted_record(
            leg.order_id,
            wallet=leg.wallet,
            market=ev.market,
            token_id=leg.token_id,
            side=leg.side,
            order_type=OrderType.GTC,
            price=leg.price,
            size=0,
            expiration=0,
            state=S.UNKNOWN,
            ts_ms=ts,
            seq=seq,
            reason=f"adopted: {leg.role} fill in trade {ev.id} of an order we did not place",
            actor=actor,
        )
        return self._adopt(o, ts, seq)

    def _complete_external(self, o: OrderRecord, ev: OrderEvent) -> None:
        """First order event for an order adopted from a fill: now its size and type are known."""
        o.price = ev.price
        o.order_type = ev.order_type or o.order_type
        o.expiration = ev.expiration
        o.size, o.maker_amount, o.taker_amount, o.notional = external_amounts(
            o.side, o.order_type, o.price, ev.original_size
        )


def replayer(state: OmsState) -> Callable[[str, Any, int, int], None]:
    """A function applying one journaled input to `state` (recovery). The input's outputs take the
    sequence numbers after its own, exactly as they did live."""

    table: dict[str, Callable[[Any, int, int], object]] = {
        inputs.K_WALLET: state._apply_wallet,
        inputs.K_INTENT: state._apply_intent,
        inputs.K_ACK: state._apply_ack,
        inputs.K_REJECT: state._apply_reject,
        inputs.K_SEND_FAILED: state._apply_send_failed,
        inputs.K_CANCEL_REQUEST: state._apply_cancel_request,
        inputs.K_CANCEL_ANSWER: state._apply_cancel_answer,
        inputs.K_ORDER: lambda ev, ts, seq: state._apply_order_event(ev, ts, seq, VENUE_WS),
        inputs.K_TRADE: lambda ev, ts, seq: state._apply_trade(ev, ts, seq, VENUE_WS),
        inputs.K_TRADE_REST: lambda inp, ts, seq: state._apply_trade(
            inp.event, ts, seq, f"venue:{inp.source}", attribute=True
        ),
        inputs.K_RESOLVE: state._apply_resolve,
        inputs.K_BALANCE: state._apply_balance,
        inputs.K_RESTART: state._apply_restart,
        inputs.K_RECONCILE: state._apply_repair,
    }

    def apply(kind: str, payload: Any, ts: int, seq: int) -> None:
        state.seq = seq
        # An IllegalTransitionError was raised live too, before any change: journaled evidence only.
        with contextlib.suppress(IllegalTransitionError):
            table[kind](payload, ts, seq)

    return apply
