"""`polyoms order algos`, `order add --help` and `polyoms strategies` show the catalogs' names and parameters."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from polyoms.algos.catalog import COMMON_PARAMS, orderable
from polyoms.cli.main import app

ENV = {"COLUMNS": "200"}


def test_order_algos_lists_every_orderable_algorithm_with_its_parameters() -> None:
    r = CliRunner().invoke(app, ["order", "algos"], env=ENV)
    assert r.exit_code == 0, r.output
    for entry in orderable():
        assert f"{entry.name}" in r.stdout and all(alias in r.stdout for alias in entry.aliases)
        assert all(f"  {key}=" in r.stdout for key in entry.item.params)
    assert "urgency=LOW|MEDIUM|HIGH" in r.stdout and "on_restart=interrupt|resume" in r.stdout
    assert "multileg" not in r.stdout  # started through the Python API only
    listed = json.loads(CliRunner().invoke(app, ["order", "algos", "--json"], env=ENV).stdout)
    assert [a["name"] for a in listed["algos"]] == ["iceberg", "adaptive", "micro-price"]
    by_name = {a["name"]: a for a in listed["algos"]}
    assert by_name["micro-price"]["aliases"] == ["microprice", "micro_price"]
    assert by_name["adaptive"]["params"]["start_price"]["kind"] == "price"
    assert set(listed["every_algo"]) == set(COMMON_PARAMS)


def test_order_add_help_names_the_algorithms() -> None:
    r = CliRunner().invoke(app, ["order", "add", "--help"], env=ENV)
    assert r.exit_code == 0, r.output
    text = " ".join(r.stdout.split())
    assert "iceberg, adaptive, micro-price" in text and "order algos" in text


def test_strategies_lists_the_catalog() -> None:
    r = CliRunner().invoke(app, ["strategies"], env=ENV)
    assert r.exit_code == 0, r.output
    assert "join-best-bid (also join_best_bid)" in r.stdout and "size=SHARES" in r.stdout
    listed = json.loads(CliRunner().invoke(app, ["strategies", "--json"], env=ENV).stdout)
    (jbb,) = listed["strategies"]
    assert jbb["name"] == "join-best-bid" and jbb["params"]["max_position"] == {
        "kind": "shares",
        "help": "the most shares held (confirmed plus provisional)",
        "choices": [],
        "required": True,
    }
