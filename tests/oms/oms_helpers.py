"""Builders for OMS tests: typed user-channel events from the venue's JSON (or from scratch), intents.

Recorded fixtures go through the protocol's own decoder (`user_messages.decode_user_frame`).
"""

from __future__ import annotations

import itertools
import os
from pathlib import Path
from typing import Any

from polyoms.core.clock import VirtualClock
from polyoms.core.enums import OrderType, Side
from polyoms.core.units import MICRO
from polyoms.core.user_events import (
    MakerOrderFill,
    OrderEvent,
    OrderEventType,
    OrderStatus,
    TradeEvent,
    TraderSide,
    TradeStatus,
)
from polyoms.oms.oms_state import OmsState
from polyoms.oms.state import OrderIntent
from polyoms.polymarket.protocol.user_messages import decode_user_frame

_REPO = Path(__file__).resolve().parents[2]
FIXTURES = Path(os.environ.get("POLYOMS_FIXTURES", _REPO.parent / "shared" / "fixtures" / "polymarket")) / "ws"
START_MS = 1_777_000_000_000
WALLET = "0x00000000000000000000000000000000000000a1"
OWNER = "00000000-0000-0000-0000-0000000000a1"
OTHER_WALLET = "0x00000000000000000000000000000000000000b2"
OTHER_OWNER = "00000000-0000-0000-0000-0000000000b2"
MARKET = "0xmarket"
YES = "1001"
NO = "1002"


def fixture_event(name: str) -> Any:
    """A recorded user-channel message, decoded by the protocol's decoder (exact micro-units)."""
    events = decode_user_frame((FIXTURES / name).read_bytes())
    assert len(events) == 1
    return events[0]


_ids = itertools.count(1)


def oid(n: int | None = None) -> str:
    return f"0x{(n if n is not None else next(_ids)):064x}"


def intent(
    order_id: str,
    *,
    side: Side = Side.BUY,
    price: int = 500_000,
    size: int = 10 * MICRO,
    token: str = YES,
    order_type: OrderType = OrderType.GTC,
    wallet: str = WALLET,
    actor: str = "algo-1",
    notional: int = 0,
    fee_rate_bps: int | None = 0,
    post_only: bool = False,
    expiration: int = 0,
) -> OrderIntent:
    """A limit order (or with `notional` > 0 a dollar-sized market BUY of that many micro-pUSD)."""
    if notional:
        shares = notional * MICRO // price
        return OrderIntent(
            order_id,
            wallet,
            MARKET,
            token,
            Side.BUY,
            order_type,
            price,
            shares,
            notional,
            shares,
            actor,
            notional=True,
            fee_rate_bps=fee_rate_bps,
        )
    cash = size * price // MICRO
    maker, taker = (cash, size) if side is Side.BUY else (size, cash)
    return OrderIntent(
        order_id,
        wallet,
        MARKET,
        token,
        side,
        order_type,
        price,
        size,
        maker,
        taker,
        actor,
        fee_rate_bps=fee_rate_bps,
        post_only=post_only,
        expiration=expiration,
    )


def order_event(
    order_id: str,
    kind: OrderEventType,
    *,
    matched: int = 0,
    status: OrderStatus = OrderStatus.LIVE,
    side: Side = Side.BUY,
    price: int = 500_000,
    size: int = 10 * MICRO,
    token: str = YES,
    owner: str = OWNER,
    order_type: OrderType = OrderType.GTC,
    ts_ms: int | None = None,
) -> OrderEvent:
    return OrderEvent(
        type=kind,
        id=order_id,
        market=MARKET,
        asset_id=token,
        side=side,
        price=price,
        original_size=size,
        size_matched=matched,
        status=status,
        owner=owner,
        order_owner=owner,
        order_type=order_type,
        timestamp_ms=ts_ms,
    )


def maker(
    order_id: str,
    size: int,
    price: int,
    *,
    token: str = YES,
    side: Side | None = None,
    owner: str = OWNER,
    address: str = WALLET,
) -> MakerOrderFill:
    return MakerOrderFill(order_id, size, price, token, owner=owner, maker_address=address, side=side)


def trade(
    trade_id: str,
    taker_order_id: str,
    status: TradeStatus,
    *,
    side: Side = Side.BUY,
    size: int = 10 * MICRO,
    price: int = 500_000,
    token: str = YES,
    makers: tuple[MakerOrderFill, ...] = (),
    trader_side: TraderSide = TraderSide.TAKER,
    fee_rate_bps: int = 0,
    taker_address: str = "0x00000000000000000000000000000000000000ff",
    match_time: int = 1_777_000_000,
) -> TradeEvent:
    if not makers:
        makers = (
            maker(
                "0x" + "ee" * 32,
                size,
                price,
                token=token,
                side=side.opposite,
                owner="someone",
                address="0x00000000000000000000000000000000000000ee",
            ),
        )
    return TradeEvent(
        id=trade_id,
        taker_order_id=taker_order_id,
        market=MARKET,
        asset_id=token,
        side=side,
        size=size,
        price=price,
        status=status,
        maker_orders=makers,
        fee_rate_bps=fee_rate_bps,
        trader_side=trader_side,
        maker_address=taker_address,
        match_time=match_time,
    )


def new_state(cash: int = 10_000 * MICRO, clock: VirtualClock | None = None) -> OmsState:
    state = OmsState(clock or VirtualClock(START_MS))
    state.add_wallet(WALLET, [OWNER])
    state.set_balance(WALLET, cash=cash)
    return state
