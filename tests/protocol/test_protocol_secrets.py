"""Private keys and API secrets never show up in repr/str/errors, and a Signer cannot be pickled."""

from __future__ import annotations

import copy
import dataclasses
import pickle

import pytest

from polyoms.core.errors import InvalidKeyError
from polyoms.polymarket.protocol.auth import ApiCreds, l2_headers
from polyoms.polymarket.protocol.keys import Signer
from polyoms.polymarket.protocol.order import OrderBuilder

KEY_HEX = "ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"
ADDRESS = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
SECRET = "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXh5eno="
PASSPHRASE = "7a0f3c1b9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a2f1e0d9c8b7a6f5e4d3c2b"
API_KEY = "f4f247b7-4ac7-ff29-a152-04fda0a8755a"


def key_forms() -> list[str]:
    return [KEY_HEX, KEY_HEX.upper(), "0x" + KEY_HEX, str(int(KEY_HEX, 16))]


def assert_no_key(text: str) -> None:
    for form in key_forms():
        assert form not in text
    assert KEY_HEX[:16] not in text.lower()  # not even a prefix of it


@pytest.mark.parametrize("key", ["0x" + KEY_HEX, KEY_HEX, bytes.fromhex(KEY_HEX)])
def test_signer_repr_and_str_show_the_address_only(key: str | bytes) -> None:
    signer = Signer(key)
    for text in (repr(signer), str(signer), f"{signer}", f"{signer!r}", repr([signer]), repr({"s": signer})):
        assert_no_key(text)
        assert ADDRESS in text


def test_signer_holds_no_key_in_plain_attributes() -> None:
    signer = Signer("0x" + KEY_HEX)
    assert not hasattr(signer, "__dict__")
    for slot in ("address", "address_bytes"):
        assert_no_key(repr(getattr(signer, slot)))
        assert bytes.fromhex(KEY_HEX) != getattr(signer, slot)


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_pickling_a_signer_fails(protocol: int) -> None:
    signer = Signer("0x" + KEY_HEX)
    with pytest.raises(TypeError, match="cannot be pickled") as info:
        pickle.dumps(signer, protocol=protocol)
    assert_no_key(str(info.value))


def test_a_signer_cannot_be_smuggled_out_inside_an_order_builder_or_copied() -> None:
    builder = OrderBuilder(Signer("0x" + KEY_HEX))
    with pytest.raises(TypeError):
        pickle.dumps(builder)
    with pytest.raises(TypeError):
        copy.deepcopy(Signer("0x" + KEY_HEX))
    assert_no_key(repr(builder.signer))


def test_orders_and_their_repr_carry_no_key() -> None:
    order = OrderBuilder(Signer("0x" + KEY_HEX)).limit(
        "1234", "BUY", "0.56", "21.04", tick="0.01", salt=1, timestamp_ms=1_777_000_000_000
    )
    assert_no_key(repr(order))
    assert_no_key(repr(dataclasses.asdict(order)))


def test_key_errors_never_echo_the_key() -> None:
    bad = "0x" + KEY_HEX[:-2] + "zz"
    with pytest.raises(InvalidKeyError) as info:
        Signer(bad)
    text = f"{info.value} {info.value!r} {info.value.context} {info.value.args}"
    assert bad not in text and bad[2:] not in text and KEY_HEX[:16] not in text
    assert info.value.__context__ is None or info.value.__suppress_context__


def test_api_creds_repr_and_str_hide_secret_and_passphrase() -> None:
    creds = ApiCreds(API_KEY, SECRET, PASSPHRASE)
    for text in (repr(creds), str(creds), f"{creds}", repr([creds])):
        assert SECRET not in text and PASSPHRASE not in text
        assert SECRET[:12] not in text and PASSPHRASE[:12] not in text
        assert API_KEY in text


def test_api_creds_errors_do_not_echo_the_secret() -> None:
    bad_secret = "not base64 at all: " + PASSPHRASE  # long enough to leak if echoed
    with pytest.raises(InvalidKeyError) as info:
        ApiCreds(API_KEY, bad_secret, PASSPHRASE)
    text = f"{info.value} {info.value!r} {info.value.context}"
    assert bad_secret not in text and PASSPHRASE not in text
    with pytest.raises(InvalidKeyError):
        ApiCreds(API_KEY, SECRET, "")
    with pytest.raises(InvalidKeyError):
        ApiCreds("", SECRET, PASSPHRASE)


def test_l2_headers_carry_the_passphrase_but_never_the_secret() -> None:
    creds = ApiCreds(API_KEY, SECRET, PASSPHRASE)
    headers = l2_headers(ADDRESS, creds, 1_777_000_000, "GET", "/data/orders")
    assert headers["POLY_PASSPHRASE"] == PASSPHRASE  # the venue requires it
    assert all(SECRET not in v for v in headers.values())
