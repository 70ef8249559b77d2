"""Limit and marketable child orders with the right units, GTD as a dead-man expiry — built by hand and
through the parent manager on the local exchange."""

from __future__ import annotations

import asyncio

import pytest

from polyoms.algos import orders
from polyoms.algos.base import Action, Instrument, ParentState, Place
from polyoms.algos.single import OrderSpec
from polyoms.backtest.scenarios import ALPHA, CUP, m, new_world
from polyoms.core.enums import OrderType, Side
from polyoms.core.errors import (
    BelowMinimumSizeError,
    InvalidExpirationError,
    InvalidOrderError,
    InvalidPriceError,
    InvalidSizeError,
)
from polyoms.core.units import MICRO, TICK_SIZES
from polyoms.core.venue import PreparedOrder
from polyoms.oms.state import OrderState
from polyoms.polymarket.client.wallet import Wallet
from polyoms.polymarket.protocol.constants import GTD_SECURITY_THRESHOLD_S
from polyoms.venues import polymarket_orders

T01 = TICK_SIZES["0.01"]
NOW = 1_777_000_000_000
KEY = "0x" + "11" * 32
TOKEN = "12345"


def test_limit_orders_count_shares() -> None:
    p = orders.limit("a", TOKEN, Side.BUY, m("0.45"), m("10.5"), tick=T01, lifetime_s=30)
    assert (p.size, p.amount, p.price, p.lifetime_s) == (10_500_000, 0, 450_000, 30) and not p.is_market_buy
    with pytest.raises(InvalidPriceError):
        orders.limit("a", TOKEN, Side.BUY, m("0.455"), m(10), tick=T01)
    with pytest.raises(InvalidSizeError):
        orders.limit("a", TOKEN, Side.BUY, m("0.45"), m("10.001"), tick=T01)
    with pytest.raises(InvalidExpirationError):
        orders.limit("a", TOKEN, Side.BUY, m("0.45"), m(10), tick=T01, order_type=OrderType.GTD)
    with pytest.raises(InvalidOrderError):
        orders.limit("a", TOKEN, Side.BUY, m("0.45"), m(10), tick=T01, order_type=OrderType.FOK, lifetime_s=5)


def test_market_buys_spend_pusd_bounded_by_min_and_max_shares() -> None:
    p = orders.market_buy("b", TOKEN, m(10), m("0.50"), tick=T01, min_shares=m(20))
    assert (p.amount, p.size, p.price, p.order_type) == (10 * MICRO, 0, 500_000, OrderType.FOK) and p.is_market_buy
    with pytest.raises(BelowMinimumSizeError, match="guarantees only 20 shares"):
        orders.market_buy("b", TOKEN, m(10), m("0.50"), tick=T01, min_shares=m(21))
    trimmed = orders.market_buy("b", TOKEN, m(10), m("0.50"), tick=T01, max_shares=m(10), best_ask=m("0.40"))
    assert trimmed.amount == 4 * MICRO  # at most 10 shares even at the best ask
    with pytest.raises(InvalidOrderError):
        orders.market_buy("b", TOKEN, m(10), m("0.50"), tick=T01, max_shares=m(10))  # no best ask to bound it
    with pytest.raises(BelowMinimumSizeError):
        orders.market_buy("b", TOKEN, m("0.99"), m("0.50"), tick=T01)
    with pytest.raises(InvalidSizeError):
        orders.market_buy("b", TOKEN, m("1.005"), m("0.50"), tick=T01)
    with pytest.raises(InvalidOrderError):
        orders.market_buy("b", TOKEN, m(10), m("0.50"), tick=T01, order_type=OrderType.GTC)
    s = orders.market_sell("c", TOKEN, m(7), m("0.30"), tick=T01)
    assert (s.side, s.size, s.order_type) == (Side.SELL, 7 * MICRO, OrderType.FAK)


def test_signing_gtd_dead_man_and_market_units() -> None:
    builder = Wallet.from_key(KEY).order_builder()
    inst = Instrument(TOKEN, T01, "0xm", "999")

    def sign(place: Place, instrument: Instrument = inst) -> PreparedOrder:
        return polymarket_orders.sign(builder, orders.request_of(place, NOW), instrument)

    assert orders.gtd_expiration(NOW, 30) == NOW // 1000 + 30
    with pytest.raises(InvalidExpirationError):
        orders.gtd_expiration(NOW, 0)
    gtd = sign(orders.limit("a", TOKEN, Side.BUY, m("0.45"), m(10), tick=T01, lifetime_s=30))
    signed = polymarket_orders.signed_payload(gtd)
    # The venue ends a GTD order one security threshold before what was signed: the adapter adds it.
    assert gtd.order_type is OrderType.GTD and gtd.expiration == NOW // 1000 + 30
    assert signed.expiration == NOW // 1000 + GTD_SECURITY_THRESHOLD_S + 30 and signed.timestamp_ms == NOW
    assert (gtd.size, gtd.price) == (10 * MICRO, 450_000)
    mkt = sign(orders.market_buy("b", TOKEN, m(10), m("0.50"), tick=T01))
    assert (mkt.maker_amount, mkt.taker_amount, mkt.order_type) == (10 * MICRO, 20 * MICRO, OrderType.FOK)
    assert mkt.notional
    neg = polymarket_orders.signed_payload(
        sign(
            orders.limit("a", TOKEN, Side.BUY, m("0.45"), m(10), tick=T01),
            Instrument(TOKEN, T01, "0xm", "999", neg_risk=True),
        )
    )
    assert neg.neg_risk and neg.exchange != signed.exchange  # signed for the neg-risk exchange
    with pytest.raises(BelowMinimumSizeError):  # the market's minimum applies to resting orders
        sign(orders.limit("a", TOKEN, Side.BUY, m("0.45"), m(4), tick=T01))


def test_single_orders_through_the_parent_manager() -> None:
    async def body() -> None:
        w = await new_world(3)
        try:
            yes = w.yes(ALPHA)
            await w.book(yes, bids=[("0.40", 100)], asks=[("0.50", 10), ("0.52", 50), ("0.60", 100)])
            buy = await w.parents.start(OrderSpec.market_buy(yes, m(10), m("0.55"), min_shares=m(18)))
            sell = await w.parents.start(OrderSpec.market_sell(yes, m(25), m("0.35")))
            dead = await w.parents.start(OrderSpec.limit(yes, Side.BUY, m("0.45"), m(10), lifetime_s=5))
            await w.run([buy, sell, dead], max_ms=60_000)
            b, s, d = (w.parents.status(p) for p in (buy, sell, dead))
            intent = w.engine.state.order(b.child_order_ids[0])
            assert intent.notional and intent.maker_amount == 10 * MICRO  # pUSD, as a market BUY must be
            assert b.state is ParentState.DONE and b.notional <= 10 * MICRO and b.filled >= 18 * MICRO
            assert b.avg_price is not None and b.avg_price <= 550_000
            assert s.state is ParentState.DONE and s.filled == 25 * MICRO and s.avg_price == 400_000
            # the venue cancelled the GTD order by itself after its lifetime: a dead-man expiry
            assert d.state is ParentState.EXPIRED and "dead-man" in d.reason
            child = w.engine.state.order(d.child_order_ids[0])
            assert child.order_type is OrderType.GTD and child.state is not OrderState.LIVE
            ended = child.history[-1].ts_ms - d.started_ms
            assert 5_000 <= ended <= 6_000
            assert w.problems() == []
        finally:
            await w.close()

    asyncio.run(body())


def test_refresh_keeps_a_dead_man_child_alive_while_the_parent_lives() -> None:
    from polyoms.algos.adaptive import AdaptiveSpec

    async def body() -> None:
        w = await new_world(4)
        try:
            yes = w.yes(f"{CUP}-red")
            await w.book(yes, bids=[("0.20", 10)], asks=[("0.40", 10)])
            spec = AdaptiveSpec(yes, Side.BUY, m("0.25"), m(10), start_price=m("0.20"), lifetime_s=5)
            pid = await w.parents.start(spec)
            await w.run([pid], max_ms=12_000)
            st = w.parents.status(pid)
            refreshes = [d for d in st.decisions if d.action is Action.REFRESH]
            assert len(refreshes) == 2 and all("dead-man" in d.reason for d in refreshes)
            kids = [w.engine.state.order(o) for o in st.child_order_ids]
            assert [k.order_type for k in kids] == [OrderType.GTD] * 3 and st.adjustments == 0
            assert kids[-1].state is OrderState.LIVE  # alive while the parent is
            await w.parents.cancel(pid)
            await w.parents.settle()
            assert w.parents.status(pid).state is ParentState.CANCELLED
        finally:
            await w.close()

    asyncio.run(body())


def test_market_buy_specs_are_checked_before_and_when_placed() -> None:
    async def body() -> None:
        w = await new_world(3)
        try:
            yes = w.yes(ALPHA)
            with pytest.raises(BelowMinimumSizeError):  # $10 at 0.55 cannot guarantee 19 shares
                await w.parents.start(OrderSpec.market_buy(yes, m(10), m("0.55"), min_shares=m(19)))
            assert w.parents.list() == []
            pid = await w.parents.start(OrderSpec.market_buy(yes, m(10), m("0.55"), max_shares=m(10)))
            st = w.parents.status(pid)  # no ask to bound the shares with: refused, nothing sent
            assert st.state is ParentState.FAILED and "best ask" in st.reason and st.child_order_ids == ()
            assert w.engine.state.orders == {}
        finally:
            await w.close()

    asyncio.run(body())
