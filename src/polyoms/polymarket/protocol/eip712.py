"""EIP-712 hashing for V2 orders, ClobAuth and the ERC-7739 wrapper, with precomputed constants.

Hand-written rather than through a generic typed-data encoder: the two structs are fixed, and
encoding them directly is what makes build+sign fit in tens of microseconds.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Final

from polyoms.core.errors import InvalidSignatureError
from polyoms.polymarket.protocol import constants
from polyoms.polymarket.protocol.hashing import keccak256, keccak_text
from polyoms.polymarket.protocol.keys import address_bytes

ORDER_TYPEHASH: Final = keccak_text(constants.ORDER_TYPE_STRING)
DOMAIN_TYPEHASH: Final = keccak_text(constants.DOMAIN_TYPE_STRING)
DOMAIN_NO_CONTRACT_TYPEHASH: Final = keccak_text(constants.DOMAIN_NO_CONTRACT_TYPE_STRING)
TYPED_DATA_SIGN_TYPEHASH: Final = keccak_text(constants.TYPED_DATA_SIGN_TYPE_STRING)
CLOB_AUTH_TYPEHASH: Final = keccak_text(constants.CLOB_AUTH_TYPE_STRING)
_DEPOSIT_WALLET_NAME_HASH: Final = keccak_text(constants.DEPOSIT_WALLET_DOMAIN_NAME)
_DEPOSIT_WALLET_VERSION_HASH: Final = keccak_text(constants.DEPOSIT_WALLET_DOMAIN_VERSION)
_CLOB_AUTH_MESSAGE_HASH: Final = keccak_text(constants.CLOB_AUTH_MESSAGE)
_ORDER_TYPE_BYTES: Final = constants.ORDER_TYPE_STRING.encode("ascii")
_ORDER_TYPE_SUFFIX: Final = _ORDER_TYPE_BYTES + len(_ORDER_TYPE_BYTES).to_bytes(2, "big")
POLY_1271_SIGNATURE_LENGTH: Final = 65 + 32 + 32 + len(_ORDER_TYPE_SUFFIX)
_PAD12: Final = bytes(12)
_EIP191_PREFIX: Final = b"\x19\x01"


def _u256(value: int) -> bytes:
    return value.to_bytes(32, "big")


def _addr(raw20: bytes) -> bytes:
    return _PAD12 + raw20


@lru_cache(maxsize=64)
def exchange_domain_separator(
    chain_id: int,
    verifying_contract: str,
    name: str = constants.EXCHANGE_DOMAIN_NAME,
    version: str = constants.EXCHANGE_DOMAIN_VERSION,
) -> bytes:
    return keccak256(
        DOMAIN_TYPEHASH
        + keccak_text(name)
        + keccak_text(version)
        + _u256(chain_id)
        + _addr(address_bytes(verifying_contract))
    )


def order_struct_hash(
    salt: int,
    maker: bytes,
    signer: bytes,
    token_id: int,
    maker_amount: int,
    taker_amount: int,
    side: int,
    signature_type: int,
    timestamp_ms: int,
    metadata: bytes,
    builder: bytes,
) -> bytes:
    """keccak(abi.encode(ORDER_TYPEHASH, ...)); addresses as 20 raw bytes, bytes32 as 32."""
    return keccak256(
        b"".join(
            (
                ORDER_TYPEHASH,
                _u256(salt),
                _PAD12,
                maker,
                _PAD12,
                signer,
                _u256(token_id),
                _u256(maker_amount),
                _u256(taker_amount),
                _u256(side),
                _u256(signature_type),
                _u256(timestamp_ms),
                metadata,
                builder,
            )
        )
    )


def typed_digest(domain_separator: bytes, struct_hash: bytes) -> bytes:
    return keccak256(_EIP191_PREFIX + domain_separator + struct_hash)


def poly_1271_digest(domain_separator: bytes, contents_hash: bytes, chain_id: int, wallet: bytes) -> bytes:
    """What the deposit wallet's owner signs: TypedDataSign(contents=Order) in the exchange domain."""
    tds_struct_hash = keccak256(
        TYPED_DATA_SIGN_TYPEHASH
        + contents_hash
        + _DEPOSIT_WALLET_NAME_HASH
        + _DEPOSIT_WALLET_VERSION_HASH
        + _u256(chain_id)
        + _addr(wallet)
        + bytes(32)
    )
    return typed_digest(domain_separator, tds_struct_hash)


def wrap_poly_1271(inner: bytes, domain_separator: bytes, contents_hash: bytes) -> bytes:
    """inner65 ‖ appDomainSeparator ‖ contentsHash ‖ contentsType ‖ uint16(len(contentsType))."""
    return inner + domain_separator + contents_hash + _ORDER_TYPE_SUFFIX


def unwrap_poly_1271(signature: bytes) -> tuple[bytes, bytes, bytes]:
    """Split a POLY_1271 signature into (inner65, domain separator, contents hash); checks the type."""
    if len(signature) != POLY_1271_SIGNATURE_LENGTH or not signature.endswith(_ORDER_TYPE_SUFFIX):
        raise InvalidSignatureError("malformed POLY_1271 (ERC-7739) order signature")
    return signature[:65], signature[65:97], signature[97:129]


def clob_auth_digest(chain_id: int, address: str, timestamp: str, nonce: int) -> bytes:
    domain = keccak256(
        DOMAIN_NO_CONTRACT_TYPEHASH
        + keccak_text(constants.CLOB_AUTH_DOMAIN_NAME)
        + keccak_text(constants.CLOB_AUTH_DOMAIN_VERSION)
        + _u256(chain_id)
    )
    struct_hash = keccak256(
        CLOB_AUTH_TYPEHASH
        + _addr(address_bytes(address))
        + keccak_text(timestamp)
        + _u256(nonce)
        + _CLOB_AUTH_MESSAGE_HASH
    )
    return typed_digest(domain, struct_hash)
