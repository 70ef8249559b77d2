"""Breaker, retry and timing policies on their own (virtual clock, seeded randomness)."""

from __future__ import annotations

import random

import pytest

from polyoms.core.clock import VirtualClock
from polyoms.core.errors import ConfigError
from polyoms.polymarket.client import BreakerPolicy, BreakerState, CircuitBreaker, CircuitOpenError, RetryPolicy
from polyoms.polymarket.client.retry import parse_retry_after


def test_breaker_admits_a_single_probe_when_half_open() -> None:
    clock = VirtualClock(0)
    breaker = CircuitBreaker("t", BreakerPolicy(failure_threshold=2, cooldown_s=5), clock)
    for _ in range(2):
        breaker.before_request()
        breaker.on_failure()
    assert breaker.state is BreakerState.OPEN
    with pytest.raises(CircuitOpenError) as info:
        breaker.before_request()
    assert info.value.retry_after == 5 and info.value.source == "local"
    clock.advance(5_000)
    breaker.before_request()  # the probe
    with pytest.raises(CircuitOpenError):
        breaker.before_request()  # a second request while the probe is out
    breaker.on_abandoned()  # the probe was cancelled: it told nothing, another may go
    breaker.before_request()
    breaker.on_success()
    assert breaker.state is BreakerState.CLOSED and breaker.rejected == 2 and breaker.opened == 1
    breaker.before_request()
    breaker.on_failure()
    breaker.before_request()
    breaker.on_success()  # a success in between resets the count
    breaker.before_request()
    breaker.on_failure()
    assert breaker.state is BreakerState.CLOSED


def test_full_jitter_backoff_bounds_and_retry_after() -> None:
    policy = RetryPolicy(attempts=6, base_delay_s=0.1, max_delay_s=1.0)
    rng = random.Random(0)
    for retry, ceiling in ((1, 0.1), (2, 0.2), (3, 0.4), (4, 0.8), (5, 1.0), (9, 1.0)):
        samples = [policy.backoff_s(retry, rng) for _ in range(300)]
        assert all(0 <= s <= ceiling for s in samples) and max(samples) > ceiling * 0.9  # full range used
    assert policy.delay_s(1, rng, retry_after=3.0) >= 3.0
    with pytest.raises(ConfigError):
        RetryPolicy(attempts=0)


def test_retry_after_header_forms() -> None:
    assert parse_retry_after("7") == 7.0 and parse_retry_after("1.5") == 1.5
    assert parse_retry_after(None) is None and parse_retry_after("soon") is None
    assert parse_retry_after("-3") == 0.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:10 GMT", now_s=1445412480.0) == 10.0
