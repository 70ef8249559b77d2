"""The journal: SQLite in WAL mode, an append-only event log plus current-state tables, and recovery.

Schema (version 2)
    log(first_seq PK, last_seq, inputs, data)
        Append-only, one row per committed batch. `data` is zstd(msgpack(list of input rows)), each row
        [seq, ts_ms, kind, order_id, trade_id, payload, effects]; kinds: intent, ack, reject,
        send_failed, cancel_request, cancel_answer, order, trade, trade_rest, resolve, balance, restart,
        reconcile, wallet. `payload` is the typed input record (msgpack, decoded by kind). `effects`
        holds what the input caused, each with its own sequence number: transition, note, fill,
        fill_status, confirm, void, anomaly, adopt, diff — a msgpack list of [seq, kind, order_id,
        trade_id, payload]. Inputs and effects share the OMS's one monotonic counter (an input's effects
        take the numbers right after it); batches tile the counter without holes (checked on reading);
        `Journal.log()` / `committed_rows()` list them in order. One compressed row per batch instead of
        one row per input: user events repeat ids, addresses and token ids, so a batch shrinks ~15× and
        costs one B-tree insert (bench/oms.py: ~50 bytes per event instead of ~950).
    orders(no PK, order_id UNIQUE, wallet, state, record)
                                 one row per order: its OrderRecord without the growing lists (rebuilt
                                 from the log); `no` is the order's creation ordinal
    fills(no PK, trade_id, order_id, wallet, status, tier, record), UNIQUE (trade_id, order_id)
    positions(wallet, token_id PK, confirmed, record)
    ledgers(wallet PK, cash, reserved, record)         pUSD figures (positions are their own rows)
    meta(key PK, value)                                schema version

Writes are batched: the OMS appends rows and marks records dirty; `flush()` writes the rows as one
compressed log row, upserts each dirty record once, and commits — one transaction, so a batch is all or
nothing (SQLite's atomicity: a crash or an exception before COMMIT leaves the previous commit intact).
A transaction always holds whole inputs with all their effects, so the journal is always a prefix of
the inputs. `commit_intent()` is the same flush, made synchronously durable (`PRAGMA synchronous=FULL`
for that commit by default: the intent must survive even a power cut before the order may be sent);
batches run with synchronous=NORMAL, which in WAL mode survives a process crash and, on a power cut,
loses at most the last batches — which reconciliation re-reads from the venue. User events are stored
as arrays rather than maps. Pages are 4 KB: each page a batch dirties (the touched orders, fills and
positions) is one WAL frame at commit, and small frames measured ~2.7× fewer WAL bytes than 16 KB.
WAL checkpoints run on a background thread with their own connection (`_Checkpointer`), never inside
a commit.

Writers: "inline" (default) writes on the caller's thread. "thread" hands each batch (already encoded
on the caller's thread: state objects never cross) to one writer thread, which commits batches in order;
`flush(wait=True)` / `wait()` / `commit_intent()` block until committed. SQLite releases the GIL while
it works, so commits and their fsyncs stop stalling the single writer (bench/oms.py: lower p99 per
event incl. commits); throughput is about the same on two cores. After any failed
write nothing more is written and every later call raises JournalError (the OMS halts).

Recovery replays the input rows in order through the same apply functions as live (core.replayer) and
then checks the rebuilt state against the current-state tables written with it; any difference is
a JournalMismatchError (fail closed). Only what the OMS is given is written: no keys, no API secrets,
no signatures (tests scan the file for canaries).
"""

from __future__ import annotations

import logging
import queue
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, NamedTuple

import msgspec
import zstandard

from polyoms.core.clock import Clock, WallClock
from polyoms.core.enums import OrderType, Side
from polyoms.core.user_events import (
    MakerOrderFill,
    OrderEvent,
    OrderEventType,
    OrderStatus,
    TradeEvent,
    TraderSide,
    TradeStatus,
)
from polyoms.oms import inputs as K
from polyoms.oms.errors import JournalError, JournalMismatchError
from polyoms.oms.fills import Fill
from polyoms.oms.ledger import Position, WalletLedger
from polyoms.oms.state import ORDER_SCALARS, OrderRecord

if TYPE_CHECKING:
    from polyoms.oms.core import OmsState

log = logging.getLogger(__name__)

SCHEMA_VERSION: Final = 2

_SCHEMA: Final = (
    # One row per committed batch: its inputs (with their effects), msgpack then zstd-compressed.
    """CREATE TABLE IF NOT EXISTS log (
        first_seq INTEGER PRIMARY KEY, last_seq INTEGER NOT NULL, inputs INTEGER NOT NULL, data BLOB NOT NULL)""",
    # Keyed by the OMS's creation ordinal, not the (random) order hash: the orders and fills being
    # updated are mostly recent, so a batch's upserts dirty a few adjacent pages instead of one random
    # page each — every dirty page is a 4 KB WAL frame at commit.
    """CREATE TABLE IF NOT EXISTS orders (
        no INTEGER PRIMARY KEY, order_id TEXT NOT NULL UNIQUE, wallet TEXT NOT NULL, state TEXT NOT NULL,
        record BLOB NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS fills (
        no INTEGER PRIMARY KEY, trade_id TEXT NOT NULL, order_id TEXT NOT NULL, wallet TEXT NOT NULL,
        status TEXT NOT NULL, tier TEXT NOT NULL, record BLOB NOT NULL, UNIQUE (trade_id, order_id))""",
    """CREATE TABLE IF NOT EXISTS positions (
        wallet TEXT NOT NULL, token_id TEXT NOT NULL, confirmed INTEGER NOT NULL, record BLOB NOT NULL,
        PRIMARY KEY (wallet, token_id)) WITHOUT ROWID""",
    """CREATE TABLE IF NOT EXISTS ledgers (
        wallet TEXT PRIMARY KEY, cash INTEGER NOT NULL, reserved INTEGER NOT NULL, record BLOB NOT NULL)
        WITHOUT ROWID""",
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID",
)

_INSERT_SEGMENT: Final = "INSERT INTO log VALUES (?, ?, ?, ?)"
_UPSERT_ORDER: Final = (
    "INSERT INTO orders VALUES (?, ?, ?, ?, ?) ON CONFLICT (no) DO UPDATE SET state = excluded.state, "
    "record = excluded.record"
)
_UPSERT_FILL: Final = (
    "INSERT INTO fills VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (no) DO UPDATE SET status = excluded.status, "
    "tier = excluded.tier, record = excluded.record"
)
_UPSERT_POSITION: Final = "INSERT OR REPLACE INTO positions VALUES (?, ?, ?, ?)"
_UPSERT_LEDGER: Final = "INSERT OR REPLACE INTO ledgers VALUES (?, ?, ?, ?)"

Row = list[Any]  # [seq, ts_ms, kind, order_id, trade_id, payload, effects]
Effect = tuple[int, str, str | None, str | None, Any]


def _ledger_record(lg: WalletLedger) -> tuple[int, int, int, int, int]:
    return (lg.base, lg.cash, lg.prov_out, lg.prov_in, lg.reserved)


def _order_record(o: OrderRecord) -> tuple[Any, ...]:
    return msgspec.structs.astuple(o)[:ORDER_SCALARS]


class _Batch(NamedTuple):
    log: tuple[int, int, int, bytes] | None
    """(first seq, last seq, inputs, msgpack of the input rows), compressed by the writer; None: no input."""
    orders: Sequence[tuple[int, str, str, str, bytes]]
    fills: Sequence[tuple[int, str, str, str, str, str, bytes]]
    ledgers: list[tuple[str, int, int, bytes]]
    positions: list[tuple[str, str, int, bytes]]
    sync: str


class LogRecord(msgspec.Struct, frozen=True, gc=False):
    """One entry of the log as `Journal.log()` lists it: an input (cause None) or an effect."""

    seq: int
    ts_ms: int
    kind: str
    order_id: str | None
    trade_id: str | None
    cause: int | None
    payload: Any


CHECKPOINT_EVERY: Final = 32
"""Commits between background checkpoints (a batch of ~100 events dirties a handful of pages)."""


class _Checkpointer:
    """Copies the WAL back into the database file on its own thread and connection, when woken.

    PASSIVE checkpoints never block the writer (WAL mode lets them run side by side) and SQLite releases
    the GIL for the whole call, so the OMS's thread neither waits for one nor loses CPU to it on a
    multi-core machine. A failed checkpoint loses nothing (the WAL just grows until the next one)."""

    def __init__(self, path: Path) -> None:
        self.conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self.wake = threading.Event()
        self._stop = False
        self._thread = threading.Thread(target=self._run, name=f"checkpoint:{path.name}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            self.wake.wait()
            self.wake.clear()
            if self._stop:
                return
            try:
                self.conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
            except sqlite3.Error as exc:
                log.warning("journal checkpoint failed (the WAL grows until the next one): %s", exc)

    def close(self) -> None:
        if not self._stop:
            self._stop = True
            self.wake.set()
            self._thread.join()
            self.conn.close()


class Journal:
    """One SQLite file, written only by the OMS's single writer."""

    def __init__(
        self, path: str | Path, *, intent_sync: str = "FULL", batch_sync: str = "NORMAL", writer: str = "inline"
    ) -> None:
        self.path = Path(path)
        if writer not in ("inline", "thread"):
            raise JournalError(f"writer must be 'inline' or 'thread', got {writer!r}")
        self.intent_sync = intent_sync.upper()
        self.batch_sync = batch_sync.upper()
        for level in (self.intent_sync, self.batch_sync):
            if level not in ("OFF", "NORMAL", "FULL", "EXTRA"):
                raise JournalError(f"unknown synchronous level {level!r}")
        try:
            # Autocommit mode: transactions are begun and committed explicitly, one per flush.
            self.conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            # 4 KB pages (takes effect on a new file only): see the module doc.
            self.conn.execute("PRAGMA page_size=4096")
            mode = self.conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise JournalError(f"journal {self.path} cannot use WAL mode (got {mode})")
            self.conn.execute(f"PRAGMA synchronous={self.batch_sync}")
            # Checkpoints (copying the WAL back into the database, with its fsyncs) run on their own
            # thread and connection (`_Checkpointer`): inline, one stalled a commit for ~20 ms.
            self.conn.execute("PRAGMA wal_autocheckpoint=0")
            self.conn.execute("BEGIN")
            for stmt in _SCHEMA:
                self.conn.execute(stmt)
            row = self.conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
            if row is None:
                self.conn.execute("INSERT INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
            elif int(row[0]) != SCHEMA_VERSION:
                raise JournalError(f"journal schema version {row[0]}, this code reads {SCHEMA_VERSION}")
            self.conn.execute("COMMIT")
        except sqlite3.Error as exc:
            raise JournalError(f"cannot open journal {self.path}: {exc}") from exc
        self.encode = msgspec.msgpack.Encoder().encode
        # Level 1: see the module doc (a ~15× smaller log for ~0.3 µs of CPU per event).
        self._compress = zstandard.ZstdCompressor(level=1).compress
        self._tail = 0
        """The last sequence number pending: the last input's, or its last effect's."""
        self.rows: list[Row] = []
        self.effects: list[Effect] = []
        self.dirty_orders: dict[str, OrderRecord] = {}
        self.dirty_fills: dict[tuple[str, str], Fill] = {}
        self.dirty_wallets: set[str] = set()
        self.dirty_positions: set[tuple[str, str]] = set()
        self._state: OmsState | None = None
        self.commits = 0
        self.error: BaseException | None = None
        self._queue: queue.Queue[_Batch | None] | None = None
        self._thread: threading.Thread | None = None
        self._checkpointer = _Checkpointer(self.path)
        if writer == "thread":
            # SQLite releases the GIL while it inserts and commits, so a writer thread overlaps the
            # journal's I/O with decoding and applying the next events. The OMS's thread still encodes
            # every record (the state objects never cross threads).
            self._queue = queue.Queue()
            self._thread = threading.Thread(target=self._run_writer, name=f"journal:{self.path.name}", daemon=True)
            self._thread.start()

    # --- writing -----------------------------------------------------------------------------------

    def last_seq(self) -> int:
        """The last number used: the last input's, or its last effect's."""
        self.wait()
        row = self.conn.execute("SELECT last_seq FROM log ORDER BY first_seq DESC LIMIT 1").fetchone()
        return 0 if row is None else int(row[0])

    def add_input(self, seq: int, ts: int, kind: str, order_id: str | None, trade_id: str | None, payload: Any) -> None:
        if self.effects:
            self._seal()
        t = type(payload)
        if t is TradeEvent:
            data = self.encode(_pack_trade(payload))
        elif t is OrderEvent:
            data = self.encode(msgspec.structs.astuple(payload))
        else:
            data = self.encode(payload)
        self.rows.append([seq, ts, kind, order_id, trade_id, data, None])
        self._tail = seq

    def _seal(self) -> None:
        """Store the effects with the input that caused them (the last row). Encoded now, not at the
        commit: a fill recorded here may change again later in the same batch."""
        row = self.rows[-1]
        row[6] = self.encode(self.effects)
        self._tail = row[0] + len(self.effects)
        self.effects = []

    def bind(self, state: OmsState) -> None:
        """Called by OmsState.attach_journal. The state must be what this journal holds (fresh file and
        fresh state, or the state `recover` rebuilt from it)."""
        last = self.last_seq()
        if state.seq != last:
            raise JournalError(
                f"state is at seq {state.seq} but journal {self.path} at {last}: recover() from it first"
            )
        self._state = state

    @property
    def pending(self) -> int:
        return len(self.rows)

    def flush(self, *, wait: bool = False) -> None:
        """Commit everything pending as one transaction (nothing pending: nothing to do).

        Inline writer: written and committed before it returns. Thread writer: handed to the writer
        thread (committed in order, after every earlier batch); `wait=True` returns once it is.
        """
        self.raise_if_failed()
        if self.rows or self.dirty_orders or self.dirty_fills or self.dirty_wallets:
            batch = self._collect(self.batch_sync)
            if self._queue is None:
                self._write(batch)
            else:
                self._queue.put(batch)
        if wait:
            self.wait()

    def commit_intent(self) -> None:
        """Commit synchronously durable: called with an intent in the batch, before the order is sent.
        Returns only once the intent (and everything journaled before it) is committed."""
        self.raise_if_failed()
        batch = self._collect(self.intent_sync)
        if self._queue is None:
            self._write(batch)
        else:
            self._queue.put(batch)
            self.wait()

    def wait(self) -> None:
        """Block until every batch handed over so far is committed (thread writer); raise its error."""
        if self._queue is not None:
            self._queue.join()
        self.raise_if_failed()

    def raise_if_failed(self) -> None:
        if self.error is not None:
            raise JournalError(f"journal write failed: {self.error}") from self.error

    def _collect(self, sync: str) -> _Batch:
        """Take what is pending as plain rows (on the OMS's thread: the records are encoded now)."""
        if self.effects:
            self._seal()
        encode = self.encode
        state = self._state
        orders = [(o.no, o.order_id, o.wallet, o.state, encode(_order_record(o))) for o in self.dirty_orders.values()]
        fills = [
            (f.no, f.trade_id, f.order_id, f.wallet, f.status, f.tier, encode(f)) for f in self.dirty_fills.values()
        ]
        ledgers: list[tuple[str, int, int, bytes]] = []
        positions: list[tuple[str, str, int, bytes]] = []
        if state is not None:
            for w in self.dirty_wallets:
                lg = state.ledgers.get(w)
                if lg is not None:
                    ledgers.append((w, lg.cash, lg.reserved, encode(_ledger_record(lg))))
            for w, t in self.dirty_positions:
                pos = state.ledgers[w].positions.get(t)
                if pos is not None:
                    positions.append((w, t, pos.confirmed, encode(pos)))
        rows = self.rows
        entry = (rows[0][0], self._tail, len(rows), encode(rows)) if rows else None
        batch = _Batch(entry, orders, fills, ledgers, positions, sync)
        self._clear()
        return batch

    def _write(self, batch: _Batch) -> None:
        """One transaction: all of the batch or none of it (SQLite's atomicity)."""
        conn = self.conn
        changed_sync = batch.sync != self.batch_sync
        try:
            if changed_sync:
                conn.execute(f"PRAGMA synchronous={batch.sync}")
            conn.execute("BEGIN")
            if batch.log is not None:
                first, last, inputs, data = batch.log
                conn.execute(_INSERT_SEGMENT, (first, last, inputs, self._compress(data)))
            if batch.orders:
                conn.executemany(_UPSERT_ORDER, batch.orders)
            if batch.fills:
                conn.executemany(_UPSERT_FILL, batch.fills)
            if batch.ledgers:
                conn.executemany(_UPSERT_LEDGER, batch.ledgers)
            if batch.positions:
                conn.executemany(_UPSERT_POSITION, batch.positions)
            self._before_commit()
            conn.execute("COMMIT")
        except BaseException as exc:
            # The previous commit stays the journal's truth; this batch is lost, so the in-memory state
            # is now ahead of the journal: the OMS must halt (fail closed).
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            self.error = exc
            if isinstance(exc, sqlite3.Error):
                raise JournalError(f"journal write failed: {exc}") from exc
            raise
        finally:
            if changed_sync:
                conn.execute(f"PRAGMA synchronous={self.batch_sync}")
        self.commits += 1
        if self.commits % CHECKPOINT_EVERY == 0:
            self._checkpointer.wake.set()

    def _run_writer(self) -> None:
        assert self._queue is not None
        q = self._queue
        while True:
            batch = q.get()
            try:
                if batch is None:
                    return
                if self.error is None:  # after a failure nothing more is written (prefix property)
                    self._write(batch)
            except BaseException:
                pass  # kept in self.error, raised on the OMS's thread
            finally:
                q.task_done()

    def _before_commit(self) -> None:
        """Test hook: a crash between the writes and COMMIT."""

    def _clear(self) -> None:
        self.rows = []
        self.effects = []
        self.dirty_orders = {}
        self.dirty_fills = {}
        self.dirty_wallets = set()
        self.dirty_positions = set()

    def close(self) -> None:
        """Drain the writer (if any) and close the file."""
        if self._queue is not None and self._thread is not None:
            self._queue.put(None)
            self._thread.join()
            self._queue = None
        self._checkpointer.close()
        self.conn.close()

    def abandon(self) -> None:
        """Tests: the process dies here — nothing pending is written, the file stays as last committed."""
        self._clear()
        self._checkpointer.close()
        self.conn.close()

    # --- reading -----------------------------------------------------------------------------------

    def log(
        self, *, kind: str | None = None, order_id: str | None = None, trade_id: str | None = None
    ) -> Iterator[LogRecord]:
        """Every committed input and effect in sequence order, optionally filtered. Inputs come decoded
        as their typed records, effects as plain msgpack data."""
        self.wait()
        for seq, ts, in_kind, in_order, in_trade, payload, effects in self.rows_committed():
            records = [LogRecord(seq, ts, in_kind, in_order, in_trade, None, self.decode_input(in_kind, payload))]
            for e_seq, e_kind, e_order, e_trade, e_payload in msgspec.msgpack.decode(effects) if effects else ():
                records.append(LogRecord(e_seq, ts, e_kind, e_order, e_trade, seq, e_payload))
            for r in records:
                if (
                    (kind is None or r.kind == kind)
                    and (order_id is None or r.order_id == order_id)
                    and (trade_id is None or r.trade_id == trade_id)
                ):
                    yield r

    def decode_input(self, kind: str, payload: bytes) -> Any:
        return _decoder(kind).decode(payload)

    def rows_committed(self) -> Iterator[InputRow]:
        """Every committed input row in sequence order (see `committed_rows`)."""
        return committed_rows(self.conn)


# User-channel events, the bulk of the log, are stored as arrays (field order) rather than maps: a
# third fewer bytes per row, and bytes are what a commit costs.
def _pack_trade(ev: TradeEvent) -> list[Any]:
    fields = list(_astuple(ev))
    fields[8] = [_astuple(m) for m in ev.maker_orders]  # a msgpack array, as a tuple would be
    return fields


_astuple: Final = msgspec.structs.astuple
_segment_decoder: Final = msgspec.msgpack.Decoder(
    list[tuple[int, int, str, str | None, str | None, bytes, bytes | None]]
)


class _TradeDecoder:
    def __init__(self) -> None:
        self._dec = msgspec.msgpack.Decoder(_TradeRow)

    def decode(self, data: bytes) -> TradeEvent:
        row = self._dec.decode(data)
        fields = msgspec.structs.astuple(row)
        makers = tuple(MakerOrderFill(*msgspec.structs.astuple(m)) for m in row.maker_orders)
        return TradeEvent(*fields[:8], makers, *fields[9:])  # type: ignore[call-arg]


class _MakerRow(msgspec.Struct, array_like=True):
    order_id: str
    matched_amount: int
    price: int
    asset_id: str
    owner: str
    maker_address: str
    fee_rate_bps: int | None
    outcome: str
    outcome_index: int | None
    side: Side | None


class _TradeRow(msgspec.Struct, array_like=True):
    id: str
    taker_order_id: str
    market: str
    asset_id: str
    side: Side
    size: int
    price: int
    status: TradeStatus
    maker_orders: tuple[_MakerRow, ...]
    fee_rate_bps: int | None
    outcome: str
    owner: str
    trade_owner: str
    maker_address: str
    transaction_hash: str
    bucket_index: int | None
    trader_side: TraderSide | None
    match_time: int | None
    last_update: int | None
    timestamp_ms: int | None
    err_msg: str


class _OrderRow(msgspec.Struct, array_like=True):
    type: OrderEventType
    id: str
    market: str
    asset_id: str
    side: Side
    price: int
    original_size: int
    size_matched: int
    status: OrderStatus
    owner: str
    order_owner: str
    outcome: str
    associate_trades: tuple[str, ...]
    order_type: OrderType | None
    expiration: int
    maker_address: str
    created_at: int | None
    timestamp_ms: int | None


class _OrderDecoder:
    def __init__(self) -> None:
        self._dec = msgspec.msgpack.Decoder(_OrderRow)

    def decode(self, data: bytes) -> OrderEvent:
        return OrderEvent(*msgspec.structs.astuple(self._dec.decode(data)))


InputRow = tuple[int, int, str, str | None, str | None, bytes, bytes | None]


def committed_rows(conn: sqlite3.Connection) -> Iterator[InputRow]:
    """Every committed input row of a journal in sequence order: (seq, ts_ms, kind, order_id, trade_id,
    payload, effects), payload and effects still msgpack-encoded. Any connection to the file will do
    (readers see the last commit). Raises JournalError on an unreadable or missing batch."""
    decompress = zstandard.ZstdDecompressor().decompress
    expected = 1
    for first, last, inputs, data in conn.execute(
        "SELECT first_seq, last_seq, inputs, data FROM log ORDER BY first_seq"
    ):
        try:
            rows = _segment_decoder.decode(decompress(data))
        except (zstandard.ZstdError, msgspec.DecodeError) as exc:
            raise JournalError(f"journal batch at seq {first} cannot be read: {exc}") from exc
        if first != expected or len(rows) != inputs or not rows or rows[0][0] != first:
            raise JournalMismatchError(f"journal batch at seq {first}: expected seq {expected}, {inputs} inputs")
        yield from rows
        expected = last + 1


_DECODERS: dict[str, Any] = {K.K_TRADE: _TradeDecoder(), K.K_ORDER: _OrderDecoder()}


def _decoder(kind: str) -> Any:
    dec = _DECODERS.get(kind)
    if dec is None:
        from polyoms.oms import reconcile  # noqa: F401  (registers the reconcile input type)

        try:
            dec = _DECODERS[kind] = msgspec.msgpack.Decoder(K.INPUT_TYPES[kind])
        except KeyError:
            raise JournalError(f"journal holds an input of unknown kind {kind!r}") from None
    return dec


def open_journal(path: str | Path, state: OmsState, **kwargs: Any) -> Journal:
    """A journal for a fresh state (new file), attached to it."""
    j = Journal(path, **kwargs)
    state.attach_journal(j)
    return j


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
    from polyoms.oms.core import OmsState, replayer

    j = Journal(path, **kwargs)
    state = OmsState(clock if clock is not None else WallClock())
    apply = replayer(state)
    try:
        for seq, ts, kind, _order, _trade, payload, _effects in j.rows_committed():
            try:
                item = _decoder(kind).decode(payload)
            except (msgspec.DecodeError, TypeError, ValueError) as exc:
                raise JournalError(f"journal row {seq} ({kind}) cannot be decoded: {exc}") from exc
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
        ("orders", "SELECT order_id, record FROM orders", {k: enc(_order_record(o)) for k, o in state.orders.items()}),
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
            {w: enc(_ledger_record(lg)) for w, lg in state.ledgers.items()},
        ),
    ]
    for name, sql, expected in tables:
        stored = dict(j.conn.execute(sql).fetchall())
        for key in expected.keys() | stored.keys():
            if stored.get(key) != expected.get(key):
                problems.append(f"{name}[{key}]: " + ("missing" if key not in stored else "differs"))
    return problems


def decode_record(kind: str, payload: bytes) -> Any:
    """A current-state row's record (kind: order, fill, position) as its typed object."""
    types: dict[str, type] = {"order": OrderRecord, "fill": Fill, "position": Position}
    return msgspec.msgpack.decode(payload, type=types[kind])
