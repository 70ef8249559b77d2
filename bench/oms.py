"""OMS core throughput: user-channel events decoded and applied, with journal writes, per second.

    .venv/bin/python bench/oms.py [--json] [--orders N] [--batch B] [--runs R] [--seed S]

Workload (deterministic from the seed, generated up front as JSON bytes in the venue's shape, doc §6.3):
N orders of one wallet over 8 tokens of 4 markets, each journaled as an intent first (timed apart: the
intent commit is synchronous, see below). Per order, in venue order with some reordering:
* an order PLACEMENT (LIVE);
* one or two fills: trade MATCHED with 1–4 maker entries (ours among other users'; ~15 % of the trades
  have us on the complementary token, a MINT), the order UPDATE (size_matched grows), MINED, CONFIRMED;
* ~30 % end with a CANCELLATION; ~10 % of the orders are FOK taker BUYs (trade with us as TAKER, fee
  curve on), finished by the trade;
* ~5 % of all events are re-delivered duplicates, ~10 % of the UPDATEs arrive after their trade's MINED.
Each event is decoded from bytes to the typed event (`core.user_events`) and applied to the OmsState
(state machine, fills, ledgers) with a Journal attached; `flush()` hands the journal every `--batch`
events (one SQLite transaction: the batch's compressed log row + upserts of the touched orders, fills and
positions). The journal's three writers run interleaved, round after round, so that a noisy neighbour
slows them alike: "process" (the daemon's default: SQL and commits in a child process), "inline" (on the
OMS's thread) and "thread" (a writer thread).

Reported
* events_per_s: with the writer process, events over the whole timed loop (decode + apply + journal
  hand-over; every batch committed before the clock stops), GC paused, no per-event clock reads;
  events_per_s_inline_writer / events_per_s_thread_writer and their p99 incl. commits: the same with
  the other writers;
* events_per_s_runs / oms_cpu_us_per_event_runs: each run's throughput and the OMS process's own CPU time
  per event in it (the writer process not counted): when the two track each other, the OMS was never
  waiting, and the spread is the machine's;
* p99_event_us / p50_event_us: per event decode + apply (journal rows appended, no commit), from a
  second, instrumented pass;
* flush_us_median / flush_us_p99: one flush (`--batch` events' rows and state records encoded,
  compressed and handed to the writer process);
* p99_event_with_flush_us: p99 over events where an event that triggers a flush carries its cost;
* intent_us_normal / intent_us_full / intent_us_full_process_writer: one submit() — intent applied,
  journaled and committed on its own — inline with synchronous=NORMAL, with FULL (the default for intents:
  durable before the send), and FULL through the writer process (one pipe round trip more);
* decode_cpu_us (decode_cpu_us_python: the same with the compiled decoder off) / apply_cpu_us /
  journal_cpu_us (inline writer): process CPU time per event of each part, measured in separate passes
  (steadier than wall time on a shared machine), and oms_events_per_s_cpu = 1 / (apply + journal).
Events are decoded by the project's user-channel decoder (`user_messages.decode_user_frame`, compiled
when polyoms._speedups is built: `decoder_compiled`).
"""

from __future__ import annotations

import argparse
import gc
import itertools
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import msgspec

from _common import machine
from polyoms.core import speedups
from polyoms.core.clock import VirtualClock
from polyoms.core.enums import OrderType, Side
from polyoms.core.units import MICRO, fmt_micro, parse_micro
from polyoms.core.user_events import (
    TradeEvent,
)
from polyoms.oms.journal import Journal
from polyoms.oms.oms_state import OmsState
from polyoms.oms.state import OrderIntent
from polyoms.polymarket.protocol.user_messages import decode_user_frame

WALLET = "0x00000000000000000000000000000000000000a1"
OWNER = "00000000-0000-0000-0000-0000000000a1"
N_MARKETS = 4

_SIDES = {"BUY": Side.BUY, "SELL": Side.SELL}
_OTYPES = {t.value: t for t in OrderType}


def _decoder_fn() -> tuple[str, Any]:
    return "polymarket.protocol.user_messages", decode_user_frame


# --- workload ---------------------------------------------------------------------------------------


def _tokens(market: int) -> tuple[str, str]:
    return (str(10**70 + 2 * market), str(10**70 + 2 * market + 1))


def _order_json(kind: str, o: dict[str, Any], matched: int, status: str, ts: int) -> dict[str, Any]:
    return {
        "asset_id": o["token"],
        "associate_trades": None,
        "created_at": str(ts // 1000),
        "event_type": "order",
        "expiration": "0",
        "id": o["id"],
        "maker_address": WALLET,
        "market": o["market"],
        "order_owner": OWNER,
        "order_type": o["type"],
        "original_size": fmt_micro(o["size"]),
        "outcome": "Yes",
        "owner": OWNER,
        "price": fmt_micro(o["price"]),
        "side": o["side"],
        "size_matched": fmt_micro(matched),
        "status": status,
        "timestamp": str(ts),
        "type": kind,
    }


def _maker_json(
    order_id: str, owner: str, address: str, size: int, price: int, token: str, side: str
) -> dict[str, Any]:
    return {
        "asset_id": token,
        "fee_rate_bps": "0",
        "maker_address": address,
        "matched_amount": fmt_micro(size),
        "order_id": order_id,
        "outcome": "Yes",
        "outcome_index": 0,
        "owner": owner,
        "price": fmt_micro(price),
        "side": side,
    }


def _trade_json(t: dict[str, Any], status: str, ts: int) -> dict[str, Any]:
    return {
        "asset_id": t["token"],
        "bucket_index": 0,
        "event_type": "trade",
        "fee_rate_bps": str(t["fee_bps"]),
        "id": t["id"],
        "last_update": str(ts // 1000),
        "maker_address": t["taker_address"],
        "maker_orders": t["makers"],
        "market": t["market"],
        "match_time": str(t["match_time"]),
        "outcome": "Yes",
        "owner": OWNER,
        "price": fmt_micro(t["price"]),
        "side": t["side"],
        "size": fmt_micro(t["size"]),
        "status": status,
        "taker_order_id": t["taker_order_id"],
        "timestamp": str(ts),
        "trade_owner": OWNER,
        "trader_side": t["trader_side"],
        "transaction_hash": "0x" + "ab" * 32,
        "type": "TRADE",
    }


def make_workload(n_orders: int, seed: int) -> tuple[list[OrderIntent], list[bytes]]:
    rng = random.Random(seed)
    intents: list[OrderIntent] = []
    frames: list[bytes] = []
    enc = msgspec.json.encode
    ts = 1_777_000_000_000
    trade_no = 0
    for k in range(n_orders):
        ts += rng.randint(1, 20)
        m = rng.randrange(N_MARKETS)
        market = f"0x{m:064x}"
        yes, no = _tokens(m)
        token = yes if rng.random() < 0.5 else no
        order_id = f"0x{k + 1:064x}"
        ioc = rng.random() < 0.10
        price = rng.randint(20, 80) * 10_000
        if ioc:
            side, otype, size = "BUY", "FOK", rng.randint(5, 50) * MICRO
        else:
            side, otype, size = rng.choice(("BUY", "SELL")), "GTC", rng.randint(10, 200) * MICRO
        cash = size * price // MICRO
        maker_amt, taker_amt = (cash, size) if side == "BUY" else (size, cash)
        intents.append(
            OrderIntent(
                order_id,
                WALLET,
                market,
                token,
                _SIDES[side],
                _OTYPES[otype],
                price,
                size,
                maker_amt,
                taker_amt,
                "bench-algo",
                fee_rate_bps=400 if ioc else 0,
            )
        )
        o = {
            "id": order_id,
            "token": token,
            "market": market,
            "side": side,
            "type": otype,
            "size": size,
            "price": price,
        }
        events: list[bytes] = []
        if ioc:
            trade_no += 1
            others = [
                _maker_json(
                    f"0x{10**9 + trade_no * 8 + j:064x}", f"other-{j}", f"0x{j + 1:040x}", s, price, token, "SELL"
                )
                for j, s in enumerate(_split(size, rng.randint(1, 3), rng))
            ]
            t = {
                "id": f"trade-{trade_no}",
                "token": token,
                "market": market,
                "makers": others,
                "price": price,
                "side": side,
                "size": size,
                "taker_order_id": order_id,
                "trader_side": "TAKER",
                "fee_bps": 400,
                "taker_address": WALLET,
                "match_time": ts // 1000,
            }
            for status in ("MATCHED", "MINED", "CONFIRMED"):
                ts += rng.randint(1, 50)
                events.append(enc(_trade_json(t, status, ts)))
            events.append(enc(_order_json("UPDATE", o, size, "MATCHED", ts)))
        else:
            events.append(enc(_order_json("PLACEMENT", o, 0, "LIVE", ts)))
            matched = 0
            n_fills = rng.choice((1, 1, 2))
            for part in _split(size * rng.randint(3, 10) // 10 // 10_000 * 10_000 or 10_000, n_fills, rng):
                trade_no += 1
                matched += part
                ts += rng.randint(1, 50)
                cross = rng.random() < 0.15
                if cross:  # MINT/MERGE: the taker trades the other token, on the same side as us
                    t_token = no if token == yes else yes
                    t_side, t_price = side, MICRO - price
                else:
                    t_token, t_side, t_price = token, "SELL" if side == "BUY" else "BUY", price
                ours = _maker_json(order_id, OWNER, WALLET, part, price, token, side)
                others = [
                    _maker_json(
                        f"0x{10**9 + trade_no * 8 + j:064x}",
                        f"other-{j}",
                        f"0x{j + 1:040x}",
                        s,
                        t_price,
                        t_token,
                        "SELL" if t_side == "BUY" else "BUY",
                    )
                    for j, s in enumerate(_split(rng.randint(1, 100) * MICRO, rng.randint(0, 3), rng))
                ]
                makers = [ours, *others]
                rng.shuffle(makers)
                total = sum(parse_micro(x["matched_amount"]) for x in makers)
                t = {
                    "id": f"trade-{trade_no}",
                    "token": t_token,
                    "market": market,
                    "makers": makers,
                    "price": t_price,
                    "side": t_side,
                    "size": total,
                    "taker_order_id": f"0x{2 * 10**9 + trade_no:064x}",
                    "trader_side": "MAKER",
                    "fee_bps": 0,
                    "taker_address": "0x00000000000000000000000000000000000000ff",
                    "match_time": ts // 1000,
                }
                update = enc(_order_json("UPDATE", o, matched, "MATCHED" if matched >= size else "LIVE", ts))
                matched_ev = enc(_trade_json(t, "MATCHED", ts))
                mined = enc(_trade_json(t, "MINED", ts + 2000))
                confirmed = enc(_trade_json(t, "CONFIRMED", ts + 9000))
                if rng.random() < 0.10:
                    events += [matched_ev, mined, update, confirmed]
                else:
                    events += [matched_ev, update, mined, confirmed]
            if matched < size and rng.random() < 0.3:
                ts += rng.randint(1, 50)
                events.append(enc(_order_json("CANCELLATION", o, matched, "CANCELED", ts)))
        for e in list(events):
            if rng.random() < 0.05:
                events.append(e)  # a re-delivery (reconnect): must change nothing
        frames += events
    return intents, frames


def _split(total: int, parts: int, rng: random.Random) -> list[int]:
    """`total` (micro, multiple of 0.01 share) in `parts` positive pieces of whole 0.01 shares."""
    if parts <= 0:
        return []
    units = total // 10_000
    parts = max(1, min(parts, units))
    cuts = sorted(rng.sample(range(1, units), parts - 1)) if parts > 1 else []
    edges = [0, *cuts, units]
    return [(b - a) * 10_000 for a, b in itertools.pairwise(edges)]


# --- the timed runs ---------------------------------------------------------------------------------


WRITERS = ("inline", "thread", "process")


def _fresh(path: Path, intent_sync: str = "FULL", writer: str = "inline") -> OmsState:
    state = OmsState(VirtualClock(1_777_000_000_000))
    state.attach_journal(Journal(path, intent_sync=intent_sync, writer=writer))
    state.add_wallet(WALLET, [OWNER])
    state.set_balance(
        WALLET, cash=10**9 * MICRO, positions={t: 10**7 * MICRO for m in range(N_MARKETS) for t in _tokens(m)}
    )
    state.flush()
    return state


def _ready(intents: list[OrderIntent], tmp: Path, writer: str) -> tuple[OmsState, Path]:
    path = tmp / f"events-{time.monotonic_ns()}.sqlite"
    state = _fresh(path, intent_sync="NORMAL", writer=writer)
    for it in intents:  # journaled and committed before the events (not timed here)
        state.submit(it)
    state.flush(wait=True)
    gc.collect()
    return state, path


def _finish(state: OmsState) -> None:
    problems = state.check_invariants()
    if problems:
        raise SystemExit(f"invariants broken after the run: {problems[:3]}")
    state.journal.close()  # type: ignore[union-attr]


def run_events(
    intents: list[OrderIntent], frames: list[bytes], batch: int, decode: Any, tmp: Path, writer: str = "inline"
) -> dict[str, float]:
    """Throughput from a plain pass (no clock read per event: ~0.3 µs each, ~3 % of an event), then the
    latencies from a second, instrumented pass on a fresh state."""
    state, path = _ready(intents, tmp, writer)
    on_order, on_trade, flush = state.on_order_event, state.on_trade_event, state.flush
    gc.disable()
    try:
        cpu = time.process_time()
        start = time.perf_counter_ns()
        for n, data in enumerate(frames, 1):
            for ev in decode(data):
                if type(ev) is TradeEvent:
                    on_trade(ev)
                else:
                    on_order(ev)
            if n % batch == 0:
                flush()
        flush(wait=True)  # every batch committed before the clock stops
        elapsed = time.perf_counter_ns() - start
        cpu = time.process_time() - cpu  # this process only: a writer process is not counted
    finally:
        gc.enable()
    _finish(state)
    db_bytes = path.stat().st_size
    if path.with_name(path.name + "-wal").exists():
        db_bytes += path.with_name(path.name + "-wal").stat().st_size

    state, _ = _ready(intents, tmp, writer)
    per_event: list[int] = []
    flushes: list[int] = []
    with_flush: list[int] = []
    on_order, on_trade = state.on_order_event, state.on_trade_event
    perf = time.perf_counter_ns
    gc.disable()
    try:
        for n, data in enumerate(frames, 1):
            t0 = perf()
            for ev in decode(data):
                if type(ev) is TradeEvent:
                    on_trade(ev)
                else:
                    on_order(ev)
            t1 = perf()
            per_event.append(t1 - t0)
            if n % batch == 0:
                state.flush()
                t2 = perf()
                flushes.append(t2 - t1)
                with_flush.append(t2 - t0)
            else:
                with_flush.append(t1 - t0)
        state.flush(wait=True)
    finally:
        gc.enable()
    _finish(state)
    per_event.sort()
    flushes.sort()
    with_flush.sort()
    return {
        "events": len(frames),
        "events_per_s": len(frames) / (elapsed / 1e9),
        "oms_cpu_us_per_event": cpu / len(frames) * 1e6,
        "p50_event_us": per_event[len(per_event) // 2] / 1000,
        "p99_event_us": per_event[int(len(per_event) * 0.99)] / 1000,
        "p99_event_with_flush_us": with_flush[int(len(with_flush) * 0.99)] / 1000,
        "flush_us_median": statistics.median(flushes) / 1000 if flushes else 0.0,
        "flush_us_p99": flushes[int(len(flushes) * 0.99)] / 1000 if flushes else 0.0,
        "db_bytes": db_bytes,
    }


def cpu_breakdown(
    intents: list[OrderIntent], frames: list[bytes], batch: int, decode: Any, tmp: Path
) -> dict[str, float]:
    """CPU µs per event of each part, measured apart (process CPU time: steadier than wall time on a
    shared machine): decoding alone; applying pre-decoded events without a journal; with the journal."""
    out: dict[str, float] = {}
    gc.collect()
    gc.disable()
    try:
        t = time.process_time()
        events = [decode(f) for f in frames]
        out["decode_cpu_us"] = (time.process_time() - t) / len(frames) * 1e6
        with speedups.disabled():  # the pure-Python decoder, for comparison
            t = time.process_time()
            for f in frames:
                decode(f)
            out["decode_cpu_us_python"] = (time.process_time() - t) / len(frames) * 1e6
        for label, journal in (("apply_cpu_us", False), ("apply_journal_cpu_us", True)):
            if journal:
                state = _fresh(tmp / f"cpu-{time.monotonic_ns()}.sqlite", intent_sync="NORMAL")
            else:
                state = OmsState(VirtualClock(1_777_000_000_000))
                state.add_wallet(WALLET, [OWNER])
                state.set_balance(WALLET, cash=10**9 * MICRO)
            for it in intents:
                state.submit(it)
            state.flush()
            t = time.process_time()
            for n, evs in enumerate(events, 1):
                for ev in evs:
                    if type(ev) is TradeEvent:
                        state.on_trade_event(ev)
                    else:
                        state.on_order_event(ev)
                if n % batch == 0:
                    state.flush()
            state.flush(wait=True)
            out[label] = (time.process_time() - t) / len(frames) * 1e6
            if state.journal is not None:
                state.journal.close()
    finally:
        gc.enable()
    out["journal_cpu_us"] = out["apply_journal_cpu_us"] - out["apply_cpu_us"]
    return out


def run_intents(intents: list[OrderIntent], sync: str, tmp: Path, n: int, writer: str = "inline") -> float:
    path = tmp / f"intents-{sync}-{time.monotonic_ns()}.sqlite"
    state = _fresh(path, intent_sync=sync, writer=writer)
    sample = intents[:n]
    gc.collect()
    start = time.perf_counter_ns()
    for it in sample:
        state.submit(it)
    elapsed = time.perf_counter_ns() - start
    state.journal.close()  # type: ignore[union-attr]
    return elapsed / len(sample) / 1000


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--orders", type=int, default=6000)
    ap.add_argument("--batch", type=int, default=100)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--intents", type=int, default=500)
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    decoder_name, decode = _decoder_fn()
    intents, frames = make_workload(args.orders, args.seed)
    kinds: dict[str, int] = {}
    for f in frames:
        d = json.loads(f)
        key = f"{d['event_type']}:{d.get('type') if d['event_type'] == 'order' else d['status']}"
        kinds[key] = kinds.get(key, 0) + 1
    with tempfile.TemporaryDirectory() as td:
        tmp = Path(td)
        # Interleaved, so that a noisy neighbour slows every writer alike.
        by_writer: dict[str, list[dict[str, float]]] = {w: [] for w in WRITERS}
        for _ in range(args.runs):
            for w in WRITERS:
                by_writer[w].append(run_events(intents, frames, args.batch, decode, tmp, writer=w))
        runs, threaded, inline = by_writer["process"], by_writer["thread"], by_writer["inline"]
        best = max(runs, key=lambda r: r["events_per_s"])
        cpu = [cpu_breakdown(intents, frames, args.batch, decode, tmp) for _ in range(args.runs)]
        intent_normal = statistics.median(run_intents(intents, "NORMAL", tmp, args.intents) for _ in range(3))
        intent_full = statistics.median(run_intents(intents, "FULL", tmp, min(args.intents, 200)) for _ in range(3))
        intent_process = statistics.median(
            run_intents(intents, "FULL", tmp, min(args.intents, 200), writer="process") for _ in range(3)
        )
    result = {
        "benchmark": "oms",
        "events_per_s": round(statistics.median(r["events_per_s"] for r in runs)),
        "events_per_s_best": round(best["events_per_s"]),
        "events_per_s_runs": [round(r["events_per_s"]) for r in runs],
        "oms_cpu_us_per_event_runs": [round(r["oms_cpu_us_per_event"], 2) for r in runs],
        "p50_event_us": round(statistics.median(r["p50_event_us"] for r in runs), 2),
        "p99_event_us": round(statistics.median(r["p99_event_us"] for r in runs), 2),
        "p99_event_with_flush_us": round(statistics.median(r["p99_event_with_flush_us"] for r in runs), 2),
        "flush_us_median": round(statistics.median(r["flush_us_median"] for r in runs), 1),
        "flush_us_p99": round(statistics.median(r["flush_us_p99"] for r in runs), 1),
        "writer": "process",
        "events_per_s_inline_writer": round(statistics.median(r["events_per_s"] for r in inline)),
        "p99_event_with_flush_us_inline_writer": round(
            statistics.median(r["p99_event_with_flush_us"] for r in inline), 2
        ),
        "events_per_s_thread_writer": round(statistics.median(r["events_per_s"] for r in threaded)),
        "p99_event_with_flush_us_thread_writer": round(
            statistics.median(r["p99_event_with_flush_us"] for r in threaded), 2
        ),
        "decode_cpu_us": round(statistics.median(c["decode_cpu_us"] for c in cpu), 2),
        "decode_cpu_us_python": round(statistics.median(c["decode_cpu_us_python"] for c in cpu), 2),
        "apply_cpu_us": round(statistics.median(c["apply_cpu_us"] for c in cpu), 2),
        "journal_cpu_us": round(statistics.median(c["journal_cpu_us"] for c in cpu), 2),
        "oms_events_per_s_cpu": round(1e6 / statistics.median(c["apply_journal_cpu_us"] for c in cpu)),
        "batch": args.batch,
        "events": len(frames),
        "orders": args.orders,
        "runs": args.runs,
        "event_mix": dict(sorted(kinds.items())),
        "intent_us_normal": round(intent_normal, 1),
        "intent_us_full": round(intent_full, 1),
        "intent_us_full_process_writer": round(intent_process, 1),
        "db_bytes_per_event": round(best["db_bytes"] / len(frames), 1),
        "decoder": decoder_name,
        "decoder_compiled": speedups.decode_user_frame is not None,
        "machine": machine(),
    }
    if args.json:
        print(json.dumps(result))
        return
    print(
        f"OMS events: {result['events_per_s']:,} events/s (writer process; median of {args.runs};"
        f" best {result['events_per_s_best']:,})"
    )
    print(
        "  runs: "
        + ", ".join(
            f"{e:,}/s ({c} µs CPU/event)"
            for e, c in zip(result["events_per_s_runs"], result["oms_cpu_us_per_event_runs"], strict=True)
        )
    )
    print(
        f"  per event decode+apply: p50 {result['p50_event_us']} µs, p99 {result['p99_event_us']} µs;"
        f" p99 incl. commits {result['p99_event_with_flush_us']} µs"
    )
    print(
        f"  flush per {args.batch} events (encode, compress, hand over): median {result['flush_us_median']} µs,"
        f" p99 {result['flush_us_p99']} µs"
    )
    for w in ("inline", "thread"):
        print(
            f"  {w} writer: {result[f'events_per_s_{w}_writer']:,} events/s,"
            f" p99 incl. commits {result[f'p99_event_with_flush_us_{w}_writer']} µs"
        )
    print(
        f"  CPU per event: decode {result['decode_cpu_us']} µs (pure Python {result['decode_cpu_us_python']} µs),"
        f" apply {result['apply_cpu_us']} µs,"
        f" journal {result['journal_cpu_us']} µs (OMS alone, pre-decoded: {result['oms_events_per_s_cpu']:,}/s of CPU)"
    )
    print(
        f"  submit (intent committed): {result['intent_us_normal']} µs synchronous=NORMAL,"
        f" {result['intent_us_full']} µs FULL, {result['intent_us_full_process_writer']} µs FULL via the writer process"
    )
    print(f"  {len(frames):,} events over {args.orders:,} orders: {result['event_mix']}")
    compiled = "compiled (polyoms._speedups)" if result["decoder_compiled"] else "pure Python"
    print(f"  decoder: {decoder_name}, {compiled}; journal {result['db_bytes_per_event']} bytes/event")


if __name__ == "__main__":
    sys.exit(main())
