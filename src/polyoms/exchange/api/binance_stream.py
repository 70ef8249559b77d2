"""A Binance-shaped public market stream of the life feed's exchange prices: /binance/ws and /binance/stream.

Binance's WebSocket Streams as its spot docs describe them, so a Binance client pointed at the local
exchange (`stream_url=ws://127.0.0.1:PORT/binance`) reads the same reference prices the markets here
are priced from:

* raw streams at `/binance/ws/<streamName>` (payload as is), combined ones at
  `/binance/stream?streams=<a>/<b>` (each event wrapped as `{"stream": name, "data": payload}`); both
  also without streams, subscribing later;
* `<symbol>@trade` (`e, E, s, t, p, q, T, m, M`) and `<symbol>@bookTicker` (`u, s, b, B, a, A`);
* the JSON methods SUBSCRIBE, UNSUBSCRIBE, LIST_SUBSCRIPTIONS, SET_PROPERTY and GET_PROPERTY
  (`combined`), each answered with its `id`; errors as `{"code", "msg", "id"}`;
* ping frames from the server, pongs to the client's pings (the WebSocket layer's).

Only ticks of the exchange-price feed (`source` "binance") are published; a resolution oracle's
reports go to RTDS `crypto_prices_chainlink` only. The feed models prices, not order flow: trade and
book quantities are fixed simulation parameters, and a trade's aggressor follows the price move.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from dataclasses import dataclass, field
from typing import Any, Final

import msgspec
from aiohttp import WSMsgType, web

from polyoms.core.clock import Clock
from polyoms.exchange.api.http import too_deep
from polyoms.exchange.api.ws import MAX_CLIENT_FRAME, Connection
from polyoms.exchange.life.feed import BINANCE, PriceTick

log = logging.getLogger("polyoms.sim.binance")
_encode = msgspec.json.Encoder().encode

TRADE: Final = "trade"
BOOK_TICKER: Final = "bookTicker"
STREAM_KINDS: Final = frozenset({TRADE, BOOK_TICKER})
# Binance's limits (spot WebSocket Streams docs): at most 1024 streams per connection and 5 incoming
# messages a second; a connection over the message rate is disconnected.
MAX_STREAMS_PER_CONNECTION: Final = 1024
MAX_INCOMING_PER_S: Final = 5
# The server pings every 20 s (docs); aiohttp closes a socket whose pong has not come back by then.
PING_INTERVAL_S: Final = 20.0
# Prices and quantities as decimal strings with 8 decimals, as Binance prints them ("61035.86000000").
DECIMALS: Final = 8
# UNCONFIRMED (simulation parameters, not the venue's): the feed has no volumes, so every trade is of
# this many base units and each side of the best book level holds this many.
TRADE_QUANTITY: Final = "0.00100000"
BOOK_QUANTITY: Final = "1.00000000"
_STREAM_NAME: Final = re.compile(r"[a-z0-9]{1,32}@[A-Za-z]{1,16}")
_ID_MAX: Final = 2**63 - 1


@dataclass(eq=False)
class BinanceConnection(Connection):
    streams: dict[str, None] = field(default_factory=dict)
    """Subscribed stream names, in subscription order (what LIST_SUBSCRIPTIONS answers)."""
    combined: bool = False
    recent_messages: list[float] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class BinanceError(Exception):
    code: int
    msg: str


def fmt(value: float) -> str:
    return f"{value:.{DECIMALS}f}"


def trade_payload(tick: PriceTick, trade_id: int, buyer_is_maker: bool, event_ms: int) -> dict[str, Any]:
    """`<symbol>@trade`: one trade at the tick's price."""
    return {
        "e": TRADE,
        "E": event_ms,
        "s": tick.symbol.upper(),
        "t": trade_id,
        "p": fmt(tick.value),
        "q": TRADE_QUANTITY,
        "T": tick.timestamp_ms,
        "m": buyer_is_maker,
        "M": True,  # documented as "Ignore"
    }


def book_ticker_payload(tick: PriceTick, update_id: int) -> dict[str, Any]:
    """`<symbol>@bookTicker`: the best bid and ask the tick carries."""
    return {
        "u": update_id,
        "s": tick.symbol.upper(),
        "b": fmt(tick.bid),
        "B": BOOK_QUANTITY,
        "a": fmt(tick.ask),
        "A": BOOK_QUANTITY,
    }


def parse_streams(text: str) -> list[str]:
    """Stream names of a path or `streams=` query ("btcusdt@trade/ethusdt@bookTicker"); BinanceError if one is bad."""
    names = [n for n in text.split("/") if n]
    for name in names:
        check_stream(name)
    if len(names) > MAX_STREAMS_PER_CONNECTION:
        raise BinanceError(2, "Invalid request: too many streams")
    return names


def check_stream(name: Any) -> str:
    if not isinstance(name, str) or not _STREAM_NAME.fullmatch(name) or name.split("@", 1)[1] not in STREAM_KINDS:
        shown = repr(name)[:80]
        raise BinanceError(2, f"Invalid request: unknown stream {shown}; served: <symbol>@trade, <symbol>@bookTicker")
    return name


def _request_id(payload: dict[str, Any]) -> int | str | None:
    rid = payload.get("id")
    if rid is None or (isinstance(rid, str) and len(rid) <= 36):
        return rid
    if isinstance(rid, int) and not isinstance(rid, bool) and 0 <= rid <= _ID_MAX:
        return rid
    raise BinanceError(2, "Invalid request: request ID must be an unsigned integer")


class BinanceHub:
    """Subscribers of the Binance-shaped streams and the per-symbol counters of what they are sent."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.conns: set[BinanceConnection] = set()
        self._trade_ids: dict[str, int] = {}
        self._update_ids: dict[str, int] = {}
        self._last_price: dict[str, float] = {}

    # --- ticks -------------------------------------------------------------------------------------

    def publish(self, tick: PriceTick) -> None:
        """An exchange-price tick: one trade, and a book ticker when it carries a bid and an ask."""
        if tick.source != BINANCE:
            return
        symbol = tick.symbol.lower()
        trade_id = self._trade_ids.get(symbol, 0) + 1
        self._trade_ids[symbol] = trade_id
        previous = self._last_price.get(symbol, tick.value)
        self._last_price[symbol] = tick.value
        # A fall is a seller hitting the bid: the buyer was the maker.
        events: list[tuple[str, dict[str, Any]]] = []
        now = self.clock.now_ms()
        events.append((f"{symbol}@{TRADE}", trade_payload(tick, trade_id, tick.value < previous, now)))
        if tick.bid > 0 and tick.ask > 0:
            update_id = self._update_ids.get(symbol, 0) + 1
            self._update_ids[symbol] = update_id
            events.append((f"{symbol}@{BOOK_TICKER}", book_ticker_payload(tick, update_id)))
        for stream, data in events:
            raw: str | None = None
            wrapped: str | None = None
            for conn in self.conns:
                if stream not in conn.streams:
                    continue
                if conn.combined:
                    wrapped = wrapped or _encode({"stream": stream, "data": data}).decode()
                    conn.send(wrapped)
                else:
                    raw = raw or _encode(data).decode()
                    conn.send(raw)

    # --- requests ----------------------------------------------------------------------------------

    def handle(self, conn: BinanceConnection, text: str) -> None:
        """One client frame: a JSON method, answered with its id (or an error)."""
        rid: int | str | None = None
        try:
            try:
                payload = None if too_deep(text) else msgspec.json.decode(text)
            except (msgspec.DecodeError, RecursionError):
                raise BinanceError(3, "Invalid JSON: expected a JSON object") from None
            if not isinstance(payload, dict):
                raise BinanceError(3, "Invalid JSON: expected a JSON object")
            rid = _request_id(payload)
            result = self._method(conn, payload)
        except BinanceError as exc:
            conn.send({"code": exc.code, "msg": exc.msg, "id": rid})
            return
        conn.send({"result": result, "id": rid})

    def _method(self, conn: BinanceConnection, payload: dict[str, Any]) -> Any:
        method = payload.get("method")
        params = payload.get("params", [])
        if not isinstance(params, list):
            raise BinanceError(2, "Invalid request: params must be an array")
        if method == "SUBSCRIBE":
            names = [check_stream(p) for p in params]
            if len(conn.streams.keys() | set(names)) > MAX_STREAMS_PER_CONNECTION:
                raise BinanceError(2, "Invalid request: too many streams")
            conn.streams.update(dict.fromkeys(names))
            return None
        if method == "UNSUBSCRIBE":
            for name in params:
                conn.streams.pop(check_stream(name), None)
            return None
        if method == "LIST_SUBSCRIPTIONS":
            return list(conn.streams)
        if method in ("SET_PROPERTY", "GET_PROPERTY"):
            if not params or params[0] != "combined":
                raise BinanceError(0, "Unknown property")
            if method == "GET_PROPERTY":
                return conn.combined
            if len(params) != 2 or not isinstance(params[1], bool):
                raise BinanceError(1, "Invalid value type: expected Boolean")
            conn.combined = params[1]
            return None
        shown = repr(method)[:40]
        raise BinanceError(
            2,
            f"Invalid request: unknown variant {shown}, expected one of SUBSCRIBE, UNSUBSCRIBE, "
            "LIST_SUBSCRIPTIONS, SET_PROPERTY, GET_PROPERTY",
        )

    @staticmethod
    def _too_fast(conn: BinanceConnection) -> bool:
        """More than MAX_INCOMING_PER_S messages within the last second (wall time: a network guard)."""
        now = time.monotonic()
        recent = [t for t in conn.recent_messages if now - t < 1.0]
        recent.append(now)
        conn.recent_messages = recent
        return len(recent) > MAX_INCOMING_PER_S

    # --- the sockets -------------------------------------------------------------------------------

    async def serve(self, request: web.Request, combined: bool, streams: str) -> web.StreamResponse:
        try:
            names = parse_streams(streams)
        except BinanceError as exc:
            return web.json_response({"code": exc.code, "msg": exc.msg}, status=400)
        ws = web.WebSocketResponse(autoping=True, heartbeat=PING_INTERVAL_S, max_msg_size=MAX_CLIENT_FRAME)
        await ws.prepare(request)
        conn = BinanceConnection(ws, request.transport, combined=combined)
        conn.streams.update(dict.fromkeys(names))
        conn.writer_task = writer = asyncio.create_task(conn.writer(_as_is))
        self.conns.add(conn)
        try:
            async for message in ws:
                if conn.dropped:
                    break
                if message.type != WSMsgType.TEXT:
                    continue
                if self._too_fast(conn):
                    conn.drop(f"more than {MAX_INCOMING_PER_S} incoming messages per second")
                    break
                self.handle(conn, message.data)
        finally:
            self.conns.discard(conn)
            if not conn.dropped:
                conn.queue.put_nowait(None)
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(writer, timeout=1)
            writer.cancel()
            await asyncio.wait([writer])
            if conn.closer_task is not None:
                await asyncio.wait([conn.closer_task])
            await conn.close()
            conn.streams.clear()
            conn.release()
        return ws


def _as_is(conn: Connection, frame: str) -> tuple[tuple[float, str | None], ...]:
    return ((0.0, frame),)


def install(app: web.Application, hub: BinanceHub) -> None:
    async def raw(request: web.Request) -> web.StreamResponse:
        return await hub.serve(request, False, request.match_info.get("streams", ""))

    async def combined(request: web.Request) -> web.StreamResponse:
        return await hub.serve(request, True, request.query.get("streams", ""))

    app.router.add_get("/binance/ws", raw)
    app.router.add_get("/binance/ws/{streams:.+}", raw)
    app.router.add_get("/binance/stream", combined)
