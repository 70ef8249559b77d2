"""Typed results of the REST clients.

Bodies are decoded by the protocol layer's wire schemas (`protocol.rest`, `protocol.gamma`,
`protocol.user_messages`, `protocol.wire`, shared with the local exchange) and converted here into
exact typed values; a few small bodies without a schema (version, prices, keys) are read field by field.

Prices, sizes and pUSD amounts are integer micro-units (`polyoms.core.units`), never floats. Venue
numbers that are exact decimals (CLOB prices and sizes, tick and minimum sizes) are converted
exactly and a value that does not fit raises MalformedMessageError. A few statistics that the venue
computes with floats and can send with more than 6 decimals (Data-API average prices and P&L,
Gamma's display prices, price-history points) are rounded half-to-even to the micro-unit instead:
they are display and analytics values; positions only ever move from the user stream and
/data/trades (architecture principle 1).

Books reuse `BookSnapshot` (the same type the market channel produces) and /data/trades items
decode into `TradeEvent` (the user channel's type), so the OMS handles REST and stream evidence alike.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any, Final, Generic, TypeVar

import msgspec
from msgspec import UNSET

from polyoms.core.enums import OrderType, Side
from polyoms.core.errors import InputError, MalformedMessageError, PolyomsError
from polyoms.core.units import MICRO, Micro, TickSize, to_decimal, to_micro
from polyoms.core.user_events import OrderStatus, TradeEvent
from polyoms.polymarket.protocol import codec, gamma, rest, user_messages
from polyoms.polymarket.protocol.wire import PmBalanceAllowance, PmOpenOrder, PmOrderAnswer, PmPage

T = TypeVar("T")
FIRST_CURSOR: Final = "MA=="
END_CURSOR: Final = "LTE="


def malformed(message: str, **context: Any) -> MalformedMessageError:
    return MalformedMessageError(message, source="venue", **context)


# --- field helpers: lenient about the venue's string/number variations, strict about exactness ---------


def obj(data: Any, what: str) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise malformed(f"{what}: expected a JSON object, got {type(data).__name__}", what=what)
    return data


def arr(data: Any, what: str) -> list[Any]:
    if not isinstance(data, list):
        raise malformed(f"{what}: expected a JSON array, got {type(data).__name__}", what=what)
    return data


def text(d: dict[str, Any], key: str, default: str = "") -> str:
    value = d.get(key)
    if value is None:
        return default
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    raise malformed(f"{key} must be a string, got {value!r}"[:200], field=key)


def flag(d: dict[str, Any], key: str, default: bool = False) -> bool:
    value = d.get(key)
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise malformed(f"{key} must be a boolean, got {value!r}"[:200], field=key)


def integer(d: dict[str, Any], key: str, default: int | None = None) -> int | None:
    value = d.get(key)
    if value is None or value == "":
        return default
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return codec.integer(value, key)


def exact(d: dict[str, Any], key: str) -> Micro | None:
    """An exact decimal (string or number) to micro-units; absent/"" -> None."""
    value = d.get(key)
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise malformed(f"{key} must be a number, got {value!r}"[:200], field=key)
    return codec.number(value, key)


def exact_required(d: dict[str, Any], key: str) -> Micro:
    value = exact(d, key)
    if value is None:
        raise malformed(f"{key} is missing", field=key)
    return value


def approx(value: Any, what: str) -> Micro | None:
    """A float statistic to micro-units, rounded half-to-even (see the module docstring)."""
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, str | int | float | Decimal):
        raise malformed(f"{what} must be a number, got {value!r}"[:200], field=what)
    try:
        dec = to_decimal(value, what)
    except InputError:
        raise malformed(f"{what} is not a finite number: {value!r}", field=what) from None
    return int((dec * MICRO).quantize(Decimal(1), rounding=ROUND_HALF_EVEN))


def side_or_none(value: Any) -> Side | None:
    if not isinstance(value, str) or not value:
        return None
    return codec.side(value)


def strip_status(value: str, prefix: str) -> str:
    status = value.strip().upper()
    return status[len(prefix) :] if status.startswith(prefix) else status


# --- pagination -------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One page of a cursor-paginated endpoint; `next_cursor == "LTE="` marks the last."""

    items: tuple[T, ...]
    next_cursor: str
    limit: int | None = None
    count: int | None = None

    @property
    def last(self) -> bool:
        return self.next_cursor in (END_CURSOR, "")


def decode(data: bytes, decoder: msgspec.json.Decoder[T], what: str) -> T:
    """A body by its wire schema; an unreadable one is the venue's MalformedMessageError."""
    try:
        return decoder.decode(data)
    except msgspec.DecodeError as exc:
        raise malformed(f"{what}: {exc}"[:300], what=what) from None


def page_from_wire(page: PmPage[Any], item: Callable[[Any], T]) -> Page[T]:
    return Page(tuple(item(x) for x in page.data), page.next_cursor or END_CURSOR, page.limit, page.count)


# --- markets (converted from the protocol layer's wire schemas, `protocol.rest`) ----------------------------


class FeeParams(msgspec.Struct, frozen=True):
    """The platform fee curve (doc §7.3): fee = size x rate x (p(1-p))^exponent, takers only if taker_only."""

    rate: Decimal
    exponent: int
    taker_only: bool = True
    rebate_rate: Decimal | None = None


class MarketToken(msgspec.Struct, frozen=True):
    token_id: str
    outcome: str
    price: Micro | None = None
    winner: bool = False


class Market(msgspec.Struct, frozen=True):
    """A CLOB market object (GET /markets item, GET /markets/{condition_id})."""

    condition_id: str
    question: str
    tokens: tuple[MarketToken, ...]
    tick: TickSize | None
    min_order_size: Micro | None
    neg_risk: bool
    accepting_orders: bool
    active: bool = True
    closed: bool = False
    archived: bool = False
    enable_order_book: bool = True
    slug: str = ""
    question_id: str = ""
    description: str = ""
    end_date: str | None = None
    game_start_time: str | None = None
    seconds_delay: int = 0
    neg_risk_market_id: str = ""
    maker_base_fee: int = 0
    taker_base_fee: int = 0
    tags: tuple[str, ...] = ()


def _whole(value: Decimal | None, what: str) -> int:
    if value is None:
        return 0
    if value != value.to_integral_value():
        raise malformed(f"{what} must be a whole number, got {value}", field=what)
    return int(value)


def market_from_wire(w: rest.ClobMarket) -> Market:
    return Market(
        condition_id=w.condition_id,
        question=w.question,
        tokens=tuple(MarketToken(t.token_id, t.outcome, approx(t.price, "tokens.price"), t.winner) for t in w.tokens),
        tick=w.tick_size,
        min_order_size=w.min_order_size,
        neg_risk=w.neg_risk,
        accepting_orders=w.accepting_orders,
        active=w.active,
        closed=w.closed,
        archived=w.archived,
        enable_order_book=w.enable_order_book,
        slug=w.market_slug,
        question_id=w.question_id,
        description=w.description,
        end_date=w.end_date_iso or None,
        game_start_time=w.game_start_time or None,
        seconds_delay=w.seconds_delay,
        neg_risk_market_id=w.neg_risk_market_id,
        maker_base_fee=_whole(w.maker_base_fee, "maker_base_fee"),
        taker_base_fee=_whole(w.taker_base_fee, "taker_base_fee"),
        tags=tuple(w.tags or ()),
    )


def decode_market(data: bytes) -> Market:
    return market_from_wire(rest.decode_clob_market(data))


def decode_markets_page(data: bytes) -> Page[Market]:
    page = rest.decode_clob_markets_page(data)
    return Page(tuple(market_from_wire(m) for m in page.data), page.next_cursor or END_CURSOR, page.limit, page.count)


class ClobMarketInfo(msgspec.Struct, frozen=True):
    """GET /clob-markets/{condition_id}: the compact trading parameters (doc §4.4)."""

    condition_id: str
    tokens: tuple[MarketToken, ...]
    tick: TickSize
    neg_risk: bool = False
    fee: FeeParams | None = None
    min_order_size: Micro | None = None
    accepting_orders: bool = False
    seconds_delay: int = 0
    maker_base_fee: int = 0
    taker_base_fee: int = 0
    game_start_time: str | None = None
    clear_book_on_start: bool = False
    rfq_enabled: bool = False
    taker_delay: bool = False
    """itode: marketable orders wait out a 250 ms taker delay."""
    min_order_age_s: int = 0


def fee_params(
    rate: Decimal | None, exponent: Decimal | None, taker_only: bool | None, rebate: Decimal | None = None
) -> FeeParams | None:
    if rate is None:
        return None
    e = 1 if exponent is None else _whole(exponent, "fee exponent")
    return FeeParams(rate, e, True if taker_only is None else taker_only, rebate)


def decode_clob_market_info(data: bytes) -> ClobMarketInfo:
    w = rest.decode_clob_market_info(data)
    fee = None if w.fd is None else fee_params(w.fd.r, w.fd.e, w.fd.to)
    return ClobMarketInfo(
        condition_id=w.condition_id,
        tokens=tuple(MarketToken(t.t, t.o) for t in w.t),
        tick=w.tick_size,
        neg_risk=w.neg_risk,
        fee=fee,
        min_order_size=w.min_order_size,
        accepting_orders=w.ao,
        seconds_delay=w.sd,
        maker_base_fee=_whole(w.mbf, "mbf"),
        taker_base_fee=_whole(w.tbf, "tbf"),
        game_start_time=w.gst,
        clear_book_on_start=w.cbos,
        rfq_enabled=w.rfqe,
        taker_delay=w.itode,
        min_order_age_s=w.oas,
    )


class TokenPair(msgspec.Struct, frozen=True):
    """GET /markets-by-token/{token_id}."""

    condition_id: str
    primary_token_id: str
    secondary_token_id: str


def parse_token_pair(data: Any) -> TokenPair:
    d = obj(data, "markets-by-token")
    return TokenPair(text(d, "condition_id"), text(d, "primary_token_id"), text(d, "secondary_token_id"))


def price_value(d: dict[str, Any], key: str) -> Micro:
    """A price field of a batch answer (string or number, doc §4.3)."""
    return exact_required(d, key)


# --- orders and trades -----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OrderPlacement:
    """The venue's acknowledgement of one order (an acknowledgement, not a fill: principle 1)."""

    order_id: str
    status: str
    """live, matched, delayed or unmatched."""
    making: Micro
    taking: Micro
    trade_ids: tuple[str, ...] = ()
    transaction_hashes: tuple[str, ...] = ()


def placement_from_response(r: PmOrderAnswer, order_id: str) -> OrderPlacement:
    try:
        making, taking = r.making_micro, r.taking_micro
    except InputError:
        raise malformed(
            "order response amounts are not exact decimals", order_id=order_id, making=r.makingAmount
        ) from None
    return OrderPlacement(
        order_id=r.orderID or order_id,
        status=r.status.lower(),
        making=making,
        taking=taking,
        trade_ids=tuple(r.tradeIDs or ()),
        transaction_hashes=tuple(r.transactionsHashes or ()),
    )


@dataclass(frozen=True, slots=True)
class BatchOutcome:
    """One order of POST /orders: placed (`placement`) or refused (`error`, typed), never both."""

    order_id: str
    placement: OrderPlacement | None
    error: PolyomsError | None

    @property
    def ok(self) -> bool:
        return self.error is None


class OpenOrder(msgspec.Struct, frozen=True):
    """GET /data/order(s) item. `status` is normalized (ORDER_STATUS_ prefix stripped, upper case)."""

    id: str
    status: str
    market: str
    asset_id: str
    side: Side
    original_size: Micro
    size_matched: Micro
    price: Micro
    owner: str = ""
    maker_address: str = ""
    outcome: str = ""
    expiration: int = 0
    order_type: OrderType | None = None
    associate_trades: tuple[str, ...] = ()
    created_at: int | None = None

    @property
    def order_status(self) -> OrderStatus | None:
        """The status as the user channel's enum, or None for one it does not know (INVALID...)."""
        try:
            return OrderStatus.parse(self.status)
        except MalformedMessageError:
            return None

    @property
    def remaining(self) -> Micro:
        return max(0, self.original_size - self.size_matched)


def open_order_from_wire(w: PmOpenOrder) -> OpenOrder:
    trades = w.associate_trades
    return OpenOrder(
        id=w.id or "",
        status=strip_status(w.status or "", "ORDER_STATUS_"),
        market=w.market or "",
        asset_id=w.asset_id or "",
        side=codec.side(w.side or ""),
        original_size=_required(w.original_size, "original_size"),
        size_matched=_exact(w.size_matched, "size_matched") or 0,
        price=_required(w.price, "price"),
        owner=w.owner or "",
        maker_address=w.maker_address or "",
        outcome=w.outcome or "",
        expiration=codec.integer(w.expiration, "expiration") or 0,
        order_type=OrderType.parse(w.order_type) if w.order_type else None,
        associate_trades=tuple(trades) if trades else (),
        created_at=codec.integer(w.created_at, "created_at"),
    )


def _exact(value: str | int | float | None, what: str) -> Micro | None:
    return None if value is None or value == "" else codec.number(value, what)


def _required(value: str | int | float | None, what: str) -> Micro:
    amount = _exact(value, what)
    if amount is None:
        raise malformed(f"{what} is missing", field=what)
    return amount


def parse_open_order(data: Any) -> OpenOrder:
    """An order already decoded to Python values (the in-process venue's rows)."""
    try:
        return open_order_from_wire(msgspec.convert(data, PmOpenOrder))
    except msgspec.ValidationError as exc:
        raise malformed(f"order: {exc}"[:300], what="order") from None


_open_order: Final = msgspec.json.Decoder(PmOpenOrder)
_orders_page: Final = msgspec.json.Decoder(PmPage[PmOpenOrder])


def decode_open_order(data: bytes) -> OpenOrder:
    return open_order_from_wire(decode(data, _open_order, "order"))


def decode_orders_page(data: bytes) -> Page[OpenOrder]:
    return page_from_wire(decode(data, _orders_page, "orders"), open_order_from_wire)


def decode_trades_page(data: bytes) -> Page[TradeEvent]:
    """A /data/trades page; items decode exactly as user-channel trades do (`protocol.user_messages`)."""
    page = user_messages.decode_trades_page(data)
    return Page(page.data, page.next_cursor or END_CURSOR, page.limit, page.count)


class BalanceAllowance(msgspec.Struct, frozen=True):
    """GET /balance-allowance: balance and allowances per spender, in micro-units (6-decimal integers)."""

    balance: Micro
    allowances: dict[str, int]

    @property
    def allowance(self) -> int:
        """The smallest allowance over the spenders (what limits every exchange)."""
        return min(self.allowances.values()) if self.allowances else 0


def balance_from_wire(w: PmBalanceAllowance) -> BalanceAllowance:
    balance = codec.integer(w.balance, "balance") or 0
    allowances: dict[str, int] = {}
    if w.allowances is not None:
        for spender, value in w.allowances.items():
            allowances[spender] = codec.integer(value, f"allowances[{spender}]") or 0
    elif w.allowance is not UNSET:  # V1 shape: one allowance
        allowances[""] = codec.integer(w.allowance, "allowance") or 0
    return BalanceAllowance(balance, allowances)


_balance: Final = msgspec.json.Decoder(PmBalanceAllowance)


def decode_balance(data: bytes) -> BalanceAllowance:
    return balance_from_wire(decode(data, _balance, "balance-allowance"))


# --- Gamma and the Data API (converted from `protocol.gamma`) ---------------------------------------------------


class GammaMarket(msgspec.Struct, frozen=True):
    """A Gamma market: metadata plus the CLOB ids (`outcomes` and `token_ids` in the same order)."""

    id: str
    question: str
    condition_id: str
    slug: str
    outcomes: tuple[str, ...]
    token_ids: tuple[str, ...]
    outcome_prices: tuple[Micro, ...] = ()
    active: bool = True
    closed: bool = False
    archived: bool = False
    accepting_orders: bool = False
    enable_order_book: bool = False
    neg_risk: bool = False
    neg_risk_market_id: str = ""
    tick: TickSize | None = None
    min_order_size: Micro | None = None
    end_date: str | None = None
    game_start_time: str | None = None
    seconds_delay: int = 0
    fees_enabled: bool = False
    fee: FeeParams | None = None
    best_bid: Micro | None = None
    best_ask: Micro | None = None
    last_trade_price: Micro | None = None
    group_item_title: str = ""


def _opt_exact(value: Decimal | None, what: str) -> Micro | None:
    if value is None:
        return None
    try:
        return to_micro(value, what)
    except InputError:
        raise malformed(f"{what} {value} is not an exact amount", field=what) from None


def _outcome_prices(w: gamma.PmGammaMarket) -> tuple[Micro, ...]:
    try:
        prices = w.outcome_prices
    except ArithmeticError:  # decimal.InvalidOperation: a price that is not a number
        raise malformed("gamma market: outcomePrices holds a non-number", id=w.id) from None
    return tuple(approx(p, "outcomePrices") or 0 for p in prices)


def gamma_market_from_wire(w: gamma.PmGammaMarket) -> GammaMarket:
    outcomes, token_ids = w.outcome_names, w.token_ids
    if token_ids and len(token_ids) != len(outcomes):
        raise malformed("gamma market: outcomes and clobTokenIds differ in length", id=w.id)
    schedule = w.feeSchedule
    fee = None
    if w.feesEnabled and schedule is not None:
        fee = fee_params(schedule.rate, schedule.exponent, schedule.takerOnly, schedule.rebateRate)
    return GammaMarket(
        id=w.id,
        question=w.question,
        condition_id=w.conditionId,
        slug=w.slug,
        outcomes=outcomes,
        token_ids=token_ids,
        outcome_prices=_outcome_prices(w),
        active=w.active is not False,
        closed=bool(w.closed),
        archived=bool(w.archived),
        accepting_orders=bool(w.acceptingOrders),
        enable_order_book=bool(w.enableOrderBook),
        neg_risk=bool(w.negRisk),
        neg_risk_market_id=w.negRiskMarketID or "",
        tick=w.tick_size,
        min_order_size=_opt_exact(w.orderMinSize, "orderMinSize"),
        end_date=w.endDate,
        game_start_time=w.gameStartTime,
        seconds_delay=w.secondsDelay or 0,
        fees_enabled=bool(w.feesEnabled),
        fee=fee,
        best_bid=approx(w.bestBid, "bestBid"),
        best_ask=approx(w.bestAsk, "bestAsk"),
        last_trade_price=approx(w.lastTradePrice, "lastTradePrice"),
        group_item_title=w.groupItemTitle or "",
    )


def decode_gamma_market(data: bytes) -> GammaMarket:
    return gamma_market_from_wire(gamma.decode_gamma_market(data))


def decode_gamma_markets(data: bytes) -> list[GammaMarket]:
    return [gamma_market_from_wire(m) for m in gamma.decode_gamma_markets(data)]


class GammaTag(msgspec.Struct, frozen=True):
    id: str
    label: str
    slug: str


class GammaEvent(msgspec.Struct, frozen=True):
    id: str
    slug: str
    title: str
    markets: tuple[GammaMarket, ...]
    active: bool = True
    closed: bool = False
    neg_risk: bool = False
    neg_risk_market_id: str = ""
    end_date: str | None = None
    tags: tuple[str, ...] = ()


def gamma_event_from_wire(w: gamma.PmGammaEvent) -> GammaEvent:
    return GammaEvent(
        id=w.id,
        slug=w.slug,
        title=w.title,
        markets=tuple(gamma_market_from_wire(m) for m in w.markets),
        active=w.active is not False,
        closed=bool(w.closed),
        neg_risk=bool(w.negRisk),
        neg_risk_market_id=w.negRiskMarketID or "",
        end_date=w.endDate,
        tags=tuple(t.slug for t in w.tags),
    )


def decode_gamma_events(data: bytes) -> list[GammaEvent]:
    return [gamma_event_from_wire(e) for e in gamma.decode_gamma_events(data)]


def decode_gamma_event(data: bytes) -> GammaEvent:
    (event,) = gamma.decode_gamma_events(b"[" + data + b"]")
    return gamma_event_from_wire(event)


def decode_gamma_tags(data: bytes) -> list[GammaTag]:
    return [GammaTag(t.id, t.label, t.slug) for t in gamma.decode_gamma_tags(data)]


class GammaSearch(msgspec.Struct, frozen=True):
    events: tuple[GammaEvent, ...]
    tags: tuple[GammaTag, ...] = ()
    has_more: bool = False
    total: int | None = None


def decode_gamma_search(data: bytes) -> GammaSearch:
    w = gamma.decode_gamma_search(data)
    return GammaSearch(
        events=tuple(gamma_event_from_wire(e) for e in w.events),
        tags=tuple(GammaTag(t.id, t.label, t.slug) for t in w.tags or ()),
        has_more=bool(w.pagination and w.pagination.hasMore),
        total=w.pagination.totalResults if w.pagination else None,
    )


class DataPosition(msgspec.Struct, frozen=True):
    """Data API /positions item (the venue's view; analytics, not the ledger)."""

    proxy_wallet: str
    asset: str
    condition_id: str
    size: Micro
    avg_price: Micro | None = None
    initial_value: Micro | None = None
    current_value: Micro | None = None
    cash_pnl: Micro | None = None
    realized_pnl: Micro | None = None
    cur_price: Micro | None = None
    redeemable: bool = False
    mergeable: bool = False
    negative_risk: bool = False
    outcome: str = ""
    outcome_index: int | None = None
    opposite_asset: str = ""
    title: str = ""
    slug: str = ""
    end_date: str | None = None


def decode_positions(data: bytes) -> list[DataPosition]:
    return [
        DataPosition(
            proxy_wallet=w.proxyWallet,
            asset=w.asset,
            condition_id=w.conditionId,
            size=approx(w.size, "size") or 0,
            avg_price=approx(w.avgPrice, "avgPrice"),
            initial_value=approx(w.initialValue, "initialValue"),
            current_value=approx(w.currentValue, "currentValue"),
            cash_pnl=approx(w.cashPnl, "cashPnl"),
            realized_pnl=approx(w.realizedPnl, "realizedPnl"),
            cur_price=approx(w.curPrice, "curPrice"),
            redeemable=w.redeemable,
            mergeable=w.mergeable,
            negative_risk=w.negativeRisk,
            outcome=w.outcome,
            outcome_index=w.outcomeIndex,
            opposite_asset=w.oppositeAsset,
            title=w.title,
            slug=w.slug,
            end_date=w.endDate or None,
        )
        for w in gamma.decode_data_positions(data)
    ]


class DataTrade(msgspec.Struct, frozen=True):
    """Data API /trades item. `price` is the venue's (float) average, rounded to the micro-unit."""

    proxy_wallet: str
    side: Side | None
    asset: str
    condition_id: str
    size: Micro
    price: Micro
    timestamp: int
    outcome: str = ""
    outcome_index: int | None = None
    title: str = ""
    slug: str = ""
    event_slug: str = ""
    transaction_hash: str = ""


def decode_data_trades(data: bytes) -> list[DataTrade]:
    return [
        DataTrade(
            proxy_wallet=w.proxyWallet,
            side=codec.optional_side(w.side),
            asset=w.asset,
            condition_id=w.conditionId,
            size=approx(w.size, "size") or 0,
            price=approx(w.price, "price") or 0,
            timestamp=w.timestamp,
            outcome=w.outcome,
            outcome_index=w.outcomeIndex,
            title=w.title,
            slug=w.slug,
            event_slug=w.eventSlug,
            transaction_hash=w.transactionHash,
        )
        for w in gamma.decode_data_trades(data)
    ]


class Activity(msgspec.Struct, frozen=True):
    """Data API /activity item (TRADE, SPLIT, MERGE, REDEEM, REWARD, TAKER_REBATE...)."""

    proxy_wallet: str
    timestamp: int
    type: str
    size: Micro | None = None
    usdc_size: Micro | None = None
    price: Micro | None = None
    condition_id: str = ""
    asset: str = ""
    side: Side | None = None
    outcome: str = ""
    outcome_index: int | None = None
    title: str = ""
    transaction_hash: str = ""


def decode_activity(data: bytes) -> list[Activity]:
    return [
        Activity(
            proxy_wallet=w.proxyWallet,
            timestamp=w.timestamp,
            type=w.type,
            size=approx(w.size, "size"),
            usdc_size=approx(w.usdcSize, "usdcSize"),
            price=approx(w.price, "price"),
            condition_id=w.conditionId,
            asset=w.asset,
            side=codec.optional_side(w.side),
            outcome=w.outcome,
            outcome_index=w.outcomeIndex,
            title=w.title,
            transaction_hash=w.transactionHash,
        )
        for w in gamma.decode_data_activity(data)
    ]
