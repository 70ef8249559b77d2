"""Crash by SIGKILL, restart, reconcile: the OMS as a real process killed at seeded points.

One local exchange (`polyoms sim` in a thread of the test process, on a free loopback port) outlives every
OMS process. Per seed, a fresh wallet of ours and a fresh counterparty are funded and `crash_worker.py`
runs as a child process: the engine with the Polymarket venue over REST and the WebSocket user channel,
journaling to SQLite, playing a seeded script (single and batched orders, a counterparty crossing them
so that they fill partially and fully or rest, cancels; settlement fails for some trades). The child is
killed by SIGKILL in the seed's window (crash_worker.WINDOWS; seed % 8), k drawn by the seed:

* mid_commit, intent_committed, post_returned, user_event — the child kills itself from a hook on the
  journal or the venue (between the writes and COMMIT; intent durable, POST not sent; answer read, not
  applied; user event received, not applied);
* post_unprocessed, post_processed, cancel_processed — the exchange kills it from a middleware when the
  k-th POST /order(s) (or cancel) of that wallet arrives, before processing it (then drops it) or after
  (the order is placed and maybe matched; the answer is never read);
* progress — the test kills it a few ms after it announced action k.

In every other round of the windows the journal is written by the writer process (crash_worker.writer_of),
which outlives the killed OMS until it has committed what it was handed.

The exchange goes on while the OMS is down (the counterparty trades). Then the test process restarts
the OMS: `recover_from(journal)` (replay, verified against the journal's tables; in-flight intents
become UNKNOWN; reconciliation), resolves the UNKNOWN orders, cancels everything, waits for every trade
to be final and reconciles again. It checks: every order hash reached the
exchange at most once (POSTs counted per hash at the HTTP layer, both lives) and none without a durable
intent; every journaled order is terminal and agrees with the exchange, and every order of ours at the
exchange is journaled (none adopted); the ledgers (cash, positions, all confirmed) equal the exchange's
balances, and no reconciliation ever had to repair a balance; the journal file is intact and replays
to the same state. The restarted OMS also trades on (new orders, taking what rests) before the checks.

About 0.8 s per seed, 64 seeds in ~50 s on two cores: the child's interpreter and imports take ~0.35 s.
POLYOMS_CRASH_PROCESS_SEEDS changes the number of seeds; POLYOMS_CRASH_PROCESS_REPORT=path appends one
JSON line per seed (window hit, order states, fills, orders UNKNOWN after the restart).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from aiohttp import web

from polyoms.core.clock import WallClock
from polyoms.core.enums import Side
from polyoms.core.units import MICRO
from polyoms.exchange.api import runner
from polyoms.exchange.api.faults import FaultConfig
from polyoms.exchange.api.runner import ThreadedSim, build_service
from polyoms.exchange.api.service import Caller, SimService
from polyoms.exchange.engine import Exchange
from polyoms.exchange.markets import MarketSpec
from polyoms.exchange.orders import CANCELED, MATCHED
from polyoms.exchange.settlement import SettlementConfig
from polyoms.exchange.trades import TRADE_CONFIRMED, TRADE_FAILED
from polyoms.oms import inputs, repairs
from polyoms.oms.engine import Engine, recover_from
from polyoms.oms.fills import FillTier
from polyoms.oms.journal import Journal
from polyoms.oms.journal_recovery import recover
from polyoms.oms.journal_writer import await_writer_exit
from polyoms.oms.oms_state import OmsState
from polyoms.oms.state import TERMINAL, OrderState
from polyoms.polymarket.client import ClientConfig, ClientHub, Wallet
from polyoms.polymarket.protocol.auth import POLY_ADDRESS
from polyoms.polymarket.protocol.wire import decode_envelope, decode_envelopes, signed_order_from_wire
from polyoms.venues.polymarket import PolymarketVenue
from polyoms.venues.polymarket_orders import prepared
from tests.oms import crash_worker
from tests.oms.crash_worker import CASH, SHARES
from tests.oms.test_engine_inprocess import rig

S = OrderState
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
SEEDS = int(os.environ.get("POLYOMS_CRASH_PROCESS_SEEDS", "64"))
WORKER = Path(crash_worker.__file__)
GRACE_MS = 200
# Settlement in tens of ms (the venue takes seconds) so that waiting for every trade to be final is short.
FAST_SETTLEMENT = SettlementConfig(mined_delay_ms=20, confirmed_delay_ms=40, retry_delay_ms=40)


@dataclass
class Killer:
    """The exchange side of the test: counts our POSTs per order hash, kills the OMS in a parent window."""

    address: str = ""
    pid: int | None = None
    window: str = ""
    k: int = 0
    posts: Counter[str] = field(default_factory=Counter)
    seen: Counter[str] = field(default_factory=Counter)
    fired: str = ""
    fired_on: str = ""
    """The request during which the kill came (method and path)."""

    def arm(self, address: str, window: str, k: int) -> None:
        self.address, self.window, self.k = address.lower(), window, k
        self.pid, self.fired, self.fired_on = None, "", ""
        self.posts.clear()
        self.seen.clear()

    def due(self, kind: str, window: str) -> bool:
        """This request (the latest of its kind: post or cancel) is the planned one for `window`."""
        return self.pid is not None and self.window == window and window.startswith(kind) and self.seen[kind] == self.k

    def kill(self, during: str = "") -> None:
        assert self.pid is not None
        self.fired_on = during
        # A process with SIGKILL pending never runs user code again: the answer written after this is
        # never read, whether or not the kernel has torn the process down yet.
        os.kill(self.pid, signal.SIGKILL)
        self.fired, self.pid = self.window, None


def order_ids(service: SimService, path: str, body: bytes) -> list[str]:
    envelopes = [decode_envelope(body)] if path == "/order" else decode_envelopes(body)
    out = []
    for env in envelopes:
        neg_risk = service.exchange.market_of_token(str(env.order.tokenId)).neg_risk
        out.append(signed_order_from_wire(env, chain_id=service.chain_id, neg_risk=neg_risk).order_id)
    return out


def with_killer(app: web.Application, service: SimService, killer: Killer) -> web.Application:
    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.headers.get(POLY_ADDRESS, "").lower() != killer.address:
            return await handler(request)
        kind = ""
        if request.method == "POST" and request.path in ("/order", "/orders"):
            kind = "post"
            for oid in order_ids(service, request.path, await request.read()):
                killer.posts[oid] += 1
        elif request.method == "DELETE" and request.path in ("/order", "/orders", "/cancel-all"):
            kind = "cancel"
        if not kind or killer.pid is None:
            return await handler(request)
        killer.seen[kind] += 1
        during = f"{request.method} {request.path}"
        if kind == "post" and killer.due(kind, "post_unprocessed"):
            killer.kill(during)
            return web.Response(status=503)  # nobody reads it: the order never reaches the matching engine
        try:
            return await handler(request)
        finally:  # a refusal (raised, rendered by the outer middleware) is an answer never read, too
            if killer.due(kind, f"{kind}_processed"):
                killer.kill(during)

    app.middlewares.append(middleware)  # inside the app's error middleware: errors are rendered as usual
    return app


@dataclass
class Venue:
    sim: ThreadedSim
    killer: Killer
    market: MarketSpec

    @property
    def tokens(self) -> tuple[str, str]:
        return self.market.yes_token_id, self.market.no_token_id


@pytest.fixture(scope="module")
def venue() -> Iterator[Venue]:
    killer = Killer()
    service = build_service(
        seed=21, settlement=FAST_SETTLEMENT, faults=FaultConfig(settlement_failure_rate=0.15, seed=21)
    )
    market = next(
        m for m in service.exchange.markets() if m.tick.text == "0.01" and m.fee.rate_num == 0 and not m.neg_risk
    )
    make_app = runner.make_app
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(runner, "make_app", lambda svc: with_killer(make_app(svc), svc, killer))
        sim = ThreadedSim(service).__enter__()
    try:
        yield Venue(sim, killer, market)
    finally:
        sim.__exit__(None, None, None)


def key(seed: int, who: str) -> str:
    return "0x" + hashlib.sha256(f"polyoms-crash-process:{seed}:{who}".encode()).hexdigest()


@dataclass
class Life:
    """What the first life of the OMS left behind."""

    window: str
    stdout: list[str]
    returncode: int
    during: str = ""


def run_child(v: Venue, seed: int, journal: Path, stderr_path: Path) -> Life:
    p = crash_worker.plan(seed)
    us, them = key(seed, "us"), key(seed, "them")
    m = v.market
    args = [sys.executable, str(WORKER), v.sim.url, str(seed), str(journal), us, them, *v.tokens, m.condition_id]
    v.killer.arm(Wallet.from_key(us).address, p.window, p.k)
    lines: list[str] = []
    with stderr_path.open("wb") as err:
        proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=err, text=True)
        v.killer.pid = proc.pid
        # The child kills itself within seconds in every path; this only keeps a broken one from hanging.
        watchdog = threading.Timer(60, proc.kill)
        watchdog.start()
        try:
            assert proc.stdout is not None
            for line in proc.stdout:
                lines.append(line.strip())
                if p.window == "progress" and line.strip() == f"ACT {p.k}" and v.killer.pid is not None:
                    time.sleep(p.delay_ms / 1000)
                    v.killer.kill()
            proc.wait()
        finally:
            watchdog.cancel()
    v.killer.pid = None  # from now on the requests of our wallet are the restarted OMS's
    if v.killer.fired:
        window = v.killer.fired
    else:
        killed = [x.split()[1] for x in lines if x.startswith("KILL ")]
        window = killed[-1] if killed else "?"
    return Life(window, lines, proc.returncode, v.killer.fired_on)


def while_down(v: Venue, seed: int) -> None:
    """The counterparty trades while the OMS is down; our user events of that time are lost."""
    rng = random.Random(seed ^ 0xD0)
    them = Wallet.from_key(key(seed, "them"))
    service = v.sim.service
    caller = Caller(them.address, v.sim.call(service.create_key, them.address, 0))
    builder = them.order_builder()
    for _ in range(rng.randint(0, 2)):
        t, side, price, size, _ = crash_worker.random_order(rng)
        order = builder.limit(v.tokens[t], side, price, size, tick="0.01")
        v.sim.call(service.submit_verified, caller, order)


def all_settled(service: SimService) -> bool:
    service.exchange.advance()
    return all(t.status in (TRADE_CONFIRMED, TRADE_FAILED) for t in service.exchange.all_trades)


async def restart(v: Venue, seed: int, journal: Path) -> tuple[Engine, list[repairs.RepairBatch]]:
    """The OMS restarted from its journal: recover, resolve, trade a little, cancel everything, settle,
    reconcile."""
    cfg = ClientConfig(clob_url=v.sim.url, gamma_url="http://127.0.0.1:9", data_url="http://127.0.0.1:9")
    async with ClientHub(cfg) as hub:
        wallet = Wallet.from_key(key(seed, "us"))
        await hub.clob(wallet).create_or_derive_api_key()
        pv = PolymarketVenue(hub.clob(wallet))
        markets = {t: v.market.condition_id for t in v.tokens}
        engine = await recover_from(journal, pv, WallClock(), markets=markets, unknown_grace_ms=GRACE_MS)
        try:
            for _ in range(20):
                if not await engine.resolve_unknown():
                    break
                await asyncio.sleep(GRACE_MS / 1000)  # the venue does not know it: wait out the grace
            assert engine.state.unknown == set()
            # Trading goes on after the restart (the counterparty's orders may still rest to be taken).
            rng = random.Random(seed ^ 0xAF)
            builder = wallet.order_builder()
            orders = [
                prepared(builder.limit(v.tokens[t], side, price, size, tick="0.01", order_type=ot))
                for t, side, price, size, ot in (crash_worker.random_order(rng) for _ in range(rng.randint(1, 3)))
            ]
            await engine.submit(orders, fee_rate_bps=0)
            await engine.drain()
            await engine.cancel_all()
            await engine.drain()
            them = Wallet.from_key(key(seed, "them")).address
            service = v.sim.service
            v.sim.call(service.exchange.cancel_all, v.sim.call(service.create_key, them, 0).api_key)
            deadline = time.monotonic() + 10
            while not v.sim.call(all_settled, service):
                assert time.monotonic() < deadline, "settlement did not finish"
                await asyncio.sleep(0.02)
            batches = await engine.reconcile()
            await engine.drain()
        finally:
            await engine.stop()
    return engine, batches


def settled_shares(exchange: Exchange) -> Counter[str]:
    """Shares each order traded at the exchange, failed trades left out."""
    out: Counter[str] = Counter()
    for t in exchange.all_trades:
        if t.status != TRADE_FAILED:
            out[t.taker_order_id] += t.size
            for m in t.maker_orders:
                out[m.order_id] += m.matched_amount
    return out


def report(seed: int, p: crash_worker.Plan, life: Life, st: OmsState, posts: Counter[str]) -> None:
    """One JSON line per seed to $POLYOMS_CRASH_PROCESS_REPORT (how the kills and outcomes spread)."""
    path = os.environ.get("POLYOMS_CRASH_PROCESS_REPORT")
    if not path:
        return
    restarted = [o for o in st.orders.values() if any(h.reason.startswith("restart") for h in o.history)]
    line = {
        "seed": seed,
        "window": p.window,
        "k": p.k,
        "hit": life.window,
        "acts": sum(1 for x in life.stdout if x.startswith("ACT ")),
        "orders": len(st.orders),
        "posted": len(posts),
        "states": dict(Counter(str(o.state) for o in st.orders.values())),
        "partial": sum(1 for o in st.orders.values() if 0 < o.filled < o.size),
        "fills": len(st.fills),
        "voided": sum(1 for f in st.fills.values() if f.tier is FillTier.VOIDED),
        "unknown_after_restart": len(restarted),
        "recovered_by_reconcile": sum(1 for o in st.orders.values() if any("reconcile" in h.actor for h in o.history)),
    }
    with open(path, "a") as f:
        f.write(json.dumps(line) + "\n")


@pytest.mark.parametrize("seed", range(SEEDS))
def test_sigkill_then_recover(venue: Venue, tmp_path: Path, seed: int) -> None:
    v = venue
    service = v.sim.service
    us, them = Wallet.from_key(key(seed, "us")), Wallet.from_key(key(seed, "them"))
    v.sim.call(service.fund, us.address, CASH * MICRO, {t: SHARES * MICRO for t in v.tokens})
    v.sim.call(service.fund, them.address, 10_000 * MICRO, {t: 10_000 * MICRO for t in v.tokens})
    journal = tmp_path / "oms.db"
    p = crash_worker.plan(seed)

    life = run_child(v, seed, journal, tmp_path / "stderr")
    stderr = (tmp_path / "stderr").read_text()
    assert life.returncode == -signal.SIGKILL, (life, stderr[-3000:])
    assert "READY" in life.stdout, stderr[-3000:]
    # The kill came in the planned window (a user event may fail to come in time: "end" then).
    assert life.window == p.window or (life.window == "end" and p.window == "user_event"), (life, p)
    if p.window.startswith("post_"):
        assert life.during in ("POST /order", "POST /orders") or p.window == "post_returned", life
    elif p.window == "cancel_processed":
        assert life.during.startswith("DELETE "), life
    # A writer process outlives its OMS until it has committed what it was handed; then the file is whole.
    assert await_writer_exit(journal, 60.0)
    with sqlite3.connect(journal) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)

    while_down(v, seed)
    engine, batches = asyncio.run(restart(v, seed, journal))
    st = engine.state
    exchange = service.exchange
    posts = v.killer.posts

    # Never sent twice, never sent without a durable intent.
    assert all(n == 1 for n in posts.values()), posts
    assert set(posts) <= set(st.orders), set(posts) - set(st.orders)
    api_key = v.sim.call(service.create_key, us.address, 0).api_key  # the same key again (deterministic)
    ours_at_exchange = {oid for oid, o in exchange.all_orders.items() if o.owner == api_key}
    assert ours_at_exchange <= set(posts)
    # Every journaled order is final and agrees with the exchange; none of the exchange's is unknown to us.
    assert ours_at_exchange <= set(st.orders)
    settled = settled_shares(exchange)
    for oid, o in st.orders.items():
        assert o.state in TERMINAL, (oid, o.state, [h.reason for h in o.history])
        x = exchange.get_order(oid)
        if x is None:
            assert o.state is S.REJECTED, (oid, o.state)
        else:
            # In shares from the trades: the venue gives a FOK/FAK BUY's size_matched in pUSD.
            assert o.filled == settled.get(oid, 0), (oid, o, x)
            agree = {(MATCHED, S.FILLED), (CANCELED, S.CANCELLED)}
            assert (x.status, o.state) in agree, (oid, o, x, [(h.to_state, h.reason, h.actor) for h in o.history])
    if p.window in ("intent_committed", "post_unprocessed") and life.window == p.window:
        # The order the kill caught is journaled, never reached the matching engine, and ends REJECTED.
        unsent = [oid for oid, o in st.orders.items() if exchange.get_order(oid) is None and o.state is S.REJECTED]
        assert unsent, "the kill caught no order in flight"

    # The ledgers equal the exchange's balances, all confirmed, and no reconciliation repaired a balance.
    lg = st.ledger(us.address)
    bal = v.sim.call(exchange.balances, us.address)
    assert (lg.prov_in, lg.prov_out, lg.reserved) == (0, 0, 0)
    assert lg.cash == bal.pusd
    for t in v.tokens:
        pos = lg.positions[t]
        assert (pos.confirmed, pos.prov_in, pos.prov_out, pos.reserved) == (bal.token(t).balance, 0, 0, 0), t
    assert st.check_invariants() == []
    assert not [d for b in batches for d in b.diffs if d.kind in (repairs.CASH_DRIFT, repairs.SHARES_DRIFT)]

    # The journal replays (verified against its own tables) to the final state; no drift, no adoption.
    again = recover(journal, WallClock(), attach=False)
    assert {k: (o.state, o.filled) for k, o in again.orders.items()} == {
        k: (o.state, o.filled) for k, o in st.orders.items()
    }
    lg2 = again.ledger(us.address)
    assert (lg2.cash, {t: p.confirmed for t, p in lg2.positions.items()}) == (
        lg.cash,
        {t: p.confirmed for t, p in lg.positions.items()},
    )
    report(seed, p, life, st, posts)
    j = Journal(journal)
    try:
        drift = [
            r for r in j.log(kind=inputs.O_DIFF) if r.payload["kind"] in (repairs.CASH_DRIFT, repairs.SHARES_DRIFT)
        ]
        assert drift == [], drift
        assert list(j.log(kind=inputs.O_ADOPT)) == []
    finally:
        j.close()


def test_matched_then_failed_while_down_is_not_cancelled(tmp_path: Path) -> None:
    """An order fully matched while the OMS was down, whose trade then failed: the venue says MATCHED
    (size_matched keeps the failed fill) and so must recovery, as the live path does (FILLED, filled 0) —
    not CANCELLED for want of a fill that still stands."""
    r = rig(tmp_path, failure_rate=1.0)

    async def body() -> None:
        engine = r.new_engine()
        engine.start()
        sell = prepared(r.builder.limit(r.yes, "SELL", "0.50", "10", tick="0.01"))
        (oid,) = await engine.submit([sell], fee_rate_bps=0)
        await engine.drain()
        await engine.crash()
        await r.theirs(Side.BUY, "0.50", "10")
        r.step(60_000)
        x = r.service.exchange.get_order(oid)
        assert x is not None and (x.status, x.size_failed) == (MATCHED, 10 * MICRO)
        engine = await recover_from(r.journal, r.venue, r.clock, markets=r.token_markets())
        await engine.stop()
        o = engine.state.order(oid)
        assert o.filled == 0
        assert o.state is S.FILLED, [(h.to_state, h.reason) for h in o.history]

    asyncio.run(body())
