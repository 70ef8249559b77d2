"""Adaptive repricing: one resting order that chases the market within a hard limit.

Every `check_ms` the algorithm compares its order with the book (others' orders only): undercut, it
steps past them; stale (no fill for the urgency's patience), it steps toward the other side; otherwise
it waits. No price is ever beyond `limit`, and a stale order with no adjustment left GIVEs UP. The rules
are pure functions (`entry_price`, `review`) so that another algorithm can price its resting order the
same way: the iceberg does, for its live tranche, with `AdaptivePricing`. Sizing and urgency presets:
`AdaptiveSpec`; repricing and the decision log: `AdaptiveState`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

from polyoms.algos import pricing as px
from polyoms.algos.base import (
    CANCEL_RETRY_MS,
    CENT,
    Action,
    AlgoState,
    BookTop,
    Command,
    Decision,
    Done,
    Instrument,
    Obs,
    ParentState,
    Place,
    Progress,
    SingleTokenSpec,
    SingleTokenState,
    Step,
    all_final,
    any_provisional,
    cancels_for,
    check_price,
    check_size,
    dedup_wait,
    earliest,
    require,
    side_of,
    sums,
)
from polyoms.algos.sizing import KellySizing, KellyVerdict, kelly_shares, kelly_verdict
from polyoms.algos.urgency import Urgency, UrgencyParams, resolve
from polyoms.core.enums import Side
from polyoms.core.units import MICRO, Micro, fmt_micro
from polyoms.core.venue import PriceGrid
from polyoms.oms.state import OrderState

P = ParentState


@dataclass(frozen=True, slots=True)
class AdaptivePricing:
    """The adaptive rules for another algorithm's resting order (`IcebergSpec.adaptive`)."""

    limit: Micro
    """Max price for a BUY, min price for a SELL: never passed."""
    urgency: Urgency | UrgencyParams = Urgency.MEDIUM
    undercut_margin: Micro = CENT
    check_ms: int = 1_000

    def __post_init__(self) -> None:
        object.__setattr__(self, "urgency", resolve(self.urgency))
        require(self.undercut_margin > 0, "undercut_margin must be positive", field="undercut_margin")
        require(self.check_ms > 0, "check_ms must be positive", field="check_ms")

    @property
    def params(self) -> UrgencyParams:
        return resolve(self.urgency)


def entry_price(
    side: Side, grid: PriceGrid, top: BookTop | None, limit: Micro, start: Micro | None, post_only: bool
) -> Micro | None:
    """Where an order starts: `start`, else the best price others show on our side, else one grid step
    inside the other side, else the limit — on the grid, never beyond `limit`, not crossing when
    `post_only`. None when no price is valid (post-only against a book that leaves no passive price in
    range)."""
    if start is not None:
        price = start
    else:
        best = top.best(side) if top is not None else None
        opposite = top.opposite(side) if top is not None else None
        if best is not None:
            price = best
        elif opposite is not None:
            price = px.worse(side, opposite, grid)
        else:
            price = limit
    price = px.bounded(side, price, limit, grid)
    if post_only:
        price = px.passive(side, price, top.opposite(side) if top else None, grid)
    if not grid.min_price <= price <= grid.max_price:
        return None
    return price


@dataclass(frozen=True, slots=True)
class Verdict:
    """What `review` concluded: WAIT, RAISE_BID / LOWER_ASK to `price`, or GIVE_UP."""

    action: Action
    reason: str
    price: Micro


def review(
    *,
    side: Side,
    grid: PriceGrid,
    top: BookTop | None,
    ours: Micro,
    now_ms: int,
    progress_ms: int,
    params: UrgencyParams,
    limit: Micro,
    undercut_margin: Micro,
    adjustments: int,
    post_only: bool,
    blocked: str = "",
) -> Verdict:
    """The adaptive rules for a resting order at `ours` with no fill since `progress_ms`.

    * undercut — someone else's price on our side is better than ours by at least `undercut_margin`:
      step up to one grid step better than them, or by one urgency step if that is more;
    * stale — no fill for the urgency's patience since the last (re)price or fill: step one urgency step
      toward the other side (crossing the spread is allowed unless `post_only`: at the limit it takes);
    * otherwise WAIT.

    Steps are the grid's where the order is: the urgency step is rounded to the step there
    (`UrgencyParams.effective_step`: 0.5¢ stays 0.5¢ in a 0.1¢ band, becomes 1¢ in a cent band).

    No price is ever beyond `limit` (max price for a BUY, min price for a SELL). When an adjustment is
    needed but none is left, or the order is already at the limit, a stale order GIVEs UP (cancelled,
    the parent ends with what filled); an undercut one WAITs for its patience.

    `blocked` is the caller's own reason not to reprice (checked after the limit and the adjustment
    budget). A reprice that is needed but blocked gives up when stale and waits when only undercut: the
    stale order has had its patience and nothing better is allowed, while an undercut one may still be
    filled where it is."""
    if top is None:
        return Verdict(Action.WAIT, "no trusted book", ours)
    other = top.best(side)
    ahead = px.ahead_by(side, other, ours) if other is not None else 0
    undercut = other is not None and ahead >= undercut_margin
    stale_for = now_ms - progress_ms
    stale = stale_for >= params.patience_ms
    if not undercut and not stale:
        if other is None or ahead < 0:
            why = "alone at the best price"
        elif ahead == 0:
            why = "at the best price"
        else:
            why = f"behind by {fmt_micro(ahead)} < margin {fmt_micro(undercut_margin)}"
        return Verdict(Action.WAIT, why, ours)
    new = px.toward(side, ours, params.effective_step(grid, ours, side))
    if undercut and other is not None:
        beat = px.better(side, other, grid)
        if px.more_aggressive(side, beat, new):
            new = beat
    new = px.bounded(side, new, limit, grid)
    if post_only:
        new = px.passive(side, new, top.opposite(side), grid)
    improves = px.more_aggressive(side, new, ours)
    parts = []
    if undercut and other is not None:
        parts.append(f"undercut: {fmt_micro(other)} is {fmt_micro(ahead)} ahead")
    if stale:
        parts.append(f"stale: no fill for {stale_for // 1000} s")
    what = "; ".join(parts)
    blocker = ""
    if not improves:
        blocker = f"at the limit {fmt_micro(limit)}" if ours == limit else "cannot improve"
    elif adjustments >= params.max_adjustments:
        blocker = f"{adjustments} adjustments used"
    elif blocked:
        blocker = blocked
    if blocker:
        return Verdict(Action.GIVE_UP if stale else Action.WAIT, f"{what}; {blocker}", ours)
    action = Action.RAISE_BID if side is Side.BUY else Action.LOWER_ASK
    return Verdict(action, f"{what} (adjustment {adjustments + 1})", new)


@dataclass(frozen=True, slots=True)
class AdaptiveSpec(SingleTokenSpec):
    """What an adaptive parent is asked to do.

    Urgency presets (`urgency.py`): LOW / MEDIUM / HIGH = patience 60 / 30 / 10 s, 3 / 5 / 10
    adjustments, steps of 0.3 / 0.5 / 1¢ rounded to the market's grid; `undercut_margin` is 1¢ by
    default. With `kelly` set, the size is the fractional-Kelly position at each (re)price, the limit is
    pulled in to the last price with positive edge, and nothing is placed while the Kelly size is below
    the market's minimum.
    """

    token_id: str
    side: Side
    limit: Micro
    """Max price for a BUY, min price for a SELL: never passed."""
    size: Micro = 0
    """Shares; leave 0 when sized by `kelly`."""
    urgency: Urgency | UrgencyParams = Urgency.MEDIUM
    start_price: Micro | None = None
    """None: join the best price others show on our side (or the limit when that side is empty)."""
    undercut_margin: Micro = CENT
    check_ms: int = 1_000
    timeout_ms: int | None = None
    post_only: bool = False
    lifetime_s: int = 0
    """> 0: children are GTD and expire at the venue after this long unless replaced (dead-man)."""
    kelly: KellySizing | None = None
    await_settlement: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "side", side_of(self.side))
        object.__setattr__(self, "urgency", resolve(self.urgency))
        require(self.size > 0 or self.kelly is not None, "give a size or Kelly sizing", field="size")
        require(self.undercut_margin > 0, "undercut_margin must be positive", field="undercut_margin")
        require(self.check_ms > 0, "check_ms must be positive", field="check_ms")
        require(self.timeout_ms is None or self.timeout_ms > 0, "timeout_ms must be positive", field="timeout_ms")
        require(self.lifetime_s >= 0, "lifetime_s must not be negative", field="lifetime_s")


@dataclass(frozen=True, slots=True)
class AdaptiveState(SingleTokenState):
    """An adaptive parent at work: its resting child and the adjustments it has made.

    A reprice is cancel → confirm (the venue says the order is gone, with its final fills) → replace
    for what remains; it counts as one adjustment.

    Decision log: PLACE, WAIT, RAISE_BID / LOWER_ASK (with the reason: undercut or stale), REFRESH (a
    child ended without us — a dead-man GTD expiry, a venue cancel — and is placed again, not an
    adjustment), NO_EDGE, GIVE_UP, STOP, SETTLE, RESUME (a settlement failure voided a fill), DONE.
    """

    spec: AdaptiveSpec
    inst: Instrument
    params: UrgencyParams
    limit_px: Micro
    started_ms: int
    deadline_ms: int | None
    stage: str = "start"
    """start (nothing placed), live, replace (cancel sent, new price pending), settle, stop, end."""
    status: ParentState = P.WORKING
    why: str = ""
    child_keys: tuple[str, ...] = ()
    live: str = ""
    price: Micro = 0
    target: Micro = 0
    adjustments: int = 0
    progress_ms: int = 0
    seen_filled: Micro = 0
    next_check_ms: int = 0
    pending_price: Micro = 0
    placed_ms: int = 0
    outcome: ParentState = P.DONE
    cancels: dict[str, int] = field(default_factory=dict)
    last_wait: str = ""
    finished_at: Micro = 0
    """What had filled when it finished: less at settlement means a fill was voided."""

    @staticmethod
    def start(spec: AdaptiveSpec, inst: Instrument, now_ms: int) -> AdaptiveState:
        grid = inst.prices
        params = spec.urgency if isinstance(spec.urgency, UrgencyParams) else spec.urgency.params
        check_price(spec.limit, grid, "limit")
        if spec.start_price is not None:
            check_price(spec.start_price, grid, "start_price")
            require(px.within(spec.side, spec.start_price, spec.limit), "start_price is beyond the limit")
        if spec.size:
            check_size(spec.size, "size", minimum=inst.min_size)
        limit_px = spec.limit
        if spec.kelly is not None:
            limit_px = px.cap(spec.side, limit_px, _last_edge_price(spec.kelly, spec.side, grid))
        return AdaptiveState(
            spec=spec,
            inst=inst,
            params=params,
            limit_px=limit_px,
            started_ms=now_ms,
            deadline_ms=None if spec.timeout_ms is None else now_ms + spec.timeout_ms,
            target=spec.size,
            progress_ms=now_ms,
        )

    # --- AlgoState -------------------------------------------------------------------------------

    @property
    def wake_ms(self) -> int | None:
        if self.status.is_terminal:
            return None
        if self.stage in ("replace", "stop"):
            return earliest(*(t + CANCEL_RETRY_MS for t in self.cancels.values()), self._deadline_if_working)
        if self.stage in ("live", "start"):
            return earliest(self.next_check_ms, self.deadline_ms)
        return None

    @property
    def _deadline_if_working(self) -> int | None:
        return self.deadline_ms if self.status is P.WORKING else None

    def progress(self, obs: Obs) -> Progress:
        filled, cash, fees = sums(obs, self.child_keys)
        return Progress(self.target, filled, cash, fees, self.adjustments)

    # --- the state machine -----------------------------------------------------------------------

    def step(self, obs: Obs) -> Step[AlgoState]:
        if self.status.is_terminal:
            return Step(self)
        filled, cash, fees = sums(obs, self.child_keys)
        st = self
        if filled != st.seen_filled:
            st = replace(st, seen_filled=filled, progress_ms=obs.now_ms if filled > st.seen_filled else st.progress_ms)
        if st.stage == "stop":
            return st._wind_down(obs)
        if st.stage == "settle":
            return st._settle(obs, filled)
        if obs.cancel_requested:
            return st._stop(obs, P.CANCELLED, "cancelled by the user", Action.STOP)
        if st.deadline_ms is not None and obs.now_ms >= st.deadline_ms:
            return st._stop(obs, P.EXPIRED, f"timeout after {(obs.now_ms - st.started_ms) // 1000} s", Action.STOP)
        view = obs.children.get(st.live) if st.live else None
        if st.live and view is None:
            return Step(st)  # placed this round; the OMS has not shown it yet
        if view is not None and view.state is OrderState.REJECTED:
            return st._stop(obs, P.FAILED, f"child refused: {view.error or 'rejected'}", Action.FAIL)
        if st.stage == "replace":
            assert view is not None
            if not view.final:
                cmds, sent = cancels_for(obs, (st.live,), st.cancels)
                return Step(replace(st, cancels=sent), cmds)
            return st._replace_done(obs, filled, cash, fees)
        if view is not None and view.final:
            return st._child_ended(obs, view.state, filled, cash, fees)
        if st.stage == "start":
            return st._first(obs, filled, cash, fees)
        assert view is not None
        if not view.cancellable or obs.now_ms < st.next_check_ms:
            return Step(st)
        return replace(st, next_check_ms=obs.now_ms + st.spec.check_ms)._review(obs, filled, cash, fees)

    # --- placing ---------------------------------------------------------------------------------

    def _sized(self, obs: Obs, price: Micro, filled: Micro, cash: Micro, fees: Micro) -> Micro:
        """The target position at `price` (the fixed size, or Kelly with the bankroll from the ledger)."""
        k = self.spec.kelly
        if k is None:
            return self.spec.size
        bankroll = (obs.bankroll or 0) + (cash + fees if self.spec.side is Side.BUY else 0)
        return kelly_shares(k, price, bankroll, self.spec.side)

    def _place(
        self, obs: Obs, price: Micro, filled: Micro, cash: Micro, fees: Micro, action: Action, reason: str
    ) -> Step[AlgoState]:
        target = self._sized(obs, price, filled, cash, fees)
        st = replace(self, target=target)
        remaining = target - filled
        k = self.spec.kelly
        if k is not None:
            verdict = kelly_verdict(k, price, self.spec.side, target, filled, self.inst.min_size)
            if verdict is KellyVerdict.REACHED:
                return st._finish(obs, filled, f"Kelly size {fmt_micro(target)} reached at {fmt_micro(price)}")
            if verdict is not KellyVerdict.PLACE:
                why = (
                    f"no edge at {fmt_micro(price)}"
                    if verdict is KellyVerdict.NO_EDGE
                    else f"Kelly size {fmt_micro(target)} below the market minimum"
                )
                decisions, last = dedup_wait(st.last_wait, obs, why, price)
                decisions = tuple(replace(d, action=Action.NO_EDGE) for d in decisions)
                waiting = replace(
                    st, stage="start", live="", last_wait=last, next_check_ms=obs.now_ms + st.spec.check_ms
                )
                return Step(waiting, (), decisions)
        elif remaining <= 0:
            return st._finish(obs, filled, "filled")
        elif remaining < self.inst.min_size:
            return st._finish(obs, filled, f"remainder {fmt_micro(remaining)} is below the market minimum")
        key = f"c{len(st.child_keys) + 1}"
        place = Place(
            key,
            self.spec.token_id,
            self.spec.side,
            price,
            size=remaining,
            post_only=self.spec.post_only,
            lifetime_s=self.spec.lifetime_s,
        )
        st = replace(
            st,
            stage="live",
            live=key,
            price=price,
            child_keys=(*st.child_keys, key),
            progress_ms=obs.now_ms,
            next_check_ms=obs.now_ms + st.spec.check_ms,
            last_wait="",
            placed_ms=obs.now_ms,
        )
        return Step(st, (place,), (Decision(obs.now_ms, action, reason, price, remaining),))

    def _first(self, obs: Obs, filled: Micro, cash: Micro, fees: Micro) -> Step[AlgoState]:
        if obs.now_ms < self.next_check_ms and self.last_wait:
            return Step(self)  # waiting (no edge, no valid price): look again at the next check
        # Re-entry after a void or a no-edge pause keeps the price reached.
        start = self.price or self.spec.start_price
        top = obs.books.get(self.spec.token_id)
        price = entry_price(self.spec.side, self.inst.prices, top, self.limit_px, start, self.spec.post_only)
        if price is None:
            decisions, last = dedup_wait(self.last_wait, obs, "no valid passive price", None)
            return Step(replace(self, last_wait=last, next_check_ms=obs.now_ms + self.spec.check_ms), (), decisions)
        return self._place(obs, price, filled, cash, fees, Action.PLACE, "start")

    def _child_ended(self, obs: Obs, state: OrderState, filled: Micro, cash: Micro, fees: Micro) -> Step[AlgoState]:
        if filled >= self.target and self.spec.kelly is None:
            return self._finish(obs, filled, "filled")
        if state is OrderState.FILLED and self.spec.kelly is not None:
            return self._finish(obs, filled, "Kelly target filled")
        # The venue expires a GTD order at its expiration minus 60 s, which the OMS records as a cancel.
        lifetime = self.spec.lifetime_s * 1000
        expired = state is OrderState.EXPIRED or (lifetime > 0 and obs.now_ms >= self.placed_ms + lifetime)
        why = "expired (dead-man GTD)" if expired else f"ended {state} at the venue"
        return self._place(obs, self.price, filled, cash, fees, Action.REFRESH, f"child {self.live} {why}")

    # --- reviewing -------------------------------------------------------------------------------

    def _review(self, obs: Obs, filled: Micro, cash: Micro, fees: Micro) -> Step[AlgoState]:
        remaining = self.target - filled
        small = 0 < remaining < self.inst.min_size and self.spec.kelly is None
        v = review(
            side=self.spec.side,
            grid=self.inst.prices,
            top=obs.books.get(self.spec.token_id),
            ours=self.price,
            now_ms=obs.now_ms,
            progress_ms=self.progress_ms,
            params=self.params,
            limit=self.limit_px,
            undercut_margin=self.spec.undercut_margin,
            adjustments=self.adjustments,
            post_only=self.spec.post_only,
            blocked=f"remainder {fmt_micro(remaining)} is below the market minimum" if small else "",
        )
        if v.action is Action.GIVE_UP:
            return self._stop(obs, P.GAVE_UP, v.reason, Action.GIVE_UP)
        if v.action is Action.WAIT:
            decisions, last = dedup_wait(self.last_wait, obs, v.reason, self.price)
            return Step(replace(self, last_wait=last), (), decisions)
        st = replace(self, stage="replace", pending_price=v.price, adjustments=self.adjustments + 1, last_wait="")
        cmds, sent = cancels_for(obs, (self.live,), st.cancels)
        return Step(replace(st, cancels=sent), cmds, (Decision(obs.now_ms, v.action, v.reason, v.price, remaining),))

    def _replace_done(self, obs: Obs, filled: Micro, cash: Micro, fees: Micro) -> Step[AlgoState]:
        st = replace(self, price=self.pending_price, pending_price=0, cancels={})
        if filled >= st.target and st.spec.kelly is None:
            return st._finish(obs, filled, "filled while repricing")
        return st._place(obs, st.price, filled, cash, fees, Action.PLACE, "replacement after confirmed cancel")

    # --- ending ----------------------------------------------------------------------------------

    def _finish(self, obs: Obs, filled: Micro, reason: str) -> Step[AlgoState]:
        """Everything wanted has matched: settle (wait for final fills) if asked, then DONE."""
        st = replace(self, stage="settle", status=P.SETTLING, live="", why=reason, finished_at=filled)
        if not self.spec.await_settlement:
            return st._end(obs, P.DONE, reason, ())
        return st._settle(obs, filled, (Decision(obs.now_ms, Action.SETTLE, reason, None, filled),))

    def _settle(self, obs: Obs, filled: Micro, decisions: tuple[Decision, ...] = ()) -> Step[AlgoState]:
        if not all_final(obs, self.child_keys):
            return Step(self, (), decisions)
        if any_provisional(obs, self.child_keys):
            return Step(self, (), decisions)
        if filled < self.finished_at:
            if self.deadline_ms is not None and obs.now_ms >= self.deadline_ms:
                return self._end(obs, P.EXPIRED, "timeout after a settlement failure", decisions)
            st = replace(self, stage="start", status=P.WORKING, next_check_ms=0, last_wait="")
            d = Decision(
                obs.now_ms, Action.RESUME, f"a fill was voided: {fmt_micro(self.finished_at - filled)} to redo"
            )
            return Step(st, (), (*decisions, d))
        return self._end(obs, P.DONE, self.why or "filled", decisions)

    def _stop(self, obs: Obs, outcome: ParentState, reason: str, action: Action) -> Step[AlgoState]:
        st = replace(self, stage="stop", status=P.STOPPING, outcome=outcome, why=reason)
        d = Decision(obs.now_ms, action, reason, self.price or None)
        step = st._wind_down(obs)
        return Step(step.state, step.commands, (d, *step.decisions))

    def _wind_down(self, obs: Obs) -> Step[AlgoState]:
        cmds, sent = cancels_for(obs, self.child_keys, self.cancels)
        st = replace(self, cancels=sent)
        if cmds or not all_final(obs, self.child_keys):
            return Step(st, cmds)
        if self.spec.await_settlement and any_provisional(obs, self.child_keys):
            return Step(st)
        return st._end(obs, self.outcome, self.why, ())

    def _end(self, obs: Obs, outcome: ParentState, reason: str, decisions: tuple[Decision, ...]) -> Step[AlgoState]:
        st = replace(self, stage="end", status=outcome, why=reason, live="")
        d = Decision(obs.now_ms, Action.DONE, f"{outcome}: {reason}")
        cmds: tuple[Command, ...] = (Done(outcome, reason),)
        return Step(st, cmds, (*decisions, d))


def _last_edge_price(k: KellySizing, side: Side, grid: PriceGrid) -> Micro:
    """The most aggressive grid price that still has positive edge (BUY below p, SELL above p), or
    `pricing.nowhere` when no grid price has."""
    p = k.probability * MICRO
    if side is Side.BUY:
        if p <= grid.min_price:
            return px.nowhere(side)
        price = grid.round_down(math.floor(p))
        return price if price < p else grid.next_below(price)
    if p >= grid.max_price:
        return px.nowhere(side)
    price = grid.round_up(math.ceil(p))
    return price if price > p else grid.next_above(price)
