"""Randomness as a pure function: draw number n of a seed (SplitMix64).

Algorithms keep (seed, number of draws) in their state instead of a `random.Random`, so a state is a
value: stepping a copy gives the same draws, and a run is reproduced from its seed alone.
"""

from __future__ import annotations

from typing import Final

_MASK: Final = (1 << 64) - 1


def draw(seed: int, n: int) -> int:
    """The n-th 64-bit draw of `seed`."""
    z = (seed + (n + 1) * 0x9E3779B97F4A7C15) & _MASK
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK
    return z ^ (z >> 31)


def between(seed: int, n: int, lo: int, hi: int) -> int:
    """A draw within [lo, hi] (inclusive); the modulo bias is below 2^-40 for any span used here."""
    if hi < lo:
        raise ValueError(f"empty range [{lo}, {hi}]")
    return lo + draw(seed, n) % (hi - lo + 1)
