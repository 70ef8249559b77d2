"""The OMS's pure core: order state machine, fills, ledgers, journal and recovery, reconciliation, risk.

No network I/O here. The engine (one asyncio task, the single writer) feeds an `OmsState` with the
venue's answers and user-channel events, flushes its journal per batch, and asks `risk` before it signs.
"""

from polyoms.oms.fills import Fill, FillTier, Role, fee_allowance, taker_fee
from polyoms.oms.journal import Journal, open_journal
from polyoms.oms.journal_recovery import recover
from polyoms.oms.ledger import Position, WalletLedger
from polyoms.oms.oms_state import OmsState
from polyoms.oms.state import TERMINAL, TRANSITIONS, OrderIntent, OrderRecord, OrderState, intent_from_prepared

__all__ = [
    "TERMINAL",
    "TRANSITIONS",
    "Fill",
    "FillTier",
    "Journal",
    "OmsState",
    "OrderIntent",
    "OrderRecord",
    "OrderState",
    "Position",
    "Role",
    "WalletLedger",
    "fee_allowance",
    "intent_from_prepared",
    "open_journal",
    "recover",
    "taker_fee",
]
