"""The desk places orders through the venue port: it holds no order builder, every order it sends is the
one the adapter prepared (and signed), a GTD order's `--expiration` is still the expiration signed, and
the port's requests sign exactly what the builder's human-units calls the desk used to make would."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator

import pytest

from polyoms.core.enums import OrderType, Side
from polyoms.core.units import MICRO, tick_size
from polyoms.core.venue import Instrument, OrderRequest, PreparedOrder
from polyoms.ops import desk as desk_module
from polyoms.ops import schema as api
from polyoms.ops.daemon import Daemon, DaemonThread
from polyoms.ops.desk import Desk
from polyoms.polymarket.protocol.constants import GTD_SECURITY_THRESHOLD_S
from polyoms.polymarket.protocol.keys import Signer
from polyoms.polymarket.protocol.order import OrderBuilder
from polyoms.venues.polymarket_orders import sign, signed_payload
from tests.ops.daemon_helpers import KEY_DAEMON, Counterparty, first_market, fund, start_daemon

TOKEN = "71321045679252212594626385532706912750332728571942532289631379312455583992563"
NOW_MS = 1_777_000_000_000


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[DaemonThread, Daemon]]:
    yield from start_daemon(tmp_path_factory)


def test_the_desk_holds_no_order_builder() -> None:
    fields = {f.name for f in dataclasses.fields(Desk)}
    assert "builder" not in fields and "venue_kind" not in fields
    assert not hasattr(desk_module, "OrderBuilder") and not hasattr(desk_module, "SignedOrder")


def test_every_desk_order_is_the_adapters_prepared_order(
    running: tuple[DaemonThread, Daemon], monkeypatch: pytest.MonkeyPatch
) -> None:
    thread, d = running
    assert d.desk is not None and d.engine is not None
    desk, venue = d.desk, d.engine.venue
    _, yes, _ = first_market(d)
    made: list[tuple[OrderRequest, Instrument, PreparedOrder]] = []
    adapter_prepare = venue.prepare

    def spy(request: OrderRequest, instrument: Instrument) -> PreparedOrder:
        order = adapter_prepare(request, instrument)
        made.append((request, instrument, order))
        return order

    monkeypatch.setattr(venue, "prepare", spy)

    async def add(body: api.OrderBody) -> api.OrderAccepted:
        return await desk.add_order(body)

    # A GTC limit BUY: the answer's fields are the prepared order's.
    acc = thread.call(lambda: add(api.OrderBody(token_id=yes, side="BUY", price="0.30", size="10")))
    (request, instrument, order), *_ = made
    assert acc.order_id == order.key and signed_payload(order).order_id == order.key
    assert (acc.price, acc.size, acc.order_type, acc.token_id) == ("0.3", "10", "GTC", yes)
    assert request == OrderRequest(token_id=yes, side=Side.BUY, price=300_000, size=10 * MICRO)
    assert instrument.token_id == yes and instrument.tick.text == "0.01" and instrument.complement

    # A GTD order: `--expiration` is what is signed; the port is asked for the end, a lead earlier.
    signed = int(time.time()) + 3_600
    gtd = api.OrderBody(token_id=yes, side="BUY", price="0.20", size="5", order_type="GTD", expiration=signed)
    acc = thread.call(lambda: add(gtd))
    request, _, order = made[-1]
    assert acc.order_id == order.key and acc.order_type == "GTD"
    assert request.expiration == signed - venue.expiry_lead_s == order.expiration
    assert signed_payload(order).expiration == signed

    # A market BUY by amount, against a counterparty's ask: sized in pUSD, its spend plan keyed by order id.
    them = Counterparty(d.venue_url)
    fund(d.venue_url, them.address(), "100", {yes: "100"})
    assert them.post("SELL", yes, "0.60", "50") == "live"
    buy = api.OrderBody(token_id=yes, side="BUY", kind="market", amount="3")
    acc = thread.call(lambda: add(buy))
    request, _, order = made[-1]
    assert request.notional and request.price == 600_000 and request.order_type is OrderType.FOK
    assert acc.order_id == order.key and order.notional
    assert acc.size is None and acc.amount is not None and acc.max_spend is not None
    assert acc.price == "0.6" and acc.amount == desk_module.fmt_micro(order.maker_amount)
    assert len(made) == 3


def _builder() -> OrderBuilder:
    return OrderBuilder(Signer(KEY_DAEMON))


def _instrument(min_size: int = 0) -> Instrument:
    return Instrument(TOKEN, tick_size("0.01"), "0xabc", min_size=min_size)


@pytest.mark.parametrize("order_type", [OrderType.FOK, OrderType.FAK])
def test_a_market_sell_request_signs_what_the_market_builder_did(order_type: OrderType) -> None:
    builder = _builder()
    before = builder.market(
        TOKEN, "SELL", "12.5", "0.35", tick="0.01", order_type=order_type, salt=7, timestamp_ms=NOW_MS
    )
    request = OrderRequest(
        token_id=TOKEN,
        side=Side.SELL,
        price=350_000,
        size=12_500_000,
        order_type=order_type,
        nonce=7,
        timestamp_ms=NOW_MS,
    )
    now = sign(builder, request, _instrument(min_size=5 * MICRO))
    assert signed_payload(now) == before
    assert (before.maker_amount, before.taker_amount) == (12_500_000, 12_500_000 * 350_000 // MICRO)


def test_a_market_buy_request_signs_what_the_market_builder_did() -> None:
    builder = _builder()
    before = builder.market(TOKEN, "BUY", "7.31", "0.62", tick="0.01", salt=9, timestamp_ms=NOW_MS)
    request = OrderRequest(
        token_id=TOKEN,
        side=Side.BUY,
        price=620_000,
        amount=7_310_000,
        order_type=OrderType.FOK,
        nonce=9,
        timestamp_ms=NOW_MS,
    )
    assert signed_payload(sign(builder, request, _instrument())) == before


def test_a_gtd_request_signs_the_expiration_the_operator_gave() -> None:
    builder = _builder()
    signed = NOW_MS // 1000 + 600
    before = builder.limit(
        TOKEN, "BUY", "0.4", "10", tick="0.01", order_type="GTD", expiration=signed, salt=3, timestamp_ms=NOW_MS
    )
    request = OrderRequest(
        token_id=TOKEN,
        side=Side.BUY,
        price=400_000,
        size=10 * MICRO,
        order_type=OrderType.GTD,
        expiration=signed - GTD_SECURITY_THRESHOLD_S,
        nonce=3,
        timestamp_ms=NOW_MS,
    )
    assert signed_payload(sign(builder, request, _instrument())) == before
