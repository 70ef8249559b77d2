"""A resolution oracle: the Chainlink-like price a crypto market resolves on, derived from an exchange feed.

Polymarket's crypto up/down markets resolve on Chainlink's Data Streams price for the pair (the market
description names the "BTC/USD data stream", fixture `market_btc_updown_5m_2026-03.json`), which RTDS
relays on `crypto_prices_chainlink` with symbols like "btc/usd" — not on the Binance price that
`crypto_prices` carries and that traders watch. The two differ a little: the oracle aggregates many
venues (a small basis to any one of them) and reports a moment later (a lag).

Model. The oracle observes on its own grid (`check_ms`). At observation time s it sees the exchange
price as of s − `lag_ms`, times exp(basis), where the basis is a mean-reverting (Ornstein-Uhlenbeck)
walk in log-price with a stationary std of `basis_bps`. It publishes a report when the observed price
has moved by at least `deviation` (relative) since its last report, or when `heartbeat_ms` has passed
since it — the push-oracle rule; with a short heartbeat it behaves like the one-tick-a-second stream
RTDS relays. Only reports exist for the outside world: resolution reads them (`first_at_or_after`).

Determinism. The oracle advances the exchange feed itself (`advance_to` moves both), so the feed is
never ahead of the oracle by more than the lag, and the exchange price at s − lag is always in the
feed's recent samples; the basis has its own seeded stream. One seed → one pair of paths, whoever reads.
"""

from __future__ import annotations

import math
import random
from collections import deque
from dataclasses import dataclass
from typing import Final

from polyoms.exchange.life.feed import CHAINLINK, PriceFeed, PriceTick

BPS: Final = 1e-4


@dataclass(frozen=True, slots=True)
class OracleParams:
    """The resolution oracle's update rule and its distance to the exchange price.

    Every default is UNCONFIRMED: Chainlink does not publish the Data Streams DON's internal cadence,
    and what the venue relays was only observed by third parties ("about one tick a second" on RTDS
    `crypto_prices_chainlink`). The values give a report about every 1–2 s, a lag of about a second and a
    basis of a few basis points, which is the order of magnitude seen between Binance and Chainlink.
    """

    symbol: str = "btc/usd"
    """The oracle's symbol (RTDS `crypto_prices_chainlink` filter), lower case "base/quote"."""
    check_ms: int = 1_000
    """How often the oracle observes the market. UNCONFIRMED."""
    heartbeat_ms: int = 2_000
    """A report at least this often, moved or not. UNCONFIRMED."""
    deviation: float = 0.5 * BPS
    """A report as soon as the observed price has moved this much (relative) since the last one. UNCONFIRMED."""
    lag_ms: int = 1_200
    """The observation at s reflects the exchange price at s − lag. UNCONFIRMED."""
    basis_bps: float = 3.0
    """Stationary std of the log basis to the exchange price, in basis points. UNCONFIRMED."""
    basis_half_life_ms: int = 600_000
    """How fast the basis mean-reverts (its half-life). UNCONFIRMED."""
    decimals: int = 2
    history: int = 900
    """Reports kept: enough to find the first report at or after a window's start or end after a delay."""

    def __post_init__(self) -> None:
        if self.check_ms <= 0 or self.heartbeat_ms <= 0 or self.basis_half_life_ms <= 0:
            raise ValueError("oracle cadences must be positive")
        if self.lag_ms < 0 or self.deviation < 0 or self.basis_bps < 0:
            raise ValueError("oracle lag, deviation and basis must not be negative")


class OracleFeed:
    """The oracle's reports for one symbol, driven by (and driving) its exchange feed."""

    __slots__ = (
        "_a",
        "_basis",
        "_last_report_value",
        "_noise",
        "_rng",
        "_t",
        "feed",
        "last",
        "params",
        "recent",
    )

    def __init__(self, params: OracleParams, feed: PriceFeed, seed: int, start_ms: int) -> None:
        kept_ms = feed.params.history * feed.params.interval_ms
        if kept_ms < params.lag_ms + 2 * max(params.check_ms, feed.params.interval_ms):
            raise ValueError("the exchange feed keeps too little history for the oracle's lag")
        self.params = params
        self.feed = feed
        self._rng = random.Random(f"polyoms-life:oracle:{params.symbol}:{seed}")
        std = params.basis_bps * BPS
        self._a = math.exp(-math.log(2.0) * params.check_ms / params.basis_half_life_ms)
        self._noise = std * math.sqrt(1.0 - self._a * self._a)
        self._basis = self._rng.gauss(0.0, std) if std > 0 else 0.0
        self._t = start_ms - start_ms % params.check_ms
        value = self._observe(self._t)
        self.last = PriceTick(params.symbol, self._t, round(value, params.decimals), CHAINLINK)
        self._last_report_value = value
        self.recent: deque[PriceTick] = deque([self.last], maxlen=max(1, params.history))

    def _exchange_value(self, t_ms: int) -> float:
        """The exchange feed's price as of `t_ms` (the latest sample at or before it)."""
        feed = self.feed
        last = feed.last
        if last.timestamp_ms <= t_ms:
            return feed.advance_to(t_ms).value
        interval = feed.params.interval_ms
        back = (last.timestamp_ms - t_ms + interval - 1) // interval
        recent = feed.recent
        if back >= len(recent):
            # Before the feed's first sample: the start price.
            return recent[0].value
        return recent[-1 - back].value

    def _observe(self, t_ms: int) -> float:
        return self._exchange_value(t_ms - self.params.lag_ms) * math.exp(self._basis)

    @property
    def basis(self) -> float:
        """The current log basis to the exchange price (a model quantity; tests read it)."""
        return self._basis

    def advance_to(self, t_ms: int) -> PriceTick:
        """Observe every grid time ≤ `t_ms`, publishing reports by the rule; the feed follows to `t_ms`.

        Returns the latest report."""
        p = self.params
        step = p.check_ms
        t = self._t
        if t + step <= t_ms:
            gauss = self._rng.gauss
            a, noise = self._a, self._noise
            basis = self._basis
            dev, heartbeat, decimals, symbol = p.deviation, p.heartbeat_ms, p.decimals, p.symbol
            last_value = self._last_report_value
            last_ts = self.last.timestamp_ms
            recent = self.recent
            while t + step <= t_ms:
                t += step
                if noise:
                    basis = a * basis + noise * gauss(0.0, 1.0)
                self._basis = basis
                value = self._observe(t)
                if t - last_ts >= heartbeat or abs(value - last_value) >= dev * last_value:
                    tick = PriceTick(symbol, t, round(value, decimals), CHAINLINK)
                    recent.append(tick)
                    self.last = tick
                    last_value, last_ts = value, t
            self._last_report_value = last_value
            self._t = t
        self.feed.advance_to(t_ms)
        return self.last

    @property
    def log_price(self) -> float:
        """ln of the latest report's price (what the true probability is computed from)."""
        return math.log(self.last.value)

    def first_at_or_after(self, t_ms: int) -> PriceTick | None:
        """The first report with timestamp ≥ `t_ms` among those kept, None if none has come yet.

        This is the price an up/down window compares at its start and at its end. Call it after
        advancing past `t_ms` by at least a heartbeat."""
        found: PriceTick | None = None
        for tick in reversed(self.recent):
            if tick.timestamp_ms < t_ms:
                break
            found = tick
        return found

    def since(self, after_ms: int) -> list[PriceTick]:
        """Reports newer than `after_ms`, oldest first (at most `params.history` of them)."""
        out: list[PriceTick] = []
        for tick in reversed(self.recent):
            if tick.timestamp_ms <= after_ms:
                break
            out.append(tick)
        out.reverse()
        return out
