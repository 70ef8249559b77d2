"""A reference price feed: a BTC-like geometric random walk with Poisson jumps, on a fixed time grid.

The feed is a model, not money: it runs on floats. It exists to drive the hidden fair value of
"above strike K at expiry T" markets and to be published in the venue's RTDS `crypto_prices` shape
(doc §6.7, fixtures `rtds_crypto_prices_*.json`), so a WebSocket layer can serve it unchanged.

Determinism. The path is sampled on a grid aligned to `interval_ms` and generated lazily, strictly in
time order, from its own `random.Random`. Who looks at it and when therefore never changes it: the
same seed gives the same path whether one agent or fifty read it, and whether it is read every
millisecond or once an hour.

Dynamics per step of dt (in days): ln S += (μ − σ²/2)·dt + σ·√dt·Z, plus every jump whose arrival
time (a Poisson process of rate λ per day, exponential gaps) falls in the step, each adding a
normal(jump_mean, jump_std) to ln S. μ is the expected price return per day (the trend), σ the daily
volatility derived from the annual one (crypto trades 365 days a year).
"""

from __future__ import annotations

import math
import random
from collections import deque
from dataclasses import dataclass
from typing import Any, Final

DAY_MS: Final = 86_400_000
YEAR_DAYS: Final = 365.0
RTDS_TOPIC: Final = "crypto_prices"
RTDS_CHAINLINK_TOPIC: Final = "crypto_prices_chainlink"
BINANCE: Final = "binance"
CHAINLINK: Final = "chainlink"
_FULL_ACCURACY_DECIMALS: Final = 8  # the venue's `full_accuracy_value` carries 8 decimals ("61035.86000000")


@dataclass(frozen=True, slots=True)
class FeedParams:
    """Parameters of the reference price walk. Rates are per day, volatility per √year."""

    symbol: str = "btcusdt"
    start_price: float = 61_000.0
    vol_annual: float = 0.50
    drift_per_day: float = 0.0
    jump_rate_per_day: float = 0.0
    jump_mean: float = 0.0
    """Mean of one jump in log-price (−0.02 ≈ a 2 % drop)."""
    jump_std: float = 0.015
    interval_ms: int = 1_000
    decimals: int = 2
    history: int = 60
    """How many recent samples are kept for an RTDS subscribe snapshot."""
    spread: float = 0.0
    """Quoted bid/ask spread in price units (0: ticks carry no bid/ask). Binance's BTCUSDT book is
    almost always one 0.01 tick wide; each tick then has bid = value − spread/2 (rounded), ask = bid + spread."""
    source: str = BINANCE
    """Where the ticks come from, so a server routes them: RTDS `crypto_prices` and the Binance streams."""

    def __post_init__(self) -> None:
        if self.start_price <= 0 or not math.isfinite(self.start_price):
            raise ValueError("start_price must be positive")
        if self.vol_annual < 0 or self.jump_rate_per_day < 0 or self.jump_std < 0:
            raise ValueError("volatility, jump rate and jump size must not be negative")
        if self.interval_ms <= 0:
            raise ValueError("interval_ms must be positive")

    @property
    def vol_daily(self) -> float:
        return self.vol_annual / math.sqrt(YEAR_DAYS)


@dataclass(frozen=True, slots=True)
class PriceTick:
    """One sample of a feed: `timestamp_ms` on the sampling grid, `value` rounded to `decimals`.

    `source` is "binance" for the exchange-price feed (RTDS `crypto_prices`, the Binance streams) or
    "chainlink" for a resolution oracle's report (RTDS `crypto_prices_chainlink`, life.oracle). An
    exchange tick with a spread also carries its best `bid` / `ask` (the `bookTicker` view); 0.0 when
    there is none.
    """

    symbol: str
    timestamp_ms: int
    value: float
    source: str = BINANCE
    bid: float = 0.0
    ask: float = 0.0


class PriceFeed:
    """The seeded price walk. `advance_to(t)` generates every sample due at or before `t`."""

    __slots__ = (
        "_drift_step",
        "_jump_gap_mean_ms",
        "_log_price",
        "_next_jump_ms",
        "_rng",
        "_vol_step",
        "last",
        "params",
        "recent",
    )

    def __init__(self, params: FeedParams, seed: int, start_ms: int) -> None:
        self.params = params
        # A string seed is hashed by `random` itself (SHA-512), so it is stable across processes,
        # unlike hash(); each stream gets its own name so adding one never shifts another.
        self._rng = random.Random(f"polyoms-life:feed:{params.symbol}:{seed}")
        dt_days = params.interval_ms / DAY_MS
        sigma = params.vol_daily
        self._drift_step = (params.drift_per_day - 0.5 * sigma * sigma) * dt_days
        self._vol_step = sigma * math.sqrt(dt_days)
        self._log_price = math.log(params.start_price)
        self._jump_gap_mean_ms = DAY_MS / params.jump_rate_per_day if params.jump_rate_per_day > 0 else 0.0
        first = start_ms - start_ms % params.interval_ms
        self._next_jump_ms = self._draw_jump_gap(first)
        self.last = self._tick(first, params.start_price)
        self.recent: deque[PriceTick] = deque([self.last], maxlen=max(1, params.history))

    def _tick(self, t: int, price: float) -> PriceTick:
        p = self.params
        value = round(price, p.decimals)
        if p.spread <= 0:
            return PriceTick(p.symbol, t, value, p.source)
        bid = round(price - p.spread / 2, p.decimals)
        return PriceTick(p.symbol, t, value, p.source, bid, round(bid + p.spread, p.decimals))

    def _draw_jump_gap(self, after_ms: float) -> float:
        if not self._jump_gap_mean_ms:
            return math.inf
        return after_ms + self._rng.expovariate(1.0 / self._jump_gap_mean_ms)

    @property
    def log_price(self) -> float:
        """ln of the unrounded price at `last.timestamp_ms` (what the fair-value model uses)."""
        return self._log_price

    @property
    def next_sample_ms(self) -> int:
        return self.last.timestamp_ms + self.params.interval_ms

    def advance_to(self, t_ms: int) -> PriceTick:
        """Generate every sample with timestamp ≤ `t_ms`; returns the latest one."""
        p = self.params
        interval = p.interval_ms
        t = self.last.timestamp_ms
        if t + interval > t_ms:
            return self.last
        rng = self._rng
        gauss = rng.gauss
        drift, vol = self._drift_step, self._vol_step
        log_price = self._log_price
        recent = self.recent
        last = self.last
        plain = p.spread <= 0
        symbol, decimals, source = p.symbol, p.decimals, p.source
        while t + interval <= t_ms:
            t += interval
            log_price += drift + vol * gauss(0.0, 1.0)
            while self._next_jump_ms <= t:
                log_price += gauss(p.jump_mean, p.jump_std)
                self._next_jump_ms = self._draw_jump_gap(self._next_jump_ms)
            if plain:
                last = PriceTick(symbol, t, round(math.exp(log_price), decimals), source)
            else:
                last = self._tick(t, math.exp(log_price))
            recent.append(last)
        self._log_price = log_price
        self.last = last
        return last

    def since(self, after_ms: int) -> list[PriceTick]:
        """Recent samples newer than `after_ms`, oldest first (at most `params.history` of them).

        A publisher remembers the last timestamp it sent and asks for what came after; the feed
        itself keeps no unbounded buffer, so nobody listening costs nothing.
        """
        return [t for t in self.recent if t.timestamp_ms > after_ms]


# --- the venue's message shapes ----------------------------------------------------------------


def _full_accuracy(value: float) -> str:
    return f"{value:.{_FULL_ACCURACY_DECIMALS}f}"


def rtds_topic(source: str) -> str:
    """The RTDS topic a feed's ticks go out on: the oracle's on `crypto_prices_chainlink`."""
    return RTDS_CHAINLINK_TOPIC if source == CHAINLINK else RTDS_TOPIC


def to_rtds_message(tick: PriceTick, sent_ms: int | None = None) -> dict[str, Any]:
    """One RTDS `crypto_prices` update, keys and value types as the venue sends them.

    `timestamp` at the top is when the message is sent (the venue's is a little after the sample's,
    e.g. 1780730269142 for a sample at 1780730269000); it defaults to the sample time.
    """
    return {
        "topic": rtds_topic(tick.source),
        "type": "update",
        "timestamp": tick.timestamp_ms if sent_ms is None else sent_ms,
        "payload": {
            "symbol": tick.symbol,
            "timestamp": tick.timestamp_ms,
            "value": float(tick.value),
            "full_accuracy_value": _full_accuracy(tick.value),
        },
    }


def to_rtds_snapshot(
    ticks: list[PriceTick] | deque[PriceTick], sent_ms: int, symbol: str, source: str = BINANCE
) -> dict[str, Any]:
    """The message the venue answers a `crypto_prices` subscription with: recent samples of one symbol."""
    return {
        "topic": rtds_topic(source),
        "type": "subscribe",
        "timestamp": sent_ms,
        "payload": {
            "symbol": symbol,
            "data": [{"timestamp": t.timestamp_ms, "value": float(t.value)} for t in ticks if t.symbol == symbol],
        },
    }


# --- the model quantity the markets are priced from --------------------------------------------


def normal_cdf(x: float) -> float:
    return 0.5 * (1.0 + math.erf(x / math.sqrt(2.0)))


def above_strike_probability(log_price: float, strike: float, tau_ms: int, params: FeedParams) -> float:
    """P(S_T > K) under the feed's volatility and jumps, T − t = `tau_ms`.

    ln S_T − ln S_t is taken as normal with mean −σ²τ/2 + λτ·m_J and variance σ²τ + λτ·(m_J² + s_J²): the
    jumps enter through their first two moments (a compound Poisson sum is not normal, but a fair value
    only has to be consistent and smooth). The trend `drift_per_day` is deliberately left out: it is
    news that arrives with the path, not something known in advance — priced in, a whole day's trend
    would sit in the very first quote. At or after expiry the answer is 0 or 1.
    """
    if tau_ms <= 0:
        return 1.0 if log_price > math.log(strike) else 0.0
    tau = tau_ms / DAY_MS
    sigma = params.vol_daily
    lam = params.jump_rate_per_day
    mean = -0.5 * sigma * sigma * tau + lam * tau * params.jump_mean
    var = sigma * sigma * tau + lam * tau * (params.jump_mean**2 + params.jump_std**2)
    if var <= 0:
        return 1.0 if log_price + mean > math.log(strike) else 0.0
    return normal_cdf((log_price - math.log(strike) + mean) / math.sqrt(var))
