"""Build + sign + serialize one limit order: polyoms against the official py-clob-client-v2.

    .venv/bin/python bench/sign.py [--json] [--n N] [--runs R]

One operation = everything between "I want to BUY 21.04 shares at 0.56" and the exact bytes of the
POST /order body: amounts, EIP-712 hash, secp256k1 signature, JSON. Fresh salt and timestamp per
order on both sides (polyoms: `secrets.randbits(53)` and its clock; the SDK: its own salt and
`time.time_ns()`), so neither side can cache a signature.

* polyoms, headline: `OrderBuilder.limit(token_id_str, "BUY", "0.56", "21.04", tick="0.01")`, the
  human-units path users call, then `wire.post_order_body`.
* polyoms, micro: `OrderBuilder.limit_micro(token_id_int, Side.BUY, 560_000, 21_040_000, tick=TickSize)`.
* official: `OrderBuilder.build_order(OrderArgsV2(...), CreateOrderOptions(...))`, `order_to_json_v2`,
  `json.dumps(..., separators=(",", ":"), ensure_ascii=False).encode()` (what its `post_order` sends).
* floor, for context: one `coincurve.PrivateKey.sign_recoverable` of a fixed digest (libsecp256k1),
  the part of an order no Python code can make faster.

Batches are interleaved and rotated (bench/_common.py); the result is the median per-batch time.
Before timing, both sides are checked to produce byte-identical bodies for the same salt/timestamp.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import date
from typing import Any

from _common import Contender, machine, run_interleaved
from polyoms.core.enums import Side
from polyoms.core.units import tick_size
from polyoms.polymarket.protocol.keys import Signer
from polyoms.polymarket.protocol.order import OrderBuilder
from polyoms.polymarket.protocol.wire import post_order_body

# Hardhat/anvil test key #0: public, never holds funds.
PRIVATE_KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"
TOKEN_ID = "71321045679252212594626385532706912750332728571942532289631379312455583992563"
OWNER = "00000000-0000-0000-0000-000000000001"
CHAIN_ID = 137


def sdk_backends() -> dict[str, str]:
    """Which libraries the official client really ends up using for secp256k1 and keccak."""
    import coincurve
    import eth_keys
    from eth_account import Account
    from eth_hash.auto import keccak

    keccak(b"")  # eth-hash picks its backend lazily on first use
    hasher_owner = getattr(keccak.hasher, "__self__", keccak.hasher)
    key_backend = Account.from_key(PRIVATE_KEY)._key_obj.backend
    return {
        "secp256k1": type(key_backend).__name__,
        "secp256k1_module": type(key_backend).__module__,
        "eth_keys": eth_keys.__version__ if hasattr(eth_keys, "__version__") else "?",
        "coincurve": coincurve.__version__ if hasattr(coincurve, "__version__") else "?",
        "keccak": type(hasher_owner).__name__,
    }


def check_same_bytes() -> None:
    """The two contenders must produce the same body for the same salt/timestamp (doc §3.9)."""
    from py_clob_client_v2.order_builder.builder import ROUNDING_CONFIG
    from py_clob_client_v2.order_builder.builder import OrderBuilder as SdkOrderBuilder
    from py_clob_client_v2.order_utils import ExchangeOrderBuilderV2
    from py_clob_client_v2.order_utils.model.order_data_v2 import OrderDataV2, order_to_json_v2
    from py_clob_client_v2.signer import Signer as SdkSigner

    sdk_signer = SdkSigner(PRIVATE_KEY, CHAIN_ID)
    side, maker, taker = SdkOrderBuilder(sdk_signer).get_order_amounts("BUY", 21.04, 0.56, ROUNDING_CONFIG["0.01"])
    exchange = ExchangeOrderBuilderV2(
        "0xE111180000d2663C0091e4f400237545B87B996B", CHAIN_ID, sdk_signer, generate_salt=lambda: "123456789"
    )
    signed = exchange.build_signed_order(
        OrderDataV2(
            maker=sdk_signer.address(),
            tokenId=TOKEN_ID,
            makerAmount=str(maker),
            takerAmount=str(taker),
            side=side,
            signer=sdk_signer.address(),
            timestamp="1777000000000",
        )
    )
    sdk_body = json.dumps(order_to_json_v2(signed, OWNER, "GTC"), separators=(",", ":"), ensure_ascii=False)
    ours = OrderBuilder(Signer(PRIVATE_KEY)).limit(
        TOKEN_ID, "BUY", "0.56", "21.04", tick="0.01", salt=123456789, timestamp_ms=1777000000000
    )
    if post_order_body(ours, OWNER) != sdk_body.encode():
        raise SystemExit("bench/sign.py: polyoms and py-clob-client-v2 bodies differ; refusing to compare timings")


def contenders(n: int, n_official: int) -> list[Contender]:
    from py_clob_client_v2.clob_types import CreateOrderOptions, OrderArgsV2
    from py_clob_client_v2.order_builder.builder import OrderBuilder as SdkOrderBuilder
    from py_clob_client_v2.order_utils.model.order_data_v2 import order_to_json_v2
    from py_clob_client_v2.signer import Signer as SdkSigner

    builder = OrderBuilder(Signer(PRIVATE_KEY), chain_id=CHAIN_ID)
    tick = tick_size("0.01")
    token_int = int(TOKEN_ID)
    limit = builder.limit
    limit_micro = builder.limit_micro

    def polyoms_limit() -> bytes:
        return post_order_body(limit(TOKEN_ID, "BUY", "0.56", "21.04", tick="0.01"), OWNER)

    def polyoms_micro() -> bytes:
        return post_order_body(limit_micro(token_int, Side.BUY, 560_000, 21_040_000, tick=tick), OWNER)

    sdk_builder = SdkOrderBuilder(SdkSigner(PRIVATE_KEY, CHAIN_ID))
    dumps = json.dumps

    def official() -> bytes:
        order = sdk_builder.build_order(
            OrderArgsV2(token_id=TOKEN_ID, price=0.56, size=21.04, side="BUY"),
            CreateOrderOptions(tick_size="0.01", neg_risk=False),
        )
        return dumps(order_to_json_v2(order, OWNER, "GTC"), separators=(",", ":"), ensure_ascii=False).encode()

    # The floor: one libsecp256k1 recoverable signature through coincurve, nothing else.
    from coincurve import PrivateKey

    key = PrivateKey(bytes.fromhex(PRIVATE_KEY[2:]))
    digest = bytes(range(32))

    def sign_floor() -> bytes:
        return key.sign_recoverable(digest, hasher=None)

    return [
        Contender("polyoms_limit", polyoms_limit, n),
        Contender("polyoms_limit_micro", polyoms_micro, n),
        Contender("official", official, n_official),
        Contender("secp256k1_sign_only", sign_floor, n),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true", help="print exactly one JSON object")
    parser.add_argument("--n", type=int, default=2000, help="orders per polyoms batch (default 2000)")
    parser.add_argument(
        "--n-official", type=int, default=None, help="orders per official-client batch (default n/20, at least 10)"
    )
    parser.add_argument("--runs", type=int, default=15, help="timed batches per contender (default 15)")
    args = parser.parse_args(argv)
    if args.n < 1 or args.runs < 1:
        parser.error("--n and --runs must be positive")
    n_official = args.n_official or max(10, args.n // 20)

    check_same_bytes()
    cs = contenders(args.n, n_official)
    run_interleaved(cs, args.runs)
    by_name = {c.name: c for c in cs}
    ours = by_name["polyoms_limit"].median_us
    micro = by_name["polyoms_limit_micro"].median_us
    official = by_name["official"].median_us
    result: dict[str, Any] = {
        "polyoms_us_per_order": round(ours, 2),
        "official_us_per_order": round(official, 2),
        "ratio": round(official / ours, 2),
        "polyoms_micro_us_per_order": round(micro, 2),
        "ratio_micro": round(official / micro, 2),
        "secp256k1_sign_only_us": round(by_name["secp256k1_sign_only"].median_us, 2),
        "runs": args.runs,
        "n": args.n,
        "n_official": n_official,
        "python": sys.version.split()[0],
        "backend": {
            "polyoms": {"secp256k1": "coincurve (libsecp256k1)", "keccak": "safe-pysha3"},
            "official": sdk_backends(),
        },
        "detail": {c.name: c.summary() for c in cs},
        "machine": machine(),
        "date": date.today().isoformat(),
    }
    if args.json:
        print(json.dumps(result))
        return 0
    m = result["machine"]
    print(f"build + sign + serialize one limit order (POST /order body bytes); {m['cpu']}, {m['nproc']} cpu(s)")
    print(f"python {result['python']}; {args.runs} interleaved batches per contender; medians of per-batch times")
    print()
    print(f"{'contender':<24}{'median µs/order':>16}{'min':>10}{'max':>10}{'batch':>8}")
    for c in cs:
        s = c.summary()
        print(f"{c.name:<24}{s['median_us']:>16.2f}{s['min_us']:>10.2f}{s['max_us']:>10.2f}{s['batch']:>8}")
    print()
    print(f"official / polyoms (limit, human units): {result['ratio']:.2f}x")
    print(f"official / polyoms (limit_micro):        {result['ratio_micro']:.2f}x")
    sdk = result["backend"]["official"]
    print(f"official client backends: secp256k1 {sdk['secp256k1']} ({sdk['secp256k1_module']}), keccak {sdk['keccak']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
