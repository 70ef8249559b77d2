"""The strategy manager: snapshot, decide, and turn the quotes wanted into cancels and placements.

Each `step()` builds a `Snapshot` (the clock's time; each watched token's book from a `BookSource`,
trusted books only, with every resting order of ours taken out, as algorithms see it; the instruments;
reference prices; the wallet from the OMS view, valued at the books' mids, else at the reference
prices), calls the strategy, and diffs its quotes against the open orders this manager placed
(`actor`): an order matching a quote within the tolerance is kept, one matching none is cancelled, a
quote matched by none is placed. Orders go out through an `OrderPort`, so the manager depends on
neither the engine nor a venue; the port must tag what it places with the manager's `actor`, which is
how the next step finds them in the OMS.

An order still being submitted (or UNKNOWN) counts as matching a quote, so it is never placed twice;
if it matches none it is left alone until it is acknowledged (a cancel racing its own submission could
be refused and leave the order resting). An order whose cancel is under way is already going: it is
neither kept nor cancelled again.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

from polyoms.algos.base import BookTop
from polyoms.algos.books import BookLevels, BookSource, others_only, own_resting
from polyoms.core.clock import Clock
from polyoms.core.units import Micro
from polyoms.core.venue import Instrument, OrderRequest
from polyoms.oms.ledger import mid_mark
from polyoms.oms.state import OrderState
from polyoms.oms.view import OmsView, OrderSummary
from polyoms.strategies.base import Quote, Snapshot, Strategy, StrategyDecision, snapshot

P = TypeVar("P")
M = TypeVar("M")


class OrderPort(Protocol):
    """Where the manager's orders go. `place` answers one order id per request, in order."""

    async def place(self, requests: Sequence[OrderRequest]) -> list[str]: ...

    async def cancel(self, order_ids: Sequence[str]) -> None: ...


@dataclass(frozen=True, slots=True)
class Tolerance:
    """How far a resting order may be from a quote and still stand for it: `price` in micro pUSD,
    `size` in shares against what the order has left."""

    price: Micro = 0
    size: Micro = 0


@dataclass(frozen=True, slots=True)
class Plan:
    """`keep`: (quote, the order standing for it); `held`: orders wanted by no quote but not cancellable
    yet (being submitted or UNKNOWN)."""

    keep: tuple[tuple[Quote, str], ...] = ()
    cancel: tuple[str, ...] = ()
    place: tuple[Quote, ...] = ()
    held: tuple[str, ...] = ()


_PENDING = frozenset({OrderState.SUBMITTING, OrderState.UNKNOWN})


def plan(quotes: Sequence[Quote], orders: Iterable[OrderSummary], tolerance: Tolerance = Tolerance()) -> Plan:
    """Diff the quotes wanted against our open orders (module doc). Each quote takes the closest order
    left that matches it (price first, then size, then the oldest); the result depends on nothing else."""
    candidates = [o for o in orders if not o.pending_cancel]
    candidates.sort(key=lambda o: (o.created_ms, o.order_id))
    keep: list[tuple[Quote, str]] = []
    place: list[Quote] = []
    for q in quotes:
        best: OrderSummary | None = None
        best_key: tuple[int, int] | None = None
        for o in candidates:
            if o.token_id != q.token_id or o.side is not q.side or o.post_only != q.post_only:
                continue
            dp, ds = abs(o.price - q.price), abs(o.remaining - q.size)
            if dp <= tolerance.price and ds <= tolerance.size and (best_key is None or (dp, ds) < best_key):
                best, best_key = o, (dp, ds)
        if best is None:
            place.append(q)
        else:
            candidates.remove(best)
            keep.append((q, best.order_id))
    cancel = tuple(o.order_id for o in candidates if o.cancellable)
    held = tuple(o.order_id for o in candidates if o.state in _PENDING)
    return Plan(tuple(keep), cancel, tuple(place), held)


def request_of(quote: Quote) -> OrderRequest:
    """A quote as a resting (GTC) limit order."""
    return OrderRequest(
        token_id=quote.token_id, side=quote.side, price=quote.price, size=quote.size, post_only=quote.post_only
    )


@dataclass(frozen=True, slots=True)
class StepResult(Generic[M]):
    snapshot: Snapshot
    decision: StrategyDecision[M]
    plan: Plan
    placed: tuple[str, ...]
    """The ids the port gave the placed quotes, in the plan's order."""


class StrategyManager(Generic[P, M]):
    """Runs one strategy with its params (module doc). `memory` is the strategy's, carried between steps."""

    def __init__(
        self,
        strategy: Strategy[P, M],
        params: P,
        *,
        actor: str,
        view: OmsView,
        books: BookSource,
        instruments: Mapping[str, Instrument],
        port: OrderPort,
        clock: Clock,
        tolerance: Tolerance = Tolerance(),
        reference: Callable[[], Mapping[str, Micro]] | None = None,
    ) -> None:
        self.strategy = strategy
        self.params = params
        self.actor = actor
        self.view = view
        self.books = books
        self.instruments = instruments
        self.port = port
        self.clock = clock
        self.tolerance = tolerance
        self.reference = reference
        self.tokens = strategy.tokens(params)
        self.memory: M = strategy.start(params)

    async def snapshot(self) -> Snapshot:
        levels: dict[str, BookLevels] = {}
        for token in self.tokens:
            lv = self.books.levels(token)
            if inspect.isawaitable(lv):
                lv = await lv
            if lv is not None and lv.trusted:
                levels[token] = lv
        # From here on nothing awaits: the books, our orders and the wallet are of one instant.
        reference = dict(self.reference()) if self.reference is not None else {}
        own = own_resting(self.view.open_orders())
        books: dict[str, BookTop] = {}
        for token, lv in levels.items():
            instrument = self.instruments.get(token)
            books[token] = others_only(token, lv, own, instrument.complement if instrument is not None else "")
        marks = dict(reference)
        for token, top in books.items():
            mid = mid_mark(top.bid, top.ask)
            if mid is not None:
                marks[token] = mid
        wallet = self.view.snapshot(marks)
        return snapshot(self.clock.now_ms(), books, self.instruments, wallet, reference)

    async def step(self) -> StepResult[M]:
        """One round: decide, then cancel what is not wanted and place what is missing (cancels first,
        so what they release is available to the placements)."""
        snap = await self.snapshot()
        decision = self.strategy.decide(snap, self.params, self.memory)
        self.memory = decision.memory
        mine = [o for o in snap.oms.open_orders if o.actor == self.actor]
        todo = plan(decision.quotes, mine, self.tolerance)
        if todo.cancel:
            await self.port.cancel(todo.cancel)
        placed: tuple[str, ...] = ()
        if todo.place:
            placed = tuple(await self.port.place([request_of(q) for q in todo.place]))
        return StepResult(snap, decision, todo, placed)
