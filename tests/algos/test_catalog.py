"""The algorithm catalog: every name and alias resolves to one entry, unknown names are refused with the
names listed, every declared parameter is parsed and reaches the spec, and each entry starts and resumes
its own algorithm."""

from __future__ import annotations

from dataclasses import replace

import pytest

from polyoms.algos.adaptive import AdaptiveSpec
from polyoms.algos.base import AlgoConfigError, Instrument, ParentState
from polyoms.algos.catalog import (
    ALGOS,
    COMMON_PARAMS,
    Launch,
    algo_name,
    build_spec,
    name_of,
    on_restart_of,
    orderable,
    requested,
    spec_type,
)
from polyoms.algos.iceberg import IcebergSpec
from polyoms.algos.microprice import MicroPriceSpec
from polyoms.algos.multileg import LegSpec, MultiLegSpec
from polyoms.algos.single import OrderSpec
from polyoms.core.enums import Side
from polyoms.core.errors import ConfigError, InputError, InvalidAmountError
from polyoms.core.units import MICRO, TICK_SIZES

T01 = TICK_SIZES["0.01"]
SIZE = 30 * MICRO
VALUES = {
    "display": "7",
    "variance_bps": "1000",
    "pause_min_ms": "500",
    "pause_max_ms": "4000",
    "timeout_s": "60",
    "lifetime_s": "30",
    "limit": "0.6",
    "urgency": "high",
    "undercut_margin": "0.02",
    "check_ms": "2000",
    "start_price": "0.45",
    "band_bps": "100",
    "offset_bps": "10",
    "min_replace_ms": "2000",
    "max_replacements": "5",
}
"""A valid value, other than the default, for every parameter an algorithm declares."""
NEEDS: dict[tuple[str, str], dict[str, str]] = {
    ("iceberg", "urgency"): {"limit": "0.6"},
    ("iceberg", "undercut_margin"): {"limit": "0.6"},
    ("iceberg", "check_ms"): {"limit": "0.6"},
}
"""Parameters that are read only next to another one."""


def inst(token: str = "1") -> Instrument:
    return Instrument(token, T01, "0xmarket", "2")


def test_every_name_and_alias_resolves_to_its_entry() -> None:
    assert ALGOS.names() == ("iceberg", "adaptive", "micro-price", "multileg", "order")
    assert [e.name for e in orderable()] == ["iceberg", "adaptive", "micro-price"]
    for entry in ALGOS:
        for spelling in (entry.name, entry.name.upper(), f" {entry.name} ", *entry.aliases):
            assert ALGOS.canonical(spelling) == entry.name and spelling in ALGOS
            assert algo_name(spelling.strip()) == entry.name
        assert entry.summary
    assert ALGOS.entry("microprice").aliases == ("microprice", "micro_price")
    assert requested("micro_price").name == "micro-price"
    # The reports name scenario groups that are not algorithms ("kelly", "parents"): kept as they are.
    assert algo_name("kelly") == "kelly" and algo_name("parents") == "parents"


def test_unknown_names_are_refused_with_the_names_listed() -> None:
    with pytest.raises(
        ConfigError, match="unknown algo 'twap': one of iceberg, adaptive, micro-price, multileg, order"
    ):
        ALGOS.canonical("twap")
    # A request may name only what a request can start: the baskets and single orders are Python-API only.
    for name in ("twap", "order", "multileg", ""):
        with pytest.raises(InputError, match="algo must be one of iceberg, adaptive, micro-price, got") as exc:
            requested(name)
        assert exc.value.context == {"field": "algo"}
    with pytest.raises(InputError, match="algo must be one of"):
        build_spec("twap", "1", Side.BUY, SIZE, "0.5", {})


def test_each_spec_type_maps_to_one_name_and_back() -> None:
    specs = {
        "iceberg": IcebergSpec("1", Side.BUY, SIZE, 500_000, display=5 * MICRO),
        "adaptive": AdaptiveSpec("1", Side.BUY, 500_000, SIZE),
        "micro-price": MicroPriceSpec("1", Side.BUY, 500_000, SIZE),
        "multileg": MultiLegSpec((LegSpec("1", SIZE, 400_000), LegSpec("2", SIZE, 500_000))),
        "order": OrderSpec.limit("1", Side.BUY, 500_000, SIZE),
    }
    for name, spec in specs.items():
        assert name_of(spec) == name and ALGOS.get(name).spec_type is type(spec)
        assert spec_type(type(spec).__name__) is type(spec)
    assert specs["multileg"].tokens == ("1", "2") and specs["multileg"].target == 2 * SIZE
    assert specs["adaptive"].tokens == ("1",) and specs["adaptive"].target == SIZE
    with pytest.raises(AlgoConfigError, match="unknown parent spec"):
        name_of(object())
    with pytest.raises(KeyError):
        spec_type("TwapSpec")


@pytest.mark.parametrize("name", [e.name for e in orderable()])
def test_every_declared_parameter_is_parsed_and_reaches_the_spec(name: str) -> None:
    entry = ALGOS.entry(name)
    assert entry.item.price_help and not set(entry.item.params) & set(COMMON_PARAMS)
    plain = build_spec(name, "1", Side.BUY, SIZE, "0.5", {})
    assert isinstance(plain, entry.item.spec_type) and plain.tokens == ("1",) and plain.target == SIZE
    for key, param in entry.item.params.items():
        assert param.help, key
        base = NEEDS.get((name, key), {})
        with_it = build_spec(name, "1", Side.BUY, SIZE, "0.5", {**base, key: VALUES[key]})
        assert with_it != build_spec(name, "1", Side.BUY, SIZE, "0.5", base), f"{name} ignores {key}="
    # Parameters of the parent, not of its algorithm: accepted by every algorithm, not in the spec.
    assert build_spec(name, "1", Side.BUY, SIZE, "0.5", {"on_restart": "Resume"}) == plain
    everything = {**VALUES, "on_restart": "resume"}
    spec = build_spec(name, "1", Side.BUY, SIZE, "0.5", {k: v for k, v in everything.items() if k in entry.item.params})
    assert spec.timeout_ms == 60_000


def test_parameters_are_checked_before_any_spec_exists() -> None:
    refused = [
        ("iceberg", "0.5", {"colour": "red"}, InputError, "unknown iceberg parameter(s) colour; known: check_ms"),
        ("micro-price", "0.5", {"band_bps": "x"}, InputError, "micro-price parameter band_bps must be an integer"),
        ("micro-price", "0.5", {"band_bps": "²"}, InputError, "must be an integer"),
        ("adaptive", "0.5", {"start_price": "1e-1"}, InvalidAmountError, "start_price"),
        ("iceberg", "0.5", {"urgency": "high"}, InputError, "need limit=P"),
        ("adaptive", "0.5", {"urgency": "extreme"}, AlgoConfigError, "urgency must be LOW, MEDIUM or HIGH"),
        ("adaptive", "0.5", {"timeout_s": "0"}, AlgoConfigError, "timeout_ms must be positive"),
        ("iceberg", None, {}, InputError, "a iceberg parent order needs --price"),
        ("adaptive", "0.5", {"on_restart": "later"}, AlgoConfigError, "on_restart must be one of interrupt, resume"),
    ]
    for name, price, params, error, message in refused:
        with pytest.raises(error) as exc:
            build_spec(name, "1", Side.BUY, SIZE, price, params)
            on_restart_of(params)
        assert message in str(exc.value), (name, params, str(exc.value))
    assert on_restart_of({"on_restart": " Interrupt "}) == "interrupt" and on_restart_of({}) is None


def test_each_entry_starts_its_algorithm_and_says_whether_it_resumes() -> None:
    for entry in orderable():
        spec = build_spec(entry.name, "1", Side.BUY, SIZE, "0.5", {"timeout_s": "60"})
        state = entry.item.start(spec, Launch((inst(),), 1_000, 7))
        assert state.phase is ParentState.WORKING and state.tokens == ("1",)
        assert entry.item.resume is not None  # single-token algorithms sized in shares resume
        again = entry.item.resume(spec, 5 * MICRO, 30_000)
        assert again == replace(spec, size=5 * MICRO, timeout_ms=30_000)
    basket = ALGOS.get("multileg")
    assert basket.resume is None and basket.complements and basket.build is None
    legs = MultiLegSpec((LegSpec("1", SIZE, 400_000), LegSpec("2", SIZE, 500_000)))
    assert basket.start(legs, Launch((inst("1"), inst("2")), 1_000, 7)).tokens == ("1", "2")
    assert ALGOS.get("order").resume is None
