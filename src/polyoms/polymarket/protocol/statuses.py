"""Polymarket's order-status words (GET /data/order(s), doc §4.6) in the port's terms: the one mapping
every reader of them uses (the adapters' order reports, the user stream's REST backfill)."""

from __future__ import annotations

from typing import Final

from polyoms.core.errors import MalformedMessageError
from polyoms.core.venue import ReportStatus

_REPORT_STATUS: Final[dict[str, ReportStatus]] = {
    "LIVE": ReportStatus.LIVE,
    "DELAYED": ReportStatus.DELAYED,
    "MATCHED": ReportStatus.MATCHED,
    "UNMATCHED": ReportStatus.UNMATCHED,
    "INVALID": ReportStatus.REJECTED,
}


def report_status(status: str) -> ReportStatus:
    """A status as sent (any case, with or without the ORDER_STATUS_ prefix) → domain. Every CANCELED /
    CANCELLED word (CANCELED_MARKET_RESOLVED...) is a cancellation; an unknown word is a typed error."""
    word = status.strip().upper()
    if word.startswith("ORDER_STATUS_"):
        word = word[len("ORDER_STATUS_") :]
    if word.startswith("CANCEL"):
        return ReportStatus.CANCELED
    found = _REPORT_STATUS.get(word)
    if found is None:
        raise MalformedMessageError(f"unknown order status {status!r}", field="status", value=status)
    return found
