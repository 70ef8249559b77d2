"""A week of the living market in-process: does the exchange's memory stay flat?

    .venv/bin/python bench/sim_memory.py [--json] [--scenario crypto|calm] [--seed 1] [--days 7] [--no-archive]

The living market (`polyoms.exchange.life`) runs on a virtual clock against a fresh `Exchange` whose
history archive (exchange/history) is on, in a temporary state dir, as `polyoms sim --state-dir` runs it.
After every simulated day the process's resident set (VmRSS from /proc/self/status) is sampled, after a
garbage collection. Reported: `rss_growth_mb_per_day` (RSS growth per day after the first day: (last −
day 1) / (days − 1); target ≤ 5), the per-day series `rss_mb`, `sim_days_per_min` (simulated days per
wall minute), what the archive holds and what is left in memory. The scenario defaults to `crypto`
(scheduled up/down markets) when it exists, else `calm`. `--no-archive` runs without the archive, for
comparison.
"""

from __future__ import annotations

import argparse
import gc
import json
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import machine
from polyoms.core.errors import ConfigError
from polyoms.exchange.audit import audit
from polyoms.exchange.history import HistoryArchive
from polyoms.exchange.life.market import MarketLife
from polyoms.exchange.life.scenarios import HOUR_MS, scenario

DAY_MS = 24 * HOUR_MS


def rss_mb() -> float:
    """The resident set now (MB); the peak from `resource` where /proc is missing."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def default_scenario() -> str:
    try:
        scenario("crypto")
    except ConfigError:
        return "calm"
    return "crypto"


def run(name: str, seed: int, days: int, archive_on: bool, check: bool) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="polyoms-sim-memory-") as tmp:
        life = MarketLife.backtest(scenario(name), seed=seed)
        ex = life.exchange
        archive = HistoryArchive(Path(tmp) / "history.sqlite") if archive_on else None
        if archive is not None:
            ex.attach_archive(archive)
        gc.collect()
        series = [round(rss_mb(), 1)]
        t0 = time.perf_counter()
        for day in range(1, days + 1):
            life.run_until(life.start_ms + day * DAY_MS)
            gc.collect()
            series.append(round(rss_mb(), 1))
        wall = time.perf_counter() - t0
        problems = audit(ex) if check else []
        held = {k: archive.count(k) for k in ("orders", "trades", "markets")} if archive is not None else {}
        db_mb = round((Path(tmp) / "history.sqlite").stat().st_size / 2**20, 1) if archive is not None else 0.0
        if archive is not None:
            archive.close()
    growth = (series[-1] - series[1]) / (days - 1) if days > 1 else 0.0
    stats = life.stats
    return {
        "scenario": name,
        "seed": seed,
        "sim_days": days,
        "archive": archive_on,
        "rss_growth_mb_per_day": round(growth, 2),
        "rss_mb": series,
        "sim_days_per_min": round(days / (wall / 60), 2),
        "wall_s": round(wall, 1),
        "orders": stats.orders,
        "trades": stats.trades,
        "archived": held,
        "archive_file_mb": db_mb,
        "in_memory": {
            "orders": len(ex.all_orders),
            "trades": len(ex.all_trades),
            "markets": len(ex.books),
            "open_orders": len(ex.open_orders()),
        },
        "audit_problems": len(problems),
        "machine": machine(),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    ap.add_argument("--scenario", default=None, help="a life scenario (default: crypto if it exists, else calm)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--days", type=int, default=7, help="simulated days (default a week)")
    ap.add_argument("--no-archive", action="store_true", help="keep all history in memory (for comparison)")
    ap.add_argument("--no-audit", action="store_true", help="skip the invariant audit after the run")
    args = ap.parse_args(argv)
    if args.days < 2:
        ap.error("--days must be at least 2 (growth is measured after the first day)")
    out = run(args.scenario or default_scenario(), args.seed, args.days, not args.no_archive, not args.no_audit)
    if args.json:
        print(json.dumps(out))
    else:
        print(
            f"scenario {out['scenario']} seed {out['seed']}: {out['sim_days']} simulated days, archive {out['archive']}"
        )
        print(f"  RSS growth     {out['rss_growth_mb_per_day']} MB/day after day 1 (target <= 5)")
        print(f"  RSS by day     {out['rss_mb']} MB")
        print(f"  speed          {out['sim_days_per_min']} simulated days per minute ({out['wall_s']} s)")
        print(f"  archived       {out['archived']} ({out['archive_file_mb']} MB on disk)")
        print(f"  in memory      {out['in_memory']}")
        print(f"  audit          {out['audit_problems']} problems")
    return 0


if __name__ == "__main__":
    sys.exit(main())
