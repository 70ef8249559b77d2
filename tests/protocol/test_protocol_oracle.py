"""polyoms against the official client, py-clob-client-v2 1.2.1, as an oracle.

* 1,200 seeded random orders (all tick sizes, both sides, GTC/GTD/FOK/FAK, neg-risk on/off,
  signature types 0-3, chains 137/80002): identical makerAmount/takerAmount, order hash, signature
  and POST /order body bytes, except where the SDK's binary-float rounding is wrong; every such
  divergence must be explained (polyoms equals the exact-decimal evaluation of the SDK's own
  algorithm, the SDK equals the float evaluation of it, and at least one float step is inexact).
* Named tests pin concrete divergences of each kind found by the random run.
* L1/L2 headers against `create_level_1_headers` / `create_level_2_headers`.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction

import msgspec
import pytest
from eth_utils import to_checksum_address as eth_checksum
from protocol_oracle import (
    ADDR0,
    KEY0,
    OWNER,
    TICKS,
    float_error_steps,
    sdk_limit_amounts,
    sdk_market_amounts,
    sdk_sign,
    sdk_signer,
    trace,
)
from py_clob_client_v2.clob_types import ApiCreds as SdkApiCreds
from py_clob_client_v2.clob_types import RequestArgs
from py_clob_client_v2.headers.headers import create_level_1_headers, create_level_2_headers
from py_clob_client_v2.order_builder.helpers import round_down as sdk_round_down

from polyoms.core.units import MICRO
from polyoms.polymarket.protocol.auth import ApiCreds, l1_headers, l2_headers
from polyoms.polymarket.protocol.keys import Signer
from polyoms.polymarket.protocol.order import OrderBuilder, SignedOrder, recover_order_signer
from polyoms.polymarket.protocol.wire import order_to_wire, post_order_body

N_RANDOM = 1200
SEED = 20261121


@dataclass(frozen=True)
class Case:
    key: str
    chain_id: int
    neg_risk: bool
    signature_type: int
    funder: str | None
    kind: str  # "limit" | "market"
    side: str
    tick: str
    price: Decimal
    qty: Decimal  # shares, or pUSD for a market BUY
    order_type: str
    post_only: bool
    defer_exec: bool
    token_id: str
    salt: int
    timestamp_ms: int
    expiration: int
    as_float: bool  # hand polyoms floats (repr path) instead of strings

    def label(self) -> str:
        what = "$" if self.kind == "market" and self.side == "BUY" else ""
        return f"{self.kind} {self.side} {what}{self.qty} @ {self.price} (tick {self.tick})"


def _random_key(rng: random.Random) -> str:
    return "0x" + rng.getrandbits(255).to_bytes(32, "big").hex()


def random_cases(n: int, seed: int) -> list[Case]:
    rng = random.Random(seed)
    keys = [KEY0, _random_key(rng), _random_key(rng)]
    cases = []
    for i in range(n):
        tick = TICKS[i % len(TICKS)]  # every tick size equally often
        t = Decimal(tick)
        price = t * rng.randint(1, int(1 / t) - 1)
        kind = "market" if rng.random() < 0.4 else "limit"
        side = rng.choice(("BUY", "SELL"))
        r = rng.random()
        cents = rng.randint(1, 10_000) if r < 0.45 else rng.randint(1, 1_000_000) if r < 0.85 else rng.randint(1, 10**8)
        if kind == "market" and side == "BUY":
            cents = max(cents, 100)  # marketable BUY minimum is $1
        order_type = rng.choice(("FOK", "FAK")) if kind == "market" else rng.choice(("GTC", "GTD", "FOK", "FAK"))
        signature_type = rng.randrange(4)
        funder = None if signature_type == 0 else eth_checksum("0x" + rng.getrandbits(160).to_bytes(20, "big").hex())
        timestamp_ms = rng.randrange(1_700_000_000_000, 1_900_000_000_000)
        token_kind = rng.random()
        token_id = (
            rng.getrandbits(256) if token_kind < 0.5 else rng.randrange(10**76, 10**77) if token_kind < 0.8 else i + 1
        )
        cases.append(
            Case(
                key=rng.choice(keys),
                chain_id=rng.choice((137, 80002)),
                neg_risk=rng.random() < 0.5,
                signature_type=signature_type,
                funder=funder,
                kind=kind,
                side=side,
                tick=tick,
                price=price,
                qty=Decimal(cents) / 100,
                order_type=order_type,
                post_only=order_type in ("GTC", "GTD") and rng.random() < 0.3,
                defer_exec=rng.random() < 0.2,
                token_id=str(token_id),
                salt=rng.randrange(0, 2**53),
                timestamp_ms=timestamp_ms,
                expiration=timestamp_ms // 1000 + 61 + rng.randrange(0, 10**6) if order_type == "GTD" else 0,
                as_float=rng.random() < 0.5,
            )
        )
    return cases


def polyoms_order(case: Case) -> SignedOrder:
    builder = OrderBuilder(
        Signer(case.key), chain_id=case.chain_id, signature_type=case.signature_type, funder=case.funder
    )
    price: str | float = float(case.price) if case.as_float else str(case.price)
    qty: str | float = float(case.qty) if case.as_float else str(case.qty)
    common = dict(tick=case.tick, neg_risk=case.neg_risk, salt=case.salt, timestamp_ms=case.timestamp_ms)
    if case.kind == "market":
        return builder.market(case.token_id, case.side, qty, price, order_type=case.order_type, **common)
    return builder.limit(
        case.token_id,
        case.side,
        price,
        qty,
        order_type=case.order_type,
        expiration=case.expiration,
        post_only=case.post_only,
        **common,
    )


def sdk_amounts(case: Case) -> tuple[int, int]:
    fn = sdk_market_amounts if case.kind == "market" else sdk_limit_amounts
    return fn(case.side, float(case.qty), float(case.price), case.tick)


def sdk_order_for(case: Case, maker_amount: int, taker_amount: int):  # -> SdkOrder
    return sdk_sign(
        private_key=case.key,
        chain_id=case.chain_id,
        neg_risk=case.neg_risk,
        signature_type=case.signature_type,
        funder=case.funder,
        token_id=case.token_id,
        maker_amount=maker_amount,
        taker_amount=taker_amount,
        side=case.side,
        salt=case.salt,
        timestamp_ms=case.timestamp_ms,
        expiration=case.expiration,
    )


def explain(case: Case, ours: tuple[int, int], sdk: tuple[int, int]) -> list[str]:
    """Why the SDK differs from polyoms; raises AssertionError if it is not SDK float error."""
    exact = trace(case.kind, case.side, case.qty, case.price, case.tick, exact=True)
    floating = trace(case.kind, case.side, case.qty, case.price, case.tick, exact=False)
    assert (exact.maker, exact.taker) == ours, f"{case.label()}: polyoms {ours} is not the exact value"
    assert (floating.maker, floating.taker) == sdk, f"{case.label()}: SDK {sdk} is not its float algorithm"
    steps = float_error_steps(case.kind, case.side, case.qty, case.price, case.tick)
    assert steps, f"{case.label()}: SDK {sdk} != exact {ours} but no float step was inexact"
    return steps


def root_cause(case: Case, steps: list[str]) -> str:
    if "price" in steps:
        return "market price round_down(price) below the grid value"
    if "quantity" in steps:
        return "round_down(size or amount, 2) loses 0.01"
    return "product/quotient just below an exact value, a+4 round-up cannot repair it"


CASES = random_cases(N_RANDOM, SEED)


def test_random_cases_cover_the_whole_space() -> None:
    assert len(CASES) >= 1000
    assert {c.tick for c in CASES} == set(TICKS)
    assert {(c.kind, c.side) for c in CASES} == {
        ("limit", "BUY"),
        ("limit", "SELL"),
        ("market", "BUY"),
        ("market", "SELL"),
    }
    assert {c.order_type for c in CASES} == {"GTC", "GTD", "FOK", "FAK"}
    assert {c.signature_type for c in CASES} == {0, 1, 2, 3}
    assert {c.chain_id for c in CASES} == {137, 80002}
    assert {c.neg_risk for c in CASES} == {False, True}
    assert {c.as_float for c in CASES} == {False, True}
    per_combo = Counter((c.tick, c.kind, c.side, c.signature_type) for c in CASES)
    assert len(per_combo) == 6 * 2 * 2 * 4


def test_random_orders_equal_the_official_client_except_explained_float_errors() -> None:
    divergences: list[tuple[Case, tuple[int, int], tuple[int, int], str]] = []
    for case in CASES:
        ours_order = polyoms_order(case)
        ours = (ours_order.maker_amount, ours_order.taker_amount)
        sdk = sdk_amounts(case)
        if sdk != ours:
            steps = explain(case, ours, sdk)
            divergences.append((case, sdk, ours, root_cause(case, steps)))

        # Hash, signature and bytes: the SDK signs polyoms' amounts (identical to its own amounts
        # whenever they agree), so every order is compared, divergent or not.
        sdk_order = sdk_order_for(case, *ours)
        assert ours_order.order_id == sdk_order.order_hash, case.label()
        assert ours_order.signature == sdk_order.signed.signature, case.label()
        assert msgspec.to_builtins(order_to_wire(ours_order)) == sdk_order.wire_order(), case.label()
        assert post_order_body(ours_order, OWNER, defer_exec=case.defer_exec) == sdk_order.body(
            case.order_type, case.post_only, case.defer_exec
        ), case.label()

    # SDK float error is common but not the rule: the oracle agrees on the vast majority.
    assert len(divergences) < len(CASES) * 0.15, len(divergences)
    causes = Counter(cause for *_, cause in divergences)
    print(f"\n{len(divergences)} of {len(CASES)} orders differ from py-clob-client-v2, all SDK float error:")
    for cause, count in causes.most_common():
        print(f"  {count:4d}  {cause}")
    for case, sdk, ours, cause in divergences[:12]:
        print(f"  {case.label()}: SDK maker/taker {sdk}, exact {ours} [{cause}]")


def test_sample_orders_built_entirely_by_the_official_client_match_byte_for_byte() -> None:
    """Where amounts agree, the SDK's own amounts + signature + JSON equal polyoms' bytes."""
    compared = 0
    for case in CASES[:300]:
        sdk_amts = sdk_amounts(case)
        ours = polyoms_order(case)
        if sdk_amts != (ours.maker_amount, ours.taker_amount):
            continue
        sdk_order = sdk_order_for(case, *sdk_amts)
        body = sdk_order.body(case.order_type, case.post_only, case.defer_exec)
        assert post_order_body(ours, OWNER, defer_exec=case.defer_exec) == body, case.label()
        assert json.loads(body)["order"]["signature"] == ours.signature
        compared += 1
    assert compared >= 250


def test_signatures_recover_to_the_signing_key_in_the_random_sample() -> None:
    for case in CASES[:200]:
        order = polyoms_order(case)
        assert recover_order_signer(order) == Signer(case.key).address, case.label()


# --- pinned SDK float divergences (one test per case) -------------------------------------------


def _case(kind: str, side: str, qty: str, price: str, tick: str) -> Case:
    return Case(
        key=KEY0,
        chain_id=137,
        neg_risk=False,
        signature_type=0,
        funder=None,
        kind=kind,
        side=side,
        tick=tick,
        price=Decimal(price),
        qty=Decimal(qty),
        order_type="FOK" if kind == "market" else "GTC",
        post_only=False,
        defer_exec=False,
        token_id="1234",
        salt=1,
        timestamp_ms=1_777_000_000_000,
        expiration=0,
        as_float=False,
    )


def _assert_divergence(case: Case, sdk_expected: tuple[int, int], exact: tuple[int, int], cause: str) -> None:
    sdk = sdk_amounts(case)
    ours_order = polyoms_order(case)
    ours = (ours_order.maker_amount, ours_order.taker_amount)
    assert sdk == sdk_expected, "py-clob-client-v2 1.2.1 behaviour changed"
    assert ours == exact
    steps = explain(case, ours, sdk)
    assert root_cause(case, steps) == cause
    # the float input itself is exact: the error is introduced by the SDK's arithmetic
    assert Decimal(repr(float(case.qty))) == case.qty and Decimal(repr(float(case.price))) == case.price


def test_divergence_limit_buy_4960_94_shares_becomes_4960_93_in_the_sdk() -> None:
    assert sdk_round_down(4960.94, 2) == 4960.93  # 4960.94 * 100 == 496093.99999999994 in binary
    case = _case("limit", "BUY", "4960.94", "0.56", "0.01")
    exact = (int(Fraction("4960.94") * Fraction("0.56") * MICRO), 4960_940_000)
    assert exact == (2778_126_400, 496094 * 10**4)
    _assert_divergence(case, (2778_120_800, 4960_930_000), exact, "round_down(size or amount, 2) loses 0.01")


def test_divergence_limit_sell_37_3_shares_becomes_37_29_in_the_sdk() -> None:
    case = _case("limit", "SELL", "37.3", "0.15", "0.01")
    _assert_divergence(
        case, (37_290_000, 5_593_500), (37_300_000, 5_595_000), "round_down(size or amount, 2) loses 0.01"
    )


def test_divergence_market_buy_65_10_dollars_becomes_65_09_in_the_sdk() -> None:
    case = _case("market", "BUY", "65.1", "0.78", "0.01")
    # exact: 65.1 / 0.78 = 83.461538..., kept to 4 decimals (tick 0.01) -> 83.4615 shares
    _assert_divergence(
        case, (65_090_000, 83_448_700), (65_100_000, 83_461_500), "round_down(size or amount, 2) loses 0.01"
    )


def test_divergence_market_sell_worst_price_0_57_becomes_0_56_in_the_sdk() -> None:
    assert sdk_round_down(0.57, 2) == 0.56  # 0.57 * 100 == 56.99999999999999 in binary
    case = _case("market", "SELL", "100", "0.57", "0.01")
    _assert_divergence(
        case,
        (100_000_000, 56_000_000),
        (100_000_000, 57_000_000),
        "market price round_down(price) below the grid value",
    )


def test_divergence_market_buy_worst_price_0_57_becomes_0_56_in_the_sdk() -> None:
    case = _case("market", "BUY", "100", "0.57", "0.01")
    # SDK: 100 / 0.56 = 178.5714 shares; exact: 100 / 0.57 = 175.438596... -> 175.4385
    _assert_divergence(
        case,
        (100_000_000, 178_571_400),
        (100_000_000, 175_438_500),
        "market price round_down(price) below the grid value",
    )


def test_divergence_large_limit_buy_product_loses_one_micro_in_the_sdk() -> None:
    assert 925171.46 * 0.5175 == 478776.2305499999  # exact: 478776.230550
    case = _case("limit", "BUY", "925171.46", "0.5175", "0.0025")
    _assert_divergence(
        case,
        (478_776_230_549, 925_171_460_000),
        (478_776_230_550, 925_171_460_000),
        "product/quotient just below an exact value, a+4 round-up cannot repair it",
    )


def test_divergence_market_buy_quotient_loses_one_micro_in_the_sdk() -> None:
    assert 7527.28 / 0.0125 == 602182.3999999999  # exact: 602182.4
    case = _case("market", "BUY", "7527.28", "0.0125", "0.0025")
    _assert_divergence(
        case,
        (7_527_280_000, 602_182_399_999),
        (7_527_280_000, 602_182_400_000),
        "product/quotient just below an exact value, a+4 round-up cannot repair it",
    )


def test_no_divergence_where_floats_happen_to_be_exact() -> None:
    """The doc's official amount vectors: SDK and polyoms agree, no float step is inexact."""
    for kind, side, qty, price, tick in (
        ("limit", "BUY", "21.04", "0.56", "0.01"),
        ("limit", "SELL", "21.04", "0.56", "0.01"),
        ("market", "BUY", "100", "0.56", "0.01"),
        ("market", "SELL", "100", "0.56", "0.01"),
    ):
        case = _case(kind, side, qty, price, tick)
        ours = polyoms_order(case)
        assert sdk_amounts(case) == (ours.maker_amount, ours.taker_amount)
        assert "quantity" not in float_error_steps(kind, side, qty, price, tick)


# --- auth headers ------------------------------------------------------------------------------


@pytest.mark.parametrize("chain_id", [137, 80002])
@pytest.mark.parametrize(("timestamp", "nonce"), [(10_000_000, 23), (1_700_000_000, 0), (1_777_000_123, 7)])
def test_l1_headers_equal_create_level_1_headers(chain_id: int, timestamp: int, nonce: int) -> None:
    for key in (KEY0, "0x" + "11" * 32):
        ours = l1_headers(Signer(key), chain_id, timestamp, nonce)
        theirs = create_level_1_headers(sdk_signer(key, chain_id), nonce=nonce, timestamp=timestamp)
        assert ours == theirs


def test_l2_headers_equal_create_level_2_headers_for_real_bodies() -> None:
    rng = random.Random(7)
    signer = sdk_signer(KEY0, 137)
    creds_sdk = SdkApiCreds(
        api_key="f4f247b7-4ac7-ff29-a152-04fda0a8755a",
        api_secret="AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
        api_passphrase="a" * 64,
    )
    ours_creds = ApiCreds(creds_sdk.api_key, creds_sdk.api_secret, creds_sdk.api_passphrase)
    requests: list[tuple[str, str, bytes | None]] = [("GET", "/data/orders", None), ("DELETE", "/auth/api-key", None)]
    for case in CASES[:40]:
        order = polyoms_order(case)
        requests.append(("POST", "/order", post_order_body(order, OWNER)))
    requests.append(("DELETE", "/order", b'{"orderID":"0xabc"}'))
    for method, path, body in requests:
        ts = rng.randrange(1_700_000_000, 1_900_000_000)
        ours = l2_headers(ADDR0, ours_creds, ts, method, path, body)
        serialized = body.decode() if body is not None else None
        args = RequestArgs(method=method, request_path=path, body=serialized, serialized_body=serialized)
        assert ours == create_level_2_headers(signer, creds_sdk, args, timestamp=ts), (method, path)
