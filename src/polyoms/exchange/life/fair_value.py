"""The hidden fair value of each market, and the one place model floats become integer prices.

A market's fair value is the probability that it resolves YES. Two models:

* `AboveStrikeValue` — "will the feed be above K at T": P(S_T > K) from the reference feed;
* `LogitWalk` — anything else: its own random walk in log-odds space (so it stays inside (0, 1)),
  with drift and Poisson jumps, reflected inside [floor, cap] so books keep a tradable middle.

Both are read through `value_at(t_ms) -> int`, the probability in micro-units (10^6 = certain). The
float → integer step happens here, once, with explicit rounding; everything downstream — agents'
quotes, order amounts — is exact integer arithmetic on the tick grid.

Like the feed, a logit walk is sampled on a fixed grid from its own seeded stream and generated
lazily in time order, so the hidden path does not depend on who reads it or when.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Protocol

from polyoms.core.units import MICRO
from polyoms.exchange.life.feed import DAY_MS, PriceFeed, above_strike_probability

# --- float model → integer prices ------------------------------------------------------------------


def probability_to_micro(p: float) -> int:
    """A probability as integer micro-units, rounded to nearest (ties away from zero), within [0, 10^6]."""
    if not p > 0.0:  # also catches NaN
        return 0
    if p >= 1.0:
        return MICRO
    return int(p * MICRO + 0.5)


def snap_down(price: int, tick: int) -> int:
    """The grid price at or below `price` (exact integers)."""
    return price - price % tick


def snap_up(price: int, tick: int) -> int:
    """The grid price at or above `price`."""
    return -(-price // tick) * tick


def snap_nearest(price: int, tick: int) -> int:
    """The nearest grid price, halves rounded up."""
    return (price + tick // 2) // tick * tick


def clamp_price(price: int, tick: int) -> int:
    """Into the tradable range [tick, 1 − tick]."""
    lo, hi = tick, MICRO - tick
    return lo if price < lo else hi if price > hi else price


def _logit(p: float) -> float:
    return math.log(p / (1.0 - p))


def _expit(x: float) -> float:
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    e = math.exp(x)
    return e / (1.0 + e)


# --- models -----------------------------------------------------------------------------------------


class FairValue(Protocol):
    """A market's hidden fair value. Calls must come with non-decreasing `t_ms`."""

    def value_at(self, t_ms: int) -> int:
        """P(YES) at `t_ms` in micro-units."""
        ...

    def probability_at(self, t_ms: int) -> float: ...


@dataclass(frozen=True, slots=True)
class AboveStrikeParams:
    """Above K at T: K = `strike` if given, else the feed's start price × `strike_ratio`; T = start + `expiry_ms`."""

    strike: float | None = None
    strike_ratio: float = 1.0
    expiry_ms: int = 2 * DAY_MS


class AboveStrikeValue:
    """P(S_T > K) from the reference feed, recomputed only when the feed has a new sample."""

    __slots__ = ("_cached_at", "_cached_p", "expiry_ms", "feed", "strike")

    def __init__(self, feed: PriceFeed, strike: float, expiry_ms: int) -> None:
        if strike <= 0:
            raise ValueError("strike must be positive")
        self.feed = feed
        self.strike = strike
        self.expiry_ms = expiry_ms
        self._cached_at = -1
        self._cached_p = 0.0

    def probability_at(self, t_ms: int) -> float:
        feed = self.feed
        last = feed.advance_to(t_ms)
        if last.timestamp_ms != self._cached_at:
            self._cached_at = last.timestamp_ms
            self._cached_p = above_strike_probability(
                feed.log_price, self.strike, self.expiry_ms - last.timestamp_ms, feed.params
            )
        return self._cached_p

    def value_at(self, t_ms: int) -> int:
        return probability_to_micro(self.probability_at(t_ms))


@dataclass(frozen=True, slots=True)
class LogitParams:
    """A log-odds walk: x = logit(p); dx = drift·dt + vol·√dt·Z + jumps (per day)."""

    start: float = 0.5
    vol_per_day: float = 0.6
    drift_per_day: float = 0.0
    jump_rate_per_day: float = 0.0
    jump_mean: float = 0.0
    jump_std: float = 0.4
    interval_ms: int = 1_000
    floor: float = 0.03
    cap: float = 0.97

    def __post_init__(self) -> None:
        if not 0.0 < self.floor < self.start < self.cap < 1.0:
            raise ValueError("need 0 < floor < start < cap < 1")
        if self.vol_per_day < 0 or self.jump_rate_per_day < 0 or self.jump_std < 0:
            raise ValueError("volatility, jump rate and jump size must not be negative")
        if self.interval_ms <= 0:
            raise ValueError("interval_ms must be positive")


class LogitWalk:
    """A bounded random walk in probability space, seeded and sampled on a fixed grid."""

    __slots__ = ("_drift", "_hi", "_lo", "_next_jump_ms", "_rng", "_t", "_vol", "_x", "jump_gap_ms", "params")

    def __init__(self, params: LogitParams, seed: int, name: str, start_ms: int) -> None:
        self.params = params
        self._rng = random.Random(f"polyoms-life:logit:{name}:{seed}")
        dt_days = params.interval_ms / DAY_MS
        self._drift = params.drift_per_day * dt_days
        self._vol = params.vol_per_day * math.sqrt(dt_days)
        self._lo, self._hi = _logit(params.floor), _logit(params.cap)
        self._x = _logit(params.start)
        self._t = start_ms - start_ms % params.interval_ms
        self.jump_gap_ms = DAY_MS / params.jump_rate_per_day if params.jump_rate_per_day > 0 else 0.0
        self._next_jump_ms = self._draw_gap(self._t)

    def _draw_gap(self, after_ms: float) -> float:
        if not self.jump_gap_ms:
            return math.inf
        return after_ms + self._rng.expovariate(1.0 / self.jump_gap_ms)

    def _advance(self, t_ms: int) -> None:
        p = self.params
        interval = p.interval_ms
        t = self._t
        if t + interval > t_ms:
            return
        gauss = self._rng.gauss
        x, lo, hi = self._x, self._lo, self._hi
        drift, vol = self._drift, self._vol
        while t + interval <= t_ms:
            t += interval
            x += drift + vol * gauss(0.0, 1.0)
            while self._next_jump_ms <= t:
                x += gauss(p.jump_mean, p.jump_std)
                self._next_jump_ms = self._draw_gap(self._next_jump_ms)
            # Reflect rather than clamp, so the walk does not stick to its bounds.
            if x > hi:
                x = max(lo, 2 * hi - x)
            elif x < lo:
                x = min(hi, 2 * lo - x)
        self._x, self._t = x, t

    def probability_at(self, t_ms: int) -> float:
        self._advance(t_ms)
        return _expit(self._x)

    def value_at(self, t_ms: int) -> int:
        return probability_to_micro(self.probability_at(t_ms))
