"""The venue's order-book hash (protocol doc §6.5): SHA-1 of the compact summary with hash = ""."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

from polyoms.polymarket.protocol.wire import encode_json


def book_hash(
    market: str,
    asset_id: str,
    timestamp: str,
    bids: Sequence[dict[str, str]],
    asks: Sequence[dict[str, str]],
    min_order_size: Any,
    tick_size: Any,
    neg_risk: bool,
    last_trade_price: Any,
) -> str:
    """`bids`/`asks` as served (best level last), each level {"price": ..., "size": ...}."""
    payload = {
        "market": market,
        "asset_id": asset_id,
        "timestamp": timestamp,
        "hash": "",
        "bids": [{"price": b["price"], "size": b["size"]} for b in bids],
        "asks": [{"price": a["price"], "size": a["size"]} for a in asks],
        "min_order_size": min_order_size,
        "tick_size": tick_size,
        "neg_risk": neg_risk,
        "last_trade_price": last_trade_price,
    }
    return hashlib.sha1(encode_json(payload)).hexdigest()


def legacy_book_hash(
    market: str,
    asset_id: str,
    bids: Sequence[dict[str, str]],
    asks: Sequence[dict[str, str]],
) -> str:
    """The hash of older (2024) snapshots: the same SHA-1 over only market, asset_id, hash = "", bids
    and asks (no timestamp). Found by reproducing the recorded 2024 books; not documented by the venue."""
    payload = {
        "market": market,
        "asset_id": asset_id,
        "hash": "",
        "bids": [{"price": b["price"], "size": b["size"]} for b in bids],
        "asks": [{"price": a["price"], "size": a["size"]} for a in asks],
    }
    return hashlib.sha1(encode_json(payload)).hexdigest()
