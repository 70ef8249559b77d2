"""The dense-array book against a plain dict model, under random level updates (both entry points)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from polyoms.core.book import Book, BookSet, MirrorBook
from polyoms.core.enums import Side
from polyoms.core.market_events import BookSnapshot, PriceChange, PriceLevelChange, TickSizeChange
from polyoms.core.units import MICRO, TICK_SIZES, TickSize

ASSET = "1"
TICKS = [TICK_SIZES[t] for t in ("0.1", "0.01", "0.005", "0.001", "0.0025", "0.0001")]


class Model:
    """The reference: a dict per side, price -> size, best found by max/min."""

    def __init__(self) -> None:
        self.sides: dict[Side, dict[int, int]] = {Side.BUY: {}, Side.SELL: {}}

    def set(self, side: Side, price: int, size: int) -> None:
        if size:
            self.sides[side][price] = size
        else:
            self.sides[side].pop(price, None)

    def levels(self, side: Side) -> list[tuple[int, int]]:
        return sorted(self.sides[side].items(), reverse=side is Side.BUY)


def assert_same(book: Book, model: Model) -> None:
    bids, asks = model.levels(Side.BUY), model.levels(Side.SELL)
    assert book.levels(Side.BUY) == bids
    assert book.levels(Side.SELL) == asks
    assert book.best_bid() == (bids[0][0] if bids else None)
    assert book.best_ask() == (asks[0][0] if asks else None)
    assert book.level_count(Side.BUY) == len(bids) and book.level_count(Side.SELL) == len(asks)
    assert book.is_crossed == bool(bids and asks and bids[0][0] >= asks[0][0])
    for n in (1, 3):
        assert book.depth(Side.BUY, n) == sum(s for _, s in bids[:n])
    for price, size in bids[:3]:
        assert book.size_at(Side.BUY, price) == size


def updates(tick: TickSize) -> st.SearchStrategy[list[tuple[Side, int, int]]]:
    n = MICRO // tick.micro
    return st.lists(
        st.tuples(
            st.sampled_from(Side),
            st.integers(1, n - 1).map(lambda i: i * tick.micro),
            st.one_of(st.just(0), st.integers(1, 10**12)),
        ),
        max_size=120,
    )


@given(st.sampled_from(TICKS).flatmap(lambda t: st.tuples(st.just(t), updates(t))))
@settings(max_examples=200, deadline=None)
def test_set_level_matches_the_model(case: tuple[TickSize, list[tuple[Side, int, int]]]) -> None:
    tick, ops = case
    book, model = Book(ASSET, tick_size=tick), Model()
    for side, price, size in ops:
        assert book.set_level(side, price, size)
        model.set(side, price, size)
    assert_same(book, model)


@given(
    st.sampled_from(TICKS).flatmap(lambda t: st.tuples(st.just(t), updates(t))),
    st.lists(st.tuples(st.sampled_from(Side), st.sampled_from([0, 50, 5_000, MICRO]), st.integers(0, 9)), max_size=3),
)
@settings(max_examples=200, deadline=None)
def test_set_levels_batch_matches_single_updates(
    case: tuple[TickSize, list[tuple[Side, int, int]]], odd: list[tuple[Side, int, int]]
) -> None:
    """The batch path, including invalid and off-grid updates in the middle of a batch."""
    tick, ops = case
    ops = ops[: len(ops) // 2] + odd + ops[len(ops) // 2 :]
    batch, single = Book(ASSET, tick_size=tick), Book(ASSET, tick_size=tick)
    applied = batch.set_levels(ops)
    assert applied == sum(single.set_level(side, price, size) for side, price, size in ops)
    for side in Side:
        assert batch.levels(side) == single.levels(side)
    assert (batch.best_bid(), batch.best_ask(), batch.grid_step) == (
        single.best_bid(),
        single.best_ask(),
        single.grid_step,
    )
    assert (batch.crossed_updates, batch.rejected_updates, batch.trusted) == (
        single.crossed_updates,
        single.rejected_updates,
        single.trusted,
    )


@given(st.sampled_from(TICKS).flatmap(lambda t: st.tuples(st.just(t), updates(t))))
@settings(max_examples=200, deadline=None)
def test_price_change_text_path_matches_set_level(case: tuple[TickSize, list[tuple[Side, int, int]]]) -> None:
    tick, ops = case
    books = BookSet(verify_best_prices=False)
    books.apply_snapshot(BookSnapshot("m", ASSET, (), (), tick_size=tick))
    reference = Book(ASSET, tick_size=tick)
    for side, price, size in ops:
        books.apply(PriceChange.of("m", [PriceLevelChange.of(ASSET, side, price, size)], 1))
        reference.set_level(side, price, size)
    book = books[ASSET]
    assert book.levels(Side.BUY) == reference.levels(Side.BUY)
    assert book.levels(Side.SELL) == reference.levels(Side.SELL)
    assert book.trusted and book.rejected_updates == 0


@given(updates(TICK_SIZES["0.01"]), updates(TICK_SIZES["0.001"]))
@settings(max_examples=100, deadline=None)
def test_off_grid_prices_refine_the_grid_without_losing_levels(
    coarse: list[tuple[Side, int, int]], fine: list[tuple[Side, int, int]]
) -> None:
    """A 0.01 book told about 0.001 prices (orders left from a finer tick, a change we missed)."""
    book, model = Book(ASSET, tick_size=TICK_SIZES["0.01"]), Model()
    for side, price, size in coarse + fine:
        assert book.set_level(side, price, size)
        model.set(side, price, size)
    assert_same(book, model)
    assert book.tick_size == TICK_SIZES["0.01"]  # the venue's tick is unchanged; only the grid is finer


@given(updates(TICK_SIZES["0.001"]))
@settings(max_examples=100, deadline=None)
def test_mirror_is_the_reflected_book(ops: list[tuple[Side, int, int]]) -> None:
    yes = Book(ASSET, tick_size=TICK_SIZES["0.001"])
    for side, price, size in ops:
        yes.set_level(side, price, size)
    no = MirrorBook(yes)
    assert no.levels(Side.BUY) == [(MICRO - p, s) for p, s in yes.levels(Side.SELL)]
    assert no.levels(Side.SELL) == [(MICRO - p, s) for p, s in yes.levels(Side.BUY)]
    yes_ask, yes_bid = yes.best_ask(), yes.best_bid()
    assert no.best_bid() == (None if yes_ask is None else MICRO - yes_ask)
    assert no.best_ask() == (None if yes_bid is None else MICRO - yes_bid)
    assert no.spread() == yes.spread()
    if yes.mid() is not None:
        assert no.mid() == MICRO - yes.mid()  # type: ignore[operator]
        assert no.micro_price() == MICRO - yes.micro_price()  # type: ignore[operator]


class BookMachine(RuleBasedStateMachine):
    """Snapshots, updates, tick changes and gaps in any order: the book follows the model, and trust
    follows the rules (only a snapshot restores it)."""

    def __init__(self) -> None:
        super().__init__()
        self.books = BookSet(verify_best_prices=True)
        self.tick = TICK_SIZES["0.01"]
        self.model = Model()
        self.books.apply_snapshot(BookSnapshot("m", ASSET, (), (), tick_size=self.tick))
        self.expect_trusted = True

    @property
    def book(self) -> Book:
        return self.books[ASSET]

    @rule(side=st.sampled_from(Side), i=st.integers(1, 99), size=st.integers(0, 10**9))
    def update(self, side: Side, i: int, size: int) -> None:
        price = i * 10_000  # on the grid of both ticks used here
        self.model.set(side, price, size)
        bids, asks = self.model.levels(Side.BUY), self.model.levels(Side.SELL)
        change = PriceLevelChange.of(
            ASSET, side, price, size, best_bid=bids[0][0] if bids else 0, best_ask=asks[0][0] if asks else MICRO
        )
        self.books.apply(PriceChange.of("m", [change], 1))

    @rule(side=st.sampled_from(Side), i=st.integers(1, 99), size=st.integers(1, 10**9))
    def update_with_wrong_best(self, side: Side, i: int, size: int) -> None:
        price = i * 10_000
        self.model.set(side, price, size)
        change = PriceLevelChange.of(ASSET, side, price, size, best_bid=MICRO - 100, best_ask=100)
        self.books.apply(PriceChange.of("m", [change], 1))
        if not self.book.awaiting_snapshot:
            self.expect_trusted = False

    @rule()
    def gap(self) -> None:
        self.books.mark_untrusted("socket reconnected")
        self.expect_trusted = False

    @rule(tick=st.sampled_from([TICK_SIZES["0.01"], TICK_SIZES["0.001"]]))
    def tick_change(self, tick: TickSize) -> None:
        if tick == self.tick:
            return
        epoch = self.book.epoch
        self.books.apply(TickSizeChange("m", ASSET, self.tick, tick))
        self.tick = tick
        self.model = Model()
        self.expect_trusted = False
        assert self.book.epoch == epoch + 1 and self.book.awaiting_snapshot

    @rule()
    def snapshot(self) -> None:
        bids = tuple(reversed(self.model.levels(Side.BUY)))
        asks = tuple(reversed(self.model.levels(Side.SELL)))
        self.books.apply(BookSnapshot("m", ASSET, bids, asks, tick_size=self.tick))
        self.expect_trusted = True

    @invariant()
    def agrees(self) -> None:
        assert_same(self.book, self.model)
        assert self.book.trusted == self.expect_trusted
        assert self.book.trusted or self.book.untrusted_reason


TestBookMachine = BookMachine.TestCase
TestBookMachine.settings = settings(max_examples=60, stateful_step_count=40, deadline=None)
