"""The compiled user-channel decoder (polyoms._speedups.decode_user_frame) against the pure-Python one.

`decode_user_frame` runs the C parser first when the extension is built; it must give exactly what the
Python paths give (same events, same field values AND types: enum members, ints, None vs "", tuples)
or None, and then the Python paths decide. Every case here decodes the same frame through the default
path and inside `speedups.disabled()` and compares the outcome deeply (types included: `Side.BUY == 0`
and `OrderStatus.LIVE == "LIVE"`, so `==` alone would not notice a wrong type), or the type of the
exception both raise. Frames: the recorded venue messages, the OMS benchmark's workload, randomly
generated events, and mutations of real frames (truncation, byte flips, reordered/extra/missing/
duplicate keys, escapes, numbers for strings, prefixed statuses, nested garbage).
"""

from __future__ import annotations

import gc
import json
import os
import random
import sys
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from polyoms.core import speedups
from polyoms.core.enums import OrderType, Side
from polyoms.core.market_events import TextFrame, UnknownEvent
from polyoms.core.units import MICRO
from polyoms.core.user_events import (
    MakerOrderFill,
    OrderEvent,
    OrderEventType,
    OrderStatus,
    TradeEvent,
    TraderSide,
    TradeStatus,
)
from polyoms.polymarket.protocol import user_messages
from polyoms.polymarket.protocol.user_messages import decode_user_frame, encode_user_event, encode_user_frame

compiled = pytest.mark.skipif(
    speedups.native is None or speedups.decode_user_frame is None, reason="polyoms._speedups is not built"
)
pytestmark = compiled

_REPO = Path(__file__).resolve().parents[2]
BENCH = _REPO / "bench"
# As tests/messages/fixtures.py (this folder is not a package: no relative import).
FIXTURES = Path(os.environ.get("POLYOMS_FIXTURES", _REPO.parent / "shared" / "fixtures" / "polymarket"))


def native(data: Any) -> Any:
    fn = speedups.native.decode_user_frame  # type: ignore[union-attr]
    return fn(data)


# --- comparing outcomes -------------------------------------------------------------------------------


def deep(x: Any) -> Any:
    """A value with every type spelled out, for an exact comparison."""
    if isinstance(x, msgspec.Struct):
        return (type(x), tuple(deep(getattr(x, f)) for f in x.__struct_fields__))
    if isinstance(x, list | tuple):
        return (type(x), tuple(deep(v) for v in x))
    if isinstance(x, dict):
        return (dict, tuple((deep(k), deep(v)) for k, v in x.items()))
    return (type(x), x)


def outcome(data: Any) -> Any:
    try:
        return ("ok", deep(decode_user_frame(data)))
    except Exception as exc:
        return ("raises", type(exc))


def same_both_ways(data: Any) -> Any:
    """The default path's outcome, asserted equal to the pure-Python path's."""
    got = outcome(data)
    with speedups.disabled():
        assert speedups.decode_user_frame is None
        want = outcome(data)
    assert got == want, data
    return got


# --- real frames ----------------------------------------------------------------------------------------


def user_fixtures() -> list[bytes]:
    out = []
    for path in sorted((FIXTURES / "ws").glob("*.json")):
        raw = path.read_bytes()
        value = msgspec.json.decode(raw)
        if isinstance(value, dict) and value.get("event_type") in ("order", "trade"):
            out.append(raw)
    return out


FIXTURE_FRAMES = user_fixtures()


def workload(seed: int, n_orders: int = 300) -> list[bytes]:
    sys.path.insert(0, str(BENCH))
    try:
        from oms import make_workload  # type: ignore[import-not-found]
    finally:
        sys.path.remove(str(BENCH))
    frames: list[bytes] = make_workload(n_orders, seed)[1]
    return frames


WORKLOAD = {seed: workload(seed) for seed in (1, 2, 7)}
SAMPLE = [f for frames in WORKLOAD.values() for f in frames[::97]] + FIXTURE_FRAMES


def test_the_recorded_user_messages_are_there() -> None:
    assert len(FIXTURE_FRAMES) >= 6, FIXTURES


def test_user_decoder_is_bound_where_required() -> None:
    if os.environ.get("POLYOMS_REQUIRE_SPEEDUPS", "") in ("", "0"):
        pytest.skip("POLYOMS_REQUIRE_SPEEDUPS not set")
    assert speedups.decode_user_frame is not None


@pytest.mark.parametrize("index", range(len(FIXTURE_FRAMES)))
def test_recorded_messages_decode_identically_and_in_c(index: int) -> None:
    raw = FIXTURE_FRAMES[index]
    assert native(raw) is not None
    assert native(raw.decode()) is not None  # a str frame, as a text WebSocket message may arrive
    same_both_ways(raw)
    same_both_ways(raw.decode())
    same_both_ways(b"[" + raw + b"," + raw + b"]")
    assert native(b" [" + raw + b" ,\n" + raw + b"] ") is not None


@pytest.mark.parametrize("seed", sorted(WORKLOAD))
def test_every_benchmark_frame_decodes_identically_in_c(seed: int) -> None:
    frames = WORKLOAD[seed]
    on_c = sum(native(f) is not None for f in frames)
    assert on_c / len(frames) == 1.0, f"{len(frames) - on_c} of {len(frames)} frames not on the C path"
    for f in frames:
        events = same_both_ways(f)
        assert events[0] == "ok"
    assert same_both_ways(b"[" + b",".join(frames[:50]) + b"]")[0] == "ok"


def test_the_c_result_is_the_python_fast_path_result() -> None:
    for f in SAMPLE:
        assert deep(native(f)) == deep(user_messages._fast(f))


# --- each reason to fall back -------------------------------------------------------------------------

_RECORDED = [json.loads(f) for f in FIXTURE_FRAMES]
_ORDER: dict[str, Any] = next(e for e in _RECORDED if e["event_type"] == "order")
_TRADE: dict[str, Any] = next(e for e in _RECORDED if e["event_type"] == "trade" and len(e["maker_orders"]) > 1)


def order(**changes: Any) -> bytes:
    obj = {**_ORDER, **changes}
    return json.dumps({k: v for k, v in obj.items() if v is not DROP}).encode()


def trade(**changes: Any) -> bytes:
    obj = {**_TRADE, **changes}
    return json.dumps({k: v for k, v in obj.items() if v is not DROP}).encode()


def maker(**changes: Any) -> bytes:
    m = {**_TRADE["maker_orders"][0], **changes}
    return trade(maker_orders=[{k: v for k, v in m.items() if v is not DROP}, *_TRADE["maker_orders"][1:]])


DROP = object()
PLAIN_ORDER, PLAIN_TRADE = order(), trade()

FALLBACKS: dict[str, Any] = {
    "bytearray": bytearray(PLAIN_ORDER),
    "memoryview": memoryview(PLAIN_ORDER),
    "non-ASCII str": PLAIN_ORDER.decode().replace('"Yes"', '"Oui é"'),
    "non-ASCII bytes in a string": order(outcome="Sí").replace(b"\\u00ed", "í".encode()),
    "control character in a string": order(outcome="a").replace(b'"a"', b'"a\tb"'),
    "keepalive": b"PONG",
    "empty": b"",
    "blank": b" \n",
    "plain text": b"hello",
    "escape in a value": order(outcome="Y\u0065s").replace(b'"Yes"', b'"Y\\u0065s"'),
    "escape in a key": PLAIN_ORDER.replace(b'"outcome"', b'"outc\\u006fme"'),
    "escaped quote": order(outcome='say "hi"'),
    "duplicate key": PLAIN_ORDER[:-1] + b',"status":"LIVE"}',
    "duplicate unused key": PLAIN_TRADE[:-1] + b',"matchtime":"1","matchtime":"2"}',
    "duplicate event_type": PLAIN_ORDER[:-1] + b',"event_type":"order"}',
    "prefixed order status": order(status="ORDER_STATUS_LIVE"),
    "prefixed trade status": trade(status="TRADE_STATUS_MATCHED"),
    "lowercase status": order(status="live"),
    "CANCELLED spelling": order(status="CANCELLED"),
    "prefixed order event type": order(type="ORDER_EVENT_TYPE_PLACEMENT"),
    "unknown side": order(side="BOTH"),
    "padded side": order(side=" BUY"),
    "unknown maker side": maker(side="X"),
    "lowercase order_type": order(order_type="gtc"),
    "empty order_type": order(order_type=""),
    "empty trader_side": trade(trader_side=""),
    "lowercase trader_side": trade(trader_side="taker"),
    "price as a JSON number": order(price=0.5),
    "size as a JSON number": order(original_size=5),
    "size as a JSON integer in a trade": trade(size=10),
    "matched_amount as a JSON number": maker(matched_amount=10),
    "exponent price": order(price="5e-1"),
    "signed price": order(price="+0.5"),
    "padded price": order(price=" 0.5"),
    "two points": order(price="0.5.1"),
    "bare point": order(price="."),
    "empty price": order(price=""),
    "price above 1": order(price="1.01"),
    "negative size": order(original_size="-1"),
    "7 decimals": order(original_size="1.0000001"),
    "13 digits": order(original_size="1234567890123"),
    "7 decimals in a maker": maker(matched_amount="0.1234567"),
    "maker price above 1": maker(price="2"),
    "missing id": order(id=DROP),
    "missing price": trade(price=DROP),
    "missing status": trade(status=DROP),
    "missing event_type": order(event_type=DROP),
    "missing maker order_id": maker(order_id=DROP),
    "unknown event_type": order(event_type="price_change"),
    "null market": order(market=None),
    "null id": order(id=None),
    "null order event type": order(type=None),
    "null trade type": trade(type=None),
    "bool bucket_index": trade(bucket_index=True),
    "string bucket_index": trade(bucket_index="0"),
    "float expiration": order(expiration=1.5),
    "exponent timestamp": order(timestamp=1e12),
    "negative timestamp": order(timestamp=-5),
    "negative digits string": order(created_at="-5"),
    "19-digit timestamp": order(timestamp="1234567890123456789"),
    "non-digit timestamp": order(timestamp="12a"),
    "object for a time": trade(last_update={"a": 1}),
    "bad unused match time": trade(matchtime=[1]),
    "number in associate_trades": order(associate_trades=["a", 1]),
    "associate_trades a string": order(associate_trades="abc"),
    "maker_orders an object": trade(maker_orders={"a": 1}),
    "maker not an object": trade(maker_orders=[1]),
    "negative outcome_index": maker(outcome_index=-1),
    "bool fee": maker(fee_rate_bps=False),
    "trailing data": PLAIN_ORDER + b"x",
    "two objects": PLAIN_ORDER + PLAIN_ORDER,
    "truncated": PLAIN_TRADE[:-1],
    "trailing comma": PLAIN_ORDER[:-1] + b",}",
    "array with a number": b"[" + PLAIN_ORDER + b",1]",
    "array with an unknown event": b"[" + PLAIN_ORDER + b',{"event_type":"x"}]',
    "nested array": b"[[" + PLAIN_ORDER + b"]]",
    "deep garbage": PLAIN_ORDER[:-1] + b',"x":' + b"[" * 40 + b"]" * 40 + b"}",
    "leading zero number": PLAIN_ORDER[:-1] + b',"x":01}',
    "bad literal": PLAIN_ORDER[:-1] + b',"x":nul}',
    "NaN": PLAIN_ORDER[:-1] + b',"x":NaN}',
}


@pytest.mark.parametrize("reason", sorted(FALLBACKS))
def test_each_fallback_reason_gives_none_and_the_python_result(reason: str) -> None:
    data = FALLBACKS[reason]
    assert native(data) is None
    if not isinstance(data, bytearray | memoryview):  # not frames the client hands over
        same_both_ways(data)


def test_the_usual_variants_stay_on_the_c_path() -> None:
    """What the fast path maps the same way is decoded in C too (not everything odd falls back)."""
    usual = [
        order(associate_trades=["t-1", "t-2"]),
        order(associate_trades=[]),
        order(order_type=None, expiration=1725842520, created_at=None, timestamp=1725842520),
        order(type=DROP, market=DROP, size_matched=DROP, owner=DROP, order_type=DROP, timestamp=DROP),
        order(side="sell", price="1", original_size="007.5", size_matched="5."),
        order(price="0", timestamp="", created_at="", expiration=""),
        trade(maker_orders=None, trader_side=None, transaction_hash=None, err_msg="boom", bucket_index=None),
        trade(maker_orders=[], match_time=DROP, matchtime="1725868859", fee_rate_bps=""),
        trade(match_time="", matchtime="5", type="WHATEVER", unknown={"a": [1, 2.5, None, True, {"b": "c"}]}),
        trade(match_time=None, matchtime=7, last_update=0, timestamp=99999999999),
        maker(side=DROP, outcome_index=None, fee_rate_bps=12, asset_id=DROP),
        maker(side="", outcome_index=1, event_type="trade", maker_orders=[1, "x"]),
        b"[]",
        b"[" + PLAIN_TRADE + b"," + PLAIN_ORDER + b"]",
    ]
    for data in usual:
        assert native(data) is not None, data
        same_both_ways(data)


# --- generated events ----------------------------------------------------------------------------------

# Half the events are "usual" (what the C path takes, so both paths are compared on it), half "wild":
# also escapes (quotes, backslashes, control characters), non-ASCII text, numbers beyond its range.
_USUAL_TEXT = st.one_of(
    st.sampled_from(["", "Yes", "No", "0x" + "ab" * 20, "78132bc3-22af-6aa2-79ae-11929f821cae"]),
    st.text(st.characters(min_codepoint=32, max_codepoint=126, blacklist_characters='"\\'), max_size=20),
)
_USUAL_MICROS = st.one_of(st.integers(0, MICRO), st.integers(0, 10**12 - 1), st.sampled_from([0, 1, 10**12 - 1]))
_USUAL_TIMES = st.one_of(
    st.none(),
    st.integers(0, 10**11 + 10),
    st.integers(10**12, 10**13),
    st.sampled_from([0, 99_999_999_999, 100_000_000_000, 10**15 - 1, 10**18 - 1]),
)
_USUAL_SMALL = st.one_of(st.none(), st.integers(0, 10**4), st.sampled_from([0, 10**18 - 1]))


class Kinds:
    def __init__(self, wild: bool) -> None:
        self.text = st.one_of(_USUAL_TEXT, st.text(max_size=8)) if wild else _USUAL_TEXT
        self.micros = st.one_of(_USUAL_MICROS, st.integers(0, 10**20)) if wild else _USUAL_MICROS
        self.prices = st.integers(0, MICRO)
        self.times = st.one_of(_USUAL_TIMES, st.integers(-3, 10**20)) if wild else _USUAL_TIMES
        self.small = st.one_of(_USUAL_SMALL, st.integers(-3, 10**20)) if wild else _USUAL_SMALL


KINDS = st.sampled_from([Kinds(False), Kinds(True)])


@st.composite
def order_events(draw: st.DrawFn) -> OrderEvent:
    k = draw(KINDS)
    return OrderEvent(
        draw(st.sampled_from(OrderEventType)),
        draw(k.text),
        draw(k.text),
        draw(k.text),
        draw(st.sampled_from(Side)),
        draw(k.prices),
        draw(k.micros),
        draw(k.micros),
        draw(st.sampled_from(OrderStatus)),
        draw(k.text),
        draw(k.text),
        draw(k.text),
        tuple(draw(st.lists(k.text, max_size=3))),
        draw(st.one_of(st.none(), st.sampled_from(OrderType))),
        draw(st.one_of(st.integers(0, 10**12), k.times.map(lambda t: t or 0))),
        draw(k.text),
        draw(k.times),
        draw(k.times),
    )


@st.composite
def maker_fills(draw: st.DrawFn, k: Kinds) -> MakerOrderFill:
    return MakerOrderFill(
        draw(k.text),
        draw(k.micros),
        draw(k.prices),
        draw(k.text),
        draw(k.text),
        draw(k.text),
        draw(k.small),
        draw(k.text),
        draw(k.small),
        draw(st.one_of(st.none(), st.sampled_from(Side))),
    )


@st.composite
def trade_events(draw: st.DrawFn) -> TradeEvent:
    k = draw(KINDS)
    return TradeEvent(
        draw(k.text),
        draw(k.text),
        draw(k.text),
        draw(k.text),
        draw(st.sampled_from(Side)),
        draw(k.micros),
        draw(k.prices),
        draw(st.sampled_from(TradeStatus)),
        tuple(draw(st.lists(maker_fills(k), max_size=4))),
        draw(k.small),
        draw(k.text),
        draw(k.text),
        draw(k.text),
        draw(k.text),
        draw(k.text),
        draw(k.small),
        draw(st.one_of(st.none(), st.sampled_from(TraderSide))),
        draw(k.times),
        draw(k.times),
        draw(k.times),
        draw(k.text),
    )


TEXT = st.one_of(_USUAL_TEXT, st.text(max_size=8))
EVENTS = st.one_of(order_events(), trade_events())
FAST = settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# Derandomized: the share of generated frames the C path takes is asserted below, so the same examples
# must come every run (a random draw once gave 19.5 % against the 20 % floor).
@settings(FAST, derandomize=True)
@given(st.lists(EVENTS, min_size=1, max_size=4), st.booleans())
def test_generated_events(events: list[OrderEvent | TradeEvent], as_array: bool) -> None:
    data = encode_user_frame(events) if as_array or len(events) > 1 else encode_user_event(events[0])
    same_both_ways(data)
    GENERATED_ON_C[native(data) is not None] += 1


GENERATED_ON_C = [0, 0]


def test_generated_events_mostly_took_the_c_path() -> None:
    """The comparison above is only worth something if the C path decoded a good share of them."""
    if sum(GENERATED_ON_C) < 100:
        pytest.skip("test_generated_events did not run before this test")
    # A count, not a share: the examples drawn (derandomized) still shift with what the process imported
    # before (17 % to 25 % seen); ~100 frames compared both ways is what makes the comparison worth it.
    assert GENERATED_ON_C[1] >= 60, GENERATED_ON_C


# --- mutations of real frames ---------------------------------------------------------------------------

GARBAGE = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-(10**20), 10**20),
        st.floats(allow_nan=False, allow_infinity=False),
        TEXT,
    ),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(TEXT, inner, max_size=3)),
    max_leaves=8,
)
ODD_STRINGS = st.sampled_from(
    [
        "TRADE_STATUS_MATCHED",
        "ORDER_STATUS_LIVE",
        "ORDER_STATUS_CANCELLED",
        "matched",
        "Live",
        " LIVE",
        "buy",
        "sell",
        "SELL ",
        "",
        "0",
        "00.50",
        ".5",
        "5.",
        "1",
        "1.0",
        "0.0000001",
        "1e3",
        "-0",
        "999999999999",
        "9999999999999",
        "1725868885",
        "1725868885871",
        "٣",  # a non-ASCII digit
        "GTC",
        "FOK",
        "TAKER",
        "PLACEMENT",
        "UPDATE",
        "CANCELLATION",
    ]
)
VALUES = st.one_of(ODD_STRINGS, GARBAGE, st.integers(0, 10**13), st.sampled_from([0.5, 1.0, True, None, [], {}]))


def serialize(value: Any, rng: random.Random) -> str:
    """JSON text of a value; a list of pairs is an object (so keys may repeat); random whitespace."""
    ws = rng.choice(["", "", "", " ", "\n  "])
    if isinstance(value, Pairs):
        inner = ("," + ws).join(f"{json.dumps(k)}:{ws}{serialize(v, rng)}" for k, v in value)
        return "{" + ws + inner + ws + "}"
    if isinstance(value, list):
        return "[" + ",".join(serialize(v, rng) for v in value) + "]"
    return json.dumps(value, ensure_ascii=rng.random() < 0.5)


class Pairs(list[tuple[str, Any]]):
    pass


def as_pairs(value: Any) -> Any:
    if isinstance(value, dict):
        return Pairs((k, as_pairs(v)) for k, v in value.items())
    if isinstance(value, list):
        return [as_pairs(v) for v in value]
    return value


def mutate(obj: Pairs, draw: st.DrawFn, rng: random.Random) -> None:
    """One change somewhere in an event object or one of its maker objects."""
    target = obj
    makers = [v for k, v in obj if k == "maker_orders" and isinstance(v, list) and v]
    if makers and rng.random() < 0.4:
        candidates = [m for m in makers[0] if isinstance(m, Pairs)]
        if candidates:
            target = rng.choice(candidates)
    kind = draw(st.sampled_from(["replace", "drop", "add", "duplicate", "shuffle", "escape", "rename"]))
    if not target:
        target.append(("x", 1))
    i = rng.randrange(len(target))
    key, value = target[i]
    if kind == "replace":
        target[i] = (key, as_pairs(draw(VALUES)))
    elif kind == "drop":
        del target[i]
    elif kind == "add":
        target.insert(rng.randrange(len(target) + 1), (draw(TEXT), as_pairs(draw(GARBAGE))))
    elif kind == "duplicate":
        target.insert(rng.randrange(len(target) + 1), (key, as_pairs(draw(VALUES)) if rng.random() < 0.5 else value))
    elif kind == "shuffle":
        rng.shuffle(target)
    elif kind == "escape" and isinstance(value, str) and value:
        j = rng.randrange(len(value))
        target[i] = (key, value[:j] + rng.choice(["\\", '"', "\u00e9", "\n", "\u2028"]) + value[j:])
    elif kind == "rename":
        target[i] = (rng.choice(["matchtime", "match_time", "type", "event_type", "ID", key + " "]), value)


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(SAMPLE), st.integers(1, 4), st.booleans(), st.randoms(use_true_random=False), st.data())
def test_mutated_real_frames(raw: bytes, n: int, as_array: bool, rng: random.Random, data: st.DataObject) -> None:
    obj = as_pairs(json.loads(raw))
    for _ in range(n):
        mutate(obj, data.draw, rng)
    text = serialize([obj, as_pairs(json.loads(rng.choice(SAMPLE)))] if as_array else obj, rng)
    same_both_ways(text.encode())
    if text.isascii():
        same_both_ways(text)


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(SAMPLE), st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), min_size=1, max_size=3))
def test_byte_flips(raw: bytes, flips: list[tuple[int, int]]) -> None:
    data = bytearray(raw)
    for pos, byte in flips:
        data[pos % len(data)] = byte
    same_both_ways(bytes(data))


@pytest.mark.parametrize("index", [0, 1, 2])
def test_truncation_at_every_position(index: int) -> None:
    raw = [FIXTURE_FRAMES[-1], WORKLOAD[1][1], b"[" + WORKLOAD[2][3] + b"," + WORKLOAD[2][4] + b"]"][index]
    for end in range(len(raw)):
        same_both_ways(raw[:end])
        assert native(raw[:end]) is None or raw[:end].rstrip() == raw.rstrip()


# --- binding ---------------------------------------------------------------------------------------------


def test_a_changed_wire_struct_is_not_bound() -> None:
    class ChangedOrder(msgspec.Struct, tag="order", tag_field="event_type", gc=False):
        id: str
        asset_id: str
        side: str
        price: str
        original_size: str
        status: str  # was OrderStatus: the C code would map it differently

    wire = (ChangedOrder, user_messages._FastTrade, user_messages._FastMaker)
    bound = speedups.decode_user_frame
    with pytest.warns(RuntimeWarning, match="layout"):
        speedups.bind_user_frame(wire, (OrderEvent, TradeEvent, MakerOrderFill), {}, 1)
    assert speedups.decode_user_frame is bound


def test_a_changed_event_class_is_not_bound() -> None:
    class Renamed(msgspec.Struct, frozen=True):
        a: int

    bound = speedups.decode_user_frame
    wire = (user_messages._FastOrder, user_messages._FastTrade, user_messages._FastMaker)
    with pytest.warns(RuntimeWarning, match="not the layout"):
        speedups.bind_user_frame(wire, (Renamed, TradeEvent, MakerOrderFill), user_messages._SIDE_TEXT, 10**11)
    assert speedups.decode_user_frame is bound
    assert native(PLAIN_ORDER) is not None


def test_disabled_switches_the_user_decoder_off() -> None:
    bound = speedups.decode_user_frame
    with speedups.disabled():
        assert speedups.decode_user_frame is None
        assert type(decode_user_frame(PLAIN_ORDER)[0]) is OrderEvent
    assert speedups.decode_user_frame is bound is not None


def test_text_frames_and_unknown_events_are_left_to_python() -> None:
    assert same_both_ways(b"hello")[1][1][0][0] is TextFrame
    assert same_both_ways(b'{"event_type":"x"}')[1][1][0][0] is UnknownEvent


# --- memory -------------------------------------------------------------------------------------------


def test_no_reference_or_memory_leaks() -> None:
    """Decodes, fallbacks and errors leave nothing behind (refcounts of the shared objects, traced memory)."""
    frames = SAMPLE[:40] + [v for v in FALLBACKS.values() if isinstance(v, bytes | str)]
    frames += [FIXTURE_FRAMES[-1][:k] for k in range(0, len(FIXTURE_FRAMES[-1]), 7)]
    frames.append(b"[" + b",".join([PLAIN_TRADE] * 20) + b"]")  # more makers than the local buffer

    def cycle() -> None:
        for f in frames:
            native(f)

    def settle() -> None:
        speedups.native.clear_caches()  # type: ignore[union-attr]
        gc.collect()

    watched: list[Callable[..., Any] | Any] = [
        OrderEvent,
        TradeEvent,
        MakerOrderFill,
        Side.BUY,
        OrderStatus.LIVE,
        TradeStatus.MINED,
        TraderSide.MAKER,
        OrderType.GTC,
        OrderEventType.PLACEMENT,
    ]
    for _ in range(20):
        cycle()
    settle()
    before = [sys.getrefcount(w) for w in watched]
    tracemalloc.start()
    try:
        for _ in range(20):
            cycle()
        settle()
        first, _ = tracemalloc.get_traced_memory()
        for _ in range(200):
            cycle()
        settle()
        second, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert [sys.getrefcount(w) for w in watched] == before
    assert second - first < 4096, (first, second)
