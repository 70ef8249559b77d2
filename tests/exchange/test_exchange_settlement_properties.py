"""Properties of settlement with failures, retries, tick changes and resolutions in random sequences.

After every step: `audit()` is clean (nothing negative; pUSD and every token conserved with pending
proceeds, redemptions and burns accounted; reservations and pending amounts exactly what open orders
and unmined trades explain; hashes only on mined trades); a refused order changed nothing; and every
balance equals what the account was funded with plus the transfers of the trades that did not FAIL
(read from the trade records alone) plus its redemption payouts — so a FAILED trade leaves no trace.
At the end, once the clock has run far enough, every trade is final and nothing is pending.
"""

from __future__ import annotations

from dataclasses import dataclass

from exchange_helpers import START_MS, User, signed_flows
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from polyoms.core.clock import VirtualClock
from polyoms.core.enums import OrderType, Side
from polyoms.core.errors import OrderError
from polyoms.core.units import MICRO
from polyoms.exchange.audit import audit
from polyoms.exchange.engine import EngineOrder, Exchange
from polyoms.exchange.fees import FeeCurve
from polyoms.exchange.markets import MarketSpec, binary_market
from polyoms.exchange.settlement import SettlementConfig
from polyoms.exchange.trades import TRADE_CONFIRMED, TRADE_FAILED

MARKETS: tuple[MarketSpec, ...] = (
    binary_market("s-coarse", "Coarse?", tick="0.1", min_size=MICRO, fee=FeeCurve("0.07", 1)),
    binary_market("s-cent", "Cent?", min_size=MICRO, fee=FeeCurve("0.04", 1)),
    binary_market("s-free", "Fee-free?", min_size=MICRO),
)
TICKS = ("0.1", "0.01", "0.005")
N_USERS = 4
CONFIG = SettlementConfig(
    mined_delay_ms=1_000, confirmed_delay_ms=3_000, retry_delay_ms=2_000, failure_probability=0.3, retry_probability=0.2
)


@dataclass(frozen=True)
class Limit:
    user: int
    market: int
    yes: bool
    side: Side
    yes_price: int
    shares_c: int  # hundredths of a share: amounts stay exact on every grid used
    ot: OrderType


@dataclass(frozen=True)
class Cancel:
    user: int
    pick: int


@dataclass(frozen=True)
class Advance:
    ms: int


@dataclass(frozen=True)
class TickChange:
    market: int
    tick: str


@dataclass(frozen=True)
class Resolve:
    market: int
    yes: bool


limits = st.builds(
    Limit,
    user=st.integers(0, N_USERS - 1),
    market=st.integers(0, len(MARKETS) - 1),
    yes=st.booleans(),
    side=st.sampled_from(Side),
    yes_price=st.integers(-6, 6).map(lambda d: (50 + d) * 10_000),
    shares_c=st.integers(100, 3_000),
    ot=st.sampled_from([OrderType.GTC, OrderType.GTC, OrderType.GTC, OrderType.FAK, OrderType.FOK]),
)
# Mostly orders and time; a tick change now and then; a resolution rarely (it ends a market's trading).
step = st.integers(0, 59).flatmap(
    lambda k: (
        limits
        if k < 38
        else st.builds(Cancel, st.integers(0, N_USERS - 1), st.integers(0, 30))
        if k < 42
        else st.builds(Advance, st.integers(0, 4_000))
        if k < 55
        else st.builds(TickChange, st.integers(0, len(MARKETS) - 1), st.sampled_from(TICKS))
        if k < 59
        else st.builds(Resolve, st.integers(0, len(MARKETS) - 1), st.booleans())
    )
)


class World:
    def __init__(self, seed: int) -> None:
        self.clock = VirtualClock(START_MS)
        self.ex = Exchange(MARKETS, self.clock, seed=seed, settlement=CONFIG)
        self.users = [User(f"0x{i + 1:040x}", f"key-{i}") for i in range(N_USERS)]
        self.funded: dict[str, tuple[int, dict[str, int]]] = {}
        for i, u in enumerate(self.users):
            pusd = (4 if i == N_USERS - 1 else 200) * MICRO  # the last user is poor
            tokens = {t: 40 * MICRO for spec in MARKETS for t in spec.token_ids}
            self.ex.fund(u.address, pusd, tokens)
            self.funded[u.address] = (pusd, tokens)
        self.n = 0

    def order(self, s: Limit) -> EngineOrder:
        spec = self.ex.market(MARKETS[s.market].condition_id)
        tick = spec.tick.micro
        # Bids lean up and asks down (in YES space), so that many orders cross.
        lean = 30_000 if (s.side is Side.BUY) is s.yes else -30_000
        yes_price = min(max(s.yes_price + lean - (s.yes_price + lean) % tick, tick), MICRO - tick)
        price = yes_price if s.yes else MICRO - yes_price
        shares = s.shares_c * 10_000
        cash = shares * price // MICRO
        maker, taker = (cash, shares) if s.side is Side.BUY else (shares, cash)
        u = self.users[s.user]
        self.n += 1
        token = spec.yes_token_id if s.yes else spec.no_token_id
        return EngineOrder(f"0x{self.n:064x}", u.address, u.owner, token, s.side, maker, taker, s.ot)

    def state(self) -> tuple[object, ...]:
        ex = self.ex
        accts = tuple(
            (a.address, a.pusd, a.pusd_reserved, a.pusd_pending, tuple(sorted(a.tokens.items())),
             tuple(sorted(a.token_reserved.items())), tuple(sorted(a.token_pending.items())))
            for a in ex.ledger
        )  # fmt: skip
        orders = tuple((o.order_id, o.remaining, o.size_matched, o.status) for o in ex.all_orders.values())
        trades = tuple((t.trade_id, t.status) for t in ex.all_trades)
        return accts, orders, trades, tuple(sorted(ex.ledger.collateral_locked.items()))

    def check_ledger(self) -> None:
        """Balances == funding + transfers of trades that did not fail + redemption payouts."""
        ex = self.ex
        want: dict[str, tuple[int, dict[str, int]]] = {a: (p, dict(t)) for a, (p, t) in self.funded.items()}
        fees = 0
        for t in ex.all_trades:
            if t.status == TRADE_FAILED:
                continue
            fees += t.fee
            for addr, tid, delta in signed_flows(t):
                pusd, toks = want[addr]
                if tid is None:
                    want[addr] = (pusd + delta, toks)
                else:
                    toks[tid] = toks.get(tid, 0) + delta
        for spec in MARKETS:
            res = ex.resolution(spec.condition_id)
            if res is None:
                continue
            for addr, paid in res.payouts.items():
                want[addr] = (want[addr][0] + paid, want[addr][1])
            for _pusd, toks in want.values():
                toks[spec.yes_token_id] = toks[spec.no_token_id] = 0
        for addr, (pusd, toks) in want.items():
            bal = ex.balances(addr)
            assert bal.pusd == pusd, addr
            assert {k: v for k, v in toks.items() if v} == {k: v.balance for k, v in bal.tokens.items() if v.balance}
        assert ex.ledger.fee_collector.pusd == fees


def run(steps_: list[Limit | Cancel | Advance | TickChange | Resolve], seed: int) -> World:
    w = World(seed)
    ex = w.ex
    for s in steps_:
        if isinstance(s, Advance):
            w.clock.advance(s.ms)
            ex.advance()
        elif isinstance(s, Cancel):
            mine = ex.open_orders(w.users[s.user].owner)
            if mine:
                assert ex.cancel(mine[s.pick % len(mine)].order_id, w.users[s.user].owner).canceled
        elif isinstance(s, TickChange):
            cid = MARKETS[s.market].condition_id
            if not ex.market(cid).resolved:
                canceled = ex.change_tick_size(cid, s.tick)
                assert all(not ex.all_orders[oid].resting for oid in canceled)
                assert all(ex.market(cid).tick.on_grid(o.price) for o in ex.open_orders(market=cid))
        elif isinstance(s, Resolve):
            spec = MARKETS[s.market]
            if not ex.market(spec.condition_id).resolved:
                ex.resolve(spec.condition_id, spec.yes_token_id if s.yes else spec.no_token_id)
                assert not ex.open_orders(market=spec.condition_id)
        else:
            eo = w.order(s)
            before = w.state()
            try:
                ex.submit(eo)
            except OrderError as err:
                assert w.state() == before, f"refused order changed state: {err}"
        problems = audit(ex)
        assert problems == [], problems
        w.check_ledger()
    w.clock.advance(3_600_000)
    ex.advance()
    assert ex.in_flight_trades() == [] and audit(ex) == []
    assert all(t.status in (TRADE_CONFIRMED, TRADE_FAILED) for t in ex.all_trades)
    for a in ex.ledger:
        assert a.pusd_pending == 0 and not any(a.token_pending.values())
    w.check_ledger()
    return w


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(step, min_size=20, max_size=60), st.integers(0, 2**16))
def test_random_sequences_with_failures_keep_every_invariant(
    steps_: list[Limit | Cancel | Advance | TickChange | Resolve], seed: int
) -> None:
    run(steps_, seed)


def test_a_long_fixed_sequence_fails_some_trades_and_conserves() -> None:
    rows: list[Limit | Cancel | Advance | TickChange | Resolve] = []
    for k in range(240):
        side = Side.BUY if k % 4 < 2 else Side.SELL
        rows.append(Limit(k % N_USERS, k % 2, k % 3 == 0, side, (44 + k * 7 % 13) * 10_000, 300 + k * 37 % 900,
                          OrderType.GTC))  # fmt: skip
        if k % 7 == 0:
            rows.append(Advance(900))
        if k == 120:
            rows.append(TickChange(1, "0.1"))
    rows.append(Resolve(0, True))
    w = run(rows, seed=11)
    statuses = [t.status for t in w.ex.all_trades]
    assert statuses.count(TRADE_FAILED) >= 5 and statuses.count(TRADE_CONFIRMED) >= 5
