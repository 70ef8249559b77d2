"""The V2 taker-fee rule, exact: fee = C × r × (p × (1 − p))^e, in micro-pUSD (doc §7.3).

One rule for the whole system: the local exchange charges it, the OMS books it, the desk bounds it. C is
the number of shares filled (micro), p the fill price of the taker's token (micro), r the market's rate
as an exact fraction and e its exponent. The result is floored to 5 decimals of pUSD (multiples of 10
micro-pUSD, as the venue's adapters compute it).

There is no 5 % cap. The venue's fee docs and the official client (py-clob-client-v2
`fees.adjust_buy_amount_for_fees`, uncapped) charge the formula in full, which for r = 0.07 at low prices
is more than 5 % of the notional (6.65 % at 5 ¢); the contract's 500-bps default `maxFeeRateBps` must be
set higher on the live exchange. The only bound kept is the contract's hard ceiling: a fee never exceeds
the fill's pUSD side.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Final

from polyoms.core.units import MICRO, Micro

FEE_STEP: Final = 10
"""Fees are floored to 5 decimals of pUSD."""

MAX_FEE_RATE_BPS: Final = 10_000
"""fee ≤ the fill's pUSD side × this / 10,000: the CTF Exchange V2 contract's hard ceiling (100 %).
UNCONFIRMED: the live `maxFeeRateBps` is not published (its 500 default would refuse documented fees)."""

UNKNOWN_RATE_BOUND_BPS: Final = 1_000
"""A bound of fee / pUSD for a market whose curve is not known: the documented rates are at most 0.072
(crypto), and r × p^(e−1) × (1 − p)^e ≤ r. UNCONFIRMED that no market charges more than 10 %."""

_SCALE: Final = MICRO * MICRO  # p(1 − p) in micro × micro


def fee_fraction(rate: Fraction, exponent: int, shares: Micro, price: Micro) -> Fraction:
    """The exact, unrounded fee in micro-pUSD: shares × r × (p(1 − p))^e."""
    return Fraction(
        shares * rate.numerator * (price * (MICRO - price)) ** exponent, rate.denominator * _SCALE**exponent
    )


def curve_fee(rate: Fraction, exponent: int, shares: Micro, price: Micro, cash: Micro) -> Micro:
    """What a taker pays for filling `shares` at `price`, worth `cash` micro-pUSD (the fill's pUSD side:
    what a BUY pays, what a SELL receives before the fee), floored to `FEE_STEP`."""
    if rate == 0 or shares <= 0:
        return 0
    num = shares * rate.numerator * (price * (MICRO - price)) ** exponent
    fee = num // (rate.denominator * _SCALE**exponent * FEE_STEP) * FEE_STEP
    cap = cash * MAX_FEE_RATE_BPS // (10_000 * FEE_STEP) * FEE_STEP
    return fee if fee < cap else cap
