"""Latencies of a venue connection for backtests: order entry, response and market data, seeded.

One small model per modelling decision (as in hftbacktest): a `Delay` draws one latency in whole
milliseconds (`Constant`, or `Lognormal` clipped to a range); a `LatencyModel` draws the entry latency
(request sent → the venue processes it), the response latency (processed → the answer is back) and the
market-data latency (the venue emits an event → it reaches us). `LatencyConfig` describes them as data;
the zero config changes nothing (no wait, no reordering).

A `Link` applies a model on a clock: `send()` waits until the request reaches the venue (requests of one
link arrive in the order sent, at distinct instants: a cancel never overtakes its order), `answer()`
until the answer is back, `deliver(fn)` runs `fn` when an event reaches us (in the order emitted). On a
`VirtualClock` nothing sleeps: waits and deliveries are queued by due time, and whoever moves the clock
releases them with `release(now)`; `drive` awaits a coroutine and moves the clock to the next thing due
whenever the coroutine waits on nothing else. Draws come from the config's seed only: a seed, one run.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import math
import random
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Final, Protocol, TypeVar

import msgspec

from polyoms.core.clock import Clock, VirtualClock

T = TypeVar("T")

IDLE_YIELDS: Final = 64
"""Loop turns after which `drive` takes an unfinished coroutine to be waiting on the clock (a hop between
the OMS, its I/O and the parents takes one or two)."""


class Delay(Protocol):
    def draw(self, rng: random.Random) -> int:
        """One latency, whole milliseconds ≥ 0."""
        ...


@dataclass(frozen=True, slots=True)
class Constant:
    ms: int = 0

    def draw(self, rng: random.Random) -> int:
        return self.ms


@dataclass(frozen=True, slots=True)
class Lognormal:
    """Lognormal around `median_ms` (`sigma` of its log), clipped to [`min_ms`, `max_ms`]: latencies are
    skewed (a long tail of slow answers), never negative, and the clip keeps a backtest's tail bounded."""

    median_ms: int
    sigma: float
    min_ms: int
    max_ms: int

    def draw(self, rng: random.Random) -> int:
        value = rng.lognormvariate(math.log(self.median_ms), self.sigma)
        return min(self.max_ms, max(self.min_ms, round(value)))


class LatencyModel(Protocol):
    def entry_ms(self, rng: random.Random) -> int: ...

    def response_ms(self, rng: random.Random) -> int: ...

    def market_data_ms(self, rng: random.Random) -> int: ...


@dataclass(frozen=True, slots=True)
class Latencies:
    """A `LatencyModel` from one `Delay` per leg."""

    entry: Delay
    response: Delay
    market_data: Delay

    def entry_ms(self, rng: random.Random) -> int:
        return self.entry.draw(rng)

    def response_ms(self, rng: random.Random) -> int:
        return self.response.draw(rng)

    def market_data_ms(self, rng: random.Random) -> int:
        return self.market_data.draw(rng)


class DelayConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One latency: `median_ms`; `sigma` > 0 makes it lognormal, clipped to [`min_ms`, `max_ms`]."""

    median_ms: int = 0
    sigma: float = 0.0
    min_ms: int = 0
    max_ms: int = 0

    def __post_init__(self) -> None:
        if self.median_ms < 0 or self.sigma < 0:
            raise ValueError("a latency is never negative")
        if self.sigma and not 0 < self.min_ms <= self.median_ms <= self.max_ms:
            raise ValueError("a random latency needs 0 < min_ms <= median_ms <= max_ms")

    def delay(self) -> Delay:
        if self.sigma:
            return Lognormal(self.median_ms, self.sigma, self.min_ms, self.max_ms)
        return Constant(self.median_ms)

    @property
    def zero(self) -> bool:
        return self.median_ms == 0 and not self.sigma


class LatencyConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    entry: DelayConfig = DelayConfig()
    response: DelayConfig = DelayConfig()
    market_data: DelayConfig = DelayConfig()
    seed: int = 0

    def model(self) -> LatencyModel:
        return Latencies(self.entry.delay(), self.response.delay(), self.market_data.delay())

    @property
    def zero(self) -> bool:
        return self.entry.zero and self.response.zero and self.market_data.zero


ZERO: Final = LatencyConfig()


class Link:
    """One connection's latencies on a clock (module doc)."""

    def __init__(self, clock: Clock, config: LatencyConfig = ZERO) -> None:
        self.clock = clock
        self.config = config
        self.model = config.model()
        self.rng = random.Random(config.seed)
        self._virtual = isinstance(clock, VirtualClock)
        self._last_arrival_ms = 0
        self._last_delivery_ms = 0
        self._last_emitted_ms: int | None = None
        self._due: list[tuple[int, int, Callable[[], None]]] = []
        self._seq = itertools.count()

    @property
    def next_ms(self) -> int | None:
        """When the next queued wait or delivery is due (virtual clock), None if nothing is queued."""
        return self._due[0][0] if self._due else None

    async def send(self) -> None:
        """Wait until a request sent now reaches the venue: after the entry latency, after the link's
        previous request (one connection delivers in order)."""
        if self.config.zero:
            return
        now = self.clock.now_ms()
        at = max(now + self.model.entry_ms(self.rng), self._last_arrival_ms + 1)
        self._last_arrival_ms = at
        await self._until(at)

    async def answer(self) -> None:
        """Wait until the venue's answer, given now, is back."""
        if self.config.zero:
            return
        await self._until(self.clock.now_ms() + self.model.response_ms(self.rng))

    def deliver(self, fn: Callable[[], None]) -> None:
        """Run `fn` once an event the venue emits now has reached us (at once when there is no latency):
        after the market-data latency, never before an earlier event (one stream keeps its order), and
        together with the events emitted at the same instant (a trade and its order updates are one burst)."""
        if self.config.zero:
            fn()
            return
        now = self.clock.now_ms()
        if now != self._last_emitted_ms:
            self._last_emitted_ms = now
            self._last_delivery_ms = max(now + self.model.market_data_ms(self.rng), self._last_delivery_ms)
        at = self._last_delivery_ms
        if self._virtual:
            self._push(at, fn)
        else:
            asyncio.get_running_loop().call_later((at - self.clock.now_ms()) / 1000, fn)

    def release(self, now_ms: int) -> None:
        """Wake the waits and run the deliveries due by `now_ms`, earliest first (the clock is there)."""
        while self._due and self._due[0][0] <= now_ms:
            heapq.heappop(self._due)[2]()

    async def _until(self, at_ms: int) -> None:
        wait_ms = at_ms - self.clock.now_ms()
        if wait_ms <= 0:
            return
        if not self._virtual:
            await asyncio.sleep(wait_ms / 1000)
            return
        woken: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def wake() -> None:
            if not woken.done():  # the waiting task may have been cancelled meanwhile
                woken.set_result(None)

        self._push(at_ms, wake)
        await woken

    def _push(self, at_ms: int, fn: Callable[[], None]) -> None:
        heapq.heappush(self._due, (at_ms, next(self._seq), fn))


async def drive(aw: Awaitable[T], links: Sequence[Link], advance: Callable[[int], None]) -> T:
    """Await `aw` on a virtual clock: whenever it has not finished after `IDLE_YIELDS` loop turns while
    something is queued on `links`, `advance(t)` to the earliest due time `t` (which must move the clock
    there and `release` the links). With zero latencies on every link this is a plain await."""
    if all(link.config.zero for link in links):
        return await aw
    task = asyncio.ensure_future(aw)
    while not task.done():
        for _ in range(IDLE_YIELDS):
            await asyncio.sleep(0)
            if task.done():
                break
        else:
            due = [t for link in links if (t := link.next_ms) is not None]
            if due:
                advance(min(due))
            else:  # waiting on something that is not on the clock: let it finish
                await asyncio.wait({task}, timeout=0.001)
    return task.result()
