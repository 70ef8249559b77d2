"""One simulated day of a busy market replayed in-process: how fast does market life run?

    .venv/bin/python bench/market_day.py [--json] [--scenario calm] [--seed 1] [--hours 24]

A fresh `Exchange` on a virtual clock trades every market of the scenario (four by default: two BTC
above-strike markets with crypto taker fees, two event markets, ticks 0.01 and 0.001), driven only by
the background flow of `polyoms.exchange.life` — per market three liquidity providers requoting a
three-level ladder each side, three noise takers and one informed trader. The clock jumps from event
to event, so the day replays as fast as the matching engine and the agents' decisions allow.

Reported: wall time of the replay (setup excluded), simulated order events — orders accepted, cancels,
trades — per second of wall time, and the day's totals overall and per market. `--json` prints one
JSON object with `wall_s`, `events_per_s`, `orders`, `cancels`, `trades`, `scenario`, `seed` and more.
Target: a 24 h day in under 60 s.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from typing import Any

from _common import machine
from polyoms.exchange.audit import audit
from polyoms.exchange.life.market import MarketLife
from polyoms.exchange.life.scenarios import HOUR_MS, SCENARIOS, scenario


def run(name: str, seed: int, hours: float, check: bool) -> dict[str, Any]:
    life = MarketLife.backtest(scenario(name), seed=seed)
    end = life.start_ms + int(hours * HOUR_MS)
    t0 = time.perf_counter()
    life.run_until(end)
    wall = time.perf_counter() - t0
    stats = life.stats
    events = stats.orders + stats.cancels + stats.trades
    ex = life.exchange
    slug = {p.spec.condition_id: p.spec.slug for p in life.scenario.markets}
    trades_by_market = Counter(slug[t.market] for t in ex.all_trades)
    orders_by_market = Counter(slug[o.market] for o in ex.all_orders.values())
    problems = audit(ex) if check else []
    return {
        "scenario": name,
        "seed": seed,
        "sim_hours": hours,
        "markets": len(life.scenario.markets),
        "wall_s": round(wall, 3),
        "events_per_s": round(events / wall),
        "orders": stats.orders,
        "cancels": stats.cancels,
        "trades": stats.trades,
        "rejects": stats.rejects,
        "decisions": stats.wakes,
        "shares_traded": stats.shares_traded // 1_000_000,
        "trades_per_day_per_market": {k: round(v * 24 / hours) for k, v in sorted(trades_by_market.items())},
        "orders_per_day_per_market": {k: round(v * 24 / hours) for k, v in sorted(orders_by_market.items())},
        "audit_problems": len(problems),
        "machine": machine(),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    ap.add_argument("--scenario", default="calm", choices=sorted(SCENARIOS))
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--hours", type=float, default=24.0, help="simulated hours (default a day)")
    ap.add_argument("--no-audit", action="store_true", help="skip the invariant audit after the run")
    args = ap.parse_args(argv)
    out = run(args.scenario, args.seed, args.hours, not args.no_audit)
    if args.json:
        print(json.dumps(out))
    else:
        head = f"scenario {out['scenario']} seed {out['seed']}"
        print(f"{head}: {out['sim_hours']:g} simulated hours, {out['markets']} markets")
        print(f"  wall time      {out['wall_s']:.2f} s")
        print(f"  events/s       {out['events_per_s']:,} (orders + cancels + trades, simulated per wall second)")
        print(f"  orders         {out['orders']:,} accepted ({out['rejects']:,} refused)")
        print(f"  cancels        {out['cancels']:,}")
        print(f"  trades         {out['trades']:,} ({out['shares_traded']:,} shares)")
        print(f"  decisions      {out['decisions']:,}")
        for slug, n in out["trades_per_day_per_market"].items():
            print(f"  {slug:28s} {n:>7,} trades/day  {out['orders_per_day_per_market'][slug]:>8,} orders/day")
        print(f"  audit          {'clean' if not out['audit_problems'] else str(out['audit_problems']) + ' problems'}")
    return 1 if out["audit_problems"] else 0


if __name__ == "__main__":
    sys.exit(main())
