"""Gamma (market metadata) and Data API (public positions/trades/activity) bodies (doc §4.13, §4.14).

Only what trading needs is typed; unknown keys are ignored. These APIs send numbers as JSON numbers
(floats on the venue's side); they are read exactly from their text as Decimals and never used as
money inside polyoms (positions come from the user stream). Gamma's `outcomes`, `outcomePrices` and
`clobTokenIds` are JSON-encoded strings; the properties decode them.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import msgspec

from polyoms.core.errors import InputError
from polyoms.core.units import TickSize, tick_size
from polyoms.polymarket.protocol.codec import malformed


def _json_list(text: str | None, what: str) -> tuple[str, ...]:
    if not text:
        return ()
    try:
        value = msgspec.json.decode(text)
    except msgspec.DecodeError:
        malformed(f"{what} is not a JSON list: {text!r}", field=what)
    if not isinstance(value, list):
        malformed(f"{what} is not a JSON list: {text!r}", field=what)
    return tuple(str(v) for v in value)


class PmGammaFeeSchedule(msgspec.Struct, frozen=True):
    rate: Decimal | None = None
    exponent: Decimal | None = None
    takerOnly: bool | None = None
    rebateRate: Decimal | None = None


class PmGammaMarket(msgspec.Struct, frozen=True):
    """A Gamma market (GET /markets, inside events and search results)."""

    id: str
    conditionId: str = ""
    question: str = ""
    slug: str = ""
    outcomes: str | None = None
    outcomePrices: str | None = None
    clobTokenIds: str | None = None
    active: bool | None = None
    closed: bool | None = None
    archived: bool | None = None
    acceptingOrders: bool | None = None
    enableOrderBook: bool | None = None
    negRisk: bool | None = None
    negRiskMarketID: str | None = None
    negRiskRequestID: str | None = None
    orderMinSize: Decimal | None = None
    orderPriceMinTickSize: Decimal | None = None
    secondsDelay: int | None = None
    feesEnabled: bool | None = None
    feeType: str | None = None
    feeSchedule: PmGammaFeeSchedule | None = None
    bestBid: Decimal | None = None
    bestAsk: Decimal | None = None
    lastTradePrice: Decimal | None = None
    spread: Decimal | None = None
    endDate: str | None = None
    gameStartTime: str | None = None
    clearBookOnStart: bool | None = None
    groupItemTitle: str | None = None
    version: str | None = None

    @property
    def outcome_names(self) -> tuple[str, ...]:
        return _json_list(self.outcomes, "outcomes")

    @property
    def token_ids(self) -> tuple[str, ...]:
        """Same order as `outcome_names` (YES first for binary markets)."""
        return _json_list(self.clobTokenIds, "clobTokenIds")

    @property
    def outcome_prices(self) -> tuple[Decimal, ...]:
        return tuple(Decimal(p) for p in _json_list(self.outcomePrices, "outcomePrices"))

    @property
    def tick_size(self) -> TickSize | None:
        if self.orderPriceMinTickSize is None:
            return None
        try:
            return tick_size(self.orderPriceMinTickSize)
        except InputError:
            malformed(f"unknown orderPriceMinTickSize {self.orderPriceMinTickSize}", field="orderPriceMinTickSize")


class PmGammaTag(msgspec.Struct, frozen=True):
    id: str
    label: str = ""
    slug: str = ""


class PmGammaEvent(msgspec.Struct, frozen=True):
    """A Gamma event: a group of markets (a neg-risk event's markets are its outcomes)."""

    id: str
    slug: str = ""
    title: str = ""
    ticker: str = ""
    active: bool | None = None
    closed: bool | None = None
    negRisk: bool | None = None
    negRiskMarketID: str | None = None
    enableNegRisk: bool | None = None
    endDate: str | None = None
    markets: list[PmGammaMarket] = []
    tags: list[PmGammaTag] = []


class PmGammaPagination(msgspec.Struct, frozen=True):
    hasMore: bool = False
    totalResults: int | None = None


class PmGammaSearch(msgspec.Struct, frozen=True):
    """GET /public-search."""

    events: list[PmGammaEvent] = []
    tags: list[PmGammaTag] | None = None
    pagination: PmGammaPagination | None = None


class PmDataTrade(msgspec.Struct, frozen=True):
    """Data API GET /trades item (public tape; `size`/`price` as the API's numbers)."""

    proxyWallet: str
    side: str
    asset: str
    conditionId: str
    size: Decimal
    price: Decimal
    timestamp: int
    outcome: str = ""
    outcomeIndex: int | None = None
    title: str = ""
    slug: str = ""
    eventSlug: str = ""
    transactionHash: str = ""


class PmDataPosition(msgspec.Struct, frozen=True):
    """Data API GET /positions item."""

    proxyWallet: str
    asset: str
    conditionId: str
    size: Decimal
    avgPrice: Decimal | None = None
    initialValue: Decimal | None = None
    currentValue: Decimal | None = None
    cashPnl: Decimal | None = None
    realizedPnl: Decimal | None = None
    curPrice: Decimal | None = None
    redeemable: bool = False
    mergeable: bool = False
    outcome: str = ""
    outcomeIndex: int | None = None
    oppositeAsset: str = ""
    negativeRisk: bool = False
    endDate: str = ""
    title: str = ""
    slug: str = ""


class PmDataActivity(msgspec.Struct, frozen=True):
    """Data API GET /activity item (TRADE, REDEEM, REWARD, TAKER_REBATE, ...)."""

    proxyWallet: str
    timestamp: int
    type: str
    conditionId: str = ""
    size: Decimal | None = None
    usdcSize: Decimal | None = None
    price: Decimal | None = None
    asset: str = ""
    side: str = ""
    outcomeIndex: int | None = None
    outcome: str = ""
    transactionHash: str = ""
    title: str = ""


def _decode(data: bytes | str, cls: Any, what: str) -> Any:
    try:
        return msgspec.json.decode(data, type=cls)
    except msgspec.DecodeError as exc:
        malformed(f"{what}: {exc}", endpoint=what)


def decode_gamma_market(data: bytes | str) -> PmGammaMarket:
    result: PmGammaMarket = _decode(data, PmGammaMarket, "gamma market")
    return result


def decode_gamma_markets(data: bytes | str) -> list[PmGammaMarket]:
    result: list[PmGammaMarket] = _decode(data, list[PmGammaMarket], "gamma markets")
    return result


def decode_gamma_events(data: bytes | str) -> list[PmGammaEvent]:
    result: list[PmGammaEvent] = _decode(data, list[PmGammaEvent], "gamma events")
    return result


def decode_gamma_tags(data: bytes | str) -> list[PmGammaTag]:
    result: list[PmGammaTag] = _decode(data, list[PmGammaTag], "gamma tags")
    return result


def decode_gamma_search(data: bytes | str) -> PmGammaSearch:
    result: PmGammaSearch = _decode(data, PmGammaSearch, "gamma search")
    return result


def decode_data_trades(data: bytes | str) -> list[PmDataTrade]:
    result: list[PmDataTrade] = _decode(data, list[PmDataTrade], "data-api trades")
    return result


def decode_data_positions(data: bytes | str) -> list[PmDataPosition]:
    result: list[PmDataPosition] = _decode(data, list[PmDataPosition], "data-api positions")
    return result


def decode_data_activity(data: bytes | str) -> list[PmDataActivity]:
    result: list[PmDataActivity] = _decode(data, list[PmDataActivity], "data-api activity")
    return result
