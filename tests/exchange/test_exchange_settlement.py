"""Settlement on a virtual clock: MATCHED → MINED → CONFIRMED, RETRYING → FAILED with exact reversal,
pending proceeds, events, transaction hashes, and the timers' entry points."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from exchange_helpers import FEE4, PLAIN, START_MS, Harness, m

from polyoms.core.errors import ConfigError, InsufficientBalanceError
from polyoms.core.units import MICRO
from polyoms.exchange import messages as msg
from polyoms.exchange.audit import audit
from polyoms.exchange.events import ExchangeOrderEvent, ExchangeTradeEvent
from polyoms.exchange.settlement import SettlementConfig, transaction_hash
from polyoms.exchange.trades import (
    TRADE_CONFIRMED,
    TRADE_FAILED,
    TRADE_MATCHED,
    TRADE_MINED,
    TRADE_RETRYING,
    MatchType,
    Trade,
)

YES, NO = PLAIN.yes_token_id, PLAIN.no_token_id
FYES, FNO = FEE4.yes_token_id, FEE4.no_token_id
MINED_MS, CONFIRM_MS, RETRY_MS = 2_000, 10_000, 5_000
FAIL_ALL = SettlementConfig(failure_probability=1.0)


def statuses(h: Harness, t: Trade) -> list[tuple[str, int, str]]:
    return [(e.status, e.timestamp_ms, e.transaction_hash) for e in h.log.trade_events(t.trade_id)]


def one_trade(h: Harness) -> Trade:
    s = h.user("0", {YES: "10"})
    b = h.user("100")
    h.sell(s, YES, "0.60", "10")
    (t,) = h.buy(b, YES, "0.60", "10").trades
    return t


def test_defaults_are_polygon_like_and_every_trade_succeeds() -> None:
    cfg = SettlementConfig()
    assert (cfg.mined_delay_ms, cfg.confirmed_delay_ms, cfg.retry_delay_ms) == (MINED_MS, CONFIRM_MS, RETRY_MS)
    assert cfg.failure_probability == cfg.retry_probability == 0


def test_status_progression_on_a_virtual_clock(h: Harness) -> None:
    t = one_trade(h)
    assert (t.status, t.transaction_hash, t.err_msg, t.last_update_ms) == (TRADE_MATCHED, "", "", START_MS)
    h.check()
    h.advance(MINED_MS - 1)
    assert t.status == TRADE_MATCHED
    h.advance(1)
    tx = transaction_hash(t.trade_id)
    assert re.fullmatch(r"0x[0-9a-f]{64}", tx)
    assert (t.status, t.transaction_hash, t.last_update_ms) == (TRADE_MINED, tx, START_MS + MINED_MS)
    assert t.last_update == (START_MS + MINED_MS) // 1000
    h.check()
    h.advance(CONFIRM_MS - 1)
    assert t.status == TRADE_MINED
    h.advance(1)
    assert (t.status, t.transaction_hash) == (TRADE_CONFIRMED, tx)
    assert t.is_final and h.ex.in_flight_trades() == []
    h.advance(3_600_000)
    assert statuses(h, t) == [
        (TRADE_MATCHED, START_MS, ""),
        (TRADE_MINED, START_MS + MINED_MS, tx),
        (TRADE_CONFIRMED, START_MS + MINED_MS + CONFIRM_MS, tx),
    ]
    h.check()


def test_transaction_hash_is_stable_per_trade_id() -> None:
    hashes = []
    for _ in range(2):
        h = Harness(seed=5)
        t = one_trade(h)
        h.advance(MINED_MS)
        hashes.append((t.trade_id, t.transaction_hash))
    assert hashes[0] == hashes[1] and hashes[0][1] == transaction_hash(hashes[0][0])
    assert transaction_hash("a") != transaction_hash("b")


def test_steps_happen_when_due_however_rarely_the_owner_advances(h: Harness) -> None:
    t = one_trade(h)
    h.clock.advance(3_600_000)
    assert h.ex.settle() == [t, t]  # MINED, then CONFIRMED, in one call
    assert [s for s, _, _ in statuses(h, t)] == [TRADE_MATCHED, TRADE_MINED, TRADE_CONFIRMED]
    assert [ms for _, ms, _ in statuses(h, t)] == [START_MS, START_MS + MINED_MS, START_MS + MINED_MS + CONFIRM_MS]
    assert t.last_update_ms == START_MS + MINED_MS + CONFIRM_MS


def test_operations_and_the_old_expire_hook_catch_settlement_up(h: Harness) -> None:
    t = one_trade(h)
    h.clock.advance(MINED_MS)
    # A submit first takes the steps due by its own time: the MINED event precedes its PLACEMENT.
    u = h.user("10")
    r = h.buy(u, NO, "0.10", "10")
    kinds = [(type(e).__name__, getattr(e, "status", "")) for e in h.log.events[-2:]]
    assert kinds == [("ExchangeTradeEvent", TRADE_MINED), ("ExchangeOrderEvent", "LIVE")]
    # A cancel does too.
    h.clock.advance(CONFIRM_MS)
    h.ex.cancel(r.order_id, u.owner)
    assert t.status == TRADE_CONFIRMED
    # expire(), the timer hook the REST server already calls, settles as well.
    t2 = one_trade(h)
    h.clock.advance(MINED_MS)
    assert h.ex.expire() == [] and t2.status == TRADE_MINED
    h.check()


def test_proceeds_are_pending_until_mined(h: Harness) -> None:
    s = h.user("0", {YES: "10"})
    b = h.user("10")
    h.sell(s, YES, "0.60", "10")
    h.buy(b, YES, "0.60", "10")
    bought = h.ex.balances(b.address).token(YES)
    assert (bought.balance, bought.pending, bought.available) == (m("10"), m("10"), 0)
    sold = h.ex.balances(s.address)
    assert (sold.pusd, sold.pusd_pending, sold.pusd_available) == (m("6"), m("6"), 0)
    assert h.free_pusd(b) == m("4")  # what the buyer did not spend stays free
    with pytest.raises(InsufficientBalanceError):
        h.sell(b, YES, "0.70", "10")  # shares not in the wallet before the transaction is mined
    with pytest.raises(InsufficientBalanceError):
        h.buy(s, NO, "0.50", "10")  # 5 pUSD of 6 pending
    h.check()
    h.advance(MINED_MS)
    assert h.ex.balances(b.address).token(YES).available == m("10")
    assert h.ex.balances(s.address).pusd_available == m("6")
    assert h.sell(b, YES, "0.70", "10").status == "live"
    assert h.buy(s, NO, "0.50", "10").status == "live"
    h.check()


# --- failures --------------------------------------------------------------------------------------


# Each scenario funds its users (and sets allowances) and returns the trading part, so that the ledger
# can be snapshotted in between: "before the trade" includes the makers' orders not yet placed.
Scenario = Callable[[Harness], Callable[[], list[Trade]]]


def _complementary_taker_buy(h: Harness) -> Callable[[], list[Trade]]:
    s1, s2 = h.user("0", {FYES: "30"}), h.user("5", {FYES: "10"})
    b = h.user("100")
    h.ex.set_allowance(b.address, m("50"))  # finite: the reversal must give back what was spent
    h.ex.set_allowance(s1.address, m("25"), FYES)

    def trade() -> list[Trade]:
        h.sell(s1, FYES, "0.40", "20")
        h.sell(s2, FYES, "0.40", "10")
        h.sell(s1, FYES, "0.45", "5")
        return h.buy(b, FYES, "0.45", "35").trades

    return trade


def _complementary_taker_sell(h: Harness) -> Callable[[], list[Trade]]:
    b1, b2 = h.user("50"), h.user("50")
    s = h.user("0", {FYES: "40"})
    h.ex.set_allowance(s.address, m("40"), FYES)

    def trade() -> list[Trade]:
        h.buy(b1, FYES, "0.70", "10")
        h.buy(b2, FYES, "0.65", "10")
        return h.sell(s, FYES, "0.60", "20").trades

    return trade


def _mint(h: Harness) -> Callable[[], list[Trade]]:
    a, b = h.user("50"), h.user("50")

    def trade() -> list[Trade]:
        h.buy(a, FNO, "0.45", "20")  # a YES ask at 0.55
        return h.buy(b, FYES, "0.55", "20").trades

    return trade


def _merge(h: Harness) -> Callable[[], list[Trade]]:
    a, b = h.user("1", {FNO: "20"}), h.user("1", {FYES: "20"})

    def trade() -> list[Trade]:
        h.sell(a, FNO, "0.40", "20")  # a YES bid at 0.60
        return h.sell(b, FYES, "0.60", "20").trades

    return trade


def _mixed_makers_and_a_market_buy(h: Harness) -> Callable[[], list[Trade]]:
    s, n = h.user("0", {FYES: "10"}), h.user("50")
    b = h.user("30")

    def trade() -> list[Trade]:
        # One level holds a SELL YES (complementary) and a BUY NO (mint); a FOK market BUY takes both.
        h.sell(s, FYES, "0.50", "10")
        h.buy(n, FNO, "0.50", "10")
        trades = h.market_buy(b, FYES, "10", "0.50").trades
        assert {mf.match_type for t in trades for mf in t.maker_orders} == {MatchType.COMPLEMENTARY, MatchType.MINT}
        return trades

    return trade


SCENARIOS: dict[str, Scenario] = {
    "complementary-taker-buy": _complementary_taker_buy,
    "complementary-taker-sell": _complementary_taker_sell,
    "mint": _mint,
    "merge": _merge,
    "mixed-makers-market-buy": _mixed_makers_and_a_market_buy,
}


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_a_failed_trade_restores_the_ledger_exactly(scenario: str) -> None:
    h = Harness(settlement=FAIL_ALL)
    trade = SCENARIOS[scenario](h)
    before = h.snapshot()
    trades = trade()
    assert trades and sum(t.fee for t in trades) > 0  # taker fees are part of what gets undone
    after_match = h.snapshot()
    assert after_match != before
    h.check()
    h.advance(MINED_MS)
    assert {t.status for t in trades} == {TRADE_RETRYING}
    assert h.snapshot() == after_match  # RETRYING moves nothing; proceeds stay pending
    h.check()
    h.advance(RETRY_MS)
    assert {t.status for t in trades} == {TRADE_FAILED}
    assert h.snapshot() == before  # balances, allowances, pending, reservations, fees, collateral
    h.check()
    for t in trades:
        assert (t.err_msg, t.transaction_hash) == (msg.TRADE_FAILED, "")
        assert [s for s, _, _ in statuses(h, t)] == [TRADE_MATCHED, TRADE_RETRYING, TRADE_FAILED]
        assert [ms for _, ms, _ in statuses(h, t)] == [START_MS, START_MS + MINED_MS, START_MS + MINED_MS + RETRY_MS]
    # Orders keep what the venue reported as matched and say how much of it was undone.
    orders = list(h.ex.all_orders.values())
    assert all(o.size_failed == o.size_matched for o in orders) and any(o.size_matched for o in orders)
    assert h.ex.ledger.fee_collector.pusd == 0
    h.advance(3_600_000)
    assert h.snapshot() == before and len(h.log.trade_events()) == 3 * len(trades)


def test_a_partly_filled_maker_stays_on_the_book_after_its_fill_failed() -> None:
    h = Harness(settlement=FAIL_ALL)
    b = h.user("100")
    s = h.user("0", {YES: "5"})
    bid = h.buy(b, YES, "0.50", "20")
    (t,) = h.sell(s, YES, "0.50", "5").trades
    h.advance(MINED_MS + RETRY_MS)
    assert t.status == TRADE_FAILED
    o = h.ex.get_order(bid.order_id)
    assert o is not None and o.resting
    # Not requeued for the failed 5: remaining stays 15 and so does its reservation.
    assert (o.size_matched, o.size_failed, o.remaining) == (m("5"), m("5"), m("15"))
    assert h.ex.balances(b.address).pusd == m("100")
    assert h.ex.balances(b.address).pusd_reserved == m("7.5")
    assert h.shares(s, YES) == m("5") and h.shares(b, YES) == 0
    taker = h.ex.get_order(t.taker_order_id)
    assert taker is not None and (taker.size_matched, taker.size_failed) == (m("5"), m("5"))
    h.check()


def test_a_market_buy_counts_its_failed_fill_in_pusd() -> None:
    h = Harness(settlement=FAIL_ALL)
    s, b = h.user("0", {YES: "10"}), h.user("10")
    h.sell(s, YES, "0.40", "10")
    r = h.market_buy(b, YES, "2", "0.50")
    h.advance(MINED_MS + RETRY_MS)
    o = h.ex.get_order(r.order_id)
    assert o is not None and o.size_matched == o.size_failed == m("2") and h.pusd(b) == m("10")


def test_retrying_then_mined_keeps_the_trade() -> None:
    h = Harness(settlement=SettlementConfig(retry_probability=1.0))
    t = one_trade(h)
    b = t.maker_address
    h.advance(MINED_MS)
    assert t.status == TRADE_RETRYING and h.ex.balances(b).token(YES).available == 0  # still pending
    h.advance(RETRY_MS)
    assert t.status == TRADE_MINED and t.transaction_hash == transaction_hash(t.trade_id)
    assert h.ex.balances(b).token(YES).available == m("10")
    h.advance(CONFIRM_MS)
    assert [(st, ms) for st, ms, _ in statuses(h, t)] == [
        (TRADE_MATCHED, START_MS),
        (TRADE_RETRYING, START_MS + MINED_MS),
        (TRADE_MINED, START_MS + MINED_MS + RETRY_MS),
        (TRADE_CONFIRMED, START_MS + MINED_MS + RETRY_MS + CONFIRM_MS),
    ]
    h.check()


def _fates(seed: int) -> list[str]:
    h = Harness(settlement=SettlementConfig(failure_probability=0.4, retry_probability=0.2), seed=seed)
    s, b = h.user("0", {YES: "1000"}), h.user("1000")
    trades = []
    for _ in range(30):
        h.sell(s, YES, "0.50", "5")
        trades += h.buy(b, YES, "0.50", "5").trades
        h.clock.advance(100)
    h.advance(3_600_000)
    h.check()
    return [t.status for t in trades]


def test_fates_are_drawn_from_the_seed() -> None:
    a, b, c = _fates(1), _fates(1), _fates(2)
    assert a == b and a != c
    assert set(a) == {TRADE_CONFIRMED, TRADE_FAILED}
    assert 4 <= a.count(TRADE_FAILED) <= 20


def test_every_party_of_a_self_trade_is_restored() -> None:
    h = Harness(settlement=FAIL_ALL)
    u = h.user("50", {FYES: "10"})
    before = h.snapshot()
    h.sell(u, FYES, "0.50", "10")
    (t,) = h.buy(u, FYES, "0.50", "10").trades
    assert t.fee > 0 and h.ex.balances(u.address).pusd_available < m("50")
    h.advance(MINED_MS + RETRY_MS)
    assert h.snapshot() == before
    h.check()


def test_a_listener_calling_back_into_the_exchange_sees_each_status_once_in_order() -> None:
    h = Harness(settlement=SettlementConfig(mined_delay_ms=0, confirmed_delay_ms=0))
    seen: list[tuple[str, str]] = []

    def listener(e: object) -> None:
        h.log(e)  # type: ignore[arg-type]
        if isinstance(e, ExchangeTradeEvent):
            seen.append((e.trade.trade_id, e.status))
        h.ex.advance()  # re-entrant: may take due steps in the middle of an operation
        h.ex.trades()

    h.ex.listener = listener
    s1, s2, b = h.user("0", {YES: "10"}), h.user("0", {YES: "10"}), h.user("100")
    h.sell(s1, YES, "0.40", "10")
    h.sell(s2, YES, "0.45", "10")
    trades = h.buy(b, YES, "0.45", "20").trades
    assert len(trades) == 2
    for t in trades:
        assert [st for tid, st in seen if tid == t.trade_id] == [TRADE_MATCHED, TRADE_MINED, TRADE_CONFIRMED]
    assert isinstance(h.log.events[-1], ExchangeOrderEvent | ExchangeTradeEvent)
    h.check()


def test_settlement_config_is_validated() -> None:
    for bad in (
        {"mined_delay_ms": -1},
        {"confirmed_delay_ms": 1.5},
        {"retry_delay_ms": True},
        {"failure_probability": 1.5},
        {"retry_probability": -0.1},
        {"failure_probability": 0.6, "retry_probability": 0.6},
        {"failure_probability": "0.1"},
    ):
        with pytest.raises(ConfigError):
            SettlementConfig(**bad)  # type: ignore[arg-type]


def test_audit_notices_pending_that_no_trade_explains(h: Harness) -> None:
    t = one_trade(h)
    acct = h.ex.ledger.account(t.maker_address)
    acct.token_pending[YES] += 1
    assert any("pending" in p for p in audit(h.ex))
    acct.token_pending[YES] -= 1
    t.transaction_hash = "0x" + "0" * 64
    assert any("transaction hash" in p for p in audit(h.ex))


def test_taker_fee_and_side_amounts_flow_as_documented() -> None:
    """The provisional view: what each party sees between the match and MINED."""
    h = Harness()
    s, b = h.user("0", {FYES: "100"}), h.user("100")
    h.sell(s, FYES, "0.50", "100")
    (t,) = h.buy(b, FYES, "0.50", "100").trades
    fee = t.fee
    assert fee == 100 * MICRO * 4 // 100 // 4  # 100 × 0.04 × 0.25
    collector = h.ex.balances(h.ex.ledger.fee_collector.address)
    assert (collector.pusd, collector.pusd_pending) == (fee, fee)
    assert h.ex.balances(b.address).pusd == m("50") - fee
    h.advance(MINED_MS)
    assert h.ex.balances(h.ex.ledger.fee_collector.address).pusd_pending == 0
    h.check()


def test_in_flight_trades_are_listed_by_when_their_next_step_is_due() -> None:
    h = Harness(settlement=SettlementConfig(retry_probability=1.0))
    first = one_trade(h)
    h.advance(MINED_MS)  # first: RETRYING, next step at +7 s
    second = one_trade(h)  # MATCHED, next step at +4 s
    assert first.status == TRADE_RETRYING and h.ex.in_flight_trades() == [second, first]
    h.advance(RETRY_MS)  # +7 s: first MINED (confirms at +17 s), second RETRYING since +4 s (mined at +9 s)
    assert (first.status, second.status) == (TRADE_MINED, TRADE_RETRYING)
    assert h.ex.in_flight_trades() == [second, first]
    h.advance(3_600_000)
    assert h.ex.in_flight_trades() == [] and len(h.ex.settlement) == 0
