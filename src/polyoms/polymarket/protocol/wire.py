"""The CLOB's REST bodies for orders, cancels and balances (doc §3.9, §4.6, §4.8): one typed schema each.

The client encodes requests and decodes answers with these structs, the local exchange decodes
requests and encodes answers with the same ones. Emitted order bytes match the official Python
SDK's compact serialization key for key (the HMAC is computed over them): field order is key order,
and `UNSET` fields (read, never written) are left out. Decoding is lenient where the venue's types
vary (numbers vs strings).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Generic, TypeVar

import msgspec
from msgspec import UNSET, UnsetType

from polyoms.core.enums import OrderType, Side, SignatureType
from polyoms.core.errors import InvalidOrderError, OrderVersionMismatchError
from polyoms.core.units import Micro, to_micro
from polyoms.polymarket.protocol import constants
from polyoms.polymarket.protocol.errors import INVALID_ORDER_PAYLOAD, ORDER_VERSION_MISMATCH, too_many_orders
from polyoms.polymarket.protocol.keys import to_checksum_address
from polyoms.polymarket.protocol.order import SignedOrder, order_digest

T = TypeVar("T")
_encoder = msgspec.json.Encoder()
MAX_BATCH = 15


# --- POST /order, /orders ------------------------------------------------------------------------


class PmSignedOrder(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """The `order` object of POST /order, fields in the SDK's key order."""

    salt: int | str
    maker: str
    signer: str
    tokenId: str | int
    makerAmount: str | int
    takerAmount: str | int
    side: str | int
    expiration: str | int | UnsetType = UNSET
    signatureType: int | str | UnsetType = UNSET
    timestamp: str | int | UnsetType | None = UNSET
    metadata: str | UnsetType | None = UNSET
    builder: str | UnsetType | None = UNSET
    signature: str
    # V1 fields: present only on orders signed for the old exchange.
    nonce: str | int | UnsetType | None = UNSET
    feeRateBps: str | int | UnsetType | None = UNSET
    taker: str | UnsetType | None = UNSET


class PmOrderEnvelope(msgspec.Struct, frozen=True, gc=False):
    """One order of POST /order (the body) or /orders (an array of them)."""

    order: PmSignedOrder
    owner: str = ""
    orderType: str = "GTC"
    deferExec: bool = False
    postOnly: bool = False


def order_to_wire(order: SignedOrder) -> PmSignedOrder:
    return PmSignedOrder(
        salt=order.salt,
        maker=order.maker,
        signer=order.signer,
        tokenId=str(order.token_id),
        makerAmount=str(order.maker_amount),
        takerAmount=str(order.taker_amount),
        side=order.side.name,
        expiration=str(order.expiration),
        signatureType=int(order.signature_type),
        timestamp=str(order.timestamp_ms),
        metadata=order.metadata,
        builder=order.builder,
        signature=order.signature,
    )


def order_envelope(order: SignedOrder, owner: str, *, defer_exec: bool = False) -> PmOrderEnvelope:
    return PmOrderEnvelope(order_to_wire(order), owner, order.order_type.value, defer_exec, order.post_only)


def encode_json(value: Any) -> bytes:
    """Compact JSON, keys in insertion order, UTF-8 unescaped: the SDK's separators=(',', ':')."""
    return _encoder.encode(value)


def post_order_body(order: SignedOrder, owner: str, *, defer_exec: bool = False) -> bytes:
    return _encoder.encode(order_envelope(order, owner, defer_exec=defer_exec))


def post_orders_body(orders: list[SignedOrder], owner: str, *, defer_exec: bool = False) -> bytes:
    if len(orders) > MAX_BATCH:
        raise InvalidOrderError(too_many_orders(len(orders), MAX_BATCH))
    return _encoder.encode([order_envelope(o, owner, defer_exec=defer_exec) for o in orders])


class PmOrderAnswer(msgspec.Struct, frozen=True, gc=False):
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


_order_answer = msgspec.json.Decoder(PmOrderAnswer)
_order_answers = msgspec.json.Decoder(list[PmOrderAnswer])


def decode_order_response(data: bytes | str) -> PmOrderAnswer:
    return _order_answer.decode(data)


def decode_order_responses(data: bytes | str) -> list[PmOrderAnswer]:
    return _order_answers.decode(data)


_envelope = msgspec.json.Decoder(PmOrderEnvelope)
_envelopes = msgspec.json.Decoder(list[PmOrderEnvelope])


def decode_envelope(data: bytes) -> PmOrderEnvelope:
    try:
        return _envelope.decode(data)
    except msgspec.DecodeError as exc:
        raise InvalidOrderError(INVALID_ORDER_PAYLOAD, status=400, detail=str(exc)) from None


def decode_envelopes(data: bytes) -> list[PmOrderEnvelope]:
    try:
        return _envelopes.decode(data)
    except msgspec.DecodeError as exc:
        raise InvalidOrderError(INVALID_ORDER_PAYLOAD, status=400, detail=str(exc)) from None


# --- DELETE /order, /orders, /cancel-all, /cancel-market-orders --------------------------------------


class PmCancelOrder(msgspec.Struct, frozen=True, gc=False):
    """DELETE /order. (DELETE /orders is a bare JSON array of ids, `list[str]`.)"""

    orderID: str


class PmCancelMarketOrders(msgspec.Struct, frozen=True, gc=False):
    """DELETE /cancel-market-orders; an empty or null field means "any"."""

    market: str | None = None
    asset_id: str | None = None


class PmCancelAnswer(msgspec.Struct, frozen=True, gc=False):
    """Answer of every cancel: what was cancelled, and why not the rest (order id -> reason)."""

    canceled: tuple[str, ...] = ()
    not_canceled: dict[str, str] = {}

    def merge(self, other: PmCancelAnswer) -> PmCancelAnswer:
        return PmCancelAnswer(self.canceled + other.canceled, {**self.not_canceled, **other.not_canceled})


# --- GET /balance-allowance, GET /data/order(s) -------------------------------------------------------


class PmBalanceAllowance(msgspec.Struct, frozen=True, gc=False):
    """GET /balance-allowance: 6-decimal integers as text, one allowance per exchange contract."""

    balance: str | int | None = None
    allowances: dict[str, str | int | None] | None = None
    allowance: str | int | UnsetType | None = UNSET
    """V1 shape: one allowance (read, never written)."""


class PmOpenOrder(msgspec.Struct, frozen=True, gc=False):
    """GET /data/order/{id} and a GET /data/orders item, fields in the venue's key order."""

    id: str | None = None
    status: str | None = None
    owner: str | None = None
    maker_address: str | None = None
    market: str | None = None
    asset_id: str | None = None
    side: str | None = None
    original_size: str | int | float | None = None
    size_matched: str | int | float | None = None
    price: str | int | float | None = None
    outcome: str | None = None
    expiration: str | int | None = None
    order_type: str | None = None
    associate_trades: list[str] | None = None
    created_at: str | int | None = None


class PmPage(msgspec.Struct, Generic[T], frozen=True, gc=False):
    """One page of a cursor-paginated endpoint (`next_cursor` "LTE=" marks the last)."""

    limit: int | None = None
    count: int | None = None
    next_cursor: str = ""
    data: list[T] = []


def _uint(value: str | int, what: str, bits: int = 256) -> int:
    try:
        number = value if isinstance(value, int) else int(value, 10)
    except ValueError:
        number = -1
    if isinstance(number, bool) or not 0 <= number < 2**bits:
        raise InvalidOrderError(INVALID_ORDER_PAYLOAD, status=400, field=what)
    return number


def _given(value: T | UnsetType | None) -> T | None:
    return None if isinstance(value, UnsetType) else value


def signed_order_from_wire(env: PmOrderEnvelope, *, chain_id: int, neg_risk: bool) -> SignedOrder:
    """A typed SignedOrder from a decoded envelope; its order_id is recomputed, never trusted."""
    w = env.order
    timestamp = None if isinstance(w.timestamp, UnsetType) else w.timestamp
    if timestamp is None or _given(w.nonce) is not None or _given(w.feeRateBps) is not None:
        raise OrderVersionMismatchError(f"{ORDER_VERSION_MISMATCH}: orders must be signed for CLOB V2", status=400)
    try:
        side = Side.parse(w.side)
        order_type = OrderType.parse(env.orderType)
        signature_type = SignatureType.parse(0 if w.signatureType is UNSET else w.signatureType)
        order = SignedOrder(
            salt=_uint(w.salt, "salt", 256),
            maker=to_checksum_address(w.maker),
            signer=to_checksum_address(w.signer),
            token_id=_uint(w.tokenId, "tokenId"),
            maker_amount=_uint(w.makerAmount, "makerAmount"),
            taker_amount=_uint(w.takerAmount, "takerAmount"),
            side=side,
            signature_type=signature_type,
            timestamp_ms=_uint(timestamp, "timestamp", 64),
            metadata=_given(w.metadata) or constants.BYTES32_ZERO,
            builder=_given(w.builder) or constants.BYTES32_ZERO,
            expiration=_uint("0" if w.expiration is UNSET else w.expiration, "expiration", 64),
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
