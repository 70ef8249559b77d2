"""A child is final only when every share the venue says matched has arrived as a fill.

Found by the latency runs of the scenario harness: an order's FILLED update overtook its last trade, the
adaptive algorithm took the child as done with a short fill count and bought 60 of a 50-share target.
"""

from __future__ import annotations

from polyoms.algos.parents import child_view
from polyoms.core.units import MICRO
from polyoms.core.user_events import OrderEventType, OrderStatus, TradeStatus
from polyoms.oms.state import OrderState
from tests.oms.oms_helpers import intent, maker, new_state, oid, order_event, trade


def test_a_child_the_venue_filled_waits_for_its_trades() -> None:
    state = new_state()
    o = oid(1)
    state.submit(intent(o, size=10 * MICRO))
    state.on_order_event(order_event(o, OrderEventType.PLACEMENT))
    # The venue's update arrives first: all 10 matched, the order is done.
    state.on_order_event(order_event(o, OrderEventType.UPDATE, matched=10 * MICRO, status=OrderStatus.MATCHED))
    record = state.order(o)
    assert record.state is OrderState.FILLED and record.filled == 0
    early = child_view("c1", record, state.fills_of(o))
    assert not early.final and early.filled == 0
    # Then the trades: 6, then 4.
    state.on_trade_event(
        trade("t1", "someone", TradeStatus.MATCHED, size=6 * MICRO, makers=(maker(o, 6 * MICRO, 500_000),))
    )
    assert not child_view("c1", state.order(o), state.fills_of(o)).final
    state.on_trade_event(
        trade("t2", "someone", TradeStatus.MATCHED, size=4 * MICRO, makers=(maker(o, 4 * MICRO, 500_000),))
    )
    done = child_view("c1", state.order(o), state.fills_of(o))
    assert done.final and done.filled == 10 * MICRO


def test_a_child_whose_fills_are_in_is_final_at_once() -> None:
    state = new_state()
    o = oid(2)
    state.submit(intent(o, size=10 * MICRO))
    state.on_trade_event(
        trade("t3", "someone", TradeStatus.MATCHED, size=10 * MICRO, makers=(maker(o, 10 * MICRO, 500_000),))
    )
    state.on_order_event(order_event(o, OrderEventType.UPDATE, matched=10 * MICRO, status=OrderStatus.MATCHED))
    view = child_view("c2", state.order(o), state.fills_of(o))
    assert view.final and view.filled == 10 * MICRO
