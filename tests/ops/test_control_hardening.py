"""The operator keeps the kill switch: a refused second daemon leaves the running one's endpoint files, a
local process holding connections (half-open, slowloris, churning, or more than the daemon has file
descriptors) cannot keep `stop --emergency` out, HTTP refusals are typed JSON, cancel-all and a parent's
cancel stop parent orders, and the emergency reason is redacted before it is cut."""

from __future__ import annotations

import asyncio
import logging
import os
import resource
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from polyoms.cli.ctl import ControlClient
from polyoms.cli.main import app
from polyoms.net.http_guard import GuardLimits
from polyoms.ops import schema as api
from polyoms.ops.config import Secrets
from polyoms.ops.control import ControlServer
from polyoms.ops.daemon import Daemon, DaemonError, DaemonThread, read_endpoint
from polyoms.ops.daemon import run as run_daemon
from polyoms.polymarket.client.redact import register_secret
from tests.ops.daemon_helpers import KEY_OTHER, first_market, local_config, start_daemon, wait_until

ENV = {"POLYOMS_CONTROL_URL": "", "POLYOMS_CONTROL_TOKEN": "", "POLYOMS_STATE_DIR": "", "COLUMNS": "200"}
GUARD_LOGGER = "polyoms.net.http_guard"


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[DaemonThread, Daemon]]:
    yield from start_daemon(tmp_path_factory)


def call(url: str, token: str | None, method: str, path: str, **kw: Any) -> httpx.Response:
    headers = {} if token is None else {"Authorization": f"Bearer {token}"}
    return httpx.request(method, f"{url}/v1{path}", headers=headers, timeout=10, **kw)


def d_call(d: Daemon, method: str, path: str, **kw: Any) -> httpx.Response:
    return call(d.control_url, d.token, method, path, **kw)


def host_port(url: str) -> tuple[str, int]:
    host, port = url.removeprefix("http://").rsplit(":", 1)
    return host, int(port)


def resume(d: Daemon) -> None:
    assert d_call(d, "POST", "/resume", json={}).json()["admission"] == "open"


def open_sockets(url: str, n: int, first_bytes: bytes = b"") -> list[socket.socket]:
    out = []
    for _ in range(n):
        s = socket.create_connection(host_port(url), timeout=5)
        if first_bytes:
            s.sendall(first_bytes)
        out.append(s)
    return out


def close_all(socks: list[socket.socket]) -> None:
    for s in socks:
        s.close()


def closed_by_server(s: socket.socket, timeout_s: float) -> bool:
    s.settimeout(timeout_s)
    try:
        while True:
            chunk = s.recv(4096)
            if not chunk:
                return True
    except (ConnectionResetError, BrokenPipeError):
        return True
    except TimeoutError:
        return False


# --- bug 1(a): the refused second daemon -------------------------------------------------------------


def test_a_refused_second_run_leaves_the_kill_switch_reachable(running: tuple[DaemonThread, Daemon]) -> None:
    _, d = running
    before = read_endpoint(d.state_dir)
    assert before is not None
    # `polyoms run` itself: start refused by the lock, then its `finally: stop()`.
    with pytest.raises(DaemonError, match="another polyoms daemon runs on"):
        asyncio.run(run_daemon(local_config(d.state_dir), Secrets(KEY_OTHER)))
    assert read_endpoint(d.state_dir) == before
    client = ControlClient.locate(d.state_dir, None, None)
    assert client.call("GET", "/status", api.StatusView).pid == os.getpid()
    stop = CliRunner().invoke(app, ["stop", "--emergency", "--state-dir", str(d.state_dir)], env=ENV)
    assert stop.exit_code == 0, stop.output
    assert d_call(d, "GET", "/status").json()["admission_open"] is False
    resume(d)


# --- bug 10: typed answers for hostile requests ------------------------------------------------------


def test_http_refusals_are_typed_json(running: tuple[DaemonThread, Daemon]) -> None:
    _, d = running
    for limit in ("²", "٣", "1e3", "99999", "0", "-1", " 5", "5" * 5000):
        r = d_call(d, "GET", "/markets", params={"q": "bitcoin", "limit": limit})
        assert r.status_code == 400, (limit, r.text)
        assert r.json()["error"] == "InputError" and r.json()["message"]
        assert len(r.text) < 500  # the hostile value is not echoed whole
    r = d_call(d, "GET", "/markets", params={"q": "x" * 5000})
    assert r.status_code == 400 and r.json()["error"] == "InputError"
    assert d_call(d, "GET", "/markets", params={"q": "bitcoin", "limit": "3"}).status_code == 200

    r = httpx.get(f"{d.control_url}/v1/status", headers={b"Authorization": b"Bearer \xff\xfe\x80"}, timeout=10)
    assert r.status_code == 401 and r.json()["error"] == "ControlAuthError"
    assert "Traceback" not in r.text

    r = d_call(d, "GET", "/nope")
    assert (r.status_code, r.json()["error"], r.json()["source"]) == (404, "NotFound", "local")
    r = d_call(d, "PUT", "/status")
    assert (r.status_code, r.json()["error"]) == (405, "MethodNotAllowed")
    assert "GET" in r.headers["Allow"]
    r = d_call(d, "POST", "/orders", content=b"{" + b" " * (2 * 1024 * 1024) + b"}")
    assert (r.status_code, r.json()["error"]) == (413, "RequestEntityTooLarge")
    assert r.json()["message"]
    # Without the token nothing is revealed: not even which paths or methods exist.
    for method, path in (("GET", "/nope"), ("PUT", "/status"), ("GET", "/status")):
        r = call(d.control_url, None, method, path)
        assert (r.status_code, r.json()["error"]) == (401, "ControlAuthError"), (method, path)
        assert "Allow" not in r.headers


# --- bug 1(b): locking the operator out --------------------------------------------------------------


def test_emergency_stop_gets_through_while_an_attacker_holds_connections(
    running: tuple[DaemonThread, Daemon], caplog: pytest.LogCaptureFixture
) -> None:
    _, d = running
    assert d.control is not None
    guard = d.control.guard
    caplog.set_level(logging.WARNING, logger=GUARD_LOGGER)
    attacker = open_sockets(d.control_url, 2 * guard.cap + 50)  # half-open: connected, nothing sent
    attacker += open_sockets(d.control_url, 50, b"GET /v1/status HTTP/1.1\r\nHost: x\r\n")  # slowloris
    try:
        t0 = time.monotonic()
        r = d_call(d, "POST", "/stop", json={"emergency": True, "reason": "lockout test"})
        assert r.status_code == 200 and r.json()["admission"] == "closed"
        client = ControlClient.locate(d.state_dir, None, None)
        client.timeout_s = 5
        res = client.call("POST", "/stop", api.StopResult, body=api.StopRequest(emergency=True, reason="cli"))
        assert res.admission == "closed"
        assert client.call("GET", "/status", api.StatusView).admission_open is False
        assert time.monotonic() - t0 < 5
        assert guard.connections <= guard.cap
        assert guard.totals["evicted"] >= len(attacker) - guard.cap
    finally:
        close_all(attacker)
    resume(d)
    lines = [r for r in caplog.records if r.name == GUARD_LOGGER]
    assert len(lines) <= 2, [r.getMessage() for r in lines]  # a summary line, not a line per connection


def test_a_churning_attacker_does_not_keep_the_operator_out(running: tuple[DaemonThread, Daemon]) -> None:
    _, d = running
    stop = threading.Event()
    opened = [0]

    def churn() -> None:
        held: list[socket.socket] = []
        while not stop.is_set():
            try:
                held.append(socket.create_connection(host_port(d.control_url), timeout=2))
                opened[0] += 1
            except OSError:
                pass
            if len(held) > 400:
                held.pop(0).close()
        close_all(held)

    t = threading.Thread(target=churn, daemon=True)
    t.start()
    try:
        assert wait_for(lambda: opened[0] > 300, 20)
        client = ControlClient.locate(d.state_dir, None, None)
        client.timeout_s = 5
        for _ in range(5):
            assert client.call("GET", "/status", api.StatusView).venue == "local"
    finally:
        stop.set()
        t.join(10)


def wait_for(predicate: Any, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return bool(predicate())


@pytest.fixture
def tight(running: tuple[DaemonThread, Daemon]) -> Iterator[tuple[ControlServer, Daemon]]:
    """A second control server on the daemon's desk with short timeouts and a cap of 8."""
    thread, d = running
    assert d.desk is not None
    limits = GuardLimits(
        max_connections=8, request_timeout_s=0.5, idle_timeout_s=0.5, body_timeout_s=0.5, log_interval_s=60
    )
    server = ControlServer(d.desk, d.token, d._status, limits=limits)

    async def start() -> str:
        return await server.start()

    thread.call(start)
    try:
        yield server, d
    finally:
        thread.call(server.stop)


def test_silent_slow_and_idle_connections_are_closed(
    tight: tuple[ControlServer, Daemon], caplog: pytest.LogCaptureFixture
) -> None:
    server, d = tight
    caplog.set_level(logging.WARNING, logger=GUARD_LOGGER)
    (silent,) = open_sockets(server.url, 1)
    (slow,) = open_sockets(server.url, 1, b"GET /v1/status HTTP/1.1\r\n")
    t0 = time.monotonic()
    for _ in range(20):  # a byte every 0.1 s does not extend the deadline
        slow.sendall(b"X")
        time.sleep(0.1)
        if closed_by_server(slow, 0.001):
            break
    assert closed_by_server(slow, 3) and time.monotonic() - t0 < 3
    assert closed_by_server(silent, 3)
    (idle,) = open_sockets(server.url, 1)
    idle.sendall(f"GET /v1/status HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {d.token}\r\n\r\n".encode())
    idle.settimeout(5)
    assert idle.recv(4096).startswith(b"HTTP/1.1 200")
    assert closed_by_server(idle, 3)  # keep-alive, then the idle timeout
    close_all([silent, slow, idle])
    # A body that never arrives: 408, typed.
    (body,) = open_sockets(server.url, 1)
    body.sendall(
        f"POST /v1/orders HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {d.token}\r\n"
        "Content-Type: application/json\r\nContent-Length: 50\r\n\r\n{".encode()
    )
    body.settimeout(5)
    answer = body.recv(4096)
    assert answer.startswith(b"HTTP/1.1 408") and b'"error":"RequestTimeout"' in answer
    body.close()
    assert server.guard.totals["timed_out"] >= 2
    # Only this guard's lines: the daemon's own guard may still be reporting an earlier test's flood.
    lines = [r.getMessage() for r in caplog.records if r.name == GUARD_LOGGER and "after 0.5 s" in r.getMessage()]
    assert len(lines) == 1, lines


def test_accept_failures_are_summarized_not_logged_each(
    running: tuple[DaemonThread, Daemon], tight: tuple[ControlServer, Daemon], caplog: pytest.LogCaptureFixture
) -> None:
    thread, _ = running
    server, _ = tight
    caplog.set_level(logging.WARNING)

    async def flood() -> None:
        # What asyncio reports for each failed accept() when the process is out of descriptors.
        loop = asyncio.get_running_loop()
        err = OSError(24, "Too many open files")
        for _ in range(1000):
            loop.call_exception_handler({"message": "socket.accept() out of system resource", "exception": err})
        server.guard.sweep()

    thread.call(flood)
    assert server.guard.totals["accept_errors"] == 1000
    lines = [r.getMessage() for r in caplog.records if "accept" in r.getMessage()]
    assert len(lines) == 1 and "1000 failed accept()" in lines[0], lines


def test_the_cap_evicts_strangers_first(tight: tuple[ControlServer, Daemon]) -> None:
    server, d = tight
    guard = server.guard
    # An authenticated keep-alive connection (the operator's), then strangers beyond the cap.
    with httpx.Client(base_url=f"{server.url}/v1", headers={"Authorization": f"Bearer {d.token}"}) as op:
        assert op.get("/status").status_code == 200
        strangers = open_sockets(server.url, 3 * guard.cap)
        try:
            assert wait_for(lambda: guard.connections <= guard.cap, 2)
            assert op.get("/status").status_code == 200
            alive = [s for s in strangers if not closed_by_server(s, 0.001)]
            assert len(alive) <= guard.cap - 1
            assert guard.totals["evicted"] >= 2 * guard.cap
        finally:
            close_all(strangers)


@pytest.mark.parametrize("target", ["control", "exchange"])
def test_lockout_with_fewer_descriptors_than_attackers(tmp_path: Path, target: str) -> None:
    """The issue's scenario: `polyoms run` under a soft limit of 256 descriptors, 600 half-open
    connections, and the CLI's `stop --emergency` still answered in seconds with little logged. The
    embedded exchange shares the daemon's process (and descriptors): attacking its port must not lock
    the operator out either."""
    env = {**os.environ, "POLYOMS_STATE_DIR": str(tmp_path), "PYTHONUNBUFFERED": "1", "POLYOMS_PRIVATE_KEY": KEY_OTHER}
    config = tmp_path / "polyoms.toml"
    config.write_text('[local]\nscenario = ""\nseed = 5\n[log]\njson = true\nlevel = "info"\n')
    err_path = tmp_path / "stderr.log"

    def lower_limit() -> None:
        hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard))

    with err_path.open("wb") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "polyoms.cli.main", "run", "--config", str(config)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=err,
            preexec_fn=lower_limit,
        )
    attacker: list[socket.socket] = []
    try:
        assert wait_for(lambda: read_endpoint(tmp_path) is not None or proc.poll() is not None, 60)
        ep = read_endpoint(tmp_path)
        assert ep is not None, err_path.read_text()
        url = ep.url
        if target == "exchange":
            url = ControlClient(ep.url, ep.token, timeout_s=5).call("GET", "/status", api.StatusView).venue_url
            assert url and url != ep.url
        for _ in range(600):
            try:
                attacker.append(socket.create_connection(host_port(url), timeout=2))
            except OSError:
                break
        assert len(attacker) > 256
        t0 = time.monotonic()
        stop = subprocess.run(
            [sys.executable, "-m", "polyoms.cli.main", "stop", "--emergency", "--state-dir", str(tmp_path)],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert stop.returncode == 0, stop.stdout + stop.stderr
        # The CLI's interpreter start-up is most of this.
        assert time.monotonic() - t0 < 20
        status = ControlClient(ep.url, ep.token, timeout_s=5).call("GET", "/status", api.StatusView)
        assert status.admission_open is False
        close_all(attacker)
        attacker = []
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        close_all(attacker)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    log = err_path.read_text()
    assert len(log) < 64 * 1024, log[-3000:]
    assert "Traceback" not in log


# --- bug 5: cancel-all and a parent's cancel stop parent orders --------------------------------------

ICEBERG_PARAMS = {"display": "5", "pause_min_ms": "100", "pause_max_ms": "200", "variance_bps": "0"}


def start_iceberg(d: Daemon, yes: str, price: str) -> tuple[str, str]:
    r = d_call(
        d,
        "POST",
        "/orders",
        json={
            "token_id": yes,
            "side": "BUY",
            "price": price,
            "size": "50",
            "algo": "iceberg",
            "algo_params": ICEBERG_PARAMS,
        },
    )
    assert r.status_code == 200, r.text
    pid = r.json()["parent_id"]
    view = d_call(d, "GET", f"/orders/{pid}").json()
    assert view["state"] == "WORKING" and view["children"], view
    return pid, view["children"][-1]


def open_orders(d: Daemon) -> list[str]:
    return [o["order_id"] for o in d_call(d, "GET", "/orders", params={"open": "1"}).json()["orders"]]


def test_cancel_all_stops_parent_orders(running: tuple[DaemonThread, Daemon]) -> None:
    thread, d = running
    _, yes, _ = first_market(d)
    pid, child = start_iceberg(d, yes, "0.11")
    r = d_call(d, "DELETE", "/orders")
    assert r.status_code == 200, r.text
    assert child in r.json()["requested"] and r.json()["parents_cancelled"] == 1
    assert wait_until(thread, lambda: d.parents is not None and d.parents.status(pid).done)
    assert d_call(d, "GET", f"/orders/{pid}").json()["state"] == "CANCELLED"
    assert d_call(d, "GET", f"/orders/{child}").json()["state"] == "CANCELLED"
    time.sleep(1.0)  # five pauses of the iceberg: it would have placed its next tranche by now
    assert open_orders(d) == []
    assert d_call(d, "GET", f"/orders/{pid}").json()["children"] == [child]


def test_order_cancel_parent_id_through_the_cli(running: tuple[DaemonThread, Daemon]) -> None:
    thread, d = running
    _, yes, _ = first_market(d)
    pid, child = start_iceberg(d, yes, "0.12")
    out = CliRunner().invoke(app, ["order", "cancel", pid, "--state-dir", str(d.state_dir)], env=ENV)
    assert out.exit_code == 0, out.output
    assert f"cancel requested: {pid}" in out.stdout and f"cancel requested: {child}" in out.stdout
    assert wait_until(thread, lambda: d.parents is not None and d.parents.status(pid).done)
    assert d_call(d, "GET", f"/orders/{child}").json()["state"] == "CANCELLED"
    time.sleep(0.6)
    assert open_orders(d) == []
    again = d_call(d, "DELETE", f"/orders/{pid}").json()
    assert again["requested"] == [] and "already CANCELLED" in again["note"]
    via_parents = d_call(d, "DELETE", f"/parents/{pid}").json()
    assert via_parents["requested"] == []


# --- bug 10: the emergency reason ---------------------------------------------------------------------


def test_the_emergency_reason_is_redacted_before_it_is_cut(
    running: tuple[DaemonThread, Daemon], caplog: pytest.LogCaptureFixture
) -> None:
    thread, d = running
    _, yes, _ = first_market(d)
    canary = "canary" + secrets.token_hex(16)
    register_secret(canary)
    r = d_call(d, "POST", "/orders", json={"token_id": yes, "side": "BUY", "price": "0.13", "size": "10"})
    oid = r.json()["order_id"]
    assert d.state is not None
    state = d.state
    assert wait_until(thread, lambda: state.order(oid).state.value == "LIVE")
    caplog.set_level(logging.INFO)
    # 64 characters of actor cut the canary after 30 of its characters: no longer the registered string.
    reason = "x" * 15 + canary
    r = d_call(d, "POST", "/stop", json={"emergency": True, "reason": reason})
    assert r.status_code == 200
    resume(d)
    assert wait_until(thread, lambda: state.order(oid).state.value == "CANCELLED")
    actors = [h["actor"] for h in d_call(d, "GET", f"/orders/{oid}").json()["history"]]
    emergency = [a for a in actors if a.startswith("operator:emergency:")]
    assert emergency and all(len(a) <= 64 for a in emergency)
    fragment = canary[:12]
    assert not any(fragment in a for a in actors), actors
    for rec in state.orders[oid].history:
        assert fragment not in rec.actor and fragment not in rec.reason
    assert not any(fragment in rec.getMessage() for rec in caplog.records)


def test_a_newcomer_is_refused_only_when_every_slot_serves_the_operator(tight: tuple[ControlServer, Daemon]) -> None:
    server, d = tight
    guard = server.guard
    head = (
        f"POST /v1/orders HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {d.token}\r\n"
        "Content-Type: application/json\r\nContent-Length: 50\r\n\r\n{"
    ).encode()
    busy = open_sockets(server.url, guard.cap, head)  # authenticated, their bodies still to come
    try:
        assert wait_for(lambda: guard.connections == guard.cap, 2)
        refused_before = guard.totals["refused"]
        (late,) = open_sockets(server.url, 1)
        assert closed_by_server(late, 2)
        assert guard.totals["refused"] == refused_before + 1
        for s in busy:  # each gets its typed 408 once its body is late
            s.settimeout(5)
            assert s.recv(4096).startswith(b"HTTP/1.1 408")
        r = httpx.get(f"{server.url}/v1/status", headers={"Authorization": f"Bearer {d.token}"}, timeout=5)
        assert r.status_code == 200
    finally:
        close_all(busy)
