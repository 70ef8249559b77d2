"""Ledgers: reservations (with the fee allowance), available and sellable-now, average cost and PnL in
exact integers, and `check_invariants` catching every kind of corruption."""

from __future__ import annotations

from fractions import Fraction

from hypothesis import given, settings
from hypothesis import strategies as st

from polyoms.core.enums import OrderType, Side
from polyoms.core.units import MICRO
from polyoms.core.user_events import TraderSide
from polyoms.core.user_events import TradeStatus as T
from polyoms.oms.ledger import Position, div_round
from polyoms.oms.state import OrderState
from polyoms.venues import polymarket_orders

from .oms_helpers import WALLET, intent, maker, new_state, oid, trade

S = OrderState


def test_div_round_is_half_to_even() -> None:
    assert [div_round(n, 2) for n in (1, 3, 5, -1, -3)] == [0, 2, 2, 0, -2]
    assert div_round(10, 3) == 3 and div_round(20, 3) == 7 and div_round(-10, 3) == -3


def test_average_cost_realized_and_unrealized_pnl() -> None:
    pos = Position("1001")
    pos.book(10 * MICRO, -4 * MICRO)  # buy 10 at 0.40
    pos.book(10 * MICRO, -6 * MICRO - 100_000)  # buy 10 at 0.60, fee 0.10 (in the cost)
    assert pos.avg_price() == Fraction(10_100_000, 20 * MICRO)
    pos.book(-5 * MICRO, 3_500_000 - 50_000)  # sell 5 at 0.70, fee 0.05 deducted
    assert pos.confirmed == 15 * MICRO
    assert pos.cost == 7_575_000 and pos.realized == 3_450_000 - 2_525_000
    assert pos.unrealized(600_000) == 9 * MICRO - 7_575_000
    pos.book(-15 * MICRO, 15 * 550_000)  # flat: the whole remaining cost is released
    assert pos.confirmed == 0 and pos.cost == 0 and pos.avg_price() is None
    assert pos.realized == 925_000 + 8_250_000 - 7_575_000


def test_crossing_zero_opens_the_other_way_and_conserves_cash() -> None:
    pos = Position("1001")
    pos.book(-4 * MICRO, 2 * MICRO)  # a sale confirmed before the purchase it depends on
    pos.book(10 * MICRO, -5 * MICRO)
    assert pos.confirmed == 6 * MICRO and pos.cost == 3 * MICRO and pos.realized == 0
    assert pos.realized - pos.cost == 2 * MICRO - 5 * MICRO


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(-50, 50), st.integers(1, 999)), min_size=1, max_size=40))
def test_booking_conserves_cash_exactly(steps: list[tuple[int, int]]) -> None:
    pos = Position("1001")
    flows = 0
    for shares, price in steps:
        qty = shares * 10_000 * 7  # odd sizes: rounding happens
        flow = -qty * price // 1000
        pos.book(qty, flow)
        flows += flow
        assert flows == pos.realized - pos.cost
        if pos.confirmed == 0:
            assert pos.cost == 0


def test_buy_reservation_available_and_fee_allowance() -> None:
    state = new_state(cash=100 * MICRO)
    lg = state.ledger(WALLET)
    a = state.submit(intent(oid(), side=Side.BUY, price=400_000, size=50 * MICRO, fee_rate_bps=400))
    # 20 pUSD + fee bound 50 × 0.04 × 0.4 × 0.6 = 0.48.
    assert a.reserved_cash == 20 * MICRO + 480_000
    b = state.submit(intent(oid(), side=Side.BUY, price=700_000, size=10 * MICRO, fee_rate_bps=400))
    assert b.reserved_cash == 7 * MICRO + 100_000  # the fee peaks at p = 0.5: 10 × 0.04 × 0.25
    c = state.submit(intent(oid(), side=Side.BUY, price=700_000, size=10 * MICRO, post_only=True, fee_rate_bps=None))
    assert c.reserved_cash == 7 * MICRO  # post-only never takes, never pays a fee
    d = state.submit(intent(oid(), side=Side.BUY, price=500_000, size=10 * MICRO, fee_rate_bps=None))
    assert d.reserved_cash == 5 * MICRO + 500_000  # unknown rate: core.fees.UNKNOWN_RATE_BOUND_BPS (10 %)
    assert lg.reserved == sum(o.reserved_cash for o in (a, b, c, d))
    assert lg.available == 100 * MICRO - lg.reserved
    # A partial fill moves money from reserved to provisional outflow, at the maker's price.
    state.on_trade_event(
        trade("t1", "0xtaker", T.MATCHED, side=Side.SELL, size=20 * MICRO, price=400_000,
              makers=(maker(a.order_id, 20 * MICRO, 400_000, side=Side.BUY),), trader_side=TraderSide.MAKER)
    )  # fmt: skip
    assert a.reserved_cash == 12 * MICRO + 288_000 and lg.prov_out == 8 * MICRO
    assert lg.available == 100 * MICRO - lg.reserved - 8 * MICRO
    # Terminal orders reserve nothing.
    state.on_cancel_answer([a.order_id, b.order_id, c.order_id, d.order_id])
    assert lg.reserved == 0 and lg.available == 92 * MICRO
    assert state.check_invariants() == []


def test_sellable_now_is_confirmed_minus_provisional_sales_and_open_sells() -> None:
    state = new_state(cash=100 * MICRO)
    state.set_balance(WALLET, positions={"1001": 30 * MICRO})
    lg = state.ledger(WALLET)
    pos = lg.positions["1001"]
    assert lg.sellable("1001") == 30 * MICRO
    s1 = state.submit(intent(oid(), side=Side.SELL, price=600_000, size=10 * MICRO))
    assert s1.reserved_shares == 10 * MICRO and pos.reserved == 10 * MICRO and lg.sellable("1001") == 20 * MICRO
    # A provisional BUY does not make shares sellable (conservative: it may still fail) ...
    buy = state.submit(intent(oid(), side=Side.BUY, price=500_000, size=5 * MICRO, order_type=OrderType.FAK))
    state.on_trade_event(trade("tb", buy.order_id, T.MINED, side=Side.BUY, size=5 * MICRO))
    assert pos.prov_in == 5 * MICRO and lg.sellable("1001") == 20 * MICRO
    # ... until it is CONFIRMED.
    state.on_trade_event(trade("tb", buy.order_id, T.CONFIRMED, side=Side.BUY, size=5 * MICRO))
    assert lg.sellable("1001") == 25 * MICRO
    # A provisional SELL fill counts against it at once; its proceeds are not spendable yet.
    state.on_trade_event(
        trade("ts", "0xtaker", T.MATCHED, side=Side.BUY, size=4 * MICRO, price=600_000,
              makers=(maker(s1.order_id, 4 * MICRO, 600_000, side=Side.SELL),), trader_side=TraderSide.MAKER)
    )  # fmt: skip
    assert pos.prov_out == 4 * MICRO and s1.reserved_shares == 6 * MICRO and lg.sellable("1001") == 25 * MICRO
    assert lg.prov_in == 2_400_000 and lg.available == lg.cash - lg.reserved - lg.prov_out
    assert pos.total == 35 * MICRO - 4 * MICRO
    assert state.check_invariants() == []


def test_dollar_buy_reserves_its_budget() -> None:
    state = new_state(cash=100 * MICRO)
    o = state.submit(intent(oid(), order_type=OrderType.FAK, price=800_000, notional=40 * MICRO, fee_rate_bps=700))
    # cash × r = 2.80 bounds the fee of a dollar BUY (no 5 % cap: core.fees).
    assert o.reserved_cash == 40 * MICRO + 2_800_000
    state.on_ack(o.order_id, polymarket_orders.ack(o.order_id, "delayed"))
    assert o.state is S.LIVE and o.reserved_cash == 42_800_000
    small = state.submit(intent(oid(), order_type=OrderType.FOK, price=800_000, notional=10 * MICRO, fee_rate_bps=300))
    assert small.reserved_cash == 10 * MICRO + 300_000


def test_wallet_unrealized_over_marks() -> None:
    state = new_state(cash=100 * MICRO)
    state.set_balance(WALLET, positions={"1001": 10 * MICRO, "1002": 5 * MICRO})
    lg = state.ledger(WALLET)
    # Shares from a snapshot come at zero cost: all of their value is unrealized gain.
    assert lg.unrealized({"1001": 300_000, "1002": 700_000}) == 3 * MICRO + 3_500_000
    assert lg.unrealized({"1001": 300_000}) == 3 * MICRO
    assert lg.realized() == 0


def test_check_invariants_catches_corruption() -> None:
    state = new_state(cash=100 * MICRO)
    o = state.submit(intent(oid(), side=Side.BUY, price=500_000, size=10 * MICRO))
    state.on_trade_event(trade("t", o.order_id, T.MATCHED, size=2 * MICRO))
    assert state.check_invariants() == []
    lg = state.ledger(WALLET)
    cases = [
        (lambda: setattr(lg, "cash", lg.cash + 1), "cash"),
        (lambda: setattr(lg, "reserved", lg.reserved - 1), "reserved"),
        (lambda: setattr(lg, "prov_out", lg.prov_out + 1), "provisional"),
        (lambda: setattr(lg.positions["1001"], "prov_in", 0), "provisional shares"),
        (lambda: setattr(o, "filled", 0), "non-voided fills"),
        (lambda: setattr(o, "state", S.CANCELLED), "audit trail ends"),
        (lambda: o.history.append(o.history[-1].__class__(0, "state", o.state, o.state, "", "x", 0)), "go back"),
    ]
    for corrupt, needle in cases:
        snapshot = state.snapshot()
        saved = (lg.cash, lg.reserved, lg.prov_out, lg.positions["1001"].prov_in, o.filled, o.state, list(o.history))
        corrupt()
        problems = state.check_invariants()
        assert any(needle in p for p in problems), (needle, problems)
        lg.cash, lg.reserved, lg.prov_out, lg.positions["1001"].prov_in, o.filled, o.state, o.history = saved
        assert state.snapshot() == snapshot and state.check_invariants() == []
