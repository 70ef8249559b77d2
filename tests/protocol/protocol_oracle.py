"""The official client (py-clob-client-v2 1.2.1) as an oracle, plus an exact-arithmetic twin of it.

Three evaluations of the SDK's amount algorithm (protocol doc §3.6/§3.7) live here:

* `sdk_limit_amounts` / `sdk_market_amounts`: the SDK itself (`OrderBuilder.get_order_amounts` /
  `get_market_order_amounts` with its `ROUNDING_CONFIG`), binary floats and all;
* `trace(..., exact=False)`: the same steps re-played with the SDK's own float helpers, recording
  every intermediate value (so a divergence can be pinned to the step where floats went wrong);
* `trace(..., exact=True)`: the same steps in exact rational arithmetic (`Fraction`), which is what
  the algorithm means and what polyoms must produce.

Signing and serialization go through `ExchangeOrderBuilderV2` with an injected salt and timestamp.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from functools import cache
from typing import Any

from py_clob_client_v2.config import get_contract_config
from py_clob_client_v2.order_builder import helpers as sdk_helpers
from py_clob_client_v2.order_builder.builder import ROUNDING_CONFIG
from py_clob_client_v2.order_builder.builder import OrderBuilder as SdkOrderBuilder
from py_clob_client_v2.order_utils import ExchangeOrderBuilderV2, Side, SignatureTypeV2
from py_clob_client_v2.order_utils.model.order_data_v2 import OrderDataV2, SignedOrderV2, order_to_json_v2
from py_clob_client_v2.signer import Signer as SdkSigner

# Hardhat/anvil test key #0 (public; the doc's vectors use it) and its address.
KEY0 = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"
ADDR0 = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
OWNER = "00000000-0000-0000-0000-000000000001"
TICKS = ("0.1", "0.01", "0.005", "0.0025", "0.001", "0.0001")
BYTES32_ZERO = "0x" + "00" * 32


@cache
def sdk_signer(private_key: str, chain_id: int) -> SdkSigner:
    return SdkSigner(private_key, chain_id)


@cache
def _sdk_builder(private_key: str, chain_id: int, signature_type: int, funder: str | None) -> SdkOrderBuilder:
    return SdkOrderBuilder(sdk_signer(private_key, chain_id), SignatureTypeV2(signature_type), funder)


def sdk_limit_amounts(side: str, size: float, price: float, tick: str) -> tuple[int, int]:
    _, maker, taker = _sdk_builder(KEY0, 137, 0, None).get_order_amounts(side, size, price, ROUNDING_CONFIG[tick])
    return maker, taker


def sdk_market_amounts(side: str, amount: float, price: float, tick: str) -> tuple[int, int]:
    builder = _sdk_builder(KEY0, 137, 0, None)
    _, maker, taker = builder.get_market_order_amounts(side, amount, price, ROUNDING_CONFIG[tick])
    return maker, taker


def exchange_for(chain_id: int, neg_risk: bool) -> str:
    cfg = get_contract_config(chain_id)
    return cfg.neg_risk_exchange_v2 if neg_risk else cfg.exchange_v2


@dataclass(frozen=True)
class SdkOrder:
    signed: SignedOrderV2
    order_hash: str
    exchange: ExchangeOrderBuilderV2

    def body(self, order_type: str, post_only: bool = False, defer_exec: bool = False, owner: str = OWNER) -> bytes:
        payload = order_to_json_v2(self.signed, owner, order_type, post_only, defer_exec)
        return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()

    def wire_order(self) -> dict[str, Any]:
        return order_to_json_v2(self.signed, OWNER, "GTC")["order"]


def sdk_sign(
    *,
    private_key: str,
    chain_id: int,
    neg_risk: bool,
    signature_type: int,
    funder: str | None,
    token_id: str,
    maker_amount: int,
    taker_amount: int,
    side: str,
    salt: int,
    timestamp_ms: int,
    expiration: int = 0,
    exchange: str | None = None,
    domain_version: str = "2",
) -> SdkOrder:
    """Sign with the SDK's `ExchangeOrderBuilderV2` exactly as `OrderBuilder.build_order` does."""
    signer = sdk_signer(private_key, chain_id)
    maker = funder if funder is not None else signer.address()
    order_signer = maker if signature_type == 3 else signer.address()
    builder = ExchangeOrderBuilderV2(
        exchange or exchange_for(chain_id, neg_risk),
        chain_id,
        signer,
        generate_salt=lambda: str(salt),
        domain_version=domain_version,
    )
    signed = builder.build_signed_order(
        OrderDataV2(
            maker=maker,
            tokenId=token_id,
            makerAmount=str(maker_amount),
            takerAmount=str(taker_amount),
            side=Side.BUY if side == "BUY" else Side.SELL,
            signer=order_signer,
            signatureType=SignatureTypeV2(signature_type),
            timestamp=str(timestamp_ms),
            metadata=BYTES32_ZERO,
            builder=BYTES32_ZERO,
            expiration=str(expiration),
        )
    )
    order_hash = builder.build_order_hash(builder.build_order_typed_data(signed))
    return SdkOrder(signed, order_hash, builder)


# --- the amount algorithm, step by step, in floats (the SDK's helpers) or exactly --------------


def _decimals_exact(x: Fraction) -> float:
    """Digits after the point of an exact rational; inf if its decimal expansion never ends."""
    den = x.denominator
    for p in (2, 5):
        while den % p == 0:
            den //= p
    if den != 1:
        return math.inf
    n = 0
    while (x * 10**n).denominator != 1:
        n += 1
    return n


class _Exact:
    """The SDK helpers (order_builder/helpers.py) with Fractions instead of floats."""

    @staticmethod
    def round_down(x: Fraction, n: int) -> Fraction:
        return Fraction(math.floor(x * 10**n), 10**n)

    @staticmethod
    def round_up(x: Fraction, n: int) -> Fraction:
        return Fraction(math.ceil(x * 10**n), 10**n)

    @staticmethod
    def round_normal(x: Fraction, n: int) -> Fraction:
        return Fraction(round(x * 10**n), 10**n)  # Fraction.__round__ is half-to-even, like round()

    decimal_places = staticmethod(_decimals_exact)

    @staticmethod
    def to_token_decimals(x: Fraction) -> int:
        f = 10**6 * x
        if _decimals_exact(f) > 0:
            f = Fraction(round(f))
        return int(f)


class _Float:
    round_down = staticmethod(sdk_helpers.round_down)
    round_up = staticmethod(sdk_helpers.round_up)
    round_normal = staticmethod(sdk_helpers.round_normal)
    decimal_places = staticmethod(sdk_helpers.decimal_places)
    to_token_decimals = staticmethod(sdk_helpers.to_token_decimals)


@dataclass(frozen=True)
class Trace:
    steps: tuple[tuple[str, Any], ...]
    maker: int
    taker: int

    def value(self, step: str) -> Any:
        return dict(self.steps)[step]


def trace(kind: str, side: str, qty: Decimal | str, price: Decimal | str, tick: str, *, exact: bool) -> Trace:
    """Replay `get_order_amounts` (kind="limit") or `get_market_order_amounts` (kind="market").

    `qty` is the size in shares (limit, market SELL) or the pUSD amount (market BUY).
    """
    h: Any = _Exact if exact else _Float
    q: Any = Fraction(Decimal(qty)) if exact else float(qty)
    p: Any = Fraction(Decimal(price)) if exact else float(price)
    cfg = ROUNDING_CONFIG[tick]
    steps: list[tuple[str, Any]] = []
    price_r = h.round_normal(p, cfg.price) if kind == "limit" else h.round_down(p, cfg.price)
    steps.append(("price", price_r))
    qty_r = h.round_down(q, cfg.size)
    steps.append(("quantity", qty_r))
    raw = qty_r / price_r if (kind == "market" and side == "BUY") else qty_r * price_r
    steps.append(("product", raw))
    if h.decimal_places(raw) > cfg.amount:
        raw = h.round_up(raw, cfg.amount + 4)
        steps.append(("round_up", raw))
        if h.decimal_places(raw) > cfg.amount:
            raw = h.round_down(raw, cfg.amount)
            steps.append(("round_down", raw))
    qty_units = h.to_token_decimals(qty_r)
    raw_units = h.to_token_decimals(raw)
    steps.append(("quantity_units", qty_units))
    steps.append(("product_units", raw_units))
    if kind == "limit" and side == "BUY":
        return Trace(tuple(steps), raw_units, qty_units)
    return Trace(tuple(steps), qty_units, raw_units)


def _as_exact(value: Any) -> Fraction:
    """A float intermediate read the way the SDK reads it (its shortest repr, `str(x)`)."""
    if isinstance(value, int):
        return Fraction(value)
    if isinstance(value, float):
        return Fraction(Decimal(repr(value)))
    return Fraction(value)


def float_error_steps(kind: str, side: str, qty: Decimal | str, price: Decimal | str, tick: str) -> list[str]:
    """Steps where the SDK's float value differs from the exact value (empty: floats were exact).

    Compares the two traces step by step while both took the same branches, then flags any step
    present in only one of them (a branch taken only because of a float artefact).
    """
    f = trace(kind, side, qty, price, tick, exact=False)
    e = trace(kind, side, qty, price, tick, exact=True)
    fsteps, esteps = dict(f.steps), dict(e.steps)
    bad = [name for name, _ in e.steps if name in fsteps and _as_exact(fsteps[name]) != esteps[name]]
    bad += [f"branch:{name}" for name in fsteps.keys() ^ esteps.keys()]
    return bad
