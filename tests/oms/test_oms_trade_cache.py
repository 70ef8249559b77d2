"""A trade's later statuses reuse the legs found at its first sight (OmsState._trade_orders): the state must
be exactly what full attribution of every message gives, including when attribution's inputs change."""

from __future__ import annotations

import msgspec
import pytest

from polyoms.core.units import MICRO
from polyoms.core.user_events import TraderSide
from polyoms.core.user_events import TradeStatus as T
from polyoms.oms.oms_state import OmsState

from .history import History, bootstrap, fresh_state
from .oms_helpers import OTHER_OWNER, OTHER_WALLET, maker, oid, trade


class _NoCache(dict[str, tuple[int, str, tuple[str, ...]]]):
    """Never remembers a trade: every message goes through full attribution."""

    def __setitem__(self, key: str, value: tuple[int, str, tuple[str, ...]]) -> None:
        pass


def _pair() -> tuple[OmsState, OmsState]:
    cached, full = fresh_state(), fresh_state()
    full._trade_orders = _NoCache()
    for s in (cached, full):
        bootstrap(s)
    return cached, full


def _same(a: OmsState, b: OmsState) -> None:
    assert a.snapshot() == b.snapshot()
    assert (a.seq, a.anomaly_count, a.trade_checkpoint_s) == (b.seq, b.anomaly_count, b.trade_checkpoint_s)
    assert msgspec.to_builtins(a.drain_notifications()) == msgspec.to_builtins(b.drain_notifications())


@pytest.mark.parametrize("seed", range(40))
def test_random_histories_match_full_attribution(seed: int) -> None:
    cached, full = _pair()
    h1, h2 = History(seed), History(seed)
    for _ in range(400):
        h1.step(cached)
        h2.step(full)
    assert cached._trade_orders  # the cache was used
    _same(cached, full)


def test_a_wallet_added_between_statuses_is_attributed_like_without_the_cache() -> None:
    cached, full = _pair()
    ours, theirs = oid(), oid()
    first = trade(
        "t-late",
        "0x" + "ee" * 32,
        T.MATCHED,
        size=8 * MICRO,
        makers=(
            maker(theirs, 5 * MICRO, 500_000, owner=OTHER_OWNER, address=OTHER_WALLET),
            maker(ours, 3 * MICRO, 500_000),
        ),
        trader_side=TraderSide.MAKER,
    )
    for s in (cached, full):
        s.on_trade_event(first)
    # A second wallet of ours appears (its API key and funder): the first maker entry is now ours too.
    for s in (cached, full):
        s.add_wallet(OTHER_WALLET, [OTHER_OWNER])
        s.on_trade_event(msgspec.structs.replace(first, status=T.MINED))
        s.on_trade_event(msgspec.structs.replace(first, status=T.CONFIRMED))
    assert {k[1] for k in cached.fills} == {ours, theirs}
    _same(cached, full)


def test_reconciliation_always_attributes_in_full() -> None:
    cached, full = _pair()
    ours = oid()
    ev = trade(
        "t-rest",
        "0x" + "ee" * 32,
        T.MATCHED,
        size=3 * MICRO,
        makers=(maker(ours, 3 * MICRO, 500_000),),
        trader_side=TraderSide.MAKER,
    )
    for s in (cached, full):
        s.on_trade_event(ev)
        s.on_rest_trade(msgspec.structs.replace(ev, status=T.CONFIRMED))
    _same(cached, full)
