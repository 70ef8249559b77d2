"""What the market and user WebSocket clients share: keepalive, watchdog, reconnect with backoff, events.

A stream owns one or more sockets (`_Socket`). Each socket has a task that connects, sends the
channel's subscription frames, reads until the socket ends, then waits a backoff delay (exponential,
full jitter, seeded RNG) and connects again. One housekeeping task per stream, on the injected clock
and sleep, sends the literal `PING` every `ping_interval_s` (doc §6.1) and declares a socket stale when
no frame at all (not even `PONG`) arrived for `stale_after_s`: the socket is then dropped and
reconnected. This catches the silent stall (socket open, nothing sent), which TCP alone never reports.

What a frame means, what a lost socket means for the data and how to resynchronise is the channel's
business (`ws_market`, `ws_user`), through the hooks of `StreamBase`.

Secrets: the user channel's first frame carries API credentials. Frames sent are never logged, and
every log line goes through the client package's redacting logger.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass
from typing import Any, Final, Generic, TypeVar

import aiohttp

from polyoms.core.clock import Clock
from polyoms.core.errors import ConfigError, PolyomsError
from polyoms.polymarket.client.redact import get_logger, redact
from polyoms.polymarket.client.timing import MonotonicClock, Sleep

log = get_logger("polyoms.client.ws")

E = TypeVar("E")

PING: Final = "PING"
PONG: Final = b"PONG"
MAX_FRAME_BYTES: Final = 64 * 1024 * 1024
"""An initial dump of thousands of books is one frame; aiohttp's default limit (4 MiB) is too small."""


def ws_url(http_url: str, channel: str) -> str:
    """The WebSocket URL of a channel on a host given by its HTTP URL (the local exchange serves both)."""
    base = http_url.rstrip("/")
    if base.startswith("https://"):
        base = "wss://" + base[len("https://") :]
    elif base.startswith("http://"):
        base = "ws://" + base[len("http://") :]
    return f"{base}/ws/{channel}"


# --- errors --------------------------------------------------------------------------------------------


class StreamClosedError(PolyomsError):
    """The stream was closed (or failed for good): it cannot be used any more."""


# --- backoff ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BackoffPolicy:
    """Reconnect delays: full jitter, uniform in [0, min(max_s, base_s * 2^(attempt-1))]."""

    base_s: float = 0.5
    max_s: float = 30.0

    def __post_init__(self) -> None:
        if self.base_s < 0 or self.max_s < self.base_s:
            raise ConfigError("backoff: 0 <= base_s <= max_s")

    def ceiling_s(self, attempt: int) -> float:
        """The largest delay of the attempt-th reconnect in a row (1-based)."""
        return min(self.max_s, self.base_s * float(2 ** max(0, attempt - 1)))

    def delay_s(self, attempt: int, rng: random.Random) -> float:
        return rng.uniform(0.0, self.ceiling_s(attempt))


class Backoff:
    """The reconnect attempts of one socket since it last did useful work."""

    __slots__ = ("attempt", "policy", "rng")

    def __init__(self, policy: BackoffPolicy, rng: random.Random) -> None:
        self.policy = policy
        self.rng = rng
        self.attempt = 0

    def next_s(self) -> float:
        self.attempt += 1
        return self.policy.delay_s(self.attempt, self.rng)

    def reset(self) -> None:
        self.attempt = 0


# --- configuration ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class StreamConfig:
    """Keepalive, watchdog and reconnect settings of one stream (the SDKs' values by default)."""

    url: str
    ping_interval_s: float = 10.0
    stale_after_s: float = 30.0
    """No frame at all (PONG included) for this long: the socket is stale and is replaced."""
    connect_timeout_s: float = 10.0
    close_timeout_s: float = 1.0
    """How long to wait for the venue's close frame when dropping a socket."""
    backoff: BackoffPolicy = BackoffPolicy()
    tick_s: float = 0.25
    """Housekeeping resolution: pings, watchdogs and deadlines are checked this often."""

    def __post_init__(self) -> None:
        if not self.url.startswith(("ws://", "wss://")):
            raise ConfigError(f"stream url must be ws:// or wss://, got {self.url!r}")
        for name in ("ping_interval_s", "stale_after_s", "connect_timeout_s", "close_timeout_s", "tick_s"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"stream {name} must be positive", field=name)
        if self.stale_after_s <= self.ping_interval_s:
            raise ConfigError("stream stale_after_s must exceed ping_interval_s (a PONG must have time to come)")


# --- events ------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StreamConnected:
    """A socket connected and sent its subscriptions."""

    channel: str
    socket: int
    generation: int
    """How many times this socket has connected (1 = first)."""
    at_ms: int


@dataclass(frozen=True, slots=True)
class StreamDisconnected:
    """A socket could not connect or was lost; it reconnects after `retry_in_s` (attempt-th in a row)."""

    channel: str
    socket: int
    reason: str
    retry_in_s: float
    attempt: int
    at_ms: int


@dataclass(frozen=True, slots=True)
class StreamFailed:
    """The stream stopped for good (e.g. the venue refused the credentials); `error` says why."""

    channel: str
    error: PolyomsError
    at_ms: int


_END: Final = object()


class EventHub(Generic[E]):
    """Fan-out of a stream's events: an optional callback plus any number of async iterators.

    Callbacks run synchronously in the stream's task, in order; an exception in one is logged and
    swallowed (a consumer bug must not kill the stream). Each `subscribe()` gets its own unbounded
    queue from the moment it is called.
    """

    def __init__(self, callback: Callable[[E], None] | None = None) -> None:
        self._callbacks: list[Callable[[E], None]] = [callback] if callback is not None else []
        self._queues: set[asyncio.Queue[object]] = set()
        self._closed = False

    def add_callback(self, callback: Callable[[E], None]) -> None:
        self._callbacks.append(callback)

    def emit(self, event: E) -> None:
        for callback in self._callbacks:
            try:
                callback(event)
            except Exception:
                log.exception("stream event callback failed on %s", type(event).__name__)
        for queue in self._queues:
            queue.put_nowait(event)

    def subscribe(self) -> AsyncIterator[E]:
        queue: asyncio.Queue[object] = asyncio.Queue()
        if self._closed:
            queue.put_nowait(_END)
        self._queues.add(queue)
        return self._iterate(queue)

    async def _iterate(self, queue: asyncio.Queue[object]) -> AsyncIterator[E]:
        try:
            while True:
                item = await queue.get()
                if item is _END:
                    return
                yield item  # type: ignore[misc]
        finally:
            self._queues.discard(queue)

    def close(self) -> None:
        self._closed = True
        for queue in self._queues:
            queue.put_nowait(_END)


# --- sockets -----------------------------------------------------------------------------------------------


class _Socket:
    """One WebSocket connection of a stream and its watchdog state."""

    __slots__ = (
        "_heard",
        "backoff",
        "close_reason",
        "generation",
        "index",
        "last_pong_ms",
        "last_rx_ms",
        "next_ping_ms",
        "pings_sent",
        "pongs",
        "reader",
        "subscribed",
        "task",
        "wake",
        "ws",
    )

    def __init__(self, index: int, backoff: Backoff) -> None:
        self.index = index
        self.backoff = backoff
        self.ws: aiohttp.ClientWebSocketResponse[bool] | None = None
        self.generation = 0
        self.subscribed = False
        """The subscription frames went out on the current connection."""
        self.last_rx_ms = 0
        self.last_pong_ms = 0
        self.next_ping_ms = 0
        self.close_reason = ""
        self.reader: asyncio.Task[str] | None = None
        self.task: asyncio.Task[None] | None = None
        self.wake = asyncio.Event()
        self.pings_sent = 0
        """PINGs written on the current connection (counted as they are written)."""
        self.pongs = 0
        """PONGs received on the current connection."""
        self._heard: asyncio.Event | None = None

    def heard(self) -> asyncio.Event:
        """An event set by the next PONG or timestamped frame (for waiters; see `notify`)."""
        if self._heard is None:
            self._heard = asyncio.Event()
        return self._heard

    def notify(self) -> None:
        heard, self._heard = self._heard, None
        if heard is not None:
            heard.set()

    @property
    def live(self) -> bool:
        return self.ws is not None and self.subscribed


S = TypeVar("S", bound=_Socket)


class StreamBase(Generic[S]):
    """Connect / subscribe / read / watchdog / reconnect for the sockets of one stream.

    Subclasses implement the hooks: `_first_frames` (subscription, sent on every connect),
    `_on_open` (before they are sent), `_on_subscribed` (after), `_on_frame` (every text frame except
    PONG), `_on_lost` (the socket ended or went stale, with the reason), `_on_tick` (housekeeping) and
    `_wants_connection` (a socket with nothing to carry stays down).
    """

    channel: str = ""

    def __init__(
        self,
        config: StreamConfig,
        *,
        clock: Clock | None,
        sleep: Sleep | None,
        rng: random.Random | None,
        session: aiohttp.ClientSession | None,
    ) -> None:
        self._cfg = config
        self.clock: Clock = clock or MonotonicClock()
        self._sleep: Sleep = sleep or asyncio.sleep
        self._rng = rng or random.Random()
        self._session = session
        self._own_session = session is None
        self._sockets: list[S] = []
        self._housekeeper: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._started = False
        self._closed = False
        self.error: PolyomsError | None = None
        """Set when the stream failed for good (it then stops reconnecting)."""
        self.sent_frames = 0
        self.received_frames = 0
        self.pongs = 0
        self.reconnects = 0
        self.stale_sockets = 0

    # --- lifecycle ----------------------------------------------------------------------------------------

    async def start(self) -> None:
        if self._closed:
            raise StreamClosedError(f"{self.channel} stream is closed")
        if self._started:
            return
        self._started = True
        if self._session is None:
            self._session = aiohttp.ClientSession()
        self._housekeeper = asyncio.create_task(self._housekeeping(), name=f"ws-{self.channel}-housekeeping")
        for sock in self._sockets:
            self._ensure_running(sock)

    async def close(self) -> None:
        """Stop everything: sockets, timers, REST work in flight. Idempotent."""
        if self._closed:
            return
        self._closed = True
        tasks = [t for t in (self._housekeeper, *(s.task for s in self._sockets), *self._tasks) if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self._own_session and self._session is not None:
            await self._session.close()
        self._on_closed()

    async def __aenter__(self) -> StreamBase[S]:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def closed(self) -> bool:
        return self._closed

    def _check_open(self) -> None:
        if self._closed:
            raise StreamClosedError(f"{self.channel} stream is closed")

    # --- hooks ------------------------------------------------------------------------------------------

    def _first_frames(self, sock: S) -> list[str]:
        raise NotImplementedError

    def _on_open(self, sock: S) -> None:
        """The socket connected; its subscription frames go out next."""

    def _on_subscribed(self, sock: S) -> None:
        """The subscription frames went out."""

    def _on_frame(self, sock: S, data: bytes) -> None:
        raise NotImplementedError

    def _on_lost(self, sock: S, reason: str) -> None:
        """The socket ended (or went stale); it will reconnect unless the stream is closing."""

    def _on_tick(self, now_ms: int) -> None:
        """Housekeeping, every `tick_s`."""

    def _wants_connection(self, sock: S) -> bool:
        return True

    def _on_closed(self) -> None:
        """After close()."""

    def _emit_connection(self, event: StreamConnected | StreamDisconnected | StreamFailed) -> None:
        raise NotImplementedError

    # --- helpers for subclasses -----------------------------------------------------------------------------

    def _spawn(self, coro: Coroutine[Any, Any, Any], name: str = "") -> asyncio.Task[Any] | None:
        """Run `coro` as a task the stream owns (cancelled on close); None once closed."""
        if self._closed:
            coro.close()
            return None
        task = asyncio.create_task(coro, name=name or None)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("%s stream task %s failed: %r", self.channel, task.get_name(), task.exception())

    async def _send(self, sock: S, frames: list[str]) -> bool:
        """Send frames on the socket's current connection; False (and the socket is dropped) on failure."""
        ws = sock.ws
        if ws is None or ws.closed:
            return False
        try:
            for frame in frames:
                if frame == PING:
                    sock.pings_sent += 1  # (written before the first suspension: the order is exact)
                await ws.send_str(frame)
                self.sent_frames += 1
        except (aiohttp.ClientError, OSError, RuntimeError) as exc:
            # Never show the frame: the user channel's carries credentials.
            self._drop(sock, f"send failed: {type(exc).__name__}")
            return False
        return True

    async def _barrier(self, sock: S, caught_up: Callable[[], bool], timeout_s: float) -> bool:
        """Wait until the socket has delivered everything the venue queued for it before now: the PONG
        answering a PING sent now comes after all of it (a socket is ordered), or `caught_up()` says so
        earlier. False if the socket dropped or stayed silent for `timeout_s` (no sign of life)."""
        generation = sock.generation
        if caught_up():
            return True
        target = sock.pings_sent + 1
        sock.next_ping_ms = self.clock.now_ms() + int(self._cfg.ping_interval_s * 1000)
        if not await self._send(sock, [PING]):
            return False
        deadline = self.clock.now_ms() + int(timeout_s * 1000)
        while sock.generation == generation and sock.live:
            if sock.pongs >= target or caught_up():
                return True
            remaining_ms = deadline - self.clock.now_ms()
            if remaining_ms <= 0:
                return False
            try:
                await asyncio.wait_for(sock.heard().wait(), remaining_ms / 1000)
            except TimeoutError:
                return False
        return False

    def _drop(self, sock: S, reason: str) -> None:
        """End the socket's current connection now (the reader stops; the socket reconnects)."""
        if sock.ws is None:
            return
        if not sock.close_reason:
            sock.close_reason = reason
        reader = sock.reader
        if reader is not None and not reader.done():
            reader.cancel()

    def _ensure_running(self, sock: S) -> None:
        if not self._started or self._closed:
            return
        if sock.task is None or sock.task.done():
            sock.task = asyncio.create_task(self._run_socket(sock), name=f"ws-{self.channel}-{sock.index}")
        sock.wake.set()

    def _fail(self, error: PolyomsError) -> None:
        """Stop for good (no reconnect): e.g. the venue refused the credentials."""
        if self.error is None:
            self.error = error
            log.error("%s stream failed: %s", self.channel, redact(str(error)))
            self._emit_connection(StreamFailed(self.channel, error, self.clock.now_ms()))
        for sock in self._sockets:
            self._drop(sock, f"failed: {error.message}")

    # --- the socket loop --------------------------------------------------------------------------------------

    async def _connect(self) -> aiohttp.ClientWebSocketResponse[bool]:
        assert self._session is not None
        async with asyncio.timeout(self._cfg.connect_timeout_s):
            return await self._session.ws_connect(
                self._cfg.url,
                autoping=True,
                heartbeat=None,  # the venue's keepalive is the text PING, sent by housekeeping
                max_msg_size=MAX_FRAME_BYTES,
                decode_text=False,
                timeout=aiohttp.ClientWSTimeout(ws_receive=None, ws_close=self._cfg.close_timeout_s),
            )

    async def _run_socket(self, sock: S) -> None:
        while not self._closed and self.error is None:
            if not self._wants_connection(sock):
                sock.wake.clear()
                await sock.wake.wait()
                continue
            try:
                ws = await self._connect()
            except (aiohttp.ClientError, OSError, TimeoutError) as exc:
                await self._backoff_wait(sock, f"connect failed: {type(exc).__name__}: {redact(str(exc))[:160]}")
                continue
            try:
                reason = await self._serve(sock, ws)
            except Exception as exc:  # a bug must not end the socket's life silently: log, reconnect
                log.exception("%s socket %d failed", self.channel, sock.index)
                reason = f"internal error: {type(exc).__name__}"
            if self._closed or self.error is not None:
                return
            self.reconnects += 1
            await self._backoff_wait(sock, reason)

    async def _serve(self, sock: S, ws: aiohttp.ClientWebSocketResponse[bool]) -> str:
        """One connection's life: subscribe, read until it ends; returns why it ended."""
        now = self.clock.now_ms()
        sock.ws = ws
        sock.generation += 1
        sock.subscribed = False
        sock.close_reason = ""
        sock.last_rx_ms = sock.last_pong_ms = now
        sock.next_ping_ms = now + int(self._cfg.ping_interval_s * 1000)
        sock.pings_sent = sock.pongs = 0
        reason = "closed"
        reader: asyncio.Task[str] | None = None
        try:
            self._on_open(sock)
            frames = self._first_frames(sock)
            for frame in frames:
                await ws.send_str(frame)
                self.sent_frames += 1
            sock.subscribed = True
            self._emit_connection(StreamConnected(self.channel, sock.index, sock.generation, self.clock.now_ms()))
            self._on_subscribed(sock)
            reader = asyncio.create_task(self._read(sock, ws), name=f"ws-{self.channel}-{sock.index}-reader")
            sock.reader = reader
            await asyncio.wait({reader})
            if reader.cancelled():
                reason = sock.close_reason or "dropped"
            elif reader.exception() is not None:
                reason = f"reader failed: {reader.exception()!r}"
            else:
                reason = sock.close_reason or reader.result()
        except (aiohttp.ClientError, OSError, RuntimeError) as exc:
            reason = sock.close_reason or f"send failed: {type(exc).__name__}"
        finally:
            if reader is not None and not reader.done():
                reader.cancel()
            sock.ws = None
            sock.subscribed = False
            sock.reader = None
            sock.notify()
            self._on_lost(sock, reason if not self._closed else "stream closed")
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await asyncio.wait_for(ws.close(), self._cfg.close_timeout_s + 0.5)
        return reason

    async def _read(self, sock: S, ws: aiohttp.ClientWebSocketResponse[bool]) -> str:
        clock = self.clock
        async for msg in ws:
            now = clock.now_ms()
            sock.last_rx_ms = now
            kind = msg.type
            if kind is aiohttp.WSMsgType.TEXT or kind is aiohttp.WSMsgType.BINARY:
                raw = msg.data
                data = raw if type(raw) is bytes else raw.encode() if isinstance(raw, str) else bytes(raw)
                self.received_frames += 1
                if data == PONG:
                    sock.last_pong_ms = now
                    sock.pongs += 1
                    self.pongs += 1
                    sock.notify()
                    continue
                try:
                    self._on_frame(sock, data)
                except Exception:
                    # A bug in our handling must not leave a half-applied state looking healthy.
                    log.exception("%s stream: handling a frame failed; dropping the socket", self.channel)
                    return "frame handler failed"
            elif kind is aiohttp.WSMsgType.ERROR:
                return f"socket error: {type(ws.exception()).__name__}"
        code = ws.close_code
        return f"closed by the venue (code {code})" if code is not None else "closed by the venue"

    async def _backoff_wait(self, sock: S, reason: str) -> None:
        delay = sock.backoff.next_s()
        log.warning("%s socket %d: %s; reconnecting in %.3f s", self.channel, sock.index, reason, delay)
        self._emit_connection(
            StreamDisconnected(self.channel, sock.index, reason, delay, sock.backoff.attempt, self.clock.now_ms())
        )
        await self._sleep(delay)

    # --- housekeeping -----------------------------------------------------------------------------------------

    async def _housekeeping(self) -> None:
        cfg = self._cfg
        ping_ms = int(cfg.ping_interval_s * 1000)
        stale_ms = int(cfg.stale_after_s * 1000)
        while not self._closed:
            await self._sleep(cfg.tick_s)
            now = self.clock.now_ms()
            for sock in self._sockets:
                if not sock.live:
                    continue
                if now - sock.last_rx_ms >= stale_ms:
                    self.stale_sockets += 1
                    self._drop(sock, f"stale: no frame for {(now - sock.last_rx_ms) / 1000:.1f} s")
                    continue
                if now >= sock.next_ping_ms:
                    sock.next_ping_ms = now + ping_ms
                    self._spawn(self._send(sock, [PING]), name=f"ws-{self.channel}-ping")
            try:
                self._on_tick(now)
            except Exception:
                log.exception("%s stream housekeeping failed", self.channel)
