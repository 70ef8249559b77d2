"""What every strategy shares: the frozen snapshot it sees, the quotes it wants, and its protocol.

A strategy is a pure function `decide(snapshot, params, memory) -> Decision`: from one frozen `Snapshot`
(the time, the book per token with our own orders taken out, optional reference prices, the instruments,
and the wallet as the OMS sees it) it returns the full set of quotes it wants resting now and its next
memory. It never calls the venue, never reads a clock and never sleeps; `manager.StrategyManager` builds
the snapshots and turns the difference between the quotes wanted and the orders resting into cancels and
placements. With the same snapshot, params and memory it returns the same decision.

Money is integer micro-units throughout (prices, shares, pUSD).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Generic, Protocol, TypeVar

from polyoms.algos.base import BookTop
from polyoms.core.enums import Side
from polyoms.core.units import Micro
from polyoms.core.venue import Instrument
from polyoms.oms.view import WalletView

_EMPTY: Mapping[str, Micro] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Everything a strategy may look at, frozen at `now_ms`. A token is missing from `books` while its
    book is unknown or untrusted; `reference` holds outside prices (token → micro pUSD) when there are any."""

    now_ms: int
    books: Mapping[str, BookTop]
    instruments: Mapping[str, Instrument]
    oms: WalletView
    reference: Mapping[str, Micro] = field(default_factory=lambda: _EMPTY)

    def book(self, token_id: str) -> BookTop | None:
        return self.books.get(token_id)


def snapshot(
    now_ms: int,
    books: Mapping[str, BookTop],
    instruments: Mapping[str, Instrument],
    oms: WalletView,
    reference: Mapping[str, Micro] | None = None,
) -> Snapshot:
    """A Snapshot over copies of the mappings given (later changes to them do not reach it)."""
    return Snapshot(
        now_ms,
        MappingProxyType(dict(books)),
        MappingProxyType(dict(instruments)),
        oms,
        MappingProxyType(dict(reference)) if reference else _EMPTY,
    )


@dataclass(frozen=True, slots=True)
class Quote:
    """An order the strategy wants resting: `size` shares at `price`, post-only unless said otherwise."""

    token_id: str
    side: Side
    price: Micro
    size: Micro
    post_only: bool = True


M = TypeVar("M")
P_contra = TypeVar("P_contra", contravariant=True)


@dataclass(frozen=True, slots=True)
class StrategyDecision(Generic[M]):
    """The quotes wanted now (all of them: an order not wanted is cancelled), the strategy's next memory,
    and why, for the log."""

    quotes: tuple[Quote, ...]
    memory: M
    reasons: tuple[str, ...] = ()


class Strategy(Protocol[P_contra, M]):
    """A strategy (module doc): `tokens` it watches, the `memory` it starts from, and `decide`."""

    def tokens(self, params: P_contra) -> tuple[str, ...]: ...

    def start(self, params: P_contra) -> M: ...

    def decide(self, snapshot: Snapshot, params: P_contra, memory: M) -> StrategyDecision[M]: ...
