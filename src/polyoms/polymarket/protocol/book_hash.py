"""The venue's order-book hash (protocol doc §6.5): SHA-1 of the compact summary with hash = "".

The one implementation: every form below (a summary as served, the older 2024 form, the stream
mirror's incremental form) writes its bytes through `_digest`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Any

from polyoms.core.book import Book
from polyoms.core.enums import Side
from polyoms.core.units import Micro, fmt_micro
from polyoms.polymarket.protocol.codec import fmt_optional
from polyoms.polymarket.protocol.wire import encode_json

# A side's level JSON fragments, by price: (size, fragment); see `mirror_hash`.
LevelCache = dict[Micro, tuple[Micro, str]]


def _digest(market: str, asset_id: str, bids: str, asks: str, newer: tuple[str, str, str, str, str] | None) -> str:
    """Every argument is JSON text (`bids`/`asks`: the level objects joined by commas). `newer` is
    (timestamp, min_order_size, tick_size, neg_risk, last_trade_price); None gives the 2024 form."""
    if newer is None:
        payload = f'{{"market":{market},"asset_id":{asset_id},"hash":"","bids":[{bids}],"asks":[{asks}]}}'
    else:
        timestamp, min_order_size, tick, neg_risk, last_trade_price = newer
        payload = (
            f'{{"market":{market},"asset_id":{asset_id},"timestamp":{timestamp},"hash":"","bids":[{bids}],'
            f'"asks":[{asks}],"min_order_size":{min_order_size},"tick_size":{tick},"neg_risk":{neg_risk},'
            f'"last_trade_price":{last_trade_price}}}'
        )
    return hashlib.sha1(payload.encode()).hexdigest()


def _json(value: Any) -> str:
    return encode_json(value).decode()


def _served_levels(levels: Sequence[dict[str, str]]) -> str:
    return _json([{"price": lv["price"], "size": lv["size"]} for lv in levels])[1:-1]


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
    """`bids`/`asks` as served (best level last), each level {"price": ..., "size": ...}; the other
    values as served (hashed with their JSON type)."""
    newer = (_json(timestamp), _json(min_order_size), _json(tick_size), _json(neg_risk), _json(last_trade_price))
    return _digest(_json(market), _json(asset_id), _served_levels(bids), _served_levels(asks), newer)


def legacy_book_hash(
    market: str,
    asset_id: str,
    bids: Sequence[dict[str, str]],
    asks: Sequence[dict[str, str]],
) -> str:
    """The hash of older (2024) snapshots: the same SHA-1 over only market, asset_id, hash = "", bids
    and asks (no timestamp). Found by reproducing the recorded 2024 books; not documented by the venue."""
    return _digest(_json(market), _json(asset_id), _served_levels(bids), _served_levels(asks), None)


def summary_hash(summary: Mapping[str, Any]) -> str:
    """The hash of a summary body as served (levels as {"price", "size"} objects): §6.5 when it carries
    `tick_size`, else the 2024 form."""
    if "tick_size" not in summary:
        return legacy_book_hash(summary["market"], summary["asset_id"], summary["bids"], summary["asks"])
    return book_hash(
        summary["market"],
        summary["asset_id"],
        summary.get("timestamp", ""),
        summary["bids"],
        summary["asks"],
        summary["min_order_size"],
        summary["tick_size"],
        summary["neg_risk"],
        summary["last_trade_price"],
    )


def mirror_hash(
    book: Book,
    timestamp_text: str,
    last_trade_price: Micro | None,
    cache: tuple[LevelCache, LevelCache] | None = None,
) -> str:
    """The §6.5 hash of a mirrored book as the venue would serve it at `timestamp_text`.

    Equal to `book_hash` over the served summary; each level's JSON fragment is kept in `cache` (per
    side, by price, with its size), so only the levels that changed since the last call are formatted
    again (formatting is most of the cost).
    """
    bids_cache, asks_cache = cache if cache is not None else ({}, {})
    bids = book.levels(Side.BUY)
    bids.reverse()
    asks = book.levels(Side.SELL)
    asks.reverse()
    newer = (
        _json(timestamp_text),
        _json(fmt_optional(book.min_order_size)),
        _json(str(book.tick_size) if book.tick_size is not None else ""),
        "true" if book.neg_risk else "false",
        _json(fmt_optional(last_trade_price)),
    )
    return _digest(
        _json(book.market),
        _json(book.asset_id),
        _cached_levels(bids, bids_cache),
        _cached_levels(asks, asks_cache),
        newer,
    )


def _cached_levels(levels: list[tuple[Micro, Micro]], cache: LevelCache) -> str:
    out: list[str] = []
    for price, size in levels:
        hit = cache.get(price)
        if hit is None or hit[0] != size:
            hit = (size, f'{{"price":"{fmt_micro(price)}","size":"{fmt_micro(size)}"}}')
            cache[price] = hit
        out.append(hit[1])
    return ",".join(out)
