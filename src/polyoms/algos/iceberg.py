"""Iceberg: a parent order shown one tranche at a time.

Tranches are the display size randomized by ±`variance_bps` (20 % by default), kept within
[min_tranche, max_tranche], floored to the 0.01-share lot and never more than what remains. One tranche is
live at a time; when it has filled, a random pause (1-3 s by default) passes before the next, so neither
the size nor the rhythm gives the parent away. All tranches rest at the parent's limit `price` (a price
that crosses takes at the opposite side's prices, never worse than it).

The parent's fills are its children's, as the OMS counts them (voided fills excluded). It ends
* DONE when everything matched and (by default) settled — a settlement failure voids a fill, and the
  iceberg works the voided quantity again;
* CANCELLED / EXPIRED on a user cancel or at its timeout: the live tranche is cancelled, its cancel
  confirmed and its fills (final, by default) counted, so the status says exactly what filled.
The last tranches may be resized so that no remainder below the market's minimum order size is left.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from polyoms.algos import rng
from polyoms.algos.base import (
    CANCEL_RETRY_MS,
    LOT,
    Action,
    AlgoState,
    Command,
    Decision,
    Done,
    Instrument,
    Obs,
    ParentState,
    Place,
    Progress,
    Step,
    all_final,
    any_provisional,
    cancels_for,
    check_price,
    check_size,
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
class IcebergSpec:
    token_id: str
    side: Side
    size: Micro
    """Total shares."""
    price: Micro
    """Limit price of every tranche."""
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

    def __post_init__(self) -> None:
        object.__setattr__(self, "side", side_of(self.side))
        require(0 <= self.variance_bps < 10_000, "variance_bps must be within [0, 10000)", field="variance_bps")
        lo, hi = self.pause_ms
        require(0 <= lo <= hi, f"pause_ms must be (min, max) with 0 <= min <= max, got {self.pause_ms}")
        require(self.timeout_ms is None or self.timeout_ms > 0, "timeout_ms must be positive", field="timeout_ms")
        require(self.lifetime_s >= 0, "lifetime_s must not be negative", field="lifetime_s")


@dataclass(frozen=True, slots=True)
class IcebergState(AlgoState):
    spec: IcebergSpec
    inst: Instrument
    lo: Micro
    hi: Micro
    seed: int
    started_ms: int
    deadline_ms: int | None
    stage: str = "ready"
    """ready (next tranche due at ready_ms), live, settle, stop, end."""
    status: ParentState = P.WORKING
    why: str = ""
    ready_ms: int = 0
    child_keys: tuple[str, ...] = ()
    live: str = ""
    draws: int = 0
    outcome: ParentState = P.DONE
    cancels: dict[str, int] = field(default_factory=dict)

    kind = "iceberg"

    @staticmethod
    def start(spec: IcebergSpec, inst: Instrument, now_ms: int, seed: int) -> IcebergState:
        check_price(spec.price, inst.tick, "price")
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
        )

    # --- AlgoState -------------------------------------------------------------------------------

    @property
    def phase(self) -> ParentState:
        return self.status

    @property
    def reason(self) -> str:
        return self.why

    @property
    def tokens(self) -> tuple[str, ...]:
        return (self.spec.token_id,)

    @property
    def keys(self) -> tuple[str, ...]:
        return self.child_keys

    @property
    def wake_ms(self) -> int | None:
        if self.status.is_terminal:
            return None
        if self.stage == "stop":
            return earliest(*(t + CANCEL_RETRY_MS for t in self.cancels.values()))
        if self.stage == "ready":
            return earliest(self.ready_ms, self.deadline_ms)
        if self.stage == "live":
            return self.deadline_ms
        return None

    def progress(self, obs: Obs) -> Progress:
        filled, cash, fees = sums(obs, self.child_keys)
        return Progress(self.spec.size, filled, cash, fees, 0)

    # --- the state machine -----------------------------------------------------------------------

    def step(self, obs: Obs) -> Step[AlgoState]:
        if self.status.is_terminal:
            return Step(self)
        filled, _, _ = sums(obs, self.child_keys)
        if self.stage == "stop":
            return self._wind_down(obs)
        if self.stage == "settle":
            return self._settle(obs, filled)
        if obs.cancel_requested:
            return self._stop(obs, P.CANCELLED, "cancelled by the user")
        if self.deadline_ms is not None and obs.now_ms >= self.deadline_ms:
            return self._stop(obs, P.EXPIRED, f"timeout after {(obs.now_ms - self.started_ms) // 1000} s")
        if self.stage == "live":
            view = obs.children.get(self.live)
            if view is None or not view.final:
                return Step(self)
            if view.state is OrderState.REJECTED:
                return self._stop(obs, P.FAILED, f"tranche refused: {view.error or 'rejected'}", Action.FAIL)
            remaining = self.spec.size - filled
            if remaining <= 0:
                return self._finish(obs, filled)
            lo, hi = self.spec.pause_ms
            pause = rng.between(self.seed, self.draws, lo, hi)
            st = replace(self, stage="ready", live="", ready_ms=obs.now_ms + pause, draws=self.draws + 1)
            ended = "filled" if view.state is OrderState.FILLED else f"ended {view.state}"
            why = f"tranche {self.live} {ended} ({fmt_micro(view.filled)}); {fmt_micro(remaining)} left"
            return Step(st, (), (Decision(obs.now_ms, Action.PAUSE, f"{why}, next in {pause} ms"),))
        # ready
        if obs.now_ms < self.ready_ms:
            return Step(self)
        remaining = self.spec.size - filled
        if remaining <= 0:
            return self._finish(obs, filled)
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
        key = f"t{len(self.child_keys) + 1}"
        place = Place(
            key,
            self.spec.token_id,
            self.spec.side,
            self.spec.price,
            size=size,
            post_only=self.spec.post_only,
            lifetime_s=self.spec.lifetime_s,
        )
        st = replace(self, stage="live", live=key, child_keys=(*self.child_keys, key), draws=self.draws + 1)
        reason = f"tranche {len(st.child_keys)}: {fmt_micro(filled)} filled, {fmt_micro(remaining)} left"
        return Step(st, (place,), (Decision(obs.now_ms, Action.PLACE, reason, self.spec.price, size),))

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
        return Step(step.state, step.commands, (Decision(obs.now_ms, action, reason), *step.decisions))

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
