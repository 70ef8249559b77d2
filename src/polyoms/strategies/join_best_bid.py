"""Join the best bid: one post-only BUY of a fixed size at the best bid of one token, capped by a position.

The example strategy: the smallest complete path from a snapshot to a resting quote. It bids `size`
shares at the best bid others show (our own orders are not in the snapshot's book, so the quote follows
the others' best bid down as well as up), less whatever the position (confirmed plus provisional)
already holds above `max_position - size`, in the instrument's lots. No bid, a crossed book, an
unknown instrument or a size under the instrument's minimum: no quote (any resting one is cancelled).
The cap holds up to the manager's size tolerance (an order kept within it may be that much larger).
"""

from __future__ import annotations

from dataclasses import dataclass

from polyoms.core.enums import Side
from polyoms.core.errors import InputError
from polyoms.core.units import Micro, fmt_micro
from polyoms.strategies.base import Quote, Snapshot, StrategyDecision


@dataclass(frozen=True, slots=True)
class JoinBestBidParams:
    token_id: str
    size: Micro
    """Shares per quote."""
    max_position: Micro
    """The most shares (confirmed plus provisional) it buys up to."""

    def __post_init__(self) -> None:
        if not self.token_id:
            raise InputError("join-best-bid needs a token", field="token_id")
        if self.size <= 0:
            raise InputError(f"join-best-bid size must be positive, got {fmt_micro(self.size)}", field="size")
        if self.max_position < 0:
            raise InputError(
                f"join-best-bid max_position must not be negative, got {fmt_micro(self.max_position)}",
                field="max_position",
            )


def _none(reason: str) -> StrategyDecision[None]:
    return StrategyDecision((), None, (reason,))


class JoinBestBid:
    """The strategy (module doc); it keeps no memory."""

    __slots__ = ()

    def tokens(self, params: JoinBestBidParams) -> tuple[str, ...]:
        return (params.token_id,)

    def start(self, params: JoinBestBidParams) -> None:
        return None

    def decide(self, snapshot: Snapshot, params: JoinBestBidParams, memory: None) -> StrategyDecision[None]:
        token = params.token_id
        instrument = snapshot.instruments.get(token)
        if instrument is None:
            return _none(f"no instrument for token {token}")
        book = snapshot.book(token)
        bid = book.bid if book is not None else None
        if book is None or bid is None:
            return _none("no bid to join")
        if book.ask is not None and bid >= book.ask:
            return _none(f"crossed book: bid {fmt_micro(bid)} >= ask {fmt_micro(book.ask)}")
        held = snapshot.oms.position(token).total
        size = min(params.size, params.max_position - held)
        size -= size % instrument.lot
        if size < instrument.min_size or size <= 0:
            return _none(
                f"position {fmt_micro(held)} of the cap {fmt_micro(params.max_position)} leaves less than "
                f"the minimum size {fmt_micro(instrument.min_size)}"
            )
        return StrategyDecision(
            (Quote(token, Side.BUY, bid, size),), None, (f"join the best bid {fmt_micro(bid)} x{fmt_micro(size)}",)
        )
