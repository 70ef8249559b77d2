"""The local exchange's authentication over real sockets: secret-derived keys, fresh timestamps only."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
import uuid

import httpx
import pytest

from polyoms.core.clock import VirtualClock
from polyoms.core.errors import ConfigError
from polyoms.exchange.api.app import AUTH_WINDOW_S
from polyoms.exchange.api.runner import ThreadedSim, build_service
from polyoms.polymarket.protocol.auth import ApiCreds, hmac_signature, l1_headers, l2_headers
from polyoms.polymarket.protocol.keys import Signer
from polyoms.polymarket.protocol.wire import post_order_body
from tests.exchange_api.conftest import KEY_A, KEY_B, fund
from tests.exchange_api.test_bad_requests import RawClient

L2_REFUSED = {"error": "Unauthorized/Invalid api key"}
L1_REFUSED = {"error": "Invalid L1 Request headers"}
DAY_S = 86_400


def _creds_from_seed(seed: int, address: str) -> ApiCreds:
    """What anyone could compute before: credentials derived from the public `--seed`."""
    material = hmac.new(f"polyoms-sim:{seed}".encode(), f"{address.lower()}:0".encode(), hashlib.sha256).digest()
    api_key = str(uuid.UUID(bytes=hashlib.sha256(b"key" + material).digest()[:16], version=4))
    secret = base64.urlsafe_b64encode(hashlib.sha256(b"secret" + material).digest()).decode("ascii")
    return ApiCreds(api_key, secret, hashlib.sha256(b"passphrase" + material).hexdigest())


def _resting_order(sim: ThreadedSim, raw: RawClient) -> str:
    token = next(m for m in sim.service.exchange.markets() if m.tick.text == "0.01" and not m.neg_risk).yes_token_id
    order = raw.builder.limit(token, "BUY", "0.40", "10", tick="0.01")
    assert raw.send("POST", "/order", post_order_body(order, raw.creds.api_key)).json()["status"] == "live"
    return order.order_id


def _cancel_all_at(raw: RawClient, ts: int | str) -> httpx.Response:
    """DELETE /cancel-all with a correct HMAC over timestamp text `ts`, sent as is (UTF-8)."""
    text = str(ts)
    headers: dict[str, str | bytes] = {
        **l2_headers(raw.signer.address, raw.creds, 0, "DELETE", "/cancel-all"),
        "POLY_TIMESTAMP": text.encode(),
        "POLY_SIGNATURE": hmac_signature(raw.creds.secret, text, "DELETE", "/cancel-all"),
    }
    return raw.http.delete("/cancel-all", headers=headers)


def test_credentials_cannot_be_computed_from_the_address_and_seed(sim: ThreadedSim) -> None:
    victim = RawClient(sim.url, KEY_A)
    fund(sim, victim.signer.address, "100")
    order_id = _resting_order(sim, victim)
    # A third party knows the victim's address and the default seed (7 here): that gives nothing.
    forged = _creds_from_seed(7, victim.signer.address)
    assert forged.api_key != victim.creds.api_key
    headers = l2_headers(victim.signer.address, forged, int(time.time()), "DELETE", "/cancel-all")
    resp = httpx.delete(f"{sim.url}/cancel-all", headers=headers)
    assert resp.status_code == 401 and resp.json() == L2_REFUSED
    assert victim.send("GET", f"/data/order/{order_id}").json()["status"] == "LIVE"


def test_keys_come_from_the_exchange_secret_not_the_seed() -> None:
    signer = Signer(KEY_B)

    def creds(secret: bytes | None) -> tuple[bytes, ApiCreds]:
        with ThreadedSim(build_service(seed=7, auth_secret=secret)) as sim:
            resp = httpx.post(f"{sim.url}/auth/api-key", headers=l1_headers(signer, 137, int(time.time())))
            body = resp.json()
            return sim.service.auth_secret, ApiCreds(body["apiKey"], body["secret"], body["passphrase"])

    secret_1, first = creds(None)
    secret_2, second = creds(None)
    assert len(secret_1) == 32 and secret_1 != secret_2  # random per exchange
    assert first.api_key != second.api_key  # same seed, other exchange: other keys
    restored_secret, restored = creds(secret_1)  # a restarted exchange that kept its secret
    assert restored_secret == secret_1 and restored == first
    with pytest.raises(ConfigError, match="at least 16"):
        build_service(auth_secret=b"short")


def test_stale_and_future_l2_timestamps_are_refused(sim: ThreadedSim) -> None:
    raw = RawClient(sim.url, KEY_A)
    fund(sim, raw.signer.address, "100")
    order_id = _resting_order(sim, raw)
    now = int(time.time())
    for ts in (now - 30 * DAY_S, now - AUTH_WINDOW_S - 30, now + AUTH_WINDOW_S + 30):
        resp = _cancel_all_at(raw, ts)  # a correct HMAC, only old (or from the future)
        assert resp.status_code == 401 and resp.json() == L2_REFUSED, ts
    # Digits that int() takes but are not ASCII, signed as sent: refused too.
    for text in (str(now).translate(str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩")), f"+{now}", f"{now:_}"):
        resp = _cancel_all_at(raw, text)
        assert resp.status_code == 401 and resp.json() == L2_REFUSED, text
    assert raw.send("GET", f"/data/order/{order_id}").json()["status"] == "LIVE"
    resp = _cancel_all_at(raw, now - AUTH_WINDOW_S // 2)  # within the window: a slow clock is fine
    assert resp.status_code == 200 and resp.json()["canceled"] == [order_id]


def test_stale_l1_timestamp_is_refused(sim: ThreadedSim) -> None:
    signer = Signer(KEY_A)
    for ts in (int(time.time()) - 30 * DAY_S, int(time.time()) + AUTH_WINDOW_S + 30):
        for method, path in (("POST", "/auth/api-key"), ("GET", "/auth/derive-api-key")):
            resp = httpx.request(method, f"{sim.url}{path}", headers=l1_headers(signer, 137, ts))
            assert resp.status_code == 401 and resp.json() == L1_REFUSED, (path, ts)
    assert httpx.post(f"{sim.url}/auth/api-key", headers=l1_headers(signer, 137, int(time.time()))).status_code == 200


def test_non_ascii_auth_headers_are_refused_not_a_500(sim: ThreadedSim) -> None:
    raw = RawClient(sim.url, KEY_A)
    good = l2_headers(raw.signer.address, raw.creds, int(time.time()), "GET", "/data/orders")
    for name in ("POLY_PASSPHRASE", "POLY_SIGNATURE", "POLY_API_KEY", "POLY_ADDRESS", "POLY_TIMESTAMP"):
        for value in (b"\xff\xfe", "pässphrase".encode()):
            resp = raw.http.get("/data/orders", headers={**good, name: value})  # type: ignore[dict-item]
            assert resp.status_code == 401 and resp.json() == L2_REFUSED, (name, value)
    l1 = l1_headers(raw.signer, 137, int(time.time()))
    resp = raw.http.get("/auth/derive-api-key", headers={**l1, "POLY_SIGNATURE": b"0x\xff"})  # type: ignore[dict-item]
    assert resp.status_code == 401 and resp.json() == L1_REFUSED


def test_virtual_clock_exchange_accepts_its_own_time_and_wall_time() -> None:
    clock = VirtualClock((int(time.time()) - 3 * DAY_S) * 1000)  # a backtest three days back
    with ThreadedSim(build_service(seed=1, clock=clock)) as sim:
        signer = Signer(KEY_A)
        venue_now = httpx.get(f"{sim.url}/time").json()
        for ts in (venue_now, int(time.time())):  # synced to GET /time, or the wall clock
            assert httpx.post(f"{sim.url}/auth/api-key", headers=l1_headers(signer, 137, ts)).status_code == 200
        resp = httpx.post(f"{sim.url}/auth/api-key", headers=l1_headers(signer, 137, venue_now - 30 * DAY_S))
        assert resp.status_code == 401
