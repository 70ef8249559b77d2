"""Child orders with the right units, and the order requests the venue adapter prepares for them.

* limit orders and every SELL count shares;
* a market BUY spends pUSD: `amount` with a worst acceptable price. What it will get is bounded below by
  `amount / worst price` shares (checked against `min_shares` before anything is signed) and above by
  `amount / best ask` (`max_shares` trims the amount at the current best ask);
* `lifetime_s` turns a resting order into a GTD order that the venue cancels by itself after that many
  seconds — a dead-man expiry for algorithms whose process may die (the adapter adds whatever security
  lead its venue applies to a signed expiration).

Prices are checked on `grid`, the market's price grid (None: the uniform grid of `tick`).
"""

from __future__ import annotations

from typing import Final

from polyoms.algos.base import LOT, Place
from polyoms.algos.pricing import grid_of
from polyoms.core.enums import OrderType, Side
from polyoms.core.errors import BelowMinimumSizeError, InvalidExpirationError, InvalidOrderError, InvalidSizeError
from polyoms.core.units import MICRO, Micro, TickSize, fmt_micro
from polyoms.core.venue import MIN_NOTIONAL, OrderRequest, PriceGrid

MAX_LIFETIME_S: Final = 30 * 24 * 3600


def gtd_expiration(now_ms: int, lifetime_s: int) -> int:
    """The `expiration` (unix seconds) of a GTD order that should live `lifetime_s` seconds from now."""
    if not 0 < lifetime_s <= MAX_LIFETIME_S:
        raise InvalidExpirationError(
            f"a dead-man lifetime must be within 1 s .. {MAX_LIFETIME_S} s, got {lifetime_s}", lifetime_s=lifetime_s
        )
    return now_ms // 1000 + lifetime_s


def _check_shares(size: Micro, what: str) -> None:
    if size <= 0 or size % LOT:
        raise InvalidSizeError(f"{what} {fmt_micro(size)} must be a positive multiple of 0.01 shares", field=what)


def limit(
    key: str,
    token_id: str,
    side: Side,
    price: Micro,
    size: Micro,
    *,
    tick: TickSize,
    grid: PriceGrid | None = None,
    order_type: OrderType = OrderType.GTC,
    post_only: bool = False,
    lifetime_s: int = 0,
    batch: str = "",
) -> Place:
    """`size` shares at `price`. GTC/GTD rest; FOK/FAK take what they can at `price` or better."""
    grid_of(tick if grid is None else grid).check(price, side=side.name)
    _check_shares(size, "size")
    if lifetime_s and order_type not in (OrderType.GTC, OrderType.GTD):
        raise InvalidOrderError(f"a dead-man lifetime needs a resting order, not {order_type.value}")
    if order_type is OrderType.GTD and not lifetime_s:
        raise InvalidExpirationError("a GTD order needs a lifetime_s")
    return Place(
        key,
        token_id,
        side,
        price,
        size=size,
        order_type=order_type,
        post_only=post_only,
        lifetime_s=lifetime_s,
        batch=batch,
    )


def market_buy(
    key: str,
    token_id: str,
    amount: Micro,
    worst_price: Micro,
    *,
    tick: TickSize,
    min_notional: Micro = MIN_NOTIONAL,
    grid: PriceGrid | None = None,
    min_shares: Micro | None = None,
    max_shares: Micro | None = None,
    best_ask: Micro | None = None,
    order_type: OrderType = OrderType.FOK,
    batch: str = "",
) -> Place:
    """Spend `amount` pUSD at prices up to `worst_price`.

    `min_notional`: the venue's smallest market BUY (the instrument's). `min_shares`: refuse unless the
    worst case (everything at `worst_price`) still buys that many.
    `max_shares`: with the current `best_ask`, trim the amount so that even at that price no more than
    `max_shares` are bought."""
    if order_type not in (OrderType.FOK, OrderType.FAK):
        raise InvalidOrderError(f"a market BUY is FOK or FAK, not {order_type.value}")
    if amount <= 0 or amount % LOT:
        raise InvalidSizeError(f"amount {fmt_micro(amount)} must be a positive multiple of 0.01 pUSD", field="amount")
    grid_of(tick if grid is None else grid).check(worst_price, side="BUY")
    if max_shares is not None:
        _check_shares(max_shares, "max_shares")
        if best_ask is None:
            raise InvalidOrderError("max_shares needs the current best ask to bound the amount")
        cap = max_shares * best_ask // MICRO
        cap -= cap % LOT
        amount = min(amount, cap)
    if amount < min_notional:
        raise BelowMinimumSizeError(
            f"a market BUY must spend at least ${fmt_micro(min_notional)}, got ${fmt_micro(amount)}",
            amount=fmt_micro(amount),
        )
    worst_shares = _shares_for(amount, worst_price, tick)
    if min_shares is not None and worst_shares < min_shares:
        raise BelowMinimumSizeError(
            f"${fmt_micro(amount)} at a worst price of {fmt_micro(worst_price)} guarantees only "
            f"{fmt_micro(worst_shares)} shares, below min_shares {fmt_micro(min_shares)}",
            amount=fmt_micro(amount),
        )
    return Place(key, token_id, Side.BUY, worst_price, amount=amount, order_type=order_type, batch=batch)


def market_sell(
    key: str,
    token_id: str,
    shares: Micro,
    worst_price: Micro,
    *,
    tick: TickSize,
    grid: PriceGrid | None = None,
    order_type: OrderType = OrderType.FAK,
    batch: str = "",
) -> Place:
    """Sell `shares` at prices down to `worst_price` (FAK: what it can; FOK: all or nothing)."""
    if order_type not in (OrderType.FOK, OrderType.FAK):
        raise InvalidOrderError(f"a market SELL is FOK or FAK, not {order_type.value}")
    _check_shares(shares, "shares")
    grid_of(tick if grid is None else grid).check(worst_price, side="SELL")
    return Place(key, token_id, Side.SELL, worst_price, size=shares, order_type=order_type, batch=batch)


def _shares_for(amount: Micro, price: Micro, tick: TickSize) -> Micro:
    """Shares `amount` pUSD buys at `price`, rounded down to the venue's amount precision: never more than
    the venue computes (its own rounding may give a hair more), so a `min_shares` check stays safe.

    This stays on the `TickSize`, not the price grid: its `amount_decimals` is Polymarket's precision for
    pUSD amounts, not a price step."""
    scale: int = 10 ** (6 - tick.amount_decimals)
    return amount * MICRO // price // scale * scale


def request_of(place: Place, now_ms: int, *, nonce: int | None = None) -> OrderRequest:
    """The order request for `place` at time `now_ms` (the order's timestamp and the base of its expiry)."""
    if place.is_market_buy:
        return OrderRequest(
            token_id=place.token_id,
            side=Side.BUY,
            price=place.price,
            amount=place.amount,
            order_type=place.order_type,
            timestamp_ms=now_ms,
            nonce=nonce,
        )
    order_type = place.order_type
    expiration = 0
    if place.lifetime_s:
        order_type = OrderType.GTD
        expiration = gtd_expiration(now_ms, place.lifetime_s)
    return OrderRequest(
        token_id=place.token_id,
        side=place.side,
        price=place.price,
        size=place.size,
        order_type=order_type,
        expiration=expiration,
        post_only=place.post_only,
        timestamp_ms=now_ms,
        nonce=nonce,
    )
