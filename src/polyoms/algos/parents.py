"""ParentManager: many parent orders at once, each a pure algorithm driven through the OMS.

The manager owns the parents; each parent owns an algorithm state (`base.AlgoState`). A round builds
every working parent's observation, steps its algorithm and executes what it asked for through the OMS;
nothing else touches the venue. Key rules, detailed on `ParentManager`:

* a child refused for a passing reason (admission closed during a resync, a book not trusted yet, the
  order-rate limit) is held and retried, so one WebSocket gap does not fail every parent;
* an algorithm that raises stops its own parent only;
* a parent is journaled before its first child; its progress is always its children's fills, so a
  restarted manager rebuilds it from the OMS's orders (`ParentManager.recover`).
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import inspect
import logging
import random
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from fractions import Fraction
from typing import Any, Final

import msgspec

from polyoms.algos import catalog
from polyoms.algos.base import (
    CANCEL_RETRY_MS,
    Action,
    AlgoConfigError,
    AlgoSpec,
    AlgoState,
    Cancel,
    ChildView,
    Command,
    Decision,
    FailedState,
    Instrument,
    LegStatus,
    Obs,
    ParentState,
    Place,
    Progress,
    Step,
    all_final,
    any_provisional,
    sums,
)
from polyoms.algos.books import BookLevels, BookSource, others_only, own_resting
from polyoms.algos.catalog import ALGOS, INTERRUPT, RESUME, Launch, restart_policy
from polyoms.algos.orders import request_of
from polyoms.core.clock import Clock
from polyoms.core.enums import Side
from polyoms.core.errors import ConfigError, InputError, PolyomsError
from polyoms.core.units import Micro, fmt_micro
from polyoms.core.user_events import TradeStatus
from polyoms.core.venue import PreparedOrder
from polyoms.oms.errors import OrderRateLimitError, TradingHaltedError
from polyoms.oms.fills import Fill, FillTier
from polyoms.oms.journal import Journal, ParentRecord
from polyoms.oms.manager import OrderManager
from polyoms.oms.state import OrderRecord, OrderState

log = logging.getLogger(__name__)

Spec = AlgoSpec
"""Any registered algorithm's spec (`catalog`)."""
InstrumentLookup = Callable[[str], "Instrument | Awaitable[Instrument | None] | None"]
_SOLD_STATUSES = frozenset({TradeStatus.MINED, TradeStatus.CONFIRMED})

FAMILY: Final = "algo"
"""The journal's family of parent orders (their children's actor is `algo:<parent id>`)."""


class UnknownParentError(InputError, KeyError):
    """No parent order has this id."""

    def __str__(self) -> str:
        return PolyomsError.__str__(self)


@dataclass(frozen=True, slots=True)
class ParentStatus:
    parent_id: str
    kind: str
    """The algorithm's registered name (`catalog`)."""
    state: ParentState
    reason: str
    token_id: str
    """The (first) token traded."""
    side: Side | None
    target: Micro
    filled: Micro
    remaining: Micro
    avg_price: Fraction | None
    """pUSD per share before fees, exact."""
    notional: Micro
    fees: Micro
    adjustments: int
    decisions: tuple[Decision, ...]
    child_order_ids: tuple[str, ...]
    error: str
    started_ms: int
    ended_ms: int | None
    arrival_mid: Fraction | None
    """The token's mid (others' orders) when the parent started; for a basket the sum over its legs."""
    legs: tuple[LegStatus, ...] = ()
    legging_cost: Fraction | None = None
    interrupted: bool = False
    """Ended by a restart (policy "interrupt", or it could not resume): `filled` is what its children filled."""
    restarts: int = 0
    """Restarts that found it working."""
    on_restart: str = INTERRUPT

    @property
    def done(self) -> bool:
        return self.state.is_terminal

    @property
    def progress(self) -> Fraction:
        return Fraction(self.filled, self.target) if self.target else Fraction(0)

    @property
    def avg_price_micro(self) -> Micro | None:
        return None if self.avg_price is None else round(self.avg_price)

    @property
    def slippage(self) -> Fraction | None:
        """Average price against the arrival mid, per share, signed so that positive is a cost."""
        if self.avg_price is None or self.arrival_mid is None or self.side is None:
            return None
        d = self.avg_price - self.arrival_mid
        return d if self.side is Side.BUY else -d


@dataclass(eq=False)
class _Parent:
    pid: str
    kind: str
    spec: Spec
    state: AlgoState
    started_ms: int
    arrival_mid: Fraction | None
    side: Side | None
    actor: str
    orders: dict[str, str] = field(default_factory=dict)
    """child key → order id."""
    failed: dict[str, tuple[str, str, Side, Micro, Micro]] = field(default_factory=dict)
    """child key → (error, token, side, price, size) of a child never journaled (refused before sending)."""
    held: dict[str, tuple[Place, int]] = field(default_factory=dict)
    """child key → (its Place, when first refused) of a child refused for a passing reason (`_passing`):
    retried every round, shown to the algorithm as SUBMITTING, refused for good after `HOLD_MS`."""
    unsent: dict[str, tuple[str, Side, Micro, Micro]] = field(default_factory=dict)
    """child key → (token, side, price, size) of a held child the algorithm cancelled: CANCELLED, never sent."""
    decisions: list[Decision] = field(default_factory=list)
    cancel_requested: bool = False
    error: str = ""
    ended_ms: int | None = None
    done: asyncio.Event = field(default_factory=asyncio.Event)
    no: int = 0
    """Its ordinal in the journal (ids are numbered by it)."""
    on_restart: str = INTERRUPT
    spec_data: Any = None
    """The spec as journaled (`encode_spec`)."""
    restarts: int = 0

    @property
    def interrupted(self) -> bool:
        return isinstance(self.state, RecoveredState) and self.state.interrupted


class ParentManager:
    """Many parent orders at once, each a pure algorithm driven through the OMS.

    The manager owns the parents; each parent owns an algorithm state (`base.AlgoState`). A round looks at
    every working parent: it builds the parent's observation (the time from the injected clock; its children
    as the OMS knows them; the top of book per token from the `book_source`, with our own resting orders taken
    out; the bankroll from the ledger), steps the algorithm, and executes what it asked for — signing child
    order requests that the venue adapter prepares (signs) and the engine journals first and sends once, or
    cancelling them by id. Nothing else touches the venue.

    Rounds run
    * on their own (`autorun=True`, the default): whenever the engine publishes a notification (an order or a
      fill moved) and when a parent's timer (`wake_ms`) is due, checked every `timer_interval_s` with the
      injected `sleep`;
    * or when told (`autorun=False`, backtests on a virtual clock): `settle()` runs rounds until nothing moves,
      `next_wake_ms()` says when time should next be advanced to.
    `start`, `cancel` run a round before returning, so the first children are journaled by the time
    `start` returns.

    A child refused for a passing reason — admission closed while the OMS resyncs (stream gap, UNKNOWN order,
    heartbeat), a book not trusted yet, the order-rate limit — is held and retried every round (its view is
    SUBMITTING) for up to `HOLD_MS`; only then, or at once for any other refusal (kill switch, risk limits,
    bad input), does the algorithm see it REJECTED. Without this, one WebSocket gap would fail every parent.

    Each child is submitted with `actor = "algo:<parent id>"`, so the OMS's audit trail and notifications
    name the parent. An algorithm that raises is stopped (FAILED, its children cancelled): a bug in one
    parent never stops the others.

    Journaled and recovered (when the OMS has a journal): a parent's `ParentRecord` (oms.journal) — its
    spec, its restart policy — is committed when it starts, before its first child and before `start`
    returns its id; it is written again when a cancel is requested and when it ends. Its progress is not
    journaled: it is always its children's fills, and the children are the OMS's orders with its actor, so
    a restarted manager finds them (`recover`). Ids are `<kind>-<n>`, kind the algorithm's name in
    `catalog` (which also says how each starts and resumes), n past every journaled parent's: an id never
    repeats, across restarts and crashes (a journal's older ids, e.g. "microprice-3", are kept as they are).
    """

    def __init__(
        self,
        manager: OrderManager,
        *,
        clock: Clock,
        book_source: BookSource,
        instruments: Mapping[str, Instrument] | InstrumentLookup | None = None,
        seed: int = 0,
        autorun: bool = True,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        timer_interval_s: float = 0.25,
        deterministic_salts: bool = False,
        max_rounds: int = 10_000,
        on_restart: str = INTERRUPT,
    ) -> None:
        """`instruments`: token → Instrument (a mapping or a lookup, sync or async); None asks the
        book source (`book_source.instrument(token)`). `seed` seeds the algorithms' randomness (each
        parent gets its own stream); `deterministic_salts` also derives order salts from it, so a
        backtest's order ids repeat (never in live trading: two runs would sign identical orders).
        `on_restart`: the default restart policy of the parents it starts (`recover`)."""
        self.manager = manager
        self.engine = manager.engine
        self.clock = clock
        self.book_source = book_source
        self.instruments = instruments
        self.seed = seed
        self.autorun = autorun
        self.sleep = sleep
        self.timer_interval_s = timer_interval_s
        self.max_rounds = max_rounds
        self.on_restart = restart_policy(on_restart)
        self._salts = random.Random(seed) if deterministic_salts else None
        self._parents: dict[str, _Parent] = {}
        self._insts: dict[str, Instrument] = {}
        j = self._journal()
        # Numbered past every parent the journal knows, recovered or not: an id is never given twice.
        self._counter = max((r.no for r in j.parents()), default=0) if j is not None else 0
        self._lock = asyncio.Lock()
        self._kick = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self.errors: deque[str] = deque(maxlen=1_000)
        """The latest errors of every parent (refusals, failed cancels, unreadable books), newest last."""

    # --- public API --------------------------------------------------------------------------------

    async def start(self, spec: Spec, *, parent_id: str | None = None, on_restart: str | None = None) -> str:
        """Validate `spec`, create its parent, journal it (committed) and run a round (its first
        children are journaled on return). Raises AlgoConfigError / the order's typed error for a spec
        that cannot be executed. `on_restart` overrides the manager's restart policy for this parent."""
        now = self.clock.now_ms()
        policy = self.on_restart if on_restart is None else restart_policy(on_restart)
        self._counter += 1
        no = self._counter
        kind = catalog.name_of(spec)
        algo = ALGOS.get(kind)
        insts = await self._instruments(spec)
        if algo.complements:
            for inst in insts:
                if inst.complement:
                    await self._instrument(inst.complement)
        state = algo.start(spec, Launch(insts, now, self._seed_of(no, 0)))
        pid = parent_id or f"{kind}-{no}"
        if pid in self._parents:
            raise AlgoConfigError(f"parent id {pid} is already in use", parent_id=pid)
        mids = [await self._mid(t) for t in spec.tokens]
        arrival = None if any(m is None for m in mids) else sum((m for m in mids if m is not None), Fraction(0))
        side = getattr(spec, "side", None)
        p = _Parent(pid, kind, spec, state, now, arrival, side, f"{FAMILY}:{pid}", no=no, on_restart=policy)
        p.spec_data = encode_spec(spec, arrival)
        j = self._journal()
        if j is not None:
            # Committed before the first child can be, and before anyone learns the id.
            record = self._record(p)
            await self.engine.call(lambda _s: j.commit_parent(record))
        self._parents[pid] = p
        self._ensure_running()
        await self.step()
        return pid

    async def recover(self) -> builtins.list[str]:
        """After a restart (the OMS recovered from the journal and reconciled with the venue): rebuild
        every journaled parent. Returns the ids of those that were working. Call once, before starting
        new parents.

        A parent that was working first cancels the children of the previous run that still rest and
        waits for them to be final (fills settled); then, per its `on_restart` policy (the manager's
        default, or per parent):
        * "interrupt" (the default): it ends CANCELLED, marked `interrupted`, with exactly what its children
          filled;
        * "resume": the algorithm starts again for what is left (its target minus what filled), within what
          is left of its timeout; the parent's numbers add both runs' children. Only the single-token
          algorithms sized in shares resume (iceberg, adaptive, micro-price); others are interrupted.
        A parent whose cancel was requested before the restart ends CANCELLED; one that had ended keeps its
        final state (its numbers again rebuilt from its children).
        """
        j = self._journal()
        if j is None:
            return []
        working: builtins.list[str] = []
        children: dict[str, builtins.list[str]] = {}
        for o in sorted(self.engine.state.orders.values(), key=lambda o: o.no):
            children.setdefault(o.actor, []).append(o.order_id)
        for rec in j.parents():
            if rec.family != FAMILY or rec.parent_id in self._parents:
                continue
            self._counter = max(self._counter, rec.no)
            p = await self._recovered(rec, children.get(rec.actor, []))
            self._parents[p.pid] = p
            if p.ended_ms is None:
                working.append(p.pid)
                log.warning(
                    "parent %s (%s): found working after a restart: %s (%d children of the previous run)",
                    p.pid,
                    p.kind,
                    _RECOVERY_PLANS.get(getattr(p.state, "mode", ""), "?"),
                    len(p.orders),
                )
                await self._journal_parent(p)
        if working:
            self._ensure_running()
            await self.step()
        return working

    def status(self, parent_id: str) -> ParentStatus:
        return self._status(self._parent(parent_id))

    def list(self) -> builtins.list[ParentStatus]:
        return [self._status(p) for p in self._parents.values()]

    async def cancel(self, parent_id: str) -> ParentStatus:
        """Ask the parent to stop: it cancels its children and ends once their cancels are confirmed
        (and, by default, their fills are final). Returns the status after one round."""
        p = self._parent(parent_id)
        if not p.state.phase.is_terminal:
            if not p.cancel_requested:
                p.cancel_requested = True
                await self._journal_parent(p)  # a restart must not resume what was cancelled
            await self.step()
            self._kick.set()
        return self._status(p)

    async def wait(self, parent_id: str, timeout_s: float | None = None) -> ParentStatus:
        """The parent's status once it has ended, or after `timeout_s` (check `.done`)."""
        p = self._parent(parent_id)
        if timeout_s is None:
            await p.done.wait()
        else:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(p.done.wait(), timeout_s)
        return self._status(p)

    def next_wake_ms(self) -> int | None:
        """The earliest time a working parent wants a round even if nothing happens."""
        times = [
            w for p in self._parents.values() if not p.state.phase.is_terminal and (w := p.state.wake_ms) is not None
        ]
        if any(p.held for p in self._parents.values() if not p.state.phase.is_terminal):
            times.append(self.clock.now_ms() + RETRY_MS)  # retry held children
        return min(times) if times else None

    @property
    def active(self) -> builtins.list[str]:
        return [pid for pid, p in self._parents.items() if not p.state.phase.is_terminal]

    async def step(self) -> bool:
        """One round over every working parent; True if any of them moved or acted."""
        async with self._lock:
            return await self._round()

    async def settle(self) -> None:
        """Backtests: let the OMS apply everything under way and run rounds until nothing moves."""
        for _ in range(self.max_rounds):
            await self.engine.drain()
            if not await self.step():
                return
        raise RuntimeError(f"parents still moving after {self.max_rounds} rounds")

    async def close(self) -> None:
        """Stop the background tasks (parents are left as they are; cancel them first to flatten)."""
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t
        self._tasks.clear()

    async def __aenter__(self) -> ParentManager:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # --- the round ---------------------------------------------------------------------------------

    async def _round(self) -> bool:
        moved = False
        for p in list(self._parents.values()):
            if p.state.phase.is_terminal:
                continue
            if p.held and p.cancel_requested:
                for key in list(p.held):  # a cancelled parent sends nothing more
                    _unsend(p, key)
            elif p.held:
                await self._place(p, [pl for pl, _ in p.held.values()])
                moved = moved or not p.held
            try:
                obs = await self._observe(p)
            except Exception as exc:  # a book that cannot be read now (I/O): look again next round
                self._note(p, f"observe: {type(exc).__name__}: {exc}")
                continue
            try:
                result = p.state.step(obs)
            except Exception as exc:  # a bug in one algorithm must not stop the others
                log.exception("parent %s: step failed", p.pid)
                await self._fail(p, f"algorithm error: {type(exc).__name__}: {exc}")
                moved = True
                continue
            if result.state != p.state or result.commands:
                moved = True
            p.state = result.state
            p.decisions.extend(result.decisions)
            if result.commands:
                await self._execute(p, result.commands)
            if p.state.phase.is_terminal and p.ended_ms is None:
                p.ended_ms = self.clock.now_ms()
                p.done.set()
                await self._journal_parent(p)
        return moved

    async def _observe(self, p: _Parent) -> Obs:
        levels: dict[str, BookLevels] = {}
        for token in p.state.tokens:
            lv = self.book_source.levels(token)
            if inspect.isawaitable(lv):
                lv = await lv
            if lv is not None and lv.trusted:
                levels[token] = lv
        st = self.engine.state
        own = own_resting(st.open_orders(self.engine.venue.wallet))
        books = {t: others_only(t, lv, own, self._complement(t)) for t, lv in levels.items()}
        children = {k: v for k in p.state.keys if (v := self._view(p, k)) is not None}
        return Obs(self.clock.now_ms(), children, books, self._bankroll(p), p.cancel_requested)

    def _view(self, p: _Parent, key: str) -> ChildView | None:
        oid = p.orders.get(key)
        if oid is None:
            held = p.held.get(key)
            if held is not None:
                pl = held[0]
                return ChildView(key, "", pl.token_id, pl.side, pl.price, pl.size, OrderState.SUBMITTING)
            unsent = p.unsent.get(key)
            if unsent is not None:
                return ChildView(key, "", *unsent, OrderState.CANCELLED)
            failed = p.failed.get(key)
            if failed is None:
                return None
            error, token, side, price, size = failed
            return ChildView(key, "", token, side, price, size, OrderState.REJECTED, error=error)
        st = self.engine.state
        o = st.orders.get(oid)
        if o is None:
            return None
        err = self.engine.errors.get(oid)
        return child_view(key, o, st.fills_of(oid), "" if err is None else f"{type(err).__name__}: {err}")

    def _bankroll(self, p: _Parent) -> Micro | None:
        lg = self.engine.state.ledgers.get(self.engine.venue.wallet)
        if lg is None:
            return None
        st = self.engine.state
        own_reserved = sum(o.reserved_cash for oid in p.orders.values() if (o := st.orders.get(oid)) is not None)
        return lg.available + own_reserved

    # --- executing commands --------------------------------------------------------------------------

    async def _execute(self, p: _Parent, commands: Sequence[Command]) -> None:
        i = 0
        while i < len(commands):
            c = commands[i]
            if isinstance(c, Place):
                batch = [c]
                while c.batch and i + 1 < len(commands):
                    nxt = commands[i + 1]
                    if not (isinstance(nxt, Place) and nxt.batch == c.batch):
                        break
                    batch.append(nxt)
                    i += 1
                await self._place(p, batch)
            elif isinstance(c, Cancel):
                oid = p.orders.get(c.key)
                _unsend(p, c.key)
                if oid is not None:
                    try:
                        await self.manager.cancel(oid, actor=p.actor)
                    except PolyomsError as exc:
                        self._note(p, f"cancel {c.key}: {type(exc).__name__}: {exc}")
            i += 1

    async def _place(self, p: _Parent, batch: Sequence[Place]) -> None:
        now = self.clock.now_ms()

        def refuse(exc: PolyomsError, items: Sequence[Place], prefix: str = "") -> None:
            error = f"{prefix}{type(exc).__name__}: {exc}"
            for pl in items:
                first = p.held[pl.key][1] if pl.key in p.held else now
                if _passing(exc) and now - first < HOLD_MS:
                    p.held[pl.key] = (pl, first)
                else:
                    p.held.pop(pl.key, None)
                    p.failed[pl.key] = (error, pl.token_id, pl.side, pl.price, pl.size)
            self._note(p, error)

        errors = self.engine.admission_errors()  # nothing is signed while admission is closed
        if errors:
            refuse(errors[0], batch)
            return
        signed: list[PreparedOrder] = []
        try:
            insts = [await self._instrument(pl.token_id) for pl in batch]
            for pl, inst in zip(batch, insts, strict=True):
                nonce = self._salts.getrandbits(53) if self._salts is not None else None
                signed.append(self.engine.venue.prepare(request_of(pl, now, nonce=nonce), inst))
        except PolyomsError as exc:
            refuse(exc, batch)
            return
        markets = {i.market for i in insts}
        market = next(iter(markets)) if len(markets) == 1 else ""
        fees = {i.fee_rate_bps for i in insts}
        fee = next(iter(fees)) if len(fees) == 1 else None
        notional = {pl.is_market_buy for pl in batch}
        groups = [list(range(len(batch)))] if len(notional) == 1 else [[n] for n in range(len(batch))]
        for group in groups:
            try:
                ids = await self.engine.submit(
                    [signed[n] for n in group], market=market, actor=p.actor, fee_rate_bps=fee
                )
            except PolyomsError as exc:
                refuse(exc, [batch[n] for n in group], "submit refused: ")
                continue
            for n, oid in zip(group, ids, strict=True):
                p.orders[batch[n].key] = oid
                p.held.pop(batch[n].key, None)

    async def _fail(self, p: _Parent, error: str) -> None:
        p.error = error
        self.errors.append(f"{p.pid}: {error}")
        for oid in p.orders.values():
            o = self.engine.state.orders.get(oid)
            if o is not None and o.state in (OrderState.LIVE, OrderState.PARTIALLY_FILLED):
                with contextlib.suppress(PolyomsError):
                    await self.manager.cancel(oid, actor=p.actor)
        p.state = FailedState(p.state, error)
        p.decisions.append(Decision(self.clock.now_ms(), Action.FAIL, error))
        p.ended_ms = self.clock.now_ms()
        p.done.set()
        await self._journal_parent(p)

    def _note(self, p: _Parent, error: str) -> None:
        p.error = error
        self.errors.append(f"{p.pid}: {error}")

    # --- journal and recovery ----------------------------------------------------------------------

    def _journal(self) -> Journal | None:
        return self.engine.state.journal

    def _seed_of(self, no: int, restarts: int) -> int:
        return (self.seed * 1_000_003 + no + restarts * 7_919) & ((1 << 63) - 1)

    def _record(self, p: _Parent) -> ParentRecord:
        return ParentRecord(
            parent_id=p.pid,
            no=p.no,
            family=FAMILY,
            kind=p.kind,
            spec=p.spec_data,
            on_restart=p.on_restart,
            started_ms=p.started_ms,
            state=p.state.phase.value,
            reason=p.state.reason,
            cancel_requested=p.cancel_requested,
            ended_ms=p.ended_ms,
            restarts=p.restarts,
            interrupted=p.interrupted,
        )

    async def _journal_parent(self, p: _Parent) -> None:
        """Write the parent's record with the engine's next batch (an event of the engine, so it is
        flushed now rather than whenever something else happens)."""
        j = self._journal()
        if j is None:
            return
        record = self._record(p)
        await self.engine.call(lambda _s: j.put_parent(record))

    async def _recovered(self, rec: ParentRecord, order_ids: Sequence[str]) -> _Parent:
        """A journaled parent, as a restart finds it: its children are `order_ids` (in order)."""
        try:
            spec, arrival = decode_spec(rec.spec)
            kind = ALGOS.canonical(rec.kind)  # an older name ("microprice") reads as today's
        except (msgspec.ValidationError, ConfigError, KeyError, TypeError) as exc:
            raise AlgoConfigError(f"journaled parent {rec.parent_id} cannot be read: {exc}") from exc
        tokens = spec.tokens
        keys = tuple(f"prior-{n}" for n in range(1, len(order_ids) + 1))
        side = getattr(spec, "side", None)
        target = spec.target
        if rec.ended:
            state: RecoveredState = RecoveredState(
                keys,
                target,
                tokens,
                "ended",
                status=ParentState(rec.state),
                why=rec.reason,
                was_interrupted=rec.interrupted,
            )
        else:
            mode, restart, why = rec.on_restart, None, ""
            if rec.cancel_requested:
                mode = "cancel"
            elif mode == RESUME:
                try:
                    restart = await self._restarter(spec, rec)
                except AlgoConfigError as exc:
                    mode, why = INTERRUPT, f"cannot resume: {exc}"
            timeout = spec.timeout_ms
            deadline = None if timeout is None else rec.started_ms + timeout
            state = RecoveredState(keys, target, tokens, mode, restart, deadline_ms=deadline, note=why)
        p = _Parent(
            rec.parent_id,
            kind,
            spec,
            state,
            rec.started_ms,
            arrival,
            side,
            rec.actor,
            orders=dict(zip(keys, order_ids, strict=True)),
            cancel_requested=rec.cancel_requested,
            no=rec.no,
            on_restart=rec.on_restart,
            spec_data=rec.spec,
            restarts=rec.restarts if rec.ended else rec.restarts + 1,
        )
        if rec.ended:
            p.ended_ms = rec.ended_ms
            p.done.set()
        return p

    async def _restarter(self, spec: Spec, rec: ParentRecord) -> Restart:
        """How the parent's algorithm starts again for what is left (AlgoConfigError: it cannot)."""
        kind = catalog.name_of(spec)
        algo = ALGOS.get(kind)
        resume = algo.resume
        if resume is None or getattr(spec, "kelly", None):
            raise AlgoConfigError(f"a {kind} parent is not resumed (only parents sized in shares on one token)")
        insts = await self._instruments(spec)
        seed = self._seed_of(rec.no, rec.restarts + 1)

        def restart(left: Micro, now_ms: int, deadline_ms: int | None) -> AlgoState:
            timeout = None if deadline_ms is None else deadline_ms - now_ms
            return algo.start(resume(spec, left, timeout), Launch(insts, now_ms, seed))

        return restart

    # --- lookups -------------------------------------------------------------------------------------

    def _parent(self, parent_id: str) -> _Parent:
        p = self._parents.get(parent_id)
        if p is None:
            raise UnknownParentError(f"unknown parent order {parent_id}", parent_id=parent_id)
        return p

    async def _instruments(self, spec: Spec) -> tuple[Instrument, ...]:
        return tuple([await self._instrument(t) for t in spec.tokens])

    async def _instrument(self, token_id: str) -> Instrument:
        inst = self._insts.get(token_id)
        if inst is not None:
            return inst
        src: Any = self.instruments
        found: Any = None
        try:
            if isinstance(src, Mapping):
                found = src.get(token_id)
            elif callable(src):
                found = src(token_id)
            elif hasattr(self.book_source, "instrument"):
                found = self.book_source.instrument(token_id)
            if inspect.isawaitable(found):
                found = await found
        except PolyomsError as exc:
            raise AlgoConfigError(f"token {token_id}: {exc}", token_id=token_id) from exc
        if not isinstance(found, Instrument):
            raise AlgoConfigError(f"no instrument (tick, market) known for token {token_id}", token_id=token_id)
        self._insts[token_id] = found
        return found

    def _complement(self, token_id: str) -> str:
        inst = self._insts.get(token_id)
        if inst is not None:
            return inst.complement
        for other in self._insts.values():
            if other.complement == token_id:
                return other.token_id
        return ""

    async def _mid(self, token_id: str) -> Fraction | None:
        lv = self.book_source.levels(token_id)
        if inspect.isawaitable(lv):
            lv = await lv
        if lv is None or not lv.trusted:
            return None
        own = own_resting(self.engine.state.open_orders(self.engine.venue.wallet))
        return others_only(token_id, lv, own, self._complement(token_id)).mid

    def _status(self, p: _Parent) -> ParentStatus:
        children = {k: v for k in p.state.keys if (v := self._view(p, k)) is not None}
        obs = Obs(self.clock.now_ms(), children)
        prog = p.state.progress(obs)
        token = p.spec.tokens[0]
        return ParentStatus(
            parent_id=p.pid,
            kind=p.kind,
            state=p.state.phase,
            reason=p.state.reason,
            token_id=token,
            side=p.side,
            target=prog.target,
            filled=prog.filled,
            remaining=prog.remaining,
            avg_price=prog.avg_price,
            notional=prog.cash,
            fees=prog.fees,
            adjustments=prog.adjustments,
            decisions=tuple(p.decisions),
            child_order_ids=tuple(p.orders[k] for k in p.state.keys if k in p.orders),
            error=p.error,
            started_ms=p.started_ms,
            ended_ms=p.ended_ms,
            arrival_mid=p.arrival_mid,
            legs=p.state.legs(obs),
            legging_cost=p.state.legging_cost(obs),
            interrupted=p.interrupted,
            restarts=p.restarts,
            on_restart=p.on_restart,
        )

    # --- background driving (autorun) --------------------------------------------------------------

    def _ensure_running(self) -> None:
        if not self.autorun or self._tasks:
            return
        loop = asyncio.get_running_loop()
        self._tasks = [
            loop.create_task(self._drive(), name="algos-driver"),
            loop.create_task(self._pump(), name="algos-notifications"),
            loop.create_task(self._timers(), name="algos-timers"),
        ]

    async def _drive(self) -> None:
        while True:
            await self._kick.wait()
            self._kick.clear()
            try:
                if await self.step():
                    self._kick.set()  # something moved: look again until everything is still
            except Exception as exc:  # keep driving the other parents
                log.exception("algos: round failed")
                self.errors.append(f"round: {type(exc).__name__}: {exc}")
            await asyncio.sleep(0)

    async def _pump(self) -> None:
        q = self.engine.subscribe()
        try:
            while True:
                await q.get()
                while not q.empty():
                    q.get_nowait()
                self._kick.set()
        finally:
            self.engine.unsubscribe(q)

    async def _timers(self) -> None:
        while True:
            await self.sleep(self.timer_interval_s)
            wake = self.next_wake_ms()
            if wake is not None and self.clock.now_ms() >= wake:
                self._kick.set()


HOLD_MS: Final = 30_000
"""How long a child refused for a passing reason is retried before it counts as refused."""
RETRY_MS: Final = 250


def _unsend(p: _Parent, key: str) -> None:
    """A held child is cancelled before it could be sent: it ends CANCELLED, never sent."""
    held = p.held.pop(key, None)
    if held is not None:
        pl = held[0]
        p.unsent[key] = (pl.token_id, pl.side, pl.price, pl.size)


def _passing(exc: PolyomsError) -> bool:
    """A refusal that says "not now" rather than "never": admission closed while the OMS resyncs (a
    stream gap, an UNKNOWN order, a heartbeat failure, a book not trusted yet) or the order-rate limit.
    The kill switch and a halted journal are not passing: nothing is retried behind an operator's stop."""
    if isinstance(exc, OrderRateLimitError):
        return True
    return isinstance(exc, TradingHaltedError) and exc.context.get("rule") not in ("kill_switch", "journal")


# --- specs as the journal keeps them -------------------------------------------------------------------


def _enc_hook(obj: Any) -> Any:
    if isinstance(obj, Fraction):
        return f"{obj.numerator}/{obj.denominator}"
    raise NotImplementedError(f"{type(obj).__name__} cannot be journaled")


def _dec_hook(type_: type[Any], obj: Any) -> Any:
    if type_ is Fraction and isinstance(obj, str):
        return Fraction(obj)
    raise NotImplementedError(f"{type_} cannot be read back")


def encode_spec(spec: Spec, arrival_mid: Fraction | None = None) -> dict[str, Any]:
    """A spec as plain data for the journal: its type and every field (exact: integers, and
    fractions as "n/d" strings), with the parent's arrival mid."""
    return {
        "type": type(spec).__name__,
        "fields": msgspec.to_builtins(spec, enc_hook=_enc_hook),
        "arrival_mid": None if arrival_mid is None else _enc_hook(arrival_mid),
    }


def decode_spec(data: Mapping[str, Any]) -> tuple[Spec, Fraction | None]:
    """`encode_spec` read back (the spec's own checks run again)."""
    spec: Spec = msgspec.convert(data["fields"], type=catalog.spec_type(data["type"]), dec_hook=_dec_hook)
    mid = data.get("arrival_mid")
    return spec, None if mid is None else Fraction(mid)


# --- a parent found by a restart -------------------------------------------------------------------------

_RESTING: Final = frozenset({OrderState.LIVE, OrderState.PARTIALLY_FILLED})
_RECOVERY_PLANS: Final = {
    RESUME: "stopping what rests, then resuming what is left",
    INTERRUPT: "interrupting it (what rests is cancelled)",
    "cancel": "finishing its cancel (asked for before the restart)",
}


def _restart_cancels(obs: Obs, keys: Sequence[str], sent: dict[str, int]) -> tuple[tuple[Cancel, ...], dict[str, int]]:
    """Cancel every child of a previous run still resting, and again if unanswered after CANCEL_RETRY_MS.
    Unlike `base.cancels_for`, a child already cancel-pending is cancelled too: that cancel was asked
    for before the restart and its answer may never have come."""
    out: list[Cancel] = []
    for k in keys:
        v = obs.children.get(k)
        if v is None or v.state not in _RESTING:
            continue
        last = sent.get(k)
        if last is None or obs.now_ms - last >= CANCEL_RETRY_MS:
            out.append(Cancel(k))
            sent[k] = obs.now_ms
    return tuple(out), sent


Restart = Callable[[Micro, int, "int | None"], AlgoState]
"""(shares left, now, deadline) -> the algorithm started again for them."""


@dataclass(frozen=True, slots=True)
class RecoveredState(AlgoState):
    """A journaled parent after a restart (`ParentManager.recover`).

    `prior` are the children of the previous runs. Until they are final, it cancels those still
    resting (STOPPING) and waits for their fills to settle (SETTLING). Then, by `mode`: "interrupt"
    ends CANCELLED (interrupted) with what they filled, "cancel" ends CANCELLED (a cancel requested
    before the restart), "resume" starts the algorithm again (`restart`) for what is left and from then
    on is that algorithm, its numbers added to the prior children's. "ended": the parent had ended;
    it keeps its final state."""

    prior: tuple[str, ...]
    target: Micro
    token_ids: tuple[str, ...]
    mode: str
    restart: Restart | None = None
    status: ParentState = ParentState.STOPPING
    why: str = "restarted: stopping the children of the previous run"
    inner: AlgoState | None = None
    sent: tuple[tuple[str, int], ...] = ()
    deadline_ms: int | None = None
    note: str = ""
    """Why a parent meant to resume is interrupted instead."""
    was_interrupted: bool = False

    @property
    def interrupted(self) -> bool:
        if self.mode == "ended":
            return self.was_interrupted
        return self.mode == INTERRUPT and self.status.is_terminal

    def step(self, obs: Obs) -> Step[AlgoState]:
        if self.inner is not None:
            r = self.inner.step(obs)
            return Step(replace(self, inner=r.state), r.commands, r.decisions)
        if self.status.is_terminal:
            return Step(self)
        mode = "cancel" if obs.cancel_requested and self.mode == RESUME else self.mode
        cancels, sent = _restart_cancels(obs, self.prior, dict(self.sent))
        if cancels or not all_final(obs, self.prior):
            return Step(replace(self, sent=tuple(sent.items()), status=ParentState.STOPPING), cancels)
        if any_provisional(obs, self.prior):
            why = "restarted: waiting for the previous run's fills to settle"
            return Step(replace(self, sent=tuple(sent.items()), status=ParentState.SETTLING, why=why))
        filled = sums(obs, self.prior)[0]
        done = f"{fmt_micro(filled)} of {fmt_micro(self.target)} filled"
        if mode == "cancel":
            return self._end(obs, ParentState.CANCELLED, f"cancelled (asked for before the restart); {done}")
        if mode == INTERRUPT:
            why = f"interrupted by a restart{': ' + self.note if self.note else ''}; {done}"
            return self._end(obs, ParentState.CANCELLED, why)
        left = self.target - filled
        if left <= 0:
            return self._end(obs, ParentState.DONE, f"filled before the restart; {done}")
        if self.deadline_ms is not None and obs.now_ms >= self.deadline_ms:
            return self._end(obs, ParentState.EXPIRED, f"its timeout passed before it could resume; {done}")
        assert self.restart is not None
        try:
            inner = self.restart(left, obs.now_ms, self.deadline_ms)
        except AlgoConfigError as exc:
            st = replace(self, mode=INTERRUPT, note=f"cannot resume the {fmt_micro(left)} left: {exc}")
            return st.step(obs)
        r = inner.step(obs)
        resumed = Decision(obs.now_ms, Action.RESUME, f"resumed after a restart: {done}, {fmt_micro(left)} left")
        return Step(replace(self, inner=r.state, status=ParentState.WORKING), r.commands, (resumed, *r.decisions))

    def _end(self, obs: Obs, status: ParentState, why: str) -> Step[AlgoState]:
        action = Action.DONE if status is ParentState.DONE else Action.STOP
        return Step(replace(self, status=status, why=why), (), (Decision(obs.now_ms, action, why),))

    @property
    def phase(self) -> ParentState:
        return self.inner.phase if self.inner is not None else self.status

    @property
    def reason(self) -> str:
        return self.inner.reason if self.inner is not None else self.why

    @property
    def wake_ms(self) -> int | None:
        if self.inner is not None:
            return self.inner.wake_ms
        if self.status is not ParentState.STOPPING or not self.sent:
            return None  # settling: fills arrive as events
        return min(t for _, t in self.sent) + CANCEL_RETRY_MS  # unanswered cancels are sent again

    @property
    def tokens(self) -> tuple[str, ...]:
        return self.token_ids

    @property
    def keys(self) -> tuple[str, ...]:
        return self.prior if self.inner is None else (*self.prior, *self.inner.keys)

    def progress(self, obs: Obs) -> Progress:
        filled, cash, fees = sums(obs, self.prior)
        if self.inner is None:
            return Progress(self.target, filled, cash, fees)
        more = self.inner.progress(obs)
        return Progress(self.target, filled + more.filled, cash + more.cash, fees + more.fees, more.adjustments)


def child_view(key: str, o: OrderRecord, fills: Iterable[Fill], error: str = "") -> ChildView:
    """A child order as its algorithm sees it. It is not final while the venue has said more shares
    matched than have arrived as fills (an order can turn FILLED on the venue's order update before its
    trades come): an algorithm that took it as done would size its next child from a short count."""
    confirmed = mined = 0
    for f in fills:
        if f.tier is FillTier.CONFIRMED:
            confirmed += f.size
        if f.status in _SOLD_STATUSES:
            mined += f.size
    trades_due = not o.venue_sizes_in_pusd and o.venue_matched > o.filled + o.voided
    return ChildView(
        key,
        o.order_id,
        o.token_id,
        o.side,
        o.price,
        o.size,
        o.state,
        o.filled,
        o.filled_cash,
        o.fees,
        confirmed,
        mined,
        o.pending_cancel,
        o.awaiting_fills or trades_due,
        error,
    )
