"""The user-channel client against `polyoms sim`: gaps are explicit, and the REST backfill recovers every
trade and order state exactly once, whatever the socket does (disconnects, stalls, duplicates, reorders)."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import random
import threading
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from polyoms.core.enums import OrderType, Side
from polyoms.core.errors import AuthError, PolyomsError
from polyoms.core.units import MICRO
from polyoms.core.user_events import (
    OrderEvent,
    OrderEventType,
    OrderStatus,
    TradeEvent,
    TradeStatus,
)
from polyoms.exchange.api.runner import ThreadedSim, build_service
from polyoms.exchange.orders import EngineOrder
from polyoms.exchange.settlement import SettlementConfig
from polyoms.polymarket.client import ClientHub, Wallet
from polyoms.polymarket.client.ws_common import BackoffPolicy, StreamDisconnected, StreamFailed, ws_url
from polyoms.polymarket.client.ws_user import (
    UserEventDeduper,
    UserStream,
    UserStreamConfig,
    UserStreamEvent,
    UserStreamGapped,
    UserStreamLive,
    UserUpdate,
)
from polyoms.polymarket.protocol.auth import ApiCreds
from polyoms.polymarket.protocol.hashing import keccak256
from polyoms.polymarket.protocol.user_messages import decode_user_frame
from tests.client.conftest import KEY_A, KEY_B, faults, hub_for, keyed, market

FAST_SETTLEMENT = SettlementConfig(mined_delay_ms=50, confirmed_delay_ms=100, retry_delay_ms=50)


@pytest.fixture
def sim() -> Iterator[ThreadedSim]:
    with ThreadedSim(build_service(seed=41, settlement=FAST_SETTLEMENT)) as server:
        yield server


def config(sim: ThreadedSim, **changes: Any) -> UserStreamConfig:
    base: dict[str, Any] = {
        "url": ws_url(sim.url, "user"),
        "ping_interval_s": 0.2,
        "stale_after_s": 1.0,
        "tick_s": 0.05,
        "backfill_retry_s": 0.1,
        "backoff": BackoffPolicy(base_s=0.05, max_s=0.4),
    }
    base.update(changes)
    return UserStreamConfig(**base)


class Trading:
    """Our orders resting and filling against other accounts, straight into the exchange, from a thread."""

    def __init__(self, sim: ThreadedSim, api_key: str, address: str, seed: int, register: Any = None) -> None:
        self.register = register
        """Called with each of our order ids before it is sent (as the OMS journals before sending)."""
        self.sim = sim
        self.api_key = api_key
        self.address = address
        self.rng = random.Random(seed)
        self.seed = seed
        self.market = market(sim)
        self.ours: list[str] = []
        self.stop = threading.Event()
        ex = sim.service.exchange
        self.others = [f"0x{i:040x}" for i in range(11, 14)]
        tokens = {self.market.yes_token_id: 5_000 * MICRO, self.market.no_token_id: 5_000 * MICRO}
        for user in [*self.others, address]:
            sim.call(ex.fund, user, 50_000 * MICRO, tokens)
        self.n = 0

    def _order(self, owner: str, maker: str, side: Side, cents: int, shares: int) -> EngineOrder:
        self.n += 1
        price = cents * MICRO // 100
        size = shares * MICRO
        notional = size * price // MICRO
        return EngineOrder(
            order_id="0x" + keccak256(f"user-test:{self.seed}:{self.n}".encode()).hex(),
            maker=maker,
            owner=owner,
            token_id=self.market.yes_token_id,
            side=side,
            maker_amount=notional if side is Side.BUY else size,
            taker_amount=size if side is Side.BUY else notional,
            order_type=OrderType.GTC,
        )

    def step(self) -> None:
        ex = self.sim.service.exchange
        rng = self.rng
        side = rng.choice((Side.BUY, Side.SELL))
        ours = self._order(self.api_key, self.address, side, rng.randrange(45, 56), rng.randrange(5, 30))
        if self.register is not None:
            self.register(ours.order_id)
        try:
            self.sim.call(ex.submit, ours)
        except PolyomsError:
            return
        self.ours.append(ours.order_id)
        other = rng.choice(self.others)
        # A counterparty takes part of it (or all, or more: then we are the maker of a partial fill).
        take = self._order(other, other, side.opposite, 45 if side is Side.SELL else 55, rng.randrange(3, 35))
        if rng.random() < 0.7:
            with contextlib.suppress(PolyomsError):
                self.sim.call(ex.submit, take)
        if rng.random() < 0.3:
            with contextlib.suppress(PolyomsError):
                self.sim.call(ex.cancel, ours.order_id, self.api_key)

    def run(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self.step()
            time.sleep(0.01)


async def _account(sim: ThreadedSim, hub: ClientHub) -> tuple[Wallet, str]:
    wallet = await keyed(hub, KEY_A, "ws-user")
    assert wallet.creds is not None
    return wallet, wallet.creds.api_key


def check_exactly_once(
    sim: ThreadedSim, items: list[UserStreamEvent], trading: Trading, rest_trades: list[Any]
) -> None:
    """Every trade and order state the exchange holds was emitted, once, and nothing went backwards."""
    updates = [e for e in items if isinstance(e, UserUpdate)]
    trade_states = [(u.event.id, u.event.status) for u in updates if isinstance(u.event, TradeEvent)]
    assert len(trade_states) == len(set(trade_states)), "a trade state was emitted twice"
    order_states = [
        (u.event.id, u.event.size_matched, u.event.status) for u in updates if isinstance(u.event, OrderEvent)
    ]
    assert len(order_states) == len(set(order_states)), "an order state was emitted twice"
    latest_trade: dict[str, TradeStatus] = {}
    for trade_id, status in trade_states:
        latest_trade[trade_id] = status
    venue = {t.id: t.status for t in rest_trades}
    assert venue and latest_trade == venue
    assert all(s is TradeStatus.CONFIRMED for s in venue.values())
    latest_order: dict[str, tuple[int, OrderStatus]] = {}
    for order_id, matched, status in order_states:
        assert order_id not in latest_order or matched >= latest_order[order_id][0], "size_matched went back"
        latest_order[order_id] = (matched, status)
    ex = trading.sim.service.exchange
    for order_id in trading.ours:
        order = sim.call(ex.get_order, order_id)
        assert latest_order.get(order_id) == (order.size_matched, OrderStatus(order.status)), order_id


async def settle(
    sim: ThreadedSim, stream: UserStream, client: Any, items: list[UserStreamEvent], trading: Trading
) -> list[Any]:
    """Wait (bounded) until the stream is LIVE and agrees with the venue: every trade final, every order
    state told. A frame the venue holds back (reorder fault) goes out with the next PONG."""
    deadline = time.monotonic() + 6.0
    while True:
        trades = await client.trades()
        try:
            assert stream.live
            check_exactly_once(sim, items, trading, trades)
            return trades
        except AssertionError:
            if time.monotonic() > deadline:
                return trades
        await asyncio.sleep(0.1)


@pytest.mark.parametrize(
    "fault",
    [
        {"ws_disconnect_rate": 0.05},
        {"ws_duplicate_rate": 0.3, "ws_reorder_rate": 0.2},
        {"ws_disconnect_rate": 0.03, "ws_duplicate_rate": 0.2, "ws_reorder_rate": 0.1, "ws_stall_rate": 0.01},
    ],
    ids=["disconnects", "duplicates+reorders", "everything"],
)
def test_backfill_recovers_every_trade_and_order_state_exactly_once(sim: ThreadedSim, fault: dict[str, float]) -> None:
    items: list[UserStreamEvent] = []
    frames: list[bytes] = []

    async def main() -> None:
        hub = hub_for(sim)
        try:
            wallet, api_key = await _account(sim, hub)
            client = hub.clob(wallet)
            stream = UserStream(client, config=config(sim), on_event=items.append, on_frame=frames.append)
            loop = asyncio.get_running_loop()

            def register(order_id: str) -> None:  # from the trading thread, into the stream's loop
                loop.call_soon_threadsafe(stream.watch_orders, [order_id])
                asyncio.run_coroutine_threadsafe(asyncio.sleep(0), loop).result(timeout=5)

            trading = Trading(sim, api_key, wallet.address, seed=len(fault), register=register)
            async with stream:
                assert await stream.wait_live(5)
                faults(sim, seed=9, **fault)
                await asyncio.to_thread(trading.run, 2.0)
                # Switched off rather than reset: a reset also discards a frame the venue holds back to
                # reorder it, which is a silent drop (see the next test for those).
                faults(sim, **dict.fromkeys(fault, 0))
                rest_trades = await settle(sim, stream, client, items, trading)
                check_exactly_once(sim, items, trading, rest_trades)
                assert len(rest_trades) > 20 and len(trading.ours) > 50
                gaps = [e for e in items if isinstance(e, UserStreamGapped)]
                lives = [e for e in items if isinstance(e, UserStreamLive)]
                kinds = [type(e) for e in items if isinstance(e, UserStreamGapped | UserStreamLive)]
                assert kinds[0] is UserStreamGapped and kinds[-1] is UserStreamLive
                assert all(a is not b for a, b in itertools.pairwise(kinds))  # alternate
                if "ws_disconnect_rate" in fault:
                    # (a socket lost again before the backfill finished does not gap the stream twice)
                    assert stream.reconnects > 0 and 1 < len(gaps) <= stream.reconnects + 1
                    assert any(u.backfill for u in items if isinstance(u, UserUpdate))
                    assert sum(e.backfilled_trades + e.backfilled_orders for e in lives) > 0
                else:
                    assert stream.reconnects == 0 and stream.stats.duplicates > 0
        finally:
            await hub.close()

    asyncio.run(main())
    kinds: Counter[str] = Counter()
    for frame in frames:
        for event in decode_user_frame(frame):
            kinds[type(event).__name__] += 1
    assert set(kinds) == {"OrderEvent", "TradeEvent"}


def test_frames_lost_without_a_disconnect_are_recovered_by_periodic_reconciliation(sim: ThreadedSim) -> None:
    """No sequence numbers: a frame dropped on an open socket is invisible, unless REST is polled anyway."""
    items: list[UserStreamEvent] = []

    async def main() -> None:
        hub = hub_for(sim)
        try:
            wallet, api_key = await _account(sim, hub)
            client = hub.clob(wallet)
            stream = UserStream(client, config=config(sim, reconcile_interval_s=0.3), on_event=items.append)
            loop = asyncio.get_running_loop()

            def register(order_id: str) -> None:
                loop.call_soon_threadsafe(stream.watch_orders, [order_id])
                asyncio.run_coroutine_threadsafe(asyncio.sleep(0), loop).result(timeout=5)

            trading = Trading(sim, api_key, wallet.address, seed=12, register=register)
            async with stream:
                assert await stream.wait_live(5)
                faults(sim, seed=4, ws_drop_rate=0.15)
                await asyncio.to_thread(trading.run, 1.5)
                faults(sim, reset=True)
                rest_trades = await settle(sim, stream, client, items, trading)
                check_exactly_once(sim, items, trading, rest_trades)
                assert stream.reconnects == 0 and stream.stats.backfills > 2
                assert any(u.backfill for u in items if isinstance(u, UserUpdate))
        finally:
            await hub.close()

    asyncio.run(main())


def test_a_stall_gaps_the_stream_within_the_watchdog_timeout(sim: ThreadedSim) -> None:
    items: list[UserStreamEvent] = []

    async def main() -> None:
        hub = hub_for(sim)
        try:
            wallet, _ = await _account(sim, hub)
            async with UserStream(hub.clob(wallet), config=config(sim, stale_after_s=0.8), on_event=items.append) as s:
                assert await s.wait_live(5)
                faults(sim, ws_stall_rate=1.0, ws_stall_s=30)
                stalled_at = s.clock.now_ms()

                def gaps() -> list[UserStreamGapped]:
                    return [e for e in items if isinstance(e, UserStreamGapped) and e.at_ms >= stalled_at]

                assert await _until(lambda: bool(gaps()))
                faults(sim, reset=True)
                gap = gaps()[0]
                assert "stale" in gap.reason
                assert gap.at_ms - stalled_at <= 200 + 800 + 50 + 150
                assert await s.wait_live(5)
        finally:
            await hub.close()

    asyncio.run(main())


async def _until(condition: Any, timeout_s: float = 5.0) -> bool:
    try:
        async with asyncio.timeout(timeout_s):
            while not condition():
                await asyncio.sleep(0.01)
        return True
    except TimeoutError:
        return False


def test_markets_filter_and_dynamic_subscription(sim: ThreadedSim) -> None:
    items: list[UserStreamEvent] = []
    others = [m.condition_id for m in sim.service.exchange.markets() if m.condition_id != market(sim).condition_id]

    async def main() -> None:
        hub = hub_for(sim)
        try:
            wallet, api_key = await _account(sim, hub)
            trading = Trading(sim, api_key, wallet.address, seed=4)
            stream = UserStream(hub.clob(wallet), markets=others[:1], config=config(sim), on_event=items.append)
            async with stream:
                assert await stream.wait_live(5)
                await asyncio.to_thread(trading.run, 0.3)
                await asyncio.sleep(0.3)
                assert not [e for e in items if isinstance(e, UserUpdate)]  # not our market filter
                await stream.subscribe_markets([trading.market.condition_id])
                assert await _until(lambda: stream.live and any(isinstance(e, UserUpdate) for e in items))
                # What happened before the subscription came through the backfill of the "markets added" gap.
                assert any(isinstance(e, UserStreamGapped) and e.reason == "markets added" for e in items)
                before = len([e for e in items if isinstance(e, UserUpdate)])
                await asyncio.to_thread(trading.run, 0.3)
                assert await _until(lambda: len([e for e in items if isinstance(e, UserUpdate)]) > before)
                assert any(not e.backfill for e in items if isinstance(e, UserUpdate))
        finally:
            await hub.close()

    asyncio.run(main())


def test_refused_credentials_stop_the_stream_and_never_reach_the_logs(
    sim: ThreadedSim, caplog: pytest.LogCaptureFixture
) -> None:
    items: list[UserStreamEvent] = []
    secret = "c2VjcmV0LXRoYXQtbXVzdC1uZXZlci1sZWFr"
    passphrase = "passphrase-that-must-never-leak"

    async def main() -> None:
        hub = hub_for(sim)
        try:
            good = await keyed(hub, KEY_B, "ws-bad")
            assert good.creds is not None
            bad = good.with_creds(ApiCreds(good.creds.api_key, secret, passphrase))
            client = hub.clob(bad)
            with caplog.at_level(logging.DEBUG):
                async with UserStream(client, config=config(sim), on_event=items.append) as stream:
                    assert await _until(lambda: stream.error is not None)
                    await asyncio.sleep(0.3)  # no reconnect storm after a refusal
                    assert isinstance(stream.error, AuthError)
                    assert not stream.live and stream.reconnects == 0
        finally:
            await hub.close()

    asyncio.run(main())
    [failed] = [e for e in items if isinstance(e, StreamFailed)]
    assert isinstance(failed.error, AuthError) and "INVALID AUTH" in failed.error.message
    assert not [e for e in items if isinstance(e, StreamDisconnected)]
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "refused the credentials" in text
    assert secret not in text and passphrase not in text


# --- de-duplication, pure -----------------------------------------------------------------------------------------


def _trade(status: TradeStatus, trade_id: str = "t1") -> TradeEvent:
    return TradeEvent(trade_id, "0xo", "0xm", "1", Side.BUY, 10 * MICRO, MICRO // 2, status)


def _order(matched: int, status: OrderStatus, kind: OrderEventType = OrderEventType.UPDATE) -> OrderEvent:
    return OrderEvent(kind, "0xo", "0xm", "1", Side.BUY, MICRO // 2, 10 * MICRO, matched * MICRO, status)


def test_dedupe_admits_each_state_once_and_never_backwards() -> None:
    d = UserEventDeduper()
    trades = [TradeStatus.MATCHED, TradeStatus.MATCHED, TradeStatus.MINED, TradeStatus.CONFIRMED]
    trades += [TradeStatus.RETRYING, TradeStatus.MATCHED]  # a late, older status; a replayed one
    assert [d.admit(_trade(s)) for s in trades] == [True, False, True, True, False, False]
    assert d.admit(_trade(TradeStatus.MATCHED, "t2"))  # another trade
    assert (d.duplicates, d.stale) == (2, 1)
    orders = [
        _order(0, OrderStatus.LIVE, OrderEventType.PLACEMENT),
        _order(4, OrderStatus.LIVE),
        _order(4, OrderStatus.LIVE),  # duplicate
        _order(0, OrderStatus.LIVE, OrderEventType.PLACEMENT),  # replayed placement: stale
        _order(4, OrderStatus.CANCELED, OrderEventType.CANCELLATION),  # same size_matched, new state
        _order(4, OrderStatus.LIVE),  # after the cancellation: stale
    ]
    assert [d.admit(o) for o in orders] == [True, True, False, False, True, False]


def test_dedupe_forgets_the_oldest_beyond_its_capacity() -> None:
    d = UserEventDeduper(capacity=2)
    for i in range(3):
        assert d.admit(_trade(TradeStatus.MATCHED, f"t{i}"))
    assert d.admit(_trade(TradeStatus.MATCHED, "t0"))  # forgotten
    assert not d.admit(_trade(TradeStatus.MATCHED, "t2"))
