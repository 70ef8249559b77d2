"""The example strategy: one post-only BUY at the best bid, capped by the position; pure and deterministic."""

from __future__ import annotations

import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from polyoms.algos.base import BookTop
from polyoms.core.enums import Side
from polyoms.core.errors import InputError
from polyoms.core.units import MICRO
from polyoms.oms.view import PositionSummary
from polyoms.strategies.base import Quote, snapshot
from polyoms.strategies.join_best_bid import JoinBestBid, JoinBestBidParams
from tests.oms.oms_helpers import START_MS, YES

from .helpers import instrument, snap, wallet

STRATEGY = JoinBestBid()
PARAMS = JoinBestBidParams(YES, 10 * MICRO, 50 * MICRO)


def test_quotes_its_size_at_the_best_bid_post_only() -> None:
    d = STRATEGY.decide(snap(), PARAMS, None)
    assert d.quotes == (Quote(YES, Side.BUY, 450_000, 10 * MICRO, post_only=True),)
    assert d.memory is None and "0.45" in d.reasons[0]
    assert STRATEGY.tokens(PARAMS) == (YES,)


def test_position_caps_the_size_provisional_fills_included_in_lots() -> None:
    held = PositionSummary(YES, confirmed=40 * MICRO, provisional_in=5 * MICRO - 5_000)
    (q,) = STRATEGY.decide(snap(positions=(held,)), PARAMS, None).quotes
    assert q.size == 5 * MICRO  # 50 − 44.995 = 5.005, down to the 0.01 lot
    full = PositionSummary(YES, confirmed=46 * MICRO)
    d = STRATEGY.decide(snap(positions=(full,)), PARAMS, None)
    assert d.quotes == () and "minimum size" in d.reasons[0]  # 4 shares left: under the minimum 5
    over = PositionSummary(YES, confirmed=60 * MICRO)
    assert STRATEGY.decide(snap(positions=(over,)), PARAMS, None).quotes == ()


@pytest.mark.parametrize(
    ("kwargs", "reason"),
    [
        ({"bids": ()}, "no bid"),
        ({"book": False}, "no bid"),
        ({"bids": ((470_000, MICRO),)}, "crossed"),
        ({"instruments": ()}, "no instrument"),
    ],
)
def test_no_quote_without_a_bid_to_join(kwargs: dict[str, object], reason: str) -> None:
    d = STRATEGY.decide(snap(**kwargs), PARAMS, None)  # type: ignore[arg-type]
    assert d.quotes == () and reason in d.reasons[0]


def test_one_sided_book_is_joined() -> None:
    assert STRATEGY.decide(snap(asks=()), PARAMS, None).quotes[0].price == 450_000


def test_a_snapshot_keeps_copies_of_what_it_was_given() -> None:
    books = {YES: BookTop(YES, ((450_000, MICRO),))}
    reference = {YES: 460_000}
    s = snapshot(START_MS, books, {YES: instrument()}, wallet(), reference)
    books.clear()
    reference[YES] = 1
    assert s.book(YES) is not None and s.reference == {YES: 460_000}
    with pytest.raises(TypeError):
        s.books[YES] = BookTop(YES)  # type: ignore[index]
    assert snapshot(START_MS, {}, {}, wallet()).reference == {}


def test_params_are_checked() -> None:
    with pytest.raises(InputError, match="size"):
        JoinBestBidParams(YES, 0, MICRO)
    with pytest.raises(InputError, match="max_position"):
        JoinBestBidParams(YES, MICRO, -1)
    with pytest.raises(InputError, match="token"):
        JoinBestBidParams("", MICRO, MICRO)


def test_decide_reads_no_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    def boom() -> float:
        raise AssertionError("a strategy must not read the wall clock")

    for name in ("time", "time_ns", "monotonic", "monotonic_ns", "perf_counter"):
        monkeypatch.setattr(time, name, boom)
    assert STRATEGY.decide(snap(), PARAMS, None).quotes


@settings(max_examples=200, deadline=None)
@given(
    bid=st.integers(1, 98).map(lambda c: c * 10_000),
    spread=st.integers(1, 5).map(lambda c: c * 10_000),
    held=st.integers(-10 * MICRO, 80 * MICRO),
    size=st.integers(1, 3_000).map(lambda c: c * 10_000),
    cap=st.integers(0, 100 * MICRO),
    min_size=st.sampled_from([10_000, 5 * MICRO]),
)
def test_pure_deterministic_and_within_the_cap(
    bid: int, spread: int, held: int, size: int, cap: int, min_size: int
) -> None:
    s = snap(
        ((bid, MICRO),),
        ((min(bid + spread, 990_000), MICRO),),
        positions=(PositionSummary(YES, confirmed=held),),
        instruments=(instrument(min_size=min_size),),
    )
    params = JoinBestBidParams(YES, size, cap)
    first = STRATEGY.decide(s, params, None)
    assert STRATEGY.decide(s, params, None) == first
    for q in first.quotes:
        assert q.price == bid and q.side is Side.BUY and q.post_only
        assert min_size <= q.size <= min(size, cap - held) and q.size % 10_000 == 0
