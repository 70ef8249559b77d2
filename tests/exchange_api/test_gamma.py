"""The Gamma API on the local exchange (/gamma-api): shapes against the recorded responses, filters,
pagination, live data, errors."""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from polyoms.core.clock import VirtualClock
from polyoms.core.units import MICRO, from_micro
from polyoms.exchange.api.gamma import GammaIndex, numeric_id
from polyoms.exchange.api.runner import ThreadedSim
from polyoms.exchange.api.service import SimService
from polyoms.exchange.engine import Exchange
from polyoms.exchange.life import MarketLife, scenario
from polyoms.exchange.markets import RewardsConfig, default_markets
from polyoms.polymarket.protocol.gamma import (
    decode_gamma_events,
    decode_gamma_markets,
    decode_gamma_search,
    decode_gamma_tags,
)

FIXTURES = Path("/work/shared/fixtures/polymarket/gamma")
START_MS = 1_777_000_000_000


def _load(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def _kind(value: Any) -> str:
    """A JSON value's type, ints and floats alike being numbers."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    return type(value).__name__


def _assert_shape(ours: dict[str, Any], recorded: list[dict[str, Any]], *, skip: frozenset[str] = frozenset()) -> None:
    """Every key all recorded objects share is in ours, with the recorded JSON type."""
    common = set.intersection(*(set(r) for r in recorded)) - skip
    missing = sorted(common - set(ours))
    assert not missing, missing
    for key in common:
        kinds = {_kind(r[key]) for r in recorded}
        if kinds == {"NoneType"}:  # a recorded null says nothing of the type
            continue
        assert _kind(ours[key]) in kinds, (key, ours[key], kinds)


def _markets() -> list[Any]:
    specs = list(default_markets())
    specs[0] = specs[0].with_flags(
        category="crypto", rewards=RewardsConfig(max_spread=35_000, min_size=50 * MICRO, daily_rate=10 * MICRO)
    )
    specs[1] = specs[1].with_flags(category="science", event_slug="space-2026")
    specs[3] = specs[3].with_flags(category="science", event_slug="space-2026")
    return specs


@pytest.fixture(scope="module")
def sim() -> Iterator[ThreadedSim]:
    clock = VirtualClock(START_MS)
    ex = Exchange(_markets(), clock, seed=3)
    with ThreadedSim(SimService(ex, clock)) as server:
        yield server


def _get(sim: ThreadedSim, path: str, **params: Any) -> Any:
    resp = httpx.get(f"{sim.url}/gamma-api{path}", params=params)
    assert resp.status_code == 200, resp.text
    return resp.json()


def test_market_and_its_event_have_the_recorded_shape(sim: ThreadedSim) -> None:
    markets = _get(sim, "/markets", limit=100)
    assert len(markets) == len(_markets())
    recorded = _load("markets_5_2026-06.json")
    btc = next(m for m in markets if m["slug"] == "btc-above-150k-on-december-31-2026")
    _assert_shape(btc, recorded)
    _assert_shape(btc["events"][0], [r["events"][0] for r in recorded])
    for m in markets:
        spec = sim.service.exchange.market(m["conditionId"])
        assert json.loads(m["clobTokenIds"]) == list(spec.token_ids)
        assert json.loads(m["outcomes"]) == list(spec.outcomes)
        prices = json.loads(m["outcomePrices"])
        assert all(isinstance(p, str) for p in prices) and sum(float(p) for p in prices) == 1.0
        assert m["id"].isdigit() and m["negRisk"] == spec.neg_risk
    assert btc["feeSchedule"] == {"exponent": 1, "rate": 0.07, "takerOnly": True, "rebateRate": 0.2}
    assert btc["feeType"] == "crypto_fees_v2" and btc["feesEnabled"] is True
    assert btc["rewardsMinSize"] == 50 and btc["rewardsMaxSpread"] == 3.5
    assert btc["clobRewards"][0]["rewardsDailyRate"] == 10


def test_events_group_markets_as_the_venue_does(sim: ThreadedSim) -> None:
    events = {e["slug"]: e for e in _get(sim, "/events", limit=100)}
    # neg-risk markets by their shared id (slug: their common prefix), event_slug groups, singles alone
    assert set(events) == {
        "btc-above-150k-on-december-31-2026",
        "space-2026",
        "fed-cuts-rates-in-december-2026",
        "world-cup-2026-winner",
    }
    cup = events["world-cup-2026-winner"]
    assert cup["negRisk"] is True and len(cup["markets"]) == 3
    assert {m["negRiskMarketID"] for m in cup["markets"]} == {cup["negRiskMarketID"]}
    recorded = [_load("event_negrisk_2028_nominee.json")[0], _load("event_crypto_updown_2026-06.json")[0]]
    _assert_shape(cup, recorded, skip=frozenset({"series", "seriesSlug"}))
    _assert_shape(cup["markets"][0], recorded[0]["markets"])
    assert len(events["space-2026"]["markets"]) == 2
    one = _get(sim, f"/events/{cup['id']}")
    assert one["slug"] == cup["slug"]
    assert _get(sim, "/events/slug/space-2026")["id"] == events["space-2026"]["id"]
    assert [e["slug"] for e in _get(sim, "/events", slug="space-2026")] == ["space-2026"]


def test_search_and_tags_have_the_recorded_shape(sim: ThreadedSim) -> None:
    found = _get(sim, "/public-search", q="World Cup")
    recorded = _load("public_search.json")
    assert set(found) == set(recorded) and set(found["pagination"]) == set(recorded["pagination"])
    assert [e["slug"] for e in found["events"]] == ["world-cup-2026-winner"]
    assert found["pagination"] == {"hasMore": False, "totalResults": 1}
    _assert_shape(found["events"][0], recorded["events"], skip=frozenset({"seriesSlug", "openInterest"}))
    tags = _get(sim, "/tags")
    _assert_shape(tags[0], _load("tags.json"))
    assert sorted(t["slug"] for t in tags) == sorted({m.category for m in _markets() if m.category})
    science = next(t for t in tags if t["slug"] == "science")
    tagged = _get(sim, "/markets", tag_id=science["id"])
    assert {m["slug"] for m in tagged} == {
        "will-nasa-confirm-life-on-europa-in-2026",
        "will-a-human-land-on-mars-by-2027",
    }


def test_market_filters_and_pagination(sim: ThreadedSim) -> None:
    all_ = _get(sim, "/markets", limit=100, order="id", ascending="true")
    ids = [int(m["id"]) for m in all_]
    assert ids == sorted(ids)
    pages = [_get(sim, "/markets", limit=2, offset=o, order="id", ascending="true") for o in (0, 2, 4, 6)]
    assert [m["id"] for p in pages for m in p] == [m["id"] for m in all_]
    first = all_[0]
    assert [m["id"] for m in _get(sim, "/markets", id=first["id"])] == [first["id"]]
    assert [m["id"] for m in _get(sim, "/markets", slug=first["slug"])] == [first["id"]]
    upper = "0x" + first["conditionId"][2:].upper()  # condition ids match case-insensitively
    assert [m["id"] for m in _get(sim, "/markets", condition_ids=upper)] == [first["id"]]
    token = json.loads(first["clobTokenIds"])[1]
    assert [m["id"] for m in _get(sim, "/markets", clob_token_ids=token)] == [first["id"]]
    two = f"{all_[1]['slug']},{all_[2]['slug']}"
    assert {m["slug"] for m in _get(sim, "/markets", slug=two)} == {all_[1]["slug"], all_[2]["slug"]}
    assert _get(sim, f"/markets/{first['id']}")["slug"] == first["slug"]
    assert _get(sim, f"/markets/slug/{first['slug']}")["id"] == first["id"]
    sim.call(sim.service.exchange.close_market, first["conditionId"])
    assert first["id"] not in {m["id"] for m in _get(sim, "/markets", closed="false", limit=100)}
    assert [m["id"] for m in _get(sim, "/markets", closed="true")] == [first["id"]]
    assert _get(sim, f"/markets/{first['id']}")["closed"] is True


def test_bad_requests_are_4xx_with_a_message(sim: ThreadedSim) -> None:
    for path, params in (
        ("/markets", {"limit": "ten"}),
        ("/markets", {"offset": "-1"}),
        ("/markets", {"active": "maybe"}),
        ("/markets", {"order": "nonsense"}),
        ("/events", {"closed": "2"}),
        ("/public-search", {}),
        ("/public-search", {"q": "x" * 201}),
        ("/tags", {"limit": "1e3"}),
    ):
        resp = httpx.get(f"{sim.url}/gamma-api{path}", params=params)
        assert resp.status_code == 400, (path, params, resp.text)
        assert resp.json()["error"]
    for path in ("/markets/1", "/markets/slug/nope", "/events/1", "/events/slug/nope"):
        resp = httpx.get(f"{sim.url}/gamma-api{path}")
        assert resp.status_code == 404 and resp.json()["error"]


def test_ids_are_stable_and_distinct() -> None:
    a, b = GammaIndex(_markets()), GammaIndex(list(reversed(_markets())))
    assert a.market_ids == b.market_ids and len(set(a.market_ids.values())) == len(_markets())
    assert {e.slug: e.id for e in a.events} == {e.slug: e.id for e in b.events}
    assert numeric_id("market", "x") == numeric_id("market", "X") and len(str(numeric_id("event", "y"))) == 9


def test_live_book_prices_and_volume_come_from_the_exchange() -> None:
    life = MarketLife.backtest(scenario("calm"), seed=2)
    life.run_until(life.start_ms + 10 * 60_000)
    ex = life.exchange
    with ThreadedSim(SimService(ex, life.clock)) as sim:
        first = _get(sim, "/markets", limit=100)
        more = 0
        for m in first:
            spec = ex.market(m["conditionId"])
            bid, ask = ex.best_bid_ask(spec.yes_token_id)
            assert (m["bestBid"], m["bestAsk"]) == (float(from_micro(bid or 0)), float(from_micro(ask or MICRO)))
            mid = ex.midpoint(spec.yes_token_id)
            assert mid is not None and json.loads(m["outcomePrices"])[0] == str(from_micro(mid))
            traded = sum(t.pusd for t in ex.trades(market=spec.condition_id))
            assert m["volume"] == str(from_micro(traded)) and traded > 0
            assert m["volume24hr"] == float(from_micro(traded))
        # trades after the first request are counted too (the exchange's trade hook)
        sim.call(life.run_until, life.start_ms + 20 * 60_000)
        for m in _get(sim, "/markets", limit=100):
            traded = sum(t.pusd for t in ex.trades(market=m["conditionId"]))
            assert m["volume"] == str(from_micro(traded))
            more += traded
        assert from_micro(more) > sum(Decimal(m["volume"]) for m in first)


def test_the_projects_own_gamma_decoders_read_every_answer(sim: ThreadedSim) -> None:
    base = f"{sim.url}/gamma-api"
    markets = decode_gamma_markets(httpx.get(f"{base}/markets", params={"limit": 100}).content)
    ex = sim.service.exchange
    for m in markets:
        spec = ex.market(m.conditionId)
        assert m.token_ids == spec.token_ids and m.outcome_names == spec.outcomes
        assert m.tick_size == spec.tick and sum(m.outcome_prices) == 1
    events = decode_gamma_events(httpx.get(f"{base}/events", params={"limit": 100}).content)
    assert sum(len(e.markets) for e in events) == len(markets)
    assert decode_gamma_tags(httpx.get(f"{base}/tags").content)
    found = decode_gamma_search(httpx.get(f"{base}/public-search", params={"q": "fed"}).content)
    assert [e.slug for e in found.events] == ["fed-cuts-rates-in-december-2026"]
