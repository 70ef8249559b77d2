"""Baskets: several legs that are only worth having together — YES + NO complete sets, the YES tokens of
every outcome of a neg-risk event — executed so that a failed leg never leaves naked risk behind.

SEQUENTIAL: post a leg (GTC at its limit; it takes what the book offers up to the limit and rests the
rest), confirm it filled, then the next leg. A leg not filled within `leg_timeout_ms` is cancelled (cancel
confirmed, final fills counted) and the basket is abandoned.
PARALLEL: every leg at once, FOK, in one request. Each FOK is priced at the level the book must be walked
to for its size (never beyond the leg's limit), so an intact book fills it exactly; a leg the book cannot
fill is killed by the venue.

When the basket is not complete — a leg killed or timed out, a cancel, the timeout, or a settlement failure
voiding a fill after the fact — the complete part is kept (the largest number of whole baskets the fills
make) and everything beyond it is a naked leg, handed to the unwinder (`unwinder.py`): sold back or
matched with its complement, within the loss limit, with the legging cost reported.

With `await_settlement` (default) the basket finishes only once every fill is final, so a settlement
failure is caught before the parent reports DONE. Unwinding starts at once (naked risk does not wait for
settlement); a void arriving after the unwind shows as residual exposure rather than a second unwind.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from enum import StrEnum
from fractions import Fraction

from polyoms.algos import unwinder as uw
from polyoms.algos.base import (
    CANCEL_RETRY_MS,
    LOT,
    Action,
    AlgoConfigError,
    AlgoState,
    Command,
    Decision,
    Done,
    Instrument,
    LegStatus,
    Obs,
    ParentState,
    Place,
    Progress,
    StatusState,
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
from polyoms.algos.unwinder import UnwindPolicy
from polyoms.core.enums import OrderType, Side
from polyoms.core.units import MICRO, Micro, fmt_micro
from polyoms.oms.state import OrderState

P = ParentState


class LegMode(StrEnum):
    SEQUENTIAL = "SEQUENTIAL"
    PARALLEL = "PARALLEL"


@dataclass(frozen=True, slots=True)
class LegSpec:
    token_id: str
    size: Micro
    limit: Micro
    """Worst price for this leg (max for a BUY, min for a SELL)."""
    side: Side = Side.BUY

    def __post_init__(self) -> None:
        object.__setattr__(self, "side", side_of(self.side))


@dataclass(frozen=True, slots=True)
class MultiLegSpec:
    legs: tuple[LegSpec, ...]
    mode: LegMode = LegMode.SEQUENTIAL
    leg_timeout_ms: int = 5_000
    unwind: UnwindPolicy = field(default_factory=UnwindPolicy)
    timeout_ms: int | None = None
    await_settlement: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "legs", tuple(self.legs))
        object.__setattr__(self, "mode", LegMode(self.mode))
        require(len(self.legs) >= 2, "a basket needs at least two legs", field="legs")
        tokens = [leg.token_id for leg in self.legs]
        require(len(set(tokens)) == len(tokens), "a basket's legs must be different tokens", field="legs")
        require(self.leg_timeout_ms > 0, "leg_timeout_ms must be positive", field="leg_timeout_ms")
        require(self.timeout_ms is None or self.timeout_ms > 0, "timeout_ms must be positive", field="timeout_ms")

    @property
    def tokens(self) -> tuple[str, ...]:
        return tuple(leg.token_id for leg in self.legs)

    @property
    def target(self) -> Micro:
        """Shares over every leg."""
        return sum(leg.size for leg in self.legs)

    @staticmethod
    def complete_set(yes: str, no: str, size: Micro, yes_limit: Micro, no_limit: Micro, **kw: object) -> MultiLegSpec:
        """Buy `size` YES and `size` NO of one market (worth exactly 1 pUSD per pair at resolution)."""
        legs = (LegSpec(yes, size, yes_limit), LegSpec(no, size, no_limit))
        return MultiLegSpec(legs, **kw)  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class MultiLegState(StatusState):
    spec: MultiLegSpec
    insts: tuple[Instrument, ...]
    started_ms: int
    deadline_ms: int | None
    stage: str = "legs"
    """legs (sequential) / parallel, stop (cancelling legs), settle, unwind, end."""
    status: ParentState = P.WORKING
    why: str = ""
    leg_keys: tuple[tuple[str, ...], ...] = ()
    current: int = 0
    leg_started_ms: int = 0
    outcome: ParentState = P.DONE
    unwinding: bool = False
    """Set once the basket was found incomplete: from then on it ends by unwinding, never as DONE."""
    exposures: tuple[uw.Exposure, ...] = ()
    tasks: tuple[uw.UnwindTask, ...] = ()
    cancels: dict[str, int] = field(default_factory=dict)

    @staticmethod
    def start(spec: MultiLegSpec, insts: tuple[Instrument, ...], now_ms: int) -> MultiLegState:
        if len(insts) != len(spec.legs):
            raise AlgoConfigError("one instrument per leg is needed")
        for leg, inst in zip(spec.legs, insts, strict=True):
            check_price(leg.limit, inst.prices, "limit")
            check_size(leg.size, "size", minimum=inst.min_size if spec.mode is LegMode.SEQUENTIAL else LOT)
        stage = "legs" if spec.mode is LegMode.SEQUENTIAL else "parallel"
        return MultiLegState(
            spec,
            insts,
            now_ms,
            None if spec.timeout_ms is None else now_ms + spec.timeout_ms,
            stage=stage,
            leg_keys=tuple(() for _ in spec.legs),
        )

    # --- AlgoState -------------------------------------------------------------------------------

    @property
    def tokens(self) -> tuple[str, ...]:
        out = [i.token_id for i in self.insts] + [i.complement for i in self.insts if i.complement]
        return tuple(dict.fromkeys(out))

    @property
    def keys(self) -> tuple[str, ...]:
        return (*(k for ks in self.leg_keys for k in ks), *(c.key for t in self.tasks for c in t.children))

    @property
    def entry_keys(self) -> tuple[str, ...]:
        return tuple(k for ks in self.leg_keys for k in ks)

    @property
    def wake_ms(self) -> int | None:
        if self.status.is_terminal:
            return None
        retries = [t + CANCEL_RETRY_MS for t in self.cancels.values()]
        if self.stage == "legs":
            return earliest(self.leg_started_ms + self.spec.leg_timeout_ms, self.deadline_ms, *retries)
        if self.stage == "parallel":
            return self.deadline_ms
        if self.stage == "stop":
            return earliest(*retries)
        if self.stage == "unwind":
            return earliest(*(t.next_try_ms for t in self.tasks))
        return None

    def progress(self, obs: Obs) -> Progress:
        filled, cash, fees = sums(obs, self.entry_keys)
        return Progress(sum(leg.size for leg in self.spec.legs), filled, cash, fees, 0)

    def legs(self, obs: Obs) -> tuple[LegStatus, ...]:
        out: list[LegStatus] = []
        results = {t.index: uw.result(obs, e, t) for e, t in zip(self.exposures, self.tasks, strict=True)}
        for i, leg in enumerate(self.spec.legs):
            filled, cash, _ = sums(obs, self.leg_keys[i])
            r = results.get(i)
            naked, unwound, residual = (r.naked, r.unwound, r.residual) if r is not None else (0, 0, 0)
            out.append(
                LegStatus(
                    leg.token_id,
                    leg.side,
                    leg.size,
                    filled,
                    Fraction(cash * MICRO, filled) if filled else None,
                    naked,
                    unwound,
                    residual,
                )
            )
        return tuple(out)

    def legging_cost(self, obs: Obs) -> Fraction | None:
        if not self.exposures:
            return None
        return sum((uw.result(obs, e, t).cost for e, t in zip(self.exposures, self.tasks, strict=True)), Fraction(0))

    def complete_units(self, obs: Obs) -> Fraction:
        """Whole baskets the entry fills make (1 = the basket as specified)."""
        return min(Fraction(sums(obs, self.leg_keys[i])[0], leg.size) for i, leg in enumerate(self.spec.legs))

    # --- the state machine -----------------------------------------------------------------------

    def step(self, obs: Obs) -> Step[AlgoState]:
        if self.status.is_terminal:
            return Step(self)
        if self.stage in ("legs", "parallel"):
            if obs.cancel_requested:
                return self._abort(obs, P.CANCELLED, "cancelled by the user")
            if self.deadline_ms is not None and obs.now_ms >= self.deadline_ms:
                return self._abort(obs, P.EXPIRED, "timeout")
            return self._sequential(obs) if self.stage == "legs" else self._parallel(obs)
        if self.stage == "stop":
            cmds, sent = cancels_for(obs, self.entry_keys, self.cancels)
            st = replace(self, cancels=sent)
            if cmds or not all_final(obs, self.entry_keys):
                return Step(st, cmds)
            return st._after_legs(obs, complete=False)
        if self.stage == "settle":
            return self._settle(obs)
        if self.stage == "unwind":
            return self._unwind(obs)
        return Step(self)

    def _sequential(self, obs: Obs) -> Step[AlgoState]:
        i = self.current
        leg = self.spec.legs[i]
        keys = self.leg_keys[i]
        if not keys:
            key = f"l{i + 1}"
            place = Place(key, leg.token_id, leg.side, leg.limit, size=leg.size)
            st = replace(self, leg_keys=_with(self.leg_keys, i, key), leg_started_ms=obs.now_ms)
            why = (
                f"leg {i + 1}/{len(self.spec.legs)}: post {leg.side.name} {fmt_micro(leg.size)}"
                f" up to {fmt_micro(leg.limit)}"
            )
            return Step(st, (place,), (Decision(obs.now_ms, Action.LEG, why, leg.limit, leg.size),))
        view = obs.children.get(keys[-1])
        if view is None:
            return Step(self)
        if not view.final:
            if obs.now_ms - self.leg_started_ms >= self.spec.leg_timeout_ms:
                cmds, sent = cancels_for(obs, keys, self.cancels)
                decisions: tuple[Decision, ...] = ()
                if cmds and keys[-1] not in self.cancels:
                    why = (
                        f"leg {i + 1} not filled within {self.spec.leg_timeout_ms} ms"
                        f" ({fmt_micro(view.filled)} of {fmt_micro(leg.size)}): cancel"
                    )
                    decisions = (Decision(obs.now_ms, Action.LEG, why),)
                return Step(replace(self, cancels=sent), cmds, decisions)
            return Step(self)
        if view.state is OrderState.REJECTED:
            return self._after_legs(obs, complete=False, why=f"leg {i + 1} refused: {view.error or 'rejected'}")
        if view.filled < leg.size:
            why = f"leg {i + 1} filled {fmt_micro(view.filled)} of {fmt_micro(leg.size)} ({view.state})"
            return self._after_legs(obs, complete=False, why=why)
        avg = fmt_micro(view.cash * MICRO // view.filled)
        why = f"leg {i + 1} filled {fmt_micro(view.filled)} at {avg} avg"
        d = Decision(obs.now_ms, Action.LEG, why, None, view.filled)
        if i + 1 < len(self.spec.legs):
            st = replace(self, current=i + 1)
            nxt = st._sequential(obs)
            return Step(nxt.state, nxt.commands, (d, *nxt.decisions))
        nxt = self._after_legs(obs, complete=True)
        return Step(nxt.state, nxt.commands, (d, *nxt.decisions))

    def _parallel(self, obs: Obs) -> Step[AlgoState]:
        if not self.leg_keys[0]:
            places: list[Place] = []
            decisions: list[Decision] = []
            keys = self.leg_keys
            for i, leg in enumerate(self.spec.legs):
                top = obs.books.get(leg.token_id)
                reach = top.depth_to(leg.side, leg.size) if top is not None else None
                price = leg.limit
                if reach is not None and (reach <= leg.limit if leg.side is Side.BUY else reach >= leg.limit):
                    price = reach
                key = f"l{i + 1}"
                keys = _with(keys, i, key)
                places.append(
                    Place(key, leg.token_id, leg.side, price, size=leg.size, order_type=OrderType.FOK, batch="basket")
                )
                why = f"leg {i + 1}: FOK {leg.side.name} {fmt_micro(leg.size)} at {fmt_micro(price)}"
                decisions.append(Decision(obs.now_ms, Action.LEG, why, price, leg.size))
            return Step(replace(self, leg_keys=keys, leg_started_ms=obs.now_ms), tuple(places), tuple(decisions))
        if not all_final(obs, self.entry_keys):
            return Step(self)
        short = [
            f"leg {i + 1} {v.state} {fmt_micro(v.filled)}/{fmt_micro(leg.size)}" + (f" ({v.error})" if v.error else "")
            for i, leg in enumerate(self.spec.legs)
            if (v := obs.children[self.leg_keys[i][0]]).filled < leg.size
        ]
        if short:
            return self._after_legs(obs, complete=False, why="; ".join(short))
        return self._after_legs(obs, complete=True)

    def _abort(self, obs: Obs, outcome: ParentState, reason: str) -> Step[AlgoState]:
        st = replace(self, stage="stop", status=P.STOPPING, outcome=outcome, why=reason)
        cmds, sent = cancels_for(obs, self.entry_keys, st.cancels)
        st = replace(st, cancels=sent)
        d = Decision(obs.now_ms, Action.STOP, reason)
        if cmds or not all_final(obs, self.entry_keys):
            return Step(st, cmds, (d,))
        nxt = st._after_legs(obs, complete=False)
        return Step(nxt.state, nxt.commands, (d, *nxt.decisions))

    def _after_legs(self, obs: Obs, *, complete: bool, why: str = "") -> Step[AlgoState]:
        """Every leg is done: settle a complete basket; unwind an incomplete one now."""
        if complete:
            st = replace(self, stage="settle", status=P.SETTLING, why="basket complete")
            return st._settle(obs, (Decision(obs.now_ms, Action.SETTLE, "every leg filled"),))
        outcome = self.outcome if self.status is P.STOPPING else P.UNWOUND
        st = replace(self, outcome=outcome, why=why or self.why)
        return st._start_unwind(obs, why or self.why)

    def _settle(self, obs: Obs, decisions: tuple[Decision, ...] = ()) -> Step[AlgoState]:
        keys = self.keys
        if not all_final(obs, keys) or (self.spec.await_settlement and any_provisional(obs, keys)):
            return Step(self, (), decisions)
        if self.unwinding:  # settling the unwind itself
            return self._end(obs, decisions)
        if self.complete_units(obs) >= 1:
            return self._end(obs, decisions, P.DONE, "basket complete")
        why = "a settlement failure voided a fill"
        st = replace(self, outcome=P.UNWOUND, why=why)
        nxt = st._start_unwind(obs, why)
        return Step(nxt.state, nxt.commands, (*decisions, *nxt.decisions))

    def _start_unwind(self, obs: Obs, why: str) -> Step[AlgoState]:
        units = self.complete_units(obs)
        exposures: list[uw.Exposure] = []
        tasks: list[uw.UnwindTask] = []
        for i, leg in enumerate(self.spec.legs):
            filled, cash, _ = sums(obs, self.leg_keys[i])
            keep = int(units * leg.size)
            keep -= keep % LOT
            naked = filled - keep
            if naked >= self.spec.unwind.dust:
                exposures.append(uw.Exposure(self.insts[i], leg.side, naked, Fraction(cash * MICRO, filled)))
                tasks.append(uw.UnwindTask(i))
        st = replace(
            self, stage="unwind", status=P.UNWINDING, unwinding=True, exposures=tuple(exposures), tasks=tuple(tasks)
        )
        d = Decision(obs.now_ms, Action.UNWIND, f"{why}: keep {_units(units)} basket(s), {len(exposures)} naked leg(s)")
        nxt = st._unwind(obs)
        return Step(nxt.state, nxt.commands, (d, *nxt.decisions))

    def _unwind(self, obs: Obs) -> Step[AlgoState]:
        tasks = dict(enumerate(self.tasks))
        by_leg = {t.index: t for t in self.tasks}
        places: list[Command] = []
        decisions: list[Decision] = []
        for n, (e, t) in enumerate(zip(self.exposures, self.tasks, strict=True)):
            mined = sum(v.mined for k in self.leg_keys[t.index] if (v := obs.children.get(k)) is not None)
            e_now = replace(e, sellable=mined)
            new_t, ps, ds = uw.plan(obs, self.spec.unwind, e_now, t, uw.sold_back(obs, by_leg, t.index))
            tasks[n] = new_t
            places.extend(ps)
            decisions.extend(ds)
        st = replace(self, tasks=tuple(tasks[n] for n in range(len(self.tasks))))
        if places:
            return Step(st, tuple(places), tuple(decisions))
        if all(uw.finished(obs, self.spec.unwind, e, t) for e, t in zip(st.exposures, st.tasks, strict=True)):
            st = replace(st, stage="settle", status=P.SETTLING)
            nxt = st._settle(obs)
            return Step(nxt.state, nxt.commands, (*decisions, *nxt.decisions))
        return Step(st, (), tuple(decisions))

    def _end(
        self, obs: Obs, decisions: tuple[Decision, ...], outcome: ParentState | None = None, reason: str = ""
    ) -> Step[AlgoState]:
        if outcome is None:
            results = [uw.result(obs, e, t) for e, t in zip(self.exposures, self.tasks, strict=True)]
            residual = [r for r in results if r.residual >= self.spec.unwind.dust]
            cost = self.legging_cost(obs) or Fraction(0)
            outcome, reason = self.outcome, self.why
            if residual:
                outcome = P.FAILED
                reason = f"{reason}; residual exposure " + ", ".join(
                    f"{fmt_micro(r.residual)} of {r.token_id[:8]}…" for r in residual
                )
            reason = f"{reason}; legging cost {fmt_micro(round(cost))} pUSD"
        st = replace(self, stage="end", status=outcome, why=reason)
        cmds: tuple[Command, ...] = (Done(outcome, reason),)
        return Step(st, cmds, (*decisions, Decision(obs.now_ms, Action.DONE, f"{outcome}: {reason}")))


def _with(keys: tuple[tuple[str, ...], ...], i: int, key: str) -> tuple[tuple[str, ...], ...]:
    return tuple((*ks, key) if j == i else ks for j, ks in enumerate(keys))


def _units(units: Fraction) -> str:
    return str(units)
