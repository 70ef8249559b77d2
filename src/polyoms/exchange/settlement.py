"""Settlement: every trade goes from MATCHED to a final status on the injected clock.

The venue matches off-chain and settles on-chain (doc §7.1, §6.3): a trade is MATCHED when the
operator sends its transaction, MINED once that is in a block, CONFIRMED when final; a transaction that
reverts puts the trade in RETRYING, after which it is mined after all or FAILED, which voids it. The
local exchange plays this out with configurable delays and probabilities, deterministically (times from
the clock, draws from a seeded `Random`). Key rules (ours: the venue's behaviour on failures is
UNCONFIRMED), detailed on `Settlement`:

* proceeds stay pending, not spendable, until the trade is mined, so a FAILED trade reverses exactly;
* a FAILED trade leaves its orders as reported (`size_failed` grows) and never gets a transaction hash;
* a step happens at the time it is due, however often the owner advances the exchange.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from polyoms.core.enums import OrderType, Side
from polyoms.core.errors import ConfigError
from polyoms.exchange import messages as msg
from polyoms.exchange.accounts import MAX_UINT256, Account, Ledger
from polyoms.exchange.orders import Order
from polyoms.exchange.trades import (
    TRADE_CONFIRMED,
    TRADE_FAILED,
    TRADE_MATCHED,
    TRADE_MINED,
    TRADE_RETRYING,
    MatchType,
    Trade,
)
from polyoms.polymarket.protocol.hashing import keccak256

__all__ = ["Settlement", "SettlementConfig", "pending_by_trade", "trade_flows", "transaction_hash"]

_BUY: Final = Side.BUY
_UNDRAWN: Final = -1
_MINE: Final = 0
_RETRY_THEN_MINE: Final = 1
_FAIL: Final = 2

_Entry = tuple[int, int, Trade, int]
"""(due ms, sequence number, trade, fate): the next step of one trade past its first step."""
NEVER: Final = 1 << 62
"""`Settlement.next_ms` when nothing is waiting."""
_Flow = tuple[Account, str | None, int]
"""(account, token id or None for pUSD, amount)."""


@dataclass(frozen=True, slots=True)
class SettlementConfig:
    """Delays (ms) and failure odds of the settlement pipeline. The defaults are Polygon-like (a block,
    then finality some blocks later), and every trade succeeds."""

    mined_delay_ms: int = 2_000
    confirmed_delay_ms: int = 10_000
    retry_delay_ms: int = 5_000
    failure_probability: float = 0.0
    retry_probability: float = 0.0

    def __post_init__(self) -> None:
        for name in ("mined_delay_ms", "confirmed_delay_ms", "retry_delay_ms"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ConfigError(f"settlement {name} must be a non-negative integer, got {value!r}", field=name)
        for name in ("failure_probability", "retry_probability"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
                raise ConfigError(f"settlement {name} must be within [0, 1], got {value!r}", field=name)
        if self.failure_probability + self.retry_probability > 1:
            raise ConfigError("settlement failure_probability + retry_probability must not exceed 1")


def transaction_hash(trade_id: str) -> str:
    """The settlement transaction of a trade: deterministic from its id."""
    return "0x" + keccak256(f"polyoms-sim:tx:{trade_id}".encode()).hex()


class Settlement:
    """Walks trades from MATCHED to a final status as the clock passes their due times.

    * Timeline. MINED `mined_delay_ms` after the match, CONFIRMED `confirmed_delay_ms` after MINED. A
      trade drawn to go wrong becomes RETRYING instead of MINED and, `retry_delay_ms` later, FAILED — or,
      drawn to recover, MINED and then CONFIRMED as usual. A step happens at the time it is due, not
      when the owner gets round to advancing the exchange, so statuses and timestamps do not depend on
      how often it does.
    * Draws. A trade's fate is drawn once, when its first step comes due: FAILED with probability
      `failure_probability`, RETRYING then mined with `retry_probability`, otherwise straight to MINED.
      Nothing is drawn while both are 0.
    * Only an unmined trade can fail, and proceeds cannot be spent before MINED. Whatever a party
      receives in a trade (shares bought, pUSD from a sale or a merge, the fee) is credited at the match
      but stays *pending* — in the balance, not spendable, not reservable — until the trade is mined
      (see `accounts`). That is what the chain does (the shares are not in the wallet before the
      transaction is included) and what the OMS's "sellable now" expects. So when a trade FAILS its
      proceeds are always where they were put, and the reversal is exact; nothing has to be clawed back
      from a third party, no balance goes negative and every total stays conserved. The price: a buyer
      cannot resell until the trade is mined (`mined_delay_ms`).
    * Reversal (FAILED) undoes exactly that trade's transfers: the taker and every maker get back what
      they paid (pUSD including the taker's fee, or shares) and give back what they received; the fee
      collector gives back the fee; collateral locked by its MINT fills is released, collateral released
      by its MERGE fills is locked again. Finite allowances get back what the transfer spent (a reverted
      `transferFrom` spends none); infinite ones stay infinite.
    * Orders stay as reported: `size_matched` keeps the failed fill (the venue reported it matched, and
      does not put the size back on the book), `size_failed` grows by it; no order event is sent — the
      FAILED trade event, which lists the maker orders, is the notice.
    * Transaction hash: assigned at MINED (`transaction_hash`, stable per trade id), kept afterwards. A
      FAILED trade was never mined and has none.
    * Cost on the matching path: nothing per trade. Trades are matched in time order and all wait the
      same `mined_delay_ms` for their first step, so first steps come from `trades` (the exchange's list,
      in match order) through a cursor; only later steps (a few per trade, when they are due) go through
      a heap. Should the clock ever step back (a wall clock being corrected), a first step can only come
      late, never early. `next_ms` is when the next step is due, so callers skip `run` with one
      comparison.
    """

    __slots__ = (
        "_cursor",
        "_handed",
        "_n",
        "_notify",
        "_orders",
        "_rng",
        "_trades",
        "config",
        "due",
        "ledger",
        "next_ms",
    )

    def __init__(
        self,
        ledger: Ledger,
        orders: Mapping[str, Order],
        trades: Sequence[Trade],
        notify: Callable[[Trade, int], None],
        config: SettlementConfig | None = None,
        seed: int = 0,
    ) -> None:
        self.ledger = ledger
        self.config = config or SettlementConfig()
        self._orders = orders
        self._trades = trades
        self._notify = notify
        self._rng = random.Random(seed)
        self._cursor = 0
        """trades[:cursor] have had their first step (or were flushed); the rest are MATCHED."""
        self._handed = 0
        """trades[:handed] are ours: their MATCHED events have been sent. Later ones are still being
        recorded, and a listener running us meanwhile must not announce a status before MATCHED."""
        self.due: list[_Entry] = []
        """Later steps, one per trade that is past its first step and not final."""
        self._n = 0
        self.next_ms = NEVER

    def matched(self, now_ms: int) -> None:
        """Trades appended to `trades`, matched at `now_ms`, have had their MATCHED events: take them."""
        self._handed = len(self._trades)
        at = now_ms + self.config.mined_delay_ms
        if at < self.next_ms:
            self.next_ms = at

    def __len__(self) -> int:
        """Trades not final yet."""
        return len(self.in_flight())

    def in_flight(self) -> list[Trade]:
        """The trades not final yet, in the order their next steps are due."""
        delay = self.config.mined_delay_ms
        fresh = [(t.match_time_ms + delay, t) for t in self._trades[self._cursor : self._handed]]
        steps = [(at, t) for at, t in fresh if t.status == TRADE_MATCHED] + [(e[0], e[2]) for e in sorted(self.due)]
        steps.sort(key=lambda step: step[0])  # stable: ties keep match order, then heap order
        return [t for _, t in steps]

    def _refresh(self) -> None:
        trades, k = self._trades, self._cursor
        fresh = trades[k].match_time_ms + self.config.mined_delay_ms if k < self._handed else NEVER
        later = self.due[0][0] if self.due else NEVER
        self.next_ms = fresh if fresh < later else later

    def run(self, now_ms: int) -> list[Trade]:
        """Take every step due by `now_ms`, in time order; the trades whose status changed, in order."""
        trades, due = self._trades, self.due
        delay = self.config.mined_delay_ms
        step = self._step
        changed: list[Trade] = []
        # Take a step off its queue before acting and queue the next one after notifying, so that a
        # listener calling back into the exchange (which may run this again) never sees a step twice
        # or a trade's statuses out of order.
        while True:
            k = self._cursor
            if k < self._handed:
                trade = trades[k]
                first = trade.match_time_ms + delay
            else:
                first = NEVER
            if due and due[0][0] < first:
                if due[0][0] > now_ms:
                    break
                at, _, trade, fate = heapq.heappop(due)
            else:
                if first > now_ms:
                    break
                self._cursor = k + 1
                if trade.status != TRADE_MATCHED:
                    continue  # its market resolved and `flush` took all its steps already
                at, fate = first, _UNDRAWN
            nxt = step(trade, fate, at)
            changed.append(trade)
            if nxt is not None:
                self._n += 1
                heapq.heappush(due, (at + nxt[0], self._n, trade, nxt[1]))
        self._refresh()
        return changed

    def flush(self, market: str, now_ms: int) -> list[Trade]:
        """Take every remaining step of one market's trades now (before it resolves)."""
        todo: list[tuple[Trade, int]] = [
            (t, _UNDRAWN)
            for t in self._trades[self._cursor : self._handed]
            if t.market == market and t.status == TRADE_MATCHED
        ]
        later = [e for e in self.due if e[2].market == market]
        if later:
            self.due[:] = [e for e in self.due if e[2].market != market]
            heapq.heapify(self.due)
            todo.extend((e[2], e[3]) for e in sorted(later))
        changed: list[Trade] = []
        for trade, fate in todo:
            nxt: tuple[int, int] | None = (0, fate)
            while nxt is not None:
                nxt = self._step(trade, nxt[1], now_ms)
                changed.append(trade)
        self._refresh()
        return changed

    def final_before(self, cutoff_ms: int) -> list[Trade]:
        """Trades past their first step, final, and unchanged since `cutoff_ms` (to archive)."""
        return [t for t in self._trades[: self._cursor] if t.is_final and t.last_update_ms <= cutoff_ms]

    def drop(self, gone: Sequence[Trade]) -> None:
        """Take `gone` (from `final_before`) off the exchange's trade list, which this walks by index."""
        if not gone:
            return
        ids = {id(t) for t in gone}
        trades = self._trades
        assert isinstance(trades, list)
        k = self._cursor
        kept = [t for t in trades[:k] if id(t) not in ids]
        removed = k - len(kept)
        if removed != len(ids):
            raise AssertionError("only trades before the settlement cursor can be dropped")
        trades[:k] = kept
        self._cursor -= removed
        self._handed -= removed

    # --- steps -----------------------------------------------------------------------------------

    def _draw(self) -> int:
        cfg = self.config
        p_fail, p_retry = cfg.failure_probability, cfg.retry_probability
        if not p_fail and not p_retry:
            return _MINE
        u = self._rng.random()
        if u < p_fail:
            return _FAIL
        return _RETRY_THEN_MINE if u < p_fail + p_retry else _MINE

    def _step(self, trade: Trade, fate: int, at_ms: int) -> tuple[int, int] | None:
        """Move `trade` one status on at `at_ms`, notify, and say (delay, fate) of its next step."""
        cfg = self.config
        status = trade.status
        nxt: tuple[int, int] | None
        if status == TRADE_MATCHED:
            if fate == _UNDRAWN:
                fate = self._draw()
            if fate == _MINE:
                self._mine(trade)
                nxt = (cfg.confirmed_delay_ms, _MINE)
            else:
                trade.status = TRADE_RETRYING
                nxt = (cfg.retry_delay_ms, fate)
        elif status == TRADE_RETRYING:
            if fate == _FAIL:
                self._fail(trade)
                nxt = None
            else:
                self._mine(trade)
                nxt = (cfg.confirmed_delay_ms, _MINE)
        elif status == TRADE_MINED:
            trade.status = TRADE_CONFIRMED
            nxt = None
        else:  # pragma: no cover - a final trade is never queued
            raise AssertionError(f"trade {trade.trade_id} queued in final status {status}")
        trade.last_update_ms = at_ms
        self._notify(trade, at_ms)
        return nxt

    def _mine(self, trade: Trade) -> None:
        # What `trade_flows` lists as received, released from pending; inlined, as it runs per trade.
        orders = self._orders
        taker = orders[trade.taker_order_id].account
        if trade.side is _BUY:
            taker.add_pending_tokens(trade.asset_id, -trade.size)
        else:
            taker.pusd_pending -= trade.pusd - trade.fee
        for mf in trade.maker_orders:
            maker = orders[mf.order_id].account
            if mf.side is _BUY:
                maker.add_pending_tokens(mf.asset_id, -mf.matched_amount)
            else:
                maker.pusd_pending -= mf.pusd
        if trade.fee:
            self.ledger.fee_collector.pusd_pending -= trade.fee
        trade.status = TRADE_MINED
        trade.transaction_hash = transaction_hash(trade.trade_id)

    def _fail(self, trade: Trade) -> None:
        paid, received = trade_flows(trade, self.ledger)
        for acct, tid, amount in received:
            # Pending since the match and never spendable: always there to take back.
            if tid is None:
                acct.pusd_pending -= amount
                acct.pusd -= amount
            else:
                acct.add_pending_tokens(tid, -amount)
                acct.tokens[tid] -= amount
        for acct, tid, amount in paid:
            if tid is None:
                acct.pusd += amount
                if acct.pusd_allowance != MAX_UINT256:
                    acct.pusd_allowance = min(acct.pusd_allowance + amount, MAX_UINT256)
            else:
                acct.get_tokens(tid, amount)
                allow = acct.token_allowance.get(tid)
                if allow is not None and allow != MAX_UINT256:
                    acct.token_allowance[tid] = min(allow + amount, MAX_UINT256)
        minted = 0
        orders = self._orders
        for mf in trade.maker_orders:
            if mf.match_type is MatchType.MINT:
                minted += mf.matched_amount
            elif mf.match_type is MatchType.MERGE:
                minted -= mf.matched_amount
            orders[mf.order_id].size_failed += mf.matched_amount
        if minted:
            self.ledger.lock(trade.market, -minted)
        taker = orders[trade.taker_order_id]
        pusd_sized = taker.side is _BUY and taker.order_type in (OrderType.FOK, OrderType.FAK)
        taker.size_failed += trade.pusd if pusd_sized else trade.size
        trade.status = TRADE_FAILED
        trade.err_msg = msg.TRADE_FAILED


def trade_flows(trade: Trade, ledger: Ledger) -> tuple[list[_Flow], list[_Flow]]:
    """What each party paid and what it received in `trade`, as `matching` settled it."""
    account = ledger.account
    paid: list[_Flow] = []
    received: list[_Flow] = []
    taker = account(trade.maker_address)
    if trade.side is _BUY:
        paid.append((taker, None, trade.pusd + trade.fee))
        received.append((taker, trade.asset_id, trade.size))
    else:
        paid.append((taker, trade.asset_id, trade.size))
        received.append((taker, None, trade.pusd - trade.fee))
    for mf in trade.maker_orders:
        maker = account(mf.maker_address)
        if mf.side is _BUY:
            paid.append((maker, None, mf.pusd))
            received.append((maker, mf.asset_id, mf.matched_amount))
        else:
            paid.append((maker, mf.asset_id, mf.matched_amount))
            received.append((maker, None, mf.pusd))
    if trade.fee:
        received.append((ledger.fee_collector, None, trade.fee))
    return paid, received


def pending_by_trade(trades: list[Trade], ledger: Ledger) -> tuple[dict[str, int], dict[tuple[str, str], int]]:
    """What unmined trades owe each address as pending pUSD and pending shares (for `audit`)."""
    pusd: dict[str, int] = {}
    tokens: dict[tuple[str, str], int] = {}
    for t in trades:
        if t.status != TRADE_MATCHED and t.status != TRADE_RETRYING:
            continue
        for acct, tid, amount in trade_flows(t, ledger)[1]:
            if tid is None:
                pusd[acct.address] = pusd.get(acct.address, 0) + amount
            else:
                key = (acct.address, tid)
                tokens[key] = tokens.get(key, 0) + amount
    return pusd, tokens
