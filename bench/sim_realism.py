"""How the living market's book answers a large sweep: depth recovery and the mid's move.

    .venv/bin/python bench/sim_realism.py [--json] [--scenario calm ...] [--seeds 1,2,3,4,5] [--sweeps 40]

For each scenario (default: calm, trending, jump, thin, crypto) and seed, a fresh backtest runs 10 simulated
minutes, then `--sweeps` times, at seeded random instants 30–90 s apart, a funded account sweeps all
the depth within 3 ¢ of the mid on a random side of a random market and the book is sampled at
+250 ms, +1 s, +2 s, +5 s and +10 s (`polyoms.exchange.life.realism`, method in docs/realism.md).

Reported per scenario, over all its sweeps: median and interquartile range of the depth recovery
(swept price range, and near the moving mid) at each offset, of the mid move in cents, and the
published targets next to the medians. `--json` prints one JSON object; nothing is written.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import UTC, datetime
from typing import Any

from _common import machine
from polyoms.exchange.life.realism import SweepPlan, against_targets, measure, summarize
from polyoms.exchange.life.scenarios import SCENARIOS, scenario

STANDARD = ("calm", "trending", "jump", "thin", "crypto")


def run(name: str, seeds: list[int], sweeps: int) -> dict[str, Any]:
    plan = SweepPlan(sweeps=sweeps)
    t0 = time.perf_counter()
    samples = measure(scenario(name), seeds, plan)
    wall = time.perf_counter() - t0
    summary = summarize(samples, plan)
    return {
        "scenario": name,
        "seeds": seeds,
        "wall_s": round(wall, 2),
        **summary.as_dict(),
        "targets": against_targets(summary),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    ap.add_argument(
        "--scenario", action="append", choices=sorted(SCENARIOS), help="repeatable; default the standard four"
    )
    ap.add_argument("--seeds", default="1,2,3,4,5", help="comma-separated seeds")
    ap.add_argument("--sweeps", type=int, default=40, help="sweeps per seed")
    args = ap.parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    names = args.scenario or list(STANDARD)
    results = [run(n, seeds, args.sweeps) for n in names]
    out = {"date": datetime.now(UTC).strftime("%Y-%m-%d"), "results": results, "machine": machine()}
    if args.json:
        print(json.dumps(out))
        return 0
    for r in results:
        print(
            f"scenario {r['scenario']} seeds {r['seeds']}: {r['sweeps']} sweeps, "
            f"median {r['swept_shares']['median']:g} shares each"
        )
        print("  offset   recovery (swept range)   near-mid recovery      mid move ¢")
        for row in r["curve"]:
            rec, near, mid = row["recovery"], row["near_mid_recovery"], row["mid_move_cents"]
            print(
                f"  {row['offset_ms']:>6} ms  {rec['median']:.2f} [{rec['p25']:.2f}, {rec['p75']:.2f}]"
                f"       {near['median']:.2f} [{near['p25']:.2f}, {near['p75']:.2f}]"
                f"      {mid['median']:+.2f} [{mid['p25']:+.2f}, {mid['p75']:+.2f}] n={mid['n']}"
            )
        for key, t in r["targets"].items():
            print(f"  target {key}: {t}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
