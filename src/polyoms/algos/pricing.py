"""Prices on a market's grid, seen from one side: what "more aggressive" and "within the limit" mean.

A BUY grows more aggressive upwards and is bounded by a maximum price; a SELL downwards, bounded by a
minimum. Every function here returns a price on the tick grid within [tick, 1 − tick] that never passes
the limit, so the algorithms cannot breach one by arithmetic.
"""

from __future__ import annotations

from fractions import Fraction

from polyoms.core.enums import Side
from polyoms.core.units import Micro, TickSize


def grid_limit(side: Side, limit: Micro, tick: TickSize) -> Micro:
    """The most aggressive grid price allowed by `limit`: floored for a BUY, ceiled for a SELL."""
    p = tick.round_down(limit) if side is Side.BUY else tick.round_up(limit)
    return tick.clamp(p)


def grid_step(step: Micro, tick: TickSize) -> Micro:
    """A step rounded to the grid, at least one tick (0.3¢ on a 1¢ grid is 1¢)."""
    return max(tick.micro, tick.round_nearest(step))


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


def bounded(side: Side, price: Micro, limit: Micro, tick: TickSize) -> Micro:
    """`price` snapped to the grid on the passive side, inside the venue's range, never beyond `limit`."""
    p = tick.round_down(price) if side is Side.BUY else tick.round_up(price)
    return cap(side, tick.clamp(p), grid_limit(side, limit, tick))


def passive(side: Side, price: Micro, opposite: Micro | None, tick: TickSize) -> Micro:
    """`price`, pulled back so that it does not cross `opposite` (the best price on the other side)."""
    if opposite is None:
        return price
    if side is Side.BUY:
        return min(price, opposite - tick.micro)
    return max(price, opposite + tick.micro)


def scale(price: Fraction, bps: int) -> Fraction:
    """`price` × (1 + bps / 10,000)."""
    return price * (10_000 + bps) / 10_000
