"""The daemon's parent orders: `algos.parents.ParentManager` behind the desk's `ParentPort`.

Books come from the market stream's mirror (`MirrorBooks`: only trusted books count; the desk subscribes
a market's tokens before starting a parent on it), instruments (tick, market, complement, minimum size,
fee) from the market catalog, the clock is the daemon's. Children go through the same order manager as
every other order, journaled with `actor = "algo:<parent id>"`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from polyoms.algos.base import Instrument
from polyoms.algos.books import BookSource, MirrorBooks, RestBooks
from polyoms.algos.parents import ParentManager, ParentStatus, UnknownParentError
from polyoms.core.enums import Side
from polyoms.core.units import MICRO, Micro, fmt_micro
from polyoms.ops import schema as api
from polyoms.ops.algo_specs import build_spec
from polyoms.polymarket.client.catalog import MarketCatalog, MarketInfo

if TYPE_CHECKING:
    from polyoms.ops.daemon import Daemon
    from polyoms.ops.desk import Desk

DEFAULT_MIN_SIZE = 5 * MICRO


def instrument_of(info: MarketInfo, token_id: str) -> Instrument:
    assert info.tick is not None
    fee = 0 if info.fees_enabled is False else None
    return Instrument(
        token_id=token_id,
        tick=info.tick,
        market=info.condition_id,
        complement=info.other_token(token_id) or "",
        neg_risk=bool(info.neg_risk),
        min_size=info.min_order_size if info.min_order_size is not None else DEFAULT_MIN_SIZE,
        fee_rate_bps=fee,
    )


class AlgoParents:
    """Implements `desk.ParentPort` over a ParentManager."""

    def __init__(self, manager: ParentManager, catalog: MarketCatalog) -> None:
        self.manager = manager
        self.catalog = catalog

    @classmethod
    def create(cls, daemon: Daemon, desk: Desk) -> AlgoParents:
        books: BookSource = (
            MirrorBooks(daemon.market_stream.books) if daemon.market_stream is not None else RestBooks(desk.public)
        )
        catalog = desk.catalog

        async def lookup(token_id: str) -> Instrument | None:
            info = await catalog.resolve_token(token_id)
            return None if info.tick is None else instrument_of(info, token_id)

        pm = ParentManager(
            desk.manager, clock=daemon.clock, book_source=books, instruments=lookup, builder=desk.builder
        )
        return cls(pm, catalog)

    async def start(self, req: api.OrderRequest, side: Side, market: MarketInfo, size: Micro) -> str:
        algo = req.algo or ""
        spec = build_spec(algo, req.token_id, side, size, req.price, req.algo_params, post_only=req.post_only)
        return await self.manager.start(spec)

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
    )
