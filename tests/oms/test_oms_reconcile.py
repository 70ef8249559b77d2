"""Reconciliation: a pure diff of local state vs the venue's truth, repairs toward the venue, journaled."""

from __future__ import annotations

from pathlib import Path

import msgspec

from polyoms.core.clock import VirtualClock
from polyoms.core.enums import OrderType, Side
from polyoms.core.units import MICRO
from polyoms.core.user_events import TradeEvent, TraderSide
from polyoms.core.user_events import TradeStatus as T
from polyoms.core.venue import OrderReport, VenueTruth
from polyoms.oms import reconcile as recon
from polyoms.oms import repairs
from polyoms.oms.journal import open_journal
from polyoms.oms.journal_recovery import recover
from polyoms.oms.oms_state import OmsState
from polyoms.oms.state import OrderState
from polyoms.venues import polymarket_orders

from .oms_helpers import MARKET, OWNER, START_MS, WALLET, YES, intent, maker, new_state, oid, trade

S = OrderState
LATER = START_MS + 120_000


def venue_order(order_id: str, *, matched: int = 0, size: int = 10 * MICRO, status: str = "LIVE") -> OrderReport:
    return OrderReport(
        order_id, polymarket_orders.report_status(status), MARKET, YES, Side.BUY, 500_000, size, matched,
        OrderType.GTC, owner=OWNER,
    )  # fmt: skip


def live(state: OmsState, order_id: str, **kw: object) -> None:
    state.submit(intent(order_id, **kw))  # type: ignore[arg-type]
    state.on_ack(order_id, polymarket_orders.ack(order_id, "live"))


def maker_fill(order_id: str, trade_id: str, status: T, size: int) -> TradeEvent:
    return trade(
        trade_id, "0x" + "ee" * 32, status, side=Side.SELL, size=size,
        makers=(maker(order_id, size, 500_000, side=Side.BUY),), trader_side=TraderSide.MAKER,
    )  # fmt: skip


def reconcile(state: OmsState, truth: VenueTruth, **kw: object) -> repairs.RepairBatch:
    before = state.snapshot()
    batch = recon.diff(state, truth, **kw)  # type: ignore[arg-type]
    assert state.snapshot() == before  # pure
    state.apply_reconciliation(batch)
    assert state.check_invariants() == []
    again = recon.diff(state, truth, **kw)  # type: ignore[arg-type]
    assert [d.kind for d in again.diffs if d.kind != repairs.TERMINAL_BUT_OPEN] == [], again.diffs  # idempotent
    return batch


def kinds(batch: repairs.RepairBatch) -> list[str]:
    return sorted(d.kind for d in batch.diffs)


def test_clean_state_gives_no_diff() -> None:
    state = new_state()
    a = oid()
    live(state, a)
    batch = recon.diff(state, VenueTruth(LATER, open_orders=(venue_order(a),), trades=(), trades_since_s=0))
    assert batch.clean and batch.actions == ()


def test_live_order_gone_at_the_venue_is_resolved_by_its_trades() -> None:
    state = new_state()
    filled, cancelled, partial = oid(), oid(), oid()
    for i in (filled, cancelled, partial):
        live(state, i)
    trades = (maker_fill(filled, "tA", T.CONFIRMED, 10 * MICRO), maker_fill(partial, "tB", T.MINED, 4 * MICRO))
    batch = reconcile(state, VenueTruth(LATER, open_orders=(), trades=trades, trades_since_s=START_MS // 1000))
    assert kinds(batch) == [repairs.MISSED_TRADE, repairs.MISSED_TRADE, *[repairs.ORDER_MISSING_AT_VENUE] * 3]
    assert state.orders[filled].state is S.FILLED and state.orders[filled].filled == 10 * MICRO
    assert state.orders[cancelled].state is S.CANCELLED
    assert state.orders[partial].state is S.CANCELLED and state.orders[partial].filled == 4 * MICRO
    assert state.ledger(WALLET).positions[YES].confirmed == 10 * MICRO
    assert all(state.orders[i].history[-1].actor == "reconcile" for i in (cancelled, partial))


def test_expired_gtd_is_expired() -> None:
    state = new_state()
    i = oid()
    live(state, i, order_type=OrderType.GTD, expiration=START_MS // 1000 + 60)
    reconcile(state, VenueTruth(LATER, open_orders=()))
    assert state.orders[i].state is S.EXPIRED


def test_unknown_orders_by_evidence_and_grace() -> None:
    clock = VirtualClock(START_MS)
    state = new_state(clock=clock)
    young, never, lookup_c, lookup_m, uncovered = (oid() for _ in range(5))
    for i in (never, lookup_c, lookup_m, uncovered):
        state.submit(intent(i))
        state.on_send_failed(i, "timeout")
    clock.advance(100_000)
    state.submit(intent(young))
    state.on_send_failed(young, "timeout")
    truth = VenueTruth(
        clock.now_ms(),
        open_orders=(),
        trades=(),
        trades_since_s=START_MS // 1000 - 1,
        order_status={lookup_c: venue_order(lookup_c, status="ORDER_STATUS_CANCELED"),
                      lookup_m: venue_order(lookup_m, status="MATCHED", matched=10 * MICRO)},
    )  # fmt: skip
    batch = reconcile(state, truth, unknown_grace_ms=30_000)
    got = {i: state.orders[i].state for i in (young, never, lookup_c, lookup_m)}
    assert got == {young: S.UNKNOWN, never: S.REJECTED, lookup_c: S.CANCELLED, lookup_m: S.FILLED}
    assert state.orders[uncovered].state is S.REJECTED  # created after trades_since_s: covered
    assert state.unknown == {young}
    # Trade history that does not reach back to the order's creation proves nothing.
    state2 = new_state(clock=VirtualClock(START_MS))
    j = oid()
    state2.submit(intent(j))
    state2.on_send_failed(j, "timeout")
    b2 = recon.diff(state2, VenueTruth(LATER, open_orders=(), trades_since_s=START_MS // 1000 + 5))
    assert kinds(b2) == [repairs.ORDER_UNRESOLVED] and b2.actions == ()
    assert repairs.ORDER_MISSING_AT_VENUE in kinds(batch)


def test_venue_order_we_do_not_know_is_adopted_and_one_we_closed_is_cancelled_at_the_venue() -> None:
    state = new_state()
    ours = oid()
    live(state, ours)
    state.on_cancel_answer([ours])
    stranger = oid()
    truth = VenueTruth(LATER, open_orders=(venue_order(stranger, matched=2 * MICRO), venue_order(ours)))
    batch = reconcile(state, truth)
    assert kinds(batch) == [repairs.ORDER_UNKNOWN_LOCALLY, repairs.TERMINAL_BUT_OPEN]
    o = state.orders[stranger]
    assert o.origin == "external" and o.state is S.PARTIALLY_FILLED and o.venue_matched == 2 * MICRO
    assert state.orders[ours].state is S.CANCELLED  # terminal stays terminal ...
    assert batch.venue_cancels == [ours]  # ... and the engine cancels the stray order at the venue


def test_orders_behind_the_venue_catch_up() -> None:
    state = new_state()
    sent, behind = oid(), oid()
    state.submit(intent(sent))
    state.on_send_failed(sent, "502")
    live(state, behind)
    truth = VenueTruth(LATER, open_orders=(venue_order(sent), venue_order(behind, matched=3 * MICRO)))
    batch = reconcile(state, truth)
    assert kinds(batch) == [repairs.ORDER_BEHIND, repairs.ORDER_BEHIND]
    assert state.orders[sent].state is S.LIVE and sent not in state.unknown
    assert state.orders[behind].state is S.PARTIALLY_FILLED and state.orders[behind].reserved_cash == 3_500_000


def test_trade_status_behind_is_brought_forward_and_a_ghost_voided() -> None:
    state = new_state()
    a, b = oid(), oid()
    live(state, a)
    live(state, b)
    state.on_trade_event(maker_fill(a, "tA", T.MATCHED, 2 * MICRO))
    state.on_trade_event(maker_fill(b, "tB", T.MINED, 3 * MICRO))
    truth = VenueTruth(
        LATER,
        # The failed trade no longer counts at the venue either: b is back to nothing matched.
        open_orders=(venue_order(a, matched=2 * MICRO), venue_order(b, matched=0)),
        trades=(maker_fill(a, "tA", T.CONFIRMED, 2 * MICRO), maker_fill(b, "tB", T.FAILED, 3 * MICRO)),
        trades_since_s=0,
    )
    batch = reconcile(state, truth)
    assert kinds(batch) == [repairs.TRADE_BEHIND, repairs.TRADE_BEHIND]
    assert state.fills[("tA", a)].status is T.CONFIRMED and state.fills[("tB", b)].status is T.FAILED
    lg = state.ledger(WALLET)
    assert lg.prov_out == 0 and lg.positions[YES].confirmed == 2 * MICRO and lg.positions[YES].total == 2 * MICRO


def test_cash_and_share_drift_repaired_toward_the_venue() -> None:
    state = new_state(cash=100 * MICRO)
    state.set_balance(WALLET, positions={YES: 10 * MICRO})
    a = oid()
    live(state, a)
    state.on_trade_event(maker_fill(a, "tM", T.MINED, 2 * MICRO))  # mined: already on chain
    truth = VenueTruth(
        LATER,
        open_orders=(venue_order(a, matched=2 * MICRO),),
        trades=(maker_fill(a, "tM", T.MINED, 2 * MICRO),),
        trades_since_s=0,
        cash={WALLET: 100 * MICRO - 1 * MICRO - 250_000},  # 1 for the mined fill, 0.25 gone elsewhere
        shares={WALLET: {YES: 12 * MICRO}},  # 10 + the mined 2: no drift
    )
    batch = reconcile(state, truth)
    assert kinds(batch) == [repairs.CASH_DRIFT]
    [d] = batch.diffs
    assert (d.local, d.venue) == (99 * MICRO, 98_750_000)
    lg = state.ledger(WALLET)
    assert lg.cash == 100 * MICRO - 250_000 and lg.prov_out == 1 * MICRO
    # Unmined fills widen the band instead: a MATCHED one may or may not be on chain yet.
    b = oid()
    live(state, b)
    state.on_trade_event(maker_fill(b, "tX", T.MATCHED, 4 * MICRO))
    inside = VenueTruth(LATER, cash={WALLET: 98_750_000 - 2 * MICRO}, shares={WALLET: {YES: 16 * MICRO}})
    assert recon.diff(state, inside).clean
    outside = VenueTruth(LATER, cash={WALLET: 98_750_000 - 3 * MICRO})
    drift = recon.diff(state, outside)
    assert kinds(drift) == [repairs.CASH_DRIFT] and drift.actions == ()  # not repaired while fills are in flight


def test_balances_wait_for_the_trades_of_the_same_batch() -> None:
    state = new_state(cash=100 * MICRO)
    a = oid()
    live(state, a)
    truth = VenueTruth(LATER, trades=(maker_fill(a, "t1", T.CONFIRMED, 2 * MICRO),), cash={WALLET: 99 * MICRO})
    batch = recon.diff(state, truth)
    assert kinds(batch) == [repairs.BALANCE_DEFERRED, repairs.MISSED_TRADE]
    state.apply_reconciliation(batch)
    assert recon.diff(state, truth).clean  # and the balance agrees once the trade is in


def test_acknowledged_trades_the_venue_never_had_release_the_hold() -> None:
    state = new_state(cash=100 * MICRO)
    i = oid()
    o = state.submit(intent(i, order_type=OrderType.FOK))
    state.on_ack(i, polymarket_orders.ack(i, "matched", ("ghost",)))
    assert o.awaiting_fills and o.reserved_cash == 5 * MICRO
    batch = reconcile(state, VenueTruth(LATER, trades=(), trades_since_s=START_MS // 1000 - 1))
    assert kinds(batch) == [repairs.HOLD_RELEASED]
    assert not o.awaiting_fills and o.reserved_cash == 0 and o.state is S.FILLED


def test_reconciliation_is_journaled_and_recovered(tmp_path: Path) -> None:
    state = OmsState(VirtualClock(START_MS))
    j = open_journal(tmp_path / "j.sqlite", state)
    state.add_wallet(WALLET, [OWNER])
    state.set_balance(WALLET, cash=100 * MICRO)
    a, b = oid(), oid()
    live(state, a)
    live(state, b)
    truth = VenueTruth(
        LATER, open_orders=(venue_order(a),), trades=(maker_fill(b, "t9", T.CONFIRMED, 1 * MICRO),),
        trades_since_s=0, cash={WALLET: 50 * MICRO},
    )  # fmt: skip
    batch = recon.diff(state, truth)
    state.apply_reconciliation(batch)
    state.apply_reconciliation(recon.diff(state, truth))  # balances, now that the trade is in
    state.flush()
    diffs = [r.payload for r in j.log(kind="diff")]
    assert [d["kind"] for d in diffs] == [
        repairs.MISSED_TRADE,
        repairs.ORDER_MISSING_AT_VENUE,
        repairs.BALANCE_DEFERRED,
        repairs.CASH_DRIFT,
    ]
    j.close()
    again = recover(tmp_path / "j.sqlite", VirtualClock(START_MS), attach=False)
    assert again.snapshot() == state.snapshot()
    assert again.ledger(WALLET).cash == 50 * MICRO
    decoded = msgspec.msgpack.decode(msgspec.msgpack.encode(batch), type=repairs.RepairBatch)
    assert decoded == batch
