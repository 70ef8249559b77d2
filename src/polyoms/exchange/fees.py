"""Taker fees, V2 schedule: fee = C × r × (p × (1 − p))^e, exact.

C is the number of shares filled, p the fill price of the taker's token, r and e the market's curve.
Makers pay nothing. The result is floored to 5 decimals (multiples of 10 micro-pUSD, as NautilusTrader
does) and then capped by the exchange contract's `maxFeeRateBps` on the pUSD side of the fill: the
operator cannot charge more than the contract lets through, so a fee above the cap could not settle.
All arithmetic is on integers; r is held as an exact fraction.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction
from typing import Final

from polyoms.core.errors import ConfigError
from polyoms.core.units import MICRO, NumberLike, to_decimal

FEE_STEP_MICRO: Final = 10
"""Fees are floored to 5 decimals of pUSD."""

MAX_FEE_RATE_BPS: Final = 500
"""CTF Exchange V2 default `maxFeeRateBps`: fee ≤ 5 % of the fill's pUSD value (doc §7.3)."""

_PRICE_PRODUCT_SCALE: Final = MICRO * MICRO  # p(1-p) in micro × micro


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
    def rate_bps(self) -> int:
        """r in basis points (floored), what trades report as `fee_rate_bps` for takers."""
        return self.rate_num * 10_000 // self.rate_den


NO_FEES: Final = FeeCurve()


def taker_fee(curve: FeeCurve, shares: int, price: int, cash: int) -> int:
    """Fee in micro-pUSD for a taker filling `shares` (micro) at `price` (micro) worth `cash` micro-pUSD.

    `cash` is the pUSD side of the fill (what a BUY pays, what a SELL receives before the fee); it
    only serves the contract cap.
    """
    if curve.rate_num == 0 or shares <= 0:
        return 0
    e = curve.exponent
    # fee_micro = shares × r × (p(1-p)/10^12)^e, with shares already in micro.
    num = shares * curve.rate_num * (price * (MICRO - price)) ** e
    den = curve.rate_den * _PRICE_PRODUCT_SCALE**e * FEE_STEP_MICRO
    fee = num // den * FEE_STEP_MICRO
    cap = cash * MAX_FEE_RATE_BPS // (10_000 * FEE_STEP_MICRO) * FEE_STEP_MICRO
    return fee if fee < cap else cap
