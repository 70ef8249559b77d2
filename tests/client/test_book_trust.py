"""The market mirror's trust rules on their own (no socket): update order, snapshot staleness, the hash
check's "auto" mode, what a REST round does with a token, and the round-robin verification batches."""

from __future__ import annotations

from polyoms.core.book import Book, BookSet
from polyoms.core.market_events import BookSnapshot, PriceLevelChange
from polyoms.core.units import MICRO, tick_size
from polyoms.polymarket.client.book_trust import (
    HashTrust,
    HashVerdict,
    RestVerdict,
    SnapshotVerdict,
    TokenTrust,
    best_price_problem,
    complement_last_trade,
    expected_book,
    rest_verdict,
    round_robin,
)
from polyoms.polymarket.protocol.book_hash import mirror_hash

C = MICRO // 100  # one cent


def _book(asset: str = "1001") -> Book:
    book = Book(asset, "0xab", tick_size("0.01"))
    book.apply_snapshot(
        BookSnapshot(
            market="0xab",
            asset_id=asset,
            bids=((40 * C, 10 * MICRO),),
            asks=((60 * C, 10 * MICRO),),
            timestamp_ms=100,
            min_order_size=5 * MICRO,
            tick_size=tick_size("0.01"),
            neg_risk=False,
            last_trade_price=50 * C,
        )
    )
    return book


def _change(hash_: str, best_bid: str | None = None, best_ask: str | None = None) -> PriceLevelChange:
    return PriceLevelChange("1001", "0.4", "10", "BUY", hash_, best_bid, best_ask)


def test_an_update_stamped_before_the_newest_one_is_out_of_order() -> None:
    st = TokenTrust(now_ms=0)
    assert st.note_update(10, now_ms=5) == -1 and st.last_live_ms == 5
    previous = st.note_update(8, now_ms=6)
    assert previous == 10 and st.order_problem(8, previous) == "update stamped 8 after one stamped 10"
    assert st.order_problem(None, previous) is None and st.order_problem(10, previous) is None


def test_an_awaited_snapshot_overtaken_by_updates_is_not_applied() -> None:
    st = TokenTrust(now_ms=0)
    st.expect_snapshot(deadline_ms=1_000)
    st.note_update(50, now_ms=1)
    assert st.snapshot_verdict(50) is SnapshotVerdict.OVERTAKEN and not st.awaiting
    st.took_snapshot(60, now_ms=2)
    assert st.snapshot_verdict(59) is SnapshotVerdict.STALE
    assert st.snapshot_verdict(60) is SnapshotVerdict.APPLY


def test_a_late_snapshot_is_overdue_once() -> None:
    st = TokenTrust(now_ms=0)
    st.expect_snapshot(deadline_ms=100)
    assert not st.snapshot_overdue(99)
    assert st.snapshot_overdue(100) and not st.snapshot_overdue(200)


def test_updates_up_to_an_adopted_rest_snapshot_are_not_checked() -> None:
    st = TokenTrust(now_ms=0)
    st.took_rest_snapshot(500, now_ms=1)
    assert st.unchecked(500) and not st.unchecked(501) and not st.unchecked(None)


def test_auto_hash_check_enforces_only_after_a_match_and_gives_up_after_misses() -> None:
    book = _book()
    cache: tuple[dict[int, tuple[int, str]], dict[int, tuple[int, str]]] = ({}, {})
    good = mirror_hash(book, "100", book.last_trade_price)
    rules = HashTrust()
    verdicts = [rules.judge("auto", 2, book, _change("bad"), "100", cache, lambda: None) for _ in range(3)]
    assert verdicts == [HashVerdict.MISS, HashVerdict.GIVE_UP, HashVerdict.UNCHECKED]
    rules.reset()
    assert rules.judge("auto", 2, book, _change(good), "100", cache, lambda: None) is HashVerdict.MATCH
    assert rules.judge("auto", 2, book, _change("bad"), "100", cache, lambda: None) is HashVerdict.MISMATCH
    assert HashTrust().judge("off", 2, book, _change("bad"), "100", cache, lambda: None) is HashVerdict.UNCHECKED


def test_a_hash_matching_with_the_complements_last_trade_adopts_it() -> None:
    books = BookSet()
    yes = books.apply_snapshot(
        BookSnapshot(market="0xab", asset_id="1001", bids=(), asks=(), last_trade_price=30 * C, tick_size=None)
    )
    no = _book("1002")
    assert complement_last_trade(books, ["1001", "1002"], no) == 70 * C
    served = mirror_hash(no, "100", 70 * C)
    rules = HashTrust()
    verdict = rules.judge(
        "on", 1, no, _change(served), "100", ({}, {}), lambda: complement_last_trade(books, ["1001"], no)
    )
    assert verdict is HashVerdict.MATCH and no.last_trade_price == 70 * C and yes.last_trade_price == 30 * C


def test_best_prices_are_compared_with_the_mirrors() -> None:
    book = _book()
    assert best_price_problem(book, _change("", "0.4", "0.6")) is None
    assert best_price_problem(book, _change("", "0.41", "0.6")) == "venue 0.41/0.6 != mirror 0.4/0.6"


def test_a_rest_round_verifies_adopts_or_retries() -> None:
    book = _book()
    snap = BookSnapshot(market="0xab", asset_id="1001", bids=((40 * C, 10 * MICRO),), asks=((60 * C, 10 * MICRO),))
    same = expected_book(snap, [])
    other = expected_book(snap, [(None, PriceLevelChange("1001", "0.4", "0", "BUY"))])
    assert other[0] == {}
    assert rest_verdict("verify", book, True, same) is RestVerdict.VERIFIED
    assert rest_verdict("probe", book, True, other) is RestVerdict.MISMATCH
    assert rest_verdict("verify", book, False, other) is RestVerdict.NOTHING
    assert rest_verdict("verify", book, True, None) is RestVerdict.NOTHING
    assert rest_verdict("probe", book, True, None) is RestVerdict.PROBE_FAILED
    assert rest_verdict("resync", book, True, None) is RestVerdict.RETRY
    assert rest_verdict("resync", book, False, same) is RestVerdict.NOTHING  # restored by the stream meanwhile
    book.mark_untrusted("test")
    assert rest_verdict("resync", book, False, same) is RestVerdict.ADOPT


def test_updates_older_than_the_rest_snapshot_are_dropped_from_the_expected_book() -> None:
    snap = BookSnapshot(market="0xab", asset_id="1001", bids=((40 * C, 10 * MICRO),), asks=(), timestamp_ms=100)
    recorded: list[tuple[int | None, PriceLevelChange | int]] = [
        (99, PriceLevelChange("1001", "0.4", "0", "BUY")),
        (101, PriceLevelChange("1001", "0.3", "2", "BUY")),
        (102, 45 * C),
    ]
    bids, asks, last_trade, latest = expected_book(snap, recorded)
    assert bids == {40 * C: 10 * MICRO, 30 * C: 2 * MICRO} and asks == {} and last_trade == 45 * C and latest == 102


def test_verification_batches_go_round_robin_over_eligible_tokens() -> None:
    keys = ["a", "b", "c", "d"]
    batch, cursor = round_robin(keys, 0, lambda k: k != "b", 2)
    assert batch == ["a", "c"] and cursor == 3
    batch, cursor = round_robin(keys, cursor, lambda k: k != "b", 2)
    assert batch == ["d", "a"] and cursor == 5
    assert round_robin([], 7, lambda k: True, 2) == ([], 7)
    assert round_robin(keys, 1, lambda k: False, 2) == ([], 0)
