"""Orders inside the local exchange: what a caller submits and the record the exchange keeps.

`EngineOrder` is an already-verified signed order plus its envelope (order type, postOnly,
expiration). `Order` is the exchange's live record of it: normalized to shares and an integer price,
with what is left, what matched and what it reserves. Plain slots classes keep the hot path cheap.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from polyoms.core.enums import OrderType, Side
from polyoms.exchange.messages import REASON_MARKET_RESOLVED

if TYPE_CHECKING:
    from polyoms.exchange.accounts import Account

LIVE: Final = "LIVE"
MATCHED: Final = "MATCHED"
CANCELED: Final = "CANCELED"
CANCELED_MARKET_RESOLVED: Final = "CANCELED_MARKET_RESOLVED"
"""The venue's REST enum has a status of its own (`ORDER_STATUS_CANCELED_MARKET_RESOLVED`, doc §4.6) for
orders cancelled because their market resolved; the user channel says CANCELED. `Order.status` keeps
the short CANCELED and `Order.rest_status` gives the REST one."""


@dataclass(slots=True)
class EngineOrder:
    """A signed, signature-checked order as the REST layer hands it over.

    Amounts are the signed integers (micro-units): BUY gives `maker_amount` pUSD for `taker_amount`
    shares, SELL gives `maker_amount` shares for `taker_amount` pUSD. `expiration` is unix seconds
    (0 = none), `timestamp_ms` the signed creation time.
    """

    order_id: str
    maker: str
    owner: str
    token_id: str
    side: Side
    maker_amount: int
    taker_amount: int
    order_type: OrderType = OrderType.GTC
    expiration: int = 0
    post_only: bool = False
    timestamp_ms: int = 0


class Order:
    """The exchange's record of one order.

    Share-denominated orders (GTC/GTD, and FOK/FAK SELL) count `original_size`, `size_matched` and
    `remaining` in micro-shares. A FOK/FAK BUY is pUSD-denominated: `original_size` is its budget and
    `size_matched` the pUSD spent, as the venue reports market BUYs; `remaining` is then unused.
    `price` is the limit for limit orders and, for FOK/FAK, the worst acceptable price rounded to an
    integer micro-price in the order's favour (exactly equivalent to the signed ratio, see matching).
    `reserved` is what the order holds back: pUSD for a resting BUY, shares for a resting SELL.

    A fill whose trade later FAILED in settlement is not taken back from `size_matched`: the venue
    reported it matched (order events, `associate_trades`) and does not put the size back on the book.
    `size_failed` (same unit as `size_matched`) says how much of it was undone, so `size_matched −
    size_failed` is what really settled or may still settle.
    """

    __slots__ = (
        "account",
        "asset_id",
        "associate_trades",
        "cancel_reason",
        "created_at",
        "expiration",
        "is_bid",
        "is_yes",
        "level",
        "maker",
        "maker_amount",
        "market",
        "order_id",
        "order_type",
        "original_size",
        "outcome",
        "owner",
        "price",
        "remaining",
        "reserved",
        "resting",
        "seq",
        "side",
        "size_failed",
        "size_matched",
        "status",
        "taker_amount",
        "timestamp_ms",
    )

    def __init__(
        self,
        order_id: str,
        maker: str,
        owner: str,
        market: str,
        asset_id: str,
        outcome: str,
        is_yes: bool,
        side: Side,
        order_type: OrderType,
        price: int,
        original_size: int,
        maker_amount: int,
        taker_amount: int,
        expiration: int,
        created_at: int,
        timestamp_ms: int,
        seq: int,
        account: Account,
    ) -> None:
        self.order_id = order_id
        self.maker = maker
        self.owner = owner
        self.market = market
        self.asset_id = asset_id
        self.outcome = outcome
        self.is_yes = is_yes
        self.side = side
        self.order_type = order_type
        self.price = price
        self.original_size = original_size
        self.maker_amount = maker_amount
        self.taker_amount = taker_amount
        self.expiration = expiration
        self.created_at = created_at
        self.timestamp_ms = timestamp_ms
        self.seq = seq
        self.account = account
        """The funder's ledger account, kept to skip address lookups on every fill and cancel."""
        # A YES-space bid is BUY YES or SELL NO (doc §7.1).
        self.is_bid = (side is Side.BUY) is is_yes
        self.level = 0
        self.remaining = original_size
        self.size_matched = 0
        self.size_failed = 0
        self.cancel_reason = ""
        self.reserved = 0
        self.resting = False
        self.status = LIVE
        # A tuple: most orders never trade, and the shared empty tuple costs no allocation.
        self.associate_trades: tuple[str, ...] = ()

    @property
    def is_open(self) -> bool:
        return self.resting

    @property
    def rest_status(self) -> str:
        """The status GET /data/order reports: as `status`, but CANCELED_MARKET_RESOLVED for orders
        cancelled by their market's resolution."""
        if self.cancel_reason == REASON_MARKET_RESOLVED and self.status == CANCELED:
            return CANCELED_MARKET_RESOLVED
        return self.status

    def __repr__(self) -> str:
        return (
            f"Order({self.order_id[:10]}… {self.side.name} {'YES' if self.is_yes else 'NO'} "
            f"{self.order_type.value} price={self.price} size={self.original_size} "
            f"matched={self.size_matched} remaining={self.remaining} {self.status}"
            f"{f' failed={self.size_failed}' if self.size_failed else ''})"
        )
