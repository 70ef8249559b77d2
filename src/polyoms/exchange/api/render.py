"""Orders, trades, books and order responses in the venue's JSON shapes (doc §3.9, §4.3, §4.6, §4.7)."""

from __future__ import annotations

from typing import Any

from polyoms.core.units import MICRO, fmt_micro
from polyoms.exchange.book import BookView
from polyoms.exchange.engine import SubmitResult
from polyoms.exchange.markets import MarketSpec
from polyoms.exchange.orders import Order
from polyoms.exchange.trades import Trade
from polyoms.polymarket.protocol.book_hash import book_hash


def order_response(result: SubmitResult) -> dict[str, Any]:
    matched = result.status == "matched"
    return {
        "success": True,
        "errorMsg": "",
        "orderID": result.order_id,
        "status": result.status,
        "makingAmount": fmt_micro(result.making_amount) if matched else "",
        "takingAmount": fmt_micro(result.taking_amount) if matched else "",
        "transactionsHashes": [],
        "tradeIDs": list(result.trade_ids),
    }


def order_failure(order_id: str, message: str) -> dict[str, Any]:
    return {
        "success": False,
        "errorMsg": message,
        "orderID": order_id,
        "status": "",
        "makingAmount": "",
        "takingAmount": "",
        "transactionsHashes": [],
        "tradeIDs": [],
    }


def open_order(o: Order) -> dict[str, Any]:
    return {
        "id": o.order_id,
        "status": o.rest_status,
        "owner": o.owner,
        "maker_address": o.maker,
        "market": o.market,
        "asset_id": o.asset_id,
        "side": o.side.name,
        "original_size": fmt_micro(o.original_size),
        "size_matched": fmt_micro(o.size_matched),
        "price": fmt_micro(o.price),
        "outcome": o.outcome,
        "expiration": str(o.expiration),
        "order_type": o.order_type.value,
        "associate_trades": list(o.associate_trades),
        "created_at": o.created_at,
    }


def trade(t: Trade, requester_key: str | None) -> dict[str, Any]:
    return {
        "id": t.trade_id,
        "taker_order_id": t.taker_order_id,
        "market": t.market,
        "asset_id": t.asset_id,
        "side": t.side.name,
        "size": fmt_micro(t.size),
        "fee_rate_bps": str(t.fee_rate_bps),
        "price": fmt_micro(t.price),
        "status": t.status,
        "match_time": str(t.match_time),
        "last_update": str(t.last_update),
        "outcome": t.outcome,
        "bucket_index": t.bucket_index,
        "owner": t.owner,
        "maker_address": t.maker_address,
        "transaction_hash": t.transaction_hash,
        "maker_orders": [
            {
                "order_id": m.order_id,
                "owner": m.owner,
                "maker_address": m.maker_address,
                "matched_amount": fmt_micro(m.matched_amount),
                "price": fmt_micro(m.price),
                "fee_rate_bps": str(m.fee_rate_bps),
                "asset_id": m.asset_id,
                "outcome": m.outcome,
                "side": m.side.name,
            }
            for m in t.maker_orders
        ],
        "trader_side": "TAKER" if requester_key is None or t.owner == requester_key else "MAKER",
        **({"err_msg": t.err_msg} if t.err_msg else {}),
    }


def book(view: BookView, market: MarketSpec, timestamp_ms: int, last_trade_price: int | None) -> dict[str, Any]:
    """GET /book, in the key order the §6.5 hash is computed over."""
    bids = [{"price": fmt_micro(p), "size": fmt_micro(s)} for p, s in view.bids]
    asks = [{"price": fmt_micro(p), "size": fmt_micro(s)} for p, s in view.asks]
    ts = str(timestamp_ms)
    min_size = fmt_micro(market.min_size)
    ltp = fmt_micro(last_trade_price if last_trade_price is not None else MICRO // 2)
    return {
        "market": view.market,
        "asset_id": view.asset_id,
        "timestamp": ts,
        "hash": book_hash(view.market, view.asset_id, ts, bids, asks, min_size, market.tick.text, market.neg_risk, ltp),
        "bids": bids,
        "asks": asks,
        "min_order_size": min_size,
        "tick_size": market.tick.text,
        "neg_risk": market.neg_risk,
        "last_trade_price": ltp,
    }
