"""L1 (ClobAuth EIP-712) and L2 (HMAC) request authentication, both directions (protocol doc §2)."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass, field

from polyoms.core.errors import AuthError, InvalidKeyError
from polyoms.polymarket.protocol.eip712 import clob_auth_digest
from polyoms.polymarket.protocol.errors import L1_REFUSED, L2_REFUSED
from polyoms.polymarket.protocol.keys import Signer, parse_hex_bytes, recover_address, to_checksum_address

POLY_ADDRESS = "POLY_ADDRESS"
POLY_SIGNATURE = "POLY_SIGNATURE"
POLY_TIMESTAMP = "POLY_TIMESTAMP"
POLY_NONCE = "POLY_NONCE"
POLY_API_KEY = "POLY_API_KEY"
POLY_PASSPHRASE = "POLY_PASSPHRASE"


@dataclass(frozen=True, slots=True)
class ApiCreds:
    """L2 credentials. Only the key id is ever shown; secret and passphrase never are."""

    api_key: str
    secret: str = field(repr=False)
    passphrase: str = field(repr=False)

    def __post_init__(self) -> None:
        if not self.api_key or not self.secret or not self.passphrase:
            raise InvalidKeyError("API credentials need api_key, secret and passphrase")
        try:
            base64.urlsafe_b64decode(self.secret)
        except (binascii.Error, ValueError):
            raise InvalidKeyError("API secret must be URL-safe base64") from None

    def __str__(self) -> str:
        return f"ApiCreds(api_key={self.api_key})"


def l1_signature(signer: Signer, chain_id: int, timestamp: int | str, nonce: int = 0) -> str:
    digest = clob_auth_digest(chain_id, signer.address, str(timestamp), nonce)
    return "0x" + signer.sign_digest(digest).hex()


def l1_headers(signer: Signer, chain_id: int, timestamp: int, nonce: int = 0) -> dict[str, str]:
    return {
        POLY_ADDRESS: signer.address,
        POLY_SIGNATURE: l1_signature(signer, chain_id, timestamp, nonce),
        POLY_TIMESTAMP: str(timestamp),
        POLY_NONCE: str(nonce),
    }


def hmac_signature(secret: str, timestamp: int | str, method: str, path: str, body: bytes | str | None = None) -> str:
    """URL-safe base64 (with padding) HMAC-SHA256 of timestamp+METHOD+path+body.

    `path` excludes the query string; `body` must be the exact bytes sent.
    """
    key = base64.urlsafe_b64decode(secret)
    message = f"{timestamp}{method}{path}".encode()
    if body:
        message += body.encode("utf-8") if isinstance(body, str) else body
    return base64.urlsafe_b64encode(hmac.new(key, message, hashlib.sha256).digest()).decode("ascii")


def l2_headers(
    address: str, creds: ApiCreds, timestamp: int, method: str, path: str, body: bytes | str | None = None
) -> dict[str, str]:
    return {
        POLY_ADDRESS: address,
        POLY_SIGNATURE: hmac_signature(creds.secret, timestamp, method, path, body),
        POLY_TIMESTAMP: str(timestamp),
        POLY_API_KEY: creds.api_key,
        POLY_PASSPHRASE: creds.passphrase,
    }


def _header(headers: Mapping[str, str], name: str) -> str | None:
    # HTTP header names are case-insensitive (HTTP/2 lower-cases them).
    value = headers.get(name)
    if value is None:
        value = headers.get(name.lower())
    return value


def verify_l1(headers: Mapping[str, str], chain_id: int) -> tuple[str, int, int]:
    """Check L1 headers; returns (checksummed address, nonce, timestamp). Raises AuthError."""
    address = _header(headers, POLY_ADDRESS)
    signature = _header(headers, POLY_SIGNATURE)
    timestamp = _header(headers, POLY_TIMESTAMP)
    nonce_text = _header(headers, POLY_NONCE) or "0"
    bad = AuthError(L1_REFUSED, status=401)
    if not address or not signature or not timestamp:
        raise bad
    try:
        nonce = int(nonce_text)
        ts = int(timestamp)
        checksummed = to_checksum_address(address)
        recovered = recover_address(
            clob_auth_digest(chain_id, checksummed, timestamp, nonce), parse_hex_bytes(signature)
        )
    except Exception:
        raise bad from None
    if recovered != checksummed:
        raise bad
    return checksummed, nonce, ts


def verify_l2(
    headers: Mapping[str, str], method: str, path: str, body: bytes, creds_for_key: Mapping[str, tuple[str, ApiCreds]]
) -> tuple[str, ApiCreds, int]:
    """Check L2 headers against known keys (api_key -> (owner address, creds)).

    Returns (owner address, creds, timestamp). Raises AuthError("Unauthorized/Invalid api key").
    """
    bad = AuthError(L2_REFUSED, status=401)
    api_key = _header(headers, POLY_API_KEY)
    signature = _header(headers, POLY_SIGNATURE)
    timestamp = _header(headers, POLY_TIMESTAMP)
    passphrase = _header(headers, POLY_PASSPHRASE)
    address = _header(headers, POLY_ADDRESS)
    if not api_key or not signature or not timestamp or not passphrase or not address:
        raise bad
    entry = creds_for_key.get(api_key)
    if entry is None:
        raise bad
    owner, creds = entry
    if not hmac.compare_digest(passphrase, creds.passphrase) or address.lower() != owner.lower():
        raise bad
    expected = hmac_signature(creds.secret, timestamp, method, path, body)
    if not hmac.compare_digest(expected, signature):
        raise bad
    try:
        ts = int(timestamp)
    except ValueError:
        raise bad from None
    return owner, creds, ts
