"""The market and user WebSocket channels of `polyoms sim`, over real sockets."""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Iterator
from typing import Any

import aiohttp
import httpx
import pytest

from polyoms.core.enums import OrderType, Side
from polyoms.core.errors import PolyomsError
from polyoms.core.units import MICRO, fmt_micro, to_micro
from polyoms.exchange.api.runner import ThreadedSim, build_service
from polyoms.exchange.orders import EngineOrder
from polyoms.polymarket.protocol.hashing import keccak256
from polyoms.polymarket.protocol.messages import decode_market_frame
from tests.exchange_api.conftest import FAST_SETTLEMENT


@pytest.fixture
def sim() -> Iterator[ThreadedSim]:
    with ThreadedSim(build_service(seed=11, settlement=FAST_SETTLEMENT)) as server:
        yield server


def _ws_url(sim: ThreadedSim, channel: str) -> str:
    return sim.url.replace("http://", "ws://") + f"/ws/{channel}"


async def _drain(ws: aiohttp.ClientWebSocketResponse, quiet_s: float = 0.3) -> list[Any]:
    """Every JSON event received until the socket stays quiet for `quiet_s`."""
    out: list[Any] = []
    while True:
        try:
            msg = await ws.receive(timeout=quiet_s)
        except TimeoutError:
            return out
        if msg.type != aiohttp.WSMsgType.TEXT:
            return out
        if msg.data == "PONG":
            out.append("PONG")
            continue
        data = json.loads(msg.data)
        out.extend(data if isinstance(data, list) else [data])


class Mirror:
    """The simplest possible client book: dicts of price -> size, per token and side."""

    def __init__(self) -> None:
        self.books: dict[str, dict[str, dict[str, str]]] = {}

    def apply(self, event: dict[str, Any]) -> None:
        if event["event_type"] == "book":
            self.books[event["asset_id"]] = {
                "bids": {lv["price"]: lv["size"] for lv in event["bids"]},
                "asks": {lv["price"]: lv["size"] for lv in event["asks"]},
            }
        elif event["event_type"] == "price_change":
            for ch in event["price_changes"]:
                side = self.books[ch["asset_id"]]["bids" if ch["side"] == "BUY" else "asks"]
                if ch["size"] == "0":
                    side.pop(ch["price"], None)
                else:
                    side[ch["price"]] = ch["size"]


def _rest_book(sim: ThreadedSim, token: str) -> dict[str, dict[str, str]]:
    body = httpx.get(f"{sim.url}/book", params={"token_id": token}).json()
    return {
        "bids": {lv["price"]: lv["size"] for lv in body["bids"]},
        "asks": {lv["price"]: lv["size"] for lv in body["asks"]},
    }


def _random_session(sim: ThreadedSim, market: Any, n: int, seed: int) -> None:
    """Random resting, crossing and cancelling flow from a few funded accounts, straight into the exchange."""
    rng = random.Random(seed)
    ex = sim.service.exchange
    users = [f"0x{i:040x}" for i in range(1, 5)]
    for u in users:
        sim.call(ex.fund, u, 10_000 * MICRO, {market.yes_token_id: 2_000 * MICRO, market.no_token_id: 2_000 * MICRO})
    live: list[tuple[str, str]] = []
    tick = market.tick.micro
    for i in range(n):
        user = rng.choice(users)
        if live and rng.random() < 0.3:
            oid, owner = live.pop(rng.randrange(len(live)))
            sim.call(ex.cancel, oid, owner)
            continue
        token = rng.choice(market.token_ids)
        side = rng.choice((Side.BUY, Side.SELL))
        price = rng.randrange(30, 71) * (MICRO // 100)
        price -= price % tick
        size = rng.randrange(5, 40) * MICRO
        notional = size * price // MICRO
        order = EngineOrder(
            order_id="0x" + keccak256(f"ws-session:{seed}:{i}".encode()).hex(),
            maker=user,
            owner=user,
            token_id=token,
            side=side,
            maker_amount=notional if side is Side.BUY else size,
            taker_amount=size if side is Side.BUY else notional,
            order_type=OrderType.GTC,
        )
        try:
            result = sim.call(ex.submit, order)
        except PolyomsError:
            continue
        if result.status == "live" or sim.call(ex.get_order, order.order_id).resting:
            live.append((order.order_id, user))


def test_market_stream_snapshot_plus_changes_equals_rest_book(sim: ThreadedSim) -> None:
    market = next(m for m in sim.service.exchange.markets() if m.tick.text == "0.01" and not m.neg_risk)
    tokens = list(market.token_ids)

    async def main() -> tuple[Mirror, list[Any]]:
        mirror = Mirror()
        async with aiohttp.ClientSession() as session, session.ws_connect(_ws_url(sim, "market")) as ws:
            await ws.send_str(json.dumps({"type": "market", "assets_ids": tokens, "custom_feature_enabled": True}))
            first = await _drain(ws)
            assert [e["event_type"] for e in first] == ["book", "book"]
            for e in first:
                mirror.apply(e)
            events: list[Any] = []
            for round_ in range(4):
                await asyncio.to_thread(_random_session, sim, market, 150, round_)
                batch = await _drain(ws)
                events.extend(batch)
                for e in batch:
                    mirror.apply(e)
            await ws.send_str("PING")
            assert "PONG" in await _drain(ws)
            return mirror, events

    mirror, events = asyncio.run(main())
    for e in events:  # the same decoders as the venue's recorded messages, strictly
        if e != "PONG":
            assert decode_market_frame(json.dumps(e), strict=True)
    kinds = {e["event_type"] for e in events if e != "PONG"}
    assert {"price_change", "last_trade_price", "best_bid_ask"} <= kinds
    for token in tokens:
        assert mirror.books[token] == _rest_book(sim, token)
    # price_change entries carry the book's best levels after the change and the §6.5 hash
    change = next(e for e in reversed(events) if e["event_type"] == "price_change")["price_changes"][-1]
    assert len(change["hash"]) == 40 and set(change) >= {"best_bid", "best_ask", "side", "size", "price"}


def test_dynamic_subscribe_and_unsubscribe(sim: ThreadedSim) -> None:
    markets = [m for m in sim.service.exchange.markets() if not m.neg_risk]
    a, b = markets[0].yes_token_id, markets[1].yes_token_id

    async def main() -> None:
        async with aiohttp.ClientSession() as session, session.ws_connect(_ws_url(sim, "market")) as ws:
            await ws.send_str(json.dumps({"type": "MARKET", "assets_ids": [a]}))
            assert [e["asset_id"] for e in await _drain(ws)] == [a]
            await ws.send_str(json.dumps({"operation": "subscribe", "assets_ids": [b, "999"]}))
            assert [e["asset_id"] for e in await _drain(ws)] == [b]
            await ws.send_str(json.dumps({"operation": "unsubscribe", "assets_ids": [a]}))
            await asyncio.sleep(0.1)
            await asyncio.to_thread(_random_session, sim, markets[0], 30, 99)
            assert all(e.get("asset_id") != a for e in await _drain(ws) if e != "PONG")

    asyncio.run(main())


def test_user_channel_orders_and_trades(sim: ThreadedSim) -> None:
    from tests.exchange_api.conftest import KEY_A, KEY_B, fund
    from tests.exchange_api.test_bad_requests import RawClient

    market = next(m for m in sim.service.exchange.markets() if m.tick.text == "0.01" and not m.neg_risk)
    token = market.yes_token_id
    a, b = RawClient(sim.url, KEY_A), RawClient(sim.url, KEY_B)
    fund(sim, a.signer.address, "100")
    fund(sim, b.signer.address, "0", {token: "100"})

    def post(client: RawClient, side: str, price: str, size: str) -> dict[str, Any]:
        from polyoms.polymarket.protocol.wire import post_order_body

        order = client.builder.limit(token, side, price, size, tick="0.01")
        return client.send("POST", "/order", post_order_body(order, client.creds.api_key)).json()  # type: ignore[no-any-return]

    async def main() -> tuple[list[Any], list[Any]]:
        auth_a = {"apiKey": a.creds.api_key, "secret": a.creds.secret, "passphrase": a.creds.passphrase}
        auth_b = {"apiKey": b.creds.api_key, "secret": b.creds.secret, "passphrase": b.creds.passphrase}
        async with aiohttp.ClientSession() as session:
            bad = await session.ws_connect(_ws_url(sim, "user"))
            await bad.send_str(json.dumps({"type": "user", "auth": {**auth_a, "secret": "A" * 44}}))
            msg = await bad.receive(timeout=2)
            assert msg.type == aiohttp.WSMsgType.TEXT and msg.data == "INVALID AUTH"
            await bad.close()
            wa = await session.ws_connect(_ws_url(sim, "user"))
            wb = await session.ws_connect(_ws_url(sim, "user"))
            await wa.send_str(json.dumps({"type": "user", "auth": auth_a, "markets": [market.condition_id]}))
            await wb.send_str(json.dumps({"type": "user", "auth": auth_b}))
            await asyncio.sleep(0.1)
            bid = await asyncio.to_thread(post, a, "BUY", "0.40", "10")
            sold = await asyncio.to_thread(post, b, "SELL", "0.40", "5")
            assert sold["status"] == "matched", sold
            got_a, got_b = await _drain(wa), await _drain(wb)
            assert bid["status"] == "live"
            await wa.close()
            await wb.close()
            return got_a, got_b

    got_a, got_b = asyncio.run(main())
    kinds_a = [(e["event_type"], e.get("type")) for e in got_a]
    assert ("order", "PLACEMENT") in kinds_a and ("order", "UPDATE") in kinds_a and ("trade", "TRADE") in kinds_a
    update = next(e for e in got_a if e.get("type") == "UPDATE")
    assert update["size_matched"] == "5" and update["associate_trades"]
    trade_a = next(e for e in got_a if e["event_type"] == "trade")
    trade_b = next(e for e in got_b if e["event_type"] == "trade")
    assert trade_a["id"] == trade_b["id"] and trade_a["status"] == "MATCHED"
    assert trade_a["trader_side"] == "MAKER" and trade_b["trader_side"] == "TAKER"
    assert trade_b["side"] == "SELL" and trade_b["price"] == "0.4" and trade_b["size"] == "5"
    assert fmt_micro(to_micro(trade_a["maker_orders"][0]["matched_amount"])) == "5"
    # B never sees A's placement; A's socket is filtered to this market only.
    assert all(e.get("type") != "PLACEMENT" or e["owner"] == b.creds.api_key for e in got_b)
