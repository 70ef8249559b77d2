"""`polyoms sim --scenario`: background flow in the running server and the reference feed on RTDS."""

from __future__ import annotations

import asyncio
import json
import time

import aiohttp
import httpx

from polyoms.core.clock import VirtualClock
from polyoms.exchange.api.runner import ThreadedSim, build_service
from polyoms.exchange.audit import audit
from polyoms.polymarket.protocol.rtds import decode_rtds_frame


def test_scenario_trades_in_the_server_and_publishes_rtds() -> None:
    clock = VirtualClock(int(time.time() * 1000))
    with ThreadedSim(build_service(seed=4, clock=clock, scenario="calm")) as sim:
        life = sim.service.life
        assert life is not None

        async def main() -> list[str]:
            url = sim.url.replace("http://", "ws://") + "/ws/live-data"
            async with aiohttp.ClientSession() as session, session.ws_connect(url) as ws:
                sub = {
                    "action": "subscribe",
                    "subscriptions": [{"topic": "crypto_prices", "type": "update", "filters": "btcusdt"}],
                }
                await ws.send_str(json.dumps(sub))
                frames = []
                for _ in range(20):  # 20 virtual minutes of market life, ticked the way the server does
                    await asyncio.to_thread(sim.call, clock.advance, 60_000)
                    await asyncio.to_thread(sim.call, sim.service.tick)
                while True:
                    try:
                        msg = await ws.receive(timeout=0.5)
                    except TimeoutError:
                        return frames
                    frames.append(msg.data)

        frames = asyncio.run(main())
        events = [e for f in frames for e in decode_rtds_frame(f)]
        assert len(events) >= 20 and all(e.symbol == "btcusdt" for e in events)
        assert life.stats.trades > 0 and life.stats.orders > 0
        assert sim.call(audit, sim.service.exchange) == []
        # the flow is visible to any client through the venue's own endpoints
        token = sim.service.exchange.markets()[0].yes_token_id
        book = httpx.get(f"{sim.url}/book", params={"token_id": token}).json()
        assert book["bids"] and book["asks"]


def test_unknown_scenario_is_a_clear_error() -> None:
    import pytest

    from polyoms.core.errors import ConfigError

    with pytest.raises(ConfigError, match="unknown scenario"):
        build_service(scenario="bull-run")
