"""`polyoms strategies`: the registered strategies and their parameters (`strategies/catalog.py`)."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from polyoms.cli.params import echo_params, params_json
from polyoms.strategies.catalog import STRATEGIES


def strategies(as_json: Annotated[bool, typer.Option("--json", help="Print them as JSON.")] = False) -> None:
    """The strategies that can be run, by name, with their parameters (`KEY=VALUE`)."""
    if as_json:
        listed = [
            {"name": e.name, "aliases": list(e.aliases), "summary": e.summary, "params": params_json(e.item.params)}
            for e in STRATEGIES
        ]
        typer.echo(json.dumps({"strategies": listed}, indent=2))
        return
    for e in STRATEGIES:
        also = f" (also {', '.join(e.aliases)})" if e.aliases else ""
        typer.echo(f"{e.name}{also}: {e.summary}")
        echo_params(e.item.params)
