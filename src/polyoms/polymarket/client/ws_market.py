"""Market-channel client (doc §6.2): mirrored books that are either right or say they are not.

This module does the I/O (sockets, REST rounds, events); the rules are decided in `book_trust`.

    stream = MarketStream(MarketStreamConfig(url=...), rest=hub.public)
    async with stream:
        await stream.subscribe(token_ids)
        async for event in stream.events():     # BookTrusted / BookUntrusted / ...
            ...
        stream.is_trusted(token_id)             # never act on a book unless this is True

The venue has no sequence numbers, so continuity is made explicit: a book is TRUSTED only after a
snapshot and becomes UNTRUSTED, with a `BookUntrusted` event saying why, on any sign of a gap
(`MarketStream` lists them); a REST snapshot is adopted exactly although the stream keeps flowing
(`MarketStream._rest_round`).
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field
from typing import Final, Literal

import aiohttp
import msgspec

from polyoms.core.book import Book, BookSet
from polyoms.core.clock import Clock
from polyoms.core.errors import ConfigError, MalformedMessageError, NotFoundError, PolyomsError
from polyoms.core.market_events import (
    BestBidAsk,
    BookSnapshot,
    LastTradePrice,
    MarketEvent,
    MarketResolved,
    NewMarket,
    PriceChange,
    PriceLevelChange,
    TextFrame,
    TickSizeChange,
    UnknownEvent,
)
from polyoms.polymarket.client.book_trust import (
    Expected,
    HashCheck,
    HashTrust,
    HashVerdict,
    Recorded,
    RestMode,
    RestVerdict,
    SnapshotVerdict,
    TokenTrust,
    UntrustReason,
    best_price_problem,
    complement_last_trade,
    expected_book,
    levels_difference,
    rebuilt_snapshot,
    rest_verdict,
    round_robin,
)
from polyoms.polymarket.client.clob import ClobClient
from polyoms.polymarket.client.redact import redact
from polyoms.polymarket.client.timing import Sleep
from polyoms.polymarket.client.ws_common import (
    Backoff,
    EventHub,
    StreamBase,
    StreamConfig,
    StreamConnected,
    StreamDisconnected,
    StreamFailed,
    _Socket,
    log,
)
from polyoms.polymarket.protocol.messages import decode_market_frame

DEFAULT_MARKET_URL: Final = "wss://ws-subscriptions-clob.polymarket.com/ws/market"

ResyncMode = Literal["rest", "resubscribe"]


@dataclass(frozen=True, slots=True)
class BookTrusted:
    """The book is a faithful mirror again; `source` is "stream" (a `book` event) or "rest"."""

    asset_id: str
    source: str
    at_ms: int


@dataclass(frozen=True, slots=True)
class BookUntrusted:
    """The book may differ from the venue's: take no new risk on it until BookTrusted."""

    asset_id: str
    reason: UntrustReason
    detail: str
    at_ms: int


@dataclass(frozen=True, slots=True)
class BookVerified:
    """A REST verification found the trusted book equal to the venue's."""

    asset_id: str
    at_ms: int


MarketStreamEvent = BookTrusted | BookUntrusted | BookVerified | StreamConnected | StreamDisconnected | StreamFailed


@dataclass(frozen=True, slots=True, kw_only=True)
class MarketStreamConfig(StreamConfig):
    url: str = DEFAULT_MARKET_URL
    custom_feature_enabled: bool = False
    subscribe_chunk: int = 500
    """Token ids per subscribe message."""
    max_assets_per_socket: int = 0
    """Tokens per socket; 0 = one socket for everything."""
    snapshot_timeout_s: float = 10.0
    """After (re)subscribing, a book without its snapshot by then is resynced another way."""
    verify_best_prices: bool = True
    hash_check: HashCheck = "auto"
    hash_auto_give_up: int = 200
    resync: ResyncMode = "rest"
    """How a gapped book is resynced when a REST client is given ("resubscribe" without one)."""
    rest_verify_interval_s: float | None = 30.0
    rest_verify_batch: int = 100
    asset_silence_s: float | None = 120.0
    rest_concurrency: int = 4
    rest_retry_s: float = 1.0
    """Delay before a failed REST resync is tried again."""

    def __post_init__(self) -> None:
        StreamConfig.__post_init__(self)
        if self.hash_check not in ("auto", "on", "off"):
            raise ConfigError(f"hash_check must be auto, on or off, got {self.hash_check!r}")
        if self.resync not in ("rest", "resubscribe"):
            raise ConfigError(f"resync must be rest or resubscribe, got {self.resync!r}")
        if self.subscribe_chunk < 1 or self.rest_verify_batch < 1 or self.rest_concurrency < 1:
            raise ConfigError("subscribe_chunk, rest_verify_batch and rest_concurrency must be >= 1")
        if self.max_assets_per_socket < 0 or self.hash_auto_give_up < 1:
            raise ConfigError("max_assets_per_socket >= 0 and hash_auto_give_up >= 1")
        for name in ("snapshot_timeout_s", "rest_retry_s"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"{name} must be positive", field=name)
        for name in ("rest_verify_interval_s", "asset_silence_s"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ConfigError(f"{name} must be positive or None", field=name)


@dataclass(slots=True)
class MarketStreamStats:
    frames: int = 0
    events: Counter[str] = field(default_factory=Counter)
    malformed_frames: int = 0
    text_frames: int = 0
    untrusted: Counter[str] = field(default_factory=Counter)
    """Trusted -> untrusted transitions by reason."""
    trusted: Counter[str] = field(default_factory=Counter)
    """Untrusted -> trusted transitions by source."""
    best_checks: int = 0
    hash_matches: int = 0
    hash_mismatches: int = 0
    hash_unconfirmed_misses: int = 0
    stale_snapshots: int = 0
    snapshot_timeouts: int = 0
    resubscribes: int = 0
    rest_rounds: int = 0
    rest_failures: int = 0
    rest_adopted: int = 0
    rest_verified: int = 0
    rest_mismatches: int = 0
    rest_unconfirmed: int = 0
    """REST rounds whose socket did not answer the catch-up PING: nothing adopted or compared."""
    silence_probes: int = 0
    unknown_assets: int = 0


class _Asset(TokenTrust):
    """Per-token stream state: the trust rules' state, its socket and any REST round in flight."""

    __slots__ = ("recording", "rest_busy", "sock")

    def __init__(self, sock: _MarketSocket, now_ms: int) -> None:
        super().__init__(now_ms)
        self.sock = sock
        self.recording: list[Recorded] | None = None
        self.rest_busy = False


class _MarketSocket(_Socket):
    __slots__ = ("assets", "first_assets", "hashes", "max_ts")

    def __init__(self, index: int, backoff: Backoff) -> None:
        super().__init__(index, backoff)
        self.assets: dict[str, None] = {}
        self.first_assets: set[str] = set()
        self.max_ts = -1
        """The newest venue timestamp received on the current connection."""
        self.hashes = HashTrust()


_encode = msgspec.json.Encoder().encode
_EVENT_NAMES: Final[dict[type, str]] = {
    BestBidAsk: "best_bid_ask",
    NewMarket: "new_market",
    MarketResolved: "market_resolved",
}


class MarketStream(StreamBase[_MarketSocket]):
    """Mirrored books of any number of tokens, each trusted or untrusted with a reason.

    The books live in a `BookSet` (`stream.books`; a token's book is created by its first snapshot, on
    that snapshot's tick grid). The venue has no sequence numbers, so continuity is made explicit: a book
    is TRUSTED only after a snapshot (a `book` event after (re)subscribing, or a REST snapshot), and
    becomes UNTRUSTED, with a `BookUntrusted` event saying why (`UntrustReason`), on:

    * a lost socket (closed by the venue, failed send, or stale: no frame, not even PONG, for
      `stale_after_s`): every book of that socket; they come back with the snapshots sent on resubscribe;
    * an update stamped earlier than one already applied to the same token (events of one asset come in
      order on a socket, doc §6.4): the only rule that sees two swapped updates of one level, each of which
      reproduces its own best prices and hash;
    * a best bid/ask mismatch: each price_change entry carries the venue's best prices after the change,
      compared with the mirror's after applying it (`verify_best_prices`);
    * a hash mismatch: where the venue's per-change hash reproduces as the §6.5 hash of the book after the
      change (with the message's timestamp; the mirror knows min_order_size, tick_size and neg_risk from
      the snapshot and last_trade_price from `last_trade_price` events, its complement's included: BUY YES
      at p is SELL NO at 1 - p), a mismatch is a gap. Whether the real venue hashes that is UNCONFIRMED, so
      `hash_check="auto"` (default) enforces it only once it has matched on the current connection, and
      stops computing it after `hash_auto_give_up` misses without a match; "on" always enforces, "off" never
      computes. Subscribe both tokens of a market: a lone token's last trade price may change unannounced;
    * a REST verification that disagrees (every `rest_verify_interval_s`, `rest_verify_batch` books,
      round-robin), or a silent token (no update for `asset_silence_s`) whose liveness probe fails (REST
      verification; without REST, a resubscription);
    * an update the mirror cannot apply, a snapshot whose hash does not reproduce, a snapshot overtaken by
      updates stamped as late or later (reordered frames), a tick-size change, or a malformed frame.

    A stream serves any number of tokens: subscriptions go out in chunks of `subscribe_chunk` ids, and
    `max_assets_per_socket` (0 = no limit) spreads them over several sockets.
    """

    channel = "market"

    def __init__(
        self,
        config: MarketStreamConfig | None = None,
        *,
        rest: ClobClient | None = None,
        books: BookSet | None = None,
        clock: Clock | None = None,
        sleep: Sleep | None = None,
        rng: random.Random | None = None,
        session: aiohttp.ClientSession | None = None,
        on_event: Callable[[MarketStreamEvent], None] | None = None,
        on_market_event: Callable[[MarketEvent], None] | None = None,
        on_frame: Callable[[bytes], None] | None = None,
    ) -> None:
        """`rest`: a CLOB client (e.g. `hub.public`) for resyncs, verification and liveness probes;
        without one, gaps are resynced by resubscribing and nothing is verified over REST.
        `books`: the BookSet to maintain (its own best-price check is switched off: the stream checks,
        with reasons). `on_market_event` sees every decoded event after it was applied; `on_frame`
        every raw text frame but PONG (recording, debugging)."""
        cfg = config or MarketStreamConfig()
        super().__init__(cfg, clock=clock, sleep=sleep, rng=rng, session=session)
        self.config = cfg
        self.rest = rest
        self.books = books if books is not None else BookSet(verify_best_prices=False)
        self.books.verify_best_prices = False
        self.stats = MarketStreamStats()
        self._assets: dict[str, _Asset] = {}
        self._by_market: dict[str, set[str]] = {}
        self._events: EventHub[MarketStreamEvent] = EventHub(on_event)
        self._on_market_event = on_market_event
        self._frame_tap = on_frame
        self._resync_pending: dict[str, None] = {}
        self._resync_scheduled = False
        self._rest_gate = asyncio.Semaphore(cfg.rest_concurrency)
        self._next_verify_ms = 0
        self._verify_cursor = 0
        self._next_scan_ms = 0
        self._trust_changed = asyncio.Event()

    # --- public -------------------------------------------------------------------------------------------

    async def __aenter__(self) -> MarketStream:
        await self.start()
        return self

    async def subscribe(self, asset_ids: Iterable[str | int]) -> None:
        """Mirror these tokens (already mirrored ones are ignored). Each starts UNTRUSTED."""
        self._check_open()
        now = self.clock.now_ms()
        added: dict[_MarketSocket, list[str]] = {}
        for asset in dict.fromkeys(str(a) for a in asset_ids):
            if asset in self._assets:
                continue
            sock = self._socket_with_room()
            sock.assets[asset] = None
            self._assets[asset] = _Asset(sock, now)
            # (The book is created by its first snapshot, on the snapshot's grid: an empty book of
            # unknown tick would be allocated on the finest one, 10,000 levels a side.)
            added.setdefault(sock, []).append(asset)
        for sock, assets in added.items():
            if sock.live:
                self._await_snapshots(assets, now)
                await self._send(sock, self._ops("subscribe", assets))
            else:
                self._ensure_running(sock)

    async def unsubscribe(self, asset_ids: Iterable[str | int]) -> None:
        """Stop mirroring these tokens; their books are dropped."""
        self._check_open()
        removed: dict[_MarketSocket, list[str]] = {}
        for asset in dict.fromkeys(str(a) for a in asset_ids):
            st = self._assets.pop(asset, None)
            if st is None:
                continue
            st.sock.assets.pop(asset, None)
            book = self.books.get(asset)
            if book is not None:
                self._by_market.get(book.market, set()).discard(asset)
            self.books.remove(asset)
            self._resync_pending.pop(asset, None)
            removed.setdefault(st.sock, []).append(asset)
        self._trust_changed.set()
        for sock, assets in removed.items():
            if sock.live:
                await self._send(sock, self._ops("unsubscribe", assets))

    @property
    def subscribed(self) -> list[str]:
        return list(self._assets)

    def is_trusted(self, asset_id: str | int) -> bool:
        """True only while the mirror of this token is known to equal the venue's book."""
        asset = str(asset_id)
        st = self._assets.get(asset)
        book = self.books.get(asset)
        return st is not None and book is not None and book.trusted and st.sock.live

    def book(self, asset_id: str | int) -> Book | None:
        return self.books.get(str(asset_id))

    def untrusted(self) -> dict[str, str]:
        """Subscribed tokens that are not trusted, with the reason."""
        out: dict[str, str] = {}
        for asset in self._assets:
            if not self.is_trusted(asset):
                book = self.books.get(asset)
                if book is None:
                    out[asset] = "no snapshot yet"
                else:
                    out[asset] = book.untrusted_reason or "socket down"
        return out

    def events(self) -> AsyncIterator[MarketStreamEvent]:
        """Every stream event from now on (ends when the stream closes)."""
        return self._events.subscribe()

    def add_listener(self, callback: Callable[[MarketStreamEvent], None]) -> None:
        self._events.add_callback(callback)

    async def wait_trusted(self, asset_ids: Iterable[str | int] | None = None, timeout_s: float = 10.0) -> bool:
        """Wait until every given (default: subscribed) token is trusted; False on timeout."""
        wanted = None if asset_ids is None else [str(a) for a in asset_ids]
        try:
            async with asyncio.timeout(timeout_s):
                while True:
                    targets = wanted if wanted is not None else list(self._assets)
                    if all(self.is_trusted(a) for a in targets):
                        return True
                    self._trust_changed.clear()
                    await self._trust_changed.wait()
        except TimeoutError:
            return False

    # --- sockets ----------------------------------------------------------------------------------------------

    def _socket_with_room(self) -> _MarketSocket:
        cap = self.config.max_assets_per_socket
        for sock in self._sockets:
            if cap == 0 or len(sock.assets) < cap:
                return sock
        sock = _MarketSocket(len(self._sockets), Backoff(self.config.backoff, self._rng))
        self._sockets.append(sock)
        return sock

    def _ops(self, operation: str, assets: list[str]) -> list[str]:
        chunk = self.config.subscribe_chunk
        out: list[str] = []
        for i in range(0, len(assets), chunk):
            body: dict[str, object] = {"operation": operation, "assets_ids": assets[i : i + chunk]}
            if operation == "subscribe":
                body["custom_feature_enabled"] = self.config.custom_feature_enabled
            out.append(_encode(body).decode())
        return out

    def _first_frames(self, sock: _MarketSocket) -> list[str]:
        assets = list(sock.assets)
        sock.first_assets = set(assets)
        chunk = self.config.subscribe_chunk
        first = {
            "type": "market",
            "assets_ids": assets[:chunk],
            "initial_dump": True,
            "custom_feature_enabled": self.config.custom_feature_enabled,
        }
        return [_encode(first).decode(), *self._ops("subscribe", assets[chunk:])]

    def _wants_connection(self, sock: _MarketSocket) -> bool:
        return bool(sock.assets)

    def _on_subscribed(self, sock: _MarketSocket) -> None:
        """Tokens (un)subscribed while the subscription frames were going out."""
        added = [a for a in sock.assets if a not in sock.first_assets]
        removed = [a for a in sock.first_assets if a not in sock.assets]
        sock.first_assets = set()
        frames = self._ops("unsubscribe", removed) + self._ops("subscribe", added)
        if frames:
            self._await_snapshots(added, self.clock.now_ms())
            self._spawn(self._send(sock, frames))

    def _on_open(self, sock: _MarketSocket) -> None:
        sock.max_ts = -1
        sock.hashes.reset()
        self._await_snapshots(list(sock.assets), self.clock.now_ms())

    def _await_snapshots(self, assets: Iterable[str], now_ms: int) -> None:
        deadline = now_ms + int(self.config.snapshot_timeout_s * 1000)
        for asset in assets:
            st = self._assets.get(asset)
            if st is not None:
                st.expect_snapshot(deadline)

    def _on_lost(self, sock: _MarketSocket, reason: str) -> None:
        for asset in list(sock.assets):
            st = self._assets.get(asset)
            if st is not None:
                st.awaiting = False
                self._untrust(asset, UntrustReason.DISCONNECTED, reason, resync=False)

    def _emit_connection(self, event: StreamConnected | StreamDisconnected | StreamFailed) -> None:
        self._events.emit(event)

    def _on_closed(self) -> None:
        self._events.close()

    # --- trust ---------------------------------------------------------------------------------------------------

    def _untrust(self, asset: str, reason: UntrustReason, detail: str, *, resync: bool = True) -> None:
        st = self._assets.get(asset)
        if st is None:
            return
        st.epoch += 1
        book = self.books.get(asset)
        if book is not None and book.trusted:
            book.mark_untrusted(f"{reason.value}: {detail}")
            self.stats.untrusted[reason.value] += 1
            log.info("market book %s… untrusted: %s: %s", asset[:12], reason.value, detail)
            self._events.emit(BookUntrusted(asset, reason, detail, self.clock.now_ms()))
        elif book is not None:
            book.mark_untrusted(f"{reason.value}: {detail}")
        if resync:
            self._want_resync(asset)

    def _trusted_now(self, asset: str, source: str) -> None:
        self.stats.trusted[source] += 1
        self._trust_changed.set()
        self._events.emit(BookTrusted(asset, source, self.clock.now_ms()))

    def _lost_by_bookset(self, asset: str, book: Book, reason: UntrustReason) -> None:
        """The BookSet itself untrusted a trusted book (an update or snapshot it could not accept)."""
        st = self._assets.get(asset)
        if st is not None:
            st.epoch += 1
        self.stats.untrusted[reason.value] += 1
        self._events.emit(BookUntrusted(asset, reason, book.untrusted_reason, self.clock.now_ms()))
        self._want_resync(asset)

    def _want_resync(self, asset: str) -> None:
        st = self._assets.get(asset)
        if st is None or st.dead or not st.sock.live:
            return  # a socket coming back resubscribes everything it carries
        if self.rest is not None and self.config.resync == "rest":
            self._resync_pending[asset] = None
            if not self._resync_scheduled:
                self._resync_scheduled = True
                asyncio.get_running_loop().call_soon(self._flush_resyncs)
        else:
            self._resubscribe(st.sock, [asset])

    def _flush_resyncs(self) -> None:
        self._resync_scheduled = False
        pending = [a for a in self._resync_pending if a in self._assets]
        self._resync_pending.clear()
        batch = self.config.rest_verify_batch
        for i in range(0, len(pending), batch):
            self._spawn(self._rest_round(pending[i : i + batch], "resync"), name="ws-market-resync")

    def _resubscribe(self, sock: _MarketSocket, assets: list[str]) -> None:
        if not sock.live or self._closed:
            return
        self.stats.resubscribes += len(assets)
        self._await_snapshots(assets, self.clock.now_ms())
        self._spawn(self._send(sock, self._ops("unsubscribe", assets) + self._ops("subscribe", assets)))

    # --- frames ------------------------------------------------------------------------------------------------

    def _on_frame(self, sock: _MarketSocket, data: bytes) -> None:
        self.stats.frames += 1
        if self._frame_tap is not None:
            self._frame_tap(data)
        try:
            events = decode_market_frame(data, verify_book_hash=True)
        except MalformedMessageError as exc:
            # Something about some of this socket's books was lost; we cannot tell which.
            self.stats.malformed_frames += 1
            detail = redact(str(exc))[:200]
            log.warning("market socket %d: malformed frame: %s", sock.index, detail)
            for asset in list(sock.assets):
                self._untrust(asset, UntrustReason.MALFORMED, detail)
            return
        stats = self.stats.events
        for event in events:
            if isinstance(event, PriceChange):
                stats["price_change"] += 1
                self._on_price_change(sock, event)
            elif isinstance(event, BookSnapshot):
                stats["book"] += 1
                self._on_snapshot(sock, event)
            elif isinstance(event, LastTradePrice):
                stats["last_trade_price"] += 1
                self._on_last_trade(sock, event)
            elif isinstance(event, TickSizeChange):
                stats["tick_size_change"] += 1
                self._on_tick_size(event)
            elif isinstance(event, TextFrame):
                self.stats.text_frames += 1
                stats["text"] += 1
                log.warning("market socket %d: text frame %r", sock.index, redact(event.text)[:200])
            elif isinstance(event, UnknownEvent):
                stats[f"unknown:{event.event_type}"] += 1
            else:
                stats[_EVENT_NAMES.get(type(event), type(event).__name__)] += 1
            if self._on_market_event is not None:
                self._on_market_event(event)

    def _on_price_change(self, sock: _MarketSocket, event: PriceChange) -> None:
        try:
            ts = event.timestamp_ms
        except MalformedMessageError:
            ts = None
        assets = self._assets
        books = self.books
        last: dict[str, PriceLevelChange] = {}
        before: dict[str, bool] = {}
        for change in event.changes:
            asset = change.asset_id
            st = assets.get(asset)
            if st is None or st.sock is not sock:
                continue
            if asset not in before:
                book = books.get(asset)
                before[asset] = book is not None and book.trusted
            last[asset] = change
            if st.recording is not None:
                st.recording.append((ts, change))
        books.apply_price_change(event)
        if ts is not None and ts > sock.max_ts:
            sock.max_ts = ts
            sock.notify()
        if not last:
            return
        now = self.clock.now_ms()
        for asset, change in last.items():
            st = assets[asset]
            previous = st.note_update(ts, now)
            book = books.get(asset)
            if book is None:
                continue  # no snapshot yet
            if before[asset] and not book.trusted:
                self._lost_by_bookset(asset, book, UntrustReason.INVALID_UPDATE)
                continue
            if not book.trusted or book.awaiting_snapshot:
                continue
            problem = st.order_problem(ts, previous)
            if problem is not None:
                self._untrust(asset, UntrustReason.OUT_OF_ORDER, problem)
                continue
            if st.unchecked(ts):
                continue
            if self.config.verify_best_prices and (
                change.best_bid_text is not None or change.best_ask_text is not None
            ):
                self.stats.best_checks += 1
                problem = best_price_problem(book, change)
                if problem is not None:
                    self._untrust(asset, UntrustReason.BEST_PRICE, problem)
                    continue
            if not self._hash_holds(sock, st, book, change, event.timestamp_text):
                self._untrust(asset, UntrustReason.HASH, f"venue hash {change.hash} at {event.timestamp_text}")

    def _hash_holds(self, sock: _MarketSocket, st: _Asset, book: Book, change: PriceLevelChange, ts_text: str) -> bool:
        """False only for a hash mismatch to act on."""
        cfg = self.config
        verdict = sock.hashes.judge(
            cfg.hash_check,
            cfg.hash_auto_give_up,
            book,
            change,
            ts_text,
            st.hash_cache,
            lambda: complement_last_trade(self.books, self._by_market.get(book.market, ()), book),
        )
        stats = self.stats
        if verdict is HashVerdict.MATCH:
            stats.hash_matches += 1
        elif verdict is HashVerdict.MISMATCH:
            stats.hash_mismatches += 1
            return False
        elif verdict is not HashVerdict.UNCHECKED:
            stats.hash_unconfirmed_misses += 1
            if verdict is HashVerdict.GIVE_UP:
                log.info("market socket %d: the venue's price_change hash never reproduced; not checked", sock.index)
        return True

    def _on_snapshot(self, sock: _MarketSocket, snapshot: BookSnapshot) -> None:
        asset = snapshot.asset_id
        st = self._assets.get(asset)
        if st is None or st.sock is not sock:
            return  # a late frame for a token no longer subscribed here
        ts = snapshot.timestamp_ms
        if ts is not None and ts > sock.max_ts:
            sock.max_ts = ts
            sock.notify()
        verdict = st.snapshot_verdict(ts)
        if verdict is SnapshotVerdict.OVERTAKEN:
            self.stats.stale_snapshots += 1
            book = self.books.get(asset)
            if book is None or not book.trusted:  # (a REST snapshot may have restored it meanwhile)
                detail = f"snapshot at {ts} arrived after an update at {st.seen_while_awaiting_ts}"
                self._untrust(asset, UntrustReason.STALE_SNAPSHOT, detail)
            return
        if verdict is SnapshotVerdict.STALE:
            self.stats.stale_snapshots += 1
            return
        book = self.books.get(asset)
        was = book is not None and book.trusted
        book = self.books.apply_snapshot(snapshot)
        if book.market:
            self._by_market.setdefault(book.market, set()).add(asset)
        st.took_snapshot(ts, self.clock.now_ms())
        sock.backoff.reset()
        if book.trusted:
            if not was:
                self._trusted_now(asset, "stream")
        elif was:
            self._lost_by_bookset(asset, book, UntrustReason.BAD_SNAPSHOT)
        else:
            self._want_resync(asset)

    def _on_last_trade(self, sock: _MarketSocket, event: LastTradePrice) -> None:
        ts = event.timestamp_ms
        if ts is not None and ts > sock.max_ts:
            sock.max_ts = ts
            sock.notify()
        st = self._assets.get(event.asset_id)
        if st is None:
            return
        self.books.apply(event)
        st.last_live_ms = self.clock.now_ms()
        if st.recording is not None:
            st.recording.append((event.timestamp_ms, event.price))

    def _on_tick_size(self, event: TickSizeChange) -> None:
        asset = event.asset_id
        st = self._assets.get(asset)
        if st is None:
            return
        before = self.books.get(asset)
        was = before is not None and before.trusted
        book = self.books.apply_tick_size_change(event)
        st.epoch += 1
        if was and not book.trusted:
            self.stats.untrusted[UntrustReason.TICK_SIZE.value] += 1
            detail = f"{event.old_tick_size} -> {event.new_tick_size}"
            self._events.emit(BookUntrusted(asset, UntrustReason.TICK_SIZE, detail, self.clock.now_ms()))
        if not book.trusted:
            # The venue sends a fresh book after a tick change; resynced another way if it does not come.
            self._await_snapshots([asset], self.clock.now_ms())

    # --- REST: resync, verification, liveness ---------------------------------------------------------------------

    async def _rest_round(self, assets: list[str], mode: RestMode) -> None:
        """Fetch REST snapshots of `assets` and resync, verify or probe them.

        Resync: `resync="rest"` (default with a REST client) fetches POST /books; otherwise the token is
        unsubscribed and subscribed again on its socket and the stream's fresh snapshot restores it. A REST
        snapshot is adopted exactly although the stream keeps flowing: from the moment the request is sent,
        the token's updates are recorded; once the answer (taken at venue time T) is in, a PING is sent and its
        PONG awaited — a socket is ordered, so by then every update the venue queued before T has arrived (and
        the socket has shown it is alive: a stalled one never gets a REST-built book trusted). The snapshot plus
        the recorded updates stamped at or after T is then the book now (price_change sets absolute sizes, so
        replaying one the snapshot holds is harmless); updates stamped at or before T arriving later are applied
        but not checked. The same construction makes the periodic REST verification exact under live flow: a
        lagging stream is not taken for a wrong one. Duplicated frames are harmless by construction.
        """
        if self.rest is None:
            return
        started: dict[str, tuple[_Asset, _MarketSocket, int, int]] = {}
        try:
            async with self._rest_gate:
                for asset in assets:
                    st = self._assets.get(asset)
                    if st is None or st.rest_busy or st.dead or not st.sock.live:
                        continue
                    st.rest_busy = True
                    st.recording = []  # from before the request leaves: what the snapshot may not hold
                    started[asset] = (st, st.sock, st.sock.generation, st.epoch)
                if not started:
                    return
                self.stats.rest_rounds += 1
                try:
                    snapshots = await self._fetch_books(list(started))
                except PolyomsError as exc:
                    self.stats.rest_failures += 1
                    log.warning("market REST %s of %d books failed: %s", mode, len(started), redact(str(exc))[:200])
                    snapshots = {}
            # Before comparing or adopting: everything the venue sent before answering must have arrived
            # (a lagging stream is not a wrong one), and the socket must show it is alive.
            caught_up = await self._catch_up(started, snapshots)
            self._settle_round(started, snapshots, caught_up, mode)
        finally:
            for st, *_ in started.values():
                st.rest_busy = False
                st.recording = None

    async def _catch_up(
        self, started: dict[str, tuple[_Asset, _MarketSocket, int, int]], snapshots: dict[str, BookSnapshot]
    ) -> dict[_MarketSocket, bool]:
        latest: dict[_MarketSocket, int | None] = {}
        for asset, (_, sock, generation, _) in started.items():
            snapshot = snapshots.get(asset)
            if snapshot is None or sock.generation != generation or not sock.live:
                continue
            ts = snapshot.timestamp_ms
            if sock not in latest:
                latest[sock] = ts
            else:
                prev = latest[sock]
                latest[sock] = None if ts is None or prev is None else max(prev, ts)
        if not latest:
            return {}

        def past(sock: _MarketSocket, ts: int | None) -> Callable[[], bool]:
            return lambda: ts is not None and sock.max_ts > ts

        socks = list(latest)
        timeout = self.config.stale_after_s
        done = await asyncio.gather(*(self._barrier(s, past(s, latest[s]), timeout) for s in socks))
        self.stats.rest_unconfirmed += done.count(False)
        return dict(zip(socks, done, strict=True))

    def _settle_round(
        self,
        started: dict[str, tuple[_Asset, _MarketSocket, int, int]],
        snapshots: dict[str, BookSnapshot],
        caught_up: dict[_MarketSocket, bool],
        mode: RestMode,
    ) -> None:
        now = self.clock.now_ms()
        retry: list[str] = []
        for asset, (st, sock, generation, epoch) in started.items():
            if self._assets.get(asset) is not st or st.dead:
                continue
            if st.sock is not sock or sock.generation != generation or not sock.live:
                continue  # the socket was lost meanwhile: its resubscription brings fresh snapshots
            snapshot = snapshots.get(asset)
            answered = snapshot is not None and caught_up.get(sock, False)
            expected = expected_book(snapshot, st.recording or []) if snapshot is not None and answered else None
            book = self.books.get(asset)
            verdict = rest_verdict(mode, book, st.epoch == epoch, expected)
            if verdict is RestVerdict.PROBE_FAILED:
                why = "the REST request failed" if snapshot is None else "the socket did not answer a PING"
                self._untrust(asset, UntrustReason.SILENCE, f"no update, and {why}", resync=False)
                retry.append(asset)
            elif verdict is RestVerdict.RETRY:
                retry.append(asset)
            elif verdict is RestVerdict.VERIFIED:
                st.last_live_ms = now
                self.stats.rest_verified += 1
                self._events.emit(BookVerified(asset, now))
            elif verdict is RestVerdict.MISMATCH or verdict is RestVerdict.ADOPT:
                assert snapshot is not None and expected is not None  # answered
                if verdict is RestVerdict.MISMATCH:
                    assert book is not None  # a trusted book was compared
                    self.stats.rest_mismatches += 1
                    self._untrust(asset, UntrustReason.REST_MISMATCH, levels_difference(book, expected), resync=False)
                self._adopt(asset, st, book, snapshot, expected)
        loop = asyncio.get_running_loop()
        if retry:
            loop.call_later(self.config.rest_retry_s, self._retry_resyncs, retry)
        # A book that lost trust while this round was in flight had its resync request skipped (the asset
        # was busy): ask again now that it is free.
        again = [a for a in started if a not in retry and self._needs_resync(a)]
        if again:
            loop.call_soon(self._retry_resyncs, again)

    def _needs_resync(self, asset: str) -> bool:
        st = self._assets.get(asset)
        book = self.books.get(asset)
        if st is None or st.dead or st.awaiting:
            return False
        return (book is None or not book.trusted) and st.sock.live

    def _retry_resyncs(self, assets: list[str]) -> None:
        if self._closed:
            return
        for asset in assets:
            if self._needs_resync(asset):
                self._want_resync(asset)

    async def _fetch_books(self, assets: list[str]) -> dict[str, BookSnapshot]:
        rest = self.rest
        assert rest is not None
        try:
            return {b.asset_id: b for b in await rest.books(assets)}
        except NotFoundError:
            if len(assets) == 1:
                self._mark_dead(assets[0])
                return {}
        out: dict[str, BookSnapshot] = {}
        for asset in assets:  # find the token(s) the venue does not know
            try:
                out[asset] = await rest.book(asset)
            except NotFoundError:
                self._mark_dead(asset)
        return out

    def _mark_dead(self, asset: str) -> None:
        st = self._assets.get(asset)
        if st is not None and not st.dead:
            st.dead = True
            self.stats.unknown_assets += 1
            log.warning("market token %s… is unknown to the venue; it stays untrusted", asset[:12])

    def _adopt(self, asset: str, st: _Asset, book: Book | None, snapshot: BookSnapshot, expected: Expected) -> None:
        was = book is not None and book.trusted
        book = self.books.apply_snapshot(rebuilt_snapshot(asset, snapshot, book, expected))
        if book.market:
            self._by_market.setdefault(book.market, set()).add(asset)
        st.took_rest_snapshot(snapshot.timestamp_ms, self.clock.now_ms())
        self.stats.rest_adopted += 1
        if book.trusted and not was:
            self._trusted_now(asset, "rest")

    # --- housekeeping -----------------------------------------------------------------------------------------

    def _on_tick(self, now_ms: int) -> None:
        cfg = self.config
        for asset, st in self._assets.items():
            if st.sock.live and st.snapshot_overdue(now_ms):
                book = self.books.get(asset)
                if book is None or not book.trusted:
                    self.stats.snapshot_timeouts += 1
                    self._want_resync(asset)
        if self.rest is not None and cfg.rest_verify_interval_s is not None and now_ms >= self._next_verify_ms:
            self._next_verify_ms = now_ms + int(cfg.rest_verify_interval_s * 1000)
            batch = self._verify_batch()
            if batch:
                self._spawn(self._rest_round(batch, "verify"), name="ws-market-verify")
        if cfg.asset_silence_s is not None and now_ms >= self._next_scan_ms:
            silence_ms = int(cfg.asset_silence_s * 1000)
            self._next_scan_ms = now_ms + min(1000, max(1, silence_ms // 4))
            silent = [
                a
                for a, st in self._assets.items()
                if st.silent(now_ms, silence_ms) and not st.rest_busy and st.sock.live and self.is_trusted(a)
            ]
            if silent:
                self._probe(silent, now_ms)

    def _probe(self, silent: list[str], now_ms: int) -> None:
        """Liveness of tokens that went quiet: a REST verification, or (without REST) a resubscription."""
        self.stats.silence_probes += len(silent)
        for asset in silent:
            self._assets[asset].last_live_ms = now_ms  # one probe per silence period
        if self.rest is not None:
            batch = self.config.rest_verify_batch
            for i in range(0, len(silent), batch):
                self._spawn(self._rest_round(silent[i : i + batch], "probe"), name="ws-market-probe")
            return
        silence = self.config.asset_silence_s
        for asset in silent:
            self._untrust(asset, UntrustReason.SILENCE, f"no update for {silence} s; resubscribing to check")

    def _verify_batch(self) -> list[str]:
        assets = self._assets
        batch, self._verify_cursor = round_robin(
            list(assets),
            self._verify_cursor,
            lambda a: not assets[a].rest_busy and self.is_trusted(a),
            self.config.rest_verify_batch,
        )
        return batch
