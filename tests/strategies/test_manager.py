"""The strategy manager: the diff of quotes against our orders (keep, cancel, place, held), and whole
rounds against a real OmsState through a fake OrderPort."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from polyoms.algos.books import BookLevels
from polyoms.core.clock import VirtualClock
from polyoms.core.enums import OrderType, Side
from polyoms.core.units import MICRO, Micro
from polyoms.core.user_events import OrderEventType
from polyoms.core.user_events import TradeStatus as T
from polyoms.core.venue import OrderRequest
from polyoms.oms.oms_state import OmsState
from polyoms.oms.state import OrderState
from polyoms.oms.view import OmsView, OrderSummary
from polyoms.strategies.base import Quote
from polyoms.strategies.join_best_bid import JoinBestBid, JoinBestBidParams
from polyoms.strategies.manager import Plan, StrategyManager, Tolerance, plan, request_of
from tests.oms.oms_helpers import START_MS, YES, intent, new_state, oid, order_event

from .helpers import instrument, maker_fill

S = OrderState


def _order(
    n: int,
    price: Micro,
    size: Micro = 10 * MICRO,
    *,
    state: OrderState = S.LIVE,
    matched: Micro = 0,
    side: Side = Side.BUY,
    pending_cancel: bool = False,
    post_only: bool = True,
) -> OrderSummary:
    return OrderSummary(
        f"o{n}", YES, "0xmarket", side, OrderType.GTC, price, size, matched, state, post_only, False,
        pending_cancel, "mm", "", START_MS + n, 0, 0,
    )  # fmt: skip


def _quote(price: Micro, size: Micro = 10 * MICRO, side: Side = Side.BUY) -> Quote:
    return Quote(YES, side, price, size)


def test_plan_keeps_matches_cancels_the_rest_places_what_is_missing() -> None:
    orders = [_order(1, 450_000), _order(2, 440_000), _order(3, 300_000, side=Side.SELL)]
    got = plan([_quote(450_000), _quote(460_000)], orders)
    assert got == Plan(keep=((_quote(450_000), "o1"),), cancel=("o2", "o3"), place=(_quote(460_000),))
    assert plan([], []) == Plan()


def test_plan_tolerance_takes_the_closest_order_once() -> None:
    orders = [_order(1, 440_000), _order(2, 450_000, matched=3 * MICRO), _order(3, 451_000)]
    tol = Tolerance(price=10_000, size=4 * MICRO)
    got = plan([_quote(450_000), _quote(450_000)], orders, tol)
    # The first quote takes o2 (same price, 7 left: within 4 of 10), the second the closest left, o3.
    assert got.keep == ((_quote(450_000), "o2"), (_quote(450_000), "o3")) and got.cancel == ("o1",)
    assert plan([_quote(450_000)], orders).keep == ()  # no tolerance: o2 has 7 left, not 10
    assert plan([_quote(450_000, 7 * MICRO)], orders).keep == ((_quote(450_000, 7 * MICRO), "o2"),)
    # Not post-only is another quote.
    assert plan([_quote(440_000)], [_order(1, 440_000, post_only=False)]).cancel == ("o1",)


def test_plan_holds_unacknowledged_orders_and_ignores_cancelling_ones() -> None:
    orders = [
        _order(1, 450_000, state=S.SUBMITTING),
        _order(2, 440_000, state=S.UNKNOWN),
        _order(3, 430_000, pending_cancel=True),
    ]
    got = plan([_quote(450_000), _quote(430_000)], orders)
    # o1 stands for its quote (never placed twice); o2 is not wanted but cannot be cancelled yet; o3 is going.
    assert got == Plan(keep=((_quote(450_000), "o1"),), place=(_quote(430_000),), held=("o2",))


def test_plan_is_deterministic_whatever_the_order_of_the_orders() -> None:
    orders = [_order(n, 440_000 + n * 1_000) for n in range(6)]
    quotes = [_quote(443_000), _quote(441_000)]
    tol = Tolerance(price=5_000)
    assert plan(quotes, orders, tol) == plan(quotes, list(reversed(orders)), tol)


def test_request_of_a_quote_is_a_resting_limit_order() -> None:
    assert request_of(_quote(450_000)) == OrderRequest(
        token_id=YES, side=Side.BUY, price=450_000, size=10 * MICRO, order_type=OrderType.GTC, post_only=True
    )


# --- whole rounds ------------------------------------------------------------------------------------


class FakeVenue:
    """The port, and the market: places go into the OMS (journaled intent, then LIVE), cancels are
    answered at once; the book shows the others' bids plus our resting ones."""

    def __init__(self, state: OmsState, actor: str) -> None:
        self.state = state
        self.actor = actor
        self.others: list[tuple[Micro, Micro]] = [(450_000, 20 * MICRO), (440_000, 30 * MICRO)]
        self.placed: list[list[OrderRequest]] = []
        self.cancelled: list[list[str]] = []

    async def place(self, requests: Sequence[OrderRequest]) -> list[str]:
        self.placed.append(list(requests))
        ids = []
        for r in requests:
            o = self.state.submit(
                intent(oid(), side=r.side, price=r.price, size=r.size, actor=self.actor, post_only=r.post_only)
            )
            self.state.on_order_event(order_event(o.order_id, OrderEventType.PLACEMENT, price=r.price, size=r.size))
            ids.append(o.order_id)
        return ids

    async def cancel(self, order_ids: Sequence[str]) -> None:
        self.cancelled.append(list(order_ids))
        self.state.request_cancel(order_ids, self.actor)
        self.state.on_cancel_answer(order_ids)

    def levels(self, token_id: str) -> BookLevels:
        sizes = dict(self.others)
        for o in self.state.open_orders():
            if o.token_id == token_id and o.state in (S.LIVE, S.PARTIALLY_FILLED):
                sizes[o.price] = sizes.get(o.price, 0) + o.size - o.matched
        return BookLevels(tuple(sorted(sizes.items(), reverse=True)), ((470_000, 10 * MICRO),))


def _manager(state: OmsState, venue: FakeVenue, **kw: object) -> StrategyManager[JoinBestBidParams, None]:
    return StrategyManager(
        JoinBestBid(),
        JoinBestBidParams(YES, 10 * MICRO, 15 * MICRO),
        actor=venue.actor,
        view=OmsView(state),
        books=venue,
        instruments={YES: instrument()},
        port=venue,
        clock=state.clock,
        **kw,  # type: ignore[arg-type]
    )


def test_rounds_place_keep_follow_the_others_bid_and_stop_at_the_cap() -> None:
    clock = VirtualClock(START_MS)
    state = new_state(cash=100 * MICRO, clock=clock)
    venue = FakeVenue(state, "strategy:join-best-bid-1")
    mgr = _manager(state, venue)

    first = asyncio.run(mgr.step())
    assert first.plan.place == (Quote(YES, Side.BUY, 450_000, 10 * MICRO),) and len(first.placed) == 1
    (ours,) = first.placed
    assert state.order(ours).state is S.LIVE and state.order(ours).actor == venue.actor

    # Same market: the order stands; the snapshot's book is the others' (our 10 taken out of 30 at 0.45).
    clock.advance(1_000)
    second = asyncio.run(mgr.step())
    assert second.plan.keep == ((Quote(YES, Side.BUY, 450_000, 10 * MICRO), ours),) and not second.plan.cancel
    assert second.snapshot.books[YES].bids[0] == (450_000, 20 * MICRO) and second.snapshot.now_ms == START_MS + 1_000
    assert second.snapshot.oms.position(YES).total == 0 and len(venue.placed) == 1

    # The others leave 0.45: our order alone there is not a bid to join; it follows them down to 0.44.
    venue.others = [(440_000, 30 * MICRO)]
    third = asyncio.run(mgr.step())
    assert third.plan.cancel == (ours,) and third.plan.place == (Quote(YES, Side.BUY, 440_000, 10 * MICRO),)
    assert venue.cancelled == [[ours]] and state.order(ours).state is S.CANCELLED
    (ours,) = third.placed

    # 8 shares fill (provisional counts): 7 left under the cap of 15, so the 2 left resting are replaced.
    maker_fill(state, "t1", ours, T.MATCHED, 8 * MICRO, 440_000)
    fourth = asyncio.run(mgr.step())
    assert fourth.snapshot.oms.position(YES).total == 8 * MICRO
    assert fourth.plan.cancel == (ours,) and fourth.plan.place == (Quote(YES, Side.BUY, 440_000, 7 * MICRO),)

    # At the cap: nothing wanted, everything of ours cancelled, nothing placed.
    (last,) = fourth.placed
    maker_fill(state, "t2", last, T.MATCHED, 7 * MICRO, 440_000)
    fifth = asyncio.run(mgr.step())
    assert fifth.decision.quotes == () and fifth.plan == Plan() and fifth.placed == ()
    assert state.open_orders() == [] and state.check_invariants() == []


def test_orders_of_other_actors_are_not_the_managers_and_untrusted_books_are_left_out() -> None:
    state = new_state(cash=100 * MICRO)
    venue = FakeVenue(state, "strategy:a")
    other = state.submit(intent(oid(), price=450_000, size=10 * MICRO, actor="operator", post_only=True))
    state.on_order_event(order_event(other.order_id, OrderEventType.PLACEMENT, price=450_000))
    step = asyncio.run(_manager(state, venue).step())
    assert not step.plan.keep and not step.plan.cancel and len(step.plan.place) == 1
    # The operator's 10 at 0.45 is ours too: out of the book the strategy sees.
    assert step.snapshot.books[YES].bids[0] == (450_000, 20 * MICRO)

    class Untrusted(FakeVenue):
        def levels(self, token_id: str) -> BookLevels:
            lv = super().levels(token_id)
            return BookLevels(lv.bids, lv.asks, trusted=False)

    blind = Untrusted(state, "strategy:b")
    step = asyncio.run(_manager(state, blind).step())
    assert step.snapshot.books == {} and step.decision.quotes == () and blind.placed == []


def test_marks_are_the_mids_else_the_reference_prices() -> None:
    state = new_state(cash=100 * MICRO)
    venue = FakeVenue(state, "strategy:a")
    state.set_balance(state.ledger(next(iter(state.ledgers))).wallet, positions={YES: 10 * MICRO, "other": MICRO})
    mgr = _manager(state, venue, reference=lambda: {YES: 100_000, "other": 300_000})
    snap = asyncio.run(mgr.snapshot())
    assert snap.oms.position(YES).mark == 460_000  # mid of 0.45 / 0.47 wins over the reference
    assert snap.oms.position("other").mark == 300_000 and snap.reference["other"] == 300_000
    assert snap.oms.unrealized == 4_600_000 + 300_000
