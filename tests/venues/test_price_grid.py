"""The venue-neutral price grid: on a uniform grid every method answers what the `TickSize` does (the
algorithms moved from one to the other without a price changing), and on banded grids each answer is
the one read off the list of the grid's prices."""

from __future__ import annotations

import bisect

import pytest
from hypothesis import given
from hypothesis import strategies as st

from polyoms.core.errors import InvalidPriceError
from polyoms.core.units import MICRO, TICK_SIZES, TickSize
from polyoms.core.venue import PriceBand, PriceGrid

ticks = st.sampled_from(list(TICK_SIZES.values()))
anywhere = st.integers(-MICRO, 2 * MICRO)
halves = st.integers(-10, 2_010).map(lambda n: n * 500)
"""Half-steps of every band here: the ties of round_nearest."""

KALSHI = PriceGrid(
    (PriceBand(1_000, 99_000, 1_000), PriceBand(100_000, 900_000, 10_000), PriceBand(901_000, 999_000, 1_000))
)
"""Finer steps in the tails, the bands apart (0.099 → 0.10 is one 0.001 step)."""
SHARED = PriceGrid(
    (PriceBand(1_000, 100_000, 1_000), PriceBand(100_000, 900_000, 10_000), PriceBand(900_000, 999_000, 1_000))
)
"""The same prices, the bands meeting on their boundaries."""
GAPPED = PriceGrid((PriceBand(10_000, 200_000, 10_000), PriceBand(505_000, 995_000, 5_000)))
"""A hole between the bands (no price in 0.20 .. 0.505)."""
GRIDS = [KALSHI, SHARED, GAPPED]


def listed(grid: PriceGrid) -> list[int]:
    return sorted({p for b in grid.bands for p in range(b.start, b.end + 1, b.step)})


@given(tick=ticks, price=st.one_of(anywhere, halves))
def test_a_uniform_grid_answers_what_its_tick_size_does(tick: TickSize, price: int) -> None:
    grid = PriceGrid.uniform(tick)
    assert (grid.min_price, grid.max_price) == (tick.min_price, tick.max_price)
    assert grid.on_grid(price) == tick.on_grid(price)
    assert grid.step_at(price) == tick.micro
    assert grid.clamp(price) == tick.clamp(price)
    # The grid's roundings stay on the grid; the tick's may leave its range, and clamped they agree.
    assert grid.round_down(price) == tick.clamp(tick.round_down(price))
    assert grid.round_up(price) == tick.clamp(tick.round_up(price))
    assert grid.round_nearest(price) == tick.clamp(tick.round_nearest(price))
    assert grid.next_above(price) == tick.clamp(tick.round_up(price + 1))
    assert grid.next_below(price) == tick.clamp(tick.round_down(price - 1))
    if tick.min_price <= price <= tick.max_price:
        assert grid.round_down(price) == tick.round_down(price)
        assert grid.round_up(price) == tick.round_up(price)
        assert grid.round_nearest(price) == tick.round_nearest(price)
    if tick.on_grid(price):
        assert grid.next_above(price) == min(price + tick.micro, tick.max_price)
        assert grid.next_below(price) == max(price - tick.micro, tick.min_price)


@given(grid=st.sampled_from(GRIDS), price=st.one_of(anywhere, halves))
def test_a_banded_grid_answers_from_its_list_of_prices(grid: PriceGrid, price: int) -> None:
    prices = listed(grid)
    lo, hi = prices[0], prices[-1]
    at = bisect.bisect_left(prices, price)
    on = at < len(prices) and prices[at] == price
    down = prices[bisect.bisect_right(prices, price) - 1] if price >= lo else lo
    up = prices[at] if price <= hi else hi
    assert (grid.min_price, grid.max_price) == (lo, hi)
    assert grid.on_grid(price) == on
    assert (grid.round_down(price), grid.round_up(price)) == (down, up)
    assert grid.clamp(price) == min(max(price, lo), hi)
    assert grid.next_above(price) == next((p for p in prices if p > price), hi)
    assert grid.next_below(price) == next((p for p in reversed(prices) if p < price), lo)
    nearest = grid.round_nearest(price)
    assert nearest in (down, up) and abs(nearest - price) == min(abs(down - price), abs(up - price))
    evens = [p for p in (down, up) if p % (2 * (up - down or 1)) == 0]
    if down < price < up and 2 * price == down + up and evens:  # a tie: to the even multiple of the step
        assert nearest == evens[0]


def test_band_edges() -> None:
    # 0.099 → 0.10 → 0.11: the step is the band's where the price is.
    assert (KALSHI.next_above(99_000), KALSHI.next_above(100_000), KALSHI.next_below(100_000)) == (
        100_000,
        110_000,
        99_000,
    )
    assert (KALSHI.round_down(105_000), KALSHI.round_up(105_000), KALSHI.round_nearest(105_000)) == (
        100_000,
        110_000,
        100_000,  # half-way: to the even multiple of 0.01
    )
    assert KALSHI.round_nearest(115_000) == 120_000 and KALSHI.round_nearest(900_600) == 901_000
    assert (KALSHI.next_above(999_000), KALSHI.next_below(1_000)) == (999_000, 1_000)  # clamped at the ends
    assert (GAPPED.next_above(200_000), GAPPED.next_below(505_000), GAPPED.round_nearest(400_000)) == (
        505_000,
        200_000,
        505_000,
    )
    assert SHARED.step_at(100_000) == 1_000 and KALSHI.step_at(100_000) == 10_000
    KALSHI.check(95_000)
    with pytest.raises(InvalidPriceError, match=r"0.1..0.9 by 0.01"):
        KALSHI.check(105_000)
    assert str(PriceGrid.uniform(TICK_SIZES["0.01"])) == "0.01..0.99 by 0.01"
