"""The sweep-recovery measurement (life.realism): exact on a hand-built book with a scripted refill,
deterministic per seed, and the tuned living market inside a coarse band of its measured values."""

from __future__ import annotations

import random
from dataclasses import replace

import pytest

from polyoms.core.clock import VirtualClock
from polyoms.core.enums import Side
from polyoms.core.errors import ConfigError
from polyoms.core.units import MICRO
from polyoms.exchange.audit import audit
from polyoms.exchange.engine import EngineOrder, Exchange
from polyoms.exchange.life.agents import Agent, AgentDecision, LPParams, Observation, reconcile
from polyoms.exchange.life.market import MarketLife
from polyoms.exchange.life.realism import (
    Sweeper,
    SweepPlan,
    SweepSample,
    against_targets,
    depth_near,
    measure,
    mid_of,
    summarize,
    sweep_and_watch,
)
from polyoms.exchange.life.scenarios import scenario

ALPHA = "life-event-alpha"
C = 10_000  # a cent, micro

Ladder = list[tuple[bool, int, int]]


def ladder(mid: int, sizes: tuple[int, ...] = (100, 100)) -> Ladder:
    """Bids and asks 1, 2, … ¢ either side of `mid`, `sizes` shares each."""
    out: Ladder = []
    for i, n in enumerate(sizes, start=1):
        out += [(True, mid - i * C, n * MICRO), (False, mid + i * C, n * MICRO)]
    return out


class ScriptedRefiller(Agent):
    """Quotes `steps[0]` at once; when hit, quotes `steps[1]` after `delays[0]` ms, then `steps[2]`
    `delays[1]` ms after that, and so on. Never wakes on a timer."""

    role = "lp"

    def __init__(self, steps: list[Ladder], delays: list[int]) -> None:
        super().__init__("refiller", random.Random(0))
        self.steps, self.delays, self.k = steps, delays, 0
        self.hit = False

    def funding(self) -> tuple[int, int]:
        return (10_000 * MICRO, 10_000 * MICRO)

    def first_wake(self, now_ms: int) -> int:
        return now_ms + 1

    def on_fill(self, now_ms: int, is_bid: bool, size: int) -> int | None:
        if self.hit:
            return None
        self.hit = True
        return now_ms + self.delays[0]

    def decide(self, obs: Observation, fair: int) -> AgentDecision:
        react = None
        if self.hit and self.k + 1 < len(self.steps):
            self.k += 1
            if self.k < len(self.delays):
                react = obs.now_ms + self.delays[self.k]
        cmds = reconcile(obs.quotes, self.steps[self.k], post_only=True)
        return AgentDecision(cmds, None, react)


def scripted_sweep(steps: list[Ladder], delays: list[int], buy: bool) -> tuple[MarketLife, SweepSample | None]:
    life = MarketLife.backtest(scenario("calm").only(ALPHA), seed=1, background=False)
    cid = life.scenario.markets[0].spec.condition_id
    life.add_agent(ScriptedRefiller(steps, delays), cid)
    life.run_for(10)
    sample = sweep_and_watch(life, Sweeper(life), cid, buy, SweepPlan())
    return life, sample


def test_a_known_refill_gives_the_known_recovery_and_mid_move() -> None:
    # 100 + 100 asks at 0.51 / 0.52 around 0.50; swept; half back (0.51) after 1 s; then after 4 s more
    # everything back 1 ¢ higher (asks 0.52 / 0.53, bids 0.50 / 0.49): the mid moved a cent up.
    steps = [ladder(500_000), [(False, 510_000, 100 * MICRO)], ladder(510_000)]
    life, s = scripted_sweep(steps, [1_000, 4_000], buy=True)
    assert s is not None
    assert s.mid_before == 500_000 and s.depth_before == 200 * MICRO and s.swept == 200 * MICRO
    assert s.depth_after == (0, 100 * MICRO, 100 * MICRO, 200 * MICRO, 200 * MICRO)
    assert [s.recovery(i) for i in range(5)] == [0.0, 0.5, 0.5, 1.0, 1.0]
    # No bids in step 1: no mid then (250 ms: no asks). At 5 s: +1 ¢ in the sweep's direction.
    assert s.mid_after[:3] == (None, None, None)
    assert s.mid_move(3) == C and s.mid_move(4) == C
    # Near the moved mid (0.51): the asks at 0.52 and 0.53 are both within 3 ¢ of it.
    assert s.near_after[3] == 200 * MICRO
    assert audit(life.exchange) == []


def test_a_sell_sweep_measures_the_bids_and_signs_the_move_its_way() -> None:
    # Bids swept; they come back 2 ¢ lower after 2 s, only the nearer one in the pre-sweep range.
    steps = [ladder(500_000), ladder(480_000)]
    _, s = scripted_sweep(steps, [2_000], buy=False)
    assert s is not None and not s.buy and s.depth_before == 200 * MICRO
    # In [0.47, 0.50): the new bid at 0.47 only (0.46 is outside the window).
    assert s.depth_after == (0, 0, 100 * MICRO, 100 * MICRO, 100 * MICRO)
    assert s.mid_move(2) == 2 * C  # 0.50 → 0.48, down: +2 ¢ in a sell sweep's direction
    assert s.near_after[2] == 200 * MICRO


def test_book_reading_and_no_sweep_without_a_book() -> None:
    sc = scenario("calm").only(ALPHA)
    clock = VirtualClock(1_777_000_000_000)
    ex = Exchange(sc.specs(), clock)
    spec = sc.markets[0].spec
    book = ex.books[spec.condition_id.lower()]
    assert mid_of(book) is None and depth_near(book, True, 500_000, 3 * C) == 0
    addr = "0x" + "cd" * 20
    ex.fund(addr, 10_000 * MICRO)
    for k, (price, n) in enumerate([(470_000, 10), (480_000, 20), (450_000, 40)]):
        ex.submit(EngineOrder(f"0x{k + 1:064x}", addr, "o", spec.yes_token_id, Side.BUY, n * price, n * MICRO))
    ex.submit(EngineOrder(f"0x{9:064x}", addr, "o", spec.no_token_id, Side.BUY, 30 * 480_000, 30 * MICRO))  # ask 0.52
    assert mid_of(book) == 500_000
    # Bids within 3 ¢ of 0.50: 0.48 and 0.47 (0.45 is too far); the window's ends are inclusive.
    assert depth_near(book, False, 500_000, 3 * C) == 30 * MICRO
    assert depth_near(book, False, 500_000, 5 * C) == 70 * MICRO
    assert depth_near(book, True, 500_000, 2 * C) == 30 * MICRO
    assert depth_near(book, True, 500_000, C) == 0
    # Too little depth to sweep: nothing is done.
    life = MarketLife(ex, clock, sc, background=False)
    assert sweep_and_watch(life, Sweeper(life), spec.condition_id, True, SweepPlan(min_depth=50 * MICRO)) is None
    assert len(ex.all_trades) == 0
    with pytest.raises(ConfigError):
        SweepPlan(offsets_ms=(1_000, 500))
    with pytest.raises(ConfigError):
        SweepPlan(mid_at_ms=3_000)


def test_same_seed_same_sweeps() -> None:
    plan = SweepPlan(sweeps=8, warmup_ms=120_000)
    sc = scenario("jump").only(ALPHA, "life-btc-above-61000")
    a = measure(sc, [3], plan)
    assert len(a) == 8 and a == measure(sc, [3], plan)
    assert a != measure(sc, [4], plan)


def test_tuned_recovery_and_mid_move_stay_in_their_measured_band() -> None:
    """Calm, all four markets, seeds 1–2, 30 sweeps each. Measured (2026-12-08): near-mid recovery
    median 0.33 at 1 s and 0.83 at 5 s, swept-range 0.40 at 5 s, mid move +1.0 ¢ at 5 s. The band is
    loose on purpose; the published targets are 25–40 % / 75–85 % and 0.5–1.5 ¢."""
    plan = SweepPlan(sweeps=30)
    tuned = summarize(measure(scenario("calm"), [1, 2], plan), plan)
    i1, i5 = plan.offsets_ms.index(1_000), plan.offsets_ms.index(5_000)
    assert tuned.sweeps == 60
    assert 0.2 <= tuned.near_recovery[i1].median <= 0.5
    assert 0.65 <= tuned.near_recovery[i5].median <= 0.95
    assert 0.25 <= tuned.recovery[i5].median <= 0.7
    assert 0.4 <= tuned.mid_move_at().median <= 1.6
    assert set(against_targets(tuned)) == {"recovery_1000ms", "recovery_5000ms", "mid_move_5000ms_cents"}

    # The same market with liquidity providers that neither react to fills nor learn from them: slow
    # recovery (only their 7.5–22.5 s requote timer) and no lasting move.
    sc = scenario("calm")
    still = replace(sc, population=replace(sc.population, lp_params=LPParams(react_ms=0, impact_per_kshare=0)))
    base = summarize(measure(still, [1, 2], plan), plan)
    assert base.near_recovery[i1].median < tuned.near_recovery[i1].median
    assert base.near_recovery[i5].median < tuned.near_recovery[i5].median
    assert base.mid_move_at().median < tuned.mid_move_at().median
