"""Plain-Python twins of kernels/stats.py: loops and lists, no prefix sums, no numba.

Each twin takes the same inputs (including the per-resample stream keys) and builds what the
kernel avoids building (the resampled series, the IS/OOS row sets), so a match checks the
kernels' shortcuts against the definitions.
"""

from __future__ import annotations

import itertools
import math

import numpy as np

MASK64 = (1 << 64) - 1


def splitmix64(state: int) -> tuple[int, int]:
    """One SplitMix64 step on Python ints: (next state, output)."""
    state = (state + 0x9E3779B97F4A7C15) & MASK64
    z = state
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
    return state, z ^ (z >> 31)


def shuffled_order(n: int, key: int) -> list[int]:
    """Twin of `shuffled_order_nb`: Fisher–Yates with SplitMix64 draws, slot i <-> draw % (i + 1)."""
    order = list(range(n))
    state = key
    for i in range(n - 1, 0, -1):
        state, x = splitmix64(state)
        j = x % (i + 1)
        order[i], order[j] = order[j], order[i]
    return order


def geometric_length(x: int, p: float) -> int:
    """Geometric(p) length >= 1 by inversion of u = ((x >> 11) + 1) / 2**53 (uncapped)."""
    if p >= 1.0:
        return 1
    u = ((x >> 11) + 1) / 2.0**53
    return 1 + math.floor(math.log(u) / math.log1p(-p))


def stationary_bootstrap_indices(n: int, key: int, mean_block_length: float) -> list[int]:
    """The indices of one stationary-bootstrap resample of a circular series of length n."""
    p = 1.0 / mean_block_length
    state = key
    idx: list[int] = []
    while len(idx) < n:
        state, x = splitmix64(state)
        start = x % n
        state, y = splitmix64(state)
        length = geometric_length(y, p)
        for j in range(length):
            if len(idx) == n:
                break
            idx.append((start + j) % n)
    return idx


def sample_sharpe(values: list[float], flat: str = "nan") -> float:
    """mean / std(ddof=1) by the textbook two-pass formula.

    All values equal: NaN (`flat="nan"`, the bootstrap's rule) or 0 for a zero sum and +/-inf
    otherwise (`flat="sign"`, the CSCV rule).
    """
    n = len(values)
    mean = sum(values) / n
    if len(set(values)) == 1:
        if flat == "nan":
            return math.nan
        return 0.0 if values[0] == 0.0 else math.copysign(math.inf, values[0])
    var = sum((v - mean) ** 2 for v in values) / (n - 1)
    return mean / math.sqrt(var)


def stationary_bootstrap_sharpe(
    r: np.ndarray, keys: np.ndarray, mean_block_length: float, scale: float
) -> np.ndarray:
    """Twin of `stationary_bootstrap_sharpe_nb`: build each resample, take its Sharpe."""
    vals = [float(v) for v in r]
    out = []
    for key in keys:
        idx = stationary_bootstrap_indices(len(vals), int(key), mean_block_length)
        out.append(scale * sample_sharpe([vals[i] for i in idx]))
    return np.array(out)


def rebuild_ohlc(
    o: np.ndarray, h: np.ndarray, lo: np.ndarray, c: np.ndarray, order: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Twin of `rebuild_ohlc_nb`: new bar i is old bar order[i-1]+1 moved whole onto the new close."""
    n = len(c)
    oo, hh, ll, cc = [float(o[0])], [float(h[0])], [float(lo[0])], [float(c[0])]
    new_c = float(c[0])
    for i in range(1, n):
        j = int(order[i - 1]) + 1
        new_c *= float(c[j]) / float(c[j - 1])
        new_o = new_c * (float(o[j]) / float(c[j]))
        cc.append(new_c)
        oo.append(new_o)
        hh.append(max(new_c * (float(h[j]) / float(c[j])), new_o, new_c))
        ll.append(min(new_c * (float(lo[j]) / float(c[j])), new_o, new_c))
    return np.array(oo), np.array(hh), np.array(ll), np.array(cc)


def cscv(matrix: np.ndarray, n_splits: int) -> list[tuple[float, int, float, float]]:
    """Twin of `cscv_nb` from the rows themselves: (logit, IS-best, its IS SR, its OOS SR) per combination."""
    t, n = matrix.shape
    bounds = [(s * t) // n_splits for s in range(n_splits + 1)]
    groups = [list(range(bounds[s], bounds[s + 1])) for s in range(n_splits)]
    out = []
    for combo in itertools.combinations(range(n_splits), n_splits // 2):
        is_rows = [row for g in combo for row in groups[g]]
        oos_rows = [row for g in range(n_splits) if g not in combo for row in groups[g]]
        sr_is = [
            sample_sharpe([float(matrix[row, k]) for row in is_rows], "sign") for k in range(n)
        ]
        sr_oos = [
            sample_sharpe([float(matrix[row, k]) for row in oos_rows], "sign") for k in range(n)
        ]
        best = max(range(n), key=lambda k: (sr_is[k], -k))
        below = sum(1 for k in range(n) if sr_oos[k] < sr_oos[best])
        ties = sum(1 for k in range(n) if sr_oos[k] == sr_oos[best] and k != best)
        omega = (below + 0.5 * ties + 1) / (n + 1)
        out.append((math.log(omega / (1 - omega)), best, sr_is[best], sr_oos[best]))
    return out
