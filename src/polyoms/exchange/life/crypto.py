"""Crypto markets on a schedule: up/down series (5 min, 15 min, hourly, daily) and daily above-strike markets.

The schedule is a pure function of time: every window of a series starts on its grid (5 min, 15 min
and hourly windows on the Unix-time grid, which is also the US-Eastern one for those lengths; daily
windows from noon ET to noon ET), is listed `lead_ms` before it starts, records its "price to beat"
from the resolution oracle at the start and resolves on the oracle at the end: Up wins when the end
price is greater than or equal to the start price (the venue's description, fixture
`market_btc_updown_5m_2026-03.json`). Both prices are the oracle's first report at or after the
moment. Above-strike markets resolve Yes when the oracle's end price is at or above the strike
(`markets.PriceTerms`).

This module holds the data (series, names, slugs, texts) and the probability models; `life.market`
runs it (`CryptoMarkets`).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Final
from zoneinfo import ZoneInfo

from polyoms.core.errors import NotFoundError
from polyoms.exchange.fees import FeeCurve
from polyoms.exchange.life.agents import (
    Agent,
    InformedParams,
    InformedTrader,
    LiquidityProvider,
    LPParams,
    NoiseParams,
    NoiseTaker,
)
from polyoms.exchange.life.fair_value import probability_to_micro
from polyoms.exchange.life.feed import DAY_MS, FeedParams, PriceFeed, above_strike_probability
from polyoms.exchange.life.oracle import OracleFeed, OracleParams
from polyoms.exchange.life.population import (
    COPY,
    INFORMED,
    LP,
    WHALE,
    CopyTrader,
    Identity,
    PoolParams,
    assign,
    funding_of,
    pool_names,
)
from polyoms.exchange.markets import ABOVE, UP_DOWN, MarketSpec, PriceTerms, binary_market

if TYPE_CHECKING:
    from polyoms.exchange.life.market import AgentSlot, MarketLife

CRYPTO_FEE: Final = FeeCurve("0.07", 1)
"""The venue's crypto-category taker fee (doc §7.3)."""
ET: Final = ZoneInfo("America/New_York")
MINUTE_MS: Final = 60_000
HOUR_MS: Final = 3_600_000
WINDOW_MS: Final = {"5m": 5 * MINUTE_MS, "15m": 15 * MINUTE_MS, "1h": HOUR_MS, "1d": DAY_MS}
LEAD_MS: Final = {"5m": DAY_MS, "15m": DAY_MS, "1h": DAY_MS, "1d": 2 * DAY_MS, "above": DAY_MS}
"""How long before its start a market is listed. 5m: the fixture's market was created about 24 h before
its window; the others are UNCONFIRMED."""
# The agents of a short crypto market: quicker than the event-market defaults, funded by the pool.
CRYPTO_LP: Final = LPParams(requote_ms=15_000, lag_ms=20_000, size=40.0, sets=0.0, max_position=1_500.0)
CRYPTO_INFORMED: Final = InformedParams(check_ms=5_000, clip=100.0, max_position=2_000.0)
CRYPTO_WHALE: Final = InformedParams(check_ms=60_000, edge=30_000, clip=1_500.0, max_position=10_000.0)
CRYPTO_NOISE: Final = NoiseParams(rate_per_min=1.0)
DAILY_HOUR_ET: Final = 12
"""Daily windows (up/down and above-strike) run noon ET to noon ET. UNCONFIRMED."""


@dataclass(frozen=True, slots=True)
class CryptoAsset:
    """One underlying: its names, its exchange-price feed and its resolution oracle."""

    key: str
    """Slug prefix: "btc"."""
    name: str
    """In titles: "Bitcoin"."""
    feed: FeedParams
    oracle: OracleParams
    strike_step: int
    """Above-strike markets use strikes on this grid (dollars)."""


def btc() -> CryptoAsset:
    return CryptoAsset(
        "btc",
        "Bitcoin",
        FeedParams(symbol="btcusdt", start_price=61_000.0, vol_annual=0.50, jump_rate_per_day=1.0, spread=0.01),
        OracleParams(symbol="btc/usd"),
        1_000,
    )


def eth() -> CryptoAsset:
    return CryptoAsset(
        "eth",
        "Ethereum",
        FeedParams(symbol="ethusdt", start_price=3_000.0, vol_annual=0.65, jump_rate_per_day=1.0, spread=0.01),
        OracleParams(symbol="eth/usd"),
        50,
    )


@dataclass(frozen=True, slots=True)
class CryptoConfig:
    """What the `crypto` scenario lists and who trades it."""

    assets: tuple[CryptoAsset, ...] = field(default_factory=lambda: (btc(), eth()))
    windows: tuple[str, ...] = ("5m", "15m", "1h", "1d")
    above_strikes: int = 3
    """Daily above-strike markets per asset: the strike nearest spot at listing and one step either side."""
    lead_ms: dict[str, int] = field(default_factory=lambda: dict(LEAD_MS))
    capture_delay_ms: int = 3_000
    """How long after a window's start / end the price is read (at least the oracle's heartbeat, so the
    first report at or after the moment exists)."""
    pool: PoolParams = field(default_factory=PoolParams)
    fee: FeeCurve = CRYPTO_FEE


# --- the schedule ------------------------------------------------------------------------------------


def _noon_et_on_or_after(t_ms: int) -> int:
    d = dt.datetime.fromtimestamp(t_ms / 1000, ET).date()
    while True:
        noon = int(dt.datetime(d.year, d.month, d.day, DAILY_HOUR_ET, tzinfo=ET).timestamp() * 1000)
        if noon >= t_ms:
            return noon
        d += dt.timedelta(days=1)


def next_start(window: str, t_ms: int) -> int:
    """The first window start at or after `t_ms`."""
    if window == "1d" or window == "above":
        return _noon_et_on_or_after(t_ms)
    w = WINDOW_MS[window]
    return -(-t_ms // w) * w


def window_end(window: str, start_ms: int) -> int:
    if window == "1d" or window == "above":
        # The next noon ET (23 or 25 h across a daylight-saving change).
        return _noon_et_on_or_after(start_ms + 1)
    return start_ms + WINDOW_MS[window]


def window_starts(window: str, from_ms: int, until_ms: int) -> Iterator[int]:
    """Starts in [from_ms, until_ms), in order."""
    s = next_start(window, from_ms)
    while s < until_ms:
        yield s
        s = next_start(window, s + 1)


# --- names and texts ---------------------------------------------------------------------------------


def _et(t_ms: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(t_ms / 1000, ET)


def _clock(d: dt.datetime, minutes: bool = True) -> str:
    h = d.hour % 12 or 12
    ampm = "AM" if d.hour < 12 else "PM"
    return f"{h}:{d.minute:02d}{ampm}" if minutes else f"{h}{ampm}"


def _day(d: dt.datetime) -> str:
    return f"{d.strftime('%B')} {d.day}"


def _iso(t_ms: int) -> str:
    return dt.datetime.fromtimestamp(t_ms / 1000, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def updown_slug(asset: CryptoAsset, window: str, start_ms: int) -> str:
    """5m: `btc-updown-5m-<unix start seconds>` (fixture). 15m the same shape; hourly and daily in the
    venue's wordy form — UNCONFIRMED for those three."""
    if window in ("5m", "15m"):
        return f"{asset.key}-updown-{window}-{start_ms // 1000}"
    d = _et(start_ms)
    if window == "1h":
        return f"{asset.name.lower()}-up-or-down-{d.strftime('%B').lower()}-{d.day}-{_clock(d, False).lower()}-et"
    return f"{asset.name.lower()}-up-or-down-on-{d.strftime('%B').lower()}-{d.day}"


def updown_title(asset: CryptoAsset, window: str, start_ms: int, end_ms: int) -> str:
    """5m/15m: "Bitcoin Up or Down - March 12, 5:20AM-5:25AM ET" (fixture); hourly/daily UNCONFIRMED."""
    d = _et(start_ms)
    if window in ("5m", "15m"):
        return f"{asset.name} Up or Down - {_day(d)}, {_clock(d)}-{_clock(_et(end_ms))} ET"
    if window == "1h":
        return f"{asset.name} Up or Down - {_day(d)}, {_clock(d, False)} ET"
    return f"{asset.name} Up or Down on {_day(_et(end_ms))}?"


def _source_sentence(asset: CryptoAsset) -> str:
    pair = asset.oracle.symbol.upper()
    url = f"https://data.chain.link/streams/{asset.oracle.symbol.replace('/', '-')}"
    return (
        f"The resolution source for this market is information from Chainlink, specifically the {pair} data "
        f"stream available at {url}.\nPlease note that this market is about the price according to Chainlink "
        f"data stream {pair}, not according to other sources or spot markets."
    )


def updown_description(asset: CryptoAsset) -> str:
    return (
        f'This market will resolve to "Up" if the {asset.name} price at the end of the time range specified in '
        "the title is greater than or equal to the price at the beginning of that range. Otherwise, it will "
        'resolve to "Down".\n' + _source_sentence(asset)
    )


def updown_spec(asset: CryptoAsset, window: str, start_ms: int, config: CryptoConfig) -> MarketSpec:
    end = window_end(window, start_ms)
    slug = updown_slug(asset, window, start_ms)
    spec = binary_market(
        slug,
        updown_title(asset, window, start_ms, end),
        fee=config.fee,
        outcomes=("Up", "Down"),
        end_date_iso=_iso(end),
        description=updown_description(asset),
    )
    terms = PriceTerms(asset.oracle.symbol, UP_DOWN, window, start_ms, end)
    return spec.with_flags(
        category="crypto", terms=terms, event_slug=slug, created_ms=start_ms - config.lead_ms[window]
    )


def above_strikes(asset: CryptoAsset, spot: float, n: int) -> list[int]:
    """`n` strikes on the asset's grid centred on the one nearest `spot`."""
    step = asset.strike_step
    mid = round(spot / step) * step
    return [mid + (i - n // 2) * step for i in range(n) if mid + (i - n // 2) * step > 0]


def above_specs(asset: CryptoAsset, start_ms: int, spot: float, config: CryptoConfig) -> list[MarketSpec]:
    """The daily "above K" markets of one day (the event's slug and titles UNCONFIRMED)."""
    end = window_end("above", start_ms)
    d = _et(end)
    month = d.strftime("%B")
    event_slug = f"{asset.name.lower()}-above-on-{month.lower()}-{d.day}"
    out: list[MarketSpec] = []
    for k in above_strikes(asset, spot, config.above_strikes):
        slug = f"{asset.name.lower()}-above-{k}-on-{month.lower()}-{d.day}"
        spec = binary_market(
            slug,
            f"Will the price of {asset.name} be above ${k:,} on {month} {d.day}?",
            fee=config.fee,
            end_date_iso=_iso(end),
            description=(
                f'This market will resolve to "Yes" if the {asset.name} price at {_clock(d)} ET on {month} {d.day} '
                f'is at or above ${k:,}. Otherwise, it will resolve to "No".\n' + _source_sentence(asset)
            ),
        )
        terms = PriceTerms(asset.oracle.symbol, ABOVE, "1d", start_ms, end, str(k))
        out.append(
            spec.with_flags(
                category="crypto", terms=terms, event_slug=event_slug, created_ms=start_ms - config.lead_ms["above"]
            )
        )
    return out


# --- probabilities -----------------------------------------------------------------------------------


class TermsValue:
    """P(price at `end_ms` ≥ `strike`) from one view of the price: the oracle's reports (the truth,
    what informed traders see) or the exchange feed (what a user sees). `skill` < 1 blends the truth
    with the exchange view: an informed trader with a weaker signal."""

    __slots__ = ("_cached_at", "_cached_feed", "_cached_p", "end_ms", "log_strike", "oracle", "skill")

    def __init__(self, oracle: OracleFeed, strike: float, end_ms: int, skill: float = 1.0) -> None:
        self.oracle = oracle
        self.log_strike = math.log(strike)
        self.end_ms = end_ms
        self.skill = skill
        self._cached_at = -1
        self._cached_feed = -1
        self._cached_p = 0.5

    def probability_at(self, t_ms: int) -> float:
        oracle = self.oracle
        oracle.advance_to(t_ms)
        # Recomputed only when a price it reads has a new sample.
        at, feed_at = oracle.last.timestamp_ms, oracle.feed.last.timestamp_ms
        if at == self._cached_at and feed_at == self._cached_feed:
            return self._cached_p
        params = oracle.feed.params
        strike = math.exp(self.log_strike)
        tau = self.end_ms - t_ms
        p = 0.0
        if self.skill > 0:
            p = self.skill * above_strike_probability(oracle.log_price, strike, tau, params)
        if self.skill < 1:
            p += (1 - self.skill) * above_strike_probability(oracle.feed.log_price, strike, tau, params)
        self._cached_at, self._cached_feed, self._cached_p = at, feed_at, p
        return p

    def value_at(self, t_ms: int) -> int:
        return probability_to_micro(self.probability_at(t_ms))


# --- the runtime ---------------------------------------------------------------------------------------


def first_listing(config: CryptoConfig, start_ms: int) -> MarketSpec:
    """One market the schedule lists at `start_ms` (an exchange needs at least one to be built)."""
    window = config.windows[0]
    return updown_spec(config.assets[0], window, next_start(window, start_ms), config)


class LiveMarket:
    """A listed crypto market that has not resolved yet, and the agents trading it."""

    __slots__ = ("asset", "slots", "spec", "started")

    def __init__(self, spec: MarketSpec, asset: CryptoAsset) -> None:
        self.spec = spec
        self.asset = asset
        self.slots: list[AgentSlot] = []
        self.started = False


class CryptoMarkets:
    """Lists, starts and resolves the scheduled crypto markets of a `MarketLife`, and staffs each from
    the identity pool. Memory stays bounded: a resolved market's agents are dropped from the life."""

    def __init__(self, life: MarketLife, config: CryptoConfig) -> None:
        from polyoms.exchange.life.market import agent_address  # market imports this module

        self.life = life
        self.config = config
        self.oracles: dict[str, OracleFeed] = {}
        for asset in config.assets:
            feed = PriceFeed(asset.feed, life.seed, life.start_ms)
            self.oracles[asset.key] = OracleFeed(asset.oracle, feed, life.seed, life.start_ms)
        self.pool: tuple[Identity, ...] = tuple(
            Identity(name, agent_address(name), kind, skill, leader)
            for name, kind, skill, leader in pool_names(config.pool)
        )
        self.live: dict[str, LiveMarket] = {}
        self.records: dict[str, tuple[float, float, bool]] = {}
        """Condition id → (start or strike price, end price, Up/Yes won) for every market resolved here."""

    @property
    def first_feed(self) -> PriceFeed:
        return next(iter(self.oracles.values())).feed

    def sources(self) -> list[PriceFeed | OracleFeed]:
        """Every published price stream: each exchange feed, then each oracle."""
        out: list[PriceFeed | OracleFeed] = [o.feed for o in self.oracles.values()]
        out += list(self.oracles.values())
        return out

    def advance(self, t_ms: int) -> None:
        for oracle in self.oracles.values():
            oracle.advance_to(t_ms)

    # --- schedule ------------------------------------------------------------------------------------

    def start(self, now: int, *, fund: bool) -> None:
        """Fund the pool (a fresh life), list what the schedule has listed by `now`, schedule the rest."""
        life = self.life
        if fund:
            for ident in self.pool:
                life.exchange.fund(ident.address, funding_of(self.config.pool, ident.kind))
        self.advance(now)
        series = [*self.config.windows, *(["above"] if self.config.above_strikes > 0 else [])]
        for asset in self.config.assets:
            for window in series:
                lead = self.config.lead_ms[window]
                longest = WINDOW_MS.get(window, DAY_MS) + 2 * HOUR_MS + self.config.capture_delay_ms
                for s in window_starts(window, now - longest, now + lead + 1):
                    if s - lead > now:
                        life.schedule(s - lead, self._lister(asset, window, s))
                        break
                    if window_end(window, s) + self.config.capture_delay_ms > now:
                        self._list(asset, window, s, now)
                else:
                    s = next_start(window, now + lead + 1)
                    life.schedule(s - lead, self._lister(asset, window, s))

    def _lister(self, asset: CryptoAsset, window: str, start_ms: int) -> Callable[[int], None]:
        def run(now: int) -> None:
            self._list(asset, window, start_ms, now)
            s = next_start(window, start_ms + 1)
            self.life.schedule(s - self.config.lead_ms[window], self._lister(asset, window, s))

        return run

    def _list(self, asset: CryptoAsset, window: str, start_ms: int, now: int) -> None:
        ex = self.life.exchange
        if window == "above":
            oracle = self.oracles[asset.key]
            oracle.advance_to(now)
            wanted = above_specs(asset, start_ms, oracle.last.value, self.config)
            # Strikes come from the spot at listing: a resumed life finds the ones listed before it stopped.
            event = wanted[0].event_slug if wanted else ""
            listed = [m for m in ex.markets() if event and m.event_slug == event and m.terms and m.terms.kind == ABOVE]
            if listed:
                wanted = listed
        else:
            wanted = [updown_spec(asset, window, start_ms, self.config)]
        for spec in wanted:
            cid = spec.condition_id.lower()
            if cid in self.live:
                continue
            try:
                spec = ex.market(cid)
            except NotFoundError:
                ex.add_market(spec)
            if spec.resolved:
                continue
            self.live[cid] = LiveMarket(spec, asset)
            assert spec.terms is not None
            delay = self.config.capture_delay_ms
            self.life.schedule(max(spec.terms.start_ms + delay, now), self._starter(cid))
            self.life.schedule(max(spec.terms.end_ms + delay, now), self._ender(cid))

    def _starter(self, cid: str) -> Callable[[int], None]:
        return lambda now: self._start_market(cid, now)

    def _ender(self, cid: str) -> Callable[[int], None]:
        return lambda now: self._end_market(cid, now)

    # --- start, staffing, end --------------------------------------------------------------------------

    def _start_market(self, cid: str, now: int) -> None:
        lm = self.live.get(cid)
        if lm is None or lm.started:
            return
        life = self.life
        oracle = self.oracles[lm.asset.key]
        oracle.advance_to(now)
        spec = life.exchange.market(cid)
        terms = spec.terms
        assert terms is not None
        if terms.kind == UP_DOWN and not terms.strike:
            # The price to beat: the oracle's first report at or after the window's start.
            tick = oracle.first_at_or_after(terms.start_ms) or oracle.last
            terms = replace(terms, strike=f"{tick.value:.{oracle.params.decimals}f}")
            book = life.exchange.books[cid]
            book.spec = spec = book.spec.with_flags(terms=terms)
        lm.spec = spec
        lm.started = True
        if now >= terms.end_ms:
            return
        strike = float(terms.strike)
        life.fair[cid] = TermsValue(oracle, strike, terms.end_ms, 1.0)
        if life.background:
            self._staff(lm, oracle, strike, terms.end_ms)

    def _staff(self, lm: LiveMarket, oracle: OracleFeed, strike: float, end_ms: int) -> None:
        life, pool = self.life, self.config.pool
        spec = lm.spec
        by_name: dict[str, AgentSlot] = {}
        chosen = assign(self.pool, pool, spec.slug, life.seed)
        for ident in chosen:
            name = f"{ident.name}@{spec.slug}"
            rng = life.rng_for(name)
            agent: Agent
            skill = 0.0
            if ident.kind == LP:
                agent = LiquidityProvider(name, rng, CRYPTO_LP)
            elif ident.kind == INFORMED:
                agent, skill = InformedTrader(name, rng, CRYPTO_INFORMED), ident.skill
            elif ident.kind == WHALE:
                agent, skill = InformedTrader(name, rng, CRYPTO_WHALE), ident.skill
            elif ident.kind == COPY:
                agent = CopyTrader(name, rng, pool.copy_delay_ms, pool.copy_ratio)
            else:
                agent = NoiseTaker(name, rng, CRYPTO_NOISE)
            slot = life.add_agent(
                agent, spec.condition_id, fund=False, identity=ident, fair=TermsValue(oracle, strike, end_ms, skill)
            )
            lm.slots.append(slot)
            by_name[ident.name] = slot
        for slot in lm.slots:
            who = slot.identity
            if who is not None and who.kind == COPY and who.leader in by_name:
                by_name[who.leader].followers.append(slot)

    def _end_market(self, cid: str, now: int) -> None:
        lm = self.live.get(cid)
        if lm is None:
            return
        life = self.life
        oracle = self.oracles[lm.asset.key]
        oracle.advance_to(now)
        if not lm.started:
            self._start_market(cid, now)
        spec = life.exchange.market(cid)
        terms = spec.terms
        assert terms is not None
        tick = oracle.first_at_or_after(terms.end_ms)
        if tick is None:
            life.schedule(now + oracle.params.check_ms, self._ender(cid))
            return
        reference = float(terms.strike)
        yes = tick.value >= reference  # Up wins ties (the venue's "greater than or equal to")
        life.resolutions[cid] = yes
        self.records[cid] = (reference, tick.value, yes)
        if not spec.resolved:
            life.exchange.resolve(spec.condition_id, spec.yes_token_id if yes else spec.no_token_id)
        life.drop_slots(lm.slots)
        life.fair.pop(cid, None)
        del self.live[cid]
