"""The driver against the real exchange: determinism, conservation, queue position, scripted events."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from polyoms.core.clock import VirtualClock
from polyoms.core.enums import Side
from polyoms.core.units import MICRO
from polyoms.exchange.audit import audit
from polyoms.exchange.engine import EngineOrder, Exchange
from polyoms.exchange.life.feed import DAY_MS
from polyoms.exchange.life.market import MarketLife
from polyoms.exchange.life.scenarios import HOUR_MS, ScenarioUnavailableError, scenario
from polyoms.exchange.markets import default_markets
from polyoms.exchange.trades import Trade

TWO = ("life-btc-above-61000", "life-event-alpha")  # one crypto-fee market, one fee-free


def trade_key(t: Trade) -> tuple[Any, ...]:
    makers = tuple((m.order_id, m.owner, m.matched_amount, m.price, m.side) for m in t.maker_orders)
    return (t.trade_id, t.taker_order_id, t.owner, t.asset_id, t.side, t.price, t.size, t.fee, t.match_time_ms, makers)


def run(name: str, seed: int, hours: float, *slugs: str) -> MarketLife:
    sc = scenario(name)
    life = MarketLife.backtest(sc.only(*slugs) if slugs else sc, seed=seed)
    life.run_until(life.start_ms + int(hours * HOUR_MS))
    return life


def test_same_seed_same_day_event_for_event() -> None:
    a = run("jump", 21, 3, *TWO)
    b = run("jump", 21, 3, *TWO)
    ka = [trade_key(t) for t in a.exchange.all_trades]
    assert len(ka) > 300
    assert ka == [trade_key(t) for t in b.exchange.all_trades]
    assert a.stats == b.stats
    assert {oid: o.status for oid, o in a.exchange.all_orders.items()} == {
        oid: o.status for oid, o in b.exchange.all_orders.items()
    }
    c = run("jump", 22, 3, *TWO)
    assert [trade_key(t) for t in c.exchange.all_trades] != ka


def test_a_busy_day_conserves_everything() -> None:
    life = run("calm", 3, 24, *TWO)
    ex, ledger, stats = life.exchange, life.exchange.ledger, life.stats
    # A busy day: thousands of trades and tens of thousands of order events per market.
    assert stats.trades > 2 * 3_000 and stats.orders + stats.cancels > 2 * 20_000
    assert stats.rejects < stats.orders // 100
    assert audit(ex) == []
    # Nothing came from anywhere but the funding life did (and tracked); fees went to the collector.
    assert ledger.funded_pusd == life.funded_pusd
    assert ledger.total_pusd() + sum(ledger.collateral_locked.values()) == life.funded_pusd
    fees = sum(t.fee for t in ex.all_trades)
    # Maker rebates are paid out of the collector (exchange/incentives), so it keeps at most the fees.
    kept = ex.balances(ledger.fee_collector.address).pusd
    assert fees > 0 and 0 < kept <= fees
    for plan in life.scenario.markets:
        spec = plan.spec
        minted = ledger.collateral_locked.get(spec.condition_id, 0)
        for tid in spec.token_ids:
            assert ledger.total_tokens(tid) == life.funded_tokens(tid) + minted
    for acct in ledger:
        assert acct.pusd >= 0 and acct.pusd_reserved >= 0
        assert all(v >= 0 for v in acct.tokens.values()) and all(v >= 0 for v in acct.token_reserved.values())
    # Every agent's holdings account for its trades: the PnLs add up to minus the fees the collector kept.
    assert sum(life.pnl(s.agent.name) for s in life.slots) == pytest.approx(-kept, abs=len(life.slots) * 2)
    # Both market kinds traded, through all three match types.
    per_market = Counter(t.market for t in ex.all_trades)
    assert all(n > 2_000 for n in per_market.values()) and len(per_market) == 2
    types = Counter(m.match_type.name for t in ex.all_trades for m in t.maker_orders)
    assert set(types) == {"COMPLEMENTARY", "MINT", "MERGE"}


def test_queue_position_is_price_time() -> None:
    life = run("calm", 4, 0.5, "life-event-alpha")
    spec = life.scenario.markets[0].spec
    ex = life.exchange
    book = ex.books[spec.condition_id.lower()]
    level = book.best_bid
    price = level * book.tick
    ahead = [o.order_id for o in book.queue(True, level)]
    assert ahead, "the background book has a best bid"
    address, owner, size = "0x" + "ab" * 20, "queue-tester", 20 * MICRO
    ex.fund(address, 1_000 * MICRO)
    ids = [f"0x{k:064x}" for k in (1, 2)]
    for oid in ids:  # A, then B, both behind everyone already at the best bid
        ex.submit(EngineOrder(oid, address, owner, spec.yes_token_id, Side.BUY, size * price // MICRO, size))
    a, b = (ex.get_order(oid) for oid in ids)
    assert a is not None and b is not None
    background = {s.owner for s in life.slots}
    deadline = life.clock.now_ms() + 6 * HOUR_MS
    while not a.size_matched and life.clock.now_ms() < deadline:
        life.step()
        assert not b.size_matched or a.remaining == 0  # B gets nothing while A waits
    assert a.size_matched, "the background flow reached our price"
    # When A first fills, nothing that was ahead of it still rests; some of it was filled first.
    before = [ex.get_order(oid) for oid in ahead]
    assert not any(o is not None and o.resting for o in before)
    assert any(o is not None and o.size_matched for o in before)
    assert all(t.owner in background for t in ex.trades(owner))
    while b.resting and not b.size_matched and life.clock.now_ms() < deadline:
        life.step()
        assert not b.size_matched or a.remaining == 0  # B only after A is done
    assert a.remaining == 0


class _ManualClock:
    """A clock the test moves; life must never set it (the real-time case)."""

    def __init__(self, now: int) -> None:
        self.now = now

    def now_ms(self) -> int:
        return self.now


def test_run_until_from_a_real_time_loop() -> None:
    sc = scenario("calm").only("life-event-alpha")
    clock = _ManualClock(1_777_000_000_000)
    ex = Exchange(sc.specs(), clock, seed=1)
    life = MarketLife(ex, clock, sc, seed=1)
    ran = 0
    for _ in range(600):  # ten minutes of a 1-second ticker, events run late but in order
        clock.now += 1_000
        ran += life.run_until(clock.now)
        assert clock.now == life.clock.now_ms()
        due = life.next_due()
        assert due is None or due > clock.now
    assert ran > 200 and life.stats.orders > 50 and len(ex.all_trades) > 10
    assert audit(ex) == []


def test_scripted_events_need_the_exchange_feature() -> None:
    class OldExchange(Exchange):
        change_tick_size = None  # type: ignore[assignment]

    sc = scenario("tick_size_change")
    ex = OldExchange(sc.specs(), _ManualClock(0))
    with pytest.raises(ScenarioUnavailableError, match="change_tick_size"):
        MarketLife(ex, ex.clock, sc)
    assert scenario("calm").events == ()


def test_tick_size_change_scenario() -> None:
    life = run("tick_size_change", 2, 10)
    spec = next(p.spec for p in life.scenario.markets if p.spec.slug == "life-event-edge")
    ex = life.exchange
    assert ex.market(spec.condition_id).tick.text == "0.001"
    change = life.start_ms + 8 * HOUR_MS
    after = [t for t in ex.trades(market=spec.condition_id) if t.match_time_ms > change]
    assert len(after) > 200
    assert any(t.price % 10_000 for t in after)  # trading on the finer grid
    assert not any(t.price % 10_000 for t in ex.trades(market=spec.condition_id) if t.match_time_ms < change)
    assert audit(ex) == []


def test_resolution_scenario() -> None:
    life = run("resolution", 5, 21, "life-event-alpha")
    ex = life.exchange
    spec = ex.market(life.scenario.markets[0].spec.condition_id)
    assert spec.closed and spec.resolved and not ex.open_orders(market=spec.condition_id)
    yes = life.resolutions[spec.condition_id.lower()]
    assert spec.winning_token_id == (spec.yes_token_id if yes else spec.no_token_id)
    assert life.fair_value(spec.condition_id) == (MICRO if yes else 0)
    assert all(s.stopped for s in life.slots)
    last = max(t.match_time_ms for t in ex.all_trades)
    assert last < life.start_ms + 20 * HOUR_MS
    assert audit(ex) == []
    # Shares are gone, paid out one pUSD per winning share: PnLs still add up to minus the fees.
    fees = sum(t.fee for t in ex.all_trades)
    assert sum(life.pnl(s.agent.name) for s in life.slots) == pytest.approx(-fees, abs=len(life.slots) * 2)


def test_life_on_an_exchange_s_own_markets() -> None:
    """What a server does: the default markets (ticks down to 0.0001, a neg-risk event), a scenario's agents."""
    specs = default_markets()
    clock = VirtualClock(1_777_000_000_000)
    ex = Exchange(specs, clock, seed=2)
    life = MarketLife(ex, clock, scenario("calm").on_markets(specs), seed=2)
    life.run_for(HOUR_MS // 2)
    traded = {t.market for t in ex.all_trades}
    assert traded == {s.condition_id for s in specs}
    for s in specs:
        bid, ask = ex.best_bid_ask(s.yes_token_id)
        assert bid is not None and ask is not None and bid < ask
        assert abs((bid + ask) // 2 - life.fair_value(s.condition_id)) < 60_000  # the books follow the values
    assert audit(ex) == []


def test_a_day_is_a_day() -> None:
    life = MarketLife.backtest(scenario("thin").only("life-event-beta"), seed=1)
    life.run_for(DAY_MS)
    assert life.clock.now_ms() == life.start_ms + DAY_MS
    assert life.stats.trades > 100 and audit(life.exchange) == []


def test_a_day_with_ghost_fills_still_conserves_everything() -> None:
    """Settlement failures (RETRYING -> FAILED reversals) on top of a day of flow: nothing leaks."""
    from polyoms.exchange.settlement import SettlementConfig

    sc = scenario("jump").only(*TWO)
    clock = VirtualClock(1_777_000_000_000)
    settlement = SettlementConfig(failure_probability=0.05, retry_probability=0.05)
    ex = Exchange(sc.specs(), clock, seed=8, settlement=settlement)
    life = MarketLife(ex, clock, sc, 8)
    life.run_until(life.start_ms + 24 * HOUR_MS)
    ex.advance(clock.now_ms() + 60_000)  # let the last trades reach a final status
    failed = [t for t in ex.all_trades if t.status == "FAILED"]
    assert len(failed) > 100 and all(t.status in ("CONFIRMED", "FAILED") for t in ex.all_trades)
    assert audit(ex) == []
    ledger = ex.ledger
    assert ledger.total_pusd() + sum(ledger.collateral_locked.values()) == life.funded_pusd
    for acct in ledger:
        assert acct.pusd >= 0 and all(v >= 0 for v in acct.tokens.values())
