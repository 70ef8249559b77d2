"""Named scenarios: parameters for the feed, each market's fair value and the agents, plus scripted events.

A `Scenario` is data only. `MarketLife` (life.market) turns it into a running market on an exchange
that trades the scenario's markets (`scenario.specs()`); `MarketLife.backtest` builds both.

| name | what it exercises |
|---|---|
| calm | low volatility, no trend: liquidity providers earn the spread, quotes rarely get picked off |
| trending | a steady trend in the feed and in the event markets: informed flow keeps hitting one side |
| jump | frequent Poisson jumps: stale quotes are swept in bursts |
| thin | one small, wide, slow liquidity provider and little flow: wide spreads, gaps, slippage |
| tick_size_change | an event market drifts towards 1; at 8 h its tick goes 0.01 → 0.001 (`Exchange.change_tick_size`) |
| resolution | the event markets resolve at 20 h (`Exchange.resolve`) |
| crypto | BTC/ETH up/down (5m, 15m, 1h, 1d) and daily above-strike markets on a schedule (life.crypto) |

Scripted events that need an exchange feature the exchange does not have yet make `MarketLife` refuse
the scenario up front with a `ScenarioUnavailableError` naming the missing method, rather than fail
halfway through a day.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Final

from polyoms.core.errors import ConfigError
from polyoms.exchange.fees import NO_FEES, FeeCurve
from polyoms.exchange.life.agents import InformedParams, LPParams, NoiseParams
from polyoms.exchange.life.crypto import CRYPTO_FEE, CryptoConfig
from polyoms.exchange.life.fair_value import AboveStrikeParams, LogitParams
from polyoms.exchange.life.feed import DAY_MS, FeedParams
from polyoms.exchange.markets import MarketSpec, binary_market

HOUR_MS: Final = 3_600_000
__all__ = ["CRYPTO_FEE", "HOUR_MS", "SCENARIOS", "MarketPlan", "Population", "Scenario", "ScriptedEvent", "scenario"]

TICK_SIZE_EVENT: Final = "tick_size"
RESOLVE_EVENT: Final = "resolve"


class ScenarioUnavailableError(ConfigError):
    """The scenario scripts an exchange feature this exchange does not provide (yet)."""


@dataclass(frozen=True, slots=True)
class Population:
    """How many of each background trader a market gets, and their parameters."""

    noise: int = 3
    noise_params: NoiseParams = field(default_factory=NoiseParams)
    lps: int = 3
    lp_params: LPParams = field(default_factory=LPParams)
    informed: int = 1
    informed_params: InformedParams = field(default_factory=InformedParams)


@dataclass(frozen=True, slots=True)
class MarketPlan:
    """One market of a scenario: its spec and the model of its hidden fair value (exactly one of the two)."""

    spec: MarketSpec
    above_strike: AboveStrikeParams | None = None
    logit: LogitParams | None = None
    population: Population | None = None
    """Overrides the scenario's population for this market."""

    def __post_init__(self) -> None:
        if (self.above_strike is None) == (self.logit is None):
            raise ConfigError(f"market {self.spec.slug!r}: give exactly one of above_strike / logit")


@dataclass(frozen=True, slots=True)
class ScriptedEvent:
    """Something that happens to one market `at_ms` after the start.

    `tick_size`: `value` is the new tick ("0.001"). `resolve`: `value` is "YES", "NO" or "" (then the
    outcome is drawn from the hidden fair value at that moment — the feed against the strike for an
    above-strike market).
    """

    at_ms: int
    action: str
    market: str
    """The market's slug."""
    value: str = ""


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    description: str
    markets: tuple[MarketPlan, ...]
    feed: FeedParams = field(default_factory=FeedParams)
    population: Population = field(default_factory=Population)
    events: tuple[ScriptedEvent, ...] = ()
    duration_ms: int = DAY_MS
    crypto: CryptoConfig | None = None
    """Scheduled crypto markets (listed, started and resolved by the life itself, life.crypto)."""

    def __post_init__(self) -> None:
        slugs = [m.spec.slug for m in self.markets]
        if not slugs and self.crypto is None:
            raise ConfigError(f"scenario {self.name!r} has no markets")
        if len(set(slugs)) != len(slugs):
            raise ConfigError(f"scenario {self.name!r} has duplicate market slugs")
        for e in self.events:
            if e.market not in slugs:
                raise ConfigError(f"scenario {self.name!r}: event on unknown market {e.market!r}")
            if e.action not in (TICK_SIZE_EVENT, RESOLVE_EVENT):
                raise ConfigError(f"scenario {self.name!r}: unknown event {e.action!r}")

    def specs(self) -> tuple[MarketSpec, ...]:
        """The markets an exchange must trade for this scenario."""
        return tuple(m.spec for m in self.markets)

    def population_of(self, plan: MarketPlan) -> Population:
        return plan.population or self.population

    def only(self, *slugs: str) -> Scenario:
        """The same scenario on some of its markets only (events on the others dropped)."""
        unknown = set(slugs) - {m.spec.slug for m in self.markets}
        if unknown:
            raise ConfigError(f"scenario {self.name!r} has no market {sorted(unknown)}")
        keep = tuple(m for m in self.markets if m.spec.slug in slugs)
        return replace(self, markets=keep, events=tuple(e for e in self.events if e.market in slugs))

    def on_markets(self, specs: Iterable[MarketSpec]) -> Scenario:
        """The same scenario driving other markets (say an exchange's configured ones).

        A market with the slug of one of the scenario's keeps its plan; any other gets an event-market
        fair value (the scenario's first log-odds walk, or the default one) starting at a spread of
        values in [0.25, 0.75], so that the books do not all sit at one price. Events on markets that
        are not kept are dropped.
        """
        mine = {m.spec.slug: m for m in self.markets}
        template = next((m.logit for m in self.markets if m.logit is not None), None) or LogitParams()
        plans: list[MarketPlan] = []
        for i, spec in enumerate(specs):
            if spec.slug in mine:
                plans.append(replace(mine[spec.slug], spec=spec))
                continue
            # Golden-ratio steps spread the starts evenly whatever the number of markets.
            start = 0.25 + 0.5 * ((i * 0.6180339887) % 1.0)
            start = min(max(start, template.floor + 0.01), template.cap - 0.01)
            plans.append(MarketPlan(spec, logit=replace(template, start=start)))
        slugs = {p.spec.slug for p in plans}
        return replace(self, markets=tuple(plans), events=tuple(e for e in self.events if e.market in slugs))


# --- the named ones -------------------------------------------------------------------------------------


def btc_market(strike: int, *, fee: FeeCurve = CRYPTO_FEE, tick: str = "0.01") -> MarketSpec:
    return binary_market(
        f"life-btc-above-{strike}",
        f"Will BTC be above ${strike:,} at expiry?",
        tick=tick,
        fee=fee,
    )


def event_market(name: str, *, tick: str = "0.01", fee: FeeCurve = NO_FEES) -> MarketSpec:
    return binary_market(f"life-event-{name}", f"Will event {name} happen?", tick=tick, fee=fee)


def _standard_markets(
    feed: FeedParams,
    events: tuple[LogitParams, LogitParams],
    *,
    expiry_ms: int = 2 * DAY_MS,
) -> tuple[MarketPlan, ...]:
    """Two above-strike BTC markets (at and 2 % above the start price, crypto fees) and two event markets."""
    s0 = int(feed.start_price)
    k1 = s0 // 1000 * 1000
    k2 = int(s0 * 1.02) // 1000 * 1000
    return (
        MarketPlan(btc_market(k1), above_strike=AboveStrikeParams(strike=float(k1), expiry_ms=expiry_ms)),
        MarketPlan(event_market("alpha"), logit=events[0]),
        MarketPlan(btc_market(k2), above_strike=AboveStrikeParams(strike=float(k2), expiry_ms=expiry_ms)),
        MarketPlan(event_market("beta", tick="0.001"), logit=events[1]),
    )


def calm() -> Scenario:
    feed = FeedParams(vol_annual=0.30, jump_rate_per_day=0.5, jump_std=0.005)
    return Scenario(
        "calm",
        "Low volatility, no trend, rare small jumps.",
        _standard_markets(feed, (LogitParams(start=0.45, vol_per_day=0.35), LogitParams(start=0.6, vol_per_day=0.35))),
        feed=feed,
    )


def trending() -> Scenario:
    # A trend is news arriving in one direction: frequent small jumps the same way (about +3 %/day in BTC,
    # +4 log-odds/day in the event markets), which the informed know at once and liquidity providers
    # only after their estimate catches up.
    feed = FeedParams(vol_annual=0.40, jump_rate_per_day=6.0, jump_mean=0.003, jump_std=0.001)
    population = Population(informed_params=InformedParams(check_ms=2_000, clip=400.0, max_position=30_000.0))
    return Scenario(
        "trending",
        "Steady one-way news: BTC gains about 3 %/day in small jumps; one event market trends up, one down.",
        _standard_markets(
            feed,
            (
                LogitParams(start=0.2, vol_per_day=0.35, jump_rate_per_day=16.0, jump_mean=0.25, jump_std=0.05),
                LogitParams(start=0.8, vol_per_day=0.35, jump_rate_per_day=16.0, jump_mean=-0.25, jump_std=0.05),
            ),
        ),
        feed=feed,
        population=population,
    )


def jump() -> Scenario:
    feed = FeedParams(vol_annual=0.45, jump_rate_per_day=8.0, jump_std=0.02)
    return Scenario(
        "jump",
        "Frequent jumps: 8/day of ±2 % in BTC, 6/day of ±0.8 log-odds in the event markets.",
        _standard_markets(
            feed,
            (
                LogitParams(start=0.4, vol_per_day=0.4, jump_rate_per_day=6.0, jump_std=0.8),
                LogitParams(start=0.55, vol_per_day=0.4, jump_rate_per_day=6.0, jump_std=0.8),
            ),
        ),
        feed=feed,
    )


def thin() -> Scenario:
    feed = FeedParams(vol_annual=0.45, jump_rate_per_day=1.0, jump_std=0.01)
    population = Population(
        noise=1,
        noise_params=NoiseParams(rate_per_min=0.5, size_median=10.0),
        lps=1,
        lp_params=LPParams(
            requote_ms=45_000,
            half_spread=25_000,
            levels=2,
            level_step=20_000,
            size=15.0,
            lag_ms=900_000,
            react_ms=5_000,  # slow to refill after a hit, too (docs/realism.md)
            refill_ms=10_000,
        ),
        informed=1,
        informed_params=InformedParams(check_ms=20_000, clip=40.0),
    )
    return Scenario(
        "thin",
        "One small, wide, slow liquidity provider and little flow per market.",
        _standard_markets(feed, (LogitParams(start=0.35), LogitParams(start=0.65))),
        feed=feed,
        population=population,
    )


def tick_size_change() -> Scenario:
    feed = FeedParams(vol_annual=0.35)
    markets = (
        MarketPlan(event_market("edge"), logit=LogitParams(start=0.88, vol_per_day=0.4, drift_per_day=2.0, cap=0.985)),
        MarketPlan(event_market("alpha"), logit=LogitParams(start=0.5, vol_per_day=0.35)),
    )
    return Scenario(
        "tick_size_change",
        "An event market drifts towards 1; at 8 h its tick goes 0.01 → 0.001, as the venue does past 0.96.",
        markets,
        feed=feed,
        events=(ScriptedEvent(8 * HOUR_MS, TICK_SIZE_EVENT, "life-event-edge", "0.001"),),
    )


def resolution() -> Scenario:
    feed = FeedParams(vol_annual=0.45)
    return Scenario(
        "resolution",
        "The event markets resolve at 20 h from their hidden fair value; BTC markets trade on.",
        _standard_markets(
            feed, (LogitParams(start=0.3, drift_per_day=2.0), LogitParams(start=0.7, drift_per_day=-2.0))
        ),
        feed=feed,
        events=(
            ScriptedEvent(20 * HOUR_MS, RESOLVE_EVENT, "life-event-alpha"),
            ScriptedEvent(20 * HOUR_MS, RESOLVE_EVENT, "life-event-beta"),
        ),
    )


def crypto() -> Scenario:
    config = CryptoConfig()
    return Scenario(
        "crypto",
        "BTC and ETH up/down markets every 5 min, 15 min, hour and day plus daily above-strike markets, "
        "listed ahead, resolved on the Chainlink-like oracle; a pool of persistent traders.",
        (),
        feed=config.assets[0].feed,
        crypto=config,
        duration_ms=7 * DAY_MS,
    )


SCENARIOS: Final[dict[str, Callable[[], Scenario]]] = {
    "calm": calm,
    "trending": trending,
    "jump": jump,
    "thin": thin,
    "tick_size_change": tick_size_change,
    "resolution": resolution,
    "crypto": crypto,
}


def scenario(name: str) -> Scenario:
    """A named scenario (see the table in this module's docstring)."""
    try:
        return SCENARIOS[name]()
    except KeyError:
        raise ConfigError(f"unknown scenario {name!r}; known: {', '.join(SCENARIOS)}") from None
