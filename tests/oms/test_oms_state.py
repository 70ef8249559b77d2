"""The order state machine: its table, the audit trail, evidence rules (stale, duplicate, contradiction),
UNKNOWN resolved only by evidence, FOK/FAK and dollar-sized BUYs finished by status, cancels, expiry."""

from __future__ import annotations

import itertools

import pytest

from polyoms.core.clock import VirtualClock
from polyoms.core.enums import OrderType, Side
from polyoms.core.errors import InvalidPriceError, PolyomsError
from polyoms.core.units import MICRO
from polyoms.core.user_events import OrderEventType as E
from polyoms.core.user_events import OrderStatus as OS
from polyoms.core.user_events import TraderSide
from polyoms.core.user_events import TradeStatus as T
from polyoms.oms.errors import DuplicateIntentError, IllegalTransitionError, OmsError
from polyoms.oms.state import (
    OPEN,
    TERMINAL,
    TRANSITIONS,
    OrderState,
    record_from_intent,
    transition,
)
from polyoms.polymarket.protocol.constants import GTD_SECURITY_THRESHOLD_S
from polyoms.venues import polymarket_orders

from .oms_helpers import START_MS, WALLET, intent, maker, new_state, oid, order_event, trade

S = OrderState


def live(state, order_id, **kw):  # type: ignore[no-untyped-def]
    state.submit(intent(order_id, **kw))
    state.on_ack(order_id, polymarket_orders.ack(order_id, "live"))
    return state.orders[order_id]


# --- the table -----------------------------------------------------------------------------------


def test_table_covers_every_state_and_terminal_states_have_no_exit() -> None:
    assert set(TRANSITIONS) == set(S)
    assert set(OPEN) | set(TERMINAL) == set(S) and not set(OPEN) & set(TERMINAL)
    for st in TERMINAL:
        assert TRANSITIONS[st] == frozenset()
    # Nothing ever goes back to SUBMITTING, and only SUBMITTING can become UNKNOWN (no answer).
    assert all(S.SUBMITTING not in tos for tos in TRANSITIONS.values())
    assert [f for f, tos in TRANSITIONS.items() if S.UNKNOWN in tos] == [S.SUBMITTING]


@pytest.mark.parametrize(("frm", "to"), list(itertools.product(S, S)))
def test_every_pair_is_allowed_exactly_by_the_table(frm: OrderState, to: OrderState) -> None:
    o = record_from_intent(intent(oid(1)), START_MS, 1)
    o.state = frm
    if to in TRANSITIONS[frm]:
        transition(o, to, START_MS + 5, "because", "algo-7", 9)
        assert o.state is to
        last = o.history[-1]
        assert (last.from_state, last.to_state, last.reason, last.actor, last.seq) == (frm, to, "because", "algo-7", 9)
    else:
        with pytest.raises(IllegalTransitionError) as info:
            transition(o, to, START_MS + 5, "because", "algo-7", 9)
        err = info.value
        assert (err.order_id, err.from_state, err.to_state, err.cause) == (o.order_id, frm, to, "because")
        assert isinstance(err, OmsError) and isinstance(err, PolyomsError)
        assert o.state is frm and len(o.history) == 1  # nothing recorded


def test_audit_timestamps_never_go_back_even_if_told_to() -> None:
    o = record_from_intent(intent(oid(2)), START_MS + 100, 1)
    transition(o, S.LIVE, START_MS + 50, "ack", "venue:rest", 2)
    assert o.history[-1].ts_ms == START_MS + 100


# --- a normal life -----------------------------------------------------------------------------------


def test_limit_order_life_with_audit_trail() -> None:
    clock = VirtualClock(START_MS)
    state = new_state(clock=clock)
    o_id = oid()
    o = state.submit(intent(o_id, actor="mm-1"))
    assert o.state is S.SUBMITTING and o.reserved_cash == 5 * MICRO
    clock.advance(10)
    state.on_ack(o_id, polymarket_orders.ack(o_id, "live"))
    clock.advance(10)
    state.on_order_event(order_event(o_id, E.PLACEMENT))  # already LIVE: nothing to record
    clock.advance(10)
    state.on_order_event(order_event(o_id, E.UPDATE, matched=4 * MICRO))
    assert o.state is S.PARTIALLY_FILLED and o.venue_matched == 4 * MICRO
    assert o.reserved_cash == 3 * MICRO  # 6 shares left at 0.5
    clock.advance(10)
    state.on_order_event(order_event(o_id, E.UPDATE, matched=10 * MICRO, status=OS.MATCHED))
    assert o.state is S.FILLED and o.reserved_cash == 0
    trail = [(h.from_state, h.to_state, h.actor, h.ts_ms - START_MS) for h in o.history]
    assert trail == [
        (None, S.SUBMITTING, "mm-1", 0),
        (S.SUBMITTING, S.LIVE, "venue:rest", 10),
        (S.LIVE, S.PARTIALLY_FILLED, "venue:ws", 30),
        (S.PARTIALLY_FILLED, S.FILLED, "venue:ws", 40),
    ]
    assert "UPDATE MATCHED" in o.history[-1].reason
    assert state.check_invariants() == []


def test_a_smaller_size_matched_is_stale_and_ignored() -> None:
    state = new_state()
    o = live(state, oid())
    state.on_order_event(order_event(o.order_id, E.UPDATE, matched=6 * MICRO))
    n = len(o.history)
    state.on_order_event(order_event(o.order_id, E.UPDATE, matched=2 * MICRO))
    assert o.venue_matched == 6 * MICRO and o.state is S.PARTIALLY_FILLED
    assert len(o.history) == n and o.stale_events == 1
    # The same update again changes nothing either.
    state.on_order_event(order_event(o.order_id, E.UPDATE, matched=6 * MICRO))
    assert len(o.history) == n and o.reserved_cash == 2 * MICRO


def test_placement_after_a_fill_and_ack_after_the_stream_are_absorbed() -> None:
    state = new_state()
    o_id = oid()
    o = state.submit(intent(o_id))
    # The user stream is faster than the HTTP answer: the order matched before its ack came back.
    state.on_order_event(order_event(o_id, E.UPDATE, matched=3 * MICRO))
    state.on_order_event(order_event(o_id, E.PLACEMENT))
    state.on_ack(o_id, polymarket_orders.ack(o_id, "live"))
    state.on_send_failed(o_id, "read timeout")  # a late timeout after all that: no UNKNOWN
    assert o.state is S.PARTIALLY_FILLED
    assert [h.to_state for h in o.history] == [S.SUBMITTING, S.PARTIALLY_FILLED]
    assert o.stale_events == 3


def test_terminal_states_stay_terminal() -> None:
    state = new_state()
    o = live(state, oid())
    state.on_order_event(order_event(o.order_id, E.CANCELLATION, matched=2 * MICRO, status=OS.CANCELED))
    assert o.state is S.CANCELLED and o.reserved_cash == 0
    state.on_order_event(order_event(o.order_id, E.UPDATE, matched=5 * MICRO))
    state.on_ack(o.order_id, polymarket_orders.ack(o.order_id, "live"))
    state.on_order_event(order_event(o.order_id, E.UPDATE, matched=10 * MICRO, status=OS.MATCHED))
    assert o.state is S.CANCELLED and o.reserved_cash == 0
    assert o.history[-1].to_state is S.CANCELLED and len(o.history) == 3


def test_contradicting_evidence_raises_and_changes_nothing() -> None:
    state = new_state()
    o = live(state, oid())
    before = state.snapshot()
    with pytest.raises(IllegalTransitionError) as info:
        state.on_reject(o.order_id, InvalidPriceError("price off the grid", source="venue", status=400))
    assert info.value.from_state is S.LIVE and info.value.to_state is S.REJECTED
    assert "InvalidPriceError" in info.value.cause
    after = state.snapshot()
    assert after.pop("seq") == before.pop("seq") + 1  # the evidence itself is an input (journaled)
    assert after == before


def test_an_order_id_is_never_submitted_twice() -> None:
    state = new_state()
    o = live(state, oid())
    state.on_send_failed(o.order_id, "late")  # no effect
    with pytest.raises(DuplicateIntentError):
        state.submit(intent(o.order_id))
    assert len(state.orders) == 1


# --- UNKNOWN -----------------------------------------------------------------------------------------


def test_timeout_makes_unknown_and_only_evidence_resolves_it() -> None:
    state = new_state()
    ids = [oid() for _ in range(4)]
    for i in ids:
        state.submit(intent(i))
        state.on_send_failed(i, "timeout after 10 s")
    assert {state.orders[i].state for i in ids} == {S.UNKNOWN} and state.unknown == set(ids)
    # Still reserved: it may be live.
    assert all(state.orders[i].reserved_cash == 5 * MICRO for i in ids)
    # 1: the user channel shows it resting.
    state.on_order_event(order_event(ids[0], E.PLACEMENT))
    # 2: a trade shows it matched.
    state.on_trade_event(
        trade("t-1", "0xtaker", T.MATCHED, side=Side.SELL, size=3 * MICRO,
              makers=(maker(ids[1], 3 * MICRO, 500_000, side=Side.BUY),), trader_side=TraderSide.MAKER)
    )  # fmt: skip
    # 3: a cancel by id answers "canceled".
    state.on_cancel_answer([ids[2]])
    # 4: reconciliation: the venue has no trace of it.
    state.resolve(ids[3], S.REJECTED, "not at the venue, no trades")
    assert [state.orders[i].state for i in ids] == [S.LIVE, S.PARTIALLY_FILLED, S.CANCELLED, S.REJECTED]
    assert state.unknown == set()
    assert state.check_invariants() == []


def test_not_canceled_answer_does_not_resolve_unknown() -> None:
    state = new_state()
    i = oid()
    state.submit(intent(i))
    state.on_send_failed(i, "timeout")
    state.request_cancel([i], actor="ops")
    state.on_cancel_answer([], {i: "order not found or already canceled"})
    o = state.orders[i]
    assert o.state is S.UNKNOWN and not o.pending_cancel and i in state.unknown
    assert [h.kind for h in o.history[-2:]] == ["cancel_requested", "cancel_cleared"]


def test_after_restart_in_flight_intents_become_unknown() -> None:
    state = new_state()
    a, b = oid(), oid()
    state.submit(intent(a))
    live(state, b)
    assert state.after_restart() == [a]
    assert state.orders[a].state is S.UNKNOWN and state.orders[b].state is S.LIVE
    assert state.orders[a].history[-1].actor == "system"


# --- FOK / FAK / dollar-sized BUY ------------------------------------------------------------------


def test_fok_dollar_buy_is_finished_by_status_and_keeps_its_money_until_the_fills_arrive() -> None:
    state = new_state(cash=100 * MICRO)
    i = oid()
    # $50 market BUY, worst price 0.6, taker fee 4 % max: reserves 50 + 2 (cash × r).
    o = state.submit(intent(i, order_type=OrderType.FOK, price=600_000, notional=50 * MICRO, fee_rate_bps=400))
    assert o.reserved_cash == 52 * MICRO
    state.on_ack(i, polymarket_orders.ack(i, "matched", ("t-a", "t-b")))
    assert o.state is S.FILLED and o.awaiting_fills
    assert o.reserved_cash == 52 * MICRO  # answered, but no fill yet: still locked
    # Two trades at better prices than the worst; no share count adds up to anything in particular.
    state.on_trade_event(trade("t-a", i, T.MATCHED, size=41_660_000, price=550_000, fee_rate_bps=400))
    assert o.awaiting_fills and o.reserved_cash == 52 * MICRO - o.filled_cash - fee_allowance_left(o)
    state.on_trade_event(trade("t-b", i, T.MATCHED, size=40_000, price=560_000, fee_rate_bps=400))
    assert not o.awaiting_fills and o.reserved_cash == 0
    assert o.state is S.FILLED and o.filled == 41_700_000
    lg = state.ledger(WALLET)
    assert lg.prov_out == o.filled_cash + o.fees and lg.reserved == 0
    assert state.check_invariants() == []


def fee_allowance_left(o) -> int:  # type: ignore[no-untyped-def]
    from polyoms.oms.ledger import reservation

    cash, _ = reservation(o)
    return 52 * MICRO - o.filled_cash - cash


def test_fok_trade_before_its_ack_finishes_it_and_the_ack_changes_nothing() -> None:
    state = new_state()
    i = oid()
    o = state.submit(intent(i, order_type=OrderType.FOK, size=7 * MICRO))
    state.on_trade_event(trade("t-1", i, T.MATCHED, size=7 * MICRO))
    assert o.state is S.FILLED and o.reserved_cash == 0
    state.on_ack(i, polymarket_orders.ack(i, "matched", ("t-1",)))
    assert o.state is S.FILLED and not o.awaiting_fills and o.reserved_cash == 0


def test_fak_partial_fill_is_filled_and_unmatched_fok_is_cancelled() -> None:
    state = new_state()
    fak, fok = oid(), oid()
    o1 = state.submit(intent(fak, order_type=OrderType.FAK, size=10 * MICRO))
    state.on_trade_event(trade("t-9", fak, T.MATCHED, size=4 * MICRO))
    state.on_order_event(order_event(fak, E.CANCELLATION, matched=4 * MICRO, status=OS.CANCELED))
    assert o1.state is S.FILLED and o1.filled == 4 * MICRO and o1.reserved_cash == 0
    o2 = state.submit(intent(fok, order_type=OrderType.FOK))
    state.on_ack(fok, polymarket_orders.ack(fok, "unmatched"))
    assert o2.state is S.CANCELLED and o2.reserved_cash == 0


# --- cancels and expiry -----------------------------------------------------------------------------


def test_cancel_flow_and_refusals() -> None:
    state = new_state()
    a = live(state, oid())
    b = state.submit(intent(oid()))  # cancel before the ack: allowed (the id is the hash)
    state.request_cancel([a.order_id, b.order_id], actor="operator:alice", reason="flatten")
    assert a.pending_cancel and b.pending_cancel
    assert a.history[-1].kind == "cancel_requested" and a.history[-1].actor == "operator:alice"
    assert a.state is S.LIVE  # a request is a hope
    state.on_cancel_answer([a.order_id, b.order_id])
    assert a.state is S.CANCELLED and b.state is S.CANCELLED
    assert not a.pending_cancel and not b.pending_cancel
    with pytest.raises(IllegalTransitionError):
        state.request_cancel([a.order_id], actor="x")
    assert state.check_invariants() == []


def test_gtd_cancellation_after_expiration_is_expired() -> None:
    state = new_state()
    exp = START_MS // 1000 + 120
    # The venue ends a GTD order 60 s (the security threshold) before what was signed: the intent holds that.
    ends = exp - GTD_SECURITY_THRESHOLD_S
    o = live(state, oid(), order_type=OrderType.GTD, expiration=ends)
    state.on_order_event(
        order_event(o.order_id, E.CANCELLATION, status=OS.CANCELED, order_type=OrderType.GTD, ts_ms=(exp + 1) * 1000)
    )
    assert o.state is S.EXPIRED
    dead_man = live(state, oid(), order_type=OrderType.GTD, expiration=ends)
    state.on_order_event(order_event(dead_man.order_id, E.CANCELLATION, status=OS.CANCELED, ts_ms=(exp - 60) * 1000))
    assert dead_man.state is S.EXPIRED
    early = live(state, oid(), order_type=OrderType.GTD, expiration=ends)
    state.on_order_event(order_event(early.order_id, E.CANCELLATION, status=OS.CANCELED, ts_ms=(exp - 61) * 1000))
    assert early.state is S.CANCELLED


# --- orders we did not place -------------------------------------------------------------------------


def test_unknown_order_event_adopts_an_external_order() -> None:
    state = new_state()
    ext = oid()
    state.on_order_event(order_event(ext, E.PLACEMENT, side=Side.SELL, size=5 * MICRO, price=700_000))
    o = state.orders[ext]
    assert (o.origin, o.state, o.side, o.size, o.wallet) == ("external", S.LIVE, Side.SELL, 5 * MICRO, WALLET)
    assert o.reserved_shares == 5 * MICRO
    assert o.history[0].from_state is None and "adopted" in o.history[0].reason


def test_fill_of_an_unknown_order_adopts_it_as_unknown_until_its_order_event() -> None:
    state = new_state()
    ext = oid()
    state.on_trade_event(
        trade("t-x", "0xtaker", T.MATCHED, side=Side.SELL, size=2 * MICRO,
              makers=(maker(ext, 2 * MICRO, 400_000, side=Side.BUY),), trader_side=TraderSide.MAKER)
    )  # fmt: skip
    o = state.orders[ext]
    assert o.state is S.UNKNOWN and ext in state.unknown and o.filled == 2 * MICRO
    state.on_order_event(order_event(ext, E.UPDATE, matched=2 * MICRO, size=8 * MICRO, price=400_000))
    assert o.state is S.PARTIALLY_FILLED and o.size == 8 * MICRO and ext not in state.unknown
    # 6 shares left at 0.4, plus the 10 % bound of an unknown fee rate (core.fees.UNKNOWN_RATE_BOUND_BPS).
    assert o.reserved_cash == 2_400_000 + 240_000
    assert state.check_invariants() == []
