"""Background traders: pure decisions from (observation, own state, private info) to commands.

Every agent sees an `Observation` of one market — the top of the book in YES space, the same book
without its own orders, its own resting orders and position — and, as private information, the
hidden fair value. It answers with a `Decision`: commands (`Place`, `Cancel`) and when to wake next.
It never calls the exchange, never reads a clock (the time is in the observation) and never sleeps;
the driver (`life.market`) executes the commands. Its only side effects are on its own state and its
own seeded `random.Random`, so a seed replays a day event for event.

Models: `NoiseTaker`, `LiquidityProvider`, `InformedTrader` (background flow) and `NaiveQuoter` (a
reference strategy); their defaults are in the *Params classes.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from typing import ClassVar, Final

from polyoms.core.units import MICRO
from polyoms.exchange.fees import FeeCurve, taker_fee
from polyoms.exchange.life.fair_value import clamp_price, snap_down, snap_up

SHARE: Final = MICRO
SIZE_STEP: Final = 10_000
"""Sizes carry at most 2 decimals (0.01 share), as the SDKs round them; with prices on a tick grid
of at least 0.0001 every limit order's pUSD amount is then an exact integer of micro-pUSD."""


def shares(n: float) -> int:
    """`n` shares as micro-shares, rounded down to the size step.

    The one place where a model quantity (a size parameter, a random draw) becomes an integer size;
    amounts are then built from integers only.
    """
    micro = int(n * 100) * SIZE_STEP
    return max(micro, 0)


# --- what agents see and say ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AgentQuote:
    """One of the agent's own resting orders, in YES space."""

    order_id: str
    is_bid: bool
    price: int
    remaining: int


@dataclass(frozen=True, slots=True)
class Observation:
    """What one agent can observe about one market at `now_ms` (prices YES-space micro, sizes micro-shares)."""

    now_ms: int
    tick: int
    min_size: int
    fee: FeeCurve
    accepting: bool
    best_bid: int | None
    best_ask: int | None
    bid_size: int
    """Total size at the best bid (everyone's)."""
    ask_size: int
    other_bid: int | None
    """Best bid not counting the agent's own orders."""
    other_ask: int | None
    position: int
    """YES shares held minus NO shares held (micro-shares): the agent's exposure to YES."""
    quotes: tuple[AgentQuote, ...] = ()


@dataclass(frozen=True, slots=True)
class AgentPlace:
    """Buy (`is_bid`) or sell YES exposure at YES-space `price` for `size` micro-shares.

    Prices and sizes are exact integers: YES-space micro-prices on the market's tick grid and
    micro-shares with at most 2 decimals (the SDKs' size precision). The driver picks the concrete
    token and side — a YES-space ask is SELL YES when the agent holds YES, otherwise BUY NO at 1 − p —
    as a real trader without inventory would.

    `take=True` is a fill-and-kill order with `price` as the worst acceptable price; otherwise a GTC
    limit order (post-only when asked, so a quote that would cross is refused rather than trading).
    """

    is_bid: bool
    price: int
    size: int
    take: bool = False
    post_only: bool = False


@dataclass(frozen=True, slots=True)
class AgentCancel:
    order_id: str


Command = AgentPlace | AgentCancel


@dataclass(slots=True)
class AgentDecision:
    commands: list[Command] = field(default_factory=list)
    wake_ms: int | None = None
    """When to decide again (None: never, unless rescheduled)."""
    react_ms: int | None = None
    """An extra, one-off decision at this time on top of the regular `wake_ms` (the driver does not
    reschedule from that extra decision's `wake_ms`): a reaction in progress."""


def fee_per_share(curve: FeeCurve, price: int) -> int:
    """The taker fee for one share at `price`, exact (the exchange's own formula)."""
    if not curve.enabled:
        return 0
    return taker_fee(curve, SHARE, price, price)


def reconcile(
    quotes: tuple[AgentQuote, ...], wanted: list[tuple[bool, int, int]], post_only: bool, top_up_min: int = 0
) -> list[Command]:
    """Commands that turn the resting `quotes` into `wanted` (is_bid, price, size) levels.

    A resting order at a wanted price is kept whatever its remaining size — cancelling and re-placing
    it would send it to the back of the queue. Everything else is cancelled first (freeing its
    reservation), then the missing levels are placed, nearest the touch first.

    `top_up_min > 0`: every order at a wanted price is kept, and a level whose orders add up to at
    least `top_up_min` less than wanted gets one more order for the difference (at the back of the
    queue, as a real quoter adding size does). Otherwise one order per level is kept, duplicates go.
    """
    want: dict[tuple[bool, int], int] = {}
    for is_bid, price, size in wanted:
        want.setdefault((is_bid, price), size)
    have: dict[tuple[bool, int], int] = {}
    cancels: list[Command] = []
    for q in quotes:
        key = (q.is_bid, q.price)
        if key in want and (top_up_min or key not in have):
            have[key] = have.get(key, 0) + q.remaining
        else:
            cancels.append(AgentCancel(q.order_id))
    places: list[Command] = []
    for (b, p), s in want.items():
        held = have.get((b, p))
        if held is None:
            if s > 0:
                places.append(AgentPlace(b, p, s, post_only=post_only))
        elif top_up_min and s - held >= top_up_min:
            short = s - held
            places.append(AgentPlace(b, p, short - short % SIZE_STEP, post_only=post_only))
    return cancels + places


def _ladder(center: float, half_spread: int, levels: int, step: int, obs: Observation) -> list[tuple[bool, int, int]]:
    """(is_bid, grid price, level) of a symmetric ladder around `center`, never crossing the others' touch."""
    out: list[tuple[bool, int, int]] = []
    tick = obs.tick
    c = int(center)  # the float estimate becomes an integer micro-price here, once
    lo, hi = tick, MICRO - tick
    for i in range(levels):
        bid = snap_down(c - half_spread - i * step, tick)
        if obs.other_ask is not None and bid >= obs.other_ask:
            bid = obs.other_ask - tick * (i + 1)
        if lo <= bid <= hi:
            out.append((True, bid, i))
        ask = snap_up(c + half_spread + i * step, tick)
        if obs.other_bid is not None and ask <= obs.other_bid:
            ask = obs.other_bid + tick * (i + 1)
        if lo <= ask <= hi:
            out.append((False, ask, i))
    return out


class Agent:
    """Base of every background trader: a name, a role, its own random stream and its funding."""

    role: ClassVar[str] = "agent"

    def __init__(self, name: str, rng: random.Random) -> None:
        self.name = name
        self.rng = rng

    def funding(self) -> tuple[int, int]:
        """(pUSD, full sets of YES+NO) to fund the agent's account with, micro-units."""
        return (0, 0)

    def first_wake(self, now_ms: int) -> int:
        """When to decide first; spread out so agents do not start in lockstep."""
        return now_ms + 1 + int(self.rng.random() * 5_000)

    def decide(self, obs: Observation, fair: int) -> AgentDecision:
        raise NotImplementedError

    def on_fill(self, now_ms: int, is_bid: bool, size: int) -> int | None:
        """Someone traded `size` micro-shares against the agent's resting YES-space bid (`is_bid`) or
        ask. Returns when to make an extra decision (a reaction), or None. Default: no reaction."""
        return None


# --- noise takers -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NoiseParams:
    rate_per_min: float = 1.0
    """Mean arrivals per minute (Poisson)."""
    size_median: float = 15.0
    """Median order size in shares (log-normal)."""
    size_sigma: float = 0.9
    max_size: float = 400.0
    slippage_ticks: int = 2
    """How far through the touch a taker is willing to trade."""
    buy_share: float = 0.5
    pusd: int = 500_000 * MICRO


class NoiseTaker(Agent):
    """Uninformed flow: Poisson arrivals, random side, log-normal size, marketable FAK a few ticks
    through the touch. It pays the spread (and taker fees) and is who liquidity providers earn from."""

    role = "noise"

    def __init__(self, name: str, rng: random.Random, params: NoiseParams = NoiseParams()) -> None:
        super().__init__(name, rng)
        self.params = params
        self._gap_ms = 60_000.0 / params.rate_per_min if params.rate_per_min > 0 else math.inf

    def funding(self) -> tuple[int, int]:
        return (self.params.pusd, 0)

    def first_wake(self, now_ms: int) -> int:
        return now_ms + 1 + int(self.rng.expovariate(1.0 / self._gap_ms))

    def decide(self, obs: Observation, fair: int) -> AgentDecision:
        p, rng = self.params, self.rng
        wake = obs.now_ms + 1 + int(rng.expovariate(1.0 / self._gap_ms))
        # Draw side and size every time, traded or not, so one empty book does not shift the stream.
        is_bid = rng.random() < p.buy_share
        size = shares(min(p.max_size, rng.lognormvariate(math.log(p.size_median), p.size_sigma)))
        size = max(size, obs.min_size)
        if not obs.accepting:
            return AgentDecision([], wake)
        slip = p.slippage_ticks * obs.tick
        if is_bid:
            if obs.best_ask is None:
                return AgentDecision([], wake)
            worst = clamp_price(obs.best_ask + slip, obs.tick)
        else:
            if obs.best_bid is None:
                return AgentDecision([], wake)
            worst = clamp_price(obs.best_bid - slip, obs.tick)
        return AgentDecision([AgentPlace(is_bid, worst, size, take=True)], wake)


# --- liquidity providers ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LPParams:
    requote_ms: int = 15_000
    """Mean time between requotes; each gap is uniform in [0.5, 1.5] × this."""
    half_spread: int = 5_000
    """Distance from the estimate to the first bid / ask before snapping outwards to the grid (micro)."""
    levels: int = 3
    level_step: int = 10_000
    size: float = 60.0
    """Shares at the first level; level i quotes (i + 1) × this."""
    lag_ms: int = 120_000
    """Time constant of the estimate's exponential filter towards the hidden fair value."""
    noise: int = 3_000
    """Std of the estimate's error at each requote (micro-probability)."""
    skew_per_kshare: int = 3_000
    """Price shift of both sides per 1,000 shares of inventory, against it (micro)."""
    max_position: float = 3_000.0
    pusd: int = 300_000 * MICRO
    sets: float = 2_000.0
    """Full sets (YES + NO) to start with, so asks can be sells from inventory."""
    react_ms: int = 1_000
    """Median delay (log-normal) from being hit to the first refill; 0 turns reactions off."""
    react_sigma: float = 0.6
    refill_first_pct: int = 50
    """The first refill re-quotes this percentage of each missing level; the rest follows later."""
    refill_ms: int = 2_500
    """Median delay (log-normal, `react_sigma`) from the first refill to the full one."""
    impact_per_kshare: int = 25_000
    """How far being hit moves the estimate, towards the aggressor, per 1,000 shares (micro): flow is
    information. The lag filter then pulls the estimate back towards the fair value."""
    impact_cap: int = 20_000
    """The most one fill moves the estimate (micro)."""


class LiquidityProvider(Agent):
    """Quotes several levels each side around its estimate of value, which follows the hidden fair value
    with a lag (an exponential filter) plus noise; skews both sides against its inventory and stops
    adding to it past a limit; requotes on a jittered timer, keeping orders whose price is unchanged so
    they keep their queue position. When hit (`on_fill`) it moves its estimate towards the aggressor
    and refills sooner: part of what is missing after a short delay, all of it after another, topping
    up levels eaten into (docs/realism.md)."""

    role = "lp"

    def __init__(self, name: str, rng: random.Random, params: LPParams = LPParams()) -> None:
        super().__init__(name, rng)
        self.params = params
        self.estimate: float | None = None
        self._last_ms = 0
        self._max_pos = shares(params.max_position)
        self._size = shares(params.size)
        self._stage = 0
        """Reaction to a fill: 0 none, 1 first (partial) refill due, 2 full refill due."""
        self._react_due = 0

    def funding(self) -> tuple[int, int]:
        return (self.params.pusd, shares(self.params.sets))

    def _delay(self, median_ms: int) -> int:
        return 1 + int(self.rng.lognormvariate(math.log(median_ms), self.params.react_sigma))

    def on_fill(self, now_ms: int, is_bid: bool, size: int) -> int | None:
        p = self.params
        if self.estimate is not None and p.impact_per_kshare:
            shift = min(p.impact_cap, p.impact_per_kshare * size / (1_000 * SHARE))
            self.estimate += -shift if is_bid else shift  # a hit bid means someone sold
        if p.react_ms <= 0 or self._stage:
            return None  # a reaction is already on its way
        self._stage = 1
        self._react_due = now_ms + self._delay(p.react_ms)
        return self._react_due

    def decide(self, obs: Observation, fair: int) -> AgentDecision:
        p, rng = self.params, self.rng
        now = obs.now_ms
        wake = now + int(p.requote_ms * (0.5 + rng.random()))
        pct, react = 100, None
        if self._stage and now >= self._react_due:
            if self._stage == 1:
                # First refill: part of each missing level now, the rest after another delay.
                pct, self._stage = p.refill_first_pct, 2
                self._react_due = react = now + self._delay(p.refill_ms)
            else:
                self._stage = 0
        err = rng.gauss(0.0, p.noise) if p.noise else 0.0
        if self.estimate is None:
            self.estimate = float(fair)
        else:
            alpha = 1.0 - math.exp(-(now - self._last_ms) / p.lag_ms) if p.lag_ms > 0 else 1.0
            self.estimate += alpha * (fair - self.estimate)
        self._last_ms = now
        if not obs.accepting:
            return AgentDecision([AgentCancel(q.order_id) for q in obs.quotes], wake, react)
        pos = obs.position
        center = self.estimate + err - p.skew_per_kshare * pos / (1_000 * SHARE)
        wanted: list[tuple[bool, int, int]] = []
        for is_bid, price, level in _ladder(center, p.half_spread, p.levels, p.level_step, obs):
            if (is_bid and pos >= self._max_pos) or (not is_bid and pos <= -self._max_pos):
                continue
            size = self._size * (level + 1) * pct // 100
            wanted.append((is_bid, price, max(size - size % SIZE_STEP, obs.min_size)))
        # With reactions on, levels eaten into are topped up (by at least the minimum size).
        top_up = obs.min_size if p.react_ms > 0 else 0
        return AgentDecision(reconcile(obs.quotes, wanted, post_only=True, top_up_min=top_up), wake, react)


# --- informed traders ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class InformedParams:
    check_ms: int = 4_000
    """Mean time between looks at the book (exponential gaps)."""
    edge: int = 10_000
    """Mispricing (micro) beyond the taker fee needed before trading."""
    clip: float = 150.0
    max_position: float = 5_000.0
    pusd: int = 1_000_000 * MICRO


class InformedTrader(Agent):
    """Knows the fair value; takes liquidity when the book is mispriced beyond an edge (plus the taker
    fee it would pay), up to a clip and a position limit. Its fills are the adverse selection resting
    quotes suffer."""

    role = "informed"

    def __init__(self, name: str, rng: random.Random, params: InformedParams = InformedParams()) -> None:
        super().__init__(name, rng)
        self.params = params
        self._clip = shares(params.clip)
        self._max_pos = shares(params.max_position)

    def funding(self) -> tuple[int, int]:
        return (self.params.pusd, 0)

    def first_wake(self, now_ms: int) -> int:
        return now_ms + 1 + int(self.rng.expovariate(1.0 / self.params.check_ms))

    def decide(self, obs: Observation, fair: int) -> AgentDecision:
        p = self.params
        wake = obs.now_ms + 1 + int(self.rng.expovariate(1.0 / p.check_ms))
        if not obs.accepting:
            return AgentDecision([], wake)
        tick, pos = obs.tick, obs.position
        ask, bid = obs.best_ask, obs.best_bid
        if ask is not None and pos < self._max_pos and ask + fee_per_share(obs.fee, ask) + p.edge <= fair:
            # Pay at most fair − edge − fee: every share bought is expected to be worth more.
            worst = clamp_price(snap_down(fair - p.edge - fee_per_share(obs.fee, fair), tick), tick)
            size = min(self._clip, self._max_pos - pos)
            if worst >= ask and size >= SIZE_STEP:
                return AgentDecision([AgentPlace(True, worst, size - size % SIZE_STEP, take=True)], wake)
        elif bid is not None and pos > -self._max_pos and bid - fee_per_share(obs.fee, bid) - p.edge >= fair:
            worst = clamp_price(snap_up(fair + p.edge + fee_per_share(obs.fee, fair), tick), tick)
            size = min(self._clip, self._max_pos + pos)
            if worst <= bid and size >= SIZE_STEP:
                return AgentDecision([AgentPlace(False, worst, size - size % SIZE_STEP, take=True)], wake)
        return AgentDecision([], wake)


# --- the reference strategy ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NaiveParams:
    half_spread: int = 10_000
    size: float = 50.0
    requote_ms: int = 10_000
    pusd: int = 200_000 * MICRO


class NaiveQuoter(Agent):
    """Quotes the others' mid ± a fixed half spread, fixed size, on a fixed timer. Knows nothing.

    A reference strategy, not background flow: it ignores value and inventory. Tests use it to show
    that adverse selection is real."""

    role = "naive"

    def __init__(self, name: str, rng: random.Random, params: NaiveParams = NaiveParams()) -> None:
        super().__init__(name, rng)
        self.params = params
        self._size = shares(params.size)

    def funding(self) -> tuple[int, int]:
        return (self.params.pusd, 0)

    def decide(self, obs: Observation, fair: int) -> AgentDecision:
        p = self.params
        wake = obs.now_ms + p.requote_ms
        ob, oa = obs.other_bid, obs.other_ask
        if not obs.accepting or ob is None or oa is None:
            return AgentDecision([AgentCancel(q.order_id) for q in obs.quotes], wake)
        tick = obs.tick
        # Twice the mid keeps a half-tick mid exact; the quotes are snapped outwards.
        bid = snap_down((ob + oa - 2 * p.half_spread) // 2, tick)
        ask = snap_up(-(-(ob + oa + 2 * p.half_spread) // 2), tick)
        wanted: list[tuple[bool, int, int]] = []
        if tick <= bid < oa:
            wanted.append((True, bid, self._size))
        if ob < ask <= MICRO - tick:
            wanted.append((False, ask, self._size))
        return AgentDecision(reconcile(obs.quotes, wanted, post_only=True), wake)
