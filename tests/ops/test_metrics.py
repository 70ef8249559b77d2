"""Prometheus metrics against the local exchange: the in-process venue on a virtual clock for orders,
fills, latencies, ledgers and heartbeats; the exchange over sockets for WebSocket reconnects and gaps,
rate-limit waits and REST counters; the HTTP endpoint on a free loopback port. No secret, and no order
id, ever appears in an exposition."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from polyoms.core.enums import Side
from polyoms.core.errors import VenueUnavailableError
from polyoms.core.units import MICRO
from polyoms.core.venue import PreparedOrder, SubmitOutcome
from polyoms.exchange.api.runner import ThreadedSim, build_service
from polyoms.oms.engine import Engine
from polyoms.oms.journal import open_journal
from polyoms.oms.oms_state import OmsState
from polyoms.oms.state import OrderState
from polyoms.ops.metrics import InstrumentedVenue, Metrics, start_metrics_server
from polyoms.polymarket.client import LimitsConfig, MarketStream, MarketStreamConfig, UserStream, UserStreamConfig
from polyoms.polymarket.client.redact import REDACTED, register_secret
from polyoms.polymarket.client.ws_common import BackoffPolicy, ws_url
from polyoms.venues.polymarket_orders import prepared
from tests.client.conftest import KEY_A, faults, hub_for, keyed, market
from tests.oms.test_engine_inprocess import CASH, KEY_US, SHARES, Rig, rig

S = OrderState
POST_MS = 120
"""Virtual time a POST takes in these tests (the venue wrapper below advances the clock by it)."""

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(text: bytes) -> Samples:
    out: Samples = {}
    for family in text_string_to_metric_families(text.decode()):
        for s in family.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, frozenset(labels.items()))]


def total(samples: Samples, name: str, **labels: str) -> float:
    """Sum over every series of `name` whose labels include `labels`."""
    want = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and want <= ls)


def scrape(metrics: Metrics, engine: Engine) -> Samples:
    """The exposition, parsed, after checking its order counts (kept from notifications) against a walk
    over every order of the state."""
    got = parse(metrics.render())
    walked = Counter((o.wallet, o.state.value) for o in engine.state.orders.values())
    counted = {(dict(ls)["wallet"], dict(ls)["state"]): v for (n, ls), v in got.items() if n == "polyoms_orders" and v}
    assert counted == walked
    return got


def slow_posts(r: Rig) -> None:
    """Every POST takes POST_MS of the exchange's (virtual) time."""
    inner = r.venue.submit

    async def submit(orders: Sequence[PreparedOrder]) -> list[SubmitOutcome]:
        r.clock.advance(POST_MS)
        return await inner(orders)

    r.venue.submit = submit  # type: ignore[method-assign]


def engine_for(r: Rig, metrics: Metrics) -> Engine:
    state = OmsState(r.clock)
    open_journal(r.journal, state)
    state.add_wallet(r.us.address, [r.venue.owner])
    state.set_balance(r.us.address, cash=CASH, positions={r.yes: SHARES, r.no: SHARES})
    return Engine(state, metrics.instrument(r.venue, clock=r.clock), markets=r.token_markets())


def secrets_of(r: Rig) -> list[str]:
    creds = r.venue.caller.creds
    bare = KEY_US[2:]
    return [KEY_US, bare, bare.upper(), creds.secret, creds.passphrase]


def run(coro: Any) -> Any:
    return asyncio.run(coro)


# --- the OMS side, in process ---------------------------------------------------------------------


def test_orders_fills_latencies_ledgers_and_venue_calls(tmp_path: Path) -> None:
    r = rig(tmp_path)
    slow_posts(r)
    yes_mark = 500_000

    async def body() -> None:
        metrics = Metrics(marks=lambda token: yes_mark if token == r.yes else None)
        engine = engine_for(r, metrics)
        async with engine:
            metrics.attach(engine)
            (a,) = await engine.submit([prepared(r.builder.limit(r.yes, "BUY", "0.40", "20", tick="0.01"))])
            (b,) = await engine.submit([prepared(r.builder.limit(r.yes, "BUY", "0.30", "10", tick="0.01"))])
            await engine.drain()
            live = scrape(metrics, engine)
            r.step(3_000)  # resting 3 s before the first fill
            await r.theirs(Side.SELL, "0.40", "5")
            await engine.drain()
            r.step(15_000)  # settlement: CONFIRMED
            await engine.drain()
            await engine.cancel([a])
            await engine.cancel_all()
            await engine.drain()
            await engine.reconcile()
            assert await engine.heartbeat_once()
            got = scrape(metrics, engine)
            text = metrics.render()
            w = r.us.address.lower()

            assert value(live, "polyoms_orders", wallet=w, state="LIVE") == 2
            for s in S:
                assert value(got, "polyoms_orders", wallet=w, state=s.value) == (2 if s is S.CANCELLED else 0)
            # Every transition in the audit trails was counted, once.
            trail = Counter(
                (h.from_state.value, h.to_state.value)
                for o in engine.state.orders.values()
                for h in o.history
                if h.from_state is not None and h.from_state is not h.to_state  # notes are not transitions
            )
            assert trail[("SUBMITTING", "LIVE")] == 2 and trail[("LIVE", "PARTIALLY_FILLED")] == 1
            counted = {
                (dict(ls)["from_state"], dict(ls)["to_state"]): v
                for (n, ls), v in got.items()
                if n == "polyoms_order_transitions_total" and v
            }
            assert counted == trail
            assert value(got, "polyoms_fills_total", wallet=w, change="new", tier="PROVISIONAL", side="BUY") == 1
            assert value(got, "polyoms_fills_total", wallet=w, change="confirmed", tier="CONFIRMED", side="BUY") == 1
            assert value(got, "polyoms_fill_shares_total", wallet=w, change="new", side="BUY") == 5
            assert value(got, "polyoms_fill_shares_total", wallet=w, change="confirmed", side="BUY") == 5

            # Latencies on the engine's clock: each POST took POST_MS.
            assert value(got, "polyoms_order_submit_ack_seconds_count", outcome="LIVE") == 2
            assert value(got, "polyoms_order_submit_ack_seconds_sum", outcome="LIVE") == pytest.approx(
                2 * POST_MS / 1000
            )
            assert value(got, "polyoms_order_submit_ack_seconds_bucket", outcome="LIVE", le="0.1") == 0
            assert value(got, "polyoms_order_submit_ack_seconds_bucket", outcome="LIVE", le="0.25") == 2
            assert value(got, "polyoms_order_ack_first_fill_seconds_count") == 1  # b never filled
            # a was acknowledged one POST before b's: it rested POST_MS + 3 s.
            assert value(got, "polyoms_order_ack_first_fill_seconds_sum") == pytest.approx(POST_MS / 1000 + 3.0)

            # Venue calls, timed by the wrapper (wall clock), and their outcomes.
            for op, n in (("submit", 2), ("cancel", 1), ("cancel_all", 1), ("open_orders", 1), ("heartbeat", 1)):
                assert value(got, "polyoms_venue_call_seconds_count", op=op, outcome="ok") == n, op
            assert value(got, "polyoms_venue_submit_orders_total", outcome="acked") == 2

            # Ledgers: 5 shares bought at 0.40, confirmed; nothing reserved after the cancels.
            lg = engine.state.ledger(r.us.address)
            assert value(got, "polyoms_ledger_cash_pusd", wallet=w) == (CASH - 2 * MICRO) / MICRO == 998.0
            assert value(got, "polyoms_ledger_reserved_pusd", wallet=w) == 0
            assert value(got, "polyoms_ledger_available_pusd", wallet=w) == lg.available / MICRO == 998.0
            assert value(got, "polyoms_ledger_provisional_out_pusd", wallet=w) == 0
            pos = {"wallet": w, "market": r.market.condition_id, "token": r.yes}
            assert value(got, "polyoms_position_confirmed_shares", **pos) == 205
            assert value(got, "polyoms_position_sellable_shares", **pos) == 205
            assert value(got, "polyoms_position_provisional_in_shares", **pos) == 0
            assert value(got, "polyoms_position_cost_pusd", **pos) == 2.0
            assert value(got, "polyoms_pnl_realized_pusd", **pos) == 0
            assert value(got, "polyoms_pnl_unrealized_pusd", **pos) == 205 * 0.5 - 2.0
            assert lg.positions[r.yes].unrealized(yes_mark) == 100_500_000
            no_pos = {**pos, "token": r.no}
            assert value(got, "polyoms_position_confirmed_shares", **no_pos) == 200
            assert ("polyoms_pnl_unrealized_pusd", frozenset(no_pos.items())) not in got  # no mark, no series

            # The engine's own counters and health.
            st = engine.stats
            assert value(got, "polyoms_engine_events_total", wallet=w) == st.events > 0
            assert value(got, "polyoms_engine_batches_total", wallet=w) == st.batches > 0
            assert value(got, "polyoms_engine_posts_total", wallet=w) == 2
            assert value(got, "polyoms_engine_reconciliations_total", wallet=w) == st.reconciliations >= 1
            assert value(got, "polyoms_admission_open", wallet=w) == 1
            assert value(got, "polyoms_heartbeat_healthy", wallet=w) == 1
            assert value(got, "polyoms_heartbeat_failures_total", wallet=w) == 0
            assert value(got, "polyoms_heartbeat_last_success_timestamp_seconds", wallet=w) == r.clock.now_ms() / 1000

            # Bounded labels and no secrets: no order id, no key, no API secret anywhere.
            body_text = text.decode()
            for oid in (a, b):
                assert oid not in body_text and oid[2:] not in body_text
            for secret in secrets_of(r):
                assert secret not in body_text
            await metrics.close()

    run(body())


def test_taker_fill_before_the_answer_and_a_refusal(tmp_path: Path) -> None:
    r = rig(tmp_path)

    async def body() -> None:
        metrics = Metrics()
        engine = engine_for(r, metrics)
        async with engine:
            metrics.attach(engine)
            await r.theirs(Side.SELL, "0.50", "10")
            await engine.submit([prepared(r.builder.limit(r.yes, "BUY", "0.50", "10", tick="0.01"))])  # takes at once
            too_many = r.builder.limit(r.no, "SELL", "0.90", "5000", tick="0.01")  # more shares than we have
            await engine.submit([prepared(too_many)])
            await engine.drain()
            got = scrape(metrics, engine)
            w = r.us.address.lower()
            # The fill reached the engine (user events) before the POST answer: 0 s, counted once.
            assert value(got, "polyoms_order_ack_first_fill_seconds_count") == 1
            assert value(got, "polyoms_order_ack_first_fill_seconds_sum") == 0
            assert value(got, "polyoms_venue_submit_orders_total", outcome="acked") == 1
            assert value(got, "polyoms_venue_submit_orders_total", outcome="refused") == 1
            assert value(got, "polyoms_order_submit_ack_seconds_count", outcome="REJECTED") == 1
            assert total(got, "polyoms_order_submit_ack_seconds_count") == 2
            assert value(got, "polyoms_orders", wallet=w, state="REJECTED") == 1
            assert value(got, "polyoms_orders", wallet=w, state="FILLED") == 1
            assert value(got, "polyoms_ledger_provisional_out_pusd", wallet=w) == 5.0
            pos = {"wallet": w, "market": r.market.condition_id, "token": r.yes}
            assert value(got, "polyoms_position_provisional_in_shares", **pos) == 10
            assert value(got, "polyoms_position_confirmed_shares", **pos) == 200
            # A second scrape changes nothing (notifications are applied once).
            again = parse(metrics.render())
            assert value(again, "polyoms_order_ack_first_fill_seconds_count") == 1
            assert total(again, "polyoms_order_transitions_total") == total(got, "polyoms_order_transitions_total")
            await metrics.close()

    run(body())


def test_heartbeat_failure_closes_admission_and_shows(tmp_path: Path) -> None:
    r = rig(tmp_path)
    beat = r.venue.heartbeat
    failing = True

    async def heartbeat() -> str:
        if failing:
            raise VenueUnavailableError("venue down", status=503)
        return await beat()

    r.venue.heartbeat = heartbeat  # type: ignore[method-assign]

    async def body() -> None:
        nonlocal failing
        metrics = Metrics()
        engine = engine_for(r, metrics)
        assert isinstance(engine.venue, InstrumentedVenue) and engine.venue.posts is r.venue.posts  # pass-through
        async with engine:
            metrics.attach(engine)
            w = r.us.address.lower()
            assert not await engine.heartbeat_once()
            got = scrape(metrics, engine)
            assert value(got, "polyoms_heartbeat_healthy", wallet=w) == 0
            assert value(got, "polyoms_heartbeat_failures_total", wallet=w) == 1
            assert value(got, "polyoms_risk_flag", wallet=w, flag="heartbeat_failed") == 1
            assert value(got, "polyoms_admission_open", wallet=w) == 0
            assert value(got, "polyoms_venue_call_seconds_count", op="heartbeat", outcome="error") == 1
            assert ("polyoms_heartbeat_last_success_timestamp_seconds", frozenset({("wallet", w)})) not in got
            failing = False
            r.step(1_000)
            assert await engine.heartbeat_once()  # and the resync after it reopens admission
            got = scrape(metrics, engine)
            assert value(got, "polyoms_heartbeat_healthy", wallet=w) == 1
            assert value(got, "polyoms_risk_flag", wallet=w, flag="heartbeat_failed") == 0
            assert value(got, "polyoms_admission_open", wallet=w) == 1
            assert value(got, "polyoms_heartbeat_failures_total", wallet=w) == 1
            assert value(got, "polyoms_heartbeat_last_success_timestamp_seconds", wallet=w) == r.clock.now_ms() / 1000
            await metrics.close()

    run(body())


def test_http_endpoint_serves_on_a_free_port_and_stops(tmp_path: Path) -> None:
    r = rig(tmp_path)
    canary = "metrics-canary-secret-d00d1e"
    register_secret(canary)

    async def body() -> None:
        metrics = Metrics()
        engine = engine_for(r, metrics)
        async with engine:
            metrics.attach(engine)
            await engine.submit([prepared(r.builder.limit(r.yes, "BUY", "0.20", "5", tick="0.01"))])
            await engine.drain()
            # Defence in depth: even a label that somehow carried a secret is scrubbed on the way out.
            metrics.anomalies.labels(f"bad-{canary}").inc()
            server = await start_metrics_server(metrics, host="127.0.0.1", port=0)
            async with server:
                assert server.port > 0 and server.url == f"http://127.0.0.1:{server.port}/metrics"
                async with aiohttp.ClientSession() as http, http.get(server.url) as resp:
                    assert resp.status == 200
                    assert resp.headers["Content-Type"].startswith("text/plain; version=0.0.4")
                    text = await resp.read()
            got = parse(text)
            assert value(got, "polyoms_orders", wallet=r.us.address.lower(), state="LIVE") == 1
            assert value(got, "polyoms_anomalies_total", kind=f"bad-{REDACTED}") == 1
            assert canary.encode() not in text
            for secret in secrets_of(r):
                assert secret.encode() not in text
            with pytest.raises(aiohttp.ClientConnectionError):
                async with aiohttp.ClientSession() as http, http.get(server.url) as resp:
                    pass
            await metrics.close()

    run(body())


def test_detached_engine_is_no_longer_followed(tmp_path: Path) -> None:
    r = rig(tmp_path)

    async def body() -> None:
        metrics = Metrics()
        engine = engine_for(r, metrics)
        async with engine:
            metrics.attach(engine)
            metrics.attach(engine)  # idempotent: one subscription
            await metrics.detach(engine)
            assert "polyoms_orders{" not in metrics.render().decode()
            await engine.submit([prepared(r.builder.limit(r.yes, "BUY", "0.20", "5", tick="0.01"))])
            await engine.drain()
            got = parse(metrics.render())
            assert total(got, "polyoms_order_transitions_total") == 0
            # Attached again: the orders it already has are counted, and the new ones followed.
            metrics.attach(engine)
            await engine.submit([prepared(r.builder.limit(r.yes, "BUY", "0.21", "5", tick="0.01"))])
            got = scrape(metrics, engine)  # the second one still SUBMITTING (its POST not answered yet)
            assert value(got, "polyoms_orders", wallet=r.us.address.lower(), state="SUBMITTING") == 1
            await engine.drain()
            got = scrape(metrics, engine)
            assert value(got, "polyoms_orders", wallet=r.us.address.lower(), state="LIVE") == 2
            assert total(got, "polyoms_order_transitions_total") == 1
            await metrics.close()

    run(body())


# --- the client side, over sockets -----------------------------------------------------------------


@pytest.fixture
def sim() -> Iterator[ThreadedSim]:
    with ThreadedSim(build_service(seed=23)) as server:
        yield server


def fast(cls: Any, sim: ThreadedSim, channel: str, **more: Any) -> Any:
    return cls(
        url=ws_url(sim.url, channel),
        ping_interval_s=0.2,
        stale_after_s=0.8,
        tick_s=0.05,
        backoff=BackoffPolicy(base_s=0.05, max_s=0.4),
        **more,
    )


async def until(condition: Any, timeout_s: float = 8.0) -> None:
    async with asyncio.timeout(timeout_s):
        while not condition():
            await asyncio.sleep(0.02)


def test_rate_limit_waits_rest_counters_and_websocket_reconnects_and_gaps(sim: ThreadedSim) -> None:
    async def body() -> None:
        # Two GET /book per 0.3 s: the third of three waits.
        hub = hub_for(sim, limits=LimitsConfig(margin=1.0, overrides={"clob:/book": ((2, 0.3),)}))
        metrics = Metrics()
        metrics.watch_hub(hub)
        token = market(sim).yes_token_id
        try:
            started = time.monotonic()
            for _ in range(3):
                await hub.public.book(token)
            assert time.monotonic() - started >= 0.2
            got = parse(metrics.render())
            limit = {"scope": "ip", "limit": "clob:/book/0.3s"}
            stats = hub.ip_limiter.stats()["clob:/book/0.3s"]
            assert value(got, "polyoms_rate_limit_waits_total", **limit) == stats.waits == 1
            assert value(got, "polyoms_rate_limit_wait_seconds_total", **limit) == stats.waited_ms / 1000 > 0.1
            assert value(got, "polyoms_rate_limit_waits_total", scope="ip", limit="clob/10s") == 0
            assert value(got, "polyoms_rest_requests_total", client="clob:public") == 3
            assert value(got, "polyoms_rest_responses_total", client="clob:public", status="200") == 3
            assert value(got, "polyoms_rest_breaker_open", client="clob:public") == 0

            wallet = await keyed(hub, KEY_A, "ops-metrics")
            user = UserStream(hub.clob(wallet), config=fast(UserStreamConfig, sim, "user", backfill_retry_s=0.1))
            books = MarketStream(
                fast(MarketStreamConfig, sim, "market", snapshot_timeout_s=1.0, asset_silence_s=None),
                rest=hub.public,
            )
            metrics.watch_stream(user, books)
            async with user, books:
                assert await user.wait_live(5)
                await books.subscribe([token])
                assert await books.wait_trusted([token], timeout_s=5)
                before = parse(metrics.render())
                assert value(before, "polyoms_ws_reconnects_total", channel="user") == 0
                faults(sim, ws_stall_rate=1.0, ws_stall_s=30)  # silence: the watchdogs drop both sockets
                await until(lambda: user.reconnects >= 1 and books.reconnects >= 1)
                faults(sim, reset=True)
                assert await user.wait_live(5)
                assert await books.wait_trusted([token], timeout_s=5)
                after = parse(metrics.render())
                # Checked while the streams are open (closing them is one more gap).
                for channel, stream in (("user", user), ("market", books)):
                    assert value(after, "polyoms_ws_reconnects_total", channel=channel) == stream.reconnects >= 1
                    assert value(after, "polyoms_ws_stale_sockets_total", channel=channel) == stream.stale_sockets >= 1
                    assert value(after, "polyoms_ws_frames_received_total", channel=channel) == stream.received_frames
                    assert value(after, "polyoms_ws_gaps_total", channel=channel) > value(
                        before, "polyoms_ws_gaps_total", channel=channel
                    )
                assert value(after, "polyoms_ws_gaps_total", channel="user") == user.stats.gaps
                assert value(after, "polyoms_ws_gaps_total", channel="market") == sum(books.stats.untrusted.values())
                assert total(after, "polyoms_ws_book_untrusted_total") == sum(books.stats.untrusted.values())
            assert wallet.creds is not None
            text = metrics.render().decode()
            assert wallet.creds.secret not in text and wallet.creds.passphrase not in text
        finally:
            await hub.close()

    run(body())
