"""Polymarket's words → the port's: one mapping per kind of status, and signing through the adapter."""

from __future__ import annotations

import msgspec
import pytest

from polyoms.core.enums import OrderType, Side
from polyoms.core.errors import MalformedMessageError
from polyoms.core.units import MICRO, tick_size
from polyoms.core.user_events import OrderEventType, OrderStatus
from polyoms.core.venue import Instrument, OrderReport, OrderRequest, ReportStatus, order_event_of
from polyoms.polymarket.client import Wallet
from polyoms.polymarket.protocol.constants import GTD_SECURITY_THRESHOLD_S
from polyoms.venues import polymarket_orders as pm

KEY = "0x7c852118294e51e653712a81e05800f419141751be58f605c371e15141b007a6"
TOKEN = "71321045679252212594626385532706912750332728571942532289631379312455583992563"
T01 = tick_size("0.01")


@pytest.mark.parametrize(
    ("word", "status"),
    [
        ("LIVE", ReportStatus.LIVE),
        ("live", ReportStatus.LIVE),
        ("ORDER_STATUS_LIVE", ReportStatus.LIVE),
        ("DELAYED", ReportStatus.DELAYED),
        ("MATCHED", ReportStatus.MATCHED),
        ("UNMATCHED", ReportStatus.UNMATCHED),
        ("CANCELED", ReportStatus.CANCELED),
        ("CANCELLED", ReportStatus.CANCELED),
        ("ORDER_STATUS_CANCELED_MARKET_RESOLVED", ReportStatus.CANCELED),
        ("INVALID", ReportStatus.REJECTED),
    ],
)
def test_every_documented_report_status_maps(word: str, status: ReportStatus) -> None:
    assert pm.report_status(word) is status


def test_an_unknown_report_status_is_a_typed_error() -> None:
    with pytest.raises(MalformedMessageError, match="unknown order status"):
        pm.report_status("HALF_FILLED")


def test_invalid_reads_the_same_on_every_path() -> None:
    """A REJECTED report is gone from the book: as an event it is a cancellation, never LIVE."""
    report = OrderReport("0xab", pm.report_status("INVALID"), "0xm", TOKEN, Side.BUY, 400_000, 10 * MICRO, 0)
    ev = order_event_of(report)
    assert ev.type is OrderEventType.CANCELLATION and ev.status is OrderStatus.CANCELED


@pytest.mark.parametrize(
    ("word", "status"),
    [("live", OrderStatus.LIVE), ("matched", OrderStatus.MATCHED), ("delayed", OrderStatus.DELAYED),
     ("unmatched", OrderStatus.UNMATCHED), ("whatever", None)],
)  # fmt: skip
def test_ack_status(word: str, status: OrderStatus | None) -> None:
    a = pm.ack("0xab", word, ("t1",))
    assert (a.status, a.venue_id, a.trade_ids, a.raw_status) == (status, "0xab", ("t1",), word)


def test_sign_is_the_builder_and_the_key_is_the_hash() -> None:
    builder = Wallet.from_key(KEY).order_builder()
    inst = Instrument(TOKEN, T01, "0xmarket", neg_risk=True, min_size=5 * MICRO)
    req = OrderRequest(
        token_id=TOKEN,
        side=Side.BUY,
        price=420_000,
        size=10 * MICRO,
        order_type=OrderType.GTD,
        expiration=1_790_000_600,
        post_only=True,
        timestamp_ms=1_790_000_000_000,
        nonce=12345,
    )
    prepared = pm.sign(builder, req, inst)
    direct = builder.limit_micro(
        int(TOKEN),
        Side.BUY,
        420_000,
        10 * MICRO,
        tick=T01,
        neg_risk=True,
        order_type=OrderType.GTD,
        expiration=1_790_000_600 + GTD_SECURITY_THRESHOLD_S,
        post_only=True,
        min_size=5 * MICRO,
        salt=12345,
        timestamp_ms=1_790_000_000_000,
    )
    assert prepared.key == direct.order_id == pm.signed_payload(prepared).order_id
    tagged = pm.sign(builder, msgspec.structs.replace(req, client_id="exit-3", reduce_only=True), inst)
    assert (tagged.key, tagged.client_id, tagged.reduce_only) == (direct.order_id, "exit-3", True)  # same order
    # What the OMS journals: when the venue ends it, the request's own expiration.
    assert prepared.expiration == req.expiration
    assert (prepared.price, prepared.size, prepared.maker_amount) == (420_000, 10 * MICRO, 4_200_000)


def test_a_dollar_buy_reserves_at_its_worst_price_rounded_up() -> None:
    builder = Wallet.from_key(KEY).order_builder()
    inst = Instrument(TOKEN, T01, "0xmarket")
    req = OrderRequest(token_id=TOKEN, side=Side.BUY, price=330_000, amount=10 * MICRO, order_type=OrderType.FOK)
    p = pm.sign(builder, req, inst)
    assert p.notional and p.maker_amount == 10 * MICRO
    assert p.price * p.taker_amount >= p.maker_amount * MICRO  # never reserves less than it may spend


def test_a_payload_of_another_venue_is_refused() -> None:
    builder = Wallet.from_key(KEY).order_builder()
    p = pm.sign(
        builder, OrderRequest(token_id=TOKEN, side=Side.SELL, price=600_000, size=5 * MICRO), Instrument(TOKEN, T01)
    )
    other = type(p)(**{**{f: getattr(p, f) for f in p.__struct_fields__}, "payload": {"client_order_id": "x"}})
    with pytest.raises(TypeError, match="not prepared by a Polymarket adapter"):
        pm.signed_payload(other)
