"""The market client's continuity rules, frame by frame, against a scripted venue whose frames the test
writes: in-order updates keep a book trusted; reordered ones, a snapshot overtaken by updates, a hash or
best-price mismatch, a malformed frame or a silent socket make it untrusted (with the reason), and the
resubscription's fresh snapshot restores it. The hash check's "auto" mode enforces only once it matched."""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from aiohttp import WSMsgType, web

from polyoms.core.book import Book
from polyoms.core.enums import Side
from polyoms.core.errors import ConfigError
from polyoms.core.market_events import BookSnapshot
from polyoms.core.units import MICRO, Micro, fmt_micro, tick_size
from polyoms.polymarket.client.book_trust import UntrustReason
from polyoms.polymarket.client.ws_common import BackoffPolicy, StreamClosedError, StreamDisconnected
from polyoms.polymarket.client.ws_market import (
    BookTrusted,
    BookUntrusted,
    MarketStream,
    MarketStreamConfig,
    MarketStreamEvent,
)
from polyoms.polymarket.protocol.book_hash import mirror_hash
from polyoms.polymarket.protocol.messages import book_summary, decode_book

MARKET = "0x" + "ab" * 32
YES = "1001"
NO = "1002"
C = MICRO // 100  # one cent


class VenueBook:
    """The venue's book of one token, and the frames it would send about it."""

    def __init__(self, asset: str, bids: dict[Micro, Micro], asks: dict[Micro, Micro]) -> None:
        self.asset = asset
        self.bids = dict(bids)
        self.asks = dict(asks)
        self.last_trade = MICRO // 2

    def summary(self, ts: int) -> dict[str, Any]:
        snap = BookSnapshot(
            market=MARKET,
            asset_id=self.asset,
            bids=tuple(sorted(self.bids.items())),
            asks=tuple(sorted(self.asks.items(), reverse=True)),
            timestamp_ms=ts,
            min_order_size=5 * MICRO,
            tick_size=tick_size("0.01"),
            neg_risk=False,
            last_trade_price=self.last_trade,
        )
        return {"event_type": "book", **book_summary(snap)}

    def change(self, side: str, price: Micro, size: Micro, ts: int, *, hash_: str | None = None) -> dict[str, Any]:
        """Apply one level change and return its price_change frame (best prices and hash after it)."""
        levels = self.bids if side == "BUY" else self.asks
        if size:
            levels[price] = size
        else:
            levels.pop(price, None)
        entry = {
            "asset_id": self.asset,
            "price": fmt_micro(price),
            "size": fmt_micro(size),
            "side": side,
            "hash": self.summary(ts)["hash"] if hash_ is None else hash_,
            "best_bid": fmt_micro(max(self.bids)) if self.bids else "0",
            "best_ask": fmt_micro(min(self.asks)) if self.asks else "1",
        }
        return {"market": MARKET, "price_changes": [entry], "event_type": "price_change", "timestamp": str(ts)}


class ScriptedVenue:
    """A /ws/market endpoint: answers subscriptions with the current snapshots (as the venue does) and
    PING with PONG (unless told not to); every other frame is written by the test."""

    def __init__(self, books: dict[str, VenueBook]) -> None:
        self.books = books
        self.now = 1_777_000_000_000
        self.received: list[Any] = []
        self.sockets: list[web.WebSocketResponse] = []
        self.pong = True
        self.before_snapshot: list[Any] = []
        """Frames to send ahead of the next subscription's snapshot (a reordering venue)."""

    def tick(self) -> int:
        self.now += 10
        return self.now

    async def _handler(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self.sockets.append(ws)
        async for msg in ws:
            if msg.type != WSMsgType.TEXT:
                continue
            if msg.data == "PING":
                if self.pong:
                    await ws.send_str("PONG")
                continue
            payload = json.loads(msg.data)
            self.received.append(payload)
            if payload.get("type") == "market" or payload.get("operation") == "subscribe":
                assets = [a for a in payload["assets_ids"] if a in self.books]
                snapshots = [self.books[a].summary(self.tick()) for a in assets]
                for frame in self.before_snapshot:
                    await ws.send_str(json.dumps(frame))
                self.before_snapshot = []
                await ws.send_str(json.dumps(snapshots))
        return ws

    async def send(self, frame: Any) -> None:
        await self.sockets[-1].send_str(frame if isinstance(frame, str) else json.dumps(frame))

    def ops(self, operation: str) -> int:
        return sum(1 for p in self.received if p.get("operation") == operation)


@asynccontextmanager
async def scripted(**config: Any) -> AsyncIterator[tuple[ScriptedVenue, MarketStream, list[MarketStreamEvent]]]:
    venue = ScriptedVenue(
        {
            YES: VenueBook(YES, {45 * C: 100 * MICRO, 44 * C: 50 * MICRO}, {55 * C: 80 * MICRO, 56 * C: 60 * MICRO}),
            NO: VenueBook(NO, {45 * C: 80 * MICRO, 44 * C: 60 * MICRO}, {55 * C: 100 * MICRO, 56 * C: 50 * MICRO}),
        }
    )
    app = web.Application()
    app.router.add_get("/ws/market", venue._handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    settings: dict[str, Any] = {
        "url": f"ws://127.0.0.1:{port}/ws/market",
        "ping_interval_s": 0.2,
        "stale_after_s": 0.8,
        "tick_s": 0.05,
        "snapshot_timeout_s": 1.0,
        "rest_verify_interval_s": None,
        "asset_silence_s": None,
        "backoff": BackoffPolicy(base_s=0.05, max_s=0.2),
        **config,
    }
    events: list[MarketStreamEvent] = []
    stream = MarketStream(MarketStreamConfig(**settings), on_event=events.append)
    try:
        async with stream:
            await stream.subscribe([YES, NO])
            assert await stream.wait_trusted(timeout_s=3)
            yield venue, stream, events
    finally:
        await runner.cleanup()


def untrusted(events: list[MarketStreamEvent], asset: str) -> list[BookUntrusted]:
    return [e for e in events if isinstance(e, BookUntrusted) and e.asset_id == asset]


async def until(condition: Any, timeout_s: float = 3.0) -> None:
    async with asyncio.timeout(timeout_s):
        while not condition():
            await asyncio.sleep(0.01)


def test_in_order_updates_keep_the_book_trusted_and_exact() -> None:
    async def main() -> None:
        async with scripted() as (venue, stream, events):
            book = venue.books[YES]
            for i in range(20):
                await venue.send(book.change("BUY", (40 + i % 5) * C, (10 + i) * MICRO, venue.tick()))
            await venue.send(book.change("SELL", 55 * C, 0, venue.tick()))
            await until(lambda: stream.stats.events["price_change"] == 21)
            mirror = stream.book(YES)
            assert mirror is not None and stream.is_trusted(YES)
            assert dict(mirror.iter_levels(Side.BUY)) == book.bids
            assert mirror.best_ask() == 56 * C
            assert stream.stats.hash_matches == 21 and stream.stats.best_checks == 21
            assert untrusted(events, YES) == []

    asyncio.run(main())


def test_reordered_updates_are_detected_and_resynced_by_resubscribing() -> None:
    async def main() -> None:
        async with scripted() as (venue, stream, events):
            book = venue.books[YES]
            first = book.change("BUY", 46 * C, 10 * MICRO, venue.tick())
            second = book.change("BUY", 46 * C, 30 * MICRO, venue.tick())
            await venue.send(second)  # the venue's frames arrive swapped
            await venue.send(first)
            await until(lambda: bool(untrusted(events, YES)))
            assert untrusted(events, YES)[0].reason is UntrustReason.OUT_OF_ORDER
            assert untrusted(events, NO) == []
            # Without REST the client unsubscribes and subscribes again; the fresh snapshot restores trust.
            await until(lambda: stream.is_trusted(YES))
            assert venue.ops("unsubscribe") == 1 and venue.ops("subscribe") == 1
            trusted = [e for e in events if isinstance(e, BookTrusted) and e.asset_id == YES]
            assert trusted[-1].source == "stream"
            mirror = stream.book(YES)
            assert mirror is not None and mirror.size_at(Side.BUY, 46 * C) == 30 * MICRO

    asyncio.run(main())


def test_a_deep_level_gap_is_caught_by_the_hash_only() -> None:
    async def main() -> None:
        async with scripted() as (venue, stream, events):
            book = venue.books[YES]
            await venue.send(book.change("BUY", 44 * C, 50 * MICRO, venue.tick()))  # the hash reproduces
            book.change("BUY", 30 * C, 7 * MICRO, venue.tick())  # lost: never sent
            await venue.send(book.change("BUY", 44 * C, 51 * MICRO, venue.tick()))
            await until(lambda: bool(untrusted(events, YES)))
            [event] = untrusted(events, YES)
            assert event.reason is UntrustReason.HASH  # the best prices still agreed
            await until(lambda: stream.is_trusted(YES))
            mirror = stream.book(YES)
            assert mirror is not None and mirror.size_at(Side.BUY, 30 * C) == 7 * MICRO

    asyncio.run(main())


def test_a_best_price_gap_is_caught_with_the_hash_off() -> None:
    async def main() -> None:
        async with scripted(hash_check="off") as (venue, stream, events):
            book = venue.books[YES]
            book.change("BUY", 47 * C, 5 * MICRO, venue.tick())  # lost
            await venue.send(book.change("BUY", 44 * C, 51 * MICRO, venue.tick()))
            await until(lambda: bool(untrusted(events, YES)))
            assert untrusted(events, YES)[0].reason is UntrustReason.BEST_PRICE
            assert stream.stats.hash_matches == 0

    asyncio.run(main())


def test_auto_hash_check_is_enforced_only_once_it_matched() -> None:
    async def main() -> None:
        # A venue whose hashes never reproduce: tolerated in auto mode, then no longer computed.
        async with scripted(hash_auto_give_up=5) as (venue, stream, events):
            book = venue.books[YES]
            for i in range(8):
                await venue.send(book.change("BUY", 40 * C, (i + 1) * MICRO, venue.tick(), hash_="0" * 40))
            await until(lambda: stream.stats.events["price_change"] == 8)
            assert stream.is_trusted(YES) and untrusted(events, YES) == []
            assert stream.stats.hash_unconfirmed_misses == 5 and stream.stats.hash_matches == 0
        # Once one hash matched on the connection, a mismatch is a gap.
        async with scripted() as (venue, stream, events):
            book = venue.books[YES]
            await venue.send(book.change("BUY", 40 * C, MICRO, venue.tick()))
            await venue.send(book.change("BUY", 40 * C, 2 * MICRO, venue.tick(), hash_="0" * 40))
            await until(lambda: bool(untrusted(events, YES)))
            assert untrusted(events, YES)[0].reason is UntrustReason.HASH
        # "on": enforced from the first update.
        async with scripted(hash_check="on") as (venue, stream, events):
            book = venue.books[YES]
            await venue.send(book.change("BUY", 40 * C, MICRO, venue.tick(), hash_="0" * 40))
            await until(lambda: bool(untrusted(events, YES)))

    asyncio.run(main())


def test_a_snapshot_overtaken_by_updates_is_refused() -> None:
    async def main() -> None:
        async with scripted(hash_check="off") as (venue, stream, events):
            book = venue.books[YES]
            wrong = book.change("BUY", 44 * C, 51 * MICRO, venue.tick())
            wrong["price_changes"][0]["best_bid"] = "0.44"  # the venue says otherwise: a gap
            # The resubscription's snapshot (stamped now) will come after an update stamped later.
            venue.before_snapshot = [book.change("SELL", 57 * C, 9 * MICRO, venue.now + 1_000)]
            await venue.send(wrong)
            await until(lambda: stream.stats.stale_snapshots == 1)
            assert [e.reason for e in untrusted(events, YES)] == [UntrustReason.BEST_PRICE]
            await until(lambda: stream.is_trusted(YES))  # resubscribed again; this snapshot is in order
            assert venue.ops("subscribe") == 2
            mirror = stream.book(YES)
            assert mirror is not None and mirror.size_at(Side.SELL, 57 * C) == 9 * MICRO

    asyncio.run(main())


def test_malformed_frame_and_text_frames() -> None:
    async def main() -> None:
        async with scripted() as (venue, stream, events):
            await venue.send("INVALID MESSAGE")
            await venue.send({"event_type": "price_change", "market": MARKET, "price_changes": [{"price": "x"}]})
            await until(lambda: stream.stats.malformed_frames == 1)
            assert stream.stats.text_frames == 1
            assert {e.reason for e in untrusted(events, YES)} == {UntrustReason.MALFORMED}
            await until(lambda: stream.is_trusted(YES) and stream.is_trusted(NO))

    asyncio.run(main())


def test_a_silent_socket_is_declared_stale_and_replaced() -> None:
    async def main() -> None:
        async with scripted() as (venue, stream, events):
            venue.pong = False  # socket open, nothing sent, not even PONG
            silent_from = stream.clock.now_ms()
            await until(lambda: any(isinstance(e, StreamDisconnected) for e in events), timeout_s=3)
            lost = next(e for e in events if isinstance(e, StreamDisconnected))
            assert lost.reason.startswith("stale")
            # Within the watchdog's timeout (plus one housekeeping tick and a little slack).
            assert lost.at_ms - silent_from <= 800 + 50 + 150
            assert {e.reason for e in untrusted(events, YES)} == {UntrustReason.DISCONNECTED}
            venue.pong = True
            await until(lambda: stream.is_trusted(YES) and stream.is_trusted(NO))
            assert len(venue.sockets) == 2

    asyncio.run(main())


def test_events_iterator_closed_stream_and_config_errors() -> None:
    async def main() -> None:
        async with scripted() as (venue, stream, _):
            seen: list[MarketStreamEvent] = []

            async def consume() -> None:
                async for event in stream.events():
                    seen.append(event)

            consumer = asyncio.create_task(consume())
            await asyncio.sleep(0)
            book = venue.books[YES]
            await venue.send(book.change("BUY", 44 * C, 51 * MICRO, venue.tick()))
            book.change("BUY", 30 * C, 7 * MICRO, venue.tick())  # lost
            await venue.send(book.change("BUY", 44 * C, 52 * MICRO, venue.tick()))
            await until(lambda: any(isinstance(e, BookTrusted) for e in seen))
        await asyncio.wait_for(consumer, 1)  # the iterator ends when the stream closes
        kinds = [type(e).__name__ for e in seen if getattr(e, "asset_id", YES) == YES]
        assert kinds[:2] == ["BookUntrusted", "BookTrusted"] and kinds[-1] == "BookUntrusted"  # (closing)
        with pytest.raises(StreamClosedError):
            await stream.subscribe(["1"])

    asyncio.run(main())
    for bad in (
        {"url": "http://x/ws/market"},
        {"ping_interval_s": 10, "stale_after_s": 5},
        {"hash_check": "maybe"},
        {"resync": "pray"},
        {"rest_verify_interval_s": 0},
    ):
        with pytest.raises(ConfigError):
            MarketStreamConfig(**bad)  # type: ignore[arg-type]
    with pytest.raises(ConfigError):
        BackoffPolicy(base_s=2, max_s=1)


def test_mirror_hash_is_the_protocol_hash_of_the_served_book() -> None:
    rng = random.Random(3)
    for _ in range(50):
        bids = {rng.randrange(1, 50) * C: rng.randrange(1, 10**9) for _ in range(rng.randrange(0, 30))}
        asks = {rng.randrange(51, 100) * C: rng.randrange(1, 10**9) for _ in range(rng.randrange(0, 30))}
        served = VenueBook(YES, bids, asks)
        served.last_trade = rng.randrange(1, 100) * C
        summary = served.summary(1_777_000_000_123)
        book = Book(YES, MARKET, tick_size("0.01"))
        book.apply_snapshot(decode_book(json.dumps(summary)))
        cache: tuple[dict[int, tuple[int, str]], dict[int, tuple[int, str]]] = ({}, {})
        for _ in range(2):  # cold and warm cache
            assert mirror_hash(book, "1777000000123", served.last_trade, cache) == summary["hash"]
        book.set_level(Side.BUY, 1 * C, 5 * MICRO)
        assert mirror_hash(book, "1777000000123", served.last_trade, cache) != summary["hash"]
