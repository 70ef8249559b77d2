"""Everything a process needs to talk to Polymarket over REST, for any number of wallets.

Shared by all: one connection pool per host and the per-IP rate limits (the venue counts per IP).
Per wallet: a ClobClient with its own credentials, per-signer buckets (shared only by wallets that
sign with the same key, as the venue counts per signer) and its own circuit breaker, so a wallet
whose requests fail does not stop the others. Public market data, Gamma and the Data API have their
own breakers too.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

from polyoms.core.clock import Clock, WallClock
from polyoms.core.market_events import BookSnapshot
from polyoms.polymarket.client.breaker import BreakerPolicy, CircuitBreaker
from polyoms.polymarket.client.clob import ClobClient
from polyoms.polymarket.client.gamma import DataClient, GammaClient
from polyoms.polymarket.client.models import DataPosition
from polyoms.polymarket.client.ratelimit import IpLimiter, LimitsConfig, TokenBucket
from polyoms.polymarket.client.rest import HttpPools, Observer, RestCore, Timeouts
from polyoms.polymarket.client.retry import RetryPolicy
from polyoms.polymarket.client.timing import MonotonicClock, Sleep
from polyoms.polymarket.client.wallet import Wallet
from polyoms.polymarket.protocol import constants


@dataclass(frozen=True, slots=True)
class ClientConfig:
    clob_url: str = "https://clob.polymarket.com"
    gamma_url: str = "https://gamma-api.polymarket.com"
    data_url: str = "https://data-api.polymarket.com"
    chain_id: int = constants.POLYGON
    timeouts: Timeouts = field(default_factory=Timeouts)
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    breaker: BreakerPolicy = field(default_factory=BreakerPolicy)
    limits: LimitsConfig = field(default_factory=LimitsConfig)
    pool_size: int = 100
    """Connections per host."""
    books_chunk: int = 100
    """Tokens per POST /books (the venue's maximum is UNCONFIRMED)."""
    concurrency: int = 4
    """Requests in flight at once for one batch helper call."""
    user_agent: str = "polyoms"


class ClientHub:
    def __init__(
        self,
        config: ClientConfig | None = None,
        *,
        clock: Clock | None = None,
        sleep: Sleep | None = None,
        wall_clock: Clock | None = None,
        rng: random.Random | None = None,
        observer: Observer | None = None,
    ) -> None:
        self.config = config or ClientConfig()
        self.clock: Clock = clock or MonotonicClock()
        self.sleep: Sleep = sleep or asyncio.sleep
        self.wall_clock: Clock = wall_clock or WallClock()
        self.rng = rng or random.Random()
        self.observer = observer
        self.pools = HttpPools(limit_per_host=self.config.pool_size, user_agent=self.config.user_agent)
        self.ip_limiter = IpLimiter(self.config.limits)
        self._signer_buckets: dict[str, dict[str, TokenBucket]] = {}
        self._wallet_clients: dict[tuple[str, str, int, int], ClobClient] = {}
        self.public = self._clob(None, "clob:public")
        self.gamma = GammaClient(self._core("gamma", "gamma", self.config.gamma_url))
        self.data = DataClient(self._core("data", "data", self.config.data_url))

    def _core(
        self, service: str, name: str, base_url: str, signer_buckets: dict[str, TokenBucket] | None = None
    ) -> RestCore:
        return RestCore(
            name=name,
            service=service,
            base_url=base_url,
            pools=self.pools,
            ip_limiter=self.ip_limiter,
            breaker=CircuitBreaker(name, self.config.breaker, self.clock),
            retry=self.config.retry,
            timeouts=self.config.timeouts,
            clock=self.clock,
            sleep=self.sleep,
            rng=self.rng,
            signer_buckets=signer_buckets,
            observer=self.observer,
        )

    def _clob(self, wallet: Wallet | None, name: str) -> ClobClient:
        buckets = None
        if wallet is not None:
            # Keyed by the signing address: the venue's per-signer buckets are per key, not per funder.
            key = wallet.address.lower()
            buckets = self._signer_buckets.get(key)
            if buckets is None:
                buckets = self._signer_buckets[key] = self.config.limits.signer_buckets(wallet.label)
        return ClobClient(
            self._core("clob", name, self.config.clob_url, buckets),
            chain_id=self.config.chain_id,
            wall_clock=self.wall_clock,
            wallet=wallet,
            books_chunk=self.config.books_chunk,
            concurrency=self.config.concurrency,
        )

    def clob(self, wallet: Wallet) -> ClobClient:
        """The wallet's client (one per wallet identity, created on first use)."""
        key = (wallet.address.lower(), wallet.maker.lower(), int(wallet.signature_type), wallet.nonce)
        client = self._wallet_clients.get(key)
        if client is None:
            client = self._wallet_clients[key] = self._clob(wallet, f"clob:{wallet.label}")
        elif wallet.creds is not None and wallet.creds != client.creds:
            # The caller holds newer credentials (rotated key): the client signs with those from now on.
            client.creds = wallet.creds
            client.wallet = wallet
        return client

    @property
    def wallet_clients(self) -> list[ClobClient]:
        return list(self._wallet_clients.values())

    # --- batch helpers -----------------------------------------------------------------------------------

    async def books(self, token_ids: Iterable[str | int]) -> dict[str, BookSnapshot]:
        """Books of many tokens (POST /books in chunks, within the limits), by token id."""
        return {b.asset_id: b for b in await self.public.books(token_ids)}

    async def positions(self, wallets: Iterable[Wallet | str]) -> dict[str, list[DataPosition]]:
        """Data-API positions of many wallets (by funder address), a few requests at a time."""
        users = list(dict.fromkeys(w.maker if isinstance(w, Wallet) else w for w in wallets))
        gate = asyncio.Semaphore(self.config.concurrency)

        async def one(user: str) -> list[DataPosition]:
            async with gate:
                return await self.data.all_positions(user)

        results = await asyncio.gather(*(one(u) for u in users))
        return dict(zip(users, results, strict=True))

    # --- state ---------------------------------------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        """Counters for dashboards and tests: requests, retries, breakers, rate-limit waits."""
        cores = [self.public.core, self.gamma.core, self.data.core, *(c.core for c in self.wallet_clients)]
        return {
            "clients": {
                c.name: {
                    "sent": c.stats.sent,
                    "retries": c.stats.retries,
                    "transport_errors": c.stats.transport_errors,
                    "statuses": dict(c.stats.statuses),
                    "breaker": c.breaker.state.value,
                    "breaker_opened": c.breaker.opened,
                }
                for c in cores
            },
            "ip_limit_waits": self.ip_limiter.waits,
            "signer_limit_waits": {
                signer: {name: b.stats.waits for name, b in buckets.items()}
                for signer, buckets in self._signer_buckets.items()
            },
        }

    async def close(self) -> None:
        await self.pools.close()

    async def __aenter__(self) -> ClientHub:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()
