"""The long-running daemon: an engine connected to a venue, served on a local control API.

    config = load_config("polyoms.toml")            # or DaemonConfig() for the embedded exchange
    async with Daemon(config, load_secrets(config, required=False)) as d:
        d.control_url, d.token                       # what the CLI reads from the state dir
        await d.desk.add_order(OrderRequest(...))    # or any other command, in process
        await d.wait_closed()                        # until `polyoms stop`, SIGINT/SIGTERM (run()), ...

Venues. "local" starts the embedded exchange (`exchange/api/runner.SimServer`) on a free 127.0.0.1 port
and talks to it over sockets with the very client used live (`PolymarketVenue` over `ClobClient`, the
user and market WebSocket channels), so the paper path exercises the live code end to end; the daemon's
wallet is funded through the exchange's /_sim/fund. "polymarket" connects to the real venue with the
key from the environment or a key file, and API credentials from the environment or derived by L1.

The local session lives in `STATE_DIR/local/`: the wallet key (`wallet.key`, 0600, made once), the
embedded exchange's state (`exchange.json`, 0600: exchange/persist, saved every few seconds and on
stop) and the journal. A restart is a recovery: the exchange comes back from its state (after a crash,
from its last save, which may be older than the journal: the reconciliation settles what only the
journal knows), the wallet is not funded again. `fresh=True` (`polyoms run --fresh`) deletes the session
first; a new exchange (no saved state) always starts with a new journal.

Start: journal (recovered if it exists: in-flight intents become UNKNOWN and are resolved from
evidence), balance bootstrap, reconciliation, the user stream followed by the engine (a gap closes admission),
the market stream for trusted quotes (pre-trade risk fails closed without one), heartbeats and the
maintenance timer, then the control API. Stop (SIGINT/SIGTERM, `polyoms stop`): the control API
closes, parent orders stop, open orders are cancelled (configurable), I/O drains, the journal flushes.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import secrets as _secrets
import shutil
import signal
import threading
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final, TypeVar

import aiohttp

from polyoms.core.clock import Clock, WallClock
from polyoms.core.errors import ConfigError, PolyomsError
from polyoms.core.units import Micro, fmt_micro
from polyoms.exchange import persist
from polyoms.exchange.api.faults import REHEARSAL
from polyoms.exchange.api.runner import SimServer, build_service
from polyoms.exchange.api.service import SimService
from polyoms.exchange.settlement import SettlementConfig
from polyoms.oms.engine import Engine, RiskConfig
from polyoms.oms.fallback import FallbackConfig
from polyoms.oms.journal import open_journal, recover
from polyoms.oms.journal_writer import await_writer_exit
from polyoms.oms.manager import OrderManager
from polyoms.oms.oms_state import OmsState
from polyoms.oms.risk import RateLimiter
from polyoms.ops import extras
from polyoms.ops.config import DaemonConfig, Secrets, read_key_file
from polyoms.ops.control import ControlServer
from polyoms.ops.desk import Desk, ParentPort
from polyoms.ops.fallback import RestFallback, quotas_of
from polyoms.polymarket.client import (
    ClientConfig,
    ClientHub,
    MarketCatalog,
    MarketStream,
    MarketStreamConfig,
    UserStream,
    UserStreamConfig,
    Wallet,
    ws_url,
)
from polyoms.polymarket.client.redact import register_secret
from polyoms.polymarket.protocol.keys import Signer
from polyoms.venues.base import Venue
from polyoms.venues.polymarket import PolymarketVenue

if TYPE_CHECKING:
    from polyoms.ops.metrics import Metrics

log = logging.getLogger(__name__)
T = TypeVar("T")

LOCAL_DIR: Final = "local"
WALLET_KEY_FILE: Final = "wallet.key"
EXCHANGE_FILE: Final = "exchange.json"
JOURNAL_FILE: Final = "journal.sqlite"
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


def _write_private(path: Path, text: str) -> None:
    """Create or replace a file readable by its owner only (the mode is set before any byte is written)."""
    tmp = path.with_name(path.name + ".tmp")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text + "\n")
    os.replace(tmp, path)


def _new_key() -> str:
    while True:
        key = "0x" + _secrets.token_hex(32)
        try:
            Signer(key)
        except PolyomsError:
            continue
        return key


def local_wallet_key(local_dir: Path) -> str:
    """The embedded exchange's wallet key: made once, kept in `local_dir/wallet.key` (0600) so that a
    restart trades on the same wallet; a file others can read is refused (as a key file is)."""
    path = local_dir / WALLET_KEY_FILE
    if path.exists():
        key = read_key_file(path)
        try:
            Signer(key)
        except PolyomsError:
            raise DaemonError(f"{path} holds no valid private key; start over with `polyoms run --fresh`") from None
    else:
        key = _new_key()
        _write_private(path, key)
    register_secret(key)
    return key


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
        """Local venue: delete the saved session (exchange, journal, wallet key) and start over."""
        self.snapshot_s = snapshot_s
        """Local venue: how often the embedded exchange's state is saved (also on a graceful stop)."""
        self.restored = False
        """The embedded exchange came back from its saved state."""
        self._snapshots = persist.RecordCache()
        self._snapshot_lock = threading.Lock()
        self._snapshot_mark: tuple[int, ...] = ()
        self._saving = False
        self.token = _secrets.token_urlsafe(32)
        self.started_ms = 0
        self.sim: SimServer | None = None
        self.sim_service: SimService | None = None
        self.hub: ClientHub | None = None
        self.wallet: Wallet | None = None
        self.venue: PolymarketVenue | None = None
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
        key = self.secrets.private_key
        if cfg.venue == "local":
            snapshot = self._local_session()
            key = key or local_wallet_key(self.local_dir)
            clob_url = await self._start_local(snapshot)
            client_cfg = ClientConfig(clob_url=clob_url, gamma_url=clob_url, data_url=clob_url, chain_id=cfg.chain_id)
            ws_base = clob_url
            signature_type, funder, nonce = 0, None, 0
        else:
            if self.fresh:
                raise ConfigError("--fresh starts a local session over; a polymarket journal is never deleted")
            if key is None:
                raise ConfigError("the polymarket venue needs a signing key (POLYOMS_PRIVATE_KEY or a key file)")
            pm = cfg.polymarket
            client_cfg = ClientConfig(
                clob_url=pm.clob_url, gamma_url=pm.gamma_url, data_url=pm.data_url, chain_id=pm.chain_id
            )
            ws_base = pm.ws_url
            signature_type, funder, nonce = int(pm.signature_type), pm.funder, pm.api_nonce
        self.venue_url = client_cfg.clob_url
        self.hub = hub = ClientHub(client_cfg)
        self.metrics = extras.make_metrics()
        if self.metrics is not None:
            self.metrics.watch_hub(hub)
        wallet = Wallet.from_key(
            key,
            signature_type=signature_type,
            funder=funder,
            creds=self.secrets.api_creds,
            nonce=nonce,
            name="daemon",
        )
        client = hub.clob(wallet)
        if wallet.creds is None:
            try:
                await client.create_or_derive_api_key()
            except PolyomsError as exc:
                raise DaemonError(f"cannot obtain API credentials from {client_cfg.clob_url}: {exc}") from None
        assert client.wallet is not None
        self.wallet = client.wallet
        if self.sim is not None:
            await self._fund_local(self.wallet.maker)
        self.catalog = catalog = MarketCatalog(client, hub.gamma)
        if cfg.venue == "local":
            await catalog.refresh(enrich=True)
        self.venue = venue = PolymarketVenue(client)
        await self._start_engine(venue)
        assert self.engine is not None and self.state is not None
        if self.sim is not None:
            # Saved once the journal is known to match: a crash from here on comes back to this.
            self._saving = True
            await self.save_snapshot()
            self._spawn(self._run_snapshots(), "snapshots")
        await self._start_streams(client, ws_base)
        engine = self.engine
        ec = cfg.engine
        if ec.heartbeat_s > 0:
            self._spawn(engine.run_heartbeats(ec.heartbeat_s), "heartbeats")
        self._spawn(
            engine.run_maintenance(interval_s=ec.maintenance_s, reconcile_every_s=ec.reconcile_every_s),
            "maintenance",
        )
        self.manager = OrderManager(engine, self.wallet.order_builder(chain_id=cfg.chain_id), actor="operator")
        self.desk = desk = Desk(
            engine=engine,
            manager=self.manager,
            builder=self.manager.builder or self.wallet.order_builder(chain_id=cfg.chain_id),
            catalog=catalog,
            public=hub.public,
            venue_kind=cfg.venue,
            limits=cfg.risk,
            market_stream=self.market_stream,
            gamma=hub.gamma if cfg.venue == "polymarket" else None,
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
        _write_private(self.state_dir / TOKEN_FILE, self.token)
        _write_private(self.state_dir / URL_FILE, self.control.url)
        log.info(
            "polyoms daemon: venue %s at %s, wallet %s, control API %s",
            cfg.venue,
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

    @property
    def local_dir(self) -> Path:
        """The embedded exchange's session: its state, the daemon's journal and wallet key."""
        return self.state_dir / LOCAL_DIR

    def _local_session(self) -> persist.ServiceState | None:
        """Prepare `local_dir` (after `--fresh`, empty) and read the saved exchange, if any."""
        d = self.local_dir
        if self.fresh and d.exists():
            journal = d / JOURNAL_FILE
            if not await_writer_exit(journal, 30.0):
                raise DaemonError(f"the journal {journal} is still being written by a previous daemon's writer process")
            names = sorted(p.name for p in d.iterdir())
            shutil.rmtree(d)
            log.warning(
                "--fresh: deleted the local session in %s (%s): a new exchange, wallet and journal",
                d,
                ", ".join(names) or "empty",
            )
        d.mkdir(parents=True, exist_ok=True, mode=0o700)
        with contextlib.suppress(OSError):
            os.chmod(d, 0o700)
        try:
            snapshot = persist.load(d / EXCHANGE_FILE)
        except persist.SnapshotError as exc:
            raise DaemonError(f"{exc}; start over with `polyoms run --fresh` (it deletes {d})") from None
        if snapshot is not None:
            lc = self.config.local
            saved = snapshot.life.scenario if snapshot.life is not None else None
            if (lc.scenario or None) != saved or lc.seed != snapshot.seed:
                raise DaemonError(
                    f"the local session in {d} runs scenario {saved or 'none'} with seed {snapshot.seed}, the "
                    f"config asks for scenario {lc.scenario or 'none'} with seed {lc.seed}: set them back, or start "
                    "over with `polyoms run --fresh`"
                )
        return snapshot

    async def _start_local(self, snapshot: persist.ServiceState | None = None) -> str:
        lc = self.config.local
        try:
            service = build_service(
                lc.markets,
                seed=lc.seed,
                chain_id=self.config.chain_id,
                scenario=lc.scenario,
                faults=REHEARSAL if lc.faults else None,
                settlement=self.settlement,
                snapshot=snapshot,
            )
        except persist.SnapshotError as exc:
            raise DaemonError(f"{exc}; start over with `polyoms run --fresh`") from None
        self.restored = snapshot is not None
        if self.restored:
            ex = service.exchange
            log.info(
                "local exchange restored from %s: %d open orders, %d trades",
                self.local_dir / EXCHANGE_FILE,
                len(ex.open_orders()),
                len(ex.all_trades),
            )
        self.sim_service = service
        self.sim = SimServer(service, "127.0.0.1", lc.port)
        try:
            return await self.sim.start()
        except OSError as exc:
            raise DaemonError(f"cannot start the local exchange on 127.0.0.1:{lc.port}: {exc.strerror}") from None

    async def _fund_local(self, address: str) -> None:
        """Fund a wallet the exchange has never seen (a restored one keeps what it has)."""
        assert self.sim is not None and self.sim_service is not None
        amount: Micro = self.config.local.fund
        if amount <= 0 or self.sim_service.exchange.account(address) is not None:
            return
        body = {"address": address, "pusd": fmt_micro(amount), "tokens": {}}
        async with aiohttp.ClientSession() as session, session.post(f"{self.sim.url}/_sim/fund", json=body) as resp:
            if resp.status != 200:
                raise DaemonError(f"funding the daemon wallet failed: HTTP {resp.status} {await resp.text()}")

    # --- the embedded exchange's state on disk -----------------------------------------------------

    def _snapshot_now(self) -> persist.ServiceState | None:
        """The exchange's state if it changed since the last save (or a minute went by), else None."""
        service = self.sim_service
        if service is None:
            return None
        ex = service.exchange
        mark = (
            ex._seq,
            len(ex.open_orders()),
            len(ex.all_trades),
            ex.settlement.next_ms,
            len(ex.ledger),
            ex.ledger.funded_pusd,
            len(service.keys.lookup()),
            self.clock.now_ms() // 60_000,
        )
        if mark == self._snapshot_mark:
            return None
        self._snapshot_mark = mark
        return persist.capture(service, self._snapshots)

    def _write_snapshot(self, state: persist.ServiceState) -> None:
        with self._snapshot_lock:  # a save cancelled on stop may still be writing in its thread
            persist.save(self.local_dir / EXCHANGE_FILE, state)

    async def save_snapshot(self) -> None:
        """Save the embedded exchange's state now (captured on the loop, written in a thread)."""
        state = self._snapshot_now()
        if state is not None:
            await asyncio.to_thread(self._write_snapshot, state)

    async def _run_snapshots(self) -> None:
        """Save every `snapshot_s` seconds, or less often when a save is slow (at most ~5% of the time)."""
        loop = asyncio.get_running_loop()
        while True:
            started = loop.time()
            try:
                await self.save_snapshot()
            except Exception as exc:  # a full disk must not stop the daemon; the next round tries again
                self._snapshot_mark = ()
                log.warning("saving the local exchange's state failed: %s: %s", type(exc).__name__, exc)
            await asyncio.sleep(max(self.snapshot_s, 20 * (loop.time() - started)))

    def _final_snapshot(self) -> None:
        """On stop, after the cancels and the engine have finished: what a restart comes back to. Not
        after a start that failed before its first save (a refused start changes no saved state)."""
        if self.sim_service is None or not self._saving:
            return
        self._snapshot_mark = ()
        state = self._snapshot_now()
        if state is None:
            return
        try:
            self._write_snapshot(state)
        except OSError as exc:
            log.warning("saving the local exchange's state failed: %s", exc)

    def _journal_path(self, venue: PolymarketVenue) -> Path:
        if self.config.venue == "local":
            return self.local_dir / JOURNAL_FILE
        return self.state_dir / f"polymarket-{self.config.chain_id}-{venue.wallet}" / "journal.sqlite"

    async def _start_engine(self, venue: PolymarketVenue) -> None:
        path = self._journal_path(venue)
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        if self.config.venue == "local":
            # After a crash, its writer process first finishes what it was handed: reading or deleting
            # the file under it would see a torn one.
            if not await_writer_exit(path, 30.0):
                raise DaemonError(f"the journal {path} is still being written by a previous daemon's writer process")
            if not self.restored:
                # A new exchange: a journal from a previous one describes orders and money that exist
                # nowhere any more.
                for suffix in ("", "-wal", "-shm"):
                    with contextlib.suppress(FileNotFoundError):
                        Path(str(path) + suffix).unlink()
        ec = self.config.engine
        if path.exists():
            state = recover(path, self.clock, writer=ec.journal_writer)
            self.recovered = True
            if self.config.venue == "local" and state.ledgers and venue.wallet not in state.ledgers:
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
            held = await self._held_tokens(venue)
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

    async def _held_tokens(self, venue: PolymarketVenue) -> dict[str, str]:
        """Token -> market of the positions the wallet may already hold (a new journal on a funded
        wallet): the Data API lists them; the CLOB's balances, read next, are what counts."""
        if self.config.venue == "local" or self.hub is None:
            return {}
        try:
            positions = await self.hub.data.all_positions(venue.wallet)
        except PolyomsError as exc:
            log.warning("positions bootstrap skipped (Data API: %s); the reconciliation adopts them as they trade", exc)
            return {}
        return {p.asset: p.condition_id for p in positions if p.size > 0}

    async def _start_streams(self, client: Any, ws_base: str) -> None:
        assert self.venue is not None and self.engine is not None and self.hub is not None
        tuning = self.stream_tuning
        self.user_stream = stream = UserStream(client, config=UserStreamConfig(url=ws_url(ws_base, "user"), **tuning))
        self.venue.follow(stream)
        self.engine.follow_user_stream(stream)
        await stream.start()
        self.market_stream = MarketStream(
            MarketStreamConfig(url=ws_url(ws_base, "market"), **tuning), rest=self.hub.public
        )
        await self.market_stream.start()
        if self.metrics is not None:
            self.metrics.watch_stream(stream, self.market_stream)
        if not await stream.wait_live(STREAM_LIVE_TIMEOUT_S):
            raise DaemonError(f"the user stream at {ws_url(ws_base, 'user')} did not come live: {stream.gap_reason}")
        await self.engine.drain()
        if self.config.venue == "local" and self.catalog is not None:
            tokens = [t for info in self.catalog for t in info.token_ids]
            await self.market_stream.subscribe(tokens)
            await self.market_stream.wait_trusted(tokens, timeout_s=STREAM_LIVE_TIMEOUT_S)
        # WebSocket → REST fallback (oms/fallback.py): polls within the client's rate limits.
        self.fallback = RestFallback(
            self.engine,
            stream,
            FallbackConfig(self.config.engine.rest_fallback_after_s),
            market_stream=self.market_stream,
            books=self.hub.public.books,
            quotas=quotas_of(self.hub.ip_limiter),
        )
        self._spawn(self.fallback.run(), "rest-fallback")

    async def _wire_optional(self, desk: Desk) -> None:
        """Metrics and the execution algorithms, from the packages that provide them. The journaled
        parent orders are recovered here (resumed or interrupted), before the control API opens."""
        if self.metrics is not None:
            self.metrics.marks = desk.mark  # unrealized PnL at the mids the desk shows in `positions`
            desk.metrics_render = self.metrics.render
        self.parents = await extras.attach_parents(self, desk)
        desk.kelly = extras.kelly_sizer()

    def _status(self) -> dict[str, Any]:
        engine = self.engine
        assert engine is not None and self.venue is not None and self.wallet is not None
        s = engine.stats
        stream = self.user_stream
        return {
            "venue": self.config.venue,
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
        if self.venue is not None:
            await self.venue.close()
        if self.hub is not None:
            await self.hub.close()
        self._final_snapshot()
        if self.sim is not None:
            await self.sim.stop()
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
    `fresh`: the local venue starts over (`Daemon.fresh`)."""
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
