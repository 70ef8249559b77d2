"""Crash and recover at random points, against the still-running in-process exchange.

Each seed runs a random workload (our orders in batches, counterparties crossing them, cancels, time
passing with settlement failures, answers lost in flight) and "kills" the engine after a random number
of steps: the engine task and its I/O are cancelled (an order journaled but not yet POSTed is never
sent; an answer under way is lost; for some seeds the last order is journaled and the engine dies
before its POST), nothing pending is flushed — for some seeds the last steps' inputs
were never committed at all — and the user events that happen while it is down are lost. A new engine
is rebuilt from the journal, marks in-flight intents UNKNOWN, reconciles with the venue, and trading
goes on. At the end: no order was ever POSTed twice, every order of ours at the exchange is known and
agrees, and the ledgers equal the exchange's balances and positions without any balance repair.

The simulated crash is in process (`Engine.crash()`, on a virtual clock). The real one — the OMS as a
child process killed by SIGKILL at seeded points (mid-commit, intent durable before its POST, POST
processed but unanswered, ...), against `polyoms sim` over sockets — is test_crash_process.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
from pathlib import Path

import pytest

from polyoms.core.enums import Side
from polyoms.oms import repairs
from polyoms.oms.engine import Engine, recover_from
from polyoms.oms.errors import TradingHaltedError
from polyoms.oms.state import TERMINAL, OrderState
from polyoms.venues.polymarket_orders import prepared
from tests.oms.test_engine_inprocess import Rig, assert_ledger_matches_exchange, rig

S = OrderState
SEEDS = int(os.environ.get("POLYOMS_ENGINE_CRASH_SEEDS", "50"))
GRACE_MS = 5_000


async def workload(r: Rig, engine: Engine, rng: random.Random, steps: int) -> None:
    for _ in range(steps):
        action = rng.random()
        if action < 0.35:
            if engine.admission_errors():
                await engine.resolve_unknown()
                continue
            orders = []
            for _ in range(rng.randint(1, 3)):
                side = rng.choice(("BUY", "SELL"))
                token = rng.choice((r.yes, r.no))
                price = f"0.{rng.randint(40, 60)}"
                orders.append(prepared(r.builder.limit(token, side, price, str(rng.randint(5, 12)), tick="0.01")))
            with contextlib.suppress(TradingHaltedError):
                await engine.submit(orders, fee_rate_bps=0)
        elif action < 0.6:
            side = rng.choice((Side.BUY, Side.SELL))
            await r.theirs(side, f"0.{rng.randint(40, 60)}", str(rng.randint(5, 15)), rng.choice((r.yes, r.no)))
        elif action < 0.7:
            live = [o.order_id for o in engine.state.open_orders() if o.state not in (S.SUBMITTING, S.UNKNOWN)]
            if live:
                await engine.cancel([rng.choice(live)])
        elif action < 0.9:
            r.step(rng.randint(100, 4_000))
        else:
            await engine.resolve_unknown()
        if rng.random() < 0.6:
            await engine.drain()  # otherwise the next step (or the crash) finds I/O under way


async def settle_all(r: Rig, engine: Engine) -> None:
    r.step(GRACE_MS + 1_000)
    assert await engine.resolve_unknown() == []
    await engine.cancel_all()
    await engine.drain()
    r.step(3_600_000)
    await engine.drain()


@pytest.mark.parametrize("seed", range(SEEDS))
def test_crash_anywhere_then_recover(tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    r = rig(tmp_path, seed=seed, failure_rate=0.2, lose=0.15)

    async def body() -> None:
        engine = r.new_engine(unknown_grace_ms=GRACE_MS)
        engine.start()
        await workload(r, engine, rng, rng.randint(1, 30))
        if rng.random() < 0.4:
            # The last inputs are applied but never committed (until an intent commits them).
            engine.state.journal.flush = lambda wait=False: None  # type: ignore[method-assign,union-attr]
            await workload(r, engine, rng, rng.randint(1, 4))
        if rng.random() < 0.3 and not engine.admission_errors():
            # Killed between the journal's commit and the POST: the intent is durable, nothing was sent.
            never = asyncio.Event()

            async def hang(orders: object) -> object:
                await never.wait()
                raise AssertionError("unreachable")

            r.venue.submit = hang  # type: ignore[assignment,method-assign]
            unsent = r.builder.limit(r.no, "BUY", "0.45", "5", tick="0.01")
            await engine.submit([prepared(unsent)], fee_rate_bps=0)
        else:
            unsent = None
        await engine.crash()
        r.venue.__dict__.pop("submit", None)
        # The exchange goes on while we are down; what our user channel said meanwhile is lost.
        for _ in range(rng.randint(0, 3)):
            await r.theirs(rng.choice((Side.BUY, Side.SELL)), f"0.{rng.randint(40, 60)}", "7", r.yes)
            r.step(rng.randint(0, 20_000))

        engine = await recover_from(r.journal, r.venue, r.clock, markets=r.token_markets(), unknown_grace_ms=GRACE_MS)
        await workload(r, engine, rng, rng.randint(0, 15))
        await settle_all(r, engine)
        batches = await engine.reconcile()
        drift = [d for b in batches for d in b.diffs if d.kind in (repairs.CASH_DRIFT, repairs.SHARES_DRIFT)]
        assert drift == []
        await engine.stop()

        # Exactly once: every POST carried a distinct order, and each order we journaled went out at most once.
        assert all(n == 1 for n in r.venue.posts.values()), r.venue.posts
        state = engine.state
        for order_id, o in state.orders.items():
            assert o.state in TERMINAL, (order_id, o.state)
            x = r.service.exchange.get_order(order_id)
            if x is None:
                assert o.state is S.REJECTED
            else:
                assert r.venue.posts[order_id] == 1
                assert o.filled == x.size_matched - x.size_failed, (o, x)
        ours = {o.order_id for o in r.service.exchange.all_orders.values() if o.owner == r.venue.owner}
        assert ours <= set(state.orders)
        if unsent is not None:
            assert state.order(unsent.order_id).state is S.REJECTED and unsent.order_id not in r.venue.posts
        assert_ledger_matches_exchange(r, engine)

    asyncio.run(body())
