"""CLOB REST bodies (doc §4.3–4.5): typed decoders and encoders for the public book, price and market
endpoints. Orders and trades are in `wire` and `user_messages`.

JSON numbers are read as exact Decimals from their text (msgspec does that for `Decimal` fields), so
`0.001` stays 0.001; prices and sizes become micro-units, tick sizes `TickSize`.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any, Final

import msgspec

from polyoms.core.enums import Side
from polyoms.core.errors import InputError
from polyoms.core.market_events import BookSnapshot
from polyoms.core.units import MICRO, Micro, TickSize, fmt_micro, tick_size, to_micro
from polyoms.polymarket.protocol import codec
from polyoms.polymarket.protocol.codec import Number, malformed
from polyoms.polymarket.protocol.messages import book_summary, decode_book, decode_books

__all__ = [
    "ClobMarket",
    "ClobMarketsPage",
    "ClobToken",
    "LastTradeInfo",
    "PmClobMarketInfo",
    "PricePoint",
    "decode_book",
    "decode_books",
    "decode_clob_market",
    "decode_clob_market_info",
    "decode_clob_markets_page",
    "decode_last_trade_price",
    "decode_midpoint",
    "decode_neg_risk",
    "decode_price",
    "decode_prices_history",
    "decode_spread",
    "decode_tick_size",
    "encode_book_summary",
    "encode_last_trade_price",
    "encode_midpoint",
    "encode_prices_history",
]


def _decode(data: bytes | str, cls: type[Any], what: str) -> Any:
    try:
        return msgspec.json.decode(data, type=cls)
    except msgspec.DecodeError as exc:
        malformed(f"{what}: {exc}", endpoint=what)


def _tick(value: Decimal | Number, what: str) -> TickSize:
    try:
        return tick_size(value)
    except InputError:
        malformed(f"unknown {what} {value!r}", field=what, value=value)


def _micro(value: Decimal | Number, what: str) -> Micro:
    try:
        return to_micro(value, what)
    except InputError:
        malformed(f"{what} {value!r} is not an exact decimal with at most 6 places", field=what, value=value)


# --- book ------------------------------------------------------------------------------------------


def encode_book_summary(snapshot: BookSnapshot) -> bytes:
    """GET /book body: §6.5 key order, best level last, hash computed if the snapshot has none."""
    return codec.encoder.encode(book_summary(snapshot))


# --- prices ----------------------------------------------------------------------------------------


class _Mid(msgspec.Struct):
    mid: Decimal | None = None
    mid_price: Decimal | None = None


def decode_midpoint(data: bytes | str) -> Micro:
    """GET /midpoint: `{"mid": "0.455"}` (OpenAPI names it `mid_price`; string or number)."""
    body: _Mid = _decode(data, _Mid, "midpoint")
    value = body.mid if body.mid is not None else body.mid_price
    if value is None:
        malformed("midpoint without mid", endpoint="midpoint")
    return _micro(value, "mid")


def encode_midpoint(mid: Micro) -> bytes:
    return codec.encoder.encode({"mid": fmt_micro(mid)})


class _Price(msgspec.Struct):
    price: Decimal


def decode_price(data: bytes | str) -> Micro:
    """GET /price: `{"price": "0.45"}`; side=BUY is the best bid, side=SELL the best ask (doc §4.3)."""
    body: _Price = _decode(data, _Price, "price")
    return _micro(body.price, "price")


class _Spread(msgspec.Struct):
    spread: Decimal


def decode_spread(data: bytes | str) -> Micro:
    body: _Spread = _decode(data, _Spread, "spread")
    return _micro(body.spread, "spread")


class LastTradeInfo(msgspec.Struct, frozen=True):
    """GET /last-trade-price. With no trades the venue answers price 0.5 and side ""."""

    price: Micro
    side: Side | None


class _LastTrade(msgspec.Struct):
    price: Decimal
    side: str = ""


def decode_last_trade_price(data: bytes | str) -> LastTradeInfo:
    body: _LastTrade = _decode(data, _LastTrade, "last-trade-price")
    return LastTradeInfo(_micro(body.price, "price"), codec.optional_side(body.side))


def encode_last_trade_price(info: LastTradeInfo) -> bytes:
    return codec.encoder.encode({"price": fmt_micro(info.price), "side": "" if info.side is None else info.side.name})


class PricePoint(msgspec.Struct, frozen=True, gc=False):
    """One point of GET /prices-history: `t` in unix seconds, the price in micro-units."""

    t: int
    price: Micro


class _HistoryPoint(msgspec.Struct, gc=False):
    t: int
    p: Decimal


class _History(msgspec.Struct):
    history: list[_HistoryPoint]


_MICRO_DEC: Final = Decimal(MICRO)


def decode_prices_history(data: bytes | str) -> tuple[PricePoint, ...]:
    """Points are JSON numbers; read exactly, then rounded half-to-even to a micro-unit (history points
    may be averages with more places than a price has)."""
    body: _History = _decode(data, _History, "prices-history")
    return tuple(
        PricePoint(pt.t, int((pt.p * _MICRO_DEC).to_integral_value(rounding=ROUND_HALF_EVEN))) for pt in body.history
    )


def encode_prices_history(points: Iterable[PricePoint]) -> bytes:
    return codec.encoder.encode(
        {"history": [{"t": pt.t, "p": Decimal(pt.price) / _MICRO_DEC} for pt in points]},
    )


# --- market parameters -----------------------------------------------------------------------------


class _TickSize(msgspec.Struct):
    minimum_tick_size: Decimal


def decode_tick_size(data: bytes | str) -> TickSize:
    """GET /tick-size: `{"minimum_tick_size": 0.01}` (a number)."""
    body: _TickSize = _decode(data, _TickSize, "tick-size")
    return _tick(body.minimum_tick_size, "minimum_tick_size")


class _NegRisk(msgspec.Struct):
    neg_risk: bool


def decode_neg_risk(data: bytes | str) -> bool:
    body: _NegRisk = _decode(data, _NegRisk, "neg-risk")
    return body.neg_risk


# --- markets ---------------------------------------------------------------------------------------


class ClobToken(msgspec.Struct, frozen=True):
    token_id: str
    outcome: str = ""
    price: Decimal | None = None
    winner: bool = False


class ClobRewardRate(msgspec.Struct, frozen=True):
    asset_address: str = ""
    rewards_daily_rate: Decimal | None = None


class ClobRewards(msgspec.Struct, frozen=True):
    rates: list[ClobRewardRate] | None = None
    min_size: Decimal | None = None
    max_spread: Decimal | None = None


class ClobMarket(msgspec.Struct, frozen=True):
    """GET /markets item and GET /markets/{condition_id} (V1-era shape, still served)."""

    condition_id: str
    tokens: list[ClobToken] = []
    minimum_tick_size: Decimal | None = None
    minimum_order_size: Decimal | None = None
    neg_risk: bool = False
    accepting_orders: bool = False
    active: bool = False
    closed: bool = False
    archived: bool = False
    enable_order_book: bool = False
    question_id: str = ""
    question: str = ""
    description: str = ""
    market_slug: str = ""
    end_date_iso: str | None = None
    game_start_time: str | None = None
    accepting_order_timestamp: str | None = None
    seconds_delay: int = 0
    fpmm: str = ""
    maker_base_fee: Decimal | None = None
    taker_base_fee: Decimal | None = None
    notifications_enabled: bool = False
    neg_risk_market_id: str = ""
    neg_risk_request_id: str = ""
    icon: str = ""
    image: str = ""
    rewards: ClobRewards | None = None
    is_50_50_outcome: bool = False
    tags: list[str] | None = None

    @property
    def tick_size(self) -> TickSize | None:
        return None if self.minimum_tick_size is None else _tick(self.minimum_tick_size, "minimum_tick_size")

    @property
    def min_order_size(self) -> Micro | None:
        return None if self.minimum_order_size is None else _micro(self.minimum_order_size, "minimum_order_size")

    @property
    def token_ids(self) -> tuple[str, ...]:
        """In the venue's order: YES (first outcome) then NO."""
        return tuple(t.token_id for t in self.tokens)


class ClobMarketsPage(msgspec.Struct, frozen=True):
    data: list[ClobMarket]
    next_cursor: str = ""
    limit: int | None = None
    count: int | None = None


def decode_clob_market(data: bytes | str) -> ClobMarket:
    market: ClobMarket = _decode(data, ClobMarket, "market")
    _ = market.tick_size  # an unknown tick size is a malformed market, reported now
    return market


def decode_clob_markets_page(data: bytes | str) -> ClobMarketsPage:
    page: ClobMarketsPage = _decode(data, ClobMarketsPage, "markets")
    for market in page.data:
        _ = market.tick_size
    return page


class ClobMarketToken(msgspec.Struct, frozen=True):
    t: str
    o: str = ""


class ClobFeeCurve(msgspec.Struct, frozen=True):
    r: Decimal | None = None
    e: Decimal | None = None
    to: bool | None = None


class PmClobMarketInfo(msgspec.Struct, frozen=True):
    """GET /clob-markets/{condition_id}: the compact form the V2 SDKs read (doc §4.4); keys are the
    venue's short ones, omitted when false or empty."""

    c: str
    t: list[ClobMarketToken]
    mts: Decimal
    nr: bool = False
    fd: ClobFeeCurve | None = None
    mbf: Decimal | None = None
    tbf: Decimal | None = None
    r: dict[str, Any] | None = None
    ao: bool = False
    mos: Decimal | None = None
    sd: int = 0
    gst: str | None = None
    cbos: bool = False
    aot: str | None = None
    rfqe: bool = False
    itode: bool = False
    ibce: bool = False
    oas: int = 0

    @property
    def condition_id(self) -> str:
        return self.c

    @property
    def token_ids(self) -> tuple[str, ...]:
        return tuple(tok.t for tok in self.t)

    @property
    def tick_size(self) -> TickSize:
        return _tick(self.mts, "mts")

    @property
    def neg_risk(self) -> bool:
        return self.nr

    @property
    def min_order_size(self) -> Micro | None:
        return None if self.mos is None else _micro(self.mos, "mos")


def decode_clob_market_info(data: bytes | str) -> PmClobMarketInfo:
    info: PmClobMarketInfo = _decode(data, PmClobMarketInfo, "clob-markets")
    if not info.t:
        malformed("clob-markets without tokens", endpoint="clob-markets")  # the SDK refuses it too
    _ = info.tick_size
    return info
