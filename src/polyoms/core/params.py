"""Parameters an operator gives a named algorithm or strategy as text (`--param KEY=VALUE`), and their schema.

Values are read exactly (prices and sizes to micro-units, integers as integers) and refused with a typed
`InputError` naming them; unknown names are refused too, so a misspelt one never falls back to a default.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from polyoms.core.errors import InputError
from polyoms.core.units import plain_micro


class ParamKind(StrEnum):
    INT = "int"
    SHARES = "shares"
    PRICE = "price"
    TEXT = "text"


@dataclass(frozen=True, slots=True)
class Param:
    """One parameter: how its text is read and what it means. `required`: it must be given; `default`:
    the value when it is not (None: left out)."""

    kind: ParamKind
    help: str
    choices: tuple[str, ...] = ()
    """The values a TEXT parameter takes, any case (checked where it is used, with its own message)."""
    required: bool = False
    default: int | str | None = None

    def parse(self, owner: str, key: str, text: str) -> int | str:
        if self.kind is ParamKind.INT:
            value = text.strip()
            if not (value.lstrip("-").isdigit() and value.isascii()):
                raise InputError(f"{owner} parameter {key} must be an integer, got {text!r}", field=key)
            return int(value)
        if self.kind is ParamKind.TEXT:
            return text.strip()
        return plain_micro(text, key)


def parse_params(owner: str, schema: Mapping[str, Param], raw: Mapping[str, str]) -> dict[str, int | str]:
    """`raw` (name → text) checked against `schema` and parsed, defaults filled in."""
    unknown = sorted(set(raw) - set(schema))
    if unknown:
        raise InputError(
            f"unknown {owner} parameter(s) {', '.join(unknown)}; known: {', '.join(sorted(schema))}", field="param"
        )
    missing = [k for k, p in schema.items() if p.required and k not in raw]
    if missing:
        raise InputError(f"{owner} needs parameter(s) {', '.join(missing)}", field="param")
    out: dict[str, int | str] = {key: schema[key].parse(owner, key, text) for key, text in raw.items()}
    for key, p in schema.items():
        if key not in out and p.default is not None:
            out[key] = p.default
    return out
