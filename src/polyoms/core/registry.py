"""Named factories: one place declares a name, what it takes and how to build it.

Venues, execution algorithms and strategies each keep one `Registry`; the daemon, the CLI, the control
API and the reports look names up there instead of listing them again. Aliases resolve to one canonical
name, so a name can be renamed without breaking what users typed before.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from polyoms.core.errors import ConfigError

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Entry(Generic[T]):
    """One registered name: `item` is whatever the registry holds (a factory, a spec)."""

    name: str
    item: T
    summary: str = ""
    aliases: tuple[str, ...] = ()


@dataclass(slots=True)
class Registry(Generic[T]):
    """Names → entries, in registration order. `what` names the kind in error messages."""

    what: str
    _entries: dict[str, Entry[T]] = field(default_factory=dict)
    _aliases: dict[str, str] = field(default_factory=dict)

    def register(self, name: str, item: T, *, summary: str = "", aliases: tuple[str, ...] = ()) -> T:
        for n in (name, *aliases):
            if n in self._entries or n in self._aliases:
                raise ValueError(f"{self.what} {n!r} is registered twice")
        self._entries[name] = Entry(name, item, summary, aliases)
        for a in aliases:
            self._aliases[a] = name
        return item

    def canonical(self, name: str) -> str:
        """The registered name for `name` or one of its aliases; ConfigError listing the names otherwise."""
        key = name.strip().lower()
        key = self._aliases.get(key, key)
        if key not in self._entries:
            raise ConfigError(
                f"unknown {self.what} {name!r}: one of {', '.join(self._entries) or '(none registered)'}",
                field=self.what,
                value=name,
            )
        return key

    def entry(self, name: str) -> Entry[T]:
        return self._entries[self.canonical(name)]

    def get(self, name: str) -> T:
        return self.entry(name).item

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        key = name.strip().lower()
        return key in self._entries or key in self._aliases

    def names(self) -> tuple[str, ...]:
        return tuple(self._entries)

    def __iter__(self) -> Iterator[Entry[T]]:
        return iter(tuple(self._entries.values()))
