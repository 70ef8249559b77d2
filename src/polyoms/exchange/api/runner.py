"""Starting and stopping the local exchange: in an event loop, or in a thread for sync callers."""

from __future__ import annotations

import asyncio
import dataclasses
import threading
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

from aiohttp import web

from polyoms.core.clock import Clock, WallClock
from polyoms.core.errors import ConfigError
from polyoms.core.units import Micro
from polyoms.exchange.api.app import make_app
from polyoms.exchange.api.faults import FaultConfig, Faults
from polyoms.exchange.api.service import SimService
from polyoms.exchange.engine import Exchange
from polyoms.exchange.life.market import MarketLife
from polyoms.exchange.life.scenarios import scenario as named_scenario
from polyoms.exchange.markets import MarketSpec, default_markets, markets_from_config, read_config_file
from polyoms.exchange.settlement import SettlementConfig
from polyoms.polymarket.protocol import constants as C

T = TypeVar("T")


def load_sim_config(path: str | Path) -> tuple[tuple[MarketSpec, ...], FaultConfig]:
    """Markets and fault switches from one file: `[[markets]]`, `[[neg_risk_events]]`, `[faults]`."""
    data = read_config_file(path)
    faults_raw = data.pop("faults", {}) if isinstance(data, dict) else {}
    if not isinstance(faults_raw, dict):
        raise ConfigError(f"{path}: [faults] must be a table of switches")
    try:
        faults = FaultConfig.from_mapping(faults_raw)
        markets = markets_from_config(data) if data else default_markets()
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc.message}") from exc
    return markets, faults


def build_service(
    config: str | Path | None = None,
    *,
    seed: int = 0,
    auto_fund: Micro = 0,
    clock: Clock | None = None,
    chain_id: int = C.POLYGON,
    faults: FaultConfig | None = None,
    settlement: SettlementConfig | None = None,
    scenario: str | None = None,
) -> SimService:
    clock = clock or WallClock()
    markets, file_faults = load_sim_config(config) if config else (default_markets(), FaultConfig())
    exchange = Exchange(markets, clock, seed=seed, settlement=settlement)
    service = SimService(exchange, clock, chain_id=chain_id, seed=seed, auto_fund=auto_fund)
    fault_config = faults or file_faults
    if settlement is not None and settlement.failure_probability and not fault_config.settlement_failure_rate:
        # An explicit settlement failure rate is the same switch as the fault; keep it.
        fault_config = dataclasses.replace(fault_config, settlement_failure_rate=settlement.failure_probability)
    service.faults = Faults(fault_config)
    service.apply_fault_config()
    if scenario:
        plan = named_scenario(scenario).on_markets(markets)
        service.life = MarketLife(exchange, clock, plan, seed)
    return service


class SimServer:
    """The REST app bound to host:port (port 0 = any free port) inside the running loop."""

    def __init__(self, service: SimService, host: str = "127.0.0.1", port: int = 0) -> None:
        self.service = service
        self.host = host
        self.port = port
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def start(self) -> str:
        self._runner = web.AppRunner(make_app(self.service), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, reuse_address=True)
        await site.start()
        server = site._server
        assert server is not None
        sockets = getattr(server, "sockets", None) or []
        if sockets:
            self.port = sockets[0].getsockname()[1]
        return self.url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None


class ThreadedSim:
    """The local exchange in a background thread, for synchronous clients (the official SDK)."""

    def __init__(self, service: SimService, host: str = "127.0.0.1", port: int = 0) -> None:
        self.server = SimServer(service, host, port)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="polyoms-sim", daemon=True)

    @property
    def service(self) -> SimService:
        return self.server.service

    @property
    def url(self) -> str:
        return self.server.url

    def call(self, fn: Callable[..., T], *args: Any) -> T:
        """Run `fn(*args)` on the server's loop thread (the exchange has a single writer)."""

        async def run() -> T:
            return fn(*args)

        return asyncio.run_coroutine_threadsafe(run(), self._loop).result(timeout=10)

    def __enter__(self) -> ThreadedSim:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self.server.start(), self._loop).result(timeout=10)
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        asyncio.run_coroutine_threadsafe(self.server.stop(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()
