"""`polyoms sim --state-dir`: a restarted exchange has its balances, open orders, keys and history,
archived history included."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from polyoms.exchange import persist
from polyoms.exchange.api.runner import STATE_FILE, StateSaver, ThreadedSim, build_service, open_state_dir
from polyoms.exchange.audit import audit
from polyoms.polymarket.protocol.wire import post_order_body
from tests.exchange_api.conftest import FAST_SETTLEMENT, KEY_A, KEY_B, fund
from tests.exchange_api.test_bad_requests import RawClient


def _start(state_dir: Path) -> ThreadedSim:
    snapshot, archive = open_state_dir(state_dir)
    return ThreadedSim(build_service(seed=7, settlement=FAST_SETTLEMENT, snapshot=snapshot, archive=archive))


def _token(sim: ThreadedSim) -> str:
    return next(m for m in sim.service.exchange.markets() if m.tick.text == "0.01" and not m.neg_risk).yes_token_id


def _place(raw: RawClient, token: str, side: str, price: str, size: str) -> dict[str, Any]:
    order = raw.builder.limit(token, side, price, size, tick="0.01")
    resp = raw.send("POST", "/order", post_order_body(order, raw.creds.api_key))
    assert resp.status_code == 200, resp.text
    return resp.json()  # type: ignore[no-any-return]


def _views(raw: RawClient, order_ids: list[str]) -> tuple[Any, ...]:
    return (*raw.state(), [raw.send("GET", f"/data/order/{oid}").json() for oid in order_ids])


def test_restart_keeps_balances_open_orders_and_archived_history(tmp_path: Path) -> None:
    with _start(tmp_path) as sim:
        token = _token(sim)
        a, b = RawClient(sim.url, KEY_A), RawClient(sim.url, KEY_B)
        fund(sim, a.signer.address, "100")
        fund(sim, b.signer.address, "0", {token: "100"})
        filled = [_place(a, token, "BUY", "0.50", "10")["orderID"], _place(b, token, "SELL", "0.50", "10")["orderID"]]
        resting = _place(a, token, "BUY", "0.40", "10")["orderID"]
        ex = sim.service.exchange
        deadline = time.monotonic() + 5
        while not all(t.is_final for t in sim.call(lambda: list(ex.all_trades))):
            assert time.monotonic() < deadline, "trades did not settle"
            time.sleep(0.02)
        ex.archive_window_ms = 0
        moved = sim.call(ex.archive_history)
        assert moved[0] == 2 and moved[1] == 1  # the filled orders and their trade left memory
        assert sim.call(lambda: len(ex.all_trades)) == 0
        before_a = _views(a, [*filled, resting])
        before_b = _views(b, filled)
        assert len(before_a[1]) == 1 and len(before_a[0]) == 1  # one trade, one open order
        sim.call(StateSaver(sim.service, tmp_path / STATE_FILE).save_now)
        assert ex.archive is not None
        sim.call(ex.archive.close)
    with _start(tmp_path) as sim:
        a2, b2 = RawClient(sim.url, KEY_A), RawClient(sim.url, KEY_B)
        assert a2.creds == a.creds  # the same API keys
        assert _views(a2, [*filled, resting]) == before_a
        assert _views(b2, filled) == before_b
        assert sim.call(lambda: audit(sim.service.exchange)) == []
        assert sim.call(lambda: sim.service.exchange.get_order(filled[0])) is not None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _serve(state_dir: Path, port: int) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "polyoms"),
            "sim",
            "--port",
            str(port),
            "--state-dir",
            str(state_dir),
            "--fund",
            "50",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    deadline = time.monotonic() + 20
    while True:
        try:
            httpx.get(f"http://127.0.0.1:{port}/time", timeout=0.5)
            return proc
        except httpx.TransportError:
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else b""
            assert time.monotonic() < deadline, "polyoms sim did not start"
            time.sleep(0.1)


def test_cli_state_dir_survives_a_restart(tmp_path: Path) -> None:
    port = _free_port()
    proc = _serve(tmp_path, port)
    try:
        raw = RawClient(f"http://127.0.0.1:{port}", KEY_A)
        token = httpx.get(f"http://127.0.0.1:{port}/markets").json()["data"][0]["tokens"][0]["token_id"]
        order_id = _place(raw, token, "BUY", "0.40", "10")["orderID"]
        before = raw.state()
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=20) == 0
    state = persist.load(tmp_path / STATE_FILE)
    assert state is not None and any(o.order_id == order_id for o in state.exchange.orders)
    proc = _serve(tmp_path, port)
    try:
        raw2 = RawClient(f"http://127.0.0.1:{port}", KEY_A)
        assert raw2.state() == before
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=20)
