"""Exact money: integer micro-units inside, Decimal and strings at the edges.

Prices (pUSD per share), share sizes and pUSD amounts are all held as integers of 10^-6, the
unit both pUSD and the outcome tokens use on chain. Nothing in a money path is a float.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Final

from polyoms.core.errors import InvalidAmountError, InvalidTickSizeError

MICRO: Final = 1_000_000
DECIMALS: Final = 6
_MICRO_DEC: Final = Decimal(MICRO)

Micro = int
"""An integer count of 10^-6 units (price, shares or pUSD)."""

NumberLike = str | Decimal | int | float


def to_decimal(value: NumberLike, what: str = "value") -> Decimal:
    """Parse user or venue input into a finite Decimal.

    Floats are accepted only at this edge and go through their shortest repr (what the user typed),
    never through binary arithmetic.
    """
    if isinstance(value, bool):
        raise InvalidAmountError(f"{what} must be a number, got a bool", field=what, value=value)
    try:
        if isinstance(value, float):
            dec = Decimal(repr(value))
        elif isinstance(value, Decimal | int):
            dec = Decimal(value)
        elif isinstance(value, str):
            dec = Decimal(value.strip())
        else:
            raise InvalidAmountError(
                f"{what} must be a decimal string, Decimal or int, got {type(value).__name__}",
                field=what,
                value=value,
            )
    except InvalidOperation:
        raise InvalidAmountError(f"{what} is not a number: {value!r}", field=what, value=value) from None
    if not dec.is_finite():
        raise InvalidAmountError(f"{what} must be finite, got {value!r}", field=what, value=value)
    return dec


def decimal_places(dec: Decimal) -> int:
    """Digits after the point once trailing zeros are dropped (Decimal('1.50') -> 1)."""
    if dec == 0:
        return 0
    exponent = dec.normalize().as_tuple().exponent
    assert isinstance(exponent, int)
    return max(0, -exponent)


def to_micro(value: NumberLike, what: str = "value", max_decimals: int = DECIMALS) -> Micro:
    """Exact conversion to micro-units; refuses anything that would need rounding."""
    dec = to_decimal(value, what)
    places = decimal_places(dec)
    if places > max_decimals:
        raise InvalidAmountError(
            f"{what} {value} has {places} decimals, at most {max_decimals} allowed",
            field=what,
            value=value,
        )
    return int(dec * _MICRO_DEC)


def from_micro(micro: Micro) -> Decimal:
    """Micro-units to an exact Decimal (no trailing zeros)."""
    return (Decimal(micro) / _MICRO_DEC).normalize() if micro else Decimal(0)


def fmt_micro(micro: Micro) -> str:
    """Micro-units as the plain decimal string the venue uses ("21.04", "0.5", "100", "0")."""
    sign = "-" if micro < 0 else ""
    whole, frac = divmod(abs(micro), MICRO)
    if not frac:
        return f"{sign}{whole}"
    return f"{sign}{whole}.{frac:06d}".rstrip("0")


@dataclass(frozen=True, slots=True)
class TickSize:
    """A market's price grid plus the venue's decimal places for prices, sizes and amounts.

    The decimal places are the SDKs' ROUNDING_CONFIG; in exact arithmetic the amount places
    always equal price places + size places, so limit-order amounts never need rounding.
    """

    text: str
    micro: Micro
    price_decimals: int
    size_decimals: int
    amount_decimals: int

    def __str__(self) -> str:
        return self.text

    @property
    def min_price(self) -> Micro:
        return self.micro

    @property
    def max_price(self) -> Micro:
        return MICRO - self.micro

    def on_grid(self, price: Micro) -> bool:
        return price % self.micro == 0 and self.micro <= price <= MICRO - self.micro

    def round_down(self, price: Micro) -> Micro:
        return price - price % self.micro

    def round_up(self, price: Micro) -> Micro:
        return -((-price) // self.micro) * self.micro

    def round_nearest(self, price: Micro) -> Micro:
        """Half-to-even to the grid, as Python's round() does for the SDKs' price rounding."""
        q, r = divmod(price, self.micro)
        twice = 2 * r
        if twice > self.micro or (twice == self.micro and q % 2 == 1):
            q += 1
        return q * self.micro

    def clamp(self, price: Micro) -> Micro:
        return min(max(price, self.min_price), self.max_price)


TICK_SIZES: Final[dict[str, TickSize]] = {
    t.text: t
    for t in (
        TickSize("0.1", 100_000, 1, 2, 3),
        TickSize("0.01", 10_000, 2, 2, 4),
        TickSize("0.005", 5_000, 3, 2, 5),
        TickSize("0.0025", 2_500, 4, 2, 6),
        TickSize("0.001", 1_000, 3, 2, 5),
        TickSize("0.0001", 100, 4, 2, 6),
    )
}
_BY_MICRO: Final[dict[int, TickSize]] = {t.micro: t for t in TICK_SIZES.values()}


def tick_size(value: NumberLike | TickSize) -> TickSize:
    """Look up a tick size from "0.01", Decimal("0.010"), 0.01 (the venue sends a JSON number)."""
    if isinstance(value, TickSize):
        return value
    try:
        micro = to_micro(value, "tick_size")
    except InvalidAmountError:
        micro = -1
    tick = _BY_MICRO.get(micro)
    if tick is None:
        raise InvalidTickSizeError(f"unknown tick size {value!r}; expected one of {', '.join(TICK_SIZES)}", value=value)
    return tick
