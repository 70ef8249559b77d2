"""Scripted market scenarios for the execution algorithms: the local exchange in process, a virtual clock.

A `World` is the whole stack of a backtest — the exchange (`SimService`), the in-process venue, the OMS
engine and order manager, a `ParentManager` driven step by step (no background tasks) — plus a scripted
counterparty ("them") that quotes and takes on the same exchange. `World.run` interleaves the script with
the parents: it lets the OMS and the parents settle, then moves the clock to the next thing due (a
scripted event, a parent's timer, a settlement step, a latency running out, or at most one second later),
and again. Nothing reads the wall clock, so one seed gives one run, event for event.

The scenarios (`SCENARIOS`, name → coroutine(seed, latency) → `ScenarioRun`) are shared by the tests in
tests/algos/ and by `polyoms report algos`, which turns their measurements into docs/algos.md.

Latency: our venue may have entry, response and market-data latencies (`venues/latency.py`); settling then
moves the clock through them (`latency.drive`). Worlds have none unless asked (the tests pin exact
sequences); the report runs the scenarios with `BACKTEST_LATENCY`. The counterparty never has any: its
script is the market, at the times written.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Final

import msgspec

from polyoms.algos.adaptive import AdaptivePricing, AdaptiveSpec
from polyoms.algos.base import Action
from polyoms.algos.books import ExchangeBooks
from polyoms.algos.iceberg import IcebergSpec
from polyoms.algos.microprice import MicroPriceSpec
from polyoms.algos.multileg import LegMode, LegSpec, MultiLegSpec
from polyoms.algos.parents import ParentManager, ParentStatus, Spec
from polyoms.algos.sizing import KellySizing
from polyoms.algos.unwinder import UnwindMethod, UnwindPolicy
from polyoms.algos.urgency import Urgency
from polyoms.core.clock import VirtualClock
from polyoms.core.enums import OrderType, Side
from polyoms.core.errors import PolyomsError
from polyoms.core.units import MICRO, Micro, to_micro
from polyoms.core.venue import OrderRef
from polyoms.exchange.api.faults import FaultConfig, Faults
from polyoms.exchange.api.service import SimService
from polyoms.exchange.engine import Exchange
from polyoms.exchange.markets import MarketSpec, binary_market, neg_risk_event
from polyoms.exchange.settlement import NEVER, SettlementConfig
from polyoms.oms.engine import Engine
from polyoms.oms.manager import OrderManager
from polyoms.oms.oms_state import OmsState
from polyoms.polymarket.client.wallet import Wallet
from polyoms.polymarket.protocol.order import OrderBuilder
from polyoms.venues import latency
from polyoms.venues.inprocess import InProcessVenue
from polyoms.venues.latency import DelayConfig, LatencyConfig
from polyoms.venues.polymarket_orders import prepared

START_MS: Final = 1_777_000_000_000
CASH: Final = 1_000 * MICRO
SHARES: Final = 500 * MICRO
ALPHA, BETA, FINE, CUP = "algos-alpha", "algos-beta", "algos-fine", "algos-cup"
CUP_OUTCOMES: Final = ("Red", "Green", "Blue")

BACKTEST_LATENCY: Final = LatencyConfig(
    entry=DelayConfig(median_ms=35, sigma=0.3, min_ms=20, max_ms=60),
    response=DelayConfig(median_ms=35, sigma=0.3, min_ms=20, max_ms=60),
    market_data=DelayConfig(median_ms=15, sigma=0.6, min_ms=5, max_ms=50),
)
"""A client near the venue: orders and cancels ~35 ms there and ~35 ms back (20–60 ms, a skewed tail),
user-channel events ~15 ms behind the exchange (5–50 ms). Seeded by the scenario's seed."""


def _key(name: str) -> str:
    """A private key for a simulated participant, derived from its name (never funded anywhere real).
    The prefix is this module's old path: it keeps the addresses, and so the order ids, of earlier runs."""
    return "0x" + hashlib.sha256(f"polyoms/algos/scenarios/{name}".encode()).hexdigest()


def m(value: str | int) -> Micro:
    """Micro-units from a decimal string or a whole number ("0.45" → 450_000)."""
    return to_micro(value, "value")


def scenario_markets() -> tuple[MarketSpec, ...]:
    """Fee-free markets: two on a 1¢ grid, one on a 0.1¢ grid, and a three-outcome neg-risk event."""
    return (
        binary_market(ALPHA, "Will alpha happen?"),
        binary_market(BETA, "Will beta happen?"),
        binary_market(FINE, "Will the fine-grained thing happen?", tick="0.001"),
        *neg_risk_event(CUP, "Will {outcome} win the cup?", CUP_OUTCOMES),
    )


@dataclass(frozen=True, slots=True)
class Event:
    at_ms: int
    """Milliseconds after the start of the run."""
    action: Callable[[World], Awaitable[object]]
    label: str = ""


@dataclass
class World:
    seed: int
    clock: VirtualClock
    service: SimService
    venue: InProcessVenue
    engine: Engine
    manager: OrderManager
    parents: ParentManager
    them: InProcessVenue
    them_builder: OrderBuilder
    markets: dict[str, MarketSpec]
    started_ms: int
    taken: list[tuple[int, str, Side, Micro]] = field(default_factory=list)
    """Counterparty takes: (ms after start, token, side, shares traded)."""

    @property
    def exchange(self) -> Exchange:
        return self.service.exchange

    @property
    def wallet(self) -> str:
        return self.venue.wallet

    def yes(self, slug: str) -> str:
        return self.markets[slug].yes_token_id

    def no(self, slug: str) -> str:
        return self.markets[slug].no_token_id

    @property
    def now(self) -> int:
        """Milliseconds since the start of the run."""
        return self.clock.now_ms() - self.started_ms

    # --- the counterparty --------------------------------------------------------------------------

    async def quote(self, token: str, side: Side, price: str, size: str | int) -> str:
        """Rest a GTC order of theirs."""
        spec = self.exchange.market_of_token(token)
        order = self.them_builder.limit(token, side, price, str(size), tick=spec.tick)
        (out,) = await self.them.submit([prepared(order)])
        if out.error is not None:
            raise out.error
        return order.order_id

    async def book(
        self, token: str, *, bids: Sequence[tuple[str, int]] = (), asks: Sequence[tuple[str, int]] = ()
    ) -> None:
        for price, size in bids:
            await self.quote(token, Side.BUY, price, size)
        for price, size in asks:
            await self.quote(token, Side.SELL, price, size)

    async def take(self, token: str, side: Side, price: str, size: str | int) -> Micro:
        """A marketable order of theirs (FAK): sells `size` shares down to `price`, or buys them up to it.
        Returns the shares it traded (0 when nothing matched)."""
        spec = self.exchange.market_of_token(token)
        order = self.them_builder.limit(token, side, price, str(size), tick=spec.tick, order_type=OrderType.FAK)
        (out,) = await self.them.submit([prepared(order)])
        if out.ack is None:
            return 0
        traded = sum(t.size for t in self.exchange.all_trades if t.taker_order_id == order.order_id)
        self.taken.append((self.now, token, side, traded))
        return traded

    async def pull_all(self) -> None:
        await self.them.cancel_all()

    def settlement_failures(self, rate: float) -> None:
        """Every trade whose settlement is drawn from now on fails with this probability."""
        self.service.faults.update({"settlement_failure_rate": rate})
        self.service.apply_fault_config()

    # --- time --------------------------------------------------------------------------------------

    def _advance_to(self, t_ms: int) -> None:
        self.clock.set(t_ms)
        self.service.tick()
        self.exchange.advance()
        self.venue.link.release(t_ms)

    async def settle(self) -> None:
        """Let the OMS and the parents settle, the clock moving only through our venue's latencies."""
        await latency.drive(self.parents.settle(), [self.venue.link], self._advance_to)

    async def run(self, pids: Sequence[str], script: Sequence[Event] = (), *, max_ms: int = 600_000) -> None:
        """Run the script and the parents until every parent of `pids` has ended (or `max_ms`)."""
        events = sorted(script, key=lambda e: e.at_ms)
        pm = self.parents
        while True:
            while events and events[0].at_ms <= self.now:
                await events.pop(0).action(self)
            await self.settle()
            if all(pm.status(pid).done for pid in pids) or self.now >= max_ms:
                return
            now = self.clock.now_ms()
            due = [now + 1_000, self.started_ms + max_ms]
            for t in (pm.next_wake_ms(), self.venue.link.next_ms):
                if t is not None:
                    due.append(t)
            if self.exchange.settlement.next_ms < NEVER:
                due.append(self.exchange.settlement.next_ms)
            if events:
                due.append(self.started_ms + events[0].at_ms)
            self._advance_to(max(min(due), now + 1))

    async def wait(self, ms: int) -> None:
        """Let `ms` of market time pass (settlement, expiries), the parents following."""
        end = self.clock.now_ms() + ms
        while self.clock.now_ms() < end:
            await self.settle()
            now = self.clock.now_ms()
            nxt = min(self.exchange.settlement.next_ms, self.venue.link.next_ms or NEVER, now + 1_000)
            self._advance_to(min(end, max(now + 1, nxt)))
        await self.settle()

    async def close(self) -> None:
        await self.parents.close()
        await self.engine.stop()

    # --- checks ------------------------------------------------------------------------------------

    def position(self, token: str) -> Micro:
        """Shares of `token` held beyond the initial funding (confirmed and provisional)."""
        pos = self.engine.state.ledger(self.wallet).positions.get(token)
        return (pos.total if pos is not None else 0) - SHARES

    def problems(self) -> list[str]:
        """Where the OMS disagrees with the exchange (balances) or with itself (invariants)."""
        out = list(self.engine.state.check_invariants())
        lg = self.engine.state.ledger(self.wallet)
        bal = self.exchange.balances(self.wallet)
        if lg.cash != bal.pusd:
            out.append(f"cash {lg.cash} != exchange {bal.pusd}")
        for token, pos in lg.positions.items():
            if pos.total != bal.token(token).balance:
                out.append(f"{token[:8]}: shares {pos.total} != exchange {bal.token(token).balance}")
        return out


async def new_world(seed: int, *, failure_rate: float = 0.0, latency: LatencyConfig | None = None) -> World:
    """A fresh exchange with `scenario_markets()`, us and them funded, the OMS running (virtual clock);
    `latency`: our venue's (none by default)."""
    clock = VirtualClock(START_MS)
    markets = scenario_markets()
    exchange = Exchange(markets, clock, seed=seed, settlement=SettlementConfig())
    service = SimService(exchange, clock, seed=seed)
    service.faults = Faults(FaultConfig(seed=seed, settlement_failure_rate=failure_rate))
    service.apply_fault_config()
    us, them = Wallet.from_key(_key("us"), name="us"), Wallet.from_key(_key("them"), name="them")
    tokens = [t for mk in markets for t in mk.token_ids]
    service.fund(us.address, CASH, dict.fromkeys(tokens, SHARES))
    service.fund(them.address, 1_000 * CASH, dict.fromkeys(tokens, 1_000 * SHARES))
    venue = InProcessVenue(service, us.address, builder=us.order_builder(clock=clock), seed=seed, latency=latency)
    other = InProcessVenue(service, them.address, seed=seed + 1)
    state = OmsState(clock)
    state.add_wallet(us.address, [venue.owner])
    state.set_balance(us.address, cash=CASH, positions=dict.fromkeys(tokens, SHARES))
    engine = Engine(state, venue, markets={t: mk.condition_id for mk in markets for t in mk.token_ids})
    engine.start()
    manager = OrderManager(engine, actor="scenario")
    parents = ParentManager(
        manager, clock=clock, book_source=ExchangeBooks(exchange), seed=seed, autorun=False, deterministic_salts=True
    )
    return World(
        seed,
        clock,
        service,
        venue,
        engine,
        manager,
        parents,
        other,
        them.order_builder(clock=clock),
        {mk.slug: mk for mk in markets},
        clock.now_ms(),
    )


# --- scenarios ---------------------------------------------------------------------------------------


@dataclass
class ScenarioRun:
    algorithm: str
    scenario: str
    seed: int
    world: World
    parent_ids: list[str]
    note: str = ""

    def status(self, i: int = 0) -> ParentStatus:
        return self.world.parents.status(self.parent_ids[i])

    @property
    def statuses(self) -> list[ParentStatus]:
        return [self.status(i) for i in range(len(self.parent_ids))]


ScenarioFn = Callable[[int, LatencyConfig | None], Awaitable[ScenarioRun]]
SCENARIOS: dict[str, ScenarioFn] = {}


def scenario(name: str) -> Callable[[ScenarioFn], ScenarioFn]:
    def register(fn: ScenarioFn) -> ScenarioFn:
        SCENARIOS[name] = fn
        return fn

    return register


def take(token: Callable[[World], str], side: Side, price: str, size: int) -> Callable[[World], Awaitable[Micro]]:
    async def act(w: World) -> Micro:
        return await w.take(token(w), side, price, size)

    return act


def yes_of(slug: str) -> Callable[[World], str]:
    return lambda w: w.yes(slug)


async def _start(w: World, spec: Spec) -> str:
    return await w.parents.start(spec)


async def _finish(w: World, algorithm: str, name: str, pids: list[str], note: str = "") -> ScenarioRun:
    await w.wait(15_000)  # every fill final, so the ledger can be compared with the exchange
    return ScenarioRun(algorithm, name, w.seed, w, pids, note)


# --- iceberg -------------------------------------------------------------------------------------------


def _steady_seller(token: Callable[[World], str], price: str, size: int, every_ms: int, n: int) -> list[Event]:
    return [Event(1_000 + i * every_ms, take(token, Side.SELL, price, size), "seller") for i in range(n)]


@scenario("iceberg/partial-fills")
async def iceberg_partial_fills(seed: int, latency: LatencyConfig | None) -> ScenarioRun:
    """BUY 100 at 0.50 shown ~20 at a time; a seller hits the best bid with 7 shares every 1.5 s, so
    every tranche fills in pieces and some sales find no tranche up (the pause)."""
    w = await new_world(seed, latency=latency)
    yes = w.yes(ALPHA)
    await w.book(yes, bids=[("0.48", 200)], asks=[("0.52", 200)])
    pid = await _start(w, IcebergSpec(yes, Side.BUY, m(100), m("0.50"), display=m(20), timeout_ms=300_000))
    await w.run([pid], _steady_seller(yes_of(ALPHA), "0.50", 7, 1_500, 40))
    return await _finish(w, "iceberg", "partial fills", [pid])


@scenario("iceberg/timeout")
async def iceberg_timeout(seed: int, latency: LatencyConfig | None) -> ScenarioRun:
    """The seller stops after six sales: the iceberg times out and reports exactly what filled."""
    w = await new_world(seed, latency=latency)
    yes = w.yes(ALPHA)
    await w.book(yes, bids=[("0.48", 200)], asks=[("0.52", 200)])
    pid = await _start(w, IcebergSpec(yes, Side.BUY, m(100), m("0.50"), display=m(20), timeout_ms=60_000))
    await w.run([pid], _steady_seller(yes_of(ALPHA), "0.50", 7, 1_500, 6))
    return await _finish(w, "iceberg", "timeout", [pid])


@scenario("iceberg/settlement-failure")
async def iceberg_settlement_failure(seed: int, latency: LatencyConfig | None) -> ScenarioRun:
    """The first sale's settlement fails (FAILED voids the fill): the iceberg works that quantity again."""
    w = await new_world(seed, latency=latency)
    yes = w.yes(ALPHA)
    await w.book(yes, bids=[("0.48", 200)], asks=[("0.52", 200)])
    pid = await _start(w, IcebergSpec(yes, Side.BUY, m(60), m("0.50"), display=m(20), timeout_ms=300_000))

    async def fail_on(world: World) -> None:
        world.settlement_failures(1.0)

    async def fail_off(world: World) -> None:
        world.settlement_failures(0.0)

    script = [Event(900, fail_on), Event(3_500, fail_off), *_steady_seller(yes_of(ALPHA), "0.50", 7, 1_500, 40)]
    await w.run([pid], script)
    return await _finish(w, "iceberg", "settlement failure", [pid])


@scenario("iceberg/thin-book")
async def iceberg_thin_book(seed: int, latency: LatencyConfig | None) -> ScenarioRun:
    """SELL 60 with a limit of 0.45 into a thin bid ladder: each tranche takes the next levels down."""
    w = await new_world(seed, latency=latency)
    yes = w.yes(BETA)
    await w.book(
        yes,
        bids=[("0.50", 10), ("0.49", 10), ("0.48", 10), ("0.47", 15), ("0.46", 10), ("0.45", 30), ("0.40", 100)],
        asks=[("0.55", 100)],
    )
    pid = await _start(w, IcebergSpec(yes, Side.SELL, m(60), m("0.45"), display=m(15), timeout_ms=120_000))
    await w.run([pid])
    return await _finish(w, "iceberg", "thin book", [pid])


@scenario("iceberg/adaptive-undercut")
async def iceberg_adaptive_undercut(seed: int, latency: LatencyConfig | None) -> ScenarioRun:
    """BUY 60 shown ~20 at a time, adaptive pricing up to 0.50 (MEDIUM), starting at the best bid. A small
    sale fills part of the first tranche; a competitor bids 2¢ over it and the tranche's remainder is moved
    over them (cancel, confirm, replace); the second tranche starts at that price, not at the start, and
    is moved over a second competitor bid the same way; sellers fill the rest, never above the limit."""
    w = await new_world(seed, latency=latency)
    yes = w.yes(BETA)
    await w.book(yes, bids=[("0.44", 5)], asks=[("0.52", 100)])
    pricing = AdaptivePricing(m("0.50"), urgency=Urgency.MEDIUM)
    spec = IcebergSpec(yes, Side.BUY, m(60), None, display=m(20), timeout_ms=180_000, adaptive=pricing)
    pid = await _start(w, spec)

    async def competitor(world: World, price: str) -> str:
        return await world.quote(yes, Side.BUY, price, 20)

    script = [
        Event(3_000, take(yes_of(BETA), Side.SELL, "0.44", 10), "small sale"),
        Event(5_000, lambda world: competitor(world, "0.46"), "undercut"),
        Event(10_000, take(yes_of(BETA), Side.SELL, "0.47", 20), "seller"),
        Event(16_000, lambda world: competitor(world, "0.48"), "undercut again"),
        *[Event(20_000 + 2_000 * i, take(yes_of(BETA), Side.SELL, "0.49", 8), "seller") for i in range(12)],
    ]
    await w.run([pid], script)
    return await _finish(w, "iceberg + adaptive", "undercut", [pid])


# --- adaptive ------------------------------------------------------------------------------------------


@scenario("adaptive/undercut")
async def adaptive_undercut(seed: int, latency: LatencyConfig | None) -> ScenarioRun:
    """BUY 40 up to 0.50 (MEDIUM). A small sale fills part of it; a competitor bids 2¢ over it twice; the
    repricer steps over each time (cancel, confirm, replace) and is then filled by sellers."""
    w = await new_world(seed, latency=latency)
    yes = w.yes(BETA)
    await w.book(yes, bids=[("0.44", 5)], asks=[("0.52", 100)])
    pid = await _start(w, AdaptiveSpec(yes, Side.BUY, m("0.50"), m(40), urgency=Urgency.MEDIUM, timeout_ms=120_000))

    def competitor(price: str) -> Callable[[World], Awaitable[object]]:
        async def act(world: World) -> str:
            return await world.quote(yes, Side.BUY, price, 20)

        return act

    script = [
        Event(3_000, take(yes_of(BETA), Side.SELL, "0.44", 10), "small sale"),
        Event(5_000, competitor("0.46"), "undercut"),
        Event(12_000, competitor("0.48"), "undercut again"),
        Event(20_000, take(yes_of(BETA), Side.SELL, "0.45", 30), "seller"),
        Event(25_000, take(yes_of(BETA), Side.SELL, "0.45", 10), "seller"),
    ]
    await w.run([pid], script)
    return await _finish(w, "adaptive", "undercut", [pid])


@scenario("adaptive/undercut-sell")
async def adaptive_undercut_sell(seed: int, latency: LatencyConfig | None) -> ScenarioRun:
    """SELL 30 down to 0.50: a competitor offers 2¢ under; the repricer lowers its ask and a buyer takes it."""
    w = await new_world(seed, latency=latency)
    no = w.no(ALPHA)
    await w.book(no, bids=[("0.40", 100)], asks=[("0.55", 20)])
    pid = await _start(w, AdaptiveSpec(no, Side.SELL, m("0.50"), m(30), urgency=Urgency.HIGH, timeout_ms=60_000))

    async def undercut(world: World) -> str:
        return await world.quote(no, Side.SELL, "0.53", 20)

    script = [Event(5_000, undercut), Event(9_000, take(lambda _w: no, Side.BUY, "0.56", 30), "buyer")]
    await w.run([pid], script)
    return await _finish(w, "adaptive", "undercut (sell)", [pid])


@scenario("adaptive/trend")
async def adaptive_trend(seed: int, latency: LatencyConfig | None) -> ScenarioRun:
    """BUY 30 up to 0.55 (HIGH) while the market climbs 2¢ every 4 s: the repricer chases to its limit,
    never beyond, and gives up when its patience runs out there."""
    w = await new_world(seed, latency=latency)
    yes = w.yes(ALPHA)
    await w.book(yes, bids=[("0.45", 50)], asks=[("0.50", 50)])
    pid = await _start(w, AdaptiveSpec(yes, Side.BUY, m("0.55"), m(30), urgency=Urgency.HIGH, timeout_ms=120_000))

    def level(k: int) -> Callable[[World], Awaitable[object]]:
        async def act(world: World) -> None:
            await world.pull_all()
            bid, ask = 45 + 2 * k, 50 + 2 * k
            await world.book(yes, bids=[(f"0.{bid}", 50)], asks=[(f"0.{ask}", 50)])

        return act

    await w.run([pid], [Event(4_000 * k, level(k), "trend") for k in range(1, 10)])
    return await _finish(w, "adaptive", "trend", [pid])


def _stale(urgency: Urgency) -> ScenarioFn:
    async def run(seed: int, latency: LatencyConfig | None) -> ScenarioRun:
        w = await new_world(seed, latency=latency)
        yes = w.yes(FINE)
        await w.book(yes, bids=[("0.440", 100)], asks=[("0.500", 200)])
        spec = AdaptiveSpec(
            yes, Side.BUY, m("0.500"), m(50), urgency=urgency, start_price=m("0.450"), timeout_ms=400_000
        )
        pid = await _start(w, spec)
        sellers = [Event(40_000 * (i + 1), take(yes_of(FINE), Side.SELL, "0.440", 10), "seller") for i in range(9)]
        await w.run([pid], sellers)
        return await _finish(w, "adaptive", f"stale book, {urgency.value}", [pid])

    return run


for _u in Urgency:
    scenario(f"adaptive/stale-{_u.value.lower()}")(_stale(_u))


# --- micro-price -----------------------------------------------------------------------------------------


@scenario("microprice/imbalance")
async def microprice_imbalance(seed: int, latency: LatencyConfig | None) -> ScenarioRun:
    """BUY 40 pegged to the micro-price (50 bps band, limit 0.515) on a 0.1¢ grid while the book's
    imbalance flips and then the market moves up; sellers fill it."""
    w = await new_world(seed, latency=latency)
    yes = w.yes(FINE)
    await w.book(yes, bids=[("0.480", 200)], asks=[("0.520", 50)])
    pid = await _start(w, MicroPriceSpec(yes, Side.BUY, m("0.515"), m(40), band_bps=50, timeout_ms=120_000))

    async def flip(world: World) -> None:
        await world.pull_all()
        await world.book(yes, bids=[("0.480", 20)], asks=[("0.520", 300)])

    async def up(world: World) -> None:
        await world.pull_all()
        await world.book(yes, bids=[("0.500", 300)], asks=[("0.520", 300)])

    script = [
        Event(10_000, flip, "imbalance flips to the ask"),
        Event(20_000, take(yes_of(FINE), Side.SELL, "0.470", 25), "seller"),
        Event(30_000, up, "market up"),
        Event(35_000, take(yes_of(FINE), Side.SELL, "0.490", 15), "seller"),
    ]
    await w.run([pid], script)
    return await _finish(w, "microprice", "imbalance", [pid])


@scenario("microprice/thin-book")
async def microprice_thin_book(seed: int, latency: LatencyConfig | None) -> ScenarioRun:
    """A heavy bid and a thin ask put the micro-price at the ask; when the thin ask goes, it jumps past the
    aggression limit (0.620): the order goes to the limit and stays there."""
    w = await new_world(seed, latency=latency)
    no = w.no(FINE)
    await w.book(no, bids=[("0.600", 500)], asks=[("0.610", 10), ("0.640", 100)])
    pid = await _start(w, MicroPriceSpec(no, Side.BUY, m("0.620"), m(30), band_bps=50, timeout_ms=30_000))

    async def thin_ask_taken(world: World) -> None:
        await world.take(no, Side.BUY, "0.610", 10)

    script = [Event(5_000, thin_ask_taken, "someone takes the thin ask")]
    await w.run([pid], script)
    return await _finish(w, "microprice", "thin book", [pid])


# --- Kelly ------------------------------------------------------------------------------------------------

KELLY: Final = KellySizing(Fraction(60, 100), Fraction(1, 4))


@scenario("kelly/trend")
async def kelly_trend(seed: int, latency: LatencyConfig | None) -> ScenarioRun:
    """Quarter-Kelly BUY (p = 0.60, bankroll from the ledger) pegged to the micro-price while the market
    climbs from 0.50 to 0.62 and falls back to 0.55: the size shrinks with the edge, there is no order
    at no edge, and it comes back with the edge."""
    w = await new_world(seed, latency=latency)
    yes = w.yes(FINE)
    await w.book(yes, bids=[("0.490", 100)], asks=[("0.510", 100)])
    spec = MicroPriceSpec(yes, Side.BUY, m("0.700"), kelly=KELLY, band_bps=50, timeout_ms=90_000)
    pid = await _start(w, spec)

    def level(bid: str, ask: str) -> Callable[[World], Awaitable[object]]:
        async def act(world: World) -> None:
            await world.pull_all()
            await world.book(yes, bids=[(bid, 100)], asks=[(ask, 100)])

        return act

    script = [
        Event(5_000, take(yes_of(FINE), Side.SELL, "0.480", 10), "seller"),
        Event(10_000, level("0.530", "0.550"), "up"),
        Event(20_000, level("0.570", "0.590"), "up"),
        Event(30_000, level("0.610", "0.630"), "up: no edge"),
        Event(40_000, level("0.540", "0.560"), "back down"),
        Event(45_000, take(yes_of(FINE), Side.SELL, "0.520", 60), "seller"),
    ]
    await w.run([pid], script)
    return await _finish(w, "kelly", "trend", [pid])


# --- multi-leg -------------------------------------------------------------------------------------------


@scenario("multileg/complete-set")
async def multileg_complete_set(seed: int, latency: LatencyConfig | None) -> ScenarioRun:
    """YES + NO of one market, 20 each, both legs FOK at once. One book serves both tokens (a NO ask at
    1 − b is a YES bid at b), so a complete set costs 1 + the spread: 0.47 + 0.55."""
    w = await new_world(seed, latency=latency)
    yes, no = w.yes(ALPHA), w.no(ALPHA)
    await w.book(yes, bids=[("0.45", 100)], asks=[("0.47", 50)])
    spec = MultiLegSpec.complete_set(yes, no, m(20), m("0.48"), m("0.56"), mode=LegMode.PARALLEL)
    pid = await _start(w, spec)
    await w.run([pid])
    return await _finish(w, "multileg", "complete set (parallel)", [pid])


@scenario("multileg/one-leg-killed")
async def multileg_one_leg_killed(seed: int, latency: LatencyConfig | None) -> ScenarioRun:
    """The NO leg's FOK is killed (only 5 offered within its limit): the YES leg is naked. The unwinder
    (AUTO, 2¢ a share) buys the 5 complements there are, waits, and flattens the rest when a buyer shows."""
    w = await new_world(seed, latency=latency)
    yes, no = w.yes(ALPHA), w.no(ALPHA)
    await w.book(yes, bids=[("0.45", 5), ("0.40", 50)], asks=[("0.47", 50)])
    spec = MultiLegSpec.complete_set(yes, no, m(20), m("0.48"), m("0.56"), mode=LegMode.PARALLEL)
    pid = await _start(w, spec)

    async def buyer(world: World) -> str:
        return await world.quote(yes, Side.BUY, "0.46", 30)

    await w.run([pid], [Event(3_000, buyer, "a buyer shows up")])
    return await _finish(w, "multileg", "one leg killed (parallel)", [pid])


def _cup_book(w: World) -> Callable[[], Awaitable[None]]:
    async def build() -> None:
        for name, ask in zip(CUP_OUTCOMES, ("0.30", "0.35", "0.30"), strict=True):
            yes = w.yes(f"{CUP}-{name.lower()}")
            await w.book(yes, bids=[(f"0.{int(ask[2:]) - 1}", 50)], asks=[(ask, 20)])

    return build


def _cup_legs(w: World, size: int = 20) -> tuple[LegSpec, ...]:
    return tuple(
        LegSpec(w.yes(f"{CUP}-{name.lower()}"), m(size), m(limit))
        for name, limit in zip(CUP_OUTCOMES, ("0.31", "0.36", "0.31"), strict=True)
    )


@scenario("multileg/neg-risk-sequential")
async def multileg_neg_risk_sequential(seed: int, latency: LatencyConfig | None) -> ScenarioRun:
    """Every outcome of a three-way neg-risk event, one leg after the other: 0.95 for a sure 1."""
    w = await new_world(seed, latency=latency)
    await _cup_book(w)()
    pid = await _start(w, MultiLegSpec(_cup_legs(w), mode=LegMode.SEQUENTIAL))
    await w.run([pid])
    return await _finish(w, "multileg", "neg-risk set (sequential)", [pid])


@scenario("multileg/leg-timeout")
async def multileg_leg_timeout(seed: int, latency: LatencyConfig | None) -> ScenarioRun:
    """The third outcome's offer is gone before its turn: its GTC leg rests unfilled for the leg timeout,
    is cancelled, and the two bought legs are unwound (complement or sale, within 2¢ a share)."""
    w = await new_world(seed, latency=latency)
    await _cup_book(w)()
    blue = w.yes(f"{CUP}-blue")
    offers = [OrderRef(o.order_id) for o in w.exchange.open_orders(w.them.owner, asset_id=blue) if o.side is Side.SELL]
    await w.them.cancel(offers)
    pid = await _start(w, MultiLegSpec(_cup_legs(w), mode=LegMode.SEQUENTIAL, leg_timeout_ms=5_000))
    await w.run([pid])
    return await _finish(w, "multileg", "leg timeout (sequential)", [pid])


@scenario("multileg/settlement-failure")
async def multileg_settlement_failure(seed: int, latency: LatencyConfig | None) -> ScenarioRun:
    """A complete set bought leg by leg; the NO leg rests until a seller comes, and that trade fails at
    settlement: the YES leg, naked after the fact, is sold back (SELL_BACK, within 3¢ a share)."""
    w = await new_world(seed, latency=latency)
    yes, no = w.yes(BETA), w.no(BETA)
    await w.book(yes, bids=[("0.45", 100)], asks=[("0.47", 50)])
    policy = UnwindPolicy(UnwindMethod.SELL_BACK, max_loss=m("0.03"))
    spec = MultiLegSpec.complete_set(
        yes, no, m(20), m("0.48"), m("0.54"), mode=LegMode.SEQUENTIAL, leg_timeout_ms=10_000, unwind=policy
    )
    pid = await _start(w, spec)

    async def fail_on(world: World) -> None:
        world.settlement_failures(1.0)

    async def fail_off(world: World) -> None:
        world.settlement_failures(0.0)

    script = [
        Event(3_000, fail_on),
        Event(4_000, lambda world: world.take(no, Side.SELL, "0.54", 20), "NO seller"),
        Event(7_000, fail_off),
    ]
    await w.run([pid], script)
    return await _finish(w, "multileg", "settlement failure (sequential)", [pid])


# --- many parents ------------------------------------------------------------------------------------------


@scenario("parents/concurrent")
async def parents_concurrent(seed: int, latency: LatencyConfig | None) -> ScenarioRun:
    """Four parents on four markets at once — iceberg, adaptive, micro-price, a basket — one cancelled
    midway; each keeps to its own children, status and limits."""
    w = await new_world(seed, latency=latency)
    a, b, f = w.yes(ALPHA), w.yes(BETA), w.yes(FINE)
    await w.book(a, bids=[("0.48", 200)], asks=[("0.52", 200)])
    await w.book(b, bids=[("0.40", 50)], asks=[("0.60", 50)])
    await w.book(f, bids=[("0.480", 100)], asks=[("0.520", 100)])
    await _cup_book(w)()
    pids = [
        await _start(w, IcebergSpec(a, Side.BUY, m(50), m("0.50"), display=m(10), timeout_ms=120_000)),
        await _start(w, AdaptiveSpec(b, Side.BUY, m("0.45"), m(20), urgency=Urgency.LOW, timeout_ms=120_000)),
        await _start(w, MicroPriceSpec(f, Side.BUY, m("0.510"), m(30), timeout_ms=120_000)),
        await _start(w, MultiLegSpec(_cup_legs(w, 10), mode=LegMode.PARALLEL)),
    ]

    async def cancel_adaptive(world: World) -> None:
        await world.parents.cancel(pids[1])

    script = [
        *_steady_seller(yes_of(ALPHA), "0.50", 6, 2_000, 20),
        Event(10_000, cancel_adaptive, "cancel the adaptive parent"),
        Event(12_000, take(yes_of(FINE), Side.SELL, "0.470", 30), "seller"),
    ]
    await w.run(pids, script)
    return await _finish(w, "parents", "four at once, one cancelled", pids)


def decisions_of(status: ParentStatus, *actions: Action) -> list[str]:
    """The decision log restricted to some actions, as text (tests and the report)."""
    return [str(d) for d in status.decisions if not actions or d.action in actions]


async def run_scenario(name: str, seed: int, latency: LatencyConfig | None = None) -> ScenarioRun:
    """One scenario; `latency` (None: none) draws from `seed` too, so the seed alone fixes the run."""
    try:
        fn = SCENARIOS[name]
    except KeyError:
        raise PolyomsError(f"unknown scenario {name!r}; known: {', '.join(SCENARIOS)}") from None
    return await fn(seed, None if latency is None else msgspec.structs.replace(latency, seed=seed))
