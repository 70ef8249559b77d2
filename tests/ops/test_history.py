"""The pure history/PnL computations (`ops.history`), the mark-to-market rules of the ledger and the
desk's pricing helpers (`order_price`, `avg_price`, `buy_budget`): exact micro arithmetic."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import pytest

from polyoms.core.clock import VirtualClock
from polyoms.core.enums import Side
from polyoms.core.market_events import BookSnapshot
from polyoms.core.units import MICRO, TICK_SIZES
from polyoms.core.user_events import TradeStatus
from polyoms.oms.fills import Fill, FillTier, Role
from polyoms.oms.journal import open_journal
from polyoms.oms.ledger import Position, WalletLedger, mid_mark
from polyoms.oms.oms_state import OmsState
from polyoms.ops import history as hist
from polyoms.ops.desk import avg_price, buy_budget, buy_fee_bound, order_price
from polyoms.polymarket.protocol.amounts import market_amounts
from tests.oms.oms_helpers import NO, OWNER, START_MS, WALLET, YES, intent, oid, trade

M = MICRO


def fill(
    n: int,
    side: Side,
    price: int,
    size: int,
    fee: int = 0,
    tier: FillTier = FillTier.CONFIRMED,
    token: str = YES,
    market: str = "0xm1",
) -> Fill:
    return Fill(
        f"t{n}",
        f"o{n}",
        WALLET,
        market,
        token,
        side,
        Role.TAKER,
        price,
        size,
        price * size // M,
        fee,
        TradeStatus.CONFIRMED if tier is FillTier.CONFIRMED else TradeStatus.MATCHED,
        tier,
        START_MS + n,
        START_MS + n,
        no=n,
    )


def test_mid_and_liquidation_marks() -> None:
    assert mid_mark(410_000, 440_000) == 425_000
    assert mid_mark(1, 2) == 2 and mid_mark(3, 4) == 4 and mid_mark(5, 6) == 6  # half to even
    assert mid_mark(None, 440_000) is None and mid_mark(410_000, None) is None
    long, short, flat = Position(YES, confirmed=10 * M), Position(YES, confirmed=-10 * M), Position(YES)
    assert long.liquidation_mark(400_000, 450_000) == 400_000
    assert short.liquidation_mark(400_000, 450_000) == 450_000
    assert flat.liquidation_mark(400_000, 450_000) is None
    assert long.liquidation_mark(None, 450_000) is None
    # One rounding rule: value (half to even) and unrealized = value - cost.
    p = Position(YES, confirmed=3 * M + 1, cost=M)
    assert p.value(500_000) == 1_500_000  # 1.5000005 rounds to even
    assert p.unrealized(500_000) == 500_000


def test_market_pnl_by_average_cost() -> None:
    lg = WalletLedger(WALLET)
    fills = [
        fill(1, Side.BUY, 400_000, 10 * M, fee=20_000),  # 4.00 + 0.02
        fill(2, Side.BUY, 600_000, 10 * M),  # 6.00
        fill(3, Side.SELL, 700_000, 5 * M, fee=10_000),  # 3.50 - 0.01
        fill(4, Side.BUY, 500_000, 2 * M, tier=FillTier.PROVISIONAL),
        fill(5, Side.BUY, 300_000, 4 * M, token=NO, market="0xm2"),
    ]
    for f in fills:
        lg.add_fill(f)
    voided = fill(6, Side.SELL, 500_000, 1 * M, tier=FillTier.VOIDED)
    (m1, m2) = hist.market_pnl(lg.positions.values(), [*fills, voided], {YES: 550_000})
    # cost 10.02 for 20 shares (avg 0.501); selling 5 releases 2.505 against 3.49: realized 0.985.
    assert (m1.market, m1.fills, m1.provisional, m1.voided) == ("0xm1", 5, 1, 1)
    assert (m1.bought, m1.sold, m1.buy_cash, m1.sell_cash) == (20 * M, 5 * M, 10_020_000, 3_490_000)
    assert (m1.fees, m1.realized, m1.position, m1.cost) == (30_000, 985_000, 15 * M, 7_515_000)
    assert m1.unrealized == 15 * 550_000 - 7_515_000
    assert m1.realized == lg.positions[YES].realized  # the ledger's number, not a second computation
    assert (m2.market, m2.bought, m2.position, m2.unrealized) == ("0xm2", 4 * M, 4 * M, None)  # NO has no mark
    # A position that does not know its market is named by the caller.
    orphan = Position("777", confirmed=M, cost=400_000, realized=5)
    (m,) = hist.market_pnl([orphan], [], {}, market_of=lambda t: "0xm3" if t == "777" else "")
    assert (m.market, m.realized, m.unrealized) == ("0xm3", 5, None)


def test_equity_curve_replays_the_journal(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite"
    state = OmsState(VirtualClock(START_MS))
    open_journal(path, state)
    state.add_wallet(WALLET, [OWNER])
    state.set_balance(WALLET, cash=1_000 * M)
    buy, sell = oid(), oid()
    state.submit(intent(buy, side=Side.BUY, price=500_000, size=10 * M))
    state.on_trade_event(trade("T1", buy, TradeStatus.MATCHED, price=500_000))
    state.on_trade_event(trade("T1", buy, TradeStatus.CONFIRMED, price=500_000))
    # A fill in the complement moves the mark of what we hold: NO at 0.30 -> YES at 0.70.
    other = oid()
    state.submit(intent(other, side=Side.BUY, price=300_000, size=5 * M, token=NO))
    state.on_trade_event(trade("T2", other, TradeStatus.MATCHED, price=300_000, size=5 * M, token=NO))
    state.on_trade_event(trade("T2", other, TradeStatus.FAILED, price=300_000, size=5 * M, token=NO))
    state.submit(intent(sell, side=Side.SELL, price=600_000, size=10 * M))
    state.on_trade_event(trade("T3", sell, TradeStatus.MATCHED, side=Side.SELL, price=600_000))
    state.on_trade_event(trade("T3", sell, TradeStatus.CONFIRMED, side=Side.SELL, price=600_000))
    state.flush(wait=True)

    tracker = hist.equity_curve(hist.journal_rows(path), WALLET, {YES: NO, NO: YES})
    got = [(p.cause, p.cash, p.value, p.equity, p.realized) for p in tracker.points]
    assert got == [
        ("balance", 1_000 * M, 0, 1_000 * M, 0),
        ("fill", 995 * M, 5 * M, 1_000 * M, 0),  # bought 10 at 0.50, marked at 0.50
        ("mark", 995 * M, 7 * M, 1_002 * M, 0),  # NO matched at 0.30: YES marked 0.70 (then voided)
        ("mark", 995 * M, 6 * M, 1_001 * M, 0),  # our SELL matched at 0.60 (provisional)
        ("fill", 1_001 * M, 0, 1_001 * M, 1 * M),  # confirmed: realized 1.00, flat
    ]
    assert tracker.points[-1].cash == state.ledger(WALLET).cash
    assert all(a.ts_ms <= b.ts_ms for a, b in zip(tracker.points, tracker.points[1:], strict=False))
    now = hist.now_point(START_MS + 10, state.ledger(WALLET), {})
    assert (now.cause, now.equity, now.realized) == ("now", 1_001 * M, 1 * M)


def test_unmarked_positions_count_at_cost_and_thinning() -> None:
    lg = WalletLedger(WALLET, cash=100 * M)
    lg.position(YES).book(10 * M, -4 * M)  # 10 shares for 4.00
    assert hist.valuation(lg, {}) == (4 * M, 0, 0)
    assert hist.valuation(lg, {YES: 500_000}) == (5 * M, 0, 1 * M)
    pts = [hist.EquityPoint(i, i, 0, 0, 0, "fill") for i in range(10)]
    kept, dropped = hist.thin(pts, 4)
    assert [p.ts_ms for p in kept] == [0, 3, 6, 9] and dropped == 6
    assert hist.thin(pts, 10) == (pts, 0)


def test_order_price_is_the_worst_grid_price_and_avg_price_rounds_half_even() -> None:
    tick = TICK_SIZES["0.01"]
    maker, taker = market_amounts(Side.BUY, 25 * M, 760_000, tick)
    assert Fraction(maker, taker) > Fraction(76, 100)  # the share count was rounded down
    assert order_price(Side.BUY, maker, taker, tick) == 760_000
    assert order_price(Side.BUY, maker, taker, None) == maker * M // taker  # no tick: floored at a micro
    maker, taker = market_amounts(Side.SELL, 10 * M, 550_000, tick)
    assert order_price(Side.SELL, maker, taker, tick) == 550_000
    assert order_price(Side.BUY, 3_465_000, 10_500_000, tick) == 330_000  # a limit order: its price
    assert order_price(Side.BUY, 0, 0, tick) == 0
    # pUSD per share in micro-units, half to even: 0.5 and 2.5 micro round down, 1.5 up.
    assert (avg_price(1, 2 * M), avg_price(3, 2 * M), avg_price(5, 2 * M)) == (0, 2, 2)
    assert avg_price(1, 0) is None
    assert avg_price(25 * M, 32_894_700) == 760_001  # 0.76000091...


def book(*asks: tuple[int, int]) -> BookSnapshot:
    """A book with these asks (price, shares), given best first."""
    return BookSnapshot("0xm1", YES, (), tuple(reversed(asks)))


def test_buy_budget_spends_at_most_the_amount_fee_included() -> None:
    curve = (Fraction(7, 100), 1)
    b = book((500_000, 100 * M))
    spend, fee = buy_budget(b, 25 * M, curve)
    # fee of X at 0.50 with r = 0.07: X/0.5 * 0.07 * 0.25 = 0.035 X; the largest cent with X + fee <= 25.
    assert spend == 24_150_000 and fee == 845_250
    assert spend + fee <= 25 * M < spend + 10_000 + -(-(spend + 10_000) * 35 // 1000)
    # Across levels: each level at its own price; no fee: the whole amount buys shares.
    b2 = book((400_000, 10 * M), (600_000, 100 * M))
    bound = buy_fee_bound(b2, 10 * M, curve)
    assert bound == Fraction(4 * M * 7 * 60, 100 * 100) + Fraction(6 * M * 7 * 40, 100 * 100)
    assert buy_budget(b2, 10 * M, (Fraction(0), 1)) == (10 * M, 0)
    # An unknown curve reserves the 10 % bound of core.fees.UNKNOWN_RATE_BOUND_BPS.
    spend, fee = buy_budget(b, 21 * M, None)
    assert spend == 19_090_000 and fee == 1_909_000
    with pytest.raises(Exception, match="more than 2 decimals"):
        buy_budget(b, 25 * M + 1, curve)
