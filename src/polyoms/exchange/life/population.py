"""Persistent trader identities with known skill, shared across the many markets of a crypto series.

A short series (a 5-minute market every 5 minutes) must not create a wallet per market: the same
people trade market after market. So the `crypto` scenario keeps a fixed pool of named identities —
each with a stable address (`market.agent_address(name)`), a kind and a skill — funded once, and
assigns a few of them to every new market (`assign`, a pure function of the seed and the market's
slug). `MarketLife.identities` exposes the pool: the truth a wallet analysis must recover.

Kinds: `lp` (quotes around the exchange-price view), `informed` (sees the oracle; `skill` in (0, 1] is
how much of its signal is the oracle rather than the exchange price), `noise` (uninformed takers),
`whale` (few, large, slow, half-informed) and `copy` (repeats one named leader's trades after a delay).
"""

from __future__ import annotations

import random
from collections import deque
from dataclasses import dataclass
from typing import Final

from polyoms.core.units import MICRO
from polyoms.exchange.life.agents import Agent, AgentDecision, AgentPlace, Observation
from polyoms.exchange.life.fair_value import clamp_price

LP: Final = "lp"
INFORMED: Final = "informed"
NOISE: Final = "noise"
WHALE: Final = "whale"
COPY: Final = "copy"


@dataclass(frozen=True, slots=True)
class Identity:
    """One persistent trader: who it is, what it knows. `leader` names whom a copy-trader follows."""

    name: str
    address: str
    kind: str
    skill: float
    leader: str = ""


@dataclass(frozen=True, slots=True)
class PoolParams:
    """The pool's size and how many of each kind a new market gets."""

    lps: int = 6
    informed: int = 4
    noise: int = 12
    whales: int = 2
    copiers: int = 2
    per_market_lps: int = 2
    per_market_informed: int = 1
    per_market_noise: int = 3
    whale_share: float = 0.15
    """Chance that a given whale trades a given market."""
    funding_pusd: tuple[tuple[str, int], ...] = (
        (LP, 2_000_000 * MICRO),
        (INFORMED, 1_000_000 * MICRO),
        (NOISE, 200_000 * MICRO),
        (WHALE, 5_000_000 * MICRO),
        (COPY, 200_000 * MICRO),
    )
    copy_delay_ms: int = 2_000
    copy_ratio: float = 0.5


def pool_names(params: PoolParams) -> list[tuple[str, str, float, str]]:
    """(name, kind, skill, leader) of every identity, in a fixed order."""
    out: list[tuple[str, str, float, str]] = []
    out += [(f"lp-{i:02d}", LP, 0.0, "") for i in range(params.lps)]
    # Skills spread evenly in (0.25, 1]: the best sees the oracle exactly.
    n = params.informed
    informed = [(f"informed-{i:02d}", INFORMED, round(1.0 - 0.75 * i / max(n, 1), 4), "") for i in range(n)]
    out += informed
    out += [(f"noise-{i:02d}", NOISE, 0.0, "") for i in range(params.noise)]
    out += [(f"whale-{i:02d}", WHALE, 0.5, "") for i in range(params.whales)]
    if informed:
        out += [(f"copy-{i:02d}", COPY, 0.0, informed[i % len(informed)][0]) for i in range(params.copiers)]
    return out


def funding_of(params: PoolParams, kind: str) -> int:
    return dict(params.funding_pusd)[kind]


def assign(pool: tuple[Identity, ...], params: PoolParams, slug: str, seed: int) -> list[Identity]:
    """Who trades market `slug`: a seeded draw per market; copy-traders come with their leader."""
    rng = random.Random(f"polyoms-life:assign:{slug}:{seed}")
    by_kind: dict[str, list[Identity]] = {}
    for ident in pool:
        by_kind.setdefault(ident.kind, []).append(ident)

    def pick(kind: str, k: int) -> list[Identity]:
        group = by_kind.get(kind, [])
        return rng.sample(group, min(k, len(group)))

    chosen = pick(LP, params.per_market_lps) + pick(INFORMED, params.per_market_informed)
    chosen += pick(NOISE, params.per_market_noise)
    chosen += [w for w in by_kind.get(WHALE, []) if rng.random() < params.whale_share]
    names = {i.name for i in chosen}
    chosen += [c for c in by_kind.get(COPY, []) if c.leader in names]
    return chosen


class CopyTrader(Agent):
    """Repeats its leader's fills in the same market after a delay, at `ratio` of the size, as a marketable
    order a couple of ticks through the touch. The driver tells it of each fill (`on_leader_trade`)."""

    role = COPY

    def __init__(self, name: str, rng: random.Random, delay_ms: int, ratio: float, slippage_ticks: int = 2) -> None:
        super().__init__(name, rng)
        self.delay_ms = delay_ms
        self.ratio = ratio
        self.slippage_ticks = slippage_ticks
        self.pending: deque[tuple[int, bool, int]] = deque()

    def first_wake(self, now_ms: int) -> int:
        return now_ms + self.delay_ms

    def on_leader_trade(self, now_ms: int, is_bid: bool, size: int) -> int:
        """Queue a copy of a leader's fill; returns when to wake for it."""
        copy = int(size * self.ratio) // 10_000 * 10_000
        due = now_ms + self.delay_ms
        if copy > 0:
            self.pending.append((due, is_bid, copy))
        return due

    def decide(self, obs: Observation, fair: int) -> AgentDecision:
        out: list[AgentPlace] = []
        pending = self.pending
        while pending and pending[0][0] <= obs.now_ms:
            _, is_bid, size = pending.popleft()
            if not obs.accepting:
                continue
            size = max(size, obs.min_size)
            slip = self.slippage_ticks * obs.tick
            if is_bid and obs.best_ask is not None:
                out.append(AgentPlace(True, clamp_price(obs.best_ask + slip, obs.tick), size, take=True))
            elif not is_bid and obs.best_bid is not None:
                out.append(AgentPlace(False, clamp_price(obs.best_bid - slip, obs.tick), size, take=True))
        wake = pending[0][0] if pending else None
        return AgentDecision(list(out), wake)
