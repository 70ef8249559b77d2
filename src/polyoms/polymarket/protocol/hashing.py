"""keccak-256 (Ethereum's, not NIST SHA3-256) through a compiled implementation."""

from __future__ import annotations

import sha3

_keccak_256 = sha3.keccak_256


def keccak256(data: bytes) -> bytes:
    return _keccak_256(data).digest()  # type: ignore[no-any-return]


def keccak_text(text: str) -> bytes:
    return _keccak_256(text.encode("utf-8")).digest()  # type: ignore[no-any-return]
