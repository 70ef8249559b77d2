"""Settlement, tick-size changes and resolution as clients see them over REST and WebSockets, and
every frame the simulator emits decoding with the same decoders as the venue's recorded messages."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import aiohttp
import httpx
import pytest

from polyoms.core.market_events import BookSnapshot, MarketResolved, TickSizeChange
from polyoms.core.units import TICK_SIZES
from polyoms.core.user_events import OrderEvent, TradeEvent, TradeStatus
from polyoms.exchange.api.runner import ThreadedSim, build_service
from polyoms.polymarket.protocol.messages import decode_market_frame
from polyoms.polymarket.protocol.user_messages import decode_user_frame
from polyoms.polymarket.protocol.wire import post_order_body
from tests.exchange_api.conftest import FAST_SETTLEMENT, KEY_A, KEY_B, fund
from tests.exchange_api.test_bad_requests import RawClient


@pytest.fixture
def sim() -> Iterator[ThreadedSim]:
    with ThreadedSim(build_service(seed=21, settlement=FAST_SETTLEMENT)) as server:
        yield server


def _market(sim: ThreadedSim) -> Any:
    return next(m for m in sim.service.exchange.markets() if m.tick.text == "0.01" and not m.neg_risk)


async def _collect(ws: aiohttp.ClientWebSocketResponse, quiet_s: float = 0.4) -> list[str]:
    frames = []
    while True:
        try:
            msg = await ws.receive(timeout=quiet_s)
        except TimeoutError:
            return frames
        if msg.type != aiohttp.WSMsgType.TEXT:
            return frames
        frames.append(msg.data)


def _url(sim: ThreadedSim, channel: str) -> str:
    return sim.url.replace("http://", "ws://") + f"/ws/{channel}"


def _auth(c: RawClient) -> dict[str, str]:
    return {"apiKey": c.creds.api_key, "secret": c.creds.secret, "passphrase": c.creds.passphrase}


def _trade_between(sim: ThreadedSim, a: RawClient, b: RawClient, token: str) -> str:
    bid = a.builder.limit(token, "BUY", "0.40", "10", tick="0.01")
    assert a.send("POST", "/order", post_order_body(bid, a.creds.api_key)).json()["status"] == "live"
    ask = b.builder.limit(token, "SELL", "0.40", "10", tick="0.01")
    res = b.send("POST", "/order", post_order_body(ask, b.creds.api_key)).json()
    assert res["status"] == "matched"
    return res["tradeIDs"][0]  # type: ignore[no-any-return]


def _user_run(sim: ThreadedSim, a: RawClient, b: RawClient, token: str) -> tuple[str, list[str], list[str]]:
    async def main() -> tuple[str, list[str], list[str]]:
        async with aiohttp.ClientSession() as session:
            wa = await session.ws_connect(_url(sim, "user"))
            wb = await session.ws_connect(_url(sim, "user"))
            await wa.send_str(json.dumps({"type": "user", "auth": _auth(a)}))
            await wb.send_str(json.dumps({"type": "user", "auth": _auth(b)}))
            await asyncio.sleep(0.1)
            trade_id = await asyncio.to_thread(_trade_between, sim, a, b, token)
            frames_a, frames_b = await asyncio.gather(_collect(wa), _collect(wb))
            await wa.close()
            await wb.close()
            return trade_id, frames_a, frames_b

    return asyncio.run(main())


def _statuses(frames: list[str], trade_id: str) -> list[TradeStatus]:
    events = [e for f in frames for e in decode_user_frame(f)]
    return [e.status for e in events if isinstance(e, TradeEvent) and e.id == trade_id]


def test_settlement_progression_on_the_user_channel_and_rest(sim: ThreadedSim) -> None:
    token = _market(sim).yes_token_id
    a, b = RawClient(sim.url, KEY_A), RawClient(sim.url, KEY_B)
    fund(sim, a.signer.address, "100")
    fund(sim, b.signer.address, "0", {token: "10"})
    trade_id, frames_a, frames_b = _user_run(sim, a, b, token)
    expected = [TradeStatus.MATCHED, TradeStatus.MINED, TradeStatus.CONFIRMED]
    assert _statuses(frames_a, trade_id) == expected and _statuses(frames_b, trade_id) == expected
    mined = next(e for f in frames_a for e in decode_user_frame(f) if isinstance(e, TradeEvent) and e.status == "MINED")
    assert mined.transaction_hash.startswith("0x") and len(mined.transaction_hash) == 66
    rest = a.send("GET", "/data/trades", id=trade_id).json()["data"][0]
    assert rest["status"] == "CONFIRMED" and rest["transaction_hash"] == mined.transaction_hash
    assert int(rest["last_update"]) >= int(rest["match_time"])


def test_settlement_failure_reverses_the_trade_for_both_sides(sim: ThreadedSim) -> None:
    token = _market(sim).yes_token_id
    a, b = RawClient(sim.url, KEY_A), RawClient(sim.url, KEY_B)
    fund(sim, a.signer.address, "100")
    fund(sim, b.signer.address, "0", {token: "10"})
    assert httpx.post(f"{sim.url}/_sim/faults", json={"settlement_failure_rate": 1}).status_code == 200

    def balances() -> tuple[str, str, str, str]:
        def one(c: RawClient, **params: str) -> str:
            return c.send("GET", "/balance-allowance", **params).json()["balance"]  # type: ignore[no-any-return]

        return (
            one(a, asset_type="COLLATERAL"),
            one(a, asset_type="CONDITIONAL", token_id=token),
            one(b, asset_type="COLLATERAL"),
            one(b, asset_type="CONDITIONAL", token_id=token),
        )

    before = balances()
    trade_id, frames_a, frames_b = _user_run(sim, a, b, token)
    failed = [TradeStatus.MATCHED, TradeStatus.RETRYING, TradeStatus.FAILED]
    assert _statuses(frames_a, trade_id) == failed and _statuses(frames_b, trade_id) == failed
    assert balances() == before  # the ghost fill is undone exactly
    rest = a.send("GET", "/data/trades", id=trade_id).json()["data"][0]
    assert rest["status"] == "FAILED" and rest["err_msg"]


def test_tick_size_change_and_resolution_on_the_market_channel(sim: ThreadedSim) -> None:
    market = _market(sim)
    tokens = list(market.token_ids)
    ex = sim.service.exchange

    async def main() -> list[str]:
        async with aiohttp.ClientSession() as session, session.ws_connect(_url(sim, "market")) as ws:
            sub = {"type": "market", "assets_ids": tokens, "custom_feature_enabled": True}
            await ws.send_str(json.dumps(sub))
            frames = await _collect(ws)
            await asyncio.to_thread(sim.call, ex.change_tick_size, market.condition_id, TICK_SIZES["0.001"])
            frames += await _collect(ws)
            await asyncio.to_thread(sim.call, ex.resolve, market.condition_id, market.yes_token_id)
            frames += await _collect(ws)
            return frames

    frames = asyncio.run(main())
    events = [e for f in frames for e in decode_market_frame(f, strict=True)]
    changes = [e for e in events if isinstance(e, TickSizeChange)]
    assert {c.asset_id for c in changes} == set(tokens)
    assert all(c.old_tick_size.text == "0.01" and c.new_tick_size.text == "0.001" for c in changes)
    after_change = events[events.index(changes[0]) + 1]
    assert isinstance(after_change, BookSnapshot) and after_change.tick_size.text == "0.001"
    resolved = [e for e in events if isinstance(e, MarketResolved)]
    assert len(resolved) == 1 and resolved[0].winning_asset_id == market.yes_token_id
    body = httpx.get(f"{sim.url}/markets/{market.condition_id}").json()
    assert body["closed"] is True and [t["winner"] for t in body["tokens"]] == [True, False]


def test_every_frame_the_simulator_emits_decodes_strictly(sim: ThreadedSim) -> None:
    """Market and user frames from a burst of real flow, decoded like the venue's recorded messages."""
    market = _market(sim)
    token = market.yes_token_id
    a, b = RawClient(sim.url, KEY_A), RawClient(sim.url, KEY_B)
    fund(sim, a.signer.address, "500")
    fund(sim, b.signer.address, "500", {token: "200"})

    def flow() -> None:
        for i in range(10):
            price = f"0.{40 + i % 5}"
            bid = a.builder.limit(token, "BUY", price, "5", tick="0.01")
            a.send("POST", "/order", post_order_body(bid, a.creds.api_key))
            ask = b.builder.limit(token, "SELL", price, "7", tick="0.01")
            b.send("POST", "/order", post_order_body(ask, b.creds.api_key))
        far = a.builder.limit(token, "BUY", "0.10", "5", tick="0.01")
        a.send("POST", "/order", post_order_body(far, a.creds.api_key))
        a.send("DELETE", "/cancel-all")
        b.send("DELETE", "/cancel-all")

    async def main() -> tuple[list[str], list[str]]:
        async with aiohttp.ClientSession() as session:
            wm = await session.ws_connect(_url(sim, "market"))
            wu = await session.ws_connect(_url(sim, "user"))
            await wm.send_str(
                json.dumps({"type": "market", "assets_ids": list(market.token_ids), "custom_feature_enabled": True})
            )
            await wu.send_str(json.dumps({"type": "user", "auth": _auth(a)}))
            await asyncio.sleep(0.1)
            await asyncio.to_thread(flow)
            fm, fu = await asyncio.gather(_collect(wm), _collect(wu))
            await wm.close()
            await wu.close()
            return fm, fu

    market_frames, user_frames = asyncio.run(main())
    market_events = [e for f in market_frames for e in decode_market_frame(f, strict=True)]
    user_events = [e for f in user_frames for e in decode_user_frame(f)]
    kinds = {type(e).__name__ for e in market_events}
    assert {"BookSnapshot", "PriceChange", "LastTradePrice", "BestBidAsk"} <= kinds
    assert {type(e) for e in user_events} == {OrderEvent, TradeEvent}
    assert {e.type.value for e in user_events if isinstance(e, OrderEvent)} == {"PLACEMENT", "UPDATE", "CANCELLATION"}


def test_new_market_listed_at_runtime(sim: ThreadedSim) -> None:
    from polyoms.core.market_events import NewMarket

    listing = {"markets": [{"slug": "will-it-rain-in-paris-tomorrow", "question": "Rain in Paris tomorrow?"}]}

    async def main() -> list[str]:
        token = _market(sim).yes_token_id
        async with aiohttp.ClientSession() as session, session.ws_connect(_url(sim, "market")) as ws:
            await ws.send_str(json.dumps({"type": "market", "assets_ids": [token], "custom_feature_enabled": True}))
            frames = await _collect(ws)
            resp = await asyncio.to_thread(httpx.post, f"{sim.url}/_sim/markets", json=listing)
            assert resp.status_code == 200, resp.text
            return frames + await _collect(ws)

    events = [e for f in asyncio.run(main()) for e in decode_market_frame(f, strict=True)]
    listed = [e for e in events if isinstance(e, NewMarket)]
    assert len(listed) == 1 and listed[0].slug == "will-it-rain-in-paris-tomorrow"
    assert len(listed[0].assets_ids) == 2
    book = httpx.get(f"{sim.url}/book", params={"token_id": listed[0].assets_ids[0]})
    assert book.status_code == 200
    again = httpx.post(f"{sim.url}/_sim/markets", json=listing)
    assert again.status_code == 400 and "duplicate" in again.json()["error"]
