"""Journals written before schema version 5: their `ack` rows hold Polymarket's POST /order answer.

Recovery reads such a row as what the OMS journals today (`journal_recovery.decode_input`): an
acceptance as an `AckInput` with the domain's `Ack`, a refusal as a `RejectInput`. The schema-4 rows
here are built by hand, as msgpack of the old shape."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import msgspec
import pytest
import zstandard

from polyoms.core.clock import VirtualClock
from polyoms.core.enums import OrderType
from polyoms.core.units import MICRO
from polyoms.core.user_events import OrderStatus
from polyoms.core.venue import Ack
from polyoms.oms import inputs
from polyoms.oms.inputs import AckInput, RejectInput
from polyoms.oms.journal import SCHEMA_VERSION, open_journal
from polyoms.oms.journal_recovery import decode_input, recover
from polyoms.oms.oms_state import OmsState
from polyoms.oms.state import OrderState

from .oms_helpers import OWNER, START_MS, WALLET, intent, oid

ACTOR = "venue:rest"


def legacy_ack(order_id: str, **response: Any) -> dict[str, Any]:
    """An `ack` payload as schema 4 wrote it: {order_id, response: OrderResponse, actor}."""
    answer = {
        "success": True,
        "errorMsg": "",
        "orderID": order_id,
        "status": "",
        "makingAmount": "",
        "takingAmount": "",
        "transactionsHashes": None,
        "tradeIDs": None,
    }
    return {"order_id": order_id, "response": answer | response, "actor": ACTOR}


CASES: list[tuple[dict[str, Any], str, Any]] = [
    ({"status": "live"}, inputs.K_ACK, Ack(OrderStatus.LIVE, "0xa", (), "live")),
    (
        {"status": "matched", "tradeIDs": ["t1", "t2"], "makingAmount": "5", "transactionsHashes": ["0x1"]},
        inputs.K_ACK,
        Ack(OrderStatus.MATCHED, "0xa", ("t1", "t2"), "matched"),
    ),
    ({"status": "delayed"}, inputs.K_ACK, Ack(OrderStatus.DELAYED, "0xa", (), "delayed")),
    ({"status": "weird"}, inputs.K_ACK, Ack(None, "0xa", (), "weird")),
    ({"status": ""}, inputs.K_ACK, Ack(None, "0xa", (), "")),
    ({"success": False}, inputs.K_REJECT, RejectInput("0xa", "Rejected", "success=false", None, ACTOR)),
    (
        {"success": False, "errorMsg": "not enough balance"},
        inputs.K_REJECT,
        RejectInput("0xa", "Rejected", "not enough balance", None, ACTOR),
    ),
    ({"errorMsg": "order couldn't be fully filled"}, inputs.K_REJECT, None),
    ({"errorMsg": "partly", "status": "live"}, inputs.K_ACK, Ack(OrderStatus.LIVE, "0xa", (), "live")),
]


@pytest.mark.parametrize(("response", "kind", "expected"), CASES)
def test_a_legacy_ack_row_reads_as_todays_input(response: dict[str, Any], kind: str, expected: Any) -> None:
    got_kind, got = decode_input(inputs.K_ACK, msgspec.msgpack.encode(legacy_ack("0xa", **response)))
    assert got_kind == kind
    if expected is None:  # an error without a status: refused, with the venue's words
        expected = RejectInput("0xa", "Rejected", response["errorMsg"], None, ACTOR)
    if isinstance(expected, Ack):
        expected = AckInput("0xa", expected, ACTOR)
    assert got == expected


def test_todays_ack_rows_read_as_they_were_written() -> None:
    inp = AckInput("0xa", Ack(OrderStatus.MATCHED, "0xa", ("t1",), "matched"), ACTOR)
    assert decode_input(inputs.K_ACK, msgspec.msgpack.encode(inp)) == (inputs.K_ACK, inp)


def _as_schema_4(path: Path, legacy: dict[str, dict[str, Any]]) -> None:
    """Rewrite the journal at `path` as an older polyoms would have left it: the answer rows of the
    orders in `legacy` become `ack` rows with the given old-shape payloads, and the version says 4."""
    compress = zstandard.ZstdCompressor().compress
    decompress = zstandard.ZstdDecompressor().decompress
    with sqlite3.connect(path) as conn:
        for first, data in conn.execute("SELECT first_seq, data FROM log").fetchall():
            rows = msgspec.msgpack.decode(decompress(data))
            for row in rows:  # [seq, ts_ms, kind, order_id, trade_id, payload, effects]
                if row[2] in (inputs.K_ACK, inputs.K_REJECT) and row[3] in legacy:
                    row[2], row[5] = inputs.K_ACK, legacy.pop(row[3])
            conn.execute("UPDATE log SET data = ? WHERE first_seq = ?", (compress(msgspec.msgpack.encode(rows)), first))
        conn.execute("UPDATE meta SET value = '4' WHERE key = 'schema_version'")
    assert not legacy, "every legacy row replaced one"


def test_a_schema_4_journal_with_old_acks_recovers_and_is_upgraded(tmp_path: Path) -> None:
    """Live, the orders take today's inputs (what the old answers convert to); the file is then
    rewritten with the old answers. Recovery must rebuild the same state, and the tables agree."""
    path = tmp_path / "j.sqlite"
    state = OmsState(VirtualClock(START_MS))
    j = open_journal(path, state)
    state.add_wallet(WALLET, [OWNER])
    state.set_balance(WALLET, cash=10_000 * MICRO)
    ids = [oid() for _ in range(5)]
    for i in ids[:4]:
        state.submit(intent(i))
    fok = ids[4]
    state.submit(intent(fok, order_type=OrderType.FOK))
    legacy: dict[str, dict[str, Any]] = {}

    def answered(order_id: str, converted: Ack | str, **response: Any) -> None:
        if isinstance(converted, Ack):
            state.on_ack(order_id, converted, ACTOR)
        else:
            state.on_reject(order_id, converted, ACTOR)
        legacy[order_id] = legacy_ack(order_id, **response)

    answered(ids[0], Ack(OrderStatus.LIVE, ids[0], (), "live"), status="live")
    answered(ids[1], Ack(None, ids[1], (), "weird"), status="weird")
    answered(ids[2], "success=false", success=False)
    answered(ids[3], "no match", errorMsg="no match")
    answered(fok, Ack(OrderStatus.MATCHED, fok, ("t9",), "matched"), status="matched", tradeIDs=["t9"])
    state.flush()
    assert [state.orders[i].state for i in ids] == [
        OrderState.LIVE,
        OrderState.LIVE,
        OrderState.REJECTED,
        OrderState.REJECTED,
        OrderState.FILLED,
    ]
    assert state.orders[fok].awaiting_fills and state.orders[fok].pending_trades == ["t9"]
    expected = state.snapshot()
    j.close()
    _as_schema_4(path, legacy)

    recovered = recover(path, state.clock)  # verifies the rebuilt state against the tables
    journal = recovered.journal
    assert journal is not None
    try:
        assert recovered.snapshot() == expected
        assert [r.payload.order_id for r in journal.log(kind=inputs.K_REJECT)] == ids[2:4]
        assert [r.payload.ack.status for r in journal.log(kind=inputs.K_ACK)] == [
            OrderStatus.LIVE,
            None,
            OrderStatus.MATCHED,
        ]
    finally:
        journal.close()
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone() == (str(SCHEMA_VERSION),)
    assert SCHEMA_VERSION == 5
