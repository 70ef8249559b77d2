"""The local exchange: a faithful, deterministic stand-in for Polymarket's CLOB V2.

The pure core lives here (markets, book, matching, fees, accounts, settlement, engine); servers sit on
top of it.
"""

from polyoms.exchange.engine import CancelResult, EngineOrder, Exchange, Resolution, SubmitResult
from polyoms.exchange.markets import MarketSpec, default_markets, load_markets
from polyoms.exchange.settlement import SettlementConfig

__all__ = [
    "CancelResult",
    "EngineOrder",
    "Exchange",
    "MarketSpec",
    "Resolution",
    "SettlementConfig",
    "SubmitResult",
    "default_markets",
    "load_markets",
]
