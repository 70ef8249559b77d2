"""`polyoms demo`: the local exchange and the engine in one process, a showcase against live flow.

What runs: the daemon (`ops.daemon.Daemon`) on the embedded local exchange — background traders of
the "calm" scenario, a funded wallet, the real client over 127.0.0.1 sockets (REST and both WebSocket
channels), the journal, heartbeats and periodic reconciliation — exactly the path a live session takes.
On it, three jobs at once:

1. an iceberg BUY whose tranches are priced adaptively (join the bid, raise when undercut or stale,
   never above a limit a few ticks over the arrival ask);
2. a FOK market BUY of a fixed pUSD amount, its worst price walked from the book;
3. a two-leg complete set (YES + NO of one market, sequential legs, an unwinder for a naked leg).

Then it waits for the fills to be final, cancels what still rests and reconciles: the ledger's cash and
every position are compared with the exchange's balances (before any repair), and the reconciliation's
own diffs must show no drift. The exit code is 0 only if all of that holds. `--faults` turns the
exchange's rehearsal faults on (timeouts, 5xx, 429, dropped/duplicated/reordered WebSocket frames,
disconnects, failed settlements): the same must hold.
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from polyoms.algos.adaptive import AdaptivePricing
from polyoms.algos.iceberg import IcebergSpec
from polyoms.algos.multileg import LegMode, MultiLegSpec
from polyoms.algos.parents import ParentManager, ParentStatus
from polyoms.algos.urgency import Urgency
from polyoms.core.enums import Side
from polyoms.core.errors import PolyomsError
from polyoms.core.units import MICRO, Micro, fmt_micro
from polyoms.exchange.settlement import SettlementConfig
from polyoms.oms import repairs
from polyoms.oms.engine import Engine
from polyoms.oms.fills import FillTier
from polyoms.oms.manager import OrderSnapshot
from polyoms.oms.risk import BookQuote
from polyoms.oms.state import TERMINAL
from polyoms.ops import schema as api
from polyoms.ops.config import DaemonConfig, EngineConfig, LocalConfig, VenueConfig
from polyoms.ops.daemon import Daemon
from polyoms.ops.desk import Desk
from polyoms.ops.parents import AlgoParents
from polyoms.polymarket.client.catalog import MarketInfo


class DemoError(PolyomsError):
    """The demo could not run its showcase (no market with a two-sided book, the daemon failed...)."""


@dataclass(frozen=True, slots=True)
class DemoOptions:
    seed: int = 7
    quick: bool = False
    """Smaller jobs, shorter pauses and settlement: done in well under a minute."""
    faults: bool = False
    state_dir: Path | None = None
    """Where the daemon keeps its journal and control token (default: a fresh temporary directory)."""
    live: bool = True
    """Show the live view while the jobs run (off for tests and pipes)."""


@dataclass(frozen=True, slots=True)
class ReconRow:
    item: str
    local: Micro
    exchange: Micro

    @property
    def ok(self) -> bool:
        return self.local == self.exchange


@dataclass(frozen=True, slots=True)
class PositionRow:
    token_id: str
    label: str
    shares: Micro
    cost: Micro
    mark: Micro | None
    unrealized: Micro | None
    realized: Micro


@dataclass
class DemoReport:
    seed: int
    quick: bool
    faults: bool
    elapsed_s: float = 0.0
    parents: list[tuple[str, ParentStatus]] = field(default_factory=list)
    """(job label, final status)."""
    fok: OrderSnapshot | None = None
    fok_error: str = ""
    fok_arrival_mid: Fraction | None = None
    fills: int = 0
    fills_voided: int = 0
    cash_start: Micro = 0
    cash_end: Micro = 0
    positions: list[PositionRow] = field(default_factory=list)
    recon: list[ReconRow] = field(default_factory=list)
    drift: list[str] = field(default_factory=list)
    """Balance drifts the reconciliation found (it repairs them; the demo fails on any)."""
    unresolved: list[str] = field(default_factory=list)
    """Orders still not final (UNKNOWN or open) after the run: the demo fails on any."""
    engine_errors: list[str] = field(default_factory=list)
    faults_seen: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return bool(self.recon) and all(r.ok for r in self.recon) and not self.drift and not self.unresolved


@dataclass(frozen=True, slots=True)
class _Sizes:
    iceberg: Micro
    display: Micro
    pause_ms: tuple[int, int]
    iceberg_timeout_ms: int
    fok_amount: Micro
    basket: Micro
    settle_timeout_s: float
    settlement: SettlementConfig


QUICK = _Sizes(
    iceberg=30 * MICRO,
    display=10 * MICRO,
    pause_ms=(300, 900),
    iceberg_timeout_ms=25_000,
    fok_amount=20 * MICRO,
    basket=10 * MICRO,
    settle_timeout_s=15.0,
    settlement=SettlementConfig(mined_delay_ms=400, confirmed_delay_ms=1_200),
)
FULL = _Sizes(
    iceberg=120 * MICRO,
    display=20 * MICRO,
    pause_ms=(1_000, 3_000),
    iceberg_timeout_ms=120_000,
    fok_amount=50 * MICRO,
    basket=25 * MICRO,
    settle_timeout_s=40.0,
    settlement=SettlementConfig(mined_delay_ms=2_000, confirmed_delay_ms=8_000),
)
FUND = 2_000 * MICRO
ADAPTIVE_HEADROOM_TICKS = 3
BASKET_HEADROOM = 2 * 10_000


def demo_config(opts: DemoOptions, state_dir: Path) -> DaemonConfig:
    return DaemonConfig(
        venue=VenueConfig("local"),
        state_dir=state_dir,
        engine=EngineConfig(heartbeat_s=5.0, reconcile_every_s=15.0, maintenance_s=0.5, unknown_grace_ms=3_000),
        local=LocalConfig(seed=opts.seed, fund=FUND, scenario="calm", faults=opts.faults),
        source="polyoms demo",
    )


async def run_demo(opts: DemoOptions, console: Console | None = None) -> DemoReport:
    """Run the showcase (module doc) and return its report; raises DemoError if it cannot start."""
    console = console or Console(stderr=True)
    sizes = QUICK if opts.quick else FULL
    report = DemoReport(opts.seed, opts.quick, opts.faults)
    started = time.monotonic()
    with contextlib.ExitStack() as stack:
        state_dir = opts.state_dir
        if state_dir is None:
            state_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="polyoms-demo-")))
        cfg = demo_config(opts, state_dir)
        # A showcase is its own session: never resume an earlier run's exchange from the state dir.
        async with Daemon(cfg, settlement=sizes.settlement, fresh=True) as d:
            await _showcase(d, opts, sizes, report, console)
    report.elapsed_s = time.monotonic() - started
    return report


async def _showcase(d: Daemon, opts: DemoOptions, sizes: _Sizes, report: DemoReport, console: Console) -> None:
    desk, engine, catalog, venue = d.desk, d.engine, d.catalog, d.venue
    assert desk is not None and engine is not None and catalog is not None and venue is not None
    if not isinstance(d.parents, AlgoParents):
        raise DemoError("the daemon has no execution algorithms (polyoms.algos) wired")
    parents: ParentManager = d.parents.manager
    wallet = venue.wallet
    report.cash_start = engine.state.ledger(wallet).cash

    markets = [m for m in catalog if m.tradable and not m.neg_risk]
    if len(markets) < 3:
        raise DemoError(f"the local exchange lists {len(markets)} tradable binary markets; the demo needs 3")
    flags = (" --quick" if opts.quick else "") + (" --faults" if opts.faults else "")
    console.print(f"[bold]polyoms demo[/] seed {opts.seed}{flags}: local exchange at {d.venue_url}, wallet {wallet}")
    books = await _two_sided(desk, markets, 3, timeout_s=30.0)
    (ice_m, ice_q), (fok_m, fok_q), (set_m, set_q) = books

    # 1. Iceberg BUY, adaptively priced: join the bid, never above a few ticks over the arrival ask.
    assert ice_m.tick is not None and ice_q.best_ask is not None
    ice_token = ice_m.token_ids[0]
    ice_limit = min(ice_q.best_ask + ADAPTIVE_HEADROOM_TICKS * ice_m.tick.micro, MICRO - ice_m.tick.micro)
    ice_spec = IcebergSpec(
        token_id=ice_token,
        side=Side.BUY,
        size=sizes.iceberg,
        price=None,
        display=sizes.display,
        pause_ms=sizes.pause_ms,
        timeout_ms=sizes.iceberg_timeout_ms,
        adaptive=AdaptivePricing(limit=ice_limit, urgency=Urgency.HIGH),
    )
    jobs: list[tuple[str, str]] = [("iceberg + adaptive", await parents.start(ice_spec))]

    # 2. FOK market BUY for a pUSD amount (worst price walked from the book by the desk).
    fok_token = fok_m.token_ids[0]
    report.fok_arrival_mid = _mid(fok_q)
    fok_id: str | None = None
    try:
        accepted = await desk.add_order(
            api.OrderBody(
                token_id=fok_token, side="BUY", kind="market", amount=fmt_micro(sizes.fok_amount), order_type="FOK"
            )
        )
        fok_id = accepted.order_id
    except PolyomsError as exc:  # a FOK the book cannot fill is refused: reported, not fatal
        report.fok_error = f"{type(exc).__name__}: {exc}"

    # 3. A complete set: YES then NO of one market, each within a couple of cents of its ask.
    yes, no = set_m.token_ids
    no_q = desk.quote(no)
    if no_q is None or no_q.best_ask is None:
        raise DemoError(f"no trusted NO book for {set_m.slug or set_m.condition_id}")
    assert set_q.best_ask is not None
    basket = MultiLegSpec.complete_set(
        yes,
        no,
        sizes.basket,
        min(set_q.best_ask + BASKET_HEADROOM, MICRO - 10_000),
        min(no_q.best_ask + BASKET_HEADROOM, MICRO - 10_000),
        mode=LegMode.SEQUENTIAL,
        leg_timeout_ms=5_000,
        timeout_ms=sizes.iceberg_timeout_ms,
    )
    jobs.append(("complete set (YES+NO)", await parents.start(basket)))

    labels = {ice_token: f"{_short(ice_m)} YES", fok_token: f"{_short(fok_m)} YES", yes: f"{_short(set_m)} YES",
              no: f"{_short(set_m)} NO"}  # fmt: skip

    def fok_status() -> OrderSnapshot | None:
        return d.manager.status(fok_id) if fok_id is not None and d.manager is not None else None

    def view() -> Group:
        return _live_view(parents, jobs, fok_status(), report.fok_error, labels, engine.state.ledger(wallet).cash)

    deadline = time.monotonic() + sizes.iceberg_timeout_ms / 1000 + 20

    def finished() -> bool:
        fok = fok_status()
        return all(parents.status(pid).done for _, pid in jobs) and (fok is None or fok.state in TERMINAL)

    await _watch(view, finished, deadline, opts.live, console)
    for _, pid in jobs:
        if not parents.status(pid).done:
            await parents.cancel(pid)

    # Let every fill become final, then take nothing resting into the reconciliation.
    await _settle(engine, sizes.settle_timeout_s)
    if d.manager is not None:
        await d.manager.cancel_all(actor="demo")
    await engine.drain()
    await engine.resolve_unknown()

    report.parents = [(label, parents.status(pid)) for label, pid in jobs]
    report.fok = fok_status()
    report.fills = sum(1 for f in engine.state.fills.values() if f.tier is not FillTier.VOIDED)
    report.fills_voided = sum(1 for f in engine.state.fills.values() if f.tier is FillTier.VOIDED)
    report.unresolved = [
        f"{o.order_id[:12]}… {o.state}" for o in engine.state.orders.values() if o.state not in TERMINAL
    ]

    # Reconciliation: the ledger against the exchange's balances first (nothing repaired yet), then the
    # engine's own reconciliation, which must find no drift.
    tokens = sorted(labels)
    lg = engine.state.ledger(wallet)
    cash, shares = await venue.balances(tokens)
    report.recon.append(ReconRow("pUSD", lg.cash, cash))
    for t in tokens:
        pos = lg.positions.get(t)
        report.recon.append(ReconRow(f"{labels[t]} shares", pos.confirmed if pos else 0, shares.get(t, 0)))
    report.recon.append(ReconRow("provisional + reserved", lg.prov_in + lg.prov_out + lg.reserved, 0))
    batches = await engine.reconcile()
    report.drift = [
        f"{x.kind}: {x.detail}"
        for b in batches
        for x in b.diffs
        if x.kind in (repairs.CASH_DRIFT, repairs.SHARES_DRIFT)
    ]
    report.cash_end = lg.cash
    for t in tokens:
        pos = lg.positions.get(t)
        if pos is None or not (pos.confirmed or pos.realized):
            continue
        mid = _mid(desk.quote(t))
        mark = None if mid is None else round(mid)
        unrealized = None if mark is None else pos.unrealized(mark)
        report.positions.append(PositionRow(t, labels[t], pos.confirmed, pos.cost, mark, unrealized, pos.realized))
    report.engine_errors = list(engine.stats.errors)
    if d.sim_service is not None:
        report.faults_seen = dict(d.sim_service.faults.counts)


async def _two_sided(
    desk: Desk, markets: list[MarketInfo], n: int, timeout_s: float
) -> list[tuple[MarketInfo, BookQuote]]:
    """`n` markets whose YES book (mirrored from the market channel, trusted) has both sides."""
    for m in markets:
        await desk.watch_books(m, timeout_s=10.0)
    deadline = time.monotonic() + timeout_s
    while True:
        found: list[tuple[MarketInfo, BookQuote]] = []
        for m in markets:
            q = desk.quote(m.token_ids[0])
            qn = desk.quote(m.token_ids[1])
            if q is not None and q.best_bid is not None and q.best_ask is not None and qn and qn.best_ask:
                found.append((m, q))
        if len(found) >= n:
            return found[:n]
        if time.monotonic() > deadline:
            raise DemoError(f"only {len(found)} markets have a two-sided book after {timeout_s:.0f} s")
        await asyncio.sleep(0.25)


async def _watch(
    view: Callable[[], Group], finished: Callable[[], bool], deadline: float, live: bool, console: Console
) -> None:
    if not live:
        while not finished() and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
        return
    with Live(view(), console=console, refresh_per_second=4, transient=False) as lv:
        while not finished() and time.monotonic() < deadline:
            await asyncio.sleep(0.25)
            lv.update(view())
        lv.update(view())


async def _settle(engine: Engine, timeout_s: float) -> None:
    """Wait until no fill is provisional (MATCHED / MINED / RETRYING): the ledger is then final."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not any(f.tier is FillTier.PROVISIONAL for f in engine.state.fills.values()):
            return
        await asyncio.sleep(0.2)


def _mid(q: BookQuote | None) -> Fraction | None:
    if q is None or q.best_bid is None or q.best_ask is None:
        return None
    return Fraction(q.best_bid + q.best_ask, 2)


def _short(m: MarketInfo) -> str:
    text = m.slug or m.question or m.condition_id
    return text if len(text) <= 22 else text[:21] + "…"


def _order_avg(o: OrderSnapshot) -> Fraction | None:
    """Average price of an order's fills, micro pUSD per share (before fees)."""
    shares = sum(f.size for f in o.fills)
    return Fraction(sum(f.cash for f in o.fills) * MICRO, shares) if shares else None


def _basket_cost(s: ParentStatus) -> tuple[Fraction | None, Fraction | None]:
    """(cost of one set, its slippage against the sum of the arrival mids), micro pUSD: a basket buys
    the same size of every leg, so one set costs the notional over the shares of one leg."""
    if not s.legs or not s.filled:
        return None, None
    per_set = Fraction(s.notional * len(s.legs) * MICRO, s.filled)
    return per_set, None if s.arrival_mid is None else per_set - s.arrival_mid


def _price(x: Fraction | Micro | None) -> str:
    if x is None:
        return "—"
    return fmt_micro(round(x))


def _live_view(
    parents: ParentManager,
    jobs: list[tuple[str, str]],
    fok: OrderSnapshot | None,
    fok_error: str,
    labels: dict[str, str],
    cash: Micro,
) -> Group:
    t = Table(title="jobs", expand=False)
    for col in ("job", "instrument", "state", "filled / target", "avg price", "adj.", "last decision"):
        t.add_column(col)
    for label, pid in jobs:
        s = parents.status(pid)
        last = s.decisions[-1] if s.decisions else None
        t.add_row(
            label,
            labels.get(s.token_id, s.token_id[:10]),
            s.state.value,
            f"{fmt_micro(s.filled)} / {fmt_micro(s.target)}",
            _price(s.avg_price),
            str(s.adjustments),
            "" if last is None else str(last)[:60],
        )
    if fok is not None:
        avg = _order_avg(fok)
        t.add_row("FOK market BUY", labels.get(fok.token_id, ""), fok.state.value, fmt_micro(fok.filled), _price(avg))
    elif fok_error:
        t.add_row("FOK market BUY", "", "REFUSED", "", "", "", fok_error[:60])
    return Group(t, Text(f"pUSD cash {fmt_micro(cash)}"))


def render_report(r: DemoReport, console: Console) -> None:
    mode = (" (quick)" if r.quick else "") + (" with faults" if r.faults else "")
    jobs = Table(title=f"polyoms demo — seed {r.seed}{mode}; prices in pUSD per share (a basket: per set)")
    for col in ("job", "state", "filled", "target", "avg price", "arrival mid", "slippage/share", "adj.", "time s"):
        jobs.add_column(col)
    for label, s in r.parents:
        secs = "" if s.ended_ms is None else f"{(s.ended_ms - s.started_ms) / 1000:.1f}"
        extra = f" (legging cost {_price(s.legging_cost * MICRO)})" if s.legging_cost else ""
        avg, slip = _basket_cost(s) if s.legs else (s.avg_price, s.slippage)
        jobs.add_row(
            label + extra,
            s.state.value,
            fmt_micro(s.filled),
            fmt_micro(s.target),
            _price(avg),
            _price(s.arrival_mid),
            _price(slip),
            str(s.adjustments),
            secs,
        )
    if r.fok is not None:
        f = r.fok
        avg = _order_avg(f)
        slip = None if avg is None or r.fok_arrival_mid is None else avg - r.fok_arrival_mid
        jobs.add_row("FOK market BUY", f.state.value, fmt_micro(f.filled), "", _price(avg), _price(r.fok_arrival_mid),
                     _price(slip), "0", "")  # fmt: skip
    elif r.fok_error:
        jobs.add_row("FOK market BUY", "REFUSED: " + r.fok_error[:50], "", "", "", "", "", "", "")
    console.print(jobs)
    for label, s in r.parents:
        if s.error:
            console.print(f"[red]{label}[/]: {s.error}")

    pos = Table(title="positions (confirmed)")
    for col in ("instrument", "shares", "avg cost", "mark (mid)", "unrealized", "realized"):
        pos.add_column(col)
    for p in r.positions:
        avg = Fraction(p.cost, p.shares) * MICRO if p.shares else None
        pos.add_row(p.label, fmt_micro(p.shares), _price(avg), _price(p.mark), _price(p.unrealized),
                    fmt_micro(p.realized))  # fmt: skip
    console.print(pos)
    console.print(
        f"fills: {r.fills} final ({r.fills_voided} voided by failed settlement); pUSD {fmt_micro(r.cash_start)}"
        f" → {fmt_micro(r.cash_end)}"
    )

    rec = Table(title="reconciliation: local ledger vs the exchange")
    for col in ("item", "local", "exchange", ""):
        rec.add_column(col)
    for row in r.recon:
        mark = "[green]ok[/]" if row.ok else "[red]DIFF[/]"
        rec.add_row(row.item, fmt_micro(row.local), fmt_micro(row.exchange), mark)
    console.print(rec)
    for line in r.drift:
        console.print(f"[red]drift[/] {line}")
    for line in r.unresolved:
        console.print(f"[red]not final[/] {line}")
    for line in r.engine_errors:
        console.print(f"[yellow]engine error[/] {line}")
    if r.faults_seen:
        console.print("faults injected: " + ", ".join(f"{k} {v}" for k, v in sorted(r.faults_seen.items())))
    verdict = "[green]reconciliation holds[/]" if r.ok else "[red]reconciliation FAILED[/]"
    console.print(f"{verdict} — {r.elapsed_s:.1f} s")
