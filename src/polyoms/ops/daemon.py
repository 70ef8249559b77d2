"""The long-running daemon: an engine connected to a venue, served on a local control API.

    config = load_config("polyoms.toml")            # or DaemonConfig() for the embedded exchange
    async with Daemon(config, load_secrets(config, required=False)) as d:
        d.control_url, d.token                       # what the CLI reads from the state dir
        await d.desk.add_order(OrderBody(...))    # or any other command, in process
        await d.wait_closed()                        # until `polyoms stop`, SIGINT/SIGTERM (run()), ...

Venues. The daemon opens whatever `[venue] kind` names through the venue registry (venues/registry.py):
the kind's factory returns a `VenueSession` (the adapter, its order builder, the clients and catalog,
where the channels and the journal are), and the daemon never asks which venue it runs on. Kinds today:
"polymarket" (the real venue), "local" (the embedded exchange over sockets, its session kept in
STATE_DIR/local/: venues/local_factory.py) and "inprocess" (the exchange called in process).

Start: journal (recovered if it exists: in-flight intents become UNKNOWN and are resolved from
evidence; a new venue starts a new one), balance bootstrap, reconciliation, the user stream followed by
the engine (a gap closes admission), the market stream for trusted quotes (pre-trade risk fails closed
without one), heartbeats and the maintenance timer, then the control API. Stop (SIGINT/SIGTERM, `polyoms
stop`): the control API closes, parent orders stop, open orders are cancelled (configurable), I/O
drains, the journal flushes, the venue's session closes.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import secrets as _secrets
import signal
import threading
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Final, TypeVar

from polyoms.core.clock import Clock, WallClock
from polyoms.core.errors import PolyomsError
from polyoms.core.venue import Venue
from polyoms.exchange.api.service import SimService
from polyoms.exchange.settlement import SettlementConfig
from polyoms.oms.engine import Engine, RiskConfig
from polyoms.oms.fallback import FallbackConfig
from polyoms.oms.journal import open_journal
from polyoms.oms.journal_recovery import recover
from polyoms.oms.journal_writer import await_writer_exit
from polyoms.oms.manager import OrderManager
from polyoms.oms.oms_state import OmsState
from polyoms.oms.risk import RateLimiter
from polyoms.ops.config import DaemonConfig, Secrets
from polyoms.ops.control import ControlServer
from polyoms.ops.desk import Desk, ParentPort
from polyoms.ops.fallback import RestFallback, quotas_of
from polyoms.ops.metrics import Metrics
from polyoms.ops.parents import AlgoParents, kelly_size
from polyoms.polymarket.client import (
    ClientHub,
    MarketCatalog,
    MarketStream,
    MarketStreamConfig,
    UserStream,
    UserStreamConfig,
    Wallet,
    ws_url,
)
from polyoms.venues.registry import open_session
from polyoms.venues.session import VenueContext, VenueSession, VenueStartError
from polyoms.venues.settings import write_private

log = logging.getLogger(__name__)
T = TypeVar("T")

SNAPSHOT_S: Final = 5.0
TOKEN_FILE: Final = "control.token"
URL_FILE: Final = "control.url"
LOCK_FILE: Final = "daemon.lock"
STREAM_LIVE_TIMEOUT_S: Final = 15.0


class DaemonError(PolyomsError):
    """The daemon cannot start (another one runs on the state dir, the venue cannot be reached...)."""


@dataclass(frozen=True, slots=True)
class ControlEndpoint:
    """Where a running daemon listens, as read from its state dir by the CLI."""

    url: str
    token: str


def read_endpoint(state_dir: Path) -> ControlEndpoint | None:
    """The control URL and token a daemon wrote to `state_dir` (None when no daemon wrote them)."""
    try:
        url = (state_dir / URL_FILE).read_text(encoding="utf-8").strip()
        token = (state_dir / TOKEN_FILE).read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None
    if not url or not token:
        return None
    return ControlEndpoint(url, token)


class Daemon:
    """One engine on one venue, with its control API (module doc)."""

    def __init__(
        self,
        config: DaemonConfig,
        secrets: Secrets | None = None,
        *,
        clock: Clock | None = None,
        settlement: SettlementConfig | None = None,
        stream_tuning: dict[str, Any] | None = None,
        fresh: bool = False,
        snapshot_s: float = SNAPSHOT_S,
    ) -> None:
        self.config = config
        self.secrets = secrets or Secrets(None)
        self.clock: Clock = clock or WallClock()
        self.settlement = settlement
        self.stream_tuning = dict(stream_tuning or {})
        """Extra StreamConfig settings for both WebSocket channels (tests shorten pings and backoff)."""
        self.fresh = fresh
        """The local venue: delete the saved session (exchange, journal, wallet key) and start over."""
        self.snapshot_s = snapshot_s
        """An embedded exchange: how often its state is saved (also on a graceful stop)."""
        self.token = _secrets.token_urlsafe(32)
        self.started_ms = 0
        self.session: VenueSession | None = None
        self.hub: ClientHub | None = None
        self.wallet: Wallet | None = None
        self.venue: Venue | None = None
        self.state: OmsState | None = None
        self.engine: Engine | None = None
        self.manager: OrderManager | None = None
        self.catalog: MarketCatalog | None = None
        self.user_stream: UserStream | None = None
        self.market_stream: MarketStream | None = None
        self.fallback: RestFallback | None = None
        self.desk: Desk | None = None
        self.control: ControlServer | None = None
        self.parents: ParentPort | None = None
        self.metrics: Metrics | None = None
        self.venue_url = ""
        self.recovered = False
        self._tasks: list[asyncio.Task[None]] = []
        self._closed = asyncio.Event()
        self._stopping = False
        self._lock_fd: int | None = None

    # --- lifecycle ---------------------------------------------------------------------------------

    @property
    def state_dir(self) -> Path:
        return self.config.state_dir

    @property
    def control_url(self) -> str:
        return self.control.url if self.control is not None else ""

    @property
    def sim_service(self) -> SimService | None:
        """The embedded exchange, when the venue runs one."""
        return self.session.exchange if self.session is not None else None

    @property
    def restored(self) -> bool:
        """The embedded exchange came back from its saved state."""
        return self.session is not None and self.session.restored

    async def __aenter__(self) -> Daemon:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    async def start(self) -> None:
        self.started_ms = self.clock.now_ms()
        self._prepare_state_dir()
        try:
            await self._start()
        except BaseException:
            await self.stop()
            raise

    async def _start(self) -> None:
        cfg = self.config
        self._closed.clear()
        ctx = VenueContext(
            state_dir=self.state_dir,
            clock=self.clock,
            local=cfg.local,
            polymarket=cfg.polymarket,
            private_key=self.secrets.private_key,
            api_creds=self.secrets.api_creds,
            fresh=self.fresh,
            settlement=self.settlement,
            snapshot_s=self.snapshot_s,
            journal_idle=lambda path: await_writer_exit(path, 30.0),
        )
        try:
            self.session = session = await open_session(cfg.venue.kind, ctx)
        except VenueStartError as exc:
            raise DaemonError(exc.message) from None
        self.venue_url = session.url
        self.hub = hub = session.hub
        self.metrics = Metrics()
        if self.metrics is not None:
            self.metrics.watch_hub(hub)
        self.wallet = session.wallet
        self.catalog = catalog = session.catalog
        self.venue = venue = session.venue
        await self._start_engine(session)
        assert self.engine is not None and self.state is not None
        await session.started()
        await self._start_streams(session)
        engine = self.engine
        ec = cfg.engine
        if ec.heartbeat_s > 0:
            self._spawn(engine.run_heartbeats(ec.heartbeat_s), "heartbeats")
        self._spawn(
            engine.run_maintenance(interval_s=ec.maintenance_s, reconcile_every_s=ec.reconcile_every_s),
            "maintenance",
        )
        self.manager = OrderManager(engine, actor="operator")
        self.desk = desk = Desk(
            engine=engine,
            manager=self.manager,
            catalog=catalog,
            public=hub.public,
            limits=cfg.risk,
            market_stream=self.market_stream,
            gamma=session.gamma,
            on_shutdown=self.request_stop,
        )
        # The engine's pre-trade risk reads the desk's market table and the market stream's quotes.
        engine.risk = RiskConfig(
            markets=desk.risk_markets,
            quote=desk.quote,
            limits=cfg.risk,
            limiter=RateLimiter(cfg.risk.max_orders, cfg.risk.window_ms),
        )
        for info in catalog:
            desk.note_market(info)
        await self._wire_optional(desk)
        self.control = ControlServer(desk, self.token, self._status, host=cfg.control.host, port=cfg.control.port)
        await self.control.start()
        write_private(self.state_dir / TOKEN_FILE, self.token)
        write_private(self.state_dir / URL_FILE, self.control.url)
        log.info(
            "polyoms daemon: venue %s at %s, wallet %s, control API %s",
            session.kind,
            self.venue_url,
            venue.wallet,
            self.control.url,
        )

    def _prepare_state_dir(self) -> None:
        d = self.state_dir
        d.mkdir(parents=True, exist_ok=True, mode=0o700)
        with contextlib.suppress(OSError):
            os.chmod(d, 0o700)
        fd = os.open(d / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise DaemonError(
                f"another polyoms daemon runs on {d} (lock {d / LOCK_FILE}); stop it (`polyoms stop`) or use "
                "another state dir (--state-dir)"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._lock_fd = fd

    async def _start_engine(self, session: VenueSession) -> None:
        venue = session.venue
        path = session.journal_path
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        # After a crash, its writer process first finishes what it was handed: reading or deleting the
        # file under it would see a torn one.
        if not await_writer_exit(path, 30.0):
            raise DaemonError(f"the journal {path} is still being written by a previous daemon's writer process")
        if session.new_venue:
            # A new exchange: a journal from a previous one describes orders and money that exist nowhere.
            for suffix in ("", "-wal", "-shm"):
                with contextlib.suppress(FileNotFoundError):
                    Path(str(path) + suffix).unlink()
        ec = self.config.engine
        if path.exists():
            state = recover(path, self.clock, writer=ec.journal_writer)
            self.recovered = True
            if state.ledgers and venue.wallet not in state.ledgers:
                self.state = state  # closed by stop()
                raise DaemonError(
                    f"the journal {path} belongs to wallet(s) {', '.join(sorted(state.ledgers))}, not {venue.wallet} "
                    "(another POLYOMS_PRIVATE_KEY?): use the same key, or start over with `polyoms run --fresh`"
                )
        else:
            state = OmsState(self.clock)
            open_journal(path, state, writer=ec.journal_writer)
        if venue.wallet not in state.ledgers:
            state.add_wallet(venue.wallet, [venue.owner])
            held = await session.held_tokens()
            cash, shares = await venue.balances(sorted(held))
            state.set_balance(
                venue.wallet,
                cash=cash,
                positions={t: n for t, n in shares.items() if n},
                markets={t: held[t] for t in shares if shares[t] and held.get(t)},
                reason="daemon start: balance bootstrap",
            )
        self.state = state
        engine_venue: Venue = venue if self.metrics is None else self.metrics.instrument(venue, clock=self.clock)
        self.engine = engine = Engine(state, engine_venue, unknown_grace_ms=ec.unknown_grace_ms)
        engine.start()
        if self.metrics is not None:
            self.metrics.attach(engine)
        if self.recovered:
            await engine.call(lambda s: s.after_restart())
        try:
            await engine.reconcile()
        except PolyomsError as exc:
            raise DaemonError(f"the first reconciliation with the venue failed: {exc}") from None

    async def _start_streams(self, session: VenueSession) -> None:
        assert self.engine is not None
        tuning = self.stream_tuning
        hub, ws_base = session.hub, session.ws_base
        self.market_stream = MarketStream(MarketStreamConfig(url=ws_url(ws_base, "market"), **tuning), rest=hub.public)
        stream = None
        if session.follow is not None:
            url = ws_url(ws_base, "user")
            self.user_stream = stream = UserStream(hub.clob(session.wallet), config=UserStreamConfig(url=url, **tuning))
            session.follow(stream, self.engine.stream_gapped, self.engine.stream_recovered)
            await stream.start()
        await self.market_stream.start()
        if self.metrics is not None:
            self.metrics.watch_stream(*([] if stream is None else [stream]), self.market_stream)
        if stream is not None:
            if not await stream.wait_live(STREAM_LIVE_TIMEOUT_S):
                raise DaemonError(
                    f"the user stream at {ws_url(ws_base, 'user')} did not come live: {stream.gap_reason}"
                )
            await self.engine.drain()
        if session.subscribe_all:
            tokens = [t for info in session.catalog for t in info.token_ids]
            await self.market_stream.subscribe(tokens)
            await self.market_stream.wait_trusted(tokens, timeout_s=STREAM_LIVE_TIMEOUT_S)
        if stream is not None:
            # WebSocket → REST fallback (oms/fallback.py): polls within the client's rate limits.
            self.fallback = RestFallback(
                self.engine,
                stream,
                FallbackConfig(self.config.engine.rest_fallback_after_s),
                market_stream=self.market_stream,
                books=hub.public.books,
                quotas=quotas_of(hub.ip_limiter),
            )
            self._spawn(self.fallback.run(), "rest-fallback")

    async def _wire_optional(self, desk: Desk) -> None:
        """Metrics and the execution algorithms onto the desk. The journaled parent orders are
        recovered here (resumed or interrupted), before the control API opens."""
        if self.metrics is not None:
            self.metrics.marks = desk.mark  # unrealized PnL at the mids the desk shows in `positions`
            desk.metrics_render = self.metrics.render
        on_restart = self.config.engine.parents_on_restart
        self.parents = await AlgoParents.attach(desk, clock=self.clock, on_restart=on_restart)
        desk.kelly = kelly_size

    def _status(self) -> dict[str, Any]:
        engine = self.engine
        assert engine is not None and self.venue is not None and self.wallet is not None
        s = engine.stats
        stream = self.user_stream
        return {
            "venue": self.config.venue.kind,
            "venue_url": self.venue_url,
            "wallet": self.venue.wallet,
            "signer": self.wallet.address,
            "admission_open": not engine.admission_errors(),
            "admission_errors": [str(e) for e in engine.admission_errors()],
            "open_orders": len(engine.state.open_orders()),
            "orders": len(engine.state.orders),
            "user_stream": stream.state.value if stream is not None else "none",
            "stream_mode": engine.stream_mode,
            "stream_mode_note": engine.admission_note(),
            "started_ms": self.started_ms,
            "pid": os.getpid(),
            "algos": self.parents is not None,
            "engine": {
                "events": s.events,
                "posts": s.posts,
                "unknown_outcomes": s.unknown_outcomes,
                "reconciliations": s.reconciliations,
                "repairs": s.repairs,
                "heartbeat_failures": s.heartbeat_failures,
                "errors": len(s.errors),
            },
        }

    def _spawn(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        task = asyncio.get_running_loop().create_task(coro, name=f"polyoms-{name}")
        self._tasks.append(task)

    def request_stop(self) -> None:
        """Ask the daemon to shut down (from a signal, the control API...); `wait_closed` returns."""
        self._closed.set()

    async def wait_closed(self) -> None:
        await self._closed.wait()

    async def stop(self) -> None:
        """Graceful shutdown (module doc). Safe to call twice and after a failed start."""
        if self._stopping:
            return
        self._stopping = True
        self._closed.set()
        if self._lock_fd is not None:
            # Only the lock holder's endpoint files are its own: a second daemon refused by the lock
            # must leave the running one's kill switch reachable.
            for name in (TOKEN_FILE, URL_FILE):
                with contextlib.suppress(FileNotFoundError):
                    (self.state_dir / name).unlink()
        if self.control is not None:
            await self.control.stop()
        engine = self.engine
        if self.desk is not None:
            await self.desk.stop_sources()  # parents and strategies first: none may place another order
        if self.parents is not None:
            with contextlib.suppress(Exception):
                await self.parents.close()
        if engine is not None and self.config.engine.cancel_on_stop and engine.state.open_orders():
            try:
                await asyncio.wait_for(engine.cancel_all(actor="daemon:stop"), 5)
                await asyncio.wait_for(engine.drain(), 5)
            except (TimeoutError, PolyomsError) as exc:
                log.warning("cancel on stop did not complete: %s", exc)
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()
        for closer in (self.market_stream, self.user_stream):
            if closer is not None:
                with contextlib.suppress(Exception):
                    await closer.close()
        if self.metrics is not None:
            with contextlib.suppress(Exception):
                await self.metrics.close()
        if engine is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(engine.stop(), 10)
        if self.state is not None and self.state.journal is not None:
            self.state.journal.close()
        if self.session is not None:
            await self.session.close()
        if self._lock_fd is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
                os.close(self._lock_fd)
            self._lock_fd = None
        log.info("polyoms daemon stopped")


async def run(
    config: DaemonConfig,
    secrets: Secrets | None = None,
    *,
    on_ready: Callable[[Daemon], None] | None = None,
    fresh: bool = False,
) -> None:
    """`polyoms run`: start, serve until SIGINT/SIGTERM or `polyoms stop`, then stop gracefully.
    `fresh`: the venue's saved session starts over (`Daemon.fresh`)."""
    daemon = Daemon(config, secrets, fresh=fresh)
    loop = asyncio.get_running_loop()
    installed: list[signal.Signals] = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, daemon.request_stop)
            installed.append(sig)
    try:
        await daemon.start()
        if on_ready is not None:
            on_ready(daemon)
        await daemon.wait_closed()
    finally:
        await daemon.stop()
        for sig in installed:
            loop.remove_signal_handler(sig)


class DaemonThread:
    """A daemon on its own event loop in a background thread, for synchronous callers (tests, notebooks)."""

    def __init__(self, config: DaemonConfig, secrets: Secrets | None = None, **kwargs: Any) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="polyoms-daemon", daemon=True)
        self._config = config
        self._secrets = secrets
        self._kwargs = kwargs
        self.daemon: Daemon | None = None

    def call(self, fn: Callable[[], Coroutine[Any, Any, T]], timeout: float = 30.0) -> T:
        """Run a coroutine on the daemon's loop and wait for its result."""
        return asyncio.run_coroutine_threadsafe(fn(), self._loop).result(timeout=timeout)

    def __enter__(self) -> Daemon:
        self._thread.start()

        async def start() -> Daemon:
            d = Daemon(self._config, self._secrets, **self._kwargs)
            self.daemon = d
            await d.start()
            return d

        try:
            return self.call(start, timeout=60)
        except BaseException:
            self._shutdown_loop()
            raise

    def __exit__(self, *exc: object) -> None:
        d = self.daemon
        if d is not None:
            with contextlib.suppress(Exception):
                self.call(d.stop, timeout=30)
        self._shutdown_loop()

    def _shutdown_loop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()
