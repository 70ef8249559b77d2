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
) -> None:
    """Run the execution-algorithm scenarios in process (virtual clock) and write their measurements."""
    from polyoms.algos import report

    console = Console(stderr=True)
    try:
        rows = asyncio.run(report.collect(seed, scenario or None))
    except PolyomsError as exc:
        console.print(f"[bold red]error:[/] {exc}", highlight=False)
        raise typer.Exit(2) from None
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(report.render(rows, seed), encoding="utf-8")
    console.print(f"{report.summary(rows)}; written to {out}", highlight=False)
