"""The local exchange: a faithful, deterministic stand-in for Polymarket's CLOB V2.

The pure core lives here (markets, book, matching, fees, accounts, engine); servers sit on top of it.
"""

from polyoms.exchange.engine import CancelResult, EngineOrder, Exchange, SubmitResult
from polyoms.exchange.markets import MarketSpec, default_markets, load_markets

__all__ = ["CancelResult", "EngineOrder", "Exchange", "MarketSpec", "SubmitResult", "default_markets", "load_markets"]
