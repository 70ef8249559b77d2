"""The `local` venue kind: the embedded local exchange on 127.0.0.1, spoken to over sockets.

The exchange (`exchange/api/runner.SimServer`) runs in the daemon's process on a free port, and the
daemon talks to it with the very clients used live (`PolymarketVenue` over `ClobClient`, the user and
market WebSocket channels), so the paper path exercises the live code end to end.

The session lives in `STATE_DIR/local/`: the wallet key (`wallet.key`, 0600, made once), the exchange's
state (`exchange.json`, 0600: exchange/persist, saved every few seconds and on stop) and the journal. A
restart is a recovery: the exchange comes back from its state (after a crash, from its last save, which
may be older than the journal: the reconciliation settles what only the journal knows), the wallet is not
funded again. `fresh` deletes the session first; a new exchange (no saved state) starts a new journal.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import shutil
import threading
from pathlib import Path
from typing import Any, Final

from polyoms.core.clock import Clock
from polyoms.core.errors import PolyomsError
from polyoms.core.units import Micro
from polyoms.exchange import persist
from polyoms.exchange.api.faults import REHEARSAL
from polyoms.exchange.api.runner import ARCHIVE_FILE, STATE_FILE, SimServer, build_service
from polyoms.exchange.api.service import SimService
from polyoms.polymarket.client import ClientConfig, ClientHub, MarketCatalog, Wallet
from polyoms.polymarket.client.redact import register_secret
from polyoms.polymarket.protocol import constants
from polyoms.polymarket.protocol.keys import Signer
from polyoms.venues.polymarket import PolymarketVenue
from polyoms.venues.polymarket_factory import authenticated_client, follower
from polyoms.venues.session import VenueContext, VenueSession, VenueStartError
from polyoms.venues.settings import read_key_file, write_private

log = logging.getLogger(__name__)

LOCAL_DIR: Final = "local"
WALLET_KEY_FILE: Final = "wallet.key"
EXCHANGE_FILE: Final = STATE_FILE
JOURNAL_FILE: Final = "journal.sqlite"


def new_key() -> str:
    """A fresh secp256k1 private key (registered for redaction)."""
    while True:
        key = "0x" + secrets.token_hex(32)
        try:
            Signer(key)
        except PolyomsError:
            continue
        register_secret(key)
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
            raise VenueStartError(f"{path} holds no valid private key; start over with `polyoms run --fresh`") from None
        register_secret(key)
        return key
    key = new_key()
    write_private(path, key)
    return key


def exchange_service(
    ctx: VenueContext,
    snapshot: persist.ServiceState | None = None,
    *,
    clock: Clock | None = None,
    archive: Path | None = None,
) -> SimService:
    """The local exchange as `[local]` describes it (or as it was saved); `clock` None: the wall clock.
    With `archive`, finished history moves into that SQLite file (exchange/history), so memory stays flat."""
    lc = ctx.local
    try:
        return build_service(
            lc.markets,
            seed=lc.seed,
            clock=clock,
            chain_id=constants.POLYGON,
            scenario=lc.scenario,
            faults=REHEARSAL if lc.faults else None,
            settlement=ctx.settlement,
            snapshot=snapshot,
            archive=archive,
        )
    except persist.SnapshotError as exc:
        raise VenueStartError(f"{exc}; start over with `polyoms run --fresh`") from None


async def serve(service: SimService, port: int) -> SimServer:
    """The exchange's REST and WebSocket app on 127.0.0.1:`port` (0 = a free one), with its tick timer."""
    server = SimServer(service, "127.0.0.1", port)
    try:
        await server.start()
    except OSError as exc:
        raise VenueStartError(f"cannot start the local exchange on 127.0.0.1:{port}: {exc.strerror}") from None
    return server


def fund(service: SimService, address: str, amount: Micro) -> None:
    """Fund a wallet the exchange has never seen (a restored one keeps what it has)."""
    if amount > 0 and service.exchange.account(address) is None:
        service.fund(address, amount, {})


class EmbeddedSession(VenueSession):
    """A session that runs the exchange's server: stopped after the clients are closed."""

    def __init__(self, server: SimServer, **session: Any) -> None:
        super().__init__(**session)
        self.server = server

    async def close(self) -> None:
        await super().close()
        await self.server.stop()


class LocalSession(EmbeddedSession):
    """The local session: the exchange's state is saved while it runs and on stop (module doc)."""

    def __init__(self, server: SimServer, local_dir: Path, snapshot_s: float, **session: Any) -> None:
        super().__init__(server, **session)
        self.local_dir = local_dir
        self.snapshot_s = snapshot_s
        self._cache = persist.RecordCache()
        self._lock = threading.Lock()
        self._mark: tuple[int, ...] = ()
        self._saving = False
        self._task: asyncio.Task[None] | None = None

    async def started(self) -> None:
        # Saved once the journal is known to match: a crash from here on comes back to this.
        self._saving = True
        await self.save_snapshot()
        self._task = asyncio.get_running_loop().create_task(self._run_snapshots(), name="polyoms-snapshots")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        await VenueSession.close(self)
        self._final_snapshot()
        await self.server.stop()
        archive = self.server.service.exchange.archive
        if archive is not None:
            archive.close()

    def _snapshot_now(self) -> persist.ServiceState | None:
        """The exchange's state if it changed since the last save (or a minute went by), else None."""
        service = self.exchange
        assert service is not None
        ex = service.exchange
        mark = (
            ex._seq,
            len(ex.open_orders()),
            len(ex.all_trades),
            ex.settlement.next_ms,
            len(ex.ledger),
            ex.ledger.funded_pusd,
            len(service.keys.lookup()),
            service.clock.now_ms() // 60_000,
        )
        if mark == self._mark:
            return None
        self._mark = mark
        return persist.capture(service, self._cache)

    def _write_snapshot(self, state: persist.ServiceState) -> None:
        with self._lock:  # a save cancelled on stop may still be writing in its thread
            persist.save(self.local_dir / EXCHANGE_FILE, state)

    async def save_snapshot(self) -> None:
        """Save the exchange's state now (captured on the loop, written in a thread)."""
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
                self._mark = ()
                log.warning("saving the local exchange's state failed: %s: %s", type(exc).__name__, exc)
            await asyncio.sleep(max(self.snapshot_s, 20 * (loop.time() - started)))

    def _final_snapshot(self) -> None:
        """On stop, after the cancels and the engine have finished: what a restart comes back to. Not
        after a start that failed before its first save (a refused start changes no saved state)."""
        if not self._saving:
            return
        self._mark = ()
        state = self._snapshot_now()
        if state is None:
            return
        try:
            self._write_snapshot(state)
        except OSError as exc:
            log.warning("saving the local exchange's state failed: %s", exc)


def _local_session(ctx: VenueContext, local_dir: Path) -> persist.ServiceState | None:
    """Prepare `local_dir` (after `fresh`, empty) and read the saved exchange, if any."""
    d = local_dir
    if ctx.fresh and d.exists():
        journal = d / JOURNAL_FILE
        if not ctx.journal_idle(journal):
            raise VenueStartError(f"the journal {journal} is still being written by a previous daemon's writer process")
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
        raise VenueStartError(f"{exc}; start over with `polyoms run --fresh` (it deletes {d})") from None
    if snapshot is not None:
        lc = ctx.local
        saved = snapshot.life.scenario if snapshot.life is not None else None
        if (lc.scenario or None) != saved or lc.seed != snapshot.seed:
            raise VenueStartError(
                f"the local session in {d} runs scenario {saved or 'none'} with seed {snapshot.seed}, the "
                f"config asks for scenario {lc.scenario or 'none'} with seed {lc.seed}: set them back, or start "
                "over with `polyoms run --fresh`"
            )
    return snapshot


async def open_local(ctx: VenueContext) -> VenueSession:
    local_dir = ctx.state_dir / LOCAL_DIR
    snapshot = _local_session(ctx, local_dir)
    key = ctx.private_key or local_wallet_key(local_dir)
    service = exchange_service(ctx, snapshot, archive=local_dir / ARCHIVE_FILE)
    restored = snapshot is not None
    if restored:
        ex = service.exchange
        log.info(
            "local exchange restored from %s: %d open orders, %d trades",
            local_dir / EXCHANGE_FILE,
            len(ex.open_orders()),
            len(ex.all_trades),
        )
    server = await serve(service, ctx.local.port)
    url = server.url
    hub = ClientHub(ClientConfig(clob_url=url, gamma_url=url, data_url=url, chain_id=constants.POLYGON))
    try:
        client = await authenticated_client(hub, Wallet.from_key(key, creds=ctx.api_creds, name="daemon"))
        assert client.wallet is not None
        fund(service, client.wallet.maker, ctx.local.fund)
        catalog = MarketCatalog(client, hub.gamma)
        await catalog.refresh(enrich=True)
    except BaseException:
        await hub.close()
        await server.stop()
        raise
    builder = client.wallet.order_builder(chain_id=constants.POLYGON)
    venue = PolymarketVenue(client, builder=builder)
    return LocalSession(
        server,
        local_dir,
        ctx.snapshot_s,
        kind="local",
        venue=venue,
        wallet=client.wallet,
        builder=builder,
        hub=hub,
        catalog=catalog,
        journal_path=local_dir / JOURNAL_FILE,
        ws_base=url,
        follow=follower(venue),
        new_venue=not restored,
        subscribe_all=True,
        exchange=service,
        restored=restored,
    )
