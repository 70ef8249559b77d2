"""Builders for strategy tests: instruments, books, wallet views and a frozen snapshot."""

from __future__ import annotations

from types import MappingProxyType

from polyoms.algos.base import BookTop, Level
from polyoms.core.enums import Side
from polyoms.core.units import MICRO, Micro, tick_size
from polyoms.core.user_events import TraderSide, TradeStatus
from polyoms.core.venue import Instrument, PriceGrid
from polyoms.oms.oms_state import OmsState
from polyoms.oms.view import OrderSummary, PositionSummary, WalletView
from polyoms.strategies.base import Snapshot, snapshot
from tests.oms.oms_helpers import NO, START_MS, WALLET, YES, maker, trade

TICK = tick_size("0.01")


def instrument(token: str = YES, *, min_size: Micro = 5 * MICRO, lot: Micro = 10_000) -> Instrument:
    return Instrument(
        venue="polymarket",
        token_id=token,
        grid=PriceGrid.uniform(TICK),
        tick=TICK,
        market="0xmarket",
        complement=NO if token == YES else YES,
        min_size=min_size,
        lot=lot,
    )


def wallet(positions: tuple[PositionSummary, ...] = (), orders: tuple[OrderSummary, ...] = ()) -> WalletView:
    return WalletView(
        WALLET, 100 * MICRO, 100 * MICRO, 0, 0, 0, MappingProxyType({p.token_id: p for p in positions}), orders
    )


def snap(
    bids: tuple[Level, ...] = ((450_000, 100 * MICRO),),
    asks: tuple[Level, ...] = ((470_000, 100 * MICRO),),
    *,
    positions: tuple[PositionSummary, ...] = (),
    book: bool = True,
    instruments: tuple[Instrument, ...] | None = None,
    now_ms: int = START_MS,
) -> Snapshot:
    books = {YES: BookTop(YES, bids, asks)} if book else {}
    known = instruments if instruments is not None else (instrument(),)
    return snapshot(now_ms, books, {i.token_id: i for i in known}, wallet(positions))


def maker_fill(state: OmsState, trade_id: str, order_id: str, status: TradeStatus, size: Micro, price: Micro) -> None:
    """Our BUY `order_id` filled as maker by someone's SELL."""
    state.on_trade_event(
        trade(trade_id, "0xtaker", status, side=Side.SELL, size=size, price=price,
              makers=(maker(order_id, size, price, side=Side.BUY),), trader_side=TraderSide.MAKER)
    )  # fmt: skip
