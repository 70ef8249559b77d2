"""Matching-engine throughput: in-process order submissions per second on the local exchange.

    .venv/bin/python bench/matching.py [--json] [--ops N] [--runs R] [--seed S]

A workload is generated up front (deterministic from the seed) and replayed against a fresh
`Exchange` per run, so only `Exchange.submit` / `Exchange.cancel` are timed — the orders arrive
already built, as the REST layer hands them over after signature checks. The mix, over all the
default markets (fee and fee-free, ticks 0.01 / 0.001 / 0.0001, a neg-risk event) and several
funded accounts:

* ~62 % resting GTC limit orders 1–6 ticks behind a drifting mid, YES and NO tokens, BUY and SELL;
* ~10 % marketable orders (GTC crossing up to 3 ticks, FAK, FOK) that trade against them;
* ~28 % cancels of recently placed orders (some already filled: the venue answers not_canceled).

`orders_per_s` counts every operation (submissions and cancels, refused orders included) over the
whole timed loop, with the garbage collector paused inside it; `submits_per_s` counts only the
submissions over the same time (a lower bound); `orders_per_s_gc_on` is the same replay with the
collector running at its default thresholds (setup frozen out of its reach).
The REST round-trip benchmark is meant to be added next to `run_engine`, reusing `make_workload`.
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import statistics
import sys
import time
from dataclasses import dataclass
from typing import Any

from _common import machine
from polyoms.core.clock import VirtualClock
from polyoms.core.enums import OrderType, Side
from polyoms.core.errors import OrderError
from polyoms.core.units import MICRO
from polyoms.exchange.engine import EngineOrder, Exchange
from polyoms.exchange.markets import MarketSpec, default_markets

RESTING_SHARE = 0.62
CROSSING_SHARE = 0.10
N_ACCOUNTS = 8
FUND_PUSD = 10_000_000 * MICRO
FUND_SHARES = 10_000_000 * MICRO


@dataclass(slots=True)
class Cancel:
    order_id: str
    owner: str


Op = EngineOrder | Cancel


def accounts(n: int = N_ACCOUNTS) -> list[tuple[str, str]]:
    """(funder address, API-key owner) pairs."""
    return [(f"0x{i + 1:040x}", f"00000000-0000-0000-0000-{i + 1:012d}") for i in range(n)]


def build_exchange(markets: tuple[MarketSpec, ...], accts: list[tuple[str, str]], seed: int = 0) -> Exchange:
    ex = Exchange(markets, VirtualClock(), seed=seed)
    for addr, _ in accts:
        ex.fund(addr, FUND_PUSD, {t: FUND_SHARES for m in markets for t in m.token_ids})
    return ex


def _order(
    oid: int, acct: tuple[str, str], m: MarketSpec, yes: bool, side: Side, price: int, shares: int, ot: OrderType
) -> EngineOrder:
    """A share-denominated limit order at token price `price` (micro)."""
    cash = shares * price // MICRO
    maker, taker = (cash, shares) if side is Side.BUY else (shares, cash)
    token = m.yes_token_id if yes else m.no_token_id
    return EngineOrder(f"0x{oid:064x}", acct[0], acct[1], token, side, maker, taker, ot)


def make_workload(markets: tuple[MarketSpec, ...], accts: list[tuple[str, str]], n_ops: int, seed: int) -> list[Op]:
    """A deterministic mix of resting orders, marketable orders and cancels."""
    rnd = random.Random(seed)
    mids = {m.condition_id: MICRO // 2 for m in markets}
    recent: list[tuple[str, str]] = []
    ops: list[Op] = []
    oid = 0
    for _ in range(n_ops):
        u = rnd.random()
        if u >= RESTING_SHARE + CROSSING_SHARE and recent:
            order_id, owner = recent.pop(rnd.randrange(len(recent)))
            ops.append(Cancel(order_id, owner))
            continue
        m = markets[rnd.randrange(len(markets))]
        tick = m.tick.micro
        mid = mids[m.condition_id]
        # The mid drifts a tick at a time and stays away from the edges.
        mid = min(max(mid + rnd.choice((-tick, 0, 0, 0, tick)), 100_000), 900_000)
        mid -= mid % tick
        mids[m.condition_id] = mid
        acct = accts[rnd.randrange(len(accts))]
        yes = rnd.random() < 0.5
        yes_bid = rnd.random() < 0.5  # which YES-space side the order joins or hits
        side = Side.BUY if yes_bid is yes else Side.SELL
        shares = rnd.randint(500, 10_000) * 10_000  # 5.00 to 100.00 shares
        oid += 1
        if u < RESTING_SHARE:
            off = rnd.randint(1, 6) * tick
            yes_price = mid - off if yes_bid else mid + off
            price = yes_price if yes else MICRO - yes_price
            ops.append(_order(oid, acct, m, yes, side, price, shares, OrderType.GTC))
            recent.append((f"0x{oid:064x}", acct[1]))
            if len(recent) > 2_000:
                recent.pop(0)
            continue
        # Marketable: cross the mid by up to three ticks.
        off = rnd.randint(0, 3) * tick
        yes_price = mid + off if yes_bid else mid - off
        price = yes_price if yes else MICRO - yes_price
        kind = rnd.random()
        if kind < 0.5:
            ops.append(_order(oid, acct, m, yes, side, price, shares, OrderType.GTC))
            recent.append((f"0x{oid:064x}", acct[1]))
        elif kind < 0.75 or side is Side.SELL:
            ot = OrderType.FAK if kind < 0.75 else OrderType.FOK
            ops.append(_order(oid, acct, m, yes, side, price, shares, ot))
        else:
            budget = rnd.randint(100, 2_000) * 10_000  # $1 to $20, pUSD-denominated market BUY
            token = m.yes_token_id if yes else m.no_token_id
            ops.append(
                EngineOrder(
                    f"0x{oid:064x}", acct[0], acct[1], token, side, budget, budget * MICRO // price, OrderType.FOK
                )
            )
    return ops


@dataclass(slots=True)
class RunStats:
    elapsed_ns: int
    submits: int
    cancels: int
    refused: int
    trades: int
    resting_after: int


def run_engine(ex: Exchange, ops: list[Op], gc_paused: bool = True) -> RunStats:
    """Replay `ops` against `ex`, timing the whole loop.

    `gc_paused`: the collector is off inside the timed loop (as bench/_common.py does, and as a
    latency-tuned server would run it). Otherwise it runs at its default thresholds, with the setup
    (exchange, funding, the pre-built workload) frozen out of its reach as a server would after start.
    """
    submit, cancel = ex.submit, ex.cancel
    refused = submits = cancels = 0
    gc.collect()
    gc.freeze()
    if gc_paused:
        gc.disable()
    try:
        start = time.perf_counter_ns()
        for op in ops:
            if type(op) is Cancel:
                cancel(op.order_id, op.owner)
                cancels += 1
            else:
                submits += 1
                try:
                    submit(op)  # type: ignore[arg-type]
                except OrderError:
                    refused += 1
        elapsed = time.perf_counter_ns() - start
    finally:
        gc.enable()
        gc.unfreeze()
    return RunStats(elapsed, submits, cancels, refused, len(ex.all_trades), len(ex.open_orders()))


def _rate(stats: list[RunStats], n_ops: int) -> dict[str, float]:
    per_op_us = sorted(s.elapsed_ns / n_ops / 1000 for s in stats)
    med = statistics.median(per_op_us)
    return {"orders_per_s": round(1e6 / med), "us_median": round(med, 3), "us_min": round(per_op_us[0], 3)}


def measure(n_ops: int = 200_000, runs: int = 5, seed: int = 7) -> dict[str, Any]:
    """Median over `runs` fresh replays of one workload, GC paused and GC on, interleaved."""
    markets = default_markets()
    accts = accounts()
    ops = make_workload(markets, accts, n_ops, seed)
    paused: list[RunStats] = []
    gc_on: list[RunStats] = []
    for r in range(runs + 1):
        for mode in (True, False) if r % 2 else (False, True):
            stats = run_engine(build_exchange(markets, accts, seed), ops, gc_paused=mode)
            if r:  # the first round only warms up
                (paused if mode else gc_on).append(stats)
    main_rate, gc_rate = _rate(paused, len(ops)), _rate(gc_on, len(ops))
    first = paused[0]
    median_ns = statistics.median(s.elapsed_ns for s in paused)
    return {
        "benchmark": "matching",
        "orders_per_s": main_rate["orders_per_s"],
        "us_per_order_median": main_rate["us_median"],
        "us_per_order_min": main_rate["us_min"],
        "submits_per_s": round(first.submits / (median_ns / 1e9)),
        "orders_per_s_gc_on": gc_rate["orders_per_s"],
        "us_per_order_median_gc_on": gc_rate["us_median"],
        "runs": runs,
        "ops": len(ops),
        "submits": first.submits,
        "cancels": first.cancels,
        "refused": first.refused,
        "trades": first.trades,
        "resting_after": first.resting_after,
        "markets": len(markets),
        "accounts": len(accts),
        "seed": seed,
        "machine": machine(),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--json", action="store_true", help="print exactly one JSON object")
    ap.add_argument("--ops", type=int, default=200_000)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args(argv)
    result = measure(args.ops, args.runs, args.seed)
    if args.json:
        print(json.dumps(result))
        return 0
    print(f"matching engine, in-process ({result['machine']['cpu']}, Python {result['machine']['python']})")
    print(
        f"  workload: {result['ops']} ops = {result['submits']} submits + {result['cancels']} cancels over "
        f"{result['markets']} markets, {result['accounts']} accounts"
    )
    print(f"  per replay: {result['trades']} trades, {result['refused']} refused, {result['resting_after']} resting")
    print(f"  {'metric':<28}{'value':>12}")
    for key in (
        "orders_per_s",
        "submits_per_s",
        "us_per_order_median",
        "us_per_order_min",
        "orders_per_s_gc_on",
        "us_per_order_median_gc_on",
    ):
        print(f"  {key:<28}{result[key]:>12,}")
    print(f"  (median of {result['runs']} runs per GC mode; GC paused in the timed loop unless _gc_on)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
