"""Secrets never leave through a log line or an exception.

Two layers, because one is not enough:
  * by construction: request headers and auth bodies are never logged or put into errors;
    `safe_headers` masks them where a header dict must be shown;
  * by scrubbing: every private key, API secret and passphrase a client learns is registered here,
    and a logging filter plus `redact()` (applied to venue error text before it becomes an exception)
    replace any registered value. A server echoing a secret back in an error body is thus harmless.

The registry is process-wide on purpose: logging is process-wide too, and a secret registered by
one wallet's client must stay hidden whichever logger or client later prints a string.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterable, Mapping
from typing import Final

from polyoms.polymarket.protocol.auth import POLY_PASSPHRASE, POLY_SIGNATURE

REDACTED: Final = "«redacted»"
LOGGER_NAME: Final = "polyoms.client"
SENSITIVE_HEADERS: Final = frozenset({POLY_SIGNATURE, POLY_PASSPHRASE, POLY_SIGNATURE.lower(), POLY_PASSPHRASE.lower()})
# Shorter strings would redact innocent text (and no real secret is this short).
_MIN_SECRET_LEN: Final = 8


class SecretRegistry:
    """Strings that must never be shown, and a compiled pattern that finds any of them."""

    def __init__(self) -> None:
        self._secrets: set[str] = set()
        self._pattern: re.Pattern[str] | None = None
        self._lock = threading.Lock()  # the sim and tests run loops in other threads

    def add(self, *values: str | None) -> None:
        changed = False
        with self._lock:
            for value in values:
                for variant in _variants(value):
                    if variant not in self._secrets:
                        self._secrets.add(variant)
                        changed = True
            if changed:
                # Longest first, so a secret containing another is replaced whole.
                alternatives = sorted(self._secrets, key=len, reverse=True)
                self._pattern = re.compile("|".join(re.escape(s) for s in alternatives))

    def __contains__(self, value: str) -> bool:
        return value in self._secrets

    def redact(self, text: str, extra: Iterable[str] = ()) -> str:
        pattern = self._pattern
        if pattern is not None:
            text = pattern.sub(REDACTED, text)
        for value in extra:
            for variant in _variants(value):
                text = text.replace(variant, REDACTED)
        return text


def _variants(value: str | None) -> tuple[str, ...]:
    if not value or len(value) < _MIN_SECRET_LEN:
        return ()
    out = {value}
    bare = value[2:] if value[:2] in ("0x", "0X") else value
    if len(bare) >= _MIN_SECRET_LEN and all(c in "0123456789abcdefABCDEF" for c in bare):
        # A hex key may be printed with or without 0x, in either case.
        out.update((bare, bare.lower(), bare.upper(), "0x" + bare.lower(), "0x" + bare.upper()))
    return tuple(out)


SECRETS: Final = SecretRegistry()


def register_secret(*values: str | None) -> None:
    SECRETS.add(*values)


def redact(text: str, extra: Iterable[str] = ()) -> str:
    return SECRETS.redact(text, extra)


def safe_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """Headers fit to show: signature and passphrase masked, everything else scrubbed too."""
    return {k: (REDACTED if k in SENSITIVE_HEADERS else redact(v)) for k, v in headers.items()}


class RedactingFilter(logging.Filter):
    """Formats the record once, scrubs it, and stores the result (args cleared)."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string must not take the program down either
            message = str(record.msg)
        record.msg = redact(message)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
        elif record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


_FILTER: Final = RedactingFilter()


def get_logger(name: str = LOGGER_NAME) -> logging.Logger:
    """A client logger with the redacting filter (a logger's filters do not apply to its children)."""
    logger = logging.getLogger(name)
    if _FILTER not in logger.filters:
        logger.addFilter(_FILTER)
    return logger
