"""API credentials of the local exchange: deterministic per (address, nonce), like the venue's.

Derived with HMAC from a per-exchange random secret (`SimService.auth_secret`), never from
anything public: knowing an address (or the `--seed`) gives nothing. An exchange restarted with
the same secret (kept in its state) hands out the same keys, and a client can derive them again
as it would on Polymarket.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass, field
from typing import Final

from polyoms.core.errors import ConfigError
from polyoms.polymarket.protocol.auth import ApiCreds

AUTH_SECRET_BYTES: Final = 32
MIN_AUTH_SECRET_BYTES: Final = 16


def new_auth_secret() -> bytes:
    return secrets.token_bytes(AUTH_SECRET_BYTES)


def check_auth_secret(secret: object) -> bytes:
    """The secret itself, or a ConfigError (a truncated or wrongly typed state file)."""
    if not isinstance(secret, bytes) or len(secret) < MIN_AUTH_SECRET_BYTES:
        raise ConfigError(f"the exchange's auth secret must be at least {MIN_AUTH_SECRET_BYTES} random bytes")
    return secret


@dataclass(slots=True)
class KeyRegistry:
    secret: bytes = field(repr=False)
    _by_key: dict[str, tuple[str, ApiCreds]] = field(default_factory=dict, repr=False)
    _by_owner: dict[tuple[str, int], ApiCreds] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        check_auth_secret(self.secret)

    def _derive(self, address: str, nonce: int) -> ApiCreds:
        material = hmac.new(self.secret, f"{address.lower()}:{nonce}".encode(), hashlib.sha256).digest()
        api_key = str(uuid.UUID(bytes=hashlib.sha256(b"key" + material).digest()[:16], version=4))
        secret = base64.urlsafe_b64encode(hashlib.sha256(b"secret" + material).digest()).decode("ascii")
        passphrase = hashlib.sha256(b"passphrase" + material).hexdigest()
        return ApiCreds(api_key=api_key, secret=secret, passphrase=passphrase)

    def create(self, address: str, nonce: int) -> ApiCreds:
        """POST /auth/api-key: (re)activates the key for (address, nonce); deterministic."""
        creds = self._derive(address, nonce)
        self._by_key[creds.api_key] = (address, creds)
        self._by_owner[(address.lower(), nonce)] = creds
        return creds

    def derive(self, address: str, nonce: int) -> ApiCreds | None:
        """GET /auth/derive-api-key: only a key that was created (and not deleted) exists."""
        return self._by_owner.get((address.lower(), nonce))

    def lookup(self) -> dict[str, tuple[str, ApiCreds]]:
        return self._by_key

    def keys_of(self, address: str) -> list[str]:
        return [k for k, (owner, _) in self._by_key.items() if owner.lower() == address.lower()]

    def delete(self, api_key: str) -> bool:
        entry = self._by_key.pop(api_key, None)
        if entry is None:
            return False
        owner, creds = entry
        for key, value in list(self._by_owner.items()):
            if value.api_key == creds.api_key and key[0] == owner.lower():
                del self._by_owner[key]
        return True
