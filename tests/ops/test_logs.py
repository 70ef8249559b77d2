"""Operator logs: JSON lines with correlation ids from structlog and stdlib alike, a console form for
terminals, and no secret in any of them (canary values in every place a secret could hide)."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
import structlog

from polyoms.ops.logs import (
    REDACTED,
    bind_order,
    clear_correlation,
    configure_logging,
    get_logger,
    is_secret_key,
    register_secret,
    unconfigure_logging,
)
from polyoms.polymarket.client import Wallet
from polyoms.polymarket.client.redact import get_logger as client_logger
from polyoms.polymarket.protocol.auth import POLY_PASSPHRASE, POLY_SIGNATURE, ApiCreds

# Canaries: a (valid) private key, an API secret and passphrase handed to a Wallet (which registers
# them, as in production), and one registered directly.
CANARY_KEY = "0x" + "5eed1e55" * 8
CANARY_SECRET = base64.urlsafe_b64encode(b"OPS-CANARY-SECRET-0123456789abcd").decode()
CANARY_PASSPHRASE = "ops-canary-passphrase-4b1d"
CANARY_DIRECT = "ops-canary-direct-token-99f1"
UNREGISTERED = "not-registered-but-named-secret-7731"

ORDER = "0x" + "ab" * 32
PARENT = "parent-17"
MARKET = "0x" + "cd" * 32
WALLET = "0x" + "ef" * 20


def canaries() -> list[str]:
    bare = CANARY_KEY[2:]
    return [CANARY_KEY, bare, bare.upper(), CANARY_SECRET, CANARY_PASSPHRASE, CANARY_DIRECT]


def assert_clean(text: str) -> None:
    for c in canaries():
        assert c not in text, f"secret leaked: {c[:8]}…"
    assert UNREGISTERED not in text


@pytest.fixture(autouse=True)
def _logging() -> Iterator[None]:
    creds = ApiCreds("00000000-0000-4000-8000-00000000c0de", CANARY_SECRET, CANARY_PASSPHRASE)
    Wallet.from_key(CANARY_KEY, creds=creds, name="canary")
    register_secret(CANARY_DIRECT)
    root = logging.getLogger()
    level = root.level
    yield
    unconfigure_logging()
    clear_correlation()
    root.setLevel(level)


def alone(buf: io.StringIO, **kw: Any) -> None:
    """`configure_logging` to `buf`, with our handler alone on the root logger as in the daemon: pytest's
    capture handlers (added for the test's call phase, removed by pytest after it) would otherwise see
    the raw records first, and fail the test on the deliberately broken format string."""
    configure_logging(stream=buf, level="DEBUG", **kw)
    root = logging.getLogger()
    for h in list(root.handlers):
        if getattr(h, "stream", None) is not buf:
            root.removeHandler(h)


class Holder:
    """An object whose repr shows a secret (as a careless dataclass would)."""

    def __repr__(self) -> str:
        return f"Holder(key={CANARY_KEY})"


def lines(buf: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in buf.getvalue().splitlines() if line.strip()]


def test_structlog_and_stdlib_records_are_json_with_correlation_ids() -> None:
    buf = io.StringIO()
    configure_logging(json=True, stream=buf, level="DEBUG")
    slog = get_logger("polyoms.test.ops")
    std = logging.getLogger("polyoms.test.stdlib")
    with bind_order(order_id=ORDER, parent_id=PARENT, market=MARKET, wallet=WALLET):
        slog.info("order placed", price="0.42", size=10)
        std.warning("order %s acked in %d ms", "x", 12, extra={"venue_status": "live"})
        with bind_order(order_id="child-1"):
            slog.debug("inner")
        slog.info("outer again")
    slog.info("no context")
    first, second, inner, outer, bare = lines(buf)
    ids = {"order_id": ORDER, "parent_id": PARENT, "market": MARKET, "wallet": WALLET}
    assert first["event"] == "order placed" and first["price"] == "0.42" and first["size"] == 10
    assert first["level"] == "info" and first["logger"] == "polyoms.test.ops" and first["timestamp"].endswith("Z")
    assert ids.items() <= first.items()
    assert second["event"] == "order x acked in 12 ms" and second["venue_status"] == "live"
    assert second["level"] == "warning" and second["logger"] == "polyoms.test.stdlib"
    assert ids.items() <= second.items()
    assert inner["order_id"] == "child-1" and inner["parent_id"] == PARENT  # nested: one id replaced
    assert outer["order_id"] == ORDER  # restored on exit
    assert not {"order_id", "parent_id", "market", "wallet"} & bare.keys()
    assert list(first)[:4] == ["timestamp", "level", "logger", "event"]


def test_correlation_ids_follow_asyncio_tasks_and_stay_in_them() -> None:
    buf = io.StringIO()
    configure_logging(json=True, stream=buf)
    log = get_logger("polyoms.test.tasks")

    async def io_for(order: str) -> None:
        await asyncio.sleep(0)
        log.info("io done")  # inherits the ids bound where the task was created

    async def main() -> None:
        async def handle(order: str) -> None:
            bind_order(order_id=order, wallet=WALLET)  # bare call: for the rest of this task
            await asyncio.create_task(io_for(order))

        await asyncio.gather(handle("o-1"), handle("o-2"))
        log.info("main")

    asyncio.run(main())
    out = lines(buf)
    assert sorted(r["order_id"] for r in out if r["event"] == "io done") == ["o-1", "o-2"]
    assert "order_id" not in next(r for r in out if r["event"] == "main")


def _log_everything(slog: structlog.stdlib.BoundLogger, std: logging.Logger) -> None:
    """Every way a secret could reach a log line."""
    slog.info(f"message with {CANARY_KEY} and {CANARY_SECRET}")
    slog.info("positional %s %s", CANARY_PASSPHRASE, CANARY_KEY[2:].upper())
    slog.info(
        "kwargs",
        detail=CANARY_DIRECT,
        nested={"creds": {"api_key": "k"}, "list": [CANARY_SECRET, {"deep": (CANARY_PASSPHRASE,)}]},
        raw=bytes.fromhex(CANARY_KEY[2:]),
        obj=Holder(),
        private_key=UNREGISTERED,
        api_secret=UNREGISTERED,
        headers={POLY_SIGNATURE: UNREGISTERED, POLY_PASSPHRASE: UNREGISTERED, "Authorization": UNREGISTERED},
    )
    try:
        try:
            raise KeyError(CANARY_DIRECT)
        except KeyError as inner:
            raise RuntimeError(f"venue said: secret={CANARY_SECRET}") from inner
    except RuntimeError:
        passphrase_local = CANARY_PASSPHRASE  # a rich traceback would print locals like this one
        slog.exception("structlog failure", where=passphrase_local[:0])
        std.exception("stdlib failure with %s", CANARY_KEY)
    std.error("stdlib %s", CANARY_PASSPHRASE, extra={"payload": {"secret": UNREGISTERED, "x": CANARY_DIRECT}})
    std.warning("broken format %s %s", CANARY_SECRET)  # too few arguments: must not dump them raw
    client_logger().warning("client logger %s", CANARY_KEY)
    std.info("stack", stack_info=True)


def test_canaries_never_reach_json_output() -> None:
    buf = io.StringIO()
    alone(buf, json=True)
    _log_everything(get_logger("polyoms.test.leak"), logging.getLogger("polyoms.test.leak.std"))
    text = buf.getvalue()
    assert_clean(text)
    out = lines(buf)
    assert len(out) == 9
    kwargs = next(r for r in out if r["event"] == "kwargs")
    assert kwargs["private_key"] == REDACTED and kwargs["api_secret"] == REDACTED
    assert kwargs["nested"]["creds"] == REDACTED  # named like a secret: hidden whole
    assert kwargs["nested"]["list"] == [REDACTED, {"deep": [REDACTED]}]
    assert kwargs["raw"] == REDACTED and kwargs["obj"] == f"Holder(key={REDACTED})"
    assert set(kwargs["headers"].values()) == {REDACTED}
    failure = next(r for r in out if r["event"] == "structlog failure")
    assert "Traceback" in failure["exception"] and "RuntimeError: venue said: secret=" in failure["exception"]
    assert "KeyError" in failure["exception"]  # the chained cause is kept, scrubbed
    std_failure = next(r for r in out if r["event"].startswith("stdlib failure"))
    assert "RuntimeError" in std_failure["exception"]
    assert next(r for r in out if r["event"] == f"stdlib {REDACTED}")["payload"] == {"secret": REDACTED, "x": REDACTED}
    assert next(r for r in out if r["event"] == "broken format %s %s")  # shown unformatted, args dropped
    assert next(r for r in out if r["event"] == "stack")["stack_info"].startswith("Stack (most recent call last)")


def test_canaries_never_reach_console_output_and_it_is_human_readable() -> None:
    buf = io.StringIO()
    alone(buf, json=False)
    with bind_order(order_id=ORDER, wallet=WALLET):
        _log_everything(get_logger("polyoms.test.leak"), logging.getLogger("polyoms.test.leak.std"))
    text = buf.getvalue()
    assert_clean(text)
    assert REDACTED in text
    first = text.splitlines()[0]
    assert "[info" in first and f"order_id={ORDER}" in first and not first.startswith("{")
    assert "Traceback (most recent call last)" in text and "passphrase_local" not in text  # no locals shown
    assert "\x1b[" not in text  # no colors when the stream is not a terminal


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_format_follows_the_stream_unless_forced() -> None:
    piped, tty, forced = io.StringIO(), Tty(), Tty()
    configure_logging(stream=piped)
    get_logger("t").info("to a pipe", n=1)
    configure_logging(stream=tty)
    get_logger("t").info("to a terminal", n=1)
    configure_logging(stream=forced, json=True)
    get_logger("t").info("forced", n=1)
    assert json.loads(piped.getvalue())["event"] == "to a pipe"
    assert "to a terminal" in tty.getvalue() and not tty.getvalue().startswith("{")
    assert "\x1b[" in tty.getvalue()  # colored for a human
    assert json.loads(forced.getvalue())["event"] == "forced"
    # Each configuration replaced the previous handler: one line each, nothing duplicated.
    assert piped.getvalue().count("\n") == 1 and forced.getvalue().count("\n") == 1


def test_level_applies_to_both_paths() -> None:
    buf = io.StringIO()
    configure_logging(json=True, stream=buf, level="WARNING")
    get_logger("polyoms.test.level").info("hidden")
    logging.getLogger("polyoms.test.level").info("hidden too")
    get_logger("polyoms.test.level").warning("shown")
    logging.getLogger("polyoms.test.level").error("shown too")
    assert [r["event"] for r in lines(buf)] == ["shown", "shown too"]


def test_secret_key_names() -> None:
    for key in (
        "private_key",
        "PRIVATE_KEY",
        "secret",
        "api_secret",
        "passphrase",
        "signature",
        POLY_SIGNATURE,
        POLY_PASSPHRASE,
        "Authorization",
        "client_secret",
        "wallet_private_key",
        "password",
    ):
        assert is_secret_key(key), key
    for key in ("order_id", "signature_type", "api_key", "market", "secretary_count_x"):
        assert not is_secret_key(key), key
