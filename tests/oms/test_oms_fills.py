"""Fills: attribution as maker (incl. the complementary token of a MINT), taker and both; three tiers;
ghost fills; reordering and duplicates; the fee rule. Recorded venue messages where they exist."""

from __future__ import annotations

import msgspec
import pytest

from polyoms.core.clock import VirtualClock
from polyoms.core.enums import OrderType, Side
from polyoms.core.units import MICRO
from polyoms.core.user_events import TradeEvent, TraderSide
from polyoms.core.user_events import TradeStatus as T
from polyoms.oms.fills import FillTier, Role, fee_allowance, taker_fee
from polyoms.oms.inputs import Anomaly, FillUpdate
from polyoms.oms.ledger import Position
from polyoms.oms.oms_state import OmsState
from polyoms.oms.state import OrderIntent, OrderState
from polyoms.venues import polymarket_orders

from .oms_helpers import (
    OTHER_OWNER,
    OTHER_WALLET,
    START_MS,
    WALLET,
    fixture_event,
    intent,
    maker,
    new_state,
    oid,
    trade,
)

S = OrderState
MINED_3 = "user_trade_mined_3_makers_cross_outcome_2024-09.json"
YES_ID = "21742633143463906290569050155826241533067272736897614950488156847949938836455"
NO_ID = "48331043336612883890938759509493159234755048973500640148014422747788308965732"
MARKET_ID = "0xdd22472e552920b8438158ea7238bfadfa4f736aa4cee91a6b86c39ead110917"


def state_for(address: str, owner: str, cash: int = 1_000 * MICRO) -> OmsState:
    state = OmsState(VirtualClock(START_MS))
    state.add_wallet(address, [owner])
    state.set_balance(address, cash=cash, positions={YES_ID: 100 * MICRO, NO_ID: 100 * MICRO})
    return state


def resting(state: OmsState, order_id: str, side: Side, token: str, price: int, size: int) -> None:
    cash = size * price // MICRO
    maker_amt, taker_amt = (cash, size) if side is Side.BUY else (size, cash)
    wallet = next(iter(state.ledgers))
    state.submit(
        OrderIntent(order_id, wallet, MARKET_ID, token, side, OrderType.GTC, price, size, maker_amt, taker_amt, "mm-1")
    )
    state.on_ack(order_id, polymarket_orders.ack(order_id, "live"))


# --- recorded messages ---------------------------------------------------------------------------


def test_complementary_token_maker_mint_fill_is_in_no_at_our_price() -> None:
    """Recorded MINED trade: a taker BUYs YES at 0.518; one maker is a BUY NO at 0.482 (a MINT).
    We are that maker: our fill is 10 NO bought at 0.482, read from our own maker entry."""
    ev = fixture_event(MINED_3)
    assert isinstance(ev, TradeEvent) and ev.asset_id == YES_ID and ev.side is Side.BUY
    ours = "0x3b67d584e1e7ad29b06bda373449638898aa87f0c9fd52a34bdbfb1325a6c184"
    state = state_for("0xFfd192468b7a05b38c37C82d09fA941289FaEB23", "78132bc3-22af-6aa2-79ae-11929f821cae")
    resting(state, ours, Side.BUY, NO_ID, 482_000, 10 * MICRO)
    fills = state.on_trade_event(ev)
    assert len(fills) == 1
    f = fills[0]
    assert (f.order_id, f.token_id, f.side, f.role) == (ours, NO_ID, Side.BUY, Role.MAKER)
    assert (f.price, f.size, f.cash, f.fee) == (482_000, 10 * MICRO, 4_820_000, 0)
    assert (f.status, f.tier) == (T.MINED, FillTier.PROVISIONAL)
    o = state.orders[ours]
    assert o.state is S.FILLED and o.reserved_cash == 0
    lg = state.ledger("0xffd192468b7a05b38c37c82d09fa941289faeb23")
    assert lg.positions[NO_ID].prov_in == 10 * MICRO and lg.positions[YES_ID].prov_in == 0
    assert lg.prov_out == 4_820_000
    assert state.check_invariants() == []


def test_complementary_maker_without_a_known_order_is_recognized_by_owner() -> None:
    """Same message, our order not in the OMS (placed elsewhere): found by our API-key owner, side
    inferred (no `side` in 2024 messages: complementary token + taker BUY → BUY), adopted UNKNOWN."""
    state = state_for("0xFfd192468b7a05b38c37C82d09fA941289FaEB23", "78132bc3-22af-6aa2-79ae-11929f821cae")
    [f] = state.on_trade_event(fixture_event(MINED_3))
    assert (f.token_id, f.side, f.price, f.size) == (NO_ID, Side.BUY, 482_000, 10 * MICRO)
    o = state.orders[f.order_id]
    assert o.origin == "external" and o.state is S.UNKNOWN


def test_same_token_maker_in_the_same_message_is_a_sell_of_yes() -> None:
    """The recorded user (maker_address 0xa3D8…) was the 5-share YES maker of that trade: a SELL."""
    state = state_for("0xa3D82Ed56F4c68d2328Fb8c29e568Ba2cAF7d7c8", "3e2c94ca-8124-c4c1-c7ea-be1ea21b71fe")
    [f] = state.on_trade_event(fixture_event(MINED_3))
    assert (f.token_id, f.side, f.price, f.size, f.cash) == (YES_ID, Side.SELL, 518_000, 5 * MICRO, 2_590_000)
    lg = next(iter(state.ledgers.values()))
    assert lg.positions[YES_ID].prov_out == 5 * MICRO and lg.prov_in == 2_590_000
    assert lg.positions[YES_ID].sellable == 95 * MICRO  # the provisional sale already counts against it


def test_a_message_with_none_of_our_orders_changes_nothing_and_is_an_anomaly() -> None:
    state = state_for("0x00000000000000000000000000000000000000c3", "nobody")
    before = state.ledgers
    assert state.on_trade_event(fixture_event(MINED_3)) == []
    assert state.ledgers == before and not state.fills
    assert [n.kind for n in state.drain_notifications() if isinstance(n, Anomaly)] == ["attribution"]


def test_taker_fill_from_the_recorded_matched_message() -> None:
    ev = fixture_event("user_trade_matched_2024-09.json")
    state = state_for("0xa3D82Ed56F4c68d2328Fb8c29e568Ba2cAF7d7c8", "3e2c94ca-8124-c4c1-c7ea-be1ea21b71fe")
    [f] = state.on_trade_event(ev)
    assert (f.order_id, f.role, f.side, f.token_id) == (ev.taker_order_id, Role.TAKER, Side.BUY, YES_ID)
    assert (f.size, f.cash, f.fee, f.tier) == (5 * MICRO, 2_600_000, 0, FillTier.PROVISIONAL)


def test_confirmed_first_is_applied_as_confirmed_and_a_late_matched_is_stale() -> None:
    ev = fixture_event("user_trade_confirmed_maker_2025-11_edited.json")
    ours = ev.maker_orders[0].order_id
    state = state_for("0xa3D82Ed56F4c68d2328Fb8c29e568Ba2cAF7d7c8", "a93a3d32-74fa-dd2b-4b67-98bfa6fc5cb5")
    resting(state, ours, Side.BUY, YES_ID, 513_000, 5 * MICRO)
    lg = next(iter(state.ledgers.values()))
    cash0 = lg.cash
    [f] = state.on_trade_event(ev)
    assert f.tier is FillTier.CONFIRMED
    assert lg.cash == cash0 - 2_565_000 and lg.prov_out == 0 and lg.positions[YES_ID].confirmed == 105 * MICRO
    state.on_trade_event(msgspec.structs.replace(ev, status=T.MATCHED))
    state.on_trade_event(msgspec.structs.replace(ev, status=T.MINED))
    assert f.status is T.CONFIRMED and lg.cash == cash0 - 2_565_000 and lg.prov_out == 0
    assert state.check_invariants() == []


def test_two_of_our_orders_in_one_trade_are_two_fills() -> None:
    ev = fixture_event("user_trade_confirmed_2_makers_2025-11_edited.json")
    state = state_for("0xa3D82Ed56F4c68d2328Fb8c29e568Ba2cAF7d7c8", "a93a3d32-74fa-dd2b-4b67-98bfa6fc5cb5")
    fills = state.on_trade_event(ev)
    assert sorted((f.order_id[:8], f.price, f.size) for f in fills) == [
        ("0x3ad09f", 400_000, 5 * MICRO),
        ("0x67b598", 300_000, 5 * MICRO),
    ]
    assert {(f.trade_id, f.order_id) for f in fills} == set(state.fills)
    assert all(f.side is Side.BUY and f.role is Role.MAKER for f in fills)


# --- the three tiers -----------------------------------------------------------------------------


def _maker_trade(order_id: str, trade_id: str, status: T, size: int = 4 * MICRO, price: int = 500_000) -> TradeEvent:
    return trade(
        trade_id, "0xtaker", status, side=Side.SELL, size=size, price=price,
        makers=(maker(order_id, size, price, side=Side.BUY),), trader_side=TraderSide.MAKER,
    )  # fmt: skip


def test_matched_mined_confirmed_moves_provisional_to_confirmed() -> None:
    state = new_state(cash=100 * MICRO)
    i = oid()
    state.submit(intent(i, size=10 * MICRO, price=500_000, actor="mm-7"))
    lg = state.ledger(WALLET)
    state.on_trade_event(_maker_trade(i, "t1", T.MATCHED))
    assert (lg.cash, lg.prov_out, lg.reserved, lg.available) == (100 * MICRO, 2 * MICRO, 3 * MICRO, 95 * MICRO)
    state.on_trade_event(_maker_trade(i, "t1", T.MINED))
    state.on_trade_event(_maker_trade(i, "t1", T.MINED))  # duplicate: no-op
    state.on_trade_event(_maker_trade(i, "t1", T.MATCHED))  # stale
    f = state.fills[("t1", i)]
    assert f.status is T.MINED and lg.prov_out == 2 * MICRO
    state.drain_notifications()
    state.on_trade_event(_maker_trade(i, "t1", T.CONFIRMED))
    assert (lg.cash, lg.prov_out, lg.positions["1001"].confirmed) == (98 * MICRO, 0, 4 * MICRO)
    assert lg.available == 95 * MICRO  # unchanged by confirmation
    [n] = state.drain_notifications()
    assert isinstance(n, FillUpdate) and (n.change, n.owner, n.tier) == ("confirmed", "mm-7", FillTier.CONFIRMED)
    assert state.check_invariants() == []


def test_ghost_fill_matched_then_failed_is_voided_and_the_owner_told() -> None:
    state = new_state(cash=100 * MICRO)
    i = oid()
    o = state.submit(intent(i, size=10 * MICRO, price=500_000, actor="algo-ghost"))
    state.on_ack(i, polymarket_orders.ack(i, "live"))
    lg = state.ledger(WALLET)
    before = (lg.cash, lg.available, lg.reserved)
    state.on_trade_event(_maker_trade(i, "tg", T.MATCHED))
    assert o.state is S.PARTIALLY_FILLED and lg.positions["1001"].prov_in == 4 * MICRO
    state.drain_notifications()
    state.on_trade_event(msgspec.structs.replace(_maker_trade(i, "tg", T.FAILED), err_msg="tx reverted"))
    f = state.fills[("tg", i)]
    assert f.tier is FillTier.VOIDED and f.status is T.FAILED
    assert (lg.cash, lg.available, lg.reserved) == before
    assert lg.positions["1001"] == Position("1001", "0xmarket")  # every figure back to zero
    assert (o.filled, o.filled_cash, o.voided) == (0, 0, 4 * MICRO)
    [n] = state.drain_notifications()
    assert isinstance(n, FillUpdate) and (n.change, n.owner) == ("voided", "algo-ghost")
    # A FAILED re-delivered, or a CONFIRMED after it, changes nothing (the second is an anomaly).
    state.on_trade_event(_maker_trade(i, "tg", T.FAILED))
    state.on_trade_event(_maker_trade(i, "tg", T.CONFIRMED))
    assert f.tier is FillTier.VOIDED and (lg.cash, lg.available, lg.reserved) == before
    assert [a.kind for a in state.drain_notifications() if isinstance(a, Anomaly)] == ["trade_status"]
    assert state.check_invariants() == []


def test_first_seen_as_failed_never_counts() -> None:
    state = new_state(cash=100 * MICRO)
    i = oid()
    o = state.submit(intent(i))
    state.on_trade_event(_maker_trade(i, "tf", T.FAILED))
    assert state.fills[("tf", i)].tier is FillTier.VOIDED
    assert o.filled == 0 and o.voided == 4 * MICRO and state.ledger(WALLET).prov_out == 0
    assert state.check_invariants() == []


def test_self_trade_gives_two_legs_and_only_the_fee_leaves() -> None:
    state = new_state(cash=100 * MICRO)
    state.set_balance(WALLET, positions={"1001": 50 * MICRO})
    sell, buy = oid(), oid()
    state.submit(intent(sell, side=Side.SELL, size=10 * MICRO, price=500_000))
    state.submit(intent(buy, side=Side.BUY, size=10 * MICRO, price=500_000, order_type=OrderType.FOK, fee_rate_bps=400))
    ev = trade(
        "ts", buy, T.CONFIRMED, side=Side.BUY, size=10 * MICRO, price=500_000, fee_rate_bps=400,
        makers=(maker(sell, 10 * MICRO, 500_000),), trader_side=TraderSide.TAKER, taker_address=WALLET,
    )  # fmt: skip
    fills = state.on_trade_event(ev)
    assert sorted((f.role, f.side) for f in fills) == [(Role.MAKER, Side.SELL), (Role.TAKER, Side.BUY)]
    lg = state.ledger(WALLET)
    fee = 10 * 400 * 250_000 * MICRO // (10_000 * MICRO)  # 10 × 0.04 × 0.25 = 0.10 pUSD
    assert fee == 100_000
    assert lg.cash == 100 * MICRO - fee and lg.positions["1001"].confirmed == 50 * MICRO
    assert state.orders[sell].state is S.FILLED and state.orders[buy].state is S.FILLED
    assert state.check_invariants() == []


def test_taker_pays_the_makers_prices_not_its_limit() -> None:
    """Price improvement goes to the taker: its cash is the sum over the makers at their prices, with
    a complementary maker's price p counting as 1 − p."""
    state = new_state(cash=100 * MICRO)
    i = oid()
    state.submit(intent(i, side=Side.BUY, price=600_000, size=30 * MICRO, order_type=OrderType.FAK))
    ev = trade(
        "tp", i, T.MATCHED, side=Side.BUY, size=30 * MICRO, price=600_000,
        makers=(
            maker("0x" + "01" * 32, 10 * MICRO, 500_000, side=Side.SELL, owner="a", address="0x" + "01" * 20),
            maker("0x" + "02" * 32, 10 * MICRO, 550_000, side=Side.SELL, owner="b", address="0x" + "02" * 20),
            maker("0x" + "03" * 32, 10 * MICRO, 420_000, token="1002", owner="c", address="0x" + "03" * 20),
        ),
    )  # fmt: skip
    [f] = state.on_trade_event(ev)
    assert f.cash == 5 * MICRO + 5_500_000 + 5_800_000
    assert state.orders[i].state is S.FILLED


# --- fees ------------------------------------------------------------------------------------------


def test_fee_curve_doc_example_and_rounding() -> None:
    # Doc §7.3: 100 shares at 0.50, r = 0.04, e = 1 → $1.00.
    assert taker_fee(100 * MICRO, 500_000, 50 * MICRO, 400, 1) == 1 * MICRO
    # At 0.9: 0.04 × 0.09 = $0.0036 per share.
    assert taker_fee(100 * MICRO, 900_000, 90 * MICRO, 400, 1) == 360_000
    # Floored to 5 decimals: 1.23 shares at 0.5, r = 0.04 → 0.0123 exactly; 1.2345… floors.
    assert taker_fee(1_230_000, 500_000, 615_000, 400, 1) == 12_300
    assert taker_fee(1_234_567, 500_000, 617_283, 400, 1) == 12_340
    # Exponent 2: 100 × 0.25 × 0.0625.
    assert taker_fee(100 * MICRO, 500_000, 50 * MICRO, 2_500, 2) == 1_562_500
    # No 5 % cap (core.fees): crypto at 5 ¢ charges 6.65 % of the notional, as the venue's formula does.
    assert taker_fee(100 * MICRO, 50_000, 5 * MICRO, 700, 1) == 332_500
    # Only the contract's ceiling bounds it: never more than the fill's pUSD side.
    assert taker_fee(100 * MICRO, 500_000, 50 * MICRO, 10_000, 1) == 25 * MICRO
    assert taker_fee(100 * MICRO, 500_000, 50 * MICRO, 0, 1) == 0
    assert taker_fee(100 * MICRO, 500_000, 50 * MICRO, None, 1) == 0


def test_sell_taker_fee_is_deducted_from_proceeds_and_buy_fee_paid_on_top() -> None:
    state = new_state(cash=1_000 * MICRO)
    state.set_balance(WALLET, positions={"1001": 200 * MICRO})
    s_id, b_id = oid(), oid()
    state.submit(intent(s_id, side=Side.SELL, size=100 * MICRO, price=500_000, order_type=OrderType.FAK))
    state.submit(intent(b_id, side=Side.BUY, size=100 * MICRO, price=500_000, order_type=OrderType.FAK))
    state.on_trade_event(trade("ts1", s_id, T.CONFIRMED, side=Side.SELL, size=100 * MICRO, fee_rate_bps=400))
    lg = state.ledger(WALLET)
    assert lg.cash == 1_000 * MICRO + 50 * MICRO - 1 * MICRO
    state.on_trade_event(trade("tb1", b_id, T.CONFIRMED, side=Side.BUY, size=100 * MICRO, fee_rate_bps=400))
    assert lg.cash == 1_049 * MICRO - 51 * MICRO
    pos = lg.positions["1001"]
    assert pos.fees == 2 * MICRO and pos.confirmed == 200 * MICRO


@pytest.mark.parametrize("price", [10_000, 300_000, 500_000, 700_000, 990_000])
@pytest.mark.parametrize(("bps", "exponent"), [(400, 1), (700, 1), (2_500, 2), (None, 1)])
def test_fee_allowance_covers_any_fill_at_or_below_the_limit(price: int, bps: int | None, exponent: int) -> None:
    shares = 37 * MICRO
    cash = shares * price // MICRO
    allowance = fee_allowance(
        shares=shares, price=price, cash=cash, notional=False, fee_rate_bps=bps, exponent=exponent
    )
    for p in range(10_000, price + 1, 10_000):
        fill_cash = shares * p // MICRO
        assert taker_fee(shares, p, fill_cash, bps if bps is not None else 500, exponent) <= allowance
    # A dollar-sized BUY spending `cash` at any price.
    dollars = fee_allowance(shares=0, price=price, cash=cash, notional=True, fee_rate_bps=bps, exponent=exponent)
    for p in range(10_000, MICRO, 10_000):
        n = cash * MICRO // p
        assert taker_fee(n, p, n * p // MICRO, bps if bps is not None else 500, exponent) <= dollars


def test_two_wallets_each_get_their_own_leg() -> None:
    state = new_state(cash=100 * MICRO)
    state.add_wallet(OTHER_WALLET, [OTHER_OWNER])
    state.set_balance(OTHER_WALLET, cash=100 * MICRO)
    ev = trade(
        "tw", "0xtaker", T.MATCHED, side=Side.SELL, size=6 * MICRO, trader_side=TraderSide.MAKER,
        makers=(
            maker("0x" + "0a" * 32, 2 * MICRO, 500_000, side=Side.BUY),  # ours, by WALLET's address
            maker("0x" + "0b" * 32, 4 * MICRO, 500_000, side=Side.BUY, owner=OTHER_OWNER, address=""),
        ),
    )  # fmt: skip
    fills = state.on_trade_event(ev)
    assert sorted((f.wallet, f.size) for f in fills) == [(WALLET, 2 * MICRO), (OTHER_WALLET, 4 * MICRO)]
    assert state.ledger(WALLET).prov_out == 1 * MICRO and state.ledger(OTHER_WALLET).prov_out == 2 * MICRO
    assert state.check_invariants() == []


def test_intent_from_a_signed_market_buy() -> None:
    from polyoms.core.units import tick_size
    from polyoms.oms.state import intent_from_prepared
    from polyoms.polymarket.protocol.keys import Signer
    from polyoms.polymarket.protocol.order import OrderBuilder

    builder = OrderBuilder(Signer("0x" + "11" * 32))
    order = builder.market_micro(123, Side.BUY, 100 * MICRO, 560_000, tick=tick_size("0.01"), salt=1, timestamp_ms=1)
    it = intent_from_prepared(
        polymarket_orders.prepared(order, notional=True),
        wallet=builder.funder,
        market="0xm",
        actor="algo",
        fee_rate_bps=400,
    )
    assert (it.order_id, it.token_id, it.notional, it.order_type) == (order.order_id, "123", True, OrderType.FOK)
    assert it.maker_amount == 100 * MICRO and it.size == order.taker_amount == 178_571_400
    # The price the signed amounts imply, rounded up (the shares were rounded down when signing).
    assert it.price == 560_001
    state = OmsState(VirtualClock(START_MS))
    state.add_wallet(builder.funder)
    state.set_balance(builder.funder, cash=200 * MICRO)
    o = state.submit(it)
    assert o.reserved_cash == 100 * MICRO + 4 * MICRO  # budget + cash × r
    limit = builder.limit_micro(123, Side.SELL, 560_000, 21_040_000, tick=tick_size("0.01"), salt=2, timestamp_ms=1)
    it2 = intent_from_prepared(polymarket_orders.prepared(limit), wallet=builder.funder, market="0xm", actor="algo")
    assert (it2.side, it2.size, it2.price, it2.maker_amount, it2.notional) == (
        Side.SELL,
        21_040_000,
        560_000,
        21_040_000,
        False,
    )


def test_an_order_listed_twice_in_one_trade_is_one_fill() -> None:
    state = new_state(cash=100 * MICRO)
    i = oid()
    state.submit(intent(i, size=10 * MICRO, price=500_000))
    ev = trade(
        "t2x", "0xtaker", T.MATCHED, side=Side.SELL, size=5 * MICRO, trader_side=TraderSide.MAKER,
        makers=(maker(i, 2 * MICRO, 500_000, side=Side.BUY), maker(i, 3 * MICRO, 500_000, side=Side.BUY)),
    )  # fmt: skip
    [f] = state.on_trade_event(ev)
    assert (f.size, f.cash) == (5 * MICRO, 2_500_000) and state.orders[i].filled == 5 * MICRO
    assert state.check_invariants() == []
