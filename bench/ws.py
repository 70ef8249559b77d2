"""Market-channel client benchmark: what continuity checking costs per frame, and many tokens at once.

    .venv/bin/python bench/ws.py [--json] [--messages N] [--rounds R] [--tokens T] [--seed S]

1. Per frame (no socket; the handler the reader calls for each text frame): one binary market at tick
   0.01 with ~40 levels a side; each message is a current-format `price_change` with the YES entry and
   its NO mirror, carrying the venue's best prices and the §6.5 hash of the book after it, as
   `polyoms sim` sends them. Timed per message: decode + apply + best-price check (`hash_check="off"`)
   and the same plus the hash check (`"on"`: the mirror's book serialized and SHA-1'd for each token).
   Contenders interleaved batch by batch, medians (bench/_common.py).
2. Scale, over real sockets: `polyoms sim` trading T/2 binary markets (T tokens, empty books) and one
   `MarketStream` subscribing all of them (chunks of 500 ids): time from subscribe to every book
   TRUSTED, frames received, and the time to notice a disconnect and have every book trusted again.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import Contender, machine, run_interleaved
from polyoms.core.clock import WallClock
from polyoms.core.market_events import BookSnapshot
from polyoms.core.units import MICRO, fmt_micro, tick_size
from polyoms.exchange.api.runner import ThreadedSim
from polyoms.exchange.api.service import SimService
from polyoms.exchange.engine import Exchange
from polyoms.exchange.markets import binary_market
from polyoms.polymarket.client import BackoffPolicy, MarketStream, MarketStreamConfig, ws_url
from polyoms.polymarket.protocol.messages import book_summary

MARKET = "0x" + "cd" * 32
YES, NO = "2001", "2002"
CENT = MICRO // 100


class Venue:
    """YES levels; NO is its mirror (BUY YES at p = SELL NO at 1 - p)."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.bids = {p * CENT: rng.randrange(5, 500) * MICRO for p in range(10, 50)}
        self.asks = {p * CENT: rng.randrange(5, 500) * MICRO for p in range(51, 91)}
        self.ts = 1_777_000_000_000

    def snapshot(self, asset: str) -> dict[str, Any]:
        bids, asks = (self.bids, self.asks) if asset == YES else (self._flip(self.asks), self._flip(self.bids))
        snap = BookSnapshot(
            MARKET,
            asset,
            tuple(sorted(bids.items())),
            tuple(sorted(asks.items(), reverse=True)),
            timestamp_ms=self.ts,
            min_order_size=5 * MICRO,
            tick_size=tick_size("0.01"),
            neg_risk=False,
            last_trade_price=MICRO // 2,
        )
        return {"event_type": "book", **book_summary(snap)}

    @staticmethod
    def _flip(levels: dict[int, int]) -> dict[int, int]:
        return {MICRO - p: s for p, s in levels.items()}

    def message(self) -> bytes:
        self.ts += 7
        rng = self.rng
        bid_side = rng.random() < 0.5
        levels = self.bids if bid_side else self.asks
        price = rng.choice(list(levels)) if levels and rng.random() < 0.8 else rng.randrange(11, 90) * CENT
        if (bid_side and price >= min(self.asks)) or (not bid_side and price <= max(self.bids)):
            price = max(self.bids) if bid_side else min(self.asks)
        size = 0 if rng.random() < 0.15 and len(levels) > 5 else rng.randrange(1, 900) * MICRO
        if size:
            levels[price] = size
        else:
            levels.pop(price, None)
        entries = []
        for asset, side, at in (
            (YES, "BUY" if bid_side else "SELL", price),
            (NO, "SELL" if bid_side else "BUY", MICRO - price),
        ):
            snap = self.snapshot(asset)
            snap["timestamp"] = str(self.ts)
            digest = book_summary(_from_summary(snap))["hash"]
            best_bid = snap["bids"][-1]["price"] if snap["bids"] else "0"
            best_ask = snap["asks"][-1]["price"] if snap["asks"] else "1"
            entries.append(
                {
                    "asset_id": asset,
                    "price": fmt_micro(at),
                    "size": fmt_micro(size),
                    "side": side,
                    "hash": digest,
                    "best_bid": best_bid,
                    "best_ask": best_ask,
                }
            )
        body = {"market": MARKET, "price_changes": entries, "timestamp": str(self.ts), "event_type": "price_change"}
        return json.dumps(body, separators=(",", ":")).encode()


def _from_summary(d: dict[str, Any]) -> BookSnapshot:
    def lv(items: list[dict[str, str]]) -> tuple[tuple[int, int], ...]:
        return tuple((round(float(x["price"]) * MICRO), round(float(x["size"]) * MICRO)) for x in items)

    return BookSnapshot(
        d["market"],
        d["asset_id"],
        lv(d["bids"]),
        lv(d["asks"]),
        timestamp_ms=int(d["timestamp"]),
        min_order_size=5 * MICRO,
        tick_size=tick_size("0.01"),
        neg_risk=False,
        last_trade_price=MICRO // 2,
    )


def per_frame(messages: int, rounds: int, seed: int) -> dict[str, Any]:
    venue = Venue(random.Random(seed))
    first = json.dumps([venue.snapshot(YES), venue.snapshot(NO)]).encode()
    frames = [venue.message() for _ in range(messages)]

    def stream_for(hash_check: str) -> Any:
        stream = MarketStream(MarketStreamConfig(url="ws://127.0.0.1:9", hash_check=hash_check))  # type: ignore[arg-type]
        asyncio.run(stream.subscribe([YES, NO]))  # recorded only: the stream is not started
        sock = stream._sockets[0]
        sock.ws = object()  # type: ignore[assignment]  # "live" without a socket: the handler is what is timed
        sock.subscribed = True
        return stream, sock

    contenders = []
    streams = []
    for mode in ("off", "on"):
        stream, sock = stream_for(mode)
        streams.append(stream)
        state = {"i": 0}

        def step(stream: Any = stream, sock: Any = sock, state: dict[str, int] = state) -> None:
            i = state["i"]
            if i % len(frames) == 0:  # replay from the start: as after a resubscription
                stream._await_snapshots([YES, NO], 0)
                stream._on_frame(sock, first)
            stream._on_frame(sock, frames[i % len(frames)])
            state["i"] = i + 1

        contenders.append(Contender(f"hash_check={mode}", step, batch=len(frames)))
    run_interleaved(contenders, rounds)
    for stream in streams:
        assert stream.stats.untrusted == {}, stream.stats.untrusted
    assert streams[1].stats.hash_matches > 0
    return {c.name: c.summary() for c in contenders}


def scale(tokens: int, seed: int) -> dict[str, Any]:
    markets = [binary_market(f"bench-ws-{i}", f"Bench market {i}?") for i in range(tokens // 2)]
    clock = WallClock()
    service = SimService(Exchange(markets, clock, seed=seed), clock, seed=seed)
    ids = [t for m in markets for t in m.token_ids]
    out: dict[str, Any] = {"tokens": len(ids)}

    async def main(url: str) -> None:
        cfg = MarketStreamConfig(
            url=ws_url(url, "market"),
            ping_interval_s=1.0,
            stale_after_s=5.0,
            snapshot_timeout_s=30.0,
            rest_verify_interval_s=None,
            backoff=BackoffPolicy(base_s=0.05, max_s=0.5),
        )
        async with MarketStream(cfg) as stream:
            start = time.perf_counter()
            await stream.subscribe(ids)
            assert await stream.wait_trusted(timeout_s=120)
            out["s_to_all_trusted"] = round(time.perf_counter() - start, 3)
            out["frames"] = stream.stats.frames
            sock = stream._sockets[0]
            start = time.perf_counter()
            stream._drop(sock, "benchmark")
            while any(stream.is_trusted(t) for t in ids[:1]):
                await asyncio.sleep(0.001)
            assert await stream.wait_trusted(timeout_s=120)
            out["s_reconnect_to_all_trusted"] = round(time.perf_counter() - start, 3)

    with ThreadedSim(service) as sim:
        asyncio.run(main(sim.url))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--messages", type=int, default=2_000)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--tokens", type=int, default=2_000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    result = {
        "machine": machine(),
        "per_price_change_msg_2_entries": per_frame(args.messages, args.rounds, args.seed),
        "scale": scale(args.tokens, args.seed),
    }
    if args.json:
        print(json.dumps(result, indent=2))
        return
    for name, summary in result["per_price_change_msg_2_entries"].items():
        print(f"{name:16s} {summary['median_us']:8.2f} us/msg (min {summary['min_us']}, max {summary['max_us']})")
    print("scale:", result["scale"])


if __name__ == "__main__":
    main()
