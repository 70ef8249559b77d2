"""Trading history and PnL, computed from what the OMS recorded: per-market PnL and an equity curve.

Everything is an integer number of micro-units; the rounding rules are the ledger's (`oms.ledger`):
realized PnL by average cost over CONFIRMED fills in confirmation order (`Position.book`), positions
valued with `Position.value` (confirmed shares × mark, half to even).

Per market (`market_pnl`): the ledger's positions of the market summed (realized, cost, fees: the one
average-cost computation, never redone here), with the volumes of its confirmed fills.

Equity curve (`equity_curve` over a journal's rows): the journal is replayed into a private `OmsState`
through the OMS's own replayer (`oms.oms_state.replayer`, as recovery does), so cash and positions at every
step are exactly what the ledger held then. A point is taken after each journaled input that changed
the confirmed pUSD, the confirmed positions or a mark — a balance (bootstrap, repair), a fill confirmed
or voided, a new fill price — and only when equity, cash or realized PnL moved:

    equity = confirmed cash + Σ confirmed shares × mark

The journal holds no market prices but our own fills', so a token's mark at a point is the price of the
last fill in that token, or 1 − that of its complement when the complement traded later (a binary
market's two prices sum to 1); a position that has no mark yet counts at its cost (unrealized 0).
Provisional fills are left out until they confirm, as in the ledger's PnL. The caller may add a last
point for now, at the live mids (`now_point`).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from polyoms.core.clock import WallClock
from polyoms.core.enums import Side
from polyoms.core.units import MICRO, Micro
from polyoms.oms import inputs
from polyoms.oms.fills import Fill, FillTier
from polyoms.oms.inputs import FillUpdate
from polyoms.oms.ledger import Position, WalletLedger

# Inputs that can move confirmed pUSD or shares (the rest only move orders, reservations, flags).
_LEDGER_KINDS: Final = frozenset({inputs.K_TRADE, inputs.K_TRADE_REST, inputs.K_BALANCE, inputs.K_RECONCILE})
_CAUSE: Final = {inputs.K_BALANCE: "balance", inputs.K_RECONCILE: "repair"}

# --- per market ------------------------------------------------------------------------------------


@dataclass(slots=True)
class MarketTotals:
    """One market's PnL and volumes (micro-units); `unrealized` None when a held token has no mark."""

    market: str
    fills: int = 0
    bought: Micro = 0
    sold: Micro = 0
    buy_cash: Micro = 0
    sell_cash: Micro = 0
    fees: Micro = 0
    realized: Micro = 0
    position: Micro = 0
    cost: Micro = 0
    unrealized: Micro | None = 0
    provisional: int = 0
    voided: int = 0


def market_pnl(
    positions: Iterable[Position],
    fills: Iterable[Fill],
    marks: Mapping[str, Micro],
    market_of: Callable[[str], str] | None = None,
) -> list[MarketTotals]:
    """Per-market totals, sorted by market: PnL from the ledger's positions (realized and cost by
    average cost, fees), volumes from the confirmed fills, unrealized at `marks` (token → micro pUSD).
    `market_of(token)` names the market of a position or fill that does not know its own."""

    def market(token: str, known: str) -> str:
        return known or (market_of(token) if market_of is not None else "") or ""

    out: dict[str, MarketTotals] = {}

    def totals(m: str) -> MarketTotals:
        t = out.get(m)
        if t is None:
            t = out[m] = MarketTotals(m)
        return t

    for p in positions:
        if not (p.confirmed or p.realized or p.fees or p.cost):
            continue
        t = totals(market(p.token_id, p.market))
        t.realized += p.realized
        t.fees += p.fees
        t.position += p.confirmed
        t.cost += p.cost
        if p.confirmed:
            mark = marks.get(p.token_id)
            if mark is None:
                t.unrealized = None
            elif t.unrealized is not None:
                t.unrealized += p.unrealized(mark)
    for f in fills:
        t = totals(market(f.token_id, f.market))
        t.fills += 1
        if f.tier is FillTier.VOIDED:
            t.voided += 1
            continue
        if f.tier is FillTier.PROVISIONAL:
            t.provisional += 1
            continue
        if f.side is Side.BUY:
            t.bought += f.size
            t.buy_cash -= f.cash_delta
        else:
            t.sold += f.size
            t.sell_cash += f.cash_delta
    return [out[m] for m in sorted(out)]


def fill_time(f: Fill) -> int:
    """When a fill happened, in ms: the venue's match time (seconds) when it gave one, else when the OMS
    first saw it."""
    return f.match_time * 1000 if f.match_time else f.first_ms


# --- equity curve ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class EquityPoint:
    ts_ms: int
    cash: Micro
    value: Micro
    realized: Micro
    unrealized: Micro
    cause: str

    @property
    def equity(self) -> Micro:
        return self.cash + self.value


def valuation(ledger: WalletLedger, marks: Mapping[str, Micro]) -> tuple[Micro, Micro, Micro]:
    """(value, realized, unrealized) of a wallet's confirmed positions at `marks`; a position without a
    mark counts at its cost (module doc)."""
    value = realized = unrealized = 0
    for token, p in ledger.positions.items():
        realized += p.realized
        if not p.confirmed:
            continue
        mark = marks.get(token)
        v = p.cost if mark is None else p.value(mark)
        value += v
        unrealized += v - p.cost
    return value, realized, unrealized


@dataclass(slots=True)
class EquityTracker:
    """Takes the equity points of one wallet while a journal is replayed (module doc)."""

    wallet: str
    complements: Mapping[str, str] = field(default_factory=dict)
    """Token → the other token of its binary market."""
    marks: dict[str, Micro] = field(default_factory=dict)
    points: list[EquityPoint] = field(default_factory=list)

    def observe(self, ts_ms: int, kind: str, ledger: WalletLedger | None, notes: Iterable[Any]) -> None:
        """After one input of `kind` at `ts_ms`: its notifications, and the wallet's ledger after it."""
        cause = _CAUSE.get(kind, "")
        for n in notes:
            if not isinstance(n, FillUpdate) or n.fill.wallet != self.wallet:
                continue
            f = n.fill
            if n.change == "voided":
                cause = cause or "void"
                continue
            if n.tier is FillTier.CONFIRMED:
                cause = "fill"
            self.marks[f.token_id] = f.price
            other = self.complements.get(f.token_id)
            if other is not None:
                self.marks[other] = MICRO - f.price
            cause = cause or "mark"
        if ledger is None or not cause:
            return
        value, realized, unrealized = valuation(ledger, self.marks)
        last = self.points[-1] if self.points else None
        if last is not None and (last.cash, last.value, last.realized) == (ledger.cash, value, realized):
            return
        self.points.append(EquityPoint(ts_ms, ledger.cash, value, realized, unrealized, cause))


def equity_curve(
    rows: Iterable[tuple[int, int, str, Any]], wallet: str, complements: Mapping[str, str] | None = None
) -> EquityTracker:
    """Replay journal inputs (seq, ts_ms, kind, decoded payload), in sequence order, into a private
    `OmsState` and take `wallet`'s equity points (module doc)."""
    from polyoms.oms.oms_state import OmsState, replayer

    state = OmsState(WallClock())
    apply = replayer(state)
    tracker = EquityTracker(wallet.lower(), complements or {})
    for seq, ts, kind, payload in rows:
        apply(kind, payload, ts, seq)
        notes = state.drain_notifications()
        if kind in _LEDGER_KINDS:
            tracker.observe(ts, kind, state.ledgers.get(tracker.wallet), notes)
    return tracker


def journal_rows(path: Path) -> Iterator[tuple[int, int, str, Any]]:
    """The committed inputs of the journal at `path`, decoded, read over a read-only connection of our
    own (the daemon's writer keeps writing; WAL gives this reader one consistent snapshot)."""
    from polyoms.oms.journal_recovery import committed_rows, decode_input

    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)
    try:
        conn.execute("BEGIN")  # one read transaction: a snapshot, whatever commits meanwhile
        for seq, ts, kind, _order, _trade, payload, _effects in committed_rows(conn):
            yield seq, ts, *decode_input(kind, payload)
    finally:
        conn.close()


def now_point(ts_ms: int, ledger: WalletLedger, marks: Mapping[str, Micro]) -> EquityPoint:
    """The live ledger at `marks` (the current mids, falling back to the replay's last marks)."""
    value, realized, unrealized = valuation(ledger, marks)
    return EquityPoint(ts_ms, ledger.cash, value, realized, unrealized, "now")


def thin(points: list[EquityPoint], max_points: int) -> tuple[list[EquityPoint], int]:
    """At most `max_points` (≥ 2) points, evenly spread, the first and last kept; and how many were left out."""
    n = len(points)
    if n <= max_points:
        return points, 0
    keep = sorted({round(i * (n - 1) / (max_points - 1)) for i in range(max_points)})
    return [points[i] for i in keep], n - len(keep)


METHOD: Final = (
    "journal replayed through the OMS; a point after each balance, confirmed or voided fill, or new fill "
    "price that moved equity; equity = confirmed pUSD + confirmed shares at the last fill price of the token "
    "(or 1 - its complement's), at cost when none; provisional fills count once confirmed; the last point "
    "is now, at the live mids"
)
