"""Orders, trades, cancels, balances, books and order answers in the venue's JSON shapes (doc §3.9,
§4.3, §4.6, §4.7): the wire structs the client decodes (`polymarket.protocol.wire`, `user_messages`)."""

from __future__ import annotations

from typing import Any

from msgspec import UNSET

from polyoms.core.units import MICRO, fmt_micro
from polyoms.exchange.book import BookView
from polyoms.exchange.engine import ExchangeCancelResult, SubmitResult
from polyoms.exchange.markets import MarketSpec
from polyoms.exchange.orders import Order
from polyoms.exchange.trades import Trade
from polyoms.polymarket.protocol.book_hash import summary_hash
from polyoms.polymarket.protocol.user_messages import PmMakerOrder, PmTrade
from polyoms.polymarket.protocol.wire import PmBalanceAllowance, PmCancelAnswer, PmOpenOrder, PmOrderAnswer


def order_response(result: SubmitResult) -> PmOrderAnswer:
    matched = result.status == "matched"
    return PmOrderAnswer(
        success=True,
        errorMsg="",
        orderID=result.order_id,
        status=result.status,
        makingAmount=fmt_micro(result.making_amount) if matched else "",
        takingAmount=fmt_micro(result.taking_amount) if matched else "",
        transactionsHashes=[],
        tradeIDs=list(result.trade_ids),
    )


def order_failure(order_id: str, message: str) -> PmOrderAnswer:
    return PmOrderAnswer(success=False, errorMsg=message, orderID=order_id, transactionsHashes=[], tradeIDs=[])


def cancel_answer(result: ExchangeCancelResult) -> PmCancelAnswer:
    return PmCancelAnswer(tuple(result.canceled), result.not_canceled)


def open_order(o: Order) -> PmOpenOrder:
    return PmOpenOrder(
        id=o.order_id,
        status=o.rest_status,
        owner=o.owner,
        maker_address=o.maker,
        market=o.market,
        asset_id=o.asset_id,
        side=o.side.name,
        original_size=fmt_micro(o.original_size),
        size_matched=fmt_micro(o.size_matched),
        price=fmt_micro(o.price),
        outcome=o.outcome,
        expiration=str(o.expiration),
        order_type=o.order_type.value,
        associate_trades=list(o.associate_trades),
        created_at=o.created_at,
    )


def trade(t: Trade, requester_key: str | None) -> PmTrade:
    return PmTrade(
        id=t.trade_id,
        taker_order_id=t.taker_order_id,
        market=t.market,
        asset_id=t.asset_id,
        side=t.side.name,
        size=fmt_micro(t.size),
        fee_rate_bps=str(t.fee_rate_bps),
        price=fmt_micro(t.price),
        status=t.status,
        match_time=str(t.match_time),
        last_update=str(t.last_update),
        outcome=t.outcome,
        bucket_index=t.bucket_index,
        owner=t.owner,
        maker_address=t.maker_address,
        transaction_hash=t.transaction_hash,
        maker_orders=[
            PmMakerOrder(
                order_id=m.order_id,
                owner=m.owner,
                maker_address=m.maker_address,
                matched_amount=fmt_micro(m.matched_amount),
                price=fmt_micro(m.price),
                fee_rate_bps=str(m.fee_rate_bps),
                asset_id=m.asset_id,
                outcome=m.outcome,
                side=m.side.name,
            )
            for m in t.maker_orders
        ],
        trader_side="TAKER" if requester_key is None or t.owner == requester_key else "MAKER",
        err_msg=t.err_msg or UNSET,
    )


def balance_allowance(balance: int, allowance: str, spenders: tuple[str, ...]) -> PmBalanceAllowance:
    return PmBalanceAllowance(str(balance), dict.fromkeys(spenders, allowance))


def book(view: BookView, market: MarketSpec, timestamp_ms: int, last_trade_price: int | None) -> dict[str, Any]:
    """GET /book, in the key order the §6.5 hash is computed over."""
    body: dict[str, Any] = {
        "market": view.market,
        "asset_id": view.asset_id,
        "timestamp": str(timestamp_ms),
        "hash": "",
        "bids": [{"price": fmt_micro(p), "size": fmt_micro(s)} for p, s in view.bids],
        "asks": [{"price": fmt_micro(p), "size": fmt_micro(s)} for p, s in view.asks],
        "min_order_size": fmt_micro(market.min_size),
        "tick_size": market.tick.text,
        "neg_risk": market.neg_risk,
        "last_trade_price": fmt_micro(last_trade_price if last_trade_price is not None else MICRO // 2),
    }
    body["hash"] = summary_hash(body)
    return body
