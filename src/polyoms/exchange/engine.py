"""The local exchange in-process: submit, cancel, expire, settle, resolve and query, on an injected clock.

`Exchange` owns the books, the ledger and every order and trade record; the REST/WS server and the
in-process venue adapter sit on top of it. It is single-threaded by design (one writer, doc
principle 5). Time is read only from the injected `Clock`.

Timers — GTD expiry and the settlement of trades (MATCHED → MINED → CONFIRMED, see `settlement`) —
run when the owner calls `advance(now)` (or `expire(now)`, the older hook, which now does the same)
and at the start of every submit, cancel and admin change, so that an operation always sees the state
as of its own time.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from polyoms.core.clock import Clock
from polyoms.core.enums import OrderType, Side
from polyoms.core.errors import (
    ConfigError,
    DuplicateOrderError,
    InputError,
    InvalidOrderError,
    MarketNotReadyError,
    NotFoundError,
)
from polyoms.core.units import MICRO, TickSize, tick_size
from polyoms.exchange import messages as msg
from polyoms.exchange.accounts import FEE_COLLECTOR, Account, Balances, Ledger
from polyoms.exchange.book import BookView, MatchingBook
from polyoms.exchange.events import (
    CANCELLATION,
    PLACEMENT,
    UPDATE,
    ExchangeOrderEvent,
    ExchangeTradeEvent,
    Listener,
    MarketResolvedEvent,
    NewMarketEvent,
    TickSizeChangeEvent,
)
from polyoms.exchange.incentives import Incentives
from polyoms.exchange.markets import MarketSpec, check_unique, default_markets
from polyoms.exchange.matching import Matcher, new_order
from polyoms.exchange.orders import EngineOrder, Order
from polyoms.exchange.settlement import Settlement, SettlementConfig
from polyoms.exchange.trades import Trade, TradeIds
from polyoms.polymarket.protocol import errors as venue_errors
from polyoms.polymarket.protocol.constants import GTD_SECURITY_THRESHOLD_S

if TYPE_CHECKING:
    from polyoms.exchange.history import HistoryArchive

__all__ = [
    "EngineOrder",
    "Exchange",
    "ExchangeCancelResult",
    "Resolution",
    "SettlementConfig",
    "SubmitResult",
    "Timer",
    "TradeHook",
]

_GTD = OrderType.GTD
_BUY = Side.BUY
_NO_TRADES: tuple[Trade, ...] = ()
_NO_IDS: tuple[str, ...] = ()


class Timer(Protocol):
    """Something the exchange runs when its time comes (rewards sampling, daily payouts, archiving).

    `next_ms` is when it next wants to run; the exchange calls `run(now)` from `advance` and before
    any operation once that time has come, so the timer sees the state as of its own time."""

    @property
    def next_ms(self) -> int: ...

    def run(self, now_ms: int) -> None: ...


TradeHook = Callable[[Sequence[Trade], int], None]
"""Called with the trades one submission matched, and the time (rebate accounting, archives...)."""


@dataclass(slots=True)
class SubmitResult:
    """What POST /order answers. Amounts are micro-units; for a BUY `making_amount` is pUSD paid
    and `taking_amount` shares received, for a SELL the other way round (fees not included)."""

    status: str
    order_id: str
    making_amount: int = 0
    taking_amount: int = 0
    fee: int = 0
    trade_ids: tuple[str, ...] = _NO_IDS
    trades: tuple[Trade, ...] = _NO_TRADES


@dataclass(slots=True)
class ExchangeCancelResult:
    canceled: list[str] = field(default_factory=list)
    not_canceled: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Resolution:
    """What resolving a market did. Amounts in micro-units."""

    condition_id: str
    winning_token_id: str
    winning_outcome: str
    resolved_at_ms: int
    canceled: tuple[str, ...]
    """Orders cancelled (reason `messages.REASON_MARKET_RESOLVED`)."""
    payouts: Mapping[str, int]
    """pUSD paid to each address: one per winning share it held."""
    burned: Mapping[str, int]
    """Shares destroyed per token id (the whole supply of both outcomes)."""


def _touches(t: Trade, asset_id: str) -> bool:
    """Whether `t` moved `asset_id`: its taker's token or a maker's (a MINT/MERGE maker holds the other)."""
    return t.asset_id == asset_id or any(m.asset_id == asset_id for m in t.maker_orders)


class Exchange:
    """The local exchange's matching core behind one facade."""

    def __init__(
        self,
        markets: Iterable[MarketSpec] | None,
        clock: Clock,
        *,
        fee_collector: str = FEE_COLLECTOR,
        seed: int = 0,
        listener: Listener | None = None,
        settlement: SettlementConfig | None = None,
    ) -> None:
        specs = check_unique(default_markets() if markets is None else markets)
        if not specs:
            raise ConfigError("an exchange needs at least one market")
        self.clock = clock
        self.listener = listener
        self.ledger = Ledger(fee_collector)
        self.matcher = Matcher(self.ledger, TradeIds(seed))
        self._books: dict[str, MatchingBook] = {}
        self._tokens: dict[str, tuple[MatchingBook, bool]] = {}
        for spec in specs:
            self._add_book(spec)
        self._orders: dict[str, Order] = {}
        self._open: dict[str, Order] = {}
        self._open_by_owner: dict[str, dict[str, Order]] = {}
        self._expiry: list[tuple[int, int, Order]] = []
        self._trades: list[Trade] = []
        self._trade_by_id: dict[str, Trade] = {}
        self._trades_by_owner: dict[str, list[Trade]] = {}
        self._last_trade: dict[str, tuple[int, Side]] = {}
        self._seq = 0
        self._resolutions: dict[str, Resolution] = {}
        self.settlement = Settlement(self.ledger, self._orders, self._trades, self._trade_status, settlement, seed)
        self._timers: list[Timer] = []
        self.archive: HistoryArchive | None = None
        """Where finished history goes (`attach_archive`); None keeps everything in memory."""
        self.archive_window_ms = 0
        self._trade_hooks: list[TradeHook] = []
        self.incentives = Incentives(self, seed)

    def add_timer(self, timer: Timer) -> None:
        """Run `timer` whenever its time has come (see `Timer`)."""
        self._timers.append(timer)

    def attach_archive(
        self, archive: HistoryArchive, *, window_ms: int | None = None, every_ms: int | None = None
    ) -> None:
        """Move finished history into `archive` every `every_ms` of exchange time (exchange/history):
        finished orders, trades final for `window_ms`, resolved markets resolved for `window_ms`."""
        from polyoms.exchange import history

        if self.archive is not None:
            raise ConfigError("the exchange already has a history archive")
        self.archive = archive
        self.archive_window_ms = history.ARCHIVE_WINDOW_MS if window_ms is None else window_ms
        self.add_timer(history.Archiver(self, history.ARCHIVE_EVERY_MS if every_ms is None else every_ms))

    def archive_history(self, now_ms: int | None = None) -> tuple[int, int, int]:
        """One archive run now: (orders, trades, markets) moved from memory into the archive.

        Written (one transaction) before anything leaves memory, so a crash loses nothing."""
        archive = self.archive
        if archive is None:
            return 0, 0, 0
        now = self.clock.now_ms() if now_ms is None else now_ms
        cutoff = now - self.archive_window_ms
        trades = self.settlement.final_before(cutoff)
        by_id = self._trade_by_id
        orders = [
            o
            for o in self._orders.values()
            if not o.resting and all((t := by_id.get(tid)) is None or t.is_final for tid in o.associate_trades)
        ]
        retire = [
            b
            for cid, b in self._books.items()
            if (r := self._resolutions.get(cid)) is not None and r.resolved_at_ms <= cutoff
        ]
        archive.put(orders, trades, [(b.spec, self._resolutions.get(b.market.lower())) for b in retire])
        self.settlement.drop(trades)
        self._forget_trades(trades)
        for o in orders:
            del self._orders[o.order_id]
        for b in retire:
            self._forget_market(b)
        if self._expiry:
            # Filled or cancelled GTD orders would wait here until their expiration.
            self._expiry = [e for e in self._expiry if e[2].resting]
            heapq.heapify(self._expiry)
        return len(orders), len(trades), len(retire)

    def _forget_trades(self, trades: Sequence[Trade]) -> None:
        if not trades:
            return
        gone = {t.trade_id for t in trades}
        by_id = self._trade_by_id
        owners: set[str] = set()
        for t in trades:
            del by_id[t.trade_id]
            owners.add(t.owner)
            owners.update(m.owner for m in t.maker_orders)
        tbo = self._trades_by_owner
        for owner in owners:
            kept = [t for t in tbo.get(owner, ()) if t.trade_id not in gone]
            if kept:
                tbo[owner] = kept
            else:
                tbo.pop(owner, None)

    def _forget_market(self, book: MatchingBook) -> None:
        cid = book.market.lower()
        del self._books[cid]
        self._resolutions.pop(cid, None)
        for tid in (book.yes_token_id, book.no_token_id):
            self._tokens.pop(tid, None)
            self._last_trade.pop(tid, None)

    def retire_market(self, condition_id: str) -> None:
        """Move a resolved market out of memory into the archive: its book, spec, resolution and
        (finished) orders. `market`, `market_of_token`, `resolution` and `markets(include_retired=True)`
        still answer it. Needs an archive; the market must be resolved with nothing open or settling."""
        self._expire_due()
        archive = self.archive
        book = self._book(condition_id)
        cid = book.market.lower()
        if archive is None:
            raise InputError("retiring a market needs a history archive", condition_id=condition_id)
        if not book.spec.resolved:
            raise InputError(f"market {book.spec.condition_id} is not resolved", condition_id=condition_id)
        orders = [o for o in self._orders.values() if o.market.lower() == cid]
        by_id = self._trade_by_id
        if any(
            o.resting or any((t := by_id.get(tid)) is not None and not t.is_final for tid in o.associate_trades)
            for o in orders
        ):
            raise InputError(f"market {book.spec.condition_id} still has open orders or settling trades")
        archive.put(orders, (), [(book.spec, self._resolutions.get(cid))])
        for o in orders:
            del self._orders[o.order_id]
        self._forget_market(book)

    def add_trade_hook(self, hook: TradeHook) -> None:
        """Call `hook` with the trades of every matching submission, after they are recorded."""
        self._trade_hooks.append(hook)

    def _run_timers(self, now: int) -> None:
        for timer in self._timers:
            if timer.next_ms <= now:
                timer.run(now)

    def _add_book(self, spec: MarketSpec) -> None:
        book = MatchingBook(spec)
        self._books[spec.condition_id.lower()] = book
        self._tokens[spec.yes_token_id] = (book, True)
        self._tokens[spec.no_token_id] = (book, False)

    # --- admin -----------------------------------------------------------------------------------

    def add_market(self, spec: MarketSpec) -> None:
        """List a new market while running (the venue announces it with `new_market`)."""
        check_unique([*self.markets(), spec])
        archive = self.archive
        if archive is not None and (
            archive.market(spec.condition_id) is not None
            or any(archive.market_of_token(t) is not None for t in spec.token_ids)
        ):
            raise ConfigError(f"market {spec.condition_id} (or one of its tokens) was listed before and retired")
        self._add_book(spec)
        if self.listener is not None:
            self.listener(NewMarketEvent(spec, self.clock.now_ms()))

    def fund(self, address: str, pusd: int = 0, tokens: Mapping[str, int] | None = None) -> None:
        """Credit pUSD and outcome tokens (micro-units) to an address."""
        for tid in tokens or {}:
            entry = self._tokens.get(tid)
            if entry is None:
                raise InvalidOrderError(msg.unknown_token(tid), token_id=tid)
            if entry[0].spec.resolved:
                # Its shares were all redeemed; new ones would be claims on nothing.
                raise InputError(f"market of token {tid} is resolved", token_id=tid)
        self.ledger.fund(address, pusd, tokens)

    def set_allowance(self, address: str, amount: int, token_id: str | None = None) -> None:
        self.ledger.set_allowance(address, amount, token_id)

    def set_market_flags(self, condition_id: str, **flags: bool | str) -> MarketSpec:
        """Change a market's lifecycle flags (`accepting_orders`, `active`, `closed`...)."""
        book = self._book(condition_id)
        book.spec = book.spec.with_flags(**flags)
        return book.spec

    def close_market(self, condition_id: str) -> list[str]:
        """Stop trading a market and cancel every order resting in it."""
        now = self._expire_due()
        self.set_market_flags(condition_id, accepting_orders=False, closed=True)
        return self._cancel_market_orders(self._book(condition_id), msg.REASON_MARKET_CLOSED, now)

    def _cancel_market_orders(
        self, book: MatchingBook, reason: str, now: int, keep: TickSize | None = None
    ) -> list[str]:
        """Cancel the market's open orders (oldest first), or with `keep` only those off its grid."""
        victims = [
            o for o in self._open.values() if o.market == book.market and (keep is None or not keep.on_grid(o.price))
        ]
        for o in victims:
            self._cancel(o, reason, now)
        return [o.order_id for o in victims]

    def change_tick_size(self, condition_id: str, new_tick: str | TickSize) -> list[str]:
        """Change a market's minimum tick, as the venue does when its price nears 0 or 1 (doc §7.4).

        Orders resting at prices off the new grid are cancelled (reason `messages.REASON_TICK_SIZE`:
        the venue's handling is UNCONFIRMED, and silently moving someone's price is worse); the others
        keep their place in their level's queue. Then the book is re-indexed on the new grid and a
        `TickSizeChangeEvent` is sent; new orders are checked against the new tick. Returns the ids of
        the cancelled orders. The same tick again changes nothing.
        """
        now = self._expire_due()
        book = self._book(condition_id)
        spec = book.spec
        tick = tick_size(new_tick)
        if spec.resolved:
            raise InputError(f"market {spec.condition_id} is resolved", condition_id=spec.condition_id)
        old = spec.tick
        if tick == old:
            return []
        canceled = self._cancel_market_orders(book, msg.REASON_TICK_SIZE, now, keep=tick)
        book.retick(spec.with_flags(tick=tick))
        if self.listener is not None:
            self.listener(TickSizeChangeEvent(book.spec, old, tick, tuple(canceled), now))
        return canceled

    def resolve(self, condition_id: str, winning_token_id: str) -> Resolution:
        """Resolve a market: `winning_token_id` pays 1 pUSD per share, the other token nothing.

        In order: every open order of the market is cancelled (reason `messages.REASON_MARKET_RESOLVED`;
        status CANCELED, `Order.rest_status` CANCELED_MARKET_RESOLVED); its trades still settling take
        all their remaining steps now (resolution comes long after trading on the venue, when every
        trade is final; a trade drawn to fail fails and is reversed); the market is closed and marked
        resolved; every holder's shares of both outcomes are burned and the winning ones paid out of
        the market's locked collateral (`Ledger.redeemed`, `Ledger.burned_tokens` keep the audit's
        books); then a `MarketResolvedEvent` is sent.
        """
        now = self._expire_due()
        book = self._book(condition_id)
        spec = book.spec
        if spec.resolved:
            raise InputError(f"market {spec.condition_id} is already resolved", condition_id=spec.condition_id)
        if winning_token_id not in spec.token_ids:
            raise InputError(
                f"token {winning_token_id} is not an outcome of market {spec.condition_id}",
                condition_id=spec.condition_id,
                token_id=winning_token_id,
            )
        canceled = self._cancel_market_orders(book, msg.REASON_MARKET_RESOLVED, now)
        self.settlement.flush(book.market, now)
        book.spec = spec.with_flags(accepting_orders=False, closed=True, winning_token_id=winning_token_id)
        payouts, burned = self._redeem(book, winning_token_id)
        res = Resolution(
            spec.condition_id,
            winning_token_id,
            spec.outcome_of(winning_token_id),
            now,
            tuple(canceled),
            payouts,
            burned,
        )
        self._resolutions[book.market.lower()] = res
        if self.listener is not None:
            self.listener(MarketResolvedEvent(book.spec, winning_token_id, now))
        return res

    def _redeem(self, book: MatchingBook, winner: str) -> tuple[dict[str, int], dict[str, int]]:
        """Burn every share of the market; pay 1 pUSD per winning share out of its collateral."""
        ledger = self.ledger
        payouts: dict[str, int] = {}
        burned = {book.yes_token_id: 0, book.no_token_id: 0}
        for acct in ledger:
            for tid in burned:
                shares = acct.tokens.pop(tid, 0)
                # With the market's orders cancelled and its trades final nothing is reserved or pending.
                assert not acct.token_reserved.get(tid) and not acct.token_pending.get(tid), acct
                if not shares:
                    continue
                burned[tid] += shares
                if tid == winner:
                    acct.pusd += shares
                    payouts[acct.address] = shares
        paid = burned[winner]
        # Out of locked into redeemed; locked goes below 0 when funded (never minted) shares win.
        ledger.lock(book.market, -paid)
        ledger.redeemed[book.market] = ledger.redeemed.get(book.market, 0) + paid
        for tid, n in burned.items():
            ledger.burned_tokens[tid] = ledger.burned_tokens.get(tid, 0) + n
        return payouts, burned

    # --- orders ----------------------------------------------------------------------------------

    def submit(self, order: EngineOrder) -> SubmitResult:
        """Place one order. Raises the venue's typed error if it is refused (then nothing changed)."""
        now = self.clock.now_ms()
        settlement = self.settlement
        if settlement.next_ms <= now:
            settlement.run(now)
        expiry = self._expiry
        if expiry and expiry[0][0] <= now:
            self._expire(now)
        if self._timers:
            self._run_timers(now)
        oid = order.order_id
        if oid in self._orders:
            raise DuplicateOrderError(venue_errors.duplicated(oid))
        entry = self._tokens.get(order.token_id)
        if entry is None:
            raise InvalidOrderError(msg.unknown_token(order.token_id), token_id=order.token_id)
        book, is_yes = entry
        spec = book.spec
        if not spec.accepting_orders or spec.closed or not spec.active:
            raise MarketNotReadyError(venue_errors.MARKET_NOT_READY)
        self._seq += 1
        o = new_order(order, spec, is_yes, now, self._seq, self.ledger.account(order.maker))
        trades = self.matcher.submit(book, o, order.post_only, now)
        self._orders[oid] = o
        listener = self.listener
        if o.resting:
            self._open[oid] = o
            by_owner = self._open_by_owner.get(o.owner)
            if by_owner is None:
                by_owner = self._open_by_owner[o.owner] = {}
            by_owner[oid] = o
            if o.order_type is _GTD:
                heapq.heappush(expiry, ((o.expiration - GTD_SECURITY_THRESHOLD_S) * 1000, o.seq, o))
        if not trades:
            if listener is not None:
                listener(ExchangeOrderEvent(PLACEMENT, o, now))
            return SubmitResult("live", oid)
        self._record(o, trades, now)
        if listener is not None:
            listener(ExchangeOrderEvent(PLACEMENT if o.resting else UPDATE, o, now, o.associate_trades))
        shares = sum(t.size for t in trades)
        pusd = sum(t.pusd for t in trades)
        return SubmitResult(
            "matched",
            oid,
            pusd if o.side is _BUY else shares,
            shares if o.side is _BUY else pusd,
            sum(t.fee for t in trades),
            tuple(t.trade_id for t in trades),
            tuple(trades),
        )

    def _record(self, taker: Order, trades: list[Trade], now: int) -> None:
        listener = self.listener
        orders, open_, by_owner = self._orders, self._open, self._open_by_owner
        tbo = self._trades_by_owner
        for t in trades:
            self._trades.append(t)
            self._trade_by_id[t.trade_id] = t
            owners = {t.owner}
            tbo.setdefault(t.owner, []).append(t)
            for mf in t.maker_orders:
                if mf.owner not in owners:
                    owners.add(mf.owner)
                    tbo.setdefault(mf.owner, []).append(t)
                m = orders[mf.order_id]
                if not m.resting and mf.order_id in open_:
                    del open_[mf.order_id]
                    del by_owner[m.owner][mf.order_id]
                if listener is not None:
                    listener(ExchangeOrderEvent(UPDATE, m, now, (t.trade_id,)))
            self._last_trade[t.asset_id] = (t.price, t.side)
            book, _ = self._tokens[t.asset_id]
            other = book.no_token_id if t.asset_id == book.yes_token_id else book.yes_token_id
            # BUY YES at p is SELL NO at 1 − p: the other token traded at the mirror price.
            self._last_trade[other] = (MICRO - t.price, t.side.opposite)
            if listener is not None:
                listener(ExchangeTradeEvent(t, now))
        self.settlement.matched(now)
        for hook in self._trade_hooks:
            hook(trades, now)

    def _trade_status(self, trade: Trade, at_ms: int) -> None:
        """The settlement pipeline moved `trade` on."""
        if self.listener is not None:
            self.listener(ExchangeTradeEvent(trade, at_ms))

    def cancel(self, order_id: str, owner: str) -> ExchangeCancelResult:
        """Cancel one of `owner`'s open orders (DELETE /order)."""
        now = self._expire_due()
        o = self._open.get(order_id)
        if o is None or o.owner != owner:
            return ExchangeCancelResult([], {order_id: msg.NOT_CANCELED_UNKNOWN})
        self._cancel(o, msg.REASON_USER, now)
        return ExchangeCancelResult([order_id], {})

    def cancel_many(self, order_ids: Iterable[str], owner: str) -> ExchangeCancelResult:
        """Cancel several orders (DELETE /orders); duplicates are ignored."""
        now = self._expire_due()
        result = ExchangeCancelResult()
        for oid in dict.fromkeys(order_ids):
            o = self._open.get(oid)
            if o is None or o.owner != owner:
                result.not_canceled[oid] = msg.NOT_CANCELED_UNKNOWN
            else:
                self._cancel(o, msg.REASON_USER, now)
                result.canceled.append(oid)
        return result

    def cancel_all(self, owner: str, reason: str = msg.REASON_CANCEL_ALL) -> ExchangeCancelResult:
        """Cancel every open order of `owner` (DELETE /cancel-all; also heartbeat timeouts, with
        `reason=messages.REASON_HEARTBEAT`)."""
        now = self._expire_due()
        victims = list(self._open_by_owner.get(owner, {}).values())
        for o in victims:
            self._cancel(o, reason, now)
        return ExchangeCancelResult([o.order_id for o in victims], {})

    def cancel_market(self, owner: str, market: str | None = None, asset_id: str | None = None) -> ExchangeCancelResult:
        """Cancel `owner`'s open orders in a market and/or token (DELETE /cancel-market-orders).

        An empty or missing filter matches everything, so both empty cancels all of them.
        """
        now = self._expire_due()
        cid = market.lower() if market else None
        victims = [
            o
            for o in self._open_by_owner.get(owner, {}).values()
            if (cid is None or o.market.lower() == cid) and (not asset_id or o.asset_id == asset_id)
        ]
        for o in victims:
            self._cancel(o, msg.REASON_CANCEL_MARKET, now)
        return ExchangeCancelResult([o.order_id for o in victims], {})

    # --- timers --------------------------------------------------------------------------------

    def advance(self, now_ms: int | None = None) -> None:
        """Run every timer due by `now_ms` (default: the clock's now): settlement steps, then GTD
        expiry. The owner calls this periodically (a server's ticker, a backtest loop)."""
        now = self.clock.now_ms() if now_ms is None else now_ms
        self.settlement.run(now)
        self._expire(now)
        self._run_timers(now)

    def settle(self, now_ms: int | None = None) -> list[Trade]:
        """Take the settlement steps due by `now_ms` only; the trades whose status changed, in order."""
        return self.settlement.run(self.clock.now_ms() if now_ms is None else now_ms)

    def expire(self, now_ms: int | None = None) -> list[str]:
        """Cancel GTD orders whose time (expiration − threshold) has come; returns their ids.

        As the timer hook existing owners already call periodically, it first takes the settlement
        steps due as well — exactly what `advance` does.
        """
        now = self.clock.now_ms() if now_ms is None else now_ms
        self.settlement.run(now)
        expired = self._expire(now)
        self._run_timers(now)
        return expired

    def _expire(self, now: int) -> list[str]:
        expiry = self._expiry
        expired: list[str] = []
        while expiry and expiry[0][0] <= now:
            _, _, o = heapq.heappop(expiry)
            if o.resting:
                self._cancel(o, msg.REASON_EXPIRED, now)
                expired.append(o.order_id)
        return expired

    def _expire_due(self) -> int:
        """Catch the timers up with the clock before an operation; its time."""
        now = self.clock.now_ms()
        if self.settlement.next_ms <= now:
            self.settlement.run(now)
        if self._expiry and self._expiry[0][0] <= now:
            self._expire(now)
        if self._timers:
            self._run_timers(now)
        return now

    def _cancel(self, o: Order, reason: str, now: int) -> None:
        book, _ = self._tokens[o.asset_id]
        o.cancel_reason = reason
        self.matcher.cancel(book, o)
        del self._open[o.order_id]
        del self._open_by_owner[o.owner][o.order_id]
        if self.listener is not None:
            self.listener(ExchangeOrderEvent(CANCELLATION, o, now, reason=reason))

    # --- queries ---------------------------------------------------------------------------------

    def _book(self, condition_id: str) -> MatchingBook:
        book = self._books.get(condition_id.lower())
        if book is None:
            raise NotFoundError(f"market not found: {condition_id}", condition_id=condition_id)
        return book

    def _token(self, token_id: str) -> tuple[MatchingBook, bool]:
        entry = self._tokens.get(token_id)
        if entry is None:
            raise NotFoundError(venue_errors.NO_ORDERBOOK, token_id=token_id)
        return entry

    def markets(self, include_retired: bool = False) -> list[MarketSpec]:
        """The markets trading (or resolved and not yet retired); `include_retired`: retired ones too."""
        live = [b.spec for b in self._books.values()]
        if include_retired and self.archive is not None:
            books = self._books
            live.extend(s for s in self.archive.markets() if s.condition_id.lower() not in books)
        return live

    def market(self, condition_id: str) -> MarketSpec:
        book = self._books.get(condition_id.lower())
        if book is None and self.archive is not None:
            spec = self.archive.market(condition_id)
            if spec is not None:
                return spec
        return self._book(condition_id).spec

    def market_of_token(self, token_id: str) -> MarketSpec:
        entry = self._tokens.get(token_id)
        if entry is None and self.archive is not None:
            spec = self.archive.market_of_token(token_id)
            if spec is not None:
                return spec
        return self._token(token_id)[0].spec

    def get_order(self, order_id: str) -> Order | None:
        """Any order the exchange accepted, open or not (GET /data/order/{id}); archived ones too."""
        o = self._orders.get(order_id)
        if o is None and self.archive is not None:
            return self.archive.order(order_id, self.ledger)
        return o

    def open_orders(
        self,
        owner: str | None = None,
        *,
        order_id: str | None = None,
        market: str | None = None,
        asset_id: str | None = None,
    ) -> list[Order]:
        """Open orders, oldest first, filtered like GET /data/orders (owner None = everyone's)."""
        pool = self._open if owner is None else self._open_by_owner.get(owner, {})
        if order_id:
            o = pool.get(order_id)
            pool = {order_id: o} if o is not None else {}
        cid = market.lower() if market else None
        out = [
            o
            for o in pool.values()
            if (cid is None or o.market.lower() == cid) and (not asset_id or o.asset_id == asset_id)
        ]
        out.sort(key=lambda o: o.seq)
        return out

    def trades(
        self,
        owner: str | None = None,
        *,
        trade_id: str | None = None,
        maker_address: str | None = None,
        market: str | None = None,
        asset_id: str | None = None,
        before: int | None = None,
        after: int | None = None,
        limit: int | None = None,
        offset: int = 0,
    ) -> list[Trade]:
        """Trades in match order where `owner` was taker or maker (GET /data/trades), archived ones
        included; `offset` / `limit` take a page of that list.

        `before` / `after` bound `match_time` (unix seconds, inclusive); `maker_address` keeps trades
        in which that funder took part on either side.
        """
        live = self._live_trades(owner, trade_id, maker_address, market, asset_id, before, after)
        stop = None if limit is None else offset + limit
        archive = self.archive
        if archive is None:
            return live[offset:stop] if offset or stop is not None else live
        if asset_id and not market:
            # Both outcomes' trades are filed under their market: narrow the archive's scan to it.
            with contextlib.suppress(NotFoundError):
                market = self.market_of_token(asset_id).condition_id
        old: Iterable[Trade] = archive.trades(
            owner,
            trade_id=trade_id,
            maker_address=maker_address,
            market=market,
            before=before,
            after=after,
            skip=self._trade_by_id.__contains__,
        )
        if asset_id:
            old = (t for t in old if _touches(t, asset_id))
        # Trade ids are a fixed prefix and a zero-padded counter (trades.TradeIds): id order is match order.
        merged = heapq.merge(old, live, key=lambda t: t.trade_id)
        return list(itertools.islice(merged, offset, stop))

    def _live_trades(
        self,
        owner: str | None,
        trade_id: str | None,
        maker_address: str | None,
        market: str | None,
        asset_id: str | None,
        before: int | None,
        after: int | None,
    ) -> list[Trade]:
        pool = self._trades if owner is None else self._trades_by_owner.get(owner, [])
        addr = maker_address.lower() if maker_address else None
        cid = market.lower() if market else None
        return [
            t
            for t in pool
            if (not trade_id or t.trade_id == trade_id)
            and (cid is None or t.market.lower() == cid)
            and (not asset_id or _touches(t, asset_id))
            and (before is None or t.match_time <= before)
            and (after is None or t.match_time >= after)
            and (
                addr is None
                or t.maker_address.lower() == addr
                or any(m.maker_address.lower() == addr for m in t.maker_orders)
            )
        ]

    def trade(self, trade_id: str) -> Trade | None:
        t = self._trade_by_id.get(trade_id)
        if t is None and self.archive is not None:
            return self.archive.trade(trade_id)
        return t

    def in_flight_trades(self) -> list[Trade]:
        """Trades not final yet (MATCHED, MINED or RETRYING), in the order their next steps are due."""
        return self.settlement.in_flight()

    def resolution(self, condition_id: str) -> Resolution | None:
        """What resolving the market did, or None while it is unresolved (retired markets too)."""
        archive = self.archive
        if condition_id.lower() not in self._books and archive is not None and archive.market(condition_id):
            return archive.resolution(condition_id)
        self._book(condition_id)
        return self._resolutions.get(condition_id.lower())

    def book(self, token_id: str) -> BookView:
        """GET /book: the token's levels, bids ascending and asks descending (best last)."""
        book, is_yes = self._token(token_id)
        return book.view(is_yes)

    def best_bid_ask(self, token_id: str) -> tuple[int | None, int | None]:
        book, is_yes = self._token(token_id)
        return book.best(is_yes)

    def midpoint(self, token_id: str) -> int | None:
        """(best bid + best ask) / 2, or None while a side is empty. Exact: prices are multiples of 100."""
        bid, ask = self.best_bid_ask(token_id)
        if bid is None or ask is None:
            return None
        return (bid + ask) // 2

    def spread(self, token_id: str) -> int | None:
        bid, ask = self.best_bid_ask(token_id)
        if bid is None or ask is None:
            return None
        return ask - bid

    def last_trade(self, token_id: str) -> tuple[int, Side] | None:
        """(price, taker side) of the token's last trade, or None before the first one."""
        self._token(token_id)
        return self._last_trade.get(token_id)

    def balances(self, address: str) -> Balances:
        return self.ledger.balances(address)

    def account(self, address: str) -> Account | None:
        return self.ledger.get(address)

    @property
    def books(self) -> Mapping[str, MatchingBook]:
        return self._books

    @property
    def all_trades(self) -> list[Trade]:
        return self._trades

    @property
    def all_orders(self) -> Mapping[str, Order]:
        return self._orders
