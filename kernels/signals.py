"""Signal kernels: per-bar rules and state machines that turn shifted features into a target.

`hold_state_nb` latches entry / exit events (boolean arrays of one length) into a held
position of -1, 0 and +1; `cross_target_nb` is the "a above b" rule of the crossover
strategies. Like every kernel here they are causal: `out[i]` depends on inputs at `0..i` only.
"""

from __future__ import annotations

import math

import numpy as np

from ._jit import njit


def hold_state_nb(
    enter_long: np.ndarray, exit_long: np.ndarray, enter_short: np.ndarray, exit_short: np.ndarray
) -> np.ndarray:
    """A latch: go long when `enter_long` fires, stay long until `exit_long` (or `enter_short`)
    fires; shorts mirrored. Returns the state after each bar's signals: +1, 0 or -1.

    On one bar, exits are read first, then entries, with these rules:
    - a long exits on `exit_long` or `enter_short` (a short on `exit_short` or `enter_long`);
    - a flat state (also one that has just exited) enters long only where `enter_long` fires
      and neither `exit_long` nor `enter_short` does (shorts mirrored), so an exit and a
      re-entry of one side on the same bar leave the state flat, and so do both entries.

    Plain-Python form of the same rule: see tests/reference/signals.py.
    """
    out = np.empty(enter_long.shape[0], dtype=np.float64)
    return hold_state_into_nb(enter_long, exit_long, enter_short, exit_short, out)


@njit
def hold_state_into_nb(enter_long, exit_long, enter_short, exit_short, out):
    """`hold_state_nb` written into `out` (the inputs' length), which it returns."""
    n = enter_long.shape[0]
    state = 0.0
    for i in range(n):
        el = enter_long[i]
        xl = exit_long[i]
        es = enter_short[i]
        xs = exit_short[i]
        if (state > 0.0 and (xl or es)) or (state < 0.0 and (xs or el)):
            state = 0.0
        if state == 0.0:
            if el and not xl and not es:
                state = 1.0
            elif es and not xs and not el:
                state = -1.0
        out[i] = state
    return out


@njit
def cross_target_nb(a, b, long_value, short_value, out):
    """`out[i]`: `long_value` where `a[i] > b[i]`, `short_value` where `a[i] < b[i]`, else 0,
    and 0 where either is NaN (warm-up): the sma_cross / ma_trend rule on shifted features."""
    for i in range(out.shape[0]):
        x = a[i]
        y = b[i]
        if not (math.isfinite(x) and math.isfinite(y)):
            out[i] = 0.0
        elif x > y:
            out[i] = long_value
        elif x < y:
            out[i] = short_value
        else:
            out[i] = 0.0
