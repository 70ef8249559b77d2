"""Venue kinds by name: what `[venue] kind = ...` may say, and the factory that opens a session on it.

The daemon, the config loader, `polyoms run --venue` and `polyoms doctor` look kinds up here; none of
them imports an adapter. Each kind names its factory by module path (`venues/<kind>_factory.py`),
imported only when a session is opened, so reading a config never loads a venue's clients or exchange.
To add a venue: its adapter, a factory module returning a `VenueSession`, one `register` call below.
"""

from __future__ import annotations

import importlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, cast

from polyoms.core.registry import Registry

if TYPE_CHECKING:
    from polyoms.venues.session import VenueContext, VenueSession

VenueFactory = Callable[["VenueContext"], Awaitable["VenueSession"]]


@dataclass(frozen=True, slots=True)
class VenueKind:
    factory: str
    """"module:function" of its `VenueFactory`."""
    needs_key: bool
    """It signs with the configured key and the [polymarket] signature settings (type, funder); False:
    the session keeps a key of its own in the state dir when none is configured."""
    remote: bool
    """Reached over the network: `polyoms doctor` checks reachability, credentials and funds."""

    def load(self) -> VenueFactory:
        module, _, name = self.factory.partition(":")
        return cast("VenueFactory", getattr(importlib.import_module(module), name))


VENUES: Final[Registry[VenueKind]] = Registry("venue kind")
VENUES.register(
    "polymarket",
    VenueKind("polyoms.venues.polymarket_factory:open_polymarket", needs_key=True, remote=True),
    summary="the real venue: the REST client and both WebSocket channels",
)
VENUES.register(
    "local",
    VenueKind("polyoms.venues.local_factory:open_local", needs_key=False, remote=False),
    summary="the embedded local exchange on 127.0.0.1, spoken to over sockets by the live clients; "
    "its session (exchange, wallet, journal) is kept in state_dir/local",
)
VENUES.register(
    "inprocess",
    VenueKind("polyoms.venues.inprocess_factory:open_inprocess", needs_key=False, remote=False),
    summary="the local exchange in the daemon's process, wall clock: orders, cancels and user events "
    "go to it by call (no order sockets); a new exchange at every start",
    aliases=("in-process",),
)


def venue_kind(name: str) -> VenueKind:
    """The kind registered as `name` (or an alias); ConfigError listing the kinds otherwise."""
    return VENUES.get(name)


async def open_session(name: str, ctx: VenueContext) -> VenueSession:
    """Open a session on the venue kind `name` with its factory."""
    return await venue_kind(name).load()(ctx)
