"""makerAmount / takerAmount exactly as the venue's SDKs intend them, in integer arithmetic.

The SDKs compute these with binary floats (protocol doc §3.6-3.7); here every step is an integer
operation on micro-units, so a size of 4960.94 stays 4960.94 (the official Python client turns it
into 4960.93). Validation happens before anything is signed.
"""

from __future__ import annotations

from typing import Any, Final

from polyoms.core.enums import Side
from polyoms.core.errors import (
    BelowMinimumSizeError,
    InvalidPriceError,
    InvalidSizeError,
    TooManyDecimalsError,
)
from polyoms.core.units import MICRO, Micro, TickSize, fmt_micro

# Sizes (shares) and market-BUY amounts (pUSD) carry at most two decimals: 10^4 micro-units.
SIZE_QUANTUM: Final = 10 ** (6 - 2)
_POW10: Final[tuple[int, ...]] = tuple(10**i for i in range(16))
MIN_MARKETABLE_BUY: Final = 1 * MICRO


def check_price(price: Micro, tick: TickSize, **ctx: Any) -> None:
    if not tick.on_grid(price):
        raise InvalidPriceError(
            f"price {fmt_micro(price)} breaks minimum tick size rule: {tick} "
            f"(must be a multiple of {tick} within [{fmt_micro(tick.min_price)}, {fmt_micro(tick.max_price)}])",
            price=fmt_micro(price),
            tick_size=str(tick),
            **ctx,
        )


def check_quantity(value: Micro, what: str, **ctx: Any) -> None:
    if value <= 0:
        ctx[what] = fmt_micro(value)
        raise InvalidSizeError(f"{what} must be positive, got {fmt_micro(value)}", **ctx)
    if value % SIZE_QUANTUM:
        ctx[what] = fmt_micro(value)
        raise TooManyDecimalsError(f"{what} {fmt_micro(value)} has more than 2 decimals", **ctx)


def limit_amounts(side: Side, price: Micro, size: Micro, tick: TickSize) -> tuple[Micro, Micro]:
    """(makerAmount, takerAmount) of a limit order: `size` shares at `price`.

    BUY gives pUSD and takes shares; SELL gives shares and takes pUSD. With a price on the grid
    and a two-decimal size the product is exact, so no rounding step applies.
    """
    # The checks raise; their error context (formatted numbers) is only built when they do.
    if not tick.on_grid(price):
        check_price(price, tick, side=side.name)
    if size <= 0 or size % SIZE_QUANTUM:
        check_quantity(size, "size", side=side.name, price=fmt_micro(price))
    notional = size * price // MICRO
    if side is Side.BUY:
        return notional, size
    return size, notional


def _market_buy_shares(amount: Micro, price: Micro, tick: TickSize) -> Micro:
    """Shares for `amount` pUSD at `price`, with the SDK's rounding rule done exactly.

    SDK rule on x = amount / price: if x has more than `a` decimals, round it up at a+4
    decimals; if that still has more than `a` decimals, round the original down at `a`.
    """
    a = tick.amount_decimals
    # ceil(x * 10^(a+4)) with x = amount / price (both in micro-units)
    up = -((-amount * _POW10[a + 4]) // price)
    if up % 10_000 == 0:
        return up // 10_000 * _POW10[6 - a]
    return amount * _POW10[a] // price * _POW10[6 - a]


def market_amounts(side: Side, amount: Micro, price: Micro, tick: TickSize) -> tuple[Micro, Micro]:
    """(makerAmount, takerAmount) of a marketable (FOK/FAK) order.

    BUY: `amount` is the pUSD to spend and `price` the worst acceptable price; SELL: `amount` is
    the shares to sell and `price` the lowest acceptable price.
    """
    check_price(price, tick, side=side.name)
    if side is Side.BUY:
        check_quantity(amount, "amount", side="BUY", price=fmt_micro(price))
        if amount < MIN_MARKETABLE_BUY:
            raise BelowMinimumSizeError(
                f"invalid amount for a marketable BUY order (${fmt_micro(amount)}), min size: $1",
                amount=fmt_micro(amount),
            )
        return amount, _market_buy_shares(amount, price, tick)
    check_quantity(amount, "size", side="SELL", price=fmt_micro(price))
    return amount, amount * price // MICRO


def implied_price(side: Side, maker_amount: Micro, taker_amount: Micro) -> tuple[int, int]:
    """The order's limit price as an exact fraction (numerator, denominator) of pUSD per share."""
    if side is Side.BUY:
        return maker_amount, taker_amount
    return taker_amount, maker_amount


def order_size_and_price(side: Side, maker_amount: Micro, taker_amount: Micro) -> tuple[Micro, Micro]:
    """Shares and price (micro, floored) as the venue reports them for an order."""
    num, den = implied_price(side, maker_amount, taker_amount)
    shares = taker_amount if side is Side.BUY else maker_amount
    return shares, num * MICRO // den if den else 0
