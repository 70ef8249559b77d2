"""The strategies that can be run, by name: each with its parameter schema and the factory of its params.

One `Registry` (`core.registry`) that the CLI, the control API and the daemon look names up in. An entry
declares the strategy, its parameters (kind, help, default; no default: required) and `build`, which
turns the parsed values into the strategy's typed params and checks them. Parameters arrive as text
(`KEY=VALUE`) and are parsed exactly (prices and shares to micro-units); an unknown, missing or
malformed one is refused with an `InputError` naming it, so a misspelt one never falls back to a default.

Adding a strategy: its module in `strategies/` (params and a `base.Strategy`), one `register` call here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal

from polyoms.core.errors import InputError
from polyoms.core.registry import Registry
from polyoms.core.units import plain_micro
from polyoms.strategies.base import Strategy
from polyoms.strategies.join_best_bid import JoinBestBid, JoinBestBidParams

ParamKind = Literal["price", "shares", "int", "text"]


@dataclass(frozen=True, slots=True)
class Param:
    kind: ParamKind
    help: str
    default: int | str | None = None
    """None: the parameter is required."""


@dataclass(frozen=True, slots=True)
class StrategySpec:
    strategy: Strategy[Any, Any]
    params: Mapping[str, Param]
    build: Callable[..., Any]
    """Parsed values, by parameter name, as keywords → the strategy's params (raises InputError)."""


@dataclass(frozen=True, slots=True)
class Configured:
    """A strategy ready for a `manager.StrategyManager`: its canonical name, itself, its params."""

    name: str
    strategy: Strategy[Any, Any]
    params: Any


STRATEGIES: Final = Registry[StrategySpec]("strategy")

STRATEGIES.register(
    "join-best-bid",
    StrategySpec(
        JoinBestBid(),
        {
            "token_id": Param("text", "the outcome token to bid for"),
            "size": Param("shares", "shares per quote"),
            "max_position": Param("shares", "the most shares held (confirmed plus provisional)"),
        },
        JoinBestBidParams,
    ),
    summary="one post-only BUY at the best bid, capped by a position",
    aliases=("join_best_bid",),
)


def _value(strategy: str, key: str, kind: ParamKind, text: str) -> int | str:
    value = text.strip()
    if kind == "int":
        if not (value.lstrip("-").isdigit() and value.isascii()):
            raise InputError(f"{strategy} parameter {key} must be an integer, got {text!r}", field=key)
        return int(value)
    if kind in ("price", "shares"):
        return plain_micro(value, key)
    return value


def parse_params(strategy: str, schema: Mapping[str, Param], raw: Mapping[str, str]) -> dict[str, int | str]:
    """`raw` (name → text) checked against `schema` and parsed; defaults filled in."""
    unknown = sorted(set(raw) - set(schema))
    if unknown:
        raise InputError(
            f"unknown {strategy} parameter(s) {', '.join(unknown)}; known: {', '.join(sorted(schema))}",
            field="param",
        )
    missing = [k for k, p in schema.items() if p.default is None and k not in raw]
    if missing:
        raise InputError(f"{strategy} needs parameter(s) {', '.join(missing)}", field="param")
    out: dict[str, int | str] = {}
    for key, p in schema.items():
        text = raw.get(key)
        if text is not None:
            out[key] = _value(strategy, key, p.kind, text)
        elif p.default is not None:
            out[key] = p.default
    return out


def configure(name: str, raw: Mapping[str, str]) -> Configured:
    """The strategy registered as `name` (or an alias) with its params parsed from `raw`."""
    entry = STRATEGIES.entry(name)
    spec = entry.item
    return Configured(entry.name, spec.strategy, spec.build(**parse_params(entry.name, spec.params, raw)))
