"""Markets in the venue's JSON shapes: the CLOB market object, the compact /clob-markets, simplified.

Shapes and key order follow recorded responses (shared/fixtures/polymarket/rest/clob_market_*.json).
Numbers the venue sends as JSON numbers (tick size, minimum size) are Decimals here, encoded as
numbers by the API's encoder, so no float is ever involved.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Final

from polyoms.core.units import fmt_micro, from_micro
from polyoms.exchange.markets import MarketSpec
from polyoms.exchange.trades import Trade
from polyoms.polymarket.protocol.constants import PUSD

CENTS_PER_PUSD: Final = 100
# What a market without a rewards programme shows, as in the recorded markets without one.
NO_REWARDS: Final[dict[str, Any]] = {"rates": None, "min_size": 0, "max_spread": 0}


def _tick(market: MarketSpec) -> Decimal:
    return Decimal(market.tick.text)


def fee_rate_bps(market: MarketSpec) -> int:
    """The one fee figure every endpoint reports for a market: its curve's rate r in basis points, the
    `fee_rate_bps` its trades carry for the taker. The curve itself (`fd`) is in /clob-markets.

    UNCONFIRMED: the venue's legacy base-fee fields (`/fee-rate` `base_fee`, `taker_base_fee`, `tbf`)
    are V1 remnants whose V2 values are not documented; here they all carry this one figure.
    """
    return market.fee.rate_bps


# UNCONFIRMED: live-activity's `event_type` value and its timestamp unit (seconds, as REST trades'
# `match_time`) are not documented; the fields are doc §4.5's MarketTradeEvent.
LIVE_ACTIVITY_EVENT: Final = "trade"


def market_trade_event(market: MarketSpec, t: Trade) -> dict[str, Any]:
    """One GET /markets/live-activity item: a trade as the public sees it (the taker's side)."""
    return {
        "event_type": LIVE_ACTIVITY_EVENT,
        "market": {
            "condition_id": market.condition_id,
            "asset_id": t.asset_id,
            "question": market.question,
            "icon": "",
            "slug": market.slug,
        },
        # The exchange keeps no profiles: a trader is its address.
        "user": {
            "address": t.maker_address,
            "username": "",
            "profile_picture": "",
            "optimized_profile_picture": "",
            "pseudonym": "",
        },
        "side": t.side.name,
        "size": fmt_micro(t.size),
        "fee_rate_bps": str(t.fee_rate_bps),
        "price": fmt_micro(t.price),
        "outcome": t.outcome,
        "outcome_index": t.outcome_index,
        "transaction_hash": t.transaction_hash,
        "timestamp": str(t.match_time),
    }


def max_spread_cents(market: MarketSpec) -> Decimal:
    assert market.rewards is not None
    return from_micro(market.rewards.max_spread * CENTS_PER_PUSD)


def rewards(market: MarketSpec) -> dict[str, Any]:
    """The /markets `rewards` block: the daily rate in pUSD, the minimum size in shares, the maximum
    spread in cents (recorded: `"max_spread": 3.5, "min_size": 200`, `rewards_daily_rate` 30)."""
    r = market.rewards
    if r is None:
        return dict(NO_REWARDS)
    return {
        "rates": [{"asset_address": PUSD, "rewards_daily_rate": from_micro(r.daily_rate)}],
        "min_size": from_micro(r.min_size),
        "max_spread": max_spread_cents(market),
    }


def _tokens(market: MarketSpec, prices: tuple[Decimal, Decimal] | None) -> list[dict[str, Any]]:
    p = prices or (Decimal("0.5"), Decimal("0.5"))
    if market.resolved:  # as the venue shows a resolved market: the winner at 1, the other at 0
        p = (Decimal(1), Decimal(0)) if market.winning_token_id == market.yes_token_id else (Decimal(0), Decimal(1))
    win = market.winning_token_id
    return [
        {
            "token_id": market.yes_token_id,
            "outcome": market.outcomes[0],
            "price": p[0],
            "winner": win == market.yes_token_id,
        },
        {
            "token_id": market.no_token_id,
            "outcome": market.outcomes[1],
            "price": p[1],
            "winner": win == market.no_token_id,
        },
    ]


def clob_market(market: MarketSpec, prices: tuple[Decimal, Decimal] | None = None) -> dict[str, Any]:
    """GET /markets item and GET /markets/{condition_id}."""
    return {
        "enable_order_book": True,
        "active": market.active,
        "closed": market.closed,
        "archived": False,
        "accepting_orders": market.accepting_orders,
        "accepting_order_timestamp": None,
        "minimum_order_size": from_micro(market.min_size),
        "minimum_tick_size": _tick(market),
        "condition_id": market.condition_id,
        "question_id": market.condition_id,
        "question": market.question,
        "description": market.description,
        "market_slug": market.slug,
        "end_date_iso": market.end_date_iso or None,
        "game_start_time": None,
        "seconds_delay": 0,
        "fpmm": "",
        "maker_base_fee": 0,
        "taker_base_fee": fee_rate_bps(market),
        "notifications_enabled": True,
        "neg_risk": market.neg_risk,
        "neg_risk_market_id": market.neg_risk_market_id,
        "neg_risk_request_id": market.condition_id if market.neg_risk else "",
        "icon": "",
        "image": "",
        "rewards": rewards(market),
        "is_50_50_outcome": False,
        "tokens": _tokens(market, prices),
        "tags": [],
    }


def simplified_market(market: MarketSpec, prices: tuple[Decimal, Decimal] | None = None) -> dict[str, Any]:
    return {
        "condition_id": market.condition_id,
        "rewards": rewards(market),
        "tokens": _tokens(market, prices),
        "active": market.active,
        "closed": market.closed,
        "archived": False,
        "accepting_orders": market.accepting_orders,
    }


def compact_market(market: MarketSpec) -> dict[str, Any]:
    """GET /clob-markets/{condition_id}: short keys, false/empty ones omitted (doc §4.4)."""
    body: dict[str, Any] = {
        "c": market.condition_id,
        "t": [{"t": market.yes_token_id, "o": market.outcomes[0]}, {"t": market.no_token_id, "o": market.outcomes[1]}],
        "mts": _tick(market),
    }
    if market.neg_risk:
        body["nr"] = True
    if market.fee.enabled:
        body["fd"] = {"r": Decimal(market.fee.rate), "e": market.fee.exponent, "to": market.fee.taker_only}
    body["mbf"] = 0
    body["tbf"] = fee_rate_bps(market)
    if market.rewards is not None:
        body["r"] = {"mi": from_micro(market.rewards.min_size), "ma": max_spread_cents(market), "e": True}
    if market.accepting_orders:
        body["ao"] = True
    body["mos"] = from_micro(market.min_size)
    body["sd"] = 0
    if market.taker_delay:
        body["itode"] = True
    return body
