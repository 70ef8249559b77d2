"""A market's fee schedule on the local exchange (the curve, its rate as an exact fraction) and maker rebates.

The fee rule itself is `core.fees` (one rule for the exchange and the OMS). Makers earn rebates: a
category's share of the taker fees, split by each maker's fee-equivalent (the fee its filled size would
pay on the same curve at the fill price). All arithmetic is on integers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction
from typing import Final

from polyoms.core.errors import ConfigError
from polyoms.core.fees import curve_fee, fee_fraction
from polyoms.core.units import NumberLike, to_decimal

MAKER_REBATE_SHARES: Final[dict[str, Fraction]] = {
    # The venue's maker-rebates page (market-makers/maker-rebates): crypto 20 %, every other fee
    # category 25 %. UNCONFIRMED: sports (a later survey read 15 %), mentions and tech (not in the table).
    "crypto": Fraction(20, 100),
    "sports": Fraction(25, 100),
    "finance": Fraction(25, 100),
    "politics": Fraction(25, 100),
    "economics": Fraction(25, 100),
    "culture": Fraction(25, 100),
    "weather": Fraction(25, 100),
    "mentions": Fraction(25, 100),
    "tech": Fraction(25, 100),
    "other": Fraction(25, 100),
    "geopolitics": Fraction(0),  # fee-free category
}
"""Share of a market's taker fees paid back to its makers, by `MarketSpec.category`."""

DEFAULT_REBATE_SHARE: Final = Fraction(25, 100)
"""For a category not in the table (or none): the venue's "Other / General" row."""


@dataclass(frozen=True, slots=True)
class FeeCurve:
    """A market's platform fee schedule (`fd: {r, e, to}` on the venue)."""

    rate: str = "0"
    exponent: int = 1
    taker_only: bool = True
    rate_num: int = field(init=False, repr=False, compare=False)
    rate_den: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        try:
            dec = to_decimal(self.rate, "fee rate")
        except ValueError as exc:
            raise ConfigError(f"fee rate {self.rate!r} is not a decimal number", field="fee.rate") from exc
        if not Decimal(0) <= dec <= Decimal(1):
            raise ConfigError(f"fee rate must be within [0, 1], got {self.rate}", field="fee.rate")
        if isinstance(self.exponent, bool) or not isinstance(self.exponent, int) or not 1 <= self.exponent <= 8:
            raise ConfigError(
                f"fee exponent must be an integer within [1, 8], got {self.exponent!r}", field="fee.exponent"
            )
        if not self.taker_only:
            # Every market the reference documents is taker-only; a maker fee would need its own rules.
            raise ConfigError("only taker-only fee curves are supported", field="fee.taker_only")
        frac = Fraction(dec)
        object.__setattr__(self, "rate", format(dec.normalize(), "f") if dec else "0")
        object.__setattr__(self, "rate_num", frac.numerator)
        object.__setattr__(self, "rate_den", frac.denominator)

    @classmethod
    def of(cls, rate: NumberLike, exponent: int = 1, taker_only: bool = True) -> FeeCurve:
        return cls(str(to_decimal(rate, "fee rate")), exponent, taker_only)

    @property
    def enabled(self) -> bool:
        return self.rate_num != 0

    @property
    def rate_fraction(self) -> Fraction:
        return Fraction(self.rate_num, self.rate_den)

    @property
    def rate_bps(self) -> int:
        """r in basis points (floored), what trades report as `fee_rate_bps` for takers."""
        return self.rate_num * 10_000 // self.rate_den


NO_FEES: Final = FeeCurve()


def taker_fee(curve: FeeCurve, shares: int, price: int, cash: int) -> int:
    """Fee in micro-pUSD for a taker filling `shares` (micro) at `price` (micro) worth `cash` micro-pUSD:
    the one rule, `core.fees.curve_fee`, on this market's curve."""
    if curve.rate_num == 0:
        return 0
    return curve_fee(curve.rate_fraction, curve.exponent, shares, price, cash)


def fee_equivalent(curve: FeeCurve, shares: int, price: int) -> int:
    """What a maker's fill of `shares` at `price` would pay as a taker on `curve`, in micro-pUSD
    (floored to the micro): the weight of its maker rebate."""
    if curve.rate_num == 0 or shares <= 0:
        return 0
    exact = fee_fraction(curve.rate_fraction, curve.exponent, shares, price)
    return exact.numerator // exact.denominator


def rebate_share(category: str) -> Fraction:
    """The share of taker fees a market of `category` pays back to its makers."""
    return MAKER_REBATE_SHARES.get(category.strip().lower(), DEFAULT_REBATE_SHARE)
