"""The venue's dead-man switch: chained heartbeat ids per user, expiry on silence (doc §4.8)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from random import Random
from typing import Final

# The venue cancels after 10 s without a valid heartbeat and allows up to ~5 s of buffer.
HEARTBEAT_TIMEOUT_MS: Final = 10_000
HEARTBEAT_GRACE_MS: Final = 5_000


@dataclass(slots=True)
class _Chain:
    expected_id: str
    last_ms: int


@dataclass(slots=True)
class Heartbeats:
    rng: Random
    timeout_ms: int = HEARTBEAT_TIMEOUT_MS + HEARTBEAT_GRACE_MS
    _chains: dict[str, _Chain] = field(default_factory=dict)

    def beat(self, owner: str, heartbeat_id: str | None, now_ms: int) -> tuple[bool, str]:
        """(accepted, id to send next time). An empty/None id starts (or restarts) the chain."""
        chain = self._chains.get(owner)
        if chain is not None and heartbeat_id and heartbeat_id != chain.expected_id:
            return False, chain.expected_id
        if chain is not None and not heartbeat_id and now_ms - chain.last_ms <= self.timeout_ms:
            # A live chain must be continued with its id; the venue answers with the expected one.
            return False, chain.expected_id
        new_id = str(uuid.UUID(int=self.rng.getrandbits(128), version=4))
        self._chains[owner] = _Chain(new_id, now_ms)
        return True, new_id

    def expired(self, now_ms: int) -> list[str]:
        """Owners whose heartbeats stopped for longer than the timeout; their chains end here."""
        dead = [owner for owner, c in self._chains.items() if now_ms - c.last_ms > self.timeout_ms]
        for owner in dead:
            del self._chains[owner]
        return dead

    def active(self, owner: str) -> bool:
        return owner in self._chains
