"""Entry point of the `polyoms` console script; each command group lives in its own module."""

from __future__ import annotations

from importlib import metadata as _metadata
from typing import Annotated

import typer

from polyoms.cli import config, ctl, demo, order, report, run, sim, strategies
from polyoms.cli import history as history_cli

app = typer.Typer(
    name="polyoms",
    help="Order management and execution for Polymarket's CLOB V2.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(order.app, name="order")
app.add_typer(report.app, name="report")
app.add_typer(config.app, name="config")
app.command("sim")(sim.sim)
app.command("run")(run.run)
app.command("doctor")(run.doctor)
app.command("demo")(demo.demo)
app.command("strategies")(strategies.strategies)
ctl.register(app)
history_cli.register(app)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"polyoms {_metadata.version('polyoms')}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """Order management and execution for Polymarket's CLOB V2."""


def main() -> None:  # pragma: no cover - thin wrapper for `python -m polyoms.cli.main`
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
