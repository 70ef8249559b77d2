"""The market and user WebSocket channels of `polyoms sim`, over real sockets."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import gc
import json
import os
import random
import socket
import struct
import time
import tracemalloc
import weakref
from collections.abc import Callable, Iterator
from typing import Any

import aiohttp
import httpx
import pytest

from polyoms.core.enums import OrderType, Side
from polyoms.core.errors import PolyomsError
from polyoms.core.units import MICRO, fmt_micro, to_micro
from polyoms.exchange.api.runner import ThreadedSim, build_service
from polyoms.exchange.api.ws import Connection
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


# --- hostile subscribers: bounded, dropped, released --------------------------------------------------


class RawWs:
    """A WebSocket client on a plain socket with a tiny receive buffer, which reads only when told."""

    def __init__(self, sim: ThreadedSim, channel: str) -> None:
        port = int(sim.url.rsplit(":", 1)[1])
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        self.sock.settimeout(10)
        self.sock.connect(("127.0.0.1", port))
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall(
            (
                f"GET /ws/{channel} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
            ).encode()
        )
        head = b""
        while not head.endswith(b"\r\n\r\n"):
            head += self.sock.recv(1)
        assert head.startswith(b"HTTP/1.1 101"), head

    def send_text(self, text: str) -> None:
        payload, mask = text.encode(), os.urandom(4)
        n = len(payload)
        length = bytes([0x80 | n]) if n < 126 else bytes([0x80 | 126]) + struct.pack("!H", n)
        if n >= 65536:
            length = bytes([0x80 | 127]) + struct.pack("!Q", n)
        self.sock.sendall(b"\x81" + length + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))

    def read_to_eof(self, timeout_s: float = 20) -> bool:
        """Read everything the server sent; True if it then closed the connection."""
        deadline = time.monotonic() + timeout_s
        self.sock.settimeout(1)
        while time.monotonic() < deadline:
            try:
                if not self.sock.recv(1 << 20):
                    return True
            except TimeoutError:
                continue
            except ConnectionError:
                return True
        return False

    def close(self) -> None:
        self.sock.close()


def _wait_for(condition: Callable[[], bool], timeout_s: float = 20) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.02)


def _empty(sim: ThreadedSim) -> bool:
    return all(v == 0 for v in sim.call(sim.hub.registry_sizes).values())


def _only_conn(sim: ThreadedSim) -> Connection:
    conns = sim.call(lambda: list(sim.hub.market_conns | sim.hub.user_conns))
    assert len(conns) == 1
    return conns[0]


def test_a_subscriber_that_never_reads_is_dropped_and_released(
    sim: ThreadedSim, caplog: pytest.LogCaptureFixture
) -> None:
    token = sim.service.exchange.markets()[0].yes_token_id
    raw = RawWs(sim, "market")
    try:
        raw.send_text(json.dumps({"type": "market", "assets_ids": [token]}))
        _wait_for(lambda: sim.call(lambda: len(sim.hub.market_conns)) == 1)
        conn = _only_conn(sim)
        ref = weakref.ref(conn)
        del conn
        big = {"event_type": "tick_size_change", "asset_id": token, "pad": "x" * 32_000}

        def burst() -> bool:
            for _ in range(50):
                sim.hub.broadcast_market(big, [token])
            c = ref()
            return c is None or bool(c.dropped)

        # Without a bound this would queue 40 x 50 x 32 kB; with one it stops at a few MB.
        assert any(sim.call(burst) for _ in range(40)), "a non-reading subscriber was never dropped"
        _wait_for(lambda: _empty(sim))
        gc.collect()
        assert ref() is None, "the dropped connection (and its frames) is still referenced"
        assert "slow consumer" in caplog.text
        assert raw.read_to_eof(), "the server kept the socket open"
    finally:
        raw.close()

    async def healthy() -> list[Any]:  # the exchange serves the next subscriber as before
        async with aiohttp.ClientSession() as session, session.ws_connect(_ws_url(sim, "market")) as ws:
            await ws.send_str(json.dumps({"type": "market", "assets_ids": [token]}))
            await ws.send_str("PING")
            return await _drain(ws)

    got = asyncio.run(healthy())
    assert got[0]["event_type"] == "book" and "PONG" in got


def test_subscribe_flips_from_a_client_that_does_not_read_are_bounded(sim: ThreadedSim) -> None:
    tokens = [t for m in sim.service.exchange.markets() for t in m.token_ids]
    raw = RawWs(sim, "market")
    try:
        raw.send_text(json.dumps({"type": "market", "assets_ids": []}))
        _wait_for(lambda: sim.call(lambda: len(sim.hub.market_conns)) == 1)
        ref = weakref.ref(_only_conn(sim))
        sub = json.dumps({"operation": "subscribe", "assets_ids": tokens})
        unsub = json.dumps({"operation": "unsubscribe", "assets_ids": tokens})
        flips = 0
        with contextlib.suppress(ConnectionError, TimeoutError):
            for flips in range(1, 20_001):  # noqa: B007 (the count is reported)
                raw.send_text(sub)
                raw.send_text(unsub)
        _wait_for(lambda: _empty(sim))
        gc.collect()
        assert ref() is None, f"still referenced after {flips} flips"
    finally:
        raw.close()


def test_subscribe_flips_from_a_reading_client_keep_memory_flat(sim: ThreadedSim) -> None:
    token = sim.service.exchange.markets()[0].yes_token_id

    async def flips(ws: aiohttp.ClientWebSocketResponse, n: int) -> None:
        for _ in range(n):
            await ws.send_str(json.dumps({"operation": "subscribe", "assets_ids": [token]}))
            msg = await ws.receive(timeout=10)
            assert json.loads(msg.data)[0]["event_type"] == "book"
            await ws.send_str(json.dumps({"operation": "unsubscribe", "assets_ids": [token]}))

    async def main() -> tuple[int, int, dict[str, int]]:
        async with aiohttp.ClientSession() as session, session.ws_connect(_ws_url(sim, "market")) as ws:
            await ws.send_str(json.dumps({"type": "market", "assets_ids": []}))
            await flips(ws, 200)  # warm-up: caches, interned strings
            gc.collect()
            first = tracemalloc.get_traced_memory()[0]
            await flips(ws, 1_000)
            await ws.send_str("PING")
            assert (await ws.receive(timeout=10)).data == "PONG"  # every unsubscribe was handled
            sizes = await asyncio.to_thread(sim.call, sim.hub.registry_sizes)
            gc.collect()
            return first, tracemalloc.get_traced_memory()[0], sizes

    tracemalloc.start()
    try:
        first, last, sizes = asyncio.run(main())
    finally:
        tracemalloc.stop()
    assert sizes == {"market_conns": 1, "user_conns": 0, "rtds_conns": 0, "shown_books": 0, "fault_states": 1}
    assert last - first < 1_000_000, f"grew {last - first} bytes over 1,000 flips"
    _wait_for(lambda: _empty(sim))


def test_user_channel_auth_with_hostile_values_is_invalid_auth(sim: ThreadedSim) -> None:
    from tests.exchange_api.conftest import KEY_A
    from tests.exchange_api.test_bad_requests import RawClient

    creds = RawClient(sim.url, KEY_A).creds
    good = {"apiKey": creds.api_key, "secret": creds.secret, "passphrase": creds.passphrase}
    hostile = [
        {**good, "secret": "ä" * 44},
        {**good, "passphrase": "パス"},
        {**good, "secret": 5},
        {**good, "apiKey": ["x"]},
        "not an object",
    ]

    async def main() -> list[tuple[Any, ...]]:
        out = []
        async with aiohttp.ClientSession() as session:
            for auth in hostile:
                async with session.ws_connect(_ws_url(sim, "user")) as ws:
                    await ws.send_str(json.dumps({"type": "user", "auth": auth}))
                    first = await ws.receive(timeout=5)
                    closed = await ws.receive(timeout=5)
                    out.append((first.data, closed.type))
        return out

    for data, closed in asyncio.run(main()):
        assert data == "INVALID AUTH" and closed in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
    _wait_for(lambda: _empty(sim))


@pytest.mark.usefixtures("high_recursion_limit")
def test_malformed_frames_are_answered_and_the_socket_kept(sim: ThreadedSim) -> None:
    token = sim.service.exchange.markets()[0].yes_token_id

    async def main() -> list[Any]:
        async with aiohttp.ClientSession() as session, session.ws_connect(_ws_url(sim, "market")) as ws:
            await ws.send_str(json.dumps({"type": "market", "assets_ids": [token]}))
            assert (await _drain(ws))[0]["event_type"] == "book"
            answers = []
            for frame in ("[" * 100_000 + "]" * 100_000, '{"operation": "subscribe", "assets_ids": 5}', "[1]"):
                await ws.send_str(frame)
                answers.append((await ws.receive(timeout=5)).data)
            await ws.send_str("PING")
            answers.append((await ws.receive(timeout=5)).data)
            return answers

    assert asyncio.run(main()) == ["INVALID MESSAGE"] * 3 + ["PONG"]
    _wait_for(lambda: _empty(sim))
