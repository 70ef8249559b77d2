"""How the CLI shows a registered algorithm's or strategy's parameters (`core.params`), as text or JSON."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

import typer

from polyoms.core.params import Param

_VALUE: Final = {"int": "N", "shares": "SHARES", "price": "P", "text": "TEXT"}
"""How each parameter kind shows its value."""


def params_json(params: Mapping[str, Param]) -> dict[str, dict[str, object]]:
    return {
        key: {"kind": p.kind.value, "help": p.help, "choices": list(p.choices), "required": p.required}
        for key, p in params.items()
    }


def echo_params(params: Mapping[str, Param]) -> None:
    shown = {
        f"{key}={'|'.join(p.choices) or _VALUE[p.kind.value]}": p.help + (" (required)" if p.required else "")
        for key, p in params.items()
    }
    width = max(map(len, shown), default=0)
    for key, text in shown.items():
        typer.echo(f"  {key.ljust(width)}  {text}")
