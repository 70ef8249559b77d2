"""Positions, average cost and PnL from the exchange's trades and ledger (exchange/portfolio.py), exact."""

from __future__ import annotations

from exchange_helpers import FEE4, Harness, m

from polyoms.core.units import MICRO
from polyoms.exchange.life import MarketLife, scenario
from polyoms.exchange.portfolio import (
    OPENING_PRICE,
    Position,
    PositionBook,
    fills_of,
    portfolio_value,
    wallet_fills,
    wallet_positions,
)
from polyoms.exchange.trades import TRADE_FAILED


def _by_token(h: Harness, address: str) -> dict[str, Position]:
    return {p.token_id: p for p in wallet_positions(h.ex, address)}


def test_average_cost_fees_and_realized_pnl_are_exact() -> None:
    h = Harness()
    yes = FEE4.yes_token_id
    a, b, c = h.user("1000"), h.user("0", {yes: "100"}), h.user("1000")
    h.sell(b, yes, "0.40", "100")
    first = h.buy(a, yes, "0.40", "100")  # a takes b's 100 at 0.40: fee 100 × 0.04 × 0.4 × 0.6
    h.buy(c, yes, "0.60", "50")
    h.advance(5_000)  # bought shares can be sold once their trade is mined
    second = h.sell(a, yes, "0.60", "50")  # a sells 50 to c at 0.60: fee 50 × 0.04 × 0.6 × 0.4
    assert first.fee == m("0.96") and second.fee == m("0.48")

    pa = _by_token(h, a.address)[yes]
    # cost 40 + 0.96; half of it leaves with the sale, which brought 30 − 0.48
    assert (pa.size, pa.initial_value, pa.avg_price) == (m("50"), m("20.48"), m("0.4096"))
    assert pa.realized_pnl == m("29.52") - m("20.48")
    assert pa.total_bought == m("100") and pa.opening == 0
    # a's price is the book's midpoint once both sides are quoted, else the last trade (0.60)
    assert pa.cur_price == m("0.6") and pa.current_value == m("30")

    pb = _by_token(h, b.address)[yes]
    # b's 100 shares came from funding: an opening lot at 0.5, sold at 0.40 as a maker (no fee)
    assert (pb.size, pb.opening, pb.realized_pnl) == (0, m("100"), m("40") - 100 * OPENING_PRICE)
    pc = _by_token(h, c.address)[yes]
    assert (pc.size, pc.initial_value, pc.avg_price) == (m("50"), m("30"), m("0.6"))

    res = h.ex.resolve(FEE4.condition_id, yes)
    assert res.payouts[a.address] == m("50")
    pa = _by_token(h, a.address)[yes]
    assert (pa.size, pa.cur_price, pa.redeemed, pa.redeemed_shares) == (0, MICRO, m("50"), m("50"))
    assert pa.realized_pnl == m("29.52") - m("20.48") + m("50") - m("20.48")
    assert _by_token(h, c.address)[yes].realized_pnl == m("20")


def test_losing_shares_and_start_inventory_after_resolution() -> None:
    h = Harness()
    yes, no = FEE4.yes_token_id, FEE4.no_token_id
    seller, buyer = h.user("0", {yes: "10", no: "10"}), h.user("1000")
    h.sell(seller, no, "0.30", "6")
    h.buy(buyer, no, "0.30", "6")
    h.ex.resolve(FEE4.condition_id, yes)
    pos = _by_token(h, seller.address)
    # the winner's start inventory is its payout; the loser's only what its sales reveal
    assert pos[yes].opening == m("10") and pos[yes].realized_pnl == m("10") - 10 * OPENING_PRICE
    assert pos[no].opening == m("6") and pos[no].realized_pnl == m("1.8") - 6 * OPENING_PRICE
    assert all(p.size == 0 for p in pos.values())
    bought = _by_token(h, buyer.address)[no]
    fee = h.ex.trades(maker_address=buyer.address)[0].fee
    assert bought.realized_pnl == -(m("1.8") + fee) and bought.redeemed_shares == m("6")


def test_a_failed_trade_counts_for_nobody() -> None:
    h = Harness()
    yes = FEE4.yes_token_id
    a, b = h.user("1000"), h.user("0", {yes: "10"})
    h.sell(b, yes, "0.5", "10")
    h.buy(a, yes, "0.5", "10")
    trade = h.ex.trades()[0]
    assert [f.address for f in fills_of(trade)] == [a.address, b.address]
    trade.status = TRADE_FAILED
    assert fills_of(trade) == [] and wallet_fills([trade], a.address) == []


def test_selling_more_than_bought_opens_a_lot_first() -> None:
    book = PositionBook("t", "c")
    book.buy(m("10"), m("4"))
    book.sell(m("15"), m("9"))
    assert (book.size, book.opening, book.cost) == (0, m("5"), 0)
    assert book.realized == m("9") - m("4") - 5 * OPENING_PRICE


def test_every_wallet_of_a_living_market_matches_its_ledger() -> None:
    life = MarketLife.backtest(scenario("calm"), seed=11)
    life.run_until(life.start_ms + 20 * 60_000)
    ex = life.exchange
    assert len(ex.trades()) > 100
    funded = {s.address: s.funded_sets for s in life.slots}
    checked = 0
    for acct in ex.ledger:
        positions = wallet_positions(ex, acct.address)
        held = {t: b.balance for t, b in ex.balances(acct.address).tokens.items() if b.balance}
        assert {p.token_id: p.size for p in positions if p.size} == held
        for p in positions:
            # what no trade explains is exactly the agent's start inventory
            assert p.opening == funded.get(acct.address, 0)
            assert p.current_value == p.size * p.cur_price // MICRO
            checked += 1
        assert portfolio_value(positions) == sum(p.size * p.cur_price // MICRO for p in positions)
    assert checked > 20
