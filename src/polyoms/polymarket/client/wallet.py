"""A trading account: signing key, funder (maker) wallet, signature type and API credentials.

Many wallets live in one process; each gets its own client (`ClientHub.clob(wallet)`) with its own
credentials, per-signer rate-limit buckets and circuit breaker. Every secret a Wallet holds is
registered for redaction the moment the Wallet exists, and none appears in its repr.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from polyoms.core.clock import Clock
from polyoms.core.enums import SignatureType
from polyoms.core.errors import InvalidKeyError
from polyoms.polymarket.client.redact import register_secret
from polyoms.polymarket.protocol import constants
from polyoms.polymarket.protocol.auth import ApiCreds
from polyoms.polymarket.protocol.keys import Signer, to_checksum_address
from polyoms.polymarket.protocol.order import OrderBuilder


def register_creds(creds: ApiCreds | None) -> None:
    if creds is not None:
        register_secret(creds.secret, creds.passphrase)


def _key_hex(signer: Signer) -> str | None:
    # The Signer hides its key on purpose; only the redactor needs its text form, to scrub it.
    key = getattr(signer, "_key", None)
    secret = getattr(key, "secret", None)
    return secret.hex() if isinstance(secret, bytes) else None


@dataclass(frozen=True, slots=True, repr=False)
class Wallet:
    signer: Signer
    signature_type: SignatureType = SignatureType.EOA
    funder: str | None = None
    """The maker wallet (proxy, Safe or deposit wallet); None = the signer's EOA."""
    creds: ApiCreds | None = None
    nonce: int = 0
    """L1 nonce of the API key (the same nonce always derives the same key)."""
    name: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "signature_type", SignatureType.parse(self.signature_type))
        if self.funder is not None:
            object.__setattr__(self, "funder", to_checksum_address(self.funder))
        if self.signature_type is not SignatureType.EOA and self.funder is None:
            raise InvalidKeyError(f"signature type {self.signature_type.name} needs a funder address")
        register_secret(_key_hex(self.signer))
        register_creds(self.creds)

    @classmethod
    def from_key(
        cls,
        private_key: str,
        *,
        signature_type: SignatureType | int = SignatureType.EOA,
        funder: str | None = None,
        creds: ApiCreds | None = None,
        nonce: int = 0,
        name: str = "",
    ) -> Wallet:
        register_secret(private_key.strip())
        return cls(Signer(private_key), SignatureType.parse(signature_type), funder, creds, nonce, name)

    @property
    def address(self) -> str:
        """The signer EOA: POLY_ADDRESS, owner of the API key, key of the per-signer rate limits."""
        return self.signer.address

    @property
    def maker(self) -> str:
        """The funder: order.maker, and the `user` of the Data API."""
        return self.funder or self.signer.address

    @property
    def label(self) -> str:
        return self.name or self.address[:10]

    def with_creds(self, creds: ApiCreds) -> Wallet:
        return replace(self, creds=creds)

    def order_builder(
        self,
        *,
        chain_id: int = constants.POLYGON,
        clock: Clock | None = None,
        builder_code: str = constants.BYTES32_ZERO,
    ) -> OrderBuilder:
        return OrderBuilder(
            self.signer,
            chain_id=chain_id,
            signature_type=self.signature_type,
            funder=self.funder,
            builder_code=builder_code,
            clock=clock,
        )

    def __repr__(self) -> str:
        api_key = self.creds.api_key if self.creds else None
        return (
            f"Wallet(name={self.name!r}, address={self.address}, maker={self.maker}, "
            f"signature_type={self.signature_type.name}, api_key={api_key})"
        )

    __str__ = __repr__
