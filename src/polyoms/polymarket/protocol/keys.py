"""secp256k1 keys, Ethereum addresses and recoverable signatures (coincurve = libsecp256k1)."""

from __future__ import annotations

import re

from coincurve import PrivateKey, PublicKey

from polyoms.core.errors import InvalidAddressError, InvalidKeyError, InvalidSignatureError
from polyoms.polymarket.protocol.hashing import keccak256

_HEX_ADDRESS = re.compile(r"^(0x)?[0-9a-fA-F]{40}$")
_SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


def to_checksum_address(address: str | bytes) -> str:
    """EIP-55 mixed-case form; raises InvalidAddressError for anything but 20 bytes."""
    if isinstance(address, bytes):
        if len(address) != 20:
            raise InvalidAddressError(f"an address has 20 bytes, got {len(address)}")
        hex_addr = address.hex()
    else:
        if not isinstance(address, str) or not _HEX_ADDRESS.match(address):
            raise InvalidAddressError(f"not a 20-byte hex address: {address!r}", value=address)
        hex_addr = address[2:].lower() if address[:2] in ("0x", "0X") else address.lower()
    digest = keccak256(hex_addr.encode("ascii")).hex()
    return "0x" + "".join(c.upper() if int(digest[i], 16) >= 8 else c for i, c in enumerate(hex_addr))


def address_bytes(address: str) -> bytes:
    if not isinstance(address, str) or not _HEX_ADDRESS.match(address):
        raise InvalidAddressError(f"not a 20-byte hex address: {address!r}", value=address)
    return bytes.fromhex(address[2:] if address[:2] in ("0x", "0X") else address)


def public_key_to_address(public_key: PublicKey) -> str:
    return to_checksum_address(keccak256(public_key.format(compressed=False)[1:])[-20:])


class Signer:
    """A private key that signs digests. Its value never appears in repr, str or errors."""

    __slots__ = ("_key", "address", "address_bytes")

    def __init__(self, private_key: str | bytes) -> None:
        try:
            if isinstance(private_key, str):
                text = private_key.strip()
                text = text[2:] if text[:2] in ("0x", "0X") else text
                if len(text) != 64:
                    raise ValueError
                raw = bytes.fromhex(text)
            else:
                raw = bytes(private_key)
            if len(raw) != 32 or not 0 < int.from_bytes(raw, "big") < _SECP256K1_N:
                raise ValueError
            self._key = PrivateKey(raw)
        except (ValueError, TypeError):
            # The offending value is deliberately not echoed.
            raise InvalidKeyError("private key must be 32 bytes of hex (64 hex digits, 0x optional)") from None
        self.address = public_key_to_address(self._key.public_key)
        self.address_bytes = bytes.fromhex(self.address[2:])

    def sign_digest(self, digest: bytes) -> bytes:
        """65 bytes r‖s‖v with v = 27/28, the form Ethereum tooling and the venue expect."""
        sig = self._key.sign_recoverable(digest, hasher=None)
        return sig[:64] + bytes((sig[64] + 27,))

    def __repr__(self) -> str:
        return f"Signer(address={self.address})"

    __str__ = __repr__

    def __reduce__(self) -> str | tuple[object, ...]:
        raise TypeError("a Signer cannot be pickled (it holds a private key)")


def recover_address(digest: bytes, signature: bytes) -> str:
    """The address whose key produced `signature` (65 bytes, v = 27/28 or 0/1) over `digest`."""
    if len(signature) != 65:
        raise InvalidSignatureError(f"an ECDSA signature has 65 bytes, got {len(signature)}")
    v = signature[64]
    if v >= 27:
        v -= 27
    if v not in (0, 1):
        raise InvalidSignatureError("invalid signature recovery id")
    try:
        public_key = PublicKey.from_signature_and_message(signature[:64] + bytes((v,)), digest, hasher=None)
    except Exception:  # coincurve raises plain Exception/ValueError for unrecoverable input
        raise InvalidSignatureError("signature does not recover to a public key") from None
    return public_key_to_address(public_key)


def parse_hex_bytes(value: str, what: str = "hex") -> bytes:
    if not isinstance(value, str) or value[:2] not in ("0x", "0X"):
        raise InvalidSignatureError(f"{what} must be 0x-prefixed hex")
    try:
        return bytes.fromhex(value[2:])
    except ValueError:
        raise InvalidSignatureError(f"{what} is not valid hex") from None
