"""The Venue port: what the OMS asks of a venue, and the venue-neutral types it speaks.

Everything here is the domain's vocabulary; an adapter (`polyoms.venues.*`) translates its venue's wire
types to and from it, signs what must be signed, and maps its statuses to these enums in one place.

Contract
* `prepare(request, instrument)`: build (and for Polymarket sign) one order; returns a `PreparedOrder`
  whose `key` is the venue's exactly-once key (Polymarket: the order hash, which is also the venue's id;
  a venue with client order ids: the client id). The OMS journals the intent under that key before
  `submit` sends anything, and never sends a key twice.
* `submit(orders)`: at most `MAX_BATCH` prepared orders, each sent at most once (never retried here).
  One `SubmitOutcome` per order in request order: an `Ack`, a typed refusal, or `unknown` (timeout, 5xx,
  unreadable answer: the order may or may not rest; the OMS resolves it from evidence).
* `cancel(orders)` takes `OrderRef`s (our key and the venue's own id, learned from its acknowledgement)
  and answers with `canceled` / `not_canceled` keys.
* queries return the venue's truth as reports (`OrderReport`, `TradeEvent`), keyed by our keys.
* user events (`OrderEvent` / `TradeEvent`, `core.user_events`) go to the sink set with `set_user_sink`.
* `settlement` says whether a fill is provisional until settled (on chain) or final at once.
* `expiry_lead_s`: how long before the expiration it signs the venue ends a GTD order (Polymarket: 60 s;
  0 where an order ends when it says); the adapter adds it to `OrderRequest.expiration` when signing.
* `heartbeat()` keeps the venue's dead-man switch alive (a no-op where there is none); raises on failure.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from enum import StrEnum
from typing import Any, Final, Protocol

import msgspec

from polyoms.core.enums import OrderType, Side
from polyoms.core.errors import InvalidPriceError, PolyomsError
from polyoms.core.units import MICRO, Micro, TickSize, fmt_micro
from polyoms.core.user_events import OrderEvent, OrderEventType, OrderStatus, TradeEvent

MAX_BATCH: Final = 15
"""Most orders one `submit` takes (Polymarket's POST /orders limit; adapters split nothing)."""

MIN_NOTIONAL: Final = MICRO
"""An instrument's smallest marketable BUY unless its venue says otherwise (Polymarket: $1)."""

UserEvent = OrderEvent | TradeEvent
UserSink = Callable[[UserEvent], None]


# --- instruments -----------------------------------------------------------------------------------


class PriceBand(msgspec.Struct, frozen=True):
    """Prices `start` .. `end` (inclusive, micro-units) in steps of `step`."""

    start: Micro
    end: Micro
    step: Micro


class PriceGrid(msgspec.Struct, frozen=True):
    """The prices a venue accepts, as bands: one band for Polymarket's uniform ticks (0.1 … 0.0001),
    several for a venue whose tick changes with the price (Kalshi's `price_ranges`)."""

    bands: tuple[PriceBand, ...]

    @classmethod
    def uniform(cls, tick: TickSize) -> PriceGrid:
        return _uniform(tick)

    @property
    def min_price(self) -> Micro:
        return self.bands[0].start

    @property
    def max_price(self) -> Micro:
        return self.bands[-1].end

    def on_grid(self, price: Micro) -> bool:
        return any(b.start <= price <= b.end and (price - b.start) % b.step == 0 for b in self.bands)

    def step_at(self, price: Micro) -> Micro:
        """The tick around `price` (the finer one on a band boundary)."""
        steps = [b.step for b in self.bands if b.start <= price <= b.end]
        return min(steps) if steps else self.bands[0 if price < self.min_price else -1].step

    def round_down(self, price: Micro) -> Micro:
        for b in reversed(self.bands):
            if price >= b.start:
                return min(b.end, price - (price - b.start) % b.step)
        return self.min_price

    def round_up(self, price: Micro) -> Micro:
        for b in self.bands:
            if price <= b.end:
                if price <= b.start:
                    return b.start
                return price + (-(price - b.start)) % b.step
        return self.max_price

    def clamp(self, price: Micro) -> Micro:
        """`price` moved into [min_price, max_price] (not snapped to the grid)."""
        return min(max(price, self.min_price), self.max_price)

    def round_nearest(self, price: Micro) -> Micro:
        """The nearest grid price; a tie goes to the even multiple of the step between the two (half-to-even,
        as `TickSize.round_nearest`), and a price beyond the grid to its end."""
        down, up = self.round_down(price), self.round_up(price)
        if down == up:  # on the grid, or beyond one of its ends
            return down
        twice, gap = 2 * (price - down), up - down
        return up if twice > gap or (twice == gap and (down // gap) % 2 == 1) else down

    def next_above(self, price: Micro) -> Micro:
        """The first grid price above `price` (`max_price` when there is none): one step up."""
        return self.round_up(price + 1)

    def next_below(self, price: Micro) -> Micro:
        """The last grid price below `price` (`min_price` when there is none): one step down."""
        return self.round_down(price - 1)

    def __str__(self) -> str:
        return ", ".join(f"{fmt_micro(b.start)}..{fmt_micro(b.end)} by {fmt_micro(b.step)}" for b in self.bands)

    def check(self, price: Micro, **ctx: Any) -> None:
        """InvalidPriceError unless `price` is on the grid."""
        if not self.on_grid(price):
            raise InvalidPriceError(
                f"price {fmt_micro(price)} is not on the market's price grid ({self})",
                price=fmt_micro(price),
                **ctx,
            )


@functools.cache
def _uniform(tick: TickSize) -> PriceGrid:
    # One grid per tick size (there are four): instruments and the algorithms ask for it on every price.
    return PriceGrid((PriceBand(tick.micro, MICRO - tick.micro, tick.micro),))


class Instrument(msgspec.Struct, frozen=True):
    """One tradable outcome token and the rules orders for it must follow.

    `tick`: the price step (on a grid of several bands, `grid`, its finest). `market`: the market (Polymarket's
    condition id) and `complement` the other outcome's token. `lot`: the quantity step (shares,
    micro-units); `min_size`: the smallest resting order; `min_notional`: the smallest marketable BUY
    (pUSD). `neg_risk` selects Polymarket's neg-risk exchange (False elsewhere)."""

    token_id: str
    tick: TickSize
    market: str = ""
    complement: str = ""
    neg_risk: bool = False
    min_size: Micro = 5 * MICRO
    fee_rate_bps: int | None = None
    """None: not known (the OMS then reserves the venue's fee cap)."""
    venue: str = ""
    outcome: str = ""
    grid: PriceGrid | None = None
    lot: Micro = 10_000
    min_notional: Micro = MIN_NOTIONAL

    @property
    def prices(self) -> PriceGrid:
        """The price grid: `grid`, or the uniform grid of `tick` when there is none."""
        return self.grid if self.grid is not None else PriceGrid.uniform(self.tick)


# --- orders ----------------------------------------------------------------------------------------


class OrderRequest(msgspec.Struct, frozen=True, kw_only=True):
    """What a caller asks for, before the venue's rounding, signing or keys.

    Limit orders and SELLs count `size` in shares; a dollar-sized market BUY (`amount` > 0, size 0) spends
    `amount` pUSD at prices up to `price`. `expiration` (unix seconds, GTD orders) is when the order should
    end; an adapter whose venue ends orders some lead before what was signed (Polymarket: 60 s) adds it.
    `reduce_only`: refused unless it only reduces what is held (the OMS checks it at admission, whether or
    not the venue knows the flag). `client_id`: the caller's own tag for the order (kept with it; a venue
    with client order ids may use it as its key). `timestamp_ms` / `nonce` pin what an adapter would
    otherwise take from the clock or randomness (deterministic replays and tests)."""

    token_id: str
    side: Side
    price: Micro
    size: Micro = 0
    amount: Micro = 0
    order_type: OrderType = OrderType.GTC
    expiration: int = 0
    post_only: bool = False
    reduce_only: bool = False
    client_id: str = ""
    timestamp_ms: int | None = None
    nonce: int | None = None

    @property
    def notional(self) -> bool:
        return self.amount > 0 and self.side is Side.BUY


class PreparedOrder(msgspec.Struct, frozen=True, kw_only=True):
    """An order built for one venue, ready to send: what the OMS journals, and the adapter's payload.

    `key` is the exactly-once key (module doc). `size`/`price` as the venue will report them; `maker_amount`
    is what the order gives (pUSD for a BUY, shares for a SELL) and bounds what it reserves;
    `taker_amount` what it asks for. `expiration`: when the venue actually ends a GTD order (unix s; what
    was signed less any security lead the venue applies), 0 for none. `payload` is opaque to everyone but
    the adapter."""

    key: str
    token_id: str
    side: Side
    order_type: OrderType
    price: Micro
    size: Micro
    maker_amount: Micro
    taker_amount: Micro
    notional: bool = False
    expiration: int = 0
    post_only: bool = False
    reduce_only: bool = False
    client_id: str = ""
    payload: Any = None


# --- answers and reports -----------------------------------------------------------------------------


class Ack(msgspec.Struct, frozen=True):
    """The venue's answer accepting one order. `status` is the domain reading of the venue's word
    (None when the adapter did not know it: `raw_status` keeps it for the anomaly); `trade_ids` the
    trades the answer says it matched; `venue_id` the venue's own id (= the key on Polymarket)."""

    status: OrderStatus | None
    venue_id: str = ""
    trade_ids: tuple[str, ...] = ()
    raw_status: str = ""


class SubmitOutcome(msgspec.Struct, frozen=True):
    """What became of one order of a submission: exactly one of `ack`, `error`, `unknown`."""

    order_id: str
    ack: Ack | None = None
    error: PolyomsError | None = None
    unknown: str = ""
    """Non-empty (the cause) when the venue may or may not have the order."""


class OrderRef(msgspec.Struct, frozen=True):
    """An order as a cancel names it: our `key` and the venue's own id ("" when the venue never said one,
    or it is the key itself, as on Polymarket)."""

    key: str
    venue_id: str = ""


class CancelAnswer(msgspec.Struct, frozen=True):
    canceled: tuple[str, ...] = ()
    not_canceled: dict[str, str] = msgspec.field(default_factory=dict)


class ReportStatus(StrEnum):
    """An order's status in a venue's order report, in domain terms (each adapter maps its words here)."""

    LIVE = "LIVE"
    DELAYED = "DELAYED"
    MATCHED = "MATCHED"
    UNMATCHED = "UNMATCHED"
    CANCELED = "CANCELED"
    REJECTED = "REJECTED"
    """The venue refused or voided the order (Polymarket: INVALID)."""


class OrderReport(msgspec.Struct, frozen=True):
    """One order as the venue reports it when asked (open orders, one order by key). Sizes in shares."""

    id: str
    status: ReportStatus
    market: str
    asset_id: str
    side: Side
    price: Micro
    original_size: Micro
    size_matched: Micro
    order_type: OrderType | None = None
    expiration: int = 0
    owner: str = ""
    maker_address: str = ""
    created_at: int | None = None


class VenueTruth(msgspec.Struct, frozen=True):
    """What the venue says, fetched by the engine through the port. None: not fetched.

    `trades_since_s`: the trades list holds every trade of ours with match_time ≥ this (unix seconds).
    `order_status`: orders looked up one by one (UNKNOWN ones). `cash` / `shares`: per wallet."""

    as_of_ms: int
    open_orders: tuple[OrderReport, ...] | None = None
    trades: tuple[TradeEvent, ...] = ()
    trades_since_s: int | None = None
    order_status: dict[str, OrderReport] = msgspec.field(default_factory=dict)
    cash: dict[str, int] = msgspec.field(default_factory=dict)
    shares: dict[str, dict[str, int]] = msgspec.field(default_factory=dict)


class SettlementModel(StrEnum):
    """How a venue's fills become final."""

    ON_CHAIN = "on_chain"
    """MATCHED/MINED are provisional, CONFIRMED final, FAILED voided (Polymarket)."""
    IMMEDIATE = "immediate"
    """A fill is final when reported (the adapter reports it CONFIRMED)."""


class Venue(Protocol):
    """The port (module doc). `wallet` is the account the OMS ledgers; `owner` the API key's id."""

    @property
    def name(self) -> str: ...

    @property
    def wallet(self) -> str: ...

    @property
    def owner(self) -> str: ...

    @property
    def settlement(self) -> SettlementModel: ...

    @property
    def expiry_lead_s(self) -> int: ...

    def prepare(self, request: OrderRequest, instrument: Instrument) -> PreparedOrder: ...

    def set_user_sink(self, sink: UserSink | None) -> None: ...

    async def submit(self, orders: Sequence[PreparedOrder]) -> list[SubmitOutcome]: ...

    async def cancel(self, orders: Sequence[OrderRef]) -> CancelAnswer: ...

    async def cancel_all(self) -> CancelAnswer: ...

    async def get_order(self, order_id: str) -> OrderReport | None: ...

    async def open_orders(self) -> list[OrderReport]: ...

    async def trades(self, after_s: int | None = None) -> list[TradeEvent]: ...

    async def balances(self, token_ids: Sequence[str]) -> tuple[int, dict[str, int]]:
        """(cash, shares per token) of `wallet`, in micro-units."""
        ...

    async def heartbeat(self) -> str: ...

    async def close(self) -> None: ...


_REPORT_AS_EVENT: Final[dict[ReportStatus, OrderStatus]] = {
    ReportStatus.LIVE: OrderStatus.LIVE,
    ReportStatus.DELAYED: OrderStatus.DELAYED,
    ReportStatus.MATCHED: OrderStatus.MATCHED,
    ReportStatus.UNMATCHED: OrderStatus.UNMATCHED,
    ReportStatus.CANCELED: OrderStatus.CANCELED,
    ReportStatus.REJECTED: OrderStatus.CANCELED,  # gone from the book without trading: as a cancellation
}


def event_status(status: ReportStatus) -> OrderStatus:
    """A report's status as the user stream says it."""
    return _REPORT_AS_EVENT[status]


def order_event_of(report: OrderReport) -> OrderEvent:
    """An order report as the user stream would have said it (reconciliation and REST polling feed
    these to the same evidence rules as the stream)."""
    status = event_status(report.status)
    kind = OrderEventType.CANCELLATION if status is OrderStatus.CANCELED else OrderEventType.UPDATE
    return OrderEvent(
        type=kind,
        id=report.id,
        market=report.market,
        asset_id=report.asset_id,
        side=report.side,
        price=report.price,
        original_size=report.original_size,
        size_matched=report.size_matched,
        status=status,
        owner=report.owner,
        order_owner=report.owner,
        order_type=report.order_type,
        expiration=report.expiration,
        maker_address=report.maker_address,
        created_at=report.created_at,
    )
