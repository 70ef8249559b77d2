"""Invariant checks over a whole exchange: conservation, solvency, reservations, book integrity.

Not used on the hot path; tests, fault-injection runs and a debug endpoint call `audit()` and expect
an empty list. Every check is an exact integer comparison.
"""

from __future__ import annotations

from collections import defaultdict

from polyoms.core.enums import Side
from polyoms.exchange.engine import Exchange


def audit(ex: Exchange) -> list[str]:
    """Every broken invariant, described; [] when the exchange is consistent."""
    problems: list[str] = []
    ledger = ex.ledger

    # Solvency: nothing negative, reservations covered by balances.
    for a in ledger:
        if a.pusd < 0 or a.pusd_reserved < 0:
            problems.append(f"{a.address}: negative pUSD {a.pusd} / reserved {a.pusd_reserved}")
        if a.pusd_reserved > min(a.pusd, a.pusd_allowance):
            problems.append(f"{a.address}: pUSD reserved {a.pusd_reserved} > balance {a.pusd}")
        for tid, bal in a.tokens.items():
            res = a.token_reserved.get(tid, 0)
            if bal < 0 or res < 0 or res > bal:
                problems.append(f"{a.address}: token {tid[:12]}… balance {bal} reserved {res}")

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

    # Conservation: pUSD only moves between accounts and the collateral behind minted sets.
    locked = sum(ledger.collateral_locked.values())
    if ledger.total_pusd() + locked != ledger.funded_pusd:
        problems.append(f"pUSD not conserved: balances {ledger.total_pusd()} + locked {locked} != {ledger.funded_pusd}")
    for book in ex.books.values():
        minted = ledger.collateral_locked.get(book.market, 0)
        for tid in (book.yes_token_id, book.no_token_id):
            supply = ledger.total_tokens(tid)
            if supply != ledger.funded_tokens.get(tid, 0) + minted:
                problems.append(f"token {tid[:12]}… supply {supply} != funded + minted {minted}")

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
