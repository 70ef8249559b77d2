"""User-channel client (doc §6.3): our orders and trades, with explicit gaps and exact backfill.

    stream = UserStream(hub.clob(wallet), markets=[condition_id, ...], config=UserStreamConfig(url=...))
    async with stream:
        async for item in stream.events():
            match item:
                case UserUpdate(event, backfill): ...     # OrderEvent / TradeEvent, each state once
                case UserStreamGapped(reason): ...        # stop new risk: fills may be missing
                case UserStreamLive(): ...                # backfilled; the stream is complete again

The stream is GAPPED from the start and after every lost socket or malformed frame, until a REST
backfill completed on the current connection (`UserStream`); each order and trade state is emitted once
and never one older than already emitted (`UserEventDeduper`). Credentials go in the subscription frame,
never logged; a refusal ("INVALID AUTH") stops the stream for good.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final

import aiohttp
import msgspec

from polyoms.core.clock import Clock, WallClock
from polyoms.core.errors import AuthError, ConfigError, MalformedMessageError, PolyomsError
from polyoms.core.market_events import TextFrame, UnknownEvent
from polyoms.core.user_events import (
    OrderEvent,
    OrderEventType,
    OrderStatus,
    TradeEvent,
    TraderSide,
    TradeStatus,
)
from polyoms.core.venue import event_status
from polyoms.polymarket.client.clob import ClobClient
from polyoms.polymarket.client.models import OpenOrder
from polyoms.polymarket.client.redact import redact
from polyoms.polymarket.client.timing import Sleep
from polyoms.polymarket.client.wallet import register_creds
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
from polyoms.polymarket.protocol.statuses import report_status
from polyoms.polymarket.protocol.user_messages import decode_user_frame

DEFAULT_USER_URL: Final = "wss://ws-subscriptions-clob.polymarket.com/ws/user"
AUTH_REFUSED: Final = frozenset({"INVALID AUTH", "UNAUTHORIZED", "INVALID API KEY"})


class UserStreamState(StrEnum):
    GAPPED = "GAPPED"
    LIVE = "LIVE"


@dataclass(frozen=True, slots=True)
class UserUpdate:
    """An order or trade state, emitted once; `backfill` = recovered through REST after a gap."""

    event: OrderEvent | TradeEvent
    backfill: bool
    at_ms: int


@dataclass(frozen=True, slots=True)
class UserStreamGapped:
    """Events may be missing from here on until UserStreamLive: stop new risk."""

    reason: str
    at_ms: int


@dataclass(frozen=True, slots=True)
class UserStreamLive:
    """The backfill completed: every state missed during the gap was emitted (as backfill)."""

    at_ms: int
    backfilled_trades: int
    backfilled_orders: int


UserStreamEvent = UserUpdate | UserStreamGapped | UserStreamLive | StreamConnected | StreamDisconnected | StreamFailed


@dataclass(frozen=True, slots=True, kw_only=True)
class UserStreamConfig(StreamConfig):
    url: str = DEFAULT_USER_URL
    backfill_overlap_s: int = 5
    """Trades are fetched from (last seen match time - this): match times are whole seconds."""
    backfill_retry_s: float = 1.0
    reconcile_interval_s: float | None = None
    """While LIVE, backfill this often anyway (catches frames lost without a disconnect); None = never."""
    order_lookup_concurrency: int = 4
    dedupe_capacity: int = 200_000
    """Orders and trades remembered for de-duplication (oldest forgotten first)."""

    def __post_init__(self) -> None:
        StreamConfig.__post_init__(self)
        if self.backfill_overlap_s < 0 or self.backfill_retry_s <= 0 or self.order_lookup_concurrency < 1:
            raise ConfigError("backfill_overlap_s >= 0, backfill_retry_s > 0, order_lookup_concurrency >= 1")
        if self.reconcile_interval_s is not None and self.reconcile_interval_s <= 0:
            raise ConfigError("reconcile_interval_s must be positive or None")
        if self.dedupe_capacity < 1:
            raise ConfigError("dedupe_capacity must be >= 1")


# --- de-duplication (pure) -------------------------------------------------------------------------------------

TRADE_RANK: Final[dict[TradeStatus, int]] = {
    TradeStatus.MATCHED: 0,
    TradeStatus.MATCHED_NOT_BROADCASTED: 0,
    TradeStatus.MINED: 1,
    TradeStatus.RETRYING: 1,
    TradeStatus.CONFIRMED: 2,
    TradeStatus.FAILED: 2,
}
TERMINAL_ORDER: Final = frozenset({OrderStatus.MATCHED, OrderStatus.CANCELED, OrderStatus.UNMATCHED})


class UserEventDeduper:
    """Admits each order and trade state once, and never one older than what was admitted.

    Trades are de-duplicated by (id, status) and orders by (id, size_matched, status) — doc §6.4's
    (id, size_matched) plus the status, so a cancellation after a partial fill is not taken for a
    duplicate of the fill. A state older than one already emitted (a trade status of lower rank, an
    order with less matched) is dropped as stale, so a duplicate, a reordered frame or a REST answer
    overtaken by the stream never moves anything backwards or counts twice.
    """

    def __init__(self, capacity: int = 200_000) -> None:
        self.capacity = capacity
        self._trades: dict[str, tuple[int, set[TradeStatus]]] = {}
        self._orders: dict[str, tuple[int, bool, set[tuple[int, OrderStatus]]]] = {}
        self.duplicates = 0
        self.stale = 0

    def admit(self, event: OrderEvent | TradeEvent) -> bool:
        if isinstance(event, TradeEvent):
            return self._admit_trade(event)
        return self._admit_order(event)

    def _admit_trade(self, t: TradeEvent) -> bool:
        rank = TRADE_RANK.get(t.status, 0)
        entry = self._trades.get(t.id)
        if entry is None:
            self._trades[t.id] = (rank, {t.status})
            self._trim(self._trades)
            return True
        best, seen = entry
        if t.status in seen:
            self.duplicates += 1
            return False
        if rank < best:
            self.stale += 1
            return False
        seen.add(t.status)
        self._trades[t.id] = (rank, seen)
        return True

    def _admit_order(self, o: OrderEvent) -> bool:
        key = (o.size_matched, o.status)
        terminal = o.status in TERMINAL_ORDER
        entry = self._orders.get(o.id)
        if entry is None:
            self._orders[o.id] = (o.size_matched, terminal, {key})
            self._trim(self._orders)
            return True
        matched, was_terminal, seen = entry
        if key in seen:
            self.duplicates += 1
            return False
        if o.size_matched < matched or (o.size_matched == matched and was_terminal and not terminal):
            self.stale += 1
            return False
        seen.add(key)
        self._orders[o.id] = (o.size_matched, terminal or (was_terminal and o.size_matched == matched), seen)
        return True

    def order_final(self, order_id: str) -> bool | None:
        """Whether the order's admitted state is final; None if it was never seen (or forgotten)."""
        entry = self._orders.get(order_id)
        return None if entry is None else entry[1]

    def _trim(self, table: dict[str, Any]) -> None:
        while len(table) > self.capacity:
            del table[next(iter(table))]


# --- the stream ---------------------------------------------------------------------------------------------------


@dataclass(slots=True)
class UserStreamStats:
    frames: int = 0
    orders: int = 0
    trades: int = 0
    duplicates: int = 0
    stale: int = 0
    malformed_frames: int = 0
    text_frames: int = 0
    unknown_events: int = 0
    gaps: int = 0
    backfills: int = 0
    backfill_failures: int = 0
    backfilled_trades: int = 0
    backfilled_orders: int = 0
    order_lookups: int = 0


class _OrderInfo:
    __slots__ = ("market", "open", "watched")

    def __init__(self, market: str, open_: bool, watched: bool = False) -> None:
        self.market = market
        self.open = open_
        self.watched = watched
        """Registered by the owner (`watch_orders`): looked up after every gap until it is final."""


_encode = msgspec.json.Encoder().encode


class UserStream(StreamBase[_Socket]):
    """Our orders and trades from the user channel, GAPPED until backfilled, then LIVE.

    The stream is GAPPED from the start and after every lost socket (closed, failed, or stale: no frame,
    not even PONG, for `stale_after_s`) or malformed frame, until a backfill through REST completed on
    the current connection: trades since the last seen match time (GET /data/trades?after=…, minus
    `backfill_overlap_s`), open orders (GET /data/orders), and GET /data/order/{id} for every order we
    knew open (or were told to watch, or saw filled in a backfilled trade) that is no longer open. They
    are emitted as the same typed events, flagged `backfill=True`; then the stream is LIVE again. The
    backfill starts after the subscription went out, so nothing falls between the two. Register the
    orders you place with `watch_orders` before sending them (as the OMS journals them): an order placed
    and finished entirely inside a gap is then found too.

    Without sequence numbers a frame lost on a socket that stays open is invisible;
    `reconcile_interval_s` (off by default: the OMS reconciles on its own) backfills periodically while
    LIVE to catch those. Exactly once: `UserEventDeduper`.

    Credentials go in the subscription frame (never logged; the client package's redaction covers
    them); a refusal ("INVALID AUTH") stops the stream for good with a `StreamFailed` carrying an
    AuthError.
    """

    channel = "user"

    def __init__(
        self,
        rest: ClobClient,
        *,
        markets: Iterable[str] = (),
        config: UserStreamConfig | None = None,
        since_s: int | None = None,
        clock: Clock | None = None,
        wall_clock: Clock | None = None,
        sleep: Sleep | None = None,
        rng: random.Random | None = None,
        session: aiohttp.ClientSession | None = None,
        on_event: Callable[[UserStreamEvent], None] | None = None,
        on_frame: Callable[[bytes], None] | None = None,
    ) -> None:
        """`rest`: the wallet's CLOB client (its API credentials authenticate the channel, and it
        backfills). `markets`: condition ids to follow (empty = everything of the key's owner).
        `since_s`: unix seconds from which trades count (default: when the stream starts)."""
        cfg = config or UserStreamConfig()
        super().__init__(cfg, clock=clock, sleep=sleep, rng=rng, session=session)
        if rest.creds is None:
            raise AuthError("the user channel needs the wallet's API credentials", source="local")
        register_creds(rest.creds)  # (a Wallet did already; a client built by hand may not have)
        self.config = cfg
        self.rest = rest
        self.wall_clock: Clock = wall_clock or WallClock()
        self.markets: dict[str, None] = {m.lower(): None for m in markets}
        self.state = UserStreamState.GAPPED
        self.gap_reason = "not connected yet"
        self.stats = UserStreamStats()
        self.dedupe = UserEventDeduper(cfg.dedupe_capacity)
        self._events: EventHub[UserStreamEvent] = EventHub(on_event)
        self._frame_tap = on_frame
        self._sockets.append(_Socket(0, Backoff(cfg.backoff, self._rng)))
        self._since_s = since_s
        self._synced_s = since_s or 0
        """Trades matched before this (unix s) were all seen: the stream's start, then each backfill's."""
        self._last_match_s: int | None = None
        self._orders: dict[str, _OrderInfo] = {}
        self._backfill: asyncio.Task[None] | None = None
        self._next_reconcile_ms = 0
        self._state_changed = asyncio.Event()
        self._live_pongs = 0
        """The socket's PONG count when the stream last came LIVE (`confirmed` needs one more)."""

    # --- public ---------------------------------------------------------------------------------------------

    async def __aenter__(self) -> UserStream:
        await self.start()
        return self

    async def start(self) -> None:
        first = not self._started
        if first and self._since_s is None:
            self._since_s = self._synced_s = self.wall_clock.now_ms() // 1000
        await super().start()
        if first:
            self._events.emit(UserStreamGapped(self.gap_reason, self.clock.now_ms()))

    @property
    def live(self) -> bool:
        """True only while the stream is known complete (LIVE): safe to take new risk on fills."""
        return self.state is UserStreamState.LIVE and self._sockets[0].live

    @property
    def confirmed(self) -> bool:
        """LIVE, and the socket has answered a PING since it came live, lately (within one ping interval
        plus the smaller of another one and half the way to `stale_after_s`): frames are flowing. A silently
        stalled socket is LIVE after a reconnect's backfill until the watchdog drops it, and one the venue
        keeps dropping flaps to LIVE after each backfill; neither is ever confirmed (the REST fallback,
        oms/fallback.py, watches this)."""
        sock = self._sockets[0]
        if not self.live or sock.pongs <= self._live_pongs:
            return False
        cfg = self.config
        ping = cfg.ping_interval_s
        fresh_ms = int((ping + min(ping, (cfg.stale_after_s - ping) / 2)) * 1000)
        return self.clock.now_ms() - sock.last_pong_ms <= fresh_ms

    def events(self) -> AsyncIterator[UserStreamEvent]:
        return self._events.subscribe()

    def add_listener(self, callback: Callable[[UserStreamEvent], None]) -> None:
        self._events.add_callback(callback)

    def watch_orders(self, order_ids: Iterable[str]) -> None:
        """Orders we are placing (register them before sending): after every gap their state is looked
        up, even if no event about them ever came, until one shows them final or `unwatch_orders`."""
        for order_id in order_ids:
            info = self._orders.get(order_id)
            if info is None:
                self._orders[order_id] = _OrderInfo("", True, watched=True)
            else:
                info.watched = True

    def unwatch_orders(self, order_ids: Iterable[str]) -> None:
        for order_id in order_ids:
            info = self._orders.get(order_id)
            if info is not None:
                info.watched = False
                if not info.open or not info.market:
                    del self._orders[order_id]  # final, or never heard of: nothing left to look up

    async def subscribe_markets(self, markets: Iterable[str]) -> None:
        self._check_open()
        new = [m.lower() for m in markets if m.lower() not in self.markets]
        if not new:
            return
        for m in new:
            self.markets[m] = None
        sock = self._sockets[0]
        if sock.live:
            await self._send(sock, [_encode({"operation": "subscribe", "markets": new}).decode()])
            self._gap("markets added")  # their history since the gap start is backfilled

    async def unsubscribe_markets(self, markets: Iterable[str]) -> None:
        self._check_open()
        gone = [m.lower() for m in markets if m.lower() in self.markets]
        for m in gone:
            del self.markets[m]
        sock = self._sockets[0]
        if gone and sock.live:
            await self._send(sock, [_encode({"operation": "unsubscribe", "markets": gone}).decode()])

    def resync(self, reason: str = "requested") -> None:
        """Declare a gap now and backfill (an operator command, a suspicion)."""
        self._check_open()
        self._gap(reason)

    async def wait_live(self, timeout_s: float = 10.0) -> bool:
        try:
            async with asyncio.timeout(timeout_s):
                while not self.live:
                    self._state_changed.clear()
                    await self._state_changed.wait()
                return True
        except TimeoutError:
            return False

    # --- hooks ------------------------------------------------------------------------------------------------

    def _first_frames(self, sock: _Socket) -> list[str]:
        creds = self.rest.creds
        assert creds is not None
        first = {
            "type": "user",
            "auth": {"apiKey": creds.api_key, "secret": creds.secret, "passphrase": creds.passphrase},
            "markets": list(self.markets),
        }
        return [_encode(first).decode()]

    def _on_subscribed(self, sock: _Socket) -> None:
        self._set_gapped("reconnected")  # (already: a lost socket gaps the stream)
        self._start_backfill(sock, reconcile=False)

    def _on_lost(self, sock: _Socket, reason: str) -> None:
        self._cancel_backfill()
        self._set_gapped(f"socket lost: {reason}")

    def _emit_connection(self, event: StreamConnected | StreamDisconnected | StreamFailed) -> None:
        self._events.emit(event)

    def _on_closed(self) -> None:
        self._events.close()

    def _on_tick(self, now_ms: int) -> None:
        interval = self.config.reconcile_interval_s
        if interval is None or self.state is not UserStreamState.LIVE:
            self._next_reconcile_ms = now_ms + int((interval or 0) * 1000)
            return
        if now_ms >= self._next_reconcile_ms:
            self._next_reconcile_ms = now_ms + int(interval * 1000)
            sock = self._sockets[0]
            if sock.live and (self._backfill is None or self._backfill.done()):
                self._start_backfill(sock, reconcile=True)

    # --- frames -------------------------------------------------------------------------------------------------

    def _on_frame(self, sock: _Socket, data: bytes) -> None:
        self.stats.frames += 1
        if self._frame_tap is not None:
            self._frame_tap(data)
        try:
            events = decode_user_frame(data)
        except MalformedMessageError as exc:
            self.stats.malformed_frames += 1
            log.warning("user stream: malformed frame: %s", redact(str(exc))[:200])
            self._gap("malformed frame")
            return
        for event in events:
            if isinstance(event, OrderEvent | TradeEvent):
                self._offer(event, backfill=False)
            elif isinstance(event, TextFrame):
                self.stats.text_frames += 1
                text = event.text.strip()
                if text.upper() in AUTH_REFUSED:
                    self._fail(AuthError(f"the user channel refused the credentials: {text}", source="venue"))
                    return
                log.warning("user stream: text frame %r", redact(text)[:200])
            elif isinstance(event, UnknownEvent):
                self.stats.unknown_events += 1

    def _offer(self, event: OrderEvent | TradeEvent, *, backfill: bool) -> bool:
        """Emit the event unless it is a duplicate or stale; keep what a later backfill needs."""
        if not self.dedupe.admit(event):
            self.stats.duplicates = self.dedupe.duplicates
            self.stats.stale = self.dedupe.stale
            return False
        if isinstance(event, TradeEvent):
            self.stats.trades += 1
            if event.match_time is not None and (self._last_match_s is None or event.match_time > self._last_match_s):
                self._last_match_s = event.match_time
        else:
            self.stats.orders += 1
            info = self._orders.get(event.id)
            is_open = event.status not in TERMINAL_ORDER
            if info is None:
                if is_open:
                    self._orders[event.id] = _OrderInfo(event.market, True)
            elif is_open or info.watched:
                info.market = event.market or info.market
                info.open = is_open
            else:
                del self._orders[event.id]  # final: nothing left to look up
        self._events.emit(UserUpdate(event, backfill, self.clock.now_ms()))
        return True

    # --- gaps and backfill ----------------------------------------------------------------------------------

    def _set_gapped(self, reason: str) -> None:
        if self.state is UserStreamState.GAPPED:
            return
        self.state = UserStreamState.GAPPED
        self.gap_reason = reason
        self.stats.gaps += 1
        # Our own close() ends the sockets too: still a gap for whoever reads on, but nothing to warn about.
        log.log(logging.INFO if self.closed else logging.WARNING, "user stream gapped: %s", reason)
        self._state_changed.set()
        self._events.emit(UserStreamGapped(reason, self.clock.now_ms()))

    def _gap(self, reason: str) -> None:
        """A gap on a socket that stays up: backfill on it."""
        self._set_gapped(reason)
        sock = self._sockets[0]
        if sock.live:
            self._cancel_backfill()
            self._start_backfill(sock, reconcile=False)

    def _cancel_backfill(self) -> None:
        task, self._backfill = self._backfill, None
        if task is not None and not task.done():
            task.cancel()

    def _start_backfill(self, sock: _Socket, *, reconcile: bool) -> None:
        self._cancel_backfill()
        self._backfill = self._spawn(self._run_backfill(sock, sock.generation, reconcile), name="ws-user-backfill")

    def _after_s(self, reconcile: bool) -> int:
        """Where the trade backfill starts: the last match time seen (a reconciliation: the last
        backfill's start), never before the last completed backfill, minus the overlap."""
        start = self._synced_s
        if not reconcile and self._last_match_s is not None and self._last_match_s > start:
            start = self._last_match_s
        return max(0, start - self.config.backfill_overlap_s)

    async def _run_backfill(self, sock: _Socket, generation: int, reconcile: bool) -> None:
        retry = Backoff(self.config.backoff, self._rng)
        while not self._closed:
            if sock.generation != generation or not sock.live:
                return
            try:
                trades, orders = await self._backfill_once(reconcile)
            except PolyomsError as exc:
                self.stats.backfill_failures += 1
                delay = max(self.config.backfill_retry_s, retry.next_s())
                log.warning("user stream backfill failed (%s); retrying in %.2f s", redact(exc.message)[:200], delay)
                await self._sleep(delay)
                continue
            if sock.generation != generation or not sock.live:
                return
            self.stats.backfills += 1
            if not reconcile or self.state is UserStreamState.GAPPED:
                self.state = UserStreamState.LIVE
                self.gap_reason = ""
                sock.backoff.reset()
                self._live_pongs = sock.pongs
                sock.next_ping_ms = self.clock.now_ms()  # a PING at the next tick confirms the socket soon
                self._state_changed.set()
                self._events.emit(UserStreamLive(self.clock.now_ms(), trades, orders))
            return

    def _ours(self, market: str) -> bool:
        return not self.markets or market.lower() in self.markets

    async def _backfill_once(self, reconcile: bool) -> tuple[int, int]:
        """Fetch and emit what the gap may have hidden; returns (trades, orders) newly emitted."""
        rest = self.rest
        creds = rest.creds
        assert creds is not None
        fetch_start_s = self.wall_clock.now_ms() // 1000
        trades = await rest.trades(after=self._after_s(reconcile))
        open_orders = await rest.open_orders()
        emitted_trades = emitted_orders = 0
        wanted: dict[str, None] = {}
        maker = rest.wallet.maker.lower() if rest.wallet is not None else ""
        for trade in sorted(trades, key=lambda t: (t.match_time or 0, t.id)):
            if not self._ours(trade.market):
                continue
            if self._offer(trade, backfill=True):
                emitted_trades += 1
            if trade.trader_side is TraderSide.TAKER and trade.taker_order_id:
                wanted[trade.taker_order_id] = None
            for fill in trade.maker_orders:
                if fill.owner == creds.api_key or (maker and fill.maker_address.lower() == maker):
                    wanted[fill.order_id] = None
        open_ids = set()
        for order in open_orders:
            if not self._ours(order.market):
                continue
            open_ids.add(order.id)
            if self._offer(_order_event(order, known=order.id in self._orders), backfill=True):
                emitted_orders += 1
        for order_id, info in self._orders.items():
            if info.open:
                wanted[order_id] = None
        missing = [oid for oid in wanted if oid not in open_ids and self._needs_lookup(oid)]
        emitted_orders += await self._look_up(missing)
        self.stats.backfilled_trades += emitted_trades
        self.stats.backfilled_orders += emitted_orders
        self._synced_s = max(self._synced_s, fetch_start_s)
        return emitted_trades, emitted_orders

    def _needs_lookup(self, order_id: str) -> bool:
        """Open (or never seen: an order of ours named by a backfilled trade), unless already final."""
        info = self._orders.get(order_id)
        if info is None:
            return self.dedupe.order_final(order_id) is not True
        return info.open

    async def _look_up(self, order_ids: list[str]) -> int:
        """GET /data/order for orders that left the open list (or that we never saw); emits their state."""
        if not order_ids:
            return 0
        gate = asyncio.Semaphore(self.config.order_lookup_concurrency)

        async def one(order_id: str) -> OpenOrder | None:
            async with gate:
                self.stats.order_lookups += 1
                return await self.rest.get_order(order_id)

        found = await asyncio.gather(*(one(o) for o in order_ids))
        emitted = 0
        for order_id, order in zip(order_ids, found, strict=True):
            if order is None:
                # Not (yet) known to the venue: a watched order may still be on its way; anything else
                # was mentioned by a trade or an event, so the venue should know it. Looked up again
                # after the next gap either way.
                log.info("user stream: order %s… is unknown to the venue", order_id[:12])
                continue
            if not self._ours(order.market):
                continue
            if self._offer(_order_event(order, known=order_id in self._orders), backfill=True):
                emitted += 1
        return emitted


def _order_event(order: OpenOrder, *, known: bool) -> OrderEvent:
    """An order's REST state as the user channel would have told it."""
    status = _order_status(order.status)
    if status is OrderStatus.CANCELED:
        kind = OrderEventType.CANCELLATION
    elif not known and order.size_matched == 0:
        kind = OrderEventType.PLACEMENT
    else:
        kind = OrderEventType.UPDATE
    return OrderEvent(
        type=kind,
        id=order.id,
        market=order.market,
        asset_id=order.asset_id,
        side=order.side,
        price=order.price,
        original_size=order.original_size,
        size_matched=order.size_matched,
        status=status,
        owner=order.owner,
        order_owner=order.owner,
        outcome=order.outcome,
        associate_trades=order.associate_trades,
        order_type=order.order_type,
        expiration=order.expiration,
        maker_address=order.maker_address,
        created_at=order.created_at,
        timestamp_ms=None,
    )


def _order_status(text: str) -> OrderStatus:
    """A REST status as the channel says it (`statuses.report_status`: INVALID and every CANCELED word are
    a cancellation). A word the venue has added since is taken as still open: the backfill must not end
    an order on a word it cannot read."""
    try:
        return event_status(report_status(text))
    except MalformedMessageError:
        return OrderStatus.LIVE
