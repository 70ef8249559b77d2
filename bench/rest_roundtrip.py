"""One full REST round trip on loopback: sign, POST /order, match, response.

`polyoms sim` runs in its own process (so client and server do not share a GIL); the client signs
with polyoms and posts over a keep-alive HTTP/1.1 connection. Each round is a resting BUY from
wallet A and a SELL from wallet B that matches it, timed separately. The official client doing
the same (create_and_post_order: build, sign, POST, and its post-match trade lookup) is measured
in the same run for comparison.

    .venv/bin/python bench/rest_roundtrip.py [--json] [--rounds N]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx

from polyoms.polymarket.protocol.auth import ApiCreds, l1_headers, l2_headers
from polyoms.polymarket.protocol.keys import Signer
from polyoms.polymarket.protocol.order import OrderBuilder
from polyoms.polymarket.protocol.wire import post_order_body

KEY_A = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"
KEY_B = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def sim_process(fund: str = "10000000") -> Iterator[str]:
    port = _free_port()
    exe = os.path.join(os.path.dirname(sys.executable), "polyoms")
    proc = subprocess.Popen(
        [exe, "sim", "--port", str(port), "--fund", fund],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                if httpx.get(f"{url}/ok", timeout=0.5).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("polyoms sim did not start")
            time.sleep(0.05)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


class Wallet:
    def __init__(self, http: httpx.Client, key: str) -> None:
        self.http = http
        self.signer = Signer(key)
        resp = http.post("/auth/api-key", headers=l1_headers(self.signer, 137, int(time.time())))
        body = resp.json()
        self.creds = ApiCreds(body["apiKey"], body["secret"], body["passphrase"])
        self.builder = OrderBuilder(self.signer)

    def post_limit(self, token: str, side: str, price: str, size: str) -> dict[str, Any]:
        order = self.builder.limit(token, side, price, size, tick="0.01")
        body = post_order_body(order, self.creds.api_key)
        headers = l2_headers(self.signer.address, self.creds, int(time.time()), "POST", "/order", body)
        headers["Content-Type"] = "application/json"
        resp = self.http.post("/order", content=body, headers=headers)
        result: dict[str, Any] = resp.json()
        if resp.status_code != 200:
            raise RuntimeError(result)
        return result


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _summary(samples: list[float]) -> dict[str, float]:
    return {
        "median_us": round(statistics.median(samples), 1),
        "p99_us": round(_pct(samples, 0.99), 1),
        "n": len(samples),
    }


def measure_polyoms(url: str, token: str, rounds: int) -> dict[str, dict[str, float]]:
    rest, match = [], []
    with httpx.Client(base_url=url) as http:
        a, b = Wallet(http, KEY_A), Wallet(http, KEY_B)
        # B sells what A bids; it gets its shares from the simulator's admin endpoint.
        fund = {"address": b.signer.address, "tokens": {token: str(5 * (rounds + 20))}}
        http.post("/_sim/fund", json=fund).raise_for_status()
        for i in range(rounds + 20):
            t0 = time.perf_counter_ns()
            a.post_limit(token, "BUY", "0.50", "5")
            t1 = time.perf_counter_ns()
            res = b.post_limit(token, "SELL", "0.50", "5")
            t2 = time.perf_counter_ns()
            if res["status"] != "matched":
                raise RuntimeError(f"expected a match, got {res}")
            if i >= 20:  # warm-up
                rest.append((t1 - t0) / 1000)
                match.append((t2 - t1) / 1000)
    return {"resting": _summary(rest), "matching": _summary(match)}


def measure_official(url: str, token: str, rounds: int) -> dict[str, dict[str, float]] | None:
    try:
        from py_clob_client_v2 import ClobClient
        from py_clob_client_v2.clob_types import OrderArgsV2
    except ImportError:
        return None
    client = ClobClient(url, chain_id=137, key=KEY_A)
    client.set_api_creds(client.create_or_derive_api_key())
    samples = []
    for i in range(rounds + 20):
        t0 = time.perf_counter_ns()
        client.create_and_post_order(OrderArgsV2(token_id=token, price=0.10, size=5, side="BUY"))
        if i >= 20:
            samples.append((time.perf_counter_ns() - t0) / 1000)
    return {"resting": _summary(samples)}


def run(rounds: int) -> dict[str, Any]:
    with sim_process() as url:
        markets = httpx.get(f"{url}/markets").json()["data"]
        token = next(m for m in markets if m["minimum_tick_size"] == 0.01 and not m["neg_risk"])["tokens"][0][
            "token_id"
        ]
        ours = measure_polyoms(url, token, rounds)
        official = measure_official(url, token, rounds)
    out: dict[str, Any] = {
        "rest_resting_median_us": ours["resting"]["median_us"],
        "rest_resting_p99_us": ours["resting"]["p99_us"],
        "rest_matching_median_us": ours["matching"]["median_us"],
        "rest_matching_p99_us": ours["matching"]["p99_us"],
        "polyoms": ours,
        "python": platform.python_version(),
    }
    if official is not None:
        out["official"] = official
        out["official_resting_median_us"] = official["resting"]["median_us"]
        out["ratio_resting"] = round(official["resting"]["median_us"] / ours["resting"]["median_us"], 2)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--rounds", type=int, default=400)
    args = parser.parse_args()
    result = run(args.rounds)
    if args.json:
        print(json.dumps(result))
        return
    print(f"REST round trip on loopback ({args.rounds} rounds, polyoms sim in its own process)")
    for name, s in result["polyoms"].items():
        print(f"  polyoms  {name:9s} median {s['median_us']:8.1f} us   p99 {s['p99_us']:8.1f} us")
    if "official" in result:
        s = result["official"]["resting"]
        print(f"  official resting  median {s['median_us']:8.1f} us   p99 {s['p99_us']:8.1f} us")


if __name__ == "__main__":
    main()
