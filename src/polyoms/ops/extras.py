"""Wiring of the optional parts of the daemon: metrics (`ops.metrics`) and the execution algorithms
(`algos`). Each is attached when its package is importable and left out (with a log line) otherwise,
so the daemon runs whichever of them is installed."""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable
from fractions import Fraction
from typing import TYPE_CHECKING, Any, cast

from polyoms.core.enums import Side
from polyoms.core.units import Micro

if TYPE_CHECKING:
    from polyoms.ops.daemon import Daemon
    from polyoms.ops.desk import Desk, ParentPort
    from polyoms.ops.metrics import Metrics

log = logging.getLogger(__name__)


def make_metrics() -> Metrics | None:
    """A fresh `ops.metrics.Metrics` (its own registry); None when that module is not available. The
    daemon instruments its venue with it before building the engine, then attaches the engine, the
    streams and the client hub."""
    try:
        from polyoms.ops.metrics import Metrics
    except ImportError as exc:
        log.info("metrics module not available (%s): /v1/metrics serves the engine counters only", exc)
        return None
    return Metrics()


async def attach_parents(daemon: Daemon, desk: Desk) -> ParentPort | None:
    """The execution algorithms' parent-order manager behind the desk's port, with the parents the
    journal holds recovered (`AlgoParents.recover`); None when not available.

    Imported by name: the adapter (`ops.parents`) needs `algos.parents.ParentManager`, which may be
    absent from an installation (then parent orders are refused with a clear error)."""
    try:
        module = importlib.import_module("polyoms.ops.parents")
    except ImportError as exc:
        log.info("execution algorithms not available (%s): parent orders are refused", exc)
        return None
    create = cast("Callable[[Daemon, Desk], Any]", module.AlgoParents.create)
    parents = create(daemon, desk)
    working: list[str] = await parents.recover()
    if working:
        log.warning("recovered %d parent order(s) found working: %s", len(working), ", ".join(working))
    desk.parents = parents
    return cast("ParentPort", parents)


KellyFn = Callable[[str, str, Micro, Micro, Side], Micro]


def kelly_sizer() -> KellyFn | None:
    """(probability, fraction of full Kelly, price µ, bankroll µ, side) -> shares µ, from `algos.sizing`;
    None when the algorithms are not available. Bad inputs raise the package's typed config errors."""
    try:
        from polyoms.algos.sizing import KellySizing, kelly_shares
    except ImportError as exc:
        log.info("execution algorithms not available (%s): Kelly sizing is refused", exc)
        return None

    def size(probability: str, fraction: str, price: Micro, bankroll: Micro, side: Side) -> Micro:
        sizing = KellySizing(Fraction(probability), Fraction(fraction))
        return kelly_shares(sizing, price, bankroll, side)

    return size
