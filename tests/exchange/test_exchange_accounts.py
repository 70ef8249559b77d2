"""Balances, reservations and allowances (doc §4.9)."""

from __future__ import annotations

import pytest
from exchange_helpers import PLAIN, Harness, m

from polyoms.core.enums import OrderType
from polyoms.core.errors import InputError, InsufficientBalanceError, InvalidAddressError, InvalidOrderError
from polyoms.exchange.accounts import MAX_UINT256, Ledger

YES, NO = PLAIN.yes_token_id, PLAIN.no_token_id


def test_fund_and_read_back(h: Harness) -> None:
    u = h.user("12.5", {YES: "3"})
    bal = h.ex.balances(u.address)
    assert (bal.pusd, bal.pusd_reserved, bal.pusd_available, bal.pusd_allowance) == (
        m("12.5"),
        0,
        m("12.5"),
        MAX_UINT256,
    )
    assert bal.token(YES).balance == m("3") and bal.token(NO).balance == 0
    assert h.ex.balances(u.address.upper().replace("0X", "0x")).pusd == m("12.5")
    assert h.ex.balances("0x" + "9" * 40).pusd == 0
    with pytest.raises(InvalidOrderError):
        h.ex.fund(u.address, 0, {"123": 5})
    with pytest.raises(InputError):
        h.ex.fund(u.address, -1)
    with pytest.raises(InvalidAddressError):
        h.ex.fund("0x1234", 1)


def test_buy_reserves_pusd_sell_reserves_tokens_cancel_releases(h: Harness) -> None:
    u = h.user("10", {YES: "10"})
    r1 = h.buy(u, YES, "0.40", "20")
    bal = h.ex.balances(u.address)
    assert (bal.pusd, bal.pusd_reserved, bal.pusd_available) == (m("10"), m("8"), m("2"))
    with pytest.raises(InsufficientBalanceError):
        h.buy(u, YES, "0.40", "6")  # needs 2.40 > 2 free
    assert h.buy(u, YES, "0.40", "5").status == "live"
    r3 = h.sell(u, YES, "0.60", "10")
    assert h.ex.balances(u.address).token(YES).reserved == m("10")
    with pytest.raises(InsufficientBalanceError):
        h.sell(u, YES, "0.70", "5")
    h.ex.cancel(r1.order_id, u.owner)
    h.ex.cancel(r3.order_id, u.owner)
    bal = h.ex.balances(u.address)
    assert (bal.pusd_reserved, bal.token(YES).reserved) == (m("2"), 0)
    h.check()


def test_partial_fill_shrinks_the_makers_reservation(h: Harness) -> None:
    b = h.user("100")
    h.buy(b, YES, "0.40", "50")
    s = h.user("0", {YES: "20"})
    h.sell(s, YES, "0.40", "20")
    bal = h.ex.balances(b.address)
    assert (bal.pusd, bal.pusd_reserved) == (m("92"), m("12"))
    h.check()


def test_market_buy_needs_its_whole_budget_free(h: Harness) -> None:
    s = h.user("0", {YES: "100"})
    h.sell(s, YES, "0.50", "100")
    b = h.user("10")
    with pytest.raises(InsufficientBalanceError):
        h.market_buy(b, YES, "10.01", "0.50")
    assert h.market_buy(b, YES, "10", "0.50").taking_amount == m("20")
    assert h.pusd(b) == 0
    h.check()


def test_allowance_caps_what_can_be_committed_and_shrinks_on_spend(h: Harness) -> None:
    b = h.user("100")
    h.ex.set_allowance(b.address, m("10"))
    with pytest.raises(InsufficientBalanceError):
        h.buy(b, YES, "0.50", "21")
    s = h.user("0", {YES: "20"})
    h.sell(s, YES, "0.50", "20")
    h.buy(b, YES, "0.50", "20")
    bal = h.ex.balances(b.address)
    assert (bal.pusd, bal.pusd_allowance, bal.pusd_available) == (m("90"), 0, 0)
    with pytest.raises(InsufficientBalanceError):
        h.buy(b, YES, "0.10", "10")
    # Token allowance for SELLs (on shares that are settled: bought shares are pending until MINED).
    h.clock.advance(h.ex.settlement.config.mined_delay_ms)
    h.ex.set_allowance(b.address, m("5"), YES)
    with pytest.raises(InsufficientBalanceError):
        h.sell(b, YES, "0.90", "6")
    assert h.sell(b, YES, "0.90", "5").status == "live"
    with pytest.raises(InputError):
        h.ex.set_allowance(b.address, -1)
    h.check()


def test_a_resting_sell_cannot_be_sold_twice(h: Harness) -> None:
    s = h.user("0", {YES: "10"})
    h.sell(s, YES, "0.80", "10")
    b = h.user("100")
    h.buy(b, YES, "0.70", "10")
    with pytest.raises(InsufficientBalanceError):
        h.market_sell(s, YES, "10", "0.70", ot=OrderType.FAK)
    h.check()


def test_ledger_refuses_bad_funding_values() -> None:
    ledger = Ledger()
    with pytest.raises(InputError):
        ledger.fund("0x" + "1" * 40, 1, {"5": -3})
    with pytest.raises(InputError):
        ledger.fund("0x" + "1" * 40, True)
    assert ledger.funded_pusd == 0 and ledger.total_pusd() == 0
