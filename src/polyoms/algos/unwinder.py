"""The unwinder: flatten naked legs within a loss limit, and say what legging cost.

A naked leg is a quantity bought (or sold) as part of a basket that the rest of the basket did not
match. For a bought leg there are two ways out:

* SELL_BACK — sell the shares again (FAK) at no less than `entry − max_loss`. The venue lets shares be
  sold only once their purchase is mined, so this waits for that;
* BUY_COMPLEMENT — buy the same number of the market's other outcome token (FAK) at no more than
  `1 − entry + max_loss`: together they are a complete set, worth exactly 1 pUSD at resolution (or
  merged), so the risk is gone at once.

AUTO picks whichever the book makes cheaper now (the complement on a tie: it needs no settlement wait).
A sold leg is bought back at no more than `entry + max_loss`. Prices are never beyond those limits: when
the book offers nothing within them the unwinder waits `retry_ms` and looks again, at most `max_attempts`
times, then stops and reports the residual exposure. A FAK that meets only part of the size is followed
by another attempt for the rest.

Legging cost (pUSD, positive = a loss), over what was unwound: for a sale, entry cost − net proceeds;
for a complement, entry cost + its cost − 1 pUSD per complete set formed; fees included.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from enum import StrEnum
from fractions import Fraction

from polyoms.algos import pricing as px
from polyoms.algos.base import (
    CENT,
    LOT,
    Action,
    Decision,
    Instrument,
    Obs,
    Place,
    all_final,
    require,
)
from polyoms.core.enums import OrderType, Side
from polyoms.core.units import MICRO, Micro, fmt_micro


class UnwindMethod(StrEnum):
    AUTO = "AUTO"
    SELL_BACK = "SELL_BACK"
    BUY_COMPLEMENT = "BUY_COMPLEMENT"


@dataclass(frozen=True, slots=True)
class UnwindPolicy:
    method: UnwindMethod = UnwindMethod.AUTO
    max_loss: Micro = 2 * CENT
    """Per share, against the leg's average entry price."""
    max_attempts: int = 5
    retry_ms: int = 1_000
    dust: Micro = LOT
    """Imbalances below this are left alone (and reported as residual exposure)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "method", UnwindMethod(self.method))
        require(0 <= self.max_loss < MICRO, "max_loss must be within [0, 1)", field="max_loss")
        require(self.max_attempts > 0, "max_attempts must be positive", field="max_attempts")
        require(self.retry_ms >= 0, "retry_ms must not be negative", field="retry_ms")
        require(self.dust >= LOT, "dust must be at least 0.01 shares", field="dust")


@dataclass(frozen=True, slots=True)
class Exposure:
    """`qty` shares of `inst.token_id` acquired (side BUY) or given up (side SELL) at `entry` on average,
    that no other leg matches. `sellable` is how many of them the venue lets us sell now."""

    inst: Instrument
    side: Side
    qty: Micro
    entry: Fraction
    sellable: Micro = 0


@dataclass(frozen=True, slots=True)
class UnwindChild:
    key: str
    method: UnwindMethod | str
    """UnwindMethod, or "BUY_BACK" for a sold leg."""


@dataclass(frozen=True, slots=True)
class UnwindTask:
    index: int
    children: tuple[UnwindChild, ...] = ()
    attempts: int = 0
    next_try_ms: int = 0
    last_wait: str = ""


@dataclass(frozen=True, slots=True)
class UnwindResult:
    token_id: str
    naked: Micro
    unwound: Micro
    residual: Micro
    cost: Fraction
    methods: tuple[str, ...]


def _done_qty(obs: Obs, task: UnwindTask) -> Micro:
    return sum(v.filled for c in task.children if (v := obs.children.get(c.key)) is not None)


def _open(obs: Obs, task: UnwindTask) -> bool:
    return not all_final(obs, (c.key for c in task.children))


def left(obs: Obs, exposure: Exposure, task: UnwindTask) -> Micro:
    return max(exposure.qty - _done_qty(obs, task), 0)


def finished(obs: Obs, policy: UnwindPolicy, exposure: Exposure, task: UnwindTask) -> bool:
    if _open(obs, task):
        return False
    return left(obs, exposure, task) < policy.dust or task.attempts >= policy.max_attempts


def sell_back_worst(e: Exposure, policy: UnwindPolicy) -> Micro:
    return px.grid_limit(Side.SELL, int(e.entry) - policy.max_loss, e.inst.prices)


def complement_worst(e: Exposure, policy: UnwindPolicy) -> Micro:
    return px.grid_limit(Side.BUY, MICRO - int(-(-e.entry // 1)) + policy.max_loss, e.inst.prices)


def buy_back_worst(e: Exposure, policy: UnwindPolicy) -> Micro:
    return px.grid_limit(Side.BUY, int(-(-e.entry // 1)) + policy.max_loss, e.inst.prices)


def plan(
    obs: Obs, policy: UnwindPolicy, exposure: Exposure, task: UnwindTask, sold_back: Micro
) -> tuple[UnwindTask, tuple[Place, ...], tuple[Decision, ...]]:
    """The next move for one naked leg (nothing while a child of it is working or its retry is not due).

    `sold_back`: shares of this token the sell-backs of this leg already sold (they leave the sellable)."""
    if _open(obs, task) or finished(obs, policy, exposure, task) or obs.now_ms < task.next_try_ms:
        return task, (), ()
    qty = left(obs, exposure, task)
    done = exposure.qty - qty
    qty -= qty % LOT  # orders carry whole cents of shares; a sub-cent tail stays (below any dust)
    inst = exposure.inst
    n = len(task.children) + 1
    token_top = obs.books.get(inst.token_id)
    if exposure.side is Side.SELL:
        worst = buy_back_worst(exposure, policy)
        ask = token_top.ask if token_top else None
        if ask is not None and ask <= worst and ask * qty // MICRO >= MICRO:
            key = f"u{task.index}-{n}"
            place = Place(key, inst.token_id, Side.BUY, ask, size=qty, order_type=OrderType.FAK)
            why = f"buy back {fmt_micro(qty)} at {fmt_micro(ask)} (limit {fmt_micro(worst)})"
            return _tried(obs, policy, task, UnwindChild(key, "BUY_BACK")), (place,), _log(obs, why, ask, qty, done)
        return _wait(obs, policy, task, f"no ask within {fmt_micro(worst)} to buy back", count=True)
    comp_top = obs.books.get(inst.complement) if inst.complement else None
    sell_worst = sell_back_worst(exposure, policy)
    comp_worst = complement_worst(exposure, policy)
    bid = token_top.bid if token_top else None
    comp_ask = comp_top.ask if comp_top else None
    can_sell = policy.method in (UnwindMethod.AUTO, UnwindMethod.SELL_BACK) and bid is not None and bid >= sell_worst
    can_comp = (
        policy.method in (UnwindMethod.AUTO, UnwindMethod.BUY_COMPLEMENT)
        and bool(inst.complement)
        and comp_ask is not None
        and comp_ask <= comp_worst
        and comp_ask * qty // MICRO >= MICRO  # a marketable BUY spends at least $1
    )
    if can_sell and can_comp:
        assert bid is not None and comp_ask is not None
        # Selling at the bid loses entry − bid; the complement loses entry + ask − 1: compare bid with 1 − ask.
        can_sell = bid > MICRO - comp_ask
        can_comp = not can_sell
    if can_comp:
        assert comp_ask is not None
        key = f"u{task.index}-{n}"
        place = Place(key, inst.complement, Side.BUY, comp_ask, size=qty, order_type=OrderType.FAK)
        why = f"buy the complement: {fmt_micro(qty)} at {fmt_micro(comp_ask)} (limit {fmt_micro(comp_worst)})"
        child = UnwindChild(key, UnwindMethod.BUY_COMPLEMENT)
        return _tried(obs, policy, task, child), (place,), _log(obs, why, comp_ask, qty, done)
    if can_sell:
        assert bid is not None
        sellable = exposure.sellable - sold_back
        sellable -= sellable % LOT
        if sellable < min(qty, policy.dust):
            return _wait(obs, policy, task, "waiting for the shares to settle before selling them back", count=False)
        size = min(qty, sellable)
        key = f"u{task.index}-{n}"
        place = Place(key, inst.token_id, Side.SELL, sell_worst, size=size, order_type=OrderType.FAK)
        why = f"sell back {fmt_micro(size)} at the bid {fmt_micro(bid)} (limit {fmt_micro(sell_worst)})"
        return (
            _tried(obs, policy, task, UnwindChild(key, UnwindMethod.SELL_BACK)),
            (place,),
            _log(obs, why, bid, size, done),
        )
    why = (
        f"nothing within limits: bid {_p(bid)} < {fmt_micro(sell_worst)}"
        f", complement ask {_p(comp_ask)} > {fmt_micro(comp_worst)}"
    )
    return _wait(obs, policy, task, why, count=True)


def _p(price: Micro | None) -> str:
    return "none" if price is None else fmt_micro(price)


def _tried(obs: Obs, policy: UnwindPolicy, task: UnwindTask, child: UnwindChild) -> UnwindTask:
    return replace(
        task,
        children=(*task.children, child),
        attempts=task.attempts + 1,
        next_try_ms=obs.now_ms + policy.retry_ms,
        last_wait="",
    )


def _log(obs: Obs, why: str, price: Micro, size: Micro, done: Micro = 0) -> tuple[Decision, ...]:
    if done:
        why = f"{why}; {fmt_micro(done)} unwound so far"
    return (Decision(obs.now_ms, Action.UNWIND, why, price, size),)


def _wait(
    obs: Obs, policy: UnwindPolicy, task: UnwindTask, why: str, *, count: bool
) -> tuple[UnwindTask, tuple[Place, ...], tuple[Decision, ...]]:
    new = replace(task, attempts=task.attempts + int(count), next_try_ms=obs.now_ms + policy.retry_ms, last_wait=why)
    if why == task.last_wait:
        return new, (), ()
    return new, (), (Decision(obs.now_ms, Action.WAIT, why),)


def result(obs: Obs, exposure: Exposure, task: UnwindTask) -> UnwindResult:
    """What unwinding this leg did and cost (exact; see the module doc)."""
    unwound = 0
    cost = Fraction(0)
    methods: list[str] = []
    for c in task.children:
        v = obs.children.get(c.key)
        if v is None or v.filled == 0:
            continue
        methods.append(str(c.method))
        q = v.filled
        unwound += q
        entry_cash = exposure.entry * q / MICRO  # price (micro pUSD/share) x micro-shares
        if c.method is UnwindMethod.SELL_BACK:
            cost += entry_cash - (v.cash - v.fees)
        elif c.method is UnwindMethod.BUY_COMPLEMENT:
            cost += entry_cash + v.cash + v.fees - q  # q complete sets, worth 1 pUSD each
        else:  # bought back a sold leg: paid more than it was sold for
            cost += v.cash + v.fees - entry_cash
    residual = max(exposure.qty - unwound, 0)
    return UnwindResult(exposure.inst.token_id, exposure.qty, unwound, residual, cost, tuple(methods))


def sold_back(obs: Obs, tasks: Mapping[int, UnwindTask], index: int) -> Micro:
    t = tasks.get(index)
    if t is None:
        return 0
    return sum(
        v.filled
        for c in t.children
        if c.method is UnwindMethod.SELL_BACK and (v := obs.children.get(c.key)) is not None
    )
