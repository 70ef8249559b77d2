"""The resolution oracle: cadence (heartbeat, deviation), basis and lag to the exchange price."""

from __future__ import annotations

import itertools
import math

from polyoms.exchange.life.feed import CHAINLINK, FeedParams, PriceFeed, to_rtds_message
from polyoms.exchange.life.oracle import BPS, OracleFeed, OracleParams

START = 1_777_000_000_000


def _reports(params: OracleParams, feed_params: FeedParams, ms: int, seed: int = 3) -> tuple[OracleFeed, list[int]]:
    oracle = OracleFeed(params, PriceFeed(feed_params, seed, START), seed, START)
    stamps: list[int] = [oracle.last.timestamp_ms]
    for t in range(START + 1_000, START + ms + 1, 1_000):
        oracle.advance_to(t)
        if oracle.last.timestamp_ms != stamps[-1]:
            stamps.append(oracle.last.timestamp_ms)
    return oracle, stamps


def test_heartbeat_bounds_the_gap_between_reports() -> None:
    # A price that never moves publishes on the heartbeat only.
    flat = FeedParams(vol_annual=0.0)
    _, stamps = _reports(OracleParams(heartbeat_ms=5_000, basis_bps=0.0), flat, 120_000)
    gaps = {b - a for a, b in itertools.pairwise(stamps)}
    assert gaps == {5_000}


def test_deviation_publishes_between_heartbeats() -> None:
    # A volatile price with a long heartbeat: reports come whenever the move exceeds the threshold.
    wild = FeedParams(vol_annual=3.0)
    params = OracleParams(heartbeat_ms=3_600_000, deviation=2 * BPS, basis_bps=0.0, lag_ms=0)
    oracle, stamps = _reports(params, wild, 600_000)
    assert 20 < len(stamps) < 600
    reports = list(oracle.recent)
    for a, b in itertools.pairwise(reports):
        # Each report moved at least (about, after rounding) the threshold from the previous one.
        assert abs(b.value / a.value - 1) >= 2 * BPS - 1e-6
    assert all(r.source == CHAINLINK and r.symbol == "btc/usd" for r in reports)


def test_lag_reports_the_exchange_price_of_earlier() -> None:
    params = OracleParams(lag_ms=2_000, basis_bps=0.0, heartbeat_ms=1_000)
    feed = PriceFeed(FeedParams(vol_annual=1.0), 5, START)
    oracle = OracleFeed(params, feed, 5, START)
    seen: dict[int, float] = {}
    for t in range(START + 1_000, START + 60_001, 1_000):
        oracle.advance_to(t)
        seen[feed.last.timestamp_ms] = feed.last.value
        if t - 2_000 in seen:
            assert oracle.last.timestamp_ms == t
            assert math.isclose(oracle.last.value, seen[t - 2_000], abs_tol=0.011)


def test_basis_is_small_and_mean_reverting() -> None:
    params = OracleParams(basis_bps=3.0, basis_half_life_ms=300_000)
    oracle = OracleFeed(params, PriceFeed(FeedParams(), 9, START), 9, START)
    samples: list[float] = []
    for t in range(START, START + 6 * 3_600_000, 60_000):
        oracle.advance_to(t)
        samples.append(oracle.basis / BPS)
    rms = math.sqrt(sum(b * b for b in samples) / len(samples))
    assert 1.0 < rms < 6.0
    # It keeps crossing zero (mean reversion), unlike a random walk of the same step.
    crossings = sum(1 for a, b in itertools.pairwise(samples) if (a < 0) != (b < 0))
    assert crossings >= 5


def test_first_report_at_or_after_and_rtds_topic() -> None:
    oracle, _ = _reports(OracleParams(), FeedParams(), 30_000)
    tick = oracle.first_at_or_after(START + 10_500)
    assert tick is not None and tick.timestamp_ms >= START + 10_500
    earlier = [r for r in oracle.recent if START + 10_500 <= r.timestamp_ms < tick.timestamp_ms]
    assert earlier == []
    assert oracle.first_at_or_after(START + 10**9) is None
    assert to_rtds_message(tick)["topic"] == "crypto_prices_chainlink"


def test_same_seed_same_reports() -> None:
    a, _ = _reports(OracleParams(), FeedParams(), 120_000, seed=11)
    b, _ = _reports(OracleParams(), FeedParams(), 120_000, seed=11)
    assert list(a.recent) == list(b.recent)


def test_exchange_ticks_carry_bid_ask() -> None:
    feed = PriceFeed(FeedParams(spread=0.01), 1, START)
    tick = feed.advance_to(START + 5_000)
    assert tick.source == "binance"
    assert math.isclose(tick.ask - tick.bid, 0.01, abs_tol=1e-9)
    assert tick.bid <= tick.value + 0.005 + 1e-9
