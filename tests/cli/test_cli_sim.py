"""`polyoms sim` as a user runs it: a real process on a free loopback port."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
POLYOMS = os.path.join(os.path.dirname(sys.executable), "polyoms")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_sim_serves_configured_markets_and_auto_funds(tmp_path: Path) -> None:
    port = _free_port()
    proc = subprocess.Popen(
        [POLYOMS, "sim", "--port", str(port), "--config", str(ROOT / "examples" / "sim-markets.toml"), "--fund", "250"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 20
        while True:
            try:
                if httpx.get(f"{url}/ok", timeout=0.5).text == "OK":
                    break
            except httpx.HTTPError:
                pass
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            assert time.monotonic() < deadline, "sim did not start"
            time.sleep(0.05)
        markets = httpx.get(f"{url}/markets").json()["data"]
        slugs = {m["market_slug"] for m in markets}
        assert "eth-above-5000-on-december-31-2026" in slugs and len(markets) == 2 + 4
        nr = [m for m in markets if m["neg_risk"]]
        assert len(nr) == 4 and len({m["neg_risk_market_id"] for m in nr}) == 1
        fine = next(m for m in markets if m["market_slug"].startswith("snow"))
        assert fine["minimum_tick_size"] == 0.001
        # --fund: a new address gets pUSD when its API key is created.
        from polyoms.polymarket.protocol.auth import ApiCreds, l1_headers, l2_headers
        from polyoms.polymarket.protocol.keys import Signer

        signer = Signer("0x" + "42" * 32)
        body = httpx.post(f"{url}/auth/api-key", headers=l1_headers(signer, 137, int(time.time()))).json()
        creds = ApiCreds(body["apiKey"], body["secret"], body["passphrase"])
        headers = l2_headers(signer.address, creds, int(time.time()), "GET", "/balance-allowance")
        bal = httpx.get(f"{url}/balance-allowance", params={"asset_type": "COLLATERAL"}, headers=headers).json()
        assert bal["balance"] == "250000000"
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    assert proc.stderr is not None and "not a loopback address" not in proc.stderr.read().decode()


def test_sim_bad_config_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[[markets]]\nslug = "x"\nquestion = "?"\ntick_size = "0.02"\n')
    proc = subprocess.run(
        [POLYOMS, "sim", "--port", str(_free_port()), "--config", str(bad)], capture_output=True, text=True, timeout=30
    )
    assert proc.returncode == 2
    assert "unknown tick size" in proc.stderr and "Traceback" not in proc.stderr
    missing = subprocess.run(
        [POLYOMS, "sim", "--config", str(tmp_path / "nope.toml")], capture_output=True, text=True, timeout=30
    )
    assert missing.returncode == 2 and "cannot read market config" in missing.stderr


def test_sim_with_a_scenario_has_living_books() -> None:
    port = _free_port()
    proc = subprocess.Popen([POLYOMS, "sim", "--port", str(port), "--scenario", "calm"], stderr=subprocess.PIPE)
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None and time.monotonic() < deadline, "no quotes appeared"
            try:
                token = httpx.get(f"{url}/markets", timeout=0.5).json()["data"][0]["tokens"][0]["token_id"]
                book = httpx.get(f"{url}/book", params={"token_id": token}, timeout=0.5).json()
                if book["bids"] and book["asks"]:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        assert Decimal(book["bids"][-1]["price"]) < Decimal(book["asks"][-1]["price"])  # best levels last, not crossed
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_sim_on_a_non_loopback_host_warns_that_sim_admin_is_unauthenticated() -> None:
    # 192.0.2.1 (TEST-NET-1) is not on this machine: binding fails after the warning, nothing is exposed.
    proc = subprocess.run(
        [POLYOMS, "sim", "--host", "192.0.2.1", "--port", str(_free_port())],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 2 and "cannot listen on 192.0.2.1" in proc.stderr
    human, logged = (line for line in proc.stderr.splitlines() if "not a loopback address" in line)
    assert human.startswith("warning:") and "/_sim/fund" in human and "unauthenticated" in human
    assert '"level": "warning"' in logged and "polyoms.sim" in logged  # the log stream has it too


def test_loopback_hosts() -> None:
    from polyoms.cli.sim import is_loopback

    assert all(is_loopback(h) for h in ("127.0.0.1", "127.1.2.3", "localhost", "LOCALHOST.", "::1", "[::1]"))
    assert not any(is_loopback(h) for h in ("0.0.0.0", "::", "10.0.0.1", "example.com", "192.168.1.2", ""))
