"""The venue's book hash (doc §6.5): the published vector, and whether recorded hashes reproduce.

Findings (asserted below): both recorded V2-era /book bodies (2026) reproduce with the §6.5 algorithm;
the 2024 snapshots (REST and WS) do not, but reproduce with the same SHA-1 over only market, asset_id,
hash = "", bids and asks (no timestamp, no newer fields). The per-change hash of price_change cannot
be checked: the only current-format fixture is hand-made (its hashes are placeholders).
"""

from __future__ import annotations

import msgspec
import pytest

from polyoms.core.book import BookSet, HashStatus
from polyoms.core.market_events import BookSnapshot
from polyoms.core.units import tick_size
from polyoms.polymarket.protocol.book_hash import book_hash, legacy_book_hash
from polyoms.polymarket.protocol.messages import decode_book, decode_market_frame, encode_market_event
from polyoms.polymarket.protocol.rest import encode_book_summary

from .fixtures import read

VECTOR = "0458ea5755c9f73d64a14636fa5c36ed460ec394"


def test_doc_vector() -> None:
    bids = [{"price": "0.3", "size": "100"}, {"price": "0.4", "size": "100"}]
    asks = [{"price": "0.6", "size": "100"}, {"price": "0.7", "size": "100"}]
    assert book_hash("0xaabbcc", "100", "123456789", bids, asks, "100", "0.01", False, "0.5") == VECTOR


def test_doc_vector_from_a_typed_snapshot() -> None:
    snapshot = BookSnapshot(
        market="0xaabbcc",
        asset_id="100",
        bids=((300_000, 100_000_000), (400_000, 100_000_000)),
        asks=((600_000, 100_000_000), (700_000, 100_000_000)),
        timestamp_ms=123456789,
        min_order_size=100_000_000,
        tick_size=tick_size("0.01"),
        neg_risk=False,
        last_trade_price=500_000,
    )
    body = msgspec.json.decode(encode_book_summary(snapshot))
    assert body["hash"] == VECTOR
    assert decode_book(encode_book_summary(snapshot), verify_hash=True).hash_verified is True


def test_doc_example_summary_hash() -> None:
    """The §4.3 example body states its own hash is the §6.5 hash of that exact example."""
    bids = [{"price": "0.48", "size": "30"}, {"price": "0.49", "size": "20"}, {"price": "0.50", "size": "15"}]
    asks = [{"price": "0.54", "size": "10"}, {"price": "0.53", "size": "60"}, {"price": "0.52", "size": "25"}]
    got = book_hash(
        "0xbd31dc8a20211944f6b70f31557f1001557b59905b7738480ca09bd4532f84af",
        "71321045679252212594626385532706912750332728571942532289631379312455583992563",
        "1777000000123",
        bids,
        asks,
        "5",
        "0.01",
        False,
        "0.51",
    )
    assert got == "6b400e52f42b02cdb50d8db89623f8dfcd370dd1"


@pytest.mark.parametrize("name", ["book_raw_2026-06.json", "book_btc_5m_2026-03.json"])
def test_recorded_v2_books_reproduce_with_doc_algorithm(name: str) -> None:
    raw = msgspec.json.decode(read("rest", name))
    assert raw["hash"] == book_hash(
        raw["market"],
        raw["asset_id"],
        raw["timestamp"],
        raw["bids"],
        raw["asks"],
        raw["min_order_size"],
        raw["tick_size"],
        raw["neg_risk"],
        raw["last_trade_price"],
    )


def test_raw_v2_book_reencodes_byte_for_byte() -> None:
    """Decoding then encoding the compact 2026 body gives back the very bytes the venue served."""
    raw = read("rest", "book_raw_2026-06.json").strip()
    assert encode_book_summary(decode_book(raw)) == raw
    # and with the hash recomputed rather than copied
    snapshot = decode_book(raw)
    assert encode_book_summary(msgspec.structs.replace(snapshot, hash="")) == raw


@pytest.mark.parametrize(("folder", "name"), [("rest", "book_2024-09.json"), ("ws", "book_2024-10.json")])
def test_2024_books_need_the_older_algorithm(folder: str, name: str) -> None:
    raw = msgspec.json.decode(read(folder, name))
    doc = book_hash(
        raw["market"], raw["asset_id"], raw.get("timestamp", ""), raw["bids"], raw["asks"], None, None, False, None
    )
    assert doc != raw["hash"]
    assert legacy_book_hash(raw["market"], raw["asset_id"], raw["bids"], raw["asks"]) == raw["hash"]


def test_rest_2024_10_is_the_2024_09_book_with_a_timestamp() -> None:
    """Same hash, different timestamp: the older hash does not cover the timestamp."""
    a, b = (msgspec.json.decode(read("rest", n)) for n in ("book_2024-09.json", "book_2024-10.json"))
    assert a["hash"] == b["hash"] and "timestamp" not in a and b["timestamp"]


def test_a_changed_level_fails_verification_and_the_mirror_distrusts_it() -> None:
    raw = read("rest", "book_raw_2026-06.json").replace(
        b'{"price":"0.49","size":"65"}', b'{"price":"0.49","size":"66"}'
    )
    snapshot = decode_book(raw, verify_hash=True)
    assert snapshot.hash_verified is False
    books = BookSet()
    book = books.apply_snapshot(snapshot)
    assert not book.trusted and book.hash_status is HashStatus.MISMATCH
    assert "hash" in book.untrusted_reason
    lenient = BookSet(untrust_on_hash_mismatch=False).apply_snapshot(snapshot)
    assert lenient.trusted and lenient.hash_status is HashStatus.MISMATCH


def test_unknown_algorithm_is_not_a_mismatch() -> None:
    """A bare snapshot (no newer fields) whose hash matches no known algorithm is unchecked, not false:
    newer WS snapshots may omit fields their hash covers."""
    raw = read("ws", "book_2024-10.json").replace(b"655a38d4977427b086c25b985993691b753ed166", b"0" * 40)
    [snapshot] = decode_market_frame(raw, verify_book_hash=True)
    assert isinstance(snapshot, BookSnapshot) and snapshot.hash_verified is None


def test_ws_book_encoding_keeps_the_hash_reproducible() -> None:
    [snapshot] = decode_market_frame(read("ws", "book_2024-10.json"))
    assert isinstance(snapshot, BookSnapshot)
    again = decode_market_frame(encode_market_event(msgspec.structs.replace(snapshot, hash="")), verify_book_hash=True)
    assert isinstance(again[0], BookSnapshot)
    assert again[0].hash == snapshot.hash and again[0].hash_verified is True


def test_book_mirror_renders_a_verifiable_snapshot() -> None:
    books = BookSet()
    book = books.apply_snapshot(decode_book(read("rest", "book_raw_2026-06.json"), verify_hash=True))
    assert book.trusted and book.hash_status is HashStatus.MATCH
    assert encode_book_summary(book.snapshot()) == read("rest", "book_raw_2026-06.json").strip()
