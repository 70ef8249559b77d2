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


class OrderBody(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
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
    wait_ms: int = 0
    """Wait up to this long (at most MAX_WAIT_MS) for the venue's answer before answering: the answer's
    `order` then carries the outcome (refused, resting, filled, with fills and fees). 0: answer once the
    order is journaled and sent (its outcome in GET /v1/orders/{id}). Parent orders answer at once."""


MAX_WAIT_MS = 60_000


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
    max_spend: str | None = None
    """Market BUY: the most it spends in pUSD, taker fee included (the --amount asked for)."""
    fee_estimate: str | None = None
    """Market BUY: the taker fee reserved within `max_spend`, walked from the book it was priced on."""
    outcome: str = "sent"
    """What is known when the answer leaves: "sent" (no wait asked), "refused" (by the venue: `order.error`
    says why), "resting" (live on the book, maybe partly filled), "filled", "cancelled" (e.g. a FAK's
    unfilled rest), "expired", "pending" (no final answer within `wait_ms`: see GET /v1/orders/{id}),
    "started" (a parent order)."""
    order: OrderView | None = None
    """With `wait_ms`: the order as the OMS knows it at the answer (audit trail, fills, fees, error)."""
    kelly_size: str | None = None
    """With `kelly`: the shares Kelly sizing gave, before the --size cap."""


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
    size_unit: str = "shares"
    """What `size` and `filled` count: "shares", or "pUSD" for a market BUY sized by amount (it spends up
    to `size` pUSD on shares; `filled` is the pUSD spent, fees apart), as the venue reports such orders."""
    filled_shares: str = "0"
    """Shares bought or sold by the order's fills (not voided), whatever `size_unit` is."""
    avg_price: str | None = None
    """Average fill price: pUSD of the fills / their shares, half to even at a micro; None before a fill."""
    fees: str = "0"
    outcome: str = ""
    """The outcome (e.g. Yes, No) the token pays on, when the market is in the catalog."""
    question: str = ""
    """The market's question, when it is in the catalog."""


class OrderList(msgspec.Struct, frozen=True):
    orders: list[OrderView]


class CancelResult(msgspec.Struct, frozen=True):
    requested: list[str]
    note: str = ""
    parents_cancelled: int = 0
    """Parent orders (and other order sources) stopped by this cancel."""


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
    mark: str | None = None
    """Mark-to-market price: the mid of the best bid and ask of a trusted book (None: no two-sided book)."""
    market_value: str | None = None
    """Confirmed shares × mark."""
    unrealized: str | None = None
    """market_value − cost of the confirmed shares (fees included in the cost)."""
    liquidation_price: str | None = None
    """Where the confirmed shares would close now: the best bid for a long (the best ask for a short)."""
    liquidation_value: str | None = None
    """Confirmed shares × liquidation_price (top of book only: a large position may not fill there)."""
    liquidation_pnl: str | None = None
    """liquidation_value − cost."""


class PositionsView(msgspec.Struct, frozen=True):
    wallet: str
    cash: str
    reserved: str
    provisional_out: str
    provisional_in: str
    available: str
    realized: str
    positions: list[PositionView]
    unrealized: str = "0"
    """Σ unrealized of the positions with a mark."""
    market_value: str = "0"
    """Σ market_value of the positions with a mark."""
    liquidation_value: str = "0"
    """Σ liquidation_value of the positions that have one."""
    equity: str = "0"
    """cash + Σ market_value; a position without a mark counts at its cost (see `unmarked`)."""
    unmarked: list[str] = msgspec.field(default_factory=list)
    """Token ids of confirmed positions without a mark (no trusted two-sided book)."""


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
    """best_bid / best_ask: of the first token (YES). `bids` / `asks`: of every token, as `token_ids`."""
    bids: list[str | None] = msgspec.field(default_factory=list)
    asks: list[str | None] = msgspec.field(default_factory=list)


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
    interrupted: bool = False
    """A restart ended it (policy "interrupt", or it could not resume): `filled` is what its children filled."""
    restarts: int = 0
    """Daemon restarts that found it working (resumed or interrupted)."""


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
    stream_mode: str = "live"
    """Either "live" or "degraded-rest" (the user stream is down and the engine polls REST: oms/fallback.py)."""
    stream_mode_note: str = ""
    """While degraded: since when, how old the REST view is, and the admission policy (reduce-only)."""


class HistoryFill(msgspec.Struct, frozen=True):
    """One fill of the wallet (`polyoms history`): a leg of one trade, with its fee and tier."""

    time_ms: int
    """When the trade matched (the venue's match time, else when the OMS first saw it)."""
    trade_id: str
    order_id: str
    market: str
    outcome: str
    token_id: str
    side: str
    role: str
    price: str
    size: str
    cash: str
    """pUSD of the fill before its fee."""
    fee: str
    cash_delta: str
    """What it does to pUSD: a BUY pays cash + fee (negative), a SELL receives cash − fee."""
    status: str
    tier: str
    """PROVISIONAL, CONFIRMED or VOIDED (a voided fill moved nothing)."""


class MarketPnl(msgspec.Struct, frozen=True):
    """Per market: fills, volumes, fees and PnL by average cost over confirmed fills (the ledger's)."""

    market: str
    fills: int
    bought: str
    """Shares bought in confirmed fills."""
    sold: str
    buy_cash: str
    """pUSD paid for them, fees included."""
    sell_cash: str
    """pUSD received, net of fees."""
    fees: str
    realized: str
    position: str
    """Confirmed shares still held, all outcomes of the market."""
    cost: str
    unrealized: str | None
    """At the mid; None when a held outcome has no mark."""
    provisional: int
    """Fills not confirmed yet (not in the PnL until they are)."""
    voided: int


class HistoryView(msgspec.Struct, frozen=True):
    wallet: str
    fills: list[HistoryFill]
    markets: list[MarketPnl]
    realized: str
    fees: str
    truncated: int = 0
    """Older fills left out by `limit`."""


class EquityPointView(msgspec.Struct, frozen=True):
    ts_ms: int
    cash: str
    """Confirmed pUSD."""
    value: str
    """Confirmed positions at the marks of the time."""
    equity: str
    realized: str
    unrealized: str
    cause: str
    """What made the point: "balance", "repair" (a reconciliation), "fill" (a fill confirmed), "void" (one
    voided), "mark" (a new fill price), "now" (the live ledger at the current mids)."""


class PnlView(msgspec.Struct, frozen=True):
    wallet: str
    points: list[EquityPointView]
    method: str
    """How the points were taken (marks and sampling), in words."""
    start_equity: str
    end_equity: str
    change: str
    thinned: int = 0
    """Points left out to keep at most `max_points` (evenly; first and last kept)."""


def encode(obj: object) -> bytes:
    return msgspec.json.encode(obj)
