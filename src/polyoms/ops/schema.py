"""The control API's JSON shapes, shared by the daemon (server) and the CLI (client).

Money and sizes travel as decimal strings (exact, never float); inside the daemon they are integer
micro-units. Requests refuse unknown fields, so a misspelt option is an error instead of a default.
"""

from __future__ import annotations

import msgspec

API_PREFIX = "/v1"


class KellyRequest(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """Size the order by the Kelly criterion: `prob` is your probability that the token pays out."""

    prob: str
    fraction: str = "0.25"
    """Fraction of full Kelly to bet (full Kelly is rarely wise)."""
    bankroll: str | None = None
    """pUSD to size against; default: the wallet's available pUSD."""


class OrderRequest(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    token_id: str
    side: str
    kind: str = "limit"
    """limit | market."""
    price: str | None = None
    """Limit price; for a market order the worst acceptable price (default: walked from the book)."""
    size: str | None = None
    """Shares (limit orders, market SELL)."""
    amount: str | None = None
    """pUSD to spend (market BUY)."""
    order_type: str | None = None
    """GTC / GTD (limit, default GTC), FOK / FAK (market, default FOK)."""
    post_only: bool = False
    expiration: int = 0
    """GTD expiry, unix seconds."""
    algo: str | None = None
    """iceberg | adaptive | micro-price: a parent order run by the execution algorithms."""
    algo_params: dict[str, str] = msgspec.field(default_factory=dict)
    kelly: KellyRequest | None = None
    confirm: bool = False
    """Required above the risk config's confirm_above notional."""


class OrderAccepted(msgspec.Struct, frozen=True):
    kind: str
    order_id: str | None = None
    parent_id: str | None = None
    side: str = ""
    token_id: str = ""
    price: str | None = None
    size: str | None = None
    amount: str | None = None
    order_type: str | None = None
    note: str = ""


class ErrorView(msgspec.Struct, frozen=True):
    error: str
    """The typed error's class name (e.g. InvalidPriceError)."""
    message: str
    source: str = "local"


class AuditView(msgspec.Struct, frozen=True):
    ts_ms: int
    kind: str
    from_state: str | None
    to_state: str
    reason: str
    actor: str
    seq: int


class FillView(msgspec.Struct, frozen=True):
    trade_id: str
    side: str
    role: str
    price: str
    size: str
    fee: str
    status: str
    tier: str
    match_time: int | None


class OrderView(msgspec.Struct, frozen=True):
    order_id: str
    state: str
    done: bool
    side: str
    token_id: str
    market: str
    order_type: str
    price: str
    size: str
    filled: str
    post_only: bool
    pending_cancel: bool
    created_ms: int
    actor: str
    error: ErrorView | None = None
    history: list[AuditView] = msgspec.field(default_factory=list)
    fills: list[FillView] = msgspec.field(default_factory=list)


class OrderList(msgspec.Struct, frozen=True):
    orders: list[OrderView]


class CancelResult(msgspec.Struct, frozen=True):
    requested: list[str]
    note: str = ""


class PositionView(msgspec.Struct, frozen=True):
    token_id: str
    market: str
    outcome: str
    confirmed: str
    provisional_in: str
    provisional_out: str
    reserved: str
    sellable: str
    total: str
    avg_price: str | None
    realized: str
    fees: str


class PositionsView(msgspec.Struct, frozen=True):
    wallet: str
    cash: str
    reserved: str
    provisional_out: str
    provisional_in: str
    available: str
    realized: str
    positions: list[PositionView]


class StopRequest(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    emergency: bool = False
    reason: str = "operator"


class StopResult(msgspec.Struct, frozen=True):
    admission: str
    """closed | open | shutting down."""
    cancel_requested: int = 0
    parents_cancelled: int = 0
    note: str = ""


class MarketView(msgspec.Struct, frozen=True):
    condition_id: str
    question: str
    slug: str
    outcomes: list[str]
    token_ids: list[str]
    tick: str | None
    min_order_size: str | None
    neg_risk: bool | None
    accepting_orders: bool | None
    best_bid: str | None = None
    best_ask: str | None = None


class MarketList(msgspec.Struct, frozen=True):
    markets: list[MarketView]
    source: str


class ParentView(msgspec.Struct, frozen=True):
    parent_id: str
    algo: str
    state: str
    done: bool
    side: str
    token_id: str
    target: str
    filled: str
    children: list[str]
    detail: dict[str, str] = msgspec.field(default_factory=dict)


class ParentList(msgspec.Struct, frozen=True):
    parents: list[ParentView]


class StatusView(msgspec.Struct, frozen=True):
    venue: str
    venue_url: str
    wallet: str
    signer: str
    admission_open: bool
    admission_errors: list[str]
    open_orders: int
    orders: int
    user_stream: str
    started_ms: int
    pid: int
    algos: bool
    engine: dict[str, int]


def encode(obj: object) -> bytes:
    return msgspec.json.encode(obj)
