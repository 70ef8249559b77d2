"""Async REST clients for Polymarket: CLOB V2, Gamma and the Data API (architecture: polymarket/client).

Start with `ClientHub` (shared pools and per-IP limits), `hub.clob(wallet)` per `Wallet`, and
`MarketCatalog` for market parameters. WebSocket streams: `MarketStream` (mirrored books that are
trusted or say why not) and `UserStream` (our orders and trades, gaps backfilled exactly once).
"""

from polyoms.polymarket.client.book_trust import UntrustReason
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
from polyoms.polymarket.client.ws_common import (
    BackoffPolicy,
    StreamClosedError,
    StreamConnected,
    StreamDisconnected,
    StreamFailed,
    ws_url,
)
from polyoms.polymarket.client.ws_market import (
    BookTrusted,
    BookUntrusted,
    BookVerified,
    MarketStream,
    MarketStreamConfig,
)
from polyoms.polymarket.client.ws_user import (
    UserStream,
    UserStreamConfig,
    UserStreamGapped,
    UserStreamLive,
    UserStreamState,
    UserUpdate,
)

__all__ = [
    "SIGNER_TIERS",
    "BackoffPolicy",
    "BookTrusted",
    "BookUntrusted",
    "BookVerified",
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
    "MarketStream",
    "MarketStreamConfig",
    "MonotonicClock",
    "OrderOutcomeUnknownError",
    "RetryPolicy",
    "SignerTier",
    "StreamClosedError",
    "StreamConnected",
    "StreamDisconnected",
    "StreamFailed",
    "Timeouts",
    "UntrustReason",
    "UserStream",
    "UserStreamConfig",
    "UserStreamGapped",
    "UserStreamLive",
    "UserStreamState",
    "UserUpdate",
    "VirtualTimer",
    "Wallet",
    "ws_url",
]
