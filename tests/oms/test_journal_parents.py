"""The journal's parent records (oms.journal.ParentRecord) with every writer, the schema upgrade from
version 3 and the refusal of older ones, and the journal's files being private (0600)."""

from __future__ import annotations

import os
import sqlite3
import stat
from pathlib import Path

import pytest

from polyoms.oms.errors import JournalError
from polyoms.oms.journal import SCHEMA_VERSION, Journal, ParentRecord, open_journal
from polyoms.oms.journal_recovery import recover
from polyoms.oms.journal_writer import compressor, write_batches

from .history import bootstrap, fresh_state

WRITERS = ("inline", "thread", "process")


def record(pid: str, no: int, **kw: object) -> ParentRecord:
    spec = {"type": "IcebergSpec", "fields": {"token_id": "1", "size": 10_000_000, "pause_ms": [1, 2]}}
    return ParentRecord(
        parent_id=pid, no=no, family="algo", kind="iceberg", spec=spec, on_restart="resume", started_ms=5, **kw
    )


@pytest.mark.parametrize("writer", WRITERS)
def test_parent_records_are_committed_and_read_back(tmp_path: Path, writer: str) -> None:
    path = tmp_path / "j.sqlite"
    state = fresh_state()
    j = open_journal(path, state, writer=writer)
    bootstrap(state)
    j.commit_parent(record("iceberg-1", 1))
    # Committed: another connection sees it now.
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT parent_id, family, state FROM parents").fetchall() == [
            ("iceberg-1", "algo", "WORKING")
        ]
    j.put_parent(record("adaptive-2", 2))
    j.put_parent(record("iceberg-1", 1, state="CANCELLED", ended_ms=9, interrupted=True, restarts=1))
    state.flush(wait=True)
    got = j.parents()
    assert [r.parent_id for r in got] == ["iceberg-1", "adaptive-2"]
    assert got[0] == record("iceberg-1", 1, state="CANCELLED", ended_ms=9, interrupted=True, restarts=1)
    assert got[0].ended and got[0].actor == "algo:iceberg-1" and not got[1].ended
    assert got[1].spec == record("x", 0).spec  # plain data, as given
    j.close()
    again = recover(path, writer=writer)
    try:
        assert again.journal is not None and again.journal.parents() == got
    finally:
        again.journal.close()


def test_a_group_commit_keeps_the_last_version_of_a_parent(tmp_path: Path) -> None:
    """write_batches (the writer process's group commit): a record written by two batches ends as the later one."""
    path = tmp_path / "j.sqlite"
    state = fresh_state()
    j = open_journal(path, state)
    first, second = record("iceberg-1", 1), record("iceberg-1", 1, state="DONE", ended_ms=7)
    batches: list[tuple[object, ...]] = [
        (None, [], [], [], [], "NORMAL", [(1, "iceberg-1", "algo", r.state, j.encode(r))]) for r in (first, second)
    ]
    write_batches(j.conn, batches, "NORMAL", compressor())
    assert j.parents() == [second]
    j.close()


def _downgrade(path: Path, version: int) -> None:
    """Make the file look like one written by an older polyoms (no parents table)."""
    with sqlite3.connect(path) as conn:
        conn.execute("DROP TABLE parents")
        conn.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(version),))


def test_a_version_3_journal_is_upgraded_in_place_and_older_ones_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite"
    state = fresh_state()
    j = open_journal(path, state)
    bootstrap(state)
    state.flush(wait=True)
    seq = state.seq
    j.close()
    _downgrade(path, 3)
    upgraded = recover(path)  # the OMS's history replays as before
    assert upgraded.seq == seq and upgraded.journal is not None and upgraded.journal.parents() == []
    upgraded.journal.close()
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone() == (str(SCHEMA_VERSION),)
    _downgrade(path, 2)
    with pytest.raises(JournalError, match="schema version 2"):
        Journal(path)
    with sqlite3.connect(path) as conn:  # refused without changing anything
        assert conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone() == ("2",)
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        assert "parents" not in tables


def _modes(directory: Path) -> dict[str, int]:
    return {p.name: stat.S_IMODE(p.stat().st_mode) for p in directory.iterdir()}


@pytest.mark.parametrize("writer", WRITERS)
def test_every_file_of_the_journal_is_private(tmp_path: Path, writer: str) -> None:
    old = os.umask(0o022)  # the usual umask: files would be 0644 unless created otherwise
    try:
        d = tmp_path / "state"
        d.mkdir(mode=0o700)
        path = d / "journal.sqlite"
        state = fresh_state()
        j = open_journal(path, state, writer=writer)
        bootstrap(state)
        j.commit_parent(record("iceberg-1", 1))
        state.flush(wait=True)
        modes = _modes(d)
        expected = {"journal.sqlite", "journal.sqlite-wal", "journal.sqlite-shm"}
        if writer == "process":
            expected.add("journal.sqlite.writer")
        assert expected <= set(modes), modes
        assert all(mode == 0o600 for mode in modes.values()), {k: oct(v) for k, v in modes.items()}
        j.close()
        # Files left readable by an older version are tightened when opened.
        for f in d.iterdir():  # the -wal and -shm went away with the last connection
            os.chmod(f, 0o644)
        again = recover(path, writer=writer)
        assert again.journal is not None
        assert all(mode == 0o600 for mode in _modes(d).values()), _modes(d)
        again.journal.close()
    finally:
        os.umask(old)
