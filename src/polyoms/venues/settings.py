"""The settings of the venue kinds (the `[local]` and `[polymarket]` sections of the daemon's config)
and key files.

They live with the venues, not with the daemon's config loader, so that a venue factory can take them
without importing the ops layer; `ops.config` reads the file into these types.
"""

from __future__ import annotations

import contextlib
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from polyoms.core.enums import SignatureType
from polyoms.core.errors import ConfigError, InvalidKeyError
from polyoms.core.units import MICRO, Micro
from polyoms.polymarket.client.redact import register_secret
from polyoms.polymarket.protocol import constants


@dataclass(frozen=True, slots=True)
class LocalConfig:
    """The embedded local exchange (kinds `local` and `inprocess`)."""

    seed: int = 0
    markets: Path | None = None
    """A markets file (`polyoms sim --config` format); None = the default markets."""
    fund: Micro = 1_000 * MICRO
    """pUSD given to the daemon's wallet at start."""
    scenario: str | None = "calm"
    """Background traders and a reference feed (calm, trending, jump, thin, ...); None (or "") = an empty,
    quiet exchange where only the daemon trades."""
    faults: bool = False
    port: int = 0


@dataclass(frozen=True, slots=True)
class PolymarketConfig:
    clob_url: str = "https://clob.polymarket.com"
    gamma_url: str = "https://gamma-api.polymarket.com"
    data_url: str = "https://data-api.polymarket.com"
    ws_url: str = "wss://ws-subscriptions-clob.polymarket.com"
    """Base of the WebSocket channels (`/ws/market`, `/ws/user` are appended)."""
    chain_id: int = constants.POLYGON
    signature_type: SignatureType = SignatureType.EOA
    funder: str | None = None
    key_file: Path | None = None
    api_nonce: int = 0


# --- key files ----------------------------------------------------------------------------------------


class KeyFilePermissionError(ConfigError):
    """A key file others can read (or write): refused; the message carries the chmod that fixes it."""


def check_key_file(path: Path) -> None:
    """Refuse a key file that anyone but its owner can read or write (mode 0600 or stricter)."""
    try:
        st = path.stat()
    except FileNotFoundError:
        raise ConfigError(f"key file {path} does not exist", field="key_file") from None
    except OSError as exc:
        raise ConfigError(f"key file {path} cannot be read: {exc.strerror}", field="key_file") from None
    if not stat.S_ISREG(st.st_mode):
        raise ConfigError(f"key file {path} is not a regular file", field="key_file")
    mode = stat.S_IMODE(st.st_mode)
    if mode & 0o077:
        raise KeyFilePermissionError(
            f"key file {path} has mode {mode:04o}: others can read it. Fix: chmod 600 {path}",
            field="key_file",
            mode=f"{mode:04o}",
        )
    if hasattr(os, "getuid") and st.st_uid != os.getuid():
        raise KeyFilePermissionError(
            f"key file {path} belongs to another user (uid {st.st_uid}). Fix: chown {os.getuid()} {path} "
            f"&& chmod 600 {path}",
            field="key_file",
        )


def read_key_file(path: Path) -> str:
    check_key_file(path)
    try:
        text = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"key file {path} cannot be read: {exc}", field="key_file") from None
    register_secret(text)
    if not text:
        raise InvalidKeyError(f"key file {path} is empty: it must hold the hex private key on one line")
    return text


def write_private(path: Path, text: str) -> None:
    """Create or replace a file readable by its owner only (the mode is set before any byte is written)."""
    tmp = path.with_name(path.name + ".tmp")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text + "\n")
    os.replace(tmp, path)
