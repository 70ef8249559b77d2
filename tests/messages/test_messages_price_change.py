"""price_change: three wire formats, one typed event; lazy values; the fast path agrees with the slow one."""

from __future__ import annotations

import json
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from polyoms.core.enums import Side
from polyoms.core.errors import MalformedMessageError
from polyoms.core.market_events import PriceChange, PriceLevelChange
from polyoms.core.units import MICRO, fmt_micro
from polyoms.polymarket.protocol.messages import (
    PriceChangeFormat,
    decode_market_frame,
    decode_price_change,
    encode_market_event,
    price_change_wire,
)

from .fixtures import read

ASSET = "52114319501245915516055106046884209969926127482827954674443846427813813222426"
OTHER = "71321045679252212594626385532706912750332728571942532289631379312455583992563"
MARKET = "0x5f65177b394277fd294cd75650044e32ba009a95022d88a0c1d565897d72f8f1"
HASH = "bf32b3746fff40c76c98021b7f3f07261169dd26"


def dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def the_three_formats(changes: list[tuple[str, str, str]], hash_: str, ts: str) -> list[bytes]:
    """(price, side, size) changes of ASSET as legacy (one change only), 2024 changes[] and current."""
    out = []
    if len(changes) == 1:
        price, side, size = changes[0]
        out.append(
            dumps(
                {
                    "asset_id": ASSET,
                    "event_type": "price_change",
                    "hash": hash_,
                    "market": MARKET,
                    "price": price,
                    "side": side,
                    "size": size,
                    "timestamp": ts,
                }
            )
        )
    out.append(
        dumps(
            {
                "asset_id": ASSET,
                "changes": [{"price": p, "side": s, "size": z} for p, s, z in changes],
                "event_type": "price_change",
                "market": MARKET,
                "hash": hash_,
                "timestamp": ts,
            }
        )
    )
    last = len(changes) - 1
    out.append(
        dumps(
            {
                "market": MARKET,
                "price_changes": [
                    {"asset_id": ASSET, "price": p, "size": z, "side": s, "hash": hash_ if k == last else ""}
                    for k, (p, s, z) in enumerate(changes)
                ],
                "timestamp": ts,
                "event_type": "price_change",
            }
        )
    )
    return out


def test_legacy_fixture_equals_its_other_two_formats() -> None:
    [legacy] = decode_market_frame(read("ws", "price_change_legacy_2024-08.json"))
    assert isinstance(legacy, PriceChange)
    c = legacy.changes[0]
    formats: list[PriceChangeFormat] = ["changes", "current"]
    for fmt in formats:
        [again] = decode_market_frame(encode_market_event(legacy, price_change_format=fmt))
        assert again == legacy
    assert (c.price, c.size, c.side) == (514_000, 21_574_080_000, Side.SELL)


def test_changes_array_fixture_equals_current_format_with_the_same_content() -> None:
    [fixture] = decode_market_frame(read("ws", "price_change_changes_array_2024-10.json"))
    raws = the_three_formats(
        [("0.6", "BUY", "3300"), ("0.5", "BUY", "3400"), ("0.7", "BUY", "3400")], HASH, "1729084877448"
    )
    decoded = [decode_market_frame(r)[0] for r in raws]
    assert all(d == decoded[0] for d in decoded)
    assert msgspec.structs.replace(fixture, market=MARKET) == decoded[0]


@given(
    st.lists(
        st.tuples(
            st.integers(1, 9_999).map(lambda i: i * 100),
            st.sampled_from(["BUY", "SELL"]),
            st.integers(0, 10**12),
        ),
        min_size=1,
        max_size=5,
    ),
    st.from_regex(r"[0-9a-f]{40}", fullmatch=True),
    st.integers(0, 2**53),
)
@settings(max_examples=150, deadline=None)
def test_the_three_formats_normalize_to_equal_events(changes: list[tuple[int, str, int]], hash_: str, ts: int) -> None:
    text = [(fmt_micro(p), s, fmt_micro(z)) for p, s, z in changes]
    events = [decode_price_change(raw, strict=True) for raw in the_three_formats(text, hash_, str(ts))]
    assert all(e == events[0] for e in events)
    event = events[0]
    assert [(c.price, c.side.name, c.size) for c in event.changes] == changes
    assert event.timestamp_ms == ts and event.changes[-1].hash == hash_


@given(
    st.lists(
        st.builds(
            PriceLevelChange.of,
            st.sampled_from([ASSET, OTHER]),
            st.sampled_from(Side),
            st.integers(1, 9_999).map(lambda i: i * 100),
            st.integers(0, 10**13),
            best_bid=st.none() | st.integers(0, 9_999).map(lambda i: i * 100),
            best_ask=st.none() | st.integers(1, 10_000).map(lambda i: i * 100),
            hash=st.from_regex(r"[0-9a-f]{40}", fullmatch=True) | st.just(""),
        ),
        max_size=4,
    ),
    st.none() | st.integers(0, 2**53),
)
@settings(max_examples=150, deadline=None)
def test_current_format_round_trip(changes: list[PriceLevelChange], ts: int | None) -> None:
    event = PriceChange.of(MARKET, changes, ts)
    raw = encode_market_event(event)
    assert decode_market_frame(raw) == [event]
    assert decode_market_frame(raw, strict=True) == [event]
    assert decode_market_frame(b"[" + raw + b"]") == [event]
    event.validate()


def test_typed_values_and_constructor() -> None:
    c = PriceLevelChange.of(ASSET, Side.SELL, 514_000, 21_574_080_000, best_bid=0, best_ask=MICRO, hash=HASH)
    assert (c.price_text, c.size_text, c.side_text, c.best_bid_text, c.best_ask_text) == (
        "0.514",
        "21574.08",
        "SELL",
        "0",
        "1",
    )
    assert (c.price, c.size, c.side, c.best_bid, c.best_ask) == (514_000, 21_574_080_000, Side.SELL, 0, MICRO)
    with pytest.raises(MalformedMessageError):
        PriceLevelChange.of(ASSET, Side.BUY, MICRO, 1)
    with pytest.raises(MalformedMessageError):
        PriceLevelChange.of(ASSET, Side.BUY, 500_000, -1)


@pytest.mark.parametrize(
    ("bid", "ask", "expected"),
    [
        ("0", "1", (0, MICRO)),
        ("", "", (0, MICRO)),
        ("0.53", "0.54", (530_000, 540_000)),
        ("0.530", "0.5400", (530_000, 540_000)),
    ],
)
def test_empty_side_markers(bid: str, ask: str, expected: tuple[int, int]) -> None:
    raw = dumps(
        {
            "market": MARKET,
            "price_changes": [
                {
                    "asset_id": ASSET,
                    "price": "0.5",
                    "size": "1",
                    "side": "BUY",
                    "hash": "",
                    "best_bid": bid,
                    "best_ask": ask,
                }
            ],
            "timestamp": "1",
            "event_type": "price_change",
        }
    )
    [event] = decode_market_frame(raw, strict=True)
    assert isinstance(event, PriceChange)
    assert (event.changes[0].best_bid, event.changes[0].best_ask) == expected


@pytest.mark.parametrize(
    ("field", "value"),
    [("price", "1.5"), ("price", "0"), ("price", "abc"), ("size", "-1"), ("size", "1.0000001"), ("side", "HOLD")],
)
def test_malformed_values_are_caught_when_used_or_when_strict(field: str, value: str) -> None:
    entry = {"asset_id": ASSET, "price": "0.5", "size": "10", "side": "BUY", "hash": ""}
    entry[field] = value
    raw = dumps({"market": MARKET, "price_changes": [entry], "timestamp": "1", "event_type": "price_change"})
    [event] = decode_market_frame(raw)  # the hot path defers parsing
    assert isinstance(event, PriceChange)
    with pytest.raises(MalformedMessageError):
        event.validate()
    with pytest.raises(MalformedMessageError):
        decode_market_frame(raw, strict=True)


def test_non_canonical_spellings_parse_exactly() -> None:
    raw = dumps(
        {
            "market": MARKET,
            "price_changes": [{"asset_id": ASSET, "price": ".50", "size": "0010.500", "side": "buy", "hash": ""}],
            "timestamp": "7",
            "event_type": "price_change",
        }
    )
    [event] = decode_market_frame(raw, strict=True)
    assert isinstance(event, PriceChange)
    c = event.changes[0]
    assert (c.price, c.size, c.side) == (500_000, 10_500_000, Side.BUY)


@pytest.mark.parametrize(
    "transform",
    [
        lambda raw: raw,  # event_type last, as the venue sends
        lambda raw: raw.replace(b',"event_type":"price_change"', b"").replace(
            b'{"market"', b'{"event_type":"price_change","market"'
        ),
        lambda raw: b"  " + raw + b"\n",
        lambda raw: b"[" + raw + b"]",
        lambda raw: raw.decode(),
        lambda raw: json.dumps(json.loads(raw), indent=2).encode(),
    ],
)
def test_fast_and_general_paths_agree(transform: Any) -> None:
    base = read("ws", "price_change_current_format_semisynthetic.json")
    compact = dumps(json.loads(base))
    expected = decode_price_change(base, strict=True)
    assert decode_market_frame(transform(compact)) == [expected]


def test_a_look_alike_frame_takes_the_general_path() -> None:
    """A new_market whose nested object mentions price_changes is still a new_market."""
    raw = dumps(
        {
            "market": MARKET,
            "event_message": {"id": "1", "price_changes": []},
            "id": "1",
            "event_type": "new_market",
        }
    )
    [event] = decode_market_frame(raw)
    assert type(event).__name__ == "NewMarket"


def test_older_formats_encode_only_what_they_can_carry() -> None:
    two_assets = PriceChange.of(
        MARKET, [PriceLevelChange.of(ASSET, Side.BUY, 500_000, 1), PriceLevelChange.of(OTHER, Side.SELL, 500_000, 1)]
    )
    with pytest.raises(ValueError):
        price_change_wire(two_assets, "changes")
    with_best = PriceChange.of(MARKET, [PriceLevelChange.of(ASSET, Side.BUY, 500_000, 1, best_bid=500_000)])
    with pytest.raises(ValueError):
        price_change_wire(with_best, "legacy")
