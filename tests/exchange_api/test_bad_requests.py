"""Bad requests get the venue's 4xx answer and change nothing (raw HTTP, signed by polyoms)."""

from __future__ import annotations

import base64
import time
from typing import Any

import httpx
import msgspec
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
    env: dict[str, Any] = msgspec.to_builtins(order_envelope(order, raw.creds.api_key))
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


# --- hostile input: always a typed 4xx, never a 500 ------------------------------------------------

HOSTILE_NUMBERS = ("abc", "²", "١٢", "1_0", "2e-2", "-5", "9" * 30, "9" * 5000, "0x10", " 1", "1.5", "%FF")


def _typed_4xx(resp: httpx.Response, status: int = 400) -> None:
    assert resp.status_code == status, (resp.request.url, resp.status_code, resp.text[:200])
    assert resp.headers["content-type"].startswith("application/json")
    assert isinstance(resp.json()["error"], str)


def test_every_integer_query_parameter_refuses_hostile_numbers(sim: ThreadedSim, raw: RawClient) -> None:
    token = _token(sim)
    public = [("/prices-history", {"market": token}, name) for name in ("startTs", "endTs")]
    public += [(path, {}, "next_cursor") for path in ("/markets", "/sampling-markets", "/simplified-markets")]
    signed = [("/data/trades", {}, name) for name in ("before", "after", "next_cursor")]
    signed += [("/data/orders", {}, "next_cursor"), ("/balance-allowance", {}, "signature_type")]
    for value in HOSTILE_NUMBERS:
        cursor = base64.b64encode(value.encode()).decode()
        for path, base, name in public:
            v = cursor if name == "next_cursor" else value
            _typed_4xx(httpx.get(f"{sim.url}{path}", params={**base, name: v}))
        for path, base, name in signed:
            v = cursor if name == "next_cursor" else value
            _typed_4xx(raw.send("GET", path, **base, **{name: v}))
    _typed_4xx(raw.send("GET", "/balance-allowance", signature_type="4"))
    # Valid values still work.
    assert httpx.get(f"{sim.url}/prices-history", params={"market": token, "startTs": "0"}).json() == {"history": []}
    assert raw.send("GET", "/data/trades", before="9" * 18, after="0").status_code == 200


def test_hostile_strings_in_every_query_parameter_are_never_a_500(sim: ThreadedSim, raw: RawClient) -> None:
    token = _token(sim)
    routes = {
        "/book": ["token_id"],
        "/tick-size": ["token_id"],
        "/neg-risk": ["token_id"],
        "/fee-rate": ["token_id"],
        "/price": ["token_id", "side"],
        "/midpoint": ["token_id"],
        "/spread": ["token_id"],
        "/last-trade-price": ["token_id"],
        "/prices-history": ["market", "startTs", "endTs"],
    }
    values = ("", "\x00", "ÿ", "%FF%FE", "x" * 4000, "[]", "-1", "١٢")
    for path, names in routes.items():
        for name in names:
            for value in values:
                params = {"token_id": token, "market": token, "side": "BUY", name: value}
                resp = httpx.get(f"{sim.url}{path}", params=params)
                assert resp.status_code < 500, (path, name, value, resp.text[:200])
    for path, name in (("/data/orders", "market"), ("/data/trades", "asset_id"), ("/balance-allowance", "asset_type")):
        for value in values:
            assert raw.send("GET", path, **{name: value}).status_code < 500, (path, name, value)


@pytest.mark.usefixtures("high_recursion_limit")
def test_deeply_nested_json_is_a_400_everywhere(sim: ThreadedSim, raw: RawClient) -> None:
    deep = b"[" * 100_000 + b"]" * 100_000
    in_a_field = b'{"order": {}, "x": ' + deep + b"}"
    before = raw.state()
    for path in ("/books", "/prices", "/midpoints", "/spreads", "/last-trades-prices"):
        _typed_4xx(httpx.post(f"{sim.url}{path}", content=deep))
    for method, path in (("POST", "/order"), ("POST", "/orders"), ("DELETE", "/order"), ("DELETE", "/orders")):
        for body in (deep, in_a_field, b"[" + in_a_field + b"]"):
            _typed_4xx(raw.send(method, path, body))
    for method, path in (("DELETE", "/cancel-market-orders"), ("POST", "/v1/heartbeats"), ("POST", "/orders-scoring")):
        _typed_4xx(raw.send(method, path, deep))
    for path in ("/_sim/fund", "/_sim/markets", "/_sim/faults"):
        _typed_4xx(httpx.post(f"{sim.url}{path}", content=deep))
    assert raw.state() == before


def test_wrongly_typed_bodies_are_400s(sim: ThreadedSim, raw: RawClient) -> None:
    _typed_4xx(raw.send("POST", "/orders-scoring", b'[{"a": 1}]'))
    _typed_4xx(raw.send("DELETE", "/cancel-market-orders", b'{"market": ["x"]}'))
    _typed_4xx(raw.send("DELETE", "/cancel-market-orders", b'{"asset_id": {"a": 1}}'))


def test_sim_admin_inputs_are_bounded(sim: ThreadedSim, raw: RawClient) -> None:
    address = raw.signer.address
    for body in (
        {"address": address, "pusd": "1e70"},
        {"address": address, "pusd": 1e70},
        {"address": address, "pusd": "1000000000001"},
        {"address": address, "pusd": "NaN"},
        {"address": address, "pusd": True},
        {"address": address, "pusd": "1", "tokens": {_token(sim): "1e30"}},
        {"address": address, "pusd": "1", "tokens": {str(i): "1" for i in range(101)}},
        {"address": address, "pusd": "1", "owner": address, "signature_type": 9},
        {"address": address, "pusd": "1", "signature_type": 1},
        {"address": address, "pusd": "1", "surprise": 1},
        [address],
    ):
        _typed_4xx(httpx.post(f"{sim.url}/_sim/fund", json=body))
    assert raw.state()[2] == "100000000"  # nothing was credited
    _typed_4xx(httpx.post(f"{sim.url}/_sim/fund", content=b'{"address": "' + b"a" * 2_000_000 + b'"}'))
    for changes in (
        {"http_latency_ms": 1e9},
        {"http_latency_ms": 60_001},
        {"http_latency_jitter_ms": 10**12},
        {"ws_delay_ms": 1e9},
        {"delayed_ms": 1e9},
        {"ws_stall_s": 1e9},
        {"restart_window_s": 1e9},
        {"restart_every_s": 1e12},
        {"retry_after_s": 1e9},
        {"http_latency_ms": 1.5},
        {"ws_drop_rate": 2},
        {"seed": -1},
        {"restart": "no"},
        {"reset": 1},
        {"nonsense": 1},
    ):
        _typed_4xx(httpx.post(f"{sim.url}/_sim/faults", json=changes))
    # Nothing was switched on: requests stay fast.
    assert httpx.get(f"{sim.url}/_sim/faults").json()["http_latency_ms"] == 0
    started = time.monotonic()
    assert httpx.get(f"{sim.url}/book", params={"token_id": _token(sim)}).status_code == 200
    assert time.monotonic() - started < 5
    many = {"markets": [{"slug": f"m-{i}", "question": f"Q{i}?", "tick_size": "0.01"} for i in range(101)]}
    _typed_4xx(httpx.post(f"{sim.url}/_sim/markets", json=many))
    for payload in ([], "x", {"markets": "x"}, {"markets": [1]}, {"markets": [{"slug": 1}]}):
        _typed_4xx(httpx.post(f"{sim.url}/_sim/markets", json=payload))
    assert len(sim.service.exchange.markets()) == len(httpx.get(f"{sim.url}/markets").json()["data"])
    one = {"markets": [{"slug": "one-more", "question": "One more?", "tick_size": "0.01"}]}
    assert httpx.post(f"{sim.url}/_sim/markets", json=one).status_code == 200
