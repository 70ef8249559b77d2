"""Shared helpers for the benchmarks: interleaved batch timing and a description of the machine.

The benchmark machines are small and noisy (2 cores, shared), so every benchmark here
* runs all contenders in the same process, in the same run, interleaved batch by batch (the
  order rotates every round so no contender always runs first or right after the collector),
* times whole batches with `time.perf_counter_ns` and divides by the batch size,
* reports the median of the per-batch timings (plus min and max, to show the noise).
"""

from __future__ import annotations

import gc
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class Contender:
    """One thing to time: `fn()` does one operation; `batch` operations make one timing sample."""

    name: str
    fn: Callable[[], object]
    batch: int
    samples_us: list[float] = field(default_factory=list)

    def run_batch(self) -> float:
        fn = self.fn
        gc.collect()
        gc_was_enabled = gc.isenabled()
        gc.disable()
        try:
            start = time.perf_counter_ns()
            for _ in range(self.batch):
                fn()
            elapsed = time.perf_counter_ns() - start
        finally:
            if gc_was_enabled:
                gc.enable()
        return elapsed / self.batch / 1000.0

    @property
    def median_us(self) -> float:
        return statistics.median(self.samples_us)

    def summary(self) -> dict[str, float | int]:
        return {
            "median_us": round(self.median_us, 2),
            "min_us": round(min(self.samples_us), 2),
            "max_us": round(max(self.samples_us), 2),
            "batch": self.batch,
            "batches": len(self.samples_us),
        }


def run_interleaved(contenders: list[Contender], runs: int, warmup: int = 1) -> None:
    """`warmup` unrecorded rounds, then `runs` rounds; each round times one batch per contender."""
    for _ in range(warmup):
        for c in contenders:
            c.run_batch()
    for r in range(runs):
        k = r % len(contenders)
        for c in contenders[k:] + contenders[:k]:
            c.samples_us.append(c.run_batch())


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> dict[str, str | int]:
    return {
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "nproc": os.cpu_count() or 0,
        "cpu": cpu_model(),
        "platform": platform.platform(),
    }
