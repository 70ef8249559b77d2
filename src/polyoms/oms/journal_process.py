"""The journal's writer process, seen from the OMS: the parent's end of the ring and the pipe.

`Journal(writer="process")` hands each batch to a child process (`journal_writer.py` run as a script,
see `journal_writer.serve` for the protocol and the child's side) so that compression, SQL, commits and
checkpoints run on another core. Batches are copied into a shared-memory ring and only their place goes
down the pipe; replies come back on another pipe. Measurements: docs/performance.md.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import mmap
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, Final

from polyoms.oms.errors import JournalError
from polyoms.oms.journal_writer import Batch, Inbox, encode_message, frame, frame_body

log = logging.getLogger("polyoms.oms.journal")

_OWN_WRITERS: set[Path] = set()
"""Journals whose writer process this process started (opening one of them again must not wait for it)."""
_WRITER_SCRIPT: Final = Path(__file__).with_name("journal_writer.py")
_RING_BYTES: Final = 4 << 20
"""The shared ring: ~40 batches of 100 events. Small, and touched once at start (a fresh page costs a
fault on each side)."""
_REPLY_TIMEOUT_S: Final = 120.0


def started_here(path: Path) -> bool:
    """Whether this process started the writer process of the journal at `path` (opening it again must
    not wait for that writer to exit)."""
    return path.resolve() in _OWN_WRITERS


def _ring_fd() -> int:
    """A file for the shared ring, only in memory where the OS allows (Linux memfd), else an unlinked
    temporary file (macOS): both processes map it."""
    if hasattr(os, "memfd_create"):
        return os.memfd_create("polyoms-journal-ring", os.MFD_CLOEXEC)
    with tempfile.TemporaryFile() as f:
        return os.dup(f.fileno())


class WriterProcess:
    """The parent's end of the writer process (journal_writer.serve): batches go into a shared ring and
    their place down a pipe, replies come back on another; `poll` reads replies without blocking,
    `synced` blocks for one."""

    def __init__(self, path: Path, batch_sync: str) -> None:
        self.error = ""
        self.synced_to = 0
        self._syncs = 0
        self._sent = 0
        """Batches numbered so far (the child's "done" names the last one it took)."""
        self._head = 0
        self._pending: collections.deque[tuple[int, int]] = collections.deque()
        """(batch number, ring bytes it holds), oldest first, for the batches not yet taken."""
        self.ring_bytes = _RING_BYTES
        self._free = self.ring_bytes
        self.wraps = self.piped = self.waits = 0
        """Messages that started over at the ring's start, went through the pipe (too big for the ring),
        or waited for ring space (the writer behind)."""
        fd = _ring_fd()
        try:
            os.ftruncate(fd, self.ring_bytes)
            self._ring = mmap.mmap(fd, self.ring_bytes)
            self._ring.write(bytes(self.ring_bytes))  # every page allocated now, not on the hot path
            self.proc = subprocess.Popen(
                # -P: the script's own directory is not put on sys.path (its modules, named like
                # stdlib ones, would shadow them). The writer needs none of our settings, and none of
                # our secrets: no POLYOMS_* variable reaches it.
                [sys.executable, "-P", str(_WRITER_SCRIPT), str(path), batch_sync, str(fd), str(self.ring_bytes)],
                env={k: v for k, v in os.environ.items() if not k.startswith("POLYOMS_")},
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                close_fds=True,
                pass_fds=(fd,),
                start_new_session=True,  # not in the terminal's process group: Ctrl-C is the parent's
            )
        except OSError as exc:
            raise JournalError(f"cannot start the journal writer process: {exc}") from exc
        finally:
            os.close(fd)  # the mappings keep the memory
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self._in = self.proc.stdin.fileno()
        self._replies = Inbox(self.proc.stdout.fileno())
        reply = self._read(_REPLY_TIMEOUT_S)
        if reply is None or reply[0] != "ready":
            self.proc.kill()
            self.proc.wait()
            why = reply[1] if reply is not None and reply[0] == "error" else "it exited before it was ready"
            raise JournalError(f"journal writer process for {path}: {why}")
        self.path = path.resolve()
        _OWN_WRITERS.add(self.path)

    def send(self, batch: Batch) -> None:
        self._sent += 1
        body = encode_message(["batch", batch, self._sent])
        size = len(body)
        ring = self.ring_bytes
        if size > ring // 4:
            self.piped += 1
            self._pending.append((self._sent, 0))
            self._write(frame_body(body))
            return
        # Contiguous in the ring: a message that would run past its end starts over at offset 0 (the
        # bytes skipped count as used until it is taken).
        offset = self._head
        skip = ring - offset if offset + size > ring else 0
        if self._free < skip + size:
            self.waits += 1
        while self._free < skip + size and not self.error:
            self._read_replies(_REPLY_TIMEOUT_S)  # the writer is behind: wait for it to take some
        if self.error:
            return
        if skip:
            offset = 0
            self.wraps += 1
        self._ring[offset : offset + size] = body
        self._head = offset + size
        self._free -= skip + size
        self._pending.append((self._sent, skip + size))
        self._write(frame(["shm", offset, size]))

    def sync(self) -> None:
        """Block until every batch sent so far is committed (or the writer failed)."""
        self._syncs += 1
        self._write(frame(["sync", self._syncs]))
        while self.synced_to < self._syncs and not self.error:
            self._read_replies(_REPLY_TIMEOUT_S)

    def poll(self) -> None:
        """Read whatever replies are waiting (an error surfaces at the next flush), without blocking."""
        if not self.error:
            self._read_replies(0.0)

    def _write(self, parts: list[bytes]) -> None:
        if self.error:
            return
        try:
            n = os.writev(self._in, parts)
            rest = b"".join(parts)[n:] if n < sum(map(len, parts)) else b""
            while rest:  # a blocking pipe writes everything unless a signal cuts it short
                rest = rest[os.write(self._in, rest) :]
        except OSError as exc:  # BrokenPipeError: the writer died
            self.error = f"the journal writer process is gone ({exc}; exit code {self.proc.poll()})"

    def _taken(self, n: int) -> None:
        """Batches up to `n` were decoded by the child: their ring space is free again."""
        pending = self._pending
        while pending and pending[0][0] <= n:
            self._free += pending.popleft()[1]

    def _read_replies(self, timeout_s: float) -> None:
        """Apply the replies that arrive within `timeout_s` (and any already waiting behind them)."""
        reply = self._read(timeout_s)
        while reply is not None:
            if reply[0] == "done":
                self._taken(reply[1])
            elif reply[0] == "ok":
                self.synced_to = max(self.synced_to, reply[1])
            elif reply[0] == "error":
                self.error = str(reply[1])
            reply = self._read(0.0)

    def _read(self, timeout_s: float) -> Any | None:
        """One reply (waiting up to `timeout_s`), or None: none yet, or the writer is gone (an error)."""
        reply = self._replies.next(timeout_s)
        if reply is None and not self.error:
            if self._replies.eof:
                self.error = f"the journal writer process exited (code {self.proc.wait()})"
            elif timeout_s > 0:
                self.error = f"the journal writer process did not answer within {timeout_s} s"
        return reply

    def close(self) -> None:
        """Finish: every batch handed over is committed before the process exits."""
        if self.proc.poll() is None:
            self._write(frame(["close"]))
            self._end()
        _OWN_WRITERS.discard(self.path)
        if self.error:
            log.warning("journal writer process: %s", self.error)

    def abandon(self) -> None:
        """The parent dies: the child sees the end of its input, commits what it has, and exits."""
        self._end()
        _OWN_WRITERS.discard(self.path)

    def _end(self) -> None:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        with contextlib.suppress(OSError):
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=_REPLY_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc.stdout.close()
        self._ring.close()
