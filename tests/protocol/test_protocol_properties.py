"""Properties of built orders (hypothesis): amounts, implied price, signatures, wire round trip."""

from __future__ import annotations

import dataclasses
from fractions import Fraction
from functools import cache

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from polyoms.core.enums import OrderType, Side, SignatureType
from polyoms.core.errors import InvalidAmountError, InvalidSignatureError, InvalidSizeError, TooManyDecimalsError
from polyoms.core.units import MICRO, TICK_SIZES, TickSize, fmt_micro, to_micro
from polyoms.polymarket.protocol.keys import Signer
from polyoms.polymarket.protocol.order import (
    OrderBuilder,
    SignedOrder,
    _order_micro,
    order_digest,
    recover_order_signer,
)
from polyoms.polymarket.protocol.wire import decode_envelope, post_order_body, signed_order_from_wire

KEYS = (
    "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80",
    "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d",
)
FUNDERS = ("0x1111111111111111111111111111111111111111", "0x00000000000Fb5C9ADea0298D729A0CB3823Cc07")
OWNER = "00000000-0000-0000-0000-000000000001"
TS = 1_777_000_000_000

SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@cache
def builder(key: str, chain_id: int, signature_type: int, funder: str | None) -> OrderBuilder:
    return OrderBuilder(Signer(key), chain_id=chain_id, signature_type=signature_type, funder=funder)


TICKS = sorted(TICK_SIZES.values(), key=lambda t: t.micro)


@st.composite
def tick_and_price(draw: st.DrawFn) -> tuple[TickSize, int]:
    tick = draw(st.sampled_from(TICKS))
    steps = MICRO // tick.micro
    return tick, tick.micro * draw(st.integers(1, steps - 1))


hundredths = st.one_of(
    st.integers(1, 10_000), st.integers(1, 10**7), st.integers(1, 10**11)
)  # 0.01 .. 10^9 shares or pUSD


@st.composite
def builders(draw: st.DrawFn) -> OrderBuilder:
    signature_type = draw(st.integers(0, 3))
    funder = None if signature_type == 0 else draw(st.sampled_from(FUNDERS))
    return builder(draw(st.sampled_from(KEYS)), draw(st.sampled_from((137, 80002))), signature_type, funder)


@st.composite
def limit_orders(draw: st.DrawFn) -> tuple[SignedOrder, int, int, TickSize]:
    b = draw(builders())
    tick, price = draw(tick_and_price())
    size = draw(hundredths) * 10_000
    order_type = draw(st.sampled_from(list(OrderType)))
    timestamp_ms = TS + draw(st.integers(0, 10**9))
    order = b.limit(
        draw(st.integers(0, 2**256 - 1)),
        draw(st.sampled_from(list(Side))),
        fmt_micro(price),
        fmt_micro(size),
        tick=tick,
        neg_risk=draw(st.booleans()),
        order_type=order_type,
        expiration=timestamp_ms // 1000 + draw(st.integers(61, 10**7)) if order_type is OrderType.GTD else 0,
        post_only=not order_type.is_marketable_only and draw(st.booleans()),
        salt=draw(st.integers(0, 2**53 - 1)),
        timestamp_ms=timestamp_ms,
    )
    return order, price, size, tick


@st.composite
def market_orders(draw: st.DrawFn) -> tuple[SignedOrder, int, int, TickSize]:
    b = draw(builders())
    tick, price = draw(tick_and_price())
    side = draw(st.sampled_from(list(Side)))
    amount = draw(hundredths) * 10_000
    if side is Side.BUY:
        amount = max(amount, MICRO)
    order = b.market(
        draw(st.integers(0, 2**256 - 1)),
        side,
        fmt_micro(amount),
        fmt_micro(price),
        tick=tick,
        neg_risk=draw(st.booleans()),
        order_type=draw(st.sampled_from((OrderType.FOK, OrderType.FAK))),
        salt=draw(st.integers(0, 2**53 - 1)),
        timestamp_ms=TS + draw(st.integers(0, 10**9)),
    )
    return order, price, amount, tick


def implied_price(order: SignedOrder) -> Fraction:
    if order.side is Side.BUY:
        return Fraction(order.maker_amount, order.taker_amount)
    return Fraction(order.taker_amount, order.maker_amount)


@SETTINGS
@given(limit_orders())
def test_limit_amounts_are_exact_and_never_exceed_what_was_asked(case: tuple[SignedOrder, int, int, TickSize]) -> None:
    order, price, size, _ = case
    notional = Fraction(size * price, MICRO)
    assert order.maker_amount > 0 and order.taker_amount > 0
    if order.side is Side.BUY:
        assert order.maker_amount <= notional  # pays at most size x price
        assert order.maker_amount == notional  # ... exactly, with two-decimal sizes on the grid
        assert order.taker_amount == size
    else:
        assert order.maker_amount <= size  # sells at most `size`
        assert order.maker_amount == size
        assert order.taker_amount == notional
    assert implied_price(order) == Fraction(price, MICRO)  # limit orders: exactly the price asked
    assert order.price == Fraction(price, MICRO)
    assert order.size_and_price == (size, price)


@SETTINGS
@given(market_orders())
def test_market_amounts_never_exceed_the_budget_and_price_is_within_a_tick(
    case: tuple[SignedOrder, int, int, TickSize],
) -> None:
    order, price, amount, tick = case
    assert order.maker_amount > 0 and order.taker_amount >= 0
    assert order.maker_amount <= amount  # BUY: pUSD spent <= amount; SELL: shares sold <= amount
    assert order.maker_amount == amount
    implied = implied_price(order)
    assert abs(implied - Fraction(price, MICRO)) <= Fraction(tick.micro, MICRO)
    if order.side is Side.BUY:
        # shares are rounded down: the worst price can only move up (never below the price asked)
        assert implied >= Fraction(price, MICRO)
        assert order.taker_amount <= Fraction(amount * MICRO, price)
        # ...and by less than one unit of the tick's amount precision
        assert Fraction(amount * MICRO, price) - order.taker_amount < 10 ** (6 - tick.amount_decimals)
    else:
        assert implied == Fraction(price, MICRO)


@SETTINGS
@given(st.one_of(limit_orders(), market_orders()))
def test_signature_recovers_to_the_signer_for_every_signature_type(
    case: tuple[SignedOrder, int, int, TickSize],
) -> None:
    order = case[0]
    assert recover_order_signer(order) in {Signer(k).address for k in KEYS}
    assert "0x" + order_digest(order).hex() == order.order_id
    if order.signature_type is SignatureType.EOA:
        assert order.maker == order.signer == recover_order_signer(order)
    elif order.signature_type is SignatureType.POLY_1271:
        assert order.maker == order.signer  # the deposit wallet is both
        assert len(bytes.fromhex(order.signature[2:])) == 317
    else:
        assert order.signer == recover_order_signer(order) != order.maker


@SETTINGS
@given(st.one_of(limit_orders(), market_orders()), st.booleans())
def test_wire_round_trip_gives_an_equal_order(case: tuple[SignedOrder, int, int, TickSize], defer: bool) -> None:
    order = case[0]
    body = post_order_body(order, OWNER, defer_exec=defer)
    envelope = decode_envelope(body)
    assert envelope.owner == OWNER and envelope.deferExec is defer
    again = signed_order_from_wire(envelope, chain_id=order.chain_id, neg_risk=order.neg_risk)
    assert again == order
    assert again.order_id == order.order_id
    assert post_order_body(again, OWNER, defer_exec=defer) == body


@SETTINGS
@given(st.one_of(limit_orders(), market_orders()))
def test_a_tampered_order_no_longer_verifies(case: tuple[SignedOrder, int, int, TickSize]) -> None:
    order = case[0]
    for tampered in (
        dataclasses.replace(order, taker_amount=order.taker_amount + 1),
        dataclasses.replace(order, salt=order.salt ^ 1),
        dataclasses.replace(order, neg_risk=not order.neg_risk),  # signed for the other exchange
        dataclasses.replace(order, chain_id=80002 if order.chain_id == 137 else 137),
    ):
        with pytest.raises(InvalidSignatureError):
            recover_order_signer(tampered)


@settings(max_examples=3000, deadline=None)
@given(
    st.one_of(
        st.text(alphabet="0123456789.-+eE _٣", max_size=14),
        st.from_regex(r"\A[0-9]{1,32}(\.[0-9]{0,9})?\Z"),
        st.floats(allow_nan=True, allow_infinity=True),
        st.floats(min_value=0, max_value=1e6).map(lambda f: round(f, 2)),
        st.integers(-(10**40), 10**40),
        st.decimals(allow_nan=True).map(str),
    )
)
@example("52189615597593890471191.974194")  # 29 significant digits: once rounded by Decimal's 28
@example("1.500000000")
@example("007.25")
@example("5.")
@example(" 1")
def test_the_fast_number_path_equals_to_micro(value: str | float | int) -> None:
    """`OrderBuilder.limit`'s plain-decimal fast path gives exactly what `to_micro` gives (or refuses)."""
    try:
        expected: int | None = to_micro(value, "size")
    except InvalidAmountError:
        expected = None
    try:
        got: int | None = _order_micro(value, "size", InvalidSizeError, TooManyDecimalsError)
    except InvalidSizeError:
        got = None
    assert got == expected
