"""The matching engine: validation, price-time matching and exact settlement. Pure (no I/O, no clock).

`new_order` validates a signed order into the exchange's `Order`; `Matcher` walks the book price-time
(FIFO within a level, at the maker's price) and settles every fill in the ledger. Key rules, detailed on
`Matcher` (beyond the protocol reference, doc §3.5–3.8, §7):

* every amount is exact integer micro-units, and makers never lose to rounding;
* a taker's whole plan (payments, fees, the reservation of what rests) is checked before anything moves;
* what a party receives stays pending until the settlement pipeline mines the trade.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Final

from polyoms.core.enums import OrderType, Side
from polyoms.core.errors import (
    BelowMinimumSizeError,
    FakNoMatchError,
    FokNotFilledError,
    InsufficientBalanceError,
    InvalidExpirationError,
    InvalidOrderError,
    InvalidOrderTypeError,
    InvalidPriceError,
    PostOnlyWouldCrossError,
)
from polyoms.core.units import MICRO
from polyoms.exchange.accounts import MAX_UINT256, Account, Ledger
from polyoms.exchange.book import MatchingBook
from polyoms.exchange.fees import taker_fee
from polyoms.exchange.markets import MarketSpec
from polyoms.exchange.orders import CANCELED, LIVE, MATCHED, EngineOrder, Order
from polyoms.exchange.trades import MakerFill, MatchType, Trade, TradeIds
from polyoms.polymarket.protocol import errors as venue_errors
from polyoms.polymarket.protocol.constants import GTD_SECURITY_THRESHOLD_S  # UNCONFIRMED; shared with the OMS

FOK_BUY_DUST_MICRO: Final = 10
"""A FOK BUY may leave this much of its pUSD budget unspent and still count as fully filled."""

_BUY: Final = Side.BUY
_GTC: Final = OrderType.GTC
_GTD: Final = OrderType.GTD
_FOK: Final = OrderType.FOK
_COMPLEMENTARY: Final = MatchType.COMPLEMENTARY
_MINT: Final = MatchType.MINT
_MERGE: Final = MatchType.MERGE

_Fill = tuple[Order, int, int]  # maker, shares, taker's pUSD for them
_Level = tuple[int, int, list[_Fill], int, int]  # level index, taker price, fills, shares, taker pUSD


def _ratio_text(num: int, den: int) -> str:
    """num/den as a short decimal for error messages (not a money path)."""
    q = Decimal(num) / Decimal(den)
    return format(q.quantize(Decimal("0.000001")).normalize(), "f")


def new_order(eo: EngineOrder, spec: MarketSpec, is_yes: bool, now_ms: int, seq: int, account: Account) -> Order:
    """Validate an incoming order against its market's rules and build its record.

    Raises the typed error (with the venue's message) of the first rule broken.
    """
    m_amt, t_amt = eo.maker_amount, eo.taker_amount
    if type(m_amt) is not int or type(t_amt) is not int or m_amt <= 0 or t_amt <= 0:
        raise InvalidOrderError(venue_errors.INVALID_ORDER_PAYLOAD, field="amounts", order_id=eo.order_id)
    side = eo.side if type(eo.side) is Side else Side.parse(eo.side)
    ot = eo.order_type if type(eo.order_type) is OrderType else OrderType.parse(eo.order_type)
    tick = spec.tick
    if ot is _GTC or ot is _GTD:
        if side is _BUY:
            size = t_amt
            price, rest = divmod(m_amt * MICRO, t_amt)
        else:
            size = m_amt
            price, rest = divmod(t_amt * MICRO, m_amt)
        if rest or price % tick.micro or not tick.micro <= price <= MICRO - tick.micro:
            text = _ratio_text(m_amt, t_amt) if side is _BUY else _ratio_text(t_amt, m_amt)
            raise InvalidPriceError(venue_errors.invalid_tick(eo.order_id, text, tick.text))
        if size < spec.min_size:
            raise BelowMinimumSizeError(venue_errors.below_min_size(eo.order_id, size, spec.min_size))
        if ot is _GTD:
            exp = eo.expiration
            if exp <= 0 or (exp - GTD_SECURITY_THRESHOLD_S) * 1000 <= now_ms:
                raise InvalidExpirationError(venue_errors.INVALID_EXPIRATION, expiration=exp)
        elif eo.expiration:
            raise InvalidExpirationError(venue_errors.INVALID_EXPIRATION, expiration=eo.expiration)
    else:
        if eo.post_only:
            raise InvalidOrderTypeError("invalid post-only order: only GTC and GTD orders can be post-only")
        if eo.expiration:
            raise InvalidExpirationError(venue_errors.INVALID_EXPIRATION, expiration=eo.expiration)
        if side is _BUY:
            # Worst price m/t must be inside (0, 1) and reach the grid; bound = floor(m/t).
            price = m_amt * MICRO // t_amt
            if m_amt >= t_amt or price < tick.micro:
                raise InvalidPriceError(venue_errors.invalid_tick(eo.order_id, _ratio_text(m_amt, t_amt), tick.text))
            if m_amt < MICRO:
                raise BelowMinimumSizeError(venue_errors.marketable_buy_min(m_amt))
        else:
            price = -(-t_amt * MICRO // m_amt)
            if t_amt >= m_amt or price > MICRO - tick.micro:
                raise InvalidPriceError(venue_errors.invalid_tick(eo.order_id, _ratio_text(t_amt, m_amt), tick.text))
        size = m_amt
    return Order(
        eo.order_id,
        eo.maker,
        eo.owner,
        spec.condition_id,
        eo.token_id,
        spec.outcomes[0] if is_yes else spec.outcomes[1],
        is_yes,
        side,
        ot,
        price,
        size,
        m_amt,
        t_amt,
        eo.expiration,
        now_ms // 1000,
        eo.timestamp_ms,
        seq,
        account,
    )


def _insufficient() -> InsufficientBalanceError:
    return InsufficientBalanceError(venue_errors.NOT_ENOUGH_BALANCE)


class Matcher:
    """Matches orders on books and settles fills in a ledger.

    * Denomination. GTC/GTD orders count shares: a BUY wants `taker_amount` shares at the limit
      `maker_amount / taker_amount`, a SELL gives `maker_amount` shares at `taker_amount / maker_amount`;
      that ratio must be exactly a price on the tick grid. FOK/FAK BUY spend up to `maker_amount` pUSD,
      FOK/FAK SELL sell up to `maker_amount` shares; their ratio is only a worst price, turned into the
      integer bound floor(ratio) for a BUY and ceil(ratio) for a SELL — exactly equivalent to comparing
      with cross-multiplication, since every level price is an integer of micro-pUSD.
    * Matching walks the opposite YES-space side best level first, FIFO within a level, and trades at
      the maker's price (the taker keeps any improvement). One `Trade` is recorded per taker order and
      price level, listing every maker it filled there (as the venue's multi-maker trades do).
    * Match type per maker: opposite sides → COMPLEMENTARY, both BUY → MINT, both SELL → MERGE. At YES
      level price a the YES party trades at a and the NO party at 1 − a, so mint payments and merge
      receipts add up to one pUSD per share.
    * Rounding (per maker fill of x micro-shares): makers never lose to rounding — a maker BUY pays
      floor(x·p), a maker SELL receives ceil(x·p) at its own price p; the taker takes the complement,
      which always works out to ceil(x·π) paid by a taker BUY and floor(x·π) received by a taker SELL
      at the taker's price π. Hence buyer-pays == seller-receives, MINT payments sum to exactly x and
      MERGE receipts to exactly x, and a resting BUY's payments never exceed the reservation released
      (ceil(R·p) − ceil((R−x)·p) ≥ floor(x·p)).
    * Funds. §4.9 first: a BUY needs `maker_amount` pUSD free, a SELL `maker_amount` shares free
      (free = min(balance − pending, allowance) − reserved). Then, for a taker BUY, the exact plan is
      checked before anything moves: its payments (with their rounding) + taker fees + the reservation
      of any remainder that will rest must fit in free pUSD — so fees can always be paid and nothing
      goes negative. A taker SELL's fee is taken from its proceeds and never exceeds them (contract cap
      ≤ 5 %).
    * FOK BUY counts as fully filled when at most `FOK_BUY_DUST_MICRO` of its budget stays unspent (a
      budget-limited walk spends it to the last micro; the dust only forgives a book that is short by
      less than that). FOK SELL must sell every share. A failed FOK changes nothing: the whole plan is
      computed before the first transfer.
    * Marketable BUY minimum $1 applies to FOK/FAK BUY and to a GTC/GTD BUY that crosses on arrival.
      Min size and tick rules apply to GTC/GTD only. postOnly is refused with FOK/FAK.
    * Proceeds are pending. Whatever a party receives (shares bought, pUSD from a sale or a merge, the fee
      collector's fee) is credited at once but also counted as pending, which free balances leave out,
      until the settlement pipeline mines the trade (see `settlement`). Payments leave at once.
    * Self-trades are allowed (the reference knows no self-trade prevention).
    """

    __slots__ = ("ledger", "trade_ids")

    def __init__(self, ledger: Ledger, trade_ids: TradeIds | None = None) -> None:
        self.ledger = ledger
        self.trade_ids = trade_ids or TradeIds()

    def submit(self, book: MatchingBook, o: Order, post_only: bool, now_ms: int) -> list[Trade]:
        """Check funds, match `o` against `book`, settle, and rest what a GTC/GTD leaves.

        Returns the trades made (empty if `o` only rested). On any error nothing has changed.
        """
        acct = o.account
        is_buy = o.side is _BUY
        need = o.maker_amount
        if is_buy:
            bal, allow = acct.pusd - acct.pusd_pending, acct.pusd_allowance
            if (bal if bal < allow else allow) - acct.pusd_reserved < need:
                raise _insufficient()
        elif acct.free_tokens(o.asset_id) < need:
            raise _insufficient()

        tick = book.tick
        is_bid = o.is_bid
        yes_lim = o.price if o.is_yes else MICRO - o.price
        if is_bid:
            bound = yes_lim // tick
            crosses = book.best_ask <= bound
        else:
            bound = -(-yes_lim // tick)
            crosses = 0 < bound <= book.best_bid
        ot = o.order_type
        limit_order = ot is _GTC or ot is _GTD
        if not crosses:
            if limit_order:
                self._rest(book, o, acct)
                return []
            if ot is _FOK:
                raise FokNotFilledError(venue_errors.FOK_NOT_FILLED)
            raise FakNoMatchError(venue_errors.FAK_NO_MATCH)
        if post_only:
            raise PostOnlyWouldCrossError(venue_errors.POST_ONLY_CROSSES)
        if is_buy and limit_order and o.maker_amount < MICRO:
            raise BelowMinimumSizeError(venue_errors.marketable_buy_min(o.maker_amount))
        return self._match(book, o, acct, is_bid, bound, limit_order, now_ms)

    def _match(
        self, book: MatchingBook, o: Order, acct: Account, is_bid: bool, bound: int, limit_order: bool, now_ms: int
    ) -> list[Trade]:
        is_buy = o.side is _BUY
        is_yes = o.is_yes
        budget_mode = is_buy and not limit_order
        left = o.maker_amount if budget_mode else o.remaining
        tick = book.tick

        # Plan: read-only walk; nothing moves until the plan is known to be acceptable.
        plan: list[_Level] = []
        if is_bid:
            queues, n = book.ask_q, book.n
            i = book.best_ask
            in_range = i <= bound
        else:
            queues, n = book.bid_q, 0
            i = book.best_bid
            in_range = i >= bound
        stop = False
        while in_range and i != n:
            a = i * tick
            pi = a if is_yes else MICRO - a
            fills: list[_Fill] = []
            lvl_x = lvl_cash = 0
            for m in queues[i] or ():
                if not m.resting:
                    continue
                r = m.remaining
                if budget_mode:
                    x = left * MICRO // pi
                    if x == 0:
                        stop = True
                        break
                    if x > r:
                        x = r
                    cash = -(-x * pi // MICRO)
                    left -= cash
                else:
                    x = r if r < left else left
                    left -= x
                    cash = -(-x * pi // MICRO) if is_buy else x * pi // MICRO
                fills.append((m, x, cash))
                lvl_x += x
                lvl_cash += cash
                if left == 0:
                    stop = True
                    break
            if fills:
                plan.append((i, pi, fills, lvl_x, lvl_cash))
            if stop:
                break
            i = book.next_ask(i) if is_bid else book.next_bid(i)
            in_range = i <= bound if is_bid else i >= bound

        if o.order_type is _FOK and (not plan or left > (FOK_BUY_DUST_MICRO if budget_mode else 0)):
            raise FokNotFilledError(venue_errors.FOK_NOT_FILLED)
        if not plan:
            raise FakNoMatchError(venue_errors.FAK_NO_MATCH)

        curve = book.spec.fee
        fees = [taker_fee(curve, lvl[3], lvl[1], lvl[4]) for lvl in plan] if curve.rate_num else [0] * len(plan)
        rests = limit_order and left > 0
        if is_buy:
            need = sum(lvl[4] for lvl in plan) + sum(fees)
            if rests:
                need += -(-left * o.price // MICRO)
            if need > acct.free_pusd():
                raise _insufficient()

        # Commit.
        ledger = self.ledger
        collector = ledger.fee_collector
        rate_bps = curve.rate_bps
        market = o.market
        trades: list[Trade] = []
        maker_bid = not is_bid
        new_id = self.trade_ids.next
        for (i, pi, fills, lvl_x, lvl_cash), fee in zip(plan, fees, strict=True):
            trade_id = new_id()
            makers: list[MakerFill] = []
            done = 0
            minted = 0
            for m, x, _cash in fills:
                macct = m.account
                pm = m.price
                rem = m.remaining - x
                if m.side is _BUY:
                    amt = x * pm // MICRO
                    macct.pusd -= amt
                    if macct.pusd_allowance != MAX_UINT256:
                        macct.pusd_allowance -= amt
                    new_res = -(-rem * pm // MICRO)
                    macct.pusd_reserved -= m.reserved - new_res
                    m.reserved = new_res
                    aid = m.asset_id
                    toks = macct.tokens
                    toks[aid] = toks.get(aid, 0) + x
                    toks = macct.token_pending
                    toks[aid] = toks.get(aid, 0) + x
                    if is_buy:
                        mtype = _MINT
                        minted += x
                    else:
                        mtype = _COMPLEMENTARY
                else:
                    amt = -(-x * pm // MICRO)
                    macct.give_tokens(m.asset_id, x)
                    macct.token_reserved[m.asset_id] -= x
                    m.reserved -= x
                    macct.pusd += amt
                    macct.pusd_pending += amt
                    if is_buy:
                        mtype = _COMPLEMENTARY
                    else:
                        mtype = _MERGE
                        minted -= x
                m.remaining = rem
                m.size_matched += x
                if rem == 0:
                    m.resting = False
                    m.status = MATCHED
                    done += 1
                m.associate_trades += (trade_id,)
                makers.append(
                    MakerFill(
                        m.order_id,
                        m.owner,
                        m.maker,
                        x,
                        pm,
                        amt,
                        m.asset_id,
                        m.outcome,
                        0 if m.is_yes else 1,
                        m.side,
                        mtype,
                    )
                )
            book.consumed(maker_bid, i, lvl_x, done)
            if minted:
                ledger.lock(market, minted)
            if is_buy:
                acct.pay_pusd(lvl_cash + fee)
                acct.get_tokens(o.asset_id, lvl_x)
                acct.add_pending_tokens(o.asset_id, lvl_x)
                o.size_matched += lvl_cash if budget_mode else lvl_x
            else:
                acct.give_tokens(o.asset_id, lvl_x)
                acct.pusd += lvl_cash - fee
                acct.pusd_pending += lvl_cash - fee
                o.size_matched += lvl_x
            if fee:
                collector.pusd += fee
                collector.pusd_pending += fee
            o.associate_trades += (trade_id,)
            trades.append(
                Trade(
                    trade_id,
                    o.order_id,
                    market,
                    o.asset_id,
                    o.outcome,
                    0 if is_yes else 1,
                    o.side,
                    pi,
                    lvl_x,
                    lvl_cash,
                    fee,
                    rate_bps,
                    o.owner,
                    o.maker,
                    now_ms,
                    makers,
                )
            )

        last = plan[-1][0]
        if is_bid:
            book.best_ask = last if book.ask_size[last] else book.next_ask(last)
        else:
            book.best_bid = last if book.bid_size[last] else book.next_bid(last)

        if rests:
            o.remaining = left
            self._rest(book, o, acct)
        else:
            o.remaining = 0
            o.status = MATCHED
        return trades

    def _rest(self, book: MatchingBook, o: Order, acct: Account) -> None:
        if o.side is _BUY:
            res = -(-o.remaining * o.price // MICRO)
            acct.pusd_reserved += res
        else:
            res = o.remaining
            acct.reserve_tokens(o.asset_id, res)
        o.reserved = res
        o.level = (o.price if o.is_yes else MICRO - o.price) // book.tick
        o.status = LIVE
        book.add(o)

    def cancel(self, book: MatchingBook, o: Order) -> None:
        """Take a resting order off the book and release what it reserved."""
        acct = o.account
        if o.side is _BUY:
            acct.pusd_reserved -= o.reserved
        else:
            acct.release_tokens(o.asset_id, o.reserved)
        o.reserved = 0
        book.remove(o)
        o.status = CANCELED
