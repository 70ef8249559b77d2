"""Reconciliation as a pure diff: local state vs the venue's truth → differences and repair actions.

`diff(state, truth)` reads the state and changes nothing. It returns a `RepairBatch`: every difference
found (`Diff`) and the actions that bring the local state to the venue's truth. The engine passes the
batch to `OmsState.apply_reconciliation`, which journals it (the diffs as `diff` rows) and applies it
through the same evidence rules as the user channel — forward only, idempotent — so a batch applied
twice, or after the events it anticipated have arrived, changes nothing more. Apply it right after
computing it; one `CancelAtVenue` action is for the engine to send, not for the state.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from polyoms.core.units import Micro
from polyoms.core.user_events import TradeStatus
from polyoms.core.venue import ReportStatus, VenueTruth, order_event_of
from polyoms.oms.fills import STATUS_RANK, TIER, FillTier, legs_of
from polyoms.oms.repairs import (
    BALANCE_DEFERRED,
    CASH_DRIFT,
    HOLD_RELEASED,
    MISSED_TRADE,
    ORDER_BEHIND,
    ORDER_MISSING_AT_VENUE,
    ORDER_UNKNOWN_LOCALLY,
    ORDER_UNRESOLVED,
    SHARES_DRIFT,
    TERMINAL_BUT_OPEN,
    TRADE_BEHIND,
    Action,
    ApplyOrder,
    ApplyTrade,
    CancelAtVenue,
    Diff,
    ReleaseHold,
    RepairBatch,
    Resolve,
    SetCash,
    SetShares,
)
from polyoms.oms.state import OPEN, TERMINAL, OrderRecord, OrderState, gtd_expired

if TYPE_CHECKING:
    from polyoms.oms.oms_state import OmsState

S = OrderState


def diff(
    state: OmsState,
    truth: VenueTruth,
    *,
    unknown_grace_ms: int = 30_000,
    cash_tolerance: Micro = 0,
    repair_balances: bool = True,
) -> RepairBatch:
    """Compare `state` with the venue's `truth` (pure): the differences and the actions that repair them.

    * Trades: every leg of ours in the venue's trades that we do not have, or have at an earlier status
      (MISSED_TRADE, TRADE_BEHIND) → ApplyTrade. Applied first, so orders are resolved with their fills.
    * An order the venue lists as open that we do not know (ORDER_UNKNOWN_LOCALLY) → ApplyOrder: adopted as
      an external order. One we know as open but behind the venue (ORDER_BEHIND: SUBMITTING/UNKNOWN, or
      less matched) → ApplyOrder. One we consider finished (TERMINAL_BUT_OPEN) → CancelAtVenue: terminal
      states stay terminal, and an order we do not account for must not stay on the book.
    * An order we think open that the venue does not list (ORDER_MISSING_AT_VENUE) → Resolve, by evidence:
      the venue's own status for it when looked up (/data/order), else its fills: fully matched (or an IOC
      that traded) → FILLED; otherwise a GTD past expiration → EXPIRED, an order the venue had acknowledged
      → CANCELLED, one it never acknowledged (SUBMITTING/UNKNOWN) without any trade → REJECTED. SUBMITTING
      and UNKNOWN orders younger than `unknown_grace_ms` are left alone (the POST may still be in flight),
      and "no trade" is only concluded when the venue's trade list covers the order's whole life.
    * An acknowledgement hold (FOK/FAK finished by its answer, fills not seen) whose trades the venue does
      not have either → ReleaseHold (HOLD_RELEASED).
    * Balances: the venue's on-chain balance should equal confirmed + the deltas of provisional fills
      already MINED; provisional fills not yet mined widen the band by their deltas. Outside the band →
      CASH_DRIFT / SHARES_DRIFT and, if `repair_balances`, SetCash / SetShares so the confirmed figure
      matches. Skipped (BALANCE_DEFERRED) while the same batch still applies trades: reconcile again after.
    """
    diffs: list[Diff] = []
    actions: list[Action] = []
    now = truth.as_of_ms

    # 1. Trades.
    extra: dict[str, tuple[Micro, Micro]] = {}  # order id → (shares, count) the batch's trades will add
    # order id → shares of missed trades in any status: the venue's size_matched keeps failed fills too
    missed_matched: dict[str, Micro] = {}
    applied: set[str] = set()
    default_wallet = next(iter(state.ledgers)) if len(state.ledgers) == 1 else None
    for t in truth.trades:
        taker = state.orders.get(t.taker_order_id)
        exponent = taker.fee_exponent if taker is not None else state.default_fee_exponent
        legs, _ = legs_of(t, state.order_wallet, state.identity, exponent, default_wallet)
        for leg in legs:
            local = state.fills.get((t.id, leg.order_id))
            if local is None:
                diffs.append(Diff(MISSED_TRADE, f"{t.status} fill of {leg.size}", leg.order_id, t.id, leg.wallet))
                missed_matched[leg.order_id] = missed_matched.get(leg.order_id, 0) + leg.size
                if TIER[t.status] is not FillTier.VOIDED:
                    shares, n = extra.get(leg.order_id, (0, 0))
                    extra[leg.order_id] = (shares + leg.size, n + 1)
            elif local.status is not t.status and (
                (local.tier is FillTier.PROVISIONAL and TIER[t.status] is not FillTier.PROVISIONAL)
                or (TIER[t.status] is FillTier.PROVISIONAL and STATUS_RANK[t.status] > STATUS_RANK[local.status])
            ):
                diffs.append(Diff(TRADE_BEHIND, f"local {local.status}, venue {t.status}", leg.order_id, t.id))
                if TIER[t.status] is FillTier.VOIDED:
                    shares, n = extra.get(leg.order_id, (0, 0))
                    extra[leg.order_id] = (shares - local.size, n)
            else:
                continue
            if t.id not in applied:
                applied.add(t.id)
                actions.append(ApplyTrade(t))

    def trades_cover(o: OrderRecord) -> bool:
        return truth.trades_since_s is not None and truth.trades_since_s * 1000 <= o.created_ms

    # 2. Orders the venue lists as open.
    if truth.open_orders is not None:
        venue_open = {v.id: v for v in truth.open_orders}
        for v in truth.open_orders:
            o = state.orders.get(v.id)
            if o is None:
                diffs.append(Diff(ORDER_UNKNOWN_LOCALLY, "open at the venue, adopted as external", v.id))
                actions.append(ApplyOrder(order_event_of(v)))
            elif o.state in TERMINAL:
                diffs.append(Diff(TERMINAL_BUT_OPEN, f"local {o.state}, venue {v.status}", v.id))
                actions.append(CancelAtVenue(v.id))
            elif o.state in (S.SUBMITTING, S.UNKNOWN) or (not o.venue_sizes_in_pusd and v.size_matched > o.matched):
                diffs.append(Diff(ORDER_BEHIND, f"local {o.state}", v.id, local=o.matched, venue=v.size_matched))
                actions.append(ApplyOrder(order_event_of(v)))

        # 3. Orders we think open that the venue does not list.
        for o in state.orders.values():
            if o.state not in OPEN or o.order_id in venue_open:
                continue
            if o.state in (S.SUBMITTING, S.UNKNOWN) and now - o.last_ts_ms < unknown_grace_ms:
                continue
            to, evidence = _missing_target(o, truth, missed_matched.get(o.order_id, 0), now, trades_cover(o))
            if to is None:
                diffs.append(Diff(ORDER_UNRESOLVED, evidence, o.order_id))
                continue
            diffs.append(Diff(ORDER_MISSING_AT_VENUE, f"local {o.state} → {to}: {evidence}", o.order_id))
            actions.append(Resolve(o.order_id, to, evidence))

    # 4. Acknowledgement holds the venue's trades do not back.
    venue_trade_ids = {t.id for t in truth.trades}
    for o in state.orders.values():
        if (
            o.awaiting_fills
            and trades_cover(o)
            and not (set(o.pending_trades) & venue_trade_ids)
            and (o.pending_trades or o.order_id not in extra)
        ):
            diffs.append(Diff(HOLD_RELEASED, "acknowledged trades not in the venue's history", o.order_id))
            actions.append(ReleaseHold(o.order_id))

    # 5. Balances.
    if truth.cash or truth.shares:
        if applied:
            diffs.append(Diff(BALANCE_DEFERRED, "trades to apply first; reconcile balances again after"))
        else:
            _balances(state, truth, diffs, actions, cash_tolerance, repair_balances)
    return RepairBatch(now, tuple(diffs), tuple(actions))


def _missing_target(
    o: OrderRecord, truth: VenueTruth, missed: Micro, now: int, covered: bool
) -> tuple[OrderState | None, str]:
    """Where an order the venue no longer lists open has gone. `missed`: shares of this order in the
    venue's trades the OMS had not seen, whatever their status — like the venue's size_matched, "how much
    matched" counts fills that later failed settlement (they do not count as filled)."""
    looked_up = truth.order_status.get(o.order_id)
    if looked_up is not None:
        status = looked_up.status
        if status is ReportStatus.MATCHED:
            return S.FILLED, "/data/order: MATCHED"
        if status is ReportStatus.CANCELED:
            matched = max(o.matched, looked_up.size_matched)
            if o.is_ioc:
                return (S.FILLED if matched else S.CANCELLED), "/data/order: CANCELED"
            if gtd_expired(o, now):
                return S.EXPIRED, "/data/order: CANCELED after expiration"
            return S.CANCELLED, "/data/order: CANCELED"
        if status is ReportStatus.REJECTED:
            if o.state in (S.SUBMITTING, S.UNKNOWN):
                return S.REJECTED, "the venue's order report: REJECTED"
            return None, "the venue reports REJECTED for an acknowledged order"
        return None, f"/data/order says {status} but the open-orders list does not have it"
    matched = max(o.venue_matched, o.filled + o.voided + missed)
    if o.size and matched >= o.size:
        return S.FILLED, "not open at the venue; fully matched"
    if o.is_ioc and matched > 0:
        return S.FILLED, "not open at the venue; IOC order traded"
    if gtd_expired(o, now):
        return S.EXPIRED, "not open at the venue; past its expiration"
    if o.state in (S.LIVE, S.PARTIALLY_FILLED) or matched > 0:
        return S.CANCELLED, "not open at the venue"
    if not covered:
        return None, "not open at the venue; trade history does not cover the order's life"
    return S.REJECTED, "never acknowledged, not open at the venue, no trades"


def _balances(
    state: OmsState,
    truth: VenueTruth,
    diffs: list[Diff],
    actions: list[Action],
    tolerance: Micro,
    repair: bool,
) -> None:
    # Per wallet and token: (Σ deltas of MINED provisional fills, Σ negative and Σ positive deltas of
    # the not-yet-mined ones).
    cash_band: dict[str, list[int]] = {}
    share_band: dict[tuple[str, str], list[int]] = {}
    for f in state.fills.values():
        if f.tier is not FillTier.PROVISIONAL:
            continue
        is_mined = f.status is TradeStatus.MINED
        for band, delta in (
            (cash_band.setdefault(f.wallet, [0, 0, 0]), f.cash_delta),
            (share_band.setdefault((f.wallet, f.token_id), [0, 0, 0]), f.share_delta),
        ):
            if is_mined:
                band[0] += delta
            elif delta < 0:
                band[1] += delta
            else:
                band[2] += delta
    for wallet, venue_cash in truth.cash.items():
        lg = state.ledgers.get(wallet.lower())
        if lg is None:
            continue
        mined, lo, hi = cash_band.get(lg.wallet, [0, 0, 0])
        expected = lg.cash + mined
        if not expected + lo - tolerance <= venue_cash <= expected + hi + tolerance:
            diffs.append(
                Diff(CASH_DRIFT, f"drift {venue_cash - expected}", wallet=lg.wallet, local=expected, venue=venue_cash)
            )
            if repair and lo == 0 and hi == 0:
                actions.append(SetCash(lg.wallet, venue_cash - mined))
    for wallet, tokens in truth.shares.items():
        lg = state.ledgers.get(wallet.lower())
        if lg is None:
            continue
        for token, venue_shares in tokens.items():
            pos = lg.positions.get(token)
            confirmed = pos.confirmed if pos is not None else 0
            mined, lo, hi = share_band.get((lg.wallet, token), [0, 0, 0])
            expected = confirmed + mined
            if not expected + lo <= venue_shares <= expected + hi:
                diffs.append(
                    Diff(
                        SHARES_DRIFT,
                        f"drift {venue_shares - expected}",
                        wallet=lg.wallet,
                        token_id=token,
                        local=expected,
                        venue=venue_shares,
                    )
                )
                if repair and lo == 0 and hi == 0:
                    actions.append(SetShares(lg.wallet, token, venue_shares - mined, pos.market if pos else ""))
