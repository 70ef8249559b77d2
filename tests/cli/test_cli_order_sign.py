"""`polyoms order sign`: JSON equal to the official client's order, clean errors, no key leaks."""

from __future__ import annotations

import json
from typing import Any

import pytest
from py_clob_client_v2.config import get_contract_config
from py_clob_client_v2.order_builder.builder import ROUNDING_CONFIG
from py_clob_client_v2.order_builder.builder import OrderBuilder as SdkOrderBuilder
from py_clob_client_v2.order_utils import ExchangeOrderBuilderV2, SignatureTypeV2
from py_clob_client_v2.order_utils.model.order_data_v2 import OrderDataV2, order_to_json_v2
from py_clob_client_v2.signer import Signer as SdkSigner
from typer.testing import CliRunner, Result

from polyoms.cli.main import app

KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"
KEY_HEX = KEY[2:]
ADDRESS = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
TOKEN = "71321045679252212594626385532706912750332728571942532289631379312455583992563"
PROXY = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"
DEPOSIT_WALLET = "0x1111111111111111111111111111111111111111"
SALT = 123456789
TS = 1_777_000_000_000
ENV = {"POLYOMS_PRIVATE_KEY": KEY}


def run(args: list[str], env: dict[str, str | None] | None = None) -> Result:
    return CliRunner().invoke(app, ["order", "sign", *args], env=ENV if env is None else env)


def assert_no_key(result: Result) -> None:
    for stream in (result.stdout, result.stderr, result.output):
        assert KEY_HEX not in stream.lower() and KEY_HEX[:16] not in stream.lower()


def sdk_order(
    *,
    kind: str,
    side: str,
    qty: float,
    price: float,
    tick: str,
    neg_risk: bool = False,
    signature_type: int = 0,
    funder: str | None = None,
    expiration: int = 0,
    chain_id: int = 137,
) -> dict[str, Any]:
    """What py-clob-client-v2 builds for the same inputs, salt and timestamp (its wire dict)."""
    signer = SdkSigner(KEY, chain_id)
    builder = SdkOrderBuilder(signer, SignatureTypeV2(signature_type), funder)
    amounts = builder.get_order_amounts if kind == "limit" else builder.get_market_order_amounts
    sdk_side, maker_amount, taker_amount = amounts(side, qty, price, ROUNDING_CONFIG[tick])
    cfg = get_contract_config(chain_id)
    exchange = ExchangeOrderBuilderV2(
        cfg.neg_risk_exchange_v2 if neg_risk else cfg.exchange_v2, chain_id, signer, generate_salt=lambda: str(SALT)
    )
    maker = funder or signer.address()
    signed = exchange.build_signed_order(
        OrderDataV2(
            maker=maker,
            tokenId=TOKEN,
            makerAmount=str(maker_amount),
            takerAmount=str(taker_amount),
            side=sdk_side,
            signer=builder._v2_order_signer(),
            signatureType=SignatureTypeV2(signature_type),
            timestamp=str(TS),
            expiration=str(expiration),
        )
    )
    order = order_to_json_v2(signed, "owner", "GTC")["order"]
    order["orderID"] = exchange.build_order_hash(exchange.build_order_typed_data(signed))
    return order


def sign_json(args: list[str]) -> dict[str, Any]:
    result = run([*args, "--token-id", TOKEN, "--salt", str(SALT), "--timestamp", str(TS), "--json"])
    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    assert_no_key(result)
    lines = result.stdout.splitlines()
    assert len(lines) == 1  # exactly one JSON object, nothing else
    payload = json.loads(lines[0])
    assert list(payload) == ["order", "orderID"]
    assert payload["orderID"].startswith("0x") and len(payload["orderID"]) == 66
    return payload


CASES = [
    pytest.param(
        ["--side", "BUY", "--price", "0.56", "--size", "21.04", "--tick-size", "0.01"],
        dict(kind="limit", side="BUY", qty=21.04, price=0.56, tick="0.01"),
        id="limit-gtc-buy",
    ),
    pytest.param(
        [
            "--side",
            "SELL",
            "--price",
            "0.56",
            "--size",
            "21.04",
            "--tick-size",
            "0.01",
            "--order-type",
            "GTD",
            "--expiration",
            str(TS // 1000 + 600),
        ],
        dict(kind="limit", side="SELL", qty=21.04, price=0.56, tick="0.01", expiration=TS // 1000 + 600),
        id="limit-gtd-sell-with-expiration",
    ),
    pytest.param(
        ["--side", "BUY", "--price", "0.56", "--amount", "100", "--tick-size", "0.01"],
        dict(kind="market", side="BUY", qty=100.0, price=0.56, tick="0.01"),
        id="market-buy-amount",
    ),
    pytest.param(
        ["--side", "SELL", "--price", "0.56", "--size", "100", "--tick-size", "0.01", "--order-type", "FOK"],
        dict(kind="market", side="SELL", qty=100.0, price=0.56, tick="0.01"),
        id="market-sell-fok",
    ),
    pytest.param(
        ["--side", "BUY", "--price", "0.056", "--size", "250.5", "--tick-size", "0.001", "--neg-risk"],
        dict(kind="limit", side="BUY", qty=250.5, price=0.056, tick="0.001", neg_risk=True),
        id="neg-risk",
    ),
    pytest.param(
        [
            "--side",
            "BUY",
            "--price",
            "0.0025",
            "--size",
            "1000",
            "--tick-size",
            "0.0025",
            "--signature-type",
            "1",
            "--funder",
            PROXY,
        ],
        dict(kind="limit", side="BUY", qty=1000.0, price=0.0025, tick="0.0025", signature_type=1, funder=PROXY),
        id="proxy-type-1",
    ),
    pytest.param(
        [
            "--side",
            "SELL",
            "--price",
            "0.9999",
            "--size",
            "3.33",
            "--tick-size",
            "0.0001",
            "--signature-type",
            "3",
            "--funder",
            DEPOSIT_WALLET,
        ],
        dict(kind="limit", side="SELL", qty=3.33, price=0.9999, tick="0.0001", signature_type=3, funder=DEPOSIT_WALLET),
        id="deposit-wallet-type-3",
    ),
    pytest.param(
        ["--side", "BUY", "--price", "0.5", "--size", "10", "--tick-size", "0.1", "--chain-id", "80002"],
        dict(kind="limit", side="BUY", qty=10.0, price=0.5, tick="0.1", chain_id=80002),
        id="amoy",
    ),
]


@pytest.mark.parametrize(("args", "sdk_args"), CASES)
def test_json_order_equals_the_official_clients(args: list[str], sdk_args: dict[str, Any]) -> None:
    payload = sign_json(args)
    expected = sdk_order(**sdk_args)
    assert payload["orderID"] == expected.pop("orderID")
    assert payload["order"] == expected
    # same keys in the same order as the SDK's wire object
    assert list(payload["order"]) == list(expected)


def test_json_for_the_documented_realistic_buy() -> None:
    payload = sign_json(["--side", "BUY", "--price", "0.56", "--size", "21.04", "--tick-size", "0.01"])
    assert payload["orderID"] == "0xf8d9b24b1248faf2b4046f13c06cfe8b6f1e2cb737867b90bb44122ebfee5cf6"
    assert payload["order"]["signature"] == (
        "0xa05f9d5885fc6aa6ac747ffca2ad3f5bc7ce86022823f4c5f78c33c50040c724"
        "345a0d945be838dbac32322185b61c09e3b897cd10516c6beb0ed4748a38d5e61c"
    )
    assert payload["order"]["maker"] == payload["order"]["signer"] == ADDRESS


def test_type_3_signer_is_the_deposit_wallet() -> None:
    payload = sign_json(
        [
            "--side",
            "BUY",
            "--price",
            "0.5",
            "--size",
            "10",
            "--tick-size",
            "0.1",
            "--signature-type",
            "3",
            "--funder",
            DEPOSIT_WALLET,
        ]
    )
    assert payload["order"]["maker"] == payload["order"]["signer"] == DEPOSIT_WALLET
    assert payload["order"]["signatureType"] == 3
    assert payload["order"]["signature"].endswith("00ba") and len(payload["order"]["signature"]) == 2 + 2 * 317


def test_market_buy_defaults_to_fok_and_fak_is_accepted() -> None:
    for order_type in (None, "FAK"):
        extra = ["--order-type", order_type] if order_type else []
        payload = sign_json(["--side", "BUY", "--price", "0.56", "--amount", "100", "--tick-size", "0.01", *extra])
        assert payload["order"]["makerAmount"] == "100000000"
        assert payload["order"]["takerAmount"] == "178571400"


def test_exact_where_the_sdk_float_rounding_is_not() -> None:
    payload = sign_json(["--side", "BUY", "--price", "0.56", "--size", "4960.94", "--tick-size", "0.01"])
    assert payload["order"]["takerAmount"] == "4960940000"  # the SDK would sign 4960930000
    assert payload["order"]["makerAmount"] == "2778126400"


def test_random_salt_and_clock_timestamp_by_default() -> None:
    outs = []
    for _ in range(2):
        result = run(
            ["--token-id", "1", "--side", "BUY", "--price", "0.5", "--size", "2", "--tick-size", "0.1", "--json"]
        )
        assert result.exit_code == 0, result.output
        outs.append(json.loads(result.stdout))
    assert outs[0]["orderID"] != outs[1]["orderID"]
    assert outs[0]["order"]["salt"] != outs[1]["order"]["salt"]
    assert all(0 <= o["order"]["salt"] < 2**53 for o in outs)
    assert all(int(o["order"]["timestamp"]) > 1_700_000_000_000 for o in outs)


# --- human output ------------------------------------------------------------------------------


def test_human_output_shows_the_order_id_unbroken() -> None:
    result = run(
        [
            "--token-id",
            TOKEN,
            "--side",
            "BUY",
            "--price",
            "0.56",
            "--size",
            "21.04",
            "--tick-size",
            "0.01",
            "--salt",
            str(SALT),
            "--timestamp",
            str(TS),
        ]
    )
    assert result.exit_code == 0, result.output
    assert "0xf8d9b24b1248faf2b4046f13c06cfe8b6f1e2cb737867b90bb44122ebfee5cf6" in result.stdout
    assert TOKEN in result.stdout
    assert ADDRESS in result.stdout
    assert "11782400" in result.stdout and "21040000" in result.stdout
    assert result.stderr == ""
    assert_no_key(result)


def test_human_output_at_a_narrow_width_still_has_the_whole_order_id() -> None:
    result = run(
        ["--token-id", "1234", "--side", "SELL", "--price", "0.5", "--size", "1", "--tick-size", "0.1"],
        env={**ENV, "COLUMNS": "60"},
    )
    assert result.exit_code == 0, result.output
    row = next(line for line in result.stdout.splitlines() if "orderID" in line)
    order_id = row.split()[-1]
    assert order_id.startswith("0x") and len(order_id) == 66


# --- errors ----------------------------------------------------------------------------------

BASE = ["--token-id", "1234", "--side", "BUY", "--price", "0.56", "--size", "21.04", "--tick-size", "0.01"]


def _with(**changes: str | None) -> list[str]:
    args = list(BASE)
    for flag, value in changes.items():
        opt = "--" + flag.replace("_", "-")
        if opt in args:
            i = args.index(opt)
            del args[i : i + 2]
        if value is not None:
            args += [opt, value]
    return args


BAD = [
    pytest.param(_with(price="0.565"), "breaks minimum tick size rule", id="price-off-grid"),
    pytest.param(_with(price="1"), "breaks minimum tick size rule", id="price-one"),
    pytest.param(_with(price="0"), "breaks minimum tick size rule", id="price-zero"),
    pytest.param(_with(price="abc"), "price is not a number", id="price-not-a-number"),
    pytest.param(_with(price="0.5600001"), "decimals", id="price-too-precise"),
    pytest.param(_with(size="21.045"), "more than 2 decimals", id="size-3-decimals"),
    pytest.param(_with(size="nan"), "finite", id="size-nan"),
    pytest.param(_with(size="-1"), "must be positive", id="size-negative"),
    pytest.param(_with(size="0"), "must be positive", id="size-zero"),
    pytest.param(_with(size="1e999999999"), "out of range", id="size-absurd"),
    pytest.param(_with(size="4", min_size="5"), "lower than the minimum", id="below-min-size"),
    pytest.param(_with(tick_size="0.02"), "unknown tick size", id="tick-unknown"),
    pytest.param(_with(side="HOLD"), "side must be BUY or SELL", id="side-bad"),
    pytest.param(_with(side="[/]"), "side must be BUY or SELL, got '[/]'", id="side-with-markup"),
    pytest.param(_with(order_type="IOC"), "order type must be one of", id="order-type-bad"),
    pytest.param([*_with(order_type="FOK"), "--post-only"], "postOnly", id="post-only-fok"),
    pytest.param(
        _with(order_type="GTD", expiration="1777000030", timestamp="1777000000000"),
        "invalid expiration",
        id="gtd-too-soon",
    ),
    pytest.param(_with(expiration="1999999999"), "only GTD orders carry an expiration", id="expiration-on-gtc"),
    pytest.param(_with(signature_type="1"), "needs a funder", id="proxy-without-funder"),
    pytest.param(_with(signature_type="7", funder=PROXY), "signature type must be 0-3", id="signature-type-bad"),
    pytest.param(_with(signature_type="1", funder="0x1234"), "not a 20-byte hex address", id="funder-bad"),
    pytest.param(_with(token_id="abc"), "token id must be a decimal integer", id="token-bad"),
    pytest.param(_with(chain_id="1"), "no CLOB V2 exchange known for chain id 1", id="chain-unknown"),
    pytest.param(_with(timestamp="-5"), "timestamp must be unix milliseconds", id="timestamp-negative"),
    pytest.param(_with(salt="-1"), "salt must be within", id="salt-negative"),
    pytest.param(_with(size=None), "pass --size", id="neither-size-nor-amount"),
    pytest.param(_with(amount="10"), "not both", id="size-and-amount"),
    pytest.param(_with(size=None, amount="10", side="SELL"), "market SELL takes --size", id="amount-on-sell"),
    pytest.param(_with(size=None, amount="0.5"), "min size: $1", id="market-buy-under-1"),
    pytest.param(_with(size=None, amount="10", order_type="GTD"), "market orders are FOK or FAK", id="market-gtd"),
]


@pytest.mark.parametrize(("args", "message"), BAD)
def test_bad_input_exits_2_with_a_clear_message_and_no_traceback(args: list[str], message: str) -> None:
    result = run(args)
    assert result.exit_code == 2, result.output
    assert isinstance(result.exception, SystemExit)
    assert result.stdout == ""
    assert result.stderr.startswith("error: ")
    assert message in " ".join(result.stderr.split())
    assert "Traceback" not in result.output
    assert_no_key(result)


@pytest.mark.parametrize("args", [BASE[:-2], [*BASE, "--signature-type", "x"], [*BASE, "--bogus"]])
def test_usage_errors_exit_2(args: list[str]) -> None:
    result = run(args)
    assert result.exit_code == 2
    assert result.stdout == "" and "Traceback" not in result.output
    assert result.stderr.strip()


@pytest.mark.parametrize("value", [None, ""])
def test_missing_key_env_var_is_a_clear_error(value: str | None) -> None:
    result = run(BASE, env={"POLYOMS_PRIVATE_KEY": value})
    assert result.exit_code == 2
    assert "POLYOMS_PRIVATE_KEY" in result.stderr
    assert result.stdout == "" and "Traceback" not in result.output


@pytest.mark.parametrize(
    "bad_key",
    [KEY_HEX[:-1], KEY_HEX + "00", "0x" + KEY_HEX[:-2] + "zz", "0x" + "00" * 32, KEY_HEX.replace("a", "g")],
)
def test_invalid_key_is_refused_without_echoing_it(bad_key: str) -> None:
    result = run(BASE, env={"POLYOMS_PRIVATE_KEY": bad_key})
    assert result.exit_code == 2
    assert "private key" in result.stderr
    for stream in (result.stdout, result.stderr):
        assert bad_key not in stream and bad_key.removeprefix("0x")[:16] not in stream
    assert_no_key(result)


def test_the_key_never_appears_in_help() -> None:
    result = CliRunner().invoke(app, ["order", "sign", "--help"], env=ENV)
    assert result.exit_code == 0
    assert "--token-id" in result.stdout
    assert_no_key(result)
