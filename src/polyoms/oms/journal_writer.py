"""The journal's writes to SQLite: one batch per transaction, checkpoints, and the writer process's side.

`write_batches` is the one place a batch becomes SQL; every writer of `journal.Journal` calls it:
"inline" on the OMS's thread, "thread" on a writer thread, "process" in a child process running this
file as a script (`serve`; its parent's end is `journal_process.WriterProcess`). The child imports
nothing from polyoms, so it starts fast and cannot touch trading state: it receives batches already
encoded, as plain data. Why a process: docs/performance.md. The pipe protocol and the child's rules on
failure and exit are on `serve`; the writer's lock on `await_writer_exit`.
"""

from __future__ import annotations

import fcntl
import logging
import mmap
import os
import select
import signal
import sqlite3
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, BinaryIO, Final, NamedTuple

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
UPSERT_PARENT: Final = (
    "INSERT INTO parents VALUES (?, ?, ?, ?, ?) ON CONFLICT (no) DO UPDATE SET state = excluded.state, "
    "record = excluded.record"
)


class Batch(NamedTuple):
    """One transaction's rows, encoded on the OMS's thread (the writer process receives it as a plain
    msgpack array in this order)."""

    log: tuple[int, int, int, bytes] | None
    """(first seq, last seq, inputs, msgpack of the input rows), compressed when written; None: no input."""
    orders: Sequence[tuple[int, str, str, str, bytes]]
    fills: Sequence[tuple[int, str, str, str, str, str, bytes]]
    ledgers: Sequence[tuple[str, int, int, bytes]]
    positions: Sequence[tuple[str, str, int, bytes]]
    sync: str
    """The `PRAGMA synchronous` level of this commit."""
    parents: Sequence[tuple[int, str, str, str, bytes]] = ()
    """(no, parent id, family, state, record) of the `ParentRecord`s written since the last batch."""


ZSTD_LEVEL: Final = 1
"""Level 1: the faster levels save little CPU and write many more bytes (docs/performance.md)."""


def compressor() -> Callable[[bytes], bytes]:
    return zstandard.ZstdCompressor(level=ZSTD_LEVEL).compress


def lock_path(path: Path) -> Path:
    return path.with_name(path.name + ".writer")


_SYNC_RANK: Final = {"OFF": 0, "NORMAL": 1, "FULL": 2, "EXTRA": 3}

GROUP_MAX: Final = 32
"""Batches the writer process commits together at most, when it finds them already waiting."""


def write_batch(
    conn: sqlite3.Connection,
    batch: Batch,
    batch_sync: str,
    compress: Callable[[bytes], bytes],
    before_commit: Callable[[], None] | None = None,
) -> None:
    """One transaction: all of the batch or none of it (SQLite's atomicity); re-raises what failed."""
    write_batches(conn, [batch], batch_sync, compress, before_commit)


def write_batches(
    conn: sqlite3.Connection,
    batches: Sequence[Sequence[Any]],
    batch_sync: str,
    compress: Callable[[bytes], bytes],
    before_commit: Callable[[], None] | None = None,
) -> None:
    """Several batches (each a `Batch`, or the plain array the writer process decoded one as), in order,
    as one transaction (a group commit): each batch keeps its own log row, a record upserted by several
    takes the last one's row, and the commit is as durable as the most demanding batch asked. All or
    nothing, so the journal still ends at a batch boundary."""
    if len(batches) == 1:
        entries = [batches[0][0]] if batches[0][0] is not None else []
        orders, fills, ledgers, positions = batches[0][1:5]
        sync = batches[0][5]
        parents = batches[0][6]
    else:
        entries = [b[0] for b in batches if b[0] is not None]
        o: dict[Any, Any] = {}
        f: dict[Any, Any] = {}
        lg: dict[Any, Any] = {}
        ps: dict[Any, Any] = {}
        pa: dict[Any, Any] = {}
        for b in batches:
            o.update((r[0], r) for r in b[1])
            f.update((r[0], r) for r in b[2])
            lg.update((r[0], r) for r in b[3])
            ps.update(((r[0], r[1]), r) for r in b[4])
            pa.update((r[0], r) for r in b[6])
        orders, fills, ledgers, positions = list(o.values()), list(f.values()), list(lg.values()), list(ps.values())
        parents = list(pa.values())
        sync = max((b[5] for b in batches), key=_SYNC_RANK.__getitem__)
    changed_sync = sync != batch_sync
    try:
        if changed_sync:
            conn.execute(f"PRAGMA synchronous={sync}")
        conn.execute("BEGIN")
        if entries:
            conn.executemany(INSERT_LOG, [(first, last, n, compress(data)) for first, last, n, data in entries])
        if orders:
            conn.executemany(UPSERT_ORDER, orders)
        if fills:
            conn.executemany(UPSERT_FILL, fills)
        if ledgers:
            conn.executemany(UPSERT_LEDGER, ledgers)
        if positions:
            conn.executemany(UPSERT_POSITION, positions)
        if parents:
            conn.executemany(UPSERT_PARENT, parents)
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
    False if one still does after `timeout_s`. Instant when none was ever started for it.

    The child holds an exclusive lock on `<journal>.writer` (`lock_path`) while it runs; opening a
    journal waits for it, so an OMS restarted after a crash never reads the file while the previous
    life's writer is still committing what it was handed."""
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


def encode_message(message: Any) -> bytes:
    return _encode(message)


def frame_body(body: bytes) -> list[bytes]:
    """An encoded message's header and body (written with one writev: the body is not copied again)."""
    return [len(body).to_bytes(4, "little"), body]


def frame(message: Any) -> list[bytes]:
    return frame_body(_encode(message))


class Inbox:
    """Messages from a file descriptor, whole ones only; both ends read with it. `next(timeout_s=0)`
    takes one only if it has already arrived (how the writer finds batches waiting, to commit them
    together)."""

    def __init__(self, fd: int, ring: mmap.mmap | None = None) -> None:
        self.fd = fd
        self.buf = bytearray()
        self.eof = False
        self.held: Any | None = None
        self.ring = memoryview(ring) if ring is not None else None

    def next(self, timeout_s: float | None = None) -> Any | None:
        """The next message; None at end of input (`eof`; a torn last message counts as the end) or when
        none arrived within `timeout_s` (None: wait as long as it takes)."""
        if self.held is not None:
            msg, self.held = self.held, None
            return msg
        while True:
            buf = self.buf
            if len(buf) >= 4:
                n = int.from_bytes(buf[:4], "little")
                if len(buf) >= 4 + n:
                    msg = _decode(memoryview(buf)[4 : 4 + n])
                    del buf[: 4 + n]
                    if msg[0] == "shm" and self.ring is not None:  # the message itself is in the ring
                        _tag, offset, size = msg
                        msg = _decode(self.ring[offset : offset + size])
                    return msg
            if self.eof or (timeout_s is not None and not select.select([self.fd], [], [], timeout_s)[0]):
                return None
            chunk = os.read(self.fd, 1 << 20)
            if not chunk:
                self.eof = True
                return None
            buf += chunk

    def hold(self, msg: Any) -> None:
        """Put back one message taken too early: it comes out of `next` first."""
        self.held = msg


# --- the child process -----------------------------------------------------------------------------


def serve(path: Path, batch_sync: str, inp: Inbox, out: BinaryIO) -> None:
    """The writer process's loop: batches from `inp` committed to the journal at `path`, answers to `out`.

    Pipe protocol (both directions): a 4-byte little-endian length, then msgpack.
        parent → child  ["shm", offset, size]   the next message is in the shared ring at offset
                        ["batch", batch, n]     batch: see `Batch`; n numbers it
                        ["sync", n]             reply once every earlier batch is committed
                        ["close"]               finish and exit (also on end of input: the parent died)
        child → parent  ["ready", pid] · ["done", n] (batches up to n taken: their ring space is free) ·
                        ["ok", n] (sync n: every earlier batch committed) · ["error", text] · ["closed"]
    Batches travel through a shared-memory ring (a memfd both map) and only their place through the pipe
    (a large pipe write stalls while the reader contends for the pipe). The parent writes a message into
    the ring before it names it on the pipe, and reuses space only once "done" says the child has decoded
    it; a message too big for the ring goes through the pipe.
    Batches already waiting when the child takes one are committed with it as one transaction (a group
    commit, `write_batches`): whole batches only, so the journal still ends at a batch boundary. After a
    failed write the child writes nothing more (the journal stays a prefix of the inputs) and answers
    every later sync with the error. On end of input, batches received whole are written, a torn
    last message is not: a killed OMS leaves a journal that ends at a batch boundary, as inline.
    """
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

    # Held until the process exits; created readable by its owner only, like every file of the journal.
    lock = os.fdopen(os.open(lock_path(path), os.O_RDWR | os.O_CREAT, 0o600), "r+b")
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
            msg = inp.next()
            if msg is None or msg[0] == "close":
                break
            if msg[0] == "sync":
                reply(["error", failed] if failed else ["ok", msg[1]])
                continue
            # A batch, and every batch already waiting behind it: one commit for all of them (when the
            # OMS runs ahead, the writer catches up with fewer, larger transactions).
            group = [msg]
            while len(group) < GROUP_MAX:
                more = inp.next(timeout_s=0)
                if more is None:
                    break
                if more[0] != "batch":
                    inp.hold(more)
                    break
                group.append(more)
            if not failed:
                try:
                    write_batches(conn, [m[1] for m in group], batch_sync, compress)
                except Exception as exc:
                    failed = f"{type(exc).__name__}: {exc}"
                    reply(["error", failed])
                else:
                    commits += 1
                    if commits % CHECKPOINT_EVERY == 0:
                        checkpointer.wake.set()
            # Always answered, failed or not: the parent reuses the ring space of what was taken.
            reply(["done", group[-1][2]])
    finally:
        checkpointer.close()
        conn.close()
        # Released only now, with every batch committed and the file closed: the next opener may read.
        fcntl.flock(lock, fcntl.LOCK_UN)
        lock.close()
    reply(["closed"])


def main(argv: list[str]) -> int:
    path, batch_sync, ring_fd, ring_size = Path(argv[1]), argv[2], int(argv[3]), int(argv[4])
    ring = mmap.mmap(ring_fd, ring_size)
    # The parent's end of the pipe decides when this process ends: a Ctrl-C or a SIGTERM sent to the
    # whole group must not cut off the journal before the parent's graceful stop has flushed it.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    out = os.fdopen(os.dup(1), "wb")
    # Replies own the real stdout; a stray print must not corrupt the protocol.
    os.dup2(2, 1)
    serve(path, batch_sync, Inbox(0, ring), out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
