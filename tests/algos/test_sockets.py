"""End to end over real sockets: `polyoms sim` on a loopback port, the OMS through the Polymarket venue
adapter (REST + the WebSocket user channel), books and instruments over REST, the parent manager running
on its own on the wall clock. An iceberg and a complete-set basket (sent in one POST /orders) run at once;
afterwards the OMS ledger equals the exchange's balances."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from polyoms.algos.base import ParentState
from polyoms.algos.books import RestBooks
from polyoms.algos.iceberg import IcebergSpec
from polyoms.algos.multileg import LegMode, MultiLegSpec
from polyoms.algos.parents import ParentManager
from polyoms.backtest.scenarios import m
from polyoms.core.clock import WallClock
from polyoms.core.enums import Side
from polyoms.core.units import MICRO
from polyoms.exchange.api.runner import ThreadedSim, build_service
from polyoms.exchange.settlement import SettlementConfig
from polyoms.oms.engine import Engine
from polyoms.oms.manager import OrderManager
from polyoms.oms.oms_state import OmsState
from polyoms.polymarket.client.ws_common import BackoffPolicy, ws_url
from polyoms.polymarket.client.ws_user import UserStream, UserStreamConfig
from polyoms.venues.polymarket import PolymarketVenue, follow_health
from tests.client.conftest import KEY_A, KEY_B, fund, hub_for, keyed

FAST_SETTLEMENT = SettlementConfig(mined_delay_ms=50, confirmed_delay_ms=100, retry_delay_ms=50)


@pytest.fixture
def sim() -> Iterator[ThreadedSim]:
    with ThreadedSim(build_service(seed=23, settlement=FAST_SETTLEMENT)) as server:
        yield server


def test_iceberg_and_basket_over_real_sockets(sim: ThreadedSim) -> None:
    mk = next(
        x for x in sim.service.exchange.markets() if x.tick.text == "0.01" and not x.neg_risk and not x.fee.rate_num
    )
    alt = next(x for x in sim.service.exchange.markets() if x.tick.text == "0.01" and not x.neg_risk and x is not mk)
    yes, alt_yes, alt_no = mk.yes_token_id, alt.yes_token_id, alt.no_token_id

    async def body() -> None:
        async with hub_for(sim) as hub:
            us = await keyed(hub, KEY_A, "us")
            them = await keyed(hub, KEY_B, "them")
            fund(sim, us.address, "100")
            fund(sim, them.address, "100", {yes: "100", alt_yes: "100"})
            venue = PolymarketVenue(hub.clob(us))
            state = OmsState(WallClock())
            state.add_wallet(us.address, [venue.owner])
            state.set_balance(us.address, cash=100 * MICRO)
            engine = Engine(state, venue, markets={t: x.condition_id for x in (mk, alt) for t in x.token_ids})
            config = UserStreamConfig(
                url=ws_url(sim.url, "user"),
                ping_interval_s=0.2,
                stale_after_s=2.0,
                tick_s=0.05,
                backfill_retry_s=0.1,
                backoff=BackoffPolicy(base_s=0.05, max_s=0.3),
            )
            stream = UserStream(hub.clob(us), config=config)
            venue.follow(stream)
            follow_health(stream, engine.stream_gapped, engine.stream_recovered)
            manager = OrderManager(engine, actor="e2e")
            pm = ParentManager(manager, clock=WallClock(), book_source=RestBooks(hub.clob(us)), timer_interval_s=0.05)
            seller = hub.clob(them)
            tb = them.order_builder()
            async with engine, stream:
                for _ in range(200):
                    await engine.drain()
                    if stream.live and not engine.admission_errors():
                        break
                    await asyncio.sleep(0.05)
                assert stream.live and not engine.admission_errors()
                await seller.post_order(tb.limit(yes, "SELL", "0.50", "30", tick=mk.tick))
                await seller.post_order(tb.limit(alt_yes, "SELL", "0.47", "20", tick=alt.tick))
                await seller.post_order(tb.limit(alt_yes, "BUY", "0.45", "20", tick=alt.tick))
                ice = await pm.start(
                    IcebergSpec(yes, Side.BUY, m(20), m("0.50"), display=m(10), pause_ms=(100, 300), timeout_ms=30_000)
                )
                basket = await pm.start(
                    MultiLegSpec.complete_set(alt_yes, alt_no, m(10), m("0.48"), m("0.56"), mode=LegMode.PARALLEL)
                )
                a = await pm.wait(ice, timeout_s=20)
                b = await pm.wait(basket, timeout_s=20)
                await pm.close()
                assert a.state is ParentState.DONE and a.filled == 20 * MICRO and a.avg_price == 500_000, a
                assert len(a.child_order_ids) == 2 and a.decisions[1].action.value == "PAUSE"
                assert b.state is ParentState.DONE, b
                assert [(leg.filled, leg.avg_price) for leg in b.legs] == [(10 * MICRO, 470_000), (10 * MICRO, 550_000)]
                posts = venue.client.core.stats.by_path
                assert posts["POST /orders"] == 1  # the basket's legs went in one request
                assert all(n == 1 for n in venue.posts.values())  # every order sent exactly once
                for _ in range(100):  # the last fills become final
                    await engine.drain()
                    lg = state.ledger(venue.wallet)
                    if lg.prov_in == lg.prov_out == 0:
                        break
                    await asyncio.sleep(0.05)
                truth = sim.service.exchange.balances(us.address)
                lg = state.ledger(venue.wallet)
                assert lg.cash == truth.pusd
                for token in (yes, alt_yes, alt_no):
                    assert lg.positions[token].confirmed == truth.token(token).balance
                assert state.check_invariants() == []

    asyncio.run(body())
