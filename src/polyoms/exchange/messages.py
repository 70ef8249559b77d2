"""The local exchange's own wording, where the venue's is not recorded: reasons and free texts.

The venue's exact texts (errors the SDKs pattern-match) are in `polymarket/protocol/errors.py`.
"""

from __future__ import annotations

from typing import Final

# An order naming a token no market trades.
UNKNOWN_TOKEN: Final = "invalid order: unknown token id {token_id}"

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


def unknown_token(token_id: str) -> str:
    return UNKNOWN_TOKEN.format(token_id=token_id)
