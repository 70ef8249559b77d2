"""The venue's error and reason strings, in one place.

The local exchange must answer with the venue's exact wording (SDKs pattern-match some of these), so
the matching core and the REST layer both take them from here. Source: the protocol reference §5.2.
Templates use `str.format` fields; the helpers below fill them with venue-style numbers.
"""

from __future__ import annotations

from typing import Final

from polyoms.core.units import fmt_micro

POST_ONLY_CROSSES: Final = "invalid post-only order: order crosses book"
INVALID_TICK: Final = "order {id} is invalid. Price ({price}) breaks minimum tick size rule: {tick}"
BELOW_MIN_SIZE: Final = "order {id} is invalid. Size ({size}) lower than the minimum: {min}"
MARKETABLE_BUY_MIN: Final = "invalid amount for a marketable BUY order (${amount}), min size: $1"
FOK_NOT_FILLED: Final = "order couldn't be fully filled. FOK orders are fully filled or killed."
FAK_NO_MATCH: Final = (
    "no orders found to match with FAK order. FAK orders are partially filled or killed if no match is found."
)
DUPLICATED: Final = "order {id} is invalid. Duplicated."
NOT_ENOUGH_BALANCE: Final = "not enough balance / allowance"
MARKET_NOT_READY: Final = "the market is not yet ready to process new orders"
INVALID_EXPIRATION: Final = "invalid expiration"
INVALID_PAYLOAD: Final = "Invalid order payload"

# Our wording (the venue's is not recorded): an order naming a token no market trades.
UNKNOWN_TOKEN: Final = "invalid order: unknown token id {token_id}"
# The venue's /book answer for an unknown token (404).
NO_ORDERBOOK: Final = "No orderbook exists for the requested token id"

# `not_canceled` reasons are free text on the venue (UNCONFIRMED wording).
NOT_CANCELED_UNKNOWN: Final = "order not found or already canceled"

# Why an order left the book; carried on CANCELLATION events (our wording).
REASON_USER: Final = "canceled by user"
REASON_CANCEL_ALL: Final = "canceled by cancel-all"
REASON_CANCEL_MARKET: Final = "canceled by cancel-market-orders"
REASON_EXPIRED: Final = "expired (GTD)"
REASON_HEARTBEAT: Final = "heartbeat timeout"
REASON_MARKET_CLOSED: Final = "market closed"
REASON_MARKET_RESOLVED: Final = "market resolved"
REASON_TICK_SIZE: Final = "price not on the new tick size"

# Our wording (the venue's is not recorded): `err_msg` of a trade whose settlement failed.
TRADE_FAILED: Final = "settlement transaction failed after retries; trade reverted"


def invalid_tick(order_id: str, price_text: str, tick_text: str) -> str:
    return INVALID_TICK.format(id=order_id, price=price_text, tick=tick_text)


def below_min_size(order_id: str, size_micro: int, min_micro: int) -> str:
    return BELOW_MIN_SIZE.format(id=order_id, size=fmt_micro(size_micro), min=fmt_micro(min_micro))


def marketable_buy_min(amount_micro: int) -> str:
    return MARKETABLE_BUY_MIN.format(amount=fmt_micro(amount_micro))


def duplicated(order_id: str) -> str:
    return DUPLICATED.format(id=order_id)


def unknown_token(token_id: str) -> str:
    return UNKNOWN_TOKEN.format(token_id=token_id)
