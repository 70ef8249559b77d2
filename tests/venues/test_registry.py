"""The venue registry: every kind is named once, builds its session through its factory, and an unknown
kind is refused with the list of kinds; a daemon on the in-process exchange places and fills an order."""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path

import pytest

from polyoms.core.clock import WallClock
from polyoms.core.errors import ConfigError
from polyoms.core.units import MICRO
from polyoms.exchange.api.runner import ThreadedSim, build_service
from polyoms.oms.state import OrderState as S
from polyoms.ops import schema as api
from polyoms.ops.config import Secrets, VenueConfig, load_config
from polyoms.ops.daemon import DaemonThread
from polyoms.polymarket.client import Wallet
from polyoms.polymarket.client.ws_common import ws_url
from polyoms.venues.registry import VENUES, open_session, venue_kind
from polyoms.venues.session import VenueContext
from polyoms.venues.settings import LocalConfig, PolymarketConfig
from tests.ops.daemon_helpers import (
    FAST_SETTLEMENT,
    KEY_DAEMON,
    KEY_OTHER,
    Counterparty,
    fund,
    local_config,
    wait_until,
)


def test_the_registered_kinds() -> None:
    assert VENUES.names() == ("polymarket", "local", "inprocess")
    assert venue_kind("polymarket").needs_key and venue_kind("polymarket").remote
    assert not any(venue_kind(k).needs_key or venue_kind(k).remote for k in ("local", "inprocess"))
    assert VENUES.canonical(" In-Process ") == "inprocess"


def test_an_unknown_kind_lists_the_kinds(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown venue kind 'kalshi': one of polymarket, local, inprocess"):
        venue_kind("kalshi")
    with pytest.raises(ConfigError, match="unknown venue kind 'kalshi'"):
        asyncio.run(open_session("kalshi", VenueContext(state_dir=tmp_path, clock=WallClock())))


def test_both_spellings_name_the_kind(tmp_path: Path) -> None:
    old, new = tmp_path / "old.toml", tmp_path / "new.toml"
    old.write_text('venue = "inprocess"\n')
    new.write_text('[venue]\nkind = "in-process"\n')
    assert load_config(old, env={}).venue == load_config(new, env={}).venue == VenueConfig("inprocess")
    assert load_config(None, env={"POLYOMS_VENUE": "polymarket"}).venue.kind == "polymarket"
    with pytest.raises(ConfigError, match=r"POLYOMS_VENUE: venue\.kind: unknown venue kind 'paper'"):
        load_config(None, env={"POLYOMS_VENUE": "paper"})


async def _open_and_close(kind: str, ctx: VenueContext) -> tuple[str, str, int, bool, bool]:
    session = await open_session(kind, ctx)
    try:
        cash, _ = await session.venue.balances([])
        return session.kind, session.venue.wallet, cash, session.follow is not None, session.exchange is not None
    finally:
        await session.close()


def test_each_kind_builds_a_session(tmp_path: Path) -> None:
    quiet = LocalConfig(seed=3, scenario=None, fund=7 * MICRO)
    wallet = Wallet.from_key(KEY_DAEMON).address.lower()
    for kind in ("local", "inprocess"):
        ctx = VenueContext(state_dir=tmp_path / kind, clock=WallClock(), local=quiet, private_key=KEY_DAEMON)
        # The local kinds run their own exchange and fund the wallet; only `local` speaks the user channel.
        assert asyncio.run(_open_and_close(kind, ctx)) == (kind, wallet, 7 * MICRO, kind == "local", True)
    with ThreadedSim(build_service(seed=5)) as sim:
        pm = PolymarketConfig(
            clob_url=sim.url, gamma_url=sim.url, data_url=sim.url, ws_url=ws_url(sim.url, "x").removesuffix("/ws/x")
        )
        ctx = VenueContext(state_dir=tmp_path / "pm", clock=WallClock(), polymarket=pm, private_key=KEY_OTHER)
        other = Wallet.from_key(KEY_OTHER).address.lower()
        assert asyncio.run(_open_and_close("polymarket", ctx)) == ("polymarket", other, 0, True, False)
        with pytest.raises(ConfigError, match="needs a signing key"):
            asyncio.run(open_session("polymarket", dataclasses.replace(ctx, private_key=None)))


def test_a_daemon_on_the_inprocess_exchange_places_and_fills(tmp_path: Path) -> None:
    cfg = dataclasses.replace(local_config(tmp_path), venue=VenueConfig("inprocess"))
    thread = DaemonThread(cfg, Secrets(KEY_DAEMON), settlement=FAST_SETTLEMENT)
    with thread as d:
        assert d.desk is not None and d.state is not None and d.venue is not None and d.catalog is not None
        assert d.user_stream is None and d.sim_service is not None and d._status()["venue"] == "inprocess"
        desk, state, wallet = d.desk, d.state, d.venue.wallet
        info = next(i for i in d.catalog if i.tick is not None and i.tick.text == "0.01" and not i.neg_risk)
        yes = info.token_ids[0]
        them = Counterparty(d.venue_url)
        fund(d.venue_url, them.address(), "0", {yes: "50"})
        assert them.post("SELL", yes, "0.45", "20") == "live"

        async def buy() -> str:
            assert await desk.watch_books(info)
            acc = await desk.add_order(api.OrderBody(token_id=yes, side="BUY", price="0.45", size="10"))
            assert acc.order_id is not None
            return acc.order_id

        oid = thread.call(buy)
        # The fill comes from the exchange by call (no user channel) and settles on the wall clock.
        assert wait_until(
            thread,
            lambda: (
                state.order(oid).state is S.FILLED
                and (p := state.ledger(wallet).positions.get(yes)) is not None
                and p.confirmed == 10 * MICRO
            ),
        )
