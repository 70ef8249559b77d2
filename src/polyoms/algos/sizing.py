"""Kelly sizing for binary outcome tokens.

A share bought at price c pays 1 if the outcome happens: per pUSD staked the net odds are b = (1 − c) / c.
With probability p of winning (q = 1 − p) the Kelly fraction of the bankroll to stake is

    f* = (b·p − q) / b      (= (p − c) / (1 − c) for a share at c)

and fractional Kelly stakes k·f* (k = 0.25 is a common choice: most of the growth, far less variance).
Selling the token at c is the same bet as buying its complement at 1 − c with probability q. There is
no order at zero or negative edge. Probabilities are exact Fractions; stakes are floored to whole cents
and sizes to the 0.01-share lot, so sizing never rounds up into more risk than asked.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from fractions import Fraction

from polyoms.algos.base import LOT, AlgoConfigError, require
from polyoms.core.enums import Side
from polyoms.core.units import MICRO, Micro, fmt_micro

ProbabilityLike = Fraction | Decimal | str | int


def _shown(value: object) -> str:
    """A probability or fraction for a message, as a decimal (a Fraction's "3/2" reads as 1.5)."""
    if isinstance(value, Fraction):
        return format((Decimal(value.numerator) / Decimal(value.denominator)).normalize(), "f")
    return str(value).strip()


def to_fraction(value: ProbabilityLike, what: str) -> Fraction:
    if isinstance(value, bool | float):
        raise AlgoConfigError(f"{what} must be a Fraction, Decimal, int or decimal string (not {value!r})", field=what)
    try:
        return Fraction(value)
    except (ValueError, ZeroDivisionError, TypeError):
        raise AlgoConfigError(f"{what} is not a number: {value!r}", field=what) from None


@dataclass(frozen=True, slots=True)
class KellySizing:
    """Size by (fractional) Kelly: `probability` that the token pays 1, `fraction` of full Kelly, an
    optional cap on the pUSD staked. Accepts Decimal or decimal strings; holds exact Fractions."""

    probability: Fraction
    fraction: Fraction = Fraction(1, 4)
    max_stake: Micro | None = None

    def __post_init__(self) -> None:
        p = to_fraction(self.probability, "probability")
        k = to_fraction(self.fraction, "fraction")
        # The value as given ("1.5"), not the exact Fraction it became ("3/2").
        require(0 < p < 1, f"probability must be within (0, 1), got {_shown(self.probability)}", field="probability")
        require(0 < k <= 1, f"Kelly fraction must be within (0, 1], got {_shown(self.fraction)}", field="fraction")
        if self.max_stake is not None:
            require(self.max_stake > 0, f"max_stake must be positive, got {fmt_micro(self.max_stake)}")
        object.__setattr__(self, "probability", p)
        object.__setattr__(self, "fraction", k)


def _bet(p: Fraction, price: Micro, side: Side) -> tuple[Fraction, Fraction]:
    """(cost of one share of the bet, probability that it pays 1)."""
    c = Fraction(price, MICRO)
    if side is Side.BUY:
        return c, p
    return 1 - c, 1 - p


def kelly_fraction(p: Fraction, price: Micro, side: Side = Side.BUY) -> Fraction:
    """f* = (b·p − q) / b for trading the token at `price` on `side`; ≤ 0 means no edge."""
    require(0 < price < MICRO, f"price must be within (0, 1), got {fmt_micro(price)}", field="price")
    c, win = _bet(p, price, side)
    b = (1 - c) / c
    return (b * win - (1 - win)) / b


def edge(p: Fraction, price: Micro, side: Side = Side.BUY) -> Fraction:
    """Expected profit per share: p − c for a BUY at c."""
    c, win = _bet(p, price, side)
    return win - c


def kelly_stake(sizing: KellySizing, price: Micro, bankroll: Micro, side: Side = Side.BUY) -> Micro:
    """pUSD to put at risk: k · f* · bankroll, floored to the cent, capped; 0 without edge."""
    f = kelly_fraction(sizing.probability, price, side)
    if f <= 0 or bankroll <= 0:
        return 0
    stake = int(sizing.fraction * f * bankroll)
    stake -= stake % LOT
    if sizing.max_stake is not None and stake > sizing.max_stake:
        stake = sizing.max_stake
    return stake


def kelly_shares(sizing: KellySizing, price: Micro, bankroll: Micro, side: Side = Side.BUY) -> Micro:
    """Shares to trade at `price`: the stake divided by the cost of one share of the bet, floored to
    the lot (a SELL at c risks 1 − c per share)."""
    stake = kelly_stake(sizing, price, bankroll, side)
    if stake == 0:
        return 0
    per_share = price if side is Side.BUY else MICRO - price
    shares = stake * MICRO // per_share
    return shares - shares % LOT


class KellyVerdict(StrEnum):
    PLACE = "PLACE"
    NO_EDGE = "NO_EDGE"
    """Zero or negative edge at this price (or a stake that rounds to nothing): no order."""
    TOO_SMALL = "TOO_SMALL"
    """An edge, but the Kelly size is below the market's minimum order size: no order."""
    REACHED = "REACHED"
    """The position already is (within the minimum order size) the Kelly size: done."""


def kelly_verdict(
    sizing: KellySizing, price: Micro, side: Side, target: Micro, filled: Micro, min_size: Micro
) -> KellyVerdict:
    """What a Kelly-sized parent should do at `price` with `target` (its Kelly size there) and `filled`."""
    if not 0 < price < MICRO or kelly_fraction(sizing.probability, price, side) <= 0:
        return KellyVerdict.NO_EDGE
    remaining = target - filled
    if remaining < min_size:
        if filled > 0:
            return KellyVerdict.REACHED
        return KellyVerdict.NO_EDGE if target <= 0 else KellyVerdict.TOO_SMALL
    return KellyVerdict.PLACE
