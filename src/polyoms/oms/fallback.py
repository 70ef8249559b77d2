"""WebSocket → REST fallback: the pure policy (no I/O). The loop that applies it is `ops/fallback.py`.

Modes. The engine is "live" while the user stream is *confirmed* (LIVE after its backfill, and its socket
has answered a PING since: a silently stalled socket is LIVE after a reconnect's backfill but never
confirmed, and a socket the venue keeps dropping flaps between GAPPED and LIVE without ever being
confirmed). Once the stream has not been confirmed for `after_s`, the engine goes "degraded-rest": it
keeps its view current by polling the REST endpoints (open orders, trades: the reconciliation path, so
fills are recorded once with their tier), and the book of the tokens it has orders or positions in when
the market stream does not trust them. It returns to "live" when the stream is confirmed again and the
engine's own resync after the gap (the reconciliation of `Engine.stream_live`) is done.

Admission while degraded: reduce-only. The view is as old as the last poll (a fill on a resting order is
learned up to one poll interval late), so orders that add risk are refused; what a trader needs in a bad
moment still works: cancels (they never go through admission) and SELLs of shares held (a SELL can only
reduce a position: it needs the shares, `sellable` in the ledger). BUYs are refused, even of the
complementary outcome: its risk depends on the very fills that may be late. When the REST view itself is
stale (the polls fail for `max_view_age_ms`), every new order is refused.

Poll interval: derived from the per-IP limits and what one poll costs against each (given by the caller): the
fallback spends at most `budget_share` of the tightest quota a poll touches, and never polls faster than
`min_interval_s`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final

from polyoms.core.enums import Side
from polyoms.core.errors import ConfigError, PolyomsError
from polyoms.core.market_events import BookSnapshot
from polyoms.core.units import fmt_micro
from polyoms.oms.errors import TradingHaltedError
from polyoms.oms.oms_state import OmsState
from polyoms.oms.risk import BookQuote

LIVE: Final = "live"
DEGRADED: Final = "degraded-rest"


@dataclass(frozen=True, slots=True)
class FallbackConfig:
    after_s: float
    """How long the user stream may stay unconfirmed before the engine polls REST; 0 = never."""
    budget_share: float = 0.1
    """Fraction of each REST quota the polls may use (the rest stays for trading and reconciliation)."""
    min_interval_s: float = 0.5
    min_view_age_s: float = 5.0
    """The REST view may be this old (or 4 poll intervals, whichever is longer) before admission closes."""

    def __post_init__(self) -> None:
        if not (math.isfinite(self.after_s) and self.after_s >= 0):
            raise ConfigError(f"rest_fallback_after_s must be ≥ 0 (0 = off), got {self.after_s}")
        if not 0 < self.budget_share <= 1:
            raise ConfigError(f"budget_share must be in (0, 1], got {self.budget_share}")
        if not (self.min_interval_s > 0 and self.min_view_age_s > 0):
            raise ConfigError("min_interval_s and min_view_age_s must be positive")

    @property
    def enabled(self) -> bool:
        return self.after_s > 0

    def max_view_age_ms(self, interval_s: float) -> int:
        return round(max(self.min_view_age_s, 4 * interval_s) * 1000)


def poll_interval_s(
    quotas: Mapping[str, Sequence[tuple[int, int]]],
    cost: Mapping[str, int],
    *,
    budget_share: float = 0.1,
    min_interval_s: float = 0.5,
) -> float:
    """Seconds between polls so that they use at most `budget_share` of every quota they touch.

    `quotas`: quota name → its windows as (requests allowed, window ms), as the client enforces them
    (already scaled by its margin); `cost`: requests one poll charges to each quota (the adapter's
    routing). A quota missing from the table (limits disabled) does not constrain."""
    interval = min_interval_s
    for name, n in cost.items():
        for allowed, window_ms in quotas.get(name, ()):
            if allowed > 0 and window_ms > 0:
                # n requests per poll, at most share × allowed per window.
                interval = max(interval, n * window_ms / 1000 / (budget_share * allowed))
    return interval


@dataclass(slots=True)
class StreamWatch:
    """Decides the mode from observations of the user stream's health (pure: time is passed in)."""

    after_ms: int
    mode: str = LIVE
    down_since_ms: int | None = None
    """When the stream was last seen healthy → unhealthy (None while healthy)."""

    def observe(self, now_ms: int, healthy: bool) -> str | None:
        """`healthy`: confirmed, and the engine's resync after the gap is done. Returns the new mode when
        it changes, else None."""
        if healthy:
            self.down_since_ms = None
            if self.mode == DEGRADED:
                self.mode = LIVE
                return LIVE
            return None
        if self.down_since_ms is None:
            self.down_since_ms = now_ms
        if self.mode == LIVE and self.after_ms > 0 and now_ms - self.down_since_ms >= self.after_ms:
            self.mode = DEGRADED
            return DEGRADED
        return None


@dataclass(slots=True)
class BookWatch:
    """Which tokens' books to poll: those of interest the market stream has not trusted for `after_ms`
    (all of them at once while the engine is degraded)."""

    after_ms: int
    untrusted_since: dict[str, int] = field(default_factory=dict)

    def due(self, now_ms: int, untrusted: Iterable[str], *, degraded: bool) -> list[str]:
        current = set(untrusted)
        for token in list(self.untrusted_since):
            if token not in current:
                del self.untrusted_since[token]
        out: list[str] = []
        for token in sorted(current):
            since = self.untrusted_since.setdefault(token, now_ms)
            if degraded or (self.after_ms > 0 and now_ms - since >= self.after_ms):
                out.append(token)
        return out


def quote_of(book: BookSnapshot) -> BookQuote:
    """Best prices of a REST book (levels are compared, not trusted to be in any order)."""
    bid = max((p for p, s in book.bids if s > 0), default=None)
    ask = min((p for p, s in book.asks if s > 0), default=None)
    return BookQuote(bid, ask)


@dataclass(frozen=True, slots=True)
class ReduceLeg:
    """What reduce-only needs of one order of a submission."""

    token_id: str
    side: Side
    size: int
    """Shares (micro); 0 for a dollar-sized BUY."""


def adds_risk(state: OmsState, wallet: str, legs: Sequence[ReduceLeg]) -> tuple[str, Side, int, int] | None:
    """The first leg that would not only reduce what `wallet` holds, as (token, side, size, sellable): any
    BUY (positions are long-only: a BUY always adds), or SELLs of a token beyond the shares held and not
    yet committed (the ledger's `sellable`; the SELLs of one submission count together). None: all reduce."""
    lg = state.ledgers.get(wallet)
    wanted: dict[str, int] = {}
    for leg in legs:
        if leg.side is Side.BUY:
            return leg.token_id, Side.BUY, leg.size, 0
        wanted[leg.token_id] = wanted.get(leg.token_id, 0) + leg.size
    for token, size in wanted.items():
        sellable = lg.sellable(token) if lg is not None else 0
        if size > sellable:
            return token, Side.SELL, size, sellable
    return None


def reduce_only_errors(state: OmsState, wallet: str, legs: Sequence[ReduceLeg], why: str) -> list[PolyomsError]:
    """The orders of a submission that would add risk while degraded (all or none admitted)."""
    found = adds_risk(state, wallet, legs)
    if found is None:
        return []
    token, side, size, sellable = found
    if side is Side.BUY:
        text = f"{why}: reduce-only, a BUY adds risk; cancels and SELLs of held shares are admitted"
    else:
        text = (
            f"{why}: reduce-only, SELL of {fmt_micro(size)} shares exceeds the {fmt_micro(sellable)} held "
            "and not already committed"
        )
    return [TradingHaltedError(text, rule="degraded_reduce_only", token_id=token, side=side.name)]
