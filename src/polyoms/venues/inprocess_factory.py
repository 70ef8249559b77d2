"""The `inprocess` venue kind: the local exchange in the daemon's process, on the daemon's (wall) clock.

The engine trades through `InProcessVenue`: orders, cancels, queries and user events are calls into the
exchange (no order sockets, no user channel to gap). The market data the desk reads (catalog, books, the
market channel's trusted mirror) still comes from the exchange's app on 127.0.0.1, through the clients
the other kinds use. Nothing is kept: every start is a new exchange, a new journal in
`STATE_DIR/inprocess/` and, unless a key is configured, a new wallet.
"""

from __future__ import annotations

import contextlib
import os
from typing import Final

from polyoms.polymarket.client import ClientConfig, ClientHub, MarketCatalog, Wallet
from polyoms.polymarket.protocol import constants
from polyoms.venues.inprocess import InProcessVenue
from polyoms.venues.local_factory import EmbeddedSession, exchange_service, fund, new_key, serve
from polyoms.venues.session import VenueContext, VenueSession

INPROCESS_DIR: Final = "inprocess"


async def open_inprocess(ctx: VenueContext) -> VenueSession:
    lc = ctx.local
    service = exchange_service(ctx, clock=ctx.clock)
    wallet = Wallet.from_key(ctx.private_key or new_key(), name="daemon")
    builder = wallet.order_builder(chain_id=constants.POLYGON)
    venue = InProcessVenue(service, wallet.address, builder=builder)
    fund(service, wallet.maker, lc.fund)
    server = await serve(service, lc.port)
    url = server.url
    hub = ClientHub(ClientConfig(clob_url=url, gamma_url=url, data_url=url, chain_id=constants.POLYGON))
    catalog = MarketCatalog(hub.public, hub.gamma)
    try:
        await catalog.refresh(enrich=True)
    except BaseException:
        await hub.close()
        await server.stop()
        raise
    session_dir = ctx.state_dir / INPROCESS_DIR
    session_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    with contextlib.suppress(OSError):
        os.chmod(session_dir, 0o700)
    return EmbeddedSession(
        server,
        kind="inprocess",
        venue=venue,
        wallet=wallet,
        builder=builder,
        hub=hub,
        catalog=catalog,
        journal_path=session_dir / "journal.sqlite",
        ws_base=url,
        new_venue=True,
        subscribe_all=True,
        exchange=service,
    )
