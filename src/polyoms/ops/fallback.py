"""The WebSocket → REST fallback loop: watches the streams, switches the engine's mode, polls REST.

    fb = RestFallback(engine, user_stream, FallbackConfig(after_s=15), market_stream=ms,
                      books=hub.public.books, quotas=quotas_of(hub.ip_limiter))
    task = asyncio.create_task(fb.run())

The policy (when to degrade, the poll interval, reduce-only admission) is `oms/fallback.py`; this is its
I/O. Nothing here writes trading state: the mode, the REST view's time and the REST books are events of
the engine (`enter_degraded`, `rest_poll`, `note_rest_books`), and what a poll learns goes through the
engine's reconciliation, so a fill seen by a poll and again by the stream's backfill is recorded once.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from polyoms.core.market_events import BookSnapshot
from polyoms.oms import repairs
from polyoms.oms.engine import Engine
from polyoms.oms.fallback import DEGRADED, LIVE, BookWatch, FallbackConfig, StreamWatch, poll_interval_s, quote_of
from polyoms.polymarket.client.ratelimit import IpLimiter, SlidingWindow, ip_route
from polyoms.polymarket.client.ws_user import UserStream

if TYPE_CHECKING:
    from polyoms.polymarket.client.ws_market import MarketStream

log = logging.getLogger(__name__)

MAX_BOOK_TOKENS: Final = 200
"""Books polled at most per round (tokens with open orders first, then positions)."""


POLL_REQUESTS: Final = (("GET", "/data/orders"), ("GET", "/data/trades"))
"""One poll: the open orders and the trades (one page each, as a rule)."""
BOOKS_PER_REQUEST: Final = 500
"""Tokens per POST /books (ClobClient.books chunks by the same number)."""


def poll_cost(books: int = 0) -> Counter[str]:
    """Requests one poll (and `books` tokens' books) charges to each per-IP quota, by the client's own
    routing (`ratelimit.ip_route`)."""
    wanted = [(m, p, 1) for m, p in POLL_REQUESTS]
    if books:
        wanted.append(("POST", "/books", math.ceil(books / BOOKS_PER_REQUEST)))
    cost: Counter[str] = Counter()
    for method, path, n in wanted:
        for name in ip_route("clob", method, path):
            cost[name] += n
    return cost


def quotas_of(limiter: IpLimiter) -> dict[str, list[tuple[int, int]]]:
    """The client's per-IP limits as `poll_interval_s` reads them ({} when limits are disabled)."""
    if not limiter.config.enabled:
        return {}
    return {
        name: [(w.limit, w.window_ms) for w in windows if isinstance(w, SlidingWindow)]
        for name, windows in limiter.limits.items()
    }


@dataclass(slots=True)
class FallbackStats:
    degraded_entered: int = 0
    degraded_left: int = 0
    polls: int = 0
    poll_failures: int = 0
    trades_learned: int = 0
    """Trades (legs) a poll applied that the engine did not have: what the stream failed to deliver."""
    book_polls: int = 0
    book_failures: int = 0
    last_error: str = ""


class RestFallback:
    """Drives the degraded mode (module doc). `run()` until cancelled; `step()` is one tick."""

    def __init__(
        self,
        engine: Engine,
        user_stream: UserStream,
        config: FallbackConfig,
        *,
        market_stream: MarketStream | None = None,
        books: Callable[[Sequence[str]], Awaitable[list[BookSnapshot]]] | None = None,
        quotas: Mapping[str, Sequence[tuple[int, int]]] | None = None,
        tick_s: float = 0.25,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.engine = engine
        self.user_stream = user_stream
        self.config = config
        self.market_stream = market_stream
        self.books = books
        self.quotas = dict(quotas or {})
        self.tick_s = tick_s
        self._sleep = sleep
        after_ms = round(config.after_s * 1000)
        self.watch = StreamWatch(after_ms)
        self.book_watch = BookWatch(after_ms)
        self.stats = FallbackStats()
        self._next_poll_ms = 0
        self._next_books_ms = 0

    @property
    def mode(self) -> str:
        return self.watch.mode

    def interval_s(self, books: int = 0) -> float:
        c = self.config
        cost = poll_cost(books)
        return poll_interval_s(self.quotas, cost, budget_share=c.budget_share, min_interval_s=c.min_interval_s)

    async def run(self) -> None:
        if not self.config.enabled:
            return
        while True:
            await self._sleep(self.tick_s)
            try:
                await self.step()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a failing venue only delays the fallback; it must not end it
                self.stats.last_error = f"{type(exc).__name__}: {exc}"
                log.exception("rest fallback step failed")

    async def step(self) -> None:
        engine = self.engine
        now = engine.clock.now_ms()
        healthy = self.user_stream.confirmed and not engine.flags.user_stream_gapped
        change = self.watch.observe(now, healthy)
        if change == DEGRADED:
            self.stats.degraded_entered += 1
            await engine.enter_degraded(self._reason(now), self.config.max_view_age_ms(self.interval_s()))
            self._next_poll_ms = now  # the first poll right away: admission is closed until it is applied
        elif change == LIVE:
            self.stats.degraded_left += 1
            await engine.leave_degraded()
        if self.mode == DEGRADED and now >= self._next_poll_ms:
            self._next_poll_ms = now + round(self.interval_s() * 1000)
            await self._poll()
        await self._poll_books(now)

    def _reason(self, now_ms: int) -> str:
        s = self.user_stream
        since = self.watch.down_since_ms if self.watch.down_since_ms is not None else now_ms
        what = s.gap_reason if not s.live else "LIVE but silent (no PONG since it came live)"
        return f"user stream not confirmed for {(now_ms - since) / 1000:.1f} s: {what}"

    async def _poll(self) -> None:
        try:
            batches = await self.engine.rest_poll()
        except Exception as exc:  # the view goes stale; admission closes once it is too old
            self.stats.poll_failures += 1
            self.stats.last_error = f"{type(exc).__name__}: {exc}"
            log.warning("rest fallback poll failed: %s", self.stats.last_error)
            return
        self.stats.polls += 1
        learned = sum(1 for b in batches for d in b.diffs if d.kind == repairs.MISSED_TRADE)
        if learned:
            self.stats.trades_learned += learned
            log.warning("rest fallback: %d trade(s) learned by polling while the user stream is down", learned)

    def _interesting_tokens(self) -> list[str]:
        """Tokens with open orders of ours (parents' children included), then held positions."""
        st = self.engine.state
        wallet = self.engine.venue.wallet
        tokens: dict[str, None] = {o.token_id: None for o in st.open_orders(wallet)}
        lg = st.ledgers.get(wallet)
        if lg is not None:
            for token, pos in sorted(lg.positions.items()):
                if pos.confirmed > 0 or pos.prov_in > 0:
                    tokens[token] = None
        return list(tokens)[:MAX_BOOK_TOKENS]

    def _untrusted(self, tokens: Iterable[str]) -> list[str]:
        ms = self.market_stream
        return [t for t in tokens if ms is None or not ms.is_trusted(t)]

    async def _poll_books(self, now_ms: int) -> None:
        if self.books is None:
            return
        due = self.book_watch.due(now_ms, self._untrusted(self._interesting_tokens()), degraded=self.mode == DEGRADED)
        if not due or now_ms < self._next_books_ms:
            return
        interval = self.interval_s(books=len(due))
        self._next_books_ms = now_ms + round(interval * 1000)
        try:
            snapshots = await self.books(due)
        except Exception as exc:
            self.stats.book_failures += 1
            self.stats.last_error = f"books: {type(exc).__name__}: {exc}"
            log.warning("rest fallback: book poll failed: %s", self.stats.last_error)
            return
        self.stats.book_polls += 1
        quotes = {b.asset_id: quote_of(b) for b in snapshots if b.asset_id in due}
        if quotes:
            await self.engine.note_rest_books(quotes, now_ms, self.config.max_view_age_ms(interval))
