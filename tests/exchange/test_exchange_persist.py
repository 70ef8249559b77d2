"""The local exchange's saved state (exchange/persist): a busy exchange comes back equal — books with
their queues, balances, orders, trades at every settlement status, resolutions, ticks — and trades on
the same way; the service's auth secret, keys and background traders come back; a damaged, foreign or
inconsistent file is refused with a typed error."""

from __future__ import annotations

import json
import stat
from pathlib import Path
from typing import Any

import msgspec
import pytest

from polyoms.core.clock import VirtualClock
from polyoms.core.enums import OrderType, Side
from polyoms.core.units import MICRO
from polyoms.exchange import persist
from polyoms.exchange.api.runner import build_service
from polyoms.exchange.audit import audit
from polyoms.exchange.engine import EngineOrder, Exchange
from polyoms.exchange.life.market import MarketLife
from polyoms.exchange.life.scenarios import scenario
from polyoms.exchange.settlement import SettlementConfig
from polyoms.exchange.trades import TRADE_CONFIRMED, TRADE_FAILED, TRADE_MATCHED, TRADE_MINED, TRADE_RETRYING

TWO = ("life-btc-above-61000", "life-event-alpha")
SHAKY = SettlementConfig(failure_probability=0.15, retry_probability=0.15)
TAKER = "0x" + "ab" * 20


def busy_life(minutes: int = 40) -> MarketLife:
    """Background flow on two markets with failing settlements, then a resolution and a tick change."""
    sc = scenario("calm").only(*TWO)
    clock = VirtualClock(1_777_000_000_000)
    ex = Exchange(sc.specs(), clock, seed=9, settlement=SHAKY)
    life = MarketLife(ex, clock, sc, seed=9)
    life.run_for(minutes * 60_000)
    btc, alpha = (ex.market(p.spec.condition_id) for p in sc.markets)
    ex.change_tick_size(alpha.condition_id, "0.001")
    life.run_for(5 * 60_000)
    ex.resolve(btc.condition_id, btc.yes_token_id)
    life.run_for(3_000)  # trades of the last seconds still settling
    return life


def fingerprint(ex: Exchange) -> dict[str, Any]:
    """Everything observable: books per token, every account's balances, orders, trades, resolutions."""
    tokens = [t for m in ex.markets() for t in m.token_ids]
    state = msgspec.to_builtins(persist.capture_exchange(ex))
    state.pop("trade_id_n")  # moves on by design after a restore
    return {
        "books": {t: ex.book(t) for t in tokens},
        "best": {t: ex.best_bid_ask(t) for t in tokens},
        "last": {t: ex.last_trade(t) for t in tokens},
        "balances": {a.address: ex.balances(a.address) for a in ex.ledger},
        "open": [(o.order_id, o.remaining, o.reserved) for o in ex.open_orders()],
        "in_flight": [t.trade_id for t in ex.in_flight_trades()],
        "markets": ex.markets(),
        "resolutions": {m.condition_id: ex.resolution(m.condition_id) for m in ex.markets()},
        "state": state,
    }


def roundtrip(ex: Exchange, clock: VirtualClock) -> Exchange:
    data = msgspec.json.encode(persist.capture_exchange(ex, persist.RecordCache()))
    return persist.restore_exchange(msgspec.json.decode(data, type=persist.ExchangeState), clock, SHAKY)


def test_a_busy_exchange_comes_back_equal() -> None:
    life = busy_life()
    ex = life.exchange
    statuses = {t.status for t in ex.all_trades}
    assert {TRADE_CONFIRMED, TRADE_FAILED} <= statuses and statuses & {TRADE_MATCHED, TRADE_MINED, TRADE_RETRYING}
    assert len(ex.all_trades) > 100 and len(ex.open_orders()) > 10 and audit(ex) == []
    assert isinstance(ex.clock, VirtualClock)
    restored = roundtrip(ex, ex.clock)
    assert audit(restored) == []
    assert fingerprint(restored) == fingerprint(ex)
    # The cache gives the very bytes a plain capture gives, and so does a second, cached capture.
    cache = persist.RecordCache()
    plain = msgspec.json.encode(persist.capture_exchange(ex))
    assert msgspec.json.encode(persist.capture_exchange(ex, cache)) == plain
    assert cache.orders and cache.trades
    assert msgspec.json.encode(persist.capture_exchange(ex, cache)) == plain


def test_the_restored_exchange_trades_and_settles_as_the_original() -> None:
    life = busy_life()
    ex = life.exchange
    assert isinstance(ex.clock, VirtualClock)
    restored = roundtrip(ex, ex.clock)
    alpha = next(m for m in ex.markets() if not m.resolved)
    bid, ask = ex.best_bid_ask(alpha.yes_token_id)
    assert bid is not None and ask is not None
    results = []
    for x in (ex, restored):
        x.fund(TAKER, 500 * MICRO)
        # A marketable BUY sweeping a few levels: same makers in the same queue order, same fees.
        price = min(ask + 5 * alpha.tick.micro, MICRO - alpha.tick.micro)
        budget = 100 * MICRO
        res = x.submit(
            EngineOrder(
                "0x" + "77" * 32,
                TAKER,
                "taker",
                alpha.yes_token_id,
                Side.BUY,
                budget,
                budget * MICRO // price,
                OrderType.FAK,
            )
        )
        results.append([(m.order_id, m.matched_amount, m.price) for t in res.trades for m in t.maker_orders])
        results.append([(t.price, t.size, t.fee) for t in res.trades])
    assert results[0] and results[0] == results[2] and results[1] == results[3]
    # New trade ids never repeat one the original could have handed out after the snapshot.
    assert {t.trade_id for t in ex.all_trades[-len(results[1]) :]}.isdisjoint(
        t.trade_id for t in restored.all_trades[-len(results[1]) :]
    )
    ex.clock.advance(60_000)
    ex.advance()
    restored.advance()
    assert [(t.trade_id, t.status) for t in ex.all_trades[: -len(results[1])]] == [
        (t.trade_id, t.status) for t in restored.all_trades[: -len(results[1])]
    ]
    assert audit(ex) == [] and audit(restored) == []


def test_the_service_comes_back_with_its_secret_keys_and_background_traders(tmp_path: Path) -> None:
    clock = VirtualClock(1_777_000_000_000)
    service = build_service(seed=4, clock=clock, scenario="calm")
    assert service.life is not None
    creds = service.create_key(TAKER, 0)
    service.link_wallet(TAKER, 2, "0x" + "cd" * 20)
    service.life.run_for(10 * 60_000)
    path = tmp_path / "exchange.json"
    persist.save(path, persist.capture(service))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and not path.with_name("exchange.json.tmp").exists()
    state = persist.load(path)
    assert state is not None and state.auth_secret == service.auth_secret
    assert repr(state.auth_secret)[2:-1] not in repr(state) and "auth_secret" not in repr(state)
    again = build_service(clock=clock, snapshot=state)
    assert again.auth_secret == service.auth_secret and again.seed == 4
    assert again.derive_key(TAKER, 0) == creds  # the wallet's credentials stay valid
    assert again.funder_of(TAKER, 2) == "0x" + "cd" * 20
    assert fingerprint(again.exchange) == fingerprint(service.exchange)
    life, old = again.life, service.life
    assert life is not None and life.scenario.name == "calm"
    funded = again.exchange.ledger.funded_pusd
    assert funded == service.exchange.ledger.funded_pusd  # the agents are not funded twice
    ours, theirs = life.next_order_id(), old.next_order_id()
    assert ours > theirs and ours not in again.exchange.all_orders  # order ids never repeat
    resting = {s.agent.name: set(s.orders) for s in life.slots}
    assert resting == {s.agent.name: {oid for oid, o in s.orders.items() if o.resting} for s in old.slots}
    assert sum(map(len, resting.values())) > 10
    # Both go on trading on the same hidden fair values.
    assert [life.fair_value(p.spec.condition_id) for p in life.scenario.markets] == [
        old.fair_value(p.spec.condition_id) for p in old.scenario.markets
    ]
    before = len(again.exchange.all_trades)
    life.run_for(10 * 60_000)
    assert len(again.exchange.all_trades) > before and audit(again.exchange) == []
    assert again.exchange.ledger.funded_pusd == funded


def test_a_quiet_service_restores_without_background_traders(tmp_path: Path) -> None:
    service = build_service(seed=1)
    state = persist.decode(persist.encode(persist.capture(service)))
    assert state.life is None
    assert build_service(snapshot=state).life is None
    with pytest.raises(persist.SnapshotError, match="scenario none, not calm"):
        build_service(snapshot=state, scenario="calm")


def _saved(tmp_path: Path) -> tuple[Path, dict[str, Any]]:
    service = build_service(seed=2)
    service.exchange.fund(TAKER, 10 * MICRO)
    path = tmp_path / "exchange.json"
    persist.save(path, persist.capture(service))
    return path, json.loads(path.read_bytes())


def test_a_damaged_or_foreign_file_is_refused_with_a_typed_error(tmp_path: Path) -> None:
    path, doc = _saved(tmp_path)
    assert persist.load(tmp_path / "missing.json") is None
    cases: dict[str, bytes] = {
        "not a polyoms exchange snapshot": b"\x00garbage{",
        "snapshot version 99; this polyoms reads version 1": json.dumps({**doc, "version": 99}).encode(),
        "is corrupt": json.dumps({**doc, "exchange": {**doc["exchange"], "order_seq": "seven"}}).encode(),
    }
    truncated = path.read_bytes()[: len(path.read_bytes()) // 2]
    cases["not a polyoms exchange snapshot"] = truncated
    no_version = dict(doc)
    del no_version["version"]
    cases["not a polyoms exchange snapshot: Object missing required field `version`"] = json.dumps(no_version).encode()
    for expected, data in cases.items():
        path.write_bytes(data)
        with pytest.raises(persist.SnapshotError, match=expected.replace("(", r"\(")):
            persist.load(path)


def test_an_inconsistent_state_is_refused(tmp_path: Path) -> None:
    _, doc = _saved(tmp_path)
    rich = [a for a in doc["exchange"]["ledger"]["accounts"] if a["address"] == TAKER]
    rich[0]["pusd"] += 1  # money from nowhere: the audit's conservation check fails
    state = persist.decode(json.dumps(doc).encode())
    with pytest.raises(persist.SnapshotError, match="fails its audit"):
        build_service(snapshot=state)
    rich[0]["pusd"] -= 1
    doc["exchange"]["books"][0]["bids"] = ["0x" + "99" * 32]  # a book naming an order nobody has
    with pytest.raises(persist.SnapshotError, match="inconsistent"):
        build_service(snapshot=persist.decode(json.dumps(doc).encode()))
