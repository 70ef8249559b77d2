"""Async REST clients for Polymarket: CLOB V2, Gamma and the Data API (architecture: polymarket/client).

Start with `ClientHub` (shared pools and per-IP limits), `hub.clob(wallet)` per `Wallet`, and
`MarketCatalog` for market parameters.
"""

from polyoms.polymarket.client.breaker import BreakerPolicy, BreakerState, CircuitBreaker
from polyoms.polymarket.client.catalog import MarketCatalog, MarketInfo
from polyoms.polymarket.client.clob import ClobClient
from polyoms.polymarket.client.errors import CircuitOpenError, OrderOutcomeUnknownError
from polyoms.polymarket.client.gamma import DataClient, GammaClient
from polyoms.polymarket.client.hub import ClientConfig, ClientHub
from polyoms.polymarket.client.ratelimit import SIGNER_TIERS, LimitsConfig, SignerTier
from polyoms.polymarket.client.rest import Timeouts
from polyoms.polymarket.client.retry import RetryPolicy
from polyoms.polymarket.client.timing import MonotonicClock, VirtualTimer
from polyoms.polymarket.client.wallet import Wallet

__all__ = [
    "SIGNER_TIERS",
    "BreakerPolicy",
    "BreakerState",
    "CircuitBreaker",
    "CircuitOpenError",
    "ClientConfig",
    "ClientHub",
    "ClobClient",
    "DataClient",
    "GammaClient",
    "LimitsConfig",
    "MarketCatalog",
    "MarketInfo",
    "MonotonicClock",
    "OrderOutcomeUnknownError",
    "RetryPolicy",
    "SignerTier",
    "Timeouts",
    "VirtualTimer",
    "Wallet",
]
