"""Prices on a market's grid, seen from one side: what "more aggressive" and "within the limit" mean.

A BUY grows more aggressive upwards and is bounded by a maximum price; a SELL downwards, bounded by a
minimum. The grid is the instrument's `PriceGrid`, whose step may change with the price (bands), so a
step is always the grid's step where the price is, never a fixed tick. Every function here returns a
price on the grid that never passes the limit, so the algorithms cannot breach one by arithmetic. A
`TickSize` stands for its uniform grid.
"""

from __future__ import annotations

from fractions import Fraction

from polyoms.core.enums import Side
from polyoms.core.units import MICRO, Micro, TickSize
from polyoms.core.venue import PriceGrid

Grid = PriceGrid | TickSize
"""A market's price grid, or a uniform tick standing for one."""


def grid_of(grid: Grid) -> PriceGrid:
    return grid if isinstance(grid, PriceGrid) else PriceGrid.uniform(grid)


def nowhere(side: Side) -> Micro:
    """A price beyond every grid on `side`'s passive end (0 for a BUY, 1 for a SELL): the answer when no
    grid price qualifies (callers test the grid's range)."""
    return 0 if side is Side.BUY else MICRO


def grid_limit(side: Side, limit: Micro, grid: Grid) -> Micro:
    """The most aggressive grid price allowed by `limit`: floored for a BUY, ceiled for a SELL."""
    prices = grid_of(grid)
    return prices.round_down(limit) if side is Side.BUY else prices.round_up(limit)


def better(side: Side, price: Micro, grid: Grid) -> Micro:
    """One grid step more aggressive than `price` (the grid's end when there is none)."""
    prices = grid_of(grid)
    return prices.next_above(price) if side is Side.BUY else prices.next_below(price)


def worse(side: Side, price: Micro, grid: Grid) -> Micro:
    """One grid step less aggressive than `price` (the grid's end when there is none)."""
    prices = grid_of(grid)
    return prices.next_below(price) if side is Side.BUY else prices.next_above(price)


def grid_step(step: Micro, grid: Grid, price: Micro | None = None, side: Side = Side.BUY) -> Micro:
    """`step` rounded (half-to-even) to the grid's step where a move from `price` toward `side` goes, and
    at least that step: 0.3¢ stays 0.3¢ where the grid moves by 0.1¢ and is 1¢ where it moves by cents.
    Without a price, the grid's finest step (a uniform grid's only one)."""
    prices = grid_of(grid)
    if price is None:
        unit = min(b.step for b in prices.bands)
    else:
        # At the grid's end there is no next price: the step there.
        unit = abs(better(side, price, prices) - price) or prices.step_at(price)
    units, rest = divmod(step, unit)
    if 2 * rest > unit or (2 * rest == unit and units % 2 == 1):
        units += 1
    return max(unit, units * unit)


def cap(side: Side, price: Micro, limit: Micro) -> Micro:
    """`price`, or `limit` if `price` is beyond it."""
    return min(price, limit) if side is Side.BUY else max(price, limit)


def within(side: Side, price: Micro, limit: Micro) -> bool:
    return price <= limit if side is Side.BUY else price >= limit


def more_aggressive(side: Side, a: Micro, b: Micro) -> bool:
    """Is `a` strictly more aggressive than `b` for an order of `side`?"""
    return a > b if side is Side.BUY else a < b


def toward(side: Side, price: Micro, step: Micro) -> Micro:
    """`step` more aggressive."""
    return price + step if side is Side.BUY else price - step


def ahead_by(side: Side, other: Micro, ours: Micro) -> Micro:
    """How far `other` is ahead of `ours` on the same side (positive: it has priority over us)."""
    return other - ours if side is Side.BUY else ours - other


def bounded(side: Side, price: Micro, limit: Micro, grid: Grid) -> Micro:
    """`price` snapped to the grid on the passive side, inside the grid's range, never beyond `limit`."""
    prices = grid_of(grid)
    snapped = prices.round_down(price) if side is Side.BUY else prices.round_up(price)
    return cap(side, snapped, grid_limit(side, limit, prices))


def passive(side: Side, price: Micro, opposite: Micro | None, grid: Grid) -> Micro:
    """`price`, pulled back so that it does not cross `opposite` (the best price on the other side);
    `nowhere(side)` when no grid price is passive to it."""
    if opposite is None:
        return price
    inside = worse(side, opposite, grid)
    return cap(side, price, inside) if more_aggressive(side, opposite, inside) else nowhere(side)


def scale(price: Fraction, bps: int) -> Fraction:
    """`price` × (1 + bps / 10,000)."""
    return price * (10_000 + bps) / 10_000
