"""Entry point of the `polyoms` console script; each command group lives in its own module."""

from __future__ import annotations

import typer

from polyoms.cli import ctl, demo, order, report, run, sim

app = typer.Typer(
    name="polyoms",
    help="Order management and execution for Polymarket's CLOB V2.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(order.app, name="order")
app.add_typer(report.app, name="report")
app.command("sim")(sim.sim)
app.command("run")(run.run)
app.command("doctor")(run.doctor)
app.command("demo")(demo.demo)
ctl.register(app)


def main() -> None:  # pragma: no cover - thin wrapper for `python -m polyoms.cli.main`
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
