"""The compiled price_change path (polyoms._speedups) against the pure-Python one: same events, books,
trust states, counters, hook calls and errors, for valid and broken frames; and the fallback.

Each case builds the same starting BookSet twice, runs one copy through the default path (compiled
when the extension is built) and the other inside `speedups.disabled()` (the pure-Python code), and
compares everything observable. The generated frames are mostly what the venue sends (so the C fast
path is exercised) mixed with every kind of oddity the parser or the book must hand to Python or
reject: odd number spellings, off-grid and non-canonical prices, zero and huge sizes, empty-side
markers, unknown assets, extra and duplicate keys, shuffled key order, whitespace, escapes, unicode,
truncation and byte flips.
"""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
import tracemalloc
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from polyoms.core import speedups
from polyoms.core.book import Book, BookSet
from polyoms.core.market_events import BookSnapshot, PriceChange, PriceLevelChange
from polyoms.core.units import MICRO, TICK_SIZES, fmt_micro
from polyoms.polymarket.protocol.messages import (
    _price_change_decoder,
    decode_market_frame,
    decode_price_change,
)

from ..messages.fixtures import fixture_files, read

YES = "52114319501245915516055106046884209969926127482827954674443846427813813222426"
NO = "71321045679252212594626385532706912750332728571942532289631379312455583992563"
AWAITING = "48331043336612883890938759509493159234755048973500640148014422747788308965732"  # no snapshot yet
SUB = "1111"  # a Book subclass
UNKNOWN = "99999999999999999999999999999999999999999999999999999999999999999999999999999"
MARKET = "0x5f65177b394277fd294cd75650044e32ba009a95022d88a0c1d565897d72f8f1"
TICK = TICK_SIZES["0.01"]

compiled = pytest.mark.skipif(speedups.native is None, reason="polyoms._speedups is not built")


def test_the_extension_is_built_where_required() -> None:
    """`make test` sets POLYOMS_REQUIRE_SPEEDUPS: there the optional build must not have been skipped."""
    if os.environ.get("POLYOMS_REQUIRE_SPEEDUPS", "") in ("", "0"):
        pytest.skip("POLYOMS_REQUIRE_SPEEDUPS not set")
    assert speedups.enabled(), "polyoms._speedups was not built or not bound (see pip install -e . output)"


# --- starting books ----------------------------------------------------------------------------------


class SubBook(Book):
    """Not exactly a Book: the compiled path hands its entries to Python."""

    __slots__ = ()


Recipe = dict[str, Any]


@st.composite
def recipes(draw: st.DrawFn) -> Recipe:
    """What a starting BookSet is made of (built twice, identically, by `build`)."""
    tick = draw(st.sampled_from([TICK, TICK, TICK_SIZES["0.001"], TICK_SIZES["0.1"]]))
    n = MICRO // tick.micro
    mid = draw(st.integers(2, n - 2))
    levels = st.dictionaries(st.integers(1, n - 1), st.integers(0, 10**9).map(lambda s: s * 10_000), max_size=25)
    return {
        "tick": tick,
        "yes_bids": {i: s for i, s in draw(levels).items() if i < mid},
        "yes_asks": {i: s for i, s in draw(levels).items() if i > mid or draw(st.booleans())},  # sometimes crossed
        "no": draw(st.booleans()),
        "sub": draw(st.booleans()),
        "untrusted": draw(st.booleans()),
        "verify": draw(st.booleans()),
        "hook": draw(st.sampled_from(["none", "record", "record", "drop-no", "raise-3", "untrust"])),
    }


def make_recipe(**overrides: Any) -> Recipe:
    """A fixed recipe: YES (and its NO mirror) around 0.50 on tick 0.01, checked, hook recording."""
    recipe: Recipe = {
        "tick": TICK,
        "yes_bids": dict.fromkeys(range(30, 50), MICRO),
        "yes_asks": dict.fromkeys(range(51, 70), MICRO),
        "no": True,
        "sub": False,
        "untrusted": False,
        "verify": True,
        "hook": "record",
    }
    return {**recipe, **overrides}


def build(recipe: Recipe) -> tuple[BookSet, list[tuple[str, PriceLevelChange, str]]]:
    calls: list[tuple[str, PriceLevelChange, str]] = []
    tick = recipe["tick"]
    step = tick.micro

    def snapshot(asset: str, bids: dict[int, int], asks: dict[int, int]) -> BookSnapshot:
        return BookSnapshot(
            market=MARKET,
            asset_id=asset,
            bids=tuple((i * step, s) for i, s in sorted(bids.items())),
            asks=tuple((i * step, s) for i, s in sorted(asks.items(), reverse=True)),
            timestamp_ms=1,
            tick_size=tick,
        )

    books = BookSet(verify_best_prices=recipe["verify"])
    books.apply_snapshot(snapshot(YES, recipe["yes_bids"], recipe["yes_asks"]))
    n = MICRO // step
    if recipe["no"]:
        mirrored_bids = {n - i: s for i, s in recipe["yes_asks"].items()}
        mirrored_asks = {n - i: s for i, s in recipe["yes_bids"].items()}
        books.apply_snapshot(snapshot(NO, mirrored_bids, mirrored_asks))
    books.ensure(AWAITING, MARKET, tick)
    if recipe["sub"]:
        sub = SubBook(SUB, MARKET, tick)
        sub.apply_snapshot(snapshot(SUB, recipe["yes_bids"], recipe["yes_asks"]))
        books._books[SUB] = sub
    if recipe["untrusted"]:
        books.mark_untrusted("gap")

    kind = recipe["hook"]

    def hook(book: Book, change: PriceLevelChange) -> None:
        calls.append((book.asset_id, change, book.trust.value))
        if kind == "drop-no":
            books.remove(NO)
        elif kind == "raise-3" and len(calls) == 3:
            raise RuntimeError("hook failed on its third call")
        elif kind == "untrust":
            book.mark_untrusted(f"hook {len(calls)}")

    if kind != "none":
        books.level_hash_hook = hook
    return books, calls


def book_state(book: Book) -> dict[str, Any]:
    out: dict[str, Any] = {"type": type(book).__name__}
    for name in Book.__slots__:
        value = getattr(book, name)
        if name == "_grid":
            value = value.step
        elif name in ("_index", "_text_index"):
            value = value is book._grid.index or value is book._grid.text
        elif isinstance(value, list | bytearray):
            value = bytes(value) if isinstance(value, bytearray) else list(value)
        out[name] = value
    return out


def state(books: BookSet) -> dict[str, Any]:
    return {
        "unknown": books.unknown_asset_updates,
        "books": {asset: book_state(book) for asset, book in books._books.items()},
    }


def outcome(run: Callable[[], Any]) -> tuple[str, Any]:
    try:
        return "ok", run()
    except Exception as exc:  # the same exception, same text, on both paths
        return type(exc).__name__, str(exc)


def both_paths(recipe: Recipe, run: Callable[[BookSet], Any]) -> None:
    """`run` on two identical BookSets, compiled then pure Python: the same result, error and state."""
    books_c, calls_c = build(recipe)
    books_p, calls_p = build(recipe)
    result_c = outcome(lambda: run(books_c))
    with speedups.disabled():
        assert not speedups.enabled()
        result_p = outcome(lambda: run(books_p))
    assert result_c == result_p
    assert state(books_c) == state(books_p)
    assert calls_c == calls_p


def apply_frames(frames: list[bytes]) -> Callable[[BookSet], list[Any]]:
    """What a stream client does with each frame: decode, then apply every event."""

    def run(books: BookSet) -> list[Any]:
        seen: list[Any] = []
        for raw in frames:
            events = outcome(lambda raw=raw: decode_market_frame(raw))  # type: ignore[misc]
            seen.append(events)
            if events[0] == "ok":
                for event in events[1]:
                    books.apply(event)
        return seen

    return run


# --- frames --------------------------------------------------------------------------------------------

GRID = [fmt_micro(i * 10_000) for i in range(1, 100)]
FINE = [fmt_micro(i * 1_000) for i in range(1, 1000, 7)]
ODD_PRICES = ["0.555", "0.50", ".5", "0.5000", "00.5", "1", "0", "1.0", "-0.5", "+0.5", "0.0001", "0.9999", "abc",
              "", " 0.5", "0.5 ", "0.1234567", "٠.٥", "0.5e0", "5e-1", "NaN", "0.05", "0.005", "1e999"]  # fmt: skip
ODD_SIZES = ["0", "0.0", "0.000000", "", ".", "5.", ".5", "1e3", "-1", "-0", " 5", "5 ", "+5", "1_000", "١٢", "٣.٥",
             "²", "1.2.3", "0.0000001", "12.3456789", "0x10", "Infinity", "inf", "9" * 13, "1" + "0" * 17,
             "123456789012.345678", "9" * 30 + ".5", "0" * 20 + "7"]  # fmt: skip
SIDES = ["BUY", "SELL", "buy", "sell", "", "Buy", "BUYX", "BUX", "BUy", "SELX", "SEL", "ＢＵＹ", "SELL ", "B",
         "SELL\x00"]  # fmt: skip
BESTS = ["0", "1", "", "0.0", "1.0", ".5", "0.50", "-0.1", "2", "x", "٠"]


def sizes() -> st.SearchStrategy[str]:
    return st.one_of(
        st.integers(0, 10**7).map(lambda s: fmt_micro(s * 10_000)),
        st.integers(0, 10**12).map(fmt_micro),
        st.integers(0, 10**6).map(str),
        st.just("0"),
        st.sampled_from(ODD_SIZES),
        st.text(max_size=5),
        st.text("0123456789.", max_size=8),
    )


def prices() -> st.SearchStrategy[str]:
    return st.one_of(st.sampled_from(GRID), st.sampled_from(GRID), st.sampled_from(FINE), st.sampled_from(ODD_PRICES))


def bests() -> st.SearchStrategy[Any]:
    """A value for best_bid/best_ask: absent (the marker ...), JSON null, a price or an odd spelling."""
    return st.one_of(st.sampled_from(GRID), st.sampled_from(GRID), st.sampled_from(BESTS), st.sampled_from([..., None]))


def rare(draw: st.DrawFn, one_in: int) -> bool:
    """True about once in `one_in` draws. (Not `integers(0, n) == 0`: hypothesis favours the bounds.)"""
    return draw(st.integers(0, 2 * one_in - 1)) == one_in


class Pairs(list[tuple[str, Any]]):
    """A JSON object as ordered (key, value) pairs: duplicate keys are possible."""


@st.composite
def entries(draw: st.DrawFn) -> Pairs:
    usual_size = st.integers(0, 10**7).map(lambda s: fmt_micro(s * 10_000)) | st.integers(0, 10**6).map(str)
    fields: dict[str, Any] = {
        "asset_id": draw(st.sampled_from([YES, NO, AWAITING, SUB, UNKNOWN, ""] if rare(draw, 3) else [YES, NO])),
        "price": draw(prices() if rare(draw, 4) else st.sampled_from(GRID)),
        "size": draw(sizes() if rare(draw, 4) else usual_size),
        "side": draw(st.sampled_from(SIDES if rare(draw, 5) else ["BUY", "SELL"])),
        "hash": draw(st.sampled_from([f"{draw(st.integers(0, 2**160 - 1)):040x}", "", ...])),
        "best_bid": draw(bests()),
        "best_ask": draw(bests()),
    }
    if rare(draw, 60):  # a required field missing
        del fields[draw(st.sampled_from(["asset_id", "price", "size", "side"]))]
    if rare(draw, 60):  # a value of the wrong JSON type
        fields[draw(st.sampled_from(sorted(fields)))] = draw(st.sampled_from([5, 0.5, None, True, [], {}]))
    pairs = Pairs(draw(st.permutations([(k, v) for k, v in fields.items() if v is not ...])))
    if rare(draw, 10):
        pairs.append((draw(st.sampled_from(["extra", "fee", "ÿ"])), draw(json_values())))
    if rare(draw, 40) and pairs:  # a duplicate key (msgspec keeps the last)
        pairs.append((pairs[0][0], draw(st.sampled_from(GRID))))
    return pairs


def json_values() -> st.SearchStrategy[Any]:
    scalars = st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-(10**30), 10**30),
        st.floats(allow_nan=False, allow_infinity=False),
        st.text(max_size=8),
        st.sampled_from(["1e999", "-0", "0.5E+3"]).map(RawNumber),
    )
    return st.recursive(
        scalars,
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
        max_leaves=8,
    )


class RawNumber(str):
    """A JSON number written as is."""


@st.composite
def frames(draw: st.DrawFn) -> bytes:
    changes = draw(st.lists(entries(), min_size=0, max_size=4))
    if draw(st.integers(0, 3)):  # most messages: one or two entries
        changes = changes[:2] or [draw(entries())]
    top: dict[str, Any] = {
        "market": draw(st.sampled_from([MARKET] * 8 + ["", ...])),
        "price_changes": changes,
        "timestamp": draw(st.sampled_from(["1777000000000"] * 6 + ["1777000000001", "", "x", ..., 1777000000002])),
        "event_type": draw(st.sampled_from(["price_change"] * 8 + [..., "book", "PRICE_CHANGE"])),
    }
    pairs = Pairs(draw(st.permutations([(k, v) for k, v in top.items() if v is not ...])))
    if rare(draw, 8):
        pairs.insert(draw(st.integers(0, len(pairs))), ("extra", draw(json_values())))
    if rare(draw, 40) and pairs:
        pairs.append(pairs[draw(st.integers(0, len(pairs) - 1))])
    text = render(pairs, draw)
    if rare(draw, 25):
        text = "[" + text + "]"
    raw = text.encode()
    mutation = draw(st.sampled_from(["none"] * 12 + ["truncate", "flip", "append"] + ["none"] * 12))
    if mutation == "truncate":
        raw = raw[: draw(st.integers(0, max(len(raw) - 1, 0)))]
    elif mutation == "flip" and raw:  # one byte changed
        k = draw(st.integers(0, len(raw) - 1))
        raw = raw[:k] + bytes([draw(st.integers(0, 255))]) + raw[k + 1 :]
    elif mutation == "append":
        raw += draw(st.sampled_from([b" ", b"\n", b"x", b"{}", b"\x00", b"  \r\n\t"]))
    return raw


def render(value: Any, draw: st.DrawFn) -> str:
    """JSON with generated whitespace and string spellings (escapes, raw UTF-8)."""
    ws = draw(st.sampled_from([""] * 10 + [" ", "\n  ", "\t", "\r\n"]))  # the venue's frames are compact
    if isinstance(value, dict):
        value = Pairs(value.items())
    if isinstance(value, Pairs):
        inner = ("," + ws).join(f"{ws}{_string(k, draw)}{ws}:{ws}{render(v, draw)}" for k, v in value)
        return "{" + inner + ws + "}"
    if isinstance(value, list):
        return "[" + ws + ("," + ws).join(render(v, draw) for v in value) + ws + "]"
    if isinstance(value, RawNumber):
        return str(value)
    if isinstance(value, str):
        return _string(value, draw)
    return json.dumps(value)


def _string(text: str, draw: st.DrawFn) -> str:
    ascii_only = draw(st.booleans())
    if text and ord(text[0]) < 0x10000 and rare(draw, 150):  # the first character as a \u escape
        return f'"\\u{ord(text[0]):04x}' + json.dumps(text[1:], ensure_ascii=ascii_only)[1:]
    return json.dumps(text, ensure_ascii=ascii_only)


def entry(asset: str, **fields: Any) -> dict[str, Any]:
    """One price_changes[] entry: a valid bid by default, `fields` replace or add (None: JSON null)."""
    return {"asset_id": asset, "price": "0.5", "size": "1", "side": "BUY", **fields}


def frame(*entries: dict[str, Any], market: str = MARKET) -> bytes:
    body = {"market": market, "price_changes": list(entries), "timestamp": "7", "event_type": "price_change"}
    return json.dumps(body, separators=(",", ":")).encode()


def canonical_frame(rng: Any) -> bytes:
    side = rng.choice(["BUY", "SELL"])
    body = {
        "market": MARKET,
        "price_changes": [
            {
                "asset_id": asset,
                "price": rng.choice(GRID),
                "size": fmt_micro(rng.choice([0, rng.randrange(1, 10**6) * 10_000])),
                "side": side,
                "hash": "ab" * 20,
                "best_bid": rng.choice(GRID),
                "best_ask": rng.choice(GRID),
            }
            for asset in (YES, NO)
        ],
        "timestamp": "1777000000000",
        "event_type": "price_change",
    }
    return json.dumps(body, separators=(",", ":")).encode()


# --- the decoder ----------------------------------------------------------------------------------------


def _msgspec_fast_branch(raw: bytes) -> tuple[str, Any]:
    """What decode_market_frame's price_change branch gives without the extension."""
    return outcome(lambda: _price_change_decoder.decode(raw))


@compiled
@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(frames())
def test_decoder_accepts_only_what_msgspec_decodes_identically(raw: bytes) -> None:
    fast = speedups.native.decode_price_change_frame  # type: ignore[union-attr]
    event = fast(raw)
    if event is not None:
        assert raw[:1] == b"{" and raw.find(b'"price_changes":', 0, 256) > 0
        kind, expected = _msgspec_fast_branch(raw)
        assert kind == "ok" and type(expected) is PriceChange
        assert event == expected
        assert [type(c) for c in event.changes] == [PriceLevelChange] * len(event.changes)
    # and the whole frame decodes to the same events (or the same error) either way
    with_c = outcome(lambda: decode_market_frame(raw))
    with speedups.disabled():
        without = outcome(lambda: decode_market_frame(raw))
    assert with_c == without
    with_c = outcome(lambda: decode_price_change(raw))
    with speedups.disabled():
        without = outcome(lambda: decode_price_change(raw))
    assert with_c == without


@compiled
@given(st.binary(max_size=300) | st.binary(max_size=40).map(lambda b: b'{"price_changes":' + b))
@settings(max_examples=500, deadline=None)
def test_decoder_on_arbitrary_bytes(raw: bytes) -> None:
    event = speedups.native.decode_price_change_frame(raw)  # type: ignore[union-attr]
    if event is not None:
        assert event == _price_change_decoder.decode(raw)


@compiled
def test_decoder_recognises_what_the_venue_sends() -> None:
    import random

    rng = random.Random(1)
    fast = speedups.native.decode_price_change_frame  # type: ignore[union-attr]
    for _ in range(200):
        raw = canonical_frame(rng)
        event = fast(raw)
        assert event is not None and event == _price_change_decoder.decode(raw)
    pretty = read("ws", "price_change_current_format_semisynthetic.json")
    assert fast(pretty) == _price_change_decoder.decode(pretty)
    declined: list[tuple[bytes | str, str]] = [
        (b'[{"market":"m","price_changes":[]}]', "array frame"),
        (b"PONG", "keepalive"),
        ('{"market":"m","price_changes":[]}', "str, not bytes"),
        (b'{"market":"\\u006d","price_changes":[]}', "escape"),
        (b'{"market":"m\xc3\xa9","price_changes":[]}', "non-ASCII"),
        (b'{"market":"m","price_changes":[],"market":"n"}', "duplicate key"),
        (b'{"market":"m","price_changes":[]', "truncated"),
        (b'{"market":"m","price_changes":[]} x', "trailing data"),
        (b'{"market":"m","price_changes":[],"timestamp":17}', "number timestamp"),
        (b'{"market":"m","price_changes":[],"event_type":"book"}', "other event type"),
        (b'{"price_changes":[]}', "no market"),
        (b" " * 250 + b'{"market":"m","price_changes":[]}', "key beyond 256 bytes"),
        (frame(entry("a", hash=None), market="m"), "null hash"),
        (b'{"market":"m","price_changes":[],"x":[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]}', "deep nesting"),
    ]
    for text, why in declined:
        assert fast(text) is None, why
    ok = frame(entry("a", best_bid=None), market="m")[:-1] + b',"x":[1,{"a":-0.5E+3}]}'
    assert fast(ok) == _price_change_decoder.decode(ok) != fast(frame(entry("a")))


# --- decode + apply -----------------------------------------------------------------------------------


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(recipes(), st.lists(frames(), min_size=1, max_size=6))
def test_frames_applied_compiled_and_python_end_in_the_same_books(recipe: Recipe, raws: list[bytes]) -> None:
    both_paths(recipe, apply_frames(raws))


@settings(max_examples=300, deadline=None)
@given(recipes(), st.randoms(use_true_random=False), st.integers(1, 40))
def test_venue_like_streams(recipe: Recipe, rng: Any, count: int) -> None:
    """Mostly the fast path end to end: well-formed frames on the books' own grid."""
    both_paths(recipe, apply_frames([canonical_frame(rng) for _ in range(count)]))


@settings(max_examples=60, deadline=None)
@given(recipes(), st.randoms(use_true_random=False), st.integers(3, 120))
def test_long_messages(recipe: Recipe, rng: Any, count: int) -> None:
    """Many entries in one message (the parser's growing buffer; each asset's last entry is checked)."""
    assets = [YES, NO, AWAITING, SUB, UNKNOWN]
    changes = [
        entry(
            rng.choice(assets),
            price=rng.choice(GRID),
            size=fmt_micro(rng.choice([0, rng.randrange(1, 10**6) * 10_000])),
            side=rng.choice(["BUY", "SELL"]),
            best_bid=rng.choice(GRID),
            best_ask=rng.choice(GRID),
        )
        for _ in range(count)
    ]
    raw = frame(*changes)
    if speedups.native is not None:
        assert speedups.native.decode_price_change_frame(raw) == _price_change_decoder.decode(raw)
    both_paths(recipe, apply_frames([raw]))


WEIRD_VALUES: list[Any] = [5, None, ["x"], 0.5, b"0.5", "0.5"]


@settings(max_examples=300, deadline=None)
@given(
    recipes(),
    st.lists(
        st.tuples(
            st.sampled_from([YES, NO, AWAITING, SUB, UNKNOWN, 7, ("t",)]),
            st.one_of(prices(), st.sampled_from(WEIRD_VALUES)),
            st.one_of(sizes(), st.sampled_from(WEIRD_VALUES)),
            st.one_of(st.sampled_from(SIDES), st.sampled_from(WEIRD_VALUES)),
            st.one_of(bests(), st.sampled_from(WEIRD_VALUES)).filter(lambda v: v is not ...),
            st.one_of(bests(), st.sampled_from(WEIRD_VALUES)).filter(lambda v: v is not ...),
        ),
        max_size=5,
    ),
    st.sampled_from(["tuple", "tuple", "list"]),
    st.sampled_from(["1777000000000", "", 5]),
)
def test_constructed_events_with_any_field_values(
    recipe: Recipe, raw_changes: list[tuple[Any, ...]], container: str, ts: Any
) -> None:
    """Events built in Python need not hold strings: the errors must match too."""

    def make() -> PriceChange:
        changes = [PriceLevelChange(a, p, s, d, "", bb, ba) for a, p, s, d, bb, ba in raw_changes]
        return PriceChange(MARKET, tuple(changes) if container == "tuple" else changes, ts)  # type: ignore[arg-type]

    both_paths(recipe, lambda books: books.apply_price_change(make()))


def _one_field_cases() -> list[tuple[str, Any]]:
    cases: list[tuple[str, Any]] = [("side", v) for v in SIDES]
    cases += [("price", v) for v in ODD_PRICES + FINE[:5]]
    cases += [("size", v) for v in ODD_SIZES]
    cases += [(k, v) for k in ("best_bid", "best_ask") for v in [*BESTS, None, ...]]
    cases += [("asset_id", v) for v in (AWAITING, SUB, UNKNOWN, "")]
    return cases


@pytest.mark.parametrize(("field", "value"), _one_field_cases())
@pytest.mark.parametrize("verify", [True, False])
def test_every_listed_oddity_in_an_otherwise_usual_message(field: str, value: Any, verify: bool) -> None:
    """Each odd value of the lists above, alone in a message the venue could send (YES then NO)."""
    recipe = make_recipe(sub=True, verify=verify)
    yes = {"asset_id": YES, "price": "0.55", "size": "12.5", "side": "SELL", "hash": "ab" * 20,
           "best_bid": "0.49", "best_ask": "0.51"}  # fmt: skip
    no = {"asset_id": NO, "price": "0.45", "size": "12.5", "side": "BUY", "hash": "cd" * 20,
          "best_bid": "0.49", "best_ask": "0.51"}  # fmt: skip
    for target in (yes, no):
        entry = dict(target)
        if value is ...:
            del entry[field]
        else:
            entry[field] = value
        changes = [entry, no] if target is yes else [yes, entry]
        body = {"market": MARKET, "price_changes": changes, "timestamp": "5", "event_type": "price_change"}
        raw = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
        both_paths(recipe, apply_frames([raw]))
        # and as a constructed event (the decoder may have declined the frame)
        event = PriceChange(MARKET, tuple(_constructed(c) for c in changes), "5")
        both_paths(recipe, lambda books, event=event: books.apply_price_change(event))  # type: ignore[misc]


def _constructed(c: dict[str, Any]) -> PriceLevelChange:
    return PriceLevelChange(
        c["asset_id"], c["price"], c["size"], c["side"], c["hash"], c.get("best_bid"), c.get("best_ask")
    )


def test_huge_sizes_raise_the_same_error_after_the_same_partial_update() -> None:
    recipe = make_recipe(yes_bids={10: MICRO}, yes_asks={90: MICRO})
    frame = {
        "market": MARKET,
        "price_changes": [
            {"asset_id": YES, "price": "0.2", "size": "5", "side": "BUY", "best_bid": "0.2", "best_ask": "0.9"},
            {"asset_id": NO, "price": "0.8", "size": "9" * 5000, "side": "SELL", "best_bid": "0.1", "best_ask": "0.8"},
        ],
        "timestamp": "1",
        "event_type": "price_change",
    }
    raw = json.dumps(frame).encode()
    both_paths(recipe, apply_frames([raw]))
    books, _ = build(recipe)
    with pytest.raises(ValueError, match="Exceeds the limit"):
        apply_frames([raw])(books)


def test_fixtures_both_paths() -> None:
    names = [n for n in fixture_files("ws") if n.startswith("price_change")]
    assert len(names) == 3
    for verify in (True, False):
        for hook in ("none", "record"):
            recipe = make_recipe(
                yes_bids={i: i * MICRO for i in range(40, 60)},
                yes_asks={i: i * MICRO for i in range(61, 80)},
                verify=verify,
                hook=hook,
            )
            both_paths(recipe, apply_frames([read("ws", name) for name in names]))


def test_the_python_entry_function_is_the_python_loop_body() -> None:
    """`_apply_level_change` (what the compiled path hands unusual entries to) must stay the same code as
    the body of `_apply_price_change_python`'s loop after the book lookup: compared as syntax trees."""
    import ast
    import inspect
    import textwrap

    from polyoms.core import book as book_module

    method = ast.parse(textwrap.dedent(inspect.getsource(BookSet._apply_price_change_python))).body[0]
    helper = ast.parse(inspect.getsource(book_module._apply_level_change)).body[0]
    assert isinstance(method, ast.FunctionDef) and isinstance(helper, ast.FunctionDef)
    loop = next(node for node in ast.walk(method) if isinstance(node, ast.For))
    lookup = [ast.unparse(stmt).splitlines()[0] for stmt in loop.body[:3]]
    assert lookup == ["book = books.get(change.asset_id)", "if book is None:", "if last is not None:"]
    body = [ast.dump(stmt) for stmt in loop.body[3:]]
    assert body == [ast.dump(stmt) for stmt in helper.body[1:]]  # after its docstring


# --- memory ---------------------------------------------------------------------------------------------


@compiled
def test_no_reference_or_memory_leaks() -> None:
    """Repeated decodes and applies, including every fallback and error path, leave nothing behind."""
    import random

    rng = random.Random(3)
    frames_ = [canonical_frame(rng) for _ in range(50)]
    odd = [
        frame(entry(YES, price="0.555")),
        frame(entry(YES, side="XX")),
        frame(entry(UNKNOWN)),
        frame(entry(YES, size="9" * 20)),
        frame(entry(NO, best_bid="0.5", best_ask="0.6"), entry(YES), entry(NO, size="0")),
        frame()[:-1] + b',"x":[1,{"a":[true,null]}]}',
        frame(entry("a", best_bid=None)),
        frame(entry("a"))[:40],
    ]
    huge = frame(entry(YES, size="9" * 5000))
    recipe = make_recipe(
        yes_bids=dict.fromkeys(range(1, 50), MICRO), yes_asks=dict.fromkeys(range(51, 99), MICRO), sub=True
    )

    def cycle() -> None:
        books, calls = build(recipe)
        apply_frames(frames_ + odd)(books)  # errors are caught and returned
        with pytest.raises(ValueError):
            for event in decode_market_frame(huge):
                books.apply(event)
        listed = PriceChange(MARKET, [PriceLevelChange(YES, "0.5", "1", "BUY")], "1")  # type: ignore[arg-type]
        books.apply_price_change(listed)
        with pytest.raises(AttributeError):
            books.apply_price_change(PriceChange(MARKET, (PriceLevelChange(YES, "0.5", 5, "BUY"),), "1"))  # type: ignore[arg-type]
        calls.clear()

    def settle() -> None:
        speedups.native.clear_caches()  # type: ignore[union-attr]
        gc.collect()  # the recording hook and its BookSet form a cycle

    exact = [PriceChange, PriceLevelChange, Book, BookSet, SubBook, YES, NO, UNKNOWN]
    shared = [None, True, False]  # also used by everything else running: compared loosely
    for _ in range(30):
        cycle()
    settle()
    before = [sys.getrefcount(p) for p in exact + shared]
    tracemalloc.start()
    try:
        for _ in range(50):
            cycle()
        settle()
        first, _ = tracemalloc.get_traced_memory()
        for _ in range(500):
            cycle()
        settle()
        second, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    after = [sys.getrefcount(p) for p in exact + shared]
    assert after[: len(exact)] == before[: len(exact)]
    assert all(abs(a - b) < 100 for a, b in zip(after[len(exact) :], before[len(exact) :], strict=True))
    assert second - first < 4096, (first, second)  # 500 cycles x ~60 messages: no object per message leaks


# --- the fallback ---------------------------------------------------------------------------------------

_FALLBACK_SCRIPT = """
import json
import sys
{prelude}
from polyoms.core import speedups
from polyoms.core.book import BookSet
from polyoms.core.market_events import BookSnapshot
from polyoms.core.units import tick_size
from polyoms.polymarket.protocol.messages import decode_market_frame
assert speedups.native is None and not speedups.enabled(), speedups.native
books = BookSet()
asset = "{asset}"
books.apply_snapshot(BookSnapshot("m", asset, ((400000, 10**6),), ((600000, 10**6),), 1, tick_size=tick_size("0.01")))
change = {{"asset_id": asset, "price": "0.45", "size": "3", "side": "BUY", "best_bid": "0.45", "best_ask": "0.6"}}
raw = json.dumps({{"market": "m", "price_changes": [change], "timestamp": "2", "event_type": "price_change"}}).encode()
for event in decode_market_frame(raw):
    books.apply(event)
book = books[asset]
assert book.best_bid() == 450000 and book.size_at(0, 450000) == 3 * 10**6 and book.trusted, book
print("fallback ok")
"""


@pytest.mark.parametrize(
    ("env", "prelude"),
    [
        ({"POLYOMS_NO_SPEEDUPS": "1"}, ""),
        ({}, "sys.modules['polyoms._speedups'] = None  # as if it had not been built"),
    ],
    ids=["env-switch", "module-absent"],
)
def test_pure_python_fallback_in_a_fresh_interpreter(env: dict[str, str], prelude: str) -> None:
    script = _FALLBACK_SCRIPT.format(prelude=prelude, asset=YES)
    proc = subprocess.run(
        [sys.executable, "-c", script], env={**os.environ, **env}, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    assert "fallback ok" in proc.stdout


def test_a_stale_build_is_not_used(monkeypatch: pytest.MonkeyPatch) -> None:
    import types

    import polyoms

    fake = types.ModuleType("polyoms._speedups")
    fake.ABI = speedups.ABI + 1  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "polyoms._speedups", fake)
    monkeypatch.setattr(polyoms, "_speedups", fake, raising=False)
    monkeypatch.delenv(speedups.DISABLE_ENV, raising=False)
    with pytest.warns(RuntimeWarning, match="stale"):
        assert speedups._load() is None


def test_disabled_restores_the_compiled_path() -> None:
    before = speedups.enabled()
    with speedups.disabled():
        assert not speedups.enabled()
        assert speedups.decode_price_change_frame is None and speedups.apply_price_change is None
    assert speedups.enabled() == before == (speedups.native is not None)


@pytest.fixture
def python_only() -> Iterator[None]:
    with speedups.disabled():
        yield


def test_python_path_alone_applies_a_frame(python_only: None) -> None:
    books, _ = build(make_recipe(yes_bids={40: MICRO}, yes_asks={60: MICRO}, no=False, hook="none"))
    raw = (
        b'{"market":"m","price_changes":[{"asset_id":"' + YES.encode() + b'","price":"0.45","size":"2.5",'
        b'"side":"BUY","best_bid":"0.45","best_ask":"0.6"}],"timestamp":"9","event_type":"price_change"}'
    )
    for event in decode_market_frame(raw):
        books.apply(event)
    assert books[YES].best_bid() == 450_000 and books[YES].size_at(0, 450_000) == 2_500_000  # type: ignore[arg-type]
    assert books[YES].trusted and books[YES].timestamp_ms == 9
