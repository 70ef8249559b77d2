"""Realism measured: how the living market's book answers a large sweep (doc: docs/realism.md).

At seeded random instants a dedicated, funded account sends a marketable fill-and-kill order that
takes (a stated percentage of) all the depth on one side within `window` of the mid — a *sweep* — and
the book is sampled at fixed offsets afterwards while the background agents go on living:

* **depth recovery** (the headline): depth on the swept side *at prices within `window` of the
  pre-sweep mid* — the price range the sweep emptied — divided by the same depth just before it;
* **near-mid recovery** (secondary): depth on the swept side within `window` of the mid *at the
  sample time*, over the same measure before the sweep (this one forgives quotes that moved);
* **mid move**: the mid at the offset minus the pre-sweep mid, signed so that positive is the sweep's
  direction (up after a buy sweep).

Everything here reads the exchange's book and drives `MarketLife.run_until`; nothing changes the
agents. Depths are integer micro-shares and mids integer micro-prices; only the summary's ratios,
quantiles and cents are floats (reporting, not money).
"""

from __future__ import annotations

import hashlib
import random
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from polyoms.core.enums import OrderType, Side
from polyoms.core.errors import ConfigError
from polyoms.core.units import MICRO
from polyoms.exchange.book import MatchingBook
from polyoms.exchange.engine import EngineOrder
from polyoms.exchange.life.agents import SIZE_STEP, shares
from polyoms.exchange.life.market import MarketLife
from polyoms.exchange.life.scenarios import Scenario

CENT: Final = 10_000

RECOVERY_TARGETS: Final = {1_000: (0.25, 0.40), 5_000: (0.75, 0.85)}
"""Published forensics of a real 15-minute BTC maker on Polymarket (the issue's brief): after a large
sweep the depth recovers 25–40 % at 1 s and 75–85 % at 5 s. The study's exact depth definition is not
known to us: UNCONFIRMED whether it is the swept range or near the moving mid, so both are measured."""
MID_MOVE_TARGET_CENTS: Final = (0.5, 1.5)
"""The same forensics: 5 s after a large sweep the mid has moved 0.5–1.5 ¢ in the sweep's direction."""

SWEEPER: Final = "polyoms-life:realism:sweeper"
_SWEEPER_SETS: Final = 10_000_000 * MICRO
"""Full sets the sweeper holds per market: it sweeps by *selling* (YES to hit bids, NO to lift asks),
so a sweep is share-denominated and exact, and it never runs out in a measurement."""


@dataclass(frozen=True, slots=True)
class SweepPlan:
    """How to sweep and when to look."""

    window: int = 3 * CENT
    """Depth counted, and swept, within this distance of the mid (micro)."""
    take_pct: int = 100
    """Percentage of that depth the sweep takes."""
    offsets_ms: tuple[int, ...] = (250, 1_000, 2_000, 5_000, 10_000)
    mid_at_ms: int = 5_000
    """The offset whose mid move is the headline."""
    min_depth: int = shares(10)
    """No sweep when less than this rests within the window (or a side is empty): try again later."""
    sweeps: int = 40
    """Sweeps per run (over all the scenario's markets, each to a random one)."""
    warmup_ms: int = 10 * 60_000
    gap_ms: tuple[int, int] = (30_000, 90_000)
    """Quiet time between the last sample of one sweep and the next sweep, uniform."""

    def __post_init__(self) -> None:
        if self.window <= 0 or not 0 < self.take_pct <= 100 or self.sweeps < 0:
            raise ConfigError("sweep plan: window > 0, 0 < take_pct ≤ 100 and sweeps ≥ 0 please")
        if not self.offsets_ms or list(self.offsets_ms) != sorted(set(self.offsets_ms)) or self.offsets_ms[0] <= 0:
            raise ConfigError("sweep plan: offsets must be positive and increasing")
        if self.mid_at_ms not in self.offsets_ms:
            raise ConfigError("sweep plan: mid_at_ms must be one of the offsets")
        if not 0 <= self.gap_ms[0] <= self.gap_ms[1]:
            raise ConfigError("sweep plan: gap_ms is (low, high) with 0 ≤ low ≤ high")


@dataclass(frozen=True, slots=True)
class SweepSample:
    """One sweep and what the book looked like after it."""

    market: str
    """The market's slug."""
    at_ms: int
    buy: bool
    """True: the sweep lifted the asks (the price is pushed up)."""
    mid_before: int
    depth_before: int
    """Micro-shares on the swept side within the window of `mid_before`."""
    swept: int
    """Micro-shares the sweep traded."""
    depth_after: tuple[int, ...]
    """Per offset: the swept side within the window of `mid_before`."""
    near_after: tuple[int, ...]
    """Per offset: the swept side within the window of the mid at that time (of `mid_before` if the
    book then has no mid)."""
    mid_after: tuple[int | None, ...]
    """Per offset: the mid, None when a side is empty."""

    def recovery(self, i: int) -> float:
        return self.depth_after[i] / self.depth_before

    def near_recovery(self, i: int) -> float:
        return self.near_after[i] / self.depth_before

    def mid_move(self, i: int) -> int | None:
        """Signed micro-price move at offset `i`, positive in the sweep's direction."""
        mid = self.mid_after[i]
        if mid is None:
            return None
        return mid - self.mid_before if self.buy else self.mid_before - mid


# --- reading the book ------------------------------------------------------------------------------


def mid_of(book: MatchingBook) -> int | None:
    """YES-space mid in micro (exact: ticks are multiples of 100 micro, so bid + ask is even)."""
    if book.best_bid <= 0 or book.best_ask >= book.n:
        return None
    return (book.best_bid + book.best_ask) * book.tick // 2


def depth_near(book: MatchingBook, asks: bool, mid: int, window: int) -> int:
    """Micro-shares resting on one side at YES prices strictly beyond `mid` and within `window` of it:
    asks in (mid, mid + window], bids in [mid − window, mid)."""
    tick = book.tick
    if asks:
        lo = mid // tick + 1
        hi = min((mid + window) // tick, book.n - 1)
        sizes = book.ask_size
    else:
        lo = max(-(-(mid - window) // tick), 1)
        hi = -(-mid // tick) - 1
        sizes = book.bid_size
    return sum(sizes[lo : hi + 1]) if lo <= hi else 0


def _farthest_level(book: MatchingBook, asks: bool, mid: int, window: int) -> int:
    """The YES price of the last non-empty level within the window: the sweep's worst price."""
    tick = book.tick
    if asks:
        i = min((mid + window) // tick, book.n - 1)
        while book.ask_size[i] == 0:
            i -= 1
    else:
        i = max(-(-(mid - window) // tick), 1)
        while book.bid_size[i] == 0:
            i += 1
    return i * tick


# --- sweeping --------------------------------------------------------------------------------------


class Sweeper:
    """The dedicated account that sweeps: funded with full sets of a market the first time it sweeps it
    (markets of the crypto scenario are listed while life runs)."""

    def __init__(self, life: MarketLife, name: str = SWEEPER) -> None:
        self.life = life
        digest = hashlib.sha256(name.encode()).hexdigest()
        self.address = "0x" + digest[:40]
        self.owner = f"{name}:owner"
        self._prefix = digest[40:56]
        self._n = 0
        self._funded: set[str] = set()

    def sweep(self, condition_id: str, buy: bool, size: int, worst: int) -> int:
        """Take up to `size` micro-shares on one side, no worse than YES price `worst`; returns the
        micro-shares traded. A buy sweep sells NO at 1 − worst (it matches the YES asks), a sell sweep
        sells YES at `worst` (it matches the bids)."""
        ex = self.life.exchange
        spec = ex.market(condition_id)
        if spec.condition_id not in self._funded:
            self._funded.add(spec.condition_id)
            ex.fund(self.address, 0, {spec.yes_token_id: _SWEEPER_SETS, spec.no_token_id: _SWEEPER_SETS})
        token, price = (spec.no_token_id, MICRO - worst) if buy else (spec.yes_token_id, worst)
        self._n += 1
        oid = f"0x{self._prefix}{self._n:048x}"
        now = self.life.clock.now_ms()
        order = EngineOrder(
            oid, self.address, self.owner, token, Side.SELL, size, size * price // MICRO, OrderType.FAK, 0, False, now
        )
        result = ex.submit(order)
        return sum(t.size for t in result.trades)


def sweep_and_watch(
    life: MarketLife, sweeper: Sweeper, condition_id: str, buy: bool, plan: SweepPlan
) -> SweepSample | None:
    """Sweep one side of one market now and sample it at the plan's offsets (running life meanwhile).
    None, and nothing done, if the book is not there to sweep (a side empty, too little depth)."""
    cid = condition_id.lower()
    book = life.exchange.books[cid]
    mid0 = mid_of(book)
    if mid0 is None:
        return None
    depth0 = depth_near(book, buy, mid0, plan.window)
    if depth0 < plan.min_depth:
        return None
    size = depth0 * plan.take_pct // 100
    size -= size % SIZE_STEP
    if size <= 0:
        return None
    t0 = life.clock.now_ms()
    swept = sweeper.sweep(cid, buy, size, _farthest_level(book, buy, mid0, plan.window))
    fixed: list[int] = []
    near: list[int] = []
    mids: list[int | None] = []
    for off in plan.offsets_ms:
        life.run_until(t0 + off)
        mid = mid_of(book)
        fixed.append(depth_near(book, buy, mid0, plan.window))
        near.append(depth_near(book, buy, mid0 if mid is None else mid, plan.window))
        mids.append(mid)
    slug = life.exchange.market(cid).slug
    return SweepSample(slug, t0, buy, mid0, depth0, swept, tuple(fixed), tuple(near), tuple(mids))


def _open_markets(life: MarketLife, markets: Sequence[str] | None) -> list[str]:
    """Condition ids of the markets trading now with a two-sided book (among the slugs `markets`,
    default all), by slug. (The crypto scenario lists markets ahead of their window, books empty.)"""
    books = life.exchange.books
    specs = sorted(life.exchange.markets(), key=lambda s: s.slug)
    return [
        s.condition_id
        for s in specs
        if s.accepting_orders
        and s.active
        and not s.closed
        and (markets is None or s.slug in markets)
        and mid_of(books[s.condition_id.lower()]) is not None
    ]


def run_sweeps(life: MarketLife, plan: SweepPlan, seed: int, markets: Sequence[str] | None = None) -> list[SweepSample]:
    """`plan.sweeps` sweeps on `life` at seeded random instants, each on a random market trading then
    (among the slugs `markets`, default all) and a random side. A sweep that finds no book to sweep
    is retried after another gap; at most 4 × `plan.sweeps` tries."""
    rng = random.Random(f"polyoms-life:realism:{seed}")
    if markets is not None:
        known = {s.slug for s in life.exchange.markets()}
        unknown = [m for m in markets if m not in known]
        if unknown or not markets:
            raise ConfigError(f"no such market(s) in scenario {life.scenario.name!r}: {unknown or list(markets)}")
    sweeper = Sweeper(life)
    life.run_until(life.start_ms + plan.warmup_ms)
    out: list[SweepSample] = []
    tries = 0
    while len(out) < plan.sweeps and tries < 4 * plan.sweeps:
        tries += 1
        gap = rng.randint(plan.gap_ms[0], plan.gap_ms[1])
        pick, buy = rng.random(), rng.random() < 0.5
        life.run_until(life.clock.now_ms() + gap)
        open_now = _open_markets(life, markets)
        if not open_now:
            continue
        sample = sweep_and_watch(life, sweeper, open_now[int(pick * len(open_now))], buy, plan)
        if sample is not None:
            out.append(sample)
    return out


def measure(
    scenario: Scenario, seeds: Iterable[int], plan: SweepPlan = SweepPlan(), markets: Sequence[str] | None = None
) -> list[SweepSample]:
    """Sweeps on a fresh backtest of `scenario` per seed (seed s: the life's seed and the sweeps')."""
    out: list[SweepSample] = []
    for seed in seeds:
        life = MarketLife.backtest(scenario, seed=seed)
        out.extend(run_sweeps(life, plan, seed, markets))
    return out


# --- summary ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Spread:
    """Median and interquartile range of a sample (floats: this is reporting)."""

    n: int
    median: float
    p25: float
    p75: float
    mean: float

    @staticmethod
    def of(values: Sequence[float]) -> Spread:
        if not values:
            nan = float("nan")
            return Spread(0, nan, nan, nan, nan)
        if len(values) == 1:
            v = float(values[0])
            return Spread(1, v, v, v, v)
        q1, q2, q3 = statistics.quantiles(values, n=4, method="inclusive")
        return Spread(len(values), q2, q1, q3, statistics.fmean(values))

    def as_dict(self, digits: int = 3) -> dict[str, Any]:
        if not self.n:
            return {"n": 0, "median": None, "p25": None, "p75": None, "mean": None}  # JSON has no NaN
        return {
            "n": self.n,
            "median": round(self.median, digits),
            "p25": round(self.p25, digits),
            "p75": round(self.p75, digits),
            "mean": round(self.mean, digits),
        }


@dataclass(frozen=True, slots=True)
class RealismSummary:
    offsets_ms: tuple[int, ...]
    recovery: tuple[Spread, ...]
    """Depth recovery in the swept range, per offset (1.0 = all back)."""
    near_recovery: tuple[Spread, ...]
    mid_move_cents: tuple[Spread, ...]
    """Per offset, over the sweeps whose book had a mid then."""
    mid_at_ms: int
    sweeps: int
    swept_shares: Spread
    extras: dict[str, Any] = field(default_factory=dict)

    def mid_move_at(self) -> Spread:
        return self.mid_move_cents[self.offsets_ms.index(self.mid_at_ms)]

    def as_dict(self) -> dict[str, Any]:
        return {
            "sweeps": self.sweeps,
            "swept_shares": self.swept_shares.as_dict(1),
            "curve": [
                {
                    "offset_ms": off,
                    "recovery": rec.as_dict(),
                    "near_mid_recovery": near.as_dict(),
                    "mid_move_cents": mid.as_dict(2),
                }
                for off, rec, near, mid in zip(
                    self.offsets_ms, self.recovery, self.near_recovery, self.mid_move_cents, strict=True
                )
            ],
            "mid_move_cents_at": {"offset_ms": self.mid_at_ms, **self.mid_move_at().as_dict(2)},
            **self.extras,
        }


def summarize(samples: Sequence[SweepSample], plan: SweepPlan) -> RealismSummary:
    offsets = plan.offsets_ms
    rec = tuple(Spread.of([s.recovery(i) for s in samples]) for i in range(len(offsets)))
    near = tuple(Spread.of([s.near_recovery(i) for s in samples]) for i in range(len(offsets)))
    mids: list[Spread] = []
    for i in range(len(offsets)):
        moves = [m for m in (s.mid_move(i) for s in samples) if m is not None]
        mids.append(Spread.of([m / CENT for m in moves]))
    swept = Spread.of([s.swept / MICRO for s in samples])
    return RealismSummary(offsets, rec, near, tuple(mids), plan.mid_at_ms, len(samples), swept)


def against_targets(summary: RealismSummary) -> dict[str, Any]:
    """Each target next to the measured median, and whether the median falls inside it."""
    out: dict[str, Any] = {}
    for off, (lo, hi) in RECOVERY_TARGETS.items():
        if off in summary.offsets_ms:
            i = summary.offsets_ms.index(off)
            med = summary.recovery[i].median
            near = summary.near_recovery[i].median
            out[f"recovery_{off}ms"] = {
                "target": [lo, hi],
                "median": None if med != med else round(med, 3),
                "inside": lo <= med <= hi,
                "near_mid_median": None if near != near else round(near, 3),
                "near_mid_inside": lo <= near <= hi,
            }
    lo_c, hi_c = MID_MOVE_TARGET_CENTS
    mm = summary.mid_move_at().median
    out[f"mid_move_{summary.mid_at_ms}ms_cents"] = {
        "target": [lo_c, hi_c],
        "median": None if mm != mm else round(mm, 2),  # NaN: no sweep had a mid then
        "inside": lo_c <= mm <= hi_c,
    }
    return out
