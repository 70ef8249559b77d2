"""`audit()` must notice broken invariants, or the property tests would prove nothing."""

from __future__ import annotations

from exchange_helpers import PLAIN, Harness

from polyoms.core.enums import Side
from polyoms.exchange.audit import audit

YES, NO = PLAIN.yes_token_id, PLAIN.no_token_id


def busy(h: Harness) -> None:
    a, b = h.user("100", {YES: "10"}), h.user("100")
    h.buy(a, NO, "0.40", "10")
    h.sell(a, YES, "0.70", "10")
    h.buy(b, YES, "0.65", "5")
    h.buy(b, YES, "0.50", "5")
    assert audit(h.ex) == []


def test_detects_pusd_created_from_nothing(h: Harness) -> None:
    busy(h)
    next(iter(h.ex.ledger)).pusd += 1
    assert any("pUSD not conserved" in p for p in audit(h.ex))


def test_detects_token_supply_drift(h: Harness) -> None:
    busy(h)
    acct = h.ex.ledger.get(f"0x{2:040x}")
    assert acct is not None
    acct.tokens[YES] += 1
    assert any("supply" in p for p in audit(h.ex))


def test_detects_wrong_reservation(h: Harness) -> None:
    busy(h)
    acct = h.ex.ledger.get(f"0x{1:040x}")
    assert acct is not None
    acct.pusd_reserved += 1
    assert any("reserved" in p for p in audit(h.ex))


def test_detects_negative_balance_and_crossed_book(h: Harness) -> None:
    busy(h)
    acct = h.ex.ledger.get(f"0x{2:040x}")
    assert acct is not None
    acct.pusd = -1
    book = h.ex.books[PLAIN.condition_id]
    (o,) = [x for x in h.ex.open_orders() if x.side is Side.SELL]
    book.bid_size[o.level] += 1  # a phantom bid level at the ask's price
    book.best_bid = o.level
    problems = audit(h.ex)
    assert any("negative" in p for p in problems)
    assert any("crossed" in p for p in problems)
    assert any("totals wrong" in p for p in problems)
