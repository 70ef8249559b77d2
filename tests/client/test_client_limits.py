"""Rate limits: exact windows and buckets on a virtual clock, and the client staying inside them."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Sequence
from fractions import Fraction

import pytest

from polyoms.core.clock import VirtualClock
from polyoms.core.errors import ConfigError, RateLimitedError
from polyoms.exchange.api.runner import ThreadedSim
from polyoms.polymarket.client import LimitsConfig, SignerTier, VirtualTimer, Wallet
from polyoms.polymarket.client.ratelimit import (
    CANCELS,
    IP_LIMITS,
    ORDERS,
    SIGNER_TIERS,
    Limit,
    SlidingWindow,
    TokenBucket,
    acquire,
    ip_route,
    signer_route,
)
from tests.client.conftest import KEY_A, KEY_B, FakeVenue, fake_hub, fund, hub_for, keyed, market, reply, run

T0 = 1_777_000_000_000


def max_in_window(times: Sequence[int], window_ms: int) -> int:
    """The most events in any half-open interval (t - window, t]."""
    ordered = sorted(times)
    best, lo = 0, 0
    for hi, t in enumerate(ordered):
        while ordered[lo] <= t - window_ms:
            lo += 1
        best = max(best, hi - lo + 1)
    return best


async def _take(parts: list[tuple[Limit, int]], timer: VirtualTimer, n: int) -> list[int]:
    times = []
    for _ in range(n):
        await acquire(parts, timer.clock, timer.sleep)
        times.append(timer.clock.now_ms() - T0)
    return times


def test_sliding_window_is_exact_and_never_exceeded() -> None:
    timer = VirtualTimer(VirtualClock(T0))
    window = SlidingWindow("w", 5, 10_000)
    times = run(_take([(window, 1)], timer, 12))
    # 5 at once; the 6th when the first slot (10 ms wide) has fully left the 10 s window, and so on.
    assert times == [0] * 5 + [10_010] * 5 + [20_020] * 2
    assert max_in_window(times, 10_000) == 5
    assert window.stats.waits == 2 and window.stats.waited_ms == 20_020 and window.stats.acquired == 12


def test_sliding_window_under_concurrency_and_random_costs() -> None:
    timer = VirtualTimer(VirtualClock(T0))
    window = SlidingWindow("w", 7, 1_000)
    rng = random.Random(3)
    log: list[tuple[int, int]] = []

    async def worker() -> None:
        for _ in range(20):
            cost = rng.randint(1, 3)
            await acquire([(window, cost)], timer.clock, timer.sleep)
            log.append((timer.clock.now_ms(), cost))
            await timer.sleep(rng.random() / 10)

    async def body() -> None:
        await asyncio.gather(*(worker() for _ in range(8)))

    run(body())
    assert len(log) == 160
    for t, _ in log:  # every window ending at an admission holds at most 7 units
        assert sum(c for u, c in log if t - 1_000 < u <= t) <= 7


def test_token_bucket_is_exact() -> None:
    timer = VirtualTimer(VirtualClock(T0))
    bucket = TokenBucket("b", 3, 2)  # burst 3, 2 tokens a second
    assert run(_take([(bucket, 1)], timer, 7)) == [0, 0, 0, 500, 1000, 1500, 2000]
    timer.clock.advance(10_000)
    assert bucket.level(timer.clock.now_ms()) == 3  # refilled, capped at the burst
    big = TokenBucket("big", 3, Fraction(1, 3))
    assert run(_take([(big, 2)], timer, 2)) == [12_000, 15_000]  # 1 token left needs 1 more at 1/3 per s
    over = TokenBucket("over", 3, 1)
    run(_take([(over, 5)], timer, 1))  # more than the burst: admitted when full, leaving a debt
    assert over.level(timer.clock.now_ms()) == -2


def test_all_limits_of_a_request_are_charged_together_and_max_wait() -> None:
    timer = VirtualTimer(VirtualClock(T0))
    general, specific = SlidingWindow("general", 10, 1_000), SlidingWindow("specific", 2, 1_000)
    times = run(_take([(general, 1), (specific, 1)], timer, 4))
    assert times == [0, 0, 1_001, 1_001]
    assert general.stats.acquired == specific.stats.acquired == 4 and general.stats.waits == 0

    async def impatient() -> None:
        await acquire([(specific, 1)], timer.clock, timer.sleep, max_wait_ms=100)

    with pytest.raises(RateLimitedError) as info:
        run(impatient())
    assert info.value.source == "local" and info.value.retry_after is not None and info.value.retry_after > 0.1


def test_published_quota_tables_and_margin() -> None:
    config = LimitsConfig()
    assert config.margin == 0.8 and config.tier is SIGNER_TIERS["standard"]
    ip = config.ip_limits()
    (book,) = ip["clob:/book"]
    assert isinstance(book, SlidingWindow) and (book.limit, book.window_ms) == (1_200, 10_000)
    burst, sustained = ip["clob:POST /order"]
    assert isinstance(burst, SlidingWindow) and isinstance(sustained, SlidingWindow)
    assert (burst.limit, burst.window_ms, sustained.limit, sustained.window_ms) == (4_000, 10_000, 96_000, 600_000)
    assert [w.limit for w in ip["clob:DELETE /cancel-all"]] == [200, 4_800]  # type: ignore[attr-defined]
    assert IP_LIMITS["data:/positions"] == ((150, 10.0),) and IP_LIMITS["gamma:/markets"] == ((300, 10.0),)
    buckets = config.signer_buckets("x")
    assert (buckets[ORDERS].capacity, buckets[ORDERS].rate_per_s) == (48, 32)
    assert (buckets[CANCELS].capacity, buckets[CANCELS].rate_per_s) == (96, 64)
    elite = LimitsConfig(signer_tier="Elite", margin=1).signer_buckets("x")
    assert (elite[ORDERS].capacity, elite[CANCELS].capacity) == (900, 1_800)
    with pytest.raises(ConfigError):
        LimitsConfig(signer_tier="mithril")
    with pytest.raises(ConfigError):
        LimitsConfig(margin=1.5)


def test_routes() -> None:
    assert ip_route("clob", "POST", "/order") == ("all", "clob", "clob:POST /order")
    assert ip_route("clob", "GET", "/data/order/0xabc") == ("all", "clob", "clob:ledger")
    assert ip_route("clob", "GET", "/data/trades") == ("all", "clob", "clob:ledger", "clob:/data/trades")
    assert ip_route("clob", "GET", "/auth/derive-api-key") == ("all", "clob", "clob:/auth")
    assert ip_route("clob", "GET", "/clob-markets/0xabc") == ("all", "clob")
    assert ip_route("gamma", "GET", "/markets/123") == ("all", "gamma", "gamma:/markets")
    assert ip_route("data", "GET", "/positions") == ("all", "data", "data:/positions")
    assert ip_route("data", "GET", "/activity") == ("all", "data")
    assert signer_route("POST", "/orders") == ORDERS and signer_route("DELETE", "/cancel-all") == CANCELS
    assert signer_route("GET", "/book") is None


def test_client_requests_never_exceed_the_configured_per_ip_limit(sim: ThreadedSim) -> None:
    m = market(sim)
    timer = VirtualTimer()
    sent: list[tuple[int, str, str]] = []
    limits = LimitsConfig(margin=0.5, overrides={"clob:/book": ((10, 10.0),), "clob:/books": ((4, 10.0),)})

    async def body() -> None:
        async with hub_for(sim, timer, limits=limits, books_chunk=3) as hub:
            hub.public.core.observer = lambda t, method, path: sent.append((t, method, path))
            start = timer.clock.now_ms()
            books = await asyncio.gather(*(hub.public.book(m.yes_token_id) for _ in range(23)))
            assert len(books) == 23
            book_times = [t for t, _, p in sent if p == "/book"]
            assert max_in_window(book_times, 10_000) == 5  # 10 x margin 0.5, in every 10 s window
            assert max(book_times) - start >= 40_000  # 23 requests at 5 per 10 s need 4 more windows
            tokens = [t for spec in sim.service.exchange.markets() for t in (spec.yes_token_id, spec.no_token_id)]
            all_books = await hub.books(tokens)  # 14 tokens, 3 per POST /books, 2 POSTs per 10 s
            assert set(all_books) == set(tokens)
            books_times = [t for t, _, p in sent if p == "/books"]
            assert len(books_times) == 5 and max_in_window(books_times, 10_000) == 2
            stats = hub.ip_limiter.stats()
            assert stats["clob:/book/10s"].waits > 0 and stats["clob:/books/10s"].waits > 0
            assert stats["all/10s"].acquired == stats["clob/10s"].acquired == len(sent)

    run(body())


def test_per_signer_buckets_are_per_signer_and_charged_per_order(sim: ThreadedSim) -> None:
    m = market(sim)
    timer = VirtualTimer()
    tiny = SignerTier("tiny", orders_rate=2, orders_burst=3, cancels_rate=1, cancels_burst=4)
    sent: list[tuple[int, str, str]] = []

    async def body() -> None:
        async with hub_for(sim, timer, limits=LimitsConfig(margin=1, custom_tier=tiny)) as hub:
            a, b = await keyed(hub, KEY_A, "a"), await keyed(hub, KEY_B, "b")
            fund(sim, a.address, "1000")
            fund(sim, b.address, "1000")
            ca, cb = hub.clob(a), hub.clob(b)
            for c in (ca, cb):
                c.core.observer = lambda t, method, path, who=c.core.name: sent.append((t, who, path))
            ba, bb = a.order_builder(), b.order_builder()
            t0 = timer.clock.now_ms()
            for i in range(5):
                await ca.post_order(ba.limit(m.yes_token_id, "BUY", f"0.1{i}", "5", tick=m.tick))
            a_times = [t - t0 for t, who, p in sent if who == "clob:a" and p == "/order"]
            assert a_times == [0, 0, 0, 500, 1000]
            # b signs with another key: its bucket is full although a's is empty.
            await cb.post_order(bb.limit(m.yes_token_id, "BUY", "0.10", "5", tick=m.tick))
            assert [t - t0 for t, who, _ in sent if who == "clob:b"] == [1000]
            # A batch of 3 costs 3 tokens: a's bucket (empty at 1000) needs 1.5 s.
            batch = [ba.limit(m.yes_token_id, "BUY", f"0.2{i}", "5", tick=m.tick) for i in range(3)]
            assert all(o.ok for o in await ca.post_orders(batch))
            assert [t - t0 for t, who, p in sent if p == "/orders"] == [2500]
            # Another wallet object with the same signing key shares the key's bucket (the venue counts per signer).
            twin = hub.clob(Wallet.from_key(KEY_A, name="a-twin", nonce=7))
            assert twin is not ca and twin.core.signer_buckets is ca.core.signer_buckets
            # Cancels: burst 4, 1 per s; 8 ids are split into chunks of at most 4, and cancel-all pays 1 + n.
            ids = [o.id for o in await ca.open_orders()]
            assert len(ids) == 8
            canceled = await ca.cancel_orders(ids[:6])
            assert len(canceled.canceled) == 6
            assert ca.core.stats.by_path["DELETE /orders"] == 2
            bucket = ca.core.signer_buckets[CANCELS]
            now = timer.clock.now_ms()
            before = bucket.level(now)
            result = await ca.cancel_all()
            assert len(result.canceled) == 2
            assert bucket.level(timer.clock.now_ms()) == before - 3 + Fraction(timer.clock.now_ms() - now, 1000)

    run(body())


def test_positions_for_many_wallets_stay_within_the_data_api_limit() -> None:
    users = [f"0x{i:040x}" for i in range(1, 6)]
    positions = [{"proxyWallet": u, "asset": "1", "conditionId": "0x01", "size": 2.5} for u in users]
    times: list[int] = []

    async def answer(request):  # type: ignore[no-untyped-def]
        user = request.query["user"]
        return await reply([p for p in positions if p["proxyWallet"] == user])(request)

    async def body() -> None:
        timer = VirtualTimer()
        limits = LimitsConfig(margin=1, overrides={"data:/positions": ((2, 10.0),)})
        async with (
            FakeVenue({("GET", "/positions"): answer}) as venue,
            fake_hub(venue.url, timer, limits=limits) as hub,
        ):
            hub.data.core.observer = lambda t, method, path: times.append(t)
            result = await hub.positions([Wallet.from_key(KEY_A), *users])
            assert set(result) == {Wallet.from_key(KEY_A).maker, *users}
            assert all(len(result[u]) == 1 and result[u][0].size == 2_500_000 for u in users)
            assert len(times) == 6 and max_in_window(times, 10_000) == 2
            assert venue.count("GET", "/positions") == 6

    run(body())
