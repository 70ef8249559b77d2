"""Properties over random sequences of orders, cancels and clock moves on funded accounts.

After every step: `audit()` is clean (pUSD and every token conserved — MINTs and MERGEs move YES
supply, NO supply and locked collateral together —, no negative balance, reservations equal to what
open orders hold and covered by balances, level totals right, book never crossed at rest). A
refused order (FOK kill, FAK miss, any validation error) changes nothing at all. Every match obeys
price-time priority and trades at the makers' prices.
"""

from __future__ import annotations

from dataclasses import dataclass

from exchange_helpers import START_MS, User
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from polyoms.core.clock import VirtualClock
from polyoms.core.enums import OrderType, Side
from polyoms.core.errors import FokNotFilledError, OrderError
from polyoms.core.units import MICRO
from polyoms.exchange.audit import audit
from polyoms.exchange.engine import EngineOrder, Exchange, SubmitResult
from polyoms.exchange.fees import FeeCurve
from polyoms.exchange.markets import MarketSpec, binary_market
from polyoms.exchange.orders import Order
from polyoms.exchange.trades import MatchType

COARSE = binary_market("coarse", "Coarse?", tick="0.1", min_size=MICRO, fee=FeeCurve("0.07", 1))
CENT = binary_market("cent", "Cent?", min_size=MICRO)
FEE2 = binary_market("fee2", "Fee e=2?", min_size=MICRO, fee=FeeCurve("0.25", 2))
MARKETS: tuple[MarketSpec, ...] = (COARSE, CENT, FEE2)
N_USERS = 4


@dataclass(frozen=True)
class Limit:
    user: int
    market: int
    yes: bool
    side: Side
    yes_price: int  # micro, YES-space; snapped to the market's grid
    size_k: int  # size in units of 0.0001 share (keeps GTC amounts exact on 0.1/0.01 grids)
    ot: OrderType
    post_only: bool
    ttl_s: int


@dataclass(frozen=True)
class Market:
    user: int
    market: int
    yes: bool
    side: Side
    amount: int  # pUSD budget for a BUY, shares for a SELL (micro)
    worst: int
    ot: OrderType


@dataclass(frozen=True)
class Cancel:
    user: int
    pick: int
    everything: bool


@dataclass(frozen=True)
class Advance:
    ms: int


# Prices gather around the middle (and shrink towards it) so that orders from both sides cross often.
yes_prices = st.integers(-8, 8).map(lambda d: (50 + d) * 10_000)
worst_prices = st.integers(-45, 45).map(lambda d: (50 + d) * 10_000)
limits = st.builds(
    Limit,
    user=st.integers(0, N_USERS - 1),
    market=st.integers(0, len(MARKETS) - 1),
    yes=st.booleans(),
    side=st.sampled_from(Side),
    yes_price=yes_prices,
    size_k=st.integers(10_000, 300_000),
    ot=st.sampled_from([OrderType.GTC, OrderType.GTC, OrderType.GTD, OrderType.FOK, OrderType.FAK]),
    post_only=st.sampled_from([False, False, False, True]),
    ttl_s=st.integers(61, 240),
)
market_orders = st.builds(
    Market,
    user=st.integers(0, N_USERS - 1),
    market=st.integers(0, len(MARKETS) - 1),
    yes=st.booleans(),
    side=st.sampled_from(Side),
    amount=st.integers(1_000_000, 15_000_000) | st.integers(1, 2_000_000),
    worst=worst_prices,
    ot=st.sampled_from([OrderType.FOK, OrderType.FAK]),
)
cancels = st.builds(Cancel, user=st.integers(0, N_USERS - 1), pick=st.integers(0, 50), everything=st.booleans())
advances = st.builds(Advance, ms=st.integers(0, 90_000))
# Mostly limit orders (the kind that builds books), then marketable orders, cancels and time.
step = st.integers(0, 9).flatmap(
    lambda k: limits if k < 6 else market_orders if k < 8 else cancels if k < 9 else advances
)
steps = st.lists(step, min_size=10, max_size=60)


def snap(price: int, spec: MarketSpec) -> int:
    t = spec.tick.micro
    return min(max(price - price % t, t), MICRO - t)


class World:
    def __init__(self) -> None:
        self.clock = VirtualClock(START_MS)
        self.ex = Exchange(MARKETS, self.clock, seed=3)
        self.users = [User(f"0x{i + 1:040x}", f"key-{i}") for i in range(N_USERS)]
        tokens = {t: 60 * MICRO for spec in MARKETS for t in spec.token_ids}
        for i, u in enumerate(self.users):
            # The last user is poor, to exercise refusals for funds.
            self.ex.fund(u.address, (3 if i == N_USERS - 1 else 250) * MICRO, tokens)
        self.n = 0

    def next_id(self) -> str:
        self.n += 1
        return f"0x{self.n:064x}"

    def order_for(self, step: Limit | Market) -> EngineOrder:
        spec = MARKETS[step.market]
        u = self.users[step.user]
        token = spec.yes_token_id if step.yes else spec.no_token_id
        if isinstance(step, Limit):
            yes_price = snap(step.yes_price, spec)
            price = yes_price if step.yes else MICRO - yes_price
            shares = step.size_k * 100
            cash = shares * price // MICRO
            maker, taker = (cash, shares) if step.side is Side.BUY else (shares, cash)
            exp = self.clock.now_ms() // 1000 + step.ttl_s if step.ot is OrderType.GTD else 0
            post_only = step.post_only and step.ot in (OrderType.GTC, OrderType.GTD)
            return EngineOrder(
                self.next_id(), u.address, u.owner, token, step.side, maker, taker, step.ot, exp, post_only
            )
        if step.side is Side.BUY:
            maker, taker = step.amount, step.amount * MICRO // step.worst
        else:
            maker, taker = step.amount, step.amount * step.worst // MICRO
        return EngineOrder(self.next_id(), u.address, u.owner, token, step.side, maker, taker, step.ot)

    def state(self) -> tuple[object, ...]:
        ex = self.ex
        accts = tuple(
            (a.address, a.pusd, a.pusd_reserved, a.pusd_allowance, tuple(sorted(a.tokens.items())),
             tuple(sorted(a.token_reserved.items())))
            for a in ex.ledger
        )  # fmt: skip
        books = tuple((b.best_bid, b.best_ask, tuple(b.bid_size), tuple(b.ask_size)) for b in ex.books.values())
        orders = tuple((o.order_id, o.remaining, o.size_matched, o.status, o.reserved) for o in ex.all_orders.values())
        return accts, books, orders, len(ex.all_trades), tuple(sorted(ex.ledger.collateral_locked.items()))


def check_match(w: World, o: Order, r: SubmitResult) -> None:
    """Best level first, FIFO inside a level, every maker but the last one consumed, maker prices,
    exact amounts."""
    ex = w.ex
    book = ex.books[o.market]
    tick = book.tick
    yes_levels = [t.price if o.is_yes else MICRO - t.price for t in r.trades]
    assert yes_levels == (sorted(yes_levels) if o.is_bid else sorted(yes_levels, reverse=True))
    assert len(set(yes_levels)) == len(yes_levels)
    fills = [(t, mf) for t in r.trades for mf in t.maker_orders]
    for _, mf in fills[:-1]:
        maker = ex.get_order(mf.order_id)
        assert maker is not None and maker.remaining == 0 and not maker.resting
    for t in r.trades:
        seqs = [ex.get_order(mf.order_id).seq for mf in t.maker_orders]  # type: ignore[union-attr]
        assert seqs == sorted(seqs)
        for mf in t.maker_orders:
            maker = ex.get_order(mf.order_id)
            assert maker is not None and mf.price == maker.price  # trades at the maker's price
            assert (t.price if o.is_yes else MICRO - t.price) == (maker.price if maker.is_yes else MICRO - maker.price)
        # Nobody older is still waiting at a level the taker traded at.
        level = (t.price if o.is_yes else MICRO - t.price) // tick
        last = ex.get_order(t.maker_orders[-1].order_id)
        assert last is not None
        assert all(q.seq >= last.seq for q in book.queue(not o.is_bid, level))
    # Nothing better than the last level traded is left on the makers' side.
    last_level = yes_levels[-1] // tick
    if o.is_bid:
        assert book.best_ask >= last_level
    else:
        assert book.best_bid <= last_level
    # Fills respect the taker's limit, and every amount follows the rounding rule exactly.
    for t in r.trades:
        if o.side is Side.BUY:
            assert t.price * o.taker_amount <= o.maker_amount * MICRO
        else:
            assert t.price * o.maker_amount >= o.taker_amount * MICRO
        taker_total = 0
        for mf in t.maker_orders:
            x = mf.matched_amount
            taker_part = -(-x * t.price // MICRO) if o.side is Side.BUY else x * t.price // MICRO
            taker_total += taker_part
            assert mf.pusd == (x * mf.price // MICRO if mf.side is Side.BUY else -(-x * mf.price // MICRO))
            if mf.match_type is MatchType.COMPLEMENTARY:
                assert mf.asset_id == o.asset_id and mf.side is not o.side and mf.pusd == taker_part
            else:
                assert mf.asset_id != o.asset_id and mf.side is o.side
                assert mf.match_type is (MatchType.MINT if o.side is Side.BUY else MatchType.MERGE)
                assert mf.pusd + taker_part == x  # one full set per share
        assert taker_total == t.pusd
        assert t.size == sum(mf.matched_amount for mf in t.maker_orders)
    # The taker's own accounting.
    shares = sum(t.size for t in r.trades)
    spent = sum(t.pusd for t in r.trades)
    if o.side is Side.BUY and o.order_type in (OrderType.FOK, OrderType.FAK):
        assert o.size_matched == spent <= o.original_size
    else:
        assert o.size_matched == shares
        assert o.size_matched + o.remaining == o.original_size if o.resting else o.size_matched <= o.original_size
    assert (r.making_amount, r.taking_amount) == ((spent, shares) if o.side is Side.BUY else (shares, spent))


def run(steps_: list[Limit | Market | Cancel | Advance]) -> World:
    w = World()
    ex = w.ex
    funded_tokens = dict(ex.ledger.funded_tokens)
    for step in steps_:
        if isinstance(step, Advance):
            w.clock.advance(step.ms)
            ex.expire()
        elif isinstance(step, Cancel):
            u = w.users[step.user]
            if step.everything:
                ex.cancel_all(u.owner)
            else:
                mine = ex.open_orders(u.owner)
                if mine:
                    res = ex.cancel(mine[step.pick % len(mine)].order_id, u.owner)
                    assert len(res.canceled) == 1
        else:
            eo = w.order_for(step)
            before = w.state()
            try:
                r = ex.submit(eo)
            except OrderError as err:
                assert w.state() == before, f"refused order changed state: {err}"
                if isinstance(err, FokNotFilledError):
                    assert ex.get_order(eo.order_id) is None
            else:
                o = ex.get_order(eo.order_id)
                assert o is not None
                if r.trades:
                    check_match(w, o, r)
                if o.order_type is OrderType.FOK:
                    assert r.trades and not o.resting
                    if o.side is Side.SELL:
                        assert o.size_matched == o.original_size
                    else:
                        assert o.original_size - o.size_matched <= 10
                if o.order_type in (OrderType.FOK, OrderType.FAK):
                    assert not o.resting
        problems = audit(ex)
        assert problems == [], problems
        fees = sum(t.fee for t in ex.all_trades)
        assert ex.ledger.fee_collector.pusd == fees
        assert ex.ledger.funded_tokens == funded_tokens
    return w


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps)
def test_random_sequences_keep_every_invariant(steps_: list[Limit | Market | Cancel | Advance]) -> None:
    run(steps_)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(limits, min_size=20, max_size=80))
def test_dense_limit_flow_keeps_every_invariant(steps_: list[Limit]) -> None:
    run(list(steps_))


def test_a_long_fixed_sequence_trades_and_conserves() -> None:
    """A deterministic smoke run that is sure to mint, merge and trade complementarily."""
    rows: list[Limit | Market | Cancel | Advance] = []
    for k in range(200):
        rows.append(
            Limit(k % N_USERS, k % 3, k % 2 == 0, Side.BUY if k % 4 < 2 else Side.SELL, (40 + k * 7 % 20) * 10_000,
                  50_000 + k * 1_337 % 90_000, OrderType.GTC, False, 100)
        )  # fmt: skip
        if k % 5 == 0:
            rows.append(Market(k % 3, k % 3, k % 3 == 0, Side.BUY, 2_000_000 + k, 700_000, OrderType.FAK))
    w = run(rows)
    kinds = {mf.match_type for t in w.ex.all_trades for mf in t.maker_orders}
    assert len(kinds) == 3
