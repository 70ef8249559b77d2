"""Reading a journal back: its committed rows, the typed inputs they hold, and recovery of the OMS state.

Recovery replays the input rows in order through the same apply functions as live
(`oms_state.replayer`) and then checks the rebuilt state against the current-state tables written with
it; any difference is a JournalMismatchError (fail closed).

Rows written before schema version 5 are read too: an `ack` then held Polymarket's POST /order answer
(`{order_id, response: {success, errorMsg, orderID, status, ...}, actor}`); `decode_input` turns it into
what the OMS journals today — an acceptance into an `AckInput` with the domain's `Ack`, a refusal
(success=false, or an error without a status) into a `RejectInput` — so it replays as it did live.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

import msgspec
import zstandard
from msgspec import Raw

from polyoms.core.clock import Clock, WallClock
from polyoms.core.errors import MalformedMessageError
from polyoms.core.user_events import OrderEvent, OrderStatus, TradeEvent
from polyoms.core.venue import Ack
from polyoms.oms import inputs
from polyoms.oms.errors import JournalError, JournalMismatchError
from polyoms.oms.inputs import AckInput, RejectInput
from polyoms.oms.journal import Journal, ledger_record, order_record
from polyoms.oms.oms_state import OmsState, replayer

InputRow = tuple[int, int, str, str | None, str | None, Raw, bytes | None]
_segment_decoder: Final = msgspec.msgpack.Decoder(list[InputRow])


def committed_rows(conn: sqlite3.Connection) -> Iterator[InputRow]:
    """Every committed input row of a journal in sequence order: (seq, ts_ms, kind, order_id, trade_id,
    payload, effects), payload and effects still msgpack-encoded. Any connection to the file will do
    (readers see the last commit). Raises JournalError on an unreadable or missing batch."""
    decompress = zstandard.ZstdDecompressor().decompress
    expected = 1
    for first, last, count, data in conn.execute(
        "SELECT first_seq, last_seq, inputs, data FROM log ORDER BY first_seq"
    ):
        try:
            rows = _segment_decoder.decode(decompress(data))
        except (zstandard.ZstdError, msgspec.DecodeError) as exc:
            raise JournalError(f"journal batch at seq {first} cannot be read: {exc}") from exc
        if first != expected or len(rows) != count or not rows or rows[0][0] != first:
            raise JournalMismatchError(f"journal batch at seq {first}: expected seq {expected}, {count} inputs")
        yield from rows
        expected = last + 1


class _LegacyResponse(msgspec.Struct, frozen=True):
    """Polymarket's POST /order answer as journals before schema 5 held it (the fields an ack used)."""

    success: bool = True
    error_msg: str = msgspec.field(default="", name="errorMsg")
    venue_id: str = msgspec.field(default="", name="orderID")
    status: str = ""
    trade_ids: list[str] | None = msgspec.field(default=None, name="tradeIDs")


class _LegacyAck(msgspec.Struct, frozen=True):
    """An `ack` row before schema 5."""

    order_id: str
    response: _LegacyResponse
    actor: str


_legacy_ack_decoder: Final = msgspec.msgpack.Decoder(_LegacyAck)
_DECODERS: dict[str, msgspec.msgpack.Decoder[Any]] = {
    inputs.K_TRADE: msgspec.msgpack.Decoder(TradeEvent),
    inputs.K_ORDER: msgspec.msgpack.Decoder(OrderEvent),
}


def _from_legacy_ack(old: _LegacyAck) -> tuple[str, AckInput | RejectInput]:
    answer = old.response
    if not answer.success or (answer.error_msg and not answer.status):
        return inputs.K_REJECT, RejectInput(
            old.order_id, "Rejected", answer.error_msg or "success=false", None, old.actor
        )
    try:
        status: OrderStatus | None = OrderStatus.parse(answer.status)
    except MalformedMessageError:
        status = None  # replayed as live: an anomaly, the order taken as LIVE
    ack = Ack(status, answer.venue_id, tuple(answer.trade_ids or ()), answer.status)
    return inputs.K_ACK, AckInput(old.order_id, ack, old.actor)


def decode_input(kind: str, payload: Raw | bytes) -> tuple[str, Any]:
    """A journaled input as its typed record, with the kind to apply it as (a refusal journaled as an
    `ack` before schema 5 comes back as a `reject`). Raises msgspec's errors on a malformed payload."""
    decoder = _DECODERS.get(kind)
    if decoder is None:
        try:
            decoder = _DECODERS[kind] = msgspec.msgpack.Decoder(inputs.INPUT_TYPES[kind])
        except KeyError:
            raise JournalError(f"journal holds an input of unknown kind {kind!r}") from None
    if kind == inputs.K_ACK:
        try:
            return kind, decoder.decode(payload)
        except msgspec.ValidationError:  # not today's shape: an older journal's row
            return _from_legacy_ack(_legacy_ack_decoder.decode(payload))
    return kind, decoder.decode(payload)


def recover(
    path: str | Path, clock: Clock | None = None, *, verify: bool = True, attach: bool = True, **kwargs: Any
) -> OmsState:
    """Rebuild the OMS state (orders with their audit trails, fills, ledgers) from the journal.

    Replays every committed input in sequence order; with `verify`, checks the result against the
    current-state tables written in the same transactions (JournalMismatchError on any difference).
    With `attach`, the journal stays attached for new writes (`kwargs` configure it: writer, sync
    levels). `clock` times the inputs from now on (the wall clock by default; replayed inputs keep their
    journaled times). The engine then calls `state.after_restart()` and reconciles with the venue.
    """
    j = Journal(path, **kwargs)
    state = OmsState(clock if clock is not None else WallClock())
    apply = replayer(state)
    try:
        for seq, ts, stored_kind, _order, _trade, payload, _effects in committed_rows(j.conn):
            try:
                kind, item = decode_input(stored_kind, payload)
            except (msgspec.DecodeError, TypeError, ValueError) as exc:
                raise JournalError(f"journal row {seq} ({stored_kind}) cannot be decoded: {exc}") from exc
            apply(kind, item, ts, seq)
        last = j.last_seq()
        if state.seq != last:
            raise JournalMismatchError(f"replay ends at seq {state.seq}, the journal at {last}")
        if verify:
            problems = verify_tables(j, state)
            if problems:
                raise JournalMismatchError(
                    f"replayed state differs from the journal's tables: {'; '.join(problems[:5])}",
                    differences=len(problems),
                )
    except BaseException:
        j.close()
        raise
    state.notifications.clear()  # replayed history, not news
    if attach:
        state.attach_journal(j)
    else:
        j.close()
    return state


def verify_tables(j: Journal, state: OmsState) -> list[str]:
    """Differences between the current-state tables and `state` (empty when they agree)."""
    enc = j.encode
    problems: list[str] = []
    tables: list[tuple[str, str, dict[Any, bytes]]] = [
        ("orders", "SELECT order_id, record FROM orders", {k: enc(order_record(o)) for k, o in state.orders.items()}),
        (
            "fills",
            "SELECT trade_id || '|' || order_id, record FROM fills",
            {f"{t}|{o}": enc(f) for (t, o), f in state.fills.items()},
        ),
        (
            "positions",
            "SELECT wallet || '|' || token_id, record FROM positions",
            {f"{w}|{t}": enc(p) for w, lg in state.ledgers.items() for t, p in lg.positions.items()},
        ),
        (
            "ledgers",
            "SELECT wallet, record FROM ledgers",
            {w: enc(ledger_record(lg)) for w, lg in state.ledgers.items()},
        ),
    ]
    for name, sql, expected in tables:
        stored = dict(j.conn.execute(sql).fetchall())
        for key in expected.keys() | stored.keys():
            if stored.get(key) != expected.get(key):
                problems.append(f"{name}[{key}]: " + ("missing" if key not in stored else "differs"))
    return problems
