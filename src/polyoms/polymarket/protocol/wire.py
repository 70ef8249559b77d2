"""JSON bodies of POST /order and POST /orders, and typed decoding of the venue's answers.

Emitted bytes match the official Python SDK's compact serialization key for key (the HMAC is
computed over them); decoding is lenient where the venue's types vary (numbers vs strings).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import msgspec

from polyoms.core.enums import OrderType, Side, SignatureType
from polyoms.core.errors import InvalidOrderError, OrderVersionMismatchError
from polyoms.core.units import Micro, to_micro
from polyoms.polymarket.protocol import constants
from polyoms.polymarket.protocol.keys import to_checksum_address
from polyoms.polymarket.protocol.order import SignedOrder, order_digest

_encoder = msgspec.json.Encoder()
INVALID_ORDER_PAYLOAD = "Invalid order payload"


def order_to_wire(order: SignedOrder) -> dict[str, Any]:
    """The `order` object inside POST /order, in the SDK's key order and wire types."""
    return {
        "salt": order.salt,
        "maker": order.maker,
        "signer": order.signer,
        "tokenId": str(order.token_id),
        "makerAmount": str(order.maker_amount),
        "takerAmount": str(order.taker_amount),
        "side": order.side.name,
        "expiration": str(order.expiration),
        "signatureType": int(order.signature_type),
        "timestamp": str(order.timestamp_ms),
        "metadata": order.metadata,
        "builder": order.builder,
        "signature": order.signature,
    }


def order_envelope(order: SignedOrder, owner: str, *, defer_exec: bool = False) -> dict[str, Any]:
    return {
        "order": order_to_wire(order),
        "owner": owner,
        "orderType": order.order_type.value,
        "deferExec": defer_exec,
        "postOnly": order.post_only,
    }


def encode_json(value: Any) -> bytes:
    """Compact JSON, keys in insertion order, UTF-8 unescaped: the SDK's separators=(',', ':')."""
    return _encoder.encode(value)


def post_order_body(order: SignedOrder, owner: str, *, defer_exec: bool = False) -> bytes:
    return _encoder.encode(order_envelope(order, owner, defer_exec=defer_exec))


MAX_BATCH = 15


def post_orders_body(orders: list[SignedOrder], owner: str, *, defer_exec: bool = False) -> bytes:
    if len(orders) > MAX_BATCH:
        raise InvalidOrderError(f"Too many orders in payload: {len(orders)}, max allowed: {MAX_BATCH}")
    return _encoder.encode([order_envelope(o, owner, defer_exec=defer_exec) for o in orders])


# --- responses ----------------------------------------------------------------------------------


class OrderResponse(msgspec.Struct, frozen=True):
    """Answer to one order of POST /order or /orders (§3.9)."""

    success: bool = True
    errorMsg: str = ""
    orderID: str = ""
    status: str = ""
    makingAmount: str = ""
    takingAmount: str = ""
    transactionsHashes: list[str] | None = None
    tradeIDs: list[str] | None = None

    @property
    def making_micro(self) -> Micro:
        return to_micro(self.makingAmount, "makingAmount") if self.makingAmount else 0

    @property
    def taking_micro(self) -> Micro:
        return to_micro(self.takingAmount, "takingAmount") if self.takingAmount else 0


_order_response = msgspec.json.Decoder(OrderResponse)
_order_responses = msgspec.json.Decoder(list[OrderResponse])


def decode_order_response(data: bytes | str) -> OrderResponse:
    return _order_response.decode(data)


def decode_order_responses(data: bytes | str) -> list[OrderResponse]:
    return _order_responses.decode(data)


# --- inbound orders (the local exchange's side) --------------------------------------------------


class WireOrder(msgspec.Struct, frozen=True):
    salt: int | str
    maker: str
    signer: str
    tokenId: str | int
    makerAmount: str | int
    takerAmount: str | int
    side: str | int
    signature: str
    signatureType: int | str = 0
    expiration: str | int = "0"
    timestamp: str | int | None = None
    metadata: str | None = None
    builder: str | None = None
    # V1 fields: present only on orders signed for the old exchange.
    nonce: str | int | None = None
    feeRateBps: str | int | None = None
    taker: str | None = None


class OrderEnvelope(msgspec.Struct, frozen=True):
    order: WireOrder
    owner: str = ""
    orderType: str = "GTC"
    deferExec: bool = False
    postOnly: bool = False


_envelope = msgspec.json.Decoder(OrderEnvelope)
_envelopes = msgspec.json.Decoder(list[OrderEnvelope])


def decode_envelope(data: bytes) -> OrderEnvelope:
    try:
        return _envelope.decode(data)
    except msgspec.DecodeError as exc:
        raise InvalidOrderError(INVALID_ORDER_PAYLOAD, status=400, detail=str(exc)) from None


def decode_envelopes(data: bytes) -> list[OrderEnvelope]:
    try:
        return _envelopes.decode(data)
    except msgspec.DecodeError as exc:
        raise InvalidOrderError(INVALID_ORDER_PAYLOAD, status=400, detail=str(exc)) from None


def _uint(value: str | int, what: str, bits: int = 256) -> int:
    try:
        number = value if isinstance(value, int) else int(value, 10)
    except ValueError:
        number = -1
    if isinstance(number, bool) or not 0 <= number < 2**bits:
        raise InvalidOrderError(INVALID_ORDER_PAYLOAD, status=400, field=what)
    return number


def signed_order_from_wire(env: OrderEnvelope, *, chain_id: int, neg_risk: bool) -> SignedOrder:
    """A typed SignedOrder from a decoded envelope; its order_id is recomputed, never trusted."""
    w = env.order
    if w.timestamp is None or w.nonce is not None or w.feeRateBps is not None:
        raise OrderVersionMismatchError("order_version_mismatch: orders must be signed for CLOB V2", status=400)
    try:
        side = Side.parse(w.side)
        order_type = OrderType.parse(env.orderType)
        signature_type = SignatureType.parse(w.signatureType)
        order = SignedOrder(
            salt=_uint(w.salt, "salt", 256),
            maker=to_checksum_address(w.maker),
            signer=to_checksum_address(w.signer),
            token_id=_uint(w.tokenId, "tokenId"),
            maker_amount=_uint(w.makerAmount, "makerAmount"),
            taker_amount=_uint(w.takerAmount, "takerAmount"),
            side=side,
            signature_type=signature_type,
            timestamp_ms=_uint(w.timestamp, "timestamp", 64),
            metadata=w.metadata or constants.BYTES32_ZERO,
            builder=w.builder or constants.BYTES32_ZERO,
            expiration=_uint(w.expiration, "expiration", 64),
            signature=w.signature,
            order_id="",
            order_type=order_type,
            post_only=env.postOnly,
            neg_risk=neg_risk,
            chain_id=chain_id,
        )
    except InvalidOrderError:
        raise
    except Exception:
        raise InvalidOrderError(INVALID_ORDER_PAYLOAD, status=400) from None
    return replace(order, order_id="0x" + order_digest(order).hex())
