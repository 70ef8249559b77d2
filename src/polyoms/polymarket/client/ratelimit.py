"""Client-side rate limits: the venue's published quotas, scaled by a safety margin, waited for.

Two kinds of limit, because the venue has two (protocol doc §5.3):

* (a) per-IP Cloudflare limits are *sliding windows* ("N requests per 10 s", some also "M per 10 min").
  A token bucket of capacity N refilled at N/W would admit up to 2N in one window (a full bucket plus
  a window's refill), so these are enforced as exact sliding windows: at most `floor(N x margin)`
  requests in ANY interval of length W. The log is compressed into W/1000-wide slots and an entry
  is kept until its slot's END leaves the window, which errs on the safe side by 0.1 % of W.
* (b) per-signer trading limits ARE token buckets on the venue (rate/s refill, burst capacity) and
  are enforced as such, with the venue's token costs (a batch of N orders costs N).

Every request waits (asynchronously) until all of its limits admit it, then is charged to all of
them at once; there is no await between the check and the charge, so concurrent tasks on one event
loop can never overshoot. Waits are counted per limit. Time comes from an injected clock and sleep.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Final, Protocol

from polyoms.core.clock import Clock
from polyoms.core.errors import ConfigError, RateLimitedError
from polyoms.polymarket.client.timing import Sleep

# --- the venue's quotas (doc §5.3) ----------------------------------------------------------------

Quota = tuple[tuple[int, float], ...]
"""((requests, window seconds), ...): every window applies."""

_10S: Final = 10.0
_10MIN: Final = 600.0

IP_LIMITS: Final[Mapping[str, Quota]] = {
    # Across every Polymarket API (CLOB, Gamma, Data): one IP address, one budget.
    "all": ((15_000, _10S),),
    "clob": ((9_000, _10S),),
    "clob:/ok": ((100, _10S),),
    "clob:/book": ((1_500, _10S),),
    "clob:/books": ((500, _10S),),
    "clob:/price": ((1_500, _10S),),
    "clob:/prices": ((500, _10S),),
    "clob:/midpoint": ((1_500, _10S),),
    "clob:/midpoints": ((500, _10S),),
    "clob:/prices-history": ((1_000, _10S),),
    # The doc names /tick-size as the "market-params group"; /neg-risk and /fee-rate are assumed to share it.
    "clob:market-params": ((200, _10S),),
    "clob:/balance-allowance": ((200, _10S),),
    "clob:/balance-allowance/update": ((50, _10S),),
    "clob:ledger": ((900, _10S),),
    "clob:/data/orders": ((500, _10S),),
    "clob:/data/trades": ((500, _10S),),
    "clob:/notifications": ((125, _10S),),
    "clob:/auth": ((100, _10S),),
    "clob:POST /order": ((5_000, _10S), (120_000, _10MIN)),
    "clob:DELETE /order": ((5_000, _10S), (120_000, _10MIN)),
    "clob:POST /orders": ((2_000, _10S), (21_000, _10MIN)),
    "clob:DELETE /orders": ((2_000, _10S), (15_000, _10MIN)),
    "clob:DELETE /cancel-all": ((250, _10S), (6_000, _10MIN)),
    "clob:DELETE /cancel-market-orders": ((1_500, _10S), (21_000, _10MIN)),
    "gamma": ((4_000, _10S),),
    "gamma:/events": ((500, _10S),),
    "gamma:/markets": ((300, _10S),),
    "gamma:/public-search": ((350, _10S),),
    "gamma:/comments": ((200, _10S),),
    "gamma:/tags": ((200, _10S),),
    "data": ((1_000, _10S),),
    "data:/trades": ((200, _10S),),
    "data:/positions": ((150, _10S),),
}


@dataclass(frozen=True, slots=True)
class SignerTier:
    """Per-signer token buckets: orders and cancels, each a refill rate per second and a burst."""

    name: str
    orders_rate: float
    orders_burst: int
    cancels_rate: float
    cancels_burst: int


SIGNER_TIERS: Final[Mapping[str, SignerTier]] = {
    t.name: t
    for t in (
        SignerTier("standard", 40, 60, 80, 120),
        SignerTier("copper", 60, 90, 120, 180),
        SignerTier("bronze", 80, 120, 160, 240),
        SignerTier("silver", 200, 300, 400, 600),
        SignerTier("gold", 400, 600, 800, 1_200),
        SignerTier("platinum", 450, 675, 900, 1_350),
        SignerTier("diamond", 525, 787, 1_050, 1_575),
        SignerTier("elite", 600, 900, 1_200, 1_800),
    )
}

ORDERS: Final = "orders"
CANCELS: Final = "cancels"

# --- which limits a request counts against ----------------------------------------------------------

_CLOB_ROUTES: Final[Mapping[tuple[str, str], tuple[str, ...]]] = {
    ("GET", "/"): ("clob:/ok",),
    ("GET", "/ok"): ("clob:/ok",),
    ("GET", "/book"): ("clob:/book",),
    ("POST", "/books"): ("clob:/books",),
    ("GET", "/price"): ("clob:/price",),
    ("POST", "/prices"): ("clob:/prices",),
    ("GET", "/midpoint"): ("clob:/midpoint",),
    ("POST", "/midpoints"): ("clob:/midpoints",),
    ("GET", "/prices-history"): ("clob:/prices-history",),
    ("GET", "/tick-size"): ("clob:market-params",),
    ("GET", "/neg-risk"): ("clob:market-params",),
    ("GET", "/fee-rate"): ("clob:market-params",),
    ("GET", "/balance-allowance"): ("clob:/balance-allowance",),
    ("GET", "/balance-allowance/update"): ("clob:/balance-allowance/update",),
    ("GET", "/data/orders"): ("clob:ledger", "clob:/data/orders"),
    ("GET", "/data/trades"): ("clob:ledger", "clob:/data/trades"),
    ("GET", "/notifications"): ("clob:ledger", "clob:/notifications"),
    ("DELETE", "/notifications"): ("clob:ledger", "clob:/notifications"),
    ("POST", "/order"): ("clob:POST /order",),
    ("DELETE", "/order"): ("clob:DELETE /order",),
    ("POST", "/orders"): ("clob:POST /orders",),
    ("DELETE", "/orders"): ("clob:DELETE /orders",),
    ("DELETE", "/cancel-all"): ("clob:DELETE /cancel-all",),
    ("DELETE", "/cancel-market-orders"): ("clob:DELETE /cancel-market-orders",),
}
_GAMMA_PREFIXES: Final = ("/events", "/markets", "/public-search", "/comments", "/tags")
_DATA_PREFIXES: Final = ("/trades", "/positions")

_SIGNER_ROUTES: Final[Mapping[tuple[str, str], str]] = {
    ("POST", "/order"): ORDERS,
    ("POST", "/orders"): ORDERS,
    ("DELETE", "/order"): CANCELS,
    ("DELETE", "/orders"): CANCELS,
    ("DELETE", "/cancel-all"): CANCELS,
    ("DELETE", "/cancel-market-orders"): CANCELS,
}


def ip_route(service: str, method: str, path: str) -> tuple[str, ...]:
    """Names of the per-IP limits a request counts against (`service` is clob, gamma or data)."""
    names: tuple[str, ...] = ("all", service)
    if service == "clob":
        specific = _CLOB_ROUTES.get((method, path))
        if specific is None and path.startswith("/data/"):
            specific = ("clob:ledger",)
        elif specific is None and path.startswith("/auth/"):
            specific = ("clob:/auth",)
        return names + (specific or ())
    prefixes = _GAMMA_PREFIXES if service == "gamma" else _DATA_PREFIXES if service == "data" else ()
    for prefix in prefixes:
        if path == prefix or path.startswith(prefix + "/"):
            return (*names, f"{service}:{prefix}")
    return names


def signer_route(method: str, path: str) -> str | None:
    """The per-signer bucket (orders or cancels) a CLOB request draws from, if any."""
    return _SIGNER_ROUTES.get((method, path))


# --- limits -------------------------------------------------------------------------------------------


@dataclass(slots=True)
class LimitStats:
    acquired: int = 0
    """Units charged (requests, or orders/cancels for signer buckets)."""
    waits: int = 0
    """Times a request had to wait for this limit."""
    waited_ms: int = 0


class Limit(Protocol):
    name: str
    stats: LimitStats

    def wait_ms(self, now_ms: int, cost: int) -> int: ...

    def commit(self, now_ms: int, cost: int) -> None: ...


class SlidingWindow:
    """At most `limit` units in any interval of `window_ms` (a slot-compressed sliding log)."""

    __slots__ = ("_entries", "_total", "limit", "name", "slot_ms", "stats", "window_ms")

    def __init__(self, name: str, limit: int, window_ms: int, *, slots: int = 1000) -> None:
        if limit <= 0 or window_ms <= 0:
            raise ConfigError(f"rate limit {name}: limit and window must be positive")
        self.name = name
        self.limit = limit
        self.window_ms = window_ms
        self.slot_ms = max(1, window_ms // slots)
        self.stats = LimitStats()
        self._entries: deque[list[int]] = deque()  # [slot index, units]
        self._total = 0

    def _expire(self, now_ms: int) -> None:
        entries, slot_ms, window = self._entries, self.slot_ms, self.window_ms
        while entries and (entries[0][0] + 1) * slot_ms + window <= now_ms:
            self._total -= entries.popleft()[1]

    def used(self, now_ms: int) -> int:
        self._expire(now_ms)
        return self._total

    def wait_ms(self, now_ms: int, cost: int) -> int:
        self._expire(now_ms)
        excess = self._total + cost - self.limit
        if excess <= 0:
            return 0
        if cost > self.limit:
            # Can never fit: admit it alone once the window is empty rather than never.
            excess = self._total
        freed = 0
        for slot, units in self._entries:
            freed += units
            if freed >= excess:
                return (slot + 1) * self.slot_ms + self.window_ms - now_ms
        return 0  # unreachable: the entries sum to _total >= excess

    def commit(self, now_ms: int, cost: int) -> None:
        slot = now_ms // self.slot_ms
        entries = self._entries
        if entries and entries[-1][0] == slot:
            entries[-1][1] += cost
        else:
            entries.append([slot, cost])
        self._total += cost


class TokenBucket:
    """`capacity` tokens, refilled at `rate_per_s`; exact rational arithmetic (no drift, no float)."""

    __slots__ = ("_level", "_per_ms", "_updated", "capacity", "name", "rate_per_s", "stats")

    def __init__(self, name: str, capacity: int, rate_per_s: Fraction | int | float | str) -> None:
        rate = Fraction(str(rate_per_s)) if isinstance(rate_per_s, float) else Fraction(rate_per_s)
        if capacity <= 0 or rate <= 0:
            raise ConfigError(f"token bucket {name}: capacity and rate must be positive")
        self.name = name
        self.capacity = capacity
        self.rate_per_s = rate
        self.stats = LimitStats()
        self._per_ms = rate / 1000
        self._level = Fraction(capacity)
        self._updated: int | None = None

    def level(self, now_ms: int) -> Fraction:
        self._refill(now_ms)
        return self._level

    def _refill(self, now_ms: int) -> None:
        if self._updated is not None and now_ms > self._updated:
            self._level = min(Fraction(self.capacity), self._level + (now_ms - self._updated) * self._per_ms)
        if self._updated is None or now_ms > self._updated:
            self._updated = now_ms

    def wait_ms(self, now_ms: int, cost: int) -> int:
        self._refill(now_ms)
        # A cost above the capacity waits for a full bucket and leaves a debt (refused by the venue
        # anyway, all-or-nothing; callers split batches so this does not happen).
        need = min(cost, self.capacity)
        if self._level >= need:
            return 0
        return math.ceil((need - self._level) / self._per_ms)

    def commit(self, now_ms: int, cost: int) -> None:
        self._refill(now_ms)
        self._level -= cost

    def charge(self, now_ms: int, cost: int) -> None:
        """Charge after the fact (cancel-all costs 1 + the number cancelled, known from the answer)."""
        self.commit(now_ms, cost)
        self.stats.acquired += cost


async def acquire(
    parts: Sequence[tuple[Limit, int]], clock: Clock, sleep: Sleep, *, max_wait_ms: int | None = None
) -> int:
    """Wait until every (limit, cost) admits, charge them all at once; returns milliseconds waited.

    With `max_wait_ms`, a wait that would exceed it raises RateLimitedError(source="local") instead.
    """
    waited = 0
    while True:
        now = clock.now_ms()
        worst, blocker = 0, None
        for limit, cost in parts:
            wait = limit.wait_ms(now, cost)
            if wait > worst:
                worst, blocker = wait, limit
        if blocker is None:
            for limit, cost in parts:
                limit.commit(now, cost)
                limit.stats.acquired += cost
            return waited
        if max_wait_ms is not None and waited + worst > max_wait_ms:
            raise RateLimitedError(
                f"client rate limit {blocker.name}: would wait {worst} ms", source="local", retry_after=worst / 1000
            )
        blocker.stats.waits += 1
        blocker.stats.waited_ms += worst
        waited += worst
        await sleep(worst / 1000)


# --- configuration --------------------------------------------------------------------------------------


def _scaled(value: float | int, margin: Fraction) -> int:
    return max(1, math.floor(Fraction(str(value)) * margin))


@dataclass(frozen=True, slots=True)
class LimitsConfig:
    """Which quotas apply and how close to them to run.

    `margin` scales every limit (0.8 = use 80 % of the published quota). `overrides` replaces single
    entries of the per-IP table (tests use tiny limits); `signer_tier` names a row of SIGNER_TIERS,
    `custom_tier` replaces it. `max_wait_s` turns a longer wait into a local RateLimitedError.
    """

    margin: float = 0.8
    signer_tier: str = "standard"
    custom_tier: SignerTier | None = None
    overrides: Mapping[str, Quota] = field(default_factory=dict)
    enabled: bool = True
    max_wait_s: float | None = None

    def __post_init__(self) -> None:
        if not 0 < self.margin <= 1:
            raise ConfigError(f"rate-limit margin must be in (0, 1], got {self.margin}")
        if self.custom_tier is None and self.signer_tier.lower() not in SIGNER_TIERS:
            raise ConfigError(f"unknown signer tier {self.signer_tier!r}; known: {', '.join(SIGNER_TIERS)}")

    @property
    def tier(self) -> SignerTier:
        return self.custom_tier or SIGNER_TIERS[self.signer_tier.lower()]

    @property
    def _margin(self) -> Fraction:
        return Fraction(str(self.margin))

    def ip_limits(self) -> dict[str, list[Limit]]:
        table = {**IP_LIMITS, **self.overrides}
        out: dict[str, list[Limit]] = {}
        for name, quota in table.items():
            out[name] = [
                SlidingWindow(f"{name}/{window:g}s", _scaled(count, self._margin), round(window * 1000))
                for count, window in quota
            ]
        return out

    def signer_buckets(self, signer: str) -> dict[str, TokenBucket]:
        t, m = self.tier, self._margin
        return {
            ORDERS: TokenBucket(f"{signer}:orders", _scaled(t.orders_burst, m), Fraction(str(t.orders_rate)) * m),
            CANCELS: TokenBucket(f"{signer}:cancels", _scaled(t.cancels_burst, m), Fraction(str(t.cancels_rate)) * m),
        }


class IpLimiter:
    """The per-IP limits of one process (shared by every client and wallet)."""

    def __init__(self, config: LimitsConfig) -> None:
        self.config = config
        self.limits = config.ip_limits()

    def parts(self, service: str, method: str, path: str) -> list[tuple[Limit, int]]:
        if not self.config.enabled:
            return []
        return [(limit, 1) for name in ip_route(service, method, path) for limit in self.limits.get(name, ())]

    def stats(self) -> dict[str, LimitStats]:
        return {limit.name: limit.stats for limits in self.limits.values() for limit in limits}

    @property
    def waits(self) -> int:
        return sum(s.waits for s in self.stats().values())
