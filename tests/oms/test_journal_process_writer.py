"""The journal's writer process (Journal(writer="process")): same journal as inline, intents durable before
submit returns, failures and a dead writer halt the OMS, and a killed OMS leaves a writer that commits what
it was handed, then lets the next life open the file."""

from __future__ import annotations

import contextlib
import fcntl
import os
import random
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from polyoms.core.clock import VirtualClock
from polyoms.core.user_events import OrderEventType as E
from polyoms.oms import journal_process
from polyoms.oms.errors import JournalError
from polyoms.oms.journal import Journal, open_journal
from polyoms.oms.journal_recovery import committed_rows, recover
from polyoms.oms.journal_writer import Batch, compressor, lock_path, write_batches
from polyoms.oms.oms_state import OmsState

from .history import bootstrap, fresh_state, play, replay_to
from .oms_helpers import START_MS, intent, oid, order_event


def _journaled(path: Path) -> tuple[OmsState, Journal]:
    state = fresh_state()
    j = open_journal(path, state, writer="process")
    bootstrap(state)
    state.flush(wait=True)
    return state, j


@pytest.mark.parametrize("seed", range(4))
def test_process_writer_journal_is_the_inline_journal(seed: int, tmp_path: Path) -> None:
    states = {}
    for writer in ("inline", "process"):
        path = tmp_path / f"{writer}.sqlite"
        state = fresh_state()
        j = open_journal(path, state, writer=writer)
        bootstrap(state)
        play(state, seed, 150)
        state.flush(wait=True)
        assert j.last_seq() == state.seq
        j.close()
        recovered = recover(path, VirtualClock(START_MS), attach=False)
        assert recovered.snapshot() == state.snapshot() == replay_to(seed, state.seq).snapshot()
        states[writer] = [r[:6] for r in committed_rows(sqlite3.connect(path))]
    assert states["process"] == states["inline"]  # the same inputs in the same order, byte for byte


def test_intent_is_committed_before_submit_returns(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite"
    state, j = _journaled(path)
    other = sqlite3.connect(path)
    i = oid()
    state.submit(intent(i))
    assert [r[3] for r in committed_rows(other) if r[2] == "intent"] == [i]
    state.on_order_event(order_event(i, E.PLACEMENT))
    state.flush(wait=True)
    assert sum(1 for r in committed_rows(other) if r[2] == "order") == 1
    j.close()
    assert not (j._process and j._process.proc.poll() is None)


def test_a_failed_write_halts_and_keeps_the_journal_a_prefix(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite"
    state, j = _journaled(path)
    committed = j.last_seq()
    assert j._process is not None
    # A batch the database refuses (its log key already exists): the writer reports it and stops.
    j._process.send(Batch((1, 1, 1, b"\x90"), [], [], [], [], "NORMAL"))
    state.on_order_event(order_event(oid(), E.PLACEMENT))
    with contextlib.suppress(JournalError):  # raised here if the writer's answer is already back
        state.flush()
    with pytest.raises(JournalError, match="UNIQUE"):
        state.flush(wait=True)
    assert state.halted
    with pytest.raises(JournalError):
        state.submit(intent(oid()))
    j.close()
    assert recover(path, VirtualClock(START_MS), attach=False).seq == committed


def test_a_dead_writer_process_halts_the_oms(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite"
    state, j = _journaled(path)
    committed = j.last_seq()
    assert j._process is not None
    j._process.proc.kill()
    j._process.proc.wait()
    state.on_order_event(order_event(oid(), E.PLACEMENT))
    with pytest.raises(JournalError, match="writer process"):
        state.flush(wait=True)
    assert state.halted
    j.close()
    assert recover(path, VirtualClock(START_MS), attach=False).seq == committed


def test_opening_waits_for_another_writer_and_gives_up_clearly(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite"
    Journal(path).close()
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import fcntl, sys, time; f = open(sys.argv[1], 'a+b'); fcntl.flock(f, fcntl.LOCK_EX);"
            " print('locked', flush=True); time.sleep(30)",
            str(lock_path(path)),
        ],
        stdout=subprocess.PIPE,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == b"locked\n"
        with pytest.raises(JournalError, match="still being written"):
            Journal(path, writer_wait_s=0.2)
    finally:
        holder.kill()
        holder.wait()
    Journal(path, writer_wait_s=5).close()  # released: opens at once
    with open(lock_path(path), "a+b") as f:  # and nothing holds the lock any more
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)


_CHILD = textwrap.dedent(
    """
    import os, sys
    sys.path.insert(0, {root!r})
    from pathlib import Path
    from tests.oms.history import History, bootstrap, fresh_state
    from polyoms.oms.journal import open_journal
    import random
    seed = {seed}
    state = fresh_state()
    j = open_journal(Path({path!r}), state, writer="process")
    bootstrap(state)
    state.flush(wait=True)
    print(j._process.proc.pid, flush=True)
    h = History(seed)
    rng = random.Random(seed)
    for n in range(100_000):
        h.step(state)
        if rng.random() < 0.2:
            state.flush()
        if n % 50 == 0:
            state.flush(wait=True)
            print("synced", state.seq, flush=True)
    """
)


def _running(pid: int) -> bool:
    """Alive and not a zombie (an orphan's exit status may never be collected in a container)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


@pytest.mark.parametrize("seed", range(4))
def test_a_killed_oms_leaves_a_journal_its_writer_finishes(seed: int, tmp_path: Path) -> None:
    """SIGKILL of the OMS process mid-stream: its writer commits every batch it received whole, exits,
    and only then can the next life open the journal; it recovers to a prefix of the history at least as
    long as the last synced point."""
    path = tmp_path / "j.sqlite"
    root = str(Path(__file__).resolve().parents[2])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(root) / "src"), root])}
    proc = subprocess.Popen(
        [sys.executable, "-c", _CHILD.format(root=root, seed=seed, path=str(path))],
        env=env,
        stdout=subprocess.PIPE,
    )
    assert proc.stdout is not None
    writer_pid = int(proc.stdout.readline())
    synced = 0
    rng = random.Random(seed)
    for _ in range(rng.randint(3, 12)):
        line = proc.stdout.readline().split()
        synced = int(line[1])
    time.sleep(rng.random() * 0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    recovered = recover(path, VirtualClock(START_MS), attach=False, writer_wait_s=60)
    # The writer released the journal with everything committed; its process ends right after.
    deadline = time.monotonic() + 10
    while _running(writer_pid) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not _running(writer_pid)
    assert recovered.seq >= synced
    assert recovered.snapshot() == replay_to(seed, recovered.seq).snapshot()
    assert recovered.check_invariants() == []


@pytest.mark.parametrize("seed", range(4))
def test_a_group_commit_is_the_same_journal_as_one_commit_per_batch(seed: int, tmp_path: Path) -> None:
    """write_batches (what the writer process does with batches it finds waiting): several batches in
    one transaction, a record touched by several keeping the last one's row."""
    held: list[Batch] = []
    path = tmp_path / "grouped.sqlite"
    state = fresh_state()
    j = open_journal(path, state)
    bootstrap(state)
    state.flush()
    j._write = held.append  # type: ignore[method-assign]
    play(state, seed, 200, flush_p=0.3)
    state.flush()
    assert len(held) > 10
    write_batches(j.conn, held[:7], "NORMAL", compressor())
    write_batches(j.conn, held[7:], "NORMAL", compressor())
    j._write = Journal._write.__get__(j)  # type: ignore[method-assign]
    j.close()
    recovered = recover(path, VirtualClock(START_MS), attach=False)  # verifies the tables too
    assert recovered.snapshot() == state.snapshot() == replay_to(seed, state.seq).snapshot()


def test_the_writer_process_gets_no_secret(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POLYOMS_PRIVATE_KEY", "0x" + "ab" * 32)
    monkeypatch.setenv("POLYOMS_API_SECRET", "canary-secret")
    _, j = _journaled(tmp_path / "j.sqlite")
    assert j._process is not None
    environ = Path(f"/proc/{j._process.proc.pid}/environ").read_bytes()
    assert b"POLYOMS_" not in environ and b"canary-secret" not in environ
    j.close()


def test_a_small_ring_wraps_and_pipes_big_batches(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Messages start over at the ring's start, and one too big for it goes through the pipe: the
    journal is the same as ever."""
    monkeypatch.setattr(journal_process, "_RING_BYTES", 48 * 1024)
    path = tmp_path / "j.sqlite"
    state, j = _journaled(path)
    assert j._process is not None and j._process.ring_bytes == 48 * 1024
    play(state, 11, 1500, flush_p=0.08)
    state.flush(wait=True)
    assert j._process.wraps > 0 and j._process.piped > 0, (j._process.wraps, j._process.piped)
    j.close()
    recovered = recover(path, VirtualClock(START_MS), attach=False)
    assert recovered.snapshot() == state.snapshot() == replay_to(11, state.seq).snapshot()


def test_the_oms_waits_for_ring_space_when_the_writer_is_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(journal_process, "_RING_BYTES", 64 * 1024)
    _, j = _journaled(tmp_path / "j.sqlite")
    process = j._process
    assert process is not None
    # 10 KB batches sent back to back: the writer commits each in far more time than a send takes.
    for k in range(80):
        process.send(Batch(None, [], [], [(f"w{k}", k, 0, bytes(10_000))], [], "NORMAL"))
    process.sync()
    assert process.waits > 0 and not process.error
    assert j.conn.execute("SELECT count(*) FROM ledgers WHERE wallet LIKE 'w%'").fetchone() == (80,)
    j.close()


def test_without_memfd_the_ring_is_an_unlinked_temporary_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(os, "memfd_create")
    path = tmp_path / "j.sqlite"
    state, j = _journaled(path)
    play(state, 3, 200)
    state.flush(wait=True)
    j.close()
    assert recover(path, VirtualClock(START_MS), attach=False).snapshot() == state.snapshot()
