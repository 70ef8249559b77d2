"""join-best-bid through the whole path: the OMS view and books → the pure strategy → the manager →
the venue adapter → the local exchange in process, and back as fills."""

from __future__ import annotations

import asyncio
from pathlib import Path

from polyoms.algos.books import ExchangeBooks
from polyoms.core.enums import Side
from polyoms.core.units import MICRO
from polyoms.oms.manager import OrderManager
from polyoms.oms.state import OrderState
from polyoms.oms.view import OmsView
from polyoms.strategies.join_best_bid import JoinBestBid, JoinBestBidParams
from polyoms.strategies.manager import StrategyManager
from polyoms.strategies.oms_port import ManagerPort
from tests.oms.test_engine_inprocess import assert_ledger_matches_exchange, rig


def test_join_best_bid_quotes_follows_and_gets_filled_on_the_local_exchange(tmp_path: Path) -> None:
    r = rig(tmp_path)

    async def main() -> None:
        engine = r.new_engine()
        engine.start()
        try:
            books = ExchangeBooks(r.service.exchange)
            inst = books.instrument(r.yes)
            runner = StrategyManager(
                JoinBestBid(),
                JoinBestBidParams(token_id=r.yes, size=10 * MICRO, max_position=SHARES_CAP),
                actor="strategy:jbb",
                view=OmsView(engine.state),
                books=books,
                instruments={r.yes: inst},
                port=ManagerPort(OrderManager(engine), {r.yes: inst}, actor="strategy:jbb"),
                clock=r.clock,
            )
            await r.theirs(Side.BUY, "0.40", "50")
            await r.theirs(Side.SELL, "0.60", "50")
            first = await runner.step()
            await engine.drain()
            (oid,) = first.placed
            o = engine.state.order(oid)
            assert (o.side, o.price, o.size, o.post_only, o.state) == (
                Side.BUY,
                400_000,
                10 * MICRO,
                True,
                OrderState.LIVE,
            )
            assert o.actor == "strategy:jbb"

            again = await runner.step()  # nothing changed: nothing sent
            assert again.placed == () and again.plan.cancel == () and len(again.plan.keep) == 1

            await r.theirs(Side.BUY, "0.45", "50")  # a better bid: follow it
            moved = await runner.step()
            await engine.drain()
            assert moved.plan.cancel == (oid,) and len(moved.placed) == 1
            assert engine.state.order(oid).state is OrderState.CANCELLED
            (new,) = moved.placed
            assert engine.state.order(new).price == 450_000

            await r.theirs(Side.SELL, "0.45", "10")  # someone sells into our bid (we joined after them)
            await r.theirs(Side.SELL, "0.45", "50")
            await engine.drain()
            for _ in range(4):  # settlement: MATCHED → MINED → CONFIRMED
                r.step(3_000)
                await engine.drain()
            assert engine.state.order(new).state is OrderState.FILLED
            view = OmsView(engine.state).position(r.yes)
            assert view.confirmed - SHARES == 10 * MICRO
            assert_ledger_matches_exchange(r, engine)
        finally:
            await engine.stop()

    asyncio.run(main())


SHARES = 200 * MICRO
SHARES_CAP = SHARES + 100 * MICRO
