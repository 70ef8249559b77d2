"""Resolving a market: open orders cancelled, unsettled trades finalised, market closed, every share
burned and the winning ones redeemed 1:1 from the locked collateral, with conservation intact."""

from __future__ import annotations

import pytest
from exchange_helpers import FEE4, NEG_RISK, PLAIN, START_MS, Harness, m

from polyoms.core.errors import InputError, MarketNotReadyError
from polyoms.exchange import messages as msg
from polyoms.exchange.events import CANCELLATION, ExchangeOrderEvent, ExchangeTradeEvent, MarketResolvedEvent
from polyoms.exchange.orders import CANCELED, CANCELED_MARKET_RESOLVED, LIVE
from polyoms.exchange.settlement import SettlementConfig
from polyoms.exchange.trades import TRADE_CONFIRMED, TRADE_FAILED, TRADE_MINED, TRADE_RETRYING

YES, NO = PLAIN.yes_token_id, PLAIN.no_token_id
CID = PLAIN.condition_id


def test_resolution_cancels_closes_burns_and_redeems(h: Harness) -> None:
    a, b, c = h.user("100"), h.user("100"), h.user("0", {YES: "10"})
    h.buy(b, NO, "0.40", "20")
    h.buy(a, YES, "0.60", "20")  # mints 20 sets: 20 pUSD locked
    resting_sell = h.sell(c, YES, "0.70", "10")
    resting_bid = h.buy(a, YES, "0.50", "10")
    other = h.buy(a, FEE4.yes_token_id, "0.50", "10")  # another market: untouched
    h.advance(60_000)
    ledger = h.ex.ledger
    assert ledger.collateral_locked[CID] == m("20")
    h.log.clear()

    res = h.ex.resolve(CID, YES)

    assert res.canceled == (resting_sell.order_id, resting_bid.order_id)
    for oid in res.canceled:
        o = h.ex.get_order(oid)
        assert o is not None and (o.status, o.rest_status) == (CANCELED, CANCELED_MARKET_RESOLVED)
        assert o.cancel_reason == msg.REASON_MARKET_RESOLVED
    kept = h.ex.get_order(other.order_id)
    assert kept is not None and kept.resting and kept.rest_status == LIVE
    spec = h.ex.market(CID)
    assert spec.closed and not spec.accepting_orders and spec.resolved and spec.winning_token_id == YES
    # Winners paid 1 pUSD a share, whether minted in a trade (a) or funded (c); losers get nothing.
    assert (res.winning_token_id, res.winning_outcome, res.resolved_at_ms) == (YES, "Yes", START_MS + 60_000)
    assert dict(res.payouts) == {a.address: m("20"), c.address: m("10")}
    assert dict(res.burned) == {YES: m("30"), NO: m("20")}
    assert h.pusd(a) == m("100") - m("12") + m("20")
    assert h.pusd(b) == m("100") - m("8")
    assert h.pusd(c) == m("10")
    for u in (a, b, c):
        assert h.shares(u, YES) == h.shares(u, NO) == 0
    assert h.ex.balances(a.address).pusd_reserved == m("5")  # only the other market's bid
    # Collateral: the 20 minted sets pay 20; the 10 funded winning shares take locked to −10.
    assert (ledger.collateral_locked[CID], ledger.redeemed[CID]) == (-m("10"), m("30"))
    assert (ledger.burned_tokens[YES], ledger.burned_tokens[NO]) == (m("30"), m("20"))
    assert ledger.total_pusd() + sum(ledger.collateral_locked.values()) == ledger.funded_pusd
    assert h.ex.resolution(CID) == res
    # Events: the cancellations, then the resolution.
    *cancels, resolved = h.log.events
    assert [(e.kind, e.reason) for e in cancels if isinstance(e, ExchangeOrderEvent)] == [
        (CANCELLATION, msg.REASON_MARKET_RESOLVED)
    ] * 2
    assert isinstance(resolved, MarketResolvedEvent)
    assert (resolved.market, resolved.winning_token_id, resolved.winning_outcome) == (CID, YES, "Yes")
    assert resolved.spec.resolved and resolved.spec.question == PLAIN.question
    h.check()


def test_a_resolved_market_takes_no_orders_funding_or_second_resolution(h: Harness) -> None:
    a = h.user("100")
    assert h.ex.resolution(CID) is None
    with pytest.raises(InputError):
        h.ex.resolve(CID, FEE4.yes_token_id)  # not one of its tokens
    res = h.ex.resolve(CID, NO)
    assert res.payouts == {} and res.canceled == () and res.winning_outcome == "No"
    with pytest.raises(MarketNotReadyError):
        h.buy(a, YES, "0.50", "10")
    with pytest.raises(InputError):
        h.ex.resolve(CID, YES)
    with pytest.raises(InputError):
        h.ex.fund(a.address, 0, {YES: m("1")})
    h.check()


def test_unsettled_trades_are_finalised_before_redemption() -> None:
    h = Harness()
    a, b = h.user("100"), h.user("100")
    h.buy(b, NO, "0.40", "20")
    (t,) = h.buy(a, YES, "0.60", "20").trades
    h.clock.advance(500)  # not mined yet: a's 20 YES are pending
    res = h.ex.resolve(CID, YES)
    assert t.status == TRADE_CONFIRMED and t.last_update_ms == START_MS + 500
    assert [e.status for e in h.log.trade_events(t.trade_id)][1:] == [TRADE_MINED, TRADE_CONFIRMED]
    assert res.payouts == {a.address: m("20")}
    assert h.pusd(a) == m("108") and h.ex.balances(a.address).pusd_available == m("108")
    assert isinstance(h.log.events[-1], MarketResolvedEvent)
    h.check()
    h.advance(60_000)  # nothing left to settle
    assert t.last_update_ms == START_MS + 500
    h.check()


def test_a_trade_drawn_to_fail_is_reversed_before_redemption() -> None:
    h = Harness(settlement=SettlementConfig(failure_probability=1.0))
    a, b, c = h.user("100"), h.user("100"), h.user("0", {YES: "10"})
    h.buy(b, NO, "0.40", "20")
    (t,) = h.buy(a, YES, "0.60", "20").trades
    res = h.ex.resolve(CID, YES)
    assert t.status == TRADE_FAILED
    assert [e.status for e in h.log.events if isinstance(e, ExchangeTradeEvent)][1:] == [TRADE_RETRYING, TRADE_FAILED]
    assert res.payouts == {c.address: m("10")}  # only the funded shares: the minted ones never existed
    assert res.burned == {YES: m("10"), NO: 0}
    assert (h.pusd(a), h.pusd(b), h.pusd(c)) == (m("100"), m("100"), m("10"))
    h.check()


def test_resolving_one_leg_of_a_neg_risk_event_leaves_the_others_trading() -> None:
    h = Harness()
    a, b = h.user("100"), h.user("100")
    alpha, beta = NEG_RISK[0], NEG_RISK[1]
    h.buy(b, alpha.no_token_id, "0.70", "10")
    h.buy(a, alpha.yes_token_id, "0.30", "10")
    bid = h.buy(a, beta.yes_token_id, "0.20", "10")
    h.advance(20_000)
    res = h.ex.resolve(alpha.condition_id, alpha.no_token_id)
    assert res.payouts == {b.address: m("10")}
    assert h.pusd(b) == m("100") - m("7") + m("10") and h.pusd(a) == m("100") - m("3")
    o = h.ex.get_order(bid.order_id)
    assert o is not None and o.resting
    h.check()
