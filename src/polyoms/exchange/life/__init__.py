"""Market life for the local exchange: a reference price feed, hidden fair values, background traders
and a deterministic scheduler that runs them on the injected clock (doc: architecture, exchange/).

    life = MarketLife.backtest(scenario("calm"), seed=7)
    life.run_until(life.start_ms + DAY_MS)
"""

from polyoms.exchange.life.agents import (
    AgentCancel,
    AgentDecision,
    AgentPlace,
    InformedParams,
    InformedTrader,
    LiquidityProvider,
    LPParams,
    NaiveParams,
    NaiveQuoter,
    NoiseParams,
    NoiseTaker,
    Observation,
)
from polyoms.exchange.life.crypto import CryptoConfig, CryptoMarkets, TermsValue
from polyoms.exchange.life.fair_value import AboveStrikeValue, LogitParams, LogitWalk
from polyoms.exchange.life.feed import DAY_MS, FeedParams, PriceFeed, PriceTick, to_rtds_message, to_rtds_snapshot
from polyoms.exchange.life.market import LifeStats, MarketLife
from polyoms.exchange.life.oracle import OracleFeed, OracleParams
from polyoms.exchange.life.population import CopyTrader, Identity, PoolParams
from polyoms.exchange.life.scenarios import SCENARIOS, Scenario, ScenarioUnavailableError, scenario

__all__ = [
    "DAY_MS",
    "SCENARIOS",
    "AboveStrikeValue",
    "AgentCancel",
    "AgentDecision",
    "AgentPlace",
    "CopyTrader",
    "CryptoConfig",
    "CryptoMarkets",
    "FeedParams",
    "Identity",
    "InformedParams",
    "InformedTrader",
    "LPParams",
    "LifeStats",
    "LiquidityProvider",
    "LogitParams",
    "LogitWalk",
    "MarketLife",
    "NaiveParams",
    "NaiveQuoter",
    "NoiseParams",
    "NoiseTaker",
    "Observation",
    "OracleFeed",
    "OracleParams",
    "PoolParams",
    "PriceFeed",
    "PriceTick",
    "Scenario",
    "ScenarioUnavailableError",
    "TermsValue",
    "scenario",
    "to_rtds_message",
    "to_rtds_snapshot",
]
