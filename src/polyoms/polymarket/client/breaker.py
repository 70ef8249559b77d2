"""A circuit breaker per host and failure domain (one per wallet client, one for public data).

CLOSED: requests flow; `failure_threshold` consecutive transport failures or 5xx answers open it.
OPEN: requests fail fast with CircuitOpenError (nothing is sent) until `cooldown_s` has passed.
HALF_OPEN: exactly one probe request is let through; its success closes the breaker, its failure
opens it again for another cool-down. Any HTTP answer that is not a 5xx proves the host alive and
counts as a success (a 429 or 400 is the caller's problem, not the host's).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from polyoms.core.clock import Clock
from polyoms.core.errors import ConfigError
from polyoms.polymarket.client.errors import CircuitOpenError
from polyoms.polymarket.client.redact import get_logger

log = get_logger()


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@dataclass(frozen=True, slots=True)
class BreakerPolicy:
    failure_threshold: int = 5
    cooldown_s: float = 10.0

    def __post_init__(self) -> None:
        if self.failure_threshold < 1 or self.cooldown_s < 0:
            raise ConfigError("breaker: failure_threshold must be >= 1 and cooldown_s >= 0")


class CircuitBreaker:
    def __init__(self, name: str, policy: BreakerPolicy, clock: Clock) -> None:
        self.name = name
        self.policy = policy
        self.clock = clock
        self.consecutive_failures = 0
        self.opened = 0
        """Times the breaker opened."""
        self.rejected = 0
        """Requests refused while open (or while a half-open probe was in flight)."""
        self._state = BreakerState.CLOSED
        self._open_until_ms = 0
        self._probe_in_flight = False

    @property
    def state(self) -> BreakerState:
        if self._state is BreakerState.OPEN and self.clock.now_ms() >= self._open_until_ms:
            self._state = BreakerState.HALF_OPEN
            self._probe_in_flight = False
            log.info("circuit %s half-open: one probe request allowed", self.name)
        return self._state

    def before_request(self) -> None:
        """Admit a request or raise CircuitOpenError. Each admitted request must report back once."""
        state = self.state
        if state is BreakerState.CLOSED:
            return
        if state is BreakerState.HALF_OPEN and not self._probe_in_flight:
            self._probe_in_flight = True
            return
        self.rejected += 1
        retry_after = max(0.0, (self._open_until_ms - self.clock.now_ms()) / 1000)
        raise CircuitOpenError(
            f"circuit {self.name} is {state.value}: request not sent",
            retry_after=retry_after,
            source="local",
            circuit=self.name,
        )

    def on_success(self) -> None:
        if self._state is not BreakerState.CLOSED:
            log.info("circuit %s closed", self.name)
        self._state = BreakerState.CLOSED
        self._probe_in_flight = False
        self.consecutive_failures = 0

    def on_failure(self) -> None:
        self.consecutive_failures += 1
        if self._state is BreakerState.HALF_OPEN or self.consecutive_failures >= self.policy.failure_threshold:
            self._trip()

    def on_abandoned(self) -> None:
        """The request ended without telling anything about the host (cancelled): free the probe slot."""
        self._probe_in_flight = False

    def _trip(self) -> None:
        if self._state is not BreakerState.OPEN:
            self.opened += 1
            log.warning(
                "circuit %s open after %d consecutive failures; cooling down %.1f s",
                self.name,
                self.consecutive_failures,
                self.policy.cooldown_s,
            )
        self._state = BreakerState.OPEN
        self._probe_in_flight = False
        self._open_until_ms = self.clock.now_ms() + round(self.policy.cooldown_s * 1000)
