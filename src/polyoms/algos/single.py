"""One order as a parent: a limit order (shares) or a marketable order (a market BUY spends pUSD up to a
worst price, bounded by min/max shares; a market SELL sells shares down to a worst price), optionally GTD
with a dead-man lifetime, optionally cancelled after `timeout_ms`. Through the same manager as the
algorithms, it gets the same status, progress, cancel and wait.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from polyoms.algos import orders
from polyoms.algos.base import (
    CANCEL_RETRY_MS,
    Action,
    AlgoState,
    Command,
    Decision,
    Done,
    Instrument,
    Obs,
    ParentState,
    Progress,
    SingleTokenSpec,
    SingleTokenState,
    Step,
    all_final,
    any_provisional,
    cancels_for,
    earliest,
    require,
    side_of,
    sums,
)
from polyoms.core.enums import OrderType, Side
from polyoms.core.errors import PolyomsError
from polyoms.core.units import MICRO, Micro, fmt_micro
from polyoms.oms.state import OrderState

P = ParentState


@dataclass(frozen=True, slots=True)
class OrderSpec(SingleTokenSpec):
    token_id: str
    side: Side
    price: Micro
    """Limit price; for FOK/FAK the worst acceptable price."""
    size: Micro = 0
    """Shares: limit orders and every SELL."""
    amount: Micro = 0
    """pUSD: market BUYs (FOK/FAK) only."""
    order_type: OrderType = OrderType.GTC
    post_only: bool = False
    lifetime_s: int = 0
    """> 0: GTD, expiring at the venue after this many seconds (a dead-man switch)."""
    min_shares: Micro | None = None
    max_shares: Micro | None = None
    timeout_ms: int | None = None
    await_settlement: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "side", side_of(self.side))
        object.__setattr__(self, "order_type", OrderType.parse(self.order_type))
        require((self.size > 0) != (self.amount > 0), "give exactly one of size (shares) or amount (pUSD)")
        if self.amount:
            require(
                self.side is Side.BUY and self.order_type.is_marketable_only,
                "an amount in pUSD is for market BUYs (FOK/FAK); limit orders and SELLs count shares",
            )
        require(self.timeout_ms is None or self.timeout_ms > 0, "timeout_ms must be positive", field="timeout_ms")

    @staticmethod
    def limit(token_id: str, side: Side | str, price: Micro, size: Micro, **kw: object) -> OrderSpec:
        return OrderSpec(token_id, side_of(side), price, size=size, **kw)  # type: ignore[arg-type]

    @staticmethod
    def market_buy(token_id: str, amount: Micro, worst_price: Micro, **kw: object) -> OrderSpec:
        kw.setdefault("order_type", OrderType.FOK)
        return OrderSpec(token_id, Side.BUY, worst_price, amount=amount, **kw)  # type: ignore[arg-type]

    @staticmethod
    def market_sell(token_id: str, shares: Micro, worst_price: Micro, **kw: object) -> OrderSpec:
        kw.setdefault("order_type", OrderType.FAK)
        return OrderSpec(token_id, Side.SELL, worst_price, size=shares, **kw)  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class SingleState(SingleTokenState):
    spec: OrderSpec
    inst: Instrument
    started_ms: int
    deadline_ms: int | None
    stage: str = "start"
    status: ParentState = P.WORKING
    why: str = ""
    child_keys: tuple[str, ...] = ()
    target: Micro = 0
    placed_ms: int = 0
    outcome: ParentState = P.DONE
    cancels: dict[str, int] = field(default_factory=dict)

    @staticmethod
    def start(spec: OrderSpec, inst: Instrument, now_ms: int) -> SingleState:
        st = SingleState(spec, inst, now_ms, None if spec.timeout_ms is None else now_ms + spec.timeout_ms)
        if spec.amount:  # checked now without the book; max_shares trims the amount at the best ask when placed
            orders.market_buy("o1", spec.token_id, spec.amount, spec.price, tick=inst.tick,
                              min_notional=inst.min_notional, grid=inst.prices, min_shares=spec.min_shares,
                              order_type=spec.order_type)  # fmt: skip
            return st
        orders.limit(
            "o1",
            spec.token_id,
            spec.side,
            spec.price,
            spec.size,
            tick=inst.tick,
            grid=inst.prices,
            order_type=spec.order_type,
            post_only=spec.post_only,
            lifetime_s=spec.lifetime_s,
        )
        return replace(st, target=spec.size)

    @property
    def wake_ms(self) -> int | None:
        if self.status.is_terminal:
            return None
        if self.stage == "stop":
            return earliest(*(t + CANCEL_RETRY_MS for t in self.cancels.values()))
        return self.deadline_ms if self.stage == "live" else None

    def progress(self, obs: Obs) -> Progress:
        filled, cash, fees = sums(obs, self.child_keys)
        return Progress(self.target, filled, cash, fees, 0)

    def step(self, obs: Obs) -> Step[AlgoState]:
        if self.status.is_terminal:
            return Step(self)
        if self.stage == "start":
            return self._place(obs)
        if self.stage == "stop":
            return self._wind_down(obs)
        view = obs.children.get(self.child_keys[0])
        if view is None:
            return Step(self)
        if self.stage == "live":
            if not view.final:
                if obs.cancel_requested:
                    return self._stop(obs, P.CANCELLED, "cancelled by the user")
                if self.deadline_ms is not None and obs.now_ms >= self.deadline_ms:
                    return self._stop(obs, P.EXPIRED, "timeout")
                return Step(self)
            st = replace(self, stage="settle", status=P.SETTLING)
            if view.state is OrderState.REJECTED:
                return st._end(obs, P.FAILED, f"refused: {view.error or 'rejected'}")
            if view.state is OrderState.EXPIRED or (view.state is OrderState.CANCELLED and self._lifetime_over(obs)):
                return st._settle(obs, P.EXPIRED, f"dead-man expiry at the venue, {fmt_micro(view.filled)} filled")
            if view.state is OrderState.CANCELLED and not view.filled:
                return st._settle(obs, P.CANCELLED, "cancelled at the venue")
            return st._settle(obs, P.DONE, f"{view.state.lower()}: {fmt_micro(view.filled)} shares")
        return self._settle(obs, self.outcome, self.why)

    def _lifetime_over(self, obs: Obs) -> bool:
        # The venue expires a GTD order at its expiration minus the 60 s security threshold, which the OMS
        # records as a cancellation: the parent knows the lifetime it asked for.
        return bool(self.spec.lifetime_s) and obs.now_ms >= self.placed_ms + self.spec.lifetime_s * 1000

    def _place(self, obs: Obs) -> Step[AlgoState]:
        s, tick = self.spec, self.inst.tick
        if s.amount:
            top = obs.books.get(s.token_id)
            try:
                place = orders.market_buy(
                    "o1",
                    s.token_id,
                    s.amount,
                    s.price,
                    tick=tick,
                    min_notional=self.inst.min_notional,
                    grid=self.inst.prices,
                    min_shares=s.min_shares,
                    max_shares=s.max_shares,
                    best_ask=top.ask if top else None,
                    order_type=s.order_type,
                )
            except PolyomsError as exc:  # e.g. max_shares at this ask leaves less than the $1 minimum
                return replace(self, stage="settle", status=P.SETTLING)._end(obs, P.FAILED, f"refused: {exc}")
            target = place.amount * MICRO // place.price
            why = f"market BUY ${fmt_micro(place.amount)} up to {fmt_micro(place.price)}"
        else:
            place = orders.limit(
                "o1",
                s.token_id,
                s.side,
                s.price,
                s.size,
                tick=tick,
                grid=self.inst.prices,
                order_type=s.order_type,
                post_only=s.post_only,
                lifetime_s=s.lifetime_s,
            )
            target = s.size
            kind = "GTD" if s.lifetime_s else s.order_type.value
            why = f"{kind} {s.side.name} {fmt_micro(s.size)}" + (
                f", dead-man expiry in {s.lifetime_s} s" if s.lifetime_s else ""
            )
        st = replace(self, stage="live", child_keys=("o1",), target=target, placed_ms=obs.now_ms)
        return Step(st, (place,), (Decision(obs.now_ms, Action.PLACE, why, place.price, place.size or None),))

    def _stop(self, obs: Obs, outcome: ParentState, reason: str) -> Step[AlgoState]:
        st = replace(self, stage="stop", status=P.STOPPING, outcome=outcome, why=reason)
        nxt = st._wind_down(obs)
        return Step(nxt.state, nxt.commands, (Decision(obs.now_ms, Action.STOP, reason), *nxt.decisions))

    def _wind_down(self, obs: Obs) -> Step[AlgoState]:
        cmds, sent = cancels_for(obs, self.child_keys, self.cancels)
        st = replace(self, cancels=sent)
        if cmds or not all_final(obs, self.child_keys):
            return Step(st, cmds)
        st = replace(st, stage="settle", status=P.SETTLING)
        return st._settle(obs, self.outcome, self.why)

    def _settle(self, obs: Obs, outcome: ParentState, reason: str) -> Step[AlgoState]:
        st = replace(self, outcome=outcome, why=reason)
        if self.spec.await_settlement and any_provisional(obs, self.child_keys):
            return Step(st)
        return st._end(obs, outcome, reason)

    def _end(self, obs: Obs, outcome: ParentState, reason: str) -> Step[AlgoState]:
        st = replace(self, stage="end", status=outcome, why=reason)
        cmds: tuple[Command, ...] = (Done(outcome, reason),)
        return Step(st, cmds, (Decision(obs.now_ms, Action.DONE, f"{outcome}: {reason}"),))
