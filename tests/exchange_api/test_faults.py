"""Every fault of the local exchange is off by default and, switched on, observable as specified."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import pytest

from polyoms.core.clock import VirtualClock
from polyoms.core.errors import ConfigError, PostOnlyModeError, RateLimitedError, VenueRestartingError
from polyoms.exchange.api.faults import FaultConfig
from polyoms.exchange.api.runner import ThreadedSim, build_service, load_sim_config
from polyoms.polymarket.protocol.errors import error_from_response
from polyoms.polymarket.protocol.wire import post_order_body
from tests.exchange_api.conftest import KEY_A, KEY_B, fund
from tests.exchange_api.test_bad_requests import RawClient


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock(int(time.time() * 1000))


@pytest.fixture
def vsim(clock: VirtualClock) -> Iterator[ThreadedSim]:
    with ThreadedSim(build_service(seed=3, clock=clock)) as server:
        yield server


def _faults(sim: ThreadedSim, **changes: Any) -> dict[str, Any]:
    resp = httpx.post(f"{sim.url}/_sim/faults", json=changes)
    assert resp.status_code == 200, resp.text
    return resp.json()  # type: ignore[no-any-return]


def _token(sim: ThreadedSim) -> str:
    return next(m for m in sim.service.exchange.markets() if m.tick.text == "0.01" and not m.neg_risk).yes_token_id


def test_all_faults_are_off_by_default(vsim: ThreadedSim) -> None:
    state = httpx.get(f"{vsim.url}/_sim/faults").json()
    defaults = FaultConfig()
    assert not defaults.any_on()
    for name in ("http_5xx_rate", "http_429_rate", "order_delayed_rate", "ws_drop_rate", "ws_stall_rate"):
        assert state[name] == 0
    assert state["restarting_s"] is None and state["post_only_s"] is None
    assert all(httpx.get(f"{vsim.url}/version").status_code == 200 for _ in range(20))


def test_http_latency_5xx_and_429(vsim: ThreadedSim) -> None:
    _faults(vsim, http_latency_ms=150)
    t0 = time.perf_counter()
    assert httpx.get(f"{vsim.url}/version").status_code == 200
    assert time.perf_counter() - t0 >= 0.15
    _faults(vsim, http_latency_ms=0, http_5xx_rate=1)
    resp = httpx.get(f"{vsim.url}/version")
    assert resp.status_code in (500, 502, 503) and resp.json() == {"error": "internal server error"}
    assert httpx.get(f"{vsim.url}/_sim/faults").status_code == 200  # administration is never faulted
    _faults(vsim, http_5xx_rate=0, http_429_rate=1, retry_after_s=7)
    resp = httpx.get(f"{vsim.url}/book", params={"token_id": _token(vsim)})
    assert resp.status_code == 429 and resp.headers["Retry-After"] == "7"
    err = error_from_response(resp.status_code, resp.content, retry_after=float(resp.headers["Retry-After"]))
    assert isinstance(err, RateLimitedError) and err.retry_after == 7
    _faults(vsim, http_429_rate=0)
    assert httpx.get(f"{vsim.url}/version").status_code == 200


def test_weekly_restart_then_post_only_mode(vsim: ThreadedSim, clock: VirtualClock) -> None:
    a = RawClient(vsim.url, KEY_A)
    fund(vsim, a.signer.address, "100")
    token = _token(vsim)
    resting = a.builder.limit(token, "BUY", "0.30", "10", tick="0.01")
    assert a.send("POST", "/order", post_order_body(resting, a.creds.api_key)).json()["status"] == "live"
    _faults(vsim, restart=True, restart_window_s=5, post_only_window_s=10)
    resp = httpx.get(f"{vsim.url}/version")
    assert resp.status_code == 425 and int(resp.headers["Retry-After"]) == 5
    assert isinstance(error_from_response(425, resp.content), VenueRestartingError)
    vsim.call(clock.advance, 6_000)
    taker = a.builder.limit(token, "BUY", "0.31", "10", tick="0.01")
    resp = a.send("POST", "/order", post_order_body(taker, a.creds.api_key))
    body = resp.json()
    assert resp.status_code == 503 and body["code"] == "post_only_mode" and body["retry_after_seconds"] == 9
    err = error_from_response(503, resp.content)
    assert isinstance(err, PostOnlyModeError) and err.retry_after == 9
    maker = a.builder.limit(token, "BUY", "0.32", "10", tick="0.01", post_only=True)
    assert a.send("POST", "/order", post_order_body(maker, a.creds.api_key)).json()["status"] == "live"
    cancel = a.send("DELETE", "/order", json.dumps({"orderID": resting.order_id}).encode())
    assert cancel.json()["canceled"] == [resting.order_id]  # cancels are allowed
    vsim.call(clock.advance, 10_000)
    assert a.send("POST", "/order", post_order_body(taker, a.creds.api_key)).json()["status"] == "live"


def test_marketable_orders_answered_delayed_then_matched(vsim: ThreadedSim, clock: VirtualClock) -> None:
    a, b = RawClient(vsim.url, KEY_A), RawClient(vsim.url, KEY_B)
    token = _token(vsim)
    fund(vsim, a.signer.address, "100")
    fund(vsim, b.signer.address, "0", {token: "50"})
    _faults(vsim, order_delayed_rate=1, delayed_ms=200)
    ask = b.builder.limit(token, "SELL", "0.50", "10", tick="0.01")
    assert b.send("POST", "/order", post_order_body(ask, b.creds.api_key)).json()["status"] == "live"  # not marketable
    bid = a.builder.limit(token, "BUY", "0.50", "10", tick="0.01")
    resp = a.send("POST", "/order", post_order_body(bid, a.creds.api_key)).json()
    assert resp["status"] == "delayed" and resp["orderID"] == bid.order_id and resp["tradeIDs"] == []
    assert a.send("GET", "/data/trades").json()["data"] == []
    vsim.call(clock.advance, 200)
    vsim.call(vsim.service.tick)
    trades = a.send("GET", "/data/trades").json()["data"]
    assert len(trades) == 1 and trades[0]["taker_order_id"] == bid.order_id


async def _recv(ws: aiohttp.ClientWebSocketResponse, timeout: float = 0.5) -> list[str]:
    out = []
    while True:
        try:
            msg = await ws.receive(timeout=timeout)
        except TimeoutError:
            return out
        if msg.type != aiohttp.WSMsgType.TEXT:
            out.append(f"<{msg.type.name}>")
            return out
        out.append(msg.data)


def _ws(sim: ThreadedSim, script: Any) -> Any:
    async def main() -> Any:
        async with (
            aiohttp.ClientSession() as session,
            session.ws_connect(sim.url.replace("http", "ws") + "/ws/market") as ws,
        ):
            return await script(ws)

    return asyncio.run(main())


def test_ws_drop_duplicate_reorder_delay(vsim: ThreadedSim) -> None:
    markets = [m for m in vsim.service.exchange.markets() if not m.neg_risk]
    a, b = markets[0].yes_token_id, markets[1].yes_token_id

    async def subscribe_two(ws: aiohttp.ClientWebSocketResponse) -> list[str]:
        await ws.send_str(json.dumps({"type": "market", "assets_ids": [a]}))
        await asyncio.sleep(0.1)
        await ws.send_str(json.dumps({"operation": "subscribe", "assets_ids": [b]}))
        return await _recv(ws)

    def assets(frames: list[str]) -> list[str]:
        return [json.loads(f)[0]["asset_id"] for f in frames]

    _faults(vsim, ws_drop_rate=1)
    assert _ws(vsim, subscribe_two) == []
    _faults(vsim, ws_drop_rate=0, ws_duplicate_rate=1)
    assert assets(_ws(vsim, subscribe_two)) == [a, a, b, b]
    _faults(vsim, ws_duplicate_rate=0, ws_reorder_rate=1)
    assert assets(_ws(vsim, subscribe_two)) == [b, a]
    _faults(vsim, ws_reorder_rate=0, ws_delay_rate=1, ws_delay_ms=300)

    async def timed_ping(ws: aiohttp.ClientWebSocketResponse) -> tuple[float, list[str]]:
        t0 = time.perf_counter()
        await ws.send_str("PING")
        got = await _recv(ws, timeout=1.0)
        return time.perf_counter() - t0, got

    elapsed, got = _ws(vsim, timed_ping)
    assert got == ["PONG"] and elapsed >= 0.3
    _faults(vsim, ws_delay_rate=0)
    assert assets(_ws(vsim, subscribe_two)) == [a, b]


def test_ws_disconnect_and_silent_stall(vsim: ThreadedSim) -> None:
    async def ping(ws: aiohttp.ClientWebSocketResponse) -> tuple[list[str], bool]:
        await ws.send_str("PING")
        got = await _recv(ws, timeout=0.5)
        return got, ws.closed

    _faults(vsim, ws_disconnect_rate=1)
    got, _ = _ws(vsim, ping)
    assert got and got[0].startswith("<")  # closed by the server instead of answering
    _faults(vsim, ws_disconnect_rate=0, ws_stall_rate=1, ws_stall_s=60)
    got, closed = _ws(vsim, ping)
    assert got == [] and not closed  # open, silent: not even PONG
    _faults(vsim, reset=True)
    got, _ = _ws(vsim, ping)
    assert got == ["PONG"]


def test_fault_config_from_file_and_validation(tmp_path: Path) -> None:
    cfg = tmp_path / "sim.toml"
    cfg.write_text("[faults]\nhttp_5xx_rate = 0.25\nws_drop_rate = 0.5\nseed = 9\n")
    markets, faults = load_sim_config(cfg)
    assert markets and faults.http_5xx_rate == 0.25 and faults.ws_drop_rate == 0.5 and faults.seed == 9
    cfg.write_text("[faults]\nws_drops = 0.5\n")
    with pytest.raises(ConfigError, match="unknown fault switch"):
        load_sim_config(cfg)
    cfg.write_text("[faults]\nhttp_5xx_rate = 2\n")
    with pytest.raises(ConfigError, match="probability"):
        load_sim_config(cfg)


def test_runtime_switch_validation(vsim: ThreadedSim) -> None:
    resp = httpx.post(f"{vsim.url}/_sim/faults", json={"http_5xx_rate": "lots"})
    assert resp.status_code == 400 and "must be a number" in resp.json()["error"]
    resp = httpx.post(f"{vsim.url}/_sim/faults", json={"nonsense": 1})
    assert resp.status_code == 400 and "unknown fault switch" in resp.json()["error"]


def test_faults_are_seeded_and_reproducible() -> None:
    def pattern(seed: int) -> list[int | None]:
        service = build_service(faults=FaultConfig(seed=seed, http_5xx_rate=0.3, http_429_rate=0.1))
        return [service.faults.http_failure() for _ in range(200)]

    assert pattern(5) == pattern(5)
    assert pattern(5) != pattern(6)
    assert 30 < sum(1 for s in pattern(5) if s is not None) < 120
