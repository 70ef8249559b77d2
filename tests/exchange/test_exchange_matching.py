"""Matching rules: match types, maker-price execution, priority, order types, validation, rounding, fees."""

from __future__ import annotations

import pytest
from exchange_helpers import FEE4, FINE, NEG_RISK, PLAIN, Harness, m

from polyoms.core.enums import OrderType, Side
from polyoms.core.errors import (
    BelowMinimumSizeError,
    FakNoMatchError,
    FokNotFilledError,
    InsufficientBalanceError,
    InvalidOrderError,
    InvalidOrderTypeError,
    InvalidPriceError,
    PostOnlyWouldCrossError,
)
from polyoms.exchange.audit import audit
from polyoms.exchange.engine import EngineOrder
from polyoms.exchange.trades import MatchType
from polyoms.polymarket.protocol import errors as venue_errors

YES, NO = PLAIN.yes_token_id, PLAIN.no_token_id


def snapshot(h: Harness) -> tuple[object, ...]:
    ex = h.ex
    accts = tuple(sorted((a.address, a.pusd, a.pusd_reserved, tuple(sorted(a.tokens.items()))) for a in ex.ledger))
    books = tuple((b.market, tuple(b.levels(True)), tuple(b.levels(False))) for b in ex.books.values())
    return accts, books, len(ex.all_trades), len(ex.all_orders), tuple(sorted(ex.ledger.collateral_locked.items()))


# --- match types ---------------------------------------------------------------------------------


def test_complementary_executes_at_maker_price(h: Harness) -> None:
    seller = h.user("0", {YES: "10"})
    buyer = h.user("100")
    assert h.sell(seller, YES, "0.55", "10").status == "live"
    r = h.buy(buyer, YES, "0.60", "10")
    assert r.status == "matched"
    assert (r.making_amount, r.taking_amount, r.fee) == (m("5.5"), m("10"), 0)
    (t,) = r.trades
    assert (t.side, t.price, t.size, t.asset_id, t.outcome) == (Side.BUY, m("0.55"), m("10"), YES, "Yes")
    (mf,) = t.maker_orders
    assert (mf.side, mf.price, mf.matched_amount, mf.match_type) == (
        Side.SELL,
        m("0.55"),
        m("10"),
        MatchType.COMPLEMENTARY,
    )
    assert h.pusd(buyer) == m("94.5") and h.shares(buyer, YES) == m("10")
    assert h.pusd(seller) == m("5.5") and h.shares(seller, YES) == 0
    assert h.ex.open_orders() == []
    h.check()


def test_mint_buy_yes_against_buy_no(h: Harness) -> None:
    a, b = h.user("100"), h.user("100")
    h.buy(a, NO, "0.40", "10")  # YES ask at 0.60
    r = h.buy(b, YES, "0.65", "10")
    (t,) = r.trades
    assert t.price == m("0.60") and t.maker_orders[0].match_type is MatchType.MINT
    assert t.maker_orders[0].price == m("0.40") and t.maker_orders[0].asset_id == NO
    assert h.pusd(a) == m("96") and h.shares(a, NO) == m("10")
    assert h.pusd(b) == m("94") and h.shares(b, YES) == m("10")
    assert h.ex.ledger.collateral_locked[PLAIN.condition_id] == m("10")
    h.check()


def test_merge_sell_no_against_sell_yes(h: Harness) -> None:
    a = h.user("0", {YES: "10"})
    b = h.user("0", {NO: "10"})
    h.sell(a, YES, "0.55", "10")  # YES ask 0.55
    r = h.sell(b, NO, "0.40", "10")  # YES bid 0.60: crosses, NO seller gets 1 - 0.55
    (t,) = r.trades
    assert (t.side, t.price, t.asset_id) == (Side.SELL, m("0.45"), NO)
    assert t.maker_orders[0].match_type is MatchType.MERGE
    assert h.pusd(a) == m("5.5") and h.pusd(b) == m("4.5")
    assert h.shares(a, YES) == 0 and h.shares(b, NO) == 0
    assert h.ex.ledger.collateral_locked[PLAIN.condition_id] == -m("10")  # funded shares merged
    h.check()


def test_complementary_on_the_no_token(h: Harness) -> None:
    buyer = h.user("100")
    seller = h.user("0", {NO: "10"})
    h.buy(buyer, NO, "0.35", "10")
    r = h.sell(seller, NO, "0.30", "10")
    (t,) = r.trades
    assert (t.price, t.maker_orders[0].match_type) == (m("0.35"), MatchType.COMPLEMENTARY)
    assert (r.making_amount, r.taking_amount) == (m("10"), m("3.5"))
    assert h.pusd(seller) == m("3.5") and h.shares(buyer, NO) == m("10")
    h.check()


def test_one_trade_per_level_with_mixed_makers(h: Harness) -> None:
    s = h.user("0", {YES: "10"})
    nb = h.user("100")
    taker = h.user("100")
    h.sell(s, YES, "0.52", "10")
    h.buy(nb, NO, "0.48", "5")  # YES ask 0.52 too, later in time
    r = h.buy(taker, YES, "0.52", "15")
    (t,) = r.trades
    assert t.size == m("15")
    assert [(x.asset_id, x.match_type, x.matched_amount) for x in t.maker_orders] == [
        (YES, MatchType.COMPLEMENTARY, m("10")),
        (NO, MatchType.MINT, m("5")),
    ]
    h.check()


# --- priority and partial fills ------------------------------------------------------------------


def test_price_then_time_priority(h: Harness) -> None:
    s1, s2, s3 = (h.user("0", {YES: "5"}) for _ in range(3))
    o1 = h.sell(s1, YES, "0.55", "5").order_id
    o2 = h.sell(s2, YES, "0.55", "5").order_id
    o3 = h.sell(s3, YES, "0.54", "5").order_id
    taker = h.user("100")
    r = h.buy(taker, YES, "0.56", "12")
    assert [t.price for t in r.trades] == [m("0.54"), m("0.55")]
    assert [mf.order_id for t in r.trades for mf in t.maker_orders] == [o3, o1, o2]
    assert [mf.matched_amount for t in r.trades for mf in t.maker_orders] == [m("5"), m("5"), m("2")]
    left = h.ex.get_order(o2)
    assert left is not None and left.remaining == m("3") and left.status == "LIVE"
    assert h.ex.get_order(o1).status == "MATCHED"  # type: ignore[union-attr]
    assert r.making_amount == m("0.54") * 5 + m("0.55") * 7
    h.check()


def test_marketable_limit_rests_its_remainder(h: Harness) -> None:
    s = h.user("0", {YES: "5"})
    b = h.user("100")
    h.sell(s, YES, "0.55", "5")
    r = h.buy(b, YES, "0.60", "20")
    assert r.status == "matched" and r.taking_amount == m("5")
    (o,) = h.ex.open_orders(b.owner)
    assert (o.price, o.original_size, o.size_matched, o.remaining) == (m("0.60"), m("20"), m("5"), m("15"))
    assert o.associate_trades == r.trade_ids
    assert h.ex.best_bid_ask(YES) == (m("0.60"), None)
    # Reservation: 15 shares at its limit 0.60.
    assert h.ex.balances(b.address).pusd_reserved == m("9")
    h.check()


# --- FOK / FAK -----------------------------------------------------------------------------------


def _two_asks(h: Harness) -> None:
    s = h.user("0", {YES: "20"})
    h.sell(s, YES, "0.50", "10")
    h.sell(s, YES, "0.60", "10")


def test_fok_buy_spends_its_whole_budget(h: Harness) -> None:
    _two_asks(h)
    b = h.user("100")
    r = h.market_buy(b, YES, "8", "0.60")
    assert (r.making_amount, r.taking_amount) == (m("8"), m("15"))
    assert [t.size for t in r.trades] == [m("10"), m("5")]
    o = h.ex.get_order(r.order_id)
    assert o is not None and (o.status, o.original_size, o.size_matched) == ("MATCHED", m("8"), m("8"))
    h.check()


@pytest.mark.parametrize(("amount", "worst"), [("12", "0.60"), ("8", "0.55"), ("5", "0.49")])
def test_fok_buy_that_cannot_fill_changes_nothing(h: Harness, amount: str, worst: str) -> None:
    _two_asks(h)
    b = h.user("100")
    before = snapshot(h)
    with pytest.raises(FokNotFilledError) as err:
        h.market_buy(b, YES, amount, worst)
    assert (
        err.value.message
        == venue_errors.FOK_NOT_FILLED
        == "order couldn't be fully filled. FOK orders are fully filled or killed."
    )
    assert snapshot(h) == before
    h.check()


def test_fok_sell_all_or_nothing(h: Harness) -> None:
    b = h.user("100")
    s = h.user("0", {YES: "20"})
    h.buy(b, YES, "0.50", "10")
    before = snapshot(h)
    with pytest.raises(FokNotFilledError):
        h.market_sell(s, YES, "11", "0.50")
    assert snapshot(h) == before
    r = h.market_sell(s, YES, "10", "0.50")
    assert (r.making_amount, r.taking_amount) == (m("10"), m("5"))
    h.check()


def test_fok_limit_order_shape_also_all_or_nothing(h: Harness) -> None:
    _two_asks(h)
    b = h.user("100")
    with pytest.raises(FokNotFilledError):
        h.buy(b, YES, "0.60", "25", ot=OrderType.FOK)
    r = h.buy(b, YES, "0.60", "15", ot=OrderType.FOK)  # FOK BUY is pUSD: $9 at worst 0.60
    assert r.making_amount == m("9") and r.taking_amount == m("16.666666")


def test_fak_fills_what_it_can_and_kills_the_rest(h: Harness) -> None:
    _two_asks(h)
    b = h.user("100")
    r = h.market_buy(b, YES, "20", "0.55", ot=OrderType.FAK)
    assert (r.making_amount, r.taking_amount) == (m("5"), m("10"))
    o = h.ex.get_order(r.order_id)
    assert o is not None and o.status == "MATCHED" and not o.resting and o.size_matched == m("5")
    assert h.ex.open_orders(b.owner) == []
    s = h.user("0", {YES: "50"})
    h.buy(b, YES, "0.40", "10")
    r = h.market_sell(s, YES, "50", "0.40", ot=OrderType.FAK)
    assert (r.making_amount, r.taking_amount) == (m("10"), m("4"))
    assert h.shares(s, YES) == m("40") and h.ex.balances(s.address).token(YES).reserved == 0
    h.check()


def test_fak_with_nothing_to_match(h: Harness) -> None:
    b = h.user("100")
    with pytest.raises(FakNoMatchError) as err:
        h.market_buy(b, YES, "5", "0.50", ot=OrderType.FAK)
    assert err.value.message == venue_errors.FAK_NO_MATCH
    _two_asks(h)
    with pytest.raises(FakNoMatchError):
        h.market_buy(b, YES, "5", "0.49", ot=OrderType.FAK)
    assert h.ex.get_order(f"0x{1:064x}") is None  # refused orders leave no record


def test_fok_price_bound_is_exact_ratio(h: Harness) -> None:
    # BUY $100 at 0.56 per the SDK: taker = 178571400, so the worst price 100/178.5714 is a hair
    # above 0.56 -- a 0.56 ask matches, and the bound never lets a 0.57 ask through.
    s = h.user("0", {YES: "1000"})
    h.sell(s, YES, "0.57", "500")
    b = h.user("200")
    order = EngineOrder(h.next_id(), b.address, b.owner, YES, Side.BUY, m("100"), 178_571_400, OrderType.FOK)
    with pytest.raises(FokNotFilledError):
        h.ex.submit(order)
    h.sell(s, YES, "0.56", "500")
    r = h.ex.submit(EngineOrder(h.next_id(), b.address, b.owner, YES, Side.BUY, m("100"), 178_571_400, OrderType.FOK))
    assert r.making_amount == m("100") and r.taking_amount == 178_571_428
    h.check()


# --- postOnly, tick, sizes -----------------------------------------------------------------------


def test_post_only(h: Harness) -> None:
    _two_asks(h)
    b = h.user("100", {NO: "10"})
    with pytest.raises(PostOnlyWouldCrossError) as err:
        h.buy(b, YES, "0.50", "10", post_only=True)
    assert err.value.message == "invalid post-only order: order crosses book"
    assert h.buy(b, YES, "0.49", "10", post_only=True).status == "live"
    with pytest.raises(PostOnlyWouldCrossError):
        h.sell(b, NO, "0.50", "10", post_only=True)  # SELL NO 0.50 = YES bid 0.50 -> crosses
    with pytest.raises(InvalidOrderTypeError):
        h.buy(b, YES, "0.40", "10", ot=OrderType.FOK, post_only=True)
    h.check()


def test_tick_rule(h: Harness) -> None:
    b = h.user("100")
    o = h.limit_order(b, YES, Side.BUY, "0.555", "10")
    with pytest.raises(InvalidPriceError) as err:
        h.ex.submit(o)
    assert err.value.message == f"order {o.order_id} is invalid. Price (0.555) breaks minimum tick size rule: 0.01"
    assert h.buy(b, FINE.yes_token_id, "0.555", "10").status == "live"
    for price in ("0.001", "0.999"):
        with pytest.raises(InvalidPriceError):
            h.buy(b, YES, price, "10")
    # A price that is not a whole number of micro-pUSD is off the grid too.
    bad = EngineOrder(h.next_id(), b.address, b.owner, YES, Side.BUY, 3_333_333, 10_000_000)
    with pytest.raises(InvalidPriceError, match=r"Price \(0.333333\)"):
        h.ex.submit(bad)


def test_min_size(h: Harness) -> None:
    b = h.user("100")
    o = h.limit_order(b, YES, Side.BUY, "0.50", "4.99")
    with pytest.raises(BelowMinimumSizeError) as err:
        h.ex.submit(o)
    assert err.value.message == f"order {o.order_id} is invalid. Size (4.99) lower than the minimum: 5"
    assert h.buy(b, YES, "0.50", "5").status == "live"


def test_marketable_buy_minimum(h: Harness) -> None:
    b = h.user("100")
    with pytest.raises(BelowMinimumSizeError) as err:
        h.market_buy(b, YES, "0.99", "0.50")
    assert err.value.message == "invalid amount for a marketable BUY order ($0.99), min size: $1"
    s = h.user("0", {YES: "10"})
    h.sell(s, YES, "0.10", "10")
    with pytest.raises(BelowMinimumSizeError, match=r"\(\$0.5\)"):
        h.buy(b, YES, "0.10", "5")  # crosses: a marketable BUY of $0.50
    assert h.buy(b, YES, "0.09", "5").status == "live"  # resting: no notional minimum
    h.check()


def test_bad_amounts_and_expiration_on_market_orders(h: Harness) -> None:
    b = h.user("100")
    with pytest.raises(InvalidOrderError, match=venue_errors.INVALID_ORDER_PAYLOAD):
        h.ex.submit(EngineOrder(h.next_id(), b.address, b.owner, YES, Side.BUY, 0, 10))
    with pytest.raises(InvalidPriceError):  # worst price >= 1
        h.ex.submit(EngineOrder(h.next_id(), b.address, b.owner, YES, Side.BUY, m("5"), m("5"), OrderType.FOK))
    with pytest.raises(InvalidOrderError, match=venue_errors.INVALID_EXPIRATION):
        h.buy(b, YES, "0.50", "10", ot=OrderType.FAK, expiration=1_900_000_000)
    with pytest.raises(InvalidOrderError, match=venue_errors.INVALID_EXPIRATION):
        h.buy(b, YES, "0.50", "10", expiration=1_900_000_000)  # GTC carries no expiration


# --- rounding ------------------------------------------------------------------------------------


def test_odd_market_buy_rounds_against_the_taker_and_conserves(h: Harness) -> None:
    a = h.user("1000")
    h.buy(a, NO, "0.44", "500")  # YES ask at 0.56
    b = h.user("100")
    r = h.market_buy(b, YES, "100", "0.56")
    (t,) = r.trades
    x = 178_571_428  # floor(100 / 0.56) shares
    assert t.size == x and t.pusd == m("100")  # ceil(x * 0.56) = 99.99999968 -> 100
    (mf,) = t.maker_orders
    assert mf.pusd == 78_571_428  # floor(x * 0.44)
    assert t.pusd + mf.pusd == x  # a full set per share, exactly
    a_order = h.ex.get_order(mf.order_id)
    assert a_order is not None and a_order.reserved == -(-(m("500") - x) * m("0.44") // 1_000_000)
    h.check()


def test_odd_sell_into_bids_rounds_against_the_taker(h: Harness) -> None:
    a = h.user("1000")
    h.buy(a, YES, "0.33", "100")
    s = h.user("0", {YES: "100"})
    r = h.ex.submit(EngineOrder(h.next_id(), s.address, s.owner, YES, Side.SELL, 7_000_001, 2_000_000, OrderType.FAK))
    assert r.trades[0].pusd == 7_000_001 * 330_000 // 1_000_000 == 2_310_000
    assert r.trades[0].maker_orders[0].pusd == 2_310_000
    h.check()


# --- fees ----------------------------------------------------------------------------------------


def test_taker_buy_pays_fee_on_top_maker_pays_none(h: Harness) -> None:
    y = FEE4.yes_token_id
    s = h.user("0", {y: "100"})
    b = h.user("100")
    h.sell(s, y, "0.50", "100")
    r = h.buy(b, y, "0.50", "100")
    (t,) = r.trades
    assert (t.fee, t.fee_rate_bps, r.fee) == (m("1"), 400, m("1"))
    assert (t.maker_orders[0].fee, t.maker_orders[0].fee_rate_bps) == (0, 0)
    assert h.pusd(b) == m("49") and h.pusd(s) == m("50")
    assert h.ex.ledger.fee_collector.pusd == m("1")
    h.check()


def test_taker_sell_fee_comes_out_of_proceeds(h: Harness) -> None:
    y = FEE4.yes_token_id
    b = h.user("100")
    s = h.user("0", {y: "100"})
    h.buy(b, y, "0.50", "100")
    r = h.sell(s, y, "0.50", "100")
    assert r.taking_amount == m("50") and r.fee == m("1")
    assert h.pusd(s) == m("49") and h.pusd(b) == m("50")
    h.check()


def test_fee_uses_the_takers_own_price(h: Harness) -> None:
    y, n = FEE4.yes_token_id, FEE4.no_token_id
    a, b = h.user("100"), h.user("100")
    h.buy(a, y, "0.70", "100")  # maker BUY YES 0.70 = NO ask 0.30
    r = h.buy(b, n, "0.30", "100")  # mint; taker's price 0.30
    assert r.trades[0].price == m("0.30")
    assert r.fee == 100 * m("0.04") * 21 // 100  # 100 × 0.04 × 0.3 × 0.7 = 0.84
    h.check()


def test_fee_per_level(h: Harness) -> None:
    y = FEE4.yes_token_id
    s = h.user("0", {y: "20"})
    h.sell(s, y, "0.50", "10")
    h.sell(s, y, "0.60", "10")
    b = h.user("100")
    r = h.buy(b, y, "0.60", "20")
    assert [t.fee for t in r.trades] == [m("0.1"), m("0.096")]
    assert h.pusd(b) == m("100") - m("11") - m("0.196")
    h.check()


def test_taker_must_afford_the_fee(h: Harness) -> None:
    y = FEE4.yes_token_id
    s = h.user("0", {y: "100"})
    h.sell(s, y, "0.50", "100")
    b = h.user("50")
    before = snapshot(h)
    with pytest.raises(InsufficientBalanceError) as err:
        h.buy(b, y, "0.50", "100")
    assert err.value.message == "not enough balance / allowance"
    assert snapshot(h) == before
    assert h.buy(b, y, "0.49", "100").status == "live"  # as a maker it needs no fee
    h.check()


# --- neg-risk ------------------------------------------------------------------------------------


def test_neg_risk_markets_match_within_each_binary(h: Harness) -> None:
    alpha, beta = NEG_RISK[0], NEG_RISK[1]
    a, b = h.user("100"), h.user("100")
    h.buy(a, alpha.no_token_id, "0.70", "10")  # Alpha YES ask 0.30
    with pytest.raises(FakNoMatchError):
        h.market_buy(b, beta.yes_token_id, "3", "0.30", ot=OrderType.FAK)  # other market: nothing
    r = h.buy(b, alpha.yes_token_id, "0.30", "10")
    assert r.trades[0].maker_orders[0].match_type is MatchType.MINT
    assert r.trades[0].market == alpha.condition_id
    assert h.ex.ledger.collateral_locked[alpha.condition_id] == m("10")
    assert h.ex.book(beta.yes_token_id).bids == ()
    assert audit(h.ex) == []
