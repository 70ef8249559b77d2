"""Parent-order specs from the control API's request: `--algo NAME --price P --size N --param KEY=VALUE`.

Every parameter is parsed exactly (prices and sizes to micro-units, integers as integers) and refused
with a typed `InputError` naming it; unknown parameters are refused too, so a misspelt one never falls
back to a default. The specs' own checks (`algos.base.require`) raise `AlgoConfigError`, also an
input error.

    iceberg      --price (limit of every tranche)  display=SHARES variance_bps=N pause_min_ms=N
                 pause_max_ms=N timeout_s=N lifetime_s=N
                 adaptive pricing: limit=P (never passed; --price is then where tranches start)
                 urgency=LOW|MEDIUM|HIGH undercut_margin=P check_ms=N (these need limit=)
    adaptive     --price (never passed)  urgency=LOW|MEDIUM|HIGH start_price=P undercut_margin=P
                 check_ms=N timeout_s=N lifetime_s=N
    micro-price  --price (aggression limit)  band_bps=N offset_bps=N check_ms=N min_replace_ms=N
                 max_replacements=N timeout_s=N lifetime_s=N
    every algo   on_restart=resume|interrupt  what a daemon restart does to it while it works
                 (default: the daemon's engine.parents_on_restart; `on_restart_of`)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from polyoms.algos.adaptive import AdaptivePricing, AdaptiveSpec
from polyoms.algos.iceberg import IcebergSpec
from polyoms.algos.microprice import MicroPriceSpec
from polyoms.core.enums import Side
from polyoms.core.errors import InputError
from polyoms.core.units import Micro, plain_micro

Spec = IcebergSpec | AdaptiveSpec | MicroPriceSpec
ON_RESTART = ("interrupt", "resume")
"""Restart policies (algos.parents.ON_RESTART)."""
_COMMON: dict[str, str] = {"on_restart": "text"}
"""Parameters every algo takes; they configure the parent, not its algorithm (not in its spec)."""

_PARAMS: dict[str, dict[str, str]] = {
    "iceberg": {
        "display": "shares",
        "variance_bps": "int",
        "pause_min_ms": "int",
        "pause_max_ms": "int",
        "timeout_s": "int",
        "lifetime_s": "int",
        "limit": "price",
        "urgency": "text",
        "undercut_margin": "price",
        "check_ms": "int",
    },
    "adaptive": {
        "urgency": "text",
        "start_price": "price",
        "undercut_margin": "price",
        "check_ms": "int",
        "timeout_s": "int",
        "lifetime_s": "int",
    },
    "micro-price": {
        "band_bps": "int",
        "offset_bps": "int",
        "check_ms": "int",
        "min_replace_ms": "int",
        "max_replacements": "int",
        "timeout_s": "int",
        "lifetime_s": "int",
    },
}


def _parse(algo: str, params: Mapping[str, str]) -> dict[str, Any]:
    known = {**_PARAMS[algo], **_COMMON}
    unknown = sorted(set(params) - set(known))
    if unknown:
        raise InputError(
            f"unknown {algo} parameter(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}", field="param"
        )
    out: dict[str, Any] = {}
    for key, text in params.items():
        kind = known[key]
        if kind == "int":
            value = text.strip()
            if not (value.lstrip("-").isdigit() and value.isascii()):
                raise InputError(f"{algo} parameter {key} must be an integer, got {text!r}", field=key)
            out[key] = int(value)
        elif kind in ("shares", "price"):
            out[key] = plain_micro(text, key)
        else:
            out[key] = text.strip()
    return out


def on_restart_of(params: Mapping[str, str]) -> str | None:
    """The parent's own restart policy (`on_restart=`), or None for the daemon's default."""
    text = params.get("on_restart")
    if text is None:
        return None
    policy = text.strip().lower()
    if policy not in ON_RESTART:
        raise InputError(f"on_restart must be one of {', '.join(ON_RESTART)}, got {text!r}", field="on_restart")
    return policy


def build_spec(
    algo: str,
    token_id: str,
    side: Side,
    size: Micro,
    price: str | None,
    params: Mapping[str, str],
    *,
    post_only: bool = False,
) -> Spec:
    if algo not in _PARAMS:
        raise InputError(f"algo must be one of {', '.join(_PARAMS)}, got {algo!r}", field="algo")
    if price is None:
        raise InputError(f"a {algo} parent order needs --price (its limit price)", field="price")
    limit = plain_micro(price, "price")
    p = _parse(algo, params)
    timeout_ms = p["timeout_s"] * 1000 if "timeout_s" in p else None
    lifetime_s = p.get("lifetime_s", 0)
    if algo == "iceberg":
        display = p.get("display", max(size // 5, 1))
        pause = (p.get("pause_min_ms", 1_000), p.get("pause_max_ms", 3_000))
        pricing = _iceberg_pricing(p)
        return IcebergSpec(
            token_id=token_id,
            side=side,
            size=size,
            price=limit,
            display=display,
            variance_bps=p.get("variance_bps", 2_000),
            pause_ms=pause,
            timeout_ms=timeout_ms,
            lifetime_s=lifetime_s,
            post_only=post_only,
            adaptive=pricing,
        )
    if algo == "adaptive":
        kw: dict[str, Any] = {}
        if "undercut_margin" in p:
            kw["undercut_margin"] = p["undercut_margin"]
        if "check_ms" in p:
            kw["check_ms"] = p["check_ms"]
        return AdaptiveSpec(
            token_id=token_id,
            side=side,
            limit=limit,
            size=size,
            urgency=p.get("urgency", "MEDIUM"),
            start_price=p.get("start_price"),
            timeout_ms=timeout_ms,
            lifetime_s=lifetime_s,
            post_only=post_only,
            **kw,
        )
    mkw = {k: p[k] for k in ("band_bps", "offset_bps", "check_ms", "min_replace_ms", "max_replacements") if k in p}
    return MicroPriceSpec(
        token_id=token_id,
        side=side,
        limit=limit,
        size=size,
        timeout_ms=timeout_ms,
        lifetime_s=lifetime_s,
        post_only=post_only,
        **mkw,
    )


def _iceberg_pricing(p: Mapping[str, Any]) -> AdaptivePricing | None:
    tuning = sorted(k for k in ("urgency", "undercut_margin", "check_ms") if k in p)
    if "limit" not in p:
        if tuning:
            # Without a limit these would be silently ignored by a fixed-price iceberg.
            raise InputError(f"iceberg parameter(s) {', '.join(tuning)} need limit=P (adaptive pricing)", field="limit")
        return None
    kw: dict[str, Any] = {k: p[k] for k in ("undercut_margin", "check_ms") if k in p}
    return AdaptivePricing(limit=p["limit"], urgency=p.get("urgency", "MEDIUM"), **kw)
