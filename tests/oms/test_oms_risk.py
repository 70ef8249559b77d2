"""Pre-trade risk: every rule, its typed error, its priority, and fail-closed admission."""

from __future__ import annotations

from typing import Any

import pytest

from polyoms.core.enums import OrderType, Side
from polyoms.core.errors import (
    InsufficientBalanceError,
    InvalidOrderError,
    InvalidPriceError,
    InvalidSizeError,
    MarketNotReadyError,
    OrderError,
)
from polyoms.core.units import MICRO
from polyoms.core.user_events import TradeStatus as T
from polyoms.oms.errors import (
    ConfirmationRequiredError,
    OrderRateLimitError,
    RiskLimitError,
    RiskRejectedError,
    SpreadTooWideError,
    TradingHaltedError,
)
from polyoms.oms.risk import (
    BookQuote,
    MarketRules,
    OrderCheck,
    RateLimiter,
    RiskFlags,
    RiskLimits,
    check_order,
    ensure_order_ok,
    exposure,
)

from .oms_helpers import MARKET, NO, WALLET, YES, intent, new_state, oid, trade

MARKETS = {MARKET: MarketRules(MARKET, (YES, NO), fee_rate_bps=400)}
QUOTE = BookQuote(480_000, 520_000)
NOW = 1_777_000_000_000


def req(**kw: Any) -> OrderCheck:
    base: dict[str, Any] = dict(
        wallet=WALLET, market=MARKET, token_id=YES, side=Side.BUY, price=500_000, size=10 * MICRO
    )
    return OrderCheck(**{**base, **kw})


def check(r: OrderCheck, state: Any = None, **kw: Any) -> list[Any]:
    args: dict[str, Any] = dict(
        state=state or new_state(cash=10_000 * MICRO),
        markets=MARKETS,
        quote=QUOTE,
        limits=RiskLimits(),
        flags=RiskFlags(),
        limiter=RateLimiter(50, 10_000),
        now_ms=NOW,
    )
    args.update(kw)
    return check_order(r, **args)


def rules(errors: list[Any]) -> list[str]:
    return [e.context["rule"] for e in errors]


def test_a_plain_order_passes() -> None:
    assert check(req()) == []
    assert check(req(side=Side.BUY, amount=20 * MICRO, size=0, order_type=OrderType.FOK)) == []


def test_market_and_token() -> None:
    closed = {MARKET: MarketRules(MARKET, (YES, NO), accepting_orders=False)}
    [e] = check(req(), markets=closed)
    assert isinstance(e, MarketNotReadyError)
    [e] = check(req(market="0xnope"))
    assert isinstance(e, InvalidOrderError) and e.context["rule"] == "market"
    [e] = check(req(token_id="999"))
    assert isinstance(e, InvalidOrderError) and e.context["rule"] == "token"


def test_bad_numbers() -> None:
    assert isinstance(check(req(price=0))[0], InvalidPriceError)
    assert isinstance(check(req(price=MICRO))[0], InvalidPriceError)
    assert isinstance(check(req(size=0))[0], InvalidSizeError)
    assert isinstance(check(req(side=Side.SELL, size=0, amount=5 * MICRO))[0], InvalidSizeError)


def test_balance_counts_reservations_provisional_outflows_and_the_fee_allowance() -> None:
    state = new_state(cash=100 * MICRO)
    # 100 pUSD: 50 shares at 0.5 = 25 + fee allowance 50 × 0.04 × 0.25 = 0.5.
    assert check(req(size=50 * MICRO), state) == []
    state.submit(intent(oid(), price=500_000, size=140 * MICRO, fee_rate_bps=0))  # reserves 70
    f = oid()
    state.submit(intent(f, price=500_000, size=8 * MICRO, order_type=OrderType.FOK))
    state.on_trade_event(trade("t", f, T.MATCHED, size=8 * MICRO))  # 4 provisional outflow
    assert state.ledger(WALLET).available == 26 * MICRO
    assert check(req(size=50 * MICRO), state) == []  # 25.5 ≤ 26
    [e] = check(req(size=52 * MICRO), state)  # 26 + 0.52 > 26
    assert isinstance(e, InsufficientBalanceError) and e.context["rule"] == "balance"
    assert check(req(size=52 * MICRO, order_type=OrderType.GTC, post_only=True), state) == []  # no fee


def test_sell_needs_sellable_shares() -> None:
    state = new_state(cash=100 * MICRO)
    state.set_balance(WALLET, positions={YES: 10 * MICRO})
    assert check(req(side=Side.SELL, size=10 * MICRO), state) == []
    state.submit(intent(oid(), side=Side.SELL, size=4 * MICRO))
    [e] = check(req(side=Side.SELL, size=7 * MICRO), state)
    assert isinstance(e, InsufficientBalanceError) and e.context["rule"] == "sellable"
    b = oid()
    state.submit(intent(b, side=Side.BUY, size=5 * MICRO, order_type=OrderType.FAK))
    state.on_trade_event(trade("tb", b, T.MINED, size=5 * MICRO))
    assert rules(check(req(side=Side.SELL, size=7 * MICRO), state)) == ["sellable"]  # a mined buy is not enough
    state.on_trade_event(trade("tb", b, T.CONFIRMED, size=5 * MICRO))
    assert check(req(side=Side.SELL, size=7 * MICRO), state) == []


def test_limits_notional_and_exposure() -> None:
    limits = RiskLimits(max_order_notional=100 * MICRO, max_market_exposure=150 * MICRO, max_total_exposure=180 * MICRO)
    state = new_state(cash=10_000 * MICRO)
    assert rules(check(req(size=400 * MICRO), state, limits=limits)) == ["max_order_notional", "market_exposure",
                                                                          "total_exposure"]  # fmt: skip
    state.set_balance(WALLET, positions={YES: 200 * MICRO}, markets={YES: MARKET})
    # 200 shares held at a mark of 0.5 = 100 of exposure; a 60 pUSD BUY would make 160 > 150.
    marks = {YES: 500_000}
    assert exposure(state, MARKET, marks) == 100 * MICRO
    assert rules(check(req(size=120 * MICRO), state, limits=limits, marks=marks)) == ["market_exposure"]
    assert check(req(size=100 * MICRO), state, limits=limits, marks=marks) == []
    # Without a mark a share counts at its most: 1 pUSD (a snapshot has no cost basis).
    assert exposure(state, MARKET) == 200 * MICRO
    # A SELL reduces risk: never refused for exposure.
    assert check(req(side=Side.SELL, size=150 * MICRO), state, limits=limits, marks=marks) == []


def test_spread_guard_refuses_marketable_orders_into_a_wide_or_one_sided_book() -> None:
    crossing = req(price=600_000)  # BUY at the ask
    [e] = check(crossing, quote=BookQuote(400_000, 600_000))
    assert isinstance(e, SpreadTooWideError) and e.context["rule"] == "spread"
    assert rules(check(crossing, quote=BookQuote(None, 600_000))) == ["spread"]
    holder = new_state(cash=100 * MICRO)
    holder.set_balance(WALLET, positions={YES: 10 * MICRO})
    assert rules(check(req(side=Side.SELL, price=400_000), holder, quote=BookQuote(400_000, None))) == ["spread"]
    # FOK/FAK and dollar-sized BUYs (market orders) take liquidity whatever their limit.
    fok = req(price=500_000, order_type=OrderType.FOK)
    assert rules(check(fok, quote=BookQuote(400_000, 600_000))) == ["spread"]
    assert rules(check(fok, quote=BookQuote(None, None))) == ["spread"]
    market_buy = req(amount=20 * MICRO, size=0, price=990_000, order_type=OrderType.FAK)
    assert rules(check(market_buy, quote=BookQuote(None, 600_000))) == ["spread"]
    assert check(crossing, quote=BookQuote(550_000, 600_000)) == []
    assert check(crossing, quote=BookQuote(100_000, 900_000), limits=RiskLimits(max_spread=None)) == []


def test_spread_guard_lets_passive_orders_rest_in_a_wide_one_sided_or_empty_book() -> None:
    passive_buy = req(price=450_000)
    passive_sell = req(side=Side.SELL, size=5 * MICRO, price=950_000)
    state = new_state(cash=10_000 * MICRO)
    state.set_balance(WALLET, positions={YES: 10 * MICRO})
    for quote in (
        BookQuote(None, None),
        BookQuote(400_000, None),
        BookQuote(None, 600_000),
        BookQuote(100_000, 900_000),
    ):
        assert check(passive_buy, quote=quote) == [], quote
        assert check(req(price=450_000, post_only=True), quote=quote) == [], quote
        assert check(passive_sell, state, quote=quote) == [], quote
    # A BUY below the ask of a one-sided book, a SELL above its bid: both rest.
    assert check(req(price=590_000), quote=BookQuote(None, 600_000)) == []
    assert check(req(side=Side.SELL, size=5 * MICRO, price=410_000), state, quote=BookQuote(400_000, None)) == []


def test_large_orders_need_confirmation() -> None:
    big = req(size=2_100 * MICRO)  # 1,050 pUSD
    [e] = check(big, limits=RiskLimits(max_order_notional=10_000 * MICRO))
    assert isinstance(e, ConfirmationRequiredError)
    assert check(req(size=2_100 * MICRO, confirmed=True), limits=RiskLimits(max_order_notional=10_000 * MICRO)) == []
    assert check(req(size=2_000 * MICRO), limits=RiskLimits(max_order_notional=10_000 * MICRO)) == []  # exactly $1,000


def test_order_rate_sliding_window_on_the_injected_clock() -> None:
    limiter = RateLimiter(3, 1_000)
    for t in (0, 100, 200):
        assert check(req(), limiter=limiter, now_ms=NOW + t) == []
        limiter.record(NOW + t)
    [e] = check(req(), limiter=limiter, now_ms=NOW + 999)
    assert isinstance(e, OrderRateLimitError)
    assert check(req(), limiter=limiter, now_ms=NOW + 1_000) == []  # the first one left the window
    limiter2 = RateLimiter(2, 1_000)
    limiter2.seed([NOW - 10, NOW - 5])  # after a restart, from the recovered intents
    assert rules(check(req(), limiter=limiter2)) == ["order_rate"]


@pytest.mark.parametrize(
    ("setup", "rule"),
    [
        (lambda s, f: setattr(f, "kill_switch", True), "kill_switch"),
        (lambda s, f: setattr(f, "heartbeat_failed", True), "heartbeat"),
        (lambda s, f: setattr(f, "user_stream_gapped", True), "user_stream"),
        (lambda s, f: f.untrusted_books.add(YES), "untrusted_book"),
        (lambda s, f: (s.submit(intent(oid())), s.on_send_failed(next(iter(s.orders)), "timeout")), "unknown_order"),
        (lambda s, f: setattr(s, "halted", "journal write failed"), "journal"),
    ],
)
def test_fail_closed_admission_refuses_everything_even_sells(setup: Any, rule: str) -> None:
    state = new_state(cash=10_000 * MICRO)
    state.set_balance(WALLET, positions={YES: 100 * MICRO})
    flags = RiskFlags()
    setup(state, flags)
    for side in Side:
        errors = check(req(side=side), state, flags=flags)
        assert rules(errors)[0] == rule and isinstance(errors[0], TradingHaltedError)
        assert isinstance(errors[0], RiskRejectedError) and isinstance(errors[0], OrderError)


def test_no_book_is_an_untrusted_book_and_ensure_raises_the_first_rule() -> None:
    assert rules(check(req(), quote=None)) == ["untrusted_book"]
    flags = RiskFlags(kill_switch=True)
    with pytest.raises(TradingHaltedError, match="kill switch"):
        ensure_order_ok(
            req(size=5_000 * MICRO),
            state=new_state(),
            markets=MARKETS,
            quote=QUOTE,
            limits=RiskLimits(),
            flags=flags,
            limiter=RateLimiter(50, 10_000),
            now_ms=NOW,
        )
    errors = check(req(size=8_000 * MICRO, price=700_000), flags=flags)
    assert rules(errors) == ["kill_switch", "max_order_notional", "confirmation"]
    assert isinstance(errors[1], RiskLimitError)
