"""Faults the real venue inflicts, switchable from the config file and at runtime (/_sim/faults).

Every switch is off by default. Random faults draw from their own seeded generators, so a run
with the same seed and the same traffic fails the same way. Probabilities and durations are
simulation parameters, not money, so plain floats are fine here.
"""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import TYPE_CHECKING, Any, Final

from polyoms.core.errors import ConfigError

if TYPE_CHECKING:
    from polyoms.exchange.api.ws import Connection

RESTARTING_MESSAGE: Final = "the matching engine is restarting, please retry later"
INTERNAL_ERROR: Final = "internal server error"


# Upper bounds of the switches that are not probabilities: large enough for any rehearsal, small
# enough that one request cannot hang the exchange (latency 1e9 ms) or overflow a timer.
FAULT_MAXIMA: Final[dict[str, float]] = {
    "seed": 2**63 - 1,
    "http_latency_ms": 60_000,
    "http_latency_jitter_ms": 60_000,
    "retry_after_s": 3_600,
    "restart_window_s": 3_600.0,
    "post_only_window_s": 3_600.0,
    "restart_every_s": 7 * 86_400.0,
    "delayed_ms": 60_000,
    "ws_delay_ms": 60_000,
    "ws_stall_s": 3_600.0,
}


@dataclass(slots=True)
class FaultConfig:
    seed: int = 0
    # HTTP
    http_latency_ms: int = 0
    http_latency_jitter_ms: int = 0
    http_5xx_rate: float = 0.0
    http_429_rate: float = 0.0
    retry_after_s: int = 1
    # The weekly matching-engine restart: 425 for `restart_window_s`, then post-only mode.
    restart_window_s: float = 90.0
    post_only_window_s: float = 120.0
    restart_every_s: float = 0.0
    # Marketable orders answered `delayed` and matched `delayed_ms` later.
    order_delayed_rate: float = 0.0
    delayed_ms: int = 250
    # WebSockets (per outgoing frame)
    ws_drop_rate: float = 0.0
    ws_duplicate_rate: float = 0.0
    ws_delay_rate: float = 0.0
    ws_delay_ms: int = 500
    ws_reorder_rate: float = 0.0
    ws_disconnect_rate: float = 0.0
    ws_stall_rate: float = 0.0
    ws_stall_s: float = 40.0
    # Settlement: probability that a trade goes RETRYING -> FAILED.
    settlement_failure_rate: float = 0.0

    def validate(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            top = 1 if f.name.endswith("_rate") else FAULT_MAXIMA[f.name]
            shown = repr(value)[:40]
            number = not isinstance(value, bool) and isinstance(value, int | float)
            if not number or (isinstance(value, float) and not math.isfinite(value)):
                raise ConfigError(f"faults.{f.name} must be a number, got {shown}", field=f.name)
            if f.type in ("int", int) and not isinstance(value, int):
                raise ConfigError(f"faults.{f.name} must be a whole number, got {shown}", field=f.name)
            if not 0 <= value <= top:
                what = "a probability in" if f.name.endswith("_rate") else "within"
                raise ConfigError(f"faults.{f.name} is {what} [0, {top}], got {shown}", field=f.name)

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], base: FaultConfig | None = None) -> FaultConfig:
        known = {f.name: f for f in fields(cls)}
        unknown = sorted(set(data) - set(known))
        if unknown:
            raise ConfigError(f"unknown fault switch(es) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        merged = {**asdict(base or cls()), **data}
        for name, f in known.items():
            value = merged[name]
            if f.type in ("int", int) and isinstance(value, float) and value.is_integer():
                merged[name] = int(value)
        config = cls(**merged)
        config.validate()
        return config

    def any_on(self) -> bool:
        defaults = FaultConfig()
        return any(getattr(self, f.name) != getattr(defaults, f.name) for f in fields(self) if f.name != "seed")


# A moderate mix for rehearsals (`polyoms demo --faults`): every fault happens, none dominates.
REHEARSAL: Final = FaultConfig(
    http_latency_ms=20,
    http_latency_jitter_ms=30,
    http_5xx_rate=0.02,
    http_429_rate=0.02,
    order_delayed_rate=0.05,
    ws_drop_rate=0.01,
    ws_duplicate_rate=0.02,
    ws_delay_rate=0.02,
    ws_reorder_rate=0.02,
    ws_disconnect_rate=0.002,
    ws_stall_rate=0.001,
    ws_stall_s=15.0,
    settlement_failure_rate=0.02,
)


@dataclass(slots=True)
class _WsState:
    held: str | None = None
    stalled_until_ms: int = 0


@dataclass(slots=True)
class Faults:
    """Live fault state: the config plus the restart windows and per-socket WebSocket state."""

    config: FaultConfig = field(default_factory=FaultConfig)
    restart_until_ms: int = 0
    post_only_until_ms: int = 0
    next_restart_ms: int = 0
    _http_rng: random.Random = field(init=False)
    _ws_rng: random.Random = field(init=False)
    _order_rng: random.Random = field(init=False)
    _ws: dict[int, _WsState] = field(default_factory=dict)
    counts: Counter[str] = field(default_factory=Counter)
    """How many of each fault were injected (for reports: a rehearsal that injected nothing proves little)."""

    def __post_init__(self) -> None:
        self.reseed()

    def reseed(self) -> None:
        seed = self.config.seed
        self._http_rng = random.Random(f"http:{seed}")
        self._ws_rng = random.Random(f"ws:{seed}")
        self._order_rng = random.Random(f"order:{seed}")

    def update(self, changes: Mapping[str, Any]) -> None:
        reseed = "seed" in changes
        self.config = FaultConfig.from_mapping(changes, self.config)
        if reseed:
            self.reseed()

    def reset(self) -> None:
        self.config = FaultConfig()
        self.restart_until_ms = self.post_only_until_ms = self.next_restart_ms = 0
        self._ws.clear()
        self.reseed()

    # --- the matching engine's restart -----------------------------------------------------------

    def restart(self, now_ms: int) -> None:
        self.restart_until_ms = now_ms + int(self.config.restart_window_s * 1000)
        self.post_only_until_ms = self.restart_until_ms + int(self.config.post_only_window_s * 1000)

    def tick(self, now_ms: int) -> None:
        every = self.config.restart_every_s
        if every <= 0:
            return
        if self.next_restart_ms == 0:
            self.next_restart_ms = now_ms + int(every * 1000)
        elif now_ms >= self.next_restart_ms:
            self.restart(now_ms)
            self.next_restart_ms = now_ms + int(every * 1000)

    def restarting(self, now_ms: int) -> float | None:
        """Seconds left in the 425 window, or None."""
        return (self.restart_until_ms - now_ms) / 1000 if now_ms < self.restart_until_ms else None

    def post_only(self, now_ms: int) -> float | None:
        """Seconds left in post-only mode, or None."""
        if self.restart_until_ms <= now_ms < self.post_only_until_ms:
            return (self.post_only_until_ms - now_ms) / 1000
        return None

    # --- HTTP ------------------------------------------------------------------------------------

    def http_latency_s(self) -> float:
        c = self.config
        if not c.http_latency_ms and not c.http_latency_jitter_ms:
            return 0.0
        return (c.http_latency_ms + self._http_rng.random() * c.http_latency_jitter_ms) / 1000

    def http_failure(self) -> int | None:
        """An HTTP status to answer instead of serving the request (500/502/503 or 429), or None."""
        c = self.config
        if c.http_429_rate and self._http_rng.random() < c.http_429_rate:
            self.counts["http_429"] += 1
            return 429
        if c.http_5xx_rate and self._http_rng.random() < c.http_5xx_rate:
            self.counts["http_5xx"] += 1
            return self._http_rng.choice((500, 502, 503))
        return None

    def delay_order(self) -> bool:
        rate = self.config.order_delayed_rate
        delayed = bool(rate) and self._order_rng.random() < rate
        if delayed:
            self.counts["order_delayed"] += 1
        return delayed

    # --- WebSockets ------------------------------------------------------------------------------

    def ws_transform(self, conn: Connection, frame: str, now_ms: int) -> Iterable[tuple[float, str | None]]:
        """What to do with one outgoing frame: a list of (delay seconds, frame or None = disconnect)."""
        c = self.config
        state = self._ws.setdefault(id(conn), _WsState())
        rng = self._ws_rng
        if now_ms < state.stalled_until_ms:
            return ()  # a silent stall: the socket stays open, nothing is sent (not even PONG)
        counts = self.counts
        if c.ws_stall_rate and rng.random() < c.ws_stall_rate:
            state.stalled_until_ms = now_ms + int(c.ws_stall_s * 1000)
            counts["ws_stall"] += 1
            return ()
        if c.ws_disconnect_rate and rng.random() < c.ws_disconnect_rate:
            self._ws.pop(id(conn), None)
            counts["ws_disconnect"] += 1
            return ((0.0, None),)
        if c.ws_drop_rate and rng.random() < c.ws_drop_rate:
            counts["ws_drop"] += 1
            return ()
        out: list[tuple[float, str | None]] = []
        delay = 0.0
        if c.ws_delay_rate and rng.random() < c.ws_delay_rate:
            delay = c.ws_delay_ms / 1000
            counts["ws_delay"] += 1
        if c.ws_reorder_rate and state.held is None and rng.random() < c.ws_reorder_rate:
            state.held = frame  # goes out after the next frame
            counts["ws_reorder"] += 1
            return ()
        out.append((delay, frame))
        if c.ws_duplicate_rate and rng.random() < c.ws_duplicate_rate:
            out.append((0.0, frame))
            counts["ws_duplicate"] += 1
        if state.held is not None:
            out.append((0.0, state.held))
            state.held = None
        return out

    def forget(self, conn: Connection) -> None:
        self._ws.pop(id(conn), None)

    def tracked(self) -> int:
        """How many sockets have fault state (held frames, stalls); 0 once all are closed."""
        return len(self._ws)
