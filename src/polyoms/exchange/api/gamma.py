"""The venue's Gamma API (gamma-api.polymarket.com, doc §4.13) on the local exchange, under /gamma-api.

Public market metadata: markets, events (markets grouped), tags and search, in the shapes of the recorded
responses (shared/fixtures/polymarket/gamma/): `outcomes`, `outcomePrices` and `clobTokenIds` are
JSON-encoded strings, events nest their markets and markets their events. Static facts come from
`Exchange.markets()` (the market specs), live ones (best bid/ask, last trade, spread, prices from the
midpoints, volume) from the books and trades.

Ids: Gamma's are numeric strings. Ours are derived from the condition id (markets) or the event slug
(events, tags) by hashing, so they are stable between runs and whatever order markets are listed in.
Events: markets grouped by `event_slug`; neg-risk markets without one by `neg_risk_market_id` (the event
slug is then their slugs' common prefix); any other market is an event of its own, as on the venue.

Markets that another part retires from memory later will still be found through `Exchange.markets()`
as long as it lists them; this module only ever asks it.
"""

from __future__ import annotations

import hashlib
import json
import weakref
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Final

from aiohttp import web

from polyoms.core.errors import InputError, NotFoundError
from polyoms.core.units import MICRO, Micro, from_micro
from polyoms.exchange.api import render_markets
from polyoms.exchange.api.http import json_response
from polyoms.exchange.api.public_limits import GAMMA_LIMITS, RateLimiter, limited
from polyoms.exchange.engine import Exchange
from polyoms.exchange.fees import rebate_share
from polyoms.exchange.markets import MarketSpec, slugify
from polyoms.exchange.trades import TRADE_FAILED, Trade
from polyoms.polymarket.protocol.constants import PUSD

PREFIX: Final = "/gamma-api"
# UNCONFIRMED: Gamma's default and largest page sizes are not documented (clients page with limit/offset).
DEFAULT_LIMIT: Final = 20
MAX_LIMIT: Final = 500
MAX_OFFSET: Final = 100_000
SEARCH_LIMIT: Final = 10
"""UNCONFIRMED: events per /public-search page when `limit_per_type` is not given."""
MARKETS_DEFAULT_CLOSED: Final[bool | None] = None
"""UNCONFIRMED: a client library reports that /markets leaves closed markets out unless `closed` is
sent; not in the venue's docs, so here no `closed` filter means no filter."""
ID_DIGITS: Final = 9
DAY_MS: Final = 86_400_000
_WINDOWS: Final = {"24hr": DAY_MS, "1wk": 7 * DAY_MS, "1mo": 30 * DAY_MS, "1yr": 365 * DAY_MS}
_HOUR_MS: Final = 3_600_000
_CHANGE_WINDOWS: Final = {"oneDay": DAY_MS, "oneWeek": 7 * DAY_MS, "oneMonth": 30 * DAY_MS, "oneYear": 365 * DAY_MS}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


# --- ids and events --------------------------------------------------------------------------------


def numeric_id(kind: str, key: str) -> int:
    """A stable positive number of `ID_DIGITS` digits for `key` (the venue's ids are numeric strings)."""
    digest = hashlib.sha256(f"polyoms:gamma:{kind}:{key.lower()}".encode()).digest()
    low: int = 10 ** (ID_DIGITS - 1)
    return low + int.from_bytes(digest[:8], "big") % (9 * low)


def _assign_ids(kind: str, keys: Iterable[str]) -> dict[str, str]:
    """Ids for distinct keys; a collision (rare) moves the later key, in sorted order, to the next free id."""
    taken: set[int] = set()
    out: dict[str, str] = {}
    for key in sorted(set(keys)):
        n = numeric_id(kind, key)
        while n in taken:
            n += 1
        taken.add(n)
        out[key] = str(n)
    return out


@dataclass(frozen=True, slots=True)
class GammaEvent:
    id: str
    slug: str
    title: str
    markets: tuple[MarketSpec, ...]
    neg_risk_market_id: str

    @property
    def neg_risk(self) -> bool:
        return bool(self.neg_risk_market_id)


def _event_key(spec: MarketSpec) -> str:
    if spec.event_slug:
        return "slug:" + spec.event_slug
    if spec.neg_risk_market_id:
        return "negrisk:" + spec.neg_risk_market_id.lower()
    return "market:" + spec.condition_id.lower()


def _common_slug(slugs: Sequence[str]) -> str:
    """The words all slugs start with ("world-cup-winner-brazil", "world-cup-winner-france" → "world-cup-winner")."""
    words = [s.split("-") for s in slugs]
    common: list[str] = []
    for group in zip(*words, strict=False):
        if len(set(group)) != 1:
            break
        common.append(group[0])
    return "-".join(common) or slugs[0]


class GammaIndex:
    """The exchange's markets with their Gamma ids and events, built per request (O(markets))."""

    def __init__(self, markets: Sequence[MarketSpec]) -> None:
        self.markets = list(markets)
        self.market_ids = _assign_ids("market", (m.condition_id for m in self.markets))
        groups: dict[str, list[MarketSpec]] = {}
        for m in self.markets:
            groups.setdefault(_event_key(m), []).append(m)
        slugs: dict[str, str] = {}
        for key, ms in groups.items():
            if key.startswith("slug:"):
                slugs[key] = key[5:]
            elif key.startswith("negrisk:"):
                slugs[key] = _common_slug([m.slug for m in ms])
            else:
                slugs[key] = ms[0].slug
        ids = _assign_ids("event", slugs.values())
        self.events: list[GammaEvent] = []
        self._event_of: dict[str, GammaEvent] = {}
        for key, ms in groups.items():
            slug = slugs[key]
            title = ms[0].question if len(ms) == 1 else slug.replace("-", " ").title()
            nr = next((m.neg_risk_market_id for m in ms if m.neg_risk_market_id), "")
            event = GammaEvent(ids[slug], slug, title, tuple(ms), nr)
            self.events.append(event)
            for m in ms:
                self._event_of[m.condition_id.lower()] = event

    @classmethod
    def of(cls, exchange: Exchange) -> GammaIndex:
        return cls(exchange.markets())

    def market_id(self, spec: MarketSpec) -> str:
        return self.market_ids[spec.condition_id]

    def event_of(self, spec: MarketSpec) -> GammaEvent:
        return self._event_of[spec.condition_id.lower()]


def tag_of(spec: MarketSpec) -> str:
    """A market's tag: its category (the venue tags markets with many; we have one)."""
    return spec.category.strip().lower()


def tag_id(label: str) -> str:
    return str(numeric_id("tag", label))


# --- live data -------------------------------------------------------------------------------------


class VolumeTracker:
    """Traded pUSD per market in hourly buckets, fed by the exchange's trade hook (after one backfill)."""

    def __init__(self, exchange: Exchange) -> None:
        self._buckets: dict[str, dict[int, Micro]] = {}
        for t in exchange.trades():
            self.add(t)
        exchange.add_trade_hook(self._hook)

    def _hook(self, trades: Sequence[Trade], now_ms: int) -> None:
        for t in trades:
            self.add(t)

    def add(self, t: Trade) -> None:
        if t.status == TRADE_FAILED:
            return
        buckets = self._buckets.setdefault(t.market.lower(), {})
        hour = t.match_time_ms // _HOUR_MS
        buckets[hour] = buckets.get(hour, 0) + t.pusd
        if len(buckets) > 2 * 24 * 366:  # bounded: nothing older than the longest window is asked for
            for h in sorted(buckets)[: len(buckets) - 24 * 366]:
                del buckets[h]

    def volume(self, condition_id: str, now_ms: int, window_ms: int | None = None) -> Micro:
        buckets = self._buckets.get(condition_id.lower(), {})
        if window_ms is None:
            return sum(buckets.values())
        first = (now_ms - window_ms) // _HOUR_MS
        return sum(v for h, v in buckets.items() if h > first)


_trackers: weakref.WeakKeyDictionary[Exchange, VolumeTracker] = weakref.WeakKeyDictionary()


def volume_tracker(exchange: Exchange) -> VolumeTracker:
    tracker = _trackers.get(exchange)
    if tracker is None:
        tracker = _trackers[exchange] = VolumeTracker(exchange)
    return tracker


@dataclass(frozen=True, slots=True)
class LiveMarket:
    """What the books and trades say about a market now (micro-units)."""

    best_bid: Micro | None
    best_ask: Micro | None
    last_trade: Micro | None
    yes_price: Micro
    liquidity: Micro
    volume: Mapping[str, Micro]
    price_change: Mapping[str, Micro]
    """YES price now minus its last trade before each window ("oneDay"...), 0 with no trade before it."""


def live_market(exchange: Exchange, spec: MarketSpec, now_ms: int) -> LiveMarket:
    token = spec.yes_token_id
    bid, ask = exchange.best_bid_ask(token)
    last = exchange.last_trade(token)
    if spec.resolved:
        yes = MICRO if spec.winning_token_id == token else 0
    else:
        mid = exchange.midpoint(token)
        yes = mid if mid is not None else (last[0] if last else MICRO // 2)
    view = exchange.book(token)
    liquidity = sum(p * s // MICRO for p, s in (*view.bids, *view.asks))
    tracker = volume_tracker(exchange)
    volume = {"": tracker.volume(spec.condition_id, now_ms)}
    volume.update({k: tracker.volume(spec.condition_id, now_ms, w) for k, w in _WINDOWS.items()})
    changes = {}
    for name, window in _CHANGE_WINDOWS.items():
        before = exchange.trades(market=spec.condition_id, before=(now_ms - window) // 1000)
        then = _yes_price(spec, before[-1]) if before else None
        changes[name] = 0 if then is None else yes - then
    return LiveMarket(bid, ask, last[0] if last else None, yes, liquidity, volume, changes)


def _yes_price(spec: MarketSpec, t: Trade) -> Micro:
    return t.price if t.asset_id == spec.yes_token_id else MICRO - t.price


# --- rendering -------------------------------------------------------------------------------------


def iso_ms(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _end_date(spec: MarketSpec) -> str:
    if spec.end_date_iso:
        return spec.end_date_iso
    return iso_ms(spec.terms.end_ms) if spec.terms is not None else ""


def _start_ms(spec: MarketSpec) -> int:
    return spec.terms.start_ms if spec.terms is not None and not spec.created_ms else spec.created_ms


def _num(micro: Micro | None) -> Decimal:
    return from_micro(micro) if micro is not None else Decimal(0)


def _fee_type(spec: MarketSpec) -> str | None:
    # The recorded markets: "crypto_fees_v2" on crypto, "general_fees" elsewhere, null without fees.
    if not spec.fee.enabled:
        return None
    return "crypto_fees_v2" if tag_of(spec) == "crypto" else "general_fees"


def fee_schedule(spec: MarketSpec) -> dict[str, Any]:
    share = rebate_share(spec.category)
    return {
        "exponent": spec.fee.exponent,
        "rate": Decimal(spec.fee.rate),
        "takerOnly": spec.fee.taker_only,
        "rebateRate": Decimal(share.numerator) / Decimal(share.denominator),
    }


def _rewards(spec: MarketSpec, market_id: str) -> dict[str, Any]:
    r = spec.rewards
    if r is None:
        return {"rewardsMinSize": 0, "rewardsMaxSpread": 0}
    return {
        "rewardsMinSize": from_micro(r.min_size),
        "rewardsMaxSpread": render_markets.max_spread_cents(spec),
        "clobRewards": [
            {
                "id": market_id,
                "conditionId": spec.condition_id,
                "assetAddress": PUSD.lower(),
                "rewardsAmount": 0,
                "rewardsDailyRate": from_micro(r.daily_rate),
                "startDate": iso_ms(spec.created_ms)[:10],
                "endDate": "2500-12-31",  # the recorded programmes' open end
            }
        ],
    }


def market_body(spec: MarketSpec, index: GammaIndex, live: LiveMarket, *, with_events: bool = True) -> dict[str, Any]:
    """One Gamma market object."""
    mid = index.market_id(spec)
    yes = live.yes_price
    spread = (live.best_ask - live.best_bid) if live.best_bid is not None and live.best_ask is not None else None
    start = iso_ms(_start_ms(spec))
    end = _end_date(spec)
    event = index.event_of(spec)
    vol = {k: from_micro(v) for k, v in live.volume.items()}
    body: dict[str, Any] = {
        "id": mid,
        "question": spec.question,
        "conditionId": spec.condition_id,
        "slug": spec.slug,
        "resolutionSource": "",
        "endDate": end,
        "liquidity": str(from_micro(live.liquidity)),
        "startDate": start,
        "image": "",
        "icon": "",
        "description": spec.description,
        "outcomes": json.dumps(list(spec.outcomes)),
        "outcomePrices": json.dumps([str(from_micro(yes)), str(from_micro(MICRO - yes))]),
        "volume": str(vol[""]),
        "active": spec.active,
        "closed": spec.closed,
        "marketMakerAddress": "",
        "createdAt": start,
        "updatedAt": start,
        "new": False,
        "featured": False,
        "archived": False,
        "restricted": True,
        "groupItemTitle": spec.outcomes[0] if not event.neg_risk else spec.question,
        "groupItemThreshold": "0",
        "questionID": "0x" + hashlib.sha256(f"polyoms:question:{spec.condition_id}".encode()).hexdigest(),
        "enableOrderBook": True,
        "orderPriceMinTickSize": Decimal(spec.tick.text),
        "orderMinSize": from_micro(spec.min_size),
        "volumeNum": vol[""],
        "liquidityNum": from_micro(live.liquidity),
        "endDateIso": end[:10],
        "startDateIso": start[:10],
        "hasReviewedDates": True,
        "volumeClob": vol[""],
        "liquidityClob": from_micro(live.liquidity),
        "makerBaseFee": 0,
        "takerBaseFee": spec.fee.rate_bps,
        "acceptingOrders": spec.accepting_orders,
        "acceptingOrdersTimestamp": start,
        "negRisk": spec.neg_risk,
        "negRiskMarketID": spec.neg_risk_market_id,
        "negRiskRequestID": "",
        "negRiskOther": False,
        "clobTokenIds": json.dumps(list(spec.token_ids)),
        "ready": False,
        "funded": False,
        "cyom": False,
        "competitive": Decimal(0),
        "pagerDutyNotificationEnabled": False,
        "approved": True,
        "spread": _num(spread),
        "lastTradePrice": _num(live.last_trade),
        "bestBid": _num(live.best_bid),
        "bestAsk": _num(live.best_ask) if live.best_ask is not None else Decimal(1),
        **{f"{k}PriceChange": from_micro(v) for k, v in live.price_change.items()},
        "automaticallyActive": True,
        "clearBookOnStart": False,
        "manualActivation": False,
        "showGmpSeries": False,
        "showGmpOutcome": False,
        "seriesColor": "",
        "umaBond": "0",
        "umaReward": "0",
        "umaResolutionStatuses": "[]",
        "customLiveness": 0,
        "resolvedBy": "",
        "submitted_by": "",
        "comboStatus": "disabled",
        "deploying": False,
        "deployingTimestamp": start,
        "pendingDeployment": False,
        "rfqEnabled": False,
        "holdingRewardsEnabled": False,
        "feesEnabled": spec.fee.enabled,
        "requiresTranslation": False,
        "feeType": _fee_type(spec),
        "feeSchedule": fee_schedule(spec),
        # `secondsDelay` is the sports delay (§7.6 `sd`), which the exchange does not model. UNCONFIRMED: how
        # Gamma shows the taker-order delay (`itode`); the CLOB SDK's name for it is used.
        "secondsDelay": 0,
        "takerOrderDelayEnabled": spec.taker_delay,
        **_rewards(spec, mid),
    }
    for k, v in vol.items():
        if k:
            body[f"volume{k}"] = v
            body[f"volume{k}Clob"] = v
    if spec.terms is not None:
        body["eventStartTime"] = iso_ms(spec.terms.start_ms)
        # The price to beat: the start price of an up/down market once known, the strike of an above one.
        body["priceToBeat"] = Decimal(spec.terms.strike) if spec.terms.strike else None
    if spec.resolved:
        body["umaResolutionStatuses"] = json.dumps(["resolved"])
        body["closedTime"] = start
    if tag_of(spec):
        body["category"] = spec.category
    if with_events:
        body["events"] = [event_body(event, index, {}, with_markets=False)]
    return body


def _tags(event: GammaEvent) -> list[dict[str, Any]]:
    labels = sorted({tag_of(m) for m in event.markets if tag_of(m)})
    return [tag_body(label) for label in labels]


def tag_body(label: str) -> dict[str, Any]:
    return {
        "id": tag_id(label),
        "label": label.title(),
        "slug": slugify(label),
        "forceShow": False,
        "createdAt": iso_ms(0),
        "updatedAt": iso_ms(0),
        "requiresTranslation": False,
    }


def event_body(
    event: GammaEvent, index: GammaIndex, live: Mapping[str, LiveMarket], *, with_markets: bool = True
) -> dict[str, Any]:
    """One Gamma event object (its markets nested when `with_markets`)."""
    ms = event.markets
    start = iso_ms(min(_start_ms(m) for m in ms))
    end = max((_end_date(m) for m in ms), default="")
    volumes = [lv.volume for lv in live.values()]

    def total(key: str) -> Decimal:
        return from_micro(sum(v.get(key, 0) for v in volumes))

    body: dict[str, Any] = {
        "id": event.id,
        "ticker": event.slug,
        "slug": event.slug,
        "title": event.title,
        "description": ms[0].description,
        "resolutionSource": "",
        "startDate": start,
        "creationDate": start,
        "endDate": end,
        "startTime": start,
        "image": "",
        "icon": "",
        "active": any(m.active for m in ms),
        "closed": all(m.closed for m in ms),
        "archived": False,
        "new": False,
        "featured": False,
        "restricted": True,
        "liquidity": from_micro(sum(lv.liquidity for lv in live.values())),
        "volume": total(""),
        "openInterest": 0,
        "sortBy": "price",
        "createdAt": start,
        "updatedAt": start,
        "competitive": Decimal(0),
        "volume24hr": total("24hr"),
        "volume1wk": total("1wk"),
        "volume1mo": total("1mo"),
        "volume1yr": total("1yr"),
        "enableOrderBook": True,
        "liquidityClob": from_micro(sum(lv.liquidity for lv in live.values())),
        "negRisk": event.neg_risk,
        "commentCount": 0,
        "cyom": False,
        "showAllOutcomes": True,
        "showMarketImages": False,
        "enableNegRisk": event.neg_risk,
        "automaticallyActive": True,
        "negRiskAugmented": False,
        "pendingDeployment": False,
        "deploying": False,
        "requiresTranslation": False,
        "cumulativeMarkets": False,
        "gmpChartMode": "default",
        "eventMetadata": {},
        "tags": _tags(event),
    }
    if event.neg_risk:
        body["negRiskMarketID"] = event.neg_risk_market_id
    if with_markets:
        body["markets"] = [market_body(m, index, live[m.condition_id], with_events=False) for m in ms]
    return body


# --- query parameters ------------------------------------------------------------------------------


def _values(request: web.Request, name: str) -> list[str]:
    """A parameter given repeatedly (`id=1&id=2`) or comma-separated (`id=1,2`)."""
    return [v.strip() for raw in request.query.getall(name, []) for v in raw.split(",") if v.strip()]


def bool_param(request: web.Request, name: str, default: bool | None = None) -> bool | None:
    value = request.query.get(name)
    if value is None or value == "":
        return default
    low = value.strip().lower()
    if low in ("true", "1"):
        return True
    if low in ("false", "0"):
        return False
    raise InputError(f"invalid {name}: expected true or false", status=400)


def int_param(request: web.Request, name: str, default: int, maximum: int, *, clamp: bool = False) -> int:
    """An integer in [0, maximum] (above it: clamped when `clamp`, else a 400)."""
    value = request.query.get(name)
    if value is None or value == "":
        return default
    text = value.strip()
    if not (text.isascii() and text.isdigit()) or len(text) > 18:
        raise InputError(f"invalid {name}: expected a non-negative integer", status=400)
    number = int(text)
    if number > maximum:
        if clamp:
            return maximum
        raise InputError(f"invalid {name}: at most {maximum}", status=400)
    return number


def _page(request: web.Request, items: list[Any]) -> list[Any]:
    limit = int_param(request, "limit", DEFAULT_LIMIT, MAX_LIMIT, clamp=True)
    offset = int_param(request, "offset", 0, MAX_OFFSET)
    return items[offset : offset + limit]


def _exchange(request: web.Request) -> Exchange:
    from polyoms.exchange.api.app import SERVICE

    return request.app[SERVICE].exchange


def _now(request: web.Request) -> int:
    from polyoms.exchange.api.app import SERVICE

    return request.app[SERVICE].clock.now_ms()


def _lives(ex: Exchange, specs: Iterable[MarketSpec], now: int) -> dict[str, LiveMarket]:
    return {m.condition_id: live_market(ex, m, now) for m in specs}


# Market sort keys Gamma clients use (`order=volume24hr,liquidity`); others are refused.
_MARKET_ORDER: Final[dict[str, Callable[[MarketSpec, GammaIndex, LiveMarket], Any]]] = {
    "id": lambda m, ix, lv: int(ix.market_id(m)),
    "slug": lambda m, ix, lv: m.slug,
    "question": lambda m, ix, lv: m.question,
    "volume": lambda m, ix, lv: lv.volume[""],
    "volumeNum": lambda m, ix, lv: lv.volume[""],
    "volume24hr": lambda m, ix, lv: lv.volume["24hr"],
    "volume1wk": lambda m, ix, lv: lv.volume["1wk"],
    "liquidity": lambda m, ix, lv: lv.liquidity,
    "liquidityNum": lambda m, ix, lv: lv.liquidity,
    "endDate": lambda m, ix, lv: _end_date(m),
    "startDate": lambda m, ix, lv: _start_ms(m),
    "createdAt": lambda m, ix, lv: _start_ms(m),
    "lastTradePrice": lambda m, ix, lv: lv.last_trade or 0,
    "bestBid": lambda m, ix, lv: lv.best_bid or 0,
    "bestAsk": lambda m, ix, lv: lv.best_ask or 0,
}


def _ordered(request: web.Request, items: list[Any], keys: Mapping[str, Callable[[Any], Any]]) -> list[Any]:
    order = _values(request, "order")
    ascending = bool_param(request, "ascending", False)
    for field in reversed(order):  # the first field sorts last, so it wins
        key = keys.get(field)
        if key is None:
            raise InputError(f"invalid order: {field!r}; one of {', '.join(sorted(keys))}", status=400)
        items = sorted(items, key=key, reverse=not ascending)
    return items


def _flag_filters(request: web.Request, active: bool, closed: bool) -> bool:
    want_active = bool_param(request, "active")
    want_closed = bool_param(request, "closed", MARKETS_DEFAULT_CLOSED)
    archived = bool_param(request, "archived")
    return (
        (want_active is None or want_active == active)
        and (want_closed is None or want_closed == closed)
        and archived is not True
    )


# --- handlers --------------------------------------------------------------------------------------


async def get_markets(request: web.Request) -> web.Response:
    ex, now = _exchange(request), _now(request)
    index = GammaIndex.of(ex)
    ids = set(_values(request, "id"))
    slugs = set(_values(request, "slug"))
    cids = {c.lower() for c in _values(request, "condition_ids")}
    tokens = set(_values(request, "clob_token_ids"))
    tag = request.query.get("tag_id")
    chosen = [
        m
        for m in index.markets
        if (not ids or index.market_id(m) in ids)
        and (not slugs or m.slug in slugs)
        and (not cids or m.condition_id.lower() in cids)
        and (not tokens or not tokens.isdisjoint(m.token_ids))
        and (not tag or (tag_of(m) and tag_id(tag_of(m)) == tag))
        and _flag_filters(request, m.active, m.closed)
    ]
    lives = _lives(ex, chosen, now)
    keyed = {k: (lambda m, f=f: f(m, index, lives[m.condition_id])) for k, f in _MARKET_ORDER.items()}
    page = _page(request, _ordered(request, chosen, keyed))
    return json_response([market_body(m, index, lives[m.condition_id]) for m in page])


def _one_market(request: web.Request, found: Callable[[MarketSpec, GammaIndex], bool], what: str) -> web.Response:
    ex = _exchange(request)
    index = GammaIndex.of(ex)
    spec = next((m for m in index.markets if found(m, index)), None)
    if spec is None:
        raise NotFoundError(f"market not found: {what}", status=404)
    return json_response(market_body(spec, index, live_market(ex, spec, _now(request))))


async def get_market(request: web.Request) -> web.Response:
    mid = request.match_info["id"]
    return _one_market(request, lambda m, ix: ix.market_id(m) == mid, mid)


async def get_market_by_slug(request: web.Request) -> web.Response:
    slug = request.match_info["slug"]
    return _one_market(request, lambda m, ix: m.slug == slug, slug)


def _event_matches(request: web.Request, e: GammaEvent) -> bool:
    ids = set(_values(request, "id"))
    slugs = set(_values(request, "slug"))
    tag = request.query.get("tag_id")
    active = any(m.active for m in e.markets)
    closed = all(m.closed for m in e.markets)
    return (
        (not ids or e.id in ids)
        and (not slugs or e.slug in slugs)
        and (not tag or any(tag_of(m) and tag_id(tag_of(m)) == tag for m in e.markets))
        and _flag_filters(request, active, closed)
    )


_EVENT_ORDER: Final[dict[str, Callable[[GammaEvent], Any]]] = {
    "id": lambda e: int(e.id),
    "slug": lambda e: e.slug,
    "title": lambda e: e.title,
    "startDate": lambda e: min(_start_ms(m) for m in e.markets),
    "endDate": lambda e: max(_end_date(m) for m in e.markets),
}


def _events_body(ex: Exchange, index: GammaIndex, events: Iterable[GammaEvent], now: int) -> list[dict[str, Any]]:
    out = []
    for e in events:
        out.append(event_body(e, index, _lives(ex, e.markets, now)))
    return out


async def get_events(request: web.Request) -> web.Response:
    ex = _exchange(request)
    index = GammaIndex.of(ex)
    chosen = [e for e in index.events if _event_matches(request, e)]
    page = _page(request, _ordered(request, chosen, _EVENT_ORDER))
    return json_response(_events_body(ex, index, page, _now(request)))


def _one_event(request: web.Request, key: str) -> web.Response:
    """The event whose `key` ("id" or "slug") is the path's, or 404."""
    ex = _exchange(request)
    index = GammaIndex.of(ex)
    wanted = request.match_info[key]
    event = next((e for e in index.events if getattr(e, key) == wanted), None)
    if event is None:
        raise NotFoundError(f"event not found: {wanted}", status=404)
    return json_response(_events_body(ex, index, [event], _now(request))[0])


async def get_event(request: web.Request) -> web.Response:
    return _one_event(request, "id")


async def get_event_by_slug(request: web.Request) -> web.Response:
    return _one_event(request, "slug")


async def public_search(request: web.Request) -> web.Response:
    """Events whose title, slug or one of whose markets' questions contains every word of `q`."""
    q = (request.query.get("q") or "").strip().lower()
    if not q:
        raise InputError("missing required parameter: q", status=400)
    if len(q) > 200:
        raise InputError("invalid q: at most 200 characters", status=400)
    words = q.split()
    ex = _exchange(request)
    index = GammaIndex.of(ex)

    def text(e: GammaEvent) -> str:
        return " ".join([e.title, e.slug, *(m.question for m in e.markets), *(m.slug for m in e.markets)]).lower()

    hits = [e for e in index.events if all(w in text(e) for w in words)]
    closed = bool_param(request, "keep_closed_markets")
    if closed is False:
        hits = [e for e in hits if not all(m.closed for m in e.markets)]
    limit = int_param(request, "limit_per_type", SEARCH_LIMIT, MAX_LIMIT, clamp=True)
    page_no = int_param(request, "page", 1, MAX_OFFSET)
    start = max(page_no - 1, 0) * limit
    page = hits[start : start + limit]
    return json_response(
        {
            "events": _events_body(ex, index, page, _now(request)),
            "pagination": {"hasMore": start + limit < len(hits), "totalResults": len(hits)},
        }
    )


async def get_tags(request: web.Request) -> web.Response:
    labels = sorted({tag_of(m) for m in _exchange(request).markets() if tag_of(m)})
    return json_response(_page(request, [tag_body(label) for label in labels]))


def add_routes(router: web.UrlDispatcher, limiter: RateLimiter | None = None) -> None:
    """Gamma's routes under `PREFIX`, rate-limited per client IP (doc §5.3)."""
    lim = limiter or RateLimiter(GAMMA_LIMITS)

    def route(path: str, scope: str, handler: Handler) -> None:
        router.add_get(PREFIX + path, limited(lim, scope, handler))

    route("/markets", "/markets", get_markets)
    route("/markets/slug/{slug}", "/markets", get_market_by_slug)
    route("/markets/{id}", "/markets", get_market)
    route("/events", "/events", get_events)
    route("/events/slug/{slug}", "/events", get_event_by_slug)
    route("/events/{id}", "/events", get_event)
    route("/public-search", "/public-search", public_search)
    route("/tags", "/tags", get_tags)
