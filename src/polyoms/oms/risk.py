"""Pre-trade risk: pure checks of one order request against the ledgers, limits and fail-closed flags.

`check_order(...)` returns every violated rule as a typed error (empty list: admissible), in priority
order: admission (kill switch, then the fail-closed conditions), the market and token, the order's own
numbers, balance / sellable, limits, spread (marketable orders only), confirmation, rate.
`ensure_order_ok(...)` raises the first.
Nothing here mutates anything: the rate limiter is only read; the engine `record`s an admitted order.

Definitions (pUSD micro-units)
* notional of a request: BUY limit = shares × price; dollar-sized BUY = its pUSD amount; SELL = shares
  × price (what it would receive at its limit).
* a BUY needs `notional + fee allowance` (the same allowance its reservation will hold) ≤ available;
  a SELL needs `shares ≤ sellable` (confirmed − provisional sells − reserved: see ledger.py).
* exposure of a market: over every wallet, Σ |shares held incl. provisional| × mark (the caller's mark;
  else the position's average cost if positive; else 1 pUSD, the most a share can be worth) + the pUSD
  reserved by open BUY orders in it. A BUY adds its notional; a SELL adds nothing (it reduces risk).
* fail closed (architecture principle 8): with the kill switch on, the journal halted, any UNKNOWN
  order outstanding, the heartbeat failed, the user stream gapped, or the request's book untrusted (or
  missing), no new order is admitted — not even a SELL: an unknown order may be the very SELL that
  already spends those shares, and a book we cannot trust gives no price to sell at. Cancels never go
  through here and are always allowed.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import msgspec

from polyoms.core.enums import OrderType, Side
from polyoms.core.errors import (
    InsufficientBalanceError,
    InvalidOrderError,
    InvalidPriceError,
    InvalidSizeError,
    MarketNotReadyError,
    PolyomsError,
)
from polyoms.core.units import MICRO, Micro, fmt_micro
from polyoms.oms.errors import (
    ConfirmationRequiredError,
    OrderRateLimitError,
    RiskLimitError,
    SpreadTooWideError,
    TradingHaltedError,
)
from polyoms.oms.fills import fee_allowance
from polyoms.oms.oms_state import OmsState
from polyoms.oms.state import OPEN

CONFIRM_ABOVE_DEFAULT: Final = 1_000 * MICRO


class MarketRules(msgspec.Struct, frozen=True):
    condition_id: str
    token_ids: tuple[str, ...]
    accepting_orders: bool = True
    active: bool = True
    closed: bool = False
    fee_rate_bps: int | None = None
    fee_exponent: int = 1


class RiskLimits(msgspec.Struct, frozen=True):
    max_order_notional: Micro = 5_000 * MICRO
    max_market_exposure: Micro = 20_000 * MICRO
    max_total_exposure: Micro = 100_000 * MICRO
    max_spread: Micro | None = 100_000
    """Widest best-bid/best-ask spread (micro pUSD) at which a marketable order (is_marketable) is admitted;
    one is refused when either side of the book is empty. Resting orders are not held to it. None: no guard."""
    confirm_above: Micro = CONFIRM_ABOVE_DEFAULT
    max_orders: int = 50
    window_ms: int = 10_000


class OrderCheck(msgspec.Struct, frozen=True):
    """An order before it is signed. `size` in shares; for a dollar-sized BUY set `amount` (pUSD)
    instead. `price` is the limit (or worst acceptable) price."""

    wallet: str
    market: str
    token_id: str
    side: Side
    price: Micro
    size: Micro = 0
    amount: Micro = 0
    order_type: OrderType = OrderType.GTC
    post_only: bool = False
    confirmed: bool = False

    @property
    def notional(self) -> Micro:
        if self.side is Side.BUY and self.amount:
            return self.amount
        return -(-self.size * self.price // MICRO) if self.side is Side.BUY else self.size * self.price // MICRO


class BookQuote(msgspec.Struct, frozen=True):
    """Best prices of the request's token; None for an empty side."""

    best_bid: Micro | None
    best_ask: Micro | None


@dataclass
class RiskFlags:
    """Fail-closed switches, owned by the engine (set by the heartbeat task, the stream clients, the
    book mirror, an operator)."""

    kill_switch: bool = False
    heartbeat_failed: bool = False
    user_stream_gapped: bool = False
    untrusted_books: set[str] = field(default_factory=set)
    """Token ids (or market ids) whose book is not trusted."""


class RateLimiter:
    """Sliding window over the injected clock: at most `max_orders` admissions per `window_ms`."""

    __slots__ = ("_times", "max_orders", "window_ms")

    def __init__(self, max_orders: int, window_ms: int) -> None:
        self.max_orders = max_orders
        self.window_ms = window_ms
        self._times: deque[int] = deque()

    def _trim(self, now_ms: int) -> None:
        times = self._times
        edge = now_ms - self.window_ms
        while times and times[0] <= edge:
            times.popleft()

    def count(self, now_ms: int) -> int:
        """Admissions within (now − window, now]; trims what fell out (no effect on the outcome)."""
        self._trim(now_ms)
        return len(self._times)

    def would_exceed(self, now_ms: int) -> bool:
        return self.count(now_ms) >= self.max_orders

    def record(self, now_ms: int) -> None:
        self._trim(now_ms)
        self._times.append(now_ms)

    def seed(self, times_ms: Iterable[int]) -> None:
        """Refill after a restart (e.g. from the recovered orders' `created_ms`)."""
        for t in sorted(times_ms):
            self._times.append(t)


def exposure(state: OmsState, market: str | None, marks: Mapping[str, Micro] | None = None) -> Micro:
    """pUSD at risk in `market` (None: every market), per the module doc."""
    marks = marks or {}
    total = 0
    for lg in state.ledgers.values():
        for token, pos in lg.positions.items():
            if market is not None and pos.market != market:
                continue
            shares = abs(pos.total)
            if not shares:
                continue
            mark = marks.get(token)
            if mark is None:
                # No mark: the average cost, or 1 pUSD (a share's most) when there is no cost to go by
                # (shares from a balance snapshot come at zero cost).
                avg = pos.avg_price()
                mark = int(avg * MICRO) if avg is not None and avg > 0 else MICRO
            total += -(-shares * mark // MICRO)
    for o in state.orders.values():
        if o.state in OPEN and o.side is Side.BUY and (market is None or o.market == market):
            total += o.reserved_cash
    return total


def is_marketable(req: OrderCheck, quote: BookQuote) -> bool:
    """Would `req` trade on arrival: FOK/FAK and dollar-sized (market) BUYs always mean to; a limit order
    does when it reaches the opposite best; a post-only order never (the venue refuses it instead)."""
    if req.post_only:
        return False
    if req.order_type.is_marketable_only or (req.side is Side.BUY and req.amount > 0):
        return True
    if req.side is Side.BUY:
        return quote.best_ask is not None and req.price >= quote.best_ask
    return quote.best_bid is not None and req.price <= quote.best_bid


def check_order(
    req: OrderCheck,
    *,
    state: OmsState,
    markets: Mapping[str, MarketRules],
    quote: BookQuote | None,
    limits: RiskLimits,
    flags: RiskFlags,
    limiter: RateLimiter,
    now_ms: int,
    marks: Mapping[str, Micro] | None = None,
) -> list[PolyomsError]:
    """Every rule `req` breaks (module doc); [] means it may be signed and sent."""
    errors: list[PolyomsError] = []
    add = errors.append
    ctx: dict[str, Any] = {"token_id": req.token_id, "side": req.side.name}

    # Admission, fail closed.
    if flags.kill_switch:
        add(TradingHaltedError("kill switch is on: admission closed", rule="kill_switch", **ctx))
    if state.halted:
        add(TradingHaltedError(f"OMS halted: {state.halted}", rule="journal", **ctx))
    if state.unknown:
        add(
            TradingHaltedError(
                f"{len(state.unknown)} order(s) in UNKNOWN state: no new risk until resolved",
                rule="unknown_order",
                orders=",".join(sorted(state.unknown)[:3]),
                **ctx,
            )
        )
    if flags.heartbeat_failed:
        add(TradingHaltedError("heartbeat failed: no new risk", rule="heartbeat", **ctx))
    if flags.user_stream_gapped:
        add(TradingHaltedError("user stream gapped: fills may be missing; reconcile first", rule="user_stream", **ctx))
    if quote is None or req.token_id in flags.untrusted_books or req.market in flags.untrusted_books:
        add(TradingHaltedError("book not trusted (or none): no price to trade at", rule="untrusted_book", **ctx))

    # Market and token.
    info = markets.get(req.market)
    if info is None:
        add(InvalidOrderError(f"unknown market {req.market}", rule="market", market=req.market, **ctx))
    else:
        if not info.accepting_orders or not info.active or info.closed:
            add(MarketNotReadyError("the market is not accepting orders", rule="market", market=req.market, **ctx))
        if req.token_id not in info.token_ids:
            add(
                InvalidOrderError(f"token {req.token_id} is not an outcome of market {req.market}", rule="token", **ctx)
            )

    # The request's own numbers.
    if not 0 < req.price < MICRO:
        add(InvalidPriceError(f"price {fmt_micro(req.price)} is not inside (0, 1)", rule="price", **ctx))
    dollar_buy = req.side is Side.BUY and req.amount > 0
    if (req.size <= 0 and not dollar_buy) or req.size < 0 or req.amount < 0 or (req.amount and req.size):
        add(InvalidSizeError("give a positive size (shares), or for a BUY an amount (pUSD)", rule="size", **ctx))
        return errors
    notional = req.notional

    # Balance / sellable.
    lg = state.ledgers.get(req.wallet.lower())
    if lg is None:
        add(InvalidOrderError(f"unknown wallet {req.wallet}", rule="wallet", **ctx))
    elif req.side is Side.BUY:
        fee_bps = info.fee_rate_bps if info is not None else None
        exponent = info.fee_exponent if info is not None else 1
        fee = (
            0
            if req.post_only
            else fee_allowance(
                shares=req.size,
                price=req.price,
                cash=notional,
                notional=dollar_buy,
                fee_rate_bps=fee_bps,
                exponent=exponent,
            )
        )
        if notional + fee > lg.available:
            add(
                InsufficientBalanceError(
                    f"not enough balance: needs {fmt_micro(notional + fee)} pUSD, {fmt_micro(lg.available)} available",
                    rule="balance",
                    **ctx,
                )
            )
    else:
        sellable = lg.sellable(req.token_id)
        if req.size > sellable:
            add(
                InsufficientBalanceError(
                    f"not enough shares: selling {fmt_micro(req.size)}, {fmt_micro(sellable)} sellable now",
                    rule="sellable",
                    **ctx,
                )
            )

    # Limits.
    if notional > limits.max_order_notional:
        add(
            RiskLimitError(
                f"order notional {fmt_micro(notional)} above the limit {fmt_micro(limits.max_order_notional)}",
                rule="max_order_notional",
                **ctx,
            )
        )
    if req.side is Side.BUY:
        market_after = exposure(state, req.market, marks) + notional
        if market_after > limits.max_market_exposure:
            add(
                RiskLimitError(
                    f"market exposure would be {fmt_micro(market_after)}, "
                    f"limit {fmt_micro(limits.max_market_exposure)}",
                    rule="market_exposure",
                    **ctx,
                )
            )
        total_after = exposure(state, None, marks) + notional
        if total_after > limits.max_total_exposure:
            add(
                RiskLimitError(
                    f"total exposure would be {fmt_micro(total_after)}, limit {fmt_micro(limits.max_total_exposure)}",
                    rule="total_exposure",
                    **ctx,
                )
            )

    # Spread guard: for orders that take liquidity on arrival (a wide or one-sided book is a bad price to
    # take); an order that rests adds liquidity at its own limit, so an empty or thin book does not block it.
    if limits.max_spread is not None and quote is not None and is_marketable(req, quote):
        if quote.best_bid is None or quote.best_ask is None:
            add(SpreadTooWideError("one side of the book is empty", rule="spread", **ctx))
        elif quote.best_ask - quote.best_bid > limits.max_spread:
            add(
                SpreadTooWideError(
                    f"spread {fmt_micro(quote.best_ask - quote.best_bid)} wider than {fmt_micro(limits.max_spread)}",
                    rule="spread",
                    **ctx,
                )
            )

    # Large orders need a human (or a caller that says one confirmed).
    if notional > limits.confirm_above and not req.confirmed:
        add(
            ConfirmationRequiredError(
                f"order notional {fmt_micro(notional)} above {fmt_micro(limits.confirm_above)} needs confirmation",
                rule="confirmation",
                **ctx,
            )
        )

    if limiter.would_exceed(now_ms):
        add(
            OrderRateLimitError(
                f"more than {limiter.max_orders} orders in {limiter.window_ms} ms", rule="order_rate", **ctx
            )
        )
    return errors


def ensure_order_ok(
    req: OrderCheck,
    *,
    state: OmsState,
    markets: Mapping[str, MarketRules],
    quote: BookQuote | None,
    limits: RiskLimits,
    flags: RiskFlags,
    limiter: RateLimiter,
    now_ms: int,
    marks: Mapping[str, Micro] | None = None,
) -> None:
    """check_order, raising the first (highest-priority) violation."""
    errors = check_order(
        req,
        state=state,
        markets=markets,
        quote=quote,
        limits=limits,
        flags=flags,
        limiter=limiter,
        now_ms=now_ms,
        marks=marks,
    )
    if errors:
        raise errors[0]
