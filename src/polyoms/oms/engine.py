"""The OMS engine: one asyncio task, the single writer of the `OmsState` (architecture principle 5).

Everything that changes trading state is an event on one queue, applied strictly in arrival order by
`_run`: commands (submit, cancel, reconcile), user events from the venue, the answers of I/O (POST
outcomes, cancel answers, the venue's truth for reconciliation, heartbeat results). Network I/O runs in
other tasks and posts its result back as an event; nothing else touches the state. After each batch of
events the journal is flushed (one transaction: committed here, or handed to the journal's writer
process, which commits batches in order) and the state's notifications are published to the subscribers.

Exactly-once submission (principle 2): an order arrives prepared by the venue adapter (for Polymarket,
signed) with the venue's exactly-once key as its id; `OmsState.submit` journals the intent and commits it
synchronously; only then is it sent, once. A definite
refusal rejects the order (the typed error is kept in `errors`); an unknown outcome (timeout, 5xx,
unreadable answer) makes it UNKNOWN, which closes admission until evidence resolves it: the user stream,
GET /data/order/{id}, /data/trades (`resolve_unknown`), and — once `unknown_grace_ms` has passed without
the venue knowing the order — a cancel by id followed by a reconciliation that concludes REJECTED.
Nothing is ever sent again to "retry" an order: `OmsState.submit` refuses a known order id.

Heartbeats: `heartbeat_once` (or the `run_heartbeats` loop) keeps the venue's dead-man switch alive. On
failure, admission closes (`RiskFlags.heartbeat_failed`) and the orders resting at that moment are
presumed cancelled (`presumed_cancelled`) until a reconciliation after a successful heartbeat resyncs
them with the venue; only then does admission reopen.

Timers: `run_maintenance` resolves UNKNOWN orders (bounded by `unknown_grace_ms`) and reconciles
periodically; `stream_gapped()` / `stream_live()` are for the user-stream client: a gap closes admission,
and the stream coming back LIVE reconciles before admission reopens. Degraded mode (`oms/fallback.py`,
driven by `ops/fallback.RestFallback`): when the stream stays down, `rest_poll` keeps the view current
through the reconciliation path and admission is reduce-only while that view is fresh (closed when it is
not); `leave_degraded` once the stream is confirmed and resynced. Optional `RiskConfig`: every order
also goes through `risk.check_order` (limits, balance, spread, rate; all orders of a batch or none).

Recovery: `recover_from(journal, venue)` rebuilds the state from the journal, marks in-flight intents
UNKNOWN (`after_restart`) and reconciles against the venue (open orders, trades since the checkpoint,
the UNKNOWN orders looked up one by one, balances), repairing toward the venue's truth.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from polyoms.core.clock import Clock
from polyoms.core.enums import Side
from polyoms.core.errors import PolyomsError, ReduceOnlyError
from polyoms.core.units import fmt_micro
from polyoms.core.user_events import OrderEvent, TradeEvent
from polyoms.core.venue import (
    MAX_BATCH,
    CancelAnswer,
    OrderReport,
    PreparedOrder,
    SubmitOutcome,
    UserEvent,
    Venue,
    VenueTruth,
)
from polyoms.oms import fallback, reconcile, repairs
from polyoms.oms.errors import IllegalTransitionError, TradingHaltedError
from polyoms.oms.fills import FillTier
from polyoms.oms.inputs import FillUpdate, Notification, OrderUpdate
from polyoms.oms.journal_recovery import recover
from polyoms.oms.oms_state import OmsState
from polyoms.oms.repairs import RepairBatch
from polyoms.oms.risk import BookQuote, MarketRules, OrderCheck, RateLimiter, RiskFlags, RiskLimits, check_order
from polyoms.oms.state import OrderState, intent_from_prepared

log = logging.getLogger(__name__)
S = OrderState
TRADE_LOOKBACK_S = 60


# --- events on the queue ------------------------------------------------------------------------------


@dataclass(slots=True)
class _Submit:
    orders: tuple[PreparedOrder, ...]
    market: str
    actor: str
    fee_rate_bps: int | None
    fut: asyncio.Future[list[str]]


@dataclass(slots=True)
class _SendDone:
    outcomes: list[SubmitOutcome]


@dataclass(slots=True)
class _Cancel:
    order_ids: tuple[str, ...] | None  # None: cancel all
    actor: str
    fut: asyncio.Future[None]


@dataclass(slots=True)
class _CancelDone:
    answer: CancelAnswer | None
    error: str = ""


@dataclass(slots=True)
class _User:
    event: UserEvent


@dataclass(slots=True)
class _Truth:
    truth: VenueTruth
    start_seq: int
    """The state's sequence number when the fetch began."""
    fut: asyncio.Future[RepairBatch]


@dataclass(slots=True)
class _Heartbeat:
    ok: bool
    error: str = ""


@dataclass(slots=True)
class _Call:
    fn: Callable[[OmsState], Any]
    fut: asyncio.Future[Any]


@dataclass(slots=True)
class _Gap:
    gapped: bool
    reason: str = ""


@dataclass(slots=True)
class _Market:
    event: object


@dataclass(slots=True)
class _Degraded:
    """The REST fallback's mode change (`on` None: only a new REST view, `view_ms`, and/or books)."""

    on: bool | None
    reason: str = ""
    max_view_age_ms: int = 0
    view_ms: int = 0
    quotes: dict[str, BookQuote] = field(default_factory=dict)
    books_at_ms: int = 0


_Event = _Submit | _SendDone | _Cancel | _CancelDone | _User | _Truth | _Heartbeat | _Call | _Gap | _Market | _Degraded


@dataclass(slots=True)
class RiskConfig:
    """Pre-trade risk for every order (`risk.check_order`), beyond the fail-closed admission rules.

    `quote(token_id)` gives the best prices from the caller's book mirror (None: no trusted book)."""

    markets: Mapping[str, MarketRules]
    quote: Callable[[str], BookQuote | None]
    limits: RiskLimits = field(default_factory=RiskLimits)
    limiter: RateLimiter = field(default_factory=lambda: RateLimiter(50, 10_000))


@dataclass(slots=True)
class EngineStats:
    events: int = 0
    batches: int = 0
    posts: int = 0
    unknown_outcomes: int = 0
    reconciliations: int = 0
    repairs: int = 0
    heartbeat_failures: int = 0
    errors: list[str] = field(default_factory=list)


class Engine:
    """The single writer (module doc). Start it with `start()` (or `async with`)."""

    def __init__(
        self,
        state: OmsState,
        venue: Venue,
        *,
        markets: Mapping[str, str] | None = None,
        flags: RiskFlags | None = None,
        unknown_grace_ms: int = 10_000,
        max_batch_events: int = 256,
        risk: RiskConfig | None = None,
    ) -> None:
        self.state = state
        self.venue = venue
        self.clock: Clock = state.clock
        self.markets = dict(markets or {})
        """token id → condition id, for orders submitted without their market."""
        self.flags = flags or RiskFlags()
        self.unknown_grace_ms = unknown_grace_ms
        self.risk = risk
        self.max_batch_events = max_batch_events
        self.errors: dict[str, PolyomsError] = {}
        """The venue's typed refusal of each rejected order."""
        self.presumed_cancelled: set[str] = set()
        """Orders resting when the heartbeat failed: presumed cancelled by the venue until resynced."""
        self.stats = EngineStats()
        self.market_handlers: list[Callable[[object], None]] = []
        """Called by the engine task with each market event, in order with everything else (book
        mirror, quote and trusted-book flags for `RiskConfig`)."""
        self._queue: asyncio.Queue[_Event] = asyncio.Queue()
        self._subscribers: list[asyncio.Queue[Notification]] = []
        self._task: asyncio.Task[None] | None = None
        self._io: set[asyncio.Task[Any]] = set()
        self._resync_pending = False
        self.degraded = ""
        """Why the engine is in degraded-rest mode (`oms/fallback.py`); "" = live."""
        self.degraded_since_ms = 0
        self.rest_view_ms = 0
        """When the last REST poll of the degraded mode began (its view is at least this recent)."""
        self.rest_view_max_age_ms = 0
        self.rest_quotes: dict[str, tuple[BookQuote, int]] = {}
        """Best prices from REST books (token → quote, fetched at ms), for tokens the market stream does
        not trust: used by pre-trade risk while younger than `rest_book_max_age_ms`."""
        self.rest_book_max_age_ms = 0
        if state.wallets and venue.wallet not in state.ledgers:
            raise ValueError(f"the venue's wallet {venue.wallet} has no ledger in the state")

    # --- lifecycle --------------------------------------------------------------------------------

    def start(self) -> None:
        if self._task is None:
            self.state.flush()  # the bootstrap (wallets, balances) is durable before anything happens
            self.venue.set_user_sink(self._on_user_event)
            self._task = asyncio.get_running_loop().create_task(self._run(), name="oms-engine")

    async def stop(self) -> None:
        """Orderly stop: finish the I/O under way, apply its results, flush, close nothing else."""
        await self.drain()
        self.venue.set_user_sink(None)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        self.state.flush()

    async def crash(self) -> None:
        """Tests: die here — no flush, in-flight I/O abandoned (its answers lost), the journal file left
        as the last commit wrote it."""
        self.venue.set_user_sink(None)
        tasks = [t for t in (self._task, *self._io) if t is not None]
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        self._task = None
        j = self.state.journal
        if j is not None:
            j.abandon()

    async def __aenter__(self) -> Engine:
        self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def drain(self) -> None:
        """Wait until every queued event is applied and no I/O task is under way."""
        while True:
            if self._io:
                await asyncio.gather(*list(self._io), return_exceptions=True)
            await self._queue.join()
            if not self._io and self._queue.empty():
                return

    def subscribe(self) -> asyncio.Queue[Notification]:
        q: asyncio.Queue[Notification] = asyncio.Queue()
        self._subscribers.append(q)
        return q

    def unsubscribe(self, q: asyncio.Queue[Notification]) -> None:
        with contextlib.suppress(ValueError):
            self._subscribers.remove(q)

    # --- commands (any task; applied by the engine task, in order) -------------------------------

    async def submit(
        self,
        orders: Sequence[PreparedOrder],
        *,
        market: str = "",
        actor: str = "operator",
        fee_rate_bps: int | None = None,
    ) -> list[str]:
        """Admit, journal (committed) and start sending `orders` (prepared by the venue adapter:
        `venue.prepare`); returns their ids (their exactly-once keys) once journaled.

        Raises the typed admission error (nothing journaled, nothing sent) when admission is closed."""
        fut: asyncio.Future[list[str]] = asyncio.get_running_loop().create_future()
        self._put(_Submit(tuple(orders), market, actor, fee_rate_bps, fut))
        return await fut

    async def cancel(self, order_ids: Iterable[str], actor: str = "operator") -> None:
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._put(_Cancel(tuple(order_ids), actor, fut))
        await fut

    async def cancel_all(self, actor: str = "operator") -> None:
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._put(_Cancel(None, actor, fut))
        await fut

    async def call(self, fn: Callable[[OmsState], Any]) -> Any:
        """Run `fn(state)` as an event of the engine (e.g. a balance bootstrap)."""
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._put(_Call(fn, fut))
        return await fut

    async def reconcile(self, *, balances: bool = True, rounds: int = 3) -> list[RepairBatch]:
        """Fetch the venue's truth (I/O), then diff and repair in the engine; repeated while a batch
        applied trades and deferred the balance check (at most `rounds`). Sends the cancels it asks for."""
        batches: list[RepairBatch] = []
        for _ in range(rounds):
            start_seq = self.state.seq
            truth = await self._fetch_truth(balances=balances)
            fut: asyncio.Future[RepairBatch] = asyncio.get_running_loop().create_future()
            self._put(_Truth(truth, start_seq, fut))
            batch = await fut
            batches.append(batch)
            if not any(d.kind == repairs.BALANCE_DEFERRED for d in batch.diffs):
                break
        return batches

    async def resolve_unknown(self) -> list[str]:
        """Resolve the UNKNOWN orders from evidence (never by sending again); returns those still UNKNOWN.

        The venue's truth (each UNKNOWN order looked up by id, trades, open orders) resolves every order
        the venue knows. One the venue does not know once `unknown_grace_ms` has passed is cancelled by
        id (harmless if it never arrived) and then concluded REJECTED by the reconciliation."""
        await self.reconcile(balances=False)
        now = self.clock.now_ms()
        stale = [
            oid
            for oid in sorted(self.state.unknown)
            if now - self.state.orders[oid].last_ts_ms >= self.unknown_grace_ms
        ]
        if stale:
            await self._cancel_io(tuple(stale))
            await self.reconcile(balances=False)
        return sorted(self.state.unknown)

    async def heartbeat_once(self) -> bool:
        try:
            await self.venue.heartbeat()
        except Exception as exc:  # any failure counts: the dead-man switch may fire
            await self._post_and_wait(_Heartbeat(False, f"{type(exc).__name__}: {exc}"))
            return False
        await self._post_and_wait(_Heartbeat(True))
        if self._resync_pending:
            try:
                await self.reconcile()
            except Exception as exc:  # admission stays closed; the next beat tries the resync again
                self.stats.errors.append(f"resync after heartbeat: {type(exc).__name__}: {exc}")
        return True

    async def run_heartbeats(
        self, interval_s: float = 5.0, sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    ) -> None:
        """The heartbeat task: beats every `interval_s` until cancelled."""
        while True:
            await self.heartbeat_once()
            await sleep(interval_s)

    def market_event(self, event: object) -> None:
        """A market-channel event (book, price change...): applied by the engine task, in arrival order."""
        self._put(_Market(event))

    def stream_recovered(self) -> None:
        """The user stream is complete again: `stream_live` in the background (for stream listeners)."""
        self._spawn(self.stream_live())

    def stream_gapped(self, reason: str = "") -> None:
        """The user stream lost continuity (e.g. `ws_user.UserStreamGapped`): admission closes."""
        self._put(_Gap(True, reason))

    async def stream_live(self) -> None:
        """The user stream is complete again (e.g. `ws_user.UserStreamLive` after its backfill):
        reconcile, then reopen admission."""
        await self.reconcile()
        await self._post_and_wait(_Gap(False))

    # --- degraded mode: the REST fallback (oms/fallback.py; driven by ops/fallback.RestFallback) -----

    @property
    def stream_mode(self) -> str:
        return fallback.DEGRADED if self.degraded else fallback.LIVE

    async def enter_degraded(self, reason: str, max_view_age_ms: int) -> None:
        """The user stream stayed unconfirmed too long: admission becomes reduce-only (fallback doc)
        on the view of the REST polls (`rest_poll`), closed while that view is older than `max_view_age_ms`."""
        await self._post_and_wait(_Degraded(True, reason, max_view_age_ms))

    async def leave_degraded(self) -> None:
        """The stream is confirmed and resynced again: admission as before the gap."""
        await self._post_and_wait(_Degraded(False))

    async def rest_poll(self) -> list[RepairBatch]:
        """One poll of the degraded mode: open orders and trades through the reconciliation path (fills
        recorded once, with their tier); the view's time is recorded once the batch is applied."""
        began = self.clock.now_ms()
        batches = await self.reconcile(balances=False)
        await self._post_and_wait(_Degraded(None, view_ms=began))
        return batches

    async def note_rest_books(self, quotes: Mapping[str, BookQuote], at_ms: int, max_age_ms: int) -> None:
        """Best prices read from REST books at `at_ms`, for tokens the market stream does not trust;
        pre-trade risk uses them while younger than `max_age_ms`."""
        await self._post_and_wait(_Degraded(None, quotes={**quotes}, books_at_ms=at_ms, max_view_age_ms=max_age_ms))

    def rest_quote(self, token_id: str) -> BookQuote | None:
        """A REST book's best prices, if it was read recently enough."""
        got = self.rest_quotes.get(token_id)
        if got is None:
            return None
        quote, at_ms = got
        return quote if self.clock.now_ms() - at_ms <= self.rest_book_max_age_ms else None

    def _degraded_why(self) -> str:
        age_s = (self.clock.now_ms() - self.degraded_since_ms) / 1000
        return f"degraded-rest mode for {age_s:.1f} s ({self.degraded})"

    def _rest_view_stale(self) -> bool:
        return self.clock.now_ms() - self.rest_view_ms > self.rest_view_max_age_ms

    def _apply_degraded(self, ev: _Degraded) -> None:
        now = self.clock.now_ms()
        if ev.quotes:
            for token, quote in ev.quotes.items():
                self.rest_quotes[token] = (quote, ev.books_at_ms)
            self.rest_book_max_age_ms = ev.max_view_age_ms
            return
        if ev.on is None:
            self.rest_view_ms = max(self.rest_view_ms, ev.view_ms)
        elif ev.on:
            if not self.degraded:
                self.degraded_since_ms = now
                self.rest_view_ms = 0  # nothing is trusted until the first poll is applied
            self.degraded = ev.reason or "user stream down"
            self.rest_view_max_age_ms = ev.max_view_age_ms
            log.warning("engine degraded-rest: %s; polling REST, admission reduce-only", self.degraded)
        elif self.degraded:
            log.warning("engine live again after %.1f s in degraded-rest mode", (now - self.degraded_since_ms) / 1000)
            self.degraded = ""

    async def run_maintenance(
        self,
        *,
        interval_s: float = 1.0,
        reconcile_every_s: float = 60.0,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        """The timer task: resolves UNKNOWN orders as soon as evidence allows (bounded by
        `unknown_grace_ms`), and reconciles with the venue every `reconcile_every_s`. Runs until
        cancelled; a failing venue only delays it."""
        last = self.clock.now_ms()
        while True:
            await sleep(interval_s)
            try:
                if self.state.unknown:
                    await self.resolve_unknown()
                now = self.clock.now_ms()
                if now - last >= reconcile_every_s * 1000:
                    last = now
                    await self.reconcile()
            except Exception as exc:  # the venue is down or slow: try again next time
                self.stats.errors.append(f"maintenance: {type(exc).__name__}: {exc}")

    # --- queries (read-only; safe from any task between awaits) -----------------------------------

    def admission_errors(self) -> list[PolyomsError]:
        """Fail-closed conditions (risk.py's admission rules) that refuse any new order now."""
        out: list[PolyomsError] = []
        if self.flags.kill_switch:
            out.append(TradingHaltedError("kill switch is on: admission closed", rule="kill_switch"))
        if self.state.halted:
            out.append(TradingHaltedError(f"OMS halted: {self.state.halted}", rule="journal"))
        if self.state.unknown:
            out.append(
                TradingHaltedError(
                    f"{len(self.state.unknown)} order(s) in UNKNOWN state: no new risk until resolved",
                    rule="unknown_order",
                )
            )
        if self.flags.heartbeat_failed:
            out.append(TradingHaltedError("heartbeat failed: no new risk until resynced", rule="heartbeat"))
        if self.degraded:
            # The REST polls stand in for the stream: admission is reduce-only (`_apply_submit`) while
            # their view is fresh, closed when it is not.
            if self._rest_view_stale():
                age = "no REST poll yet" if not self.rest_view_ms else f"last REST poll {self._view_age_s():.1f} s ago"
                out.append(
                    TradingHaltedError(
                        f"{self._degraded_why()}: {age}; no new orders until the view is current (cancels work)",
                        rule="degraded_stale",
                    )
                )
        elif self.flags.user_stream_gapped:
            out.append(TradingHaltedError("user stream gapped: reconcile first", rule="user_stream"))
        return out

    def _view_age_s(self) -> float:
        return (self.clock.now_ms() - self.rest_view_ms) / 1000

    def admission_note(self) -> str:
        """What admission allows beyond `admission_errors` (the degraded mode's policy), "" when normal."""
        if not self.degraded:
            return ""
        view = "no REST poll yet" if not self.rest_view_ms else f"REST view {self._view_age_s():.1f} s old"
        return f"{self._degraded_why()}; {view}; reduce-only: cancels and SELLs of held shares admitted, BUYs refused"

    # --- the single writer ------------------------------------------------------------------------

    def _put(self, ev: _Event) -> None:
        self._queue.put_nowait(ev)

    async def _post_and_wait(self, ev: _Event) -> None:
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._put(ev)
        self._put(_Call(lambda _s: None, fut))
        await fut

    def _on_user_event(self, ev: UserEvent) -> None:
        self._put(_User(ev))

    async def _run(self) -> None:
        q = self._queue
        while True:
            first = await q.get()
            batch = [first]
            while len(batch) < self.max_batch_events and not q.empty():
                batch.append(q.get_nowait())
            try:
                for ev in batch:
                    self.stats.events += 1
                    try:
                        self._apply(ev)
                    except Exception as exc:  # one bad event must not stop the writer
                        self.stats.errors.append(f"{type(ev).__name__}: {type(exc).__name__}: {exc}")
                        log.exception("oms engine: event %s failed", type(ev).__name__)
                        fut = getattr(ev, "fut", None)
                        if fut is not None and not fut.done():
                            fut.set_exception(exc)
                self.stats.batches += 1
                try:
                    self.state.flush()
                except Exception as exc:
                    self.stats.errors.append(f"flush: {exc}")  # state.halted is set: admission closed
                self._publish()
            finally:
                for _ in batch:
                    q.task_done()

    def _publish(self) -> None:
        notes = self.state.drain_notifications()
        if notes:
            _log_notes(notes)
            for sub in self._subscribers:
                for n in notes:
                    sub.put_nowait(n)

    def _apply(self, ev: _Event) -> None:
        if isinstance(ev, _User):
            self._apply_user(ev.event)
        elif isinstance(ev, _Submit):
            self._apply_submit(ev)
        elif isinstance(ev, _SendDone):
            self._apply_send_done(ev.outcomes)
        elif isinstance(ev, _Cancel):
            self._apply_cancel(ev)
        elif isinstance(ev, _CancelDone):
            self._apply_cancel_done(ev)
        elif isinstance(ev, _Truth):
            ev.fut.set_result(self._apply_truth(ev.truth, ev.start_seq))
        elif isinstance(ev, _Heartbeat):
            self._apply_heartbeat(ev)
        elif isinstance(ev, _Call):
            ev.fut.set_result(ev.fn(self.state))
        elif isinstance(ev, _Gap):
            self.flags.user_stream_gapped = ev.gapped
        elif isinstance(ev, _Degraded):
            self._apply_degraded(ev)
        elif isinstance(ev, _Market):
            for handler in self.market_handlers:
                handler(ev.event)

    def _evidence(self, fn: Callable[..., object], *args: Any) -> None:
        """Apply one piece of venue evidence; a contradiction is journaled and counted, not fatal."""
        try:
            fn(*args)
        except IllegalTransitionError as exc:
            self.stats.errors.append(f"contradicting evidence: {exc}")

    def _apply_user(self, ev: UserEvent) -> None:
        if isinstance(ev, TradeEvent):
            self._evidence(self.state.on_trade_event, ev)
        elif isinstance(ev, OrderEvent):
            self._evidence(self.state.on_order_event, ev)

    def _apply_submit(self, ev: _Submit) -> None:
        if ev.fut.done():
            return
        errors = self.admission_errors()
        if not errors:
            errors = self._reduce_only_errors(ev.orders)
        if not errors and self.degraded:
            legs = [fallback.ReduceLeg(o.token_id, o.side, 0 if o.notional else o.size) for o in ev.orders]
            errors = fallback.reduce_only_errors(self.state, self.venue.wallet, legs, self._degraded_why())
        if not errors and self.risk is not None:
            errors = self._risk_errors(ev)
        if errors:
            ev.fut.set_exception(errors[0])
            return
        wallet = self.venue.wallet
        ids: list[str] = []
        sent: list[PreparedOrder] = []
        try:
            for order in ev.orders:
                market = ev.market or self.markets.get(order.token_id, "")
                intent = intent_from_prepared(
                    order, wallet=wallet, market=market, actor=ev.actor, fee_rate_bps=ev.fee_rate_bps
                )
                self.state.submit(intent)  # committed (synchronous) before anything is sent
                ids.append(order.key)
                sent.append(order)
        except PolyomsError as exc:
            # The orders already journaled are sent; the caller learns of the refusal.
            self._send(sent)
            ev.fut.set_exception(exc)
            return
        self._send(sent)
        ev.fut.set_result(ids)

    def _reduce_only_errors(self, orders: Sequence[PreparedOrder]) -> list[PolyomsError]:
        """Reduce-only orders are checked here, for every venue (whether or not it knows the flag)."""
        legs = [fallback.ReduceLeg(o.token_id, o.side, o.size) for o in orders if o.reduce_only]
        found = fallback.adds_risk(self.state, self.venue.wallet, legs) if legs else None
        if found is None:
            return []
        token, side, size, sellable = found
        if side is Side.BUY:
            text = "a reduce-only BUY would add to a position (positions are long-only)"
        else:
            text = f"reduce-only SELL of {fmt_micro(size)} shares exceeds the {fmt_micro(sellable)} held and free"
        return [ReduceOnlyError(text, token_id=token, side=side.name)]

    def _risk_errors(self, ev: _Submit) -> list[PolyomsError]:
        """Every order of the submission checked (all or none admitted); admitted ones are counted."""
        risk = self.risk
        assert risk is not None
        now = self.clock.now_ms()
        flags = self.flags
        if self.degraded and flags.user_stream_gapped:
            # Degraded, with a fresh REST view (admission checked it): the polls stand in for the stream.
            flags = dataclasses.replace(flags, user_stream_gapped=False)
        for order in ev.orders:
            token = order.token_id
            size, price = order.size, order.price
            dollar_buy = order.notional
            req = OrderCheck(
                wallet=self.venue.wallet,
                market=ev.market or self.markets.get(token, ""),
                token_id=token,
                side=order.side,
                price=price,
                size=0 if dollar_buy else size,
                amount=order.maker_amount if dollar_buy else 0,
                order_type=order.order_type,
                post_only=order.post_only,
                confirmed=True,
            )
            errors = check_order(
                req,
                state=self.state,
                markets=risk.markets,
                quote=risk.quote(token) or self.rest_quote(token),
                limits=risk.limits,
                flags=flags,
                limiter=risk.limiter,
                now_ms=now,
            )
            if errors:
                return errors
        for _ in ev.orders:
            risk.limiter.record(now)
        return []

    def _send(self, orders: list[PreparedOrder]) -> None:
        for i in range(0, len(orders), MAX_BATCH):
            self._spawn(self._send_io(tuple(orders[i : i + MAX_BATCH])))

    async def _send_io(self, orders: tuple[PreparedOrder, ...]) -> None:
        try:
            outcomes = await self.venue.submit(orders)
        except Exception as exc:  # the adapter failed in a way it did not type: nothing is known
            outcomes = [SubmitOutcome(o.key, unknown=f"{type(exc).__name__}: {exc}") for o in orders]
        self._put(_SendDone(outcomes))

    def _apply_send_done(self, outcomes: list[SubmitOutcome]) -> None:
        for out in outcomes:
            self.stats.posts += 1
            oid = out.order_id
            if oid not in self.state.orders:
                continue
            if out.ack is not None:
                self._evidence(self.state.on_ack, oid, out.ack)
            elif out.error is not None:
                self.errors[oid] = out.error
                self._evidence(self.state.on_reject, oid, out.error)
            else:
                self.stats.unknown_outcomes += 1
                self._evidence(self.state.on_send_failed, oid, out.unknown or "no answer")

    def _apply_cancel(self, ev: _Cancel) -> None:
        if ev.order_ids is None:
            ids = tuple(o.order_id for o in self.state.open_orders(self.venue.wallet))
            if ids:
                self.state.request_cancel(ids, ev.actor, "cancel all")
            self._spawn(self._cancel_all_io())
        else:
            # Orders that finished meanwhile (their events were ahead in the queue) need no cancel.
            ids = tuple(i for i in ev.order_ids if self.state.order(i).is_open)
            if ids:
                self.state.request_cancel(ids, ev.actor)
                self._spawn(self._cancel_io(ids))
        ev.fut.set_result(None)

    async def _cancel_io(self, order_ids: tuple[str, ...]) -> None:
        try:
            answer = await self.venue.cancel([self.state.ref(oid) for oid in order_ids])
        except Exception as exc:
            self._put(_CancelDone(None, f"{type(exc).__name__}: {exc}"))
            return
        self._put(_CancelDone(answer))

    async def _cancel_all_io(self) -> None:
        try:
            answer = await self.venue.cancel_all()
        except Exception as exc:
            self._put(_CancelDone(None, f"{type(exc).__name__}: {exc}"))
            return
        self._put(_CancelDone(answer))

    def _apply_cancel_done(self, ev: _CancelDone) -> None:
        if ev.answer is None:
            # No answer: the orders stay cancel-pending; the user stream or reconciliation tells.
            self.stats.errors.append(f"cancel failed: {ev.error}")
            return
        a = ev.answer
        self._evidence(self.state.on_cancel_answer, a.canceled, a.not_canceled)

    def _apply_heartbeat(self, ev: _Heartbeat) -> None:
        if ev.ok:
            if self.flags.heartbeat_failed:
                self._resync_pending = True  # admission reopens after the resync (reconciliation)
            return
        self.stats.heartbeat_failures += 1
        if not self.flags.heartbeat_failed:
            self.flags.heartbeat_failed = True
            self.presumed_cancelled = {o.order_id for o in self.state.open_orders(self.venue.wallet)}
            log.warning(
                "heartbeat failed (%s): admission closed, %d orders presumed cancelled",
                ev.error,
                len(self.presumed_cancelled),
            )

    # --- reconciliation ---------------------------------------------------------------------------

    async def _fetch_truth(self, *, balances: bool) -> VenueTruth:
        st = self.state
        since = st.trade_checkpoint_s - TRADE_LOOKBACK_S if st.trade_checkpoint_s else 0
        unresolved = [st.orders[oid] for oid in st.unknown] + [o for o in st.orders.values() if o.state is S.SUBMITTING]
        if unresolved:
            since = min(since, min(o.created_ms for o in unresolved) // 1000 - TRADE_LOOKBACK_S)
        # Provisional fills can settle (or fail) long after the checkpoint: their trades are asked for too.
        provisional = [f.match_time or f.first_ms // 1000 for f in st.fills.values() if f.tier is FillTier.PROVISIONAL]
        if provisional:
            since = min(since, min(provisional) - TRADE_LOOKBACK_S)
        since = max(since, 0)
        lookups: dict[str, OrderReport] = {}
        for o in unresolved:
            v = await self.venue.get_order(o.order_id)
            if v is not None:
                lookups[o.order_id] = v
        open_orders = await self.venue.open_orders()
        trades = await self.venue.trades(since)
        cash: dict[str, int] = {}
        shares: dict[str, dict[str, int]] = {}
        if balances:
            wallet = self.venue.wallet
            lg = st.ledgers.get(wallet)
            tokens = sorted(lg.positions) if lg is not None else []
            c, s = await self.venue.balances(tokens)
            cash[wallet] = c
            shares[wallet] = s
        return VenueTruth(
            as_of_ms=self.clock.now_ms(),
            open_orders=tuple(open_orders),
            trades=tuple(trades),
            trades_since_s=since,
            order_status=lookups,
            cash=cash,
            shares=shares,
        )

    def _apply_truth(self, truth: VenueTruth, start_seq: int) -> RepairBatch:
        # The diff is taken now, against the state as it is. Its repairs are forward-only evidence
        # (idempotent, see reconcile.py), but the truth may be older than some of the state's inputs.
        batch = reconcile.diff(self.state, truth, unknown_grace_ms=self.unknown_grace_ms)
        if self.state.seq != start_seq:
            batch = self._without_stale(batch, start_seq)
        self.stats.reconciliations += 1
        if batch.actions or batch.diffs:
            try:
                self.state.apply_reconciliation(batch)
            except IllegalTransitionError as exc:
                self.stats.errors.append(f"reconciliation refused: {exc}")
                return batch
            self.stats.repairs += len(batch.actions)
        cancels = batch.venue_cancels
        if cancels:
            self._spawn(self._cancel_io(tuple(cancels)))
        if self._resync_pending:
            self._resync_pending = False
            self.flags.heartbeat_failed = False
            self.presumed_cancelled.clear()
        return batch

    def _without_stale(self, batch: RepairBatch, start_seq: int) -> RepairBatch:
        """Drop what an input applied during the fetch may have made wrong: an order changed since the
        fetch began (e.g. acknowledged after the open-orders list was read) is not concluded missing, and
        balances are not repaired (a fill may sit between the balance read and now). The next
        reconciliation looks again."""
        touched = {o.order_id for o in self.state.orders.values() if o.history and o.history[-1].seq > start_seq} | {
            f.order_id for f in self.state.fills.values() if f.seq > start_seq
        }
        balance_kinds = (repairs.CASH_DRIFT, repairs.SHARES_DRIFT)
        diffs = tuple(
            d
            for d in batch.diffs
            if d.kind not in balance_kinds and not (d.kind == repairs.ORDER_MISSING_AT_VENUE and d.order_id in touched)
        )
        actions = tuple(
            a
            for a in batch.actions
            if not isinstance(a, (repairs.SetCash, repairs.SetShares))
            and not (isinstance(a, repairs.Resolve) and a.order_id in touched)
        )
        return RepairBatch(batch.as_of_ms, diffs, actions)

    # --- plumbing ---------------------------------------------------------------------------------

    def _spawn(self, coro: Awaitable[None]) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(coro)
        self._io.add(task)
        task.add_done_callback(self._io.discard)


def _log_notes(notes: Iterable[Notification]) -> None:
    """The operator's log of what happened to orders: fills and cancels at info, venue refusals and
    voided fills at warning (the audit trail has every transition; this is the readable summary)."""
    for n in notes:
        if isinstance(n, FillUpdate):
            f = n.fill
            if n.change == "new":
                log.info(
                    "fill: %s %s @ %s (%s, fee %s) trade %s",
                    f.side.name,
                    fmt_micro(f.size),
                    fmt_micro(f.price),
                    f.role.value,
                    fmt_micro(f.fee),
                    f.trade_id,
                    extra={"order_id": f.order_id, "market": f.market, "trade_id": f.trade_id},
                )
            elif n.change == "voided":
                log.warning(
                    "fill voided (trade failed on chain): %s %s @ %s trade %s",
                    f.side.name,
                    fmt_micro(f.size),
                    fmt_micro(f.price),
                    f.trade_id,
                    extra={"order_id": f.order_id, "market": f.market, "trade_id": f.trade_id},
                )
        elif isinstance(n, OrderUpdate):
            if n.to_state is S.REJECTED:
                log.warning("order rejected: %s", n.reason, extra={"order_id": n.order_id})
            elif n.to_state is S.CANCELLED:
                log.info("order cancelled: %s", n.reason, extra={"order_id": n.order_id})
            elif n.to_state is S.EXPIRED:
                log.info("order expired: %s", n.reason, extra={"order_id": n.order_id})


async def recover_from(
    journal_path: str | Path,
    venue: Venue,
    clock: Clock,
    **engine_kwargs: Any,
) -> Engine:
    """Rebuild the state from the journal, start an engine on it, mark in-flight intents UNKNOWN and
    reconcile with the venue (one reconciliation; call `resolve_unknown` for what it leaves open)."""
    state = recover(journal_path, clock)
    engine = Engine(state, venue, **engine_kwargs)
    engine.start()
    await engine.call(lambda s: s.after_restart())
    await engine.reconcile()
    return engine
