"""The driver: a discrete-event scheduler that runs background traders against an `Exchange`.

`MarketLife` keeps a heap of (due_ms, seq, action). In a backtest (a `VirtualClock`) it moves the
clock to each event's due time before running it, so a simulated day replays in seconds; from a
real-time loop the server calls `run_until(now)` periodically and events run as soon as they are due
(the wall clock is never set). `seq` breaks ties in scheduling order, and every random draw comes
from a seeded `random.Random` per stream (feed, each fair value, each agent), so one seed gives one
day, event for event.

Agents decide (pure, `life.agents`); this module executes: it builds each agent's observation from
the book and its account, turns YES-space commands into concrete orders (token, side, exact integer
amounts, synthetic order ids), submits and cancels them, and counts what happened. Agents sign
nothing: they submit `EngineOrder`s with owner strings of their own. They are funded once, through
`Exchange.fund`, so the exchange's conservation checks (`audit`) still hold; the amounts are
remembered per agent for PnL.
"""

from __future__ import annotations

import hashlib
import heapq
import random
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from polyoms.core.clock import Clock, VirtualClock
from polyoms.core.enums import OrderType, Side
from polyoms.core.errors import ConfigError, NotFoundError, OrderError
from polyoms.core.units import MICRO
from polyoms.exchange.accounts import Account
from polyoms.exchange.book import MatchingBook
from polyoms.exchange.engine import EngineOrder, Exchange
from polyoms.exchange.life.agents import (
    SIZE_STEP,
    Agent,
    AgentCancel,
    AgentPlace,
    AgentQuote,
    InformedTrader,
    LiquidityProvider,
    NoiseTaker,
    Observation,
)
from polyoms.exchange.life.crypto import CryptoMarkets, first_listing
from polyoms.exchange.life.fair_value import AboveStrikeValue, FairValue, LogitWalk
from polyoms.exchange.life.feed import PriceFeed, PriceTick
from polyoms.exchange.life.oracle import OracleFeed
from polyoms.exchange.life.population import CopyTrader, Identity, funding_of
from polyoms.exchange.life.scenarios import (
    RESOLVE_EVENT,
    TICK_SIZE_EVENT,
    MarketPlan,
    Scenario,
    ScenarioUnavailableError,
    ScriptedEvent,
)
from polyoms.exchange.life.scenarios import scenario as named_scenario
from polyoms.exchange.markets import MarketSpec
from polyoms.exchange.orders import Order
from polyoms.exchange.persist import LifeState
from polyoms.exchange.trades import Trade

DEFAULT_START_MS: Final = 1_777_000_000_000
CENT: Final = 10_000
_ORDER_ID_EPOCH: Final = 1 << 64
"""A marketable BUY's pUSD budget is whole cents (the venue wants at most 2 decimals there, doc §3.7)."""

_BUY: Final = Side.BUY
_SELL: Final = Side.SELL
_GTC: Final = OrderType.GTC
_FAK: Final = OrderType.FAK

Action = Callable[[int], None]
PriceListener = Callable[[PriceTick], None]

# The exchange features scripted events need; the settlement work adds them to `Exchange`.
_EVENT_METHOD: Final = {TICK_SIZE_EVENT: "change_tick_size", RESOLVE_EVENT: "resolve"}


@dataclass(slots=True)
class LifeStats:
    """What the background flow did. `orders` counts accepted submissions (resting or matched)."""

    orders: int = 0
    cancels: int = 0
    trades: int = 0
    rejects: int = 0
    wakes: int = 0
    events: int = 0
    shares_traded: int = 0
    """Micro-shares matched, counted once per trade (the taker's side)."""
    reject_reasons: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "orders": self.orders,
            "cancels": self.cancels,
            "trades": self.trades,
            "rejects": self.rejects,
            "wakes": self.wakes,
            "events": self.events,
            "shares_traded": self.shares_traded,
            "reject_reasons": dict(sorted(self.reject_reasons.items())),
        }


class AgentSlot:
    """One agent bound to one market and one funded account."""

    __slots__ = (
        "account",
        "action",
        "address",
        "agent",
        "condition_id",
        "fair",
        "followers",
        "funded_pusd",
        "funded_sets",
        "identity",
        "no",
        "orders",
        "owner",
        "stopped",
        "yes",
    )

    def __init__(
        self, agent: Agent, spec: MarketSpec, fair: FairValue, address: str, owner: str, account: Account
    ) -> None:
        self.agent = agent
        self.condition_id = spec.condition_id.lower()
        self.yes = spec.yes_token_id
        self.no = spec.no_token_id
        self.fair = fair
        self.address = address
        self.owner = owner
        self.account = account
        """The exchange's ledger account, read for the agent's position and free balances."""
        self.orders: dict[str, Order] = {}
        """The agent's orders that were resting when last seen (the exchange's own records)."""
        self.funded_pusd = 0
        self.funded_sets = 0
        self.stopped = False
        self.identity: Identity | None = None
        """The persistent trader this slot is one market of (crypto scenario), None for a per-market agent."""
        self.followers: list[AgentSlot] = []
        """Copy-traders told of this slot's fills."""
        self.action: Action = _no_action
        """The scheduler entry that wakes this agent (built once, not per wake)."""


def _no_action(now: int) -> None:
    pass


def _digest(text: str) -> bytes:
    return hashlib.sha256(text.encode()).digest()


def agent_address(name: str) -> str:
    """A stable 20-byte address for an agent name."""
    return "0x" + _digest(f"polyoms-life:address:{name}").hex()[:40]


def agent_owner(name: str) -> str:
    """A stable UUID-shaped API-key owner for an agent name (what the venue's owners look like)."""
    return str(uuid.UUID(bytes=_digest(f"polyoms-life:owner:{name}")[:16], version=4))


class MarketLife:
    """Background traders, a reference feed and hidden fair values, driven on the exchange's clock."""

    def __init__(
        self,
        exchange: Exchange,
        clock: Clock,
        scenario: Scenario,
        seed: int = 0,
        *,
        start_ms: int | None = None,
        background: bool = True,
    ) -> None:
        """Attach `scenario` to `exchange`, which must already trade `scenario.specs()`.

        `background=False` sets up the feed and fair values but no agents (add them with `add_agent`).
        """
        self.exchange = exchange
        self.clock = clock
        self.scenario = scenario
        self.seed = seed
        self.start_ms = clock.now_ms() if start_ms is None else start_ms
        self.background = background
        self._virtual = clock if isinstance(clock, VirtualClock) else None
        self._heap: list[tuple[int, int, Action]] = []
        self._seq = 0
        self._order_prefix = _digest(f"polyoms-life:orders:{seed}").hex()[:16]
        self._order_n = 0
        self.stats = LifeStats()
        self.slots: list[AgentSlot] = []
        self._by_name: dict[str, AgentSlot] = {}
        self._price_listeners: list[PriceListener] = []
        self._published_ms = -1
        # The exchange's timers (settlement MATCHED → MINED → CONFIRMED, GTD expiry) run whenever time
        # moves, so trades settle on schedule even while nobody trades. Looked up rather than called
        # directly so that an exchange without timers works too.
        self._advance: Callable[[int], Any] | None = getattr(exchange, "advance", None)
        self._advanced_ms = -1
        # Agents hear of fills on their resting orders whoever took them (an agent, a client, a sweep);
        # a liquidity provider reacts by deciding again sooner (`Agent.on_fill`, realism.md).
        # Keyed by (owner, condition id): an identity trades several markets under one owner.
        self._by_owner: dict[tuple[str, str], AgentSlot] = {}
        self._reactions: dict[tuple[str, str], Action] = {}
        exchange.add_trade_hook(self._on_trades)
        self.resolutions: dict[str, bool] = {}
        """Condition id → YES won, for markets this life resolved."""
        self.ran_until_ms = self.start_ms - 1
        """Every event due at or before this has run (`run_until`); what a snapshot resumes from."""

        self._check_events(scenario.events)
        self.crypto: CryptoMarkets | None = None
        if scenario.crypto is not None:
            self.crypto = CryptoMarkets(self, scenario.crypto)
            self.feed = self.crypto.first_feed
        else:
            self.feed = PriceFeed(scenario.feed, seed, self.start_ms)
        self._published: list[int] = []
        self.plans: dict[str, MarketPlan] = {}
        self.fair: dict[str, FairValue] = {}
        for plan in scenario.markets:
            cid = plan.spec.condition_id.lower()
            try:
                exchange.market(cid)
            except NotFoundError:
                raise ConfigError(
                    f"scenario {scenario.name!r}: the exchange does not trade {plan.spec.slug!r}; "
                    "build it with scenario.specs()"
                ) from None
            self.plans[cid] = plan
            self.fair[cid] = self._fair_model(plan)
        if background:
            for plan in scenario.markets:
                self._populate(plan)
        for event in scenario.events:
            self._schedule(self.start_ms + event.at_ms, self._event_action(event))
        if background and self.crypto is not None:
            self.crypto.start(max(self.start_ms, clock.now_ms()), fund=True)

    @classmethod
    def backtest(
        cls, scenario: Scenario, seed: int = 0, *, start_ms: int = DEFAULT_START_MS, background: bool = True
    ) -> MarketLife:
        """A fresh exchange trading the scenario's markets on a virtual clock, with life attached."""
        clock = VirtualClock(start_ms)
        specs = scenario.specs()
        if not specs and scenario.crypto is not None:
            specs = (first_listing(scenario.crypto, start_ms),)
        exchange = Exchange(specs, clock, seed=seed)
        return cls(exchange, clock, scenario, seed, background=background)

    def export_state(self) -> LifeState:
        """Where this life has got to, for `resume` (exchange/persist). Only a named scenario can resume."""
        return LifeState(
            scenario=self.scenario.name,
            seed=self.seed,
            start_ms=self.start_ms,
            ran_until_ms=self.ran_until_ms,
            order_n=self._order_n,
            market_slugs=[p.spec.slug for p in self.scenario.markets],
            resolutions=dict(self.resolutions),
            stats={k: v for k, v in self.stats.as_dict().items() if isinstance(v, int)},
            reject_reasons=dict(self.stats.reject_reasons),
        )

    @classmethod
    def resume(cls, exchange: Exchange, clock: Clock, state: LifeState) -> MarketLife:
        """The life `state` describes, on a restored `exchange`: the same named scenario, seed and start,
        so the feed and the hidden fair values follow the same paths; scripted events that already ran
        do not run again; the agents are not funded again and take over their resting orders; order
        ids continue in a range of their own. What restarts: the agents' own random streams and
        estimates, and their first wake-ups."""
        specs = {s.slug: s for s in exchange.markets()}
        missing = [slug for slug in state.market_slugs if slug not in specs]
        if missing:
            raise ConfigError(f"cannot resume scenario {state.scenario!r}: the exchange has no market {missing}")
        plan = named_scenario(state.scenario).on_markets([specs[slug] for slug in state.market_slugs])
        life = cls(exchange, clock, plan, state.seed, start_ms=state.start_ms, background=False)
        life._heap = [e for e in life._heap if e[0] > state.ran_until_ms]
        heapq.heapify(life._heap)
        life.ran_until_ms = state.ran_until_ms
        # A crashed run may have used ids after its last snapshot: continue in a new range.
        life._order_n = (state.order_n // _ORDER_ID_EPOCH + 1) * _ORDER_ID_EPOCH
        life.resolutions = dict(state.resolutions)
        for name, value in state.stats.items():
            if hasattr(life.stats, name) and name != "reject_reasons":
                setattr(life.stats, name, value)
        life.stats.reject_reasons = dict(state.reject_reasons)
        for p in plan.markets:
            life._populate(p, fund=False)
        if life.crypto is not None:
            life.background = True
            life.crypto.start(state.ran_until_ms, fund=False)
        else:
            life.feed.advance_to(state.ran_until_ms)
        return life

    # --- setup -------------------------------------------------------------------------------------

    def _check_events(self, events: tuple[ScriptedEvent, ...]) -> None:
        for e in events:
            method = _EVENT_METHOD[e.action]
            if not callable(getattr(self.exchange, method, None)):
                raise ScenarioUnavailableError(
                    f"scenario {self.scenario.name!r} scripts a {e.action!r} event, which needs "
                    f"Exchange.{method}; this exchange does not have it yet (pending the settlement work)"
                )

    def _fair_model(self, plan: MarketPlan) -> FairValue:
        if plan.above_strike is not None:
            a = plan.above_strike
            strike = a.strike if a.strike is not None else self.scenario.feed.start_price * a.strike_ratio
            return AboveStrikeValue(self.feed, strike, self.start_ms + a.expiry_ms)
        assert plan.logit is not None
        return LogitWalk(plan.logit, self.seed, plan.spec.slug, self.start_ms)

    def _populate(self, plan: MarketPlan, *, fund: bool = True) -> None:
        pop = self.scenario.population_of(plan)
        slug, cid = plan.spec.slug, plan.spec.condition_id
        # Liquidity first: with equal due times the scheduler runs earlier-added agents first.
        for i in range(pop.lps):
            name = f"{slug}/lp-{i}"
            self.add_agent(LiquidityProvider(name, self.rng_for(name), pop.lp_params), cid, fund=fund)
        for i in range(pop.informed):
            name = f"{slug}/informed-{i}"
            self.add_agent(InformedTrader(name, self.rng_for(name), pop.informed_params), cid, fund=fund)
        for i in range(pop.noise):
            name = f"{slug}/noise-{i}"
            self.add_agent(NoiseTaker(name, self.rng_for(name), pop.noise_params), cid, fund=fund)

    def rng_for(self, name: str) -> random.Random:
        """The seeded random stream of one agent (a string seed is hashed stably by `random`)."""
        return random.Random(f"polyoms-life:agent:{name}:{self.seed}")

    def add_agent(
        self,
        agent: Agent,
        condition_id: str,
        *,
        fund: bool = True,
        identity: Identity | None = None,
        fair: FairValue | None = None,
    ) -> AgentSlot:
        """Fund `agent` (its `funding()`) and schedule its first decision on market `condition_id`.

        `fund=False` (a resumed life): the account already holds what it was funded with; the agent
        takes over the orders it has resting. With an `identity` the agent trades from that identity's
        address and owner (funded once for all its markets, never here); `fair` overrides the market's
        hidden fair value as what the agent sees."""
        cid = condition_id.lower()
        if cid not in self.fair:
            raise ConfigError(f"market {condition_id} is not part of scenario {self.scenario.name!r}")
        if agent.name in self._by_name:
            raise ConfigError(f"duplicate agent name {agent.name!r}")
        ex = self.exchange
        spec = ex.market(cid)
        if identity is not None:
            address, owner = identity.address, agent_owner(identity.name)
            pusd = sets = 0
        else:
            address, owner = agent_address(agent.name), agent_owner(agent.name)
            pusd, sets = agent.funding()
            if fund:
                ex.fund(address, pusd, {spec.yes_token_id: sets, spec.no_token_id: sets} if sets else None)
        account = ex.account(address)
        assert account is not None  # funding creates it (a resumed agent was funded before)
        slot = AgentSlot(agent, spec, fair or self.fair[cid], address, owner, account)
        slot.identity = identity
        slot.funded_pusd, slot.funded_sets = pusd, sets
        if not fund:
            slot.orders = {o.order_id: o for o in ex.open_orders(slot.owner) if o.market.lower() == cid}
        slot.action = lambda now: self._wake(slot, now)
        self.slots.append(slot)
        self._by_name[agent.name] = slot
        self._by_owner[(slot.owner, cid)] = slot
        self._reactions[(slot.owner, cid)] = lambda now: self._wake(slot, now, reschedule=False)
        now = max(self.clock.now_ms(), self.start_ms)
        self._schedule(agent.first_wake(now), slot.action)
        return slot

    def price_sources(self) -> list[PriceFeed | OracleFeed]:
        """Every published price stream: the feed, or (crypto) each exchange feed and each oracle."""
        return self.crypto.sources() if self.crypto is not None else [self.feed]

    def add_price_listener(self, listener: PriceListener) -> None:
        """Call `listener` with every feed sample (and, in the crypto scenario, every oracle report; see
        `PriceTick.source`) as it becomes due (e.g. to publish RTDS messages)."""
        if not self._price_listeners:
            self._published_ms = self.feed.last.timestamp_ms
            self._published = [src.last.timestamp_ms for src in self.price_sources()]
            self._schedule(self.feed.next_sample_ms, self._publish)
        self._price_listeners.append(listener)

    # --- scheduling ----------------------------------------------------------------------------------

    def schedule(self, due_ms: int, action: Action) -> None:
        """Run `action(now)` at `due_ms` (the scheduler's order: time, then scheduling order)."""
        self._schedule(due_ms, action)

    def drop_slots(self, slots: list[AgentSlot]) -> None:
        """Stop these agents and forget them (their market resolved): memory stays bounded."""
        gone = {id(s) for s in slots}
        for s in slots:
            s.stopped = True
            s.orders.clear()
            s.followers = []
            self._by_name.pop(s.agent.name, None)
            self._by_owner.pop((s.owner, s.condition_id), None)
            self._reactions.pop((s.owner, s.condition_id), None)
        self.slots = [s for s in self.slots if id(s) not in gone]

    def _schedule(self, due_ms: int, action: Action) -> None:
        self._seq += 1
        heapq.heappush(self._heap, (due_ms, self._seq, action))

    def next_due(self) -> int | None:
        return self._heap[0][0] if self._heap else None

    def _run(self, due: int, action: Action) -> None:
        clock = self._virtual
        if clock is not None and due > clock.now_ms():
            clock.set(due)
        now = self.clock.now_ms()
        if self._advance is not None and now > self._advanced_ms:
            self._advanced_ms = now
            self._advance(now)
        self.stats.events += 1
        action(now)

    def step(self) -> int | None:
        """Run the next event whatever its due time (backtests); returns that time, None if nothing is left."""
        if not self._heap:
            return None
        due, _, action = heapq.heappop(self._heap)
        self._run(due, action)
        return due

    def run_until(self, t_ms: int) -> int:
        """Run every event due at or before `t_ms`; a virtual clock ends at `t_ms`. Returns the events run."""
        heap = self._heap
        n = 0
        while heap and heap[0][0] <= t_ms:
            due, _, action = heapq.heappop(heap)
            self._run(due, action)
            n += 1
        clock = self._virtual
        if clock is not None and t_ms > clock.now_ms():
            clock.set(t_ms)
        if t_ms > self.ran_until_ms:
            self.ran_until_ms = t_ms
        return n

    def run_for(self, ms: int) -> int:
        return self.run_until(self.clock.now_ms() + ms)

    # --- actions -------------------------------------------------------------------------------------

    def _publish(self, now: int) -> None:
        if self.crypto is not None:
            self.crypto.advance(now)
        else:
            self.feed.advance_to(now)
        published = self._published
        for i, src in enumerate(self.price_sources()):
            for tick in src.since(published[i]):
                published[i] = tick.timestamp_ms
                for listener in self._price_listeners:
                    listener(tick)
        self._published_ms = self.feed.last.timestamp_ms
        self._schedule(self.feed.next_sample_ms, self._publish)

    def _on_trades(self, trades: Sequence[Trade], now: int) -> None:
        """Tell each agent whose resting orders one submission hit, per YES-space side, and schedule
        the reaction it asks for."""
        by_owner = self._by_owner
        hits: dict[tuple[tuple[str, str], bool], int] = {}
        for t in trades:
            for m in t.maker_orders:
                who = (m.owner, t.market.lower())
                if who in by_owner:
                    key = (who, (m.side is _BUY) == (m.outcome_index == 0))
                    hits[key] = hits.get(key, 0) + m.matched_amount
        for (who, is_bid), size in hits.items():
            slot = by_owner[who]
            due = slot.agent.on_fill(now, is_bid, size)
            if due is not None and not slot.stopped:
                self._schedule(max(due, now + 1), self._reactions[who])

    def _wake(self, slot: AgentSlot, now: int, reschedule: bool = True) -> None:
        if slot.stopped:
            return
        book = self.exchange.books[slot.condition_id]
        spec = book.spec
        if spec.closed:
            # Resolved or closed for good: the venue cancelled the orders; this agent is done.
            slot.stopped = True
            slot.orders.clear()
            return
        self.stats.wakes += 1
        obs = self._observe(slot, book, spec, now)
        decision = slot.agent.decide(obs, slot.fair.value_at(now))
        for cmd in decision.commands:
            if type(cmd) is AgentCancel:
                self._cancel(slot, cmd.order_id)
            else:
                assert isinstance(cmd, AgentPlace)
                self._place(slot, book, cmd, now)
        if reschedule and decision.wake_ms is not None:
            self._schedule(max(decision.wake_ms, now + 1), slot.action)
        if decision.react_ms is not None:
            self._schedule(max(decision.react_ms, now + 1), self._reactions[(slot.owner, slot.condition_id)])

    def _observe(self, slot: AgentSlot, book: MatchingBook, spec: MarketSpec, now: int) -> Observation:
        tick = book.tick
        orders = slot.orders
        quotes: tuple[AgentQuote, ...] = ()
        own: dict[tuple[bool, int], int] = {}
        if orders:
            qs: list[AgentQuote] = []
            for oid, o in list(orders.items()):
                if not o.resting:
                    del orders[oid]
                    continue
                yp = o.price if o.is_yes else MICRO - o.price
                qs.append(AgentQuote(oid, o.is_bid, yp, o.remaining))
                key = (o.is_bid, yp // tick)
                own[key] = own.get(key, 0) + o.remaining
            quotes = tuple(qs)
        bb, ba, n = book.best_bid, book.best_ask, book.n
        ob, oa = bb, ba
        if own:
            # Skip levels made only of the agent's own orders: what the others are quoting.
            bid_size, ask_size = book.bid_size, book.ask_size
            while ob > 0 and bid_size[ob] <= own.get((True, ob), 0):
                ob = book.next_bid(ob)
            while oa < n and ask_size[oa] <= own.get((False, oa), 0):
                oa = book.next_ask(oa)
        tokens = slot.account.tokens
        return Observation(
            now,
            tick,
            spec.min_size,
            spec.fee,
            spec.accepting_orders and spec.active,
            bb * tick if bb > 0 else None,
            ba * tick if ba < n else None,
            book.bid_size[bb] if bb > 0 else 0,
            book.ask_size[ba] if ba < n else 0,
            ob * tick if ob > 0 else None,
            oa * tick if oa < n else None,
            tokens.get(slot.yes, 0) - tokens.get(slot.no, 0),
            quotes,
        )

    def _reject(self, reason: str) -> None:
        stats = self.stats
        stats.rejects += 1
        stats.reject_reasons[reason] = stats.reject_reasons.get(reason, 0) + 1

    def _cancel(self, slot: AgentSlot, order_id: str) -> None:
        res = self.exchange.cancel(order_id, slot.owner)
        slot.orders.pop(order_id, None)
        if res.canceled:
            self.stats.cancels += 1

    def next_order_id(self) -> str:
        """A synthetic order id shaped like the venue's (an order hash): 0x + 64 hex, unique per seed."""
        self._order_n += 1
        return f"0x{self._order_prefix}{self._order_n:048x}"

    def _place(self, slot: AgentSlot, book: MatchingBook, cmd: AgentPlace, now: int) -> None:
        tick = book.tick
        price, size = cmd.price, cmd.size - cmd.size % SIZE_STEP
        if size <= 0 or price % tick or not tick <= price <= MICRO - tick:
            self._reject("BadCommand")
            return
        acct = slot.account
        # Sell what is held before buying the other outcome: a YES-space bid is SELL NO when the agent
        # has the NO shares, else BUY YES; a YES-space ask is SELL YES, else BUY NO at 1 − p.
        if cmd.is_bid:
            if acct.free_tokens(slot.no) >= size:
                token, side, tprice = slot.no, _SELL, MICRO - price
            else:
                token, side, tprice = slot.yes, _BUY, price
        elif acct.free_tokens(slot.yes) >= size:
            token, side, tprice = slot.yes, _SELL, price
        else:
            token, side, tprice = slot.no, _BUY, MICRO - price
        if cmd.take:
            if side is _BUY:
                # pUSD-denominated, as market BUYs are: whole cents, at least the $1 minimum.
                budget = size * tprice // MICRO
                budget = max(budget - budget % CENT, MICRO)
                maker, taker = budget, budget * MICRO // tprice
            else:
                maker, taker = size, size * tprice // MICRO
            order_type = _FAK
            post_only = False
        else:
            cash = size * tprice // MICRO  # exact: sizes are whole 0.01 shares, prices whole ticks
            maker, taker = (cash, size) if side is _BUY else (size, cash)
            order_type = _GTC
            post_only = cmd.post_only
        oid = self.next_order_id()
        order = EngineOrder(oid, slot.address, slot.owner, token, side, maker, taker, order_type, 0, post_only, now)
        try:
            result = self.exchange.submit(order)
        except OrderError as exc:
            self._reject(type(exc).__name__)
            return
        stats = self.stats
        stats.orders += 1
        if result.trades:
            stats.trades += len(result.trades)
            filled = sum(t.size for t in result.trades)
            stats.shares_traded += filled
            for follower in slot.followers:
                copy = follower.agent
                if isinstance(copy, CopyTrader) and not follower.stopped:
                    self._schedule(copy.on_leader_trade(now, cmd.is_bid, filled), follower.action)
        rec = self.exchange.get_order(oid)
        if rec is not None and rec.resting:
            slot.orders[oid] = rec

    def _event_action(self, event: ScriptedEvent) -> Action:
        return lambda now: self._scripted(event, now)

    def _scripted(self, event: ScriptedEvent, now: int) -> None:
        plan = next(p for p in self.plans.values() if p.spec.slug == event.market)
        cid = plan.spec.condition_id
        if event.action == TICK_SIZE_EVENT:
            self.exchange.change_tick_size(cid, event.value)
        elif event.action == RESOLVE_EVENT:
            yes = self._outcome(plan, event, now)
            self.resolutions[cid.lower()] = yes
            self.exchange.resolve(cid, plan.spec.yes_token_id if yes else plan.spec.no_token_id)

    def _outcome(self, plan: MarketPlan, event: ScriptedEvent, now: int) -> bool:
        if event.value:
            return event.value.upper() == "YES"
        fair = self.fair[plan.spec.condition_id.lower()]
        if isinstance(fair, AboveStrikeValue):
            # Settled on the published price, as resolution sources do: above the strike or not.
            return self.feed.advance_to(now).value > fair.strike
        # An event market settles YES with its hidden probability, drawn from its own stream.
        rng = random.Random(f"polyoms-life:resolve:{plan.spec.slug}:{self.seed}")
        return rng.random() < fair.probability_at(now)

    # --- reading -----------------------------------------------------------------------------------

    def agent(self, name: str) -> AgentSlot:
        return self._by_name[name]

    @property
    def identities(self) -> list[Identity]:
        """The persistent traders (crypto scenario): names, addresses, kinds, skills, leaders — the truth."""
        return list(self.crypto.pool) if self.crypto is not None else []

    def true_probability(self, condition_id: str, t_ms: int | None = None) -> float:
        """The hidden truth P(YES) of a market now or at a later `t_ms`: for a crypto market P(oracle at
        end ≥ start price | the oracle's path so far); 0 or 1 once resolved."""
        cid = condition_id.lower()
        if cid in self.resolutions:
            return 1.0 if self.resolutions[cid] else 0.0
        return self.fair[cid].probability_at(self.clock.now_ms() if t_ms is None else t_ms)

    def identity_pnl(self, name: str) -> int:
        """An identity's PnL over all its markets (micro-pUSD): pUSD now plus unresolved tokens marked to
        the truth, minus what it was funded with."""
        crypto = self.crypto
        if crypto is None:
            raise NotFoundError(f"no identity {name!r}: only the crypto scenario has identities")
        ident = next((i for i in crypto.pool if i.name == name), None)
        if ident is None:
            raise NotFoundError(f"no identity {name!r}")
        bal = self.exchange.balances(ident.address)
        total = bal.pusd
        for cid, lm in crypto.live.items():
            spec = lm.spec
            yes, no = bal.token(spec.yes_token_id).balance, bal.token(spec.no_token_id).balance
            if yes or no:
                fv = self.fair_value(cid) if cid in self.fair else MICRO // 2
                total += yes * fv // MICRO + no * (MICRO - fv) // MICRO
        return total - funding_of(crypto.config.pool, ident.kind)

    def fair_value(self, condition_id: str, t_ms: int | None = None) -> int:
        """The hidden fair value (P(YES), micro) of a market now or at a later `t_ms`; 0 or 10^6 once resolved."""
        cid = condition_id.lower()
        if cid in self.resolutions:
            return MICRO if self.resolutions[cid] else 0
        return self.fair[cid].value_at(self.clock.now_ms() if t_ms is None else t_ms)

    def marked_value(self, name: str, fair: int | None = None) -> int:
        """An agent's holdings in micro-pUSD, tokens marked to the hidden fair value (or `fair`)."""
        slot = self._by_name[name]
        fv = self.fair_value(slot.condition_id) if fair is None else fair
        bal = self.exchange.balances(slot.address)
        yes, no = bal.token(slot.yes).balance, bal.token(slot.no).balance
        return bal.pusd + yes * fv // MICRO + no * (MICRO - fv) // MICRO

    def pnl(self, name: str, fair: int | None = None) -> int:
        """Trading PnL (micro-pUSD) marked to fair value: holdings now minus what the agent was funded
        with, both valued at the same fair value (a full set is worth exactly 1 pUSD either way)."""
        slot = self._by_name[name]
        return self.marked_value(name, fair) - slot.funded_pusd - slot.funded_sets

    def volume(self, name: str) -> int:
        """Micro-shares the agent traded, as taker or maker."""
        slot = self._by_name[name]
        owner = slot.owner
        total = 0
        for t in self.exchange.trades(owner):
            if t.owner == owner:
                total += t.size
            total += sum(m.matched_amount for m in t.maker_orders if m.owner == owner)
        return total

    @property
    def funded_pusd(self) -> int:
        return sum(s.funded_pusd for s in self.slots)

    def funded_tokens(self, token_id: str) -> int:
        return sum(s.funded_sets for s in self.slots if token_id in (s.yes, s.no))
