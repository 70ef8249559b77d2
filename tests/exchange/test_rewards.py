"""Liquidity-rewards scoring: the venue's worked example, on the formula and on a real book, and its
properties (score falls with distance; one-sided quoting earns a third inside [0.10, 0.90], nothing
outside)."""

from __future__ import annotations

from fractions import Fraction

from exchange_helpers import Harness
from hypothesis import given
from hypothesis import strategies as st

from polyoms.core.units import MICRO
from polyoms.exchange.markets import RewardsConfig, binary_market
from polyoms.exchange.rewards import (
    adjusted_midpoint,
    is_scoring,
    maker_scores,
    maker_sides,
    normalized,
    order_score,
    q_min,
    side_score,
)

ONE = Fraction(1)
CENT = 10_000
V = 3 * CENT  # the worked example's max spread, 3 ¢


def test_docs_worked_example_formula() -> None:
    # docs market-makers/liquidity-rewards, "Worked Example": adjusted midpoint 0.50, v = 3 ¢.
    # First side: 100 @ 1 ¢, 200 @ 2 ¢, 100 @ 1 ¢ (the ask on m').
    q_one = side_score([(CENT, 100 * MICRO), (2 * CENT, 200 * MICRO), (CENT, 100 * MICRO)], V, ONE)
    # Second side: 100 @ 1.5 ¢, 100 @ 2 ¢, 200 @ 0.5 ¢.
    q_two = side_score([(15_000, 100 * MICRO), (2 * CENT, 100 * MICRO), (5_000, 200 * MICRO)], V, ONE)
    assert q_one == Fraction(1000, 9) and round(float(q_one), 3) == 111.111
    assert q_two == 175
    assert q_min(q_one, q_two, 500_000) == Fraction(1000, 9)


def _example_book() -> tuple[Harness, str, str]:
    spec = binary_market("rewards-example", "Example?", tick="0.001", rewards=RewardsConfig(V, 50 * MICRO, 10 * MICRO))
    h = Harness([spec])
    yes, no = spec.yes_token_id, spec.no_token_id
    trader = h.user("1000", {yes: "300", no: "100"})
    other = h.user("1000")
    # Q_one = the trader's YES-space bids: BUY YES 0.49 and 0.48, and SELL NO 0.51 (= a YES bid at 0.49).
    h.buy(trader, yes, "0.49", "100")
    h.buy(trader, yes, "0.48", "200")
    h.sell(trader, no, "0.51", "100")
    # Q_two = its YES-space asks, at the example's second-side spreads: SELL YES 0.515 (1.5 ¢),
    # BUY NO 0.48 (= a YES ask at 0.52, 2 ¢), SELL YES 0.505 (0.5 ¢). (The docs list the second side's
    # orders loosely; these follow equations 2 and 3 with the same spreads and sizes.)
    h.sell(trader, yes, "0.515", "100")
    h.buy(trader, no, "0.48", "100")
    h.sell(trader, yes, "0.505", "200")
    # Another maker's bid makes the adjusted midpoint exactly 0.50: (0.495 + 0.505) / 2.
    h.buy(other, yes, "0.495", "100")
    return h, trader.address, other.address


def test_docs_worked_example_on_one_book() -> None:
    h, trader, other = _example_book()
    book = next(iter(h.ex.books.values()))
    cfg = book.spec.rewards
    assert cfg is not None
    assert adjusted_midpoint(book, cfg.min_size) == 500_000
    one, two = maker_sides(book, cfg, 500_000)[trader]
    assert (one, two) == (Fraction(1000, 9), Fraction(175))
    scores = maker_scores(book, cfg)
    assert scores[trader] == Fraction(1000, 9)
    # The other maker is one-sided: a third of ((3 − 0.5)/3)² × 100.
    assert scores[other] == Fraction(25, 36) * 100 / 3
    shares = normalized(scores)
    assert sum(shares.values()) == 1
    assert all(is_scoring(book, cfg, o) for o in h.ex.open_orders())
    h.check()


def test_small_and_far_orders_do_not_score() -> None:
    spec = binary_market("rewards-small", "Small?", rewards=RewardsConfig(V, 50 * MICRO, 10 * MICRO))
    h = Harness([spec])
    u = h.user("1000")
    h.buy(u, spec.yes_token_id, "0.49", "100")
    seller = h.user("0", {spec.yes_token_id: "200"})
    h.sell(seller, spec.yes_token_id, "0.51", "100")
    small = h.buy(u, spec.yes_token_id, "0.48", "10")  # below the 50-share minimum
    far = h.buy(u, spec.yes_token_id, "0.47", "100")  # 3 ¢ away: S = 0
    book = next(iter(h.ex.books.values()))
    assert spec.rewards is not None
    for res in (small, far):
        order = h.ex.get_order(res.order_id)
        assert order is not None and order.resting
        assert not is_scoring(book, spec.rewards, order)
    one, _ = maker_sides(book, spec.rewards, 500_000)[u.address]
    assert one == Fraction(4, 9) * 100  # only the 0.49 bid


def test_adjusted_midpoint_skips_dust_at_the_touch() -> None:
    spec = binary_market("rewards-dust", "Dust?", rewards=RewardsConfig(V, 50 * MICRO, 10 * MICRO))
    h = Harness([spec])
    u = h.user("1000", {spec.yes_token_id: "500"})
    h.buy(u, spec.yes_token_id, "0.45", "100")
    h.buy(u, spec.yes_token_id, "0.49", "5")  # dust: below the minimum size
    h.sell(u, spec.yes_token_id, "0.55", "100")
    book = next(iter(h.ex.books.values()))
    assert adjusted_midpoint(book, 50 * MICRO) == 500_000
    assert adjusted_midpoint(book, 1) == 520_000


@given(
    v=st.integers(1, 200_000),
    s1=st.integers(0, 200_000),
    s2=st.integers(0, 200_000),
    b=st.fractions(min_value=Fraction(1, 10), max_value=10),
)
def test_score_falls_with_distance(v: int, s1: int, s2: int, b: Fraction) -> None:
    near, far = sorted((s1, s2))
    a, z = order_score(v, near, b), order_score(v, far, b)
    assert a >= z >= 0
    if near < far < v:
        assert a > z
    if far >= v:
        assert z == 0
    assert order_score(v, 0, b) == b


@given(
    q=st.fractions(min_value=0, max_value=10**6),
    mid=st.integers(0, MICRO),
)
def test_one_sided_earns_a_third_inside_and_nothing_outside(q: Fraction, mid: int) -> None:
    inside = 100_000 <= mid <= 900_000
    for got in (q_min(q, Fraction(0), mid), q_min(Fraction(0), q, mid)):
        assert got == (q / 3 if inside else 0)


@given(
    q1=st.fractions(min_value=0, max_value=10**6),
    q2=st.fractions(min_value=0, max_value=10**6),
    mid=st.integers(0, MICRO),
)
def test_q_min_between_the_smaller_side_and_the_larger(q1: Fraction, q2: Fraction, mid: int) -> None:
    got = q_min(q1, q2, mid)
    assert min(q1, q2) <= got <= max(q1, q2)
    assert q_min(q1, q1, mid) == q1
