"""The order-book mirror: one token's book as dense integer arrays, plus a container and mirror views.

Prices live on a grid inside (0, 1) with at most 10,000 steps (the finest tick is 0.0001), so each
side is a list indexed by grid step holding the level's total size in micro-units. Setting a level
is O(1); the best price moves only when a level appears beyond it or the best level empties, and
the next level is then found with `bytearray.find` over an occupancy map (C speed) rather than a
Python scan. `BookSet.apply_price_change` applies the venue's price_change text directly (grid
tables map price strings to indices; one int() per size): no per-update parsing or allocation.
When the optional C extension is built, that method runs compiled (`polyoms.core.speedups`) with
the same results; the Python code here stays the reference and the fallback.
Everything here is pure: no I/O, no clock.

Trust: a book is TRUSTED only after a snapshot was applied and nothing since suggests it diverged
from the venue. A tick-size change, an invalid update, a mismatching snapshot hash or best price, or
a stream gap reported by the caller (`mark_untrusted`) makes it UNTRUSTED with a reason; only the
next snapshot makes it trusted again. An untrusted book keeps applying updates (so it is as current
as it can be) but callers must not take new risk on it (architecture, principle 8).

Crossed books (best bid >= best ask) occur transiently on the venue; they are counted and reported
by `is_crossed`, never an error.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from enum import StrEnum
from fractions import Fraction
from math import gcd
from typing import Final

import msgspec

from polyoms.core import speedups
from polyoms.core.enums import Side
from polyoms.core.errors import MalformedMessageError
from polyoms.core.market_events import (
    BookSnapshot,
    LastTradePrice,
    Level,
    MarketEvent,
    PriceChange,
    PriceLevelChange,
    TickSizeChange,
)
from polyoms.core.units import DIGIT_SCALE, FINEST_TICK, MICRO, Micro, TickSize, fmt_micro

# Every tick the venue uses is a multiple of 0.0001, so it is the finest grid ever needed.
FINEST_STEP: Final = FINEST_TICK
MAX_LEVELS: Final = MICRO // FINEST_STEP


class _Grid:
    """Lookup tables of one grid step, shared by every book on it: price -> index, the venue's price
    text -> index (the hot path never parses a price), and best-price text -> index including the
    venue's empty-side markers ("0"/"" for bids -> 0, "1"/"" for asks -> n)."""

    __slots__ = ("best_ask_text", "best_bid_text", "index", "n", "step", "text")

    def __init__(self, step: int) -> None:
        n = MICRO // step
        self.step = step
        self.n = n
        self.index: dict[Micro, int] = {i * step: i for i in range(1, n)}
        self.text: dict[str, int] = {fmt_micro(i * step): i for i in range(1, n)}
        self.best_bid_text: dict[str, int] = {**self.text, "0": 0, "": 0}
        self.best_ask_text: dict[str, int] = {**self.text, "1": n, "": n}


_GRIDS: dict[int, _Grid] = {}
# Digits after the point + 1 -> the factor that turns the digits of "12.34" (1234) into micro-units.
_SCALE_BY_WIDTH: Final[dict[int, int]] = dict(enumerate(DIGIT_SCALE))


def _grid(step: int) -> _Grid:
    grid = _GRIDS.get(step)
    if grid is None:
        grid = _GRIDS[step] = _Grid(step)
    return grid


class TrustState(StrEnum):
    TRUSTED = "TRUSTED"
    UNTRUSTED = "UNTRUSTED"


class HashStatus(StrEnum):
    UNCHECKED = "UNCHECKED"
    MATCH = "MATCH"
    MISMATCH = "MISMATCH"


class Rounding(StrEnum):
    FLOOR = "FLOOR"
    CEIL = "CEIL"
    HALF_EVEN = "HALF_EVEN"


def round_fraction(value: Fraction, rounding: Rounding) -> int:
    """An exact value rounded to an integer (of micro-units) in the named direction."""
    if rounding is Rounding.FLOOR:
        return value.numerator // value.denominator
    if rounding is Rounding.CEIL:
        return -((-value.numerator) // value.denominator)
    return round(value)  # Fraction.__round__ is exact half-to-even


class Sweep(msgspec.Struct, frozen=True):
    """Walking the book for a taker order of `requested` size (shares, micro-units).

    Exact values are Fractions of micro-units: `notional` is pUSD, `vwap` a price. `slippage` is how
    much worse than the best price the average fill is (>= 0 on an uncrossed book), `slippage_vs_mid`
    the same against the mid. `complete` is False when the book (or `limit_price`) ran out first.
    """

    side: Side
    requested: Micro
    filled: Micro
    notional: Fraction
    levels: int
    best_price: Micro | None
    worst_price: Micro | None
    vwap: Fraction | None
    slippage: Fraction | None
    slippage_vs_mid: Fraction | None

    @property
    def complete(self) -> bool:
        return self.filled == self.requested

    def vwap_micro(self, rounding: Rounding = Rounding.HALF_EVEN) -> Micro | None:
        return None if self.vwap is None else round_fraction(self.vwap, rounding)

    def notional_micro(self, rounding: Rounding = Rounding.CEIL) -> Micro:
        """pUSD paid (BUY, round up to be safe) or received (SELL: pass FLOOR)."""
        return round_fraction(self.notional, rounding)


class BookQueries:
    """Everything derived from a book's primitives; shared by `Book` and `MirrorBook`."""

    __slots__ = ()

    # --- primitives (subclasses implement) ------------------------------------------------------

    def best_bid(self) -> Micro | None:
        raise NotImplementedError

    def best_ask(self) -> Micro | None:
        raise NotImplementedError

    def iter_levels(self, side: Side) -> Iterator[Level]:
        """(price, size) of one side, best level first. BUY = bids, SELL = asks."""
        raise NotImplementedError

    def size_at(self, side: Side, price: Micro) -> Micro:
        raise NotImplementedError

    def own_size(self, side: Side, price: Micro) -> Micro:
        """Our resting size at a level, as told by `Book.set_own_order`."""
        raise NotImplementedError

    @property
    def trusted(self) -> bool:
        raise NotImplementedError

    # --- derived --------------------------------------------------------------------------------

    def best(self, side: Side) -> Micro | None:
        return self.best_bid() if side is Side.BUY else self.best_ask()

    def best_bid_size(self) -> Micro:
        price = self.best_bid()
        return 0 if price is None else self.size_at(Side.BUY, price)

    def best_ask_size(self) -> Micro:
        price = self.best_ask()
        return 0 if price is None else self.size_at(Side.SELL, price)

    @property
    def is_crossed(self) -> bool:
        bid, ask = self.best_bid(), self.best_ask()
        return bid is not None and ask is not None and bid >= ask

    def spread(self) -> Micro | None:
        bid, ask = self.best_bid(), self.best_ask()
        return None if bid is None or ask is None else ask - bid

    def mid(self) -> Micro | None:
        """Exact: every venue price is a multiple of 100 micro-units, so the mid is a whole micro-unit."""
        bid, ask = self.best_bid(), self.best_ask()
        return None if bid is None or ask is None else (bid + ask) // 2

    def micro_price(self) -> Fraction | None:
        """(bid·ask_size + ask·bid_size) / (bid_size + ask_size), exact, in micro-units of price."""
        bid, ask = self.best_bid(), self.best_ask()
        if bid is None or ask is None:
            return None
        bid_size, ask_size = self.size_at(Side.BUY, bid), self.size_at(Side.SELL, ask)
        return Fraction(bid * ask_size + ask * bid_size, bid_size + ask_size)

    def micro_price_micro(self, rounding: Rounding = Rounding.HALF_EVEN) -> Micro | None:
        value = self.micro_price()
        return None if value is None else round_fraction(value, rounding)

    def levels(self, side: Side, limit: int | None = None) -> list[Level]:
        """Up to `limit` levels of one side, best first."""
        out: list[Level] = []
        if limit is not None and limit <= 0:
            return out
        for level in self.iter_levels(side):
            out.append(level)
            if limit is not None and len(out) >= limit:
                break
        return out

    def depth(self, side: Side, levels: int) -> Micro:
        """Total size of the best `levels` levels of one side."""
        return sum(size for _, size in self.levels(side, levels))

    def size_within(self, side: Side, limit_price: Micro) -> Micro:
        """Total size at prices at least as good as `limit_price` (bids >= it, asks <= it)."""
        total = 0
        for price, size in self.iter_levels(side):
            if (price < limit_price) if side is Side.BUY else (price > limit_price):
                break
            total += size
        return total

    def others_size(self, side: Side, price: Micro) -> Micro:
        """What rests at a level besides our own orders (never negative, even if the mirror lags)."""
        return max(self.size_at(side, price) - self.own_size(side, price), 0)

    def sweep(self, side: Side, size: Micro, *, limit_price: Micro | None = None) -> Sweep:
        """Walk the book for a taker `side` order of `size`: BUY consumes asks, SELL consumes bids."""
        if size <= 0:
            raise ValueError("sweep size must be positive")
        buying = side is Side.BUY
        remaining = size
        notional = 0  # price * size, in units of 10^-12 pUSD
        used = 0
        best_price: Micro | None = None
        worst_price: Micro | None = None
        for price, level_size in self.iter_levels(side.opposite):
            if limit_price is not None and ((price > limit_price) if buying else (price < limit_price)):
                break
            if best_price is None:
                best_price = price
            take = level_size if level_size < remaining else remaining
            notional += price * take
            remaining -= take
            worst_price = price
            used += 1
            if not remaining:
                break
        filled = size - remaining
        vwap = Fraction(notional, filled) if filled else None
        slippage = slippage_mid = None
        if vwap is not None and best_price is not None:
            slippage = vwap - best_price if buying else best_price - vwap
            mid = self.mid()
            if mid is not None:
                slippage_mid = vwap - mid if buying else mid - vwap
        return Sweep(
            side=side,
            requested=size,
            filled=filled,
            notional=Fraction(notional, MICRO),
            levels=used,
            best_price=best_price,
            worst_price=worst_price,
            vwap=vwap,
            slippage=slippage,
            slippage_vs_mid=slippage_mid,
        )

    def vwap(self, side: Side, size: Micro) -> Fraction | None:
        """Average price of a taker `side` order of `size` (None if nothing would fill)."""
        return self.sweep(side, size).vwap


class Book(BookQueries):
    """One token's book. Sizes are micro-shares, prices micro-pUSD; BUY = bids, SELL = asks.

    Internals: level `i` of a side holds the size at price `i * step`. The best bid index is 0 when
    there are no bids and the best ask index is `n` (price 1) when there are no asks, so "crossed"
    is a single comparison and the venue's own "0"/"1" empty-side markers come out for free.
    The grid `step` is the tick size when known; a valid price off that grid (a tick change we were
    not told about, orders left from a finer tick) refines the grid instead of being dropped.
    """

    __slots__ = (
        "_asks",
        "_ba",
        "_bb",
        "_bids",
        "_grid",
        "_index",
        "_n",
        "_occ_asks",
        "_occ_bids",
        "_own_levels",
        "_own_orders",
        "_step",
        "_text_index",
        "_trust",
        "_ts",
        "asset_id",
        "awaiting_snapshot",
        "best_mismatches",
        "crossed_updates",
        "epoch",
        "hash",
        "hash_status",
        "last_trade_price",
        "market",
        "min_order_size",
        "neg_risk",
        "rejected_updates",
        "snapshots",
        "tick_size",
        "untrusted_reason",
    )

    def __init__(self, asset_id: str, market: str = "", tick_size: TickSize | None = None) -> None:
        self.asset_id = asset_id
        self.market = market
        self.tick_size = tick_size
        self.min_order_size: Micro | None = None
        self.neg_risk: bool | None = None
        self.last_trade_price: Micro | None = None
        # The last event's timestamp: an int, or a price_change's text (parsed only when asked for).
        self._ts: int | str | None = None
        self.hash = ""
        self.hash_status = HashStatus.UNCHECKED
        self.epoch = 0
        self.awaiting_snapshot = True
        self._trust = TrustState.UNTRUSTED
        self.untrusted_reason = "no snapshot yet"
        self.snapshots = 0
        self.rejected_updates = 0
        self.crossed_updates = 0
        self.best_mismatches = 0
        self._own_orders: dict[str, tuple[Side, Micro, Micro]] = {}
        self._own_levels: tuple[dict[Micro, dict[str, Micro]], dict[Micro, dict[str, Micro]]] = ({}, {})
        self._allocate(tick_size.micro if tick_size is not None else FINEST_STEP)

    def _allocate(self, step: int) -> None:
        grid = _grid(step)
        n = grid.n
        self._grid = grid
        self._step = step
        self._n = n
        self._index = grid.index
        self._text_index = grid.text
        self._bids = [0] * (n + 1)
        self._asks = [0] * (n + 1)
        self._occ_bids = bytearray(n + 1)
        self._occ_asks = bytearray(n + 1)
        self._bb = 0
        self._ba = n

    def __repr__(self) -> str:
        bid, ask = self.best_bid(), self.best_ask()
        return (
            f"Book({self.asset_id[:12]}…, bid={'-' if bid is None else fmt_micro(bid)}, "
            f"ask={'-' if ask is None else fmt_micro(ask)}, {self._trust.value})"
        )

    @property
    def timestamp_ms(self) -> int | None:
        ts = self._ts
        if type(ts) is str:
            return int(ts) if ts.isdecimal() and ts.isascii() else None
        return ts  # type: ignore[return-value]

    @timestamp_ms.setter
    def timestamp_ms(self, value: int | None) -> None:
        self._ts = value

    # --- trust ----------------------------------------------------------------------------------

    @property
    def trust(self) -> TrustState:
        return self._trust

    @property
    def trusted(self) -> bool:
        return self._trust is TrustState.TRUSTED

    def mark_untrusted(self, reason: str) -> None:
        """Called by a stream client on a gap or reconnect; only a snapshot restores trust."""
        if self._trust is TrustState.TRUSTED or not self.untrusted_reason:
            self.untrusted_reason = reason
        self._trust = TrustState.UNTRUSTED

    # --- primitives -----------------------------------------------------------------------------

    @property
    def grid_step(self) -> Micro:
        return self._step

    def best_bid(self) -> Micro | None:
        return self._bb * self._step if self._bb else None

    def best_ask(self) -> Micro | None:
        return self._ba * self._step if self._ba < self._n else None

    def best_bid_or_zero(self) -> Micro:
        """The venue's convention: 0 when there is no bid."""
        return self._bb * self._step

    def best_ask_or_one(self) -> Micro:
        """The venue's convention: 1 (MICRO) when there is no ask."""
        return self._ba * self._step

    def size_at(self, side: Side, price: Micro) -> Micro:
        i = self._index.get(price)
        if i is None:
            return 0
        return self._asks[i] if side else self._bids[i]

    def iter_levels(self, side: Side) -> Iterator[Level]:
        step = self._step
        if side:
            asks, occ, n = self._asks, self._occ_asks, self._n
            i = self._ba
            while i < n:
                yield i * step, asks[i]
                i = occ.find(1, i + 1)
                if i < 0:
                    return
        else:
            bids, occ = self._bids, self._occ_bids
            i = self._bb
            while i > 0:
                yield i * step, bids[i]
                i = occ.rfind(1, 1, i)
                if i < 0:
                    return

    def level_count(self, side: Side) -> int:
        return (self._occ_asks if side else self._occ_bids).count(1)

    # --- updates --------------------------------------------------------------------------------

    def set_level(self, side: Side, price: Micro, size: Micro) -> bool:
        """Set the total size at one level (0 removes it): the venue's price_change semantics.

        Returns False (and marks the book untrusted) for an update that cannot be applied: a price
        outside (0, 1) or off the venue's finest grid, or a negative size.
        """
        i = self._index.get(price)
        if i is None or size < 0:
            return self._set_level_slow(side, price, size)
        if side:
            levels = self._asks
            old = levels[i]
            levels[i] = size
            if size:
                if not old:
                    self._occ_asks[i] = 1
                    if i < self._ba:
                        self._ba = i
                        if i <= self._bb:
                            self.crossed_updates += 1
            elif old:
                occ = self._occ_asks
                occ[i] = 0
                if i == self._ba:
                    j = occ.find(1, i + 1)
                    self._ba = self._n if j < 0 else j
        else:
            levels = self._bids
            old = levels[i]
            levels[i] = size
            if size:
                if not old:
                    self._occ_bids[i] = 1
                    if i > self._bb:
                        self._bb = i
                        if i >= self._ba:
                            self.crossed_updates += 1
            elif old:
                occ = self._occ_bids
                occ[i] = 0
                if i == self._bb:
                    j = occ.rfind(1, 1, i)
                    self._bb = 0 if j < 0 else j
        return True

    def set_levels(self, updates: Sequence[tuple[Side, Micro, Micro]]) -> int:
        """`set_level` for many (side, price, size) updates in order; returns how many were applied.

        The same logic with the book's state held in locals across the batch: about a third cheaper per
        update than one call each (bench/book.py), for replays and bulk feeds.
        """
        index, bids, asks = self._index, self._bids, self._asks
        occ_bids, occ_asks = self._occ_bids, self._occ_asks
        bb, ba, n = self._bb, self._ba, self._n
        rejected = crossed = 0
        for side, price, size in updates:
            try:
                i = index[price]
            except KeyError:
                i = -1
            if i < 0 or size < 0:
                self._bb, self._ba = bb, ba
                if not self._set_level_slow(side, price, size):
                    rejected += 1
                # A refined grid replaces every table.
                index, bids, asks = self._index, self._bids, self._asks
                occ_bids, occ_asks = self._occ_bids, self._occ_asks
                bb, ba, n = self._bb, self._ba, self._n
            elif side:
                old = asks[i]
                asks[i] = size
                if size:
                    if not old:
                        occ_asks[i] = 1
                        if i < ba:
                            ba = i
                            if i <= bb:
                                crossed += 1
                elif old:
                    occ_asks[i] = 0
                    if i == ba:
                        j = occ_asks.find(1, i + 1)
                        ba = n if j < 0 else j
            else:
                old = bids[i]
                bids[i] = size
                if size:
                    if not old:
                        occ_bids[i] = 1
                        if i > bb:
                            bb = i
                            if i >= ba:
                                crossed += 1
                elif old:
                    occ_bids[i] = 0
                    if i == bb:
                        j = occ_bids.rfind(1, 1, i)
                        bb = 0 if j < 0 else j
        self._bb, self._ba = bb, ba
        self.crossed_updates += crossed
        return len(updates) - rejected

    def _set_level_slow(self, side: Side, price: Micro, size: Micro) -> bool:
        if size < 0 or not 0 < price < MICRO or price % FINEST_STEP:
            self.rejected_updates += 1
            self.mark_untrusted(f"invalid level update: {side.name} {price} x {size}")
            return False
        self._regrid(gcd(self._step, price))
        return self.set_level(side, price, size)

    def _regrid(self, step: int) -> None:
        """Move every level onto a finer grid (after a valid price off the current one)."""
        bids = [(p, s) for p, s in self.iter_levels(Side.BUY)]
        asks = [(p, s) for p, s in self.iter_levels(Side.SELL)]
        crossed = self.crossed_updates  # moving levels is not a new crossing
        self._allocate(step)
        for price, size in bids:
            self.set_level(Side.BUY, price, size)
        for price, size in asks:
            self.set_level(Side.SELL, price, size)
        self.crossed_updates = crossed

    def clear(self) -> None:
        self._allocate(self._step)

    def apply_change(self, change: PriceLevelChange, check_best: bool = False) -> bool:
        """Apply one price_change entry (exact parse, then `set_level`).

        `BookSet.apply_price_change` does the same on its hot path without parsing. With `check_best`,
        the venue's best prices sent with the change are compared with the mirror's afterwards; a
        disagreement makes the book untrusted. Returns False when rejected or disagreeing.
        """
        try:
            side, price, size = change.side, change.price, change.size
        except MalformedMessageError as exc:
            self.rejected_updates += 1
            self.mark_untrusted(f"invalid level update: {exc}")
            return False
        if not self.set_level(side, price, size):
            return False
        if check_best and change.best_bid_text is not None and not self.awaiting_snapshot:
            return self._check_best_exactly(change)
        return True

    def _check_best_exactly(self, change: PriceLevelChange) -> bool:
        """The venue's best prices (any spelling; an absent ask is not compared) against the mirror's."""
        try:
            bid, ask = change.best_bid, change.best_ask
        except MalformedMessageError as exc:
            bid = ask = None
            reason = f"unreadable best prices: {exc}"
        else:
            if bid == self._bb * self._step and (ask is None or ask == self._ba * self._step):
                return True
            reason = (
                f"venue best {change.best_bid_text}/{change.best_ask_text} != mirror "
                f"{fmt_micro(self.best_bid_or_zero())}/{fmt_micro(self.best_ask_or_one())}"
            )
        self.best_mismatches += 1
        self.mark_untrusted(reason)
        return False

    def apply_snapshot(self, snapshot: BookSnapshot, *, untrust_on_hash_mismatch: bool = True) -> None:
        """Replace the whole book. Restores trust unless a level is invalid or the hash mismatched."""
        tick = snapshot.tick_size
        if tick is not None:
            self.tick_size = tick
        step = self.tick_size.micro if self.tick_size is not None else FINEST_STEP
        for price, _ in snapshot.bids:
            step = gcd(step, price)
        for price, _ in snapshot.asks:
            step = gcd(step, price)
        step = max(step, FINEST_STEP) if MICRO % step == 0 else FINEST_STEP
        self._allocate(step)
        ok = True
        bids, asks, index = self._bids, self._asks, self._index
        occ_bids, occ_asks = self._occ_bids, self._occ_asks
        for price, size in snapshot.bids:
            i = index.get(price)
            if i is None or size < 0:
                ok = False
            elif size:
                bids[i] = size
                occ_bids[i] = 1
        for price, size in snapshot.asks:
            i = index.get(price)
            if i is None or size < 0:
                ok = False
            elif size:
                asks[i] = size
                occ_asks[i] = 1
        top = occ_bids.rfind(1)
        self._bb = top if top > 0 else 0
        low = occ_asks.find(1, 1)
        self._ba = low if 0 < low < self._n else self._n

        self.market = snapshot.market or self.market
        self.timestamp_ms = snapshot.timestamp_ms
        self.hash = snapshot.hash
        if snapshot.min_order_size is not None:
            self.min_order_size = snapshot.min_order_size
        if snapshot.neg_risk is not None:
            self.neg_risk = snapshot.neg_risk
        if snapshot.last_trade_price is not None:
            self.last_trade_price = snapshot.last_trade_price
        self.snapshots += 1
        self.awaiting_snapshot = False
        verified = snapshot.hash_verified
        self.hash_status = (
            HashStatus.UNCHECKED if verified is None else HashStatus.MATCH if verified else HashStatus.MISMATCH
        )
        self._trust = TrustState.TRUSTED
        self.untrusted_reason = ""
        if not ok:
            self.rejected_updates += 1
            self.mark_untrusted("snapshot with an invalid level")
        elif verified is False and untrust_on_hash_mismatch:
            self.mark_untrusted("snapshot hash mismatch")
        if self._bb and self._bb >= self._ba:
            self.crossed_updates += 1

    def apply_tick_size_change(self, new_tick: TickSize) -> None:
        """A new price grid: drop the book (a new epoch) and wait for a snapshot, as the venue's SDKs do."""
        if new_tick == self.tick_size:
            return
        old = self.tick_size
        self.tick_size = new_tick
        self.epoch += 1
        self._allocate(new_tick.micro)
        self.awaiting_snapshot = True
        self._trust = TrustState.UNTRUSTED
        self.untrusted_reason = f"tick size changed {old} -> {new_tick}; awaiting a snapshot"

    def snapshot(self) -> BookSnapshot:
        """The book as a venue-ordered snapshot (best level last), e.g. to render or hash it.

        Its `hash` is empty (encoders compute it): the last snapshot's hash no longer describes the book
        once updates were applied."""
        bids = self.levels(Side.BUY)
        asks = self.levels(Side.SELL)
        bids.reverse()
        asks.reverse()
        return BookSnapshot(
            market=self.market,
            asset_id=self.asset_id,
            bids=tuple(bids),
            asks=tuple(asks),
            timestamp_ms=self.timestamp_ms,
            min_order_size=self.min_order_size,
            tick_size=self.tick_size,
            neg_risk=self.neg_risk,
            last_trade_price=self.last_trade_price,
        )

    # --- our own orders -------------------------------------------------------------------------

    def set_own_order(self, order_id: str, side: Side, price: Micro, size: Micro) -> None:
        """Record (or update) one of our resting orders; size 0 forgets it."""
        self.remove_own_order(order_id)
        if size > 0:
            self._own_orders[order_id] = (side, price, size)
            self._own_levels[side].setdefault(price, {})[order_id] = size

    def remove_own_order(self, order_id: str) -> None:
        entry = self._own_orders.pop(order_id, None)
        if entry is None:
            return
        side, price, _ = entry
        level = self._own_levels[side][price]
        del level[order_id]
        if not level:
            del self._own_levels[side][price]

    def clear_own_orders(self) -> None:
        self._own_orders.clear()
        self._own_levels[0].clear()
        self._own_levels[1].clear()

    def own_size(self, side: Side, price: Micro) -> Micro:
        level = self._own_levels[side].get(price)
        return sum(level.values()) if level else 0

    def own_orders_at(self, side: Side, price: Micro) -> dict[str, Micro]:
        return dict(self._own_levels[side].get(price, {}))


class MirrorBook(BookQueries):
    """The complementary token's book seen through one token's (doc §7.1: BUY YES at p = SELL NO at 1 − p).

    Its bids are the source's asks at 1 − p and its asks the source's bids at 1 − p; nothing is copied.
    """

    __slots__ = ("source",)

    def __init__(self, source: Book) -> None:
        self.source = source

    def best_bid(self) -> Micro | None:
        ask = self.source.best_ask()
        return None if ask is None else MICRO - ask

    def best_ask(self) -> Micro | None:
        bid = self.source.best_bid()
        return None if bid is None else MICRO - bid

    def iter_levels(self, side: Side) -> Iterator[Level]:
        for price, size in self.source.iter_levels(side.opposite):
            yield MICRO - price, size

    def size_at(self, side: Side, price: Micro) -> Micro:
        return self.source.size_at(side.opposite, MICRO - price)

    def own_size(self, side: Side, price: Micro) -> Micro:
        return self.source.own_size(side.opposite, MICRO - price)

    @property
    def trusted(self) -> bool:
        return self.source.trusted


class MarketBooks:
    """Both outcome tokens of one market. `no` is the NO token's own book when mirrored, else the
    YES book seen from the other side (and vice versa), so either can be asked for either token."""

    __slots__ = ("condition_id", "no_book", "yes_book")

    def __init__(self, condition_id: str, yes_book: Book | None, no_book: Book | None) -> None:
        if yes_book is None and no_book is None:
            raise ValueError("a market view needs at least one book")
        self.condition_id = condition_id
        self.yes_book = yes_book
        self.no_book = no_book

    @property
    def yes(self) -> BookQueries:
        if self.yes_book is not None:
            return self.yes_book
        assert self.no_book is not None
        return MirrorBook(self.no_book)

    @property
    def no(self) -> BookQueries:
        if self.no_book is not None:
            return self.no_book
        assert self.yes_book is not None
        return MirrorBook(self.yes_book)

    def discrepancies(self) -> list[tuple[Side, Micro, Micro, Micro]]:
        """Levels where the NO book and the mirrored YES book disagree: (side, NO price, NO size, mirrored
        size). The venue keeps one book per market, so a lasting difference means a mirror is off."""
        if self.yes_book is None or self.no_book is None:
            return []
        mirror = MirrorBook(self.yes_book)
        out: list[tuple[Side, Micro, Micro, Micro]] = []
        for side in (Side.BUY, Side.SELL):
            own = dict(self.no_book.iter_levels(side))
            seen = dict(mirror.iter_levels(side))
            for price in sorted(own.keys() | seen.keys()):
                a, b = own.get(price, 0), seen.get(price, 0)
                if a != b:
                    out.append((side, price, a, b))
        return out


LevelHashHook = Callable[[Book, PriceLevelChange], None]


class BookSet:
    """The books of every subscribed token in one process, fed by market events in arrival order.

    `verify_best_prices`: the current price_change format reports the venue's best bid/ask after each
    change; a disagreement with the mirror means it diverged, so the book becomes untrusted.
    `level_hash_hook` is called after each applied level change with the book and the change: the
    venue's per-change hash is unconfirmed (doc §6.2), and this is where a checker can be plugged in
    once it is understood.
    """

    __slots__ = (
        "_books",
        "_markets",
        "_ticks",
        "level_hash_hook",
        "unknown_asset_updates",
        "untrust_on_hash_mismatch",
        "verify_best_prices",
    )

    def __init__(
        self,
        *,
        verify_best_prices: bool = True,
        untrust_on_hash_mismatch: bool = True,
        level_hash_hook: LevelHashHook | None = None,
    ) -> None:
        self._books: dict[str, Book] = {}
        self._ticks: dict[str, TickSize] = {}
        self._markets: dict[str, tuple[str, str]] = {}
        self.verify_best_prices = verify_best_prices
        self.untrust_on_hash_mismatch = untrust_on_hash_mismatch
        self.level_hash_hook = level_hash_hook
        self.unknown_asset_updates = 0

    # --- registry -------------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._books)

    def __contains__(self, asset_id: object) -> bool:
        return asset_id in self._books

    def __iter__(self) -> Iterator[Book]:
        return iter(self._books.values())

    def __getitem__(self, asset_id: str) -> Book:
        return self._books[asset_id]

    def get(self, asset_id: str) -> Book | None:
        return self._books.get(asset_id)

    def ensure(self, asset_id: str, market: str = "", tick_size: TickSize | None = None) -> Book:
        """The token's book, created empty (untrusted, awaiting a snapshot) if new."""
        book = self._books.get(asset_id)
        if book is None:
            book = Book(asset_id, market, tick_size or self._ticks.get(asset_id))
            self._books[asset_id] = book
        return book

    def remove(self, asset_id: str) -> None:
        self._books.pop(asset_id, None)

    def set_tick_size(self, asset_id: str, tick_size: TickSize) -> None:
        """Market metadata (e.g. /clob-markets) known before any snapshot: sizes the book's grid."""
        self._ticks[asset_id] = tick_size

    def register_market(
        self, condition_id: str, yes_asset_id: str, no_asset_id: str, tick_size: TickSize | None = None
    ) -> None:
        self._markets[condition_id] = (yes_asset_id, no_asset_id)
        if tick_size is not None:
            self._ticks[yes_asset_id] = tick_size
            self._ticks[no_asset_id] = tick_size

    def view(self, condition_id: str) -> MarketBooks:
        yes, no = self._markets[condition_id]
        return MarketBooks(condition_id, self._books.get(yes), self._books.get(no))

    def mark_untrusted(self, reason: str, asset_ids: Iterable[str] | None = None) -> None:
        """A stream gap or reconnect: every affected book waits for its next snapshot."""
        books = self._books.values() if asset_ids is None else (self._books.get(a) for a in asset_ids)
        for book in books:
            if book is not None:
                book.mark_untrusted(reason)

    def untrusted(self) -> dict[str, str]:
        return {a: b.untrusted_reason for a, b in self._books.items() if not b.trusted}

    # --- events ---------------------------------------------------------------------------------

    def apply(self, event: MarketEvent) -> None:
        """Apply any market event; those that do not touch a book are ignored."""
        if type(event) is PriceChange:
            self.apply_price_change(event)
        elif type(event) is BookSnapshot:
            self.apply_snapshot(event)
        elif type(event) is TickSizeChange:
            self.apply_tick_size_change(event)
        elif type(event) is LastTradePrice:
            book = self._books.get(event.asset_id)
            if book is not None:
                book.last_trade_price = event.price

    def apply_snapshot(self, snapshot: BookSnapshot) -> Book:
        book = self.ensure(snapshot.asset_id, snapshot.market, snapshot.tick_size)
        book.apply_snapshot(snapshot, untrust_on_hash_mismatch=self.untrust_on_hash_mismatch)
        return book

    def apply_tick_size_change(self, event: TickSizeChange) -> Book:
        self._ticks[event.asset_id] = event.new_tick_size
        book = self.ensure(event.asset_id, event.market, event.new_tick_size)
        book.apply_tick_size_change(event.new_tick_size)
        return book

    def apply_price_change(self, event: PriceChange) -> None:
        """The hot path: every entry applied straight from the venue's text.

        Price and side are table lookups (the grid's text -> index) and the size one int() over its
        digits; the level logic is `Book.set_level`'s, inlined: with a call per entry it would cost a
        third more (measured; bench/book.py). Anything unusual (a non-canonical or off-grid price, a
        malformed size or side) goes through `Book.apply_change`'s exact parsing. The venue's best
        prices are compared after an asset's last change in the message only: whether they are per
        change or per message is not documented, and the two agree there.

        Runs compiled when the C extension is in use (`polyoms.core.speedups`: same results, same
        errors), else `_apply_price_change_python`.
        """
        fast = speedups.apply_price_change
        if fast is not None:
            fast(self, event)
        else:
            self._apply_price_change_python(event)

    def _apply_price_change_python(self, event: PriceChange) -> None:
        """`apply_price_change` in Python: the reference and the fallback of the compiled one.

        Keep the loop body in step with `_apply_level_change` below (the compiled path's Python part).
        """
        books = self._books
        hook = self.level_hash_hook
        verify = self.verify_best_prices
        ts = event.timestamp_text
        changes = event.changes
        count = len(changes)
        # Which entries to check: all of them in the usual message (one entry, or one per token of a
        # market); otherwise each asset's last.
        check = verify and (count == 1 or (count == 2 and changes[0].asset_id != changes[1].asset_id))
        last = None if check or not verify else {c.asset_id: c for c in changes}
        for change in changes:
            book = books.get(change.asset_id)
            if book is None:
                self.unknown_asset_updates += 1
                continue
            if last is not None:
                check = last[change.asset_id] is change
            i = book._text_index.get(change.price_text)
            text = change.size_text
            dot = text.find(".")
            if dot < 0:
                digits = text
                scale = MICRO
            else:
                digits = text.replace(".", "", 1)
                scale = _SCALE_BY_WIDTH.get(len(text) - dot, 0)
            side = change.side_text
            # isdecimal() admits exactly what int() reads as digits: no sign, space or underscore.
            if i is None or not scale or not digits.isdecimal() or (side != "SELL" and side != "BUY"):
                book.apply_change(change, check)
            else:
                size = int(digits) * scale
                if side == "SELL":
                    levels = book._asks
                    old = levels[i]
                    levels[i] = size
                    if size:
                        if not old:
                            book._occ_asks[i] = 1
                            if i < book._ba:
                                book._ba = i
                                if i <= book._bb:
                                    book.crossed_updates += 1
                    elif old:
                        occ = book._occ_asks
                        occ[i] = 0
                        if i == book._ba:
                            j = occ.find(1, i + 1)
                            book._ba = book._n if j < 0 else j
                else:
                    levels = book._bids
                    old = levels[i]
                    levels[i] = size
                    if size:
                        if not old:
                            book._occ_bids[i] = 1
                            if i > book._bb:
                                book._bb = i
                                if i >= book._ba:
                                    book.crossed_updates += 1
                    elif old:
                        occ = book._occ_bids
                        occ[i] = 0
                        if i == book._bb:
                            j = occ.rfind(1, 1, i)
                            book._bb = 0 if j < 0 else j
                if check and change.best_bid_text is not None and not book.awaiting_snapshot:
                    grid = book._grid
                    if (
                        grid.best_bid_text.get(change.best_bid_text, -1) != book._bb
                        or grid.best_ask_text.get(change.best_ask_text, -1) != book._ba  # type: ignore[arg-type]
                    ):
                        book._check_best_exactly(change)  # any spelling, absent ask; untrusts if it differs
            book._ts = ts
            if hook is not None:
                hook(book, change)


def _apply_level_change(book: Book, change: PriceLevelChange, check: bool, ts: str, hook: LevelHashHook | None) -> None:
    """One entry of `BookSet._apply_price_change_python` whose book exists: the loop body after the
    book lookup, the same code. The compiled path calls it for every entry it does not apply itself
    (a book subclass, a non-canonical or unknown price, a non-ASCII or long size, a side other than
    BUY/SELL...), before changing anything of that entry."""
    i = book._text_index.get(change.price_text)
    text = change.size_text
    dot = text.find(".")
    if dot < 0:
        digits = text
        scale = MICRO
    else:
        digits = text.replace(".", "", 1)
        scale = _SCALE_BY_WIDTH.get(len(text) - dot, 0)
    side = change.side_text
    if i is None or not scale or not digits.isdecimal() or (side != "SELL" and side != "BUY"):
        book.apply_change(change, check)
    else:
        size = int(digits) * scale
        if side == "SELL":
            levels = book._asks
            old = levels[i]
            levels[i] = size
            if size:
                if not old:
                    book._occ_asks[i] = 1
                    if i < book._ba:
                        book._ba = i
                        if i <= book._bb:
                            book.crossed_updates += 1
            elif old:
                occ = book._occ_asks
                occ[i] = 0
                if i == book._ba:
                    j = occ.find(1, i + 1)
                    book._ba = book._n if j < 0 else j
        else:
            levels = book._bids
            old = levels[i]
            levels[i] = size
            if size:
                if not old:
                    book._occ_bids[i] = 1
                    if i > book._bb:
                        book._bb = i
                        if i >= book._ba:
                            book.crossed_updates += 1
            elif old:
                occ = book._occ_bids
                occ[i] = 0
                if i == book._bb:
                    j = occ.rfind(1, 1, i)
                    book._bb = 0 if j < 0 else j
        if check and change.best_bid_text is not None and not book.awaiting_snapshot:
            grid = book._grid
            if (
                grid.best_bid_text.get(change.best_bid_text, -1) != book._bb
                or grid.best_ask_text.get(change.best_ask_text, -1) != book._ba  # type: ignore[arg-type]
            ):
                book._check_best_exactly(change)
    book._ts = ts
    if hook is not None:
        hook(book, change)


speedups.bind_book(Book, BookSet, _Grid, BookSet._apply_price_change_python, _apply_level_change)
