"""Shared pieces of the client tests: a local exchange on a free loopback port, keys, hubs."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from typing import Any, TypeVar

import httpx
import pytest
from aiohttp import web

from polyoms.core.clock import VirtualClock
from polyoms.exchange.api.runner import ThreadedSim, build_service
from polyoms.exchange.markets import MarketSpec
from polyoms.polymarket.client import (
    BreakerPolicy,
    ClientConfig,
    ClientHub,
    LimitsConfig,
    RetryPolicy,
    Timeouts,
    VirtualTimer,
    Wallet,
)

# Well-known development keys (Hardhat accounts 3-6); never funded anywhere real.
KEY_A = "0x7c852118294e51e653712a81e05800f419141751be58f605c371e15141b007a6"
KEY_B = "0x47e179ec197488593b187f80a00eb0da91f1b9d0b13f8733639f19c30a34926a"
KEY_C = "0x8b3a350cf5c34c9194ca85829a2df0ec3153be0318b5e2d3348e872092edffba"
KEY_D = "0x92db14e403b83dfe3df233f83dfa3a0d7096f21ca9b0d6d6b8d88b2b4ec1564e"

T = TypeVar("T")


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


@pytest.fixture
def sim() -> Iterator[ThreadedSim]:
    with ThreadedSim(build_service(seed=5)) as server:
        yield server


@pytest.fixture
def sim_clock() -> VirtualClock:
    return VirtualClock(int(time.time() * 1000))


@pytest.fixture
def vsim(sim_clock: VirtualClock) -> Iterator[ThreadedSim]:
    """The exchange on a virtual clock (restart and post-only windows are then under test control)."""
    with ThreadedSim(build_service(seed=6, clock=sim_clock)) as server:
        yield server


def fund(sim: ThreadedSim, address: str, pusd: str = "0", tokens: dict[str, str] | None = None) -> None:
    resp = httpx.post(f"{sim.url}/_sim/fund", json={"address": address, "pusd": pusd, "tokens": tokens or {}})
    assert resp.status_code == 200, resp.text


def faults(sim: ThreadedSim, **changes: Any) -> dict[str, Any]:
    resp = httpx.post(f"{sim.url}/_sim/faults", json=changes)
    assert resp.status_code == 200, resp.text
    return resp.json()  # type: ignore[no-any-return]


def market(sim: ThreadedSim, tick: str = "0.01", neg_risk: bool = False) -> MarketSpec:
    return next(m for m in sim.service.exchange.markets() if m.tick.text == tick and m.neg_risk is neg_risk)


def hub_for(
    sim: ThreadedSim,
    timer: VirtualTimer | None = None,
    *,
    retry: RetryPolicy | None = None,
    breaker: BreakerPolicy | None = None,
    limits: LimitsConfig | None = None,
    timeouts: Timeouts | None = None,
    **config: Any,
) -> ClientHub:
    """A hub on the local exchange; with a VirtualTimer its limits, breaker and backoff use virtual time."""
    cfg = ClientConfig(
        clob_url=sim.url,
        gamma_url=config.pop("gamma_url", "http://127.0.0.1:9"),
        data_url=config.pop("data_url", "http://127.0.0.1:9"),
        retry=retry or RetryPolicy(),
        breaker=breaker or BreakerPolicy(),
        limits=limits or LimitsConfig(),
        timeouts=timeouts or Timeouts(),
        **config,
    )
    if timer is None:
        return ClientHub(cfg)
    return ClientHub(cfg, clock=timer.clock, sleep=timer.sleep, rng=random.Random(1))


async def keyed(hub: ClientHub, key: str, name: str) -> Wallet:
    """A wallet with API credentials obtained from the exchange (L1 create-or-derive)."""
    wallet = Wallet.from_key(key, name=name)
    client = hub.clob(wallet)
    await client.create_or_derive_api_key()
    assert client.wallet is not None and client.wallet.creds is not None
    return client.wallet


# --- a scriptable fake venue (for answers the local exchange never gives) ----------------------------

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class FakeVenue:
    """An aiohttp server on a free loopback port whose routes the test writes; it records every request."""

    def __init__(self, routes: dict[tuple[str, str], Handler]) -> None:
        self.routes = routes
        self.requests: list[tuple[str, str, dict[str, str], bytes]] = []
        self.queries: list[list[tuple[str, str]]] = []
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        self.requests.append((request.method, request.path, dict(request.headers), body))
        self.queries.append(list(request.query.items()))
        handler = self.routes.get((request.method, request.path)) or self.routes.get((request.method, "*"))
        if handler is None:
            return web.json_response({"error": "not found"}, status=404)
        return await handler(request)

    async def __aenter__(self) -> FakeVenue:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._dispatch)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert server is not None
        port = server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def count(self, method: str, path: str) -> int:
        return sum(1 for m, p, _, _ in self.requests if (m, p) == (method, path))


def reply(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        return web.json_response(data, status=status, headers=headers)

    return handler


def fake_hub(url: str, timer: VirtualTimer | None = None, **kw: Any) -> ClientHub:
    """A hub whose CLOB, Gamma and Data hosts all point at one fake venue."""
    timer = timer or VirtualTimer()
    cfg = ClientConfig(
        clob_url=url,
        gamma_url=url,
        data_url=url,
        retry=kw.pop("retry", RetryPolicy()),
        breaker=kw.pop("breaker", BreakerPolicy()),
        limits=kw.pop("limits", LimitsConfig()),
        timeouts=kw.pop("timeouts", Timeouts()),
        **kw,
    )
    return ClientHub(cfg, clock=timer.clock, sleep=timer.sleep, rng=random.Random(2))
