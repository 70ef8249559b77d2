"""The journal's writes to SQLite: one batch per transaction, background checkpoints, and the writer process.

`write_batch` is the one place a batch becomes SQL; every writer of `journal.Journal` calls it:
"inline" on the OMS's thread, "thread" on a writer thread, "process" in a child process running this
file as a script (`serve`). The process writer exists for throughput: on CPython a writer thread
shares the GIL with the OMS (bench/oms.py measured no gain on two cores), while a process runs the
compression, the SQL and the commit on the other core. It imports nothing from polyoms (so it starts
fast and cannot touch trading state): it receives batches already encoded, as plain data.

Pipe protocol (both directions): a 4-byte little-endian length, then msgpack.
    parent → child  ["batch", batch, ack]   batch: see `write_batch`; ack 0 = no reply wanted
                    ["sync", n]             reply once every earlier batch is committed
                    ["close"]               finish and exit (also on end of input: the parent died)
    child → parent  ["ready", pid] · ["ok", n] · ["error", text] · ["closed"]
After a failed write the child writes nothing more (the journal stays a prefix of the inputs) and
answers every later sync with the error. On end of input, batches received whole are written, a torn
last message is not: a killed OMS leaves a journal that ends at a batch boundary, as inline.

The child holds an exclusive lock on `<journal>.writer` while it runs; opening a journal waits for
it (`await_writer_exit`), so an OMS restarted after a crash never reads the file while the previous
life's writer is still committing what it was handed.
"""

from __future__ import annotations

import fcntl
import logging
import os
import signal
import sqlite3
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, BinaryIO, Final

import msgspec
import zstandard

log = logging.getLogger("polyoms.oms.journal")

CHECKPOINT_EVERY: Final = 32
"""Commits between background checkpoints (a batch of ~100 events dirties a handful of pages)."""

INSERT_LOG: Final = "INSERT INTO log VALUES (?, ?, ?, ?)"
UPSERT_ORDER: Final = (
    "INSERT INTO orders VALUES (?, ?, ?, ?, ?) ON CONFLICT (no) DO UPDATE SET state = excluded.state, "
    "record = excluded.record"
)
UPSERT_FILL: Final = (
    "INSERT INTO fills VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (no) DO UPDATE SET status = excluded.status, "
    "tier = excluded.tier, record = excluded.record"
)
UPSERT_POSITION: Final = "INSERT OR REPLACE INTO positions VALUES (?, ?, ?, ?)"
UPSERT_LEDGER: Final = "INSERT OR REPLACE INTO ledgers VALUES (?, ?, ?, ?)"

ZSTD_LEVEL: Final = 1
"""Level 1: a ~15× smaller log for ~0.5 µs of CPU per event (bench/oms.py)."""

Batch = Sequence[Any]
"""(log, orders, fills, ledgers, positions, sync): `log` is (first seq, last seq, inputs, msgpack of
the input rows) or None; the others are the rows of the current-state tables' upserts; `sync` the
`PRAGMA synchronous` level of this commit."""


def lock_path(path: Path) -> Path:
    return path.with_name(path.name + ".writer")


def compressor() -> Callable[[bytes], bytes]:
    return zstandard.ZstdCompressor(level=ZSTD_LEVEL).compress


def write_batch(
    conn: sqlite3.Connection,
    batch: Batch,
    compress: Callable[[bytes], bytes],
    batch_sync: str,
    before_commit: Callable[[], None] | None = None,
) -> None:
    """One transaction: all of the batch or none of it (SQLite's atomicity); re-raises what failed."""
    entry, orders, fills, ledgers, positions, sync = batch
    changed_sync = sync != batch_sync
    try:
        if changed_sync:
            conn.execute(f"PRAGMA synchronous={sync}")
        conn.execute("BEGIN")
        if entry is not None:
            first, last, inputs, data = entry
            conn.execute(INSERT_LOG, (first, last, inputs, compress(data)))
        if orders:
            conn.executemany(UPSERT_ORDER, orders)
        if fills:
            conn.executemany(UPSERT_FILL, fills)
        if ledgers:
            conn.executemany(UPSERT_LEDGER, ledgers)
        if positions:
            conn.executemany(UPSERT_POSITION, positions)
        if before_commit is not None:
            before_commit()
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    finally:
        if changed_sync:
            conn.execute(f"PRAGMA synchronous={batch_sync}")


class Checkpointer:
    """Copies the WAL back into the database file on its own thread and connection, when woken.

    PASSIVE checkpoints never block the writer (WAL mode lets them run side by side) and SQLite releases
    the GIL for the whole call, so the writer neither waits for one nor loses CPU to it on a multi-core
    machine. A failed checkpoint loses nothing (the WAL just grows until the next one)."""

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


def await_writer_exit(path: Path, timeout_s: float) -> bool:
    """Wait until no writer process holds `path`'s journal (the previous life's, after a crash);
    False if one still does after `timeout_s`. Instant when none was ever started for it."""
    lock = lock_path(path)
    if not lock.exists():
        return True
    deadline = time.monotonic() + timeout_s
    with open(lock, "a+b") as f:
        while True:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    return False
                time.sleep(0.01)
                continue
            fcntl.flock(f, fcntl.LOCK_UN)
            return True


# --- framing ---------------------------------------------------------------------------------------

_encode: Final = msgspec.msgpack.Encoder().encode
_decode: Final = msgspec.msgpack.decode


def frame(message: Any) -> list[bytes]:
    """The message's header and body (written with one writev: a batch is ~100 KB, not copied again)."""
    body = _encode(message)
    return [len(body).to_bytes(4, "little"), body]


def read_frame(stream: BinaryIO) -> Any | None:
    """The next message, or None at end of input (a torn message counts as the end)."""
    header = stream.read(4)
    if len(header) < 4:
        return None
    n = int.from_bytes(header, "little")
    body = stream.read(n)
    if len(body) < n:
        return None
    return _decode(body)


# --- the child process -----------------------------------------------------------------------------


def serve(path: Path, batch_sync: str, inp: BinaryIO, out: BinaryIO) -> None:
    parent_gone = False

    def reply(message: Any) -> None:
        nonlocal parent_gone
        if parent_gone:
            return
        try:
            out.write(b"".join(frame(message)))
            out.flush()
        except OSError:  # BrokenPipeError: the parent died; what it handed over is still written
            parent_gone = True

    lock = open(lock_path(path), "a+b")  # noqa: SIM115  (held until the process exits)
    fcntl.flock(lock, fcntl.LOCK_EX)
    try:
        conn = sqlite3.connect(path, isolation_level=None)
        conn.execute(f"PRAGMA synchronous={batch_sync}")
        conn.execute("PRAGMA wal_autocheckpoint=0")
        checkpointer = Checkpointer(path)
    except Exception as exc:
        reply(["error", f"cannot open journal {path}: {exc}"])
        return
    reply(["ready", os.getpid()])
    compress = compressor()
    failed = ""
    commits = 0
    try:
        while True:
            msg = read_frame(inp)
            if msg is None or msg[0] == "close":
                break
            if msg[0] == "batch":
                _tag, batch, ack = msg
                if not failed:
                    try:
                        write_batch(conn, batch, compress, batch_sync)
                    except Exception as exc:
                        failed = f"{type(exc).__name__}: {exc}"
                        reply(["error", failed])
                    else:
                        commits += 1
                        if commits % CHECKPOINT_EVERY == 0:
                            checkpointer.wake.set()
                if ack and not failed:
                    reply(["ok", ack])
            elif msg[0] == "sync":
                reply(["error", failed] if failed else ["ok", msg[1]])
    finally:
        checkpointer.close()
        conn.close()
        # Released only now, with every batch committed and the file closed: the next opener may read.
        fcntl.flock(lock, fcntl.LOCK_UN)
        lock.close()
    reply(["closed"])


def main(argv: list[str]) -> int:
    path, batch_sync = Path(argv[1]), argv[2]
    # The parent's end of the pipe decides when this process ends: a Ctrl-C or a SIGTERM sent to the
    # whole group must not cut off the journal before the parent's graceful stop has flushed it.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    out = os.fdopen(os.dup(1), "wb")
    # Replies own the real stdout; a stray print must not corrupt the protocol.
    os.dup2(2, 1)
    serve(path, batch_sync, sys.stdin.buffer, out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
