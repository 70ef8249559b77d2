"""The control API over HTTP: the bearer token (401 without it or with a wrong one), typed errors as 4xx
naming the error class, bad input changing nothing, the emergency stop closing admission, and no secret
in any answer."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from polyoms.ops.daemon import Daemon, DaemonThread
from tests.ops.daemon_helpers import KEY_DAEMON, first_market, start_daemon, wait_until


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[DaemonThread, Daemon]]:
    yield from start_daemon(tmp_path_factory)


def call(d: Daemon, method: str, path: str, *, token: str | None = "", **kw: Any) -> httpx.Response:
    headers = {} if token is None else {"Authorization": f"Bearer {token or d.token}"}
    return httpx.request(method, f"{d.control_url}/v1{path}", headers=headers, timeout=10, **kw)


def order_count(d: Daemon) -> int:
    assert d.state is not None
    return len(d.state.orders)


def test_the_token_is_required(running: tuple[DaemonThread, Daemon]) -> None:
    _, d = running
    for token in (None, "wrong-token", d.token + "x"):
        r = call(d, "GET", "/status", token=token)
        assert r.status_code == 401
        assert r.json()["error"] == "ControlAuthError"
        assert d.token not in r.text
    r = call(d, "POST", "/orders", token="nope", json={"token_id": "1", "side": "BUY", "price": "0.5", "size": "5"})
    assert r.status_code == 401
    r = call(d, "GET", "/status")
    assert r.status_code == 200 and r.json()["admission_open"] is True


def test_typed_errors_and_bad_input_change_nothing(running: tuple[DaemonThread, Daemon]) -> None:
    _, d = running
    _, yes, _ = first_market(d)
    before = order_count(d)
    cases = [
        ({"token_id": yes, "side": "BUY", "price": "0.405", "size": "10"}, 400, "InvalidPriceError"),
        ({"token_id": yes, "side": "BUY", "price": "1.5", "size": "10"}, 400, "InvalidPriceError"),
        ({"token_id": yes, "side": "BUY", "price": "0.40", "size": "-3"}, 400, "InvalidSizeError"),
        ({"token_id": yes, "side": "BUY", "price": "0.40", "size": "1"}, 400, "BelowMinimumSizeError"),
        ({"token_id": yes, "side": "HOLD", "price": "0.40", "size": "10"}, 400, "InvalidOrderError"),
        ({"token_id": "123", "side": "BUY", "price": "0.40", "size": "10"}, 400, "InputError"),
        ({"token_id": yes, "side": "BUY", "price": "0.40"}, 400, "InputError"),
        ({"token_id": yes, "side": "BUY", "kind": "market", "size": "10"}, 400, "InputError"),
        ({"token_id": yes, "side": "BUY", "price": "0.40", "size": "10", "colour": "red"}, 400, "InputError"),
        (
            {"token_id": yes, "side": "BUY", "price": "0.40", "size": "5000", "confirm": False},
            409,
            "ConfirmationRequiredError",
        ),
        (
            {"token_id": yes, "side": "BUY", "price": "0.50", "size": "2500", "confirm": True},
            409,
            "InsufficientBalanceError",
        ),
    ]
    for body, status, error in cases:
        r = call(d, "POST", "/orders", json=body)
        assert (r.status_code, r.json()["error"]) == (status, error), (body, r.text)
        assert r.json()["message"]
    r = call(d, "POST", "/orders", content=b"{not json")
    assert r.status_code == 400 and r.json()["error"] == "InputError"
    assert order_count(d) == before  # nothing journaled, nothing sent
    r = call(d, "GET", "/orders/0xfeed")
    assert r.status_code == 404 and r.json()["error"] == "UnknownOrderError"
    r = call(d, "DELETE", "/orders/0xfeed")
    assert r.status_code == 404
    r = call(d, "GET", "/parents/nope")
    assert r.status_code == 404
    r = call(d, "GET", "/markets", params={"q": "", "limit": "5"})
    assert r.status_code == 400
    r = call(d, "GET", "/markets", params={"q": "bitcoin", "limit": "x"})
    assert r.status_code == 400


def test_orders_positions_metrics_and_markets(running: tuple[DaemonThread, Daemon]) -> None:
    thread, d = running
    _, yes, _ = first_market(d)
    r = call(d, "POST", "/orders", json={"token_id": yes, "side": "BUY", "price": "0.33", "size": "12"})
    assert r.status_code == 200, r.text
    oid = r.json()["order_id"]
    assert r.json()["price"] == "0.33" and r.json()["size"] == "12"
    assert d.state is not None
    state = d.state
    assert wait_until(thread, lambda: state.order(oid).state.value == "LIVE")
    view = call(d, "GET", f"/orders/{oid}").json()
    assert [h["to_state"] for h in view["history"]] == ["SUBMITTING", "LIVE"]
    assert view["history"][0]["actor"] == "operator"
    listed = call(d, "GET", "/orders", params={"open": "1"}).json()["orders"]
    assert oid in [o["order_id"] for o in listed]
    pos = call(d, "GET", "/positions").json()
    assert pos["cash"] == "1000" and pos["reserved"] != "0"  # 0.33 x 12 plus the fee allowance
    metrics = call(d, "GET", "/metrics")
    assert metrics.status_code == 200 and "polyoms_" in metrics.text
    found = call(d, "GET", "/markets", params={"q": "bitcoin"}).json()
    assert found["markets"] and all("bitcoin" in m["question"].lower() for m in found["markets"])
    r = call(d, "DELETE", f"/orders/{oid}")
    assert r.status_code == 200 and r.json()["requested"] == [oid]
    assert wait_until(thread, lambda: state.order(oid).state.value == "CANCELLED")
    again = call(d, "DELETE", f"/orders/{oid}").json()
    assert again["requested"] == [] and "already CANCELLED" in again["note"]


def test_emergency_stop_closes_admission(running: tuple[DaemonThread, Daemon]) -> None:
    thread, d = running
    _, yes, _ = first_market(d)
    ids = []
    for price in ("0.21", "0.22"):
        r = call(d, "POST", "/orders", json={"token_id": yes, "side": "BUY", "price": price, "size": "10"})
        ids.append(r.json()["order_id"])
    assert d.state is not None
    state = d.state
    assert wait_until(thread, lambda: all(state.order(i).state.value == "LIVE" for i in ids))
    parent = call(
        d,
        "POST",
        "/orders",
        json={"token_id": yes, "side": "BUY", "price": "0.05", "size": "10", "algo": "adaptive"},
    )
    assert parent.status_code == 200, parent.text
    pid = parent.json()["parent_id"]
    assert call(d, "GET", f"/parents/{pid}").json()["state"] == "WORKING"
    r = call(d, "POST", "/stop", json={"emergency": True, "reason": "test"})
    assert r.status_code == 200 and r.json()["admission"] == "closed" and r.json()["cancel_requested"] >= 3
    assert r.json()["parents_cancelled"] == 1
    assert wait_until(thread, lambda: d.parents is not None and d.parents.status(pid).done)
    assert call(d, "GET", f"/orders/{pid}").json()["state"] == "CANCELLED"
    assert wait_until(thread, lambda: all(state.order(i).state.value == "CANCELLED" for i in ids))
    r = call(d, "POST", "/orders", json={"token_id": yes, "side": "BUY", "price": "0.2", "size": "10"})
    assert r.status_code == 409 and r.json()["error"] == "TradingHaltedError" and "kill switch" in r.json()["message"]
    assert call(d, "GET", "/status").json()["admission_open"] is False
    r = call(d, "POST", "/resume", json={})
    assert r.json()["admission"] == "open"
    assert call(d, "GET", "/status").json()["admission_open"] is True


def test_no_secret_in_any_answer(running: tuple[DaemonThread, Daemon]) -> None:
    _, d = running
    assert d.wallet is not None and d.wallet.creds is not None
    creds = d.wallet.creds
    secrets = [KEY_DAEMON, KEY_DAEMON[2:], creds.secret, creds.passphrase, d.token]
    bodies = [
        call(d, "GET", path).text
        for path in ("/status", "/orders", "/positions", "/metrics", "/parents", "/markets?q=will")
    ]
    bodies.append(call(d, "GET", "/status", token="bad").text)
    for body in bodies:
        for s in secrets:
            assert s not in body


def test_kelly_sized_order(running: tuple[DaemonThread, Daemon]) -> None:
    _, d = running
    _, yes, _ = first_market(d)
    body = {
        "token_id": yes,
        "side": "BUY",
        "price": "0.40",
        "kelly": {"prob": "0.6", "fraction": "0.5", "bankroll": "100"},
    }
    # f* = (b·p − q) / b = 1/3 at b = 1.5; half Kelly of 100 pUSD = 16.66 staked = 41.65 shares at 0.40.
    r = call(d, "POST", "/orders", json=body)
    assert r.status_code == 200, r.text
    assert r.json()["size"] == "41.65" and r.json()["price"] == "0.4"
    call(d, "DELETE", f"/orders/{r.json()['order_id']}")
    before = order_count(d)
    no_edge = call(d, "POST", "/orders", json={**body, "kelly": {"prob": "0.3", "fraction": "0.5"}})
    assert no_edge.status_code == 400 and "no edge" in no_edge.json()["message"]
    too_much = call(d, "POST", "/orders", json={**body, "kelly": {"prob": "0.6", "fraction": "1.5"}})
    assert too_much.status_code == 400 and "fraction" in too_much.json()["message"]
    assert order_count(d) == before
