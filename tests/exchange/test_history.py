"""The history archive: finished records leave memory and still answer through the same queries."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest
from exchange_helpers import PLAIN, Harness

from polyoms.core.errors import InputError
from polyoms.exchange import persist
from polyoms.exchange.audit import audit
from polyoms.exchange.history import HistoryArchive
from polyoms.exchange.orders import Order
from polyoms.exchange.trades import Trade

HOUR = 3_600_000
YES = PLAIN.yes_token_id


def _o(o: Order | None) -> bytes:
    assert o is not None
    return msgspec.json.encode(persist.order_state(o))


def _t(t: Trade | None) -> bytes:
    assert t is not None
    return msgspec.json.encode(persist.trade_state(t))


def _trading(h: Harness, rounds: int = 5) -> tuple[list[str], list[str]]:
    """Some crossed orders (trades), a cancel and a resting order; (order ids, trade ids)."""
    a, b = h.user(), h.user(tokens={YES: "1000"})
    oids, tids = [], []
    for i in range(rounds):
        r1 = h.buy(a, YES, "0.50", "10")
        r2 = h.sell(b, YES, "0.50", "10")
        oids += [r1.order_id, r2.order_id]
        tids += list(r2.trade_ids)
        h.advance(1_000 + i)
    c = h.buy(a, YES, "0.40", "5")
    h.ex.cancel(c.order_id, a.owner)
    oids.append(c.order_id)
    h.buy(a, YES, "0.30", "5")  # stays open
    return oids, tids


def _archived_harness(tmp_path: Path) -> tuple[Harness, HistoryArchive]:
    h = Harness()
    arch = HistoryArchive(tmp_path / "history.sqlite")
    h.ex.attach_archive(arch, window_ms=HOUR, every_ms=300_000)
    return h, arch


def test_archive_round_trip_answers_the_same(tmp_path: Path) -> None:
    h, arch = _archived_harness(tmp_path)
    oids, tids = _trading(h)
    h.advance(30_000)  # every trade final (CONFIRMED), still in memory
    a_owner = h.ex.get_order(oids[0]).owner  # type: ignore[union-attr]
    before_orders = {oid: _o(h.ex.get_order(oid)) for oid in oids}
    before_trades = [_t(t) for t in h.ex.trades(a_owner)]
    before_by_wallet = [t.trade_id for t in h.ex.trades(None, maker_address=h.ex.get_order(oids[1]).maker)]  # type: ignore[union-attr]
    assert len(before_trades) == 5
    by_asset = [t.trade_id for t in h.ex.trades(None, asset_id=PLAIN.no_token_id)]
    h.advance(2 * HOUR)  # past the window: the archive timer has run
    assert arch.count("trades") == 5 and arch.count("orders") == len(oids)
    assert len(h.ex.all_trades) == 0 and len(h.ex.all_orders) == 1  # only the open order is left
    assert {oid: _o(h.ex.get_order(oid)) for oid in oids} == before_orders
    assert [_t(t) for t in h.ex.trades(a_owner)] == before_trades
    assert [_t(h.ex.trade(tid)) for tid in tids] == before_trades
    assert [t.trade_id for t in h.ex.trades(None, maker_address=h.ex.get_order(oids[1]).maker)] == before_by_wallet  # type: ignore[union-attr]
    assert [t.trade_id for t in h.ex.trades(a_owner, limit=2, offset=1)] == tids[1:3]
    assert h.ex.trades(a_owner, market="0xnone") == []
    assert [t.trade_id for t in h.ex.trades(None, asset_id=PLAIN.no_token_id)] == by_asset
    assert [t.trade_id for t in h.ex.trades(None, asset_id=YES)] == tids
    assert audit(h.ex) == []


def test_archive_and_memory_merge_in_match_order(tmp_path: Path) -> None:
    h, _ = _archived_harness(tmp_path)
    _, old = _trading(h, 3)
    h.advance(2 * HOUR)
    _, new = _trading(h, 2)  # in memory, within the window
    assert [t.trade_id for t in h.ex.trades()] == old + new
    assert len(h.ex.all_trades) == 2
    assert audit(h.ex) == []


def test_retire_market(tmp_path: Path) -> None:
    h, arch = _archived_harness(tmp_path)
    oids, _ = _trading(h, 2)
    with pytest.raises(InputError):
        h.ex.retire_market(PLAIN.condition_id)  # not resolved
    res = h.ex.resolve(PLAIN.condition_id, YES)
    h.ex.retire_market(PLAIN.condition_id)
    assert PLAIN.condition_id.lower() not in h.ex.books
    assert h.ex.market(PLAIN.condition_id).resolved
    assert h.ex.market_of_token(YES).condition_id == PLAIN.condition_id
    assert h.ex.resolution(PLAIN.condition_id) == res
    assert PLAIN.condition_id not in [s.condition_id for s in h.ex.markets()]
    assert PLAIN.condition_id in [s.condition_id for s in h.ex.markets(include_retired=True)]
    assert all(h.ex.get_order(oid) is not None for oid in oids)
    assert arch.count("markets") == 1
    assert audit(h.ex) == []


def test_retire_needs_an_archive() -> None:
    h = Harness()
    h.ex.resolve(PLAIN.condition_id, YES)
    with pytest.raises(InputError):
        h.ex.retire_market(PLAIN.condition_id)


def test_crash_between_archive_and_snapshot_has_no_duplicates(tmp_path: Path) -> None:
    h, arch = _archived_harness(tmp_path)
    oids, tids = _trading(h)
    h.advance(HOUR + 1_000)  # final, not yet archived (the window has not passed at the last run)
    state = persist.capture_exchange(h.ex)  # the last snapshot before the crash
    h.advance(HOUR)  # the archive run: the records go to disk
    assert arch.count("trades") == len(tids)
    arch.close()
    # Crash here: the snapshot still holds what the archive holds.
    arch2 = HistoryArchive(tmp_path / "history.sqlite")
    ex2 = persist.restore_exchange(state, h.clock, archive=arch2)
    owner = ex2.get_order(oids[0]).owner  # type: ignore[union-attr]
    got = [t.trade_id for t in ex2.trades(owner)]
    assert got == tids and len(set(got)) == len(got)
    assert all(ex2.get_order(oid) is not None for oid in oids)
    assert audit(ex2) == []
    ex2.archive_history()
    assert arch2.count("trades") == len(tids) and arch2.count("orders") == len(oids)


def test_snapshot_after_archive_restores_with_history(tmp_path: Path) -> None:
    h, arch = _archived_harness(tmp_path)
    oids, tids = _trading(h)
    h.advance(2 * HOUR)
    state = persist.decode(persist.encode(_service_state(h)))
    want = [_o(h.ex.get_order(oid)) for oid in oids]
    arch.close()
    arch2 = HistoryArchive(tmp_path / "history.sqlite")
    ex2 = persist.restore_exchange(state.exchange, h.clock, archive=arch2)
    assert [_o(ex2.get_order(oid)) for oid in oids] == want
    assert len(ex2.open_orders()) == 1
    assert [t.trade_id for t in ex2.trades(ex2.get_order(oids[0]).owner)] == tids  # type: ignore[union-attr]
    assert audit(ex2) == []


def test_record_cache_stays_bounded(tmp_path: Path) -> None:
    h, _ = _archived_harness(tmp_path)
    cache = persist.RecordCache()
    _trading(h)
    h.advance(30_000)  # settled, before the first archive run
    persist.capture_exchange(h.ex, cache)
    assert len(cache.orders) > 1
    h.advance(2 * HOUR)
    persist.capture_exchange(h.ex, cache)
    assert len(cache.orders) == 0 and len(cache.trades) == 0


def _service_state(h: Harness) -> persist.ServiceState:
    return persist.ServiceState(
        version=persist.VERSION,
        saved_at_ms=h.clock.now_ms(),
        chain_id=137,
        seed=0,
        auth_secret=b"x" * 32,
        api_keys=[],
        wallets=[],
        auto_funded=[],
        exchange=persist.capture_exchange(h.ex),
    )
