"""Gamma API (market metadata, public, doc §4.13) and Data API (positions, trades, activity, §4.14).

Both are offset-paginated (`limit`, `offset`); page sizes and maxima are not documented
(UNCONFIRMED), so the iterators stop at the first short page.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Final, TypeVar

from polyoms.polymarket.client import models
from polyoms.polymarket.client.rest import RestCore

T = TypeVar("T")
Filter = str | int | bool | list[str] | tuple[str, ...] | None
DEFAULT_PAGE: Final = 100


def _query(filters: Mapping[str, Filter], **fixed: Filter) -> list[tuple[str, str]]:
    """Query pairs: booleans as true/false, lists as repeated keys, None dropped."""
    out: list[tuple[str, str]] = []
    for key, value in {**filters, **fixed}.items():
        if value is None:
            continue
        if isinstance(value, bool):
            out.append((key, "true" if value else "false"))
        elif isinstance(value, list | tuple):
            out.extend((key, str(v)) for v in value)
        else:
            out.append((key, str(value)))
    return out


async def _list(
    core: RestCore, path: str, params: list[tuple[str, str]], decode: Callable[[bytes], list[T]]
) -> list[T]:
    resp = await core.request("GET", path, params=params, idempotent=True)
    return decode(resp.body)


async def _all(fetch: Callable[[int, int], Any], page_size: int, max_items: int | None) -> list[Any]:
    out: list[Any] = []
    offset = 0
    while max_items is None or len(out) < max_items:
        page = await fetch(page_size, offset)
        out.extend(page)
        if len(page) < page_size:
            break
        offset += len(page)
    return out if max_items is None else out[:max_items]


class GammaClient:
    def __init__(self, core: RestCore) -> None:
        self.core = core

    async def markets(
        self, *, limit: int = DEFAULT_PAGE, offset: int = 0, **filters: Filter
    ) -> list[models.GammaMarket]:
        """GET /markets; filters as documented (slug, id, condition_ids, clob_token_ids, active, closed...)."""
        params = _query(filters, limit=limit, offset=offset)
        return await _list(self.core, "/markets", params, models.decode_gamma_markets)

    async def all_markets(
        self, *, page_size: int = DEFAULT_PAGE, max_items: int | None = None, **filters: Filter
    ) -> list[models.GammaMarket]:
        async def fetch(limit: int, offset: int) -> list[models.GammaMarket]:
            return await self.markets(limit=limit, offset=offset, **filters)

        return await _all(fetch, page_size, max_items)

    async def market(self, market_id: str | int) -> models.GammaMarket:
        resp = await self.core.request("GET", f"/markets/{market_id}", idempotent=True)
        return models.decode_gamma_market(resp.body)

    async def market_by_slug(self, slug: str) -> models.GammaMarket | None:
        found = await self.markets(slug=slug, limit=1)
        return found[0] if found else None

    async def events(self, *, limit: int = DEFAULT_PAGE, offset: int = 0, **filters: Filter) -> list[models.GammaEvent]:
        params = _query(filters, limit=limit, offset=offset)
        return await _list(self.core, "/events", params, models.decode_gamma_events)

    async def event(self, event_id: str | int) -> models.GammaEvent:
        resp = await self.core.request("GET", f"/events/{event_id}", idempotent=True)
        return models.decode_gamma_event(resp.body)

    async def search(self, query: str, **filters: Filter) -> models.GammaSearch:
        resp = await self.core.request("GET", "/public-search", params=_query(filters, q=query), idempotent=True)
        return models.decode_gamma_search(resp.body)

    async def tags(self, *, limit: int = DEFAULT_PAGE, offset: int = 0) -> list[models.GammaTag]:
        return await _list(self.core, "/tags", _query({}, limit=limit, offset=offset), models.decode_gamma_tags)


class DataClient:
    """Data API. `user` is the funder (proxy, Safe or deposit wallet) address, not the signer."""

    def __init__(self, core: RestCore) -> None:
        self.core = core

    async def positions(
        self, user: str, *, limit: int = DEFAULT_PAGE, offset: int = 0, **filters: Filter
    ) -> list[models.DataPosition]:
        params = _query(filters, user=user, limit=limit, offset=offset)
        return await _list(self.core, "/positions", params, models.decode_positions)

    async def all_positions(
        self, user: str, *, page_size: int = DEFAULT_PAGE, **filters: Filter
    ) -> list[models.DataPosition]:
        async def fetch(limit: int, offset: int) -> list[models.DataPosition]:
            return await self.positions(user, limit=limit, offset=offset, **filters)

        return await _all(fetch, page_size, None)

    async def trades(
        self,
        *,
        user: str | None = None,
        market: str | None = None,
        limit: int = DEFAULT_PAGE,
        offset: int = 0,
        **filters: Filter,
    ) -> list[models.DataTrade]:
        params = _query(filters, user=user, market=market, limit=limit, offset=offset)
        return await _list(self.core, "/trades", params, models.decode_data_trades)

    async def activity(
        self, user: str, *, limit: int = DEFAULT_PAGE, offset: int = 0, **filters: Filter
    ) -> list[models.Activity]:
        params = _query(filters, user=user, limit=limit, offset=offset)
        return await _list(self.core, "/activity", params, models.decode_activity)
