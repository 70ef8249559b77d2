"""What a venue factory is given (`VenueContext`) and what it hands the daemon back (`VenueSession`).

A session is everything the daemon needs from one venue, so that the daemon never asks which venue it
runs on: the adapter the engine trades through, the order builder that signs for it, the REST clients
and market catalog the desk reads, where the WebSocket channels are, where the journal lives and what a
start does to it, and the hooks a venue with more to run (the embedded exchange) fills in.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from polyoms.core.clock import Clock
from polyoms.core.errors import PolyomsError
from polyoms.venues.settings import LocalConfig, PolymarketConfig

if TYPE_CHECKING:
    from polyoms.core.venue import Venue
    from polyoms.exchange.api.service import SimService
    from polyoms.exchange.settlement import SettlementConfig
    from polyoms.polymarket.client import ClientHub, MarketCatalog, UserStream, Wallet
    from polyoms.polymarket.client.gamma import GammaClient
    from polyoms.polymarket.protocol.auth import ApiCreds
    from polyoms.polymarket.protocol.order import OrderBuilder


Follow = Callable[["UserStream", Callable[[str], None], Callable[[], None]], None]
"""(user stream, gapped(reason), recovered()): wire a user channel to the adapter and to the OMS."""


class VenueStartError(PolyomsError):
    """The venue cannot be opened (its saved session is unreadable, its port is taken, funding failed...)."""


def _always_idle(path: Path) -> bool:
    return True


@dataclass(frozen=True, slots=True)
class VenueContext:
    """What the daemon hands a factory: its state dir, clock, secrets and the venues' settings."""

    state_dir: Path
    clock: Clock
    local: LocalConfig = field(default_factory=LocalConfig)
    polymarket: PolymarketConfig = field(default_factory=PolymarketConfig)
    private_key: str | None = None
    api_creds: ApiCreds | None = None
    fresh: bool = False
    """Start the venue's saved session over (`polyoms run --fresh`); refused where nothing may be deleted."""
    settlement: SettlementConfig | None = None
    """An embedded exchange's settlement timings (tests shorten them); None = its defaults."""
    snapshot_s: float = 5.0
    """How often an embedded exchange's state is saved (also on a graceful stop)."""
    journal_idle: Callable[[Path], bool] = _always_idle
    """True once no writer process of an earlier daemon holds the journal at this path (it waits a while):
    a session deletes a journal only then (oms.journal_writer.await_writer_exit)."""


class VenueSession:
    """One opened venue (module doc). Factories fill the attributes; a kind with more to run overrides
    the hooks. Closed by the daemon (`close`) after the engine has stopped."""

    def __init__(
        self,
        *,
        kind: str,
        venue: Venue,
        wallet: Wallet,
        builder: OrderBuilder,
        hub: ClientHub,
        catalog: MarketCatalog,
        journal_path: Path,
        ws_base: str,
        follow: Follow | None = None,
        gamma: GammaClient | None = None,
        new_venue: bool = False,
        subscribe_all: bool = False,
        exchange: SimService | None = None,
        restored: bool = False,
    ) -> None:
        self.kind = kind
        self.venue = venue
        """The adapter the engine trades through (the port: core/venue.py)."""
        self.wallet = wallet
        """Signer and maker; its API credentials where the venue has them."""
        self.builder = builder
        """Builds and signs this venue's orders (the adapter signs with it)."""
        self.hub = hub
        """REST clients: public books, the Data API, the shared rate limits (metrics, REST fallback)."""
        self.catalog = catalog
        self.journal_path = journal_path
        self.ws_base = ws_base
        """Base URL of the WebSocket channels (the market channel; the user channel where `follow` is set)."""
        self.follow = follow
        """Feeds the user channel's events to the adapter and its continuity to the OMS: user events come
        over that channel (gap-checked, the REST fallback behind it). None: the adapter delivers them
        itself (the exchange in process)."""
        self.gamma = gamma
        """Market search through Gamma; None: the catalog's own search."""
        self.new_venue = new_venue
        """The venue starts empty (a new exchange): a journal from an earlier one describes orders and money
        that exist nowhere any more, so the daemon starts a new one."""
        self.subscribe_all = subscribe_all
        """Subscribe the market channel to every market of the catalog at start (a small local exchange)."""
        self.exchange = exchange
        """The embedded exchange, where the session runs one (tests and the demo look into it)."""
        self.restored = restored
        """The embedded exchange came back from its saved state."""

    @property
    def url(self) -> str:
        return self.hub.config.clob_url

    async def held_tokens(self) -> dict[str, str]:
        """Token -> market of positions the wallet may already hold (bootstrap of a new journal); the
        venue's balances, read next, are what counts."""
        return {}

    async def started(self) -> None:
        """The journal is known to match the venue (first reconciliation done)."""

    async def close(self) -> None:
        """After the engine and the journal have stopped (an embedded exchange saves its state here)."""
        await self.venue.close()
        await self.hub.close()
