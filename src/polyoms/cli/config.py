"""`polyoms config init|show|doc`: a commented template, the effective configuration, the reference."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from polyoms.core.errors import PolyomsError
from polyoms.ops import config as cfg

app = typer.Typer(help="Write a config template, show the effective configuration.", no_args_is_help=True)


def _fail(message: str) -> typer.Exit:
    Console(stderr=True, soft_wrap=True).print(f"[bold red]error:[/] {escape(message)}", highlight=False)
    return typer.Exit(2)


@app.command("init")
def init(
    path: Annotated[Path, typer.Argument(help="Where to write the template.")] = Path("polyoms.toml"),
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing file.")] = False,
) -> None:
    """Write a config file listing every setting, commented out at its default, with a line on each."""
    path = path.expanduser()
    try:
        with path.open("w" if force else "x", encoding="utf-8") as fh:
            fh.write(cfg.template())
    except FileExistsError:
        raise _fail(f"{path} exists; not overwritten (use --force to replace it)") from None
    except OSError as exc:
        raise _fail(f"cannot write {path}: {exc.strerror}") from None
    Console(stderr=True).print(
        f"wrote {escape(str(path))}; edit it, then: polyoms config show --config {escape(str(path))}",
        highlight=False,
    )


@app.command("show")
def show(
    config: Annotated[Path | None, typer.Option("--config", help="Daemon config file (TOML).")] = None,
) -> None:
    """Print the effective configuration (defaults, file, environment) and where each value came from.

    Secrets are never printed: only whether each one is set."""
    try:
        effective, settings = cfg.effective_config(config)
    except PolyomsError as exc:
        raise _fail(str(exc)) from None
    typer.echo(cfg.show(settings, os.environ, effective.source), nl=False)


@app.command("doc")
def doc(
    out: Annotated[Path | None, typer.Option("--out", help="Write here instead of printing.")] = None,
) -> None:
    """The reference of every setting (docs/config.md is this output)."""
    text = cfg.reference_doc()
    if out is None:
        typer.echo(text, nl=False)
    else:
        out.write_text(text, encoding="utf-8")
