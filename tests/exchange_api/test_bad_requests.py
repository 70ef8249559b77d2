"""Bad requests get the venue's 4xx answer and change nothing (raw HTTP, signed by polyoms)."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from polyoms.core.clock import VirtualClock
from polyoms.exchange.api.runner import ThreadedSim, build_service
from polyoms.polymarket.protocol.auth import ApiCreds, l1_headers, l2_headers
from polyoms.polymarket.protocol.keys import Signer
from polyoms.polymarket.protocol.order import OrderBuilder
from polyoms.polymarket.protocol.wire import encode_json, order_envelope, post_order_body
from tests.exchange_api.conftest import KEY_A, fund


class RawClient:
    """Just enough of a client to send arbitrary (also malformed) signed requests."""

    def __init__(self, url: str, key: str) -> None:
        self.url = url
        self.signer = Signer(key)
        self.http = httpx.Client(base_url=url)
        resp = self.http.post("/auth/api-key", headers=l1_headers(self.signer, 137, int(time.time())))
        assert resp.status_code == 200, resp.text
        body = resp.json()
        self.creds = ApiCreds(body["apiKey"], body["secret"], body["passphrase"])
        self.builder = OrderBuilder(self.signer)

    def send(self, method: str, path: str, body: bytes | None = None, **params: Any) -> httpx.Response:
        headers = l2_headers(self.signer.address, self.creds, int(time.time()), method, path, body)
        return self.http.request(method, path, content=body, headers=headers, params=params or None)

    def state(self) -> tuple[Any, Any, Any]:
        orders = self.send("GET", "/data/orders").json()["data"]
        trades = self.send("GET", "/data/trades").json()["data"]
        balance = self.send("GET", "/balance-allowance", asset_type="COLLATERAL").json()["balance"]
        return orders, trades, balance


@pytest.fixture
def raw(sim: ThreadedSim) -> RawClient:
    client = RawClient(sim.url, KEY_A)
    fund(sim, client.signer.address, "100")
    return client


def _token(sim: ThreadedSim) -> str:
    return next(m for m in sim.service.exchange.markets() if m.tick.text == "0.01" and not m.neg_risk).yes_token_id


def _good_envelope(raw: RawClient, token: str, **overrides: Any) -> dict[str, Any]:
    order = raw.builder.limit(token, "BUY", "0.40", "10", tick="0.01")
    env = order_envelope(order, raw.creds.api_key)
    env["order"].update(overrides)
    return env


def _assert_rejected(raw: RawClient, resp: httpx.Response, status: int, message: str, before: Any) -> None:
    assert resp.status_code == status, resp.text
    assert resp.json()["error"] == message or message in resp.json()["error"]
    assert raw.state() == before


def test_malformed_json_and_missing_fields(sim: ThreadedSim, raw: RawClient) -> None:
    before = raw.state()
    token = _token(sim)
    _assert_rejected(raw, raw.send("POST", "/order", b"{not json"), 400, "Invalid order payload", before)
    _assert_rejected(raw, raw.send("POST", "/order", b"[]"), 400, "Invalid order payload", before)
    env = _good_envelope(raw, token)
    del env["order"]["signature"]
    _assert_rejected(raw, raw.send("POST", "/order", encode_json(env)), 400, "Invalid order payload", before)
    env = _good_envelope(raw, token)
    del env["order"]["maker"]
    _assert_rejected(raw, raw.send("POST", "/order", encode_json(env)), 400, "Invalid order payload", before)


def test_wrong_types(sim: ThreadedSim, raw: RawClient) -> None:
    before = raw.state()
    token = _token(sim)
    for field, value in (("makerAmount", "ten"), ("side", "HOLD"), ("salt", [1]), ("makerAmount", -5)):
        env = _good_envelope(raw, token, **{field: value})
        resp = raw.send("POST", "/order", encode_json(env))
        _assert_rejected(raw, resp, 400, "Invalid order payload" if field != "side" else "side", before)
    env = _good_envelope(raw, token)
    env["orderType"] = "IOC"
    _assert_rejected(raw, raw.send("POST", "/order", encode_json(env)), 400, "order type", before)


def test_unknown_token_and_off_tick_price(sim: ThreadedSim, raw: RawClient) -> None:
    before = raw.state()
    unknown = raw.builder.limit("12345", "BUY", "0.40", "10", tick="0.01")
    resp = raw.send("POST", "/order", post_order_body(unknown, raw.creds.api_key))
    _assert_rejected(raw, resp, 400, "unknown token id 12345", before)
    # 0.405 is on the 0.001 grid (so polyoms signs it) but off this market's 0.01 grid.
    off_tick = raw.builder.limit(_token(sim), "BUY", "0.405", "10", tick="0.001")
    resp = raw.send("POST", "/order", post_order_body(off_tick, raw.creds.api_key))
    _assert_rejected(raw, resp, 400, "breaks minimum tick size rule: 0.01", before)
    small = raw.builder.limit(_token(sim), "BUY", "0.40", "4.99", tick="0.01")
    resp = raw.send("POST", "/order", post_order_body(small, raw.creds.api_key))
    _assert_rejected(raw, resp, 400, "lower than the minimum: 5", before)


def test_expired_gtd_is_rejected() -> None:
    clock = VirtualClock(int(time.time() * 1000))
    with ThreadedSim(build_service(seed=1, clock=clock)) as sim:
        raw = RawClient(sim.url, KEY_A)
        fund(sim, raw.signer.address, "100")
        before = raw.state()
        now_s = clock.now_ms() // 1000
        builder = OrderBuilder(raw.signer, clock=VirtualClock(clock.now_ms() - 3_600_000))
        stale = builder.limit(_token(sim), "BUY", "0.40", "10", tick="0.01", order_type="GTD", expiration=now_s + 30)
        resp = raw.send("POST", "/order", post_order_body(stale, raw.creds.api_key))
        _assert_rejected(raw, resp, 400, "invalid expiration", before)
        # A valid GTD rests, then expires (with the 60 s security threshold) on the exchange's clock.
        good = raw.builder.limit(
            _token(sim), "BUY", "0.40", "10", tick="0.01", order_type="GTD", expiration=now_s + 120
        )
        assert raw.send("POST", "/order", post_order_body(good, raw.creds.api_key)).json()["status"] == "live"
        assert len(raw.state()[0]) == 1
        sim.call(clock.advance, 59_000)
        sim.call(sim.service.tick)
        assert len(raw.state()[0]) == 1
        sim.call(clock.advance, 2_000)
        sim.call(sim.service.tick)
        assert raw.state()[0] == []
        assert raw.send("GET", f"/data/order/{good.order_id}").json()["status"] == "CANCELED"


def test_auth_failures(sim: ThreadedSim, raw: RawClient) -> None:
    before = raw.state()
    token = _token(sim)
    body = post_order_body(raw.builder.limit(token, "BUY", "0.40", "10", tick="0.01"), raw.creds.api_key)
    resp = raw.http.post("/order", content=body)  # no headers at all
    _assert_rejected(raw, resp, 401, "Unauthorized/Invalid api key", before)
    headers = l2_headers(raw.signer.address, raw.creds, int(time.time()), "POST", "/order", body + b" ")
    resp = raw.http.post("/order", content=body, headers=headers)  # HMAC over other bytes
    _assert_rejected(raw, resp, 401, "Unauthorized/Invalid api key", before)
    bad_l1 = l1_headers(raw.signer, 137, int(time.time()))
    bad_l1["POLY_ADDRESS"] = "0x" + "11" * 20
    assert raw.http.post("/auth/api-key", headers=bad_l1).json() == {"error": "Invalid L1 Request headers"}
    # An owner field that is not the caller's key.
    env = order_envelope(raw.builder.limit(token, "BUY", "0.40", "10", tick="0.01"), "someone-else")
    resp = raw.send("POST", "/order", encode_json(env))
    _assert_rejected(raw, resp, 400, "the order owner has to be the owner of the API KEY", before)


def test_v1_signed_order_is_a_version_mismatch(sim: ThreadedSim, raw: RawClient) -> None:
    before = raw.state()
    env = _good_envelope(raw, _token(sim), nonce="0", feeRateBps="0", taker="0x" + "00" * 20)
    del env["order"]["timestamp"]
    resp = raw.send("POST", "/order", encode_json(env))
    _assert_rejected(raw, resp, 400, "order_version_mismatch", before)


def test_bad_queries_and_cancel_bodies(sim: ThreadedSim, raw: RawClient) -> None:
    assert httpx.get(f"{sim.url}/book").status_code == 400
    resp = httpx.get(f"{sim.url}/book", params={"token_id": "1"})
    assert resp.status_code == 404 and resp.json() == {"error": "No orderbook exists for the requested token id"}
    assert httpx.get(f"{sim.url}/tick-size", params={"token_id": "1"}).status_code == 404
    assert httpx.post(f"{sim.url}/books", content=b'{"a":1}').status_code == 400
    assert raw.send("DELETE", "/order", b'{"id": 1}').status_code == 400
    assert raw.send("DELETE", "/orders", b'"x"').status_code == 400
    assert raw.send("GET", "/data/orders", next_cursor="!!").status_code == 400
    resp = httpx.post(f"{sim.url}/_sim/fund", json={"address": "0x12", "pusd": "1"})
    assert resp.status_code == 400 and "address" in resp.json()["error"]
    resp = httpx.post(f"{sim.url}/_sim/fund", json={"address": raw.signer.address, "pusd": "-1"})
    assert resp.status_code == 400
