"""Stateful properties of the order state machine + ledgers under random venue behaviour.

Random sequences of submits, answers (live / matched / delayed / unmatched / refused / timeouts),
order events (placement, growing and stale updates, cancellations), trades as maker (same and
complementary token) and taker and both, every status progression (MATCHED → MINED → CONFIRMED,
RETRYING, FAILED), re-deliveries, reordering (CONFIRMED or MINED seen first, a late MATCHED), cancels,
orders we did not place, and UNKNOWN resolutions. After every step:

* `check_invariants()` is clean: reserved ≥ 0 and equal to what open orders hold, available derived
  from cash − reserved − provisional outflows, confirmed + provisional positions and cash equal to the
  non-voided fills, every order's audit trail complete with monotonic timestamps, no terminal exit;
* an independent model of the trades delivered says what the ledgers must hold: a voided fill leaves
  no trace, a confirmed one is in `confirmed`, a provisional one in the provisional buckets;
* an order that reached a terminal state keeps it.
"""

from __future__ import annotations

from typing import Any

import msgspec
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from polyoms.core.clock import VirtualClock
from polyoms.core.enums import OrderType, Side
from polyoms.core.units import MICRO
from polyoms.core.user_events import OrderEventType as E
from polyoms.core.user_events import OrderStatus as OS
from polyoms.core.user_events import TradeEvent, TraderSide
from polyoms.core.user_events import TradeStatus as T
from polyoms.oms.errors import IllegalTransitionError
from polyoms.oms.fills import TIER, FillTier
from polyoms.oms.oms_state import OmsState
from polyoms.oms.state import TERMINAL, OrderState
from polyoms.venues import polymarket_orders

from .oms_helpers import NO, OWNER, START_MS, WALLET, YES, intent, maker, oid, order_event, trade

S = OrderState
NEXT: dict[T, tuple[T, ...]] = {
    T.MATCHED: (T.MINED, T.RETRYING, T.CONFIRMED, T.FAILED),
    T.MINED: (T.CONFIRMED, T.RETRYING),
    T.RETRYING: (T.MINED, T.FAILED, T.CONFIRMED),
    T.CONFIRMED: (),
    T.FAILED: (),
}


class OmsMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.clock = VirtualClock(START_MS)
        self.state = OmsState(self.clock)
        self.state.add_wallet(WALLET, [OWNER])
        self.state.set_balance(WALLET, cash=10_000 * MICRO, positions={YES: 500 * MICRO, NO: 500 * MICRO})
        self.base_cash = 10_000 * MICRO
        self.base_shares = {YES: 500 * MICRO, NO: 500 * MICRO}
        self.ids: list[str] = []
        self.trades: dict[str, TradeEvent] = {}  # the venue's trades: latest version
        self.history: dict[str, list[TradeEvent]] = {}  # every version delivered so far
        # Model of delivered legs: (trade id, order id) → (side, token, size, cash delta, first final).
        self.legs: dict[tuple[str, str], list[Any]] = {}
        self.terminal: dict[str, OrderState] = {}
        self.n = 0

    # --- helpers -------------------------------------------------------------------------------------

    def _order(self, k: int) -> str | None:
        return self.ids[k % len(self.ids)] if self.ids else None

    def _deliver(self, ev: TradeEvent) -> None:
        self.history.setdefault(ev.id, []).append(ev)
        before = {k for k in self.state.fills if k[0] == ev.id}
        self.state.on_trade_event(ev)
        for key in {k for k in self.state.fills if k[0] == ev.id} | before:
            f = self.state.fills[key]
            leg = self.legs.setdefault(key, [f.side, f.token_id, f.size, f.cash_delta, None])
            if leg[4] is None and ev.status in (T.CONFIRMED, T.FAILED):
                leg[4] = ev.status

    # --- orders --------------------------------------------------------------------------------------

    @rule(
        side=st.sampled_from(Side),
        token=st.sampled_from((YES, NO)),
        price=st.integers(1, 99),
        size=st.integers(1, 40),
        kind=st.sampled_from(("GTC", "GTC", "GTD", "FOK", "FAK", "DOLLAR")),
        fee=st.sampled_from((None, 0, 400, 700)),
    )
    def submit(self, side: Side, token: str, price: int, size: int, kind: str, fee: int | None) -> None:
        self.clock.advance(3)
        i = oid()
        p = price * 10_000
        if kind == "DOLLAR":
            it = intent(i, token=token, price=p, notional=size * MICRO, order_type=OrderType.FAK, fee_rate_bps=fee)
        else:
            exp = START_MS // 1000 + 3600 if kind == "GTD" else 0
            it = intent(
                i, side=side, token=token, price=p, size=size * MICRO, order_type=OrderType(kind), fee_rate_bps=fee,
                expiration=exp,
            )  # fmt: skip
        self.state.submit(it)
        self.ids.append(i)

    @precondition(lambda self: self.ids)
    @rule(k=st.integers(0, 10_000), status=st.sampled_from(("live", "matched", "delayed", "unmatched", "error")))
    def ack(self, k: int, status: str) -> None:
        i = self._order(k)
        assert i is not None
        self.clock.advance(1)
        before = self.state.snapshot()
        try:
            if status == "error":
                self.state.on_reject(i, "not enough balance")
            else:
                self.state.on_ack(i, polymarket_orders.ack(i, status, (f"t{self.n}",)))
        except IllegalTransitionError:
            after = self.state.snapshot()
            after["seq"] -= 1
            assert after == before  # contradicting evidence changes nothing

    @precondition(lambda self: self.ids)
    @rule(k=st.integers(0, 10_000))
    def timeout(self, k: int) -> None:
        i = self._order(k)
        assert i is not None
        self.state.on_send_failed(i, "timeout")

    @precondition(lambda self: self.ids)
    @rule(k=st.integers(0, 10_000), kind=st.sampled_from(E), frac=st.integers(0, 100), matched_status=st.booleans())
    def order_event(self, k: int, kind: E, frac: int, matched_status: bool) -> None:
        i = self._order(k)
        assert i is not None
        o = self.state.orders[i]
        self.clock.advance(1)
        size = o.size or 10 * MICRO
        matched = size * frac // 100 // 10_000 * 10_000
        if kind is E.CANCELLATION:
            status = OS.CANCELED
        elif matched >= size and matched_status:
            status = OS.MATCHED
        else:
            status = OS.LIVE
        ev = order_event(
            i, kind, matched=matched, status=status, side=o.side, price=o.price, size=size, token=o.token_id,
            order_type=o.order_type, ts_ms=self.clock.now_ms(),
        )  # fmt: skip
        self.state.on_order_event(ev)

    @precondition(lambda self: self.ids)
    @rule(k=st.integers(0, 10_000))
    def cancel(self, k: int) -> None:
        i = self._order(k)
        assert i is not None
        o = self.state.orders[i]
        if o.state in TERMINAL:
            try:
                self.state.request_cancel([i], actor="ops")
            except IllegalTransitionError:
                return
            raise AssertionError("cancelling a terminal order must raise")
        self.state.request_cancel([i], actor="ops")

    @precondition(lambda self: self.ids)
    @rule(k=st.integers(0, 10_000), canceled=st.booleans())
    def cancel_answer(self, k: int, canceled: bool) -> None:
        i = self._order(k)
        assert i is not None
        if canceled:
            self.state.on_cancel_answer([i])
        else:
            self.state.on_cancel_answer([], {i: "order not found or already canceled"})

    @precondition(lambda self: self.state.unknown)
    @rule(to=st.sampled_from((S.LIVE, S.CANCELLED, S.REJECTED, S.FILLED)))
    def resolve_unknown(self, to: OrderState) -> None:
        i = sorted(self.state.unknown)[0]
        self.state.resolve(i, to, "reconciliation evidence")

    @rule(side=st.sampled_from(Side), size=st.integers(1, 20))
    def external_order(self, side: Side, size: int) -> None:
        i = oid()
        self.state.on_order_event(order_event(i, E.PLACEMENT, side=side, size=size * MICRO, price=300_000))
        self.ids.append(i)

    # --- trades --------------------------------------------------------------------------------------

    @precondition(lambda self: self.ids)
    @rule(
        k=st.integers(0, 10_000),
        role=st.sampled_from(("maker", "maker_complementary", "taker", "self")),
        frac=st.integers(1, 100),
        first=st.sampled_from((T.MATCHED, T.MATCHED, T.MINED, T.CONFIRMED, T.FAILED)),
        fee=st.sampled_from((0, 400)),
        k2=st.integers(0, 10_000),
    )
    def new_trade(self, k: int, role: str, frac: int, first: T, fee: int, k2: int) -> None:
        i = self._order(k)
        assert i is not None
        o = self.state.orders[i]
        self.n += 1
        tid = f"t{self.n}"
        size = max(10_000, (o.size or 10 * MICRO) * frac // 100 // 10_000 * 10_000)
        price = o.price if 0 < o.price < MICRO else 500_000
        other = "0x" + "ee" * 32
        stranger = dict(owner="someone", address="0x" + "ee" * 20)
        if role == "maker":
            ev = trade(
                tid,
                other,
                first,
                side=o.side.opposite,
                size=size,
                price=price,
                token=o.token_id,
                makers=(maker(i, size, price, token=o.token_id, side=o.side),),
                trader_side=TraderSide.MAKER,
            )
        elif role == "maker_complementary":
            comp = NO if o.token_id == YES else YES
            ev = trade(
                tid,
                other,
                first,
                side=o.side,
                size=size,
                price=MICRO - price,
                token=comp,
                makers=(maker(i, size, price, token=o.token_id, side=o.side),),
                trader_side=TraderSide.MAKER,
            )
        elif role == "taker":
            ev = trade(
                tid,
                i,
                first,
                side=o.side,
                size=size,
                price=price,
                token=o.token_id,
                fee_rate_bps=fee,
                makers=(maker(other, size, price, token=o.token_id, side=o.side.opposite, **stranger),),
            )
        else:
            j = self._order(k2)
            assert j is not None
            m = self.state.orders[j]
            ev = trade(
                tid,
                i,
                first,
                side=o.side,
                size=size,
                price=price,
                token=o.token_id,
                fee_rate_bps=fee,
                makers=(maker(j, size, m.price or price, token=m.token_id, side=m.side),),
            )
        self.trades[tid] = ev
        self._deliver(ev)

    @precondition(lambda self: self.trades)
    @rule(k=st.integers(0, 10_000), pick=st.integers(0, 3))
    def progress(self, k: int, pick: int) -> None:
        tid = sorted(self.trades)[k % len(self.trades)]
        ev = self.trades[tid]
        nxt = NEXT[ev.status]
        if not nxt:
            return
        ev = msgspec.structs.replace(ev, status=nxt[pick % len(nxt)])
        self.trades[tid] = ev
        self.clock.advance(2)
        self._deliver(ev)

    @precondition(lambda self: self.history)
    @rule(k=st.integers(0, 10_000), j=st.integers(0, 100))
    def redeliver(self, k: int, j: int) -> None:
        """A duplicate or an older version of a trade, as after a reconnect."""
        tid = sorted(self.history)[k % len(self.history)]
        versions = self.history[tid]
        self._deliver(versions[j % len(versions)])

    # --- invariants ----------------------------------------------------------------------------------

    @invariant()
    def ledgers_agree_with_fills_and_orders(self) -> None:
        problems = self.state.check_invariants()
        assert problems == [], problems

    @invariant()
    def ledgers_agree_with_the_model(self) -> None:
        lg = self.state.ledger(WALLET)
        cash = self.base_cash
        prov_out = prov_in = 0
        confirmed = dict(self.base_shares)
        total = dict(self.base_shares)
        for side, token, size, delta, final in self.legs.values():
            shares = size if side is Side.BUY else -size
            if final is T.FAILED:
                continue  # voided: no trace at all
            total[token] = total.get(token, 0) + shares
            if final is T.CONFIRMED:
                cash += delta
                confirmed[token] = confirmed.get(token, 0) + shares
            elif delta < 0:
                prov_out -= delta
            else:
                prov_in += delta
        assert (lg.cash, lg.prov_out, lg.prov_in) == (cash, prov_out, prov_in)
        for token in (YES, NO):
            pos = lg.positions[token]
            assert pos.confirmed == confirmed[token] and pos.total == total[token]
        assert lg.reserved >= 0 and all(p.reserved >= 0 for p in lg.positions.values())
        for f in self.state.fills.values():
            assert f.tier is TIER[f.status]

    @invariant()
    def terminal_states_stay_terminal(self) -> None:
        for i, o in self.state.orders.items():
            if i in self.terminal:
                assert o.state is self.terminal[i]
            elif o.state in TERMINAL:
                self.terminal[i] = o.state


OmsMachine.TestCase.settings = settings(
    max_examples=300,
    stateful_step_count=80,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
TestOmsMachine = OmsMachine.TestCase


def test_model_counts_a_failed_after_confirmed_as_confirmed() -> None:
    """The model's rule for a contradiction (first final status wins) is the OMS's rule too."""
    m = OmsMachine()
    m.submit(Side.BUY, YES, 50, 10, "GTC", 0)
    m.new_trade(0, "maker", 50, T.CONFIRMED, 0, 0)
    ev = msgspec.structs.replace(next(iter(m.trades.values())), status=T.FAILED)
    m._deliver(ev)
    [f] = m.state.fills.values()
    assert f.tier is FillTier.CONFIRMED
    m.ledgers_agree_with_the_model()
    m.ledgers_agree_with_fills_and_orders()
