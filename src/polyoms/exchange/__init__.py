"""The local exchange: a faithful, deterministic stand-in for Polymarket's CLOB V2.

The pure core lives here (markets, book, matching, fees, accounts, settlement, engine); servers sit on
top of it.
"""

from polyoms.exchange.engine import EngineOrder, Exchange, ExchangeCancelResult, Resolution, SubmitResult
from polyoms.exchange.markets import MarketSpec, default_markets, load_markets
from polyoms.exchange.settlement import SettlementConfig

__all__ = [
    "EngineOrder",
    "Exchange",
    "ExchangeCancelResult",
    "MarketSpec",
    "Resolution",
    "SettlementConfig",
    "SubmitResult",
    "default_markets",
    "load_markets",
]
