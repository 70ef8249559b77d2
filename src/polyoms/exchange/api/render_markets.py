"""Markets in the venue's JSON shapes: the CLOB market object, the compact /clob-markets, simplified.

Shapes and key order follow recorded responses (shared/fixtures/polymarket/rest/clob_market_*.json).
Numbers the venue sends as JSON numbers (tick size, minimum size) are Decimals here, encoded as
numbers by the API's encoder, so no float is ever involved.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from polyoms.core.units import from_micro
from polyoms.exchange.markets import MarketSpec


def _tick(market: MarketSpec) -> Decimal:
    return Decimal(market.tick.text)


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
        "taker_base_fee": market.fee.rate_bps,
        "notifications_enabled": True,
        "neg_risk": market.neg_risk,
        "neg_risk_market_id": market.neg_risk_market_id,
        "neg_risk_request_id": market.condition_id if market.neg_risk else "",
        "icon": "",
        "image": "",
        "rewards": {"rates": None, "min_size": 0, "max_spread": 0},
        "is_50_50_outcome": False,
        "tokens": _tokens(market, prices),
        "tags": [],
    }


def simplified_market(market: MarketSpec, prices: tuple[Decimal, Decimal] | None = None) -> dict[str, Any]:
    return {
        "condition_id": market.condition_id,
        "rewards": {"rates": None, "min_size": 0, "max_spread": 0},
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
    body["tbf"] = 0
    if market.accepting_orders:
        body["ao"] = True
    body["mos"] = from_micro(market.min_size)
    body["sd"] = 0
    return body
