"""The `polymarket` venue kind: the real venue through the REST client and both WebSocket channels.

The key comes from the secrets (required), API credentials from the secrets or derived by L1 at start;
the journal lives in `STATE_DIR/polymarket-<chain>-<wallet>/` and is never deleted here.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from polyoms.core.errors import ConfigError, PolyomsError
from polyoms.polymarket.client import ClientConfig, ClientHub, ClobClient, MarketCatalog, UserStream, Wallet
from polyoms.venues.polymarket import PolymarketVenue, follow_health
from polyoms.venues.session import Follow, VenueContext, VenueSession, VenueStartError

log = logging.getLogger(__name__)


async def authenticated_client(hub: ClientHub, wallet: Wallet) -> ClobClient:
    """The wallet's CLOB client, with API credentials (derived, or created, when the wallet has none)."""
    client = hub.clob(wallet)
    if wallet.creds is None:
        try:
            await client.create_or_derive_api_key()
        except PolyomsError as exc:
            raise VenueStartError(f"cannot obtain API credentials from {hub.config.clob_url}: {exc}") from None
    return client


def follower(venue: PolymarketVenue) -> Follow:
    """The user channel's updates go to the adapter, its gaps and recoveries to the OMS."""

    def follow(stream: UserStream, gapped: Callable[[str], None], recovered: Callable[[], None]) -> None:
        venue.follow(stream)
        follow_health(stream, gapped, recovered)

    return follow


class PolymarketSession(VenueSession):
    async def held_tokens(self) -> dict[str, str]:
        """The Data API's positions of the wallet (a new journal on a funded wallet)."""
        try:
            positions = await self.hub.data.all_positions(self.venue.wallet)
        except PolyomsError as exc:
            log.warning("positions bootstrap skipped (Data API: %s); the reconciliation adopts them as they trade", exc)
            return {}
        return {p.asset: p.condition_id for p in positions if p.size > 0}


async def open_polymarket(ctx: VenueContext) -> VenueSession:
    if ctx.fresh:
        raise ConfigError("--fresh starts a local session over; a polymarket journal is never deleted")
    if ctx.private_key is None:
        raise ConfigError("the polymarket venue needs a signing key (POLYOMS_PRIVATE_KEY or a key file)")
    pm = ctx.polymarket
    hub = ClientHub(
        ClientConfig(clob_url=pm.clob_url, gamma_url=pm.gamma_url, data_url=pm.data_url, chain_id=pm.chain_id)
    )
    try:
        wallet = Wallet.from_key(
            ctx.private_key,
            signature_type=pm.signature_type,
            funder=pm.funder,
            creds=ctx.api_creds,
            nonce=pm.api_nonce,
            name="daemon",
        )
        client = await authenticated_client(hub, wallet)
    except BaseException:
        await hub.close()
        raise
    assert client.wallet is not None
    builder = client.wallet.order_builder(chain_id=pm.chain_id)
    venue = PolymarketVenue(client, builder=builder)
    return PolymarketSession(
        kind="polymarket",
        venue=venue,
        wallet=client.wallet,
        builder=builder,
        hub=hub,
        catalog=MarketCatalog(client, hub.gamma),
        journal_path=ctx.state_dir / f"polymarket-{pm.chain_id}-{venue.wallet}" / "journal.sqlite",
        ws_base=pm.ws_url,
        follow=follower(venue),
        gamma=hub.gamma,
    )
