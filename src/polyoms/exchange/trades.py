"""Trade records: one per taker order and price level, with every maker that filled it.

This mirrors the venue's trade objects (doc §4.7, §6.3): the top-level fields are the taker's view,
each `MakerFill` the maker's own (its token, side and price, which differ from the taker's in a MINT or
MERGE). All amounts are micro-units; the REST/WS layers format them.
"""

from __future__ import annotations

from enum import IntEnum
from typing import Final

from polyoms.core.enums import Side

# Trade statuses (doc §4.7, §6.3); the settlement pipeline moves a trade along
# MATCHED → MINED → CONFIRMED, or MATCHED → RETRYING → FAILED (or → MINED → CONFIRMED on a retry).
TRADE_MATCHED: Final = "MATCHED"
TRADE_MINED: Final = "MINED"
TRADE_CONFIRMED: Final = "CONFIRMED"
TRADE_RETRYING: Final = "RETRYING"
TRADE_FAILED: Final = "FAILED"


class MatchType(IntEnum):
    """CTF Exchange V2 match types (doc §7.2)."""

    COMPLEMENTARY = 0
    MINT = 1
    MERGE = 2


class MakerFill:
    """One maker order's part of a trade, from the maker's point of view."""

    __slots__ = (
        "asset_id",
        "fee",
        "fee_rate_bps",
        "maker_address",
        "match_type",
        "matched_amount",
        "order_id",
        "outcome",
        "outcome_index",
        "owner",
        "price",
        "pusd",
        "side",
    )

    def __init__(
        self,
        order_id: str,
        owner: str,
        maker_address: str,
        matched_amount: int,
        price: int,
        pusd: int,
        asset_id: str,
        outcome: str,
        outcome_index: int,
        side: Side,
        match_type: MatchType,
    ) -> None:
        self.order_id = order_id
        self.owner = owner
        self.maker_address = maker_address
        self.matched_amount = matched_amount
        self.price = price
        self.pusd = pusd
        """pUSD the maker paid (BUY) or received (SELL) for this fill."""
        self.asset_id = asset_id
        self.outcome = outcome
        self.outcome_index = outcome_index
        self.side = side
        self.match_type = match_type
        self.fee = 0
        self.fee_rate_bps = 0

    def __repr__(self) -> str:
        return (
            f"MakerFill({self.order_id[:10]}… {self.side.name} {self.outcome} {self.matched_amount}"
            f"@{self.price} {self.match_type.name})"
        )


class Trade:
    """One match of a taker order at one price level."""

    __slots__ = (
        "asset_id",
        "bucket_index",
        "err_msg",
        "fee",
        "fee_rate_bps",
        "last_update_ms",
        "maker_address",
        "maker_orders",
        "market",
        "match_time",
        "match_time_ms",
        "outcome",
        "outcome_index",
        "owner",
        "price",
        "pusd",
        "side",
        "size",
        "status",
        "taker_order_id",
        "trade_id",
        "transaction_hash",
    )

    def __init__(
        self,
        trade_id: str,
        taker_order_id: str,
        market: str,
        asset_id: str,
        outcome: str,
        outcome_index: int,
        side: Side,
        price: int,
        size: int,
        pusd: int,
        fee: int,
        fee_rate_bps: int,
        owner: str,
        maker_address: str,
        match_time_ms: int,
        maker_orders: list[MakerFill],
    ) -> None:
        self.trade_id = trade_id
        self.taker_order_id = taker_order_id
        self.market = market
        self.asset_id = asset_id
        self.outcome = outcome
        self.outcome_index = outcome_index
        self.side = side
        self.price = price
        self.size = size
        self.pusd = pusd
        """pUSD the taker paid (BUY) or received (SELL) for the shares, fee not included."""
        self.fee = fee
        self.fee_rate_bps = fee_rate_bps
        self.owner = owner
        self.maker_address = maker_address
        self.match_time_ms = match_time_ms
        self.match_time = match_time_ms // 1000
        self.maker_orders = maker_orders
        self.status = TRADE_MATCHED
        self.last_update_ms = match_time_ms
        """When `status` last changed (ms)."""
        self.bucket_index = 0
        self.transaction_hash = ""
        """Set when the trade is MINED and kept; empty before, and for a trade that FAILED (never mined)."""
        self.err_msg = ""
        """Why the trade FAILED; empty otherwise."""

    @property
    def id(self) -> str:
        return self.trade_id

    @property
    def last_update(self) -> int:
        """`last_update` as the venue reports it: unix seconds."""
        return self.last_update_ms // 1000

    @property
    def is_final(self) -> bool:
        """CONFIRMED and FAILED never change again."""
        return self.status == TRADE_CONFIRMED or self.status == TRADE_FAILED

    def trader_side(self, owner: str) -> str:
        """`TAKER` or `MAKER` relative to `owner` (taker wins a self-trade)."""
        return "TAKER" if self.owner == owner else "MAKER"

    def __repr__(self) -> str:
        return (
            f"Trade({self.trade_id} taker={self.taker_order_id[:10]}… {self.side.name} {self.outcome} "
            f"{self.size}@{self.price} fee={self.fee} makers={len(self.maker_orders)} {self.status})"
        )


class TradeIds:
    """Deterministic UUID-shaped trade ids from a seed and a counter (reproducible runs)."""

    __slots__ = ("_n", "_prefix")

    def __init__(self, seed: int = 0) -> None:
        s = seed & 0xFFFFFFFFFFFF
        self._prefix = f"{s >> 16:08x}-{s & 0xFFFF:04x}-4000-8"
        self._n = 0

    def next(self) -> str:
        self._n += 1
        n = self._n
        return f"{self._prefix}{n >> 48 & 0xFFF:03x}-{n & 0xFFFFFFFFFFFF:012x}"
