"""The strategies that can be run, by name: each with its parameter schema and the factory of its params.

One `Registry` (`core.registry`) that the CLI, the control API and the daemon look names up in. An entry
declares the strategy, its parameters (`core.params`: kind, help, required or default) and `build`, which
turns the parsed values into the strategy's typed params and checks them. Parameters arrive as text
(`KEY=VALUE`) and are parsed exactly (prices and shares to micro-units); an unknown, missing or
malformed one is refused with an `InputError` naming it, so a misspelt one never falls back to a default.

Adding a strategy: its module in `strategies/` (params and a `base.Strategy`), one `register` call here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from polyoms.core.params import Param, ParamKind, parse_params
from polyoms.core.registry import Registry
from polyoms.strategies.base import Strategy
from polyoms.strategies.join_best_bid import JoinBestBid, JoinBestBidParams


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
            "token_id": Param(ParamKind.TEXT, "the outcome token to bid for", required=True),
            "size": Param(ParamKind.SHARES, "shares per quote", required=True),
            "max_position": Param(ParamKind.SHARES, "the most shares held (confirmed plus provisional)", required=True),
        },
        JoinBestBidParams,
    ),
    summary="one post-only BUY at the best bid, capped by a position",
    aliases=("join_best_bid",),
)


def configure(name: str, raw: Mapping[str, str]) -> Configured:
    """The strategy registered as `name` (or an alias) with its params parsed from `raw`."""
    entry = STRATEGIES.entry(name)
    spec = entry.item
    return Configured(entry.name, spec.strategy, spec.build(**parse_params(entry.name, spec.params, raw)))
