"""Liquidity-rewards scoring, pure: the venue's formula over one market's book (docs: market-makers/
liquidity-rewards, "Methodology" and "Worked Example").

Per order, S(v, s) = ((v − s)/v)² · b, where s is the order's distance from the size-cutoff-adjusted
midpoint, v the market's max spread and b the in-game multiplier; an order scores S × its size (shares)
when it is at least the programme's minimum size and s < v. A maker's Q_one sums its bids on the token
and its asks on the complement, Q_two its asks on the token and its bids on the complement. On the
venue's one book (doc §7.1) a bid on YES at p and an ask on NO at 1 − p are the same YES-space bid, at
the same distance from the midpoint (the NO book's midpoint is 1 − the YES one), so Q_one is simply the
score of the maker's YES-space bids and Q_two of its YES-space asks. Then

    Q_min = max(min(Q_one, Q_two), max(Q_one, Q_two) / c)   midpoint in [0.10, 0.90]
    Q_min = min(Q_one, Q_two)                               otherwise

with c = 3. Arithmetic is exact (`Fraction`); prices and sizes come in micro-units.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from fractions import Fraction
from typing import Final

from polyoms.core.units import MICRO
from polyoms.exchange.book import MatchingBook
from polyoms.exchange.markets import RewardsConfig
from polyoms.exchange.orders import Order

SCALING_FACTOR: Final = Fraction(3)
"""c: a one-sided maker scores a third of its side (the docs: "currently 3.0 on all markets")."""

SINGLE_SIDED_RANGE: Final = (100_000, 900_000)
"""Midpoints (micro) within which one-sided liquidity scores at all: [0.10, 0.90], bounds included."""

# UNCONFIRMED: the docs name the "size-cutoff-adjusted midpoint" without defining it. Here each side's
# price is its best level holding at least the programme's minimum size (so dust at the touch does not
# move it), else that side's best level; a book with an empty side has no midpoint and scores nothing.
ADJUSTED_MID_NEEDS_BOTH_SIDES: Final = True


def order_score(max_spread: int, distance: int, multiplier: Fraction) -> Fraction:
    """S(v, s) = ((v − s)/v)² · b for one unit of size; 0 at or beyond the max spread."""
    if distance < 0:
        distance = -distance
    if distance >= max_spread:
        return Fraction(0)
    return Fraction(max_spread - distance, max_spread) ** 2 * multiplier


def side_score(orders: Iterable[tuple[int, int]], max_spread: int, multiplier: Fraction) -> Fraction:
    """Σ S(v, s) × size over (distance micro, size micro-shares) pairs, in shares."""
    return sum(
        (order_score(max_spread, s, multiplier) * Fraction(size, MICRO) for s, size in orders),
        Fraction(0),
    )


def two_sided(midpoint: int) -> bool:
    """Whether only two-sided liquidity scores at this midpoint (outside [0.10, 0.90])."""
    lo, hi = SINGLE_SIDED_RANGE
    return not lo <= midpoint <= hi


def q_min(q_one: Fraction, q_two: Fraction, midpoint: int) -> Fraction:
    """A maker's score in one sample from its two side scores (equation 4)."""
    low, high = (q_one, q_two) if q_one <= q_two else (q_two, q_one)
    if two_sided(midpoint):
        return low
    third = high / SCALING_FACTOR
    return low if low >= third else third


def multiplier_of(cfg: RewardsConfig) -> Fraction:
    return Fraction(Decimal(cfg.in_game_multiplier))


def adjusted_midpoint(book: MatchingBook, min_size: int) -> int | None:
    """The size-cutoff-adjusted midpoint in YES-price micro-units (see `ADJUSTED_MID_NEEDS_BOTH_SIDES`)."""
    if book.best_bid <= 0 or book.best_ask >= book.n:
        return None
    bid = ask = 0
    i = book.best_bid
    while i > 0:
        if book.bid_size[i] >= min_size:
            bid = i
            break
        i -= 1
    i = book.best_ask
    while i < book.n:
        if book.ask_size[i] >= min_size:
            ask = i
            break
        i += 1
    bid = bid or book.best_bid
    ask = ask or book.best_ask
    # Both are multiples of the tick (≥ 100 micro), so the half-sum is a whole micro.
    return (bid + ask) * book.tick // 2


def yes_price(order: Order) -> int:
    """An order's price in the YES space its book is kept in."""
    return order.price if order.is_yes else MICRO - order.price


def scoring_orders(book: MatchingBook, cfg: RewardsConfig, mid: int) -> list[tuple[Order, int]]:
    """The resting orders that score now, with their distance from `mid`: at least the minimum size,
    strictly within the max spread (only those levels are visited)."""
    tick, v = book.tick, cfg.max_spread
    lo = max(1, (mid - v) // tick)
    hi = min(book.n - 1, -(-(mid + v) // tick))
    out: list[tuple[Order, int]] = []
    for bid_side in (True, False):
        sizes = book.bid_size if bid_side else book.ask_size
        for i in range(lo, hi + 1):
            if not sizes[i]:
                continue
            s = abs(i * tick - mid)
            if s >= v:
                continue
            for o in book.queue(bid_side, i):
                if o.remaining >= cfg.min_size:
                    out.append((o, s))
    return out


def maker_sides(book: MatchingBook, cfg: RewardsConfig, mid: int) -> dict[str, tuple[Fraction, Fraction]]:
    """Each maker address's (Q_one, Q_two) in one sample: its YES-space bids and asks."""
    b = multiplier_of(cfg)
    v = cfg.max_spread
    sides: dict[str, tuple[Fraction, Fraction]] = {}
    for o, s in scoring_orders(book, cfg, mid):
        points = order_score(v, s, b) * Fraction(o.remaining, MICRO)
        key = o.maker.lower()
        one, two = sides.get(key, (Fraction(0), Fraction(0)))
        sides[key] = (one + points, two) if o.is_bid else (one, two + points)
    return sides


def maker_scores(book: MatchingBook, cfg: RewardsConfig) -> dict[str, Fraction]:
    """Each maker's Q_min in a sample of `book` now; makers scoring nothing are left out."""
    mid = adjusted_midpoint(book, cfg.min_size)
    if mid is None:
        return {}
    out: dict[str, Fraction] = {}
    for maker, (one, two) in maker_sides(book, cfg, mid).items():
        q = q_min(one, two, mid)
        if q > 0:
            out[maker] = q
    return out


def normalized(scores: dict[str, Fraction]) -> dict[str, Fraction]:
    """Each maker's share of the sample (equation 5): Q_min / Σ Q_min."""
    total = sum(scores.values(), Fraction(0))
    if total <= 0:
        return {}
    return {m: q / total for m, q in scores.items()}


def is_scoring(book: MatchingBook, cfg: RewardsConfig, order: Order) -> bool:
    """Whether `order` earns points now: resting, at least the minimum size, within the max spread of
    the adjusted midpoint."""
    if not order.resting or order.remaining < cfg.min_size:
        return False
    mid = adjusted_midpoint(book, cfg.min_size)
    if mid is None:
        return False
    return abs(yes_price(order) - mid) < cfg.max_spread
