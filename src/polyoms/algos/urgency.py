"""Urgency presets for adaptive repricing: how long to wait for a fill, how often and how far to chase.

LOW / MEDIUM / HIGH = patience 60 / 30 / 10 s, at most 3 / 5 / 10 adjustments, steps of 0.3 / 0.5 / 1¢.
A step is applied on the market's grid where the price is: 0.3¢ is exact where the grid moves by 0.001 and
becomes one step (1¢) where it moves by 0.01 (`effective_step`). `Urgency.custom(...)` builds any other combination.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from polyoms.algos.base import AlgoConfigError, require
from polyoms.algos.pricing import Grid, grid_step
from polyoms.core.enums import Side
from polyoms.core.units import Micro, fmt_micro


@dataclass(frozen=True, slots=True)
class UrgencyParams:
    patience_ms: int
    """How long without a fill before the price is considered stale."""
    max_adjustments: int
    step: Micro
    """Price step per adjustment, before rounding to the grid."""

    def __post_init__(self) -> None:
        require(self.patience_ms > 0, f"patience must be positive, got {self.patience_ms} ms", field="patience_ms")
        require(self.max_adjustments >= 0, "max_adjustments must not be negative", field="max_adjustments")
        require(self.step > 0, f"step must be positive, got {fmt_micro(self.step)}", field="step")

    def effective_step(self, grid: Grid, price: Micro | None = None, side: Side = Side.BUY) -> Micro:
        """The step of an adjustment from `price` toward `side`, on the grid there (`pricing.grid_step`)."""
        return grid_step(self.step, grid, price, side)


class Urgency(StrEnum):
    LOW = "LOW"
    MEDIUM = "MEDIUM"
    HIGH = "HIGH"

    @property
    def params(self) -> UrgencyParams:
        return PRESETS[self]

    @staticmethod
    def custom(*, patience_s: int, max_adjustments: int, step: Micro) -> UrgencyParams:
        return UrgencyParams(patience_s * 1000, max_adjustments, step)


PRESETS: Final[dict[Urgency, UrgencyParams]] = {
    Urgency.LOW: UrgencyParams(60_000, 3, 3_000),
    Urgency.MEDIUM: UrgencyParams(30_000, 5, 5_000),
    Urgency.HIGH: UrgencyParams(10_000, 10, 10_000),
}


def resolve(urgency: Urgency | str | UrgencyParams) -> UrgencyParams:
    if isinstance(urgency, UrgencyParams):
        return urgency
    try:
        return Urgency(str(urgency).upper()).params
    except ValueError:
        raise AlgoConfigError(f"urgency must be LOW, MEDIUM or HIGH, got {urgency!r}", field="urgency") from None
