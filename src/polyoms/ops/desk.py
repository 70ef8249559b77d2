"""The operator's desk: every control-API command as one method, free of HTTP.

The daemon builds a `Desk` over its engine, order manager, market catalog and streams; `control.py`
parses a request, calls one method and renders the result (and `polyoms demo` can call the methods
directly). Every method either returns a `schema` view or raises a typed `PolyomsError`; nothing is
signed or sent before the input is fully validated and admission is open (bad input changes nothing).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Final, Protocol

import msgspec

from polyoms.algos.catalog import algo_name, requested
from polyoms.core.enums import OrderType, Side
from polyoms.core.errors import (
    BelowMinimumSizeError,
    FakNoMatchError,
    FokNotFilledError,
    InputError,
    InvalidExpirationError,
    MarketNotReadyError,
    NotFoundError,
    PolyomsError,
)
from polyoms.core.fees import UNKNOWN_RATE_BOUND_BPS, fee_fraction
from polyoms.core.market_events import BookSnapshot
from polyoms.core.units import MICRO, Micro, TickSize, fmt_micro, plain_micro, to_micro
from polyoms.core.venue import Instrument, OrderRequest, PreparedOrder
from polyoms.oms.engine import Engine
from polyoms.oms.errors import ConfirmationRequiredError, UnknownOrderError
from polyoms.oms.ledger import div_round, mid_mark
from polyoms.oms.manager import OrderManager, OrderSnapshot
from polyoms.oms.risk import BookQuote, MarketRules, RiskLimits
from polyoms.oms.state import OrderRecord, OrderState
from polyoms.ops import history as hist
from polyoms.ops import schema as api
from polyoms.ops.logs import bind_order
from polyoms.polymarket.client.catalog import MarketCatalog, MarketInfo
from polyoms.polymarket.client.clob import ClobClient
from polyoms.polymarket.client.gamma import GammaClient
from polyoms.polymarket.client.redact import redact
from polyoms.polymarket.client.ws_market import MarketStream
from polyoms.polymarket.protocol.amounts import MIN_MARKETABLE_BUY, SIZE_QUANTUM, check_quantity, implied_price

log = logging.getLogger(__name__)
MIN_ID_PREFIX: Final = 4
"""Characters (after "0x") an id prefix needs: fewer would match nearly anything."""
TOKEN_ID_MAX_DIGITS: Final = 78
"""A token id is a uint256 in decimal: at most 78 digits (2^256 - 1 has 78)."""


PARENT_MIN_SIZE: Final = 5 * MICRO
"""The minimum order size parent orders assume where the catalog does not know a market's."""


def instrument_of(info: MarketInfo, token_id: str, *, unknown_min_size: Micro = PARENT_MIN_SIZE) -> Instrument:
    """The port's instrument for one of `info`'s tokens, whose tick must be known (the desk's orders and
    the parents' children both trade through it). `unknown_min_size`: the minimum assumed when the
    catalog does not know the market's."""
    assert info.tick is not None
    return Instrument(
        token_id=token_id,
        tick=info.tick,
        market=info.condition_id,
        complement=info.other_token(token_id) or "",
        neg_risk=bool(info.neg_risk),
        min_size=info.min_order_size if info.min_order_size is not None else unknown_min_size,
        fee_rate_bps=0 if info.fees_enabled is False else None,
    )


class AmbiguousIdError(InputError):
    """An id prefix that matches more than one order or parent order."""


def check_token_id(text: str) -> str:
    """The decimal uint256 a Polymarket token id is, checked before it is logged or sent anywhere
    (an error shows only its start)."""
    token = text.strip()
    if not (token and len(token) <= TOKEN_ID_MAX_DIGITS and token.isascii() and token.isdigit()):
        shown = repr(token[:24]) + (f"... ({len(token)} characters)" if len(token) > 24 else "")
        raise InputError(
            f"token id must be the decimal outcome token id (up to {TOKEN_ID_MAX_DIGITS} digits 0-9, see "
            f"`polyoms markets search`), got {shown}",
            field="token_id",
        )
    if int(token) >= 2**256:
        raise InputError(f"token id {token[:24]}... is larger than a uint256", field="token_id")
    return token


def check_request(req: api.OrderBody) -> None:
    """What every order request must be before anything else looks at it (the control API's and the
    CLI's one gate): plain decimals for every number, an expiration only on a GTD order, a bounded wait."""
    for text, what in ((req.price, "price"), (req.size, "size"), (req.amount, "amount")):
        if text is not None:
            plain_micro(text, what)
    if req.kelly is not None:
        for text, what in (
            (req.kelly.prob, "kelly probability"),
            (req.kelly.fraction, "kelly fraction"),
            (req.kelly.bankroll, "kelly bankroll"),
        ):
            if text is not None:
                plain_micro(text, what)
    if req.expiration < 0:
        raise InvalidExpirationError("expiration must be unix seconds (or 0)", field="expiration")
    if req.expiration and (req.order_type or "").strip().upper() != "GTD":
        raise InvalidExpirationError(
            f"an expiration is for GTD orders only (add --order-type GTD), got expiration {req.expiration} on a "
            f"{(req.order_type or ('GTC' if req.kind.strip().lower() == 'limit' else 'FOK')).upper()} order",
            field="expiration",
        )
    if not 0 <= req.wait_ms <= api.MAX_WAIT_MS:
        raise InputError(f"wait_ms must be within [0, {api.MAX_WAIT_MS}], got {req.wait_ms}", field="wait_ms")
    check_token_id(req.token_id)


def settled(o: OrderRecord) -> bool:
    """The venue has answered the order and the fills its answer announced are in (what `wait_ms` waits for)."""
    if o.state in (OrderState.SUBMITTING, OrderState.UNKNOWN) or o.awaiting_fills or o.pending_trades:
        return False
    # Matched on arrival (a resting order's "ack matched"): wait for its first fill on the user stream.
    matched_on_arrival = any(h.reason.strip().lower() == "ack matched" for h in o.history)
    return o.state.is_terminal or o.filled > 0 or not matched_on_arrival


_OUTCOMES: Final = {
    "REJECTED": "refused",
    "FILLED": "filled",
    "LIVE": "resting",
    "PARTIALLY_FILLED": "resting",
    "CANCELLED": "cancelled",
    "EXPIRED": "expired",
}


def outcome_of(view: api.OrderView) -> str:
    return _OUTCOMES.get(view.state, "pending")


class OrderSource(Protocol):
    """Anything that places orders by itself: parent orders, later strategies. Cancel-all and the kill
    switch stop every source before they cancel the orders (a source left running places new ones)."""

    async def cancel_all(self) -> int:
        """Stop everything the source runs (it cancels its own orders); how many things were stopped."""
        ...


class ParentPort(OrderSource, Protocol):
    """What the desk needs of the execution algorithms (`algos.parents.ParentManager`, adapted)."""

    async def start(self, req: api.OrderBody, side: Side, market: MarketInfo, size: Micro) -> str: ...

    def status(self, parent_id: str) -> api.ParentView: ...

    def list(self) -> list[api.ParentView]: ...

    def known(self, parent_id: str) -> bool: ...

    async def cancel(self, parent_id: str) -> None: ...

    async def close(self) -> None: ...


@dataclass
class Desk:
    engine: Engine
    manager: OrderManager
    catalog: MarketCatalog
    public: ClobClient
    """Public market data (REST books for market-order prices)."""
    limits: RiskLimits = field(default_factory=RiskLimits)
    market_stream: MarketStream | None = None
    gamma: GammaClient | None = None
    parents: ParentPort | None = None
    kelly: Callable[[str, str, Micro, Micro, Side], Micro] | None = None
    """(probability, fraction, price µ, bankroll µ, side) -> shares µ: the algos package's Kelly sizing."""
    metrics_render: Callable[[], bytes] | None = None
    risk_markets: dict[str, MarketRules] = field(default_factory=dict)
    """Condition id -> what the pre-trade risk knows of the market (shared with the engine's RiskConfig)."""
    on_shutdown: Callable[[], None] | None = None
    order_sources: list[OrderSource] = field(default_factory=list)
    """Order sources besides `parents` (strategies register here); see `stop_sources`."""
    _watching: asyncio.Task[None] | None = field(default=None, repr=False)
    """A subscription started by `mark` for a held token's book (one at a time)."""
    _spend_plans: dict[str, tuple[Micro, Micro]] = field(default_factory=dict, repr=False)
    """Market BUY order id -> (pUSD asked for, taker fee set aside), from its pricing to its answer."""

    # --- markets ------------------------------------------------------------------------------------

    async def market_of(self, token_id: str) -> MarketInfo:
        token = check_token_id(token_id)
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
        self.risk_markets[info.condition_id] = MarketRules(
            condition_id=info.condition_id,
            token_ids=tuple(info.token_ids),
            accepting_orders=info.accepting_orders is not False,
            active=info.active is not False,
            closed=bool(info.closed),
            fee_rate_bps=fee_bps,
        )

    def quote(self, token_id: str) -> BookQuote | None:
        """Best prices from the market stream's mirror, only while it is trusted (risk fails closed)."""
        s = self.market_stream
        if s is None or not s.is_trusted(token_id):
            return None
        book = s.book(token_id)
        if book is None:
            return None
        return BookQuote(book.best_bid(), book.best_ask())

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
        if self.gamma is not None:
            found = await self.gamma.search(words)
            markets = [m for e in found.events for m in e.markets]
            self.catalog.add_gamma(markets)
            infos = [i for m in markets if (i := self.catalog.by_condition(m.condition_id)) is not None]
            source = "gamma"
        else:
            await self.catalog.ensure_fresh()
            infos = self.catalog.search(words)
            source = "catalog"
        shown = infos[:limit]
        quotes = await self._quotes([t for i in shown for t in i.token_ids])
        return api.MarketList([self._market_view(i, quotes) for i in shown], source)

    async def _quotes(self, tokens: list[str]) -> dict[str, tuple[str | None, str | None]]:
        """Best bid and ask of each token: the market stream's trusted mirror, else one REST /books round
        for the rest (if that fails, their prices are unknown: a search still answers)."""
        out: dict[str, tuple[str | None, str | None]] = {}
        missing = []
        for t in tokens:
            q = self.quote(t)
            if q is None:
                missing.append(t)
            else:
                out[t] = (_opt_fmt(q.best_bid), _opt_fmt(q.best_ask))
        if missing:
            try:
                for b in await self.public.books(missing):  # best level last (doc §4.3)
                    out[b.asset_id] = (
                        _opt_fmt(b.bids[-1][0] if b.bids else None),
                        _opt_fmt(b.asks[-1][0] if b.asks else None),
                    )
            except PolyomsError as exc:
                log.info("markets search: books unavailable: %s", exc)
        return out

    def _market_view(self, i: MarketInfo, quotes: Mapping[str, tuple[str | None, str | None]]) -> api.MarketView:
        tops = [quotes.get(t, (None, None)) for t in i.token_ids]
        bid, ask = tops[0] if tops else (None, None)
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
            bids=[b for b, _ in tops],
            asks=[a for _, a in tops],
        )

    # --- orders -------------------------------------------------------------------------------------

    def _admission(self) -> None:
        errors = self.engine.admission_errors()
        if errors:
            raise errors[0]

    async def add_order(self, req: api.OrderBody) -> api.OrderAccepted:
        """Place one order or start a parent; with `req.wait_ms`, answer once the venue has (the outcome,
        fills and fees in `order`, a refusal's typed reason in `order.error`), or the wait is over."""
        check_request(req)
        if req.algo is not None:
            name = req.algo.strip().lower()
            req = msgspec.structs.replace(req, algo=algo_name(name))  # answers say the registered name
        acc = await self._place(req)
        if acc.kelly_size is not None:
            capped = req.size is not None and to_micro(acc.kelly_size, "size") > to_micro(req.size, "size")
            kelly = (
                f"Kelly sized {acc.kelly_size} shares, capped at --size {req.size}"
                if capped
                else f"Kelly sized {acc.kelly_size} shares"
                + ("" if req.size is None else f" (within the --size cap {req.size})")
            )
            acc = msgspec.structs.replace(acc, note=f"{kelly}; {acc.note}" if acc.note else kelly)
        if acc.order_id is None or req.wait_ms <= 0:
            return acc
        view = await self._await_outcome(acc.order_id, req.wait_ms)
        return msgspec.structs.replace(acc, order=view, outcome=outcome_of(view))

    async def _await_outcome(self, order_id: str, wait_ms: int, poll_s: float = 0.02) -> api.OrderView:
        """The order once the venue's answer (and the fills it announced) are in, or when `wait_ms` is over."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait_ms / 1000
        orders = self.engine.state.orders
        while not settled(orders[order_id]) and loop.time() < deadline:
            await asyncio.sleep(poll_s)
        return order_view(self.manager.status(order_id), orders.get(order_id), full=True, info=self._info(order_id))

    def _info(self, order_id: str) -> MarketInfo | None:
        o = self.engine.state.orders.get(order_id)
        return None if o is None else self.catalog.by_token(o.token_id)

    async def _place(self, req: api.OrderBody) -> api.OrderAccepted:
        side = Side.parse(req.side)
        kind = req.kind.strip().lower()
        if kind not in ("limit", "market"):
            raise InputError(f"kind must be limit or market, got {req.kind!r}", field="kind")
        if req.algo is not None:
            requested(req.algo)  # one the control API can start, or InputError listing them
        if req.expiration < 0:
            raise InputError("expiration must be unix seconds (or 0)", field="expiration")
        info = await self.market_of(req.token_id)
        if info.accepting_orders is False or info.closed:
            raise MarketNotReadyError("the market is not accepting orders", market=info.condition_id)
        if info.tick is None:
            raise MarketNotReadyError("the market's tick size is not known yet", market=info.condition_id)
        self._admission()
        size, kelly_size = req.size, None
        if req.kelly is not None:
            # --size, when given too, caps what Kelly sizes (it never grows the order past it).
            kelly = await self._kelly_size(req, side)
            kelly_size = fmt_micro(kelly)
            size = kelly_size if req.size is None else fmt_micro(min(kelly, to_micro(req.size, "size")))
        if req.algo is not None:
            started = await self._add_parent(req, side, info, size)
            return msgspec.structs.replace(started, kelly_size=kelly_size)
        if kind == "limit":
            order, notional = self._limit(req, side, info, size)
        else:
            order, notional = await self._market(req, side, info, size)
        is_dollar = order.notional
        if notional > self.limits.confirm_above and not req.confirm:
            raise ConfirmationRequiredError(
                f"order notional {fmt_micro(notional)} pUSD is above {fmt_micro(self.limits.confirm_above)}: "
                "confirm it (--yes)",
                rule="confirmation",
            )
        await self.watch_books(info)
        order_id = await self.manager.submit(order, market=info.condition_id)
        shares = order.size
        price = order_price(order.side, order.maker_amount, order.taker_amount, info.tick)
        max_spend, fee_estimate, spend_note = self._spend_note(order) if is_dollar else (None, None, "")
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
            token_id=order.token_id,
            price=fmt_micro(price),
            # A market BUY is sized in pUSD (its shares depend on the prices it fills at), as in order views.
            size=None if is_dollar else fmt_micro(shares),
            amount=fmt_micro(order.maker_amount) if is_dollar else None,
            order_type=order.order_type.value,
            kelly_size=kelly_size,
            max_spend=max_spend,
            fee_estimate=fee_estimate,
            note=spend_note,
        )

    def _limit(self, req: api.OrderBody, side: Side, info: MarketInfo, size: str | None) -> tuple[PreparedOrder, Micro]:
        if req.price is None:
            raise InputError("a limit order needs a price (--price)", field="price")
        if size is None:
            raise InputError("a limit order needs a size in shares (--size)", field="size")
        if req.amount is not None:
            raise InputError("--amount (pUSD) is for market BUY orders; a limit order takes --size", field="amount")
        otype = OrderType.parse(req.order_type or "GTC")
        if otype is OrderType.GTD and req.expiration <= 0:
            raise InputError("a GTD order needs --expiration (unix seconds)", field="expiration")
        request = OrderRequest(
            token_id=req.token_id,
            side=side,
            price=to_micro(req.price, "price"),
            size=to_micro(size, "size"),
            order_type=otype,
            expiration=self._order_end(req.expiration) if otype is OrderType.GTD else 0,
            post_only=req.post_only,
        )
        # An unknown minimum size is left to the venue to judge (no default is assumed here).
        order = self.manager.prepare(request, instrument_of(info, req.token_id, unknown_min_size=0))
        return order, _ceil_div(order.size * order.price, MICRO)

    def _order_end(self, expiration: int) -> int:
        """When a GTD order whose `--expiration` is `expiration` ends: the operator gives the expiration
        to sign, as the venue's own tools do; a venue that ends orders a lead earlier says so."""
        return expiration - self.engine.venue.expiry_lead_s

    def _spend_note(self, order: PreparedOrder) -> tuple[str | None, str | None, str]:
        """(max_spend, fee_estimate, note) of a market BUY's answer (`_market` planned them)."""
        plan = self._spend_plans.pop(order.key, None)
        if plan is None:
            return None, None, ""
        budget, fee = plan
        note = (
            f"spends at most {fmt_micro(budget)} pUSD, taker fee included: {fmt_micro(order.maker_amount)} "
            f"on shares + up to {fmt_micro(fee)} fee"
        )
        return fmt_micro(budget), fmt_micro(fee), note

    async def _market(
        self, req: api.OrderBody, side: Side, info: MarketInfo, size: str | None
    ) -> tuple[PreparedOrder, Micro]:
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
        budget, fee = amount, 0
        book = None
        if side is Side.BUY:
            # --amount is what the BUY spends, taker fee included: the order is sized to the pUSD left
            # for shares once the fee those shares cost is set aside (fees come on top at the venue).
            curve = _fee_curve(info)
            if curve is None or curve[0]:
                book = await self.public.book(req.token_id)
                cap = None if req.price is None else to_micro(req.price, "price")
                amount, fee = buy_budget(book, budget, curve, cap)
                if amount < MIN_MARKETABLE_BUY:
                    raise BelowMinimumSizeError(
                        f"--amount {fmt_micro(budget)} leaves {fmt_micro(amount)} pUSD for shares after the taker "
                        f"fee ({fmt_micro(fee)}): below the venue's minimum of 1 pUSD for a market BUY",
                        amount=fmt_micro(budget),
                    )
        if req.price is not None:
            worst = to_micro(req.price, "price")
        else:
            if book is None:
                book = await self.public.book(req.token_id)
            worst = market_price(book, side, amount, otype)
        # A BUY spends `amount` pUSD; a SELL sells `amount` shares (signed as a FOK/FAK limit order).
        request = (
            OrderRequest(token_id=req.token_id, side=side, price=worst, amount=amount, order_type=otype)
            if side is Side.BUY
            else OrderRequest(token_id=req.token_id, side=side, price=worst, size=amount, order_type=otype)
        )
        order = self.manager.prepare(request, instrument_of(info, req.token_id, unknown_min_size=0))
        if side is Side.BUY:
            if len(self._spend_plans) > 64:  # entries of orders that were then refused
                self._spend_plans.clear()
            self._spend_plans[order.key] = (budget, fee)
            return order, order.maker_amount
        return order, order.size * order.price // MICRO

    async def _kelly_size(self, req: api.OrderBody, side: Side) -> Micro:
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
        self, req: api.OrderBody, side: Side, info: MarketInfo, size: str | None
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
            outcome="started",
        )

    def order_status(self, order_id: str) -> api.OrderView | api.ParentView:
        oid = self.resolve_id(order_id)
        if self.parents is not None and self.parents.known(oid):
            return self.parents.status(oid)
        try:
            return order_view(
                self.manager.status(oid), self.engine.state.orders.get(oid), full=True, info=self._info(oid)
            )
        except UnknownOrderError:
            raise UnknownOrderError(f"unknown order {oid}", order_id=oid) from None

    def list_orders(self, *, open_only: bool = False) -> api.OrderList:
        statuses = self.manager.list(open_only=open_only)
        orders = self.engine.state.orders
        return api.OrderList(
            [order_view(s, orders.get(s.order_id), full=False, info=self._info(s.order_id)) for s in statuses]
        )

    def resolve_id(self, text: str) -> str:
        """An order id (0x…) or parent id, given whole or by a unique prefix of at least
        MIN_ID_PREFIX characters (case-insensitive; "0x" optional for an order id). UnknownOrderError
        for none, AmbiguousIdError (listing the matches) for several."""
        oid = text.strip()
        orders = self.engine.state.orders
        parents = [] if self.parents is None else [p.parent_id for p in self.parents.list()]
        if oid in orders or oid in parents:
            return oid
        shown = oid if len(oid) <= 80 else f"{oid[:80]}... ({len(oid)} characters)"
        key = oid.lower()
        if len(key.removeprefix("0x")) < MIN_ID_PREFIX:
            raise UnknownOrderError(f"unknown order {shown} (an id prefix needs {MIN_ID_PREFIX}+ characters)")
        hexkey = key if key.startswith("0x") else "0x" + key
        matches = [i for i in orders if i.lower().startswith(hexkey)]
        matches += [p for p in parents if p.lower().startswith(key)]
        if not matches:
            raise UnknownOrderError(f"unknown order {shown}", order_id=shown)
        if len(matches) > 1:
            listed = ", ".join(sorted(matches)[:10]) + (f" and {len(matches) - 10} more" if len(matches) > 10 else "")
            raise AmbiguousIdError(f"{shown} matches {len(matches)} orders: {listed}; give more of the id")
        return matches[0]

    async def cancel(self, order_id: str) -> api.CancelResult:
        oid = self.resolve_id(order_id)
        if self.parents is not None and self.parents.known(oid):
            view = self.parents.status(oid)
            if view.done:
                return api.CancelResult([], f"parent order is already {view.state}: nothing to cancel")
            children = [c for c in view.children if not self._done(c)]
            await self.parents.cancel(oid)  # it stops placing and cancels its children itself
            return api.CancelResult([oid, *children], "parent order cancelled (and its open children)", 1)
        st = self.manager.status(oid)  # UnknownOrderError for an id never seen
        if st.done:
            return api.CancelResult([], f"order is already {st.state.value}: nothing to cancel")
        await self.manager.cancel(oid)
        return api.CancelResult([oid])

    def _done(self, order_id: str) -> bool:
        try:
            return self.manager.status(order_id).done
        except UnknownOrderError:
            return True

    def sources(self) -> list[OrderSource]:
        return ([] if self.parents is None else [self.parents]) + self.order_sources

    async def stop_sources(self) -> tuple[int, list[str]]:
        """Stop every order source (so none places another order): how many things they stopped, and
        what failed. A failing source never keeps the others, nor the cancels that follow, from running."""
        stopped, failed = 0, []
        for src in self.sources():
            try:
                stopped += await src.cancel_all()
            except Exception as exc:
                log.exception("stopping the order source %s failed", type(src).__name__)
                failed.append(redact(f"{type(src).__name__}: {exc}"))
        return stopped, failed

    async def cancel_all(self, actor: str = "operator") -> api.CancelResult:
        """Cancel everything: the order sources first (parents, strategies), then every open order.
        Admission stays open (the kill switch is `emergency_stop`)."""
        stopped, failed = await self.stop_sources()
        ids = [s.order_id for s in self.manager.list(open_only=True)]
        await self.manager.cancel_all(actor=actor)
        note = f"cancel all sent to the venue; {stopped} parent order(s) stopped"
        if failed:
            note += "; could not stop: " + "; ".join(failed)
        return api.CancelResult(ids, note, stopped)

    def list_parents(self) -> api.ParentList:
        return api.ParentList([] if self.parents is None else self.parents.list())

    # --- positions, metrics, admission ---------------------------------------------------------------

    def mark(self, token_id: str) -> Micro | None:
        """The mark-to-market price of a token: the mid of its trusted book (None without a two-sided one).
        The one source of marks for `positions`, history, PnL and the unrealized-PnL metric."""
        q = self.quote(token_id)
        if q is None:
            self._watch(token_id)
            return None
        return mid_mark(q.best_bid, q.best_ask)

    def _watch(self, token_id: str) -> None:
        """Mirror the book of a token asked to be marked that nobody subscribed (a position from a balance
        snapshot, or recovered after a restart): its mark appears once the snapshot arrives."""
        s = self.market_stream
        if s is None or token_id in s.subscribed or (self._watching is not None and not self._watching.done()):
            return
        info = self.catalog.by_token(token_id)
        tokens = list(info.token_ids) if info is not None else [token_id]

        async def subscribe() -> None:
            try:
                await s.subscribe(tokens)
            except Exception as exc:  # a closing stream: the mark stays unknown, nothing else depends on it
                log.warning("could not subscribe to the book of %s for its mark: %s", token_id, exc)

        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # a synchronous caller: no mark this time
            return
        self._watching = loop.create_task(subscribe())

    def positions(self) -> api.PositionsView:
        wallet = self.engine.venue.wallet
        lg = self.engine.state.ledger(wallet)
        rows = []
        unrealized = value = liquidation = 0
        equity = lg.cash
        unmarked: list[str] = []
        for token, p in sorted(lg.positions.items()):
            if not (p.confirmed or p.prov_in or p.prov_out or p.reserved or p.realized):
                continue
            info = self.catalog.by_token(token)
            avg = p.avg_price()
            q = self.quote(token)
            mark = None if q is None else mid_mark(q.best_bid, q.best_ask)
            liq = None if q is None else p.liquidation_mark(q.best_bid, q.best_ask)
            if mark is not None:
                unrealized += p.unrealized(mark)
                value += p.value(mark)
                equity += p.value(mark)
            elif p.confirmed:
                unmarked.append(token)
                equity += p.cost
            if liq is not None:
                liquidation += p.value(liq)
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
                    mark=_fmt(mark),
                    market_value=None if mark is None else fmt_micro(p.value(mark)),
                    unrealized=None if mark is None else fmt_micro(p.unrealized(mark)),
                    liquidation_price=_fmt(liq),
                    liquidation_value=None if liq is None else fmt_micro(p.value(liq)),
                    liquidation_pnl=None if liq is None else fmt_micro(p.unrealized(liq)),
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
            unrealized=fmt_micro(unrealized),
            market_value=fmt_micro(value),
            liquidation_value=fmt_micro(liquidation),
            equity=fmt_micro(equity),
            unmarked=unmarked,
        )

    def _marks(self, tokens: Iterable[str]) -> dict[str, Micro]:
        return {t: m for t in tokens if (m := self.mark(t)) is not None}

    def _complements(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for info in self.catalog:
            for t in info.token_ids:
                other = info.other_token(t)
                if other is not None:
                    out[t] = other
        return out

    def history(self, *, market: str | None = None, limit: int | None = None) -> api.HistoryView:
        """The wallet's fills (oldest first) with fees and tiers, and PnL per market (`ops.history`)."""
        if limit is not None and not 1 <= limit <= 100_000:
            raise InputError(f"limit must be within [1, 100000], got {limit}", field="limit")
        wallet = self.engine.venue.wallet
        st = self.engine.state
        lg = st.ledger(wallet)
        wanted = None if market is None else market.strip().lower()

        def market_of(token: str) -> str:
            info = self.catalog.by_token(token)
            return self.engine.markets.get(token) or (info.condition_id if info else "")

        fills = sorted((f for f in st.fills.values() if f.wallet == wallet), key=lambda f: (hist.fill_time(f), f.no))
        positions = list(lg.positions.values())
        if wanted is not None:
            fills = [f for f in fills if (f.market or market_of(f.token_id)).lower() == wanted]
            positions = [p for p in positions if (p.market or market_of(p.token_id)).lower() == wanted]
        totals = hist.market_pnl(positions, fills, self._marks(p.token_id for p in positions), market_of)
        shown = fills if limit is None else fills[-limit:]
        rows = []
        for f in shown:
            info = self.catalog.by_token(f.token_id)
            rows.append(
                api.HistoryFill(
                    time_ms=hist.fill_time(f),
                    trade_id=f.trade_id,
                    order_id=f.order_id,
                    market=f.market or market_of(f.token_id),
                    outcome=(info.outcome_of(f.token_id) or "") if info else "",
                    token_id=f.token_id,
                    side=f.side.name,
                    role=f.role.value,
                    price=fmt_micro(f.price),
                    size=fmt_micro(f.size),
                    cash=fmt_micro(f.cash),
                    fee=fmt_micro(f.fee),
                    cash_delta=fmt_micro(f.cash_delta),
                    status=f.status.value,
                    tier=f.tier.value,
                )
            )
        markets = [
            api.MarketPnl(
                market=t.market,
                fills=t.fills,
                bought=fmt_micro(t.bought),
                sold=fmt_micro(t.sold),
                buy_cash=fmt_micro(t.buy_cash),
                sell_cash=fmt_micro(t.sell_cash),
                fees=fmt_micro(t.fees),
                realized=fmt_micro(t.realized),
                position=fmt_micro(t.position),
                cost=fmt_micro(t.cost),
                unrealized=_fmt(t.unrealized),
                provisional=t.provisional,
                voided=t.voided,
            )
            for t in totals
        ]
        return api.HistoryView(
            wallet=wallet,
            fills=rows,
            markets=markets,
            realized=fmt_micro(sum(t.realized for t in totals)),
            fees=fmt_micro(sum(t.fees for t in totals)),
            truncated=len(fills) - len(shown),
        )

    async def pnl(self, *, max_points: int = 1000) -> api.PnlView:
        """The equity curve of the wallet, replayed from the journal (`ops.history`), plus a point for now."""
        if not 2 <= max_points <= 100_000:
            raise InputError(f"max_points must be within [2, 100000], got {max_points}", field="max_points")
        wallet = self.engine.venue.wallet
        journal = self.engine.state.journal
        points: list[hist.EquityPoint] = []
        replay_marks: dict[str, Micro] = {}
        if journal is not None:
            path, complements = journal.path, self._complements()
            # A private replay of what is committed, on a worker thread: its own connection and OmsState,
            # nothing shared with the engine (a batch not committed yet is in the live "now" point).
            tracker = await asyncio.to_thread(lambda: hist.equity_curve(hist.journal_rows(path), wallet, complements))
            points, replay_marks = tracker.points, tracker.marks
        lg = self.engine.state.ledger(wallet)
        marks = {**replay_marks, **self._marks(lg.positions)}
        points.append(hist.now_point(self.engine.clock.now_ms(), lg, marks))
        shown, thinned = hist.thin(points, max_points)
        start, end = shown[0].equity, shown[-1].equity
        return api.PnlView(
            wallet=wallet,
            points=[
                api.EquityPointView(
                    ts_ms=x.ts_ms,
                    cash=fmt_micro(x.cash),
                    value=fmt_micro(x.value),
                    equity=fmt_micro(x.equity),
                    realized=fmt_micro(x.realized),
                    unrealized=fmt_micro(x.unrealized),
                    cause=x.cause,
                )
                for x in shown
            ],
            method=hist.METHOD,
            start_equity=fmt_micro(start),
            end_equity=fmt_micro(end),
            change=fmt_micro(end - start),
            thinned=thinned,
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
        # Redacted before it is cut: a truncated secret no longer matches the redactor's patterns.
        why = redact(reason)
        log.warning("emergency stop (%s): admission closed, cancelling %d open orders", why[:200], open_count)
        parents, failed = await self.stop_sources()
        await self.manager.cancel_all(actor=f"operator:emergency:{why}"[:64])
        note = "kill switch on; `polyoms resume` reopens admission"
        if failed:
            note += "; could not stop: " + "; ".join(failed)
        return api.StopResult("closed", open_count, parents, note)

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


def _opt_fmt(micro: Micro | None) -> str | None:
    return None if micro is None else fmt_micro(micro)


def error_view(exc: PolyomsError) -> api.ErrorView:
    return api.ErrorView(type(exc).__name__, str(exc), exc.source)


def order_view(
    s: OrderSnapshot, record: OrderRecord | None, *, full: bool, info: MarketInfo | None = None
) -> api.OrderView:
    """One order as every view shows it. Price: `order_price` (the worst it can trade at, on the grid).
    A market BUY sized by amount counts in pUSD, as the venue reports it: `size` is the pUSD it may spend
    on shares and `filled` what it spent (never above `size`; its share count, which depends on the
    prices it got and may exceed the shares at the worst price, is `filled_shares`)."""
    dollar = record is not None and record.notional
    price = s.price
    if record is not None and record.maker_amount and record.taker_amount:
        price = order_price(record.side, record.maker_amount, record.taker_amount, info.tick if info else None)
    if dollar:
        assert record is not None
        size, filled = record.maker_amount, record.filled_cash
    else:
        size, filled = s.size, s.filled
    cash = record.filled_cash if record is not None else sum(f.cash for f in s.fills)
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
        price=fmt_micro(price),
        size=fmt_micro(size),
        filled=fmt_micro(filled),
        post_only=record.post_only if record else False,
        pending_cancel=s.pending_cancel,
        created_ms=record.created_ms if record else 0,
        actor=record.actor if record else "",
        error=None if s.error is None else error_view(s.error),
        history=history,
        fills=fills,
        size_unit="pUSD" if dollar else "shares",
        filled_shares=fmt_micro(s.filled),
        avg_price=_fmt(avg_price(cash, s.filled)),
        fees=fmt_micro(record.fees if record else sum(f.fee for f in s.fills)),
        outcome="" if info is None else info.outcome_of(s.token_id) or "",
        question="" if info is None else info.question or info.slug,
    )


def avg_price(cash: Micro, shares: Micro) -> Micro | None:
    """Average price of fills: their pUSD / their shares, half to even at a micro (the ledger's rule)."""
    return None if shares <= 0 else div_round(cash * MICRO, shares)


def order_price(side: Side, maker_amount: Micro, taker_amount: Micro, tick: TickSize | None) -> Micro:
    """The price an order is shown at, in every view: the worst price it can trade at. That is its exact
    limit (maker/taker amounts) moved onto the tick grid, where every book price lies — down for a BUY,
    up for a SELL —, so a market BUY whose share count was rounded down shows the price it was priced
    at (0.76), not 0.760005 or 0.760006. At a micro when the tick is not known; 0 without amounts."""
    num, den = implied_price(side, maker_amount, taker_amount)
    if not den or not num:
        return 0
    if side is Side.BUY:
        p = num * MICRO // den
        return tick.round_down(p) if tick is not None else p
    p = -(-num * MICRO // den)
    return tick.round_up(p) if tick is not None else p


FeeCurve = tuple[Fraction, int]
"""A market's taker fee curve (rate r, exponent e): fee = shares × r × (p(1 − p))^e."""


def _fee_curve(info: MarketInfo) -> FeeCurve | None:
    """The market's taker fee curve; (0, 1) when it has no fee; None when that is not known."""
    if info.fees_enabled is False:
        return Fraction(0), 1
    if info.fee is None:
        return None
    return Fraction(info.fee.rate), int(info.fee.exponent)


_CENT: Final = SIZE_QUANTUM
_UNKNOWN_FEE: Final = Fraction(UNKNOWN_RATE_BOUND_BPS, 10_000)


def buy_fee_bound(book: BookSnapshot, cash: Micro, curve: FeeCurve | None, cap: Micro | None = None) -> Fraction:
    """An upper bound of the taker fee a market BUY spending `cash` pUSD owes, walking `book`'s asks from
    the best (up to the limit `cap`), per level as the venue charges it (doc §7.3): shares × r ×
    (p(1 − p))^e. Cash beyond the visible asks is charged at the best ask's rate (the most per pUSD of any
    level seen: r(1 − p) falls as p rises). Unknown curve: `core.fees.UNKNOWN_RATE_BOUND_BPS` of the cash."""
    levels = [(p, n) for p, n in reversed(book.asks) if cap is None or p <= cap]
    fee = Fraction(0)
    rest = cash

    def at(price: Micro, c: Micro) -> Fraction:
        if curve is None:
            return c * _UNKNOWN_FEE
        rate, e = curve
        return fee_fraction(rate, e, 1, price) * Fraction(c * MICRO, price)  # linear in the shares

    for price, size in levels:
        if rest <= 0:
            break
        c = min(rest, -(-size * price // MICRO))
        fee += at(price, c)
        rest -= c
    if rest > 0:
        fee += at(levels[0][0] if levels else (cap or MICRO // 2), rest)
    return fee


def buy_budget(
    book: BookSnapshot, budget: Micro, curve: FeeCurve | None, cap: Micro | None = None
) -> tuple[Micro, Micro]:
    """(pUSD for shares, fee set aside) of a market BUY that spends at most `budget`, fee included: the
    largest whole-cent amount X with X + ⌈fee bound of X⌉ ≤ budget (`buy_fee_bound`). The venue floors
    fees to 5 decimals and charges the fill's own shares (at most cash / price), so its fee never exceeds
    the bound while the book holds; a better ask arriving meanwhile buys more shares, for a fee at most
    a fraction of a percent of the price gained."""
    check_quantity(budget, "amount", side="BUY")

    def fee_of(x: Micro) -> Micro:
        f = buy_fee_bound(book, x, curve, cap)
        return -(-f.numerator // f.denominator)

    lo, hi = 0, budget // _CENT  # lo always fits (no spend, no fee)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if mid * _CENT + fee_of(mid * _CENT) <= budget:
            lo = mid
        else:
            hi = mid - 1
    return lo * _CENT, fee_of(lo * _CENT)


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


def _fmt(micro: Micro | None) -> str | None:
    return None if micro is None else fmt_micro(micro)
