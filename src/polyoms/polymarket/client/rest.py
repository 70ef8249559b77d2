"""The request executor every client is built on: pools, limits, breaker, retries, typed errors, logs.

One `HttpPools` per process holds one aiohttp session (and connection pool) per host. One `RestCore`
is one failure domain on one host: its own circuit breaker and, for a wallet, its own per-signer
buckets, on top of the shared pool and the shared per-IP limits.

What a request goes through, per attempt:
  breaker admits it (or CircuitOpenError: nothing sent) -> limits admit it (async wait) ->
  auth headers signed now (fresh timestamp) -> sent with a timeout -> answer classified:
  2xx returned; anything else becomes the venue's typed error (`protocol.errors.error_from_response`),
  retried only if the request is idempotent and the failure is transient (see `retry.py`).
Order placements pass `order_ids`: a timeout, a dropped connection after sending or a 5xx then raises
OrderOutcomeUnknownError carrying the ids, and nothing is ever re-sent.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import aiohttp
import msgspec

from polyoms.core.clock import Clock
from polyoms.core.errors import (
    CancelOnlyError,
    MalformedMessageError,
    PolyomsError,
    PostOnlyModeError,
    RateLimitedError,
    TradingDisabledError,
    VenueRestartingError,
    VenueUnavailableError,
)
from polyoms.polymarket.client.breaker import CircuitBreaker
from polyoms.polymarket.client.errors import OrderOutcomeUnknownError
from polyoms.polymarket.client.ratelimit import IpLimiter, Limit, TokenBucket, acquire
from polyoms.polymarket.client.redact import SENSITIVE_HEADERS, get_logger, redact
from polyoms.polymarket.client.retry import RetryPolicy, parse_retry_after
from polyoms.polymarket.client.timing import Sleep
from polyoms.polymarket.protocol.errors import error_from_response

log = get_logger()

AuthFn = Callable[[str, str, bytes | None], Mapping[str, str]]
"""(METHOD, path without query, body) -> headers, called once per attempt (fresh timestamp)."""
Params = Mapping[str, str] | Sequence[tuple[str, str]]
"""Query parameters; a sequence of pairs allows repeated keys (Gamma's list filters)."""
Observer = Callable[[int, str, str], None]
"""(clock ms, METHOD, path) for every request actually sent; tests count with it."""

_MODE_ERRORS: Final = (PostOnlyModeError, CancelOnlyError, TradingDisabledError)
# Connection establishment failed: the request cannot have reached the venue.
_NOT_SENT: Final = (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError)
_JSON: Final = {"Content-Type": "application/json"}


@dataclass(frozen=True, slots=True)
class Timeouts:
    total_s: float = 10.0
    connect_s: float = 3.0
    order_s: float = 5.0
    """POST /order(s): shorter, because an unanswered placement is resolved by hash, not waited for."""


class HttpPools:
    """One aiohttp ClientSession (with its own connector) per host, shared by every client."""

    def __init__(self, *, limit_per_host: int = 100, user_agent: str = "polyoms") -> None:
        self.limit_per_host = limit_per_host
        self.user_agent = user_agent
        self._sessions: dict[str, aiohttp.ClientSession] = {}

    def session(self, base_url: str) -> aiohttp.ClientSession:
        """The host's session, created on first use (it must be created inside the running loop)."""
        key = base_url.rstrip("/")
        session = self._sessions.get(key)
        if session is None or session.closed:
            connector = aiohttp.TCPConnector(limit=self.limit_per_host, ttl_dns_cache=300)
            session = aiohttp.ClientSession(
                base_url=key,
                connector=connector,
                headers={"User-Agent": self.user_agent, "Accept": "*/*"},
                raise_for_status=False,
            )
            self._sessions[key] = session
        return session

    @property
    def hosts(self) -> list[str]:
        return list(self._sessions)

    async def close(self) -> None:
        sessions, self._sessions = list(self._sessions.values()), {}
        for session in sessions:
            await session.close()


@dataclass(frozen=True, slots=True)
class HttpResponse:
    status: int
    body: bytes
    headers: Mapping[str, str]

    def json(self, what: str) -> Any:
        try:
            return msgspec.json.decode(self.body)
        except msgspec.DecodeError:
            raise MalformedMessageError(f"{what}: the body is not JSON", source="venue", what=what) from None


@dataclass(slots=True)
class RestStats:
    sent: int = 0
    retries: int = 0
    transport_errors: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    by_path: Counter[str] = field(default_factory=Counter)


class RestCore:
    """One failure domain on one host (see the module docstring)."""

    def __init__(
        self,
        *,
        name: str,
        service: str,
        base_url: str,
        pools: HttpPools,
        ip_limiter: IpLimiter,
        breaker: CircuitBreaker,
        retry: RetryPolicy,
        timeouts: Timeouts,
        clock: Clock,
        sleep: Sleep,
        rng: random.Random,
        signer_buckets: Mapping[str, TokenBucket] | None = None,
        observer: Observer | None = None,
    ) -> None:
        self.name = name
        self.service = service
        self.base_url = base_url.rstrip("/")
        self.pools = pools
        self.ip_limiter = ip_limiter
        self.breaker = breaker
        self.retry = retry
        self.timeouts = timeouts
        self.clock = clock
        self.sleep = sleep
        self.rng = rng
        self.signer_buckets = signer_buckets or {}
        self.observer = observer
        self.stats = RestStats()
        self._warned_rate_limit = False

    def _limit_parts(self, method: str, path: str, signer: tuple[str, int] | None) -> list[tuple[Limit, int]]:
        parts = self.ip_limiter.parts(self.service, method, path)
        if signer is not None and self.ip_limiter.config.enabled:
            bucket = self.signer_buckets.get(signer[0])
            if bucket is not None:
                parts.append((bucket, signer[1]))
        return parts

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Params | None = None,
        body: bytes | None = None,
        auth: AuthFn | None = None,
        idempotent: bool,
        accept: tuple[int, ...] = (),
        signer: tuple[str, int] | None = None,
        order_ids: Sequence[str] | None = None,
        timeout_s: float | None = None,
    ) -> HttpResponse:
        """Send one request (retrying when allowed); the 2xx response or the typed error.

        `signer` = (bucket name, cost) for per-signer trading limits. `order_ids` marks an order
        placement: never retried, and an unusable answer raises OrderOutcomeUnknownError. Statuses in
        `accept` are returned like a 2xx (the caller reads their body, e.g. a heartbeat's expected id).
        """
        placement = order_ids is not None
        attempts = 1 if placement or not idempotent else self.retry.attempts
        timeout = aiohttp.ClientTimeout(
            total=timeout_s or (self.timeouts.order_s if placement else self.timeouts.total_s),
            connect=self.timeouts.connect_s,
        )
        max_wait = self.ip_limiter.config.max_wait_s
        max_wait_ms = None if max_wait is None else round(max_wait * 1000)
        for attempt in range(1, attempts + 1):
            self.breaker.before_request()
            try:
                await acquire(self._limit_parts(method, path, signer), self.clock, self.sleep, max_wait_ms=max_wait_ms)
                response, error, retry_after = await self._attempt(
                    method, path, params, body, auth, timeout, order_ids, accept
                )
            except BaseException:
                self.breaker.on_abandoned()
                raise
            if response is not None:
                return response
            assert error is not None
            if attempt >= attempts or not _transient(error):
                raise error
            if retry_after is not None and retry_after > self.retry.max_retry_after_s:
                raise error
            delay = self.retry.delay_s(attempt, self.rng, retry_after)
            self.stats.retries += 1
            log.warning(
                "%s %s %s failed (%s); retry %d/%d in %.3f s",
                self.name,
                method,
                path,
                error.message,
                attempt,
                attempts - 1,
                delay,
            )
            await self.sleep(delay)
        raise AssertionError("unreachable")  # the loop returns or raises

    async def _attempt(
        self,
        method: str,
        path: str,
        params: Params | None,
        body: bytes | None,
        auth: AuthFn | None,
        timeout: aiohttp.ClientTimeout,
        order_ids: Sequence[str] | None,
        accept: tuple[int, ...],
    ) -> tuple[HttpResponse | None, PolyomsError | None, float | None]:
        headers: dict[str, str] = dict(_JSON) if body is not None else {}
        if auth is not None:
            headers.update(auth(method, path, body))
        call_secrets = [v for k, v in headers.items() if k in SENSITIVE_HEADERS]
        session = self.pools.session(self.base_url)
        self.stats.sent += 1
        self.stats.by_path[f"{method} {path}"] += 1
        if self.observer is not None:
            self.observer(self.clock.now_ms(), method, path)
        started = time.perf_counter()
        try:
            async with session.request(
                method, path, params=params, data=body, headers=headers, timeout=timeout
            ) as resp:
                payload = await resp.read()
                status = resp.status
                resp_headers = resp.headers  # case-insensitive, as header names are
        except (aiohttp.ClientError, TimeoutError) as exc:
            self.breaker.on_failure()
            self.stats.transport_errors += 1
            kind = "timeout" if isinstance(exc, TimeoutError) else type(exc).__name__
            detail = redact(str(exc), call_secrets)[:200]
            log.warning("%s %s %s: transport failure %s %s", self.name, method, path, kind, detail)
            if order_ids is not None and not isinstance(exc, _NOT_SENT):
                raise OrderOutcomeUnknownError(
                    f"{method} {path}: no answer ({kind}); the order(s) may or may not exist",
                    order_ids=tuple(order_ids),
                    reason=kind,
                    source="transport",
                ) from None
            unavailable = VenueUnavailableError(
                f"{method} {path}: transport failure ({kind})", source="transport", detail=detail or None
            )
            return None, unavailable, None
        elapsed_ms = (time.perf_counter() - started) * 1000
        self.stats.statuses[status] += 1
        log.debug("%s %s %s -> %d (%d bytes, %.1f ms)", self.name, method, path, status, len(payload), elapsed_ms)
        if resp_headers.get("Poly-RateLimit-Warning", "").lower() == "true" and not self._warned_rate_limit:
            self._warned_rate_limit = True
            log.warning("%s: the venue warns this signer is over its trading rate limit", self.name)
        if 200 <= status < 300 or status in accept:
            self.breaker.on_success()
            return HttpResponse(status, payload, resp_headers), None, None
        retry_after = parse_retry_after(resp_headers.get("Retry-After"))
        text = redact(payload.decode("utf-8", "replace"), call_secrets)
        error = error_from_response(status, text, retry_after=retry_after, method=method, path=path)
        server_failure = status >= 500 and not isinstance(error, _MODE_ERRORS)
        if server_failure:
            self.breaker.on_failure()
        else:
            self.breaker.on_success()  # the host answered; the request was the problem
        log.info("%s %s %s -> %d %s", self.name, method, path, status, error.message[:200])
        if order_ids is not None and server_failure:
            raise OrderOutcomeUnknownError(
                f"{method} {path}: HTTP {status}; the order(s) may or may not exist",
                order_ids=tuple(order_ids),
                reason=f"HTTP {status}",
                source="venue",
                status=status,
                venue_message=error.venue_message,
            )
        return None, error, getattr(error, "retry_after", None)


def _transient(error: PolyomsError) -> bool:
    """Worth another try: transport failures, 5xx, 425, 429 (mode 503s only with a short Retry-After)."""
    if isinstance(error, RateLimitedError | VenueRestartingError):
        return True
    if isinstance(error, _MODE_ERRORS):
        return getattr(error, "retry_after", None) is not None
    return isinstance(error, VenueUnavailableError)
