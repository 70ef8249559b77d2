"""`polyoms report ...`: reports measured on the local exchange, written as Markdown."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from polyoms.core.errors import PolyomsError

app = typer.Typer(help="Reports measured on the local exchange.", no_args_is_help=True)


@app.command("algos")
def algos(
    seed: Annotated[int, typer.Option("--seed", help="Seed of every scenario (same seed, same numbers).")] = 7,
    out: Annotated[Path, typer.Option("--out", help="Where to write the Markdown report.")] = Path("docs/algos.md"),
    scenario: Annotated[
        list[str] | None, typer.Option("--scenario", help="Only these scenarios (repeatable); default: all.")
    ] = None,
    latency: Annotated[
        bool, typer.Option("--latency/--no-latency", help="Our connection's latencies (BACKTEST_LATENCY) or none.")
    ] = True,
) -> None:
    """Run the execution-algorithm scenarios in process (virtual clock) and write their measurements;
    with latency, also without it, to say what it changed."""
    from polyoms.backtest import report
    from polyoms.backtest.scenarios import BACKTEST_LATENCY

    console = Console(stderr=True)
    names = scenario or None
    config = BACKTEST_LATENCY if latency else None
    try:
        rows = asyncio.run(report.collect(seed, names, config))
        baseline = asyncio.run(report.collect(seed, names, None)) if latency else []
    except PolyomsError as exc:
        console.print(f"[bold red]error:[/] {exc}", highlight=False)
        raise typer.Exit(2) from None
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(report.render(rows, seed, latency=config, baseline=baseline), encoding="utf-8")
    console.print(f"{report.summary(rows)}; written to {out}", highlight=False)
