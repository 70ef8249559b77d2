"""Where algorithms get the book from, and how our own orders are taken out of it.

A book source answers `levels(token_id)` with both sides best level first (sync or async) and may answer
`instrument(token_id)` with the token's tick, market and complement. Three are provided:

* `ExchangeBooks` — the local exchange in process (backtests, the in-process venue);
* `MirrorBooks` — the order-book mirror (`core.book.BookSet`) fed by the market channel (live, paper);
* `RestBooks` — GET /book through the REST client, for a process without a market stream.

Algorithms must not see their own orders as "the market" (an order at the best bid would find itself
there and never know it was undercut), so `others_only` subtracts every resting order of ours — on the
token itself, and on its complement, whose BUY at p is an ask at 1 − p in this token's book.
"""

from __future__ import annotations

from collections.abc import Awaitable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from polyoms.algos.base import BookTop, Instrument, Level
from polyoms.core.enums import Side
from polyoms.core.units import MICRO, Micro, TickSize


@dataclass(frozen=True, slots=True)
class BookLevels:
    bids: tuple[Level, ...]
    """Best (highest) first."""
    asks: tuple[Level, ...]
    """Best (lowest) first."""
    trusted: bool = True


class BookSource(Protocol):
    def levels(self, token_id: str) -> BookLevels | Awaitable[BookLevels | None] | None: ...


# --- adapters ----------------------------------------------------------------------------------------


class _ExchangeView(Protocol):
    @property
    def bids(self) -> Sequence[Level]: ...

    @property
    def asks(self) -> Sequence[Level]: ...


class _MarketLike(Protocol):
    @property
    def condition_id(self) -> str: ...

    @property
    def yes_token_id(self) -> str: ...

    @property
    def no_token_id(self) -> str: ...

    @property
    def tick(self) -> TickSize: ...

    @property
    def neg_risk(self) -> bool: ...

    @property
    def min_size(self) -> int: ...


class _ExchangeLike(Protocol):
    def book(self, token_id: str) -> _ExchangeView: ...

    def market_of_token(self, token_id: str) -> Any: ...


class ExchangeBooks:
    """The local exchange's books, read directly (its views list the best level last)."""

    def __init__(self, exchange: _ExchangeLike, depth: int = 10) -> None:
        self.exchange = exchange
        self.depth = depth

    def levels(self, token_id: str) -> BookLevels:
        view = self.exchange.book(token_id)
        n = self.depth
        return BookLevels(tuple(reversed(view.bids[-n:])), tuple(reversed(view.asks[-n:])))

    def instrument(self, token_id: str) -> Instrument:
        return instrument_of(self.exchange.market_of_token(token_id), token_id)


def instrument_of(market: _MarketLike, token_id: str, fee_rate_bps: int | None = None) -> Instrument:
    """An Instrument from a market description with YES/NO token ids (the local exchange's MarketSpec)."""
    yes, no = market.yes_token_id, market.no_token_id
    complement = no if token_id == yes else yes
    return Instrument(
        token_id, market.tick, market.condition_id, complement, market.neg_risk, market.min_size, fee_rate_bps
    )


class _MirrorBook(Protocol):
    def levels(self, side: Side, limit: int | None = None) -> list[Level]: ...

    @property
    def trusted(self) -> bool: ...


class _BookSetLike(Protocol):
    def get(self, asset_id: str) -> Any: ...


class MirrorBooks:
    """The market channel's mirror (`core.book.BookSet`); an untrusted book is reported as such."""

    def __init__(self, books: _BookSetLike, depth: int = 10) -> None:
        self.books = books
        self.depth = depth

    def levels(self, token_id: str) -> BookLevels | None:
        book: _MirrorBook | None = self.books.get(token_id)
        if book is None:
            return None
        return BookLevels(
            tuple(book.levels(Side.BUY, self.depth)), tuple(book.levels(Side.SELL, self.depth)), book.trusted
        )


class _BookClient(Protocol):
    async def book(self, token_id: str | int) -> Any: ...


class _MarketClient(Protocol):
    async def market_by_token(self, token_id: str | int) -> Any: ...

    async def tick_size(self, token_id: str | int) -> TickSize: ...

    async def neg_risk(self, token_id: str | int) -> bool: ...

    async def fee_rate_bps(self, token_id: str | int) -> int: ...


class RestBooks:
    """GET /book per look (the snapshot lists the best level last); instruments from the market endpoints
    (/markets-by-token, /tick-size, /neg-risk, /fee-rate) when the client has them."""

    def __init__(self, client: _BookClient, depth: int = 10, *, min_size: Micro = 5 * MICRO) -> None:
        self.client = client
        self.depth = depth
        self.min_size = min_size

    async def levels(self, token_id: str) -> BookLevels:
        snap = await self.client.book(token_id)
        n = self.depth
        return BookLevels(tuple(reversed(snap.bids[-n:])), tuple(reversed(snap.asks[-n:])))

    async def instrument(self, token_id: str) -> Instrument:
        c: _MarketClient = self.client  # type: ignore[assignment]
        pair = await c.market_by_token(token_id)
        complement = pair.secondary_token_id if pair.primary_token_id == token_id else pair.primary_token_id
        tick = await c.tick_size(token_id)
        return Instrument(
            token_id,
            tick,
            pair.condition_id,
            complement,
            await c.neg_risk(token_id),
            self.min_size,
            await c.fee_rate_bps(token_id),
        )


# --- our own orders out ------------------------------------------------------------------------------

Own = dict[str, tuple[dict[Micro, Micro], dict[Micro, Micro]]]


class _Resting(Protocol):
    @property
    def token_id(self) -> str: ...

    @property
    def side(self) -> Side: ...

    @property
    def price(self) -> Micro: ...

    @property
    def in_book(self) -> Micro: ...


def own_resting(orders: Iterable[_Resting]) -> Own:
    """token → (our bid sizes by price, our ask sizes by price) of every resting order of ours (the OMS's
    records or the OMS view's summaries)."""
    out: Own = {}
    for o in orders:
        left = o.in_book
        if left <= 0:
            continue
        bids, asks = out.setdefault(o.token_id, ({}, {}))
        side = bids if o.side is Side.BUY else asks
        side[o.price] = side.get(o.price, 0) + left
    return out


def _minus(levels: Iterable[Level], own: Mapping[Micro, Micro]) -> tuple[Level, ...]:
    if not own:
        return tuple(levels)
    out = []
    for price, size in levels:
        left = size - own.get(price, 0)
        if left > 0:
            out.append((price, left))
    return tuple(out)


def others_only(token_id: str, levels: BookLevels, own: Own, complement: str = "") -> BookTop:
    """The book without our orders on `token_id` and, mirrored, on its `complement`."""
    mine_bids: dict[Micro, Micro] = {}
    mine_asks: dict[Micro, Micro] = {}
    bids, asks = own.get(token_id, ({}, {}))
    mine_bids.update(bids)
    mine_asks.update(asks)
    if complement:
        c_bids, c_asks = own.get(complement, ({}, {}))
        for p, q in c_bids.items():  # BUY complement at p = an ask at 1 − p here
            mine_asks[MICRO - p] = mine_asks.get(MICRO - p, 0) + q
        for p, q in c_asks.items():
            mine_bids[MICRO - p] = mine_bids.get(MICRO - p, 0) + q
    return BookTop(token_id, _minus(levels.bids, mine_bids), _minus(levels.asks, mine_asks))
