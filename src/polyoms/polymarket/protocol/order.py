"""Building, signing and verifying CLOB V2 orders.

The order hash computed here is the venue's order id, so an order is known by its id before a
byte is sent (architecture principle 2).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from fractions import Fraction
from typing import Final

from polyoms.core.clock import Clock, WallClock
from polyoms.core.enums import OrderType, Side, SignatureType
from polyoms.core.errors import (
    BelowMinimumSizeError,
    InvalidAmountError,
    InvalidExpirationError,
    InvalidOrderError,
    InvalidOrderTypeError,
    InvalidPriceError,
    InvalidSignatureError,
    InvalidSizeError,
    PolyomsError,
    TooManyDecimalsError,
)
from polyoms.core.units import (
    DECIMALS,
    MICRO,
    TICK_SIZES,
    Micro,
    NumberLike,
    TickSize,
    decimal_places,
    fmt_micro,
    tick_size,
    to_decimal,
    to_micro,
)
from polyoms.polymarket.protocol import constants
from polyoms.polymarket.protocol.amounts import limit_amounts, market_amounts, order_size_and_price
from polyoms.polymarket.protocol.eip712 import (
    exchange_domain_separator,
    order_struct_hash,
    poly_1271_digest,
    typed_digest,
    unwrap_poly_1271,
    wrap_poly_1271,
)
from polyoms.polymarket.protocol.keys import Signer, address_bytes, recover_address, to_checksum_address


def exchange_address(chain_id: int, neg_risk: bool) -> str:
    try:
        standard, negrisk = constants.EXCHANGES[chain_id]
    except KeyError:
        raise InvalidOrderError(f"no CLOB V2 exchange known for chain id {chain_id}", chain_id=chain_id) from None
    return negrisk if neg_risk else standard


def _bytes32(value: str, what: str) -> bytes:
    try:
        raw = bytes.fromhex(value[2:]) if value[:2] in ("0x", "0X") else b""
    except ValueError:
        raw = b""
    if len(raw) != 32:
        raise InvalidOrderError(f"{what} must be 0x-prefixed bytes32 hex", field=what)
    return raw


@dataclass(frozen=True, slots=True)
class SignedOrder:
    """A V2 order as signed, plus what travels with it (expiration is on the wire, not signed)."""

    salt: int
    maker: str
    signer: str
    token_id: int
    maker_amount: Micro
    taker_amount: Micro
    side: Side
    signature_type: SignatureType
    timestamp_ms: int
    metadata: str
    builder: str
    expiration: int
    signature: str
    order_id: str
    order_type: OrderType = OrderType.GTC
    post_only: bool = False
    neg_risk: bool = False
    chain_id: int = constants.POLYGON

    @property
    def exchange(self) -> str:
        return exchange_address(self.chain_id, self.neg_risk)

    @property
    def price(self) -> Fraction:
        """Exact limit (or worst) price implied by the amounts."""
        if self.side is Side.BUY:
            return Fraction(self.maker_amount, self.taker_amount)
        return Fraction(self.taker_amount, self.maker_amount)

    @property
    def size_and_price(self) -> tuple[Micro, Micro]:
        return order_size_and_price(self.side, self.maker_amount, self.taker_amount)

    def struct_hash(self) -> bytes:
        return order_struct_hash(
            self.salt,
            address_bytes(self.maker),
            address_bytes(self.signer),
            self.token_id,
            self.maker_amount,
            self.taker_amount,
            int(self.side),
            int(self.signature_type),
            self.timestamp_ms,
            _bytes32(self.metadata, "metadata"),
            _bytes32(self.builder, "builder"),
        )


class OrderBuilder:
    """Builds and signs orders for one key (and one funder) on one chain.

    Domain separators, addresses and the signing key are prepared once; per order the work is two
    keccaks and one secp256k1 signature.
    """

    def __init__(
        self,
        signer: Signer,
        *,
        chain_id: int = constants.POLYGON,
        signature_type: SignatureType | int = SignatureType.EOA,
        funder: str | None = None,
        builder_code: str = constants.BYTES32_ZERO,
        clock: Clock | None = None,
    ) -> None:
        self.signer = signer
        self.chain_id = chain_id
        self.signature_type = SignatureType.parse(signature_type)
        if funder is None and self.signature_type is not SignatureType.EOA:
            raise InvalidOrderError(
                f"signature type {self.signature_type.name} needs a funder address (the proxy, Safe or deposit wallet)"
            )
        self.funder = to_checksum_address(funder) if funder else signer.address
        if self.signature_type is SignatureType.EOA and self.funder != signer.address:
            raise InvalidOrderError(
                "an EOA order's maker must be the signing key's address; use signature type 1, 2 or 3 for a wallet",
                funder=self.funder,
                signer=signer.address,
            )
        # POLY_1271: the deposit wallet is both maker and signer; its owner's key signs the wrapper.
        self.order_signer = self.funder if self.signature_type is SignatureType.POLY_1271 else signer.address
        self.builder_code = builder_code
        self.clock: Clock = clock or WallClock()
        self._maker_raw = address_bytes(self.funder)
        self._signer_raw = address_bytes(self.order_signer)
        self._builder_raw = _bytes32(builder_code, "builder")
        self._domains = {
            nr: exchange_domain_separator(chain_id, exchange_address(chain_id, nr)) for nr in (False, True)
        }

    # -- public API, human units ------------------------------------------------------------

    def limit(
        self,
        token_id: int | str,
        side: Side | str,
        price: NumberLike,
        size: NumberLike,
        *,
        tick: TickSize | NumberLike,
        neg_risk: bool = False,
        order_type: OrderType | str = OrderType.GTC,
        expiration: int = 0,
        post_only: bool = False,
        min_size: NumberLike | None = None,
        salt: int | None = None,
        timestamp_ms: int | None = None,
    ) -> SignedOrder:
        """`size` shares at `price`; GTC/GTD rest, FOK/FAK through the limit path take."""
        tick = _tick(tick)
        return self._limit(
            _token_id(token_id),
            _side(side),
            _order_micro(price, "price", InvalidPriceError, InvalidPriceError),
            _order_micro(size, "size", InvalidSizeError, TooManyDecimalsError),
            tick,
            neg_risk,
            _order_type(order_type),
            expiration,
            post_only,
            None if min_size is None else to_micro(min_size, "min_size"),
            salt,
            timestamp_ms,
        )

    def market(
        self,
        token_id: int | str,
        side: Side | str,
        amount: NumberLike,
        price: NumberLike,
        *,
        tick: TickSize | NumberLike,
        neg_risk: bool = False,
        order_type: OrderType | str = OrderType.FOK,
        salt: int | None = None,
        timestamp_ms: int | None = None,
    ) -> SignedOrder:
        """BUY spends `amount` pUSD, SELL sells `amount` shares; `price` is the worst acceptable."""
        tick = _tick(tick)
        return self._market(
            _token_id(token_id),
            _side(side),
            _order_micro(amount, "amount", InvalidSizeError, TooManyDecimalsError),
            _order_micro(price, "price", InvalidPriceError, InvalidPriceError),
            tick,
            neg_risk,
            _order_type(order_type),
            salt,
            timestamp_ms,
        )

    # -- public API, micro-units ------------------------------------------------------------

    def limit_micro(
        self,
        token_id: int,
        side: Side,
        price: Micro,
        size: Micro,
        *,
        tick: TickSize,
        neg_risk: bool = False,
        order_type: OrderType = OrderType.GTC,
        expiration: int = 0,
        post_only: bool = False,
        min_size: Micro | None = None,
        salt: int | None = None,
        timestamp_ms: int | None = None,
    ) -> SignedOrder:
        return self._limit(
            token_id, side, price, size, tick, neg_risk, order_type, expiration, post_only, min_size, salt, timestamp_ms
        )

    def market_micro(
        self,
        token_id: int,
        side: Side,
        amount: Micro,
        price: Micro,
        *,
        tick: TickSize,
        neg_risk: bool = False,
        order_type: OrderType = OrderType.FOK,
        salt: int | None = None,
        timestamp_ms: int | None = None,
    ) -> SignedOrder:
        return self._market(token_id, side, amount, price, tick, neg_risk, order_type, salt, timestamp_ms)

    # -- building and signing (positional: the human-units and micro paths share them) ------

    def _limit(
        self,
        token_id: int,
        side: Side,
        price: Micro,
        size: Micro,
        tick: TickSize,
        neg_risk: bool,
        order_type: OrderType,
        expiration: int,
        post_only: bool,
        min_size: Micro | None,
        salt: int | None,
        timestamp_ms: int | None,
    ) -> SignedOrder:
        ts = self.clock.now_ms() if timestamp_ms is None else timestamp_ms
        _check_flags(order_type, post_only, expiration, ts)
        maker_amount, taker_amount = limit_amounts(side, price, size, tick)
        if min_size is not None and not order_type.is_marketable_only and size < min_size:
            raise BelowMinimumSizeError(
                f"size ({fmt_micro(size)}) lower than the minimum: {fmt_micro(min_size)}",
                token_id=token_id,
                side=side.name,
                price=fmt_micro(price),
                size=fmt_micro(size),
            )
        return self._sign(
            token_id, side, maker_amount, taker_amount, order_type, post_only, expiration, neg_risk, salt, ts
        )

    def _market(
        self,
        token_id: int,
        side: Side,
        amount: Micro,
        price: Micro,
        tick: TickSize,
        neg_risk: bool,
        order_type: OrderType,
        salt: int | None,
        timestamp_ms: int | None,
    ) -> SignedOrder:
        if not order_type.is_marketable_only:
            raise InvalidOrderTypeError(
                f"market orders are FOK or FAK, got {order_type.value}; use a limit order to rest on the book"
            )
        ts = self.clock.now_ms() if timestamp_ms is None else timestamp_ms
        maker_amount, taker_amount = market_amounts(side, amount, price, tick)
        return self._sign(token_id, side, maker_amount, taker_amount, order_type, False, 0, neg_risk, salt, ts)

    def _sign(
        self,
        token_id: int,
        side: Side,
        maker_amount: Micro,
        taker_amount: Micro,
        order_type: OrderType,
        post_only: bool,
        expiration: int,
        neg_risk: bool,
        salt: int | None,
        timestamp_ms: int,
    ) -> SignedOrder:
        if salt is None:
            salt = secrets.randbits(53)
        elif not 0 <= salt <= constants.MAX_SALT:
            raise InvalidOrderError(f"salt must be within [0, 2^53 - 1], got {salt}")
        if not 0 <= timestamp_ms < 2**64:
            raise InvalidOrderError(f"timestamp must be unix milliseconds within [0, 2^64), got {timestamp_ms}")
        if maker_amount >= 2**256 or taker_amount >= 2**256:
            raise InvalidSizeError("order amounts do not fit in uint256; the size is far too large")
        if maker_amount <= 0 or taker_amount <= 0:
            raise InvalidOrderError(
                "order amounts round to zero; increase the size",
                maker_amount=maker_amount,
                taker_amount=taker_amount,
            )
        domain = self._domains[neg_risk]
        struct_hash = order_struct_hash(
            salt,
            self._maker_raw,
            self._signer_raw,
            token_id,
            maker_amount,
            taker_amount,
            int(side),
            int(self.signature_type),
            timestamp_ms,
            bytes(32),
            self._builder_raw,
        )
        digest = typed_digest(domain, struct_hash)
        if self.signature_type is SignatureType.POLY_1271:
            inner = self.signer.sign_digest(poly_1271_digest(domain, struct_hash, self.chain_id, self._signer_raw))
            signature = wrap_poly_1271(inner, domain, struct_hash)
        else:
            signature = self.signer.sign_digest(digest)
        return SignedOrder(
            salt=salt,
            maker=self.funder,
            signer=self.order_signer,
            token_id=token_id,
            maker_amount=maker_amount,
            taker_amount=taker_amount,
            side=side,
            signature_type=self.signature_type,
            timestamp_ms=timestamp_ms,
            metadata=constants.BYTES32_ZERO,
            builder=self.builder_code,
            expiration=expiration,
            signature="0x" + signature.hex(),
            order_id="0x" + digest.hex(),
            order_type=order_type,
            post_only=post_only,
            neg_risk=neg_risk,
            chain_id=self.chain_id,
        )


# Exact powers of ten for the plain-decimal fast path: frac digits -> multiplier to micro-units.
_FRAC_SCALE: Final = (MICRO, 100_000, 10_000, 1_000, 100, 10, 1)
_MAX_FAST_INT: Final = 10**30


def _plain_micro(text: str) -> Micro | None:
    """Micro-units of a plain "123" / "0.56" string (ASCII digits, at most 6 decimals), else None.

    Exactly what `to_micro` gives for such strings, without Decimal; anything else (signs, spaces,
    exponents, more decimals, NaN...) returns None and takes the general path.
    """
    whole, dot, frac = text.partition(".")
    if not (whole.isascii() and whole.isdigit() and len(whole) <= 30):
        return None
    if not dot:
        return int(whole) * MICRO
    if not (0 < len(frac) <= DECIMALS and frac.isascii() and frac.isdigit()):
        return None
    return int(whole) * MICRO + int(frac) * _FRAC_SCALE[len(frac)]


def _order_micro(value: NumberLike, what: str, invalid: type[PolyomsError], too_precise: type[PolyomsError]) -> Micro:
    """`to_micro` for an order's price, size or amount, raising the order's own error classes.

    Not a finite number -> `invalid`; more than 6 decimals -> `too_precise` (a price that precise is
    off every tick grid; a size that precise has too many decimals).
    """
    if isinstance(value, str | float):  # a float counts as its repr, what the user typed
        fast = _plain_micro(value if isinstance(value, str) else repr(value))
        if fast is not None:
            return fast
    elif type(value) is int and -_MAX_FAST_INT < value < _MAX_FAST_INT:  # not bool, not huge
        return value * MICRO
    try:
        dec = to_decimal(value, what)
        places = decimal_places(dec)
        if places <= DECIMALS:
            return to_micro(dec, what)
    except InvalidAmountError as exc:
        raise invalid(exc.message, **exc.context) from None
    raise too_precise(f"{what} {value} has {places} decimals, at most {DECIMALS} allowed", field=what, value=value)


_SIDES: Final[dict[str, Side]] = {"BUY": Side.BUY, "SELL": Side.SELL}
_ORDER_TYPES: Final[dict[str, OrderType]] = {t.value: t for t in OrderType}


def _side(value: Side | str) -> Side:
    if type(value) is str:
        known = _SIDES.get(value)
        if known is not None:
            return known
    return Side.parse(value)


def _order_type(value: OrderType | str) -> OrderType:
    if isinstance(value, str):  # OrderType members are str too
        known = _ORDER_TYPES.get(value)
        if known is not None:
            return known
    return OrderType.parse(value)


def _tick(value: TickSize | NumberLike) -> TickSize:
    if type(value) is str:
        known = TICK_SIZES.get(value)
        if known is not None:
            return known
    return tick_size(value)


def _token_id(value: int | str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise InvalidOrderError(f"token id must be a decimal integer, got {value!r}")
    try:
        token = int(value)
    except (TypeError, ValueError):
        raise InvalidOrderError(f"token id must be a decimal integer, got {value!r}") from None
    if not 0 <= token < 2**256:
        raise InvalidOrderError("token id must fit in uint256")
    return token


def _check_flags(order_type: OrderType, post_only: bool, expiration: int, timestamp_ms: int) -> None:
    if post_only and order_type.is_marketable_only:
        raise InvalidOrderTypeError(f"postOnly is only allowed with GTC or GTD, not {order_type.value}")
    if order_type is OrderType.GTD:
        earliest = timestamp_ms // 1000 + constants.GTD_SECURITY_THRESHOLD_S
        if expiration <= earliest:
            raise InvalidExpirationError(
                f"invalid expiration: a GTD order must expire after now + {constants.GTD_SECURITY_THRESHOLD_S} s "
                f"(expiration={expiration}, earliest={earliest + 1})",
                expiration=expiration,
            )
    elif expiration != 0:
        raise InvalidExpirationError(
            f"invalid expiration: only GTD orders carry an expiration (got {expiration} on {order_type.value})",
            expiration=expiration,
        )


def order_digest(order: SignedOrder) -> bytes:
    """The EIP-712 digest (= order id) recomputed from the order's fields."""
    return typed_digest(exchange_domain_separator(order.chain_id, order.exchange), order.struct_hash())


def recover_order_signer(order: SignedOrder) -> str:
    """The EOA that signed `order`, checked against the order's own fields.

    Types 0-2: the recovered key must be `order.signer`. Type 3 (POLY_1271): the wrapper must name
    this exchange's domain and this order's struct hash; the recovered key is the wallet owner's
    EOA, which the caller checks against the API key (a chain would ask the wallet contract).
    Raises InvalidSignatureError.
    """
    struct_hash = order.struct_hash()
    domain = exchange_domain_separator(order.chain_id, order.exchange)
    raw = bytes.fromhex(order.signature[2:]) if order.signature[:2] == "0x" else b""
    if order.signature_type is SignatureType.POLY_1271:
        if order.signer != order.maker:
            raise InvalidSignatureError("POLY_1271 orders must have signer == maker (the deposit wallet)")
        inner, wrapped_domain, contents = unwrap_poly_1271(raw)
        if wrapped_domain != domain or contents != struct_hash:
            raise InvalidSignatureError("invalid signature: wrapper does not match this order and exchange")
        digest = poly_1271_digest(domain, struct_hash, order.chain_id, address_bytes(order.signer))
        return recover_address(digest, inner)
    recovered = recover_address(typed_digest(domain, struct_hash), raw)
    if recovered != to_checksum_address(order.signer):
        raise InvalidSignatureError(
            "invalid signature", order_id="0x" + typed_digest(domain, struct_hash).hex(), signer=order.signer
        )
    return recovered
