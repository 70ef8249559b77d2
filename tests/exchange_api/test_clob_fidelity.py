"""CLOB fidelity: a `book` snapshot after a trade, one fee figure everywhere, rewards and the delay flag
where the venue shows them, live activity and builder fees."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import aiohttp
import httpx
import pytest

from polyoms.core.clock import WallClock
from polyoms.core.units import MICRO
from polyoms.exchange.api.runner import ThreadedSim
from polyoms.exchange.api.service import SimService
from polyoms.exchange.engine import Exchange
from polyoms.exchange.fees import FeeCurve
from polyoms.exchange.markets import MarketSpec, RewardsConfig, binary_market
from polyoms.polymarket.protocol.constants import PUSD
from polyoms.polymarket.protocol.wire import post_order_body
from tests.exchange_api.conftest import KEY_A, KEY_B
from tests.exchange_api.test_bad_requests import RawClient

CRYPTO = binary_market("fee-crypto", "Crypto fee?", fee=FeeCurve("0.072", 1)).with_flags(
    rewards=RewardsConfig(max_spread=35_000, min_size=200 * MICRO, daily_rate=30 * MICRO)
)
SQUARED = binary_market("fee-squared", "Squared fee?", fee=FeeCurve("0.25", 2))
FREE = binary_market("fee-free", "No fee?")
MARKETS = (CRYPTO, SQUARED, FREE)


@pytest.fixture
def sim() -> Iterator[ThreadedSim]:
    clock = WallClock()
    with ThreadedSim(SimService(Exchange(MARKETS, clock, seed=4), clock)) as server:
        yield server


def _ws(sim: ThreadedSim, path: str) -> str:
    return sim.url.replace("http", "ws") + path


async def _frames(ws: aiohttp.ClientWebSocketResponse, timeout: float = 0.4) -> list[Any]:
    out: list[Any] = []
    while True:
        try:
            msg = await ws.receive(timeout=timeout)
        except TimeoutError:
            return out
        data = json.loads(msg.data)
        out.extend(data if isinstance(data, list) else [data])


def _asset(frame: dict[str, Any]) -> str:
    return str(frame["asset_id"] if "asset_id" in frame else frame["price_changes"][0]["asset_id"])


def _trade(sim: ThreadedSim, maker: RawClient, taker: RawClient, market: MarketSpec) -> str:
    token = market.yes_token_id
    ask = maker.builder.limit(token, "SELL", "0.50", "10", tick="0.01")
    assert maker.send("POST", "/order", post_order_body(ask, maker.creds.api_key)).json()["status"] == "live"
    bid = taker.builder.limit(token, "BUY", "0.50", "6", tick="0.01")
    answer = taker.send("POST", "/order", post_order_body(bid, taker.creds.api_key)).json()
    assert answer["status"] == "matched", answer
    return str(answer["tradeIDs"][0])


def test_a_trade_sends_a_book_snapshot_and_every_endpoint_reports_one_fee(sim: ThreadedSim) -> None:
    maker, taker = RawClient(sim.url, KEY_B), RawClient(sim.url, KEY_A)
    for m in MARKETS:
        sim.call(sim.service.fund, maker.signer.address, 0, {m.yes_token_id: 50 * MICRO})
    sim.call(sim.service.fund, taker.signer.address, 100 * MICRO, {})

    async def main() -> tuple[list[Any], list[Any]]:
        auth = {"apiKey": taker.creds.api_key, "secret": taker.creds.secret, "passphrase": taker.creds.passphrase}
        async with (
            aiohttp.ClientSession() as session,
            session.ws_connect(_ws(sim, "/ws/market")) as market_ws,
            session.ws_connect(_ws(sim, "/ws/user")) as user_ws,
        ):
            tokens = [m.yes_token_id for m in MARKETS]
            await market_ws.send_str(json.dumps({"type": "market", "assets_ids": tokens}))
            await user_ws.send_str(json.dumps({"type": "user", "auth": auth, "markets": []}))
            await _frames(market_ws)  # the initial dump
            for m in MARKETS:
                await asyncio.to_thread(_trade, sim, maker, taker, m)
            return await _frames(market_ws), await _frames(user_ws)

    market_frames, user_frames = asyncio.run(main())
    # Per market: price_change (the ask), then the trade: last_trade_price, price_change, and a book.
    books = [f for f in market_frames if f["event_type"] == "book"]
    assert [b["asset_id"] for b in books] == [m.yes_token_id for m in MARKETS]
    for book in books:
        rest = httpx.get(f"{sim.url}/book", params={"token_id": book["asset_id"]}).json()
        assert (book["bids"], book["asks"], book["hash"] != "") == (rest["bids"], rest["asks"], True)
        assert book["asks"] == [{"price": "0.5", "size": "4"}]
    kinds = [f["event_type"] for f in market_frames if _asset(f) == CRYPTO.yes_token_id]
    assert kinds == ["price_change", "last_trade_price", "price_change", "book"]

    trades = taker.send("GET", "/data/trades").json()["data"]
    for m in MARKETS:
        expected = int(Decimal(m.fee.rate) * 10_000)
        cid = m.condition_id
        compact = httpx.get(f"{sim.url}/clob-markets/{cid}").json()
        full = httpx.get(f"{sim.url}/markets/{cid}").json()
        legacy = httpx.get(f"{sim.url}/fee-rate", params={"token_id": m.yes_token_id}).json()
        ws_trades = [f for f in user_frames if f["event_type"] == "trade" and f["market"] == cid]
        ltp = [f for f in market_frames if f["event_type"] == "last_trade_price" and f["market"] == cid]
        reported = {
            "fee-rate": legacy["base_fee"],
            "tbf": compact["tbf"],
            "taker_base_fee": full["taker_base_fee"],
            "fd.r": int(Decimal(str(compact["fd"]["r"])) * 10_000) if "fd" in compact else 0,
            **{f"rest {t['id']}": int(t["fee_rate_bps"]) for t in trades if t["market"] == cid},
            **{f"ws {t['id']} {t['status']}": int(t["fee_rate_bps"]) for t in ws_trades},
            **{f"ltp {i}": int(t["fee_rate_bps"]) for i, t in enumerate(ltp)},
        }
        assert len(reported) >= 7 and set(reported.values()) == {expected}, (m.slug, reported)


def test_rewards_and_taker_delay_where_the_venue_shows_them(sim: ThreadedSim) -> None:
    compact = httpx.get(f"{sim.url}/clob-markets/{CRYPTO.condition_id}").json()
    assert compact["r"] == {"mi": 200, "ma": 3.5, "e": True} and compact["fd"] == {"r": 0.072, "e": 1, "to": True}
    assert "r" not in httpx.get(f"{sim.url}/clob-markets/{FREE.condition_id}").json()
    full = httpx.get(f"{sim.url}/markets/{CRYPTO.condition_id}").json()
    assert full["rewards"] == {
        "rates": [{"asset_address": PUSD, "rewards_daily_rate": 30}],
        "min_size": 200,
        "max_spread": 3.5,
    }
    assert httpx.get(f"{sim.url}/markets/{FREE.condition_id}").json()["rewards"] == {
        "rates": None,
        "min_size": 0,
        "max_spread": 0,
    }


def test_live_activity_and_builder_fees(sim: ThreadedSim) -> None:
    maker, taker = RawClient(sim.url, KEY_B), RawClient(sim.url, KEY_A)
    sim.call(sim.service.fund, maker.signer.address, 0, {SQUARED.yes_token_id: 50 * MICRO})
    sim.call(sim.service.fund, taker.signer.address, 100 * MICRO, {})
    first = _trade(sim, maker, taker, SQUARED)
    second = _trade(sim, maker, taker, SQUARED)
    activity = httpx.get(f"{sim.url}/markets/live-activity/{SQUARED.condition_id}").json()
    assert len(activity) == 2  # newest first
    item = activity[0]
    assert set(item) == {
        "event_type", "market", "user", "side", "size", "fee_rate_bps", "price", "outcome", "outcome_index",
        "transaction_hash", "timestamp",
    }  # fmt: skip
    assert item["market"]["condition_id"] == SQUARED.condition_id and item["market"]["asset_id"] == SQUARED.yes_token_id
    assert item["user"]["address"].lower() == taker.signer.address.lower()
    assert (item["side"], item["size"], item["price"], item["fee_rate_bps"]) == ("BUY", "6", "0.5", "2500")
    assert first != second
    assert httpx.get(f"{sim.url}/markets/live-activity/{FREE.condition_id}").json() == []
    assert httpx.get(f"{sim.url}/markets/live-activity/0x{'0' * 63}1").status_code == 404
    # No builder code is registered here: a well-formed one is unknown (404, doc §2.4), a malformed one a 400.
    unknown = httpx.get(f"{sim.url}/fees/builder-fees/0x{'ab' * 32}")
    assert unknown.status_code == 404 and "not found" in unknown.json()["error"]
    assert httpx.get(f"{sim.url}/fees/builder-fees/nope").status_code == 400


def test_the_official_client_reads_live_activity(sim: ThreadedSim) -> None:
    from py_clob_client_v2.client import ClobClient

    maker, taker = RawClient(sim.url, KEY_B), RawClient(sim.url, KEY_A)
    sim.call(sim.service.fund, maker.signer.address, 0, {CRYPTO.yes_token_id: 50 * MICRO})
    sim.call(sim.service.fund, taker.signer.address, 100 * MICRO, {})
    _trade(sim, maker, taker, CRYPTO)
    [event] = ClobClient(sim.url, chain_id=137).get_market_trades_events(CRYPTO.condition_id)
    assert event["fee_rate_bps"] == "720" and event["market"]["slug"] == CRYPTO.slug
