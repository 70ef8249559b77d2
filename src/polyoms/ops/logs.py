"""Operator logs: structured (JSON lines) for machines, readable on a terminal, never a secret.

One pipeline for both kinds of caller: `structlog.get_logger()` events and the records of the plain
`logging.getLogger(__name__)` loggers come out as the same JSON objects (or console lines) with the same
fields (`configure_logging`). Correlation ids live in context variables (`structlog.contextvars`) and
are bound per task with `bind_order`, so I/O spawned for an order inherits its ids. Secrets: this module
reuses the client package's registry of secret values (`polymarket.client.redact`) and scrubs every
event of them, and of any value whose key is named like a secret (`redact_event`).
"""

from __future__ import annotations

import contextvars
import logging
import sys
from collections.abc import Mapping
from types import TracebackType
from typing import Any, Final, TextIO

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

from polyoms.polymarket.client.redact import REDACTED, RedactingFilter, redact
from polyoms.polymarket.client.redact import register_secret as _register_secret

__all__ = [
    "CORRELATION_KEYS",
    "REDACTED",
    "OrderContext",
    "bind_order",
    "clear_correlation",
    "configure_logging",
    "get_logger",
    "is_secret_key",
    "redact_event",
    "register_secret",
    "unconfigure_logging",
]

CORRELATION_KEYS: Final = ("order_id", "parent_id", "market", "wallet")

# Normalized (lower case, "-" -> "_") key names whose values are secret whatever they hold.
_SECRET_KEYS: Final = frozenset(
    {
        "private_key",
        "privatekey",
        "key_hex",
        "secret",
        "api_secret",
        "secret_key",
        "passphrase",
        "api_passphrase",
        "password",
        "signature",
        "poly_signature",
        "poly_passphrase",
        "authorization",
        "proxy_authorization",
        "cookie",
        "set_cookie",
        "creds",
        "credentials",
    }
)
_SECRET_SUFFIXES: Final = ("_secret", "_passphrase", "_private_key", "_signature", "_password")
_LEADING: Final = ("timestamp", "level", "logger", "event", *CORRELATION_KEYS)
# Deeper structures are shown as their (scrubbed) repr: a log line is no place for them, and a cycle
# must not recurse forever.
_MAX_DEPTH: Final = 6


def register_secret(*values: str | None) -> None:
    """Never show these values (any hex spelling of a key too). Shared with the REST/WS clients."""
    _register_secret(*values)


def is_secret_key(key: object) -> bool:
    norm = str(key).lower().replace("-", "_")
    return norm in _SECRET_KEYS or norm.endswith(_SECRET_SUFFIXES)


def _scrub(value: Any, depth: int) -> Any:
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, bytes | bytearray | memoryview):
        # Hex is how a key is registered (and the only readable form of raw bytes anyway).
        return redact(bytes(value).hex())
    if depth >= _MAX_DEPTH:
        return redact(repr(value))
    if isinstance(value, Mapping):
        return {redact(str(k)): REDACTED if is_secret_key(k) else _scrub(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_scrub(v, depth + 1) for v in value]
    # Anything else is rendered by repr() downstream: do it here, where it can still be scrubbed.
    return redact(repr(value))


def redact_event(_logger: WrappedLogger, _method: str, event_dict: EventDict) -> EventDict:
    """structlog processor: the event with every secret (by value or by key name) replaced.

    The client package keeps the process-wide registry of secret values (private keys in every hex
    spelling, API secrets, passphrases) and scrubs its own loggers; a general log pipeline needs more:
      * every string anywhere in an event (message, values, nested containers, rendered tracebacks,
        reprs of arbitrary objects, bytes as hex) is scrubbed of registered values;
      * a value whose key is named like a secret (private_key, secret, passphrase, signature,
        POLY_SIGNATURE, authorization, ...) is replaced whatever it is, registered or not;
      * tracebacks are rendered to plain text *before* scrubbing, in both modes. (structlog's console
        renderer would otherwise print a rich traceback with local variables, after our processors.)
      * when a record cannot be formatted, logging's fallback would print the raw message and
        arguments to stderr; our handler prints a scrubbed one-line notice instead.
    """
    # The fixed fields first, then the correlation ids: a JSON line then reads left to right.
    keys = [k for k in _LEADING if k in event_dict]
    keys += [k for k in event_dict if k not in _LEADING]
    out: EventDict = {}
    for key in keys:
        value = event_dict[key]
        if key.startswith("_"):
            out[key] = value  # processor metadata (the LogRecord): consumed, never rendered
        elif is_secret_key(key):
            out[key] = REDACTED
        else:
            out[key] = _scrub(value, 0)
    return out


def _drop_color_message(_logger: WrappedLogger, _method: str, event_dict: EventDict) -> EventDict:
    # Some libraries (uvicorn) attach a second, colored copy of the message: one is enough.
    event_dict.pop("color_message", None)
    return event_dict


class _ForeignRecordFilter(logging.Filter):
    """Renders a stdlib record's message once, safely, and scrubs it (the client's filter), before
    any formatter: a bad format string then cannot make logging print the raw arguments. Records
    coming from structlog carry their event dict in `msg` and are left alone (already scrubbed)."""

    def __init__(self) -> None:
        super().__init__()
        self._inner = RedactingFilter()

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "_logger"):
            self._inner.filter(record)
        return True


class _Handler(logging.StreamHandler[TextIO]):
    """Our stream handler; marked so that reconfiguring replaces it and nothing else."""

    def handleError(self, record: logging.LogRecord) -> None:
        # logging's default prints record.msg and record.args, which may hold unscrubbed values.
        try:
            kind = type(sys.exc_info()[1]).__name__
            self.stream.write(redact(f"--- logging error ({kind}) in logger {record.name}; record dropped\n"))
            self.flush()
        except Exception:  # the stream itself is broken: nothing left to tell
            pass


_shared_handler: _Handler | None = None


def _shared_processors() -> list[Processor]:
    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_logger_name,
        structlog.stdlib.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]


def configure_logging(*, json: bool | None = None, level: str | int = "INFO", stream: TextIO | None = None) -> None:
    """Route structlog and stdlib logging to `stream` (default stderr), JSON lines or console.

    Both go through the same processors, so each line carries the same fields: timestamp, level,
    logger, event, the correlation ids bound in the current context, and any key/value pairs the caller
    passed (`extra=` for stdlib records).

    `json=None` chooses JSON unless `stream` is a terminal. Calling it again replaces the handler it
    installed before (other handlers on the root logger, e.g. pytest's, are left alone)."""
    global _shared_handler
    out: TextIO = stream if stream is not None else sys.stderr
    tty = bool(getattr(out, "isatty", lambda: False)())
    as_json = (not tty) if json is None else json
    renderer: Processor = (
        structlog.processors.JSONRenderer(sort_keys=False)
        if as_json
        else structlog.dev.ConsoleRenderer(colors=tty, exception_formatter=structlog.dev.plain_traceback)
    )
    shared = _shared_processors()
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *shared,
            structlog.stdlib.PositionalArgumentsFormatter(),
            structlog.processors.StackInfoRenderer(),
            structlog.processors.format_exc_info,
            redact_event,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        context_class=dict,
        cache_logger_on_first_use=False,  # loggers made before a reconfiguration follow it
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[
            *shared,
            structlog.stdlib.ExtraAdder(),
            _drop_color_message,
            structlog.processors.format_exc_info,
            redact_event,
        ],
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
    )
    handler = _Handler(out)
    handler.setFormatter(formatter)
    handler.addFilter(_ForeignRecordFilter())
    root = logging.getLogger()
    if _shared_handler is not None:
        root.removeHandler(_shared_handler)
    root.addHandler(handler)
    root.setLevel(level.upper() if isinstance(level, str) else level)
    _shared_handler = handler


def unconfigure_logging() -> None:
    """Remove the handler `configure_logging` installed and restore structlog's defaults."""
    global _shared_handler
    if _shared_handler is not None:
        logging.getLogger().removeHandler(_shared_handler)
        _shared_handler = None
    structlog.reset_defaults()


def get_logger(name: str | None = None, **initial: Any) -> structlog.stdlib.BoundLogger:
    logger: structlog.stdlib.BoundLogger = structlog.stdlib.get_logger(name, **initial)
    return logger


class OrderContext:
    """Correlation ids bound in the current context; as a context manager, restored on exit."""

    __slots__ = ("_tokens", "ids")

    def __init__(self, ids: Mapping[str, str]) -> None:
        self.ids = dict(ids)
        self._tokens: Mapping[str, contextvars.Token[Any]] = structlog.contextvars.bind_contextvars(**self.ids)

    def __enter__(self) -> OrderContext:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        structlog.contextvars.reset_contextvars(**self._tokens)


def bind_order(
    *,
    order_id: str | None = None,
    parent_id: str | None = None,
    market: str | None = None,
    wallet: str | None = None,
    **more: str,
) -> OrderContext:
    """Bind correlation ids (those given and non-empty) to every log line of the current context.

    `with bind_order(order_id=oid, wallet=w): ...` scopes them; a bare call keeps them for the rest
    of the current task (asyncio gives each task its own copy of the context)."""
    given = {"order_id": order_id, "parent_id": parent_id, "market": market, "wallet": wallet, **more}
    return OrderContext({k: v for k, v in given.items() if v})


def clear_correlation() -> None:
    structlog.contextvars.clear_contextvars()
