"""Stepping an algorithm by hand: commands executed on paper, fills and books scripted by the test.

Children go LIVE as soon as they are placed and a cancel is confirmed at once; `fill` adds a fill to a
child (provisional, or final), `void` takes one back, as a settlement failure would. Only the pure
algorithm runs here — no OMS, no exchange.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

from polyoms.algos.base import AlgoState, BookTop, Cancel, ChildView, Decision, Obs, Place, Step
from polyoms.core.units import MICRO, Micro
from polyoms.oms.state import OrderState

S = OrderState


class Paper:
    def __init__(self, state: AlgoState, now_ms: int = 0) -> None:
        self.state = state
        self.now = now_ms
        self.views: dict[str, ChildView] = {}
        self.placed: list[Place] = []
        self.cancelled: list[str] = []
        self.decisions: list[Decision] = []
        self.books: dict[str, BookTop] = {}
        self.bankroll: Micro | None = None
        self.cancel_requested = False

    def obs(self) -> Obs:
        return Obs(self.now, dict(self.views), dict(self.books), self.bankroll, self.cancel_requested)

    def step(self, at_ms: int | None = None, books: Mapping[str, BookTop] | None = None) -> Step[AlgoState]:
        if at_ms is not None:
            self.now = at_ms
        if books is not None:
            self.books = dict(books)
        result = self.state.step(self.obs())
        self.state = result.state
        self.decisions.extend(result.decisions)
        for c in result.commands:
            if isinstance(c, Place):
                self.placed.append(c)
                size = c.size or c.amount * MICRO // c.price
                ioc = c.order_type.is_marketable_only
                self.views[c.key] = ChildView(c.key, f"id-{c.key}", c.token_id, c.side, c.price, size,
                                              S.CANCELLED if ioc else S.LIVE)  # fmt: skip
            elif isinstance(c, Cancel):
                self.cancelled.append(c.key)
                v = self.views[c.key]
                if v.is_open:
                    self.views[c.key] = replace(v, state=S.CANCELLED)
        return result

    def fill(self, key: str, qty: Micro, price: Micro | None = None, *, final: bool = False) -> None:
        v = self.views[key]
        p = v.price if price is None else price
        filled = v.filled + qty
        state = v.state
        if v.is_open:
            state = S.FILLED if filled >= v.size else S.PARTIALLY_FILLED
        elif v.state is S.CANCELLED and filled > 0 and v.size <= filled:
            state = S.FILLED
        self.views[key] = replace(
            v,
            state=state,
            filled=filled,
            cash=v.cash + qty * p // MICRO,
            confirmed=v.confirmed + (qty if final else 0),
            mined=v.mined + (qty if final else 0),
        )

    def confirm_all(self) -> None:
        for k, v in self.views.items():
            self.views[k] = replace(v, confirmed=v.filled, mined=v.filled)

    def void(self, key: str, qty: Micro, price: Micro | None = None) -> None:
        v = self.views[key]
        p = v.price if price is None else price
        self.views[key] = replace(v, filled=v.filled - qty, cash=v.cash - qty * p // MICRO)

    def live(self) -> list[str]:
        return [k for k, v in self.views.items() if v.is_open]
