"""The REST client's own cost: rate-limit bookkeeping per request, and a full client round trip.

1. `acquire` for a POST /order when nothing has to wait: the per-IP windows it counts against
   (all, clob, POST /order 10 s and 10 min) plus the signer's order bucket, per call.
2. POST /order + DELETE /order through `ClobClient` (sign, limits, breaker, HMAC, aiohttp, typed
   answer) against `polyoms sim` in its own process, beside the same requests sent with bare aiohttp
   (prebuilt body and headers) to show what the client layer adds.

    .venv/bin/python bench/client.py [--json] [--rounds N]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from typing import Any

import aiohttp
import httpx

from _common import machine
from polyoms.core.clock import VirtualClock
from polyoms.polymarket.client import ClientConfig, ClientHub, LimitsConfig, VirtualTimer, Wallet
from polyoms.polymarket.client.ratelimit import ORDERS, IpLimiter, acquire
from polyoms.polymarket.protocol.auth import l2_headers
from polyoms.polymarket.protocol.wire import post_order_body
from rest_roundtrip import KEY_A, sim_process


def _summary(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "median_us": round(statistics.median(ordered), 2),
        "p99_us": round(ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))], 2),
        "n": len(ordered),
    }


def bench_acquire(n: int) -> dict[str, float]:
    config = LimitsConfig(signer_tier="elite")
    ip = IpLimiter(config)
    bucket = config.signer_buckets("bench")[ORDERS]
    timer = VirtualTimer(VirtualClock())
    parts = [*ip.parts("clob", "POST", "/order"), (bucket, 1)]

    async def run() -> list[float]:
        out = []
        for i in range(n):
            timer.clock.advance(5)  # 200 requests/s: under every limit, so nothing waits
            t0 = time.perf_counter_ns()
            await acquire(parts, timer.clock, timer.sleep)
            if i >= n // 10:
                out.append((time.perf_counter_ns() - t0) / 1000)
        return out

    return _summary(asyncio.run(run()))


async def _round_trips(url: str, token: str, rounds: int) -> dict[str, Any]:
    client_rt, bare_rt = [], []
    config = ClientConfig(clob_url=url, limits=LimitsConfig(signer_tier="elite"))
    async with ClientHub(config) as hub:
        wallet = Wallet.from_key(KEY_A, name="bench")
        client = hub.clob(wallet)
        creds = await client.create_or_derive_api_key()
        builder = wallet.order_builder()
        async with aiohttp.ClientSession(url) as bare:
            for i in range(rounds + 20):
                order = builder.limit(token, "BUY", "0.10", "5", tick="0.01")
                t0 = time.perf_counter_ns()
                await client.post_order(order)
                await client.cancel_order(order.order_id)
                t1 = time.perf_counter_ns()
                raw = builder.limit(token, "BUY", "0.10", "5", tick="0.01")
                body = post_order_body(raw, creds.api_key)
                headers = l2_headers(wallet.address, creds, int(time.time()), "POST", "/order", body)
                cancel = json.dumps({"orderID": raw.order_id}, separators=(",", ":")).encode()
                cancel_headers = l2_headers(wallet.address, creds, int(time.time()), "DELETE", "/order", cancel)
                t2 = time.perf_counter_ns()
                async with bare.post("/order", data=body, headers=headers) as resp:
                    await resp.read()
                async with bare.delete("/order", data=cancel, headers=cancel_headers) as resp:
                    await resp.read()
                t3 = time.perf_counter_ns()
                if i >= 20:
                    client_rt.append((t1 - t0) / 1000)
                    bare_rt.append((t3 - t2) / 1000)
    return {"client_post_cancel": _summary(client_rt), "bare_aiohttp_post_cancel": _summary(bare_rt)}


def run(rounds: int) -> dict[str, Any]:
    out: dict[str, Any] = {"acquire_post_order": bench_acquire(20_000)}
    with sim_process() as url:
        markets = httpx.get(f"{url}/markets").json()["data"]
        token = next(m for m in markets if m["minimum_tick_size"] == 0.01 and not m["neg_risk"])["tokens"][0]
        out.update(asyncio.run(_round_trips(url, token["token_id"], rounds)))
    out["machine"] = machine()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--rounds", type=int, default=300)
    args = parser.parse_args()
    result = run(args.rounds)
    if args.json:
        print(json.dumps(result))
        return
    for name in ("acquire_post_order", "client_post_cancel", "bare_aiohttp_post_cancel"):
        s = result[name]
        print(f"{name:26s} median {s['median_us']:9.2f} us   p99 {s['p99_us']:9.2f} us   (n={s['n']})")


if __name__ == "__main__":
    main()
