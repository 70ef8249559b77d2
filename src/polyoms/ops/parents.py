"""The daemon's parent orders: `algos.parents.ParentManager` behind the desk's `ParentPort`.

Books come from the market stream's mirror (`MirrorBooks`: only trusted books count; the desk subscribes
a market's tokens before starting a parent on it), instruments (tick, market, complement, minimum size,
fee) from the market catalog, the clock is the daemon's. Children go through the same order manager as
every other order, journaled with `actor = "algo:<parent id>"`.

Parents are journaled with the OMS (algos.parents): after a restart `recover` rebuilds them, each
resumed or interrupted per its policy (`on_restart=` in its params, else the daemon's
`engine.parents_on_restart`), and their markets' books are watched again. Requests name their algorithm
and parameters as `algos.catalog` declares them.
"""

from __future__ import annotations

import contextlib
import logging
from fractions import Fraction
from typing import TYPE_CHECKING

from polyoms.algos.base import Instrument
from polyoms.algos.books import BookSource, MirrorBooks, RestBooks
from polyoms.algos.catalog import build_spec, on_restart_of
from polyoms.algos.parents import FAMILY, ParentManager, ParentStatus, UnknownParentError, decode_spec
from polyoms.algos.sizing import KellySizing, kelly_shares
from polyoms.core.clock import Clock
from polyoms.core.enums import Side
from polyoms.core.errors import PolyomsError
from polyoms.core.units import Micro, fmt_micro
from polyoms.ops import schema as api
from polyoms.ops.desk import instrument_of
from polyoms.polymarket.client.catalog import MarketCatalog, MarketInfo

if TYPE_CHECKING:
    from polyoms.ops.desk import Desk

log = logging.getLogger(__name__)


class AlgoParents:
    """Implements `desk.ParentPort` over a ParentManager."""

    def __init__(self, manager: ParentManager, catalog: MarketCatalog, desk: Desk | None = None) -> None:
        self.manager = manager
        self.catalog = catalog
        self.desk = desk

    @classmethod
    def create(cls, desk: Desk, *, clock: Clock, on_restart: str) -> AlgoParents:
        """Over the desk's order manager and market data; `on_restart`: the parents' default policy."""
        books: BookSource = (
            MirrorBooks(desk.market_stream.books) if desk.market_stream is not None else RestBooks(desk.public)
        )
        catalog = desk.catalog

        async def lookup(token_id: str) -> Instrument | None:
            info = await catalog.resolve_token(token_id)
            return None if info.tick is None else instrument_of(info, token_id)

        pm = ParentManager(desk.manager, clock=clock, book_source=books, instruments=lookup, on_restart=on_restart)
        return cls(pm, catalog, desk)

    @classmethod
    async def attach(cls, desk: Desk, *, clock: Clock, on_restart: str) -> AlgoParents:
        """`create`, with the parents the journal holds recovered (`recover`), behind the desk's port."""
        parents = cls.create(desk, clock=clock, on_restart=on_restart)
        working = await parents.recover()
        if working:
            log.warning("recovered %d parent order(s) found working: %s", len(working), ", ".join(working))
        desk.parents = parents
        return parents

    async def recover(self) -> list[str]:
        """The journaled parents after a restart (`ParentManager.recover`). The markets of those still
        working are made known to the desk first (risk rules, token → market) and their books watched:
        their algorithms need both to resume."""
        if self.desk is not None:
            for token in self._working_tokens():
                try:
                    await self.desk.watch_books(await self.desk.market_of(token))
                except PolyomsError as exc:  # the parent then waits for a book (or its child is refused)
                    log.warning("parent recovery: market of token %s: %s", token, exc)
        return await self.manager.recover()

    def _working_tokens(self) -> list[str]:
        j = self.manager.engine.state.journal
        tokens: set[str] = set()
        for r in j.parents() if j is not None else []:
            if not r.ended and r.family == FAMILY:
                with contextlib.suppress(Exception):  # an unreadable record fails in manager.recover
                    tokens.update(decode_spec(r.spec)[0].tokens)
        return sorted(tokens)

    async def start(self, req: api.OrderBody, side: Side, market: MarketInfo, size: Micro) -> str:
        algo = req.algo or ""
        spec = build_spec(algo, req.token_id, side, size, req.price, req.algo_params, post_only=req.post_only)
        return await self.manager.start(spec, on_restart=on_restart_of(req.algo_params))

    def known(self, parent_id: str) -> bool:
        try:
            self.manager.status(parent_id)
        except UnknownParentError:
            return False
        return True

    def status(self, parent_id: str) -> api.ParentView:
        return parent_view(self.manager.status(parent_id))

    def list(self) -> list[api.ParentView]:
        return [parent_view(s) for s in self.manager.list()]

    async def cancel(self, parent_id: str) -> None:
        await self.manager.cancel(parent_id)

    async def cancel_all(self) -> int:
        n = 0
        for pid in self.manager.active:
            await self.manager.cancel(pid)
            n += 1
        return n

    async def close(self) -> None:
        await self.manager.close()


def parent_view(s: ParentStatus) -> api.ParentView:
    detail = {
        "reason": s.reason,
        "remaining": fmt_micro(s.remaining),
        "notional": fmt_micro(s.notional),
        "fees": fmt_micro(s.fees),
        "adjustments": str(s.adjustments),
        "on_restart": s.on_restart,
    }
    if s.avg_price_micro is not None:
        detail["avg_price"] = fmt_micro(s.avg_price_micro)
    if s.slippage is not None:
        detail["slippage_per_share"] = fmt_micro(round(s.slippage))
    if s.error:
        detail["error"] = s.error
    if s.decisions:
        detail["last_decision"] = str(s.decisions[-1])
    return api.ParentView(
        parent_id=s.parent_id,
        algo=s.kind,
        state=s.state.value,
        done=s.done,
        side="" if s.side is None else s.side.name,
        token_id=s.token_id,
        target=fmt_micro(s.target),
        filled=fmt_micro(s.filled),
        children=list(s.child_order_ids),
        detail=detail,
        interrupted=s.interrupted,
        restarts=s.restarts,
    )


def kelly_size(probability: str, fraction: str, price: Micro, bankroll: Micro, side: Side) -> Micro:
    """The desk's Kelly sizing (`Desk.kelly`): shares µ for (probability, fraction of full Kelly, price µ,
    bankroll µ, side); bad inputs raise the algorithms' typed config errors."""
    return kelly_shares(KellySizing(Fraction(probability), Fraction(fraction)), price, bankroll, side)
