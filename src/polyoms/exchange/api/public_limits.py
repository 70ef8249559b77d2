"""Per-IP rate limits of the venue's public APIs (Gamma, Data API), doc §5.3(a).

The venue's limits are Cloudflare sliding windows per client IP: one for the whole API and tighter ones
for some endpoints. Here each (IP, scope) keeps a sliding-window *counter* (this window's count plus the
previous window's, weighted by how much of it still overlaps), which is O(1) in time and memory per
client, instead of a log of every request. Past a limit the request gets the venue's 429 body and a
`Retry-After`. At most `MAX_TRACKED_IPS` clients are tracked; the least recently seen are forgotten
first, so memory stays bounded however many addresses call.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Final

from aiohttp import web

from polyoms.exchange.api.http import error_body, json_response
from polyoms.polymarket.protocol import errors as venue_errors

WINDOW_S: Final = 10.0
GENERAL: Final = "*"
"""The scope every request of an API counts against."""
MAX_TRACKED_IPS: Final = 10_000

GAMMA_LIMITS: Final[Mapping[str, int]] = {
    GENERAL: 4_000,
    "/events": 500,
    "/markets": 300,
    "/public-search": 350,
    "/tags": 200,
}
"""Requests per 10 s (doc §5.3(a))."""
DATA_API_LIMITS: Final[Mapping[str, int]] = {GENERAL: 1_000, "/trades": 200, "/positions": 150}
"""Requests per 10 s (doc §5.3(a)); other Data API endpoints count against the general limit only."""

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(slots=True)
class _Window:
    start: float
    count: int = 0
    previous: int = 0

    def roll(self, now: float, width: float) -> None:
        if now - self.start >= width:
            elapsed = int((now - self.start) // width)
            self.previous = self.count if elapsed == 1 else 0
            self.count = 0
            self.start += elapsed * width

    def estimate(self, now: float, width: float) -> float:
        overlap = 1.0 - (now - self.start) / width
        return self.previous * overlap + self.count


class RateLimiter:
    """Sliding-window counters per client IP and scope, on an injectable monotonic clock."""

    def __init__(
        self,
        limits: Mapping[str, int],
        *,
        window_s: float = WINDOW_S,
        max_ips: int = MAX_TRACKED_IPS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limits = dict(limits)
        self.window_s = window_s
        self.max_ips = max_ips
        self.clock = clock
        self._ips: OrderedDict[str, dict[str, _Window]] = OrderedDict()

    @property
    def tracked(self) -> int:
        return len(self._ips)

    def _windows(self, ip: str, now: float) -> dict[str, _Window]:
        windows = self._ips.get(ip)
        if windows is None:
            windows = self._ips[ip] = {}
            while len(self._ips) > self.max_ips:
                self._ips.popitem(last=False)
        else:
            self._ips.move_to_end(ip)
        return windows

    def check(self, ip: str, scope: str) -> float | None:
        """Count one request of `ip` on `scope` (and the general limit): None if allowed, else the seconds
        to wait. A refused request is not counted, as a client retrying after the wait gets through."""
        now = self.clock()
        windows = self._windows(ip, now)
        width = self.window_s
        scopes = [GENERAL] if scope == GENERAL or scope not in self.limits else [GENERAL, scope]
        waits: list[float] = []
        for s in scopes:
            w = windows.get(s)
            if w is None:
                w = windows[s] = _Window(now)
            w.roll(now, width)
            if w.estimate(now, width) + 1 > self.limits[s]:
                waits.append(self._wait(w, now, self.limits[s]))
        if waits:
            return max(waits)
        for s in scopes:
            windows[s].count += 1
        return None

    def _wait(self, w: _Window, now: float, limit: int) -> float:
        """Until the previous window's weight has decayed enough, or this window ends."""
        width = self.window_s
        end = w.start + width
        if w.previous and w.count + 1 <= limit:
            # previous × (1 − (t − start)/width) + count + 1 ≤ limit  ⇔  t ≥ start + width × (1 − room/previous)
            room = limit - w.count - 1
            return max(0.0, w.start + width * (1 - room / w.previous) - now)
        return max(0.0, end - now)


def client_ip(request: web.Request) -> str:
    """The peer's address (the venue's Cloudflare sees the client's; no proxy sits in front of ours)."""
    return request.remote or "unknown"


def too_many_requests(wait_s: float) -> web.Response:
    retry = str(max(1, math.ceil(wait_s)))
    return json_response(error_body(venue_errors.TOO_MANY_REQUESTS), status=429, headers={"Retry-After": retry})


def limited(limiter: RateLimiter, scope: str, handler: Handler) -> Handler:
    """`handler` behind `limiter`'s limits for `scope`."""

    async def wrapped(request: web.Request) -> web.StreamResponse:
        wait = limiter.check(client_ip(request), scope)
        if wait is not None:
            return too_many_requests(wait)
        return await handler(request)

    return wrapped
