"""OmsView: positions (confirmed and provisional), reservations, open orders, average cost and PnL of a
real OmsState fed with fills, read without changing it, as frozen values, per wallet."""

from __future__ import annotations

import dataclasses
from fractions import Fraction

import pytest

from polyoms.core.enums import OrderType, Side
from polyoms.core.units import MICRO
from polyoms.core.user_events import OrderEventType
from polyoms.core.user_events import TradeStatus as T
from polyoms.oms.errors import UnknownOrderError
from polyoms.oms.oms_state import OmsState
from polyoms.oms.state import OrderState
from polyoms.oms.view import OmsView, PositionSummary
from tests.oms.oms_helpers import NO, OTHER_WALLET, WALLET, YES, intent, new_state, oid, order_event, trade

from .helpers import maker_fill


def _book() -> tuple[OmsState, str, str]:
    """A BUY YES 10 @ 0.40 with 4 filled (provisional), a SELL NO 5 @ 0.60 being submitted, 20 NO held."""
    state = new_state(cash=100 * MICRO)
    state.set_balance(WALLET, positions={NO: 20 * MICRO})
    buy = state.submit(intent(oid(), side=Side.BUY, price=400_000, size=10 * MICRO, actor="mm-1"))
    state.on_order_event(order_event(buy.order_id, OrderEventType.PLACEMENT, price=400_000))
    sell = state.submit(intent(oid(), side=Side.SELL, price=600_000, size=5 * MICRO, token=NO, post_only=True))
    maker_fill(state, "t1", buy.order_id, T.MATCHED, 4 * MICRO, 400_000)
    return state, buy.order_id, sell.order_id


def test_provisional_then_confirmed_position_reservations_and_average_cost() -> None:
    state, buy, _ = _book()
    view = OmsView(state)
    pos = view.position(YES)
    assert (pos.confirmed, pos.provisional_in, pos.provisional, pos.total) == (0, 4 * MICRO, 4 * MICRO, 4 * MICRO)
    assert pos.avg_price is None and pos.cost == 0 and pos.unrealized == 0
    maker_fill(state, "t1", buy, T.CONFIRMED, 4 * MICRO, 400_000)
    pos = view.position(YES, 500_000)
    assert (pos.confirmed, pos.provisional, pos.total) == (4 * MICRO, 0, 4 * MICRO)
    assert pos.cost == 1_600_000 and pos.avg_price == Fraction(2, 5)
    assert pos.mark == 500_000 and pos.unrealized == 2 * MICRO - 1_600_000
    no = view.position(NO)
    assert (no.confirmed, no.reserved, no.sellable) == (20 * MICRO, 5 * MICRO, 15 * MICRO)
    assert view.position("never-held", 500_000) == PositionSummary("never-held", mark=500_000)


def test_wallet_view_cash_open_orders_and_totals_are_the_ledgers() -> None:
    state, buy, sell = _book()
    maker_fill(state, "t1", buy, T.CONFIRMED, 4 * MICRO, 400_000)
    # A taker SELL of 2 YES at 0.50, confirmed: realized 1.00 − 2 × 0.40 = 0.20.
    out = state.submit(intent(oid(), side=Side.SELL, price=500_000, size=2 * MICRO, order_type=OrderType.FAK))
    state.on_trade_event(trade("t2", out.order_id, T.CONFIRMED, side=Side.SELL, size=2 * MICRO, price=500_000))
    lg = state.ledger(WALLET)
    w = OmsView(state, WALLET).snapshot({YES: 500_000})
    assert (w.wallet, w.cash, w.available, w.reserved_cash) == (WALLET, lg.cash, lg.available, lg.reserved)
    assert w.cash == 100 * MICRO - 1_600_000 + MICRO and w.reserved_cash == 2_400_000
    assert w.realized == 200_000 == lg.realized()
    yes = w.position(YES)
    assert (yes.confirmed, yes.cost, yes.realized) == (2 * MICRO, 800_000, 200_000)
    assert w.unrealized is None  # 20 NO held and no mark for NO
    w = OmsView(state).snapshot({YES: 500_000, NO: 550_000})
    assert w.unrealized == (MICRO - 800_000) + 11 * MICRO == lg.unrealized({YES: 500_000, NO: 550_000})
    assert w.cost == 800_000 and w.fees == 0
    by_id = {o.order_id: o for o in w.open_orders}
    assert set(by_id) == {buy, sell} and w.orders(NO) == (by_id[sell],) and w.orders(side=Side.BUY) == (by_id[buy],)
    b = by_id[buy]
    assert (b.state, b.size, b.matched, b.remaining, b.actor) == (OrderState.PARTIALLY_FILLED, 10 * MICRO, 4 * MICRO,
                                                                  6 * MICRO, "mm-1")  # fmt: skip
    assert b.resting and b.cancellable and b.reserved_cash == 2_400_000 and not b.ioc
    s = by_id[sell]
    assert s.state is OrderState.SUBMITTING and not s.resting and not s.cancellable and s.post_only
    assert s.reserved_shares == 5 * MICRO


def test_the_view_never_changes_the_state_and_hands_out_frozen_values() -> None:
    state, buy, _ = _book()
    before = state.snapshot()
    view = OmsView(state)
    w = view.snapshot({YES: 500_000})
    view.position(YES, 500_000)
    view.open_orders(YES)
    assert state.snapshot() == before and state.check_invariants() == []
    with pytest.raises(dataclasses.FrozenInstanceError):
        w.cash = 0  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        w.open_orders[0].price = 1  # type: ignore[misc]
    with pytest.raises(TypeError):
        w.positions[YES] = w.positions[NO]  # type: ignore[index]
    # What was handed out stays as it was when the state moves on.
    maker_fill(state, "t1", buy, T.CONFIRMED, 4 * MICRO, 400_000)
    assert w.position(YES).confirmed == 0 and view.position(YES).confirmed == 4 * MICRO


def test_wallets_default_named_and_unknown() -> None:
    state, _, _ = _book()
    state.add_wallet(OTHER_WALLET)
    state.set_balance(OTHER_WALLET, cash=7 * MICRO)
    with pytest.raises(ValueError, match="2 wallets"):
        OmsView(state).snapshot()
    mine = OmsView(state, WALLET.upper().replace("0X", "0x"))
    assert mine.snapshot().position(YES).total == 4 * MICRO and len(mine.open_orders()) == 2
    other = mine.snapshot(wallet=OTHER_WALLET)
    assert (other.wallet, other.cash, other.positions, other.open_orders) == (OTHER_WALLET, 7 * MICRO, {}, ())
    assert mine.position(YES, wallet=OTHER_WALLET).total == 0
    assert set(mine.wallets()) == {WALLET, OTHER_WALLET}
    with pytest.raises(UnknownOrderError):
        mine.open_orders(wallet="0xnobody")
