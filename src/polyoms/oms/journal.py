"""The journal: SQLite in WAL mode, an append-only event log plus current-state tables, written in batches.

The OMS appends its inputs (each with the effects it caused) and marks records dirty; `flush()` commits
them as one transaction, so the journal is always a prefix of the inputs, and `commit_intent()` makes
that commit durable before an order may be sent. The writer runs inline, on a thread or in a child
process (`journal_process`); reading it back is `journal_recovery`. Key rules, detailed on `Journal`
and on the tables (`_SCHEMA`):

* a batch is all or nothing, and after any failed write nothing more is written (the OMS halts);
* only what the OMS is given is written: no keys, no API secrets, no signatures (tests scan the file
  for canaries);
* every file of the journal is readable by its owner only (0600, `private_files`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import msgspec
from msgspec import Raw

from polyoms.core.user_events import OrderEvent, TradeEvent
from polyoms.oms.errors import JournalError
from polyoms.oms.fills import Fill
from polyoms.oms.journal_process import WriterProcess, started_here
from polyoms.oms.journal_writer import CHECKPOINT_EVERY, Batch, Checkpointer, await_writer_exit, compressor, write_batch
from polyoms.oms.ledger import WalletLedger
from polyoms.oms.state import ORDER_SCALARS, OrderRecord

if TYPE_CHECKING:
    from polyoms.oms.oms_state import OmsState

log = logging.getLogger(__name__)

SCHEMA_VERSION: Final = 5
_UPGRADABLE: Final = (3, 4)
"""Versions upgraded in place on opening: 4 added the parents table (created empty); 5 changed only the
shape of new `ack` rows (recovery reads both)."""

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
    # Parent orders and strategies (`ParentRecord`): a handful of rows, rewritten when one starts or ends.
    """CREATE TABLE IF NOT EXISTS parents (
        no INTEGER PRIMARY KEY, parent_id TEXT NOT NULL UNIQUE, family TEXT NOT NULL, state TEXT NOT NULL,
        record BLOB NOT NULL)""",
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID",
)
"""The tables (version `SCHEMA_VERSION`; `_UPGRADABLE` ones are upgraded in place when opened, older
ones are refused):

    log(first_seq PK, last_seq, inputs, data)
        Append-only, one row per committed batch. `data` is zstd(msgpack(list of input rows)), each row
        [seq, ts_ms, kind, order_id, trade_id, payload, effects]; kinds: intent, ack, reject,
        send_failed, cancel_request, cancel_answer, order, trade, trade_rest, resolve, balance, restart,
        reconcile, wallet. `payload` is the typed input record, nested msgpack (read back as `msgspec.Raw`
        and decoded by kind; user events are arrays in field order, `array_like`). `effects`
        holds what the input caused, each with its own sequence number: transition, note, fill,
        fill_status, confirm, void, anomaly, adopt, diff — a msgpack list of [seq, kind, order_id,
        trade_id, payload]. Inputs and effects share the OMS's one monotonic counter (an input's effects
        take the numbers right after it); batches tile the counter without holes (checked on reading);
        `Journal.log()` / `journal_recovery.committed_rows()` list them in order. One compressed row per
        batch instead of one row per input: user events repeat ids, addresses and token ids, so a batch
        shrinks many times over and costs one B-tree insert.
    orders(no PK, order_id UNIQUE, wallet, state, record)
                                 one row per order: its OrderRecord without the growing lists (rebuilt
                                 from the log); `no` is the order's creation ordinal
    fills(no PK, trade_id, order_id, wallet, status, tier, record), UNIQUE (trade_id, order_id)
    positions(wallet, token_id PK, confirmed, record)
    ledgers(wallet PK, cash, reserved, record)         pUSD figures (positions are their own rows)
    parents(no PK, parent_id UNIQUE, family, state, record)
                                 one row per parent order (and, later, strategy): its `ParentRecord` —
                                 what it was asked to do (spec), its restart policy, whether it ended and
                                 how. Written when it starts (committed before its first child), when a
                                 cancel is requested and when it ends; its progress is not stored (its
                                 children's fills are the truth: orders whose actor is `family:parent_id`).
                                 Not part of the log: parents are rare and sit outside the OMS's inputs.
    meta(key PK, value)                                schema version
"""
_FILE_SUFFIXES: Final = ("", "-wal", "-shm", ".writer")
"""The files of a journal: the database, SQLite's WAL and shared-memory index, the writer process's lock."""

Row = list[Any]  # [seq, ts_ms, kind, order_id, trade_id, payload, effects]
Effect = tuple[int, str, str | None, str | None, Any]


def ledger_record(lg: WalletLedger) -> tuple[int, int, int, int, int]:
    """The ledgers table's record of `lg` (its positions are rows of their own)."""
    return (lg.base, lg.cash, lg.prov_out, lg.prov_in, lg.reserved)


def order_record(o: OrderRecord) -> tuple[Any, ...]:
    """The orders table's record of `o`: its scalars (the growing lists are rebuilt from the log)."""
    return msgspec.structs.astuple(o)[:ORDER_SCALARS]


class ParentRecord(msgspec.Struct, frozen=True, kw_only=True):
    """A parent order (family "algo") or a strategy (family "strategy") as the journal keeps it.

    The journal does not interpret `spec`: it is whatever plain data (msgpack: maps, lists, strings,
    numbers) its owner rebuilds it from after a restart. Progress is not kept here: it is rebuilt from
    the children, the OMS's orders whose actor is `actor` (their fills are journaled with them)."""

    parent_id: str
    no: int
    """Its ordinal among every record of this journal (1, 2, ...): new ids are numbered past the
    largest, so an id never repeats, across restarts and crashes."""
    family: str
    kind: str
    """The algorithm (iceberg, adaptive, ...) or strategy name."""
    spec: Any
    on_restart: str
    """What a restart does to it while it works: "resume" or "interrupt"."""
    started_ms: int
    state: str = "WORKING"
    reason: str = ""
    cancel_requested: bool = False
    ended_ms: int | None = None
    """Set when it ended (`state` is then its final state)."""
    restarts: int = 0
    """How many restarts found it working."""
    interrupted: bool = False
    """It ended because a restart interrupted it (not resumed)."""

    @property
    def actor(self) -> str:
        """The actor its children are submitted with (the OMS's audit trail names it)."""
        return f"{self.family}:{self.parent_id}"

    @property
    def ended(self) -> bool:
        return self.ended_ms is not None


_parent_decoder: Final = msgspec.msgpack.Decoder(ParentRecord)


class LogRecord(msgspec.Struct, frozen=True, gc=False):
    """One entry of the log as `Journal.log()` lists it: an input (cause None) or an effect."""

    seq: int
    ts_ms: int
    kind: str
    order_id: str | None
    trade_id: str | None
    cause: int | None
    payload: Any


WRITERS: Final = ("inline", "thread", "process")


class Journal:
    """One SQLite file, written only by the OMS's single writer.

    Writes are batched: the OMS appends rows and marks records dirty; `flush()` writes the rows as one
    compressed log row, upserts each dirty record once, and commits — one transaction, so a batch is all or
    nothing (SQLite's atomicity: a crash or an exception before COMMIT leaves the previous commit intact).
    A transaction always holds whole inputs with all their effects, so the journal is always a prefix of
    the inputs. `commit_intent()` is the same flush, made synchronously durable (`PRAGMA synchronous=FULL`
    for that commit by default: the intent must survive even a power cut before the order may be sent);
    batches run with synchronous=NORMAL, which in WAL mode survives a process crash and, on a power cut,
    loses at most the last batches — which reconciliation re-reads from the venue.
    WAL checkpoints run on a background thread with their own connection (`journal_writer.Checkpointer`),
    never inside a commit.

    Writers: "inline" (default) writes on the caller's thread. "thread" hands each batch (already encoded
    on the caller's thread: state objects never cross) to one writer thread, which commits batches in order;
    `flush(wait=True)` / `wait()` / `commit_intent()` block until committed. SQLite releases the GIL while
    it works, so commits and their fsyncs stop stalling the single writer. "process" hands each batch to a
    child process (`journal_process`): compression, SQL, commits and checkpoints run on another core, and
    the OMS's thread only encodes. After any failed write nothing more is written and every later call
    raises JournalError (the OMS halts); a writer process that dies does the same. Measurements:
    docs/performance.md.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        intent_sync: str = "FULL",
        batch_sync: str = "NORMAL",
        writer: str = "inline",
        writer_wait_s: float = 30.0,
    ) -> None:
        self.path = Path(path)
        if writer not in WRITERS:
            raise JournalError(f"writer must be one of {', '.join(WRITERS)}, got {writer!r}")
        self.writer = writer
        self.intent_sync = intent_sync.upper()
        self.batch_sync = batch_sync.upper()
        for level in (self.intent_sync, self.batch_sync):
            if level not in ("OFF", "NORMAL", "FULL", "EXTRA"):
                raise JournalError(f"unknown synchronous level {level!r}")
        if not started_here(self.path) and not await_writer_exit(self.path, writer_wait_s):
            raise JournalError(
                f"journal {self.path} is still being written by another process's writer after {writer_wait_s} s"
            )
        try:
            private_files(self.path)
            # Autocommit mode: transactions are begun and committed explicitly, one per flush.
            self.conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            # 4 KB pages (takes effect on a new file only): see the orders table in `_SCHEMA`.
            self.conn.execute("PRAGMA page_size=4096")
            mode = self.conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise JournalError(f"journal {self.path} cannot use WAL mode (got {mode})")
            self.conn.execute(f"PRAGMA synchronous={self.batch_sync}")
            # Checkpoints (copying the WAL back into the database, with its fsyncs) run on their own
            # thread and connection (`Checkpointer`): inline, one stalled a commit for ~20 ms.
            self.conn.execute("PRAGMA wal_autocheckpoint=0")
            self.conn.execute("BEGIN")
            for stmt in _SCHEMA:
                self.conn.execute(stmt)
            row = self.conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
            if row is None:
                self.conn.execute("INSERT INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
            elif int(row[0]) in _UPGRADABLE:
                # The missing tables were created above (empty): only the version is left to say so.
                self.conn.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(SCHEMA_VERSION),))
                log.info("journal %s upgraded from schema version %s to %s", self.path, row[0], SCHEMA_VERSION)
            elif int(row[0]) != SCHEMA_VERSION:
                self.conn.execute("ROLLBACK")
                raise JournalError(
                    f"journal {self.path} has schema version {row[0]}; this version of polyoms reads "
                    f"{SCHEMA_VERSION} (and upgrades {', '.join(map(str, _UPGRADABLE))})",
                    version=int(row[0]),
                )
            self.conn.execute("COMMIT")
            private_files(self.path)  # -wal and -shm exist now
        except sqlite3.Error as exc:
            raise JournalError(f"cannot open journal {self.path}: {exc}") from exc
        self.encode = msgspec.msgpack.Encoder().encode
        self._compress = compressor()  # inline and thread writers; the writer process has its own
        self._tail = 0
        """The last sequence number pending: the last input's, or its last effect's."""
        self.rows: list[Row] = []
        self.effects: list[Effect] = []
        self.dirty_orders: dict[str, OrderRecord] = {}
        self.dirty_fills: dict[tuple[str, str], Fill] = {}
        self.dirty_wallets: set[str] = set()
        self.dirty_positions: set[tuple[str, str]] = set()
        self.dirty_parents: dict[str, ParentRecord] = {}
        self._state: OmsState | None = None
        self.commits = 0
        """Batches committed (inline, thread) or handed to the writer process, which commits them in order."""
        self.error: BaseException | None = None
        self._queue: queue.Queue[Batch | None] | None = None
        self._thread: threading.Thread | None = None
        self._checkpointer: Checkpointer | None = None
        self._process: WriterProcess | None = None
        if writer == "process":
            self._process = WriterProcess(self.path, self.batch_sync)
            return
        self._checkpointer = Checkpointer(self.path)
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
        if t is not TradeEvent and t is not OrderEvent:
            # Encoded now (an input record may hold a container its caller still owns). User events,
            # the bulk, are immutable all the way down: encoded once, with the whole batch.
            payload = Raw(self.encode(payload))
        self.rows.append([seq, ts, kind, order_id, trade_id, payload, None])
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

        Inline writer: written and committed before it returns. Thread and process writers: handed
        over (committed in order, after every earlier batch); `wait=True` returns once it is.
        """
        self.raise_if_failed()
        if self.rows or self.dirty_orders or self.dirty_fills or self.dirty_wallets or self.dirty_parents:
            self._hand_over(self._collect(self.batch_sync))
        if wait:
            self.wait()

    def put_parent(self, record: ParentRecord) -> None:
        """Write `record` (replacing its earlier version) with the next batch. On the OMS's thread, like
        every other write: `OmsState` calls come from the engine's task (`Engine.call`)."""
        self.dirty_parents[record.parent_id] = record

    def commit_parent(self, record: ParentRecord) -> None:
        """Write `record` now, as durably as an intent (a parent starts: its record must be there before
        its first child, and before the caller learns its id)."""
        self.put_parent(record)
        self.commit_intent()

    def parents(self) -> list[ParentRecord]:
        """Every committed parent record, in the order they were started."""
        self.wait()
        rows = self.conn.execute("SELECT record FROM parents ORDER BY no").fetchall()
        try:
            return [_parent_decoder.decode(r[0]) for r in rows]
        except msgspec.DecodeError as exc:
            raise JournalError(f"journal {self.path}: a parent record cannot be read: {exc}") from exc

    def commit_intent(self) -> None:
        """Commit synchronously durable: called with an intent in the batch, before the order is sent.
        Returns only once the intent (and everything journaled before it) is committed."""
        self.raise_if_failed()
        self._hand_over(self._collect(self.intent_sync))
        self.wait()

    def _hand_over(self, batch: Batch) -> None:
        if self._process is not None:
            self._process.send(batch)
            self.commits += 1
        elif self._queue is not None:
            self._queue.put(batch)
        else:
            self._write(batch)

    def wait(self) -> None:
        """Block until every batch handed over so far is committed (thread and process writers); raise
        the writer's error."""
        if self._queue is not None:
            self._queue.join()
        elif self._process is not None:
            self._process.sync()
        self.raise_if_failed()

    def raise_if_failed(self) -> None:
        process = self._process
        if self.error is None and process is not None:
            process.poll()
            if process.error:
                self.error = JournalError(process.error)
        if self.error is not None:
            raise JournalError(f"journal write failed: {self.error}") from self.error

    def _collect(self, sync: str) -> Batch:
        """Take what is pending as plain rows (on the OMS's thread: the records are encoded now)."""
        if self.effects:
            self._seal()
        encode = self.encode
        state = self._state
        orders = [(o.no, o.order_id, o.wallet, o.state, encode(order_record(o))) for o in self.dirty_orders.values()]
        fills = [
            (f.no, f.trade_id, f.order_id, f.wallet, f.status, f.tier, encode(f)) for f in self.dirty_fills.values()
        ]
        ledgers: list[tuple[str, int, int, bytes]] = []
        positions: list[tuple[str, str, int, bytes]] = []
        if state is not None:
            for w in self.dirty_wallets:
                lg = state.ledgers.get(w)
                if lg is not None:
                    ledgers.append((w, lg.cash, lg.reserved, encode(ledger_record(lg))))
            for w, t in self.dirty_positions:
                pos = state.ledgers[w].positions.get(t)
                if pos is not None:
                    positions.append((w, t, pos.confirmed, encode(pos)))
        parents = [(r.no, r.parent_id, r.family, r.state, encode(r)) for r in self.dirty_parents.values()]
        rows = self.rows
        entry = (rows[0][0], self._tail, len(rows), encode(rows)) if rows else None
        batch = Batch(entry, orders, fills, ledgers, positions, sync, parents)
        self._clear()
        return batch

    def _write(self, batch: Batch) -> None:
        """One transaction (journal_writer.write_batch) on this process's connection."""
        try:
            write_batch(self.conn, batch, self.batch_sync, self._compress, self._before_commit)
        except BaseException as exc:
            # The previous commit stays the journal's truth; this batch is lost, so the in-memory state
            # is now ahead of the journal: the OMS must halt (fail closed).
            self.error = exc
            if isinstance(exc, sqlite3.Error):
                raise JournalError(f"journal write failed: {exc}") from exc
            raise
        self.commits += 1
        if self.commits % CHECKPOINT_EVERY == 0 and self._checkpointer is not None:
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
        """Test hook: a crash between the writes and COMMIT (inline and thread writers)."""

    def _clear(self) -> None:
        self.rows = []
        self.effects = []
        self.dirty_orders = {}
        self.dirty_fills = {}
        self.dirty_wallets = set()
        self.dirty_positions = set()
        self.dirty_parents = {}

    def close(self) -> None:
        """Drain the writer (if any) and close the file."""
        if self._queue is not None and self._thread is not None:
            self._queue.put(None)
            self._thread.join()
            self._queue = None
        if self._process is not None:
            self._process.close()
        if self._checkpointer is not None:
            self._checkpointer.close()
        self.conn.close()

    def abandon(self) -> None:
        """Tests: the process dies here — nothing pending is written, the file stays as last committed
        (a writer process, like after a real crash, still commits the batches it was handed, then exits)."""
        self._clear()
        if self._process is not None:
            self._process.abandon()
        if self._checkpointer is not None:
            self._checkpointer.close()
        self.conn.close()

    # --- reading -----------------------------------------------------------------------------------

    def log(
        self, *, kind: str | None = None, order_id: str | None = None, trade_id: str | None = None
    ) -> Iterator[LogRecord]:
        """Every committed input and effect in sequence order, optionally filtered. Inputs come decoded
        as their typed records (as recovery reads them: see `journal_recovery.decode_input`), effects as
        plain msgpack data."""
        from polyoms.oms.journal_recovery import committed_rows, decode_input  # it imports this module

        self.wait()
        for seq, ts, stored_kind, in_order, in_trade, payload, effects in committed_rows(self.conn):
            in_kind, item = decode_input(stored_kind, payload)
            records = [LogRecord(seq, ts, in_kind, in_order, in_trade, None, item)]
            for e_seq, e_kind, e_order, e_trade, e_payload in msgspec.msgpack.decode(effects) if effects else ():
                records.append(LogRecord(e_seq, ts, e_kind, e_order, e_trade, seq, e_payload))
            for r in records:
                if (
                    (kind is None or r.kind == kind)
                    and (order_id is None or r.order_id == order_id)
                    and (trade_id is None or r.trade_id == trade_id)
                ):
                    yield r


def private_files(path: Path) -> None:
    """Make the journal's files readable by their owner only: the database is created 0600 before
    SQLite opens it (SQLite gives its -wal and -shm the database's mode), and any file left by an
    older version is tightened."""
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600))
    for suffix in _FILE_SUFFIXES:
        with contextlib.suppress(FileNotFoundError):
            f = Path(str(path) + suffix)
            if f.stat().st_mode & 0o077:
                os.chmod(f, 0o600)


def open_journal(path: str | Path, state: OmsState, **kwargs: Any) -> Journal:
    """A journal for a fresh state (new file), attached to it."""
    j = Journal(path, **kwargs)
    state.attach_journal(j)
    return j
