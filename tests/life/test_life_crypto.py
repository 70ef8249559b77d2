"""Scheduled crypto markets: slugs, times, listing ahead, and resolution by the venue's rule on the oracle."""

from __future__ import annotations

import datetime as dt
import itertools
from dataclasses import replace
from zoneinfo import ZoneInfo

from polyoms.exchange.audit import audit
from polyoms.exchange.life.crypto import (
    HOUR_MS,
    CryptoConfig,
    above_specs,
    btc,
    next_start,
    updown_slug,
    updown_spec,
    updown_title,
    window_end,
    window_starts,
)
from polyoms.exchange.life.feed import FeedParams, PriceFeed
from polyoms.exchange.life.market import MarketLife
from polyoms.exchange.life.oracle import OracleFeed
from polyoms.exchange.life.scenarios import Scenario, scenario
from polyoms.exchange.markets import ABOVE, UP_DOWN

FIXTURE_START_MS = 1_773_307_200_000  # btc-updown-5m-1773307200: March 12, 5:20AM-5:25AM ET
START = 1_777_000_000_000


def test_fixture_slug_and_title() -> None:
    asset = btc()
    assert updown_slug(asset, "5m", FIXTURE_START_MS) == "btc-updown-5m-1773307200"
    end = window_end("5m", FIXTURE_START_MS)
    assert updown_title(asset, "5m", FIXTURE_START_MS, end) == "Bitcoin Up or Down - March 12, 5:20AM-5:25AM ET"
    spec = updown_spec(asset, "5m", FIXTURE_START_MS, CryptoConfig())
    assert spec.end_date_iso == "2026-03-12T09:25:00Z"
    assert spec.outcomes == ("Up", "Down") and spec.category == "crypto"
    assert spec.event_slug == spec.slug and spec.fee.enabled
    assert spec.description.startswith('This market will resolve to "Up" if the Bitcoin price at the end')
    assert "greater than or equal to" in spec.description and "BTC/USD data stream" in spec.description
    assert spec.terms is not None and spec.terms.kind == UP_DOWN and spec.terms.symbol == "btc/usd"
    assert spec.created_ms == FIXTURE_START_MS - 24 * HOUR_MS


def test_schedule_grid_no_overlap_no_duplicates() -> None:
    for window, length in (("5m", 300_000), ("15m", 900_000), ("1h", HOUR_MS)):
        starts = list(window_starts(window, START, START + 2 * 86_400_000))
        assert all(s % length == 0 for s in starts)
        assert all(b - a == length for a, b in itertools.pairwise(starts))
        assert all(window_end(window, s) == s + length for s in starts)
        slugs = [updown_slug(btc(), window, s) for s in starts]
        assert len(set(slugs)) == len(slugs)
    daily = list(window_starts("1d", START, START + 5 * 86_400_000))
    for s in daily:
        noon = dt.datetime.fromtimestamp(s / 1000, ZoneInfo("America/New_York"))
        assert (noon.hour, noon.minute) == (12, 0)
    assert all(window_end("1d", a) == b for a, b in itertools.pairwise(daily))
    assert next_start("5m", START) >= START


def _small(config: CryptoConfig | None = None) -> Scenario:
    """The crypto scenario on BTC 5-minute markets only, listed 15 minutes ahead (fast tests)."""
    base = scenario("crypto")
    assert base.crypto is not None
    cfg = config or replace(base.crypto, assets=(btc(),), windows=("5m",), above_strikes=0, lead_ms={"5m": 15 * 60_000})
    return replace(base, crypto=cfg)


def _oracle_history(life: MarketLife, until_ms: int) -> list[tuple[int, float]]:
    """The oracle's reports, recomputed independently from the seed."""
    assert life.crypto is not None
    asset = life.crypto.config.assets[0]
    oracle = OracleFeed(asset.oracle, PriceFeed(asset.feed, life.seed, life.start_ms), life.seed, life.start_ms)
    out = [(oracle.last.timestamp_ms, oracle.last.value)]
    for t in range(life.start_ms, until_ms + 1, 10_000):
        oracle.advance_to(t)
        out += [(r.timestamp_ms, r.value) for r in oracle.since(out[-1][0])]
    return out


def _first_at_or_after(history: list[tuple[int, float]], t: int) -> float:
    return next(v for ts, v in history if ts >= t)


def test_every_updown_market_resolves_by_the_rule_on_the_oracle() -> None:
    life = MarketLife.backtest(_small(), seed=4, start_ms=START)
    end = START + 3 * HOUR_MS
    life.run_until(end)
    assert life.crypto is not None
    history = _oracle_history(life, end)
    checked = 0
    ups = 0
    for cid, (start_price, end_price, yes) in life.crypto.records.items():
        spec = life.exchange.market(cid)
        terms = spec.terms
        assert terms is not None and spec.resolved
        if terms.start_ms < START:
            continue
        assert start_price == _first_at_or_after(history, terms.start_ms)
        assert end_price == _first_at_or_after(history, terms.end_ms)
        assert float(terms.strike) == start_price
        assert yes == (end_price >= start_price)
        assert spec.winning_token_id == (spec.yes_token_id if yes else spec.no_token_id)
        assert life.resolutions[cid] is yes
        checked += 1
        ups += yes
    assert checked >= 30
    assert 0 < ups < checked
    assert audit(life.exchange) == []


def test_a_tie_resolves_up() -> None:
    base = _small()
    assert base.crypto is not None
    flat = replace(
        btc(),
        feed=FeedParams(symbol="btcusdt", start_price=61_000.0, vol_annual=0.0, spread=0.01),
        oracle=replace(btc().oracle, basis_bps=0.0),
    )
    life = MarketLife.backtest(_small(replace(base.crypto, assets=(flat,))), seed=2, start_ms=START)
    life.run_until(START + HOUR_MS)
    assert life.crypto is not None
    records = list(life.crypto.records.values())
    assert len(records) >= 10
    assert all(s == e and yes for s, e, yes in records)


def test_listed_ahead_and_dropped_after_resolution() -> None:
    life = MarketLife.backtest(_small(), seed=1, start_ms=START)
    assert life.crypto is not None
    lead = 15 * 60_000
    for _ in range(4):
        life.run_for(HOUR_MS)
        now = life.clock.now_ms()
        live = [lm.spec for lm in life.crypto.live.values()]
        assert live
        assert max(s.terms.start_ms for s in live if s.terms) > now + lead - 300_000 - 1
        assert all(s.created_ms <= now for s in live)
        # Only the live markets' agents remain: bounded whatever has gone before.
        live_ids = {s.condition_id.lower() for s in live}
        assert {slot.condition_id for slot in life.slots} <= live_ids
        assert len(life.slots) <= 2 * 12
        assert len(life._heap) < 200
    assert len(life.crypto.records) >= 40


def test_true_probability_follows_the_oracle() -> None:
    life = MarketLife.backtest(_small(), seed=6, start_ms=START)
    life.run_until(START + 20 * 60_000)
    assert life.crypto is not None
    started = [cid for cid, lm in life.crypto.live.items() if lm.started and cid in life.fair]
    assert started
    for cid in started:
        p = life.true_probability(cid)
        assert 0.0 <= p <= 1.0
    life.run_until(START + 2 * HOUR_MS)
    for cid, (_, _, yes) in list(life.crypto.records.items())[:5]:
        assert life.true_probability(cid) == (1.0 if yes else 0.0)


def test_one_seed_one_history() -> None:
    def run(seed: int) -> tuple[list[tuple[str, int, int, int]], dict[str, tuple[float, float, bool]]]:
        life = MarketLife.backtest(_small(), seed=seed, start_ms=START)
        life.run_until(START + HOUR_MS)
        assert life.crypto is not None
        trades = [(t.market, t.price, t.size, t.match_time_ms) for t in life.exchange.all_trades]
        return trades, dict(life.crypto.records)

    a, b = run(12), run(12)
    assert a == b and len(a[0]) > 100
    assert run(13)[0] != a[0]


def test_above_strike_markets_of_a_day() -> None:
    config = CryptoConfig()
    start = next_start("above", START)
    specs = above_specs(btc(), start, 61_420.0, config)
    strikes = [int(s.terms.strike) for s in specs if s.terms is not None]
    assert strikes == [60_000, 61_000, 62_000]
    assert len({s.slug for s in specs}) == 3 and len({s.event_slug for s in specs}) == 1
    for s in specs:
        assert s.terms is not None and s.terms.kind == ABOVE and s.terms.end_ms == window_end("above", start)
        assert s.category == "crypto" and s.outcomes == ("Yes", "No")
        assert s.created_ms == start - config.lead_ms["above"]
