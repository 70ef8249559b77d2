"""Polymarket's side of the port's order vocabulary: signing requests, and reading its answers.

Both Polymarket adapters (the REST client and the in-process exchange, which speaks the same protocol)
use these, so each mapping from the venue's words to the domain's exists once: order statuses in an
answer (`ack_status`), in an order report (`protocol.statuses.report_status`, exhaustive),
and the GTD security lead: added to a request's `expiration` when signing, taken off when journaling.
"""

from __future__ import annotations

from typing import Final

from polyoms.core.enums import OrderType, Side
from polyoms.core.errors import MalformedMessageError
from polyoms.core.units import MICRO
from polyoms.core.user_events import OrderStatus
from polyoms.core.venue import Ack, Instrument, OrderReport, OrderRequest, PreparedOrder
from polyoms.polymarket.client.models import OpenOrder
from polyoms.polymarket.protocol.constants import GTD_SECURITY_THRESHOLD_S
from polyoms.polymarket.protocol.order import OrderBuilder, SignedOrder
from polyoms.polymarket.protocol.statuses import report_status

VENUE: Final = "polymarket"


def ack_status(status: str) -> OrderStatus | None:
    """POST /order answer status (doc §3.9: live, matched, delayed, unmatched) → domain; None if unknown."""
    try:
        return OrderStatus.parse(status)
    except MalformedMessageError:
        return None


def ack(order_id: str, status: str, trade_ids: tuple[str, ...] = ()) -> Ack:
    return Ack(ack_status(status), venue_id=order_id, trade_ids=trade_ids, raw_status=status)


def report_of(o: OpenOrder) -> OrderReport:
    """GET /data/order(s) item (the client's typed `OpenOrder`) as the port reports it."""
    return OrderReport(
        id=o.id,
        status=report_status(o.status),
        market=o.market,
        asset_id=o.asset_id,
        side=o.side,
        price=o.price,
        original_size=o.original_size,
        size_matched=o.size_matched,
        order_type=o.order_type,
        expiration=o.expiration,
        owner=o.owner,
        maker_address=o.maker_address,
        created_at=o.created_at,
    )


def prepared(
    order: SignedOrder, *, notional: bool = False, reduce_only: bool = False, client_id: str = ""
) -> PreparedOrder:
    """A signed order as the OMS journals it; its hash is the exactly-once key and the venue's id.
    `notional`: a market BUY built from a pUSD amount (its size is then bounded, not fixed)."""
    size, price = order.size_and_price
    dollar_buy = notional and order.side is Side.BUY
    if dollar_buy:
        # Worst acceptable price, rounded up so the reservation never falls short.
        price = -(-order.maker_amount * MICRO // order.taker_amount)
    expiration = order.expiration - GTD_SECURITY_THRESHOLD_S if order.expiration else 0
    return PreparedOrder(
        key=order.order_id,
        token_id=str(order.token_id),
        side=order.side,
        order_type=order.order_type,
        price=price,
        size=size,
        maker_amount=order.maker_amount,
        taker_amount=order.taker_amount,
        notional=dollar_buy,
        expiration=expiration,
        post_only=order.post_only,
        reduce_only=reduce_only,
        client_id=client_id,
        payload=order,
    )


def sign(builder: OrderBuilder, request: OrderRequest, instrument: Instrument) -> PreparedOrder:
    """Build and sign `request` for `instrument` (its tick and exchange contract)."""
    tick = instrument.tick
    token = int(request.token_id)
    if request.notional:
        order = builder.market_micro(
            token,
            Side.BUY,
            request.amount,
            request.price,
            tick=tick,
            neg_risk=instrument.neg_risk,
            order_type=request.order_type,
            salt=request.nonce,
            timestamp_ms=request.timestamp_ms,
        )
        return prepared(order, notional=True, reduce_only=request.reduce_only, client_id=request.client_id)
    order = builder.limit_micro(
        token,
        request.side,
        request.price,
        request.size,
        tick=tick,
        neg_risk=instrument.neg_risk,
        order_type=request.order_type,
        # The venue ends a GTD order one security threshold before what was signed (doc §3.8).
        expiration=request.expiration + GTD_SECURITY_THRESHOLD_S
        if request.order_type is OrderType.GTD
        else request.expiration,
        post_only=request.post_only,
        min_size=instrument.min_size if instrument.min_size and not request.order_type.is_marketable_only else None,
        salt=request.nonce,
        timestamp_ms=request.timestamp_ms,
    )
    return prepared(order, reduce_only=request.reduce_only, client_id=request.client_id)


def signed_payload(order: PreparedOrder) -> SignedOrder:
    """The signed order inside a prepared one (a TypeError for one another adapter prepared)."""
    payload = order.payload
    if not isinstance(payload, SignedOrder):
        raise TypeError(f"order {order.key} was not prepared by a Polymarket adapter")
    return payload
