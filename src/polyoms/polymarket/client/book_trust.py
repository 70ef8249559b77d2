"""Whether a mirrored order book is trusted: the market channel's continuity rules, without I/O.

Each rule takes the mirror's state, an event and a clock value and returns a decision; the socket
client (`ws_market.MarketStream`, whose docstring tells the rules in prose) feeds it frames and acts on
the answers: untrusting, resyncing, counting.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from enum import Enum, StrEnum
from typing import Literal

from polyoms.core.book import Book, BookSet
from polyoms.core.enums import Side
from polyoms.core.errors import MalformedMessageError
from polyoms.core.market_events import BookSnapshot, PriceLevelChange
from polyoms.core.units import MICRO, Micro, fmt_micro
from polyoms.polymarket.protocol.book_hash import LevelCache, mirror_hash

HashCheck = Literal["auto", "on", "off"]
RestMode = Literal["resync", "verify", "probe"]
# Recorded while a REST request is in flight: (venue ms, change) or (venue ms, last trade price).
Recorded = tuple[int | None, PriceLevelChange | int]
# The book now per a REST snapshot and the updates recorded since: bids, asks, last trade, venue ms.
Expected = tuple[dict[Micro, Micro], dict[Micro, Micro], Micro | None, int | None]


class UntrustReason(StrEnum):
    DISCONNECTED = "disconnected"
    """The socket carrying the book ended or went stale."""
    OUT_OF_ORDER = "out of order"
    """An update stamped earlier than one already applied (events of one asset come in order, §6.4)."""
    BEST_PRICE = "best price mismatch"
    HASH = "hash mismatch"
    REST_MISMATCH = "rest mismatch"
    SILENCE = "silence"
    """No update for `asset_silence_s` and the liveness probe failed."""
    INVALID_UPDATE = "invalid update"
    BAD_SNAPSHOT = "bad snapshot"
    STALE_SNAPSHOT = "stale snapshot"
    TICK_SIZE = "tick size change"
    MALFORMED = "malformed frame"


class SnapshotVerdict(Enum):
    APPLY = "apply"
    OVERTAKEN = "overtaken"
    """The awaited snapshot arrived after updates as new as itself (reordered frames): untrust."""
    STALE = "stale"
    """Older than updates already applied (a reordered frame): ignore."""


class HashVerdict(Enum):
    UNCHECKED = "unchecked"
    MATCH = "match"
    MISMATCH = "mismatch"
    """A gap to act on."""
    MISS = "unconfirmed miss"
    """No match, but the check is not enforced (yet) on this connection."""
    GIVE_UP = "unconfirmed miss, giving up"
    """The miss that ends "auto" checking on this connection."""


class RestVerdict(Enum):
    NOTHING = "nothing"
    RETRY = "retry"
    PROBE_FAILED = "probe failed"
    """Untrust for silence, and retry."""
    VERIFIED = "verified"
    MISMATCH = "mismatch"
    """Untrust, then adopt the venue's book."""
    ADOPT = "adopt"


class TokenTrust:
    """The continuity state of one token's mirror (the book itself lives in the BookSet)."""

    __slots__ = (
        "awaiting",
        "dead",
        "deadline_ms",
        "epoch",
        "hash_cache",
        "last_change_ts",
        "last_live_ms",
        "no_check_until_ts",
        "seen_while_awaiting_ts",
    )

    def __init__(self, now_ms: int) -> None:
        self.awaiting = False
        """A `book` event is expected (after subscribing on the current connection)."""
        self.deadline_ms = 0
        self.seen_while_awaiting_ts = -1
        self.last_change_ts = -1
        self.no_check_until_ts = -1
        """After adopting a REST snapshot taken at venue time T: updates stamped <= T are not checked."""
        self.last_live_ms = now_ms
        self.epoch = 0
        """Bumped by every snapshot and trust change: a REST answer started before is stale."""
        self.dead = False
        """The venue does not know the token (REST 404): never resynced again."""
        self.hash_cache: tuple[LevelCache, LevelCache] = ({}, {})

    def expect_snapshot(self, deadline_ms: int) -> None:
        """(Re)subscribed: a `book` event is due by `deadline_ms`; what came before no longer counts."""
        self.awaiting = True
        self.deadline_ms = deadline_ms
        self.seen_while_awaiting_ts = -1
        self.last_change_ts = -1
        self.no_check_until_ts = -1
        self.epoch += 1

    def snapshot_overdue(self, now_ms: int) -> bool:
        """True once when the awaited snapshot is late (then it is no longer awaited)."""
        if self.awaiting and now_ms >= self.deadline_ms:
            self.awaiting = False
            return True
        return False

    def note_update(self, ts: int | None, now_ms: int) -> int:
        """An update stamped `ts` arrived; returns the stamp of the newest update before it."""
        self.last_live_ms = now_ms
        previous = self.last_change_ts
        if ts is not None:
            if ts > previous:
                self.last_change_ts = ts
            if self.awaiting and ts > self.seen_while_awaiting_ts:
                self.seen_while_awaiting_ts = ts
        return previous

    def order_problem(self, ts: int | None, previous: int) -> str | None:
        """Each update reproduces its own best prices and hash even when two of one level are swapped;
        only the order of their stamps tells."""
        if ts is not None and ts < previous:
            return f"update stamped {ts} after one stamped {previous}"
        return None

    def unchecked(self, ts: int | None) -> bool:
        """May predate the REST snapshot this book was rebuilt from: applied, not checked."""
        return ts is not None and ts <= self.no_check_until_ts

    def snapshot_verdict(self, ts: int | None) -> SnapshotVerdict:
        if self.awaiting:
            self.awaiting = False
            if ts is not None and self.seen_while_awaiting_ts >= ts:
                return SnapshotVerdict.OVERTAKEN
        elif ts is not None and ts < self.last_change_ts:
            return SnapshotVerdict.STALE
        return SnapshotVerdict.APPLY

    def took_snapshot(self, ts: int | None, now_ms: int) -> None:
        self.epoch += 1
        self.seen_while_awaiting_ts = -1
        self.no_check_until_ts = -1
        if ts is not None and ts > self.last_change_ts:
            self.last_change_ts = ts
        self.last_live_ms = now_ms

    def took_rest_snapshot(self, snapshot_ts: int | None, now_ms: int) -> None:
        self.epoch += 1
        self.no_check_until_ts = snapshot_ts if snapshot_ts is not None else self.last_change_ts
        self.last_live_ms = now_ms

    def silent(self, now_ms: int, silence_ms: int) -> bool:
        return now_ms - self.last_live_ms >= silence_ms


class HashTrust:
    """Whether the venue's per-change hash is checked on one connection ("auto": once it has matched)."""

    __slots__ = ("given_up", "matched", "misses")

    def __init__(self) -> None:
        self.matched = False
        self.misses = 0
        self.given_up = False

    def reset(self) -> None:
        """A new connection: nothing is known about its hashes."""
        self.matched = False
        self.misses = 0
        self.given_up = False

    def judge(
        self,
        mode: HashCheck,
        give_up_after: int,
        book: Book,
        change: PriceLevelChange,
        timestamp_text: str,
        cache: tuple[LevelCache, LevelCache],
        complement_last_trade: Callable[[], Micro | None],
    ) -> HashVerdict:
        """The mirror after `change` against the venue's hash. A match with the complement's last trade
        price adopts it: the last trade of a token also moves its complement's (BUY YES at p = SELL NO
        at 1 - p), and the venue may report it on one token only."""
        if mode == "off" or not change.hash or (mode == "auto" and self.given_up):
            return HashVerdict.UNCHECKED
        if book.tick_size is None or book.min_order_size is None:
            return HashVerdict.UNCHECKED
        if mirror_hash(book, timestamp_text, book.last_trade_price, cache) == change.hash:
            self.matched = True
            return HashVerdict.MATCH
        alt = complement_last_trade()
        if (
            alt is not None
            and alt != book.last_trade_price
            and mirror_hash(book, timestamp_text, alt, cache) == change.hash
        ):
            book.last_trade_price = alt
            self.matched = True
            return HashVerdict.MATCH
        if mode == "on" or self.matched:
            return HashVerdict.MISMATCH
        self.misses += 1
        if self.misses >= give_up_after:
            self.given_up = True
            return HashVerdict.GIVE_UP
        return HashVerdict.MISS


def complement_last_trade(books: BookSet, market_assets: Iterable[str], book: Book) -> Micro | None:
    """1 - the last trade price of another token of the book's market, if known."""
    for other in market_assets:
        if other != book.asset_id:
            other_book = books.get(other)
            if other_book is not None and other_book.last_trade_price is not None:
                return MICRO - other_book.last_trade_price
    return None


def best_price_problem(book: Book, change: PriceLevelChange) -> str | None:
    """None if the venue's best prices after the change (which it sent) equal the mirror's."""
    try:
        bid, ask = change.best_bid, change.best_ask
    except MalformedMessageError as exc:
        return f"unreadable best prices: {exc}"
    mine_bid, mine_ask = book.best_bid_or_zero(), book.best_ask_or_one()
    if (bid is not None and bid != mine_bid) or (ask is not None and ask != mine_ask):
        return (
            f"venue {change.best_bid_text}/{change.best_ask_text} != mirror {fmt_micro(mine_bid)}/{fmt_micro(mine_ask)}"
        )
    return None


# --- REST snapshots under live flow ---------------------------------------------------------------------------


def expected_book(snapshot: BookSnapshot, recorded: list[Recorded]) -> Expected:
    """The book now: a REST snapshot taken at T plus the updates recorded since, stamped at or after T."""
    bids = {p: s for p, s in snapshot.bids if s}
    asks = {p: s for p, s in snapshot.asks if s}
    at = snapshot.timestamp_ms
    last_trade = snapshot.last_trade_price
    latest = at
    for ts, item in recorded:
        if at is not None and ts is not None and ts < at:
            continue  # the snapshot holds it already
        if ts is not None and (latest is None or ts > latest):
            latest = ts
        if isinstance(item, int):
            last_trade = item
            continue
        try:
            side, price, size = item.side, item.price, item.size
        except MalformedMessageError:
            continue  # the mirror rejected it too (and stopped trusting the book)
        levels = bids if side is Side.BUY else asks
        if size:
            levels[price] = size
        else:
            levels.pop(price, None)
    return bids, asks, last_trade, latest


def rest_verdict(mode: RestMode, book: Book | None, same_epoch: bool, expected: Expected | None) -> RestVerdict:
    """What a REST round does with one token. `expected`: None unless the snapshot came and the socket
    caught up with it; `same_epoch`: no snapshot or trust change since the request left."""
    if expected is None:
        if mode == "probe":
            return RestVerdict.PROBE_FAILED
        return RestVerdict.NOTHING if mode == "verify" else RestVerdict.RETRY
    if mode != "resync":
        if book is None or not book.trusted or not same_epoch:
            return RestVerdict.NOTHING
        return RestVerdict.VERIFIED if same_levels(book, expected) else RestVerdict.MISMATCH
    if book is not None and book.trusted and not same_epoch:
        return RestVerdict.NOTHING  # a stream snapshot restored it meanwhile
    return RestVerdict.ADOPT


def rebuilt_snapshot(asset: str, snapshot: BookSnapshot, book: Book | None, expected: Expected) -> BookSnapshot:
    """The snapshot to adopt: the REST one with the recorded updates applied."""
    bids, asks, last_trade, ts = expected
    return BookSnapshot(
        market=snapshot.market or (book.market if book is not None else ""),
        asset_id=asset,
        bids=tuple(sorted(bids.items())),
        asks=tuple(sorted(asks.items(), reverse=True)),
        timestamp_ms=ts,
        min_order_size=snapshot.min_order_size,
        tick_size=snapshot.tick_size,
        neg_risk=snapshot.neg_risk,
        last_trade_price=last_trade,
    )


def same_levels(book: Book, expected: Expected) -> bool:
    return dict(book.iter_levels(Side.BUY)) == expected[0] and dict(book.iter_levels(Side.SELL)) == expected[1]


def levels_difference(book: Book, expected: Expected) -> str:
    parts: list[str] = []
    for name, side, want in (("bid", Side.BUY, expected[0]), ("ask", Side.SELL, expected[1])):
        mine = dict(book.iter_levels(side))
        for price in sorted(mine.keys() | want.keys()):
            a, b = mine.get(price, 0), want.get(price, 0)
            if a != b:
                parts.append(f"{name} {fmt_micro(price)}: mirror {fmt_micro(a)} venue {fmt_micro(b)}")
    return "; ".join(parts[:4]) + (f" (+{len(parts) - 4} more)" if len(parts) > 4 else "")


def round_robin(keys: list[str], cursor: int, eligible: Callable[[str], bool], size: int) -> tuple[list[str], int]:
    """Up to `size` eligible keys from `cursor` on, wrapping; and the cursor for next time."""
    n = len(keys)
    out: list[str] = []
    if not n:
        return out, cursor
    start = cursor % n
    for i in range(n):
        key = keys[(start + i) % n]
        if eligible(key):
            out.append(key)
            if len(out) >= size:
                return out, start + i + 1
    return out, 0
