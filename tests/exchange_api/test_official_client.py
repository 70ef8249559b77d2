"""Conformance: the official py-clob-client-v2, unchanged, against a running `polyoms sim`.

Two funded wallets trade with each other through every order path the SDK has; every answer is
checked against what the venue would say and against the exchange's own state.
"""

from __future__ import annotations

import time

import pytest
from py_clob_client_v2 import ClobClient
from py_clob_client_v2.clob_types import (
    BalanceAllowanceParams,
    MarketOrderArgsV2,
    OpenOrderParams,
    OrderArgsV2,
    OrderMarketCancelParams,
    OrderPayload,
    OrderType,
    PartialCreateOrderOptions,
    PostOrdersV2Args,
    TradeParams,
)
from py_clob_client_v2.exceptions import PolyApiException

from polyoms.core.units import MICRO
from polyoms.exchange.api.runner import ThreadedSim
from tests.exchange_api.conftest import KEY_A, KEY_B, fund


def _client(sim: ThreadedSim, key: str) -> ClobClient:
    client = ClobClient(sim.url, chain_id=137, key=key)
    client.set_api_creds(client.create_or_derive_api_key())
    return client


def _market(sim: ThreadedSim, tick: str = "0.01", neg_risk: bool = False):  # type: ignore[no-untyped-def]
    for m in sim.service.exchange.markets():
        if m.tick.text == tick and m.neg_risk == neg_risk and not m.fee.enabled:
            return m
    for m in sim.service.exchange.markets():
        if m.tick.text == tick and m.neg_risk == neg_risk:
            return m
    raise AssertionError("no such market in the default set")


@pytest.fixture
def pair(sim: ThreadedSim) -> tuple[ClobClient, ClobClient]:
    a, b = _client(sim, KEY_A), _client(sim, KEY_B)
    market = _market(sim)
    fund(sim, a.get_address(), "1000")
    fund(sim, b.get_address(), "1000", {market.yes_token_id: "500", market.no_token_id: "500"})
    return a, b


def test_meta_and_market_lookups(sim: ThreadedSim) -> None:
    client = ClobClient(sim.url, chain_id=137)
    assert client.get_ok() == "OK"
    assert client.get_version() == 2
    assert abs(int(client.get_server_time()) - time.time()) < 5
    market = _market(sim)
    token = market.yes_token_id
    assert client.get_tick_size(token) == "0.01"
    assert client.get_neg_risk(token) is False
    info = client.get_clob_market_info(market.condition_id)
    assert info["t"][0]["t"] == token and info["mos"] == 5
    nr = _market(sim, neg_risk=True)
    assert client.get_neg_risk(nr.yes_token_id) is True
    fine = _market(sim, tick="0.001")
    assert client.get_tick_size(fine.yes_token_id) == "0.001"
    assert client.get_fee_rate_bps(token) == 0
    markets = client.get_markets()
    assert markets["next_cursor"] == "LTE=" and markets["count"] == len(sim.service.exchange.markets())
    assert client.get_market(market.condition_id)["tokens"][0]["token_id"] == token
    book = client.get_order_book(token)
    assert book["bids"] == [] and book["asks"] == [] and book["tick_size"] == "0.01"
    assert client.get_order_book_hash(book) == book["hash"]


def test_api_keys_create_derive_and_l2(sim: ThreadedSim) -> None:
    client = ClobClient(sim.url, chain_id=137, key=KEY_A)
    with pytest.raises(PolyApiException) as err:
        client.derive_api_key()
    assert err.value.status_code == 400
    created = client.create_api_key()
    assert client.derive_api_key() == created
    assert client.create_or_derive_api_key() == created
    assert client.create_api_key(nonce=1) != created
    client.set_api_creds(created)
    keys = client.get_api_keys()["apiKeys"]
    assert created.api_key in keys and len(keys) == 2
    assert client.get_closed_only_mode() == {"closed_only": False}
    # A wrong secret is refused with the venue's 401.
    from py_clob_client_v2.clob_types import ApiCreds

    client.set_api_creds(ApiCreds(created.api_key, "A" * 43 + "=", created.api_passphrase))
    with pytest.raises(PolyApiException) as err:
        client.get_open_orders()
    assert err.value.status_code == 401
    assert err.value.error_msg == {"error": "Unauthorized/Invalid api key"}


def test_limit_orders_trade_between_two_wallets(sim: ThreadedSim, pair: tuple[ClobClient, ClobClient]) -> None:
    a, b = pair
    market = _market(sim)
    token = market.yes_token_id
    bid = a.create_and_post_order(OrderArgsV2(token_id=token, price=0.48, size=20, side="BUY"))
    assert bid["success"] is True and bid["status"] == "live" and bid["makingAmount"] == ""
    open_a = a.get_open_orders(OpenOrderParams(market=market.condition_id))
    assert [o["id"] for o in open_a] == [bid["orderID"]]
    assert open_a[0]["price"] == "0.48" and open_a[0]["original_size"] == "20" and open_a[0]["status"] == "LIVE"
    book = a.get_order_book(token)
    assert book["bids"] == [{"price": "0.48", "size": "20"}]
    assert a.get_price(token, "BUY") == {"price": "0.48"}

    # B sells 12.5 into the bid: fills at the maker's price 0.48.
    ask = b.create_and_post_order(OrderArgsV2(token_id=token, price=0.45, size=12.5, side="SELL"))
    assert ask["status"] == "matched"
    assert ask["makingAmount"] == "12.5" and ask["takingAmount"] == "6"
    assert len(ask["tradeIDs"]) == 1 and ask["transactionsHashes"]
    order = a.get_order(bid["orderID"])
    assert order["size_matched"] == "12.5" and order["associate_trades"] == ask["tradeIDs"]

    trades_a = a.get_trades(TradeParams(market=market.condition_id))
    trades_b = b.get_trades()
    assert len(trades_a) == len(trades_b) == 1
    assert trades_a[0]["trader_side"] == "MAKER" and trades_b[0]["trader_side"] == "TAKER"
    assert trades_b[0]["side"] == "SELL" and trades_b[0]["price"] == "0.48" and trades_b[0]["size"] == "12.5"
    assert trades_b[0]["maker_orders"][0]["order_id"] == bid["orderID"]
    assert a.get_last_trade_price(token) == {"price": "0.48", "side": "SELL"}

    bal_a = a.get_balance_allowance(BalanceAllowanceParams(asset_type="COLLATERAL"))
    assert int(bal_a["balance"]) == 1000 * MICRO - 6 * MICRO
    assert set(bal_a["allowances"]) >= {"0xE111180000d2663C0091e4f400237545B87B996B"}
    yes_a = a.get_balance_allowance(BalanceAllowanceParams(asset_type="CONDITIONAL", token_id=token))
    assert int(yes_a["balance"]) == 12_500_000


def test_market_orders_fok_and_fak(sim: ThreadedSim, pair: tuple[ClobClient, ClobClient]) -> None:
    a, b = pair
    token = _market(sim).yes_token_id
    b.create_and_post_order(OrderArgsV2(token_id=token, price=0.50, size=10, side="SELL"))
    b.create_and_post_order(OrderArgsV2(token_id=token, price=0.52, size=10, side="SELL"))
    # $7.60 at up to 0.52 takes 10 @ 0.50 and 5 @ 0.52 (the SDK prices it from the book).
    res = a.create_and_post_market_order(MarketOrderArgsV2(token_id=token, amount=7.6, side="BUY"))
    assert res["status"] == "matched" and res["makingAmount"] == "7.6" and res["takingAmount"] == "15"
    # FOK for more than the book holds is killed; nothing changes.
    before = a.get_order_book(token)
    with pytest.raises(PolyApiException) as err:
        a.create_and_post_market_order(
            MarketOrderArgsV2(token_id=token, amount=100, side="BUY", price=0.52, order_type=OrderType.FOK),
            order_type=OrderType.FOK,
        )
    assert err.value.status_code == 400
    assert "FOK orders are fully filled or killed" in err.value.error_msg["error"]
    assert a.get_order_book(token)["asks"] == before["asks"]
    # FAK takes what there is (5 @ 0.52) and cancels the rest.
    res = a.create_and_post_market_order(
        MarketOrderArgsV2(token_id=token, amount=100, side="BUY", price=0.52, order_type=OrderType.FAK),
        order_type=OrderType.FAK,
    )
    assert res["status"] == "matched" and res["takingAmount"] == "5" and res["makingAmount"] == "2.6"
    assert a.get_order_book(token)["asks"] == []
    # Market SELL: shares.
    a.create_and_post_order(OrderArgsV2(token_id=token, price=0.40, size=20, side="BUY"))
    res = b.create_and_post_market_order(MarketOrderArgsV2(token_id=token, amount=8, side="SELL"))
    assert res["status"] == "matched" and res["makingAmount"] == "8" and res["takingAmount"] == "3.2"


def test_batch_orders_with_per_order_outcomes(sim: ThreadedSim, pair: tuple[ClobClient, ClobClient]) -> None:
    a, _ = pair
    token = _market(sim).yes_token_id
    orders = [a.create_order(OrderArgsV2(token_id=token, price=p, size=10, side="BUY")) for p in (0.30, 0.31, 0.32)]
    too_big = a.create_order(OrderArgsV2(token_id=token, price=0.33, size=100_000, side="BUY"))
    res = a.post_orders([PostOrdersV2Args(order=o, orderType=OrderType.GTC) for o in [*orders, too_big]])
    assert [r["success"] for r in res] == [True, True, True, False]
    assert res[3]["errorMsg"] == "not enough balance / allowance"
    assert len(a.get_open_orders()) == 3
    with pytest.raises(PolyApiException) as err:
        a.post_orders([PostOrdersV2Args(order=orders[0], orderType=OrderType.GTC)] * 16)
    assert err.value.status_code == 400 and "max allowed: 15" in err.value.error_msg["error"]


def test_cancel_in_every_form(sim: ThreadedSim, pair: tuple[ClobClient, ClobClient]) -> None:
    a, _ = pair
    market = _market(sim)
    other = _market(sim, neg_risk=True)
    fund(sim, a.get_address(), "100")
    token = market.yes_token_id

    def place(price: float, tok: str = token, neg: bool = False) -> str:
        opts = PartialCreateOrderOptions(neg_risk=neg)
        return a.create_and_post_order(OrderArgsV2(token_id=tok, price=price, size=5, side="BUY"), opts)["orderID"]

    one = place(0.10)
    assert a.cancel_order(OrderPayload(orderID=one)) == {"canceled": [one], "not_canceled": {}}
    again = a.cancel_order(OrderPayload(orderID=one))
    assert again["canceled"] == [] and one in again["not_canceled"]
    two, three = place(0.11), place(0.12)
    res = a.cancel_orders([two, three, two])
    assert sorted(res["canceled"]) == sorted([two, three])
    four, five = place(0.13), place(0.14, other.yes_token_id, True)
    res = a.cancel_market_orders(OrderMarketCancelParams(market=market.condition_id))
    assert res["canceled"] == [four]
    six = place(0.15)
    res = a.cancel_all()
    assert sorted(res["canceled"]) == sorted([five, six])
    assert a.get_open_orders() == []
    assert a.get_order(six)["status"] == "CANCELED"


def test_tampered_and_foreign_orders_are_rejected(sim: ThreadedSim, pair: tuple[ClobClient, ClobClient]) -> None:
    a, b = pair
    token = _market(sim).yes_token_id
    order = a.create_order(OrderArgsV2(token_id=token, price=0.40, size=10, side="BUY"))
    order.makerAmount = str(int(order.makerAmount) - 1)  # tamper with a signed field
    with pytest.raises(PolyApiException) as err:
        a.post_order(order)
    assert err.value.status_code == 400 and err.value.error_msg == {"error": "invalid signature"}
    # Signed for the neg-risk exchange while the market is a standard one: wrong domain.
    wrong_domain = a.create_order(
        OrderArgsV2(token_id=token, price=0.40, size=10, side="BUY"), PartialCreateOrderOptions(neg_risk=True)
    )
    with pytest.raises(PolyApiException) as err:
        a.post_order(wrong_domain)
    assert err.value.error_msg == {"error": "invalid signature"}
    # B's key cannot post A's order.
    good = a.create_order(OrderArgsV2(token_id=token, price=0.40, size=10, side="BUY"))
    with pytest.raises(PolyApiException) as err:
        b.post_order(good)
    assert "has to be" in err.value.error_msg["error"]
    # The same order twice is a duplicate.
    assert a.post_order(good)["success"]
    with pytest.raises(PolyApiException) as err:
        a.post_order(good)
    assert err.value.error_msg["error"].endswith("is invalid. Duplicated.")
    assert len(a.get_open_orders()) == 1


def test_heartbeats_chain_and_dead_man_switch(sim: ThreadedSim, pair: tuple[ClobClient, ClobClient]) -> None:
    a, _ = pair
    token = _market(sim).yes_token_id
    first = a.post_heartbeat("")["heartbeat_id"]
    second = a.post_heartbeat(first)["heartbeat_id"]
    assert second != first
    with pytest.raises(PolyApiException) as err:
        a.post_heartbeat(first)
    assert err.value.status_code == 400
    assert err.value.error_msg == {"error": "Invalid Heartbeat ID", "heartbeat_id": second}
    a.create_and_post_order(OrderArgsV2(token_id=token, price=0.20, size=5, side="BUY"))
    assert len(a.get_open_orders()) == 1
    # Heartbeats stop: past the timeout every open order of the user is cancelled.
    hb = sim.service.heartbeats
    sim.call(lambda: hb._chains[a.get_address().lower()].__setattr__("last_ms", 0))
    sim.call(sim.service.tick)
    assert a.get_open_orders() == []
