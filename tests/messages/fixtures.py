"""Where the recorded venue messages live: ../shared/fixtures/polymarket beside the repository."""

from __future__ import annotations

import os
from pathlib import Path

_REPO = Path(__file__).resolve().parents[2]
FIXTURES = Path(os.environ.get("POLYOMS_FIXTURES", _REPO.parent / "shared" / "fixtures" / "polymarket"))


def fixture_files(folder: str) -> list[str]:
    """Names of every recorded JSON file in one folder (ws, rest, gamma, data-api)."""
    path = FIXTURES / folder
    if not path.is_dir():
        raise FileNotFoundError(f"recorded fixtures not found at {path} (set POLYOMS_FIXTURES)")
    return sorted(p.name for p in path.glob("*.json"))


def read(folder: str, name: str) -> bytes:
    return (FIXTURES / folder / name).read_bytes()
