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


#: Strategies per tile of `cscv_nb`: a tile's group sums (3 x S x CSCV_TILE doubles) stay in
#: a core's cache while every combination of its chunk reads them.
CSCV_TILE = 256


@njit(parallel=True)
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
    oos_groups: np.ndarray,
    work: np.ndarray,
) -> None:
    """CSCV (Bailey, Borwein, López de Prado & Zhu): one row of outputs per IS/OOS combination.

    `group_raw[s, k]`: sum of strategy k's returns in group s; `group_sum`, `group_sq`: sum and
    sum of squares of its centered returns; `group_n[s]` rows in group s; `var_floor[k]` the
    variance counted as zero for strategy k; `combos[c]` the groups in sample, ascending. For
    each combination: the IS-best strategy (first on ties) by per-bar Sharpe, its IS and OOS
    Sharpe, its average rank among the N OOS Sharpes, and the logit of rank / (N + 1).

    Scratch: `oos_groups` (combinations x S/2, the groups out of sample) and `work` (chunks x 4
    x CSCV_TILE): the combinations are dealt out to `work.shape[0]` chunks (`prange`); each
    chunk reads the strategies a tile at a time, twice (the IS-best, then its rank), so the sums
    are read from cache, not memory, however many strategies there are. Every Sharpe is summed
    group by group in ascending order, so the results do not depend on the tiles or chunks.
    """
    n_groups, n_strat = group_sum.shape
    n_combos, half = combos.shape
    n_chunks = work.shape[0]
    for p in numba.prange(n_chunks):
        c_lo = p * n_combos // n_chunks
        c_hi = (p + 1) * n_combos // n_chunks
        acc = work[p]
        for c in range(c_lo, c_hi):
            j = 0
            g = 0
            for s in range(n_groups):
                if g < half and combos[c, g] == s:
                    g += 1
                else:
                    oos_groups[c, j] = s
                    j += 1
            out_best[c] = 0
            out_is[c] = -math.inf
            out_logit[c] = 0.0  # the rank's count (below + ties / 2) until the end
        for lo in range(0, n_strat, CSCV_TILE):  # pass 1: the IS-best of each combination
            width = min(CSCV_TILE, n_strat - lo)
            for c in range(c_lo, c_hi):
                count = _tile_sums(group_raw, group_sum, group_sq, group_n, combos[c], lo, width,
                                   acc)  # fmt: skip
                sharpes = _tile_sharpes(acc, count, var_floor, lo, width)
                best = out_best[c]
                best_is = out_is[c]
                for t in range(width):
                    k = lo + t
                    sr = sharpes[t]
                    if sr > best_is or k == 0:
                        best_is = sr
                        best = k
                out_best[c] = best
                out_is[c] = best_is
        for c in range(c_lo, c_hi):
            count = _tile_sums(group_raw, group_sum, group_sq, group_n, oos_groups[c],
                               out_best[c], 1, acc)  # fmt: skip
            out_oos[c] = sharpe_from_sums_nb(
                acc[0, 0], acc[1, 0], acc[2, 0], count, var_floor[out_best[c]]
            )
        for lo in range(0, n_strat, CSCV_TILE):  # pass 2: the rank of its OOS Sharpe
            width = min(CSCV_TILE, n_strat - lo)
            for c in range(c_lo, c_hi):
                count = _tile_sums(group_raw, group_sum, group_sq, group_n, oos_groups[c], lo,
                                   width, acc)  # fmt: skip
                best = out_best[c]
                best_oos = out_oos[c]
                rank = out_logit[c]
                sharpes = _tile_sharpes(acc, count, var_floor, lo, width)
                for t in range(width):
                    k = lo + t
                    sr = sharpes[t]
                    if sr < best_oos:
                        rank += 1.0
                    elif sr == best_oos and k != best:
                        rank += 0.5
                out_logit[c] = rank
        for c in range(c_lo, c_hi):
            omega = (out_logit[c] + 1.0) / (n_strat + 1.0)
            out_logit[c] = math.log(omega / (1.0 - omega))


@njit
def _tile_sums(
    group_raw: np.ndarray,
    group_sum: np.ndarray,
    group_sq: np.ndarray,
    group_n: np.ndarray,
    groups: np.ndarray,
    lo: int,
    width: int,
    acc: np.ndarray,
) -> float:
    """Strategies lo..lo+width's sums over `groups` (ascending) into acc[0..2, :width]; returns
    the groups' row count."""
    raw = acc[0]
    cen = acc[1]
    sq = acc[2]
    raw[:width] = 0.0
    cen[:width] = 0.0
    sq[:width] = 0.0
    count = 0.0
    for g in range(groups.shape[0]):
        s = groups[g]
        count += group_n[s]
        row_raw = group_raw[s, lo : lo + width]
        row_cen = group_sum[s, lo : lo + width]
        row_sq = group_sq[s, lo : lo + width]
        for t in range(width):
            raw[t] += row_raw[t]
            cen[t] += row_cen[t]
            sq[t] += row_sq[t]
    return count


@njit
def _tile_sharpes(
    acc: np.ndarray, count: float, var_floor: np.ndarray, lo: int, width: int
) -> np.ndarray:
    """The tile's Sharpes from its sums (`_tile_sums`) into acc[3, :width], returned."""
    raw = acc[0]
    cen = acc[1]
    sq = acc[2]
    out = acc[3]
    floor = var_floor[lo : lo + width]
    for t in range(width):
        out[t] = sharpe_from_sums_nb(raw[t], cen[t], sq[t], count, floor[t])
    return out
