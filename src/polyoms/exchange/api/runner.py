"""Starting and stopping the local exchange: in an event loop, or in a thread for sync callers."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any, Final, TypeVar

from aiohttp import web

from polyoms.core.clock import Clock, WallClock
from polyoms.core.errors import ConfigError
from polyoms.core.units import Micro
from polyoms.exchange import persist
from polyoms.exchange.api.app import HUB, make_app
from polyoms.exchange.api.faults import FaultConfig, Faults
from polyoms.exchange.api.keys import new_auth_secret
from polyoms.exchange.api.service import SimService
from polyoms.exchange.api.ws import WsHub
from polyoms.exchange.engine import Exchange
from polyoms.exchange.history import HistoryArchive
from polyoms.exchange.life.market import MarketLife
from polyoms.exchange.life.scenarios import scenario as named_scenario
from polyoms.exchange.markets import MarketSpec, default_markets, markets_from_config, read_config_file
from polyoms.exchange.persist import ServiceState, SnapshotError, restore_exchange, restore_service_state
from polyoms.exchange.settlement import SettlementConfig
from polyoms.net.http_guard import ConnectionGuard, GuardedServer, GuardLimits, default_max_connections
from polyoms.polymarket.protocol import constants

T = TypeVar("T")

log = logging.getLogger(__name__)

STATE_FILE: Final = "exchange.json"
"""In a state dir (`polyoms sim --state-dir`): the snapshot (exchange/persist)."""
ARCHIVE_FILE: Final = "history.sqlite"
"""In a state dir: the history archive (exchange/history)."""
SNAPSHOT_EVERY_S: Final = 5.0


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
    chain_id: int = constants.POLYGON,
    faults: FaultConfig | None = None,
    settlement: SettlementConfig | None = None,
    scenario: str | None = None,
    auth_secret: bytes | None = None,
    snapshot: ServiceState | None = None,
    archive: str | Path | None = None,
) -> SimService:
    """The local exchange; `auth_secret` (what API keys derive from) is random unless restored.

    With a `snapshot` (exchange/persist) the exchange comes back as it was saved: its markets, seed,
    auth secret and background traders are the saved ones (`config` then only gives the fault
    switches, `scenario` must be the saved one or None); faults and settlement timings are as given.
    With an `archive` path finished history moves into that SQLite file (exchange/history) and a restore
    reads it back; without one everything stays in memory."""
    clock = clock or WallClock()
    markets, file_faults = load_sim_config(config) if config else (default_markets(), FaultConfig())
    history = HistoryArchive(archive) if archive is not None else None
    if snapshot is not None:
        exchange = restore_exchange(snapshot.exchange, clock, settlement, history)
        seed, auth_secret = snapshot.seed, snapshot.auth_secret
    else:
        exchange = Exchange(markets, clock, seed=seed, settlement=settlement)
        if history is not None:
            exchange.attach_archive(history)
    service = SimService(
        exchange,
        clock,
        chain_id=chain_id,
        seed=seed,
        auto_fund=auto_fund,
        auth_secret=new_auth_secret() if auth_secret is None else auth_secret,
    )
    fault_config = faults or file_faults
    if settlement is not None and settlement.failure_probability and not fault_config.settlement_failure_rate:
        # An explicit settlement failure rate is the same switch as the fault; keep it.
        fault_config = dataclasses.replace(fault_config, settlement_failure_rate=settlement.failure_probability)
    service.faults = Faults(fault_config)
    service.apply_fault_config()
    if snapshot is not None:
        restore_service_state(service, snapshot)
        saved = snapshot.life.scenario if snapshot.life is not None else None
        if scenario and scenario != saved:
            raise SnapshotError(
                f"the saved exchange ran scenario {saved or 'none'}, not {scenario}; start over to change it"
            )
        if snapshot.life is not None:
            service.life = MarketLife.resume(exchange, clock, snapshot.life)
    elif scenario:
        plan = named_scenario(scenario).on_markets(markets)
        service.life = MarketLife(exchange, clock, plan, seed)
    return service


def open_state_dir(state_dir: str | Path) -> tuple[ServiceState | None, Path]:
    """Make `state_dir` (0700) if needed; the snapshot saved there (None: a new exchange) and the path
    of its history archive. SnapshotError if the snapshot is unusable."""
    d = Path(state_dir)
    d.mkdir(parents=True, exist_ok=True, mode=0o700)
    with contextlib.suppress(OSError):
        os.chmod(d, 0o700)
    return persist.load(d / STATE_FILE), d / ARCHIVE_FILE


class StateSaver:
    """Saves the service's snapshot to `path` every `every_s` seconds and on stop.

    Captured on the exchange's loop between operations (a consistent copy; encoded records of finished
    orders and trades are cached), written in a thread (off the request path) atomically
    (`persist.save`). A failed save is logged and tried again next round."""

    def __init__(self, service: SimService, path: Path, every_s: float = SNAPSHOT_EVERY_S) -> None:
        self.service = service
        self.path = path
        self.every_s = every_s
        self._cache = persist.RecordCache()
        self._lock = threading.Lock()
        self._task: asyncio.Task[None] | None = None
        self.saves = 0

    def _write(self, state: ServiceState) -> None:
        with self._lock:  # a save cancelled on stop may still be writing in its thread
            persist.save(self.path, state)
            self.saves += 1

    def save_now(self) -> None:
        """Capture and write now, on the caller's thread (the exchange's, or after its loop stopped)."""
        self._write(persist.capture(self.service, self._cache))

    async def save(self) -> None:
        state = persist.capture(self.service, self._cache)
        await asyncio.to_thread(self._write, state)

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.every_s)
            try:
                await self.save()
            except Exception as exc:  # a full disk must not stop the exchange
                log.warning("saving the exchange's state failed: %s: %s", type(exc).__name__, exc)

    async def start(self) -> None:
        await self.save()
        self._task = asyncio.get_running_loop().create_task(self._loop(), name="polyoms-sim-snapshots")

    async def stop(self) -> None:
        """Stop the periodic saves and save a last time."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self.save()


class SimServer:
    """The REST app bound to host:port (port 0 = any free port) inside the running loop.

    Connections go through a `ConnectionGuard` (`EXCHANGE_GUARD`): the embedded exchange lives in the
    daemon's process, and without a cap a local process holding connections to it would use up the
    descriptors the control API (and its kill switch) needs. At the cap, connections that never sent a
    request or sit idle are evicted, ones in a request (a WebSocket is one) are not: newcomers are refused.
    """

    def __init__(
        self, service: SimService, host: str = "127.0.0.1", port: int = 0, *, limits: GuardLimits | None = None
    ) -> None:
        self.service = service
        self.host = host
        self.port = port
        self.limits = limits or exchange_guard_limits()
        self.app: web.Application | None = None
        self._server: GuardedServer | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def start(self) -> str:
        self.app = make_app(self.service)
        guard = ConnectionGuard(self.limits, name="local exchange")
        self.app.middlewares.insert(0, guard.middleware())
        self._server = GuardedServer(self.app, guard, self.host, self.port)
        self.port = await self._server.start()
        return self.url

    async def stop(self) -> None:
        if self._server is not None:
            await self._server.stop()
            self._server = None


def exchange_guard_limits() -> GuardLimits:
    """A quarter of the fd limit (within [16, 512]); aiohttp's usual 75 s keep-alive, so a client's pooled
    connection (aiohttp closes its own after 15 s) is never cut under a request it is sending."""
    return GuardLimits(
        max_connections=default_max_connections(4, 16, 512),
        request_timeout_s=10.0,
        idle_timeout_s=75.0,
        evict_busy=False,
    )


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

    @property
    def hub(self) -> WsHub:
        """The WebSocket hub (its registries are what a leak check looks at)."""
        assert self.server.app is not None, "not started"
        return self.server.app[HUB]

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
