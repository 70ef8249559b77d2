"""The OMS engine through the Polymarket venue adapter (the async REST client) against `polyoms sim` over
real sockets on 127.0.0.1 — the paper-trading path, the same code as live.

Faults: a POST whose answer comes too late (the order was processed: it rests, or it filled) is UNKNOWN
and resolved from GET /data/order + /data/trades, never re-sent; the weekly restart window refuses orders
with typed errors (425, then post-only mode), nothing sent twice.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from polyoms.core.clock import VirtualClock, WallClock
from polyoms.core.units import MICRO
from polyoms.exchange.api.runner import ThreadedSim, build_service
from polyoms.oms.engine import Engine
from polyoms.oms.errors import TradingHaltedError
from polyoms.oms.manager import OrderManager
from polyoms.oms.oms_state import OmsState
from polyoms.oms.state import OrderState
from polyoms.polymarket.client import ClientHub, Timeouts, VirtualTimer
from polyoms.venues.polymarket import PolymarketVenue
from polyoms.venues.polymarket_orders import prepared
from tests.client.conftest import KEY_A, KEY_B, faults, fund, hub_for, keyed, market

S = OrderState


@pytest.fixture
def sim() -> Iterator[ThreadedSim]:
    with ThreadedSim(build_service(seed=11)) as server:
        yield server


async def engine_for(sim: ThreadedSim, hub: ClientHub) -> tuple[Engine, PolymarketVenue]:
    w = await keyed(hub, KEY_A, "us")
    fund(sim, w.address, "100")
    venue = PolymarketVenue(hub.clob(w))
    state = OmsState(WallClock())
    state.add_wallet(w.address, [venue.owner])
    state.set_balance(w.address, cash=100 * MICRO)
    m = market(sim)
    engine = Engine(state, venue, markets={t: m.condition_id for t in m.token_ids}, unknown_grace_ms=60_000)
    return engine, venue


@pytest.mark.parametrize("then_filled", [False, True], ids=["rested", "filled"])
def test_post_times_out_but_the_order_was_processed(sim: ThreadedSim, then_filled: bool) -> None:
    m = market(sim)

    async def body() -> None:
        async with hub_for(sim, timeouts=Timeouts(order_s=0.15)) as hub:
            engine, venue = await engine_for(sim, hub)
            them = await keyed(hub, KEY_B, "them")
            fund(sim, them.address, "100", {m.yes_token_id: "100"})
            mgr = OrderManager(engine)
            async with engine:
                faults(sim, http_latency_ms=400)  # processed at once, answered too late
                oid = await mgr.submit_limit(m.yes_token_id, "BUY", "0.41", "10", tick=m.tick.text)
                await engine.drain()
                faults(sim, http_latency_ms=0)
                assert mgr.status(oid).state is S.UNKNOWN
                with pytest.raises(TradingHaltedError):
                    await mgr.submit_limit(m.yes_token_id, "BUY", "0.40", "10", tick=m.tick.text)
                if then_filled:
                    await asyncio.sleep(0.3)  # the late answer is over; a counterparty takes the order
                    sell = them.order_builder().limit(m.yes_token_id, "SELL", "0.41", "10", tick=m.tick)
                    assert (await hub.clob(them).post_order(sell)).status == "matched"
                assert await engine.resolve_unknown() == []
                st = mgr.status(oid)
                if then_filled:
                    assert st.state is S.FILLED and st.filled == 10 * MICRO
                    (fill,) = st.fills
                    assert fill.price == 410_000
                    lg = engine.state.ledger(venue.wallet)
                    assert lg.positions[m.yes_token_id].prov_in == 10 * MICRO
                else:
                    assert st.state is S.LIVE
                    assert sim.service.exchange.get_order(oid) is not None
                assert any("reconcile" in h.actor for h in st.history)
                assert venue.posts == {oid: 1}
                assert venue.client.core.stats.by_path["POST /order"] == 1  # sent once, never again
                assert engine.admission_errors() == []

    asyncio.run(body())


def test_restart_window_refuses_orders_with_typed_errors() -> None:
    clock = VirtualClock(1_777_000_000_000)
    with ThreadedSim(build_service(seed=12, clock=clock)) as vsim:
        m = market(vsim)

        async def body() -> None:
            async with hub_for(vsim, VirtualTimer(VirtualClock())) as hub:
                engine, venue = await engine_for(vsim, hub)
                b = venue.client.wallet.order_builder()  # type: ignore[union-attr]
                async with engine:
                    faults(vsim, restart=True, restart_window_s=90, post_only_window_s=120)
                    during = b.limit(m.yes_token_id, "BUY", "0.30", "10", tick=m.tick)
                    await engine.submit([prepared(during)])
                    await engine.drain()
                    clock.advance(91_000)
                    taker = b.limit(m.yes_token_id, "BUY", "0.31", "10", tick=m.tick)
                    maker = b.limit(m.yes_token_id, "BUY", "0.32", "10", tick=m.tick, post_only=True)
                    await engine.submit([prepared(taker)])
                    await engine.submit([prepared(maker)])
                    await engine.drain()
                    st = engine.state
                    assert st.order(during.order_id).state is S.REJECTED
                    assert type(engine.errors[during.order_id]).__name__ == "VenueRestartingError"
                    assert st.order(taker.order_id).state is S.REJECTED
                    assert type(engine.errors[taker.order_id]).__name__ == "PostOnlyModeError"
                    assert st.order(maker.order_id).state is S.LIVE
                    assert st.unknown == set()  # refusals are definite, not unknown outcomes
                    assert venue.posts == {during.order_id: 1, taker.order_id: 1, maker.order_id: 1}
                    assert vsim.service.exchange.get_order(during.order_id) is None
                    assert vsim.service.exchange.get_order(taker.order_id) is None

        asyncio.run(body())


def test_polled_user_events_move_the_order_and_the_ledger(sim: ThreadedSim) -> None:
    m = market(sim)

    async def body() -> None:
        async with hub_for(sim) as hub:
            engine, venue = await engine_for(sim, hub)
            them = await keyed(hub, KEY_B, "them")
            fund(sim, them.address, "100", {m.yes_token_id: "100"})
            b = venue.client.wallet.order_builder()  # type: ignore[union-attr]
            async with engine:
                order = b.limit(m.yes_token_id, "BUY", "0.45", "20", tick=m.tick)
                (oid,) = await engine.submit([prepared(order)])
                await engine.drain()
                assert engine.state.order(oid).state is S.LIVE
                sell = them.order_builder().limit(m.yes_token_id, "SELL", "0.45", "8", tick=m.tick)
                await hub.clob(them).post_order(sell)
                assert await venue.poll_user_events() >= 2
                assert await venue.poll_user_events() >= 2  # the same again: absorbed as duplicates
                await engine.drain()
                o = engine.state.order(oid)
                assert o.state is S.PARTIALLY_FILLED and o.filled == 8 * MICRO
                lg = engine.state.ledger(venue.wallet)
                assert lg.positions[m.yes_token_id].prov_in == 8 * MICRO and len(engine.state.fills) == 1
                await engine.cancel([oid])
                await engine.drain()
                assert engine.state.order(oid).state is S.CANCELLED
                assert venue.posts == {oid: 1}

    asyncio.run(body())
