"""Every bad order input raises its typed error, before anything is signed."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from polyoms.core.enums import OrderType, Side, SignatureType
from polyoms.core.errors import (
    BelowMinimumSizeError,
    InputError,
    InvalidAddressError,
    InvalidAmountError,
    InvalidExpirationError,
    InvalidKeyError,
    InvalidOrderError,
    InvalidOrderTypeError,
    InvalidPriceError,
    InvalidSizeError,
    InvalidTickSizeError,
    PolyomsError,
    TooManyDecimalsError,
)
from polyoms.core.units import tick_size, to_micro
from polyoms.polymarket.protocol.keys import Signer
from polyoms.polymarket.protocol.order import OrderBuilder

KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"
TS = 1_777_000_000_000  # ms; now = 1_777_000_000 s
FUNDER = "0x1111111111111111111111111111111111111111"


@pytest.fixture
def signed_digests(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[bytes]]:
    """Every digest any Signer signs during the test (wraps Signer.sign_digest)."""
    calls: list[bytes] = []
    original = Signer.sign_digest

    def spy(self: Signer, digest: bytes) -> bytes:
        calls.append(digest)
        return original(self, digest)

    monkeypatch.setattr(Signer, "sign_digest", spy)
    yield calls


@pytest.fixture
def builder() -> OrderBuilder:
    return OrderBuilder(Signer(KEY))


def limit(builder: OrderBuilder, **overrides: Any) -> Any:
    args: dict[str, Any] = dict(token_id="1234", side="BUY", price="0.56", size="21.04", tick="0.01", timestamp_ms=TS)
    args.update(overrides)
    return builder.limit(args.pop("token_id"), args.pop("side"), args.pop("price"), args.pop("size"), salt=1, **args)


def market(builder: OrderBuilder, **overrides: Any) -> Any:
    args: dict[str, Any] = dict(token_id="1234", side="BUY", amount="10", price="0.56", tick="0.01", timestamp_ms=TS)
    args.update(overrides)
    return builder.market(args.pop("token_id"), args.pop("side"), args.pop("amount"), args.pop("price"), salt=1, **args)


def rejects(exc_type: type[PolyomsError], fn: Any, signed: list[bytes], **kw: Any) -> PolyomsError:
    with pytest.raises(exc_type) as info:
        fn(**kw)
    assert signed == [], "something was signed before the input was refused"
    assert isinstance(info.value, InputError)
    assert info.value.source == "local"
    assert str(info.value)
    return info.value


def test_the_spy_sees_signatures(builder: OrderBuilder, signed_digests: list[bytes]) -> None:
    order = limit(builder)
    assert len(signed_digests) == 1 and "0x" + signed_digests[0].hex() == order.order_id


# --- prices ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("price", "tick"),
    [
        ("0.565", "0.01"),
        ("0.55", "0.1"),
        ("0.5601", "0.001"),
        ("0.502", "0.005"),
        ("0.5010", "0.0025"),
        ("0.56005", "0.0001"),
        ("0.000001", "0.0001"),
    ],
)
def test_price_off_the_tick_grid(builder: OrderBuilder, signed_digests: list[bytes], price: str, tick: str) -> None:
    err = rejects(InvalidPriceError, limit, signed_digests, builder=builder, price=price, tick=tick)
    assert err.context["tick_size"] == tick
    rejects(InvalidPriceError, market, signed_digests, builder=builder, price=price, tick=tick)


@pytest.mark.parametrize("price", ["0", "-0.5", "-0.01", 0, -1, "1", "1.0", 1, "1.5", "0.995", "0.005", "0.99001"])
def test_price_outside_tick_to_one_minus_tick(builder: OrderBuilder, signed_digests: list[bytes], price: Any) -> None:
    rejects(InvalidPriceError, limit, signed_digests, builder=builder, price=price, tick="0.01")
    rejects(InvalidPriceError, market, signed_digests, builder=builder, price=price, tick="0.01")


@pytest.mark.parametrize("tick", ["0.1", "0.01", "0.005", "0.0025", "0.001", "0.0001"])
def test_price_one_minus_tick_plus_tiny(builder: OrderBuilder, signed_digests: list[bytes], tick: str) -> None:
    t = tick_size(tick)
    top = 1_000_000 - t.micro
    ok = limit(builder, price=f"0.{top:06d}", tick=tick)
    assert ok.taker_amount == 21_040_000
    signed_digests.clear()
    rejects(InvalidPriceError, limit, signed_digests, builder=builder, price=f"0.{top + 1:06d}", tick=tick)
    rejects(InvalidPriceError, limit, signed_digests, builder=builder, price=f"0.{top:06d}0000001", tick=tick)
    rejects(InvalidPriceError, limit, signed_digests, builder=builder, price=f"0.{t.micro - 1:06d}", tick=tick)


@pytest.mark.parametrize("price", ["0.5600001", "0.56000000001", 0.1 + 0.2, "0.3" + "0" * 5 + "4"])
def test_price_with_too_many_decimals(builder: OrderBuilder, signed_digests: list[bytes], price: Any) -> None:
    rejects(InvalidPriceError, limit, signed_digests, builder=builder, price=price, tick="0.0001")
    rejects(InvalidPriceError, market, signed_digests, builder=builder, price=price, tick="0.0001")


@pytest.mark.parametrize(
    "price", ["nan", "NaN", float("nan"), "inf", float("inf"), "-inf", "abc", "", "0.5.6", None, [0.5]]
)
def test_price_not_a_finite_number(builder: OrderBuilder, signed_digests: list[bytes], price: Any) -> None:
    rejects(InvalidPriceError, limit, signed_digests, builder=builder, price=price)


# --- sizes and amounts ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "size",
    ["nan", float("nan"), "inf", float("inf"), "-inf", float("-inf"), "-1", "-0.01", -5, "0", 0, "0.00", "x", None],
)
def test_size_nan_inf_negative_zero(builder: OrderBuilder, signed_digests: list[bytes], size: Any) -> None:
    rejects(InvalidSizeError, limit, signed_digests, builder=builder, size=size)
    rejects(InvalidSizeError, market, signed_digests, builder=builder, side="SELL", amount=size)
    rejects(InvalidSizeError, market, signed_digests, builder=builder, side="BUY", amount=size)


@pytest.mark.parametrize("size", ["21.045", "0.001", "1.999", 21.045, "21.0451234", 0.1 + 0.2, "1e-3"])
def test_size_with_more_than_two_decimals(builder: OrderBuilder, signed_digests: list[bytes], size: Any) -> None:
    rejects(TooManyDecimalsError, limit, signed_digests, builder=builder, size=size)
    rejects(TooManyDecimalsError, market, signed_digests, builder=builder, side="SELL", amount=size)
    rejects(TooManyDecimalsError, market, signed_digests, builder=builder, side="BUY", amount=size)


def test_sizes_with_trailing_zeros_or_exponents_are_fine(builder: OrderBuilder) -> None:
    assert limit(builder, size="21.0400000").taker_amount == 21_040_000
    assert limit(builder, size="2104e-2").taker_amount == 21_040_000
    assert limit(builder, size=" 21.04 ").taker_amount == 21_040_000


def test_below_the_market_minimum_size(builder: OrderBuilder, signed_digests: list[bytes]) -> None:
    err = rejects(BelowMinimumSizeError, limit, signed_digests, builder=builder, size="4.99", min_size="5")
    assert err.context["size"] == "4.99"
    assert limit(builder, size="5", min_size="5").taker_amount == 5_000_000
    assert limit(builder, size="5.01", min_size=5).taker_amount == 5_010_000


def test_marketable_buy_under_one_dollar(builder: OrderBuilder, signed_digests: list[bytes]) -> None:
    err = rejects(BelowMinimumSizeError, market, signed_digests, builder=builder, side="BUY", amount="0.99")
    assert "min size: $1" in str(err)
    assert market(builder, side="BUY", amount="1").maker_amount == 1_000_000
    # a market SELL of fewer shares is fine (the $1 rule is for BUY notional)
    assert market(builder, side="SELL", amount="0.5").maker_amount == 500_000


# --- order types, flags, expiration --------------------------------------------------------------


@pytest.mark.parametrize("order_type", ["FOK", "FAK", OrderType.FOK, "fak"])
def test_post_only_with_fok_or_fak(builder: OrderBuilder, signed_digests: list[bytes], order_type: Any) -> None:
    rejects(InvalidOrderTypeError, limit, signed_digests, builder=builder, order_type=order_type, post_only=True)


def test_post_only_with_gtc_and_gtd_is_allowed(builder: OrderBuilder) -> None:
    assert limit(builder, post_only=True).post_only is True
    assert limit(builder, post_only=True, order_type="GTD", expiration=TS // 1000 + 61).post_only is True


@pytest.mark.parametrize("order_type", ["GTC", "GTD"])
def test_market_orders_are_fok_or_fak_only(builder: OrderBuilder, signed_digests: list[bytes], order_type: str) -> None:
    rejects(InvalidOrderTypeError, market, signed_digests, builder=builder, order_type=order_type)


@pytest.mark.parametrize(
    "expiration",
    [0, 1, TS // 1000 - 1, TS // 1000, TS // 1000 + 1, TS // 1000 + 59, TS // 1000 + 60],
    ids=["zero", "epoch", "past", "now", "now+1", "now+59", "now+60"],
)
def test_gtd_expiration_in_the_past_or_within_the_threshold(
    builder: OrderBuilder, signed_digests: list[bytes], expiration: int
) -> None:
    rejects(InvalidExpirationError, limit, signed_digests, builder=builder, order_type="GTD", expiration=expiration)


def test_gtd_expiration_just_past_the_threshold_is_accepted(builder: OrderBuilder) -> None:
    order = limit(builder, order_type="GTD", expiration=TS // 1000 + 61)
    assert order.expiration == TS // 1000 + 61 and order.order_type is OrderType.GTD


@pytest.mark.parametrize("order_type", ["GTC", "FOK", "FAK"])
def test_expiration_on_a_non_gtd_order(builder: OrderBuilder, signed_digests: list[bytes], order_type: str) -> None:
    rejects(
        InvalidExpirationError,
        limit,
        signed_digests,
        builder=builder,
        order_type=order_type,
        expiration=TS // 1000 + 3600,
    )


@pytest.mark.parametrize("tick", ["0.02", "0.05", "0.00001", "1", "0", "-0.01", 0.03, "abc", "", True, None])
def test_unknown_tick_size(builder: OrderBuilder, signed_digests: list[bytes], tick: Any) -> None:
    rejects(InvalidTickSizeError, limit, signed_digests, builder=builder, tick=tick)
    rejects(InvalidTickSizeError, market, signed_digests, builder=builder, tick=tick)


@pytest.mark.parametrize("tick", ["0.01", "0.010", 0.01, "1e-2"])
def test_tick_size_spellings(builder: OrderBuilder, tick: Any) -> None:
    assert limit(builder, tick=tick).maker_amount == 11_782_400


@pytest.mark.parametrize("side", ["HOLD", "", "B", 2, -1, None, True, False])
def test_bad_side(builder: OrderBuilder, signed_digests: list[bytes], side: Any) -> None:
    rejects(InvalidOrderError, limit, signed_digests, builder=builder, side=side)
    rejects(InvalidOrderError, market, signed_digests, builder=builder, side=side)


@pytest.mark.parametrize("side", ["buy", " SELL ", 0, 1, Side.SELL])
def test_side_spellings(builder: OrderBuilder, side: Any) -> None:
    assert limit(builder, side=side).side is Side.parse(side)


@pytest.mark.parametrize("order_type", ["IOC", "", "GTX", 1, None])
def test_bad_order_type(builder: OrderBuilder, signed_digests: list[bytes], order_type: Any) -> None:
    rejects(InvalidOrderTypeError, limit, signed_digests, builder=builder, order_type=order_type)
    rejects(InvalidOrderTypeError, market, signed_digests, builder=builder, order_type=order_type)


@pytest.mark.parametrize("signature_type", [4, -1, "4", "EIP1271", "", True])
def test_bad_signature_type(signature_type: Any) -> None:
    with pytest.raises(InvalidOrderError):
        OrderBuilder(Signer(KEY), signature_type=signature_type, funder=FUNDER)


@pytest.mark.parametrize("signature_type", [1, 2, 3, "POLY_PROXY", SignatureType.POLY_1271])
def test_non_eoa_signature_type_needs_a_funder(signature_type: Any) -> None:
    with pytest.raises(InvalidOrderError, match="funder"):
        OrderBuilder(Signer(KEY), signature_type=signature_type)
    assert OrderBuilder(Signer(KEY), signature_type=signature_type, funder=FUNDER).funder == FUNDER


def test_eoa_orders_cannot_name_another_maker() -> None:
    with pytest.raises(InvalidOrderError):
        OrderBuilder(Signer(KEY), signature_type=0, funder=FUNDER)


@pytest.mark.parametrize("funder", ["0x123", "not an address", "0x" + "g" * 40, "0x" + "11" * 21])
def test_bad_funder_address(funder: str) -> None:
    with pytest.raises(InvalidAddressError):
        OrderBuilder(Signer(KEY), signature_type=1, funder=funder)


def test_unknown_chain() -> None:
    with pytest.raises(InvalidOrderError, match="chain"):
        OrderBuilder(Signer(KEY), chain_id=1)


@pytest.mark.parametrize("salt", [-1, 2**53, 2**64])
def test_salt_out_of_range(builder: OrderBuilder, signed_digests: list[bytes], salt: int) -> None:
    with pytest.raises(InvalidOrderError):
        builder.limit("1234", "BUY", "0.56", "21.04", tick="0.01", salt=salt, timestamp_ms=TS)
    assert signed_digests == []


@pytest.mark.parametrize("token_id", ["abc", "-1", -1, 2**256, str(2**256), "1.5", 1.5, "", None, True, "0x10"])
def test_bad_token_id(builder: OrderBuilder, signed_digests: list[bytes], token_id: Any) -> None:
    rejects(InvalidOrderError, limit, signed_digests, builder=builder, token_id=token_id)
    rejects(InvalidOrderError, market, signed_digests, builder=builder, token_id=token_id)


def test_token_id_as_int_or_decimal_string(builder: OrderBuilder) -> None:
    assert limit(builder, token_id=2**256 - 1).token_id == 2**256 - 1
    assert limit(builder, token_id=str(2**256 - 1)).order_id == limit(builder, token_id=2**256 - 1).order_id


# --- numbers: bools refused, floats only through their repr --------------------------------------


@pytest.mark.parametrize("value", [True, False])
def test_bool_is_not_a_number(builder: OrderBuilder, signed_digests: list[bytes], value: bool) -> None:
    rejects(InvalidPriceError, limit, signed_digests, builder=builder, price=value)
    rejects(InvalidSizeError, limit, signed_digests, builder=builder, size=value)
    rejects(InvalidSizeError, market, signed_digests, builder=builder, amount=value)
    rejects(InvalidPriceError, market, signed_digests, builder=builder, price=value)
    # a market parameter, not the order's size: refused as a bad number
    rejects(InvalidAmountError, limit, signed_digests, builder=builder, min_size=value)


def test_floats_are_read_through_their_repr(builder: OrderBuilder) -> None:
    order = limit(builder, price=0.56, size=21.04)
    assert (order.maker_amount, order.taker_amount) == (11_782_400, 21_040_000)
    assert order.price == 0.56 or order.price.numerator * 100 == order.price.denominator * 56
    assert order.size_and_price == (21_040_000, 560_000)
    # 4960.94 is 4960.93999999999959982... in binary; its repr is what the user typed
    assert limit(builder, size=4960.94).taker_amount == 4_960_940_000
    # the same order from a string and from a float: one order id
    assert limit(builder, price=0.56, size=21.04).order_id == limit(builder, price="0.56", size="21.04").order_id
    assert market(builder, amount=65.1, price=0.78).maker_amount == 65_100_000


def test_a_float_whose_repr_is_not_what_was_meant_is_refused(
    builder: OrderBuilder, signed_digests: list[bytes]
) -> None:
    rejects(InvalidPriceError, limit, signed_digests, builder=builder, price=0.7 * 0.8)  # 0.5599999999999999
    rejects(TooManyDecimalsError, limit, signed_digests, builder=builder, size=1.1 * 1.1)  # 1.2100000000000002


def test_number_parsing_is_exact_or_refuses() -> None:
    # more significant digits than Decimal's default 28-digit context: still exact
    assert to_micro("52189615597593890471191.974194") == 52189615597593890471191974194
    assert to_micro("9" * 71) == int("9" * 71) * 10**6
    # absurd exponents are refused with a typed error (not decimal.Overflow, not a silent 0)
    with pytest.raises(InvalidAmountError, match="out of range"):
        to_micro("1e999999999")
    with pytest.raises(InvalidAmountError, match="decimals"):
        to_micro("1e-999999999")
    with pytest.raises(InvalidTickSizeError):
        tick_size("1e999999999")


@pytest.mark.parametrize(("size", "cls"), [("1e100", InvalidSizeError), ("1e-999999999", TooManyDecimalsError)])
def test_absurd_sizes_are_typed_errors(
    builder: OrderBuilder, signed_digests: list[bytes], size: str, cls: type
) -> None:
    rejects(cls, limit, signed_digests, builder=builder, size=size)


def test_amounts_beyond_uint256_are_refused_before_signing(builder: OrderBuilder, signed_digests: list[bytes]) -> None:
    rejects(InvalidSizeError, limit, signed_digests, builder=builder, side="SELL", size="2" + "0" * 71)


@pytest.mark.parametrize("timestamp_ms", [-1, 2**64])
def test_timestamp_out_of_range(builder: OrderBuilder, signed_digests: list[bytes], timestamp_ms: int) -> None:
    rejects(InvalidOrderError, limit, signed_digests, builder=builder, timestamp_ms=timestamp_ms)


# --- keys ----------------------------------------------------------------------------------------

BAD_KEYS = [
    "0x1234",
    "zz" * 32,
    "0x" + "00" * 32,  # zero is not a key
    "0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141",  # the curve order n
    "0x" + "ab" * 33,
    "",
    b"\x01" * 31,
    12345,
]


@pytest.mark.parametrize("bad", BAD_KEYS)
def test_invalid_private_key_is_refused_without_echoing_it(bad: Any) -> None:
    with pytest.raises(InvalidKeyError) as info:
        Signer(bad)
    text = f"{info.value!s} {info.value!r} {info.value.context!r}"
    if isinstance(bad, str) and len(bad) > 4:
        assert bad not in text and bad.removeprefix("0x") not in text
    assert info.value.__cause__ is None and info.value.__suppress_context__


def test_private_key_spellings() -> None:
    address = Signer(KEY).address
    assert Signer(KEY.removeprefix("0x")).address == address
    assert Signer("  " + KEY.upper().replace("0X", "0x") + "\n").address == address
    assert Signer(bytes.fromhex(KEY[2:])).address == address
