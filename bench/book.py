"""Order-book mirror benchmark: market-channel price_change messages decoded and applied, vs nautilus_trader.

    .venv/bin/python bench/book.py [--json] [--messages N] [--rounds R] [--seed S]

Workload (deterministic from the seed): one binary market at tick 0.01, YES and NO books populated on
every level (as real books near the touch are). Each message is a current-format `price_change`
(shape of ws/price_change_current_format_semisynthetic.json, event_type last as in live captures) with
two entries, as the venue sends for one order: the YES level and its mirror on the NO book (BUY YES
at p = SELL NO at 1 - p). Levels are drawn near the touch (geometric distance; ~30 % improve it,
never crossing), ~20 % of updates remove a level, sizes are varied integers and 2-decimal amounts, and
every entry carries the correct best_bid/best_ask of a reference model, so the mirror's best-price
check runs and passes.

Timed (each pass replays all messages from the same initial books; passes of all contenders are
interleaved, their order rotating each round; garbage collector paused inside a pass; medians):

* `us_per_price_change_msg`: `decode_market_frame(raw)` + `BookSet.apply(event)` per message, the
  default path (compiled when the optional C extension polyoms._speedups is built: `speedups` says
  whether it was); `us_decode_per_msg` / `us_apply_per_msg` split it;
* `us_per_price_change_msg_python` (and `..._decode_...`, `..._apply_...`): the same calls with the
  extension switched off (`polyoms.core.speedups.disabled()`), i.e. the pure-Python fallback;
* `us_per_price_change_msg_1_entry` (and `..._python`): the same stream with the YES entry only;
* `updates_per_s`: raw level updates `Book.set_level(side, price, size)` with integer micro-units, one
  call each; `updates_per_s_batch`: the same updates through `Book.set_levels`;
* nautilus_trader (Python API, same process): its Polymarket adapter's path per message (msgspec
  decode into its schemas, `BookOrder`/`OrderBookDelta` built the way its adapter does, then
  `OrderBook.apply_delta`, L2_MBP); `OrderBook.apply_delta` alone over prebuilt deltas; and building
  each delta from Python values then applying it (what a Python caller pays per level update).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import random
import statistics
import sys
import time
from collections.abc import Callable
from enum import Enum
from typing import Any

import msgspec

from polyoms.core import speedups
from polyoms.core.book import Book, BookSet
from polyoms.core.enums import Side
from polyoms.core.market_events import BookSnapshot
from polyoms.core.units import MICRO, fmt_micro, tick_size
from polyoms.polymarket.protocol.messages import decode_market_frame

MARKET = "0x5f65177b394277fd294cd75650044e32ba009a95022d88a0c1d565897d72f8f1"
YES = "52114319501245915516055106046884209969926127482827954674443846427813813222426"
NO = "71321045679252212594626385532706912750332728571942532289631379312455583992563"
TICK = tick_size("0.01")
STEP = TICK.micro
LEVELS = MICRO // STEP  # prices are STEP * 1 .. STEP * (LEVELS - 1)


def _random_size(rng: random.Random) -> int:
    if rng.random() < 0.5:
        return rng.choice((5, 10, 15, 20, 25, 50, 100, 150, 200, 250, 500, 1000, 2500, 5000)) * MICRO
    return rng.randrange(100, 5_000_000) * 10_000  # 1.00 .. 50,000.00 with two decimals


class Workload:
    """Initial YES book (NO is its mirror), the message stream, and the raw YES level updates."""

    def __init__(self, messages: int, seed: int) -> None:
        rng = random.Random(seed)
        mid = LEVELS // 2
        # YES: bids on 1..mid-1, asks on mid+1..LEVELS-1, every level populated.
        self.bids = {i: _random_size(rng) for i in range(1, mid)}
        self.asks = {i: _random_size(rng) for i in range(mid + 1, LEVELS)}
        self.snapshots = (self._snapshot(YES, self.bids, self.asks), self._snapshot(NO, *self._mirror()))
        bids, asks = dict(self.bids), dict(self.asks)
        self.messages: list[bytes] = []
        self.single_messages: list[bytes] = []  # the same stream, YES entry only
        self.updates: list[tuple[Side, int, int]] = []
        for n in range(messages):
            side = Side.BUY if rng.random() < 0.5 else Side.SELL
            book = bids if side is Side.BUY else asks
            best = (max(bids) if bids else mid - 1) if side is Side.BUY else (min(asks) if asks else mid + 1)
            away = min(int(rng.expovariate(0.5)), 12) - (rng.random() < 0.3)  # some quotes improve the touch
            i = best - away if side is Side.BUY else best + away
            # Stay uncrossed: a bid stays below the best ask, an ask above the best bid.
            if side is Side.BUY:
                i = max(1, min(i, (min(asks) if asks else LEVELS) - 1))
            else:
                i = min(LEVELS - 1, max(i, (max(bids) if bids else 0) + 1))
            size = 0 if (i in book and rng.random() < 0.2) else _random_size(rng)
            if size:
                book[i] = size
            else:
                book.pop(i, None)
            best_bid = max(bids) * STEP if bids else 0
            best_ask = min(asks) * STEP if asks else MICRO
            price = i * STEP
            self.updates.append((side, price, size))
            yes = {
                "asset_id": YES,
                "price": fmt_micro(price),
                "size": fmt_micro(size),
                "side": side.name,
                "hash": f"{rng.getrandbits(160):040x}",
                "best_bid": fmt_micro(best_bid),
                "best_ask": fmt_micro(best_ask),
            }
            no = {
                "asset_id": NO,
                "price": fmt_micro(MICRO - price),
                "size": fmt_micro(size),
                "side": side.opposite.name,
                "hash": f"{rng.getrandbits(160):040x}",
                "best_bid": fmt_micro(MICRO - best_ask),
                "best_ask": fmt_micro(MICRO - best_bid),
            }
            body = {
                "market": MARKET,
                "price_changes": [yes, no],
                "timestamp": str(1_777_000_000_000 + n),
                "event_type": "price_change",
            }
            self.messages.append(json.dumps(body, separators=(",", ":")).encode())
            body["price_changes"] = [yes]
            self.single_messages.append(json.dumps(body, separators=(",", ":")).encode())
        self.final_best = (max(bids) * STEP, min(asks) * STEP)

    def _mirror(self) -> tuple[dict[int, int], dict[int, int]]:
        return ({LEVELS - i: s for i, s in self.asks.items()}, {LEVELS - i: s for i, s in self.bids.items()})

    @staticmethod
    def _snapshot(asset: str, bids: dict[int, int], asks: dict[int, int]) -> BookSnapshot:
        return BookSnapshot(
            market=MARKET,
            asset_id=asset,
            bids=tuple((i * STEP, s) for i, s in sorted(bids.items())),
            asks=tuple((i * STEP, s) for i, s in sorted(asks.items(), reverse=True)),
            timestamp_ms=1_776_999_999_999,
            tick_size=TICK,
        )


# --- contenders -------------------------------------------------------------------------------------


class Contender:
    """`reset()` (untimed) then `run()` does one pass over `count` operations."""

    def __init__(self, name: str, count: int, reset: Callable[[], None], run: Callable[[], None]) -> None:
        self.name = name
        self.count = count
        self.reset = reset
        self.run = run
        self.samples: list[float] = []  # µs per operation, one per pass

    def timed_pass(self) -> None:
        self.reset()
        gc.collect()
        gc.disable()
        try:
            start = time.perf_counter_ns()
            self.run()
            elapsed = time.perf_counter_ns() - start
        finally:
            gc.enable()
        self.samples.append(elapsed / self.count / 1000.0)

    @property
    def median(self) -> float:
        return statistics.median(self.samples)


def polyoms_contenders(w: Workload) -> tuple[list[Contender], dict[str, Any]]:
    state: dict[str, Any] = {}
    messages = w.messages

    def reset_books() -> None:
        books = BookSet()
        for snap in w.snapshots:
            books.apply_snapshot(snap)
        state["books"] = books
        state["book"] = books[YES]

    def python_path(run: Callable[[], None]) -> Callable[[], None]:
        def wrapped() -> None:
            with speedups.disabled():
                run()

        return wrapped

    def replay(stream: list[bytes]) -> Callable[[], None]:
        def run() -> None:
            apply = state["books"].apply
            for raw in stream:
                for event in decode_market_frame(raw):
                    apply(event)

        return run

    def decode_only() -> None:
        for raw in messages:
            decode_market_frame(raw)

    events = [e for raw in messages for e in decode_market_frame(raw)]
    with speedups.disabled():
        python_events = [e for raw in messages for e in decode_market_frame(raw)]
    assert python_events == events

    def apply_events(stream: list[Any]) -> Callable[[], None]:
        def run() -> None:
            apply = state["books"].apply
            for event in stream:
                apply(event)

        return run

    updates = w.updates

    def raw_updates() -> None:
        set_level = state["book"].set_level
        for side, price, size in updates:
            set_level(side, price, size)

    def batch_updates() -> None:
        state["book"].set_levels(updates)

    # Correctness of the replays, checked once before timing: both books end trusted and equal to the
    # reference, the venue's best prices having been confirmed on every message.
    for stream in (messages, w.single_messages):
        for path in (replay(stream), python_path(replay(stream))):
            reset_books()
            path()
            books: BookSet = state["books"]
            assert not books.untrusted(), books.untrusted()
            yes: Book = books[YES]
            assert (yes.best_bid(), yes.best_ask()) == w.final_best
    reset_books()
    raw_updates()
    assert (state["book"].best_bid(), state["book"].best_ask()) == w.final_best
    info = {"final_yes_best": [fmt_micro(w.final_best[0]), fmt_micro(w.final_best[1])]}

    n = len(messages)
    return [
        Contender("polyoms decode+apply", n, reset_books, replay(messages)),
        Contender("polyoms decode", n, reset_books, decode_only),
        Contender("polyoms apply", n, reset_books, apply_events(events)),
        Contender("polyoms 1-entry msg", n, reset_books, replay(w.single_messages)),
        Contender("python decode+apply", n, reset_books, python_path(replay(messages))),
        Contender("python decode", n, reset_books, python_path(decode_only)),
        Contender("python apply", n, reset_books, python_path(apply_events(python_events))),
        Contender("python 1-entry msg", n, reset_books, python_path(replay(w.single_messages))),
        Contender("polyoms set_level", len(updates), reset_books, raw_updates),
        Contender("polyoms set_levels", len(updates), reset_books, batch_updates),
    ], info


# The message schemas of nautilus_trader's Polymarket adapter, declared here as they are there: the
# adapter package cannot be imported without the V1 `py_clob_client` (not installed with polyoms),
# and its schemas are plain msgspec structs (frozen, tagged on event_type, a str Enum for the side),
# so the same decoding work is reproduced with the same field types and the same union.


class NtOrderSide(Enum):
    BUY = "BUY"
    SELL = "SELL"


class NtBookLevel(msgspec.Struct, frozen=True):
    price: str
    size: str


class NtBookSnapshot(msgspec.Struct, tag="book", tag_field="event_type", frozen=True):
    market: str
    asset_id: str
    bids: list[NtBookLevel]
    asks: list[NtBookLevel]
    timestamp: str


class NtQuote(msgspec.Struct, frozen=True):
    asset_id: str
    price: str
    side: NtOrderSide
    size: str
    hash: str
    best_bid: str
    best_ask: str


class NtQuotes(msgspec.Struct, tag="price_change", tag_field="event_type", frozen=True):
    market: str
    price_changes: list[NtQuote]
    timestamp: str


class NtTrade(msgspec.Struct, tag="last_trade_price", tag_field="event_type", frozen=True):
    market: str
    asset_id: str
    fee_rate_bps: str
    price: str
    side: NtOrderSide
    size: str
    timestamp: str


class NtTickSizeChange(msgspec.Struct, tag="tick_size_change", tag_field="event_type", frozen=True):
    market: str
    asset_id: str
    new_tick_size: str
    old_tick_size: str
    timestamp: str


NT_MARKET_WS_MESSAGE = list[NtBookSnapshot] | NtBookSnapshot | NtQuotes | NtTrade | NtTickSizeChange


def nautilus_contenders(w: Workload) -> tuple[list[Contender], str | None]:
    try:
        from nautilus_trader.core.datetime import millis_to_nanos  # type: ignore[import-not-found,unused-ignore]
        from nautilus_trader.model.book import OrderBook  # type: ignore[import-not-found,unused-ignore]
        from nautilus_trader.model.data import BookOrder, OrderBookDelta  # type: ignore[import-not-found,unused-ignore]
        from nautilus_trader.model.enums import BookAction, BookType, OrderSide, RecordFlag  # type: ignore[import-not-found,unused-ignore]
        from nautilus_trader.model.identifiers import InstrumentId  # type: ignore[import-not-found,unused-ignore]
        from nautilus_trader.model.objects import Price, Quantity  # type: ignore[import-not-found,unused-ignore]
    except ImportError as exc:
        return [], f"nautilus_trader not importable: {exc}"

    ids = {
        YES: InstrumentId.from_str(f"{MARKET}-{YES}.POLYMARKET"),
        NO: InstrumentId.from_str(f"{MARKET}-{NO}.POLYMARKET"),
    }
    price_precision, size_precision = 2, 2
    state: dict[str, Any] = {}

    def delta(instrument: Any, side: Any, price: float, size: float, ts: int) -> Any:
        # As the adapter's _handle_quote: instrument.make_price(float(...)) is Price(value, precision).
        order = BookOrder(side, Price(price, price_precision), Quantity(size, size_precision), 0)
        action = BookAction.UPDATE if order.size > 0 else BookAction.DELETE
        return OrderBookDelta(instrument, action, order, RecordFlag.F_LAST, 0, ts, ts)

    def reset_books() -> None:
        books = {}
        for snap in w.snapshots:
            book = OrderBook(ids[snap.asset_id], BookType.L2_MBP)
            for price, size in snap.bids:
                book.apply_delta(delta(ids[snap.asset_id], OrderSide.BUY, price / MICRO, size / MICRO, 0))
            for price, size in snap.asks:
                book.apply_delta(delta(ids[snap.asset_id], OrderSide.SELL, price / MICRO, size / MICRO, 0))
            books[snap.asset_id] = book
        state["books"] = books

    decoder = msgspec.json.Decoder(NT_MARKET_WS_MESSAGE)
    messages = w.messages

    def full() -> None:
        books = state["books"]
        buy = NtOrderSide.BUY
        for raw in messages:
            msg = decoder.decode(raw)
            assert isinstance(msg, NtQuotes)
            ts = millis_to_nanos(float(msg.timestamp))
            for change in msg.price_changes:
                side = OrderSide.BUY if change.side == buy else OrderSide.SELL
                books[change.asset_id].apply_delta(
                    delta(ids[change.asset_id], side, float(change.price), float(change.size), ts)
                )

    prebuilt = [
        delta(ids[YES], OrderSide.BUY if side is Side.BUY else OrderSide.SELL, price / MICRO, size / MICRO, 0)
        for side, price, size in w.updates
    ]

    def raw_deltas() -> None:
        apply = state["books"][YES].apply_delta
        for d in prebuilt:
            apply(d)

    yes_id = ids[YES]
    py_updates = [
        (OrderSide.BUY if side is Side.BUY else OrderSide.SELL, price, size) for side, price, size in w.updates
    ]

    def built_deltas() -> None:
        # From Python values to an applied delta: what a Python caller pays per level update.
        apply = state["books"][YES].apply_delta
        for side, price, size in py_updates:
            apply(delta(yes_id, side, price / MICRO, size / MICRO, 0))

    # Same replay, same result: nautilus' final best prices equal the reference's.
    reset_books()
    full()
    bid, ask = state["books"][YES].best_bid_price(), state["books"][YES].best_ask_price()
    assert (round(float(bid) * MICRO), round(float(ask) * MICRO)) == w.final_best, (bid, ask, w.final_best)
    return [
        Contender("nautilus decode+apply", len(messages), reset_books, full),
        Contender("nautilus apply_delta", len(prebuilt), reset_books, raw_deltas),
        Contender("nautilus build+apply", len(prebuilt), reset_books, built_deltas),
    ], None


def machine() -> dict[str, Any]:
    return {
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print exactly one JSON object")
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    workload = Workload(args.messages, args.seed)
    ours, info = polyoms_contenders(workload)
    theirs, nautilus_reason = nautilus_contenders(workload)
    contenders = ours + theirs
    for c in contenders:  # warm-up pass each
        c.timed_pass()
        c.samples.clear()
    for r in range(args.rounds):
        shift = r % len(contenders)
        for c in contenders[shift:] + contenders[:shift]:
            c.timed_pass()

    by_name = {c.name: c for c in contenders}
    msg_us = by_name["polyoms decode+apply"].median
    py_msg_us = by_name["python decode+apply"].median
    set_level_us = by_name["polyoms set_level"].median
    batch_us = by_name["polyoms set_levels"].median
    result: dict[str, Any] = {
        "benchmark": "book",
        "speedups": speedups.enabled(),
        "us_per_price_change_msg": round(msg_us, 3),
        "entries_per_msg": 2,
        "us_decode_per_msg": round(by_name["polyoms decode"].median, 3),
        "us_apply_per_msg": round(by_name["polyoms apply"].median, 3),
        "us_per_price_change_msg_1_entry": round(by_name["polyoms 1-entry msg"].median, 3),
        "us_per_price_change_msg_python": round(py_msg_us, 3),
        "us_decode_per_msg_python": round(by_name["python decode"].median, 3),
        "us_apply_per_msg_python": round(by_name["python apply"].median, 3),
        "us_per_price_change_msg_1_entry_python": round(by_name["python 1-entry msg"].median, 3),
        "ratio_msg_python_over_default": round(py_msg_us / msg_us, 2),
        "us_per_level_update": round(set_level_us, 4),
        "updates_per_s": round(1e6 / set_level_us),
        "us_per_level_update_batch": round(batch_us, 4),
        "updates_per_s_batch": round(1e6 / batch_us),
        "nautilus_version": None,
        "nautilus_us_per_price_change_msg": None,
        "nautilus_us_per_delta": None,
        "nautilus_us_per_delta_built": None,
        "nautilus_deltas_per_s": None,
        "ratio_msg_nautilus_over_polyoms": None,
        "ratio_msg_nautilus_over_polyoms_python": None,
        "ratio_updates_polyoms_over_nautilus": None,
        "ratio_updates_batch_polyoms_over_nautilus": None,
        "ratio_updates_polyoms_over_nautilus_built": None,
        "nautilus_reason": nautilus_reason,
        "messages": args.messages,
        "rounds": args.rounds,
        "seed": args.seed,
        "tick_size": str(TICK),
        "spread_us_per_msg": [
            round(min(by_name["polyoms decode+apply"].samples), 3),
            round(max(by_name["polyoms decode+apply"].samples), 3),
        ],
        "spread_us_per_msg_python": [
            round(min(by_name["python decode+apply"].samples), 3),
            round(max(by_name["python decode+apply"].samples), 3),
        ],
        "machine": machine(),
        **info,
    }
    if theirs:
        import nautilus_trader

        n_msg = by_name["nautilus decode+apply"].median
        n_delta = by_name["nautilus apply_delta"].median
        n_built = by_name["nautilus build+apply"].median
        result.update(
            nautilus_version=nautilus_trader.__version__,
            nautilus_us_per_price_change_msg=round(n_msg, 3),
            nautilus_us_per_delta=round(n_delta, 4),
            nautilus_us_per_delta_built=round(n_built, 4),
            nautilus_deltas_per_s=round(1e6 / n_delta),
            ratio_msg_nautilus_over_polyoms=round(n_msg / msg_us, 2),
            ratio_msg_nautilus_over_polyoms_python=round(n_msg / py_msg_us, 2),
            ratio_updates_polyoms_over_nautilus=round(n_delta / set_level_us, 2),
            ratio_updates_batch_polyoms_over_nautilus=round(n_delta / batch_us, 2),
            ratio_updates_polyoms_over_nautilus_built=round(n_built / set_level_us, 2),
        )
    if args.json:
        print(json.dumps(result))
        return
    print(f"book benchmark: {args.messages} price_change messages x {args.rounds} rounds, tick {TICK}, 2 entries/msg")
    print(f"compiled path (polyoms._speedups): {'in use' if result['speedups'] else 'NOT in use'}; python = fallback")
    print(f"{'contender':<24} {'median µs/op':>13} {'min':>9} {'max':>9} {'ops/s':>12}")
    for c in contenders:
        print(f"{c.name:<24} {c.median:>13.3f} {min(c.samples):>9.3f} {max(c.samples):>9.3f} {1e6 / c.median:>12,.0f}")
    if nautilus_reason:
        print(f"nautilus: {nautilus_reason}")
    else:
        print(
            f"speed-up over nautilus: message {result['ratio_msg_nautilus_over_polyoms']}x "
            f"(pure Python {result['ratio_msg_nautilus_over_polyoms_python']}x); level update "
            f"{result['ratio_updates_polyoms_over_nautilus']}x vs its prebuilt apply_delta "
            f"({result['ratio_updates_batch_polyoms_over_nautilus']}x batched), "
            f"{result['ratio_updates_polyoms_over_nautilus_built']}x vs building and applying a delta"
        )


if __name__ == "__main__":
    main()
