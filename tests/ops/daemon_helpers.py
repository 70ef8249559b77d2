"""Shared pieces of the daemon, control-API and CLI tests: a quiet embedded exchange (no background
traders, so every fill in a test is one the test made), fast settlement, and a counterparty that trades
against the daemon through the exchange's REST API like any other client."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from polyoms.exchange.settlement import SettlementConfig
from polyoms.oms.risk import RiskLimits
from polyoms.ops.config import DaemonConfig, EngineConfig, LocalConfig, Secrets, VenueConfig
from polyoms.ops.daemon import Daemon, DaemonThread
from polyoms.polymarket.client import ClientConfig, ClientHub, Wallet
from polyoms.polymarket.protocol.order import SignedOrder

# Well-known development keys (Hardhat accounts 7-9); never funded anywhere real.
KEY_DAEMON = "0x4bbbf85ce3377467afe5d46f804f221813b2bb87f24d81f60f1fcdbf7cbf4356"
KEY_THEM = "0xdbda1821b80551c9d65939329250298aa3472ba22feea921c0cf5d620ea67b97"
KEY_OTHER = "0x2a871d0798f97d79848a013d4936a73bf4cc922c825d33c1cf7073dff6d409c6"

FAST_SETTLEMENT = SettlementConfig(mined_delay_ms=20, confirmed_delay_ms=50, retry_delay_ms=50)


def local_config(state_dir: Path, **changes: Any) -> DaemonConfig:
    """The embedded exchange without background flow, no spread guard (its books start empty)."""
    cfg = DaemonConfig(
        venue=VenueConfig("local"),
        state_dir=state_dir,
        engine=EngineConfig(heartbeat_s=1.0, reconcile_every_s=30.0, maintenance_s=0.2),
        risk=RiskLimits(max_spread=None),
        local=LocalConfig(seed=3, scenario=None),
    )
    return dataclasses.replace(cfg, **changes)


def start_daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[DaemonThread, Daemon]]:
    """For a module-scoped fixture: one daemon shared by a module's tests."""
    state_dir = tmp_path_factory.mktemp("daemon")
    thread = DaemonThread(local_config(state_dir), Secrets(KEY_DAEMON), settlement=FAST_SETTLEMENT)
    with thread as daemon:
        yield thread, daemon


def first_market(daemon: Daemon) -> tuple[str, str, str]:
    """(condition id, YES token, NO token) of the first market with a 0.01 tick."""
    assert daemon.catalog is not None
    info = next(i for i in daemon.catalog if i.tick is not None and i.tick.text == "0.01" and not i.neg_risk)
    return info.condition_id, info.token_ids[0], info.token_ids[1]


def fund(venue_url: str, address: str, pusd: str = "0", tokens: dict[str, str] | None = None) -> None:
    resp = httpx.post(f"{venue_url}/_sim/fund", json={"address": address, "pusd": pusd, "tokens": tokens or {}})
    assert resp.status_code == 200, resp.text


class Counterparty:
    """Another trader on the same exchange, speaking its REST API from the test's own event loop."""

    def __init__(self, venue_url: str, key: str = KEY_THEM) -> None:
        self.venue_url = venue_url
        self.key = key

    def post(self, side: str, token: str, price: str, size: str, order_type: str = "GTC") -> str:
        async def go() -> str:
            async with ClientHub(ClientConfig(clob_url=self.venue_url)) as hub:
                client = hub.clob(Wallet.from_key(self.key, name="them"))
                await client.create_or_derive_api_key()
                assert client.wallet is not None
                order: SignedOrder = client.wallet.order_builder().limit(
                    token, side, price, size, tick="0.01", order_type=order_type
                )
                placed = await client.post_order(order)
                return placed.status

        return asyncio.run(go())

    def address(self) -> str:
        return Wallet.from_key(self.key).address


def wait_until(thread: DaemonThread, predicate: Any, timeout_s: float = 10.0) -> bool:
    """Poll `predicate()` on the daemon's loop (where its state may be read) until it is true."""

    async def poll() -> bool:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while loop.time() < deadline:
            if predicate():
                return True
            await asyncio.sleep(0.05)
        return bool(predicate())

    return thread.call(poll, timeout=timeout_s + 5)
