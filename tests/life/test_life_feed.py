"""The reference feed: RTDS message shapes, determinism, dynamics, and the fair value it implies."""

from __future__ import annotations

import itertools
import json
import math
import statistics
from pathlib import Path
from typing import Any

import pytest

from polyoms.exchange.life.feed import (
    DAY_MS,
    FeedParams,
    PriceFeed,
    above_strike_probability,
    normal_cdf,
    to_rtds_message,
    to_rtds_snapshot,
)
from polyoms.exchange.life.market import MarketLife
from polyoms.exchange.life.scenarios import scenario

FIXTURES = Path("/work/shared/fixtures/polymarket/ws")
START = 1_780_730_269_142


def _shape(value: Any) -> Any:
    """Keys and value types, recursively (lists by their first element)."""
    if isinstance(value, dict):
        return {k: _shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_shape(value[0])] if value else []
    return type(value).__name__


def _fixture(name: str) -> dict[str, Any]:
    path = FIXTURES / name
    if not path.exists():
        pytest.skip(f"fixture {path} not available")
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def test_update_message_decodes_like_the_recorded_one() -> None:
    recorded = _fixture("rtds_crypto_prices_update.json")
    feed = PriceFeed(FeedParams(), seed=3, start_ms=START)
    for t in range(1, 50):
        tick = feed.advance_to(START + t * 1_000)
        wire = json.dumps(to_rtds_message(tick, sent_ms=tick.timestamp_ms + 142))
        decoded = json.loads(wire)
        assert _shape(decoded) == _shape(recorded)
        payload = decoded["payload"]
        assert decoded["topic"] == "crypto_prices" and decoded["type"] == "update"
        assert payload["symbol"] == "btcusdt"
        assert payload["timestamp"] % 1_000 == 0 and decoded["timestamp"] == payload["timestamp"] + 142
        # Two decimals, as Binance quotes BTC; the full-accuracy string carries 8.
        assert round(payload["value"], 2) == payload["value"]
        assert payload["full_accuracy_value"] == f"{payload['value']:.8f}"


def test_subscribe_snapshot_decodes_like_the_recorded_one() -> None:
    recorded = _fixture("rtds_crypto_prices_subscribe.json")
    feed = PriceFeed(FeedParams(history=3), seed=3, start_ms=START)
    feed.advance_to(START + 10_000)
    decoded = json.loads(json.dumps(to_rtds_snapshot(feed.recent, START + 10_500, "btcusdt")))
    assert _shape(decoded) == _shape(recorded)
    stamps = [d["timestamp"] for d in decoded["payload"]["data"]]
    assert stamps == [START - START % 1000 + k * 1000 for k in (8, 9, 10)]


def test_the_path_does_not_depend_on_how_it_is_read() -> None:
    p = FeedParams(jump_rate_per_day=50.0)
    one = PriceFeed(p, seed=11, start_ms=START)
    many = PriceFeed(p, seed=11, start_ms=START)
    one.advance_to(START + 3_600_000)
    for t in range(START, START + 3_600_001, 7_777):
        many.advance_to(t)
    many.advance_to(START + 3_600_000)
    assert one.last == many.last and list(one.recent) == list(many.recent)
    other = PriceFeed(p, seed=12, start_ms=START)
    assert other.advance_to(START + 3_600_000) != one.last


def test_volatility_drift_and_jumps_follow_the_parameters() -> None:
    days = 20
    p = FeedParams(vol_annual=0.5, drift_per_day=0.01, interval_ms=60_000, jump_rate_per_day=0.0)
    feed = PriceFeed(p, seed=5, start_ms=0)
    logs = [feed.log_price]
    for k in range(1, days * 1440 + 1):
        feed.advance_to(k * 60_000)
        logs.append(feed.log_price)
    steps = [b - a for a, b in itertools.pairwise(logs)]
    sigma_step = p.vol_daily * math.sqrt(1 / 1440)
    assert statistics.pstdev(steps) == pytest.approx(sigma_step, rel=0.03)
    # The mean log step is (μ − σ²/2)·dt; over 28,800 steps its standard error is σ_step/170.
    expected = (p.drift_per_day - p.vol_daily**2 / 2) / 1440
    assert abs(statistics.fmean(steps) - expected) < 4 * sigma_step / math.sqrt(len(steps))

    # Jumps: Poisson arrivals; with no diffusion every move is a jump.
    pj = FeedParams(vol_annual=0.0, jump_rate_per_day=100.0, jump_std=0.01, interval_ms=60_000)
    jf = PriceFeed(pj, seed=5, start_ms=0)
    prev, moves = jf.log_price, 0
    for k in range(1, 10 * 1440 + 1):
        jf.advance_to(k * 60_000)
        moves += jf.log_price != prev
        prev = jf.log_price
    assert 900 <= moves <= 1100  # ~1000 expected (a few minutes hold two jumps)


def test_above_strike_probability() -> None:
    p = FeedParams(vol_annual=0.5)
    k = 60_000.0
    at = above_strike_probability(math.log(k), k, DAY_MS, p)
    # At the money P is a little under 1/2: the median of S_T is below S_t by σ²τ/2.
    assert at == pytest.approx(normal_cdf(-0.5 * p.vol_daily), abs=1e-12) and 0.49 < at < 0.5
    above = above_strike_probability(math.log(k * 1.02), k, DAY_MS, p)
    below = above_strike_probability(math.log(k * 0.98), k, DAY_MS, p)
    assert below < at < above
    assert above == pytest.approx(normal_cdf((math.log(1.02) - p.vol_daily**2 / 2) / p.vol_daily), abs=1e-12)
    # Less time, more certainty; at expiry the answer is 0 or 1.
    assert above_strike_probability(math.log(k * 1.02), k, DAY_MS // 10, p) > above
    assert above_strike_probability(math.log(k * 1.02), k, 0, p) == 1.0
    assert above_strike_probability(math.log(k * 0.98), k, -5, p) == 0.0


def test_market_life_publishes_every_sample_in_order() -> None:
    life = MarketLife.backtest(scenario("calm").only("life-event-alpha"), seed=1, background=False)
    got: list[dict[str, Any]] = []
    life.add_price_listener(lambda tick: got.append(to_rtds_message(tick, life.clock.now_ms())))
    life.run_for(60_000)
    stamps = [m["payload"]["timestamp"] for m in got]
    assert len(stamps) == 60 and stamps == sorted(stamps)
    assert all(b - a == 1_000 for a, b in itertools.pairwise(stamps))
    # Published when due: the message time is the sample time on a virtual clock.
    assert all(m["timestamp"] == m["payload"]["timestamp"] for m in got)
