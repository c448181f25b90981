"""Plain-Python twins of kernels/signals.py: the hold-state latch as a table of transitions,
the crossover rule as a comparison per bar."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def _next_state(state: int, el: bool, xl: bool, es: bool, xs: bool) -> int:
    """One bar: exits first (a long leaves on exit_long or enter_short, a short on exit_short or
    enter_long), then, from flat, an entry that nothing on the same bar contradicts."""
    leaves = {1: xl or es, -1: xs or el, 0: False}[state]
    if state != 0 and not leaves:
        return state
    wants_long = el and not xl and not es
    wants_short = es and not xs and not el
    if wants_long:
        return 1
    if wants_short:
        return -1
    return 0


def hold_state(
    enter_long: Sequence[bool],
    exit_long: Sequence[bool],
    enter_short: Sequence[bool],
    exit_short: Sequence[bool],
) -> np.ndarray:
    """The state (+1, 0, -1) after each bar's signals, as float64."""
    state = 0
    out = []
    for el, xl, es, xs in zip(enter_long, exit_long, enter_short, exit_short, strict=True):
        state = _next_state(state, bool(el), bool(xl), bool(es), bool(xs))
        out.append(float(state))
    return np.array(out, dtype=np.float64)


def cross_target(
    a: Sequence[float], b: Sequence[float], long_value: float, short_value: float
) -> list[float]:
    """long where a > b, short where a < b, 0 where equal or either is not finite."""
    out = []
    for x, y in zip(a, b, strict=True):
        if not (np.isfinite(x) and np.isfinite(y)):
            out.append(0.0)
        else:
            out.append(long_value if x > y else short_value if x < y else 0.0)
    return out
