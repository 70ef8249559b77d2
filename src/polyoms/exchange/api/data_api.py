"""The venue's Data API (data-api.polymarket.com, doc §4.14) on the local exchange, under /data-api.

Public, per wallet: positions with cost basis and PnL, closed positions, trades, activity, portfolio
value, and a market's top holders. Every wallet of the exchange counts, the background traders' too
(their addresses are ledger accounts). Shapes follow the recorded responses
(shared/fixtures/polymarket/data-api/) and the venue's API reference (parameters, defaults, caps); the
numbers are JSON numbers, rendered from exact micro-units (Decimal, never float).

Sources are the exchange's public queries only (`trades`, `markets`, `resolution`, `midpoint`,
`balances`, iteration over its ledger), so trades moved to an archive behind those queries still count.
The positions' arithmetic is `exchange/portfolio.py`.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any, Final, Protocol

from aiohttp import web

from polyoms.core.enums import Side
from polyoms.core.errors import InputError
from polyoms.core.units import MICRO, Micro, from_micro, to_micro
from polyoms.exchange.api.gamma import GammaIndex, bool_param, int_param, iso_ms
from polyoms.exchange.api.http import json_response
from polyoms.exchange.api.public_limits import DATA_API_LIMITS, RateLimiter, limited
from polyoms.exchange.engine import Exchange
from polyoms.exchange.markets import MarketSpec
from polyoms.exchange.portfolio import Fill, Position, fills_of, token_markets, wallet_positions

PREFIX: Final = "/data-api"

# Parameter defaults and caps from the venue's API reference (docs.polymarket.com, Data API, "Core").
POSITIONS_LIMIT: Final = (100, 500)
POSITIONS_MAX_OFFSET: Final = 10_000
TRADES_LIMIT: Final = (100, 10_000)
TRADES_MAX_OFFSET: Final = 10_000
ACTIVITY_LIMIT: Final = (100, 500)
ACTIVITY_MAX_OFFSET: Final = 5_000
HOLDERS_LIMIT: Final = (20, 20)
"""Holders per token: "Capped at 20"."""
HOLDERS_MAX_MIN_BALANCE: Final = 999_999
# UNCONFIRMED: /closed-positions' page sizes and sort keys are from client libraries, not the reference.
CLOSED_LIMIT: Final = (10, 50)
CLOSED_MAX_OFFSET: Final = 100_000
MAX_LIST: Final = 100
"""The most condition ids or event ids one request may name (ours; the venue's URL length bounds it)."""
NON_TRADE_OUTCOME_INDEX: Final = 999
"""What the recorded activity shows as `outcomeIndex` on rows that are not trades."""
ACTIVITY_TYPES: Final = frozenset(
    {
        "TRADE", "SPLIT", "MERGE", "REDEEM", "REWARD", "CONVERSION", "DEPOSIT", "WITHDRAWAL", "YIELD",
        "MAKER_REBATE", "TAKER_REBATE", "REFERRAL_REWARD",
    }
)  # fmt: skip
_ADDRESS: Final = re.compile(r"0x[0-9a-fA-F]{40}")
_CONDITION: Final = re.compile(r"0x[0-9a-fA-F]{64}")

Handler = Callable[[web.Request], Any]


# --- identities ------------------------------------------------------------------------------------

_ADJECTIVES: Final = (
    "Agile", "Amber", "Bold", "Brisk", "Calm", "Clever", "Cosmic", "Crisp", "Daring", "Eager", "Fancy",
    "Gentle", "Golden", "Happy", "Humble", "Jolly", "Keen", "Lively", "Lucky", "Merry", "Mellow", "Noble",
    "Placid", "Quick", "Quiet", "Rapid", "Silent", "Steady", "Sunny", "Swift", "Tidy", "Vivid",
)  # fmt: skip
_NOUNS: Final = (
    "Anchor", "Badger", "Beacon", "Canyon", "Comet", "Cypress", "Falcon", "Fjord", "Galaxy", "Harbor",
    "Heron", "Horizon", "Lantern", "Maple", "Meadow", "Nebula", "Orchid", "Otter", "Pebble", "Pine",
    "Quartz", "Raven", "Ridge", "River", "Saffron", "Summit", "Thistle", "Tundra", "Valley", "Walrus",
    "Willow", "Zephyr",
)  # fmt: skip


def pseudonym(address: str) -> str:
    """A stable "Adjective-Noun" for an address, as the venue gives every wallet one."""
    d = hashlib.sha256(f"polyoms:pseudonym:{address.lower()}".encode()).digest()
    return f"{_ADJECTIVES[d[0] % len(_ADJECTIVES)]}-{_NOUNS[d[1] % len(_NOUNS)]}"


def profile(address: str) -> dict[str, Any]:
    """The venue's profile fields. The exchange keeps no profiles: the name is the pseudonym (UNCONFIRMED:
    what the venue shows as `name` for a wallet that never chose one)."""
    name = pseudonym(address)
    return {"name": name, "pseudonym": name, "bio": "", "profileImage": "", "profileImageOptimized": ""}


# --- rendering -------------------------------------------------------------------------------------


def _n(micro: Micro) -> Decimal:
    return from_micro(micro)


def _percent(part: Micro, whole: Micro) -> Decimal:
    if not whole:
        return Decimal(0)
    return (Decimal(part) * 100 / Decimal(whole)).quantize(Decimal("0.0001"))


def _market_fields(spec: MarketSpec, index: GammaIndex) -> dict[str, Any]:
    event = index.event_of(spec)
    return {"title": spec.question, "slug": spec.slug, "icon": "", "eventSlug": event.slug}


def _end_date(spec: MarketSpec) -> str:
    if spec.end_date_iso:
        return spec.end_date_iso[:10]
    return iso_ms(spec.terms.end_ms)[:10] if spec.terms is not None else ""


def position_row(p: Position, index: GammaIndex) -> dict[str, Any]:
    spec = p.market
    return {
        "proxyWallet": p.address,
        "asset": p.token_id,
        "conditionId": spec.condition_id,
        "size": _n(p.size),
        "avgPrice": _n(p.avg_price),
        "initialValue": _n(p.initial_value),
        "currentValue": _n(p.current_value),
        "cashPnl": _n(p.cash_pnl),
        "percentPnl": _percent(p.cash_pnl, p.initial_value),
        "totalBought": _n(p.total_bought),
        "realizedPnl": _n(p.realized_pnl),
        # UNCONFIRMED: what the venue divides realized PnL by; here by what all the shares bought cost.
        "percentRealizedPnl": _percent(p.realized_pnl, p.bought_cost),
        "curPrice": _n(p.cur_price),
        "redeemable": p.redeemable,
        "mergeable": p.mergeable,
        **_market_fields(spec, index),
        "eventId": index.event_of(spec).id,
        "outcome": p.outcome,
        "outcomeIndex": p.outcome_index,
        "oppositeOutcome": spec.outcomes[1 - p.outcome_index],
        "oppositeAsset": p.opposite_token_id,
        "endDate": _end_date(spec),
        "negativeRisk": spec.neg_risk,
    }


def closed_row(p: Position, index: GammaIndex) -> dict[str, Any]:
    spec = p.market
    return {
        "proxyWallet": p.address,
        "asset": p.token_id,
        "conditionId": spec.condition_id,
        "avgPrice": _n(p.avg_price),
        "totalBought": _n(p.total_bought),
        "realizedPnl": _n(p.realized_pnl),
        "curPrice": _n(p.cur_price),
        "timestamp": p.last_ms // 1000,
        **_market_fields(spec, index),
        "outcome": p.outcome,
        "outcomeIndex": p.outcome_index,
        "oppositeOutcome": spec.outcomes[1 - p.outcome_index],
        "oppositeAsset": p.opposite_token_id,
        "endDate": _end_date(spec),
    }


def trade_row(f: Fill, spec: MarketSpec, index: GammaIndex) -> dict[str, Any]:
    return {
        "proxyWallet": f.address,
        "side": f.side.name,
        "asset": f.token_id,
        "conditionId": spec.condition_id,
        "size": _n(f.size),
        "price": _n(f.price),
        "timestamp": f.time_ms // 1000,
        **_market_fields(spec, index),
        "outcome": f.outcome,
        "outcomeIndex": f.outcome_index,
        **profile(f.address),
        "transactionHash": f.transaction_hash,
    }


def _activity(
    address: str, ts: int, kind: str, size: Micro, usdc: Micro, spec: MarketSpec | None, index: GammaIndex
) -> dict[str, Any]:
    """A non-trade activity row: no price, side, asset or outcome (as recorded)."""
    market = _market_fields(spec, index) if spec is not None else {"title": "", "slug": "", "icon": "", "eventSlug": ""}
    return {
        "proxyWallet": address,
        "timestamp": ts,
        "conditionId": spec.condition_id if spec is not None else "",
        "type": kind,
        "size": _n(size),
        "usdcSize": _n(usdc),
        "transactionHash": "",
        "price": 0,
        "asset": "",
        "side": "",
        "outcomeIndex": NON_TRADE_OUTCOME_INDEX,
        **market,
        "outcome": "",
        **profile(address),
    }


def trade_activity(f: Fill, spec: MarketSpec, index: GammaIndex) -> dict[str, Any]:
    row = _activity(f.address, f.time_ms // 1000, "TRADE", f.size, f.pusd, spec, index)
    row.update(
        transactionHash=f.transaction_hash,
        price=_n(f.price),
        asset=f.token_id,
        side=f.side.name,
        outcomeIndex=f.outcome_index,
        outcome=f.outcome,
    )
    return row


def redeem_activity(address: str, positions: Iterable[Position], index: GammaIndex) -> list[dict[str, Any]]:
    """One REDEEM per resolved market the wallet held shares of: the shares burned (both outcomes), the
    pUSD paid. UNCONFIRMED: whether the venue's `size` counts the losing shares too."""
    by_market: dict[str, list[Position]] = {}
    for p in positions:
        if p.market.resolved and p.redeemed_shares:
            by_market.setdefault(p.market.condition_id, []).append(p)
    out = []
    for ps in by_market.values():
        spec = ps[0].market
        shares = sum(p.redeemed_shares for p in ps)
        paid = sum(p.redeemed for p in ps)
        out.append(_activity(address, max(p.last_ms for p in ps) // 1000, "REDEEM", shares, paid, spec, index))
    return out


class PayoutLike(Protocol):
    """A rewards or maker-rebate payment (the incentives part's `Payout`)."""

    @property
    def condition_id(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def amount(self) -> int: ...
    @property
    def paid_ms(self) -> int: ...


def payout_activity(
    address: str, payouts: Iterable[PayoutLike], markets: Mapping[str, MarketSpec], index: GammaIndex
) -> list[dict[str, Any]]:
    """REWARD / MAKER_REBATE rows for `payouts` (`markets` by lower-case condition id)."""
    out = []
    for p in payouts:
        if p.kind not in ACTIVITY_TYPES:
            continue
        spec = markets.get(p.condition_id.lower())
        out.append(_activity(address, p.paid_ms // 1000, p.kind, p.amount, p.amount, spec, index))
    return out


def payouts_of(exchange: Exchange, address: str) -> Sequence[PayoutLike]:
    """The wallet's rewards and rebates as the exchange paid them."""
    return exchange.incentives.payouts_of(address)


# --- query parameters ------------------------------------------------------------------------------


def _address(request: web.Request, name: str, *, required: bool) -> str | None:
    value = request.query.get(name)
    if not value:
        if required:
            raise InputError(f"missing required parameter: {name}", status=400)
        return None
    if not _ADDRESS.fullmatch(value.strip()):
        raise InputError(f"invalid {name}: expected 0x and 40 hex digits", status=400)
    return value.strip().lower()


def _list(request: web.Request, name: str, pattern: re.Pattern[str], what: str) -> list[str]:
    values = [v.strip() for raw in request.query.getall(name, []) for v in raw.split(",") if v.strip()]
    if len(values) > MAX_LIST:
        raise InputError(f"invalid {name}: at most {MAX_LIST} values", status=400)
    for v in values:
        if not pattern.fullmatch(v):
            raise InputError(f"invalid {name}: {v!r} is not {what}", status=400)
    return values


def _markets_param(request: web.Request, index: GammaIndex) -> set[str] | None:
    """The condition ids (lower-case) named by `market` or `eventId` (mutually exclusive), or None."""
    cids = _list(request, "market", _CONDITION, "a condition id (0x and 64 hex digits)")
    events = _list(request, "eventId", re.compile(r"[0-9]{1,18}"), "an event id")
    if cids and events:
        raise InputError("market and eventId are mutually exclusive", status=400)
    if cids:
        return {c.lower() for c in cids}
    if events:
        wanted = set(events)
        return {m.condition_id.lower() for e in index.events if e.id in wanted for m in e.markets}
    return None


def _enum(request: web.Request, name: str, allowed: Iterable[str], default: str) -> str:
    value = (request.query.get(name) or default).strip().upper()
    options = sorted(allowed)
    if value not in options:
        raise InputError(f"invalid {name}: one of {', '.join(options)}", status=400)
    return value


def _amount(request: web.Request, name: str, default: Micro) -> Micro:
    value = request.query.get(name)
    if value is None or value == "":
        return default
    try:
        amount = to_micro(value.strip(), name)
    except InputError:
        raise InputError(f"invalid {name}: expected a non-negative number", status=400) from None
    if amount < 0:
        raise InputError(f"invalid {name}: expected a non-negative number", status=400)
    return amount


def _page(request: web.Request, items: list[Any], limits: tuple[int, int], max_offset: int) -> list[Any]:
    limit = int_param(request, "limit", limits[0], limits[1], clamp=True)
    offset = int_param(request, "offset", 0, max_offset)
    return items[offset : offset + limit]


def _side(request: web.Request) -> Side | None:
    value = request.query.get("side")
    if not value:
        return None
    return Side.BUY if _enum(request, "side", ("BUY", "SELL"), "BUY") == "BUY" else Side.SELL


def _exchange(request: web.Request) -> Exchange:
    from polyoms.exchange.api.app import SERVICE

    return request.app[SERVICE].exchange


# --- handlers --------------------------------------------------------------------------------------

_POSITION_SORT: Final[dict[str, Callable[[Position], Any]]] = {
    "CURRENT": lambda p: p.current_value,
    "INITIAL": lambda p: p.initial_value,
    "TOKENS": lambda p: p.size,
    "CASHPNL": lambda p: p.cash_pnl,
    "PERCENTPNL": lambda p: _percent(p.cash_pnl, p.initial_value),
    "TITLE": lambda p: p.market.question,
    "RESOLVING": lambda p: _end_date(p.market),
    "PRICE": lambda p: p.cur_price,
    "AVGPRICE": lambda p: p.avg_price,
}
_CLOSED_SORT: Final[dict[str, Callable[[Position], Any]]] = {
    "REALIZEDPNL": lambda p: p.realized_pnl,
    "TITLE": lambda p: p.market.question,
    "PRICE": lambda p: p.cur_price,
    "AVGPRICE": lambda p: p.avg_price,
    "TIMESTAMP": lambda p: p.last_ms,
}


def _sorted(
    request: web.Request, items: list[Any], keys: Mapping[str, Callable[[Any], Any]], default: str
) -> list[Any]:
    by = _enum(request, "sortBy", keys, default)
    direction = _enum(request, "sortDirection", ("ASC", "DESC"), "DESC")
    return sorted(items, key=keys[by], reverse=direction == "DESC")


def _wallet(request: web.Request) -> tuple[Exchange, GammaIndex, str, set[str] | None, list[Position]]:
    ex = _exchange(request)
    index = GammaIndex.of(ex)
    user = _address(request, "user", required=True)
    assert user is not None
    wanted = _markets_param(request, index)
    title = (request.query.get("title") or "").strip().lower()
    if len(title) > 100:
        raise InputError("invalid title: at most 100 characters", status=400)
    positions = [
        p
        for p in wallet_positions(ex, user)
        if (wanted is None or p.market.condition_id.lower() in wanted) and title in p.market.question.lower()
    ]
    return ex, index, user, wanted, positions


async def get_positions(request: web.Request) -> web.Response:
    _, index, _, _, positions = _wallet(request)
    threshold = _amount(request, "sizeThreshold", MICRO)
    redeemable = bool_param(request, "redeemable")
    mergeable = bool_param(request, "mergeable")
    open_ = [
        p
        for p in positions
        if p.size > 0 and p.size >= threshold and (not redeemable or p.redeemable) and (not mergeable or p.mergeable)
    ]
    page = _page(request, _sorted(request, open_, _POSITION_SORT, "TOKENS"), POSITIONS_LIMIT, POSITIONS_MAX_OFFSET)
    return json_response([position_row(p, index) for p in page])


async def get_closed_positions(request: web.Request) -> web.Response:
    _, index, _, _, positions = _wallet(request)
    closed = [p for p in positions if p.size == 0 and p.total_bought > 0]
    page = _page(request, _sorted(request, closed, _CLOSED_SORT, "REALIZEDPNL"), CLOSED_LIMIT, CLOSED_MAX_OFFSET)
    return json_response([closed_row(p, index) for p in page])


async def get_value(request: web.Request) -> web.Response:
    _, _, user, _, positions = _wallet(request)
    return json_response([{"user": user, "value": _n(sum(p.current_value for p in positions))}])


async def get_trades(request: web.Request) -> web.Response:
    ex = _exchange(request)
    index = GammaIndex.of(ex)
    user = _address(request, "user", required=False)
    wanted = _markets_param(request, index)
    side = _side(request)
    taker_only = bool_param(request, "takerOnly", True)
    filter_type = request.query.get("filterType")
    filter_amount = request.query.get("filterAmount")
    if (filter_type is None) != (filter_amount is None):
        raise InputError("filterType and filterAmount must be given together", status=400)
    kind = _enum(request, "filterType", ("CASH", "TOKENS"), "TOKENS") if filter_type is not None else None
    minimum = _amount(request, "filterAmount", 0)
    if user is not None:
        trades = ex.trades(maker_address=user)
    elif wanted is not None and len(wanted) <= 10:
        trades = sorted((t for cid in wanted for t in ex.trades(market=cid)), key=lambda t: t.match_time_ms)
    else:
        trades = ex.trades()
    markets = {m.condition_id.lower(): m for m in ex.markets()}
    rows: list[tuple[Fill, MarketSpec]] = []
    for t in trades:
        spec = markets.get(t.market.lower())
        if spec is None or (wanted is not None and t.market.lower() not in wanted):
            continue
        for f in fills_of(t):
            if taker_only and not f.is_taker:
                continue
            if (user is not None and f.address != user) or (side is not None and f.side is not side):
                continue
            if kind is not None and (f.pusd if kind == "CASH" else f.size) < minimum:
                continue
            rows.append((f, spec))
    rows.reverse()  # newest first
    page = _page(request, rows, TRADES_LIMIT, TRADES_MAX_OFFSET)
    return json_response([trade_row(f, spec, index) for f, spec in page])


async def get_activity(request: web.Request) -> web.Response:
    ex = _exchange(request)
    index = GammaIndex.of(ex)
    user = _address(request, "user", required=True)
    assert user is not None
    wanted = _markets_param(request, index)
    types = {v.strip().upper() for raw in request.query.getall("type", []) for v in raw.split(",") if v.strip()}
    unknown = types - ACTIVITY_TYPES
    if unknown:
        raise InputError(f"invalid type: {', '.join(sorted(unknown))}", status=400)
    start = int_param(request, "start", 0, 10**12)
    end = int_param(request, "end", 10**12, 10**12)
    side = _side(request)
    sort_by = _enum(request, "sortBy", ("TIMESTAMP", "TOKENS", "CASH"), "TIMESTAMP")
    direction = _enum(request, "sortDirection", ("ASC", "DESC"), "DESC")
    markets = {m.condition_id.lower(): m for m in ex.markets()}
    tokens = token_markets(ex)
    rows: list[dict[str, Any]] = []
    for t in ex.trades(maker_address=user):
        for f in fills_of(t):
            if f.address == user and f.token_id in tokens:
                rows.append(trade_activity(f, tokens[f.token_id], index))
    rows.extend(redeem_activity(user, wallet_positions(ex, user, tokens), index))
    rows.extend(payout_activity(user, payouts_of(ex, user), markets, index))
    rows = [
        r
        for r in rows
        if (not types or r["type"] in types)
        and (wanted is None or r["conditionId"].lower() in wanted)
        and start <= r["timestamp"] <= end
        and (side is None or r["side"] == side.name)
    ]
    key: Callable[[dict[str, Any]], Any] = {
        "TIMESTAMP": lambda r: r["timestamp"],
        "TOKENS": lambda r: r["size"],
        "CASH": lambda r: r["usdcSize"],
    }[sort_by]
    rows.sort(key=key, reverse=direction == "DESC")
    return json_response(_page(request, rows, ACTIVITY_LIMIT, ACTIVITY_MAX_OFFSET))


def top_holders(exchange: Exchange, spec: MarketSpec, limit: int, min_balance: Micro) -> list[dict[str, Any]]:
    """Per token of `spec`, the largest balances of all the exchange's wallets (largest first)."""
    held: dict[str, list[tuple[Micro, str]]] = {t: [] for t in spec.token_ids}
    for acct in exchange.ledger:
        for token in spec.token_ids:
            amount = acct.tokens.get(token, 0)
            if amount > 0 and amount >= min_balance:
                held[token].append((amount, acct.address))
    out = []
    for idx, token in enumerate(spec.token_ids):
        top = sorted(held[token], key=lambda h: (-h[0], h[1]))[:limit]
        out.append(
            {
                "token": token,
                "holders": [
                    {
                        "proxyWallet": addr,
                        "bio": "",
                        "asset": token,
                        "pseudonym": pseudonym(addr),
                        "amount": _n(amount),
                        "displayUsernamePublic": True,
                        "outcomeIndex": idx,
                        "name": pseudonym(addr),
                        "profileImage": "",
                        "profileImageOptimized": "",
                    }
                    for amount, addr in top
                ],
            }
        )
    return out


async def get_holders(request: web.Request) -> web.Response:
    ex = _exchange(request)
    cids = _list(request, "market", _CONDITION, "a condition id (0x and 64 hex digits)")
    if not cids:
        raise InputError("missing required parameter: market", status=400)
    limit = int_param(request, "limit", HOLDERS_LIMIT[0], HOLDERS_LIMIT[1], clamp=True)
    min_balance = int_param(request, "minBalance", 1, HOLDERS_MAX_MIN_BALANCE) * MICRO
    markets = {m.condition_id.lower(): m for m in ex.markets()}
    out = []
    for cid in dict.fromkeys(c.lower() for c in cids):
        spec = markets.get(cid)
        if spec is not None:  # an unknown market has no holders (the venue answers an empty list)
            out.extend(top_holders(ex, spec, limit, min_balance))
    return json_response(out)


def add_routes(router: web.UrlDispatcher, limiter: RateLimiter | None = None) -> None:
    """The Data API's routes under `PREFIX`, rate-limited per client IP (doc §5.3)."""
    lim = limiter or RateLimiter(DATA_API_LIMITS)
    for path, handler in (
        ("/positions", get_positions),
        ("/closed-positions", get_closed_positions),
        ("/value", get_value),
        ("/trades", get_trades),
        ("/activity", get_activity),
        ("/holders", get_holders),
    ):
        router.add_get(PREFIX + path, limited(lim, path, handler))
