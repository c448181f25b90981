"""Kernels of the validation statistics (SPEC §6): stationary bootstrap, price-path rebuild, CSCV.

Random numbers inside kernels come from SplitMix64 streams, one per resample, each started
from a 64-bit key the caller draws from the module's generator (`rng_for(root_seed, module)`).
A resample's draws depend only on its key, so results do not depend on the number of threads
`prange` uses. SplitMix64 (Steele, Lea & Flood 2014) is short, passes BigCrush, and is easy to
replay exactly in plain Python (see tests/reference/stats.py).
"""

from __future__ import annotations

import math

import numba
import numpy as np

from ._jit import njit

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
_S30 = np.uint64(30)
_S27 = np.uint64(27)
_S31 = np.uint64(31)
_S11 = np.uint64(11)
_ONE = np.uint64(1)
_TWO_POW_M53 = 1.0 / 9007199254740992.0  # 2**-53
VAR_FLOOR = 1e-9  # a variance below this share of the series' variance counts as zero


@njit
def splitmix64_nb(state: np.uint64) -> tuple[np.uint64, np.uint64]:
    """One SplitMix64 step: (next state, 64-bit output)."""
    state = state + _GOLDEN
    z = state
    z = (z ^ (z >> _S30)) * _MIX1
    z = (z ^ (z >> _S27)) * _MIX2
    return state, z ^ (z >> _S31)


@njit
def geometric_length_nb(x: np.uint64, log_q: float, remaining: int) -> int:
    """A Geometric(p) block length (support 1, 2, ...) from the 64-bit draw `x`, capped at `remaining`.

    Inversion: `u = ((x >> 11) + 1) * 2**-53` in (0, 1], `L = 1 + floor(log(u) / log(1 - p))`;
    `log_q = log(1 - p)`, and `log_q = 0` means p = 1 (every block has length 1).
    """
    if log_q == 0.0:
        return 1
    u = float((x >> _S11) + _ONE) * _TWO_POW_M53
    g = math.floor(math.log(u) / log_q)
    if g >= remaining - 1:
        return remaining
    return 1 + int(g)


@njit
def circular_block_sum_nb(prefix: np.ndarray, start: int, length: int) -> float:
    """Sum of `length` values of the circular series from `start`, from its prefix sums (len n + 1)."""
    n = prefix.shape[0] - 1
    end = start + length
    if end <= n:
        return prefix[end] - prefix[start]
    return (prefix[n] - prefix[start]) + prefix[end - n]


@njit
def bootstrap_resample_sums_nb(
    prefix: np.ndarray, prefix_sq: np.ndarray, key: np.uint64, log_q: float
) -> tuple[float, float]:
    """Sum and sum of squares of one stationary-bootstrap resample, without building it.

    Blocks of the circular series: start uniform in [0, n) (`draw % n`), length Geometric(p)
    truncated to what is left of the n values. O(number of blocks).
    """
    n = prefix.shape[0] - 1
    un = np.uint64(n)
    state = key
    s1 = 0.0
    s2 = 0.0
    filled = 0
    while filled < n:
        state, x = splitmix64_nb(state)
        start = int(x % un)
        state, y = splitmix64_nb(state)
        length = geometric_length_nb(y, log_q, n - filled)
        s1 += circular_block_sum_nb(prefix, start, length)
        s2 += circular_block_sum_nb(prefix_sq, start, length)
        filled += length
    return s1, s2


def stationary_bootstrap_sharpe_nb(
    centered: np.ndarray, mean: float, keys: np.ndarray, mean_block_length: float, scale: float
) -> np.ndarray:
    """Sharpe ratio (`scale * mean / std(ddof=1)`) of each stationary-bootstrap resample.

    `centered` is the return series minus its `mean` (prefix sums of a centered series lose
    less precision); `keys[i]` seeds resample i's stream. NaN where a resample has (numerically)
    zero variance: below `VAR_FLOOR` times the variance of the whole series, which is far above
    the rounding error of the block sums and far below the variance of any real resample.
    """
    n = centered.shape[0]
    prefix, prefix_sq, out = np.empty(n + 1), np.empty(n + 1), np.empty(keys.shape[0])
    stationary_bootstrap_sharpe_into_nb(
        centered, mean, keys, mean_block_length, scale, prefix, prefix_sq, out
    )
    return out


@njit(parallel=True)
def stationary_bootstrap_sharpe_into_nb(
    centered, mean, keys, mean_block_length, scale, prefix, prefix_sq, out
):
    """`stationary_bootstrap_sharpe_nb` into `out` (one value per key), with the caller's
    `prefix` and `prefix_sq` (n + 1 values each) for the prefix sums."""
    n = centered.shape[0]
    prefix[0] = 0.0
    prefix_sq[0] = 0.0
    for i in range(n):
        prefix[i + 1] = prefix[i] + centered[i]
        prefix_sq[i + 1] = prefix_sq[i] + centered[i] * centered[i]
    p = 1.0 / mean_block_length
    log_q = 0.0 if p >= 1.0 else math.log1p(-p)
    var_floor = VAR_FLOOR * prefix_sq[n] / (n - 1)
    for b in numba.prange(keys.shape[0]):
        s1, s2 = bootstrap_resample_sums_nb(prefix, prefix_sq, keys[b], log_q)
        m = s1 / n
        var = (s2 - s1 * m) / (n - 1)
        out[b] = scale * (mean + m) / math.sqrt(var) if var > var_floor else np.nan


@njit
def shuffle_into_nb(order, key):
    """Fill `order` with a permutation of 0..n-1 by Fisher–Yates from the SplitMix64 stream
    started at `key`.

    Step i (from n-1 down to 1) swaps slot i with slot `draw % (i + 1)`; the modulo bias is
    below n / 2**64, far under anything a permutation test can see.
    """
    n = order.shape[0]
    for i in range(n):
        order[i] = i
    state = key
    for i in range(n - 1, 0, -1):
        state, x = splitmix64_nb(state)
        j = int(x % np.uint64(i + 1))
        tmp = order[i]
        order[i] = order[j]
        order[j] = tmp


def shuffled_order_nb(n: int, key: np.uint64) -> np.ndarray:
    """A new array holding the permutation `shuffle_into_nb` makes of 0..n-1 with `key`."""
    order = np.empty(n, dtype=np.int64)
    shuffle_into_nb(order, key)
    return order


@njit
def rebuild_ohlc_nb(first, bars, order, out_open, out_high, out_low, out_close):
    """Rebuild a price path whose bars 1..n-1 come in `order` (a permutation of 0..n-2).

    `first` = (open, high, low, close) of bar 0, copied unchanged. `bars[j]` = (close-to-close
    ratio, open/close, high/close, low/close) of bar j + 1, one row per bar so a bar is read
    from one cache line. New bar i takes bar `order[i - 1] + 1` whole: its return and its
    shape. Compounding ratios is the same path as summing log returns, without an exp per
    price. High and low are clamped to bound open and close, so rounding never yields an
    invalid bar.
    """
    out_open[0] = first[0]
    out_high[0] = first[1]
    out_low[0] = first[2]
    out_close[0] = first[3]
    c = first[3]
    for i in range(1, out_close.shape[0]):
        j = order[i - 1]
        c = c * bars[j, 0]
        o = c * bars[j, 1]
        out_close[i] = c
        out_open[i] = o
        out_high[i] = max(c * bars[j, 2], o, c)
        out_low[i] = min(c * bars[j, 3], o, c)


@njit
def sharpe_from_sums_nb(raw: float, s1: float, s2: float, n: float, var_floor: float) -> float:
    """mean / std(ddof=1) of n values: `raw` their sum, `s1`, `s2` the sum and sum of squares of
    the same values centered by any offset (better precision). The mean comes from `raw`, so
    all-zero returns have mean exactly 0.

    A variance at or below `var_floor` counts as zero: Sharpe 0 for a zero mean and +/-inf
    otherwise (so an argmax stays defined).
    """
    m = raw / n
    var = (s2 - s1 * (s1 / n)) / (n - 1.0)
    if var > var_floor:
        return m / math.sqrt(var)
    if m == 0.0:
        return 0.0
    return math.inf if m > 0.0 else -math.inf


@njit
def cscv_nb(
    group_raw: np.ndarray,
    group_sum: np.ndarray,
    group_sq: np.ndarray,
    group_n: np.ndarray,
    var_floor: np.ndarray,
    combos: np.ndarray,
    out_logit: np.ndarray,
    out_best: np.ndarray,
    out_is: np.ndarray,
    out_oos: np.ndarray,
    in_sample: np.ndarray,
    oos: np.ndarray,
) -> None:
    """CSCV (Bailey, Borwein, López de Prado & Zhu): one row of outputs per IS/OOS combination.

    `group_raw[s, k]`: sum of strategy k's returns in group s; `group_sum`, `group_sq`: sum and
    sum of squares of its centered returns; `group_n[s]` rows in group s; `var_floor[k]` the
    variance counted as zero for strategy k; `combos[c]` the groups in sample. For each
    combination: the IS-best strategy (first on ties) by per-bar Sharpe, its IS and OOS Sharpe,
    its average rank among the N OOS Sharpes, and the logit of rank / (N + 1). `in_sample`
    (bool, one per group) and `oos` (one per strategy) are the caller's scratch.
    """
    n_groups, n_strat = group_sum.shape
    for c in range(combos.shape[0]):
        in_sample[:] = False
        for g in range(combos.shape[1]):
            in_sample[combos[c, g]] = True
        best = 0
        best_is = -math.inf
        for k in range(n_strat):
            a0 = 0.0
            a1 = 0.0
            a2 = 0.0
            an = 0.0
            b0 = 0.0
            b1 = 0.0
            b2 = 0.0
            bn = 0.0
            for s in range(n_groups):
                if in_sample[s]:
                    a0 += group_raw[s, k]
                    a1 += group_sum[s, k]
                    a2 += group_sq[s, k]
                    an += group_n[s]
                else:
                    b0 += group_raw[s, k]
                    b1 += group_sum[s, k]
                    b2 += group_sq[s, k]
                    bn += group_n[s]
            sr_is = sharpe_from_sums_nb(a0, a1, a2, an, var_floor[k])
            oos[k] = sharpe_from_sums_nb(b0, b1, b2, bn, var_floor[k])
            if sr_is > best_is or k == 0:
                best_is = sr_is
                best = k
        below = 0.0
        ties = 0.0
        for k in range(n_strat):
            if oos[k] < oos[best]:
                below += 1.0
            elif oos[k] == oos[best] and k != best:
                ties += 1.0
        omega = (below + 0.5 * ties + 1.0) / (n_strat + 1.0)
        out_logit[c] = math.log(omega / (1.0 - omega))
        out_best[c] = best
        out_is[c] = best_is
        out_oos[c] = oos[best]
