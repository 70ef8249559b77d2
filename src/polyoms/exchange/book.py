"""One order book per market, kept in YES-price space (doc §7.1).

BUY YES at p and SELL NO at 1 − p are both YES bids at p; SELL YES at p and BUY NO at 1 − p are YES
asks at p. The NO token's book is the mirror image and is rendered, never stored.

Levels are dense arrays indexed by price / tick (≤ 10,000 per side): an update is O(1) and the best
level is tracked. Each level is a FIFO deque; a cancelled order is only flagged (`resting = False`)
and its size taken off the level at once, while the deque entry is dropped lazily — when it reaches
the front, when the level empties, or when dead entries outnumber live ones — so a cancel never
searches a queue.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from polyoms.core.units import MICRO
from polyoms.exchange.markets import MarketSpec
from polyoms.exchange.orders import Order

Level = tuple[int, int]
"""(price, total size), both micro-units."""

_COMPACT_SLACK = 16


@dataclass(frozen=True, slots=True)
class BookView:
    """One token's book as the venue shows it: bids ascending, asks descending (best level LAST)."""

    market: str
    asset_id: str
    bids: tuple[Level, ...]
    asks: tuple[Level, ...]

    @property
    def best_bid(self) -> int | None:
        return self.bids[-1][0] if self.bids else None

    @property
    def best_ask(self) -> int | None:
        return self.asks[-1][0] if self.asks else None


class MatchingBook:
    """The order book of one market. `best_bid == 0` / `best_ask == n` mean that side is empty."""

    __slots__ = (
        "ask_count",
        "ask_q",
        "ask_size",
        "best_ask",
        "best_bid",
        "bid_count",
        "bid_q",
        "bid_size",
        "market",
        "n",
        "no_token_id",
        "spec",
        "tick",
        "yes_token_id",
    )

    def __init__(self, spec: MarketSpec) -> None:
        self.market = spec.condition_id
        self.yes_token_id = spec.yes_token_id
        self.no_token_id = spec.no_token_id
        self._layout(spec)

    def _layout(self, spec: MarketSpec) -> None:
        """Empty level arrays for `spec`'s tick."""
        self.spec = spec
        self.tick = spec.tick.micro
        n = MICRO // self.tick
        self.n = n
        # Queues are created on a level's first order: a fine-tick book has 20,000 slots, and fewer
        # long-lived containers keep the garbage collector's full passes short.
        self.bid_q: list[deque[Order] | None] = [None] * (n + 1)
        self.ask_q: list[deque[Order] | None] = [None] * (n + 1)
        self.bid_size = [0] * (n + 1)
        self.ask_size = [0] * (n + 1)
        self.bid_count = [0] * (n + 1)
        self.ask_count = [0] * (n + 1)
        self.best_bid = 0
        self.best_ask = n

    def retick(self, spec: MarketSpec) -> None:
        """Switch to `spec`'s tick: rebuild the level arrays and queue every resting order again at its
        level on the new grid, keeping time priority within each level (an old level maps to exactly
        one new level). Every resting order's price must be on the new grid; cancel the others first.
        """
        tick = spec.tick.micro
        n = MICRO // tick
        live: list[tuple[Order, int]] = []
        for q in (*self.bid_q, *self.ask_q):
            if q:
                for o in q:
                    if o.resting:
                        level, off_grid = divmod(o.price if o.is_yes else MICRO - o.price, tick)
                        if off_grid or not 0 < level < n:
                            raise ValueError(f"order {o.order_id} at {o.price} is not on the {spec.tick.text} grid")
                        live.append((o, level))
        self._layout(spec)
        for o, level in live:
            o.level = level
            self.add(o)

    # --- updates -------------------------------------------------------------------------------

    def add(self, o: Order) -> None:
        """Queue `o` at the back of its level (`o.level`, `o.is_bid`, `o.remaining` set by the caller)."""
        i = o.level
        if o.is_bid:
            q = self.bid_q[i]
            if q is None:
                q = self.bid_q[i] = deque()
            q.append(o)
            self.bid_size[i] += o.remaining
            self.bid_count[i] += 1
            if i > self.best_bid:
                self.best_bid = i
        else:
            q = self.ask_q[i]
            if q is None:
                q = self.ask_q[i] = deque()
            q.append(o)
            self.ask_size[i] += o.remaining
            self.ask_count[i] += 1
            if i < self.best_ask:
                self.best_ask = i
        o.resting = True

    def remove(self, o: Order) -> None:
        """Take a resting order off the book (cancel, expiry)."""
        o.resting = False
        i = o.level
        if o.is_bid:
            q, size, count = self.bid_q[i], self.bid_size, self.bid_count
        else:
            q, size, count = self.ask_q[i], self.ask_size, self.ask_count
        assert q is not None
        size[i] -= o.remaining
        c = count[i] - 1
        count[i] = c
        if c == 0:
            q.clear()
            if o.is_bid:
                if i == self.best_bid:
                    self.best_bid = self.next_bid(i)
            elif i == self.best_ask:
                self.best_ask = self.next_ask(i)
        elif q[0] is o:
            q.popleft()
        elif len(q) > 2 * c + _COMPACT_SLACK:
            live = deque(x for x in q if x.resting)
            if o.is_bid:
                self.bid_q[i] = live
            else:
                self.ask_q[i] = live

    def consumed(self, bid_side: bool, i: int, qty: int, filled: int) -> None:
        """Makers at level `i` traded `qty` shares and `filled` of them are gone (flagged not resting).

        Matching fills a level in FIFO order, so the finished makers (and any cancelled ones between
        them) form the front of the queue.
        """
        if bid_side:
            q, size, count = self.bid_q[i], self.bid_size, self.bid_count
        else:
            q, size, count = self.ask_q[i], self.ask_size, self.ask_count
        assert q is not None
        size[i] -= qty
        c = count[i] - filled
        count[i] = c
        if c == 0:
            q.clear()
        else:
            while not q[0].resting:
                q.popleft()

    def next_bid(self, i: int) -> int:
        """The best non-empty bid level strictly below `i` (0 if none)."""
        size = self.bid_size
        i -= 1
        while i > 0 and size[i] == 0:
            i -= 1
        return i

    def next_ask(self, i: int) -> int:
        """The best non-empty ask level strictly above `i` (n if none)."""
        size, n = self.ask_size, self.n
        i += 1
        while i < n and size[i] == 0:
            i += 1
        return i

    # --- reading -------------------------------------------------------------------------------

    def yes_bid(self) -> int | None:
        return self.best_bid * self.tick if self.best_bid > 0 else None

    def yes_ask(self) -> int | None:
        return self.best_ask * self.tick if self.best_ask < self.n else None

    def best(self, is_yes: bool) -> tuple[int | None, int | None]:
        """(best bid, best ask) of one token in its own price space."""
        bid, ask = self.yes_bid(), self.yes_ask()
        if is_yes:
            return bid, ask
        return (MICRO - ask if ask is not None else None), (MICRO - bid if bid is not None else None)

    def is_crossed(self) -> bool:
        return self.best_bid > 0 and self.best_ask < self.n and self.best_bid >= self.best_ask

    def levels(self, bids: bool) -> list[Level]:
        """YES-space levels of one side, best first."""
        tick = self.tick
        if bids:
            size = self.bid_size
            return [(i * tick, size[i]) for i in range(self.best_bid, 0, -1) if size[i]]
        size = self.ask_size
        return [(i * tick, size[i]) for i in range(self.best_ask, self.n) if size[i]]

    def view(self, is_yes: bool) -> BookView:
        """One token's book, best level last on both sides (as GET /book returns it)."""
        tick, n = self.tick, self.n
        bs, asz = self.bid_size, self.ask_size
        # YES bids and NO asks both come from YES bids; ascending YES bid = descending NO ask.
        from_bids = [i for i in range(1, self.best_bid + 1) if bs[i]]
        from_asks = [i for i in range(n - 1, self.best_ask - 1, -1) if asz[i]]
        if is_yes:
            bids = tuple((i * tick, bs[i]) for i in from_bids)
            asks = tuple((i * tick, asz[i]) for i in from_asks)
            asset = self.yes_token_id
        else:
            bids = tuple((MICRO - i * tick, asz[i]) for i in from_asks)
            asks = tuple((MICRO - i * tick, bs[i]) for i in from_bids)
            asset = self.no_token_id
        return BookView(self.market, asset, bids, asks)

    def queue(self, bid_side: bool, level: int) -> list[Order]:
        """The live orders at one YES-space level, in time priority."""
        q = self.bid_q[level] if bid_side else self.ask_q[level]
        return [o for o in q if o.resting] if q else []
