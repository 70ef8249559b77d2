"""The client under the venue's failure modes: retries, unknown outcomes, restart, post-only, breaker."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest
from aiohttp import web

from polyoms.core.clock import VirtualClock
from polyoms.core.errors import (
    CancelOnlyError,
    MalformedMessageError,
    OrderVersionMismatchError,
    PostOnlyModeError,
    RateLimitedError,
    TradingDisabledError,
    VenueRestartingError,
    VenueUnavailableError,
)
from polyoms.exchange.api.runner import ThreadedSim
from polyoms.polymarket.client import (
    BreakerPolicy,
    BreakerState,
    CircuitOpenError,
    OrderOutcomeUnknownError,
    RetryPolicy,
    Timeouts,
    VirtualTimer,
    Wallet,
)
from polyoms.polymarket.protocol.auth import ApiCreds
from tests.client.conftest import (
    KEY_A,
    KEY_B,
    FakeVenue,
    fake_hub,
    faults,
    fund,
    hub_for,
    keyed,
    market,
    reply,
    run,
)

CREDS = ApiCreds("00000000-0000-4000-8000-000000000001", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", "p" * 64)


def test_gets_are_retried_through_5xx_and_429(sim: ThreadedSim) -> None:
    m = market(sim)
    timer = VirtualTimer()

    async def body() -> None:
        async with hub_for(sim, timer, retry=RetryPolicy(attempts=10), breaker=BreakerPolicy(20)) as hub:
            pub = hub.public
            faults(sim, seed=4, http_5xx_rate=0.5)
            books = [await pub.book(m.yes_token_id) for _ in range(20)]
            assert all(b.asset_id == m.yes_token_id for b in books)
            statuses = pub.core.stats.statuses
            assert statuses[200] == 20 and sum(statuses[s] for s in (500, 502, 503)) == pub.core.stats.retries > 0
            assert pub.core.breaker.state is BreakerState.CLOSED
            faults(sim, http_5xx_rate=0, http_429_rate=0.5, retry_after_s=3)
            retries = pub.core.stats.retries
            timer.slept_s.clear()
            assert len(await pub.all_markets()) == 7
            for _ in range(10):
                await pub.midpoint(m.yes_token_id)
            throttled = pub.core.stats.retries - retries
            assert throttled == statuses[429] > 0
            backoffs = [s for s in timer.slept_s if s > 0]
            assert len(backoffs) == throttled and all(s >= 3 for s in backoffs)  # Retry-After honoured
            faults(sim, http_429_rate=1, retry_after_s=30)  # longer than max_retry_after_s: surfaces at once
            sent = pub.core.stats.sent
            with pytest.raises(RateLimitedError) as info:
                await pub.book(m.yes_token_id)
            assert info.value.retry_after == 30 and pub.core.stats.sent == sent + 1

    run(body())


def test_post_order_under_5xx_is_not_retried_and_outcome_unknown(sim: ThreadedSim) -> None:
    m = market(sim)

    async def body() -> None:
        async with hub_for(sim, VirtualTimer(), retry=RetryPolicy(attempts=5)) as hub:
            w = await keyed(hub, KEY_A, "a")
            fund(sim, w.address, "100")
            b, c = w.order_builder(), hub.clob(w)
            order = b.limit(m.yes_token_id, "BUY", "0.40", "10", tick=m.tick)
            batch = [b.limit(m.yes_token_id, "BUY", f"0.3{i}", "10", tick=m.tick) for i in range(3)]
            faults(sim, http_5xx_rate=1)
            with pytest.raises(OrderOutcomeUnknownError) as info:
                await c.post_order(order)
            assert info.value.order_ids == (order.order_id,) and info.value.reason.startswith("HTTP 5")
            assert not isinstance(info.value, VenueUnavailableError)  # a generic "retry when unavailable" won't re-post
            with pytest.raises(OrderOutcomeUnknownError) as batch_info:
                await c.post_orders(batch)
            assert batch_info.value.order_ids == tuple(o.order_id for o in batch)
            assert c.core.stats.by_path["POST /order"] == 1 and c.core.stats.by_path["POST /orders"] == 1
            faults(sim, http_5xx_rate=0)
            # The exchange's truth, asked by hash: the 5xx came before the order was taken.
            for o in (order, *batch):
                assert await c.get_order(o.order_id) is None
                assert sim.service.exchange.get_order(o.order_id) is None
            # A cancel (idempotent) rides through the same fault with retries.
            placed = await c.post_order(order)
            faults(sim, seed=9, http_5xx_rate=0.5)
            result = await c.cancel_order(placed.order_id)
            assert result.canceled == (order.order_id,)

    run(body())


def test_post_order_timeouts_are_unknown_and_resolved_by_hash(sim: ThreadedSim) -> None:
    """Two timeouts the client cannot tell apart; the exchange's truth, asked by hash, differs."""
    m = market(sim)
    lose_requests = {"on": False}

    async def forward(request: web.Request) -> web.StreamResponse:
        body = await request.read()
        if lose_requests["on"]:
            # A proxy that loses the request on the way IN: the exchange never sees the order.
            await asyncio.sleep(0.4)
            return web.Response(status=504)
        async with (
            aiohttp.ClientSession() as session,
            session.request(request.method, sim.url + request.path_qs, data=body, headers=request.headers) as up,
        ):
            payload, status = await up.read(), up.status
        return web.Response(body=payload, status=status, content_type="application/json")

    async def body() -> None:
        routes = {(method, "*"): forward for method in ("GET", "POST", "DELETE")}
        async with FakeVenue(routes) as proxy, hub_for(sim, timeouts=Timeouts(order_s=0.15)) as hub:
            w = await keyed(hub, KEY_A, "a")
            fund(sim, w.address, "100")
            b, c = w.order_builder(), hub.clob(w)
            lost_request = b.limit(m.yes_token_id, "BUY", "0.40", "10", tick=m.tick)
            lost_answer = b.limit(m.yes_token_id, "BUY", "0.41", "10", tick=m.tick)
            # 1. The request is lost on the way in and we give up waiting.
            c.core.base_url = proxy.url
            lose_requests["on"] = True
            with pytest.raises(OrderOutcomeUnknownError) as info:
                await c.post_order(lost_request)
            assert info.value.order_ids == (lost_request.order_id,) and info.value.reason == "timeout"
            lose_requests["on"] = False
            await asyncio.sleep(0.5)  # whatever happened to it, it is over
            assert await c.get_order(lost_request.order_id) is None
            # 2. The exchange takes it at once, its answer comes late (latency fault), and we give up.
            c.core.base_url = sim.url
            faults(sim, http_latency_ms=400)
            with pytest.raises(OrderOutcomeUnknownError) as info:
                await c.post_order(lost_answer)
            assert info.value.order_ids == (lost_answer.order_id,) and info.value.reason == "timeout"
            faults(sim, http_latency_ms=0)
            found = await c.get_order(lost_answer.order_id)
            assert found is not None and found.status == "LIVE" and found.price == 410_000
            assert c.core.stats.by_path["POST /order"] == 2  # each sent once, never again

    run(body())


def test_connection_refused_order_was_not_sent() -> None:
    async def body() -> None:
        async with FakeVenue({}) as venue:
            url = venue.url
        hub = fake_hub(url, retry=RetryPolicy(attempts=3))  # nothing listens there any more
        async with hub:
            w = Wallet.from_key(KEY_A, creds=CREDS)
            c = hub.clob(w)
            order = w.order_builder().limit("123", "BUY", "0.5", "10", tick="0.01")
            with pytest.raises(VenueUnavailableError) as info:
                await c.post_order(order)
            assert not isinstance(info.value, OrderOutcomeUnknownError)  # no connection: nothing left this host
            assert c.core.stats.sent == 1 and c.core.stats.transport_errors == 1

    run(body())


def test_restart_425_then_post_only_mode(vsim: ThreadedSim, sim_clock: VirtualClock) -> None:
    m = market(vsim)

    async def body() -> None:
        async with hub_for(vsim, VirtualTimer(VirtualClock())) as hub:
            w = await keyed(hub, KEY_A, "a")
            fund(vsim, w.address, "100")
            b, c = w.order_builder(), hub.clob(w)
            resting = b.limit(m.yes_token_id, "BUY", "0.30", "10", tick=m.tick)
            await c.post_order(resting)
            faults(vsim, restart=True, restart_window_s=90, post_only_window_s=120)
            sent = hub.public.core.stats.sent
            with pytest.raises(VenueRestartingError) as restarting:
                await hub.public.book(m.yes_token_id)
            assert restarting.value.retry_after == 90 and restarting.value.status == 425
            assert hub.public.core.stats.sent == sent + 1  # 90 s > max_retry_after_s: surfaced, not retried
            order = b.limit(m.yes_token_id, "BUY", "0.31", "10", tick=m.tick)
            with pytest.raises(VenueRestartingError):
                await c.post_order(order)  # a 425 is a definite refusal, not an unknown outcome
            assert vsim.service.exchange.get_order(order.order_id) is None
            sim_clock.advance(91_000)
            with pytest.raises(PostOnlyModeError) as post_only:
                await c.post_order(order)
            assert post_only.value.retry_after is not None and 115 <= post_only.value.retry_after <= 120
            assert c.core.breaker.state is BreakerState.CLOSED  # a mode, not a host failure
            maker = b.limit(m.yes_token_id, "BUY", "0.32", "10", tick=m.tick, post_only=True)
            assert (await c.post_order(maker)).status == "live"
            assert (await c.cancel_order(resting.order_id)).canceled == (resting.order_id,)
            sim_clock.advance(120_000)
            assert (await c.post_order(order)).status == "live"

    run(body())


def test_short_restart_is_waited_out_with_retry_after(vsim: ThreadedSim, sim_clock: VirtualClock) -> None:
    m = market(vsim)
    timer = VirtualTimer(sim_clock)  # the client's sleeps move the exchange's clock: the restart passes

    async def body() -> None:
        async with hub_for(vsim, timer) as hub:
            faults(vsim, restart=True, restart_window_s=2, post_only_window_s=1)
            book = await hub.public.book(m.yes_token_id)
            assert book.asset_id == m.yes_token_id
            assert hub.public.core.stats.statuses[425] == 1 and max(timer.slept_s) >= 2

    run(body())


def test_breaker_opens_fails_fast_half_opens_and_closes(sim: ThreadedSim) -> None:
    m = market(sim)
    timer = VirtualTimer()
    policy = BreakerPolicy(failure_threshold=3, cooldown_s=10)

    async def body() -> None:
        async with hub_for(sim, timer, retry=RetryPolicy(attempts=2), breaker=policy) as hub:
            pub, breaker = hub.public, hub.public.core.breaker
            faults(sim, http_5xx_rate=1)
            with pytest.raises(VenueUnavailableError):
                await pub.book(m.yes_token_id)  # two attempts, two failures
            with pytest.raises(CircuitOpenError):
                await pub.book(m.yes_token_id)  # the third failure opens it; the retry is refused
            assert breaker.state is BreakerState.OPEN and breaker.opened == 1
            sent = pub.core.stats.sent
            with pytest.raises(CircuitOpenError) as info:
                await pub.midpoint(m.yes_token_id)
            assert pub.core.stats.sent == sent  # failed fast: nothing sent
            assert info.value.retry_after == pytest.approx(10, abs=0.5)
            timer.clock.advance(10_000)
            assert breaker.state is BreakerState.HALF_OPEN
            with pytest.raises(CircuitOpenError):
                await pub.book(m.yes_token_id)  # the probe fails (still 5xx): open again, retry refused
            assert breaker.state is BreakerState.OPEN and breaker.opened == 2
            faults(sim, http_5xx_rate=0)
            with pytest.raises(CircuitOpenError):
                await pub.book(m.yes_token_id)
            timer.clock.advance(10_000)
            assert (await pub.book(m.yes_token_id)).asset_id == m.yes_token_id  # the probe succeeds
            assert breaker.state is BreakerState.CLOSED and breaker.consecutive_failures == 0

    run(body())


def test_one_wallets_breaker_does_not_stop_another(sim: ThreadedSim) -> None:
    m = market(sim)
    timer = VirtualTimer()

    async def body() -> None:
        async with hub_for(sim, timer, retry=RetryPolicy(attempts=1), breaker=BreakerPolicy(2, 30)) as hub:
            a = hub.clob(await keyed(hub, KEY_A, "a"))
            b = hub.clob(await keyed(hub, KEY_B, "b"))
            faults(sim, http_5xx_rate=1)
            for _ in range(2):
                with pytest.raises(VenueUnavailableError):
                    await a.open_orders()
            assert a.core.breaker.state is BreakerState.OPEN
            faults(sim, http_5xx_rate=0)
            with pytest.raises(CircuitOpenError):
                await a.balance_allowance()
            assert await b.open_orders() == []  # b's domain is healthy
            assert (await hub.public.book(m.yes_token_id)).asset_id == m.yes_token_id
            assert b.core.breaker.state is hub.public.core.breaker.state is BreakerState.CLOSED
            assert a.core.pools is b.core.pools is hub.public.core.pools  # one pool per host, shared
            assert hub.pools.hosts == [sim.url]

    run(body())


def test_version_mismatch_refreshes_version_and_asks_to_resign() -> None:
    routes = {
        ("POST", "/order"): reply({"error": "order_version_mismatch: expected version 3"}, 400),
        ("POST", "/orders"): reply(
            [
                {"success": False, "errorMsg": "order_version_mismatch", "orderID": ""},
                {"success": True, "errorMsg": "", "orderID": "", "status": "live"},
            ]
        ),
        ("GET", "/version"): reply({"version": 3}),
    }

    async def body() -> None:
        async with FakeVenue(routes) as venue, fake_hub(venue.url) as hub:
            w = Wallet.from_key(KEY_A, creds=CREDS)
            c = hub.clob(w)
            b = w.order_builder()
            order = b.limit("123", "BUY", "0.5", "10", tick="0.01")
            with pytest.raises(OrderVersionMismatchError) as info:
                await c.post_order(order)
            assert info.value.context["server_version"] == 3 and c.server_version == 3
            assert venue.count("POST", "/order") == 1 and venue.count("GET", "/version") == 1  # never re-signed
            c.server_version = None
            outcomes = await c.post_orders([order, b.limit("123", "BUY", "0.4", "10", tick="0.01")])
            assert isinstance(outcomes[0].error, OrderVersionMismatchError) and outcomes[1].ok
            assert c.server_version == 3 and venue.count("POST", "/orders") == 1

    run(body())


def test_cancel_only_and_disabled_are_typed_and_do_not_trip_the_breaker() -> None:
    cancel_only = "Trading is currently cancel-only. New orders are not accepted, but cancels are allowed."
    routes = {
        ("POST", "/order"): reply({"error": cancel_only}, 503),
        ("GET", "/book"): reply({"error": "Trading is currently disabled. Check polymarket.com for updates"}, 503),
        ("GET", "/midpoint"): reply(
            {
                "error": "post-only mode: only post-only orders and cancels are allowed",
                "code": "post_only_mode",
                "retry_after_seconds": 100,
            },
            503,
            {"Retry-After": "100"},
        ),
    }

    async def body() -> None:
        async with FakeVenue(routes) as venue, fake_hub(venue.url, breaker=BreakerPolicy(2)) as hub:
            c = hub.clob(Wallet.from_key(KEY_A, creds=CREDS))
            order = c.wallet.order_builder().limit("123", "BUY", "0.5", "10", tick="0.01")  # type: ignore[union-attr]
            for _ in range(3):
                with pytest.raises(CancelOnlyError):
                    await c.post_order(order)  # a definite refusal: not an unknown outcome
                with pytest.raises(TradingDisabledError):
                    await hub.public.book("123")
            with pytest.raises(PostOnlyModeError) as info:
                await hub.public.midpoint("123")
            assert info.value.retry_after == 100
            assert c.core.breaker.state is hub.public.core.breaker.state is BreakerState.CLOSED
            assert venue.count("GET", "/book") == 3  # no retry of a long outage

    run(body())


def test_unreadable_answers_to_placements_are_unknown_outcomes() -> None:
    async def garbage(request: web.Request) -> web.StreamResponse:
        return web.Response(body=b"<html>oops</html>", content_type="text/html")

    routes = {
        ("POST", "/order"): garbage,
        ("POST", "/orders"): reply([{"success": True, "orderID": "", "status": "live"}]),  # 1 answer for 2
        ("GET", "/data/orders"): reply({"data": [], "next_cursor": "MTAw"}),  # the same cursor forever
    }

    async def body() -> None:
        async with FakeVenue(routes) as venue, fake_hub(venue.url) as hub:
            w = Wallet.from_key(KEY_A, creds=CREDS)
            c, b = hub.clob(w), w.order_builder()
            one, two = (b.limit("123", "BUY", p, "10", tick="0.01") for p in ("0.5", "0.4"))
            with pytest.raises(OrderOutcomeUnknownError) as info:
                await c.post_order(one)
            assert info.value.order_ids == (one.order_id,) and info.value.reason == "unreadable answer"
            with pytest.raises(OrderOutcomeUnknownError) as info:
                await c.post_orders([one, two])
            assert info.value.order_ids == (one.order_id, two.order_id)
            with pytest.raises(MalformedMessageError, match="repeats"):
                await c.open_orders()
            assert venue.count("GET", "/data/orders") == 2

    run(body())
