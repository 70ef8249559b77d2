"""Taker fees: fee = C × r × (p(1 − p))^e, floored to 5 decimals, uncapped below the fill's pUSD side;
the maker fee-equivalent and the rebate shares per category."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

from hypothesis import given
from hypothesis import strategies as st

from polyoms.core.fees import MAX_FEE_RATE_BPS
from polyoms.exchange.fees import NO_FEES, FeeCurve, fee_equivalent, rebate_share, taker_fee

M = 1_000_000


def test_doc_example_100_shares_at_half_r_004() -> None:
    # Doc §7.3: taker buys 100 shares at 0.50, r = 0.04, e = 1 -> $1.00 on top of $50.00.
    assert taker_fee(FeeCurve("0.04", 1), 100 * M, 500_000, 50 * M) == 1_000_000


def test_doc_per_share_figures() -> None:
    c = FeeCurve("0.04", 1)
    assert taker_fee(c, 1 * M, 500_000, 500_000) == 10_000  # $0.01 per share at 0.5
    assert taker_fee(c, 1 * M, 900_000, 900_000) == 3_600  # $0.0036 per share at 0.9


def test_exponent_two() -> None:
    # 100 × 0.25 × (0.25)^2 = 1.5625
    assert taker_fee(FeeCurve("0.25", 2), 100 * M, 500_000, 50 * M) == 1_562_500


def test_floored_to_five_decimals() -> None:
    # 7 × 0.07 × 0.21 = 0.1029 exactly; 7.123457 shares -> 0.10471... floored to 0.10471.
    c = FeeCurve("0.07", 1)
    assert taker_fee(c, 7 * M, 300_000, 2_100_000) == 102_900
    fee = taker_fee(c, 7_123_457, 300_000, 2_137_037)
    assert fee % 10 == 0
    exact = Fraction(7_123_457, M) * Fraction(7, 100) * Fraction(21, 100) * M
    assert fee == (exact // 10) * 10


def test_no_five_percent_cap_at_low_prices() -> None:
    # r = 0.07 at p = 0.1: 0.07 × 0.09 = 0.0063/share = 6.3 % of the 0.10 notional, charged in full as
    # the official client computes it (py-clob-client-v2 fees.py: fee_rate × (p(1-p))^e, no cap).
    assert taker_fee(FeeCurve("0.07", 1), 100 * M, 100_000, 10 * M) == 630_000
    # Crypto at 5 ¢: 100 × 0.07 × 0.05 × 0.95 = $0.3325, 6.65 % of the $5 notional.
    assert taker_fee(FeeCurve("0.07", 1), 100 * M, 50_000, 5 * M) == 332_500
    # At 50 ¢ a crypto taker pays 1.75 ¢ a share (3.5 % of the notional).
    assert taker_fee(FeeCurve("0.07", 1), 1 * M, 500_000, 500_000) == 17_500


def test_bounded_by_the_fills_cash_side() -> None:
    # The contract's hard ceiling: never more than the pUSD side of the fill.
    assert MAX_FEE_RATE_BPS == 10_000
    assert taker_fee(FeeCurve("1", 1), 100 * M, 10_000, 5) == 0
    assert taker_fee(FeeCurve("1", 1), 100 * M, 10_000, 1 * M) == 990_000


def test_fee_equivalent_and_rebate_shares() -> None:
    # A maker's 100 shares filled at 0.50 on r = 0.04: the fee a taker would pay, $1.00.
    assert fee_equivalent(FeeCurve("0.04", 1), 100 * M, 500_000) == 1_000_000
    # Floored to the micro, not to 5 decimals: 1.234567 × 0.04 × 0.25 = 0.01234567.
    assert fee_equivalent(FeeCurve("0.04", 1), 1_234_567, 500_000) == 12_345
    assert fee_equivalent(NO_FEES, 100 * M, 500_000) == 0
    assert rebate_share("crypto") == Fraction(1, 5)
    assert rebate_share("Politics") == rebate_share("sports") == rebate_share("") == Fraction(1, 4)
    assert rebate_share("geopolitics") == 0


def test_no_fee_without_rate_or_size() -> None:
    assert taker_fee(NO_FEES, 100 * M, 500_000, 50 * M) == 0
    assert taker_fee(FeeCurve("0.04"), 0, 500_000, 0) == 0


@given(
    shares=st.integers(1, 10**12),
    price_ticks=st.integers(1, 9_999),
    rate_bps=st.integers(0, 10_000),
    e=st.integers(1, 4),
)
def test_fee_matches_exact_rational_formula(shares: int, price_ticks: int, rate_bps: int, e: int) -> None:
    price = price_ticks * 100
    cash = shares * price // M
    curve = FeeCurve(str(Decimal(rate_bps).scaleb(-4)), e)
    fee = taker_fee(curve, shares, price, cash)
    p = Fraction(price, M)
    exact = Fraction(shares) * Fraction(rate_bps, 10_000) * (p * (1 - p)) ** e
    floored = int(exact // 10) * 10
    cap = cash * MAX_FEE_RATE_BPS // 100_000 * 10
    assert fee == min(floored, cap)
    assert floored <= cash + 10  # with r ≤ 1 the bound only ever trims a rounding remainder
    assert 0 <= fee <= cash
