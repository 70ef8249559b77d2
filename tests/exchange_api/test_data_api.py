"""The Data API on the local exchange (/data-api): its answers equal the exchange's own ledger and trades
for every wallet of a living market; shapes against the recorded responses; filters, caps, rate limits."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from polyoms.core.clock import VirtualClock
from polyoms.core.units import MICRO, to_micro
from polyoms.exchange.api.data_api import payout_activity, pseudonym
from polyoms.exchange.api.gamma import GammaIndex
from polyoms.exchange.api.public_limits import DATA_API_LIMITS, RateLimiter
from polyoms.exchange.api.runner import ThreadedSim, build_service
from polyoms.exchange.api.service import SimService
from polyoms.exchange.life import MarketLife, scenario
from polyoms.exchange.portfolio import fills_of
from polyoms.polymarket.protocol.gamma import decode_data_activity, decode_data_positions, decode_data_trades

FIXTURES = Path("/work/shared/fixtures/polymarket/data-api")
EXTRA_HOLDERS = 25


def _load(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    return "number" if isinstance(value, int | float) else type(value).__name__


def _assert_shape(ours: dict[str, Any], recorded: list[dict[str, Any]], skip: frozenset[str] = frozenset()) -> None:
    common = set.intersection(*(set(r) for r in recorded)) - skip
    assert not sorted(common - set(ours)), sorted(common - set(ours))
    for key in common:
        assert _kind(ours[key]) in {_kind(r[key]) for r in recorded}, (key, ours[key])


def _micro(value: Any) -> int:
    return to_micro(str(value))


@dataclass(frozen=True)
class World:
    sim: ThreadedSim
    life: MarketLife
    resolved: str
    holders_market: str
    client: httpx.Client


@pytest.fixture(scope="module")
def world() -> Iterator[World]:
    life = MarketLife.backtest(scenario("calm"), seed=5)
    life.run_until(life.start_ms + 20 * 60_000)
    ex = life.exchange
    resolved, other = ex.markets()[1], ex.markets()[0]
    for i in range(EXTRA_HOLDERS):  # more holders than the per-token cap
        ex.fund(f"0x{0xA000 + i:040x}", 0, {other.yes_token_id: (i + 1) * MICRO, other.no_token_id: MICRO // 2})
    assert isinstance(life.clock, VirtualClock)
    life.clock.advance(60_000)
    ex.advance()
    ex.resolve(resolved.condition_id, resolved.yes_token_id)
    with ThreadedSim(SimService(ex, life.clock)) as sim, httpx.Client(base_url=f"{sim.url}/data-api") as client:
        yield World(sim, life, resolved.condition_id, other.condition_id, client)


def _get(w: World, path: str, **params: Any) -> Any:
    resp = w.client.get(path, params=params)
    assert resp.status_code == 200, resp.text
    return resp.json()


def test_every_wallets_positions_value_and_trades_equal_the_exchange(world: World) -> None:
    ex = world.life.exchange
    wallets = [a.address for a in ex.ledger]
    assert len(wallets) > 20
    for addr in wallets:
        positions = _get(world, "/positions", user=addr, sizeThreshold=0, limit=500)
        held = {t: b.balance for t, b in ex.balances(addr).tokens.items() if b.balance}
        assert {p["asset"]: _micro(p["size"]) for p in positions} == held
        value = _get(world, "/value", user=addr)
        assert value == [{"user": addr, "value": value[0]["value"]}]
        expected = sum(_micro(p["size"]) * _micro(p["curPrice"]) // MICRO for p in positions)
        assert _micro(value[0]["value"]) == expected == sum(_micro(p["currentValue"]) for p in positions)
        for p in positions:
            assert _micro(p["cashPnl"]) == _micro(p["currentValue"]) - _micro(p["initialValue"])
            assert p["proxyWallet"] == addr and p["redeemable"] is False
        fills = [f for t in ex.trades(maker_address=addr) for f in fills_of(t) if f.address == addr]
        rows = _get(world, "/trades", user=addr, takerOnly="false", limit=10_000)
        assert len(rows) == len(fills)
        assert sorted((r["asset"], r["side"], _micro(r["size"]), _micro(r["price"])) for r in rows) == sorted(
            (f.token_id, f.side.name, f.size, f.price) for f in fills
        )
        taker = _get(world, "/trades", user=addr, limit=10_000)
        assert len(taker) == sum(f.is_taker for f in fills)


def test_shapes_match_the_recorded_responses(world: World) -> None:
    ex = world.life.exchange
    lp = world.life.slots[0].address
    position = _get(world, "/positions", user=lp)[0]
    _assert_shape(position, _load("positions_anonymised.json"))
    trade = _get(world, "/trades", limit=1)[0]
    _assert_shape(trade, _load("trades_2026-03.json"))
    activity = _get(world, "/activity", user=lp, type="TRADE", limit=1)[0]
    _assert_shape(activity, _load("activity_anonymised.json"), skip=frozenset({"type"}))
    assert activity["type"] == "TRADE" and activity["pseudonym"] == pseudonym(lp)
    assert trade["timestamp"] == ex.trades()[-1].match_time  # newest first
    # and the project's own Data API decoders read them
    base = f"{world.sim.url}/data-api"
    positions = decode_data_positions(httpx.get(f"{base}/positions", params={"user": lp}).content)
    assert positions and all(p.proxyWallet == lp for p in positions)
    assert decode_data_trades(httpx.get(f"{base}/trades", params={"limit": 5}).content)
    assert decode_data_activity(httpx.get(f"{base}/activity", params={"user": lp, "limit": 5}).content)


def test_resolution_shows_as_redeem_activity_and_closed_positions(world: World) -> None:
    ex = world.life.exchange
    res = ex.resolution(world.resolved)
    assert res is not None and res.payouts
    winner, paid = next(iter(res.payouts.items()))
    redeems = _get(world, "/activity", user=winner, type="REDEEM")
    assert len(redeems) == 1 and _micro(redeems[0]["usdcSize"]) == paid
    assert redeems[0]["conditionId"] == ex.market(world.resolved).condition_id
    closed = _get(world, "/closed-positions", user=winner, limit=50)
    mine = [c for c in closed if c["conditionId"].lower() == world.resolved.lower()]
    assert mine and {c["curPrice"] for c in mine} <= {0, 1}
    won = next(c for c in mine if c["asset"] == res.winning_token_id)
    assert won["curPrice"] == 1
    assert not [
        p for p in _get(world, "/positions", user=winner, sizeThreshold=0) if p["conditionId"] == world.resolved
    ]
    everything = _get(world, "/activity", user=winner, limit=500)
    times = [a["timestamp"] for a in everything]
    assert times == sorted(times, reverse=True) and {a["type"] for a in everything} == {"TRADE", "REDEEM"}


def test_filters_sorting_and_pagination(world: World) -> None:
    lp = world.life.slots[0].address
    market = world.holders_market
    all_rows = _get(world, "/trades", market=market, takerOnly="false", limit=10_000)
    assert all_rows and all(r["conditionId"] == market for r in all_rows)
    page = [_get(world, "/trades", market=market, takerOnly="false", limit=7, offset=o) for o in (0, 7)]
    assert page[0] + page[1] == all_rows[:14]
    buys = _get(world, "/trades", market=market, side="BUY", limit=10_000)
    assert buys and all(r["side"] == "BUY" for r in buys)
    big = _get(world, "/trades", market=market, filterType="CASH", filterAmount="20", limit=10_000)
    assert all(Decimal(str(r["size"])) * Decimal(str(r["price"])) >= 20 for r in big)
    by_value = _get(world, "/positions", user=lp, sortBy="CURRENT", sortDirection="ASC", sizeThreshold=0)
    values = [r["currentValue"] for r in by_value]
    assert values == sorted(values)
    assert len(_get(world, "/positions", user=lp, limit=1)) == 1
    assert {p["conditionId"] for p in _get(world, "/positions", user=lp, market=market)} <= {market}
    event_id = GammaIndex.of(world.life.exchange).event_of(world.life.exchange.market(market)).id
    assert {p["conditionId"] for p in _get(world, "/positions", user=lp, eventId=event_id)} <= {market}
    assert all(p["mergeable"] for p in _get(world, "/positions", user=lp, mergeable="true"))
    windowed = _get(world, "/activity", user=lp, start=0, end=0)
    assert windowed == []


def test_holders_are_capped_per_token_and_sorted(world: World) -> None:
    ex = world.life.exchange
    spec = ex.market(world.holders_market)
    answer = _get(world, "/holders", market=world.holders_market, limit=100)
    assert [a["token"] for a in answer] == list(spec.token_ids)
    yes = answer[0]["holders"]
    assert len(yes) == 20  # the venue's cap
    amounts = [h["amount"] for h in yes]
    assert amounts == sorted(amounts, reverse=True)
    everyone = sorted((b.tokens.get(spec.yes_token_id, 0) for b in ex.ledger), reverse=True)[:20]
    assert [_micro(a) for a in amounts] == everyone
    no = answer[1]["holders"]
    assert all(_micro(h["amount"]) >= MICRO for h in no)  # minBalance defaults to 1 share
    with_half = _get(world, "/holders", market=world.holders_market, minBalance=0)[1]["holders"]
    assert (
        len(with_half) == 20 and len(_get(world, "/holders", market=world.holders_market, limit=3)[0]["holders"]) == 3
    )
    assert set(yes[0]) == {
        "proxyWallet", "bio", "asset", "pseudonym", "amount", "displayUsernamePublic", "outcomeIndex", "name",
        "profileImage", "profileImageOptimized",
    }  # fmt: skip


@dataclass(frozen=True)
class _Payout:
    day: str
    condition_id: str
    asset_address: str
    kind: str
    amount: int
    paid_ms: int


def test_rewards_and_rebates_render_as_activity(world: World) -> None:
    ex = world.life.exchange
    spec = ex.market(world.holders_market)
    payouts = [
        _Payout("2026-04-24", spec.condition_id, "0xpusd", "REWARD", 1_250_000, 1_777_075_200_000),
        _Payout("2026-04-24", spec.condition_id, "0xpusd", "MAKER_REBATE", 30, 1_777_075_200_500),
    ]
    addr = "0x" + "ab" * 20
    rows = payout_activity(addr, payouts, {spec.condition_id.lower(): spec}, GammaIndex.of(ex))
    assert [(r["type"], r["usdcSize"], r["timestamp"]) for r in rows] == [
        ("REWARD", Decimal("1.25"), 1_777_075_200),
        ("MAKER_REBATE", Decimal("0.00003"), 1_777_075_200),
    ]
    _assert_shape(
        json.loads(json.dumps(rows[0], default=float)), _load("activity_anonymised.json"), frozenset({"type"})
    )
    assert rows[0]["conditionId"] == spec.condition_id and rows[0]["outcomeIndex"] == 999


def test_bad_requests_are_400_with_a_message(world: World) -> None:
    lp = world.life.slots[0].address
    for path, params in (
        ("/positions", {}),
        ("/positions", {"user": "0x12"}),
        ("/positions", {"user": lp, "limit": "-1"}),
        ("/positions", {"user": lp, "offset": "10001"}),
        ("/positions", {"user": lp, "sortBy": "SIZE"}),
        ("/positions", {"user": lp, "sizeThreshold": "abc"}),
        ("/positions", {"user": lp, "market": "0x12"}),
        ("/positions", {"user": lp, "market": world.resolved, "eventId": "1"}),
        ("/trades", {"filterType": "CASH"}),
        ("/trades", {"filterType": "SHARES", "filterAmount": "1"}),
        ("/trades", {"takerOnly": "perhaps"}),
        ("/activity", {"user": lp, "type": "BOGUS"}),
        ("/activity", {"user": lp, "offset": "5001"}),
        ("/holders", {}),
        ("/holders", {"market": world.resolved, "minBalance": "1000000"}),
        ("/value", {"user": "not-an-address"}),
        ("/closed-positions", {"user": lp, "sortBy": "NOPE"}),
    ):
        resp = httpx.get(f"{world.sim.url}/data-api{path}", params=params)
        assert resp.status_code == 400, (path, params, resp.text)
        assert resp.json()["error"]


def test_rate_limit_answers_429_with_retry_after() -> None:
    # a server of its own: the other tests' requests count against the same client IP
    with ThreadedSim(build_service(seed=1)) as sim, httpx.Client(base_url=f"{sim.url}/data-api") as client:
        user = "0x" + "cd" * 20
        codes = [
            client.get("/positions", params={"user": user}).status_code for _ in range(DATA_API_LIMITS["/positions"])
        ]
        assert set(codes) == {200}
        refused = client.get("/positions", params={"user": user})
        assert refused.status_code == 429
        assert refused.json() == {"error": "Too Many Requests"} and int(refused.headers["Retry-After"]) >= 1
        assert client.get("/value", params={"user": user}).status_code == 200  # other endpoints: general limit


def test_sliding_window_counter_and_bounded_ips() -> None:
    now = [0.0]
    lim = RateLimiter({"*": 10, "/x": 4}, clock=lambda: now[0], max_ips=3)
    assert [lim.check("a", "/x") for _ in range(4)] == [None] * 4
    wait = lim.check("a", "/x")
    assert wait is not None and 0 < wait <= 10
    assert lim.check("b", "/x") is None  # per IP
    assert [lim.check("a", "/y") for _ in range(6)] == [None] * 6  # the general limit: 4 + 6 = 10
    assert lim.check("a", "/y") is not None
    now[0] = 15.0  # halfway through the next window, the last one still weighs half
    assert [lim.check("a", "/x") is None for _ in range(3)] == [True, True, False]
    now[0] = 30.0
    assert lim.check("a", "/x") is None
    for ip in ("c", "d", "e", "f"):
        lim.check(ip, "/x")
    assert lim.tracked == 3
