"""The market-channel client against `polyoms sim` over real sockets: mirrored books are right or say
they are not, under every WebSocket fault the simulator can inflict, and trust comes back afterwards."""

from __future__ import annotations

import asyncio
import itertools
import random
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from polyoms.core.enums import OrderType, Side
from polyoms.core.market_events import BookSnapshot
from polyoms.core.units import MICRO, Micro
from polyoms.exchange.api.runner import ThreadedSim, build_service
from polyoms.exchange.life.agents import (
    InformedParams,
    InformedTrader,
    LiquidityProvider,
    LPParams,
    NoiseParams,
    NoiseTaker,
)
from polyoms.exchange.life.market import MarketLife
from polyoms.exchange.life.scenarios import scenario
from polyoms.exchange.orders import EngineOrder
from polyoms.exchange.settlement import SettlementConfig
from polyoms.polymarket.client import RetryPolicy, VirtualTimer
from polyoms.polymarket.client.book_trust import UntrustReason
from polyoms.polymarket.client.ws_common import BackoffPolicy, StreamConnected, StreamDisconnected, ws_url
from polyoms.polymarket.client.ws_market import (
    BookTrusted,
    BookUntrusted,
    BookVerified,
    MarketStream,
    MarketStreamConfig,
    MarketStreamEvent,
)
from polyoms.polymarket.protocol.hashing import keccak256
from polyoms.polymarket.protocol.messages import decode_market_frame
from tests.client.conftest import faults, hub_for

FAST_SETTLEMENT = SettlementConfig(mined_delay_ms=50, confirmed_delay_ms=100, retry_delay_ms=50)
Levels = tuple[dict[Micro, Micro], dict[Micro, Micro]]


@pytest.fixture
def sim() -> Iterator[ThreadedSim]:
    with ThreadedSim(build_service(seed=31, settlement=FAST_SETTLEMENT)) as server:
        yield server


def tokens_of(sim: ThreadedSim) -> list[str]:
    return [t for m in sim.service.exchange.markets() for t in m.token_ids]


def config(sim: ThreadedSim, **changes: Any) -> MarketStreamConfig:
    """Watchdogs and timers scaled down so each scenario takes seconds."""
    base: dict[str, Any] = {
        "url": ws_url(sim.url, "market"),
        "ping_interval_s": 0.2,
        "stale_after_s": 1.0,
        "tick_s": 0.05,
        "snapshot_timeout_s": 1.0,
        "rest_verify_interval_s": 0.3,
        "asset_silence_s": None,
        "rest_retry_s": 0.2,
        "backoff": BackoffPolicy(base_s=0.05, max_s=0.4),
        "custom_feature_enabled": True,
    }
    base.update(changes)
    return MarketStreamConfig(**base)


class _Eager:
    """Agents that start within 0.2 s instead of the default 5 s spread."""

    rng: Any

    def first_wake(self, now_ms: int) -> int:
        return now_ms + 1 + int(self.rng.random() * 200)


class EagerLP(_Eager, LiquidityProvider):
    pass


class EagerNoise(_Eager, NoiseTaker):
    pass


class EagerInformed(_Eager, InformedTrader):
    pass


class Flow:
    """Background traders in the running server (the sim's ticker drives `service.life`), sped up."""

    def __init__(self, sim: ThreadedSim, seed: int) -> None:
        self.sim = sim
        self.seed = seed

    def _life(self) -> MarketLife:
        service = self.sim.service
        plan = scenario("calm").on_markets(service.exchange.markets())
        life = MarketLife(service.exchange, service.clock, plan, self.seed, background=False)
        lp, noise, informed = LPParams(requote_ms=300, lag_ms=3_000), NoiseParams(rate_per_min=300.0), InformedParams()
        for spec in service.exchange.markets():
            slug, cid = spec.slug, spec.condition_id
            for i in range(2):
                life.add_agent(EagerLP(f"{slug}/lp-{i}", life.rng_for(f"{slug}/lp-{i}"), lp), cid)
                life.add_agent(EagerNoise(f"{slug}/noise-{i}", life.rng_for(f"{slug}/noise-{i}"), noise), cid)
            life.add_agent(EagerInformed(f"{slug}/informed", life.rng_for(f"{slug}/informed"), informed), cid)
        return life

    def start(self) -> None:
        self.sim.call(lambda: setattr(self.sim.service, "life", self._life()))

    def stop(self) -> None:
        self.sim.call(lambda: setattr(self.sim.service, "life", None))


def exchange_levels(sim: ThreadedSim, tokens: list[str]) -> dict[str, Levels]:
    def grab() -> dict[str, Levels]:
        ex = sim.service.exchange
        return {t: (dict(ex.book(t).bids), dict(ex.book(t).asks)) for t in tokens}

    return sim.call(grab)


def mirror_levels(stream: MarketStream, token: str) -> Levels:
    book = stream.book(token)
    assert book is not None
    return dict(book.iter_levels(Side.BUY)), dict(book.iter_levels(Side.SELL))


async def wait_converged(stream: MarketStream, sim: ThreadedSim, tokens: list[str], timeout_s: float) -> list[str]:
    """Tokens still untrusted or different from the exchange once `timeout_s` ran out ([] = converged)."""
    deadline = time.monotonic() + timeout_s
    while True:
        truth = await asyncio.to_thread(exchange_levels, sim, tokens)
        bad = [t for t in tokens if not stream.is_trusted(t) or mirror_levels(stream, t) != truth[t]]
        if not bad or time.monotonic() > deadline:
            return bad
        await asyncio.sleep(0.1)


def assert_decodes(frames: list[bytes]) -> Counter[str]:
    """Every frame the client received decodes strictly, and every snapshot's hash reproduces."""
    kinds: Counter[str] = Counter()
    for frame in frames:
        for event in decode_market_frame(frame, strict=True, verify_book_hash=True):
            kinds[type(event).__name__] += 1
            if isinstance(event, BookSnapshot):
                assert event.hash_verified is True
    return kinds


# --- the key test ---------------------------------------------------------------------------------------------

FAULT_SETS: dict[str, dict[str, float]] = {
    "drop": {"ws_drop_rate": 0.05},
    "duplicate": {"ws_duplicate_rate": 0.3},
    "reorder": {"ws_reorder_rate": 0.1},
    "delay": {"ws_delay_rate": 0.05, "ws_delay_ms": 150},
    "disconnect": {"ws_disconnect_rate": 0.01},
    "stall": {"ws_stall_rate": 0.01, "ws_stall_s": 5.0},
    "all": {
        "ws_drop_rate": 0.02,
        "ws_duplicate_rate": 0.1,
        "ws_reorder_rate": 0.05,
        "ws_delay_rate": 0.02,
        "ws_delay_ms": 100,
        "ws_disconnect_rate": 0.005,
        "ws_stall_rate": 0.003,
        "ws_stall_s": 5.0,
    },
}


@pytest.mark.parametrize("name", list(FAULT_SETS))
def test_books_are_right_or_untrusted_under_faults_and_recover(sim: ThreadedSim, name: str) -> None:
    tokens = tokens_of(sim)
    flow = Flow(sim, seed=len(name))
    frames: list[bytes] = []
    events: list[MarketStreamEvent] = []

    async def main() -> None:
        hub = hub_for(sim)
        stream = MarketStream(config(sim), rest=hub.public, on_event=events.append, on_frame=frames.append)
        try:
            async with stream:
                flow.start()
                await asyncio.sleep(0.5)  # books fill up
                await stream.subscribe(tokens)
                assert await stream.wait_trusted(timeout_s=5)
                faults(sim, seed=7, **FAULT_SETS[name])
                await asyncio.sleep(2.0)
                await asyncio.to_thread(flow.stop)
                # Faults stay on; the client's own mechanisms get a bounded time to notice what it lost.
                await asyncio.sleep(2.0)
                truth = await asyncio.to_thread(exchange_levels, sim, tokens)
                wrong = [t for t in tokens if stream.is_trusted(t) and mirror_levels(stream, t) != truth[t]]
                assert wrong == [], f"{name}: trusted but different from the exchange: {wrong}"
                faults(sim, reset=True)
                assert await wait_converged(stream, sim, tokens, timeout_s=6.0) == []
                stats = stream.stats
                assert stats.malformed_frames == 0
                if name not in ("stall", "all"):  # (a stalled socket hears little)
                    assert stats.events["price_change"] > 50 and stats.events["last_trade_price"] > 0
                # No "reorder" entry: most swapped neighbours are harmless (a best_bid_ask and its price_change,
                # frames of different tokens), so whether one is caught is luck; the scripted-venue tests in
                # test_ws_market_rules.py prove deterministically that a harmful swap is detected.
                # Nor "drop": a dropped best_bid_ask or last_trade_price is harmless and often all that is dropped.
                evidence = {
                    "disconnect": stream.reconnects,
                    "stall": stream.stale_sockets,
                    "all": stream.reconnects,
                }
                if name in evidence:
                    assert evidence[name], f"{name}: no fault was ever detected ({stats})"
                if name == "duplicate":
                    assert not stats.untrusted, f"duplicates are harmless, yet: {stats.untrusted}"
                # Trust changes alternate per book (each loss announced once) and end trusted.
                for token in tokens:
                    mine = [e for e in events if isinstance(e, BookTrusted | BookUntrusted) and e.asset_id == token]
                    assert isinstance(mine[0], BookTrusted) and isinstance(mine[-1], BookTrusted)
                    assert all(type(a) is not type(b) for a, b in itertools.pairwise(mine))
        finally:
            await hub.close()

    asyncio.run(main())
    kinds = assert_decodes(frames)
    assert {"BookSnapshot", "PriceChange", "LastTradePrice", "BestBidAsk"} <= set(kinds)


# --- mechanisms, one at a time ------------------------------------------------------------------------------------


def events_of(events: list[MarketStreamEvent], kind: type, token: str | None = None) -> list[Any]:
    return [e for e in events if isinstance(e, kind) and (token is None or getattr(e, "asset_id", None) == token)]


async def until(condition: Any, timeout_s: float = 5.0) -> None:
    async with asyncio.timeout(timeout_s):
        while not condition():
            await asyncio.sleep(0.02)


def test_disconnect_untrusts_every_book_then_the_resubscription_snapshots_restore_them(sim: ThreadedSim) -> None:
    tokens = tokens_of(sim)
    events: list[MarketStreamEvent] = []

    async def main() -> None:
        async with MarketStream(config(sim, rest_verify_interval_s=None), on_event=events.append) as stream:
            await stream.subscribe(tokens)
            assert await stream.wait_trusted(timeout_s=5)
            faults(sim, ws_disconnect_rate=1.0)  # the next frame (a PONG) closes the socket instead
            await until(lambda: bool(events_of(events, StreamDisconnected)))
            faults(sim, reset=True)
            assert await stream.wait_trusted(timeout_s=5)
        lost = events_of(events, StreamDisconnected)[0]
        assert lost.reason.startswith("closed by the venue") and lost.attempt == 1
        for token in tokens:
            trust = events_of(events, BookTrusted | BookUntrusted, token)
            kinds = [(type(e).__name__, getattr(e, "reason", getattr(e, "source", None))) for e in trust]
            assert kinds[:3] == [
                ("BookTrusted", "stream"),
                ("BookUntrusted", UntrustReason.DISCONNECTED),
                ("BookTrusted", "stream"),  # from the snapshot sent on resubscribing, not REST
            ]
        assert [e.generation for e in events_of(events, StreamConnected)][:2] == [1, 2]

    asyncio.run(main())


def test_a_silent_stall_is_caught_by_the_watchdog_within_its_timeout(sim: ThreadedSim) -> None:
    tokens = tokens_of(sim)[:4]
    events: list[MarketStreamEvent] = []

    async def main() -> None:
        cfg = config(sim, rest_verify_interval_s=None, ping_interval_s=0.2, stale_after_s=0.8)
        async with MarketStream(cfg, on_event=events.append) as stream:
            await stream.subscribe(tokens)
            assert await stream.wait_trusted(timeout_s=5)
            faults(sim, ws_stall_rate=1.0, ws_stall_s=30)  # the next frame starts a 30 s silence
            stalled_at = stream.clock.now_ms()
            await until(lambda: bool(events_of(events, StreamDisconnected)))
            detected = events_of(events, StreamDisconnected)[0]
            faults(sim, reset=True)
            # The last frame came at most one ping interval after the fault was switched on; the watchdog
            # fires `stale_after_s` after it, give or take one housekeeping tick.
            assert detected.reason.startswith("stale")
            assert 800 - 200 <= detected.at_ms - stalled_at <= 200 + 800 + 50 + 150
            assert await stream.wait_trusted(timeout_s=5)
            assert stream.stale_sockets == 1
        for token in tokens:
            assert events_of(events, BookUntrusted, token)[0].detail.startswith("stale")

    asyncio.run(main())


def test_reconnect_backoff_grows_and_is_jittered() -> None:
    policy = BackoffPolicy(base_s=0.01, max_s=0.16)
    assert [policy.ceiling_s(n) for n in range(1, 8)] == [0.01, 0.02, 0.04, 0.08, 0.16, 0.16, 0.16]

    async def attempts(seed: int) -> list[StreamDisconnected]:
        lost: list[StreamDisconnected] = []
        cfg = MarketStreamConfig(url="ws://127.0.0.1:9/ws/market", backoff=policy, connect_timeout_s=1.0)
        async with MarketStream(cfg, rng=random.Random(seed), on_event=_collect(lost)) as stream:
            await stream.subscribe(["1"])
            await until(lambda: len(lost) >= 8)
        return lost[:8]

    first = asyncio.run(attempts(5))
    assert not [e for e in first if e.retry_in_s > policy.ceiling_s(e.attempt)]
    assert [e.attempt for e in first] == list(range(1, 9))
    assert all(e.reason.startswith("connect failed") for e in first)
    delays = [e.retry_in_s for e in first]
    assert all(0 <= d <= policy.ceiling_s(e.attempt) for d, e in zip(delays, first, strict=True))
    assert len(set(delays)) == len(delays)  # jittered: no two alike
    assert sum(delays[4:]) > sum(delays[:4])  # and growing
    assert [e.retry_in_s for e in asyncio.run(attempts(5))] == delays  # a seeded RNG replays exactly
    assert [e.retry_in_s for e in asyncio.run(attempts(6))] != delays


def test_backoff_waits_on_the_injected_clock_and_sleep() -> None:
    timer = VirtualTimer()
    lost: list[StreamDisconnected] = []

    async def main() -> None:
        cfg = MarketStreamConfig(url="ws://127.0.0.1:9/ws/market", backoff=BackoffPolicy(base_s=1.0, max_s=60.0))
        stream = MarketStream(cfg, clock=timer.clock, sleep=timer.sleep, rng=random.Random(1), on_event=_collect(lost))
        async with stream:
            await stream.subscribe(["1"])
            await until(lambda: len(lost) >= 6)

    started = time.monotonic()
    asyncio.run(main())
    assert time.monotonic() - started < 3  # a minute of backoff, waited on the virtual clock
    delays = [e.retry_in_s for e in lost[:6]]
    assert all(d in timer.slept_s for d in delays)
    assert sum(delays) > 10


def _collect(into: list[StreamDisconnected]) -> Any:
    def add(event: MarketStreamEvent) -> None:
        if isinstance(event, StreamDisconnected):
            into.append(event)

    return add


def test_rest_verification_catches_a_silently_wrong_book_and_rebuilds_it(sim: ThreadedSim) -> None:
    tokens = tokens_of(sim)
    events: list[MarketStreamEvent] = []
    Flow(sim, seed=3).start()
    Flow(sim, seed=3).stop()  # (funds the agents and places their first quotes, then stops)

    async def main() -> None:
        hub = hub_for(sim)
        try:
            async with MarketStream(config(sim), rest=hub.public, on_event=events.append) as stream:
                await stream.subscribe(tokens)
                assert await stream.wait_trusted(timeout_s=5)
                await until(lambda: len(events_of(events, BookVerified)) >= len(tokens))
                # A book goes wrong without any frame saying so (memory corruption, a bug...).
                victim = tokens[2]
                book = stream.book(victim)
                assert book is not None
                book.set_level(Side.BUY, 1000, 123 * MICRO)
                await until(lambda: bool(events_of(events, BookUntrusted, victim)))
                [lost] = events_of(events, BookUntrusted, victim)
                assert lost.reason is UntrustReason.REST_MISMATCH and "bid 0.001: mirror 123 venue 0" in lost.detail
                await until(lambda: stream.is_trusted(victim))
                assert events_of(events, BookTrusted, victim)[-1].source == "rest"
                assert await wait_converged(stream, sim, tokens, timeout_s=2) == []
        finally:
            await hub.close()

    asyncio.run(main())


def test_silent_assets_are_probed_and_untrusted_when_the_probe_fails(sim: ThreadedSim) -> None:
    tokens = tokens_of(sim)[:4]
    events: list[MarketStreamEvent] = []

    async def main() -> None:
        hub = hub_for(sim, retry=RetryPolicy(attempts=1))
        try:
            cfg = config(sim, rest_verify_interval_s=None, asset_silence_s=0.5)
            async with MarketStream(cfg, rest=hub.public, on_event=events.append) as stream:
                await stream.subscribe(tokens)
                assert await stream.wait_trusted(timeout_s=5)
                # Quiet market: after 0.5 s without updates each book is checked over REST, and passes.
                await until(lambda: {e.asset_id for e in events_of(events, BookVerified)} == set(tokens))
                assert stream.stats.silence_probes >= len(tokens) and not events_of(events, BookUntrusted)
                # REST fails from now on: a silent book whose liveness cannot be confirmed is untrusted.
                faults(sim, http_5xx_rate=1.0)
                await until(lambda: len(events_of(events, BookUntrusted)) == len(tokens), timeout_s=5)
                assert {e.reason for e in events_of(events, BookUntrusted)} == {UntrustReason.SILENCE}
                assert not any(stream.is_trusted(t) for t in tokens)
                faults(sim, reset=True)
        finally:
            await hub.close()

    asyncio.run(main())


def test_without_rest_gaps_are_resynced_by_resubscribing(sim: ThreadedSim) -> None:
    tokens = tokens_of(sim)
    flow = Flow(sim, seed=11)
    events: list[MarketStreamEvent] = []

    async def main() -> None:
        # Without REST nothing verifies a book whose last update was lost but the liveness probe of
        # silent books, which resubscribes them.
        async with MarketStream(config(sim, asset_silence_s=1.0), on_event=events.append) as stream:
            flow.start()
            await stream.subscribe(tokens)
            assert await stream.wait_trusted(timeout_s=5)
            faults(sim, seed=3, ws_drop_rate=0.05, ws_reorder_rate=0.05)
            await asyncio.sleep(1.5)
            faults(sim, reset=True)
            await asyncio.to_thread(flow.stop)
            assert await wait_converged(stream, sim, tokens, timeout_s=5) == []
            assert stream.stats.resubscribes > 0 and stream.stats.rest_rounds == 0
            assert set(stream.stats.untrusted) - {UntrustReason.SILENCE.value}, "the faults went unnoticed"
        sources = {e.source for e in events_of(events, BookTrusted)}
        assert sources == {"stream"}

    asyncio.run(main())


def test_many_sockets_and_dynamic_subscriptions(sim: ThreadedSim) -> None:
    tokens = tokens_of(sim)
    flow = Flow(sim, seed=5)
    events: list[MarketStreamEvent] = []

    async def main() -> None:
        hub = hub_for(sim)
        cfg = config(sim, max_assets_per_socket=4, subscribe_chunk=3)
        try:
            async with MarketStream(cfg, rest=hub.public, on_event=events.append) as stream:
                flow.start()
                await stream.subscribe(tokens[:6])
                assert await stream.wait_trusted(timeout_s=5)
                await stream.subscribe(tokens[6:])  # on open sockets and new ones
                assert await stream.wait_trusted(timeout_s=5)
                assert len({e.socket for e in events_of(events, StreamConnected)}) == -(-len(tokens) // 4)
                gone = tokens[:2]  # a whole market (a lone token's last trade price follows its complement's)
                await stream.unsubscribe(gone)
                assert stream.subscribed == tokens[2:] and all(stream.book(t) is None for t in gone)
                await asyncio.sleep(1.0)
                await asyncio.to_thread(flow.stop)
                assert await wait_converged(stream, sim, tokens[2:], timeout_s=5) == []
                assert not events_of(events, BookUntrusted)
        finally:
            await hub.close()

    asyncio.run(main())


def test_tick_size_change_untrusts_until_the_new_grid_snapshot(sim: ThreadedSim) -> None:
    market = next(m for m in sim.service.exchange.markets() if m.tick.text == "0.01" and not m.neg_risk)
    tokens = list(market.token_ids)
    events: list[MarketStreamEvent] = []

    def rest_one(price: int) -> None:
        ex = sim.service.exchange
        user = "0x" + "77" * 20
        ex.fund(user, 1_000 * MICRO, {})
        order = EngineOrder(
            order_id="0x" + keccak256(b"tick-test").hex(),
            maker=user,
            owner=user,
            token_id=market.yes_token_id,
            side=Side.BUY,
            maker_amount=10 * price,
            taker_amount=10 * MICRO,
            order_type=OrderType.GTC,
        )
        ex.submit(order)

    async def main() -> None:
        async with MarketStream(config(sim, rest_verify_interval_s=None), on_event=events.append) as stream:
            sim.call(rest_one, 40 * MICRO // 100)
            await stream.subscribe(tokens)
            assert await stream.wait_trusted(timeout_s=5)
            sim.call(sim.service.exchange.change_tick_size, market.condition_id, "0.001")
            await until(lambda: len(events_of(events, BookUntrusted)) == 2)
            assert await stream.wait_trusted(timeout_s=5)
            book = stream.book(market.yes_token_id)
            assert book is not None and str(book.tick_size) == "0.001" and book.best_bid() == 40 * MICRO // 100
            for token in tokens:
                [lost] = events_of(events, BookUntrusted, token)
                assert lost.reason is UntrustReason.TICK_SIZE and lost.detail == "0.01 -> 0.001"
                assert [e.source for e in events_of(events, BookTrusted, token)] == ["stream", "stream"]

    asyncio.run(main())


def test_unknown_token_stays_untrusted_and_harms_nobody(sim: ThreadedSim) -> None:
    tokens = tokens_of(sim)[:2]

    async def main() -> None:
        hub = hub_for(sim)
        try:
            async with MarketStream(config(sim, snapshot_timeout_s=0.3), rest=hub.public) as stream:
                await stream.subscribe([*tokens, "424242"])
                assert await stream.wait_trusted(tokens, timeout_s=5)
                await until(lambda: stream.stats.unknown_assets == 1)
                assert not stream.is_trusted("424242") and "424242" in stream.untrusted()
                assert all(stream.is_trusted(t) for t in tokens)
        finally:
            await hub.close()

    asyncio.run(main())
