"""REST routes of the venue's maker programmes (doc §4.11): order scoring, liquidity-reward earnings and
configurations, maker rebates. Paths, parameters and shapes are those py-clob-client-v2 1.2.1 calls
(`is_order_scoring`, `are_orders_scoring`, `get_earnings_for_user_for_day`,
`get_total_earnings_for_user_for_day`, `get_reward_percentages`, `get_user_earnings_and_markets_config`,
`get_current_rewards`, `get_raw_rewards_for_market`); /rebates/current follows the venue's live answer
(a plain list, `date` at midnight UTC, `rebated_fees_usdc` a string).

The data come from `Exchange.incentives` (exchange/incentives.py); amounts leave as Decimal here only.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any, Final

from aiohttp import web

from polyoms.core.enums import SignatureType
from polyoms.core.errors import InputError
from polyoms.core.units import MICRO, fmt_micro, from_micro

# app.py's helpers, reused rather than copied: its L2 check and service lookup are private there, and
# app imports this module, so they are read through the module at call time.
from polyoms.exchange.api import app as _app
from polyoms.exchange.api import render_markets
from polyoms.exchange.api.http import decode_json, int_query, json_response, page_body, paginate, query
from polyoms.exchange.incentives import MAKER_REBATE, REWARD, REWARD_ASSET, Payout
from polyoms.exchange.markets import MarketSpec
from polyoms.exchange.rewards import maker_scores
from polyoms.polymarket.protocol import errors as venue_errors

REWARDS_PAGE: Final = 100
"""UNCONFIRMED: the venue's page size for the rewards endpoints."""
PROGRAMME_START: Final = "2026-01-01"
PROGRAMME_END: Final = "2500-12-31"
"""UNCONFIRMED: `start_date` / `end_date` of an open-ended programme (the local exchange's run forever)."""
ASSET_RATE: Final = Decimal(1)
"""The payout currency's price in USD (pUSD is 1:1 with USDC)."""
_DATE_RE: Final = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _date(request: web.Request, default: str) -> str:
    value = query(request, "date") or default
    if not _DATE_RE.match(value):
        raise InputError(f"invalid date: {value!r}, expected YYYY-MM-DD", status=400)
    return value


async def _maker(request: web.Request) -> str:
    """The funder wallet of an L2 caller for the `signature_type` it names (EOA by default)."""
    caller, _ = await _app._l2(request)
    signature_type = int_query(request, "signature_type", maximum=max(SignatureType)) or 0
    return _app._svc(request).funder_of(caller.address, signature_type).lower()


def _rewards_config(svc: Any, spec: MarketSpec) -> list[dict[str, Any]]:
    assert spec.rewards is not None
    return [
        {
            "id": int(spec.condition_id[2:10], 16),
            "asset_address": REWARD_ASSET,
            "start_date": PROGRAMME_START,
            "end_date": spec.end_date_iso[:10] or PROGRAMME_END,
            "rate_per_day": from_micro(spec.rewards.daily_rate),
            "total_rewards": from_micro(svc.exchange.incentives.paid_rewards(spec.condition_id)),
        }
    ]


def _tokens(svc: Any, spec: MarketSpec) -> list[dict[str, Any]]:
    yes, no = _app._prices(svc, spec)
    return [
        {"token_id": spec.yes_token_id, "outcome": spec.outcomes[0], "price": yes},
        {"token_id": spec.no_token_id, "outcome": spec.outcomes[1], "price": no},
    ]


def _competitiveness(svc: Any, spec: MarketSpec) -> Decimal:
    """UNCONFIRMED (undocumented field): the book's summed Q_min now, in shares, to 6 decimals."""
    assert spec.rewards is not None
    book = svc.exchange.books[spec.condition_id.lower()]
    total = sum(maker_scores(book, spec.rewards).values())
    return from_micro(int(total * MICRO))


def _programmes(svc: Any) -> list[MarketSpec]:
    return [m for m in svc.exchange.markets() if m.rewards is not None]


def _earning(p: Payout, maker: str) -> dict[str, Any]:
    return {
        "date": p.day,
        "condition_id": p.condition_id,
        "asset_address": p.asset_address,
        "maker_address": maker,
        "earnings": from_micro(p.amount),
        "asset_rate": ASSET_RATE,
    }


def _rewards_on(svc: Any, maker: str, day: str) -> list[Payout]:
    return [p for p in svc.exchange.incentives.payouts_of(maker) if p.kind == REWARD and p.day == day]


# --- scoring ---------------------------------------------------------------------------------------


async def order_scoring(request: web.Request) -> web.Response:
    caller, _ = await _app._l2(request)
    order_id = query(request, "order_id", required=True)
    ex = _app._svc(request).exchange
    order = ex.get_order(order_id or "")
    scoring = order is not None and order.owner == caller.api_key and ex.incentives.is_scoring(order)
    return json_response({"scoring": scoring})


async def orders_scoring(request: web.Request) -> web.Response:
    caller, body = await _app._l2(request)
    ids = decode_json(body) or []
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
        raise InputError(venue_errors.INVALID_ORDER_PAYLOAD, status=400)
    ex = _app._svc(request).exchange
    out: dict[str, bool] = {}
    for order_id in ids:
        order = ex.get_order(order_id)
        out[order_id] = order is not None and order.owner == caller.api_key and ex.incentives.is_scoring(order)
    return json_response(out)


# --- earnings (L2) ---------------------------------------------------------------------------------


async def user_earnings(request: web.Request) -> web.Response:
    maker = await _maker(request)
    svc = _app._svc(request)
    day = _date(request, svc.exchange.incentives.day)
    items = [_earning(p, maker) for p in _rewards_on(svc, maker, day)]
    page, cursor = paginate(items, request.query.get("next_cursor"), REWARDS_PAGE)
    return json_response(page_body(page, cursor, REWARDS_PAGE))


async def user_total(request: web.Request) -> web.Response:
    maker = await _maker(request)
    svc = _app._svc(request)
    day = _date(request, svc.exchange.incentives.day)
    paid = _rewards_on(svc, maker, day)
    if not paid:
        return json_response([])
    total = sum(p.amount for p in paid)
    return json_response(
        [
            {
                "date": day,
                "asset_address": REWARD_ASSET,
                "maker_address": maker,
                "earnings": from_micro(total),
                "asset_rate": ASSET_RATE,
            }
        ]
    )


async def user_percentages(request: web.Request) -> web.Response:
    maker = await _maker(request)
    return json_response(_app._svc(request).exchange.incentives.percentages_of(maker))


async def user_markets(request: web.Request) -> web.Response:
    maker = await _maker(request)
    svc = _app._svc(request)
    incentives = svc.exchange.incentives
    day = _date(request, incentives.day)
    percents = incentives.percentages_of(maker)
    paid: dict[str, int] = {}
    for p in _rewards_on(svc, maker, day):
        paid[p.condition_id] = paid.get(p.condition_id, 0) + p.amount
    items: list[dict[str, Any]] = []
    for spec in _programmes(svc):
        assert spec.rewards is not None
        cid = spec.condition_id
        spread = svc.exchange.spread(spec.yes_token_id)
        earned = paid.get(cid, 0)
        items.append(
            {
                "condition_id": cid,
                "market_id": "",
                "event_id": "",
                "question": spec.question,
                "market_slug": spec.slug,
                "event_slug": spec.event_slug,
                "image": "",
                "rewards_max_spread": render_markets.max_spread_cents(spec),
                "rewards_min_size": from_micro(spec.rewards.min_size),
                # UNCONFIRMED: the venue's rolling 24 h volume; here the pUSD matched since midnight UTC.
                "volume_24hr": from_micro(incentives.volume_today(cid)),
                "spread": from_micro(spread) if spread is not None else Decimal(0),
                "market_competitiveness": _competitiveness(svc, spec),
                "tokens": _tokens(svc, spec),
                "rewards_config": _rewards_config(svc, spec),
                "maker_address": maker,
                "earning_percentage": percents.get(cid, Decimal(0)),
                "earnings": [{"asset_address": REWARD_ASSET, "earnings": from_micro(earned), "asset_rate": ASSET_RATE}],
            }
        )
    page, cursor = paginate(items, request.query.get("next_cursor"), REWARDS_PAGE)
    return json_response(page_body(page, cursor, REWARDS_PAGE))


# --- configurations (public) -----------------------------------------------------------------------


async def markets_current(request: web.Request) -> web.Response:
    svc = _app._svc(request)
    items: list[dict[str, Any]] = []
    for spec in _programmes(svc):
        assert spec.rewards is not None
        items.append(
            {
                "condition_id": spec.condition_id,
                "rewards_max_spread": render_markets.max_spread_cents(spec),
                "rewards_min_size": from_micro(spec.rewards.min_size),
                "rewards_config": _rewards_config(svc, spec),
            }
        )
    page, cursor = paginate(items, request.query.get("next_cursor"), REWARDS_PAGE)
    return json_response(page_body(page, cursor, REWARDS_PAGE))


async def market_rewards(request: web.Request) -> web.Response:
    svc = _app._svc(request)
    cid = request.match_info["condition_id"].lower()
    items: list[dict[str, Any]] = []
    book = svc.exchange.books.get(cid)
    spec = book.spec if book is not None else None
    if spec is not None and spec.rewards is not None:
        items.append(
            {
                "condition_id": spec.condition_id,
                "question": spec.question,
                "market_slug": spec.slug,
                "event_slug": spec.event_slug,
                "image": "",
                "rewards_max_spread": render_markets.max_spread_cents(spec),
                "rewards_min_size": from_micro(spec.rewards.min_size),
                "market_competitiveness": _competitiveness(svc, spec),
                "tokens": _tokens(svc, spec),
                "rewards_config": _rewards_config(svc, spec),
            }
        )
    page, cursor = paginate(items, request.query.get("next_cursor"), REWARDS_PAGE)
    return json_response(page_body(page, cursor, REWARDS_PAGE))


async def rebates_current(request: web.Request) -> web.Response:
    svc = _app._svc(request)
    maker = query(request, "maker_address", required=True) or ""
    incentives = svc.exchange.incentives
    day = _date(request, incentives.day)
    rows = [
        {
            "date": f"{p.day}T00:00:00Z",
            "condition_id": p.condition_id,
            "asset_address": p.asset_address,
            "maker_address": maker,
            "rebated_fees_usdc": fmt_micro(p.amount),
        }
        for p in incentives.payouts_of(maker)
        if p.kind == MAKER_REBATE and p.day == day
    ]
    return json_response(rows)


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_get("/order-scoring", order_scoring)
    router.add_post("/orders-scoring", orders_scoring)
    router.add_get("/rewards/user", user_earnings)
    router.add_get("/rewards/user/total", user_total)
    router.add_get("/rewards/user/percentages", user_percentages)
    router.add_get("/rewards/user/markets", user_markets)
    router.add_get("/rewards/markets/current", markets_current)
    router.add_get("/rewards/markets/{condition_id}", market_rewards)
    router.add_get("/rebates/current", rebates_current)
