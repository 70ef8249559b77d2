"""The latency model (`venues/latency.py`) and the in-process venue with it, on a virtual clock."""

from __future__ import annotations

import asyncio
import random

import pytest

from polyoms.backtest.scenarios import ALPHA, BACKTEST_LATENCY, CASH, SHARES, START_MS, _key, scenario_markets
from polyoms.core.clock import VirtualClock
from polyoms.core.enums import Side
from polyoms.core.user_events import OrderEvent, TradeEvent
from polyoms.core.venue import OrderRef, PreparedOrder
from polyoms.exchange.api.service import SimService
from polyoms.exchange.engine import Exchange
from polyoms.exchange.events import Event, ExchangeOrderEvent
from polyoms.exchange.settlement import SettlementConfig
from polyoms.polymarket.client.wallet import Wallet
from polyoms.venues import latency
from polyoms.venues.inprocess import InProcessVenue
from polyoms.venues.latency import Constant, DelayConfig, LatencyConfig, Lognormal
from polyoms.venues.polymarket_orders import prepared

FIXED = LatencyConfig(
    entry=DelayConfig(median_ms=30), response=DelayConfig(median_ms=40), market_data=DelayConfig(median_ms=10)
)


def draws(config: LatencyConfig, n: int = 50) -> list[tuple[int, int, int]]:
    model, rng = config.model(), random.Random(config.seed)
    return [(model.entry_ms(rng), model.response_ms(rng), model.market_data_ms(rng)) for _ in range(n)]


def test_the_same_seed_gives_the_same_draws_within_the_bounds() -> None:
    config = LatencyConfig(entry=BACKTEST_LATENCY.entry, market_data=BACKTEST_LATENCY.market_data, seed=4)
    first = draws(config)
    assert first == draws(config) and first != draws(LatencyConfig(entry=config.entry, seed=5))
    assert all(20 <= e <= 60 and r == 0 and 5 <= md <= 50 for e, r, md in first)
    assert len({e for e, _, _ in first}) > 10  # random, not constant
    assert Constant(7).draw(random.Random()) == 7
    assert Lognormal(10, 2.0, 5, 12).draw(random.Random(1)) in range(5, 13)


def test_configs_are_checked() -> None:
    assert LatencyConfig().zero and not FIXED.zero
    with pytest.raises(ValueError):
        DelayConfig(median_ms=-1)
    with pytest.raises(ValueError):
        DelayConfig(median_ms=30, sigma=0.3)  # random without bounds


class Setup:
    """The local exchange in process, one funded trader on a venue with `config`'s latencies."""

    def __init__(self, config: LatencyConfig | None) -> None:
        self.clock = VirtualClock(START_MS)
        markets = scenario_markets()
        self.service = SimService(Exchange(markets, self.clock, seed=1, settlement=SettlementConfig()), self.clock)
        self.wallet = Wallet.from_key(_key("us"), name="us")
        tokens = [t for mk in markets for t in mk.token_ids]
        self.service.fund(self.wallet.address, CASH, dict.fromkeys(tokens, SHARES))
        self.venue = InProcessVenue(self.service, self.wallet.address, latency=config)
        self.token = next(mk for mk in markets if mk.slug == ALPHA).yes_token_id
        self.placed: dict[str, int] = {}
        self.cancelled: dict[str, int] = {}
        self.received: list[tuple[int, OrderEvent | TradeEvent]] = []
        self.service.add_listener(self._on_exchange)
        self.venue.set_user_sink(lambda ev: self.received.append((self.clock.now_ms(), ev)))

    def _on_exchange(self, ev: Event) -> None:
        if isinstance(ev, ExchangeOrderEvent):
            seen = self.placed if ev.kind == "PLACEMENT" else self.cancelled
            seen.setdefault(ev.order.order_id, self.clock.now_ms())

    def advance(self, t_ms: int) -> None:
        self.clock.set(t_ms)
        self.venue.link.release(t_ms)

    def order(self, price: str) -> tuple[str, PreparedOrder]:
        signed = self.wallet.order_builder(clock=self.clock).limit(self.token, Side.BUY, price, "10", tick="0.01")
        return signed.order_id, prepared(signed)


def test_an_order_and_its_cancel_sent_at_once_arrive_in_order_at_distinct_instants() -> None:
    s = Setup(FIXED)
    oid, order = s.order("0.40")
    answered: dict[str, int] = {}

    async def submit() -> None:
        (out,) = await s.venue.submit([order])
        assert out.ack is not None
        answered["submit"] = s.clock.now_ms()

    async def cancel() -> None:
        answer = await s.venue.cancel([OrderRef(oid)])
        assert answer.canceled == (oid,)
        answered["cancel"] = s.clock.now_ms()

    async def both() -> None:
        await asyncio.gather(submit(), cancel())

    asyncio.run(latency.drive(both(), [s.venue.link], s.advance))
    # one connection: the cancel, drawn as early, arrives one millisecond after its order
    assert s.placed[oid] == START_MS + 30 and s.cancelled[oid] == START_MS + 31
    assert answered == {"submit": START_MS + 70, "cancel": START_MS + 71}
    # the user channel: the exchange's events, each 10 ms after it emitted them
    assert [(t - START_MS, type(ev).__name__) for t, ev in s.received] == [(40, "OrderEvent"), (41, "OrderEvent")]


def test_random_latencies_replay_with_the_seed() -> None:
    def run(seed: int) -> tuple[int, int, list[int]]:
        s = Setup(LatencyConfig(BACKTEST_LATENCY.entry, BACKTEST_LATENCY.response, BACKTEST_LATENCY.market_data, seed))
        oid, order = s.order("0.40")

        async def both() -> None:
            await asyncio.gather(s.venue.submit([order]), s.venue.cancel([OrderRef(oid)]))

        asyncio.run(latency.drive(both(), [s.venue.link], s.advance))
        assert s.placed[oid] < s.cancelled[oid]
        return s.placed[oid], s.cancelled[oid], [t for t, _ in s.received]

    assert run(3) == run(3) != run(4)


def test_without_latency_nothing_waits() -> None:
    s = Setup(None)
    oid, order = s.order("0.40")

    async def body() -> None:
        (out,) = await s.venue.submit([order])
        assert out.ack is not None and s.received and s.placed[oid] == START_MS
        await s.venue.cancel([OrderRef(oid)])

    with pytest.raises(StopIteration):  # not even one suspension: as before there was a latency model
        body().send(None)
    assert s.clock.now_ms() == START_MS and s.cancelled[oid] == START_MS
    assert [t for t, _ in s.received] == [START_MS, START_MS] and s.venue.link.next_ms is None
