"""Honest feeds: RTDS price topics (official `polymarket-client` SDK and raw frames) and the Binance-shaped
streams (raw aiohttp and the `binance-connector` client), fed with ticks the test constructs."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from polyoms.exchange.api.app import BINANCE_HUB
from polyoms.exchange.api.binance_stream import BinanceHub
from polyoms.exchange.api.runner import ThreadedSim, build_service
from polyoms.exchange.life.feed import BINANCE, CHAINLINK, PriceTick

FIXTURES = Path("/work/shared/fixtures/polymarket/ws")
T0 = 1_780_730_269_000


@pytest.fixture
def sim() -> Iterator[ThreadedSim]:
    with ThreadedSim(build_service(seed=5)) as server:
        yield server


def _ws_url(sim: ThreadedSim, path: str) -> str:
    return sim.url.replace("http", "ws") + path


def _binance(sim: ThreadedSim) -> BinanceHub:
    assert sim.server.app is not None
    return sim.server.app[BINANCE_HUB]


def _wait(check: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def _ticks(sim: ThreadedSim, *ticks: PriceTick) -> None:
    for t in ticks:
        sim.call(sim.hub.publish_price, t)
        sim.call(_binance(sim).publish, t)


BTC = PriceTick("btcusdt", T0, 61_035.86, BINANCE, 61_035.85, 61_035.87)
ETH = PriceTick("ethusdt", T0, 3_012.5, BINANCE, 3_012.49, 3_012.51)
SOL = PriceTick("solusdt", T0, 150.25, BINANCE)
ETH_ORACLE = PriceTick("eth/usd", T0, 3_012.4, CHAINLINK)
BTC_ORACLE = PriceTick("btc/usd", T0, 61_030.1, CHAINLINK)


# --- RTDS with the official SDK -------------------------------------------------------------------


def test_rtds_with_the_official_sdk_unfiltered_filtered_and_chainlink(sim: ThreadedSim) -> None:
    from polymarket import AsyncPublicClient
    from polymarket._internal.environment import PRODUCTION_CONFIG, create_environment
    from polymarket.streams import CryptoPricesSpec

    # The SDK has no documented host option; its environment factory takes the RTDS URL (no patching).
    env = create_environment(name="local", config=replace(PRODUCTION_CONFIG, rtds_ws_url=_ws_url(sim, "/ws/live-data")))

    async def main() -> tuple[list[Any], list[Any], list[Any]]:
        client = AsyncPublicClient(env)
        try:
            everything = await client.subscribe(CryptoPricesSpec(topic="prices.crypto.binance"))
            eth_only = await client.subscribe(CryptoPricesSpec(topic="prices.crypto.binance", symbols=["ethusdt"]))
            oracle = await client.subscribe(CryptoPricesSpec(topic="prices.crypto.chainlink", symbols=["eth/usd"]))

            def subscribed() -> bool:
                return any(len(c.rtds) == 2 for c in sim.hub.rtds_conns)

            await asyncio.to_thread(_wait, subscribed)
            await asyncio.to_thread(_ticks, sim, BTC, ETH, ETH_ORACLE, BTC_ORACLE)

            async def take(handle: Any, n: int) -> list[Any]:
                return [await asyncio.wait_for(handle.__anext__(), 3) for _ in range(n)]

            got = (await take(everything, 2), await take(eth_only, 1), await take(oracle, 1))
            # Nothing more is on its way to the filtered handles (BTC and btc/usd were filtered out).
            for handle in (eth_only, oracle):
                with pytest.raises(TimeoutError):
                    await asyncio.wait_for(handle.__anext__(), 0.3)
            return got
        finally:
            await client.close()

    everything, eth_only, oracle = asyncio.run(main())
    assert [(e.topic, e.payload.symbol, e.payload.value) for e in everything] == [
        ("prices.crypto.binance", "btcusdt", Decimal("61035.86")),
        ("prices.crypto.binance", "ethusdt", Decimal("3012.5")),
    ]
    assert [(e.payload.symbol, e.payload.timestamp) for e in eth_only] == [("ethusdt", T0)]
    assert [(e.topic, e.payload.symbol, e.payload.value) for e in oracle] == [
        ("prices.crypto.chainlink", "eth/usd", Decimal("3012.4"))
    ]


# --- RTDS server-side filters, raw --------------------------------------------------------------


async def _frames(ws: aiohttp.ClientWebSocketResponse, timeout: float = 0.4) -> list[Any]:
    out = []
    while True:
        try:
            msg = await ws.receive(timeout=timeout)
        except TimeoutError:
            return out
        if msg.type != aiohttp.WSMsgType.TEXT:
            return out
        out.append(json.loads(msg.data))


def test_rtds_filters_snapshots_and_unsubscribe(sim: ThreadedSim) -> None:
    _ticks(sim, BTC, ETH, SOL, ETH_ORACLE, BTC_ORACLE)  # history for the subscribe snapshots
    later = replace(BTC, timestamp_ms=T0 + 1_000, value=61_040.0)

    async def main() -> dict[str, list[Any]]:
        async with aiohttp.ClientSession() as session, session.ws_connect(_ws_url(sim, "/ws/live-data")) as ws:
            subs = [
                {"topic": "crypto_prices", "type": "update", "filters": "btcusdt,ethusdt"},
                {"topic": "crypto_prices_chainlink", "type": "*", "filters": '{"symbol":"eth/usd"}'},
            ]
            await ws.send_str(json.dumps({"action": "subscribe", "subscriptions": subs}))
            snapshots = await _frames(ws)
            await asyncio.to_thread(_ticks, sim, later, replace(SOL, timestamp_ms=T0 + 1_000))
            updates = await _frames(ws)
            unsub = {"topic": "crypto_prices", "type": "update", "filters": "btcusdt"}
            await ws.send_str(json.dumps({"action": "unsubscribe", "subscriptions": [unsub]}))
            await asyncio.sleep(0.1)
            await asyncio.to_thread(_ticks, sim, replace(later, timestamp_ms=T0 + 2_000))
            after = await _frames(ws)
            await ws.send_str("PING")
            pong = await ws.receive(timeout=2)
            return {"snapshots": snapshots, "updates": updates, "after": after, "pong": [pong.data]}

    got = asyncio.run(main())
    fixture_snapshot = json.loads((FIXTURES / "rtds_crypto_prices_subscribe.json").read_text())
    fixture_update = json.loads((FIXTURES / "rtds_crypto_prices_update.json").read_text())
    snaps = got["snapshots"]
    assert [(s["topic"], s["payload"]["symbol"]) for s in snaps] == [
        ("crypto_prices", "btcusdt"),
        ("crypto_prices", "ethusdt"),
        ("crypto_prices_chainlink", "eth/usd"),
    ]
    assert all(s.keys() == fixture_snapshot.keys() and s["type"] == "subscribe" for s in snaps)
    assert snaps[0]["payload"]["data"] == [{"timestamp": T0, "value": 61_035.86}]
    [update] = got["updates"]  # solusdt was not asked for
    assert update.keys() == fixture_update.keys() and update["payload"].keys() == fixture_update["payload"].keys()
    assert update["payload"] == {
        "symbol": "btcusdt",
        "timestamp": T0 + 1_000,
        "value": 61_040.0,
        "full_accuracy_value": "61040.00000000",
    }
    assert got["after"] == [] and got["pong"] == ["PONG"]


# --- Binance-shaped streams -------------------------------------------------------------------------


def test_binance_raw_and_combined_payloads_and_methods(sim: ThreadedSim) -> None:
    hub = _binance(sim)

    async def main() -> dict[str, Any]:
        async with aiohttp.ClientSession() as session:
            raw = await session.ws_connect(_ws_url(sim, "/binance/ws/btcusdt@trade"), autoping=False)
            combined = await session.ws_connect(
                _ws_url(sim, "/binance/stream?streams=btcusdt@trade/btcusdt@bookTicker"), autoping=False
            )
            await asyncio.to_thread(_wait, lambda: len(hub.conns) == 2)
            await asyncio.to_thread(_ticks, sim, BTC, ETH_ORACLE, replace(BTC, timestamp_ms=T0 + 1_000, value=61_030.0))
            raw_frames, combined_frames = await _frames(raw), await _frames(combined)
            answers = []
            for request in (
                {"method": "SUBSCRIBE", "params": ["ethusdt@trade"], "id": 1},
                {"method": "LIST_SUBSCRIPTIONS", "id": 2},
                {"method": "UNSUBSCRIBE", "params": ["btcusdt@trade"], "id": 3},
                {"method": "LIST_SUBSCRIPTIONS", "id": 4},
                {"method": "GET_PROPERTY", "params": ["combined"], "id": 5},
                {"method": "SUBSCRIBE", "params": ["btcusdt@depth"], "id": 6},
                {"method": "FLY", "id": 7},
            ):
                await asyncio.sleep(0.21)  # Binance takes at most 5 messages a second
                await raw.send_str(json.dumps(request))
                answers.append(json.loads((await raw.receive(timeout=2)).data))
            await asyncio.sleep(0.21)
            await raw.send_str("{not json")
            answers.append(json.loads((await raw.receive(timeout=2)).data))
            await raw.ping(b"hi")
            pong = await raw.receive(timeout=2)
            await raw.close()
            await combined.close()
            return {"raw": raw_frames, "combined": combined_frames, "answers": answers, "pong": pong}

    got = asyncio.run(main())
    first, second = got["raw"]
    assert list(first) == ["e", "E", "s", "t", "p", "q", "T", "m", "M"]
    assert (first["e"], first["s"], first["t"], first["p"], first["T"]) == ("trade", "BTCUSDT", 1, "61035.86000000", T0)
    assert isinstance(first["E"], int) and first["q"] == "0.00100000" and first["M"] is True
    assert (second["t"], second["m"]) == (2, True)  # a fall: the seller took, the buyer was the maker
    streams = [f["stream"] for f in got["combined"]]
    assert streams == ["btcusdt@trade", "btcusdt@bookTicker", "btcusdt@trade", "btcusdt@bookTicker"]
    ticker = got["combined"][1]["data"]
    assert ticker == {
        "u": 1,
        "s": "BTCUSDT",
        "b": "61035.85000000",
        "B": "1.00000000",
        "a": "61035.87000000",
        "A": "1.00000000",
    }
    answers = got["answers"]
    assert answers[:5] == [
        {"result": None, "id": 1},
        {"result": ["btcusdt@trade", "ethusdt@trade"], "id": 2},
        {"result": None, "id": 3},
        {"result": ["ethusdt@trade"], "id": 4},
        {"result": False, "id": 5},
    ]
    assert answers[5]["code"] == 2 and answers[5]["id"] == 6
    assert answers[6]["code"] == 2 and "unknown variant" in answers[6]["msg"]
    assert answers[7]["code"] == 3
    assert got["pong"].type == aiohttp.WSMsgType.PONG and got["pong"].data == b"hi"
    _wait(lambda: not hub.conns)


def test_binance_rejects_unknown_streams_and_a_flood() -> None:
    with ThreadedSim(build_service(seed=6)) as sim:

        async def main() -> tuple[int, str]:
            async with aiohttp.ClientSession() as session:
                bad = await session.get(sim.url + "/binance/ws/btcusdt@nope")
                ws = await session.ws_connect(_ws_url(sim, "/binance/ws"))
                for i in range(10):
                    await ws.send_str(json.dumps({"method": "LIST_SUBSCRIPTIONS", "id": i}))
                while True:
                    msg = await ws.receive(timeout=3)
                    if msg.type != aiohttp.WSMsgType.TEXT:
                        return bad.status, str(ws.close_code)

        status, close_code = asyncio.run(main())
        assert status == 400 and close_code == "1008"
        _wait(lambda: not _binance(sim).conns)


def test_binance_connector_client_reads_the_streams(sim: ThreadedSim) -> None:
    from binance.websocket.spot.websocket_stream import SpotWebsocketStreamClient

    received: list[dict[str, Any]] = []
    lock = threading.Lock()

    def on_message(_: Any, message: str) -> None:
        with lock:
            received.append(json.loads(message))

    client = SpotWebsocketStreamClient(
        stream_url=sim.url.replace("http", "ws") + "/binance", on_message=on_message, is_combined=True
    )
    try:
        client.trade(symbol="btcusdt", id=11)
        client.book_ticker(symbol="btcusdt", id=12)
        hub = _binance(sim)
        _wait(lambda: any(len(c.streams) == 2 for c in hub.conns))
        _ticks(sim, BTC)
        _wait(lambda: len(received) >= 4)
    finally:
        client.stop()
    with lock:
        assert received[:2] == [{"result": None, "id": 11}, {"result": None, "id": 12}]
        data = {m["stream"]: m["data"] for m in received[2:]}
    assert data["btcusdt@trade"]["p"] == "61035.86000000" and data["btcusdt@bookTicker"]["a"] == "61035.87000000"
