"""Journal and recovery: WAL mode, batched and synchronous commits, recovery equal to the state before
the crash at random points (exceptions mid-batch, a copy cut at a random commit, a killed process),
mismatch detection, failure → halt, and no secrets on disk."""

from __future__ import annotations

import os
import random
import shutil
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import msgspec
import pytest
import zstandard

from polyoms.core.clock import VirtualClock
from polyoms.core.enums import Side
from polyoms.core.units import MICRO
from polyoms.core.user_events import OrderEventType as E
from polyoms.core.user_events import TradeStatus as T
from polyoms.oms.errors import JournalError, JournalMismatchError
from polyoms.oms.journal import Journal, open_journal
from polyoms.oms.journal_recovery import committed_rows, recover, verify_tables
from polyoms.oms.oms_state import OmsState
from polyoms.oms.state import OrderState, intent_from_prepared
from polyoms.polymarket.protocol.auth import ApiCreds, l2_headers
from polyoms.polymarket.protocol.keys import Signer
from polyoms.polymarket.protocol.order import OrderBuilder
from polyoms.polymarket.protocol.wire import post_order_body
from polyoms.venues import polymarket_orders

from .history import History, bootstrap, fresh_state, play, replay_to
from .oms_helpers import OWNER, START_MS, intent, new_state, oid, order_event, trade

S = OrderState
SEEDS = 60


class Crash(Exception):
    """A stand-in for the process dying between the writes of a batch and its COMMIT."""


def _count(conn: sqlite3.Connection, kind: str, order_id: str | None = None) -> int:
    """Committed inputs of `kind` (for `order_id`) as another connection sees them."""
    return sum(1 for r in committed_rows(conn) if r[2] == kind and (order_id is None or r[3] == order_id))


def _journaled(path: Path, **kw: object) -> tuple[OmsState, Journal]:
    state = fresh_state()
    j = open_journal(path, state, **kw)
    bootstrap(state)
    state.flush(wait=True)
    return state, j


def test_wal_mode_and_schema(tmp_path: Path) -> None:
    _, j = _journaled(tmp_path / "j.sqlite")
    conn = sqlite3.connect(tmp_path / "j.sqlite")
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert j.conn.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL between intents
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"log", "orders", "fills", "positions", "ledgers", "meta"} <= tables
    assert (tmp_path / "j.sqlite-wal").exists()


def test_intent_is_committed_before_submit_returns(tmp_path: Path) -> None:
    for writer in ("inline", "thread"):
        path = tmp_path / f"{writer}.sqlite"
        state, j = _journaled(path, writer=writer)
        i = oid()
        seen: list[str] = []
        # The FULL-durability commit happens for the intent itself: checked from inside the write.

        def spy(batch, _orig=j._write, _seen=seen):  # type: ignore[no-untyped-def]
            _seen.append(batch.sync)
            return _orig(batch)

        j._write = spy  # type: ignore[method-assign]
        state.submit(intent(i))
        other = sqlite3.connect(path)
        assert _count(other, "intent", i) == 1
        assert other.execute("SELECT state FROM orders WHERE order_id = ?", (i,)).fetchone()[0] == "SUBMITTING"
        assert seen == ["FULL"]
        # An event is only committed by a flush.
        state.on_order_event(order_event(i, E.PLACEMENT))
        assert _count(other, "order") == 0
        state.flush(wait=True)
        assert _count(other, "order") == 1
        assert seen == ["FULL", "NORMAL"]
        j.close()


def test_log_lists_inputs_and_effects_in_sequence(tmp_path: Path) -> None:
    state, j = _journaled(tmp_path / "j.sqlite")
    i = oid()
    state.submit(intent(i))
    state.on_ack(i, polymarket_orders.ack(i, "live"))
    state.on_trade_event(trade("t1", i, T.MATCHED, size=3 * MICRO))
    state.on_trade_event(trade("t1", i, T.FAILED, size=3 * MICRO))
    state.flush()
    log = list(j.log())
    assert [r.seq for r in log] == list(range(1, len(log) + 1))
    assert log[-1].seq == state.seq == j.last_seq()
    mine = [(r.kind, r.cause is None) for r in j.log(order_id=i)]
    assert mine == [
        ("intent", True), ("transition", False),
        ("ack", True), ("transition", False),
        ("trade", True), ("fill", False), ("transition", False),  # the trade row is keyed by its taker order
        ("trade", True), ("void", False),
    ]  # fmt: skip
    assert [r.kind for r in j.log(trade_id="t1")] == ["trade", "fill", "trade", "void"]


def _run(seed: int, path: Path, steps: int) -> tuple[OmsState, Journal, dict[int, dict[str, object]]]:
    """A random history on a journal, flushed at random points. Returns the state as it was at every
    commit (by the sequence number the journal then ended at), taken right after the COMMIT."""
    rng = random.Random(seed * 7919)
    state, j = _journaled(path)
    committed: dict[int, dict[str, object]] = {state.seq: state.snapshot()}
    write = j._write

    def spy(batch):  # type: ignore[no-untyped-def]
        write(batch)
        committed[state.seq] = state.snapshot()

    j._write = spy  # type: ignore[method-assign]
    h = History(seed)
    for _ in range(steps):
        h.step(state)
        if rng.random() < 0.15:
            state.flush()
    return state, j, committed


@pytest.mark.parametrize("seed", range(SEEDS))
def test_recovery_after_a_crash_mid_batch_equals_the_last_committed_state(seed: int, tmp_path: Path) -> None:
    """Random history with random commits; the process dies between a batch's writes and its COMMIT
    (the batch is rolled back, as SQLite does for a torn transaction). The recovered state equals the
    state right after the last COMMIT, and the same history replayed in memory to that point."""
    path = tmp_path / "j.sqlite"
    steps = random.Random(seed).randint(20, 150)
    state, j, committed = _run(seed, path, steps)
    state.on_order_event(order_event(oid(), E.PLACEMENT))  # something pending

    def die() -> None:
        raise Crash

    j._before_commit = die  # type: ignore[method-assign]
    last = j.last_seq()
    assert last < state.seq
    with pytest.raises(Crash):
        state.flush()
    assert j.error is not None and state.halted
    with pytest.raises(JournalError):  # after a failed batch nothing more is written
        j.flush()
    j.conn.close()
    recovered = recover(path, VirtualClock(START_MS), attach=False)
    assert recovered.seq == last
    assert recovered.snapshot() == committed[last]
    assert recovered.snapshot() == replay_to(seed, last).snapshot()
    assert recovered.check_invariants() == []


@pytest.mark.parametrize("seed", range(SEEDS))
def test_journal_cut_at_a_random_commit_recovers_the_state_of_that_commit(seed: int, tmp_path: Path) -> None:
    """A copy of the database taken at a random committed point (the journal as a crash would leave
    it), recovered, equals the same history replayed in memory to that point."""
    path = tmp_path / "j.sqlite"
    rng = random.Random(seed * 31)
    steps = rng.randint(30, 150)
    cut_after = rng.randint(1, steps)
    state, j = _journaled(path)
    h = History(seed)
    cut_seq = None
    cut_snapshot = None
    for k in range(steps):
        h.step(state)
        if rng.random() < 0.2 or k + 1 == cut_after:
            state.flush()
            if cut_seq is None and k + 1 >= cut_after:
                copy = sqlite3.connect(tmp_path / "cut.sqlite")
                j.conn.backup(copy)
                copy.close()
                cut_seq, cut_snapshot = state.seq, state.snapshot()
    state.flush()
    assert cut_seq is not None
    recovered = recover(tmp_path / "cut.sqlite", VirtualClock(START_MS), attach=False)
    assert recovered.seq == cut_seq
    assert recovered.snapshot() == cut_snapshot == replay_to(seed, cut_seq).snapshot()
    # And the whole journal recovers the final state.
    final = recover(path, VirtualClock(START_MS), attach=False)
    assert final.snapshot() == state.snapshot()
    assert final.check_invariants() == []


_CHILD = textwrap.dedent(
    """
    import os, sys
    sys.path.insert(0, {root!r})
    from pathlib import Path
    from tests.oms.history import History, bootstrap, fresh_state
    from polyoms.oms.journal import open_journal
    import random
    seed, kill_at = {seed}, {kill_at}
    state = fresh_state()
    j = open_journal(Path({path!r}), state)
    bootstrap(state)
    state.flush()
    h = History(seed)
    rng = random.Random(seed)
    flushes = 0
    def hook():
        if flushes >= kill_at:
            os._exit(9)   # no rollback, no close: like kill -9 between the writes and COMMIT
    j._before_commit = hook
    for _ in range(100_000):
        h.step(state)
        if rng.random() < 0.2:
            flushes += 1
            state.flush()
    """
)


@pytest.mark.parametrize("seed", range(4))
def test_killed_process_recovers_to_its_last_commit(seed: int, tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite"
    root = str(Path(__file__).resolve().parents[2])
    code = _CHILD.format(root=root, seed=seed, kill_at=5 + seed * 3, path=str(path))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(root) / "src"), root])}
    proc = subprocess.run([sys.executable, "-c", code], env=env, timeout=120, capture_output=True)
    assert proc.returncode == 9, proc.stderr.decode()[-2000:]
    recovered = recover(path, VirtualClock(START_MS), attach=False)
    assert recovered.snapshot() == replay_to(seed, recovered.seq).snapshot()
    assert recovered.check_invariants() == []


def test_recover_attach_and_continue(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite"
    state, j, _ = _run(3, path, 80)
    state.flush()
    j.close()
    again = recover(path, VirtualClock(START_MS + 10_000_000))
    assert again.snapshot() == state.snapshot()
    moved = again.after_restart()
    i = oid()
    again.submit(intent(i))
    again.on_trade_event(trade("tz", i, T.MATCHED, size=MICRO))
    again.flush()
    assert again.journal is not None
    again.journal.close()
    third = recover(path, VirtualClock(START_MS + 20_000_000), attach=False)
    assert third.snapshot() == again.snapshot()
    assert all(third.orders[m].state is S.UNKNOWN for m in moved)


def test_a_fresh_state_cannot_take_over_a_used_journal(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite"
    _, j = _journaled(path)
    j.close()
    with pytest.raises(JournalError, match="recover"):
        open_journal(path, fresh_state())


def test_tampered_tables_or_rows_fail_recovery(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite"
    state, j, _ = _run(5, path, 60)
    state.flush()
    j.close()
    shutil.copy(path, tmp_path / "a.sqlite")
    conn = sqlite3.connect(tmp_path / "a.sqlite")
    conn.execute("UPDATE orders SET record = (SELECT record FROM orders ORDER BY no LIMIT 1) WHERE no = 2")
    conn.commit()
    conn.close()
    with pytest.raises(JournalMismatchError):
        recover(tmp_path / "a.sqlite", VirtualClock(START_MS))
    shutil.copy(path, tmp_path / "b.sqlite")
    conn = sqlite3.connect(tmp_path / "b.sqlite")
    conn.execute("DELETE FROM log WHERE first_seq = (SELECT MAX(first_seq) FROM log)")
    conn.commit()
    conn.close()
    with pytest.raises(JournalMismatchError):
        recover(tmp_path / "b.sqlite", VirtualClock(START_MS))
    # A batch missing in the middle: the sequence has a hole.
    shutil.copy(path, tmp_path / "g.sqlite")
    conn = sqlite3.connect(tmp_path / "g.sqlite")
    firsts = [r[0] for r in conn.execute("SELECT first_seq FROM log ORDER BY first_seq")]
    conn.execute("DELETE FROM log WHERE first_seq = ?", (firsts[len(firsts) // 2],))
    conn.commit()
    conn.close()
    with pytest.raises(JournalMismatchError, match="expected seq"):
        recover(tmp_path / "g.sqlite", VirtualClock(START_MS))
    # Unreadable bytes: a damaged batch, and a readable batch holding an undecodable trade.
    shutil.copy(path, tmp_path / "c.sqlite")
    conn = sqlite3.connect(tmp_path / "c.sqlite")
    conn.execute("UPDATE log SET data = x'c1' WHERE first_seq = (SELECT MAX(first_seq) FROM log)")
    conn.commit()
    conn.close()
    with pytest.raises(JournalError, match="cannot be read"):
        recover(tmp_path / "c.sqlite", VirtualClock(START_MS))
    shutil.copy(path, tmp_path / "d.sqlite")
    conn = sqlite3.connect(tmp_path / "d.sqlite")
    first, data = conn.execute("SELECT first_seq, data FROM log ORDER BY first_seq DESC LIMIT 1").fetchone()
    rows = msgspec.msgpack.decode(zstandard.ZstdDecompressor().decompress(data))
    rows = [[*r[:5], b"\xc1", r[6]] if r[2] == "trade" else r for r in rows]
    assert any(r[5] == b"\xc1" for r in rows)
    conn.execute(
        "UPDATE log SET data = ? WHERE first_seq = ?",
        (zstandard.ZstdCompressor().compress(msgspec.msgpack.encode(rows)), first),
    )
    conn.commit()
    conn.close()
    with pytest.raises(JournalError, match="cannot be decoded"):
        recover(tmp_path / "d.sqlite", VirtualClock(START_MS))
    good = recover(path, VirtualClock(START_MS), attach=False)
    assert good.journal is None


def test_verify_tables_reports_nothing_for_a_consistent_journal(tmp_path: Path) -> None:
    state, j, _ = _run(11, tmp_path / "j.sqlite", 100)
    state.flush()
    assert verify_tables(j, state) == []


def test_journal_failure_halts_and_the_unsent_order_is_closed(tmp_path: Path) -> None:
    state = new_state()
    j = Journal(tmp_path / "j.sqlite")
    with pytest.raises(JournalError):
        state.attach_journal(j)  # the state already has inputs the journal lacks
    state = fresh_state()
    j = open_journal(tmp_path / "k.sqlite", state)
    bootstrap(state)
    state.flush()

    def full_disk() -> None:
        raise sqlite3.OperationalError("database or disk is full")

    j._before_commit = full_disk  # type: ignore[method-assign]
    i = oid()
    with pytest.raises(JournalError):
        state.submit(intent(i))
    assert state.halted and state.orders[i].state is S.REJECTED and state.orders[i].reserved_cash == 0
    assert "never sent" in state.orders[i].history[-1].reason
    with pytest.raises(JournalError):
        state.submit(intent(oid()))


# --- no secrets on disk ------------------------------------------------------------------------------

KEY_HEX = "4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318"
SECRET = "Y2FuYXJ5LXNlY3JldC1jYW5hcnktc2VjcmV0LWNhbmFyeQ=="
PASSPHRASE = "canary-passphrase-7f3a9c"


def test_no_secret_ever_reaches_the_journal(tmp_path: Path) -> None:
    signer = Signer("0x" + KEY_HEX)
    creds = ApiCreds(OWNER, SECRET, PASSPHRASE)
    builder = OrderBuilder(signer)
    state = fresh_state()
    path = tmp_path / "j.sqlite"
    j = open_journal(path, state)
    state.add_wallet(signer.address, [creds.api_key])
    state.set_balance(signer.address, cash=1_000 * MICRO)
    signatures = []
    for k in range(5):
        order = builder.limit_micro(10**70 + k, Side.BUY, 500_000, 10 * MICRO, tick=_tick(), salt=k + 1,
                                    timestamp_ms=START_MS)  # fmt: skip
        signatures.append(order.signature[2:])
        body = post_order_body(order, creds.api_key)
        headers = l2_headers(signer.address, creds, START_MS // 1000, "POST", "/order", body)
        assert headers["POLY_PASSPHRASE"] == PASSPHRASE  # the sender holds them; the OMS never sees them
        state.submit(
            intent_from_prepared(polymarket_orders.prepared(order), wallet=signer.address, market="0xm", actor="algo")
        )
        state.on_ack(order.order_id, polymarket_orders.ack(order.order_id, "live"))
        state.on_trade_event(trade(f"t{k}", order.order_id, T.MATCHED, size=MICRO, token=str(10**70 + k),
                                   taker_address=signer.address))  # fmt: skip
    state.flush()
    j.close()
    blob = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.name.startswith("j.sqlite"))
    # The log's batches are compressed on disk: scan what they hold too.
    blob += msgspec.msgpack.encode(list(committed_rows(sqlite3.connect(path))))
    canaries = [KEY_HEX, KEY_HEX.upper(), KEY_HEX[:24], SECRET, SECRET[:20], PASSPHRASE, *signatures]
    for canary in canaries:
        assert canary.encode() not in blob, canary[:12]
        assert bytes.fromhex(canary) not in blob if _is_hex(canary) else True
    assert b"signature" not in blob.lower()
    # What is there is what it should be: the order ids and the API key's public id.
    assert state.orders and all(o.encode() in blob for o in list(state.orders)[:1])
    assert msgspec.msgpack.encode(OWNER) in blob or OWNER.encode() in blob


def _is_hex(text: str) -> bool:
    try:
        bytes.fromhex(text)
    except ValueError:
        return False
    return len(text) >= 32


def _tick():  # type: ignore[no-untyped-def]
    from polyoms.core.units import tick_size

    return tick_size("0.01")


@pytest.mark.parametrize("seed", range(5))
def test_thread_writer_journal_recovers_the_same_state(seed: int, tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite"
    state, j = _journaled(path, writer="thread")
    play(state, seed, 120)
    state.flush(wait=True)
    assert j.last_seq() == state.seq
    j.close()
    recovered = recover(path, VirtualClock(START_MS), attach=False)
    assert recovered.snapshot() == state.snapshot() == replay_to(seed, state.seq).snapshot()


def test_thread_writer_failure_surfaces_on_the_oms_thread_and_halts(tmp_path: Path) -> None:
    state, j = _journaled(tmp_path / "j.sqlite", writer="thread")
    committed = j.last_seq()

    def die() -> None:
        raise sqlite3.OperationalError("disk I/O error")

    j._before_commit = die  # type: ignore[method-assign]
    state.on_order_event(order_event(oid(), E.PLACEMENT))
    state.flush()  # handed over; the failure happens on the writer thread
    with pytest.raises(JournalError, match="disk I/O"):
        state.flush(wait=True)
    assert state.halted
    with pytest.raises(JournalError):
        state.submit(intent(oid()))
    j._before_commit = lambda: None  # type: ignore[method-assign]
    with pytest.raises(JournalError):
        j.wait()
    j.close()
    assert recover(tmp_path / "j.sqlite", VirtualClock(START_MS), attach=False).seq == committed
