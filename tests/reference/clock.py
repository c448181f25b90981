"""Plain-Python twins of kernels/clock.py: a symbol's own-bar series placed on the union clock,
written as a search for the last own bar before each clock bar."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def _bars_before(positions: Sequence[int], i: int) -> int:
    """How many of the symbol's own bars lie at clock indices strictly before i."""
    return sum(1 for p in positions if p < i)


def place_shifted(raw: Sequence[float], positions: Sequence[int], n: int) -> np.ndarray:
    """Column of length n: the raw value at the last own bar strictly before each clock bar."""
    out = []
    for i in range(n):
        c = _bars_before(positions, i)
        out.append(float(raw[c - 1]) if c > 0 else float("nan"))
    return np.array(out, dtype=np.float64)


def place_decision(
    own_target: Sequence[float], positions: Sequence[int], n: int, weight: float
) -> np.ndarray:
    """Column of length n: weight times the target of the symbol's next own bar, while listed."""
    out = []
    for i in range(n):
        listed = bool(positions) and positions[0] <= i <= positions[-1]
        out.append(weight * float(own_target[_bars_before(positions, i)]) if listed else 0.0)
    return np.array(out, dtype=np.float64)
