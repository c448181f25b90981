"""Clock kernels: place a symbol's own-bar series on a portfolio's union clock (SPEC §8).

A portfolio's clock is the sorted union of its symbols' timestamps; `positions` are the clock
indices of one symbol's own bars (strictly increasing). Both kernels write column `k` of the
caller's (n, K) `out` and allocate nothing. At clock bar `i`, `c` is the number of the symbol's
own bars strictly before `i` (at clock indices < i): everything known about the symbol before
clock bar i opens comes from its own bars `0..c-1`.
"""

from __future__ import annotations

import numpy as np

from ._jit import njit


@njit
def place_shifted_nb(raw, positions, k, out):
    """`out[i, k] = raw[c - 1]`: the raw value at the symbol's last own bar strictly before
    clock bar i (the registry's +1 shift, on the clock); NaN while `c == 0` (up to and including
    its first bar), carried forward through its gaps and after its last bar."""
    n = out.shape[0]
    m = positions.shape[0]
    c = 0
    for i in range(n):
        while c < m and positions[c] < i:
            c += 1
        if c == 0:
            out[i, k] = np.nan
        else:
            out[i, k] = raw[c - 1]


@njit
def place_decision_nb(own_target, positions, k, weight, out):
    """`out[i, k] = weight * own_target[c]` while the symbol is listed (its first bar <= i <=
    its last bar), 0 elsewhere. `own_target[c]` is the decision for the symbol's next own bar
    (own bar c, at clock index >= i), made from its own bars `0..c-1`: at one of its own bars
    it is that bar's target; in a gap, the target its next bar will be ordered to."""
    n = out.shape[0]
    m = positions.shape[0]
    c = 0
    for i in range(n):
        while c < m and positions[c] < i:
            c += 1
        if m == 0 or i < positions[0] or c == m:
            out[i, k] = 0.0
        else:
            out[i, k] = weight * own_target[c]
