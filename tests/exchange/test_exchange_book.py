"""The YES-space book: dense levels, best tracking, lazy FIFO removal, and the YES/NO views."""

from __future__ import annotations

from exchange_helpers import FINE, PLAIN, Harness, m

from polyoms.core.enums import OrderType, Side
from polyoms.exchange.accounts import Account
from polyoms.exchange.book import MatchingBook
from polyoms.exchange.orders import Order

YES, NO = PLAIN.yes_token_id, PLAIN.no_token_id
_seq = 0


def rec(side: Side, yes: bool, price: int, size: int) -> Order:
    global _seq
    _seq += 1
    o = Order(
        f"0x{_seq:064x}", "0x" + "1" * 40, "k", PLAIN.condition_id, YES if yes else NO, "Yes" if yes else "No",
        yes, side, OrderType.GTC, price, size, 0, 0, 0, 0, 0, _seq, Account("0x" + "1" * 40),
    )  # fmt: skip
    o.level = (price if yes else 1_000_000 - price) // PLAIN.tick.micro
    return o


def test_sides_in_yes_space() -> None:
    assert rec(Side.BUY, True, 400_000, 1).is_bid
    assert rec(Side.SELL, False, 600_000, 1).is_bid  # SELL NO at 0.60 = YES bid at 0.40
    assert not rec(Side.SELL, True, 600_000, 1).is_bid
    assert not rec(Side.BUY, False, 400_000, 1).is_bid  # BUY NO at 0.40 = YES ask at 0.60
    assert rec(Side.SELL, False, 600_000, 1).level == 40


def test_dense_levels_and_best_tracking() -> None:
    b = MatchingBook(PLAIN)
    assert b.n == 100 and (b.best_bid, b.best_ask) == (0, 100)
    assert b.bid_q[40] is None  # queues appear with a level's first order
    assert b.best(True) == (None, None)
    o1, o2, o3 = rec(Side.BUY, True, 400_000, 5), rec(Side.SELL, False, 550_000, 7), rec(Side.BUY, True, 300_000, 2)
    for o in (o1, o2, o3):
        b.add(o)
    assert b.best_bid == 45  # SELL NO 0.55 -> YES bid 0.45
    assert b.levels(True) == [(450_000, 7), (400_000, 5), (300_000, 2)]
    b.remove(o2)
    assert b.best_bid == 40 and b.bid_size[45] == 0 and not b.bid_q[45]
    b.remove(o1)
    assert b.best_bid == 30
    b.remove(o3)
    assert b.best_bid == 0 and b.levels(True) == []


def test_fifo_with_lazy_removal_and_compaction() -> None:
    b = MatchingBook(PLAIN)
    orders = [rec(Side.SELL, True, 600_000, 1) for _ in range(60)]
    for o in orders:
        b.add(o)
    b.remove(orders[0])  # front: popped at once
    q = b.ask_q[60]
    assert q is not None and q[0] is orders[1]
    for o in orders[10:50]:
        b.remove(o)  # middle: flagged, compacted once dead entries dominate
    live = orders[1:10] + orders[50:]
    assert b.queue(False, 60) == live
    q = b.ask_q[60]
    assert q is not None and len(q) <= 2 * len(live) + 16
    assert b.ask_size[60] == len(live) and b.ask_count[60] == len(live)


def test_views_best_last_and_no_mirrors_yes() -> None:
    h = Harness()
    u = h.user("1000", {YES: "100"})
    h.buy(u, YES, "0.40", "10")
    h.buy(u, YES, "0.42", "5")
    h.sell(u, YES, "0.47", "6")
    h.sell(u, YES, "0.45", "8")
    h.buy(u, NO, "0.50", "30")  # YES ask at 0.50
    yes = h.ex.book(YES)
    assert yes.bids == ((m("0.40"), m("10")), (m("0.42"), m("5")))
    assert yes.asks == ((m("0.50"), m("30")), (m("0.47"), m("6")), (m("0.45"), m("8")))
    assert (yes.best_bid, yes.best_ask) == (m("0.42"), m("0.45"))
    no = h.ex.book(NO)
    assert no.bids == ((m("0.50"), m("30")), (m("0.53"), m("6")), (m("0.55"), m("8")))
    assert no.asks == ((m("0.60"), m("10")), (m("0.58"), m("5")))
    assert h.ex.best_bid_ask(NO) == (m("0.55"), m("0.58"))
    assert h.ex.best_bid_ask(YES) == (m("0.42"), m("0.45"))
    assert h.ex.midpoint(YES) == m("0.435") and h.ex.midpoint(NO) == m("0.565")
    assert h.ex.spread(YES) == h.ex.spread(NO) == m("0.03")


def test_fine_tick_book_has_999_levels_per_side() -> None:
    h = Harness()
    u = h.user("1000")
    h.buy(u, FINE.yes_token_id, "0.001", "5")
    h.buy(u, FINE.no_token_id, "0.001", "5")  # YES ask at 0.999
    book = h.ex.books[FINE.condition_id]
    assert book.n == 1000
    assert h.ex.best_bid_ask(FINE.yes_token_id) == (1_000, 999_000)
    assert h.ex.spread(FINE.yes_token_id) == 998_000


def test_empty_book_queries() -> None:
    h = Harness()
    v = h.ex.book(YES)
    assert (v.bids, v.asks, v.best_bid, v.best_ask) == ((), (), None, None)
    assert h.ex.midpoint(YES) is None and h.ex.spread(YES) is None and h.ex.last_trade(YES) is None
