"""The strategy catalog: names and aliases resolve, parameters are parsed exactly and checked."""

from __future__ import annotations

import pytest

from polyoms.core.errors import ConfigError, InputError
from polyoms.core.params import Param, ParamKind, parse_params
from polyoms.core.units import MICRO
from polyoms.strategies.catalog import STRATEGIES, configure
from polyoms.strategies.join_best_bid import JoinBestBid, JoinBestBidParams


def test_join_best_bid_is_registered_with_its_schema() -> None:
    assert "join-best-bid" in STRATEGIES.names()
    entry = STRATEGIES.entry("Join_Best_Bid")
    assert entry.name == "join-best-bid" and entry.summary
    assert set(entry.item.params) == {"token_id", "size", "max_position"}
    assert all(p.help for p in entry.item.params.values())


def test_configure_parses_params_exactly() -> None:
    c = configure("join-best-bid", {"token_id": " 1001 ", "size": "10.5", "max_position": "50"})
    assert c.name == "join-best-bid" and isinstance(c.strategy, JoinBestBid)
    assert c.params == JoinBestBidParams("1001", 10_500_000, 50 * MICRO)


def test_unknown_names_and_bad_params_are_refused() -> None:
    with pytest.raises(ConfigError, match="join-best-bid"):
        configure("join-best-ask", {})
    good = {"token_id": "1001", "size": "10", "max_position": "50"}
    with pytest.raises(InputError, match="unknown join-best-bid parameter"):
        configure("join-best-bid", {**good, "sise": "1"})
    with pytest.raises(InputError, match="needs parameter"):
        configure("join-best-bid", {"token_id": "1001"})
    with pytest.raises(InputError):
        configure("join-best-bid", {**good, "size": "1e1"})
    with pytest.raises(InputError, match="size must be positive"):
        configure("join-best-bid", {**good, "size": "0"})


def test_schema_kinds_and_defaults() -> None:
    schema = {
        "n": Param(ParamKind.INT, "a count", default=3),
        "p": Param(ParamKind.PRICE, "a price", required=True),
        "t": Param(ParamKind.TEXT, "a name", default="x"),
    }
    assert parse_params("demo", schema, {"p": "0.45"}) == {"n": 3, "p": 450_000, "t": "x"}
    assert parse_params("demo", schema, {"p": "1", "n": "-2", "t": "y"}) == {"n": -2, "p": MICRO, "t": "y"}
    with pytest.raises(InputError, match="integer"):
        parse_params("demo", schema, {"p": "1", "n": "2.5"})
