"""Exact money: integer micro-units inside, Decimal and strings at the edges.

Prices (pUSD per share), share sizes and pUSD amounts are all held as integers of 10^-6, the
unit both pUSD and the outcome tokens use on chain. Nothing in a money path is a float.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Context, Decimal, InvalidOperation
from typing import Final

from polyoms.core.errors import InvalidAmountError, InvalidTickSizeError

MICRO: Final = 1_000_000
DECIMALS: Final = 6
_MICRO_DEC: Final = Decimal(MICRO)
# Enough digits to multiply anything `to_micro` accepts (< 10^72, at most 6 decimals) by 10^6
# exactly; the default context keeps 28 digits and would round larger values silently.
_EXACT: Final = Context(prec=100)

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
            text = value.strip()
            if not text.isascii() or "_" in text:
                # Decimal() takes "1_0" and any script's digits ("١٠"): nobody means those as money.
                raise InvalidAmountError(f"{what} is not a number: {_shown(value)}", field=what, value=_shown(value))
            dec = Decimal(text)
        else:
            raise InvalidAmountError(
                f"{what} must be a decimal string, Decimal or int, got {type(value).__name__}",
                field=what,
                value=value,
            )
    except InvalidOperation:
        raise InvalidAmountError(f"{what} is not a number: {_shown(value)}", field=what, value=_shown(value)) from None
    if not dec.is_finite():
        raise InvalidAmountError(f"{what} must be finite, got {_shown(value)}", field=what, value=_shown(value))
    return dec


_PLAIN: Final = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)")
_SHOWN_CHARS: Final = 40


def _shown(value: object) -> str:
    """A value for an error message, cut short (an error must not echo a megabyte back)."""
    text = repr(value)
    return text if len(text) <= _SHOWN_CHARS else f"{text[:_SHOWN_CHARS]}... ({len(text)} characters)"


def plain_micro(value: str | int, what: str = "value") -> Micro:
    """`to_micro` for what an operator types (CLI options, control-API fields, algo parameters): a plain
    ASCII decimal, optionally signed ("10", "0.45", ".5", "-3") and nothing else. No exponent ("2e-2"),
    no digit separators ("1_0"), no other scripts' digits, no NaN or infinity: a typo must not become an
    order. (`to_micro` itself also reads the venue's and the SDKs' spellings, exponents included.)"""
    if isinstance(value, int) and not isinstance(value, bool):
        return to_micro(value, what)
    if not isinstance(value, str) or not _PLAIN.fullmatch(value.strip()):
        raise InvalidAmountError(
            f"{what} must be a plain decimal number such as 10 or 0.45, got {_shown(value)}",
            field=what,
            value=_shown(value),
        )
    return to_micro(value, what)


def decimal_places(dec: Decimal) -> int:
    """Digits after the point once trailing zeros are dropped (Decimal('1.50') -> 1).

    Read from the digits themselves, not through `normalize()`, whose context would round
    exponents beyond its range (1e-999999999 would count as 0 decimals).
    """
    if dec == 0:
        return 0
    _, digits, exponent = dec.as_tuple()
    assert isinstance(exponent, int)
    trailing_zeros = len(digits) - len("".join(map(str, digits)).rstrip("0"))
    return max(0, -(exponent + trailing_zeros))


# No price, size or amount comes near this (uint256 holds about 1.16e71 units of 10^6); refusing
# larger numbers up front keeps Decimal arithmetic inside its context (1e999999999 would overflow).
_MAX_ADJUSTED_EXPONENT: Final = 71


def to_micro(value: NumberLike, what: str = "value", max_decimals: int = DECIMALS) -> Micro:
    """Exact conversion to micro-units; refuses anything that would need rounding."""
    dec = to_decimal(value, what)
    if dec and dec.adjusted() > _MAX_ADJUSTED_EXPONENT:
        raise InvalidAmountError(f"{what} {_shown(value)} is out of range", field=what, value=_shown(value))
    places = decimal_places(dec)
    if places > max_decimals:
        raise InvalidAmountError(
            f"{what} {_shown(value) if len(str(value)) > _SHOWN_CHARS else value} has {places} decimals, "
            f"at most {max_decimals} allowed",
            field=what,
            value=value if len(str(value)) <= _SHOWN_CHARS else _shown(value),
        )
    return int(_EXACT.multiply(dec, _MICRO_DEC))


def from_micro(micro: Micro) -> Decimal:
    """Micro-units to an exact Decimal (no trailing zeros, never exponent notation: 100, not 1E+2)."""
    return Decimal(fmt_micro(micro))


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


# By 1 + number of decimals: the factor that turns the digits of "12.34" (1234) into micro-units.
DIGIT_SCALE: Final = (0, 1_000_000, 100_000, 10_000, 1_000, 100, 10, 1)


def parse_micro(text: str, what: str = "value") -> Micro:
    """Exact micro-units from a venue decimal string ("78.68", "0.5", ".48", "100"), fast.

    The hot path of market data converts several strings per message; this does it with one int()
    over the digits instead of a Decimal. Plain non-negative decimals with at most 6 places take the
    fast path; anything else goes through `to_micro`, which parses it exactly or raises a typed error.
    """
    dot = text.find(".")
    if dot < 0:
        if text.isdigit() and text.isascii():
            return int(text) * MICRO
    else:
        digits = text[:dot] + text[dot + 1 :]
        width = len(text) - dot
        if width <= 7 and digits.isdigit() and digits.isascii():
            return int(digits) * DIGIT_SCALE[width]
    return to_micro(text, what)


FINEST_TICK: Final = 100
"""0.0001 in micro-units: every tick size the venue uses is a multiple of it."""

PRICE_TEXT: Final[dict[str, Micro]] = {fmt_micro(p): p for p in range(FINEST_TICK, MICRO, FINEST_TICK)}
"""Every price any tick size allows ("0.0001" ... "0.9999", canonical spelling) to micro-units: a
dict lookup instead of a parse on the market-data hot path."""
