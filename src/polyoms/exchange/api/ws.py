"""The market and user WebSocket channels (doc §6): /ws/market and /ws/user.

The exchange reports what happened through its listener; the hub collects those events while an
operation runs and publishes once it is over (one `loop.call_soon` per batch). Book changes are
published as the difference between what each token's subscribers were last shown and the book
now, so the stream is exact by construction: snapshot + every price_change == GET /book.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Final

import msgspec
from aiohttp import WSCloseCode, WSMsgType, web

from polyoms.core.enums import Side
from polyoms.exchange.api import render, ws_render
from polyoms.exchange.api.http import too_deep
from polyoms.exchange.api.service import SimService
from polyoms.exchange.events import (
    Event,
    ExchangeOrderEvent,
    ExchangeTradeEvent,
    MarketResolvedEvent,
    NewMarketEvent,
    TickSizeChangeEvent,
)
from polyoms.exchange.life.feed import (
    BINANCE,
    CHAINLINK,
    RTDS_CHAINLINK_TOPIC,
    RTDS_TOPIC,
    PriceTick,
    rtds_topic,
    to_rtds_message,
    to_rtds_snapshot,
)

log = logging.getLogger("polyoms.sim.ws")
_encode = msgspec.json.Encoder().encode

Levels = dict[int, int]


# A subscriber that does not read is dropped, as the venue drops slow consumers, rather than
# buffering for it without end: at most this many frames (or characters) wait in its queue.
MAX_QUEUED_FRAMES: Final = 2_000
MAX_QUEUED_CHARS: Final = 8 * 1024 * 1024
SLOW_CONSUMER: Final = "slow consumer: {frames} frames unread, connection dropped"
# How long a close handshake may take before the socket is aborted (a peer that does not read
# never answers it, and a graceful transport close would wait forever to flush).
CLOSE_TIMEOUT_S: Final = 2.0
# The largest client frame (subscriptions are small).
MAX_CLIENT_FRAME: Final = 1024 * 1024
# RTDS price topics and the feed source each carries (doc §6.7; the official SDK's wire topics).
RTDS_PRICE_TOPICS: Final[dict[str, str]] = {RTDS_TOPIC: BINANCE, RTDS_CHAINLINK_TOPIC: CHAINLINK}
# Recent samples kept per (source, symbol) for an RTDS subscribe snapshot (the recorded one has 3+).
RTDS_HISTORY: Final = 60
# UNCONFIRMED: what the venue snapshots for a price subscription without filters (all symbols) is not
# documented; here it is one `subscribe` snapshot per symbol seen so far, as for a filtered one.
RTDS_SNAPSHOT_UNFILTERED: Final = True
# The most symbols one RTDS subscription may name (a bound, not the venue's).
MAX_RTDS_SYMBOLS: Final = 256


@dataclass(eq=False)
class Connection:
    """One subscriber; frames go through its own bounded queue so a slow socket never blocks the hub."""

    ws: web.WebSocketResponse
    transport: asyncio.Transport | None = None
    queue: asyncio.Queue[str | None] = field(default_factory=asyncio.Queue)
    queued_chars: int = 0
    assets: set[str] = field(default_factory=set)
    markets: set[str] = field(default_factory=set)
    custom: bool = False
    api_key: str = ""
    # RTDS: price topic -> the symbols wanted, None for all of them.
    rtds: dict[str, frozenset[str] | None] = field(default_factory=dict)
    # Why the server dropped this subscriber ("" while it is served).
    dropped: str = ""
    writer_task: asyncio.Task[None] | None = None
    closer_task: asyncio.Task[None] | None = None

    def send(self, message: Any) -> None:
        if self.dropped:
            return
        frame = message if isinstance(message, str) else _encode(message).decode()
        if self.queue.qsize() >= MAX_QUEUED_FRAMES or self.queued_chars + len(frame) > MAX_QUEUED_CHARS:
            self.drop(SLOW_CONSUMER.format(frames=self.queue.qsize()))
            return
        self.queued_chars += len(frame)
        self.queue.put_nowait(frame)

    def drop(self, reason: str) -> None:
        """Stop serving: forget the queued frames now, close with `reason`, abort if the peer does not answer."""
        if self.dropped:
            return
        self.dropped = reason
        self._discard_queue()
        if self.writer_task is not None:
            self.writer_task.cancel()
        log.warning("websocket subscriber dropped: %s", reason)
        with contextlib.suppress(RuntimeError):  # no loop (in-process use): nothing is being served
            self.closer_task = asyncio.get_running_loop().create_task(self.close(WSCloseCode.POLICY_VIOLATION, reason))

    def _discard_queue(self) -> None:
        while not self.queue.empty():
            self.queue.get_nowait()
        self.queued_chars = 0

    async def close(self, code: int = WSCloseCode.OK, reason: str = "") -> None:
        """Close handshake within CLOSE_TIMEOUT_S, else abort the transport: the socket always goes."""
        clean = False
        try:
            await asyncio.wait_for(self.ws.close(code=code, message=reason.encode()[:120]), CLOSE_TIMEOUT_S)
            clean = True
        except (TimeoutError, ConnectionError, RuntimeError):
            pass
        finally:
            # A graceful transport close waits to flush what a non-reading peer will never take.
            t = self.transport
            if t is not None and (not clean or t.get_write_buffer_size()):
                t.abort()

    def release(self) -> None:
        """Drop every frame and task reference (after the hub has forgotten the connection)."""
        self._discard_queue()
        self.assets.clear()
        self.markets.clear()
        self.rtds.clear()
        self.writer_task = self.closer_task = None

    async def writer(self, transform: Callable[[Connection, str], Iterable[tuple[float, str | None]]]) -> None:
        """Send queued frames; `transform` is the fault layer (delays, drops, duplicates...)."""
        while True:
            frame = await self.queue.get()
            if frame is None:
                return
            self.queued_chars -= len(frame)
            for delay_s, out in transform(self, frame):
                if delay_s > 0:
                    await asyncio.sleep(delay_s)
                if out is None:  # the fault layer asks for a disconnect
                    await self.close()
                    return
                if self.ws.closed:
                    return
                await self.ws.send_str(out)


def _same(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode("utf-8", "surrogatepass"), expected.encode("utf-8"))


def _strings(value: Any) -> list[str] | None:
    """A JSON array of ids as strings (numbers accepted, as ids are often sent as numbers), else None."""
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str | int) and not isinstance(v, bool) for v in value):
        return None
    return [str(v) for v in value]


def rtds_filter(filters: Any) -> frozenset[str] | None:
    """The symbols an RTDS subscription's `filters` names, None for all.

    `crypto_prices` takes a comma list ("btcusdt,ethusdt"); `crypto_prices_chainlink` a JSON string
    ('{"symbol":"eth/usd"}'); no filters, or empty ones, mean every symbol (what the official SDK sends).
    """
    if filters is None or filters == "":
        return None
    names: list[str] = []
    if isinstance(filters, str) and filters.lstrip().startswith("{"):
        try:
            decoded = None if too_deep(filters) else msgspec.json.decode(filters)
        except (msgspec.DecodeError, RecursionError):
            decoded = None
        filters = decoded.get("symbol", "") if isinstance(decoded, dict) else ""
    if isinstance(filters, str):
        names = filters.split(",")
    elif isinstance(filters, list):
        names = [f for f in filters if isinstance(f, str)]
    symbols = frozenset(n.strip().lower() for n in names[:MAX_RTDS_SYMBOLS] if n.strip())
    return symbols or None


def _no_faults(conn: Connection, frame: str) -> Iterable[tuple[float, str | None]]:
    return ((0.0, frame),)


class WsHub:
    def __init__(self, service: SimService) -> None:
        self.service = service
        self.market_conns: set[Connection] = set()
        self.user_conns: set[Connection] = set()
        self.rtds_conns: set[Connection] = set()
        self._ticks: dict[tuple[str, str], deque[PriceTick]] = {}
        self.transform: Callable[[Connection, str], Iterable[tuple[float, str | None]]] = _no_faults
        self._pending: list[Event] = []
        self._scheduled = False
        self._shown: dict[str, tuple[Levels, Levels]] = {}
        service.add_listener(self._on_event)

    # --- events from the exchange ------------------------------------------------------------------

    def _on_event(self, event: Event) -> None:
        if not self.market_conns and not self.user_conns:
            return
        self._pending.append(event)
        if not self._scheduled:
            self._scheduled = True
            try:
                asyncio.get_running_loop().call_soon(self.flush)
            except RuntimeError:  # no loop (in-process use): publish at once
                self.flush()

    def flush(self) -> None:
        self._scheduled = False
        events, self._pending = self._pending, []
        if not events:
            return
        now = self.service.clock.now_ms()
        touched: dict[str, None] = {}
        traded: dict[str, None] = {}
        retick: dict[str, TickSizeChangeEvent] = {}
        for ev in events:
            if isinstance(ev, ExchangeOrderEvent):
                touched[ev.order.market] = None
                self._user_order(ev, now)
            elif isinstance(ev, ExchangeTradeEvent):
                touched[ev.trade.market] = None
                if ev.status == "MATCHED":
                    traded[ev.trade.market] = None
                self._trade(ev, now)
            elif isinstance(ev, TickSizeChangeEvent):
                retick[ev.market] = ev
            elif isinstance(ev, MarketResolvedEvent):
                touched[ev.market] = None
                self._resolved(ev, now)
            elif isinstance(ev, NewMarketEvent):
                message = ws_render.new_market(ev.spec, now)
                for conn in self.market_conns:
                    if conn.custom:
                        conn.send(message)
        for market in touched:
            if market not in retick:
                self._publish_book_changes(market, now)
                if market in traded:
                    self._publish_books(market, now)
        for ev in retick.values():
            self._publish_tick_change(ev, now)

    def _user_order(self, ev: ExchangeOrderEvent, now: int) -> None:
        o = ev.order
        message = None
        for conn in self.user_conns:
            if conn.api_key == o.owner and (not conn.markets or o.market.lower() in conn.markets):
                if message is None:
                    message = ws_render.order_event(ev.kind, o, ev.status, ev.size_matched, ev.trade_ids, now)
                conn.send(message)

    def _trade(self, ev: ExchangeTradeEvent, now: int) -> None:
        # Render from the event's snapshot: the trade record may have moved on since.
        t, status, tx = ev.trade, ev.status, ev.transaction_hash
        if status == "MATCHED":
            ltp = ws_render.last_trade_price(t, now, tx)
            for conn in self.market_conns:
                if t.asset_id in conn.assets:
                    conn.send(ltp)
        makers = {m.owner for m in t.maker_orders}
        for conn in self.user_conns:
            if conn.markets and t.market.lower() not in conn.markets:
                continue
            if conn.api_key == t.owner:
                conn.send(ws_render.trade_event(t, status, tx, "TAKER", conn.api_key, now))
            elif conn.api_key in makers:
                conn.send(ws_render.trade_event(t, status, tx, "MAKER", conn.api_key, now))

    def _resolved(self, ev: MarketResolvedEvent, now: int) -> None:
        message = ws_render.market_resolved(ev.spec, ev.winning_token_id, ev.winning_outcome, now)
        for conn in self.market_conns:
            if conn.custom and conn.assets & set(ev.spec.token_ids):
                conn.send(message)

    def _publish_tick_change(self, ev: TickSizeChangeEvent, now: int) -> None:
        """tick_size_change for both tokens, then fresh snapshots: clients drop the old-grid book."""
        for token in ev.token_ids:
            if token not in self._shown:
                continue
            self._shown[token] = self._levels(token)
            change = ws_render.tick_size_change(ev.market, token, ev.old_tick.text, ev.new_tick.text, now)
            snapshot = self._snapshot(token, now)
            for conn in self.market_conns:
                if token in conn.assets:
                    conn.send(change)
                    conn.send(snapshot)

    def _publish_books(self, market: str, now: int) -> None:
        """A `book` snapshot of both tokens after a trade changed the market's book (doc §6.2: "emitted
        when you first subscribe and when a trade changes the book"), after its price_change messages."""
        for token in self.service.exchange.market(market).token_ids:
            if token not in self._shown:
                continue
            snapshot = self._snapshot(token, now)
            for conn in self.market_conns:
                if token in conn.assets:
                    conn.send(snapshot)

    def _levels(self, token_id: str) -> tuple[Levels, Levels]:
        view = self.service.exchange.book(token_id)
        return dict(view.bids), dict(view.asks)

    def _publish_book_changes(self, market: str, now: int) -> None:
        spec = self.service.exchange.market(market)
        changes: list[tuple[str, int, int, Side, str, int | None, int | None]] = []
        for token in spec.token_ids:
            shown = self._shown.get(token)
            if shown is None:
                continue
            bids, asks = self._levels(token)
            diff: list[tuple[int, int, Side]] = []
            for side, old, new in ((Side.BUY, shown[0], bids), (Side.SELL, shown[1], asks)):
                for price in old.keys() | new.keys():
                    size = new.get(price, 0)
                    if old.get(price, 0) != size:
                        diff.append((price, size, side))
            if not diff:
                continue
            self._shown[token] = (bids, asks)
            best_bid, best_ask = (max(bids) if bids else None), (min(asks) if asks else None)
            book_hash = self._snapshot(token, now)["hash"]
            diff.sort(key=lambda c: (c[2], c[0]))
            changes.extend((token, p, s, side, book_hash, best_bid, best_ask) for p, s, side in diff)
            if any(c.custom for c in self.market_conns if token in c.assets):
                bba = ws_render.best_bid_ask(spec.condition_id, token, best_bid, best_ask, now)
                for conn in self.market_conns:
                    if conn.custom and token in conn.assets:
                        conn.send(bba)
        if not changes:
            return
        for conn in self.market_conns:
            mine = [c for c in changes if c[0] in conn.assets]
            if mine:
                conn.send(ws_render.price_change(spec.condition_id, mine, now))

    def _snapshot(self, token: str, now: int) -> dict[str, Any]:
        exchange = self.service.exchange
        last = exchange.last_trade(token)
        body = render.book(exchange.book(token), exchange.market_of_token(token), now, last[0] if last else None)
        return {"event_type": "book", **body}

    # --- real-time data service (crypto prices) -------------------------------------------------------

    def publish_price(self, tick: PriceTick) -> None:
        """A feed sample (exchange price or oracle report), to RTDS subscribers of its topic and symbol (§6.7)."""
        key = (tick.source, tick.symbol)
        recent = self._ticks.get(key)
        if recent is None:
            recent = self._ticks[key] = deque(maxlen=RTDS_HISTORY)
        recent.append(tick)
        topic = rtds_topic(tick.source)
        message: dict[str, Any] | None = None
        for conn in self.rtds_conns:
            wanted = conn.rtds.get(topic, frozenset())
            if wanted is None or tick.symbol in wanted:
                message = message or to_rtds_message(tick, self.service.clock.now_ms())
                conn.send(message)

    def _rtds(self, conn: Connection, payload: dict[str, Any]) -> bool:
        action = str(payload.get("action", "")).lower()
        subs = payload.get("subscriptions")
        if action not in ("subscribe", "unsubscribe") or not isinstance(subs, list):
            conn.send("INVALID MESSAGE")
            return False
        for sub in subs:
            if not isinstance(sub, dict):
                continue
            topic = sub.get("topic")
            source = RTDS_PRICE_TOPICS.get(topic) if isinstance(topic, str) else None
            if source is None or topic is None:
                continue  # topics this exchange does not publish (comments, activity...) stay silent
            symbols = rtds_filter(sub.get("filters"))
            if action == "unsubscribe":
                self._rtds_unsubscribe(conn, topic, symbols)
            else:
                self._rtds_subscribe(conn, topic, source, symbols)
        if conn.rtds:
            self.rtds_conns.add(conn)
        else:
            self.rtds_conns.discard(conn)
        return True

    def _rtds_subscribe(self, conn: Connection, topic: str, source: str, symbols: frozenset[str] | None) -> None:
        had = conn.rtds.get(topic, frozenset())
        now = self.service.clock.now_ms()
        if symbols is None:
            known = sorted(sym for src, sym in self._ticks if src == source) if RTDS_SNAPSHOT_UNFILTERED else []
            fresh = [] if had is None else [sym for sym in known if sym not in had]
            conn.rtds[topic] = None
        else:
            fresh = [] if had is None else sorted(symbols - had)
            conn.rtds[topic] = None if had is None else had | symbols
        for symbol in fresh:
            conn.send(to_rtds_snapshot(self._ticks.get((source, symbol), []), now, symbol, source))

    @staticmethod
    def _rtds_unsubscribe(conn: Connection, topic: str, symbols: frozenset[str] | None) -> None:
        had = conn.rtds.get(topic, frozenset())
        if symbols is None or had is None:
            # Dropping all of a topic, or some symbols of an unfiltered subscription: the topic goes.
            conn.rtds.pop(topic, None)
            return
        left = had - symbols
        if left:
            conn.rtds[topic] = left
        else:
            conn.rtds.pop(topic, None)

    # --- subscriptions --------------------------------------------------------------------------

    def subscribe_assets(self, conn: Connection, assets: Iterable[str], initial_dump: bool = True) -> None:
        self.flush()  # everyone already subscribed must see pending changes before state is re-based
        now = self.service.clock.now_ms()
        books = []
        for token in assets:
            try:
                self.service.exchange.market_of_token(token)
            except Exception:
                continue  # unknown ids are ignored, as the venue does
            if token in conn.assets:
                continue
            conn.assets.add(token)
            # After the flush above, what existing subscribers were shown is the current book.
            self._shown.setdefault(token, self._levels(token))
            books.append(self._snapshot(token, now))
        if books and initial_dump:
            conn.send(books)

    def unsubscribe_assets(self, conn: Connection, assets: Iterable[str]) -> None:
        for token in assets:
            conn.assets.discard(token)
            if not any(token in c.assets for c in self.market_conns):
                self._shown.pop(token, None)

    def _authenticate(self, auth: Any) -> str | None:
        """The API key of valid user-channel credentials, else None (answered `INVALID AUTH`)."""
        if not isinstance(auth, dict):
            return None
        api_key, secret, passphrase = auth.get("apiKey"), auth.get("secret"), auth.get("passphrase")
        if not isinstance(api_key, str) or not isinstance(secret, str) or not isinstance(passphrase, str):
            return None
        entry = self.service.keys.lookup().get(api_key)
        if entry is None:
            return None
        creds = entry[1]
        # Bytes, not str: compare_digest refuses non-ASCII strings (TypeError), and any text is valid input.
        if _same(secret, creds.secret) & _same(passphrase, creds.passphrase):
            return creds.api_key
        return None

    # --- the sockets ----------------------------------------------------------------------------

    async def serve(self, request: web.Request, channel: str) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=True, max_msg_size=MAX_CLIENT_FRAME)
        await ws.prepare(request)
        conn = Connection(ws, request.transport)
        conn.writer_task = writer = asyncio.create_task(conn.writer(self.transform))
        subscribed = False
        try:
            async for msg in ws:
                if conn.dropped:
                    break
                if msg.type != WSMsgType.TEXT:
                    continue
                text = msg.data.strip()
                if text == "PING":
                    conn.send("PONG")
                    continue
                try:
                    payload = None if too_deep(text) else msgspec.json.decode(text)
                except (msgspec.DecodeError, RecursionError):
                    payload = None
                if not isinstance(payload, dict):
                    conn.send("INVALID MESSAGE")
                    continue
                if channel == "rtds":
                    if not self._rtds(conn, payload):
                        break
                elif not subscribed:
                    subscribed = self._first(conn, channel, payload)
                    if not subscribed:
                        break
                elif not self._update(conn, channel, payload):
                    conn.send("INVALID MESSAGE")
        finally:
            self._forget(conn)
            if conn.dropped:
                writer.cancel()
            else:
                # Let the last frames (INVALID AUTH...) go out; wait_for cancels a stuck writer.
                conn.queue.put_nowait(None)
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(writer, timeout=1)
            # asyncio.wait: the tasks' own cancellation is not ours; ours still propagates.
            await asyncio.wait([writer])
            if conn.closer_task is not None:
                await asyncio.wait([conn.closer_task])
            await conn.close()
            # Last: the writer's final frames went through the fault layer, which keeps state per socket.
            self.service.faults.forget(conn)
            conn.release()
        return ws

    def _forget(self, conn: Connection) -> None:
        """Remove a connection from every subscription: nothing new is queued for it."""
        self.market_conns.discard(conn)
        self.user_conns.discard(conn)
        self.rtds_conns.discard(conn)
        self.unsubscribe_assets(conn, list(conn.assets))

    def registry_sizes(self) -> dict[str, int]:
        """How much the hub holds per kind (connections, shown books): for leak checks and metrics."""
        return {
            "market_conns": len(self.market_conns),
            "user_conns": len(self.user_conns),
            "rtds_conns": len(self.rtds_conns),
            "shown_books": len(self._shown),
            "fault_states": self.service.faults.tracked(),
        }

    def _first(self, conn: Connection, channel: str, payload: dict[str, Any]) -> bool:
        kind = str(payload.get("type", channel)).lower()
        if kind != channel:
            conn.send("INVALID MESSAGE")
            return False
        conn.custom = bool(payload.get("custom_feature_enabled", False))
        if channel == "market":
            assets = _strings(payload.get("assets_ids"))
            if assets is None:
                conn.send("INVALID MESSAGE")
                return False
            self.market_conns.add(conn)
            self.subscribe_assets(conn, assets, bool(payload.get("initial_dump", True)))
            return True
        api_key = self._authenticate(payload.get("auth"))
        if api_key is None:
            conn.send("INVALID AUTH")
            return False
        markets = _strings(payload.get("markets"))
        if markets is None:
            conn.send("INVALID MESSAGE")
            return False
        conn.api_key = api_key
        conn.markets = {m.lower() for m in markets}
        self.flush()
        self.user_conns.add(conn)
        return True

    def _update(self, conn: Connection, channel: str, payload: dict[str, Any]) -> bool:
        """A dynamic (un)subscribe on an open socket; False if it is malformed."""
        op = str(payload.get("operation", "")).lower()
        ids = _strings(payload.get("assets_ids" if channel == "market" else "markets"))
        if ids is None:
            return False
        if channel == "market":
            if "custom_feature_enabled" in payload:
                conn.custom = bool(payload["custom_feature_enabled"])
            if op == "subscribe":
                self.subscribe_assets(conn, ids, bool(payload.get("initial_dump", True)))
            elif op == "unsubscribe":
                self.unsubscribe_assets(conn, ids)
            return True
        markets = {m.lower() for m in ids}
        if op == "subscribe":
            conn.markets |= markets
        elif op == "unsubscribe":
            conn.markets -= markets
        return True

    def broadcast_market(self, message: dict[str, Any], assets: Iterable[str] | None = None) -> None:
        """Send a market-channel event (tick_size_change, market_resolved...) to subscribers of `assets`."""
        wanted = set(assets) if assets is not None else None
        for conn in self.market_conns:
            if wanted is None or conn.assets & wanted:
                conn.send(message)


def install(app: web.Application, hub: WsHub) -> None:
    async def market(request: web.Request) -> web.WebSocketResponse:
        return await hub.serve(request, "market")

    async def user(request: web.Request) -> web.WebSocketResponse:
        return await hub.serve(request, "user")

    async def rtds(request: web.Request) -> web.WebSocketResponse:
        return await hub.serve(request, "rtds")

    app.router.add_get("/ws/market", market)
    app.router.add_get("/ws/user", user)
    # The venue's RTDS lives on its own host; here it shares the simulator's port.
    app.router.add_get("/ws/live-data", rtds)
