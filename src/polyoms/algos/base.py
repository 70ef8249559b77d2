"""What every execution algorithm shares: its inputs, its commands, its decision log, its outcome.

An algorithm is a frozen state object with a pure `step(obs) -> Step`: given an `Obs` (the time, the
views of its own child orders as the OMS knows them, the top of book per token with our own resting
orders taken out, the bankroll) it returns its next state, the commands to execute (`Place`, `Cancel`,
`Done`) and the decisions it took, each with a reason. It never calls the venue, never reads a clock
and never sleeps: `parents.ParentManager` executes the commands through the OMS and steps it again when
something changes or when the time it asked for (`wake_ms`) has come. `step` is called whenever anything
may have changed, so with the same observation it must ask for nothing new (idempotent).

Children are named by the algorithm (`Place.key`, unique within a parent) so that a decision can refer
to an order before the venue has acknowledged it; the driver maps keys to order ids.

Money is integer micro-units throughout (prices, shares, pUSD); probabilities are Fractions.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from fractions import Fraction
from typing import Any, Final, Generic, Protocol, TypeVar

from polyoms.core.enums import OrderType, Side
from polyoms.core.errors import ConfigError
from polyoms.core.units import MICRO, Micro, fmt_micro
from polyoms.core.venue import Instrument as Instrument  # re-exported: the algorithms take the port's instrument
from polyoms.core.venue import PriceGrid
from polyoms.oms.state import OrderState

LOT: Final = 10_000
"""Sizes carry at most two decimals: 0.01 share (or pUSD) in micro-units."""
CENT: Final = 10_000
"""One cent of pUSD (a price step of 0.01) in micro-units."""


class AlgoConfigError(ConfigError):
    """An algorithm specification that cannot be executed as given (checked before anything is sent)."""


class ParentState(StrEnum):
    WORKING = "WORKING"
    STOPPING = "STOPPING"
    """Cancelling its children before it ends (cancel, timeout, give-up)."""
    SETTLING = "SETTLING"
    """Everything matched; waiting for the fills to be final (a FAILED settlement voids a fill)."""
    UNWINDING = "UNWINDING"
    DONE = "DONE"
    CANCELLED = "CANCELLED"
    EXPIRED = "EXPIRED"
    GAVE_UP = "GAVE_UP"
    UNWOUND = "UNWOUND"
    """A basket that could not be completed; its naked legs were flattened."""
    FAILED = "FAILED"

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL


TERMINAL: Final = frozenset(
    {
        ParentState.DONE,
        ParentState.CANCELLED,
        ParentState.EXPIRED,
        ParentState.GAVE_UP,
        ParentState.UNWOUND,
        ParentState.FAILED,
    }
)


class Action(StrEnum):
    """The verbs of the decision log."""

    PLACE = "PLACE"
    WAIT = "WAIT"
    RAISE_BID = "RAISE_BID"
    LOWER_ASK = "LOWER_ASK"
    GIVE_UP = "GIVE_UP"
    REPRICE = "REPRICE"
    REFRESH = "REFRESH"
    PAUSE = "PAUSE"
    RESIZE = "RESIZE"
    NO_EDGE = "NO_EDGE"
    STOP = "STOP"
    SETTLE = "SETTLE"
    RESUME = "RESUME"
    LEG = "LEG"
    UNWIND = "UNWIND"
    DONE = "DONE"
    FAIL = "FAIL"


@dataclass(frozen=True, slots=True)
class Decision:
    ts_ms: int
    action: Action
    reason: str
    price: Micro | None = None
    size: Micro | None = None

    def __str__(self) -> str:
        extra = ""
        if self.price is not None:
            extra += f" @{fmt_micro(self.price)}"
        if self.size is not None:
            extra += f" x{fmt_micro(self.size)}"
        return f"{self.action}{extra}: {self.reason}"


# --- observations ----------------------------------------------------------------------------------

Level = tuple[Micro, Micro]


@dataclass(frozen=True, slots=True)
class BookTop:
    """One token's book as others quote it (our own resting orders taken out), best level first."""

    token_id: str
    bids: tuple[Level, ...] = ()
    asks: tuple[Level, ...] = ()

    @property
    def bid(self) -> Micro | None:
        return self.bids[0][0] if self.bids else None

    @property
    def ask(self) -> Micro | None:
        return self.asks[0][0] if self.asks else None

    @property
    def bid_size(self) -> Micro:
        return self.bids[0][1] if self.bids else 0

    @property
    def ask_size(self) -> Micro:
        return self.asks[0][1] if self.asks else 0

    def best(self, side: Side) -> Micro | None:
        """Best price on `side`'s own side of the book (bids for BUY, asks for SELL)."""
        return self.bid if side is Side.BUY else self.ask

    def opposite(self, side: Side) -> Micro | None:
        """Best price an order of `side` would take (asks for BUY, bids for SELL)."""
        return self.ask if side is Side.BUY else self.bid

    @property
    def mid(self) -> Fraction | None:
        if self.bid is None or self.ask is None:
            return None
        return Fraction(self.bid + self.ask, 2)

    def depth_to(self, side: Side, size: Micro) -> Micro | None:
        """The worst price a taker of `side` reaches to get `size` shares, or None if the book is short."""
        left = size
        for price, qty in self.asks if side is Side.BUY else self.bids:
            left -= qty
            if left <= 0:
                return price
        return None


@dataclass(frozen=True, slots=True)
class ChildView:
    """One child order as the OMS knows it. Fill sums exclude voided fills."""

    key: str
    order_id: str
    token_id: str
    side: Side
    price: Micro
    size: Micro
    state: OrderState
    filled: Micro = 0
    cash: Micro = 0
    """pUSD of the fills before fees."""
    fees: Micro = 0
    confirmed: Micro = 0
    """Shares in CONFIRMED fills (final)."""
    mined: Micro = 0
    """Shares in MINED or CONFIRMED fills (the venue lets them be sold)."""
    pending_cancel: bool = False
    awaiting_fills: bool = False
    error: str = ""

    @property
    def is_open(self) -> bool:
        return self.state in _OPEN

    @property
    def final(self) -> bool:
        """Terminal, and every fill the venue announced for it is in."""
        return not self.is_open and not self.awaiting_fills

    @property
    def provisional(self) -> Micro:
        return self.filled - self.confirmed

    @property
    def cancellable(self) -> bool:
        """Acknowledged and still working: a cancel now reaches an order the venue has."""
        return self.state in _CANCELLABLE and not self.pending_cancel


_OPEN: Final = frozenset({OrderState.SUBMITTING, OrderState.UNKNOWN, OrderState.LIVE, OrderState.PARTIALLY_FILLED})
_CANCELLABLE: Final = frozenset({OrderState.LIVE, OrderState.PARTIALLY_FILLED})


@dataclass(frozen=True, slots=True)
class Obs:
    now_ms: int
    children: Mapping[str, ChildView] = field(default_factory=dict)
    books: Mapping[str, BookTop] = field(default_factory=dict)
    """Per token; a token is missing while its book is unknown or untrusted."""
    bankroll: Micro | None = None
    """pUSD this parent may size against: available + what its own open orders reserve."""
    cancel_requested: bool = False


# --- commands ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Place:
    """A child order. Limit orders and sells count shares (`size`); a market BUY spends `amount` pUSD
    with `price` as the worst acceptable price. `lifetime_s` > 0 makes a resting order GTD, expiring that
    many seconds from now at the venue even if nobody is left to cancel it (a dead-man switch)."""

    key: str
    token_id: str
    side: Side
    price: Micro
    size: Micro = 0
    amount: Micro = 0
    order_type: OrderType = OrderType.GTC
    post_only: bool = False
    lifetime_s: int = 0
    batch: str = ""
    """Places of one step sharing a non-empty batch go to the venue in one request (all admitted or none)."""

    @property
    def is_market_buy(self) -> bool:
        return self.amount > 0


@dataclass(frozen=True, slots=True)
class Cancel:
    key: str


@dataclass(frozen=True, slots=True)
class Done:
    state: ParentState
    reason: str


Command = Place | Cancel | Done

S = TypeVar("S", bound="AlgoState")


@dataclass(frozen=True, slots=True)
class Step(Generic[S]):
    state: S
    commands: tuple[Command, ...] = ()
    decisions: tuple[Decision, ...] = ()


@dataclass(frozen=True, slots=True)
class Progress:
    """A parent's numbers, derived from its children's fills."""

    target: Micro
    filled: Micro
    cash: Micro
    fees: Micro
    adjustments: int = 0

    @property
    def remaining(self) -> Micro:
        return max(self.target - self.filled, 0)

    @property
    def avg_price(self) -> Fraction | None:
        return Fraction(self.cash * MICRO, self.filled) if self.filled else None


@dataclass(frozen=True, slots=True)
class LegStatus:
    """One leg of a basket: what it filled, at what average price, and what was unwound of it."""

    token_id: str
    side: Side
    size: Micro
    filled: Micro
    avg_price: Fraction | None
    naked: Micro = 0
    unwound: Micro = 0
    residual: Micro = 0


class AlgoSpec(Protocol):
    """What the driver reads of any algorithm's spec (each algorithm's spec is a frozen dataclass,
    registered with its algorithm in `catalog`)."""

    @property
    def tokens(self) -> tuple[str, ...]:
        """The tokens it trades, in order."""

    @property
    def target(self) -> Micro:
        """What it is to fill, in shares."""

    @property
    def timeout_ms(self) -> int | None: ...


class SingleTokenSpec:
    """A spec trading one token (`token_id`) for `size` shares: its `AlgoSpec` properties."""

    __slots__ = ()
    token_id: str
    size: Micro

    @property
    def tokens(self) -> tuple[str, ...]:
        return (self.token_id,)

    @property
    def target(self) -> Micro:
        return self.size


class AlgoState(ABC):
    """The interface the driver needs; concrete states are frozen dataclasses."""

    @abstractmethod
    def step(self, obs: Obs) -> Step[AlgoState]: ...

    @property
    @abstractmethod
    def phase(self) -> ParentState: ...

    @property
    @abstractmethod
    def reason(self) -> str: ...

    @property
    @abstractmethod
    def wake_ms(self) -> int | None:
        """When the algorithm wants to be stepped even if nothing happens (None: only on events)."""

    @property
    @abstractmethod
    def tokens(self) -> tuple[str, ...]:
        """The tokens whose books it observes."""

    @property
    @abstractmethod
    def keys(self) -> tuple[str, ...]:
        """Every child it has placed, in order."""

    @abstractmethod
    def progress(self, obs: Obs) -> Progress: ...

    def legs(self, obs: Obs) -> tuple[LegStatus, ...]:
        """Baskets only: one entry per leg."""
        return ()

    def legging_cost(self, obs: Obs) -> Fraction | None:
        """Baskets only: what flattening naked legs cost (pUSD micro-units; None when nothing was)."""
        return None


class StatusState(AlgoState):
    """`phase` and `reason` read from the `status` and `why` fields every concrete state declares."""

    __slots__ = ()
    status: ParentState
    why: str

    @property
    def phase(self) -> ParentState:
        return self.status

    @property
    def reason(self) -> str:
        return self.why


class _TokenSpec(Protocol):
    @property
    def token_id(self) -> str: ...


class SingleTokenState(StatusState):
    """An algorithm working one token: it observes `spec.token_id`'s book and places `child_keys`."""

    __slots__ = ()
    spec: _TokenSpec
    child_keys: tuple[str, ...]

    @property
    def tokens(self) -> tuple[str, ...]:
        return (self.spec.token_id,)

    @property
    def keys(self) -> tuple[str, ...]:
        return self.child_keys


@dataclass(frozen=True, slots=True)
class FailedState(AlgoState):
    """What a parent becomes when its algorithm raised: terminal, its children kept for the record."""

    inner: AlgoState
    error: str

    def step(self, obs: Obs) -> Step[AlgoState]:
        return Step(self)

    @property
    def phase(self) -> ParentState:
        return ParentState.FAILED

    @property
    def reason(self) -> str:
        return self.error

    @property
    def wake_ms(self) -> int | None:
        return None

    @property
    def tokens(self) -> tuple[str, ...]:
        return self.inner.tokens

    @property
    def keys(self) -> tuple[str, ...]:
        return self.inner.keys

    def progress(self, obs: Obs) -> Progress:
        return self.inner.progress(obs)

    def legs(self, obs: Obs) -> tuple[LegStatus, ...]:
        return self.inner.legs(obs)

    def legging_cost(self, obs: Obs) -> Fraction | None:
        return self.inner.legging_cost(obs)


# --- helpers shared by the algorithms --------------------------------------------------------------


def sums(obs: Obs, keys: Iterable[str]) -> tuple[Micro, Micro, Micro]:
    """(shares filled, pUSD before fees, fees) over the children `keys`."""
    filled = cash = fees = 0
    for k in keys:
        v = obs.children.get(k)
        if v is not None:
            filled += v.filled
            cash += v.cash
            fees += v.fees
    return filled, cash, fees


def all_final(obs: Obs, keys: Iterable[str]) -> bool:
    for k in keys:
        v = obs.children.get(k)
        if v is None or not v.final:
            return False
    return True


def any_provisional(obs: Obs, keys: Iterable[str]) -> bool:
    return any((v := obs.children.get(k)) is not None and v.provisional > 0 for k in keys)


CANCEL_RETRY_MS: Final = 3_000
"""A cancel the venue did not confirm is sent again after this long (it may have been lost)."""


def cancels_for(obs: Obs, keys: Iterable[str], sent: Mapping[str, int]) -> tuple[tuple[Cancel, ...], dict[str, int]]:
    """Cancel every child of `keys` still working, once, and again if unanswered after CANCEL_RETRY_MS.

    A child still being submitted is left alone until acknowledged: a cancel racing its own POST could
    arrive first, be refused as unknown, and leave the order resting."""
    out: list[Cancel] = []
    new = dict(sent)
    for k in keys:
        v = obs.children.get(k)
        if v is None or not v.cancellable:
            continue
        last = sent.get(k)
        if last is None or obs.now_ms - last >= CANCEL_RETRY_MS:
            out.append(Cancel(k))
            new[k] = obs.now_ms
    return tuple(out), new


def earliest(*times: int | None) -> int | None:
    present = [t for t in times if t is not None]
    return min(present) if present else None


def side_of(value: Side | str) -> Side:
    try:
        return Side.parse(value)
    except Exception as exc:
        raise AlgoConfigError(str(exc), field="side") from None


def require(cond: bool, message: str, **context: Any) -> None:
    if not cond:
        raise AlgoConfigError(message, **context)


def check_price(price: Micro, grid: PriceGrid, what: str) -> None:
    require(grid.on_grid(price), f"{what} {fmt_micro(price)} is not on the market's price grid ({grid})", field=what)


def check_size(size: Micro, what: str, *, minimum: Micro = LOT) -> None:
    require(size > 0 and size % LOT == 0, f"{what} {fmt_micro(size)} must be a positive multiple of 0.01", field=what)
    require(size >= minimum, f"{what} {fmt_micro(size)} is below the minimum {fmt_micro(minimum)}", field=what)


def dedup_wait(last: str, obs: Obs, reason: str, price: Micro | None = None) -> tuple[tuple[Decision, ...], str]:
    """A WAIT decision, logged only when its reason differs from the previous one (no log flood)."""
    if reason == last:
        return (), last
    return (Decision(obs.now_ms, Action.WAIT, reason, price),), reason
