"""Connection hygiene for the daemon's local HTTP server: no local process can lock the operator out.

aiohttp alone waits as long as a client likes for a request that never completes and accepts connections
until the process runs out of file descriptors; then accept() fails for everyone, `polyoms stop
--emergency` included. `ConnectionGuard` wraps aiohttp's protocol factory (no aiohttp internals) and:

* closes a connection that has not delivered a complete request head `request_timeout_s` after it opened
  (half-open and slowloris clients: trickled bytes do not extend the deadline), and an idle keep-alive
  connection `idle_timeout_s` after its last answer; the body of a request has `body_timeout_s`
  (`read_body`);
* caps the connections at `max_connections`, well under the fd limit. A connection over the cap evicts
  the one least likely to be the operator: one that never completed a request head (oldest first), then
  idle ones that never authenticated, then idle authenticated ones, then ones whose head is complete but
  not yet answered. Only when every slot is serving an authenticated request is the newcomer refused. So
  a new connection gets in however many an attacker holds, and the operator's request, sent as soon as it
  connects, is answered before the attacker's later connections can push it out;
* logs what it closed as one summary line per `log_interval_s`, never a line per connection, and folds
  the event loop's accept() failures (EMFILE...) into the same summary.

The app marks what its requests do with `busy`, `trust` and `idle` (keyed by `request.protocol`);
`middleware()` does `busy`/`idle` for every request. `GuardedServer` serves an aiohttp app through the
guard (instead of a TCPSite, which would not see the connections).
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import resource
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Final, TypeVar, cast

from aiohttp import web

log = logging.getLogger(__name__)
T = TypeVar("T")

HEAD_END: Final = b"\r\n\r\n"
ACCEPT_ERROR: Final = "socket.accept() out of system resource"


@dataclass(frozen=True, slots=True)
class GuardLimits:
    max_connections: int = 0
    """0: from the process's fd limit (`default_max_connections`)."""
    request_timeout_s: float = 5.0
    idle_timeout_s: float = 15.0
    body_timeout_s: float = 10.0
    log_interval_s: float = 30.0
    evict_busy: bool = True
    """Whether a connection in the middle of an unauthenticated request may be evicted (the control
    API: yes, only the operator's count; the local exchange: no, a WebSocket is one long request)."""

    def cap(self) -> int:
        return self.max_connections if self.max_connections > 0 else default_max_connections()


def default_max_connections(share: int = 8, low: int = 8, high: int = 128) -> int:
    """A `share`-th of the soft fd limit, within [low, high]: the process's streams, journal and venue
    connections keep the rest (the control API takes an eighth, the embedded exchange a quarter)."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft <= 0:
        soft = 65_536
    return max(low, min(high, soft // share))


class Phase(enum.IntEnum):
    """Where a connection is; the value orders eviction (lowest first)."""

    OPEN = 0
    """Connected, no complete request head yet."""
    IDLE = 1
    """Answered, waiting for the next request (keep-alive)."""
    QUEUED = 2
    """A complete request head arrived; the app has not seen it yet."""
    BUSY = 3
    """The app is handling a request."""


class _Conn:
    __slots__ = ("deadline", "phase", "since", "tail", "transport", "trusted")

    def __init__(self, transport: asyncio.Transport, now: float, deadline: float) -> None:
        self.transport = transport
        self.phase = Phase.OPEN
        self.since = now
        self.deadline: float | None = deadline
        self.trusted = False
        self.tail = b""

    def rank(self, evict_busy: bool) -> tuple[int, int, float] | None:
        """Eviction order (lowest first); None: never evicted (an authenticated request in progress)."""
        if self.phase is Phase.BUSY and (self.trusted or not evict_busy):
            return None
        return (int(self.phase), int(self.trusted), self.since)


class ConnectionGuard:
    """Timeouts, a connection cap and rate-limited logging for one listening server (module doc)."""

    def __init__(self, limits: GuardLimits | None = None, *, name: str = "control API") -> None:
        self.limits = limits or GuardLimits()
        self.name = name
        self.cap = self.limits.cap()
        self._conns: dict[asyncio.BaseProtocol, _Conn] = {}
        self.counts: dict[str, int] = dict.fromkeys(("evicted", "refused", "timed_out", "idle", "accept_errors"), 0)
        """Since the last summary line (what it reports); `totals` keeps everything."""
        self.totals: dict[str, int] = dict(self.counts)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._sweeper: asyncio.Task[None] | None = None
        self._next_log = 0.0
        self._prev_handler: Any = None
        self._handler: Any = None

    # --- wiring ------------------------------------------------------------------------------------

    def factory(self, inner: Callable[[], asyncio.Protocol]) -> Callable[[], asyncio.Protocol]:
        """The protocol factory for `loop.create_server`, around aiohttp's (`runner.server`)."""
        return lambda: _Tracked(self, inner())

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._loop = loop
        self._next_log = loop.time()
        self._sweeper = loop.create_task(self._sweep_forever(), name=f"polyoms-{self.name}-guard")
        self._prev_handler = loop.get_exception_handler()
        prev = self._prev_handler

        def handler(lp: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
            # asyncio reports every failed accept() with a traceback (once a second per listening
            # socket); counted here and summarized with the rest.
            if str(context.get("message", "")).startswith(ACCEPT_ERROR):
                self._count("accept_errors")
                return
            if prev is not None:
                prev(lp, context)
            else:
                lp.default_exception_handler(context)

        self._handler = handler
        loop.set_exception_handler(handler)

    async def stop(self) -> None:
        loop = self._loop
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
            self._sweeper = None
        if loop is not None and loop.get_exception_handler() is self._handler:
            loop.set_exception_handler(self._prev_handler)
        self._summarize(force=True)

    def close_all(self) -> None:
        for conn in list(self._conns.values()):
            conn.transport.abort()
        self._conns.clear()

    @property
    def connections(self) -> int:
        return len(self._conns)

    # --- what the app reports ------------------------------------------------------------------------

    def busy(self, proto: asyncio.BaseProtocol) -> None:
        conn = self._conns.get(proto)
        if conn is not None:
            conn.phase, conn.deadline = Phase.BUSY, None

    def trust(self, proto: asyncio.BaseProtocol) -> None:
        """The connection delivered an authenticated request: the operator's (evicted last)."""
        conn = self._conns.get(proto)
        if conn is not None:
            conn.trusted = True

    def idle(self, proto: asyncio.BaseProtocol) -> None:
        conn = self._conns.get(proto)
        if conn is not None:
            now = self._now()
            conn.phase, conn.since, conn.deadline, conn.tail = Phase.IDLE, now, now + self.limits.idle_timeout_s, b""

    def middleware(self) -> Any:
        """An aiohttp middleware marking each request busy while it runs (a WebSocket: its whole life)."""

        @web.middleware
        async def mark(request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> Any:
            proto = request.protocol
            self.busy(proto)
            try:
                return await handler(request)
            finally:
                self.idle(proto)

        return mark

    async def read_body(self, read: Awaitable[T]) -> T:
        """A request body, or TimeoutError after `body_timeout_s`."""
        return await asyncio.wait_for(read, self.limits.body_timeout_s)

    # --- the tracked connections ---------------------------------------------------------------------

    def _now(self) -> float:
        return (self._loop or asyncio.get_running_loop()).time()

    def _admit(self, proto: asyncio.BaseProtocol, transport: asyncio.Transport) -> bool:
        if len(self._conns) >= self.cap:
            victim = self._victim()
            if victim is None:
                self._count("refused")
                return False
            self._close(victim, "evicted", abort=True)
        now = self._now()
        self._conns[proto] = _Conn(transport, now, now + self.limits.request_timeout_s)
        return True

    def _victim(self) -> asyncio.BaseProtocol | None:
        best: tuple[tuple[int, int, float], asyncio.BaseProtocol] | None = None
        for proto, conn in self._conns.items():
            rank = conn.rank(self.limits.evict_busy)
            if rank is not None and (best is None or rank < best[0]):
                best = (rank, proto)
        return None if best is None else best[1]

    def _data(self, proto: asyncio.BaseProtocol, data: bytes) -> None:
        conn = self._conns.get(proto)
        if conn is None or conn.phase not in (Phase.OPEN, Phase.IDLE):
            return
        keep = len(HEAD_END) - 1  # a head's end may straddle two reads
        if HEAD_END in data or HEAD_END in conn.tail + data[:keep]:
            conn.phase, conn.since, conn.tail = Phase.QUEUED, self._now(), b""
        else:
            conn.tail = (conn.tail + data)[-keep:]

    def _lost(self, proto: asyncio.BaseProtocol) -> None:
        self._conns.pop(proto, None)

    def _close(self, proto: asyncio.BaseProtocol, why: str, *, abort: bool = False) -> None:
        conn = self._conns.pop(proto, None)
        if conn is None:
            return
        self._count(why)
        if abort:
            conn.transport.abort()  # frees the descriptor now, whatever the peer does
        else:
            conn.transport.close()

    def sweep(self) -> None:
        """Close the connections past their deadline, and write the summary line when it is due."""
        now = self._now()
        expired = [(p, c) for p, c in self._conns.items() if c.deadline is not None and c.deadline <= now]
        for proto, conn in expired:
            self._close(proto, "idle" if conn.phase is Phase.IDLE else "timed_out", abort=conn.phase is Phase.OPEN)
        self._summarize()

    async def _sweep_forever(self) -> None:
        lim = self.limits
        interval = min(1.0, max(0.05, min(lim.request_timeout_s, lim.idle_timeout_s) / 4))
        while True:
            await asyncio.sleep(interval)
            try:
                self.sweep()
            except Exception:  # the guard must outlive any surprise; a bug here is logged once a round
                log.exception("%s: connection sweep failed", self.name)

    def _count(self, what: str) -> None:
        self.counts[what] += 1
        self.totals[what] += 1

    def _summarize(self, *, force: bool = False) -> None:
        c = self.counts
        noisy = c["evicted"] + c["refused"] + c["timed_out"] + c["accept_errors"]
        if not noisy:
            return
        now = self._now() if self._loop is not None else 0.0
        if not force and now < self._next_log:
            return
        self._next_log = now + self.limits.log_interval_s
        parts = []
        if c["evicted"]:
            parts.append(f"{c['evicted']} evicted at the cap of {self.cap} connections")
        if c["timed_out"]:
            wait = self.limits.request_timeout_s
            parts.append(f"{c['timed_out']} closed without a complete request after {wait:g} s")
        if c["refused"]:
            parts.append(f"{c['refused']} refused (every slot serving a request that may not be evicted)")
        if c["accept_errors"]:
            parts.append(f"{c['accept_errors']} failed accept() (out of file descriptors?)")
        log.warning(
            "%s: %s since the last report (some local process is holding connections; the operator's "
            "authenticated requests keep priority)",
            self.name,
            "; ".join(parts),
        )
        for k in c:
            c[k] = 0


class _Tracked(asyncio.Protocol):
    """aiohttp's protocol, with the guard told of every connection, its bytes and its end."""

    __slots__ = ("_admitted", "_guard", "_inner")

    def __init__(self, guard: ConnectionGuard, inner: asyncio.Protocol) -> None:
        self._guard = guard
        self._inner = inner
        self._admitted = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        stream = cast(asyncio.Transport, transport)  # a stream server's transports are
        if not self._guard._admit(self._inner, stream):
            stream.abort()
            return
        self._admitted = True
        self._inner.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        if self._admitted:
            self._guard._data(self._inner, data)
            self._inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self._inner.eof_received() if self._admitted else None

    def connection_lost(self, exc: Exception | None) -> None:
        self._guard._lost(self._inner)
        if self._admitted:
            self._admitted = False
            self._inner.connection_lost(exc)

    def pause_writing(self) -> None:
        if self._admitted:
            self._inner.pause_writing()

    def resume_writing(self) -> None:
        if self._admitted:
            self._inner.resume_writing()


class GuardedServer:
    """An aiohttp app on host:port (0 = a free port), every connection through `guard`."""

    def __init__(self, app: web.Application, guard: ConnectionGuard, host: str, port: int = 0) -> None:
        self.app = app
        self.guard = guard
        self.host = host
        self.port = port
        self._runner: web.AppRunner | None = None
        self._server: asyncio.Server | None = None

    async def start(self) -> int:
        """Listen; returns the bound port."""
        # aiohttp's own keep-alive timer as a backstop behind the guard's (which closes first).
        lim = self.guard.limits
        backstop = 2 * max(lim.idle_timeout_s, lim.request_timeout_s)
        self._runner = web.AppRunner(self.app, access_log=None, keepalive_timeout=backstop)
        await self._runner.setup()
        handler = self._runner.server
        assert handler is not None
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            self.guard.factory(handler), self.host, self.port, backlog=128, reuse_address=True
        )
        self.port = self._server.sockets[0].getsockname()[1]
        self.guard.start()
        return self.port

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        self.guard.close_all()
        await self.guard.stop()
        if self._server is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._server.wait_closed(), 5)
            self._server = None
