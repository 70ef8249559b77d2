"""The taker delay (`itode`): a marketable order waits TAKER_DELAY_MS, makers may cancel meanwhile.

The market flag and the `order_delayed_rate` fault take the same path (SimService.delayed); the
venue answers `delayed`, the user channel shows the order as DELAYED, and it then matches against
what the book holds when its time comes.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator

import aiohttp
import httpx
import pytest

from polyoms.core.clock import VirtualClock
from polyoms.core.units import MICRO
from polyoms.exchange.api.runner import ThreadedSim
from polyoms.exchange.api.service import DELAYED, TAKER_DELAY_MS, Caller, SimService
from polyoms.exchange.engine import Exchange
from polyoms.exchange.events import Event, ExchangeOrderEvent
from polyoms.exchange.markets import MarketSpec, binary_market
from polyoms.polymarket.protocol.keys import Signer
from polyoms.polymarket.protocol.order import OrderBuilder, SignedOrder
from polyoms.polymarket.protocol.wire import post_order_body
from tests.exchange_api.conftest import KEY_A, KEY_B, KEY_C
from tests.exchange_api.test_bad_requests import RawClient

T0 = 1_780_000_000_000
DELAYED_MARKET = binary_market("delayed-taker", "Delayed?").with_flags(taker_delay=True)
PLAIN_MARKET = binary_market("plain-taker", "Plain?")


class Trader:
    def __init__(self, svc: SimService, key: str) -> None:
        self.signer = Signer(key)
        self.builder = OrderBuilder(self.signer)
        self.caller = Caller(self.signer.address, svc.create_key(self.signer.address, 0))
        self.svc = svc

    def order(self, market: MarketSpec, side: str, price: str, size: str) -> SignedOrder:
        return self.builder.limit(market.yes_token_id, side, price, size, tick="0.01")


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock(T0)


@pytest.fixture
def svc(clock: VirtualClock) -> SimService:
    return SimService(Exchange([DELAYED_MARKET, PLAIN_MARKET], clock, seed=1), clock)


def _book(svc: SimService, maker: Trader, market: MarketSpec) -> tuple[SignedOrder, SignedOrder]:
    """Two asks of maker's: 10 at 0.50 and 10 at 0.52."""
    svc.fund(maker.signer.address, 0, {market.yes_token_id: 100 * MICRO})
    first, second = maker.order(market, "SELL", "0.50", "10"), maker.order(market, "SELL", "0.52", "10")
    assert svc.submit_verified(maker.caller, first).status == "live"
    assert svc.submit_verified(maker.caller, second).status == "live"
    return first, second


def test_a_marketable_order_waits_and_a_maker_who_cancels_in_time_is_not_filled(
    svc: SimService, clock: VirtualClock
) -> None:
    maker, taker = Trader(svc, KEY_B), Trader(svc, KEY_A)
    first, second = _book(svc, maker, DELAYED_MARKET)
    svc.fund(taker.signer.address, 100 * MICRO, {})
    bid = taker.order(DELAYED_MARKET, "BUY", "0.52", "10")
    answer = svc.submit_verified(taker.caller, bid)
    assert (answer.status, answer.trade_ids) == ("delayed", ())
    assert svc.exchange.trades(taker.caller.api_key) == []
    clock.advance(TAKER_DELAY_MS - 1)
    assert svc.cancel(maker.caller, [first.order_id]).canceled == [first.order_id]  # in time
    clock.advance(1)
    svc.exchange.advance()  # the delay queue is one of the exchange's timers
    [trade] = svc.exchange.trades(taker.caller.api_key)
    assert trade.price == 520_000 and trade.maker_orders[0].order_id == second.order_id
    assert svc.exchange.get_order(first.order_id).status == "CANCELED"  # type: ignore[union-attr]


def test_a_maker_who_cancels_after_the_delay_is_filled(svc: SimService, clock: VirtualClock) -> None:
    maker, taker = Trader(svc, KEY_B), Trader(svc, KEY_A)
    first, _ = _book(svc, maker, DELAYED_MARKET)
    svc.fund(taker.signer.address, 100 * MICRO, {})
    assert svc.submit_verified(taker.caller, taker.order(DELAYED_MARKET, "BUY", "0.50", "10")).status == "delayed"
    clock.advance(TAKER_DELAY_MS)
    # The cancel comes too late: the exchange first releases the order that has come due.
    result = svc.cancel(maker.caller, [first.order_id])
    assert result.canceled == [] and first.order_id in result.not_canceled
    [trade] = svc.exchange.trades(taker.caller.api_key)
    assert trade.maker_orders[0].order_id == first.order_id and trade.size == 10 * MICRO


def test_only_takers_on_flagged_markets_wait(svc: SimService) -> None:
    maker, taker = Trader(svc, KEY_B), Trader(svc, KEY_A)
    _book(svc, maker, DELAYED_MARKET)
    _book(svc, maker, PLAIN_MARKET)
    svc.fund(taker.signer.address, 100 * MICRO, {})
    assert svc.submit_verified(taker.caller, taker.order(DELAYED_MARKET, "BUY", "0.40", "10")).status == "live"
    assert svc.submit_verified(taker.caller, taker.order(PLAIN_MARKET, "BUY", "0.50", "10")).status == "matched"


def test_the_user_channel_sees_delayed_then_the_match_and_a_held_order_can_be_cancelled(
    svc: SimService, clock: VirtualClock
) -> None:
    seen: list[tuple[str, str, str]] = []

    def listen(ev: Event) -> None:
        if isinstance(ev, ExchangeOrderEvent):
            seen.append((ev.order.order_id, ev.kind, ev.status))

    svc.add_listener(listen)
    maker, taker = Trader(svc, KEY_B), Trader(svc, KEY_A)
    _book(svc, maker, DELAYED_MARKET)
    svc.fund(taker.signer.address, 100 * MICRO, {})
    held = taker.order(DELAYED_MARKET, "BUY", "0.50", "10")
    assert svc.submit_verified(taker.caller, held).status == "delayed"
    assert (held.order_id, "PLACEMENT", DELAYED) in seen
    assert svc.held_order(held.order_id) is not None
    assert svc.cancel(taker.caller, [held.order_id]).canceled == [held.order_id]
    assert seen[-1] == (held.order_id, "CANCELLATION", "CANCELED")
    clock.advance(TAKER_DELAY_MS)
    svc.exchange.advance()
    assert svc.exchange.trades(taker.caller.api_key) == [] and svc.held_order(held.order_id) is None
    # A FOK that finds nothing when its time comes ends with a CANCELLATION, not in silence.
    fok = taker.builder.market(DELAYED_MARKET.yes_token_id, "BUY", "1000", price="0.52", tick="0.01", order_type="FOK")
    assert svc.submit_verified(taker.caller, fok).status == "delayed"
    clock.advance(TAKER_DELAY_MS)
    svc.exchange.advance()
    assert seen[-1] == (fok.order_id, "CANCELLATION", "CANCELED")


def test_a_held_order_breaking_the_market_rules_is_refused_at_once(svc: SimService) -> None:
    maker, taker = Trader(svc, KEY_B), Trader(svc, KEY_A)
    _book(svc, maker, DELAYED_MARKET)
    small = taker.order(DELAYED_MARKET, "BUY", "0.50", "1")  # below the 5-share minimum
    with pytest.raises(Exception, match="lower than the minimum"):
        svc.submit_verified(taker.caller, small)
    assert svc.delayed.held == {}


# --- over HTTP and the user channel ---------------------------------------------------------------


@pytest.fixture
def vsim() -> Iterator[ThreadedSim]:
    clock = VirtualClock(int(time.time() * 1000))
    svc = SimService(Exchange([DELAYED_MARKET, PLAIN_MARKET], clock, seed=2), clock)
    with ThreadedSim(svc) as server:
        yield server


def test_the_venue_answers_delayed_and_shows_the_flag(vsim: ThreadedSim) -> None:
    cid = DELAYED_MARKET.condition_id
    assert httpx.get(f"{vsim.url}/clob-markets/{cid}").json()["itode"] is True
    assert "itode" not in httpx.get(f"{vsim.url}/clob-markets/{PLAIN_MARKET.condition_id}").json()
    a, b = RawClient(vsim.url, KEY_A), RawClient(vsim.url, KEY_C)
    vsim.call(vsim.service.fund, a.signer.address, 100 * MICRO, {})
    vsim.call(vsim.service.fund, b.signer.address, 0, {DELAYED_MARKET.yes_token_id: 50 * MICRO})
    ask = b.builder.limit(DELAYED_MARKET.yes_token_id, "SELL", "0.50", "10", tick="0.01")
    assert b.send("POST", "/order", post_order_body(ask, b.creds.api_key)).json()["status"] == "live"

    async def main() -> tuple[dict[str, object], list[dict[str, object]]]:
        auth = {"apiKey": a.creds.api_key, "secret": a.creds.secret, "passphrase": a.creds.passphrase}
        async with (
            aiohttp.ClientSession() as session,
            session.ws_connect(vsim.url.replace("http", "ws") + "/ws/user") as ws,
        ):
            await ws.send_str(json.dumps({"type": "user", "auth": auth, "markets": []}))
            await asyncio.sleep(0.1)
            bid = a.builder.limit(DELAYED_MARKET.yes_token_id, "BUY", "0.50", "10", tick="0.01")
            answer = await asyncio.to_thread(a.send, "POST", "/order", post_order_body(bid, a.creds.api_key))
            held = await asyncio.to_thread(a.send, "GET", f"/data/order/{bid.order_id}")
            assert held.json()["status"] == DELAYED
            frames: list[dict[str, object]] = []
            while len(frames) < 1:
                frames.append(json.loads((await ws.receive(timeout=2)).data))
            return answer.json(), frames

    answer, frames = asyncio.run(main())
    assert answer["status"] == "delayed" and answer["tradeIDs"] == [] and answer["makingAmount"] == ""
    assert frames[0]["event_type"] == "order" and frames[0]["status"] == DELAYED and frames[0]["type"] == "PLACEMENT"
