"""WebSocket messages of the market and user channels in the venue's shapes (doc §6.2, §6.3).

Built from the exchange's own records; the client-side decoders in polymarket/protocol parse these
exactly like the recorded real messages, which the tests check.
"""

from __future__ import annotations

from typing import Any

from polyoms.core.enums import Side
from polyoms.core.units import MICRO, fmt_micro
from polyoms.exchange.markets import MarketSpec
from polyoms.exchange.orders import Order
from polyoms.exchange.trades import Trade


def _price_or(value: int | None, empty: str) -> str:
    return empty if value is None else fmt_micro(value)


def price_change(
    market: str, changes: list[tuple[str, int, int, Side, str, int | None, int | None]], timestamp_ms: int
) -> dict[str, Any]:
    """changes: (asset_id, price, new total size, side, book hash, best bid, best ask)."""
    return {
        "market": market,
        "price_changes": [
            {
                "asset_id": asset,
                "price": fmt_micro(price),
                "size": fmt_micro(size),
                "side": side.name,
                "hash": book_hash,
                "best_bid": _price_or(bid, "0"),
                "best_ask": _price_or(ask, "1"),
            }
            for asset, price, size, side, book_hash, bid, ask in changes
        ],
        "event_type": "price_change",
        "timestamp": str(timestamp_ms),
    }


def last_trade_price(t: Trade, timestamp_ms: int, transaction_hash: str) -> dict[str, Any]:
    return {
        "asset_id": t.asset_id,
        "event_type": "last_trade_price",
        "fee_rate_bps": str(t.fee_rate_bps),
        "market": t.market,
        "price": fmt_micro(t.price),
        "side": t.side.name,
        "size": fmt_micro(t.size),
        "timestamp": str(timestamp_ms),
        "transaction_hash": transaction_hash,
    }


def best_bid_ask(market: str, asset_id: str, bid: int | None, ask: int | None, timestamp_ms: int) -> dict[str, Any]:
    spread = (ask if ask is not None else MICRO) - (bid if bid is not None else 0)
    return {
        "event_type": "best_bid_ask",
        "market": market,
        "asset_id": asset_id,
        "best_bid": _price_or(bid, "0"),
        "best_ask": _price_or(ask, "1"),
        "spread": fmt_micro(spread),
        "timestamp": str(timestamp_ms),
    }


def order_event(
    kind: str, o: Order, status: str, size_matched: int, trade_ids: tuple[str, ...], ts: int
) -> dict[str, Any]:
    return {
        "asset_id": o.asset_id,
        "associate_trades": list(o.associate_trades) if o.associate_trades else None,
        "created_at": str(o.created_at),
        "event_type": "order",
        "expiration": str(o.expiration),
        "id": o.order_id,
        "maker_address": o.maker,
        "market": o.market,
        "order_owner": o.owner,
        "order_type": o.order_type.value,
        "original_size": fmt_micro(o.original_size),
        "outcome": o.outcome,
        "owner": o.owner,
        "price": fmt_micro(o.price),
        "side": o.side.name,
        "size_matched": fmt_micro(size_matched),
        "status": status,
        "timestamp": str(ts),
        "type": kind,
    }


def trade_event(t: Trade, status: str, transaction_hash: str, trader_side: str, owner: str, ts: int) -> dict[str, Any]:
    return {
        "asset_id": t.asset_id,
        "bucket_index": t.bucket_index,
        "event_type": "trade",
        "fee_rate_bps": str(t.fee_rate_bps),
        "id": t.trade_id,
        "last_update": str(ts // 1000),
        "maker_address": t.maker_address,
        "maker_orders": [
            {
                "asset_id": m.asset_id,
                "fee_rate_bps": str(m.fee_rate_bps),
                "maker_address": m.maker_address,
                "matched_amount": fmt_micro(m.matched_amount),
                "order_id": m.order_id,
                "outcome": m.outcome,
                "outcome_index": m.outcome_index,
                "owner": m.owner,
                "price": fmt_micro(m.price),
                "side": m.side.name,
            }
            for m in t.maker_orders
        ],
        "market": t.market,
        "match_time": str(t.match_time),
        "outcome": t.outcome,
        # As in the recorded maker-side messages: `owner` is the taker's key, `trade_owner` the subscriber.
        "owner": t.owner,
        "price": fmt_micro(t.price),
        "side": t.side.name,
        "size": fmt_micro(t.size),
        "status": status,
        "taker_order_id": t.taker_order_id,
        "timestamp": str(ts),
        "trade_owner": owner,
        "trader_side": trader_side,
        "transaction_hash": transaction_hash,
        "type": "TRADE",
        **({"err_msg": t.err_msg} if status == "FAILED" and t.err_msg else {}),
    }


def tick_size_change(market: str, asset_id: str, old: str, new: str, ts: int) -> dict[str, Any]:
    return {
        "event_type": "tick_size_change",
        "asset_id": asset_id,
        "market": market,
        "old_tick_size": old,
        "new_tick_size": new,
        "timestamp": str(ts),
    }


def market_resolved(spec: MarketSpec, winning_token_id: str, winning_outcome: str, ts: int) -> dict[str, Any]:
    return {
        "event_type": "market_resolved",
        "id": spec.slug,
        "question": spec.question,
        "market": spec.condition_id,
        "slug": spec.slug,
        "assets_ids": list(spec.token_ids),
        "outcomes": list(spec.outcomes),
        "winning_asset_id": winning_token_id,
        "winning_outcome": winning_outcome,
        "event_message": {"id": spec.slug, "ticker": spec.slug, "slug": spec.slug, "title": spec.question},
        "tags": [],
        "timestamp": str(ts),
    }


def new_market(spec: MarketSpec, ts: int) -> dict[str, Any]:
    fee = spec.fee
    return {
        "event_type": "new_market",
        "id": spec.slug,
        "question": spec.question,
        "market": spec.condition_id,
        "slug": spec.slug,
        "description": spec.description,
        "assets_ids": list(spec.token_ids),
        "outcomes": list(spec.outcomes),
        "event_message": {"id": spec.slug, "ticker": spec.slug, "slug": spec.slug, "title": spec.question},
        "timestamp": str(ts),
        "tags": [],
        "condition_id": spec.condition_id,
        "active": spec.active,
        "clob_token_ids": list(spec.token_ids),
        "order_price_min_tick_size": spec.tick.text,
        "fees_enabled": fee.enabled,
        "fee_schedule": {"rate": fee.rate, "exponent": fee.exponent, "takerOnly": fee.taker_only, "rebateRate": 0},
    }
