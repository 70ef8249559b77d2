"""A deterministic random trading history (from a seed), for journal and recovery tests.

`History(seed).step(state)` applies one random input to `state` — the same input for the same seed
and step, whatever the state is attached to — so a state recovered from a journal can be compared with
the same history replayed in memory up to the same sequence number.
"""

from __future__ import annotations

import contextlib
import random

import msgspec

from polyoms.core.clock import VirtualClock
from polyoms.core.enums import OrderType, Side
from polyoms.core.units import MICRO
from polyoms.core.user_events import OrderEventType as E
from polyoms.core.user_events import OrderStatus as OS
from polyoms.core.user_events import TradeEvent, TraderSide
from polyoms.core.user_events import TradeStatus as T
from polyoms.core.venue import Ack
from polyoms.oms.errors import IllegalTransitionError
from polyoms.oms.oms_state import OmsState
from polyoms.oms.state import TERMINAL, OrderState

from .oms_helpers import NO, OWNER, START_MS, WALLET, YES, intent, maker, order_event, trade

NEXT = {
    T.MATCHED: (T.MINED, T.MINED, T.CONFIRMED, T.FAILED, T.RETRYING),
    T.MINED: (T.CONFIRMED, T.CONFIRMED, T.RETRYING),
    T.RETRYING: (T.MINED, T.FAILED),
}


def fresh_state(clock: VirtualClock | None = None) -> OmsState:
    state = OmsState(clock or VirtualClock(START_MS))
    return state


def bootstrap(state: OmsState) -> None:
    state.add_wallet(WALLET, [OWNER])
    state.set_balance(WALLET, cash=50_000 * MICRO, positions={YES: 1_000 * MICRO, NO: 1_000 * MICRO})


class History:
    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.seed = seed
        self.ids: list[str] = []
        self.trades: dict[str, TradeEvent] = {}
        self.n = 0

    def step(self, state: OmsState) -> None:
        rng = self.rng
        clock = state.clock
        assert isinstance(clock, VirtualClock)
        clock.advance(rng.randint(0, 40))
        ops = ["submit", "ack", "order", "trade", "progress", "progress", "redeliver", "cancel", "answer", "timeout"]
        if not self.ids:
            ops = ["submit"]
        op = rng.choice(ops)
        # Contradicting evidence is refused and changes nothing (the input is still journaled).
        with contextlib.suppress(IllegalTransitionError):
            getattr(self, "_" + op)(state)

    def _pick(self) -> str:
        return self.rng.choice(self.ids[-12:])

    def _submit(self, state: OmsState) -> None:
        rng = self.rng
        self.n += 1
        i = f"0x{self.seed:016x}{self.n:048x}"
        price = rng.randint(5, 95) * 10_000
        kind = rng.choice(("GTC", "GTC", "GTC", "FOK", "FAK", "DOLLAR", "GTD"))
        token = rng.choice((YES, NO))
        fee = rng.choice((None, 0, 400))
        if kind == "DOLLAR":
            it = intent(
                i,
                token=token,
                price=price,
                notional=rng.randint(1, 30) * MICRO,
                order_type=OrderType.FOK,
                fee_rate_bps=fee,
            )
        else:
            exp = START_MS // 1000 + 600 if kind == "GTD" else 0
            it = intent(
                i,
                side=rng.choice(tuple(Side)),
                token=token,
                price=price,
                size=rng.randint(1, 50) * MICRO,
                order_type=OrderType(kind),
                fee_rate_bps=fee,
                expiration=exp,
                actor=f"algo-{rng.randint(1, 3)}",
            )
        state.submit(it)
        self.ids.append(i)

    def _ack(self, state: OmsState) -> None:
        i = self._pick()
        status = self.rng.choice(("live", "live", "matched", "delayed", "unmatched"))
        state.on_ack(i, Ack(OS.parse(status), i, (), status))

    def _timeout(self, state: OmsState) -> None:
        state.on_send_failed(self._pick(), "timeout")

    def _order(self, state: OmsState) -> None:
        i = self._pick()
        o = state.orders[i]
        kind = self.rng.choice((E.PLACEMENT, E.UPDATE, E.UPDATE, E.CANCELLATION))
        matched = min(o.size, o.matched + self.rng.randint(0, 3) * MICRO) if o.size else 0
        status = OS.CANCELED if kind is E.CANCELLATION else (OS.MATCHED if o.size and matched >= o.size else OS.LIVE)
        state.on_order_event(
            order_event(i, kind, matched=matched, status=status, side=o.side, price=o.price, size=o.size,
                        token=o.token_id, order_type=o.order_type, ts_ms=state.clock.now_ms())
        )  # fmt: skip

    def _trade(self, state: OmsState) -> None:
        rng = self.rng
        i = self._pick()
        o = state.orders[i]
        self.n += 1
        tid = f"trade-{self.seed}-{self.n}"
        size = rng.randint(1, max(1, (o.size or 5 * MICRO) // MICRO)) * MICRO
        price = o.price
        first = rng.choice((T.MATCHED, T.MATCHED, T.MATCHED, T.MINED, T.CONFIRMED))
        if rng.random() < 0.5:
            comp = rng.random() < 0.3
            token = (NO if o.token_id == YES else YES) if comp else o.token_id
            side = o.side if comp else o.side.opposite
            ev = trade(
                tid,
                "0x" + "ee" * 32,
                first,
                side=side,
                size=size,
                price=MICRO - price if comp else price,
                token=token,
                makers=(maker(i, size, price, token=o.token_id, side=o.side),),
                trader_side=TraderSide.MAKER,
            )
        else:
            ev = trade(
                tid, i, first, side=o.side, size=size, price=price, token=o.token_id, fee_rate_bps=rng.choice((0, 400))
            )
        self.trades[tid] = ev
        state.on_trade_event(ev)

    def _progress(self, state: OmsState) -> None:
        live = [t for t, ev in self.trades.items() if ev.status in NEXT]
        if not live:
            return
        tid = self.rng.choice(live)
        ev = msgspec.structs.replace(self.trades[tid], status=self.rng.choice(NEXT[self.trades[tid].status]))
        self.trades[tid] = ev
        state.on_trade_event(ev)

    def _redeliver(self, state: OmsState) -> None:
        if self.trades:
            tid = self.rng.choice(sorted(self.trades))
            state.on_trade_event(self.trades[tid])

    def _cancel(self, state: OmsState) -> None:
        i = self._pick()
        if state.orders[i].state not in TERMINAL:
            state.request_cancel([i], actor="ops", reason="random")

    def _answer(self, state: OmsState) -> None:
        i = self._pick()
        if self.rng.random() < 0.6:
            state.on_cancel_answer([i])
        else:
            state.on_cancel_answer([], {i: "not found"})
        if state.unknown and self.rng.random() < 0.5:
            state.resolve(sorted(state.unknown)[0], OrderState.CANCELLED, "reconcile")


def play(state: OmsState, seed: int, steps: int, flush_p: float = 0.2) -> None:
    """`steps` of the seed's history on `state`, flushing its journal after a step with probability
    `flush_p` (the flushes are seeded too, so two journals of one seed get the same batches)."""
    h = History(seed)
    rng = random.Random(seed)
    for _ in range(steps):
        h.step(state)
        if rng.random() < flush_p:
            state.flush()


def replay_to(seed: int, seq: int) -> OmsState:
    """The same history, in memory only, up to (and including) the input numbered so that the state
    reaches `seq`."""
    state = fresh_state()
    bootstrap(state)
    h = History(seed)
    while state.seq < seq:
        h.step(state)
    assert state.seq == seq, (state.seq, seq)
    return state
