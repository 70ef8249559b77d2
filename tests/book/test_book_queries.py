"""Book queries on hand-computed examples; trust, tick-size epochs, crossed books, own orders, containers."""

from __future__ import annotations

from fractions import Fraction

import msgspec
import pytest

from polyoms.core.book import Book, BookSet, HashStatus, MarketBooks, MirrorBook, Rounding, TrustState, round_fraction
from polyoms.core.enums import Side
from polyoms.core.market_events import BookSnapshot, LastTradePrice, PriceChange, PriceLevelChange, TickSizeChange
from polyoms.core.units import MICRO, TICK_SIZES

M = MICRO
T01 = TICK_SIZES["0.01"]
T001 = TICK_SIZES["0.001"]
YES, NO = "yes-token", "no-token"


def doc_example() -> BookSnapshot:
    """The §4.3 example book: bids 0.48x30 0.49x20 0.50x15, asks 0.52x25 0.53x60 0.54x10 (best last)."""
    return BookSnapshot(
        market="0xbd31",
        asset_id=YES,
        bids=((480_000, 30 * M), (490_000, 20 * M), (500_000, 15 * M)),
        asks=((540_000, 10 * M), (530_000, 60 * M), (520_000, 25 * M)),
        timestamp_ms=1777000000123,
        tick_size=T01,
        min_order_size=5 * M,
        neg_risk=False,
        last_trade_price=510_000,
    )


@pytest.fixture
def book() -> Book:
    b = Book(YES)
    b.apply_snapshot(doc_example())
    return b


def test_top_of_book(book: Book) -> None:
    assert (book.best_bid(), book.best_ask()) == (500_000, 520_000)
    assert (book.best_bid_size(), book.best_ask_size()) == (15 * M, 25 * M)
    assert book.spread() == 20_000 and book.mid() == 510_000
    assert book.trusted and book.trust is TrustState.TRUSTED and not book.is_crossed
    assert (book.tick_size, book.min_order_size, book.last_trade_price) == (T01, 5 * M, 510_000)


def test_micro_price(book: Book) -> None:
    # (0.50 * 25 + 0.52 * 15) / (15 + 25) = 20.3 / 40 = 0.5075: below the mid, the ask side is heavier
    assert book.micro_price() == Fraction(507_500)
    book.set_level(Side.BUY, 500_000, 10 * M)  # (0.50*25 + 0.52*10) / 35 = 17.7/35
    assert book.micro_price() == Fraction(17_700_000, 35)
    assert book.micro_price_micro() == 505_714  # 505714.28... half-even
    assert book.micro_price_micro(Rounding.CEIL) == 505_715
    assert book.micro_price_micro(Rounding.FLOOR) == 505_714


def test_depth_and_levels(book: Book) -> None:
    assert book.levels(Side.BUY) == [(500_000, 15 * M), (490_000, 20 * M), (480_000, 30 * M)]
    assert book.levels(Side.SELL, 2) == [(520_000, 25 * M), (530_000, 60 * M)]
    assert book.levels(Side.SELL, 0) == []
    assert (book.depth(Side.BUY, 2), book.depth(Side.SELL, 10)) == (35 * M, 95 * M)
    assert book.size_within(Side.BUY, 490_000) == 35 * M and book.size_within(Side.SELL, 525_000) == 25 * M


def test_sweep_buy_two_levels(book: Book) -> None:
    s = book.sweep(Side.BUY, 50 * M)  # 25 @ 0.52 + 25 @ 0.53 = 13 + 13.25 = 26.25 pUSD
    assert s.complete and s.filled == 50 * M and s.levels == 2
    assert s.notional == Fraction(26_250_000) and s.notional_micro() == 26_250_000
    assert s.vwap == Fraction(525_000) and s.vwap_micro() == 525_000
    assert (s.best_price, s.worst_price) == (520_000, 530_000)
    assert s.slippage == Fraction(5_000) and s.slippage_vs_mid == Fraction(15_000)
    assert book.vwap(Side.BUY, 50 * M) == Fraction(525_000)


def test_sweep_sell_three_levels(book: Book) -> None:
    s = book.sweep(Side.SELL, 40 * M)  # 15 @ 0.50 + 20 @ 0.49 + 5 @ 0.48 = 7.5 + 9.8 + 2.4 = 19.7
    assert s.notional == Fraction(19_700_000) and s.vwap == Fraction(492_500)
    assert s.slippage == Fraction(7_500) and s.slippage_vs_mid == Fraction(17_500)


def test_sweep_runs_out_of_book(book: Book) -> None:
    s = book.sweep(Side.BUY, 200 * M)  # all 95: 13 + 31.8 + 5.4 = 50.2 pUSD
    assert not s.complete and s.filled == 95 * M and s.levels == 3
    assert s.notional == Fraction(50_200_000)
    assert s.vwap == Fraction(50_200_000 * M, 95 * M) and s.vwap_micro() == 528_421  # 528421.05...
    assert s.notional_micro(Rounding.FLOOR) == 50_200_000


def test_sweep_with_a_limit_price(book: Book) -> None:
    s = book.sweep(Side.BUY, 50 * M, limit_price=520_000)
    assert (s.filled, s.levels, s.vwap) == (25 * M, 1, Fraction(520_000))
    nothing = book.sweep(Side.SELL, 5 * M, limit_price=510_000)
    assert (nothing.filled, nothing.vwap, nothing.slippage) == (0, None, None)
    with pytest.raises(ValueError):
        book.sweep(Side.BUY, 0)


def test_fractional_notional_is_exact() -> None:
    b = Book(YES, tick_size=TICK_SIZES["0.0001"])
    b.set_level(Side.SELL, 123_400, 1)  # 0.1234 x 0.000001 shares = 1.234e-7 pUSD: a fraction of a micro
    s = b.sweep(Side.BUY, 1)
    assert s.notional == Fraction(123_400, MICRO)
    assert (s.notional_micro(), s.notional_micro(Rounding.FLOOR)) == (1, 0)
    assert (
        round_fraction(Fraction(5, 2), Rounding.HALF_EVEN) == 2
        and round_fraction(Fraction(7, 2), Rounding.HALF_EVEN) == 4
    )


def test_empty_book_queries() -> None:
    b = Book(YES, tick_size=T01)
    assert (b.best_bid(), b.best_ask(), b.spread(), b.mid(), b.micro_price()) == (None, None, None, None, None)
    assert (b.best_bid_or_zero(), b.best_ask_or_one()) == (0, MICRO)
    assert b.sweep(Side.BUY, M).filled == 0 and b.depth(Side.SELL, 5) == 0
    assert not b.trusted and b.untrusted_reason == "no snapshot yet"


def test_crossed_book_is_flagged_not_fatal(book: Book) -> None:
    book.set_level(Side.BUY, 520_000, 5 * M)  # a bid at the best ask: crossed
    assert book.is_crossed and book.crossed_updates == 1
    assert book.spread() == 0 and book.best_bid() == 520_000
    book.set_level(Side.SELL, 510_000, 5 * M)  # now an ask below the bid
    assert book.is_crossed and book.crossed_updates == 2 and book.spread() == -10_000
    assert book.sweep(Side.BUY, 5 * M).slippage == 0
    book.set_level(Side.BUY, 520_000, 0)
    book.set_level(Side.SELL, 510_000, 0)
    assert not book.is_crossed and book.trusted  # the venue's transient glitch passed


def test_own_orders_per_level(book: Book) -> None:
    book.set_own_order("o1", Side.BUY, 500_000, 4 * M)
    book.set_own_order("o2", Side.BUY, 500_000, 3 * M)
    book.set_own_order("o3", Side.SELL, 530_000, 10 * M)
    assert book.own_size(Side.BUY, 500_000) == 7 * M and book.others_size(Side.BUY, 500_000) == 8 * M
    assert book.own_orders_at(Side.BUY, 500_000) == {"o1": 4 * M, "o2": 3 * M}
    book.set_own_order("o1", Side.BUY, 500_000, 1 * M)  # partially filled
    assert book.own_size(Side.BUY, 500_000) == 4 * M
    book.set_own_order("o2", Side.BUY, 490_000, 3 * M)  # replaced at another price
    assert book.own_size(Side.BUY, 500_000) == 1 * M and book.own_size(Side.BUY, 490_000) == 3 * M
    book.remove_own_order("o1")
    book.set_own_order("o2", Side.BUY, 490_000, 0)
    assert book.own_size(Side.BUY, 500_000) == 0 and book.own_size(Side.BUY, 490_000) == 0
    book.set_level(Side.SELL, 530_000, 6 * M)  # the mirror lags our order: never negative
    assert book.others_size(Side.SELL, 530_000) == 0
    no = MirrorBook(book)
    assert no.own_size(Side.BUY, 470_000) == 10 * M  # our SELL YES at 0.53 is a NO bid at 0.47
    book.clear_own_orders()
    assert no.own_size(Side.BUY, 470_000) == 0


# --- trust and epochs ----------------------------------------------------------------------------


def test_tick_size_change_drops_the_book_until_a_snapshot() -> None:
    books = BookSet()
    snap = doc_example()
    books.apply(snap)
    book = books[YES]
    assert book.trusted and book.epoch == 0 and book.grid_step == T01.micro
    books.apply(TickSizeChange("0xbd31", YES, T01, T001, 1777000000200))
    assert not book.trusted and book.awaiting_snapshot and book.epoch == 1
    assert "tick size changed 0.01 -> 0.001" in book.untrusted_reason
    assert (book.best_bid(), book.best_ask(), book.tick_size, book.grid_step) == (None, None, T001, T001.micro)
    # updates on the new grid are kept, but the best-price check waits for the snapshot
    change = PriceLevelChange.of(YES, Side.BUY, 501_000, M, best_bid=123_000, best_ask=MICRO)
    books.apply(PriceChange.of("0xbd31", [change], 1777000000300))
    assert book.best_bid() == 501_000 and book.best_mismatches == 0 and not book.trusted
    books.apply(BookSnapshot("0xbd31", YES, ((501_000, M),), ((515_000, 2 * M),), 1777000000400, tick_size=T001))
    assert book.trusted and not book.awaiting_snapshot and book.best_ask() == 515_000
    assert book.timestamp_ms == 1777000000400
    books.apply(TickSizeChange("0xbd31", YES, T001, T001))  # no change: nothing dropped
    assert book.trusted and book.epoch == 1


def test_invalid_updates_are_rejected_and_untrust() -> None:
    book = Book(YES)
    book.apply_snapshot(doc_example())
    for price in (0, MICRO, 1_500_000, 50):  # 0, 1, 1.5, 0.00005 (finer than any tick)
        assert not book.set_level(Side.BUY, price, M)
    assert not book.set_level(Side.BUY, 500_000, -1)
    assert book.rejected_updates == 5 and not book.trusted
    assert book.untrusted_reason.startswith("invalid level update")
    assert book.best_bid() == 500_000  # nothing was applied


def test_invalid_text_updates_are_rejected() -> None:
    books = BookSet()
    books.apply(doc_example())
    bad = PriceLevelChange(YES, "0.50", "12abc", "BUY")
    books.apply(PriceChange("m", (bad,), "1"))
    book = books[YES]
    assert not book.trusted and book.rejected_updates == 1 and book.best_bid_size() == 15 * M


def test_snapshot_restores_trust_after_a_gap() -> None:
    books = BookSet()
    books.apply(doc_example())
    books.mark_untrusted("user socket reconnected")
    assert books.untrusted() == {YES: "user socket reconnected"}
    books[YES].mark_untrusted("a second reason does not overwrite the first")
    assert books[YES].untrusted_reason == "user socket reconnected"
    books.apply(doc_example())
    assert books.untrusted() == {} and books[YES].snapshots == 2


def test_snapshot_with_an_invalid_level_stays_untrusted() -> None:
    book = Book(YES)
    book.apply_snapshot(BookSnapshot("m", YES, ((0, M), (500_000, M)), ((520_000, M),), tick_size=T01))
    assert not book.trusted and book.best_bid() == 500_000 and "invalid level" in book.untrusted_reason


def test_snapshot_with_finer_levels_than_its_tick_keeps_them() -> None:
    snap = BookSnapshot("m", YES, ((500_000, M), (505_000, M)), ((520_000, M),), tick_size=T01)
    book = Book(YES)
    book.apply_snapshot(snap)
    assert book.trusted and book.best_bid() == 505_000 and book.grid_step == 5_000


def test_snapshot_without_a_tick_uses_the_finest_grid() -> None:
    book = Book(YES)
    book.apply_snapshot(BookSnapshot("m", YES, ((511_000, M),), ((514_000, M),)))
    assert book.tick_size is None and book.grid_step == 100  # 0.0001: any later price fits
    assert book.set_level(Side.BUY, 512_300, M) and book.best_bid() == 512_300


def test_best_price_check_compares_the_state_after_the_message() -> None:
    books = BookSet()
    books.apply(doc_example())
    # two changes to one asset; the first carries a best bid that only holds midway: not compared
    first = PriceLevelChange.of(YES, Side.BUY, 510_000, M, best_bid=510_000, best_ask=520_000)
    second = PriceLevelChange.of(YES, Side.BUY, 515_000, M, best_bid=515_000, best_ask=520_000)
    books.apply(PriceChange.of("m", [first, second], 2))
    assert books[YES].trusted
    wrong = PriceLevelChange.of(YES, Side.SELL, 519_000, M, best_bid=515_000, best_ask=520_000)
    books.apply(PriceChange.of("m", [wrong], 3))
    assert not books[YES].trusted and books[YES].best_mismatches == 1
    assert books[YES].untrusted_reason == "venue best 0.515/0.52 != mirror 0.515/0.519"


def test_best_price_check_reads_any_spelling() -> None:
    books = BookSet()
    books.apply(doc_example())
    change = PriceLevelChange(YES, "0.51", "1", "BUY", "", "0.510", ".52")
    books.apply(PriceChange("m", (change,), "4"))
    assert books[YES].trusted


def test_empty_side_markers_match_an_emptied_side() -> None:
    books = BookSet()
    books.apply(BookSnapshot("m", YES, ((500_000, M),), (), tick_size=T01))
    gone = PriceLevelChange.of(YES, Side.BUY, 500_000, 0, best_bid=0, best_ask=MICRO)
    books.apply(PriceChange.of("m", [gone], 5))
    assert books[YES].trusted and books[YES].best_bid() is None
    empty_text = PriceLevelChange(YES, "0.4", "0", "BUY", "", "", "")
    books.apply(PriceChange("m", (empty_text,), "6"))
    assert books[YES].trusted


def test_level_hash_hook_sees_every_applied_change() -> None:
    seen: list[tuple[str, str]] = []
    books = BookSet(level_hash_hook=lambda book, change: seen.append((book.asset_id, change.hash)))
    books.apply(doc_example())
    changes = [PriceLevelChange.of(YES, Side.BUY, 500_000, M, hash="h1"), PriceLevelChange.of("?", Side.BUY, 100, 1)]
    books.apply(PriceChange.of("m", changes, 7))
    assert seen == [(YES, "h1")] and books.unknown_asset_updates == 1


def test_last_trade_price_is_recorded() -> None:
    books = BookSet()
    books.apply(doc_example())
    books.apply(LastTradePrice("m", YES, 520_000, M, Side.BUY))
    assert books[YES].last_trade_price == 520_000


# --- containers and views -----------------------------------------------------------------------


def test_market_view_mirrors_yes_and_no() -> None:
    books = BookSet()
    books.register_market("0xbd31", YES, NO, T01)
    books.apply(doc_example())
    view = books.view("0xbd31")
    assert view.no_book is None and isinstance(view.no, MirrorBook)
    no = view.no
    # NO bid at 1 - p for each YES ask p
    assert no.levels(Side.BUY) == [(480_000, 25 * M), (470_000, 60 * M), (460_000, 10 * M)]
    assert no.best_bid() == MICRO - view.yes.best_ask()  # type: ignore[operator]
    assert no.best_ask() == MICRO - view.yes.best_bid()  # type: ignore[operator]
    assert no.sweep(Side.BUY, 10 * M).vwap == Fraction(500_000)  # = selling YES at 0.50
    # the venue's own NO book, as it sends it: no discrepancies
    mirrored = BookSnapshot(
        "0xbd31", NO, tuple(reversed(no.levels(Side.BUY))), tuple(reversed(no.levels(Side.SELL))), tick_size=T01
    )
    books.apply(mirrored)
    view = books.view("0xbd31")
    assert view.no is books[NO] and view.discrepancies() == []
    books[NO].set_level(Side.SELL, 500_000, 16 * M)
    assert view.discrepancies() == [(Side.SELL, 500_000, 16 * M, 15 * M)]
    assert MarketBooks("c", None, books[NO]).yes.best_bid() == MICRO - books[NO].best_ask()  # type: ignore[operator]


def test_thousands_of_books_in_one_container() -> None:
    books = BookSet()
    for n in range(3_000):
        tick = T001 if n % 3 else T01
        books.apply(BookSnapshot("m", f"t{n}", ((400_000, M),), ((600_000, M),), tick_size=tick))
    changes = [PriceLevelChange.of(f"t{n}", Side.BUY, 450_000, 2 * M) for n in range(0, 3_000, 7)]
    books.apply(PriceChange.of("m", changes, 1))
    assert len(books) == 3_000 and "t7" in books and books.get("nope") is None
    assert books["t7"].best_bid() == 450_000 and books["t8"].best_bid() == 400_000
    assert all(b.trusted for b in books)
    books.mark_untrusted("gap", ["t1", "t2", "missing"])
    assert set(books.untrusted()) == {"t1", "t2"}
    books.remove("t1")
    assert len(books) == 2_999


def test_book_without_a_known_tick_is_created_on_the_finest_grid() -> None:
    books = BookSet()
    book = books.ensure(YES)
    assert book.grid_step == 100 and book.awaiting_snapshot
    books.set_tick_size(NO, T01)
    assert books.ensure(NO).grid_step == 10_000


def test_hash_status_recorded(book: Book) -> None:
    assert book.hash_status is HashStatus.UNCHECKED
    other = Book(YES)
    other.apply_snapshot(msgspec.structs.replace(doc_example(), hash_verified=True))
    assert other.hash_status is HashStatus.MATCH and other.trusted


def test_refining_the_grid_of_a_crossed_book_is_not_a_new_crossing() -> None:
    book = Book(YES, tick_size=T01)
    book.set_level(Side.SELL, 500_000, M)
    book.set_level(Side.BUY, 500_000, M)
    assert book.is_crossed and book.crossed_updates == 1
    assert book.set_level(Side.BUY, 495_000, M) and book.grid_step == 5_000
    assert book.crossed_updates == 1 and book.levels(Side.BUY) == [(500_000, M), (495_000, M)]
