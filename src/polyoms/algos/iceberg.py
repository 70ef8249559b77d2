"""Iceberg: a parent order shown one tranche at a time.

One tranche is live at a time, its size randomized around the display size and a random pause before
the next, so neither the size nor the rhythm gives the parent away. Tranches rest at the parent's limit
`price` or, with `adaptive`, are repriced within the limit by the adaptive module's rules
(`adaptive.review`). The parent's fills are its children's, as the OMS counts them (voided fills
excluded), and it ends with exactly what filled. Details: `IcebergSpec` (tranches and pricing) and
`IcebergState` (how it ends).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from polyoms.algos import pricing as px
from polyoms.algos import rng
from polyoms.algos.adaptive import AdaptivePricing, entry_price, review
from polyoms.algos.base import (
    CANCEL_RETRY_MS,
    LOT,
    Action,
    AlgoState,
    ChildView,
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
from polyoms.core.enums import Side
from polyoms.core.units import Micro, fmt_micro
from polyoms.oms.state import OrderState

P = ParentState
_U53 = 1 << 53


def tranche_size(
    display: Micro, variance_bps: int, lo: Micro, hi: Micro, remaining: Micro, venue_min: Micro, u: int
) -> Micro:
    """The next tranche for a uniform draw `u` in [0, 2^53): display × (1 ± variance), clamped to
    [lo, hi], floored to the lot, at most `remaining`.

    So that the parent never strands a remainder too small to place, a tranche that would leave less
    than `venue_min` takes everything (when that fits under `hi`, or when the rest is too small to make
    two valid orders) or else leaves exactly `venue_min`; only then may a tranche leave [lo, hi].
    Returns 0 only when `remaining` itself is below `venue_min` (nothing valid can be placed)."""
    if remaining < venue_min or remaining <= 0:
        return 0
    factor = 10_000 - variance_bps + (u % _U53) * (2 * variance_bps + 1) // _U53
    size = display * factor // 10_000
    size = min(max(size, lo), hi)
    size -= size % LOT
    size = min(size, remaining)
    tail = remaining - size
    if 0 < tail < venue_min:
        # Take everything if that fits (or if the rest cannot make two valid orders), else leave exactly
        # the minimum for the last tranche.
        size = remaining if remaining <= hi or remaining - venue_min < venue_min else remaining - venue_min
    return size


@dataclass(frozen=True, slots=True)
class IcebergSpec(SingleTokenSpec):
    """What an iceberg is asked to do.

    Tranches are the display size randomized by ±`variance_bps` (20 % by default), kept within
    [min_tranche, max_tranche], floored to the 0.01-share lot and never more than what remains. One tranche is
    live at a time; when it has filled, a random pause (1-3 s by default) passes before the next, so neither
    the size nor the rhythm gives the parent away. All tranches rest at the parent's limit `price` (a price
    that crosses takes at the opposite side's prices, never worse than it).

    With `adaptive` (an `AdaptivePricing`), the live tranche is priced by the adaptive module's rules
    (`adaptive.review`) instead of resting at a fixed price: every `check_ms` it is compared with the book —
    undercut by at least the margin, or stale (no fill for the urgency's patience since it was placed, repriced
    or last filled) — and stepped toward the limit (RAISE_BID / LOWER_ASK), never beyond it. A reprice is
    cancel → confirmed cancel → replace what is left of the tranche at the new price; when what is left is
    below the market's minimum, the tranche ends there and the next one (after the usual pause) takes the new
    price. The adjustment budget is the parent's, not each tranche's, so the urgency bounds how far the whole
    order chases. Each new tranche starts where the last one was (the price reached, not the start). As in
    `AdaptiveSpec`, a reprice that is needed but impossible (at the limit, budget spent, parent remainder below
    the minimum) makes a stale tranche GIVE UP — cancelled, the parent ends GAVE_UP with what filled — and an
    undercut one WAIT at its price. `price` is then the start price, or None to join the best price others show
    on our side (one grid step inside the other side when ours is empty, the limit when the book is).
    """

    token_id: str
    side: Side
    size: Micro
    """Total shares."""
    price: Micro | None
    """Limit price of every tranche; with `adaptive`, where the first tranche starts (None: join the book)."""
    display: Micro
    """Mean tranche size."""
    variance_bps: int = 2_000
    min_tranche: Micro | None = None
    """Default: display − variance (but at least the market's minimum)."""
    max_tranche: Micro | None = None
    """Default: display + variance."""
    pause_ms: tuple[int, int] = (1_000, 3_000)
    timeout_ms: int | None = None
    post_only: bool = False
    lifetime_s: int = 0
    await_settlement: bool = True
    adaptive: AdaptivePricing | None = None
    """Reprice the live tranche by the adaptive rules within `adaptive.limit` (None: a fixed price)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "side", side_of(self.side))
        require(
            self.price is not None or self.adaptive is not None,
            "an iceberg needs a price, or adaptive pricing to start from the book",
            field="price",
        )
        require(0 <= self.variance_bps < 10_000, "variance_bps must be within [0, 10000)", field="variance_bps")
        lo, hi = self.pause_ms
        require(0 <= lo <= hi, f"pause_ms must be (min, max) with 0 <= min <= max, got {self.pause_ms}")
        require(self.timeout_ms is None or self.timeout_ms > 0, "timeout_ms must be positive", field="timeout_ms")
        require(self.lifetime_s >= 0, "lifetime_s must not be negative", field="lifetime_s")


@dataclass(frozen=True, slots=True)
class IcebergState(SingleTokenState):
    """An iceberg at work: its live tranche, its pause, and how it ends.

    The parent's fills are its children's, as the OMS counts them (voided fills excluded). It ends
    * DONE when everything matched and (by default) settled — a settlement failure voids a fill, and the
      iceberg works the voided quantity again;
    * CANCELLED / EXPIRED on a user cancel or at its timeout: the live tranche is cancelled, its cancel
      confirmed and its fills (final, by default) counted, so the status says exactly what filled.
    The last tranches may be resized so that no remainder below the market's minimum order size is left.
    """

    spec: IcebergSpec
    inst: Instrument
    lo: Micro
    hi: Micro
    seed: int
    started_ms: int
    deadline_ms: int | None
    stage: str = "ready"
    """ready (next tranche due at ready_ms), live, replace (adaptive: cancel sent, new price pending),
    settle, stop, end."""
    status: ParentState = P.WORKING
    why: str = ""
    ready_ms: int = 0
    child_keys: tuple[str, ...] = ()
    live: str = ""
    draws: int = 0
    outcome: ParentState = P.DONE
    cancels: dict[str, int] = field(default_factory=dict)
    price: Micro = 0
    """The price of the next (or live) tranche; 0 until an adaptive iceberg without a start price has one."""
    tranches: int = 0
    adjustments: int = 0
    pending_price: Micro = 0
    progress_ms: int = 0
    """Adaptive: the last placement or fill (staleness is measured from it)."""
    seen_filled: Micro = 0
    next_check_ms: int = 0
    last_wait: str = ""

    @staticmethod
    def start(spec: IcebergSpec, inst: Instrument, now_ms: int, seed: int) -> IcebergState:
        if spec.adaptive is not None:
            check_price(spec.adaptive.limit, inst.prices, "limit")
        if spec.price is not None:
            check_price(spec.price, inst.prices, "price")
            if spec.adaptive is not None:
                require(
                    px.within(spec.side, spec.price, spec.adaptive.limit), "price is beyond the limit", field="price"
                )
        check_size(spec.size, "size", minimum=inst.min_size)
        check_size(spec.display, "display", minimum=inst.min_size)
        spread = spec.display * spec.variance_bps // 10_000
        lo = spec.min_tranche if spec.min_tranche is not None else spec.display - spread
        hi = spec.max_tranche if spec.max_tranche is not None else spec.display + spread
        lo = max(lo - lo % LOT, inst.min_size)
        hi -= hi % LOT
        require(lo <= spec.display <= hi, f"tranche bounds [{fmt_micro(lo)}, {fmt_micro(hi)}] exclude the display size")
        return IcebergState(
            spec,
            inst,
            lo,
            hi,
            seed,
            now_ms,
            None if spec.timeout_ms is None else now_ms + spec.timeout_ms,
            ready_ms=now_ms,
            price=spec.price or 0,
            progress_ms=now_ms,
        )

    # --- AlgoState -------------------------------------------------------------------------------

    @property
    def wake_ms(self) -> int | None:
        if self.status.is_terminal:
            return None
        if self.stage == "stop":
            return earliest(*(t + CANCEL_RETRY_MS for t in self.cancels.values()))
        if self.stage == "ready":
            return earliest(self.ready_ms, self.deadline_ms)
        if self.stage == "live":
            return earliest(self.next_check_ms, self.deadline_ms) if self.spec.adaptive else self.deadline_ms
        if self.stage == "replace":
            return earliest(*(t + CANCEL_RETRY_MS for t in self.cancels.values()), self.deadline_ms)
        return None

    def progress(self, obs: Obs) -> Progress:
        filled, cash, fees = sums(obs, self.child_keys)
        return Progress(self.spec.size, filled, cash, fees, self.adjustments)

    # --- the state machine -----------------------------------------------------------------------

    def step(self, obs: Obs) -> Step[AlgoState]:
        if self.status.is_terminal:
            return Step(self)
        filled, _, _ = sums(obs, self.child_keys)
        st = self
        if st.spec.adaptive is not None and filled != st.seen_filled:
            progress_ms = obs.now_ms if filled > st.seen_filled else st.progress_ms
            st = replace(st, seen_filled=filled, progress_ms=progress_ms)
        if st.stage == "stop":
            return st._wind_down(obs)
        if st.stage == "settle":
            return st._settle(obs, filled)
        if obs.cancel_requested:
            return st._stop(obs, P.CANCELLED, "cancelled by the user")
        if st.deadline_ms is not None and obs.now_ms >= st.deadline_ms:
            return st._stop(obs, P.EXPIRED, f"timeout after {(obs.now_ms - st.started_ms) // 1000} s")
        if st.stage == "replace":
            return st._replace_done(obs, filled)
        if st.stage == "live":
            view = obs.children.get(st.live)
            if view is None:
                return Step(st)
            if not view.final:
                a = st.spec.adaptive
                if a is None or not view.cancellable or obs.now_ms < st.next_check_ms:
                    return Step(st)
                return replace(st, next_check_ms=obs.now_ms + a.check_ms)._review(obs, filled, view)
            if view.state is OrderState.REJECTED:
                return st._stop(obs, P.FAILED, f"tranche refused: {view.error or 'rejected'}", Action.FAIL)
            remaining = st.spec.size - filled
            if remaining <= 0:
                return st._finish(obs, filled)
            ended = "filled" if view.state is OrderState.FILLED else f"ended {view.state}"
            return st._pause(obs, f"tranche {st.live} {ended} ({fmt_micro(view.filled)}); {fmt_micro(remaining)} left")
        # ready
        if obs.now_ms < st.ready_ms:
            return Step(st)
        remaining = st.spec.size - filled
        if remaining <= 0:
            return st._finish(obs, filled)
        return st._next_tranche(obs, filled, remaining)

    def _pause(self, obs: Obs, why: str) -> Step[AlgoState]:
        lo, hi = self.spec.pause_ms
        pause = rng.between(self.seed, self.draws, lo, hi)
        st = replace(self, stage="ready", live="", ready_ms=obs.now_ms + pause, draws=self.draws + 1)
        return Step(st, (), (Decision(obs.now_ms, Action.PAUSE, f"{why}, next in {pause} ms"),))

    def _next_tranche(self, obs: Obs, filled: Micro, remaining: Micro) -> Step[AlgoState]:
        a = self.spec.adaptive
        price = self.price
        if a is not None:
            top = obs.books.get(self.spec.token_id)
            found = entry_price(self.spec.side, self.inst.prices, top, a.limit, price or None, self.spec.post_only)
            if found is None:
                decisions, last = dedup_wait(self.last_wait, obs, "no valid passive price", None)
                return Step(replace(self, last_wait=last, ready_ms=obs.now_ms + a.check_ms), (), decisions)
            price = found
        size = tranche_size(
            self.spec.display,
            self.spec.variance_bps,
            self.lo,
            self.hi,
            remaining,
            self.inst.min_size,
            rng.draw(self.seed, self.draws),
        )
        if size == 0:
            reason = f"remainder {fmt_micro(remaining)} is below the market minimum"
            return self._end(obs, P.DONE, reason, ())
        st = replace(self, tranches=self.tranches + 1, draws=self.draws + 1)
        reason = f"tranche {st.tranches}: {fmt_micro(filled)} filled, {fmt_micro(remaining)} left"
        return st._place(obs, price, size, Action.PLACE, reason)

    def _place(self, obs: Obs, price: Micro, size: Micro, action: Action, reason: str) -> Step[AlgoState]:
        key = f"t{len(self.child_keys) + 1}"
        place = Place(
            key,
            self.spec.token_id,
            self.spec.side,
            price,
            size=size,
            post_only=self.spec.post_only,
            lifetime_s=self.spec.lifetime_s,
        )
        st = replace(self, stage="live", live=key, child_keys=(*self.child_keys, key), price=price)
        if self.spec.adaptive is not None:
            check = obs.now_ms + self.spec.adaptive.check_ms
            st = replace(st, progress_ms=obs.now_ms, next_check_ms=check, last_wait="")
        return Step(st, (place,), (Decision(obs.now_ms, action, reason, price, size),))

    # --- adaptive pricing ------------------------------------------------------------------------

    def _review(self, obs: Obs, filled: Micro, view: ChildView) -> Step[AlgoState]:
        a = self.spec.adaptive
        assert a is not None
        params = a.params
        remaining = self.spec.size - filled
        # Cancelling the last tranche when the parent's remainder is below the minimum would end the
        # parent (nothing smaller can be placed) instead of moving the order.
        small = remaining < self.inst.min_size
        v = review(
            side=self.spec.side,
            grid=self.inst.prices,
            top=obs.books.get(self.spec.token_id),
            ours=self.price,
            now_ms=obs.now_ms,
            progress_ms=self.progress_ms,
            params=params,
            limit=a.limit,
            undercut_margin=a.undercut_margin,
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
        left = view.size - view.filled
        reason = f"tranche {self.tranches} ({self.live}): {v.reason}"
        return Step(replace(st, cancels=sent), cmds, (Decision(obs.now_ms, v.action, reason, v.price, left),))

    def _replace_done(self, obs: Obs, filled: Micro) -> Step[AlgoState]:
        view = obs.children.get(self.live)
        if view is None or not view.final:
            cmds, sent = cancels_for(obs, (self.live,), self.cancels)
            return Step(replace(self, cancels=sent), cmds)
        st = replace(self, price=self.pending_price, pending_price=0, cancels={})
        remaining = self.spec.size - filled
        if remaining <= 0:
            return st._finish(obs, filled)
        left = view.size - view.filled
        if left < self.inst.min_size:
            # Too little of the tranche is left to be placed on its own: the next tranche takes the price.
            return st._pause(
                obs, f"tranche {self.live} ended at the reprice ({fmt_micro(view.filled)}); {fmt_micro(remaining)} left"
            )
        reason = f"replacement of {self.live} after confirmed cancel: {fmt_micro(left)} of tranche {self.tranches}"
        return st._place(obs, st.price, left, Action.PLACE, reason)

    # --- ending ----------------------------------------------------------------------------------

    def _finish(self, obs: Obs, filled: Micro) -> Step[AlgoState]:
        st = replace(self, stage="settle", status=P.SETTLING, live="", why="filled")
        if not self.spec.await_settlement:
            return st._end(obs, P.DONE, "filled", ())
        d = Decision(obs.now_ms, Action.SETTLE, "everything matched; waiting for final fills", None, filled)
        return st._settle(obs, filled, (d,))

    def _settle(self, obs: Obs, filled: Micro, decisions: tuple[Decision, ...] = ()) -> Step[AlgoState]:
        if not all_final(obs, self.child_keys) or any_provisional(obs, self.child_keys):
            return Step(self, (), decisions)
        if filled < self.spec.size:
            if self.deadline_ms is not None and obs.now_ms >= self.deadline_ms:
                return self._end(obs, P.EXPIRED, "timeout after a settlement failure", decisions)
            st = replace(self, stage="ready", status=P.WORKING, ready_ms=obs.now_ms)
            left = fmt_micro(self.spec.size - filled)
            return Step(st, (), (*decisions, Decision(obs.now_ms, Action.RESUME, f"a fill was voided: {left} to redo")))
        return self._end(obs, P.DONE, "filled", decisions)

    def _stop(self, obs: Obs, outcome: ParentState, reason: str, action: Action = Action.STOP) -> Step[AlgoState]:
        st = replace(self, stage="stop", status=P.STOPPING, outcome=outcome, why=reason)
        step = st._wind_down(obs)
        price = (self.price or None) if self.spec.adaptive is not None else None
        return Step(step.state, step.commands, (Decision(obs.now_ms, action, reason, price), *step.decisions))

    def _wind_down(self, obs: Obs) -> Step[AlgoState]:
        cmds, sent = cancels_for(obs, self.child_keys, self.cancels)
        st = replace(self, cancels=sent)
        if cmds or not all_final(obs, self.child_keys):
            return Step(st, cmds)
        if self.spec.await_settlement and any_provisional(obs, self.child_keys):
            return Step(st)
        return st._end(obs, self.outcome, self.why, ())

    def _end(self, obs: Obs, outcome: ParentState, reason: str, decisions: tuple[Decision, ...]) -> Step[AlgoState]:
        filled, _, _ = sums(obs, self.child_keys)
        st = replace(self, stage="end", status=outcome, why=reason, live="")
        d = Decision(obs.now_ms, Action.DONE, f"{outcome}: {reason}; filled {fmt_micro(filled)}", None, filled)
        cmds: tuple[Command, ...] = (Done(outcome, reason),)
        return Step(st, cmds, (*decisions, d))
