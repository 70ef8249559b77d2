"""Execution algorithms: deterministic state machines on top of the OMS.

Each algorithm is a pure `step(observation) -> (state, commands, decisions)` (`base.py`); the
`ParentManager` (`parents.py`) runs many of them at once through the order manager and the engine.
`catalog.py` names them: each algorithm's spec, parameters, start and resume, registered once.

    iceberg.py     tranches of a parent order, one live at a time, randomized sizes and pauses;
                   optionally priced by the adaptive rules (`AdaptivePricing`)
    adaptive.py    one order that chases the market within a limit (undercut, stale), urgency presets
    urgency.py     LOW / MEDIUM / HIGH: patience, adjustments, step
    microprice.py  an order kept inside a band around the size-weighted mid
    sizing.py      (fractional) Kelly sizing
    multileg.py    baskets (complete sets, neg-risk outcome sets), sequential or parallel
    unwinder.py    flattening naked legs within a loss limit, with the legging cost
    single.py      one limit or marketable order (GTD dead-man expiry) as a parent
    orders.py      child orders with the right units, and their signing
    books.py       book sources (local exchange, market-channel mirror, REST) without our own orders
"""

from polyoms.algos.adaptive import AdaptivePricing, AdaptiveSpec
from polyoms.algos.base import AlgoConfigError, BookTop, Decision, Instrument, ParentState
from polyoms.algos.books import BookLevels, BookSource, ExchangeBooks, MirrorBooks, RestBooks
from polyoms.algos.iceberg import IcebergSpec
from polyoms.algos.microprice import MicroPriceSpec
from polyoms.algos.multileg import LegMode, LegSpec, MultiLegSpec
from polyoms.algos.parents import ParentManager, ParentStatus, UnknownParentError
from polyoms.algos.single import OrderSpec
from polyoms.algos.sizing import KellySizing, kelly_shares
from polyoms.algos.unwinder import UnwindMethod, UnwindPolicy
from polyoms.algos.urgency import Urgency, UrgencyParams

__all__ = [
    "AdaptivePricing",
    "AdaptiveSpec",
    "AlgoConfigError",
    "BookLevels",
    "BookSource",
    "BookTop",
    "Decision",
    "ExchangeBooks",
    "IcebergSpec",
    "Instrument",
    "KellySizing",
    "LegMode",
    "LegSpec",
    "MicroPriceSpec",
    "MirrorBooks",
    "MultiLegSpec",
    "OrderSpec",
    "ParentManager",
    "ParentState",
    "ParentStatus",
    "RestBooks",
    "UnknownParentError",
    "UnwindMethod",
    "UnwindPolicy",
    "Urgency",
    "UrgencyParams",
    "kelly_shares",
]
