"""The operator's desk: every control-API command as one method, free of HTTP.

The daemon builds a `Desk` over its engine, order manager, market catalog and streams; `control.py`
parses a request, calls one method and renders the result (and `polyoms demo` can call the methods
directly). Every method either returns a `schema` view or raises a typed `PolyomsError`; nothing is
signed or sent before the input is fully validated and admission is open (bad input changes nothing).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Protocol

from polyoms.core.enums import OrderType, Side
from polyoms.core.errors import (
    FakNoMatchError,
    FokNotFilledError,
    InputError,
    MarketNotReadyError,
    NotFoundError,
    PolyomsError,
)
from polyoms.core.market_events import BookSnapshot
from polyoms.core.units import MICRO, Micro, fmt_micro, to_micro
from polyoms.oms.engine import Engine
from polyoms.oms.errors import ConfirmationRequiredError, UnknownOrderError
from polyoms.oms.manager import OrderManager, OrderStatus
from polyoms.oms.risk import MarketInfo as RiskMarket
from polyoms.oms.risk import Quote, RiskLimits
from polyoms.oms.state import OrderRecord
from polyoms.ops import schema as api
from polyoms.ops.logs import bind_order
from polyoms.polymarket.client.catalog import MarketCatalog, MarketInfo
from polyoms.polymarket.client.clob import ClobClient
from polyoms.polymarket.client.gamma import GammaClient
from polyoms.polymarket.client.ws_market import MarketStream
from polyoms.polymarket.protocol.order import OrderBuilder, SignedOrder

log = logging.getLogger(__name__)
ALGOS = ("iceberg", "adaptive", "micro-price")


class ParentPort(Protocol):
    """What the desk needs of the execution algorithms (`algos.parents.ParentManager`, adapted)."""

    async def start(self, req: api.OrderRequest, side: Side, market: MarketInfo, size: Micro) -> str: ...

    def status(self, parent_id: str) -> api.ParentView: ...

    def list(self) -> list[api.ParentView]: ...

    def known(self, parent_id: str) -> bool: ...

    async def cancel(self, parent_id: str) -> None: ...

    async def cancel_all(self) -> int: ...

    async def close(self) -> None: ...


@dataclass
class Desk:
    engine: Engine
    manager: OrderManager
    builder: OrderBuilder
    catalog: MarketCatalog
    public: ClobClient
    """Public market data (REST books for market-order prices)."""
    venue_kind: str
    limits: RiskLimits = field(default_factory=RiskLimits)
    market_stream: MarketStream | None = None
    gamma: GammaClient | None = None
    parents: ParentPort | None = None
    kelly: Callable[[str, str, Micro, Micro, Side], Micro] | None = None
    """(probability, fraction, price µ, bankroll µ, side) -> shares µ: the algos package's Kelly sizing."""
    metrics_render: Callable[[], bytes] | None = None
    risk_markets: dict[str, RiskMarket] = field(default_factory=dict)
    """Condition id -> what the pre-trade risk knows of the market (shared with the engine's RiskConfig)."""
    on_shutdown: Callable[[], None] | None = None

    # --- markets ------------------------------------------------------------------------------------

    async def market_of(self, token_id: str) -> MarketInfo:
        token = token_id.strip()
        if not token.isdigit():
            raise InputError(f"token id must be the decimal outcome token id, got {token_id!r}", field="token_id")
        try:
            info = await self.catalog.resolve_token(token)
        except NotFoundError:
            raise InputError(f"unknown token id {token}: no market trades it", field="token_id") from None
        except PolyomsError as exc:
            if exc.status in (400, 404):
                raise InputError(f"unknown token id {token}: {exc.message}", field="token_id") from None
            raise
        self.note_market(info)
        return info

    def note_market(self, info: MarketInfo) -> None:
        """Teach the engine (token -> market) and the risk rules about a market we are about to trade."""
        for t in info.token_ids:
            self.engine.markets[t] = info.condition_id
        fee_bps = None
        if info.fees_enabled is False:
            fee_bps = 0
        self.risk_markets[info.condition_id] = RiskMarket(
            condition_id=info.condition_id,
            token_ids=tuple(info.token_ids),
            accepting_orders=info.accepting_orders is not False,
            active=info.active is not False,
            closed=bool(info.closed),
            fee_rate_bps=fee_bps,
        )

    def quote(self, token_id: str) -> Quote | None:
        """Best prices from the market stream's mirror, only while it is trusted (risk fails closed)."""
        s = self.market_stream
        if s is None or not s.is_trusted(token_id):
            return None
        book = s.book(token_id)
        if book is None:
            return None
        return Quote(book.best_bid(), book.best_ask())

    async def watch_books(self, info: MarketInfo, timeout_s: float = 5.0) -> bool:
        s = self.market_stream
        if s is None:
            return False
        missing = [t for t in info.token_ids if t not in s.subscribed]
        if missing:
            # Both tokens: a lone token's last trade price may change unannounced (ws_market doc).
            await s.subscribe(info.token_ids)
        return await s.wait_trusted(info.token_ids, timeout_s=timeout_s)

    async def search_markets(self, text: str, limit: int = 20) -> api.MarketList:
        words = text.strip()
        if not words:
            raise InputError("give some words to search for", field="text")
        if not 1 <= limit <= 200:
            raise InputError(f"limit must be within [1, 200], got {limit}", field="limit")
        if self.gamma is not None and self.venue_kind == "polymarket":
            found = await self.gamma.search(words)
            markets = [m for e in found.events for m in e.markets]
            self.catalog.add_gamma(markets)
            infos = [i for m in markets if (i := self.catalog.by_condition(m.condition_id)) is not None]
            source = "gamma"
        else:
            await self.catalog.ensure_fresh()
            infos = self.catalog.search(words)
            source = "catalog"
        return api.MarketList([self._market_view(i) for i in infos[:limit]], source)

    def _market_view(self, i: MarketInfo) -> api.MarketView:
        bid = ask = None
        if i.token_ids and (q := self.quote(i.token_ids[0])) is not None:
            bid = None if q.best_bid is None else fmt_micro(q.best_bid)
            ask = None if q.best_ask is None else fmt_micro(q.best_ask)
        return api.MarketView(
            condition_id=i.condition_id,
            question=i.question,
            slug=i.slug,
            outcomes=list(i.outcomes),
            token_ids=list(i.token_ids),
            tick=None if i.tick is None else i.tick.text,
            min_order_size=None if i.min_order_size is None else fmt_micro(i.min_order_size),
            neg_risk=i.neg_risk,
            accepting_orders=i.accepting_orders,
            best_bid=bid,
            best_ask=ask,
        )

    # --- orders -------------------------------------------------------------------------------------

    def _admission(self) -> None:
        errors = self.engine.admission_errors()
        if errors:
            raise errors[0]

    async def add_order(self, req: api.OrderRequest) -> api.OrderAccepted:
        side = Side.parse(req.side)
        kind = req.kind.strip().lower()
        if kind not in ("limit", "market"):
            raise InputError(f"kind must be limit or market, got {req.kind!r}", field="kind")
        if req.algo is not None and req.algo not in ALGOS:
            raise InputError(f"algo must be one of {', '.join(ALGOS)}, got {req.algo!r}", field="algo")
        if req.expiration < 0:
            raise InputError("expiration must be unix seconds (or 0)", field="expiration")
        info = await self.market_of(req.token_id)
        if info.accepting_orders is False or info.closed:
            raise MarketNotReadyError("the market is not accepting orders", market=info.condition_id)
        if info.tick is None:
            raise MarketNotReadyError("the market's tick size is not known yet", market=info.condition_id)
        self._admission()
        size = req.size
        if req.kelly is not None:
            size = fmt_micro(await self._kelly_size(req, side))
        if req.algo is not None:
            return await self._add_parent(req, side, info, size)
        if kind == "limit":
            order, notional, is_dollar = self._limit(req, side, info, size)
        else:
            order, notional, is_dollar = await self._market(req, side, info, size)
        if notional > self.limits.confirm_above and not req.confirm:
            raise ConfirmationRequiredError(
                f"order notional {fmt_micro(notional)} pUSD is above {fmt_micro(self.limits.confirm_above)}: "
                "confirm it (--yes)",
                rule="confirmation",
            )
        await self.watch_books(info)
        order_id = await self.manager.submit(order, market=info.condition_id, notional=is_dollar)
        shares, price = order.size_and_price
        with bind_order(order_id=order_id, market=info.condition_id, wallet=self.engine.venue.wallet):
            log.info(
                "order submitted: %s %s %s @ %s %s",
                side.name,
                fmt_micro(order.maker_amount) + " pUSD" if is_dollar else fmt_micro(shares),
                order.token_id,
                fmt_micro(price),
                order.order_type.value,
            )
        return api.OrderAccepted(
            kind=kind,
            order_id=order_id,
            side=side.name,
            token_id=str(order.token_id),
            price=fmt_micro(price),
            size=fmt_micro(shares),
            amount=fmt_micro(order.maker_amount) if is_dollar else None,
            order_type=order.order_type.value,
        )

    def _limit(
        self, req: api.OrderRequest, side: Side, info: MarketInfo, size: str | None
    ) -> tuple[SignedOrder, Micro, bool]:
        if req.price is None:
            raise InputError("a limit order needs a price (--price)", field="price")
        if size is None:
            raise InputError("a limit order needs a size in shares (--size)", field="size")
        if req.amount is not None:
            raise InputError("--amount (pUSD) is for market BUY orders; a limit order takes --size", field="amount")
        otype = OrderType.parse(req.order_type or "GTC")
        if otype is OrderType.GTD and req.expiration <= 0:
            raise InputError("a GTD order needs --expiration (unix seconds)", field="expiration")
        assert info.tick is not None
        order = self.builder.limit(
            req.token_id,
            side,
            req.price,
            size,
            tick=info.tick,
            neg_risk=bool(info.neg_risk),
            order_type=otype,
            expiration=req.expiration if otype is OrderType.GTD else 0,
            post_only=req.post_only,
            min_size=None if info.min_order_size is None else fmt_micro(info.min_order_size),
        )
        shares, price = order.size_and_price
        return order, _ceil_div(shares * price, MICRO), False

    async def _market(
        self, req: api.OrderRequest, side: Side, info: MarketInfo, size: str | None
    ) -> tuple[SignedOrder, Micro, bool]:
        otype = OrderType.parse(req.order_type or "FOK")
        if not otype.is_marketable_only:
            raise InputError(f"a market order is FOK or FAK, got {otype.value}", field="order_type")
        if req.post_only:
            raise InputError("post-only is for resting (limit) orders, not market orders", field="post_only")
        if side is Side.BUY:
            if size is not None and req.kelly is None:
                raise InputError("a market BUY spends --amount pUSD (not --size shares)", field="size")
            if req.kelly is not None and size is not None:
                raise InputError(
                    "Kelly sizing gives shares: use a limit order (with --price) to buy them", field="kelly"
                )
            if req.amount is None:
                raise InputError("a market BUY needs --amount (pUSD to spend)", field="amount")
            amount = to_micro(req.amount, "amount")
        else:
            if req.amount is not None:
                raise InputError("a market SELL takes --size (shares), not --amount", field="amount")
            if size is None:
                raise InputError("a market SELL needs --size (shares to sell)", field="size")
            amount = to_micro(size, "size")
        if amount <= 0:
            raise InputError("the amount must be positive", field="amount")
        assert info.tick is not None
        if req.price is not None:
            price_text = req.price
        else:
            book = await self.public.book(req.token_id)
            price_text = fmt_micro(market_price(book, side, amount, otype))
        order = self.builder.market(
            req.token_id,
            side,
            fmt_micro(amount),
            price_text,
            tick=info.tick,
            neg_risk=bool(info.neg_risk),
            order_type=otype,
        )
        if side is Side.BUY:
            return order, order.maker_amount, True
        shares, price = order.size_and_price
        return order, shares * price // MICRO, False

    async def _kelly_size(self, req: api.OrderRequest, side: Side) -> Micro:
        k = req.kelly
        assert k is not None
        if self.kelly is None:
            raise InputError("Kelly sizing needs the execution algorithms (polyoms.algos), not installed here")
        if req.price is None:
            raise InputError("Kelly sizing needs the price you would trade at (--price)", field="price")
        price = to_micro(req.price, "price")
        for text, what in ((k.prob, "kelly probability"), (k.fraction, "kelly fraction")):
            to_micro(text, what)  # a plain decimal (no "1/3", no exponent): typed InvalidAmountError
        if k.bankroll is not None:
            bankroll = to_micro(k.bankroll, "kelly bankroll")
        else:
            bankroll = self.engine.state.ledger(self.engine.venue.wallet).available
        shares = self.kelly(k.prob, k.fraction, price, bankroll, side)
        if shares <= 0:
            raise InputError(
                f"Kelly says no bet: probability {k.prob} gives no edge for a {side.name} at {req.price}",
                field="kelly",
            )
        return shares

    async def _add_parent(
        self, req: api.OrderRequest, side: Side, info: MarketInfo, size: str | None
    ) -> api.OrderAccepted:
        if self.parents is None:
            raise InputError("parent orders need the execution algorithms (polyoms.algos), not available here")
        if size is None:
            raise InputError(
                f"a {req.algo} parent order needs a total size in shares (--size or --kelly)", field="size"
            )
        total = to_micro(size, "size")
        if total <= 0:
            raise InputError("the size must be positive", field="size")
        await self.watch_books(info)
        parent_id = await self.parents.start(req, side, info, total)
        with bind_order(parent_id=parent_id, market=info.condition_id, wallet=self.engine.venue.wallet):
            log.info("parent order started: %s %s %s of %s", req.algo, side.name, fmt_micro(total), req.token_id)
        return api.OrderAccepted(
            kind=req.algo or "",
            parent_id=parent_id,
            side=side.name,
            token_id=req.token_id,
            price=req.price,
            size=fmt_micro(total),
        )

    def order_status(self, order_id: str) -> api.OrderView | api.ParentView:
        oid = order_id.strip()
        if self.parents is not None and self.parents.known(oid):
            return self.parents.status(oid)
        try:
            return order_view(self.manager.status(oid), self.engine.state.orders.get(oid), full=True)
        except UnknownOrderError:
            raise UnknownOrderError(f"unknown order {oid}", order_id=oid) from None

    def list_orders(self, *, open_only: bool = False) -> api.OrderList:
        statuses = self.manager.list(open_only=open_only)
        orders = self.engine.state.orders
        return api.OrderList([order_view(s, orders.get(s.order_id), full=False) for s in statuses])

    async def cancel(self, order_id: str) -> api.CancelResult:
        oid = order_id.strip()
        if self.parents is not None and self.parents.known(oid):
            await self.parents.cancel(oid)
            return api.CancelResult([oid], "parent order cancelled (and its open children)")
        st = self.manager.status(oid)  # UnknownOrderError for an id never seen
        if st.done:
            return api.CancelResult([], f"order is already {st.state.value}: nothing to cancel")
        await self.manager.cancel(oid)
        return api.CancelResult([oid])

    def list_parents(self) -> api.ParentList:
        return api.ParentList([] if self.parents is None else self.parents.list())

    # --- positions, metrics, admission ---------------------------------------------------------------

    def positions(self) -> api.PositionsView:
        wallet = self.engine.venue.wallet
        lg = self.engine.state.ledger(wallet)
        rows = []
        for token, p in sorted(lg.positions.items()):
            if not (p.confirmed or p.prov_in or p.prov_out or p.reserved or p.realized):
                continue
            info = self.catalog.by_token(token)
            avg = p.avg_price()
            rows.append(
                api.PositionView(
                    token_id=token,
                    market=p.market or (info.condition_id if info else ""),
                    outcome=(info.outcome_of(token) or "") if info else "",
                    confirmed=fmt_micro(p.confirmed),
                    provisional_in=fmt_micro(p.prov_in),
                    provisional_out=fmt_micro(p.prov_out),
                    reserved=fmt_micro(p.reserved),
                    sellable=fmt_micro(p.sellable),
                    total=fmt_micro(p.total),
                    avg_price=None if avg is None else fmt_micro(_round_fraction(avg * MICRO)),
                    realized=fmt_micro(p.realized),
                    fees=fmt_micro(p.fees),
                )
            )
        return api.PositionsView(
            wallet=wallet,
            cash=fmt_micro(lg.cash),
            reserved=fmt_micro(lg.reserved),
            provisional_out=fmt_micro(lg.prov_out),
            provisional_in=fmt_micro(lg.prov_in),
            available=fmt_micro(lg.available),
            realized=fmt_micro(lg.realized()),
            positions=rows,
        )

    def metrics(self) -> bytes:
        if self.metrics_render is not None:
            return self.metrics_render()
        return engine_metrics_text(self.engine)

    async def emergency_stop(self, reason: str = "operator") -> api.StopResult:
        """Close admission (kill switch), stop every parent order, cancel every open order at the venue."""

        def close(_state: object) -> int:
            self.engine.flags.kill_switch = True
            return len(self.engine.state.open_orders(self.engine.venue.wallet))

        open_count: int = await self.engine.call(close)
        log.warning("emergency stop (%s): admission closed, cancelling %d open orders", reason, open_count)
        parents = 0
        if self.parents is not None:
            parents = await self.parents.cancel_all()
        await self.manager.cancel_all(actor=f"operator:emergency:{reason}"[:64])
        return api.StopResult("closed", open_count, parents, "kill switch on; `polyoms resume` reopens admission")

    async def resume(self) -> api.StopResult:
        def reopen(_state: object) -> None:
            self.engine.flags.kill_switch = False

        await self.engine.call(reopen)
        errors = self.engine.admission_errors()
        note = "; ".join(str(e) for e in errors)
        return api.StopResult("open" if not errors else "closed", note=note or "admission open")

    def shutdown(self) -> api.StopResult:
        if self.on_shutdown is None:
            raise InputError("this daemon cannot be shut down over the control API")
        self.on_shutdown()
        return api.StopResult("shutting down", note="open orders are cancelled, the journal flushed")


# --- views ------------------------------------------------------------------------------------------


def error_view(exc: PolyomsError) -> api.ErrorView:
    return api.ErrorView(type(exc).__name__, str(exc), exc.source)


def order_view(s: OrderStatus, record: OrderRecord | None, *, full: bool) -> api.OrderView:
    history = (
        [
            api.AuditView(
                h.ts_ms,
                h.kind,
                None if h.from_state is None else h.from_state.value,
                h.to_state.value,
                h.reason,
                h.actor,
                h.seq,
            )
            for h in s.history
        ]
        if full
        else []
    )
    fills = (
        [
            api.FillView(
                f.trade_id,
                f.side.name,
                f.role.value,
                fmt_micro(f.price),
                fmt_micro(f.size),
                fmt_micro(f.fee),
                f.status.value,
                f.tier.value,
                f.match_time,
            )
            for f in s.fills
        ]
        if full
        else []
    )
    return api.OrderView(
        order_id=s.order_id,
        state=s.state.value,
        done=s.done,
        side=s.side,
        token_id=s.token_id,
        market=record.market if record else "",
        order_type=record.order_type.value if record else "",
        price=fmt_micro(s.price),
        size=fmt_micro(s.size),
        filled=fmt_micro(s.filled),
        post_only=record.post_only if record else False,
        pending_cancel=s.pending_cancel,
        created_ms=record.created_ms if record else 0,
        actor=record.actor if record else "",
        error=None if s.error is None else error_view(s.error),
        history=history,
        fills=fills,
    )


def market_price(book: BookSnapshot, side: Side, amount: Micro, order_type: OrderType) -> Micro:
    """The worst price a market order must accept to fill `amount` (pUSD for a BUY, shares for a SELL),
    walked from the best level as the SDKs do. FOK refuses a book too thin to fill it; FAK takes the
    worst level there is."""
    levels: Sequence[tuple[Micro, Micro]] = book.asks if side is Side.BUY else book.bids
    if not levels:
        cls = FokNotFilledError if order_type is OrderType.FOK else FakNoMatchError
        raise cls(f"no {'asks' if side is Side.BUY else 'bids'} on the book: a market {side.name} cannot fill")
    total = 0
    for price, size in reversed(levels):  # best level last (doc §4.3)
        total += size * price // MICRO if side is Side.BUY else size
        if total >= amount:
            return price
    if order_type is OrderType.FOK:
        what = f"{fmt_micro(amount)} pUSD" if side is Side.BUY else f"{fmt_micro(amount)} shares"
        raise FokNotFilledError(
            f"the book holds only {fmt_micro(total)} {'pUSD' if side is Side.BUY else 'shares'}: a FOK market "
            f"{side.name} of {what} cannot fill (use FAK, a smaller amount, or --price)"
        )
    return levels[0][0]


def engine_metrics_text(engine: Engine) -> bytes:
    """The engine's counters in the Prometheus text format (used until `ops.metrics` is wired)."""
    s = engine.stats
    st = engine.state
    rows: Mapping[str, int] = {
        "polyoms_engine_events_total": s.events,
        "polyoms_engine_batches_total": s.batches,
        "polyoms_engine_posts_total": s.posts,
        "polyoms_engine_unknown_outcomes_total": s.unknown_outcomes,
        "polyoms_engine_reconciliations_total": s.reconciliations,
        "polyoms_engine_repairs_total": s.repairs,
        "polyoms_engine_heartbeat_failures_total": s.heartbeat_failures,
        "polyoms_engine_errors_total": len(s.errors),
        "polyoms_orders": len(st.orders),
        "polyoms_open_orders": len(st.open_orders()),
        "polyoms_unknown_orders": len(st.unknown),
        "polyoms_fills": len(st.fills),
        "polyoms_admission_open": int(not engine.admission_errors()),
    }
    return "".join(f"{k} {v}\n" for k, v in rows.items()).encode()


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def _round_fraction(x: Fraction) -> int:
    return round(x)
