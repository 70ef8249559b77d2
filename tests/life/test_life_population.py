"""Persistent identities with known skill: one pool across many markets, stable across resumes."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace

from polyoms.core.clock import VirtualClock
from polyoms.exchange.audit import audit
from polyoms.exchange.life.crypto import HOUR_MS, btc
from polyoms.exchange.life.market import MarketLife, agent_address, agent_owner
from polyoms.exchange.life.population import COPY, INFORMED, NOISE, PoolParams, assign, pool_names
from polyoms.exchange.life.scenarios import Scenario, scenario
from polyoms.exchange.persist import capture_exchange, restore_exchange

START = 1_777_000_000_000


def _small() -> Scenario:
    base = scenario("crypto")
    assert base.crypto is not None
    cfg = replace(base.crypto, assets=(btc(),), windows=("5m",), above_strikes=0, lead_ms={"5m": 15 * 60_000})
    return replace(base, crypto=cfg)


def test_pool_is_fixed_and_assignment_is_seeded() -> None:
    params = PoolParams()
    names = pool_names(params)
    kinds = Counter(kind for _, kind, _, _ in names)
    assert kinds[INFORMED] == params.informed and kinds[COPY] == params.copiers
    life = MarketLife.backtest(_small(), seed=3, start_ms=START)
    idents = life.identities
    assert [i.name for i in idents] == [n for n, _, _, _ in names]
    assert all(i.address == agent_address(i.name) for i in idents)
    informed = [i for i in idents if i.kind == INFORMED]
    assert max(i.skill for i in informed) == 1.0 and min(i.skill for i in informed) < 1.0
    assert all(i.leader in {j.name for j in informed} for i in idents if i.kind == COPY)
    pool = tuple(idents)
    assert assign(pool, params, "btc-updown-5m-1", 3) == assign(pool, params, "btc-updown-5m-1", 3)


def test_identities_trade_many_markets_from_one_wallet() -> None:
    life = MarketLife.backtest(_small(), seed=5, start_ms=START)
    life.run_until(START + 2 * HOUR_MS)
    assert life.crypto is not None and len(life.crypto.records) >= 20
    owners = {agent_owner(i.name): i for i in life.identities}
    markets_of: dict[str, set[str]] = {}
    for t in life.exchange.all_trades:
        for owner in [t.owner, *(m.owner for m in t.maker_orders)]:
            assert owner in owners  # no wallet outside the pool
            markets_of.setdefault(owner, set()).add(t.market)
    busy = [o for o, ms in markets_of.items() if len(ms) >= 5]
    assert len(busy) >= 5
    # Funding: once per identity, never per market.
    funded = {i.address for i in life.identities}
    assert len(funded) == len(life.identities)
    assert audit(life.exchange) == []


def test_copy_traders_follow_their_leader() -> None:
    life = MarketLife.backtest(_small(), seed=8, start_ms=START)
    life.run_until(START + 2 * HOUR_MS)
    copier = next(i for i in life.identities if i.kind == COPY)
    owner = agent_owner(copier.name)
    mine = [t for t in life.exchange.all_trades if t.owner == owner]
    assert mine, "the copy-trader never traded"
    leader_owner = agent_owner(copier.leader)
    leader_markets = {t.market for t in life.exchange.all_trades if t.owner == leader_owner}
    assert {t.market for t in mine} <= leader_markets


def test_informed_profit_more_than_noise() -> None:
    wins = 0
    seeds = (1, 2, 3)
    for seed in seeds:
        life = MarketLife.backtest(_small(), seed=seed, start_ms=START)
        life.run_until(START + 3 * HOUR_MS)
        pnl: dict[str, list[int]] = {}
        for ident in life.identities:
            pnl.setdefault(ident.kind, []).append(life.identity_pnl(ident.name))
        informed = sum(pnl[INFORMED]) / len(pnl[INFORMED])
        noise = sum(pnl[NOISE]) / len(pnl[NOISE])
        wins += informed > noise
    assert wins == len(seeds)


def test_identities_stable_across_a_resume() -> None:
    life = MarketLife.backtest(scenario("crypto"), seed=2, start_ms=START)
    life.run_until(START + 10 * 60_000)
    state = life.export_state()
    clock = VirtualClock(life.clock.now_ms())
    exchange = restore_exchange(capture_exchange(life.exchange), clock)
    again = MarketLife.resume(exchange, clock, state)
    assert again.identities == life.identities
    assert again.crypto is not None and life.crypto is not None
    assert set(again.crypto.live) == set(life.crypto.live)
    again.run_until(START + 20 * 60_000)
    assert again.crypto.records  # markets go on resolving after the resume
    assert {s.identity.name for s in again.slots if s.identity} <= {i.name for i in again.identities}
    assert audit(exchange) == []
