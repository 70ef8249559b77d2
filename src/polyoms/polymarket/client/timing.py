"""Time for the client's timers (rate limits, breaker, backoff): injected, so tests are fast and exact.

Timers read a `Clock` in milliseconds and wait through an async `sleep`. Live, that is a monotonic
clock (a wall clock can jump) and `asyncio.sleep`; in tests, a `VirtualTimer` whose sleep moves a
`VirtualClock` forward instantly. Authentication timestamps are a different matter: they must be
wall-clock unix seconds and use their own clock.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable

from polyoms.core.clock import VirtualClock

Sleep = Callable[[float], Awaitable[None]]


class MonotonicClock:
    """Milliseconds of `time.monotonic` (only differences are meaningful)."""

    __slots__ = ()

    def now_ms(self) -> int:
        return time.monotonic_ns() // 1_000_000


class VirtualTimer:
    """A virtual clock and a sleep that advances it (rounded up to whole milliseconds)."""

    def __init__(self, clock: VirtualClock | None = None) -> None:
        self.clock = clock or VirtualClock()
        self.slept_s: list[float] = []

    async def sleep(self, seconds: float) -> None:
        self.slept_s.append(seconds)
        if seconds > 0:
            self.clock.advance(math.ceil(seconds * 1000))
        await asyncio.sleep(0)  # still a suspension point, as a real sleep is
