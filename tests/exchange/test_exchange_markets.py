"""Market specs: the default set, derived ids, validation and config files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from polyoms.core.errors import ConfigError
from polyoms.core.units import MICRO
from polyoms.exchange.fees import FeeCurve
from polyoms.exchange.markets import (
    MarketSpec,
    binary_market,
    default_markets,
    derive_condition_id,
    derive_token_id,
    load_markets,
    markets_from_config,
    neg_risk_event,
)


def test_default_set_covers_the_required_kinds() -> None:
    ms = default_markets()
    binaries = [m for m in ms if not m.neg_risk]
    assert any(m.tick.text == "0.01" and m.fee.rate == "0.07" and m.fee.exponent == 1 for m in binaries)
    assert any(m.tick.text == "0.01" and not m.fee.enabled for m in binaries)
    assert any(m.tick.text == "0.001" for m in binaries)
    nr = [m for m in ms if m.neg_risk]
    assert len(nr) == 3
    assert len({m.neg_risk_market_id for m in nr}) == 1 and nr[0].neg_risk_market_id.startswith("0x")
    assert all(m.min_size == 5 * MICRO for m in ms)


def test_default_ids_look_like_the_venues_and_are_stable() -> None:
    a, b = default_markets(), default_markets()
    assert a == b
    tokens = [t for m in a for t in m.token_ids]
    assert len(set(tokens)) == len(tokens)
    assert len({m.condition_id for m in a}) == len(a)
    for m in a:
        assert m.condition_id.startswith("0x") and len(m.condition_id) == 66
        for t in m.token_ids:
            assert t.isdigit() and 60 <= len(t) <= 78 and int(t) < 2**256


def test_derivations_are_deterministic() -> None:
    cid = derive_condition_id("x")
    assert cid == derive_condition_id("x") != derive_condition_id("y")
    assert derive_token_id(cid, 0) != derive_token_id(cid, 1)
    assert derive_token_id(cid, 0) == derive_token_id(cid.upper().replace("0X", "0x"), 0)


def test_neg_risk_event_expands_to_linked_binaries() -> None:
    ms = neg_risk_event("cup", "Will {outcome} win?", ["Alpha", "Beta Gamma"])
    assert [m.slug for m in ms] == ["cup-alpha", "cup-beta-gamma"]
    assert ms[1].question == "Will Beta Gamma win?"
    assert all(m.neg_risk for m in ms)
    with pytest.raises(ConfigError):
        neg_risk_event("cup", "?", ["Only"])
    with pytest.raises(ConfigError):
        neg_risk_event("cup", "?", ["A", "a"])


@pytest.mark.parametrize(
    "change",
    [
        {"condition_id": "0x1234"},
        {"yes_token_id": "12a"},
        {"no_token_id": "0012"},
        {"no_token_id": str(2**256)},
        {"min_size": 0},
        {"outcomes": ("Yes",)},
    ],
)
def test_spec_validation(change: dict[str, object]) -> None:
    base = binary_market("ok", "Ok?")
    fields = {f: getattr(base, f) for f in MarketSpec.__dataclass_fields__}
    fields.update(change)
    with pytest.raises(ConfigError):
        MarketSpec(**fields)


def test_same_token_twice_is_refused() -> None:
    base = binary_market("ok", "Ok?")
    with pytest.raises(ConfigError):
        binary_market("ok", "Ok?", no_token_id=base.yes_token_id, yes_token_id=base.yes_token_id)


@pytest.mark.parametrize(
    ("rate", "exponent"),
    [("-0.01", 1), ("1.5", 1), ("abc", 1), ("0.04", 0), ("0.04", 9)],
)
def test_fee_curve_validation(rate: str, exponent: int) -> None:
    with pytest.raises(ConfigError):
        FeeCurve(rate, exponent)


def test_fee_curve_normalises_its_rate() -> None:
    c = FeeCurve.of("0.0700", 2)
    assert (c.rate, c.rate_num, c.rate_den, c.rate_bps) == ("0.07", 7, 100, 700)
    assert not FeeCurve().enabled


TOML = """
[[markets]]
slug = "btc-up"
question = "BTC up?"
tick_size = "0.001"
min_order_size = "10"
fee = { rate = "0.07", exponent = 1 }

[[markets]]
slug = "plain"
question = "Plain?"
tick_size = 0.01
outcomes = ["Up", "Down"]
accepting_orders = false

[[neg_risk_events]]
slug = "cup"
question = "Will {outcome} win?"
outcomes = ["A", "B", "C"]
"""


def test_load_toml(tmp_path: Path) -> None:
    p = tmp_path / "markets.toml"
    p.write_text(TOML)
    ms = load_markets(p)
    assert [m.slug for m in ms] == ["btc-up", "plain", "cup-a", "cup-b", "cup-c"]
    btc, plain = ms[0], ms[1]
    assert btc.tick.text == "0.001" and btc.min_size == 10 * MICRO and btc.fee.rate == "0.07"
    assert plain.outcomes == ("Up", "Down") and not plain.accepting_orders and plain.tick.text == "0.01"
    assert all(m.neg_risk for m in ms[2:])


def test_load_json_with_explicit_ids(tmp_path: Path) -> None:
    cid = "0x" + "ab" * 32
    p = tmp_path / "markets.json"
    p.write_text(
        json.dumps(
            {"markets": [{"slug": "x", "question": "X?", "condition_id": cid, "yes_token_id": "1", "no_token_id": "2"}]}
        )
    )
    (m,) = load_markets(p)
    assert (m.condition_id, m.yes_token_id, m.no_token_id) == (cid, "1", "2")


@pytest.mark.parametrize(
    ("config", "fragment"),
    [
        ({}, "no markets"),
        ({"markets": [{"question": "?"}]}, "missing 'slug'"),
        ({"markets": [{"slug": "a", "question": "?", "tick_size": "0.02"}]}, "unknown tick size"),
        ({"markets": [{"slug": "a", "question": "?", "min_order_size": "-1"}]}, "min_order_size"),
        ({"markets": [{"slug": "a", "question": "?", "colour": "red"}]}, "unknown key(s) 'colour'"),
        ({"markets": [{"slug": "a", "question": "?", "neg_risk": "yes"}]}, "'neg_risk' must be bool"),
        ({"markets": [{"slug": "a", "question": "?", "fee": {"rate": "2"}}]}, "fee rate"),
        ({"markets": [{"slug": "a", "question": "?"}, {"slug": "a", "question": "?"}]}, "duplicate condition_id"),
        ({"markets": "nope"}, "'markets' must be list"),
        ({"neg_risk_events": [{"slug": "e", "question": "?", "outcomes": ["A"]}]}, "at least two"),
        ([], "expected a table"),
    ],
)
def test_config_errors_are_clear(config: object, fragment: str) -> None:
    with pytest.raises(ConfigError) as err:
        markets_from_config(config)
    assert fragment in err.value.message


def test_file_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_markets(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[[markets]\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_markets(bad)
    yml = tmp_path / "m.yaml"
    yml.write_text("x")
    with pytest.raises(ConfigError, match=r"\.toml or \.json"):
        load_markets(yml)
    wrong = tmp_path / "wrong.json"
    wrong.write_text(json.dumps({"markets": [{"slug": "a"}]}))
    with pytest.raises(ConfigError, match=r"wrong\.json: markets\[0\] \(a\): missing 'question'"):
        load_markets(wrong)
