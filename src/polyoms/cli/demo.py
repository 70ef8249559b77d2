"""`polyoms demo`: the main job — local exchange + engine in one process, a showcase, a reconciliation."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from polyoms.core.errors import PolyomsError
from polyoms.ops.demo import DemoOptions, render_report, run_demo
from polyoms.ops.logs import configure_logging


def demo(
    seed: Annotated[int, typer.Option("--seed", help="Seed of the exchange's background flow and the algorithms.")] = 7,
    quick: Annotated[bool, typer.Option("--quick", help="Smaller jobs and faster settlement: under a minute.")] = False,
    faults: Annotated[
        bool, typer.Option("--faults", help="Turn the exchange's rehearsal faults on (timeouts, 5xx, WS chaos...).")
    ] = False,
    live: Annotated[bool, typer.Option("--live/--no-live", help="Show the live view while the jobs run.")] = True,
    state_dir: Annotated[
        Path | None, typer.Option("--state-dir", help="Keep the journal here (default: a temporary directory).")
    ] = None,
    log_level: Annotated[str, typer.Option("--log-level", help="Log level of the engine's logs (stderr).")] = "warning",
) -> None:
    """Run the showcase against the embedded local exchange: an adaptively priced iceberg BUY, a FOK
    market BUY and a two-leg complete set, then reconcile the ledger against the exchange.

    Exit code 0 only if the reconciliation holds."""
    console = Console()
    if not console.is_terminal:
        console = Console(width=140)  # a log file or pipe: wide enough that the report's tables stay readable
    configure_logging(level=log_level.upper())
    opts = DemoOptions(seed=seed, quick=quick, faults=faults, state_dir=state_dir, live=live and console.is_terminal)
    try:
        report = asyncio.run(run_demo(opts, console))
    except PolyomsError as exc:
        Console(stderr=True).print(f"[bold red]demo failed:[/] {escape(str(exc))}", highlight=False)
        raise typer.Exit(1) from None
    render_report(report, console)
    raise typer.Exit(0 if report.ok else 1)
