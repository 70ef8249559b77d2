"""The Exchange facade: refusals, cancels, GTD expiry on a virtual clock, queries and events."""

from __future__ import annotations

import pytest
from exchange_helpers import FEE4, PLAIN, START_MS, TEST_MARKETS, Harness, m

from polyoms.core.clock import VirtualClock
from polyoms.core.enums import OrderType, Side
from polyoms.core.errors import (
    ConfigError,
    DuplicateOrderError,
    FokNotFilledError,
    InvalidExpirationError,
    InvalidOrderError,
    MarketNotReadyError,
    NotFoundError,
)
from polyoms.exchange import messages as msg
from polyoms.exchange.engine import EngineOrder, Exchange
from polyoms.exchange.events import CANCELLATION, PLACEMENT, UPDATE, ExchangeOrderEvent, ExchangeTradeEvent
from polyoms.exchange.markets import default_markets
from polyoms.exchange.matching import GTD_SECURITY_THRESHOLD_S
from polyoms.polymarket.protocol import errors as venue_errors

YES, NO = PLAIN.yes_token_id, PLAIN.no_token_id
NOW_S = START_MS // 1000


def test_default_markets_and_bad_construction() -> None:
    ex = Exchange(None, VirtualClock())
    assert [s.slug for s in ex.markets()] == [s.slug for s in default_markets()]
    with pytest.raises(ConfigError):
        Exchange([], VirtualClock())
    with pytest.raises(ConfigError):
        Exchange([PLAIN, PLAIN], VirtualClock())


def test_duplicate_order_id(h: Harness) -> None:
    u = h.user("100")
    o = h.limit_order(u, YES, Side.BUY, "0.40", "10")
    h.ex.submit(o)
    with pytest.raises(DuplicateOrderError) as err:
        h.ex.submit(o)
    assert err.value.message == f"order {o.order_id} is invalid. Duplicated."
    h.ex.cancel(o.order_id, u.owner)
    with pytest.raises(DuplicateOrderError):
        h.ex.submit(o)  # cancelled orders stay known


def test_a_killed_order_is_not_recorded_and_may_be_sent_again(h: Harness) -> None:
    u = h.user("100")
    o = EngineOrder(h.next_id(), u.address, u.owner, YES, Side.BUY, m("5"), m("10"), OrderType.FOK)
    with pytest.raises(FokNotFilledError):
        h.ex.submit(o)
    s = h.user("0", {YES: "10"})
    h.sell(s, YES, "0.50", "10")
    assert h.ex.submit(o).status == "matched"


def test_unknown_token_and_market_not_ready(h: Harness) -> None:
    u = h.user("100")
    with pytest.raises(InvalidOrderError, match="unknown token id 42"):
        h.buy(u, "42", "0.5", "10")
    with pytest.raises(NotFoundError) as err:
        h.ex.book("42")
    assert err.value.message == venue_errors.NO_ORDERBOOK
    h.ex.set_market_flags(PLAIN.condition_id, accepting_orders=False)
    with pytest.raises(MarketNotReadyError) as err2:
        h.buy(u, YES, "0.5", "10")
    assert err2.value.message == "the market is not yet ready to process new orders"
    h.ex.set_market_flags(PLAIN.condition_id, accepting_orders=True)
    assert h.buy(u, YES, "0.5", "10").status == "live"


def test_close_market_cancels_resting_orders(h: Harness) -> None:
    u = h.user("100")
    oid = h.buy(u, YES, "0.40", "10").order_id
    other = h.buy(u, FEE4.yes_token_id, "0.40", "10").order_id
    assert h.ex.close_market(PLAIN.condition_id) == [oid]
    assert [o.order_id for o in h.ex.open_orders(u.owner)] == [other]
    ev = h.log.order_events(oid)[-1]
    assert (ev.kind, ev.reason, ev.status) == (CANCELLATION, msg.REASON_MARKET_CLOSED, "CANCELED")
    with pytest.raises(MarketNotReadyError):
        h.buy(u, YES, "0.40", "10")
    h.check()


# --- cancels -------------------------------------------------------------------------------------


def test_cancel_one_checks_the_owner(h: Harness) -> None:
    u, v = h.user("100"), h.user("100")
    oid = h.buy(u, YES, "0.40", "10").order_id
    r = h.ex.cancel(oid, v.owner)
    assert (r.canceled, r.not_canceled) == ([], {oid: msg.NOT_CANCELED_UNKNOWN})
    r = h.ex.cancel(oid, u.owner)
    assert (r.canceled, r.not_canceled) == ([oid], {})
    assert h.ex.get_order(oid).status == "CANCELED"  # type: ignore[union-attr]
    assert h.ex.cancel(oid, u.owner).not_canceled == {oid: msg.NOT_CANCELED_UNKNOWN}
    assert h.free_pusd(u) == m("100")
    h.check()


def test_cancel_many_ignores_duplicates(h: Harness) -> None:
    u = h.user("100")
    a = h.buy(u, YES, "0.40", "10").order_id
    b = h.buy(u, YES, "0.41", "10").order_id
    r = h.ex.cancel_many([a, b, a, "0xdead"], u.owner)
    assert r.canceled == [a, b] and r.not_canceled == {"0xdead": msg.NOT_CANCELED_UNKNOWN}
    assert h.ex.open_orders(u.owner) == []


def test_cancel_all_only_touches_the_owner(h: Harness) -> None:
    u, v = h.user("100"), h.user("100")
    ids = [h.buy(u, YES, "0.40", "10").order_id, h.buy(u, NO, "0.40", "10").order_id]
    keep = h.buy(v, YES, "0.40", "10").order_id
    assert sorted(h.ex.cancel_all(u.owner).canceled) == sorted(ids)
    assert [o.order_id for o in h.ex.open_orders()] == [keep]
    assert h.ex.cancel_all(u.owner).canceled == []
    assert h.log.order_events(ids[0])[-1].reason == msg.REASON_CANCEL_ALL
    again = h.buy(u, YES, "0.40", "10").order_id
    h.ex.cancel_all(u.owner, reason=msg.REASON_HEARTBEAT)
    assert h.log.order_events(again)[-1].reason == "heartbeat timeout"


def test_cancel_market_by_market_and_asset(h: Harness) -> None:
    u = h.user("100")
    y = h.buy(u, YES, "0.40", "10").order_id
    n = h.buy(u, NO, "0.40", "10").order_id
    f = h.buy(u, FEE4.yes_token_id, "0.40", "10").order_id
    assert h.ex.cancel_market(u.owner, asset_id=NO).canceled == [n]
    assert h.ex.cancel_market(u.owner, market=PLAIN.condition_id.upper().replace("0X", "0x")).canceled == [y]
    assert h.ex.cancel_market(u.owner).canceled == [f]  # no filter: everything
    h.check()


# --- GTD -----------------------------------------------------------------------------------------


def test_gtd_expiration_must_leave_time_after_the_threshold(h: Harness) -> None:
    u = h.user("100")
    for exp in (0, NOW_S, NOW_S + GTD_SECURITY_THRESHOLD_S):
        with pytest.raises(InvalidExpirationError) as err:
            h.buy(u, YES, "0.40", "10", ot=OrderType.GTD, expiration=exp)
        assert err.value.message == "invalid expiration"
    assert h.buy(u, YES, "0.40", "10", ot=OrderType.GTD, expiration=NOW_S + 61).status == "live"


def test_gtd_expires_at_expiration_minus_threshold(h: Harness) -> None:
    u = h.user("100")
    exp = NOW_S + 60 + 30  # an effective lifetime of 30 s (doc §3.8)
    oid = h.buy(u, YES, "0.40", "10", ot=OrderType.GTD, expiration=exp).order_id
    long = h.buy(u, YES, "0.41", "10", ot=OrderType.GTD, expiration=exp + 100).order_id
    h.clock.advance(29_999)
    assert h.ex.expire() == []
    h.clock.advance(1)
    assert h.ex.expire() == [oid]
    o = h.ex.get_order(oid)
    assert o is not None and o.status == "CANCELED" and not o.resting
    ev = h.log.order_events(oid)[-1]
    assert (ev.kind, ev.reason) == (CANCELLATION, msg.REASON_EXPIRED)
    assert [x.order_id for x in h.ex.open_orders()] == [long]
    assert h.ex.balances(u.address).pusd_reserved == m("4.1")
    h.check()


def test_expired_orders_never_match(h: Harness) -> None:
    u = h.user("100")
    h.buy(u, YES, "0.40", "10", ot=OrderType.GTD, expiration=NOW_S + 70)
    h.clock.advance(10_000)
    s = h.user("0", {YES: "10"})
    r = h.sell(s, YES, "0.40", "10")  # submit sweeps due expiries first
    assert r.status == "live" and r.trades == ()
    h.check()


# --- queries -------------------------------------------------------------------------------------


def test_open_order_fields(h: Harness) -> None:
    u = h.user("100")
    h.clock.advance(1_500)
    oid = h.buy(u, NO, "0.37", "21.04", ot=OrderType.GTD, expiration=NOW_S + 3600).order_id
    (o,) = h.ex.open_orders(u.owner, market=PLAIN.condition_id, asset_id=NO)
    assert (o.order_id, o.status, o.owner, o.maker, o.market, o.asset_id) == (
        oid, "LIVE", u.owner, u.address, PLAIN.condition_id, NO,
    )  # fmt: skip
    assert (o.side, o.original_size, o.size_matched, o.price, o.outcome) == (Side.BUY, m("21.04"), 0, m("0.37"), "No")
    assert (o.expiration, o.order_type, o.associate_trades, o.created_at) == (
        NOW_S + 3600, OrderType.GTD, (), NOW_S + 1,
    )  # fmt: skip
    assert h.ex.open_orders(order_id=oid) == [o]
    assert h.ex.open_orders(u.owner, asset_id=YES) == []
    assert h.ex.open_orders("nobody") == []


def test_trades_by_owner_include_maker_side(h: Harness) -> None:
    maker, taker, other = h.user("100"), h.user("100"), h.user("100")
    h.buy(maker, NO, "0.40", "10")
    h.clock.advance(5_000)
    r = h.buy(taker, YES, "0.60", "10")
    (t,) = r.trades
    assert h.ex.trades(maker.owner) == [t] == h.ex.trades(taker.owner)
    assert h.ex.trades(other.owner) == []
    assert (t.trader_side(maker.owner), t.trader_side(taker.owner)) == ("MAKER", "TAKER")
    assert h.ex.trades(maker.owner, asset_id=NO) == [t]  # the maker's own token
    assert h.ex.trades(maker_address=maker.address.upper().replace("0X", "0x")) == [t]
    assert h.ex.trades(market=PLAIN.condition_id, trade_id=t.trade_id) == [t]
    assert h.ex.trades(after=NOW_S + 6) == [] and h.ex.trades(before=NOW_S + 4) == []
    assert h.ex.trades(after=NOW_S + 5, before=NOW_S + 5) == [t]
    assert h.ex.trade(t.trade_id) is t
    assert (t.status, t.match_time, t.taker_order_id, t.owner, t.maker_address) == (
        "MATCHED", NOW_S + 5, r.order_id, taker.owner, taker.address,
    )  # fmt: skip


def test_last_trade_price_for_both_tokens(h: Harness) -> None:
    a, b = h.user("100"), h.user("100")
    h.buy(a, NO, "0.40", "10")
    h.buy(b, YES, "0.60", "10")
    assert h.ex.last_trade(YES) == (m("0.60"), Side.BUY)
    assert h.ex.last_trade(NO) == (m("0.40"), Side.SELL)


def test_trade_ids_are_deterministic_per_seed() -> None:
    def run(seed: int) -> list[str]:
        ex = Exchange(TEST_MARKETS, VirtualClock(START_MS), seed=seed)
        a, b = "0x" + "a" * 40, "0x" + "b" * 40
        ex.fund(a, m("100"))
        ex.fund(b, m("100"))
        ex.submit(EngineOrder("0x01", a, "ka", YES, Side.BUY, m("4"), m("10")))
        r = ex.submit(EngineOrder("0x02", b, "kb", NO, Side.BUY, m("6"), m("10")))
        return list(r.trade_ids)

    assert run(1) == run(1) != run(2)
    (tid,) = run(1)
    parts = tid.split("-")
    assert [len(p) for p in parts] == [8, 4, 4, 4, 12]


# --- events --------------------------------------------------------------------------------------


def test_event_stream(h: Harness) -> None:
    a, b = h.user("100"), h.user("100")
    oa = h.buy(a, NO, "0.40", "20").order_id
    r = h.buy(b, YES, "0.60", "5")
    h.ex.cancel(oa, a.owner)
    kinds = [
        (e.kind, e.order.order_id, e.size_matched) if isinstance(e, ExchangeOrderEvent) else "TRADE"
        for e in h.log.events
    ]
    assert kinds == [
        (PLACEMENT, oa, 0),
        (UPDATE, oa, m("5")),
        "TRADE",
        (UPDATE, r.order_id, m("5")),
        (CANCELLATION, oa, m("5")),
    ]
    (te,) = h.log.trade_events()
    assert isinstance(te, ExchangeTradeEvent) and te.trade.trade_id == r.trade_ids[0]
    upd = h.log.order_events(oa)[1]
    assert upd.trade_ids == r.trade_ids and upd.status == "LIVE"
    assert h.log.order_events(r.order_id)[0].status == "MATCHED"
    assert h.log.order_events(oa)[-1].reason == msg.REASON_USER
