"""Injected time. Decisions never read the wall clock; they are handed a Clock."""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    def now_ms(self) -> int:
        """Milliseconds since the Unix epoch."""
        ...


class WallClock:
    """The real clock (live and paper trading)."""

    __slots__ = ()

    def now_ms(self) -> int:
        return time.time_ns() // 1_000_000


class VirtualClock:
    """A clock that only moves when told to (backtests, tests)."""

    __slots__ = ("_now_ms",)

    def __init__(self, start_ms: int = 1_777_000_000_000) -> None:
        self._now_ms = start_ms

    def now_ms(self) -> int:
        return self._now_ms

    def advance(self, ms: int) -> int:
        if ms < 0:
            raise ValueError("a virtual clock never goes back")
        self._now_ms += ms
        return self._now_ms

    def set(self, now_ms: int) -> None:
        if now_ms < self._now_ms:
            raise ValueError("a virtual clock never goes back")
        self._now_ms = now_ms
