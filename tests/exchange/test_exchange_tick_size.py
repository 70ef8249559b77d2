"""Changing a market's tick: off-grid orders cancelled, on-grid ones keep their queue place, the book
re-indexed, new orders checked against the new tick, one event for the WebSocket layer."""

from __future__ import annotations

import pytest
from exchange_helpers import FINE, PLAIN, START_MS, Harness, binary_market, m

from polyoms.core.enums import Side
from polyoms.core.errors import InputError, InvalidPriceError, InvalidTickSizeError, NotFoundError
from polyoms.core.units import TICK_SIZES
from polyoms.exchange import messages as msg
from polyoms.exchange.events import CANCELLATION, ExchangeOrderEvent, TickSizeChangeEvent
from polyoms.exchange.orders import CANCELED, LIVE

YES, NO = PLAIN.yes_token_id, PLAIN.no_token_id


def test_a_coarser_tick_cancels_off_grid_orders_and_keeps_the_queue(h: Harness) -> None:
    a, b, c = h.user("100"), h.user("100"), h.user("0", {YES: "30", NO: "10"})
    first = h.buy(a, YES, "0.40", "10")  # on the 0.1 grid
    off = h.buy(b, YES, "0.45", "10")  # off it
    second = h.buy(b, YES, "0.40", "10")  # on it, behind `first`
    no_ask = h.sell(c, NO, "0.30", "10")  # a YES bid at 0.70: on the grid through the mirror
    no_off = h.buy(a, NO, "0.25", "10")  # a YES ask at 0.75: off
    high = h.sell(c, YES, "0.95", "5")  # on the cent grid, off the 0.1 one (and 0.95 > 1 − 0.1)
    h.log.clear()

    canceled = h.ex.change_tick_size(PLAIN.condition_id, "0.1")

    assert canceled == [off.order_id, no_off.order_id, high.order_id]  # oldest first
    spec = h.ex.market(PLAIN.condition_id)
    assert spec.tick == TICK_SIZES["0.1"]
    for oid in canceled:
        o = h.ex.get_order(oid)
        assert o is not None and o.status == CANCELED and not o.resting and o.cancel_reason == msg.REASON_TICK_SIZE
    kept = [first.order_id, second.order_id, no_ask.order_id]
    assert [o.order_id for o in h.ex.open_orders()] == kept
    # Events: the cancellations (at the old tick), then the tick change, for both tokens.
    *cancels, change = h.log.events
    assert [(e.kind, e.order.order_id, e.reason) for e in cancels if isinstance(e, ExchangeOrderEvent)] == [
        (CANCELLATION, oid, msg.REASON_TICK_SIZE) for oid in canceled
    ]
    assert len(cancels) == 3
    assert isinstance(change, TickSizeChangeEvent)
    assert (change.market, change.token_ids) == (PLAIN.condition_id, (YES, NO))
    assert (change.old_tick.text, change.new_tick.text, change.canceled) == ("0.01", "0.1", tuple(canceled))
    assert change.timestamp_ms == START_MS
    # The book is re-indexed: levels on the 0.1 grid, NO mirrored, reservations of the cancelled freed.
    book = h.ex.books[PLAIN.condition_id]
    assert (book.tick, book.n) == (100_000, 10)
    assert h.ex.book(YES).bids == ((m("0.4"), m("20")), (m("0.7"), m("10")))
    assert h.ex.book(NO).asks == ((m("0.6"), m("20")), (m("0.3"), m("10")))
    assert h.ex.balances(b.address).pusd_reserved == m("4")
    h.check()
    # Time priority survives: a seller hits `first` before `second`.
    (t,) = h.sell(c, YES, "0.70", "10").trades
    assert [mf.order_id for mf in t.maker_orders] == [no_ask.order_id]  # a merge with the NO seller
    (t2,) = h.sell(c, YES, "0.40", "15").trades
    assert [(mf.order_id, mf.matched_amount) for mf in t2.maker_orders] == [
        (first.order_id, m("10")),
        (second.order_id, m("5")),
    ]
    h.check()


def test_new_orders_validate_against_the_new_tick(h: Harness) -> None:
    a = h.user("100")
    h.ex.change_tick_size(PLAIN.condition_id, "0.1")
    with pytest.raises(InvalidPriceError) as err:
        h.buy(a, YES, "0.45", "10")
    assert err.value.message.endswith("breaks minimum tick size rule: 0.1")
    assert h.buy(a, YES, "0.50", "10").status == "live"
    # And back to a finer tick: every resting order is on the finer grid and stays.
    assert h.ex.change_tick_size(PLAIN.condition_id, "0.001") == []
    assert h.buy(a, YES, "0.455", "10").status == "live"
    assert [lvl[0] for lvl in h.ex.book(YES).bids] == [m("0.455"), m("0.5")]
    h.check()


def test_a_finer_tick_keeps_every_order_and_matches_on_the_new_levels(h: Harness) -> None:
    a, s = h.user("100"), h.user("0", {YES: "20"})
    bid = h.buy(a, YES, "0.30", "10")
    ask = h.sell(s, YES, "0.70", "10")
    assert h.ex.change_tick_size(PLAIN.condition_id, TICK_SIZES["0.0001"]) == []
    book = h.ex.books[PLAIN.condition_id]
    assert book.best_bid == 3_000 and book.best_ask == 7_000
    assert h.ex.best_bid_ask(NO) == (m("0.3"), m("0.7"))
    r = h.sell(s, YES, "0.2999", "5")
    assert r.trades[0].price == m("0.3") and r.trades[0].maker_orders[0].order_id == bid.order_id
    o = h.ex.get_order(ask.order_id)
    assert o is not None and o.status == LIVE
    h.check()


def test_a_tick_that_is_finer_but_not_a_divisor_still_cancels(h: Harness) -> None:
    """0.0025 → 0.001: 0.0125 is not on the 0.001 grid, 0.005 is."""
    quarter = binary_market("quarter", "Quarter tick?", tick="0.0025")
    hq = Harness(markets=(quarter,))
    u = hq.user("100")
    keep = hq.buy(u, quarter.yes_token_id, "0.005", "200")
    drop = hq.buy(u, quarter.yes_token_id, "0.0125", "200")
    assert hq.ex.change_tick_size(quarter.condition_id, "0.001") == [drop.order_id]
    assert [o.order_id for o in hq.ex.open_orders()] == [keep.order_id]
    hq.check()


def test_same_tick_unknown_tick_and_bad_market(h: Harness) -> None:
    a = h.user("100")
    h.buy(a, YES, "0.45", "10")
    h.log.clear()
    assert h.ex.change_tick_size(PLAIN.condition_id.upper().replace("0X", "0x"), "0.01") == []
    assert h.log.events == []
    with pytest.raises(InvalidTickSizeError):
        h.ex.change_tick_size(PLAIN.condition_id, "0.02")
    with pytest.raises(NotFoundError):
        h.ex.change_tick_size("0x" + "0" * 64, "0.1")
    h.ex.resolve(FINE.condition_id, FINE.yes_token_id)
    with pytest.raises(InputError):
        h.ex.change_tick_size(FINE.condition_id, "0.01")
    assert h.ex.open_orders()[0].side is Side.BUY
    h.check()
