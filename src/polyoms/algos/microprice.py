"""Micro-price pegging: keep one order inside a band around the size-weighted mid.

    micro-price = (best_bid · ask_size + best_ask · bid_size) / (bid_size + ask_size)

(exact, as a Fraction; others' sizes only — our own order would otherwise pull the price toward itself).
The micro-price leans toward the side more likely to trade next: a heavy bid pushes it up to the ask.

Every `check_ms` the order's price is compared with the micro-price: while |price − mp| ≤ mp · band_bps,
it stays; out of band, it is replaced (cancel, confirm, replace) at the target — mp shifted `offset_bps`
to our passive side, snapped to the grid on the passive side — unless the target is its current price
(the grid is coarser than the band) or a replacement happened less than `min_replace_ms` ago. The
target never passes `limit` (the aggression limit: max price for a BUY, min for a SELL), and with
`post_only` it never crosses the spread.

With `kelly`, the size is the fractional-Kelly position at the target price, recomputed as the price
moves (a RESIZE when it changes by at least the market's minimum); at zero or negative edge the order is
cancelled and nothing is placed (NO_EDGE) until the edge comes back.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from fractions import Fraction

from polyoms.algos import pricing as px
from polyoms.algos.base import (
    CANCEL_RETRY_MS,
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
from polyoms.core.enums import Side
from polyoms.core.units import Micro, fmt_micro
from polyoms.oms.state import OrderState

P = ParentState


def micro_price(bid: Micro | None, bid_size: Micro, ask: Micro | None, ask_size: Micro) -> Fraction | None:
    """(bid·ask_size + ask·bid_size) / (bid_size + ask_size), or None without a two-sided book."""
    if bid is None or ask is None or bid_size <= 0 or ask_size <= 0:
        return None
    return Fraction(bid * ask_size + ask * bid_size, bid_size + ask_size)


def book_micro_price(top: BookTop | None) -> Fraction | None:
    if top is None:
        return None
    return micro_price(top.bid, top.bid_size, top.ask, top.ask_size)


def in_band(price: Micro, mp: Fraction, band_bps: int) -> bool:
    return abs(price - mp) * 10_000 <= mp * band_bps


def target_price(mp: Fraction, side: Side, offset_bps: int, limit: Micro, grid: px.Grid) -> Micro:
    """mp moved `offset_bps` to our passive side, on the grid (floored for a BUY, ceiled for a SELL),
    never beyond `limit`."""
    raw = px.scale(mp, -offset_bps if side is Side.BUY else offset_bps)
    whole = int(raw) if side is Side.BUY else -int(-raw // 1)
    return px.bounded(side, whole, limit, grid)


@dataclass(frozen=True, slots=True)
class MicroPriceSpec(SingleTokenSpec):
    token_id: str
    side: Side
    limit: Micro
    """Aggression limit: never buy above / sell below it."""
    size: Micro = 0
    band_bps: int = 50
    offset_bps: int = 0
    check_ms: int = 500
    min_replace_ms: int = 1_000
    max_replacements: int = 100
    timeout_ms: int | None = None
    post_only: bool = False
    lifetime_s: int = 0
    kelly: KellySizing | None = None
    await_settlement: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "side", side_of(self.side))
        require(self.size > 0 or self.kelly is not None, "give a size or Kelly sizing", field="size")
        require(0 < self.band_bps < 10_000, "band_bps must be within (0, 10000)", field="band_bps")
        require(0 <= self.offset_bps < 10_000, "offset_bps must be within [0, 10000)", field="offset_bps")
        require(self.check_ms > 0 and self.min_replace_ms >= 0, "check_ms must be positive", field="check_ms")
        require(self.max_replacements >= 0, "max_replacements must not be negative", field="max_replacements")
        require(self.timeout_ms is None or self.timeout_ms > 0, "timeout_ms must be positive", field="timeout_ms")


@dataclass(frozen=True, slots=True)
class MicroPriceState(SingleTokenState):
    spec: MicroPriceSpec
    inst: Instrument
    started_ms: int
    deadline_ms: int | None
    stage: str = "start"
    """start, live, replace, settle, stop, end."""
    status: ParentState = P.WORKING
    why: str = ""
    child_keys: tuple[str, ...] = ()
    live: str = ""
    price: Micro = 0
    target: Micro = 0
    replacements: int = 0
    next_check_ms: int = 0
    last_replace_ms: int = 0
    pending_price: Micro = 0
    outcome: ParentState = P.DONE
    cancels: dict[str, int] = field(default_factory=dict)
    last_wait: str = ""
    finished_at: Micro = 0
    """What had filled when it finished: less at settlement means a fill was voided."""
    band_checks: int = 0
    in_band_checks: int = 0
    """How many reviews found the live order inside the band (a quality measure for the report)."""

    @staticmethod
    def start(spec: MicroPriceSpec, inst: Instrument, now_ms: int) -> MicroPriceState:
        check_price(spec.limit, inst.prices, "limit")
        if spec.size:
            check_size(spec.size, "size", minimum=inst.min_size)
        return MicroPriceState(
            spec, inst, now_ms, None if spec.timeout_ms is None else now_ms + spec.timeout_ms, target=spec.size
        )

    @property
    def wake_ms(self) -> int | None:
        if self.status.is_terminal:
            return None
        if self.stage in ("replace", "stop"):
            return earliest(*(t + CANCEL_RETRY_MS for t in self.cancels.values()))
        if self.stage in ("start", "live"):
            return earliest(self.next_check_ms, self.deadline_ms)
        return None

    def progress(self, obs: Obs) -> Progress:
        filled, cash, fees = sums(obs, self.child_keys)
        return Progress(self.target, filled, cash, fees, self.replacements)

    # --- the state machine -----------------------------------------------------------------------

    def step(self, obs: Obs) -> Step[AlgoState]:
        if self.status.is_terminal:
            return Step(self)
        filled, cash, fees = sums(obs, self.child_keys)
        if self.stage == "stop":
            return self._wind_down(obs)
        if self.stage == "settle":
            return self._settle(obs, filled)
        if obs.cancel_requested:
            return self._stop(obs, P.CANCELLED, "cancelled by the user")
        if self.deadline_ms is not None and obs.now_ms >= self.deadline_ms:
            return self._stop(obs, P.EXPIRED, f"timeout after {(obs.now_ms - self.started_ms) // 1000} s")
        view = obs.children.get(self.live) if self.live else None
        if self.live and view is None:
            return Step(self)
        if view is not None and view.state is OrderState.REJECTED:
            return self._stop(obs, P.FAILED, f"child refused: {view.error or 'rejected'}", Action.FAIL)
        if self.stage == "replace":
            assert view is not None
            if not view.final:
                cmds, sent = cancels_for(obs, (self.live,), self.cancels)
                return Step(replace(self, cancels=sent), cmds)
            st = replace(self, stage="start", live="", cancels={}, next_check_ms=0)
            why = "replacement after confirmed cancel"
            return st._place_at(obs, st.pending_price, filled, cash, fees, Action.PLACE, why)
        if view is not None and view.final:
            if self._target_met(filled):
                return self._finish(obs, filled)
            st = replace(self, stage="start", live="", next_check_ms=0)
            return st._from_book(obs, filled, cash, fees, Action.REFRESH, f"child {self.live} ended {view.state}")
        if obs.now_ms < self.next_check_ms:
            return Step(self)
        st = replace(self, next_check_ms=obs.now_ms + self.spec.check_ms)
        if st.stage == "start":
            return st._from_book(obs, filled, cash, fees, Action.PLACE, "start")
        assert view is not None
        if not view.cancellable:
            return Step(st)
        return st._review(obs, filled, cash, fees)

    def _target_met(self, filled: Micro) -> bool:
        return self.target > 0 and filled >= self.target

    def _sized(self, obs: Obs, price: Micro, cash: Micro, fees: Micro) -> Micro:
        k: KellySizing | None = self.spec.kelly
        if k is None:
            return self.spec.size
        bankroll = (obs.bankroll or 0) + (cash + fees if self.spec.side is Side.BUY else 0)
        return kelly_shares(k, price, bankroll, self.spec.side)

    def _from_book(
        self, obs: Obs, filled: Micro, cash: Micro, fees: Micro, action: Action, reason: str
    ) -> Step[AlgoState]:
        mp = book_micro_price(obs.books.get(self.spec.token_id))
        if mp is None:
            decisions, last = dedup_wait(self.last_wait, obs, "no two-sided book")
            return Step(replace(self, last_wait=last), (), decisions)
        price = self._target(obs, mp)
        return self._place_at(obs, price, filled, cash, fees, action, f"{reason}; micro-price {_fmt(mp)}")

    def _target(self, obs: Obs, mp: Fraction) -> Micro:
        s = self.spec
        grid = self.inst.prices
        price = target_price(mp, s.side, s.offset_bps, s.limit, grid)
        if s.post_only:
            top = obs.books.get(s.token_id)
            price = px.passive(s.side, price, top.opposite(s.side) if top else None, grid)
        return price

    def _place_at(
        self, obs: Obs, price: Micro, filled: Micro, cash: Micro, fees: Micro, action: Action, reason: str
    ) -> Step[AlgoState]:
        grid = self.inst.prices
        valid = grid.min_price <= price <= grid.max_price
        target = self._sized(obs, price, cash, fees) if valid else 0
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
                return Step(replace(st, stage="start", live="", last_wait=last), (), decisions)
        elif remaining < self.inst.min_size or not valid:
            if filled > 0:
                return st._finish(obs, filled, "filled" if remaining <= 0 else "remainder below the market minimum")
            decisions, last = dedup_wait(st.last_wait, obs, f"no valid order at {fmt_micro(price)}", price)
            return Step(replace(st, stage="start", live="", last_wait=last), (), decisions)
        key = f"m{len(st.child_keys) + 1}"
        place = Place(
            key,
            self.spec.token_id,
            self.spec.side,
            price,
            size=remaining,
            post_only=self.spec.post_only,
            lifetime_s=self.spec.lifetime_s,
        )
        st = replace(st, stage="live", live=key, price=price, child_keys=(*st.child_keys, key), last_wait="")
        return Step(st, (place,), (Decision(obs.now_ms, action, reason, price, remaining),))

    def _review(self, obs: Obs, filled: Micro, cash: Micro, fees: Micro) -> Step[AlgoState]:
        s = self.spec
        mp = book_micro_price(obs.books.get(s.token_id))
        if mp is None:
            decisions, last = dedup_wait(self.last_wait, obs, "no two-sided book", self.price)
            return Step(replace(self, last_wait=last), (), decisions)
        tgt = self._target(obs, mp)
        ok = in_band(self.price, mp, s.band_bps)
        st = replace(self, band_checks=self.band_checks + 1, in_band_checks=self.in_band_checks + int(ok))
        resize = ""
        if s.kelly is not None:
            want = st._sized(obs, tgt, cash, fees) - filled
            have = st.target - filled
            if want <= 0 or abs(want - have) >= st.inst.min_size:
                resize = f"Kelly size {fmt_micro(max(want, 0))} (was {fmt_micro(have)})"
        if ok and not resize:
            why = "in band"
        elif tgt == st.price and not resize:
            why = "out of band, but the target is the current price (grid or limit)"
        elif obs.now_ms - st.last_replace_ms < s.min_replace_ms:
            why = "replacement throttled"
        elif st.replacements >= s.max_replacements:
            why = f"{st.replacements} replacements used"
        else:
            action = Action.RESIZE if resize and tgt == st.price else Action.REPRICE
            detail = resize or f"price {fmt_micro(st.price)} out of the {s.band_bps} bps band around {_fmt(mp)}"
            st = replace(
                st,
                stage="replace",
                pending_price=tgt,
                replacements=st.replacements + 1,
                last_replace_ms=obs.now_ms,
                last_wait="",
            )
            cmds, sent = cancels_for(obs, (st.live,), st.cancels)
            return Step(replace(st, cancels=sent), cmds, (Decision(obs.now_ms, action, detail, tgt),))
        decisions, last = dedup_wait(st.last_wait, obs, why, st.price)
        return Step(replace(st, last_wait=last), (), decisions)

    # --- ending ----------------------------------------------------------------------------------

    def _finish(self, obs: Obs, filled: Micro, reason: str = "filled") -> Step[AlgoState]:
        st = replace(self, stage="settle", status=P.SETTLING, live="", why=reason, finished_at=filled)
        if not self.spec.await_settlement:
            return st._end(obs, P.DONE, reason, ())
        d = Decision(obs.now_ms, Action.SETTLE, f"{reason}; waiting for final fills", None, filled)
        return st._settle(obs, filled, (d,))

    def _settle(self, obs: Obs, filled: Micro, decisions: tuple[Decision, ...] = ()) -> Step[AlgoState]:
        if not all_final(obs, self.child_keys) or any_provisional(obs, self.child_keys):
            return Step(self, (), decisions)
        if filled < self.finished_at:
            if self.deadline_ms is not None and obs.now_ms >= self.deadline_ms:
                return self._end(obs, P.EXPIRED, "timeout after a settlement failure", decisions)
            st = replace(self, stage="start", status=P.WORKING, next_check_ms=0)
            return Step(st, (), (*decisions, Decision(obs.now_ms, Action.RESUME, "a fill was voided")))
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
        st = replace(self, stage="end", status=outcome, why=reason, live="")
        cmds: tuple[Command, ...] = (Done(outcome, reason),)
        return Step(st, cmds, (*decisions, Decision(obs.now_ms, Action.DONE, f"{outcome}: {reason}")))


def _fmt(mp: Fraction) -> str:
    """A micro-price for the log, to the micro-unit (display only)."""
    return fmt_micro(round(mp))
