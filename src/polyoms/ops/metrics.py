"""Prometheus metrics of a running OMS: orders, fills, latencies, streams, rate limits, ledgers, heartbeat.

Nothing here changes how the engine works; the metrics are read from what already exists:
* the engine's notifications (`attach`): transitions, fills by change/tier/side, anomalies, and two
  order latencies timed on the engine's clock from the audit trail (a backtest measures virtual time,
  agreeing with the journal): submit→ack, the intent journaled → the venue's answer applied (journal
  commit + POST round trip + engine queue; `outcome` says LIVE, FILLED, REJECTED...), and ack→first
  fill (0 when the fill came first: taker);
* the venue port, wrapped by `instrument(venue)`: each call's wall-clock duration, submit outcomes, the
  last successful heartbeat;
* at scrape time, a collector (nothing kept twice): orders by state, `EngineStats`, admission, heartbeat
  health, ledgers, and the client's counters (reconnects, gaps, untrusted books, rate-limit waits, REST
  requests, retries, breakers).
Label values are bounded (never an order or trade id); amounts in pUSD and shares, latencies in seconds.
Every exposition is scrubbed of registered secrets (`polymarket.client.redact`). Everything runs on the
engine's event loop, where reading the state between awaits is safe: call `render()` from there only.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter as _Tally
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, TypeVar

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from polyoms.core.clock import Clock, WallClock
from polyoms.core.units import MICRO
from polyoms.core.user_events import TradeEvent
from polyoms.core.venue import (
    CancelAnswer,
    Instrument,
    OrderRef,
    OrderReport,
    OrderRequest,
    PreparedOrder,
    SettlementModel,
    SubmitOutcome,
    UserSink,
    Venue,
)
from polyoms.oms.engine import Engine
from polyoms.oms.inputs import Anomaly, FillUpdate, Notification, OrderUpdate
from polyoms.oms.oms_state import OmsState
from polyoms.oms.state import OrderState
from polyoms.polymarket.client.breaker import BreakerState
from polyoms.polymarket.client.hub import ClientHub
from polyoms.polymarket.client.ratelimit import LimitStats
from polyoms.polymarket.client.redact import redact
from polyoms.polymarket.client.ws_common import StreamBase
from polyoms.polymarket.client.ws_market import MarketStream
from polyoms.polymarket.client.ws_user import UserStream

__all__ = [
    "InstrumentedVenue",
    "Marks",
    "Metrics",
    "MetricsServer",
    "start_metrics_server",
]

T = TypeVar("T")

Marks = Callable[[str], int | None]
"""token id → mark price in micro pUSD per share (None: no mark); for unrealized PnL. The daemon sets
`Metrics.marks` to the desk's `mark` (the trusted book's mid), read at every scrape."""

S = OrderState
_ACKED: Final = frozenset({S.LIVE, S.PARTIALLY_FILLED, S.FILLED})
_NO_FILL_COMING: Final = frozenset({S.CANCELLED, S.EXPIRED, S.REJECTED})
# The classic text format, which every Prometheus understands (all our names are plain ASCII); newer
# clients announce "version=1.0.0", which older servers do not know.
CONTENT_TYPE: Final = "text/plain; version=0.0.4; charset=utf-8"
_PENDING_CAP: Final = 100_000
"""Orders acknowledged and awaiting their first fill that are tracked at once (oldest dropped)."""

# Order round trips: a few ms (local exchange) to seconds (a slow venue, a 5 s order timeout).
_ROUND_TRIP_BUCKETS: Final = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
# A resting order may wait from milliseconds to hours for its first fill.
_REST_BUCKETS: Final = (0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0, 14400.0)


def _units(micro: int) -> float:
    # Display edge only (a scrape); the ledgers stay exact integers.
    return micro / MICRO


def _gauge(name: str, doc: str, labels: Sequence[str]) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, labels=list(labels))


def _counter(name: str, doc: str, labels: Sequence[str]) -> CounterMetricFamily:
    # `name` without "_total": the family adds it to its samples.
    return CounterMetricFamily(name, doc, labels=list(labels))


# --- the venue port, timed ----------------------------------------------------------------------------


class InstrumentedVenue:
    """A `Venue` that forwards every call to `inner` and times it (see `Metrics.instrument`).

    Attributes it does not define (an adapter's `posts`, `client`, `follow`...) are the inner
    venue's, so code holding the wrapper keeps working."""

    def __init__(self, inner: Venue, metrics: Metrics, clock: Clock | None = None) -> None:
        self.inner = inner
        self._m = metrics
        self._clock: Clock = clock or WallClock()
        self.heartbeat_last_success_ms: int | None = None
        self.heartbeat_last_failure_ms: int | None = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    @property
    def name(self) -> str:
        return self.inner.name

    @property
    def wallet(self) -> str:
        return self.inner.wallet

    @property
    def owner(self) -> str:
        return self.inner.owner

    @property
    def settlement(self) -> SettlementModel:
        return self.inner.settlement

    @property
    def expiry_lead_s(self) -> int:
        return self.inner.expiry_lead_s

    def prepare(self, request: OrderRequest, instrument: Instrument) -> PreparedOrder:
        return self.inner.prepare(request, instrument)

    def set_user_sink(self, sink: UserSink | None) -> None:
        self.inner.set_user_sink(sink)

    async def _timed(self, op: str, call: Awaitable[T]) -> T:
        started = time.perf_counter()
        try:
            result = await call
        except Exception:  # (a cancellation is no venue failure: not counted)
            self._m.venue_call_seconds.labels(op, "error").observe(time.perf_counter() - started)
            raise
        self._m.venue_call_seconds.labels(op, "ok").observe(time.perf_counter() - started)
        return result

    async def submit(self, orders: Sequence[PreparedOrder]) -> list[SubmitOutcome]:
        outcomes = await self._timed("submit", self.inner.submit(orders))
        for out in outcomes:
            kind = "acked" if out.ack is not None else "refused" if out.error is not None else "unknown"
            self._m.submit_outcomes.labels(kind).inc()
        return outcomes

    async def cancel(self, orders: Sequence[OrderRef]) -> CancelAnswer:
        return await self._timed("cancel", self.inner.cancel(orders))

    async def cancel_all(self) -> CancelAnswer:
        return await self._timed("cancel_all", self.inner.cancel_all())

    async def get_order(self, order_id: str) -> OrderReport | None:
        return await self._timed("get_order", self.inner.get_order(order_id))

    async def open_orders(self) -> list[OrderReport]:
        return await self._timed("open_orders", self.inner.open_orders())

    async def trades(self, after_s: int | None = None) -> list[TradeEvent]:
        return await self._timed("trades", self.inner.trades(after_s))

    async def balances(self, token_ids: Sequence[str]) -> tuple[int, dict[str, int]]:
        return await self._timed("balances", self.inner.balances(token_ids))

    async def heartbeat(self) -> str:
        try:
            beat = await self._timed("heartbeat", self.inner.heartbeat())
        except Exception:
            self.heartbeat_last_failure_ms = self._clock.now_ms()
            raise
        self.heartbeat_last_success_ms = self._clock.now_ms()
        return beat

    async def close(self) -> None:
        await self.inner.close()


# --- metrics ------------------------------------------------------------------------------------------


@dataclass(slots=True)
class _Attached:
    engine: Engine
    queue: asyncio.Queue[Notification]
    task: asyncio.Task[None] | None = None
    awaiting_fill: dict[str, int] = field(default_factory=dict)
    """order id → clock ms of its acknowledgement, until its first fill (or its end) is seen."""
    tally: _Tally[tuple[str, OrderState]] = field(default_factory=_Tally)
    """Orders by (wallet, state), kept from the notifications: a scrape must not walk every order the
    OMS ever had on the engine's loop. Orders never notified about are those still SUBMITTING."""
    known: set[str] = field(default_factory=set)
    """Orders counted in `tally`."""

    def recount(self) -> None:
        orders = self.engine.state.orders.values()
        self.tally = _Tally((o.wallet, o.state) for o in orders)
        self.known = set(self.engine.state.orders)

    def order_counts(self) -> _Tally[tuple[str, OrderState]]:
        state = self.engine.state
        if state.halted:
            # A journal failure rejects the order it was writing without a notification: count afresh.
            self.recount()
        counts = _Tally(self.tally)
        fresh = len(state.orders) - len(self.known)
        if fresh:
            # Only `Engine.submit` creates orders silently, all for the venue's wallet, all SUBMITTING.
            counts[(self.engine.venue.wallet, S.SUBMITTING)] += fresh
        return counts


class Metrics:
    """The metrics of one process, in a registry of their own (instances and tests stay apart).

    Wiring (all optional, any number of each): `instrument(venue)` before building the engine,
    `attach(engine)` once the event loop runs, `watch_stream(...)` and `watch_hub(...)` for the
    client side; then `render()` or `start_metrics_server(metrics)`."""

    def __init__(self, *, marks: Marks | None = None) -> None:
        self.marks = marks
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.order_transitions = Counter(
            "polyoms_order_transitions",
            "Order state transitions (from_state NONE: an order adopted from the venue).",
            ["wallet", "from_state", "to_state"],
            registry=r,
        )
        self.fills = Counter(
            "polyoms_fills",
            "Fill changes: new (first seen), status (provisional MATCHED->MINED...), confirmed, voided; "
            "tier is the fill's tier after the change.",
            ["wallet", "change", "tier", "side"],
            registry=r,
        )
        self.fill_shares = Counter(
            "polyoms_fill_shares",
            "Shares in fill changes (new, confirmed, voided).",
            ["wallet", "change", "side"],
            registry=r,
        )
        self.anomalies = Counter("polyoms_anomalies", "Evidence the OMS could not use as is.", ["kind"], registry=r)
        self.submit_ack_seconds = Histogram(
            "polyoms_order_submit_ack_seconds",
            "Intent journaled -> venue answer applied (journal + POST + engine queue), by first state after it.",
            ["outcome"],
            buckets=_ROUND_TRIP_BUCKETS,
            registry=r,
        )
        self.ack_fill_seconds = Histogram(
            "polyoms_order_ack_first_fill_seconds",
            "Venue acknowledgement -> first fill of the order (0 when the fill came first).",
            buckets=_REST_BUCKETS,
            registry=r,
        )
        self.venue_call_seconds = Histogram(
            "polyoms_venue_call_seconds",
            "Wall-clock duration of venue calls (submit = the POST round trip alone).",
            ["op", "outcome"],
            buckets=_ROUND_TRIP_BUCKETS,
            registry=r,
        )
        self.submit_outcomes = Counter(
            "polyoms_venue_submit_orders",
            "Orders submitted to the venue by outcome: acked, refused, unknown.",
            ["outcome"],
            registry=r,
        )
        self._attached: list[_Attached] = []
        self._venues: list[InstrumentedVenue] = []
        self._streams: list[StreamBase[Any]] = []
        self._hubs: list[ClientHub] = []
        r.register(_ScrapeCollector(self))

    # --- wiring ---------------------------------------------------------------------------------------

    def instrument(self, venue: Venue, *, clock: Clock | None = None) -> InstrumentedVenue:
        """`venue` timed; give the result to the Engine. `clock` stamps heartbeats (default: wall)."""
        wrapped = venue if isinstance(venue, InstrumentedVenue) else InstrumentedVenue(venue, self, clock)
        if wrapped not in self._venues:
            self._venues.append(wrapped)
        return wrapped

    def attach(self, engine: Engine) -> None:
        """Follow `engine`: its notifications (consumed by a task on the running loop) and, at scrape
        time, its orders, ledgers and counters."""
        if any(a.engine is engine for a in self._attached):
            return
        att = _Attached(engine, engine.subscribe())
        att.recount()  # the orders it already has (e.g. recovered from the journal)
        att.task = asyncio.get_running_loop().create_task(self._consume(att), name="metrics-notifications")
        self._attached.append(att)
        if isinstance(engine.venue, InstrumentedVenue) and engine.venue not in self._venues:
            self._venues.append(engine.venue)

    async def detach(self, engine: Engine) -> None:
        for att in [a for a in self._attached if a.engine is engine]:
            self._drain(att)
            self._attached.remove(att)
            engine.unsubscribe(att.queue)
            if att.task is not None:
                att.task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await att.task

    async def close(self) -> None:
        for att in list(self._attached):
            await self.detach(att.engine)

    def watch_stream(self, *streams: StreamBase[Any]) -> None:
        """WebSocket clients (market or user) whose reconnects and gaps are exported."""
        self._streams.extend(s for s in streams if s not in self._streams)

    def watch_hub(self, hub: ClientHub) -> None:
        """A client hub whose rate-limit waits and REST counters are exported."""
        if hub not in self._hubs:
            self._hubs.append(hub)

    # --- notifications --------------------------------------------------------------------------------

    async def _consume(self, att: _Attached) -> None:
        while True:
            note = await att.queue.get()
            self._note(att, note)
            self._drain(att)

    def poll(self) -> int:
        """Apply the notifications queued so far now (a scrape is then up to date); returns how many."""
        return sum(self._drain(att) for att in self._attached)

    def _drain(self, att: _Attached) -> int:
        n = 0
        q = att.queue
        while not q.empty():
            self._note(att, q.get_nowait())
            n += 1
        return n

    def _note(self, att: _Attached, note: Notification) -> None:
        if isinstance(note, OrderUpdate):
            self._order_update(att, note)
        elif isinstance(note, FillUpdate):
            f = note.fill
            self.fills.labels(f.wallet, note.change, note.tier.value, f.side.name).inc()
            if note.change != "status":
                self.fill_shares.labels(f.wallet, note.change, f.side.name).inc(_units(f.size))
            if note.change == "new":
                acked = att.awaiting_fill.pop(f.order_id, None)
                if acked is not None:
                    self.ack_fill_seconds.observe(max(0, f.first_ms - acked) / 1000)
        elif isinstance(note, Anomaly):
            self.anomalies.labels(note.kind).inc()

    def _order_update(self, att: _Attached, note: OrderUpdate) -> None:
        state = att.engine.state
        o = state.orders.get(note.order_id)
        wallet = o.wallet if o is not None else att.engine.venue.wallet
        frm = note.from_state.value if note.from_state is not None else "NONE"
        self.order_transitions.labels(wallet, frm, note.to_state.value).inc()
        oid = note.order_id
        if oid not in att.known:
            # First news of it: placed by us (counted as fresh SUBMITTING until now) or adopted.
            att.known.add(oid)
        elif note.from_state is not None:
            att.tally[(wallet, note.from_state)] -= 1
        att.tally[(wallet, note.to_state)] += 1
        if o is None:
            return
        if note.from_state is S.SUBMITTING:
            # The audit trail, not the time of this callback: the engine may be several batches ahead.
            answered = next((h.ts_ms for h in o.history if h.from_state is S.SUBMITTING), None)
            if answered is None:
                return
            self.submit_ack_seconds.labels(note.to_state.value).observe(max(0, answered - o.created_ms) / 1000)
            if note.to_state in _ACKED:
                fills = state.fills_of(o.order_id)
                if fills:
                    first = min(f.first_ms for f in fills)
                    self.ack_fill_seconds.observe(max(0, first - answered) / 1000)
                else:
                    pending = att.awaiting_fill
                    if len(pending) >= _PENDING_CAP:
                        del pending[next(iter(pending))]
                    pending[o.order_id] = answered
        elif note.to_state in _NO_FILL_COMING:
            att.awaiting_fill.pop(o.order_id, None)

    # --- exposition -----------------------------------------------------------------------------------

    def render(self) -> bytes:
        """The Prometheus text exposition (call it on the engine's event loop)."""
        self.poll()
        return redact(generate_latest(self.registry).decode("utf-8")).encode("utf-8")

    async def handle(self, request: web.Request) -> web.Response:
        """aiohttp handler for GET /metrics (mount it in another app, or use `start_metrics_server`)."""
        return web.Response(body=self.render(), headers={"Content-Type": CONTENT_TYPE})

    # --- scrape-time families -------------------------------------------------------------------------

    def _families(self) -> Iterator[Metric]:
        yield from _engine_families(self._attached, self._venues, self.marks)
        yield from _stream_families(self._streams)
        yield from _hub_families(self._hubs)


class _ScrapeCollector(Collector):
    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    def collect(self) -> Iterable[Metric]:
        return list(self._metrics._families())

    def describe(self) -> Iterable[Metric]:
        # The same families with nothing attached: their names, for the registry's duplicate check.
        return [*_engine_families([], [], None), *_stream_families([]), *_hub_families([])]


def _engine_families(
    attached: list[_Attached], venues: list[InstrumentedVenue], marks: Marks | None
) -> Iterator[Metric]:
    orders = _gauge("polyoms_orders", "Orders by state (the OMS's view).", labels=["wallet", "state"])
    ev = _counter("polyoms_engine_events", "Events applied by the engine.", labels=["wallet"])
    batches = _counter("polyoms_engine_batches", "Event batches applied (one flush each).", ["wallet"])
    posts = _counter("polyoms_engine_posts", "Order submission answers applied.", labels=["wallet"])
    unknown_out = _counter(
        "polyoms_engine_unknown_outcomes", "Submissions without a usable answer (order UNKNOWN).", labels=["wallet"]
    )
    recs = _counter("polyoms_engine_reconciliations", "Reconciliations with the venue.", ["wallet"])
    repairs = _counter("polyoms_engine_repairs", "Repairs applied by reconciliations.", ["wallet"])
    errors = _counter("polyoms_engine_errors", "Errors recorded by the engine.", labels=["wallet"])
    admission = _gauge("polyoms_admission_open", "1 when new orders are admitted.", labels=["wallet"])
    flag = _gauge(
        "polyoms_risk_flag",
        "Fail-closed conditions (1 = set): kill_switch, heartbeat_failed, user_stream_gapped, halted, degraded_rest "
        "(the user stream is down, the engine polls REST and admits reduce-only orders).",
        labels=["wallet", "flag"],
    )
    hb_ok = _gauge("polyoms_heartbeat_healthy", "1 unless the last heartbeat failed.", labels=["wallet"])
    hb_fail = _counter("polyoms_heartbeat_failures", "Failed heartbeats.", labels=["wallet"])
    hb_last = _gauge(
        "polyoms_heartbeat_last_success_timestamp_seconds", "When the last heartbeat succeeded.", labels=["wallet"]
    )
    cash = _gauge("polyoms_ledger_cash_pusd", "Confirmed pUSD balance.", labels=["wallet"])
    reserved = _gauge("polyoms_ledger_reserved_pusd", "pUSD locked by open BUY orders.", ["wallet"])
    available = _gauge("polyoms_ledger_available_pusd", "cash - reserved - provisional outflows.", labels=["wallet"])
    prov_out = _gauge("polyoms_ledger_provisional_out_pusd", "pUSD owed by provisional BUY fills.", labels=["wallet"])
    prov_in = _gauge("polyoms_ledger_provisional_in_pusd", "pUSD due from provisional SELL fills.", labels=["wallet"])
    pos_labels = ["wallet", "market", "token"]
    confirmed = _gauge("polyoms_position_confirmed_shares", "Confirmed shares.", labels=pos_labels)
    pos_in = _gauge("polyoms_position_provisional_in_shares", "Shares bought in provisional fills.", labels=pos_labels)
    pos_out = _gauge("polyoms_position_provisional_out_shares", "Shares sold in provisional fills.", labels=pos_labels)
    pos_res = _gauge("polyoms_position_reserved_shares", "Shares locked by open SELL orders.", labels=pos_labels)
    sellable = _gauge("polyoms_position_sellable_shares", "Shares sellable now.", labels=pos_labels)
    cost = _gauge("polyoms_position_cost_pusd", "Cost basis of the confirmed position.", pos_labels)
    realized = _gauge("polyoms_pnl_realized_pusd", "Realized PnL (confirmed fills).", labels=pos_labels)
    unrealized = _gauge(
        "polyoms_pnl_unrealized_pusd", "Unrealized PnL of the confirmed position at the mark.", labels=pos_labels
    )
    unrealized_total = _gauge(
        "polyoms_pnl_unrealized_total_pusd",
        "Unrealized PnL of the wallet's marked confirmed positions.",
        labels=["wallet"],
    )
    seen: set[int] = set()
    for att in attached:
        engine = att.engine
        w = engine.venue.wallet
        st = engine.stats
        ev.add_metric([w], st.events)
        batches.add_metric([w], st.batches)
        posts.add_metric([w], st.posts)
        unknown_out.add_metric([w], st.unknown_outcomes)
        recs.add_metric([w], st.reconciliations)
        repairs.add_metric([w], st.repairs)
        errors.add_metric([w], len(st.errors))
        fl = engine.flags
        state = engine.state
        admission.add_metric([w], 0 if engine.admission_errors() else 1)
        for name, value in (
            ("kill_switch", fl.kill_switch),
            ("heartbeat_failed", fl.heartbeat_failed),
            ("user_stream_gapped", fl.user_stream_gapped),
            ("halted", bool(state.halted)),
            ("degraded_rest", bool(engine.degraded)),
        ):
            flag.add_metric([w, name], 1 if value else 0)
        hb_ok.add_metric([w], 0 if fl.heartbeat_failed else 1)
        hb_fail.add_metric([w], st.heartbeat_failures)
        if id(state) in seen:
            continue  # two engines on one state: its orders and ledgers once
        seen.add(id(state))
        _state_families(state, att.order_counts(), orders, (cash, reserved, available, prov_out, prov_in))
        for wallet, lg in state.ledgers.items():
            total_unrealized = 0
            for token, p in lg.positions.items():
                # A position from a balance snapshot may not know its market yet: the engine's map does.
                labels = [wallet, p.market or engine.markets.get(token, ""), token]
                confirmed.add_metric(labels, _units(p.confirmed))
                pos_in.add_metric(labels, _units(p.prov_in))
                pos_out.add_metric(labels, _units(p.prov_out))
                pos_res.add_metric(labels, _units(p.reserved))
                sellable.add_metric(labels, _units(p.sellable))
                cost.add_metric(labels, _units(p.cost))
                realized.add_metric(labels, _units(p.realized))
                mark = marks(token) if marks is not None else None
                if mark is not None:
                    pnl = p.unrealized(mark)
                    total_unrealized += pnl
                    unrealized.add_metric(labels, _units(pnl))
            if marks is not None:
                unrealized_total.add_metric([wallet], _units(total_unrealized))
    for v in venues:
        if v.heartbeat_last_success_ms is not None:
            hb_last.add_metric([v.wallet], v.heartbeat_last_success_ms / 1000)
    yield from (orders, ev, batches, posts, unknown_out, recs, repairs, errors, admission, flag)
    yield from (hb_ok, hb_fail, hb_last, cash, reserved, available, prov_out, prov_in)
    yield from (confirmed, pos_in, pos_out, pos_res, sellable, cost, realized, unrealized, unrealized_total)


def _state_families(
    state: OmsState,
    tally: _Tally[tuple[str, OrderState]],
    orders: GaugeMetricFamily,
    wallet_families: tuple[GaugeMetricFamily, ...],
) -> None:
    wallets = set(state.ledgers) | {w for w, _ in tally}
    for wallet in sorted(wallets):
        for s in OrderState:
            orders.add_metric([wallet, s.value], tally.get((wallet, s), 0))
    cash, reserved, available, prov_out, prov_in = wallet_families
    for wallet, lg in state.ledgers.items():
        cash.add_metric([wallet], _units(lg.cash))
        reserved.add_metric([wallet], _units(lg.reserved))
        available.add_metric([wallet], _units(lg.available))
        prov_out.add_metric([wallet], _units(lg.prov_out))
        prov_in.add_metric([wallet], _units(lg.prov_in))


def _stream_families(streams: list[StreamBase[Any]]) -> Iterator[Metric]:
    reconnects = _counter("polyoms_ws_reconnects", "WebSocket connections lost and re-established.", labels=["channel"])
    gaps = _counter(
        "polyoms_ws_gaps",
        "Continuity lost: user stream GAPPED, or a market book trusted -> untrusted.",
        labels=["channel"],
    )
    stale = _counter("polyoms_ws_stale_sockets", "Sockets dropped by the silence watchdog.", ["channel"])
    frames = _counter("polyoms_ws_frames_received", "Frames received.", labels=["channel"])
    untrusted = _counter("polyoms_ws_book_untrusted", "Market books turned untrusted, by reason.", labels=["reason"])
    by_channel: dict[str, list[int]] = {}
    reasons: _Tally[str] = _Tally()
    for s in streams:
        row = by_channel.setdefault(s.channel, [0, 0, 0, 0])
        row[0] += s.reconnects
        row[2] += s.stale_sockets
        row[3] += s.received_frames
        if isinstance(s, UserStream):
            row[1] += s.stats.gaps
        elif isinstance(s, MarketStream):
            row[1] += sum(s.stats.untrusted.values())
            reasons.update(s.stats.untrusted)
    for channel, (rc, gp, st, fr) in sorted(by_channel.items()):
        reconnects.add_metric([channel], rc)
        gaps.add_metric([channel], gp)
        stale.add_metric([channel], st)
        frames.add_metric([channel], fr)
    for reason, n in sorted(reasons.items()):
        untrusted.add_metric([reason], n)
    yield from (reconnects, gaps, stale, frames, untrusted)


def _hub_families(hubs: list[ClientHub]) -> Iterator[Metric]:
    waits = _counter(
        "polyoms_rate_limit_waits",
        "Requests that waited for a client-side rate limit (scope ip: per-IP windows; signer: buckets).",
        labels=["scope", "limit"],
    )
    waited = _counter(
        "polyoms_rate_limit_wait_seconds", "Time spent waiting for client-side rate limits.", labels=["scope", "limit"]
    )
    requests = _counter("polyoms_rest_requests", "REST requests sent.", labels=["client"])
    retries = _counter("polyoms_rest_retries", "REST retries (idempotent requests only).", ["client"])
    transport = _counter("polyoms_rest_transport_errors", "REST transport failures.", labels=["client"])
    statuses = _counter("polyoms_rest_responses", "REST responses by status.", labels=["client", "status"])
    breaker = _gauge("polyoms_rest_breaker_open", "1 while the circuit breaker is not closed.", ["client"])
    limits: dict[tuple[str, str], LimitStats] = {}
    for hub in hubs:
        for name, ls in hub.ip_limiter.stats().items():
            limits.setdefault(("ip", name), ls)
        cores = [hub.public.core, hub.gamma.core, hub.data.core, *(c.core for c in hub.wallet_clients)]
        for core in cores:
            for bucket in core.signer_buckets.values():
                limits.setdefault(("signer", bucket.name), bucket.stats)
            cs = core.stats
            requests.add_metric([core.name], cs.sent)
            retries.add_metric([core.name], cs.retries)
            transport.add_metric([core.name], cs.transport_errors)
            for status, n in sorted(cs.statuses.items()):
                statuses.add_metric([core.name, str(status)], n)
            breaker.add_metric([core.name], 0 if core.breaker.state is BreakerState.CLOSED else 1)
    for (scope, name), ls in sorted(limits.items()):
        if ls.acquired or ls.waits:  # limits never used stay out of the exposition
            waits.add_metric([scope, name], ls.waits)
            waited.add_metric([scope, name], ls.waited_ms / 1000)
    yield from (waits, waited, requests, retries, transport, statuses, breaker)


# --- the HTTP endpoint --------------------------------------------------------------------------------


@dataclass(slots=True)
class MetricsServer:
    """A running /metrics endpoint; `await stop()` (or `async with`) ends it."""

    host: str
    port: int
    runner: web.AppRunner

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/metrics"

    async def stop(self) -> None:
        await self.runner.cleanup()

    async def __aenter__(self) -> MetricsServer:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


async def start_metrics_server(metrics: Metrics, host: str = "127.0.0.1", port: int = 0) -> MetricsServer:
    """Serve GET /metrics on host:port (port 0: a free one; the bound port is `.port`)."""
    app = web.Application()
    app.router.add_get("/metrics", metrics.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    try:
        await site.start()
    except BaseException:
        await runner.cleanup()
        raise
    bound = port
    for addr in runner.addresses:
        if isinstance(addr, tuple) and len(addr) >= 2:
            bound = int(addr[1])
            break
    return MetricsServer(host, bound, runner)
