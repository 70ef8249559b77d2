"""The OMS engine on the live/paper path with the WebSocket user channel: fills keep arriving while the
socket is being disconnected; the stream gaps (admission closes), backfills, goes live again, and the
OMS ledger ends equal to the exchange's balances — every fill counted exactly once."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from polyoms.core.clock import WallClock
from polyoms.core.units import MICRO
from polyoms.exchange.api.runner import ThreadedSim, build_service
from polyoms.exchange.settlement import SettlementConfig
from polyoms.oms.engine import Engine
from polyoms.oms.oms_state import OmsState
from polyoms.oms.state import OrderState
from polyoms.polymarket.client.ws_common import BackoffPolicy, ws_url
from polyoms.polymarket.client.ws_user import UserStream, UserStreamConfig
from polyoms.venues.polymarket import PolymarketVenue, follow_health
from polyoms.venues.polymarket_orders import prepared
from tests.client.conftest import KEY_A, KEY_B, faults, fund, hub_for, keyed, market

FAST_SETTLEMENT = SettlementConfig(mined_delay_ms=50, confirmed_delay_ms=100, retry_delay_ms=50)


@pytest.fixture
def sim() -> Iterator[ThreadedSim]:
    with ThreadedSim(build_service(seed=17, settlement=FAST_SETTLEMENT)) as server:
        yield server


def test_ws_disconnects_in_the_middle_of_fills(sim: ThreadedSim) -> None:
    m = market(sim)
    token = m.yes_token_id

    async def body() -> None:
        async with hub_for(sim) as hub:
            us = await keyed(hub, KEY_A, "us")
            them = await keyed(hub, KEY_B, "them")
            fund(sim, us.address, "100")
            fund(sim, them.address, "0", {token: "200"})
            venue = PolymarketVenue(hub.clob(us))
            state = OmsState(WallClock())
            state.add_wallet(us.address, [venue.owner])
            state.set_balance(us.address, cash=100 * MICRO)
            engine = Engine(state, venue, markets={t: m.condition_id for t in m.token_ids})
            config = UserStreamConfig(
                url=ws_url(sim.url, "user"),
                ping_interval_s=0.2,
                stale_after_s=1.0,
                tick_s=0.05,
                backfill_retry_s=0.1,
                backoff=BackoffPolicy(base_s=0.05, max_s=0.3),
            )
            stream = UserStream(hub.clob(us), config=config)
            venue.follow(stream)
            follow_health(stream, engine.stream_gapped, engine.stream_recovered)
            builder = us.order_builder()

            async def admitted(timeout_s: float = 10.0) -> bool:
                """Live stream, reconciled, admission reopened."""
                deadline = asyncio.get_running_loop().time() + timeout_s
                while asyncio.get_running_loop().time() < deadline:
                    await engine.drain()
                    if stream.live and not engine.admission_errors():
                        return True
                    await asyncio.sleep(0.05)
                return False

            async with engine, stream:
                assert await admitted()
                bids = [builder.limit(token, "BUY", f"0.{40 + i}", "20", tick=m.tick) for i in range(5)]
                await engine.submit([prepared(b) for b in bids])
                await engine.drain()
                assert all(state.order(b.order_id).state is OrderState.LIVE for b in bids)
                faults(sim, ws_disconnect_rate=0.25, seed=3)
                seller = hub.clob(them)
                for i in range(10):  # partial fills of every bid, through the disconnects
                    sell = them.order_builder().limit(token, "SELL", "0.40", "9", tick=m.tick)
                    assert (await seller.post_order(sell)).status == "matched"
                    await asyncio.sleep(0.05 * (i % 3))
                faults(sim, ws_disconnect_rate=0)
                await asyncio.sleep(0.5)  # trades settle (CONFIRMED) and the last gap heals
                assert await admitted()
                assert stream.stats.gaps >= 2 and stream.reconnects >= 1  # the fault did bite
                # every fill, exactly once: the OMS ledger equals the exchange's balances
                truth = sim.service.exchange.balances(us.address)
                lg = state.ledger(venue.wallet)
                pos = lg.positions[token]
                assert pos.confirmed == truth.token(token).balance == 90 * MICRO
                assert lg.cash == truth.pusd and lg.prov_in == lg.prov_out == 0 and pos.prov_in == 0
                filled = sum(state.order(b.order_id).filled for b in bids)
                assert filled == 90 * MICRO
                assert venue.posts == {b.order_id: 1 for b in bids}

    asyncio.run(body())
