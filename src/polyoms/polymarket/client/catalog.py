"""The market catalog: what can be traded and with which parameters, cached, refreshed, searchable.

Sources, from least to most authoritative for trading parameters (applied in that order, so a later
one wins where it knows a field): Gamma (metadata, fee schedule, JSON-encoded outcomes/token ids),
CLOB /markets (paginated market objects), CLOB /clob-markets/{condition_id} (tick, neg-risk, minimum
size, fee curve: what the SDKs sign with). A `tick_size_change` from the market channel updates the
tick at once and survives a refresh that was already in flight when it arrived.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from typing import Any

from polyoms.core.clock import Clock
from polyoms.core.units import Micro, NumberLike, TickSize, tick_size
from polyoms.polymarket.client.clob import ClobClient
from polyoms.polymarket.client.gamma import GammaClient
from polyoms.polymarket.client.models import ClobMarketInfo, FeeParams, GammaMarket, Market
from polyoms.polymarket.client.redact import get_logger
from polyoms.polymarket.client.timing import MonotonicClock

log = get_logger()


@dataclass(frozen=True, slots=True)
class MarketInfo:
    """One binary market (condition) as the catalog knows it."""

    condition_id: str
    question: str = ""
    slug: str = ""
    outcomes: tuple[str, ...] = ()
    token_ids: tuple[str, ...] = ()
    """Same order as `outcomes` (YES first)."""
    tick: TickSize | None = None
    min_order_size: Micro | None = None
    neg_risk: bool | None = None
    neg_risk_market_id: str = ""
    end_date: str | None = None
    fees_enabled: bool | None = None
    fee: FeeParams | None = None
    accepting_orders: bool | None = None
    active: bool | None = None
    closed: bool | None = None
    seconds_delay: int | None = None
    gamma_id: str = ""
    sources: tuple[str, ...] = ()

    @property
    def tradable(self) -> bool:
        """Enough is known to sign an order, and the venue says it takes orders."""
        return bool(self.accepting_orders) and not self.closed and self.tick is not None and len(self.token_ids) == 2

    def outcome_of(self, token_id: str) -> str | None:
        for token, outcome in zip(self.token_ids, self.outcomes, strict=False):
            if token == token_id:
                return outcome
        return None

    def other_token(self, token_id: str) -> str | None:
        """The complementary token (BUY YES at p is SELL NO at 1 - p)."""
        if len(self.token_ids) != 2 or token_id not in self.token_ids:
            return None
        return self.token_ids[1] if self.token_ids[0] == token_id else self.token_ids[0]


def info_from_market(m: Market) -> MarketInfo:
    tokens = [t for t in m.tokens if t.token_id]
    return MarketInfo(
        condition_id=m.condition_id,
        question=m.question,
        slug=m.slug,
        outcomes=tuple(t.outcome for t in tokens),
        token_ids=tuple(t.token_id for t in tokens),
        tick=m.tick,
        min_order_size=m.min_order_size,
        neg_risk=m.neg_risk,
        neg_risk_market_id=m.neg_risk_market_id,
        end_date=m.end_date,
        accepting_orders=m.accepting_orders,
        active=m.active,
        closed=m.closed,
        seconds_delay=m.seconds_delay,
        sources=("clob",),
    )


def info_from_clob(c: ClobMarketInfo) -> MarketInfo:
    tokens = [t for t in c.tokens if t.token_id]
    return MarketInfo(
        condition_id=c.condition_id,
        outcomes=tuple(t.outcome for t in tokens),
        token_ids=tuple(t.token_id for t in tokens),
        tick=c.tick,
        min_order_size=c.min_order_size,
        neg_risk=c.neg_risk,
        # /clob-markets omits `fd` when the market has no fee: its absence is information.
        fees_enabled=c.fee is not None and c.fee.rate > 0,
        fee=c.fee,
        accepting_orders=c.accepting_orders,
        seconds_delay=c.seconds_delay,
        sources=("clob-markets",),
    )


def info_from_gamma(g: GammaMarket) -> MarketInfo:
    return MarketInfo(
        condition_id=g.condition_id,
        question=g.question,
        slug=g.slug,
        outcomes=g.outcomes,
        token_ids=g.token_ids,
        tick=g.tick,
        min_order_size=g.min_order_size,
        neg_risk=g.neg_risk,
        neg_risk_market_id=g.neg_risk_market_id,
        end_date=g.end_date,
        fees_enabled=g.fees_enabled,
        fee=g.fee,
        accepting_orders=g.accepting_orders,
        active=g.active,
        closed=g.closed,
        seconds_delay=g.seconds_delay,
        gamma_id=g.id,
        sources=("gamma",),
    )


def merge(base: MarketInfo | None, update: MarketInfo) -> MarketInfo:
    """`update`'s known fields over `base` (unknown = None, "" or empty)."""
    if base is None:
        return update
    changes: dict[str, Any] = {}
    for name in MarketInfo.__dataclass_fields__:
        if name in ("condition_id", "sources", "fee"):
            continue
        value = getattr(update, name)
        if value is None or value == "" or value == ():
            continue
        changes[name] = value
    if update.fees_enabled is not None:
        changes["fee"] = update.fee  # the fee curve travels with its source's fees_enabled
    changes["sources"] = tuple(dict.fromkeys(base.sources + update.sources))
    return replace(base, **changes)


class MarketCatalog:
    def __init__(
        self,
        clob: ClobClient | None = None,
        gamma: GammaClient | None = None,
        *,
        ttl_s: float = 300.0,
        clock: Clock | None = None,
        concurrency: int = 4,
    ) -> None:
        self.clob = clob
        self.gamma = gamma
        self.ttl_ms = round(ttl_s * 1000)
        self.clock: Clock = clock or MonotonicClock()
        self.concurrency = max(1, concurrency)
        self.loaded_at_ms: int | None = None
        self.refreshes = 0
        self._by_condition: dict[str, MarketInfo] = {}
        self._by_token: dict[str, str] = {}
        # token -> (tick, when): market-channel tick changes, re-applied over a refresh that started earlier.
        self._tick_changes: dict[str, tuple[TickSize, int]] = {}

    # --- contents ------------------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._by_condition)

    def __iter__(self) -> Iterator[MarketInfo]:
        return iter(list(self._by_condition.values()))

    def add(self, info: MarketInfo) -> MarketInfo:
        if not info.condition_id:
            return info
        merged = merge(self._by_condition.get(info.condition_id), info)
        self._by_condition[merged.condition_id] = merged
        for token in merged.token_ids:
            self._by_token[token] = merged.condition_id
        return merged

    def add_markets(self, markets: Iterable[Market]) -> None:
        for m in markets:
            self.add(info_from_market(m))

    def add_clob_info(self, info: ClobMarketInfo) -> MarketInfo:
        return self.add(info_from_clob(info))

    def add_gamma(self, markets: Iterable[GammaMarket]) -> None:
        for g in markets:
            self.add(info_from_gamma(g))

    def by_condition(self, condition_id: str) -> MarketInfo | None:
        return self._by_condition.get(condition_id) or self._by_condition.get(condition_id.lower())

    def by_token(self, token_id: str | int) -> MarketInfo | None:
        cid = self._by_token.get(str(token_id))
        return None if cid is None else self._by_condition.get(cid)

    def tick_size(self, token_id: str | int) -> TickSize | None:
        info = self.by_token(token_id)
        return None if info is None else info.tick

    def search(self, query: str, *, tradable_only: bool = False, limit: int | None = None) -> list[MarketInfo]:
        """Case-insensitive substring over question, slug and outcome names (all words must match)."""
        words = query.lower().split()
        out = []
        for info in self._by_condition.values():
            if tradable_only and not info.tradable:
                continue
            haystack = " ".join((info.question, info.slug, *info.outcomes)).lower()
            if all(w in haystack for w in words):
                out.append(info)
                if limit is not None and len(out) >= limit:
                    break
        return out

    # --- freshness ------------------------------------------------------------------------------------

    @property
    def stale(self) -> bool:
        return self.loaded_at_ms is None or self.clock.now_ms() - self.loaded_at_ms >= self.ttl_ms

    async def ensure_fresh(self) -> None:
        if self.stale:
            await self.refresh()

    async def refresh(self, *, enrich: bool = False, gamma_filters: dict[str, Any] | None = None) -> int:
        """Reload everything the configured sources know; returns the number of markets.

        `enrich` also fetches /clob-markets for every market that accepts orders (one request each,
        within the rate limits); `gamma_filters` (e.g. {"active": True, "closed": False}) load Gamma.
        The new contents replace the old in one step, so readers never see a half-loaded catalog.
        """
        started = self.clock.now_ms()
        fresh = MarketCatalog(ttl_s=self.ttl_ms / 1000, clock=self.clock)
        if self.gamma is not None and gamma_filters is not None:
            fresh.add_gamma(await self.gamma.all_markets(**gamma_filters))
        if self.clob is not None:
            fresh.add_markets([m async for m in self.clob.iter_markets()])
            if enrich:
                clob = self.clob
                wanted = [i.condition_id for i in fresh if i.accepting_orders]
                gate = asyncio.Semaphore(self.concurrency)

                async def one(cid: str) -> ClobMarketInfo:
                    async with gate:
                        return await clob.clob_market(cid)

                for info in await asyncio.gather(*(one(c) for c in wanted)):
                    fresh.add_clob_info(info)
        self._by_condition, self._by_token = fresh._by_condition, fresh._by_token
        for token, (tick, when) in self._tick_changes.items():
            if when >= started:
                self._apply_tick(token, tick)
        self.loaded_at_ms = self.clock.now_ms()
        self.refreshes += 1
        log.info("market catalog refreshed: %d markets", len(self))
        return len(self)

    async def load_market(self, condition_id: str) -> MarketInfo:
        """Fetch one market's /clob-markets (and /markets object) now and merge it in."""
        if self.clob is None:
            raise RuntimeError("this catalog has no CLOB client")
        self.add(info_from_market(await self.clob.market(condition_id)))
        return self.add_clob_info(await self.clob.clob_market(condition_id))

    async def resolve_token(self, token_id: str | int) -> MarketInfo:
        """The token's market, fetched (markets-by-token, then load_market) when not known yet."""
        known = self.by_token(token_id)
        if known is not None and known.tick is not None:
            return known
        if self.clob is None:
            raise RuntimeError("this catalog has no CLOB client")
        pair = await self.clob.market_by_token(token_id)
        return await self.load_market(pair.condition_id)

    # --- market-channel updates -----------------------------------------------------------------------

    def on_tick_size_change(self, event: Any, new_tick: TickSize | NumberLike | None = None) -> MarketInfo | None:
        """Apply a `tick_size_change`: a TickSizeChange event, or (token_id, new tick).

        Returns the updated market, or None if the token is not in the catalog (the change is kept
        and applied when the market is loaded by a refresh already in flight).
        """
        if new_tick is None:
            token_id, tick = str(event.asset_id), tick_size(event.new_tick_size)
        else:
            token_id, tick = str(event), tick_size(new_tick)
        self._tick_changes[token_id] = (tick, self.clock.now_ms())
        log.info("tick size of token %s is now %s", token_id, tick)
        return self._apply_tick(token_id, tick)

    def _apply_tick(self, token_id: str, tick: TickSize) -> MarketInfo | None:
        info = self.by_token(token_id)
        if info is None:
            return None
        updated = replace(info, tick=tick)
        self._by_condition[info.condition_id] = updated
        return updated
