"""Retry policy: exponential backoff with full jitter, for idempotent requests only.

Idempotent = GETs, the read-only POSTs (/books, /prices, ...) and cancels (cancelling twice is
harmless). POST /order and /orders are never retried (architecture principle 2), and neither is
POST /auth/api-key. A `Retry-After` the venue sends (429, 425, 503) is honoured: the next attempt
waits at least that long, and if it is longer than `max_retry_after_s` the typed error is raised
at once so the caller can decide (the weekly restart asks for ~90 s).
"""

from __future__ import annotations

import email.utils
import math
import random
from dataclasses import dataclass
from datetime import UTC, datetime

from polyoms.core.errors import ConfigError


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    attempts: int = 4
    """Tries in total, the first included."""
    base_delay_s: float = 0.1
    max_delay_s: float = 5.0
    max_retry_after_s: float = 5.0

    def __post_init__(self) -> None:
        if self.attempts < 1 or self.base_delay_s < 0 or self.max_delay_s < 0 or self.max_retry_after_s < 0:
            raise ConfigError("retry policy: attempts >= 1 and non-negative delays")

    def backoff_s(self, retry: int, rng: random.Random) -> float:
        """Full jitter: uniform in [0, min(max, base * 2^(retry-1))] for the retry-th retry (1-based)."""
        ceiling = min(self.max_delay_s, self.base_delay_s * (2 ** max(0, retry - 1)))
        return rng.uniform(0, ceiling)

    def delay_s(self, retry: int, rng: random.Random, retry_after: float | None) -> float:
        jitter = self.backoff_s(retry, rng)
        return jitter if retry_after is None else max(retry_after, jitter)


def parse_retry_after(value: str | None, now_s: float | None = None) -> float | None:
    """Seconds from a Retry-After header: delta-seconds or an HTTP date; None if absent or unreadable."""
    if not value:
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        now = datetime.now(UTC).timestamp() if now_s is None else now_s
        seconds = when.timestamp() - now
    if not math.isfinite(seconds):
        return None
    return max(0.0, seconds)
