"""Strategies: pure functions from a frozen snapshot to the quotes wanted, run by a manager.

base.py           the Snapshot, Quote, Decision and the Strategy protocol
manager.py        StrategyManager: snapshot, decide, diff against our orders, cancel/place via a port
catalog.py        the registry of strategies by name (parameter schema, params factory)
join_best_bid.py  the example: one post-only BUY at the best bid, capped by a position
"""

from polyoms.strategies.base import Quote, Snapshot, Strategy, StrategyDecision
from polyoms.strategies.catalog import STRATEGIES, Configured, configure
from polyoms.strategies.manager import OrderPort, Plan, StrategyManager, Tolerance

__all__ = [
    "STRATEGIES",
    "Configured",
    "OrderPort",
    "Plan",
    "Quote",
    "Snapshot",
    "Strategy",
    "StrategyDecision",
    "StrategyManager",
    "Tolerance",
    "configure",
]
