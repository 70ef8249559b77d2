"""Invariant checks over a whole exchange: conservation, solvency, reservations, pending proceeds,
settlement and redemption records, book integrity.

Not used on the hot path; tests, fault-injection runs and a debug endpoint call `audit()` and expect
an empty list. Every check is an exact integer comparison, and holds at any moment: between a match
and its settlement (proceeds pending), after a FAILED trade (reversed), after a resolution (redeemed).
"""

from __future__ import annotations

from collections import defaultdict

from polyoms.core.enums import Side
from polyoms.exchange.engine import Exchange
from polyoms.exchange.settlement import pending_by_trade, transaction_hash
from polyoms.exchange.trades import TRADE_CONFIRMED, TRADE_FAILED, TRADE_MATCHED, TRADE_MINED, TRADE_RETRYING


def audit(ex: Exchange) -> list[str]:
    """Every broken invariant, described; [] when the exchange is consistent."""
    problems: list[str] = []
    ledger = ex.ledger

    # Solvency: nothing negative, reservations covered by balances that are not pending.
    for a in ledger:
        if a.pusd < 0 or a.pusd_reserved < 0 or a.pusd_pending < 0:
            problems.append(f"{a.address}: negative pUSD {a.pusd} / reserved {a.pusd_reserved} / {a.pusd_pending}")
        if a.pusd_reserved > min(a.pusd - a.pusd_pending, a.pusd_allowance):
            problems.append(f"{a.address}: pUSD reserved {a.pusd_reserved} > balance {a.pusd} − {a.pusd_pending}")
        for tid in set(a.tokens) | set(a.token_reserved) | set(a.token_pending):
            bal, res, pend = a.tokens.get(tid, 0), a.token_reserved.get(tid, 0), a.token_pending.get(tid, 0)
            if bal < 0 or res < 0 or pend < 0 or res + pend > bal:
                problems.append(f"{a.address}: token {tid[:12]}… balance {bal} reserved {res} pending {pend}")

    # Reservations equal what open orders hold.
    want_pusd: dict[str, int] = defaultdict(int)
    want_tok: dict[tuple[str, str], int] = defaultdict(int)
    for o in ex.open_orders():
        if not o.resting or o.remaining <= 0:
            problems.append(f"open order {o.order_id} not resting or empty")
        addr = o.maker.lower()
        if o.side is Side.BUY:
            want_pusd[addr] += o.reserved
        else:
            want_tok[(addr, o.asset_id)] += o.reserved
    for a in ledger:
        if a.pusd_reserved != want_pusd.get(a.address, 0):
            problems.append(f"{a.address}: pUSD reserved {a.pusd_reserved} != open orders' {want_pusd[a.address]}")
        for tid, res in a.token_reserved.items():
            if res != want_tok.get((a.address, tid), 0):
                problems.append(f"{a.address}: token reserved {res} != open orders' {want_tok[(a.address, tid)]}")

    # Pending proceeds equal what the unmined trades (MATCHED, RETRYING) gave each party.
    want_pend_pusd, want_pend_tok = pending_by_trade(ex.all_trades, ledger)
    for a in ledger:
        want = want_pend_pusd.get(a.address, 0)
        if a.pusd_pending != want:
            problems.append(f"{a.address}: pUSD pending {a.pusd_pending} != unmined trades' {want}")
        for tid in set(a.token_pending) | {t for (addr, t) in want_pend_tok if addr == a.address}:
            if a.token_pending.get(tid, 0) != want_pend_tok.get((a.address, tid), 0):
                problems.append(f"{a.address}: token {tid[:12]}… pending {a.token_pending.get(tid, 0)} wrong")

    # Settlement records: one queued step per trade not final, hashes exactly on mined trades.
    queued = ex.in_flight_trades()
    in_flight = {id(t) for t in queued}
    if len(in_flight) != len(queued):
        problems.append("a trade is queued twice in settlement")
    for t in ex.all_trades:
        final = t.status in (TRADE_CONFIRMED, TRADE_FAILED)
        if t.status not in (TRADE_MATCHED, TRADE_MINED, TRADE_CONFIRMED, TRADE_RETRYING, TRADE_FAILED):
            problems.append(f"trade {t.trade_id}: unknown status {t.status}")
        if final == (id(t) in in_flight):
            problems.append(f"trade {t.trade_id}: status {t.status} but {'' if final else 'not '}queued")
        mined = t.status in (TRADE_MINED, TRADE_CONFIRMED)
        if t.transaction_hash != (transaction_hash(t.trade_id) if mined else ""):
            problems.append(f"trade {t.trade_id}: transaction hash {t.transaction_hash!r} in status {t.status}")
        if bool(t.err_msg) != (t.status == TRADE_FAILED):
            problems.append(f"trade {t.trade_id}: err_msg {t.err_msg!r} in status {t.status}")

    # Conservation: pUSD only moves between accounts and the collateral behind minted sets, which
    # redemption pays out (locked may then go below 0: winning shares that were funded, not minted).
    locked = sum(ledger.collateral_locked.values())
    if ledger.total_pusd() + locked != ledger.funded_pusd:
        problems.append(f"pUSD not conserved: balances {ledger.total_pusd()} + locked {locked} != {ledger.funded_pusd}")
    for book in ex.books.values():
        minted = ledger.collateral_locked.get(book.market, 0) + ledger.redeemed.get(book.market, 0)
        for tid in (book.yes_token_id, book.no_token_id):
            supply = ledger.total_tokens(tid)
            burned = ledger.burned_tokens.get(tid, 0)
            if supply != ledger.funded_tokens.get(tid, 0) + minted - burned:
                problems.append(f"token {tid[:12]}… supply {supply} != funded + minted {minted} − burned {burned}")
        if book.spec.resolved and (ledger.total_tokens(book.yes_token_id) or ledger.total_tokens(book.no_token_id)):
            problems.append(f"{book.market[:10]}… resolved but shares remain")

    # Books: level totals match their live orders, best pointers are right, nothing crossed.
    for book in ex.books.values():
        for bid_side, sizes, counts in ((True, book.bid_size, book.bid_count), (False, book.ask_size, book.ask_count)):
            for i in range(book.n + 1):
                live = book.queue(bid_side, i)
                if sum(o.remaining for o in live) != sizes[i] or len(live) != counts[i]:
                    problems.append(f"{book.market[:10]}… level {i} ({'bid' if bid_side else 'ask'}) totals wrong")
        bids = [i for i in range(1, book.n) if book.bid_size[i]]
        asks = [i for i in range(1, book.n) if book.ask_size[i]]
        if book.best_bid != (bids[-1] if bids else 0) or book.best_ask != (asks[0] if asks else book.n):
            problems.append(f"{book.market[:10]}… best pointers wrong: {book.best_bid}/{book.best_ask}")
        if book.is_crossed():
            problems.append(f"{book.market[:10]}… crossed at rest: bid {book.best_bid} >= ask {book.best_ask}")
    return problems
