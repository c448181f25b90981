"""Validation statistics of a backtest (SPEC §6): PSR, DSR, bootstrap, permutation test, PBO.

Every function works on its own on a NumPy array of per-bar returns; `run_validation` assembles
the `validation.json` dict of a run. Sharpe ratios here are per bar unless annualized with
`periods_per_year`; skewness is the biased sample skewness and kurtosis the raw (not excess)
biased sample kurtosis, as `scipy.stats.skew(r)` and `scipy.stats.kurtosis(r, fisher=False)`.

Randomness: every draw comes from `rng_for(root_seed, module)` with module "bootstrap" or
"permutation", so changing one module's settings never changes another module's draws. CSCV
enumerates all combinations and draws nothing. Too short or constant series give NaN
statistics (JSON null), never an exception; non-finite input is a `ValueError`.

References:
- Bailey & López de Prado (2012), "The Sharpe Ratio Efficient Frontier", Journal of Risk 15(2).
- Bailey & López de Prado (2014), "The Deflated Sharpe Ratio", J. Portfolio Management 40(5).
- Politis & Romano (1994), "The Stationary Bootstrap", JASA 89(428).
- Bailey, Borwein, López de Prado & Zhu (2017), "The Probability of Backtest Overfitting",
  Journal of Computational Finance 20(4).
"""

from __future__ import annotations

import itertools
import math
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from statistics import NormalDist
from typing import Any

import numpy as np

from .config import ValidationConfig
from .hashing import rng_for, seed_for
from .kernels.stats import (
    VAR_FLOOR,
    cscv_nb,
    rebuild_ohlc_nb,
    shuffle_into_nb,
    stationary_bootstrap_sharpe_nb,
)
from .metrics import annualized_ratio

__all__ = [
    "EULER_GAMMA",
    "PermutationBase",
    "bootstrap_keys",
    "default_block_length",
    "dsr",
    "expected_max_sharpe",
    "min_track_record_length",
    "min_trl_from_moments",
    "moments",
    "pbo_cscv",
    "permutation_test",
    "permute_ohlc",
    "psr",
    "psr_from_moments",
    "run_validation",
    "sharpe",
    "sr_estimator_variance",
    "stationary_bootstrap",
]

EULER_GAMMA = 0.5772156649015329
_NORMAL = NormalDist()
_MAX_CSCV_SPLITS = 20

Statistic = Callable[[np.ndarray, np.ndarray, np.ndarray, np.ndarray], float]
#: `(base, keys) -> values`: the statistic of every path `base.permute_key(k)` for k in `keys`,
#: equal to `Statistic` on each path (e.g. one fused parallel kernel for the whole batch).
BatchStatistic = Callable[["PermutationBase", np.ndarray], np.ndarray]
Progress = Callable[[int, int], None]


def _returns(returns: np.ndarray, name: str = "returns") -> np.ndarray:
    r = np.asarray(returns, dtype=np.float64)
    if r.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array, got shape {r.shape}")
    if not np.all(np.isfinite(r)):
        raise ValueError(
            f"{name} must be finite (first non-finite at index {int(np.argmin(np.isfinite(r)))})"
        )
    return r


# ---------------------------------------------------------------- Sharpe, moments, PSR, DSR


def sharpe(returns: np.ndarray, periods_per_year: float | None = None) -> float:
    """mean / std(ddof=1) per bar, times sqrt(periods_per_year) when given; NaN if n < 2 or std = 0."""
    r = _returns(returns)
    if r.size < 2 or np.ptp(r) == 0.0:  # constant returns: no variance, whatever std rounds to
        return math.nan
    scale = math.sqrt(periods_per_year) if periods_per_year is not None else 1.0
    return annualized_ratio(float(np.mean(r)), float(np.std(r, ddof=1)), scale)


def moments(returns: np.ndarray) -> dict[str, float]:
    """Per-bar Sharpe, biased skewness and raw biased kurtosis (3 for a normal), and n."""
    r = _returns(returns)
    n = r.size
    out = {"n": float(n), "sharpe_per_bar": sharpe(r), "skew": math.nan, "kurtosis": math.nan}
    if n >= 2 and np.ptp(r) > 0.0:
        d = r - np.mean(r)
        d2 = d * d  # powers by products: `d**3` calls pow() per element, ~10x slower
        m2 = float(np.mean(d2))
        if m2 > 0.0:
            out["skew"] = float(np.mean(d2 * d)) / m2**1.5
            out["kurtosis"] = float(np.mean(d2 * d2)) / (m2 * m2)
    return out


def _sr_dispersion(sr: float, skew: float, kurtosis: float) -> float:
    """1 - γ3·SR + (γ4 - 1)/4·SR² (never negative for real data since γ4 >= 1 + γ3²)."""
    return 1.0 - skew * sr + (kurtosis - 1.0) / 4.0 * sr * sr


def sr_estimator_variance(sr: float, n_obs: int, skew: float = 0.0, kurtosis: float = 3.0) -> float:
    """Asymptotic variance of the per-bar Sharpe estimator: (1 - γ3·SR + (γ4-1)/4·SR²) / (T - 1)."""
    if n_obs < 2:
        return math.nan
    return _sr_dispersion(sr, skew, kurtosis) / (n_obs - 1)


def psr_from_moments(
    sr: float, n_obs: int, skew: float, kurtosis: float, sr_benchmark: float = 0.0
) -> float:
    """PSR(SR*) = Φ((SR - SR*)·sqrt(T - 1) / sqrt(1 - γ3·SR + (γ4 - 1)/4·SR²)), per-bar SR, raw kurtosis."""
    disp = _sr_dispersion(sr, skew, kurtosis)
    if n_obs < 2 or not disp > 0.0 or not math.isfinite(sr):
        return math.nan
    return _NORMAL.cdf((sr - sr_benchmark) * math.sqrt(n_obs - 1) / math.sqrt(disp))


def min_trl_from_moments(
    sr: float, skew: float, kurtosis: float, sr_benchmark: float = 0.0, prob: float = 0.95
) -> float:
    """MinTRL = 1 + (1 - γ3·SR + (γ4 - 1)/4·SR²)·(Φ⁻¹(prob) / (SR - SR*))², in bars; inf if SR <= SR*."""
    if not 0.0 < prob < 1.0:
        raise ValueError(f"prob must be in (0, 1), got {prob}")
    disp = _sr_dispersion(sr, skew, kurtosis)
    if not math.isfinite(sr) or not disp > 0.0:
        return math.nan
    if sr <= sr_benchmark:
        return math.inf
    return 1.0 + disp * (_NORMAL.inv_cdf(prob) / (sr - sr_benchmark)) ** 2


def psr(returns: np.ndarray, sr_benchmark: float = 0.0) -> float:
    """Probabilistic Sharpe ratio of per-bar `returns` against the per-bar benchmark `sr_benchmark`."""
    m = moments(returns)
    return psr_from_moments(
        m["sharpe_per_bar"], int(m["n"]), m["skew"], m["kurtosis"], sr_benchmark
    )


def expected_max_sharpe(n_trials: int, sr_variance: float) -> float:
    """E[max SR] of N zero-skill trials: sqrt(V)·((1-γ)Φ⁻¹(1 - 1/N) + γΦ⁻¹(1 - 1/(N·e))); 0 for N = 1."""
    if n_trials < 1:
        raise ValueError(f"n_trials must be >= 1, got {n_trials}")
    if sr_variance < 0.0 or not math.isfinite(sr_variance):
        raise ValueError(f"sr_variance must be finite and >= 0, got {sr_variance}")
    if n_trials == 1:
        return 0.0
    z1 = _NORMAL.inv_cdf(1.0 - 1.0 / n_trials)
    z2 = _NORMAL.inv_cdf(1.0 - 1.0 / (n_trials * math.e))
    return math.sqrt(sr_variance) * ((1.0 - EULER_GAMMA) * z1 + EULER_GAMMA * z2)


def _dsr_parts(
    m: dict[str, float], n_trials: int, sr_variance: float | None
) -> tuple[float, float, float]:
    """(DSR, SR* used, variance used) from moments."""
    sr, n = m["sharpe_per_bar"], int(m["n"])
    if sr_variance is None:
        sr_variance = sr_estimator_variance(sr, n, m["skew"], m["kurtosis"])
    if n_trials == 1:
        bench = 0.0
    elif math.isfinite(sr_variance):
        bench = expected_max_sharpe(n_trials, sr_variance)
    else:
        return math.nan, math.nan, sr_variance
    return psr_from_moments(sr, n, m["skew"], m["kurtosis"], bench), bench, sr_variance


def dsr(returns: np.ndarray, n_trials: int, sr_variance: float | None = None) -> float:
    """Deflated Sharpe ratio: PSR against SR* = expected_max_sharpe(n_trials, sr_variance).

    `sr_variance` is the variance of the per-bar Sharpe ratios across the trials (a sweep passes
    the variance of its trials' Sharpes). When not given it defaults to the asymptotic variance
    of the Sharpe estimator at the observed SR, `(1 - γ3·SR + (γ4-1)/4·SR²) / (T - 1)`: the
    spread of trial Sharpes expected from sampling noise alone. For `n_trials = 1` the DSR is
    `psr(returns, 0)`.
    """
    if n_trials < 1:
        raise ValueError(f"n_trials must be >= 1, got {n_trials}")
    return _dsr_parts(moments(returns), n_trials, sr_variance)[0]


def min_track_record_length(
    returns: np.ndarray, sr_benchmark: float = 0.0, prob: float = 0.95
) -> float:
    """Bars of track record needed for PSR(sr_benchmark) >= prob at the observed moments (inf if SR <= SR*)."""
    m = moments(returns)
    return min_trl_from_moments(m["sharpe_per_bar"], m["skew"], m["kurtosis"], sr_benchmark, prob)


# ---------------------------------------------------------------- stationary bootstrap


def default_block_length(n: int) -> float:
    """The default mean block length: round(n ** (1/3)), at least 1."""
    return float(max(1, round(n ** (1.0 / 3.0))))


def _generator(seed: int | np.random.Generator, module: str) -> np.random.Generator:
    if isinstance(seed, np.random.Generator):
        return seed
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or int(seed) < 0:
        raise ValueError(f"seed must be a non-negative integer root seed, got {seed!r}")
    return rng_for(int(seed), module)


def bootstrap_keys(rng: np.random.Generator, n_resamples: int) -> np.ndarray:
    """The per-resample stream keys, drawn in one call from the bootstrap module's generator."""
    return rng.integers(
        0, np.iinfo(np.uint64).max, size=n_resamples, dtype=np.uint64, endpoint=True
    )


def stationary_bootstrap(
    returns: np.ndarray,
    *,
    n_resamples: int = 1000,
    mean_block_length: float | None = None,
    periods_per_year: float = 1.0,
    confidence: float = 0.95,
    seed: int | np.random.Generator = 0,
) -> dict[str, Any]:
    """Stationary bootstrap (Politis & Romano 1994) of the annualized Sharpe ratio.

    Each resample joins blocks of the circular series with uniform starts and Geometric lengths
    of mean `mean_block_length` (default round(n^(1/3))); the kernel sums r and r² per block from
    prefix sums instead of building the resample. `seed` is the root seed (draws come from
    `rng_for(seed, "bootstrap")`) or a Generator. Returns the percentile CI of the annualized
    Sharpe, P(Sharpe <= 0) over the resamples, and the settings used.
    """
    r = _returns(returns)
    if n_resamples < 1:
        raise ValueError(f"n_resamples must be >= 1, got {n_resamples}")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    if not periods_per_year > 0.0:
        raise ValueError(f"periods_per_year must be > 0, got {periods_per_year}")
    mbl = default_block_length(r.size) if mean_block_length is None else float(mean_block_length)
    if not mbl >= 1.0 or not math.isfinite(mbl):
        raise ValueError(f"mean_block_length must be >= 1 bar, got {mean_block_length}")
    keys = bootstrap_keys(_generator(seed, "bootstrap"), n_resamples)
    out: dict[str, Any] = {
        "sharpe": sharpe(r, periods_per_year),
        "sharpe_ci": [math.nan, math.nan],
        "p_sharpe_le_0": math.nan,
        "mean_block_length": mbl,
        "n_resamples": n_resamples,
        "confidence": confidence,
        "n_valid": 0,
    }
    if r.size < 2:
        return out
    mean = float(np.mean(r))
    boot = stationary_bootstrap_sharpe_nb(r - mean, mean, keys, mbl, math.sqrt(periods_per_year))
    valid = boot[np.isfinite(boot)]
    out["n_valid"] = int(valid.size)
    if valid.size:
        alpha = (1.0 - confidence) / 2.0
        lo, hi = np.quantile(valid, [alpha, 1.0 - alpha])
        out["sharpe_ci"] = [float(lo), float(hi)]
        out["p_sharpe_le_0"] = float(np.mean(valid <= 0.0))
        out["std"] = float(np.std(valid, ddof=1)) if valid.size > 1 else math.nan
    return out


# ---------------------------------------------------------------- permutation test


class PermutationBase:
    """A price path split once into what a permutation shuffles: close log returns and bar shapes.

    Bar j (j >= 1) is the close-to-close log return log(c[j]/c[j-1]) plus its shape
    log(o/c), log(h/c), log(l/c), held as ratios in row j - 1 of `bars`. A permutation
    reorders bars 1..n-1 as whole units (each bar keeps its own shape, so its gap to the
    previous close and its range travel with it) and leaves bar 0 unchanged.
    """

    def __init__(
        self, open: np.ndarray, high: np.ndarray, low: np.ndarray, close: np.ndarray
    ) -> None:
        o, h, lo, c = (
            _returns(a, name)
            for a, name in ((open, "open"), (high, "high"), (low, "low"), (close, "close"))
        )
        if not o.shape == h.shape == lo.shape == c.shape:
            raise ValueError(
                f"open, high, low and close must have the same length, got {o.size}, {h.size}, {lo.size}, {c.size}"
            )
        if c.size < 2:
            raise ValueError(f"a price path needs at least 2 bars to permute, got {c.size}")
        if np.any(o <= 0) or np.any(h <= 0) or np.any(lo <= 0) or np.any(c <= 0):
            raise ValueError("open, high, low and close must be > 0 to take log returns")
        self.n = c.size
        self.first = np.array([o[0], h[0], lo[0], c[0]])
        # one row per bar 1..n-1: close-to-close ratio, open/close, high/close, low/close
        self.bars = np.empty((self.n - 1, 4))
        np.divide(c[1:], c[:-1], out=self.bars[:, 0])
        for k, a in enumerate((o, h, lo), 1):
            np.divide(a[1:], c[1:], out=self.bars[:, k])

    def buffers(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Arrays `permute_key` may fill instead of allocating: the order, open, high, low, close."""
        n = self.n
        return np.empty(n - 1, np.int64), np.empty(n), np.empty(n), np.empty(n), np.empty(n)

    def permute_key(
        self, key: int | np.uint64, out: tuple[np.ndarray, ...] | None = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """The permuted path (open, high, low, close) of one 64-bit key, as read-only arrays:
        new ones, or the last four of `out` (from `buffers()`) overwritten."""
        order, o, h, lo, c = self.buffers() if out is None else out
        shuffle_into_nb(order, np.uint64(key))
        for a in (o, h, lo, c):
            a.flags.writeable = True
        rebuild_ohlc_nb(self.first, self.bars, order, o, h, lo, c)
        for a in (o, h, lo, c):
            a.flags.writeable = False
        return o, h, lo, c

    def permute(
        self, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """One permuted path (open, high, low, close) from one key drawn from `rng`."""
        return self.permute_key(permutation_keys(rng, 1)[0])


def permutation_keys(rng: np.random.Generator, n_permutations: int) -> np.ndarray:
    """The per-permutation shuffle keys, drawn in one call from the permutation module's generator."""
    return rng.integers(
        0, np.iinfo(np.uint64).max, size=n_permutations, dtype=np.uint64, endpoint=True
    )


def permute_ohlc(
    open: np.ndarray, high: np.ndarray, low: np.ndarray, close: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A permutation of the price path: bars 1..n-1 reordered whole (see `PermutationBase`)."""
    return PermutationBase(open, high, low, close).permute(rng)


def default_workers() -> int:
    """Threads for the permutation test: the machine's cores (kernels release the GIL), at most 8."""
    return max(1, min(8, os.cpu_count() or 1))


def permutation_test(
    statistic: Statistic,
    open: np.ndarray,
    high: np.ndarray,
    low: np.ndarray,
    close: np.ndarray,
    *,
    n_permutations: int,
    seed: int | np.random.Generator,
    real_value: float | None = None,
    on_progress: Progress | None = None,
    workers: int | None = None,
    batch_statistic: BatchStatistic | None = None,
) -> dict[str, Any]:
    """Monte Carlo permutation test: p = (1 + #{perm >= real}) / (n + 1).

    `statistic(o, h, l, c)` re-runs features, strategy and kernel on a path and returns e.g. its
    Sharpe. `real_value` is the statistic on the real path (computed when None). `seed` is the
    root seed (draws come from `rng_for(seed, "permutation")`) or a Generator. A permutation
    whose statistic is NaN counts as not >= real (`n_nan` reports how many); a NaN real value
    gives a NaN p-value. `on_progress(done, total)` is called as permutations complete.
    Permutation i is shuffled by key i of `permutation_keys`; `workers` threads (default: the
    cores) run them, and `statistic` must be thread-safe (btlab's kernels release the GIL).
    The arrays `statistic` receives are read-only and are overwritten by the same thread's
    next permutation: copy anything kept beyond the call. With `batch_statistic` (which must
    equal `statistic` path by path) the permutations run in batches of `4 * workers` keys,
    one call each (it parallelizes itself), and progress is reported after each batch.
    """
    if n_permutations < 1:
        raise ValueError(f"n_permutations must be >= 1, got {n_permutations}")
    base = PermutationBase(open, high, low, close)
    rng = _generator(seed, "permutation")
    real = (
        float(statistic(*(np.asarray(a, dtype=np.float64) for a in (open, high, low, close))))
        if real_value is None
        else float(real_value)
    )
    keys = permutation_keys(rng, n_permutations)
    null = np.empty(n_permutations)
    local = threading.local()

    def one(key: np.uint64) -> float:
        buffers = getattr(local, "buffers", None)
        if buffers is None:  # one set of path arrays per thread, reused: no allocation per path
            buffers = local.buffers = base.buffers()
        return float(statistic(*base.permute_key(key, out=buffers)))

    # Each permutation depends only on its key, so threads change the speed, never the result.
    n_workers = default_workers() if workers is None else max(1, workers)
    if (
        batch_statistic is not None
    ):  # batches as the threaded path's: same progress, same cancel points
        size = 4 * n_workers
        for start in range(0, n_permutations, size):
            stop = min(n_permutations, start + size)
            null[start:stop] = batch_statistic(base, keys[start:stop])
            if on_progress is not None:
                for i in range(start, stop):
                    on_progress(i + 1, n_permutations)
    elif n_workers == 1:
        for i in range(n_permutations):
            null[i] = one(keys[i])
            if on_progress is not None:
                on_progress(i + 1, n_permutations)
    else:
        batch = 4 * n_workers  # bounded memory: a few paths in flight per thread
        with ThreadPoolExecutor(n_workers, thread_name_prefix="btlab-perm") as pool:
            for start in range(0, n_permutations, batch):
                stop = min(n_permutations, start + batch)
                for i, value in enumerate(pool.map(one, keys[start:stop]), start):
                    null[i] = value
                    if on_progress is not None:
                        on_progress(i + 1, n_permutations)
    finite = null[np.isfinite(null)]
    n_ge = int(np.sum(null >= real)) if math.isfinite(real) else 0
    q = np.quantile(finite, [0.05, 0.5, 0.95]) if finite.size else np.full(3, math.nan)
    return {
        "p_value": (1.0 + n_ge) / (n_permutations + 1.0) if math.isfinite(real) else math.nan,
        "real": real,
        "n_permutations": n_permutations,
        "n_ge": n_ge,
        "n_nan": int(n_permutations - finite.size),
        "null_mean": float(np.mean(finite)) if finite.size else math.nan,
        "null_std": float(np.std(finite, ddof=1)) if finite.size > 1 else math.nan,
        "null_quantiles": {"q05": float(q[0]), "q50": float(q[1]), "q95": float(q[2])},
    }


# ---------------------------------------------------------------- PBO by CSCV


def cscv_summary(
    group_raw: np.ndarray,
    group_sum: np.ndarray,
    group_sq: np.ndarray,
    group_n: np.ndarray,
    var_floor: np.ndarray,
    *,
    n_splits: int,
    n_bars: int,
    periods_per_year: float | None,
) -> dict[str, Any]:
    """The PBO section from per-group sums (splits × strategies: raw, centered, centered
    squares) by CSCV over every half of the splits: the one place the logits become the
    summary, for a returns matrix (`pbo_cscv`) and for a sweep's block sums alike."""
    combos = np.array(list(itertools.combinations(range(n_splits), n_splits // 2)), dtype=np.int64)
    c = combos.shape[0]
    logits, best = np.empty(c), np.empty(c, dtype=np.int64)
    sr_is, sr_oos = np.empty(c), np.empty(c)
    cscv_nb(
        group_raw, group_sum, group_sq, group_n, var_floor, combos, logits, best, sr_is, sr_oos,
        np.empty(n_splits, np.bool_), np.empty(group_sum.shape[1]),
    )  # fmt: skip
    scale = math.sqrt(periods_per_year) if periods_per_year is not None else 1.0
    finite_is = np.isfinite(sr_is) & np.isfinite(sr_oos)
    slope = math.nan
    if np.sum(finite_is) > 2 and np.ptp(sr_is[finite_is]) > 0:
        slope = float(np.polyfit(sr_is[finite_is], sr_oos[finite_is], 1)[0])
    q = np.quantile(logits, [0.05, 0.5, 0.95])
    return {
        "pbo": float(np.mean(logits <= 0.0)),
        "n_combinations": int(c),
        "n_splits": n_splits,
        "n_strategies": int(group_sum.shape[1]),
        "n_bars": int(n_bars),
        "logits": {
            "mean": float(np.mean(logits)),
            "std": float(np.std(logits, ddof=1)) if c > 1 else math.nan,
            "min": float(np.min(logits)),
            "q05": float(q[0]),
            "median": float(q[1]),
            "q95": float(q[2]),
            "max": float(np.max(logits)),
        },
        "is_best_sharpe_mean": float(np.mean(sr_is)) * scale,
        "oos_sharpe_of_is_best_mean": float(np.mean(sr_oos)) * scale,
        "prob_oos_loss": float(np.mean(sr_oos < 0.0)),
        "degradation_slope": slope,
        "is_best_counts": {
            int(k): int(v) for k, v in zip(*np.unique(best, return_counts=True), strict=True)
        },
    }


def pbo_cscv(
    returns_matrix: np.ndarray, n_splits: int = 16, periods_per_year: float | None = None
) -> dict[str, Any]:
    """Probability of backtest overfitting by combinatorially symmetric cross-validation.

    `returns_matrix` is T×N (bars × strategy configurations). Rows are cut into `n_splits` (S,
    even) contiguous groups whose sizes differ by at most one; for each of the C(S, S/2) choices
    of S/2 groups as in-sample (IS), the rest out-of-sample (OOS), the IS-best configuration by
    Sharpe is ranked among the N OOS Sharpes (average rank on ties), ω = rank / (N + 1) and
    λ = log(ω / (1 - ω)). PBO is the share of combinations with λ <= 0 (IS-best at or below the
    OOS median). A configuration with (numerically) zero variance over a set of rows scores 0
    there if its returns sum to 0 (e.g. it never traded) and +/-inf otherwise. `periods_per_year`
    only annualizes the reported Sharpes.
    """
    m = np.asarray(returns_matrix, dtype=np.float64)
    if m.ndim != 2:
        raise ValueError(f"returns_matrix must be 2-D (bars × strategies), got shape {m.shape}")
    t, n = m.shape
    if n < 2:
        raise ValueError(f"returns_matrix needs at least 2 strategies (columns), got {n}")
    if not np.all(np.isfinite(m)):
        raise ValueError("returns_matrix must be finite")
    if n_splits < 2 or n_splits % 2 or n_splits > _MAX_CSCV_SPLITS:
        raise ValueError(f"n_splits must be even and in [2, {_MAX_CSCV_SPLITS}], got {n_splits}")
    if t < 2 * n_splits:
        raise ValueError(
            f"returns_matrix needs at least 2 rows per split ({2 * n_splits} rows), got {t}"
        )
    centered = m - m.mean(axis=0)
    centered[:, np.ptp(m, axis=0) == 0] = 0.0  # a constant column: exactly zero variance
    bounds = (np.arange(n_splits + 1, dtype=np.int64) * t) // n_splits
    starts = bounds[:-1]
    group_raw = np.add.reduceat(m, starts, axis=0)
    group_sum = np.add.reduceat(centered, starts, axis=0)
    group_sq = np.add.reduceat(centered * centered, starts, axis=0)
    group_n = np.diff(bounds).astype(np.float64)
    var_floor = VAR_FLOOR * np.sum(centered * centered, axis=0) / (t - 1)
    return cscv_summary(
        group_raw, group_sum, group_sq, group_n, var_floor,
        n_splits=n_splits, n_bars=t, periods_per_year=periods_per_year,
    )  # fmt: skip


# ---------------------------------------------------------------- validation.json


def _folds_summary(fold_metrics: list[dict[str, Any]]) -> dict[str, Any]:
    sharpes = [f.get("sharpe") for f in fold_metrics]
    known = [s for s in sharpes if isinstance(s, int | float) and math.isfinite(s)]
    return {
        "k": len(fold_metrics),
        "folds": fold_metrics,
        "share_positive_sharpe": (sum(1 for s in known if s > 0) / len(fold_metrics))
        if fold_metrics
        else math.nan,
    }


def run_validation(
    returns: np.ndarray,
    cfg: ValidationConfig,
    *,
    root_seed: int,
    periods_per_year: float,
    permutation_statistic: Statistic | None = None,
    permutation_batch: BatchStatistic | None = None,
    ohlc: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None = None,
    real_statistic: float | None = None,
    fold_metrics: list[dict[str, Any]] | dict[str, Any] | None = None,
    trial_sharpes: np.ndarray | None = None,
    returns_matrix: np.ndarray | None = None,
    on_progress: Progress | None = None,
    permutation_workers: int | None = None,
) -> dict[str, Any]:
    """The `validation.json` dict of a run (SPEC §6); a section is None when disabled or not computable.

    - `psr`: PSR(0), DSR, MinTRL (bars, 95 %), per-bar Sharpe, skew, raw kurtosis, n_trials.
    - `dsr`: the DSR with its benchmark SR* and the Sharpe variance used: the variance (ddof=1)
      of `trial_sharpes` (per-bar Sharpes of every trial, for a sweep) when given, else the
      asymptotic variance of the Sharpe estimator.
    - `bootstrap`: `stationary_bootstrap` with `cfg.bootstrap`, draws from module "bootstrap".
    - `permutation`: `permutation_test` when `cfg.permutation.enabled` and both
      `permutation_statistic` and `ohlc` are given; `real_statistic` is the run's value of the
      statistic (computed when None). Draws from module "permutation".
    - `folds`: computed by the caller: either the finished section (a dict, kept as is) or a
      list of per-fold metrics dicts with "sharpe", summarized with the share of folds with a
      positive Sharpe.
    - `pbo`: `pbo_cscv(returns_matrix)` when a sweep passes its T×N matrix.
    `on_progress(done, total)` is called after each permutation (it may raise to cancel).
    `permutation_workers` threads run the permutations (default: the cores; a statistic that is
    itself a parallel kernel, as a sweep's, runs them one at a time); `permutation_batch`, where
    given, runs them in batches instead (see `permutation_test`).
    """
    r = _returns(returns)
    out: dict[str, Any] = {
        "settings": {
            **cfg.model_dump(mode="json"),
            "root_seed": root_seed,
            "periods_per_year": periods_per_year,
            "module_seeds": {m: seed_for(root_seed, m) for m in ("bootstrap", "permutation")},
        },
        "n_bars": int(r.size),
        "psr": None,
        "dsr": None,
        "bootstrap": None,
        "permutation": None,
        "folds": None,
        "pbo": None,
    }
    if not cfg.enabled:
        return out
    if cfg.psr:
        m = moments(r)
        var = None
        if trial_sharpes is not None:
            ts = _returns(trial_sharpes, "trial_sharpes")
            var = float(np.var(ts, ddof=1)) if ts.size > 1 else None
        d, bench, used_var = _dsr_parts(m, cfg.n_trials, var)
        sr = m["sharpe_per_bar"]
        out["psr"] = {
            "psr": psr_from_moments(sr, r.size, m["skew"], m["kurtosis"], 0.0),
            "dsr": d,
            "min_trl": min_trl_from_moments(sr, m["skew"], m["kurtosis"], 0.0, 0.95),
            "min_trl_years": min_trl_from_moments(sr, m["skew"], m["kurtosis"], 0.0, 0.95)
            / periods_per_year,
            "sharpe_per_bar": sr,
            "skew": m["skew"],
            "kurtosis": m["kurtosis"],
            "n_trials": cfg.n_trials,
            "n_obs": int(r.size),
        }
        out["dsr"] = {
            "dsr": d,
            "n_trials": cfg.n_trials,
            "sr_benchmark": bench,
            "sr_variance": used_var,
            "sr_variance_source": "trials" if var is not None else "estimator",
        }
    if cfg.bootstrap.enabled:
        b = cfg.bootstrap
        out["bootstrap"] = stationary_bootstrap(
            r,
            n_resamples=b.n_resamples,
            mean_block_length=b.mean_block_length,
            periods_per_year=periods_per_year,
            confidence=b.confidence,
            seed=root_seed,
        )
    if cfg.permutation.enabled and permutation_statistic is not None and ohlc is not None:
        out["permutation"] = permutation_test(
            permutation_statistic,
            *ohlc,
            n_permutations=cfg.permutation.n_permutations,
            seed=root_seed,
            real_value=real_statistic,
            on_progress=on_progress,
            workers=permutation_workers,
            batch_statistic=permutation_batch,
        )
    if cfg.folds.enabled and fold_metrics is not None:
        out["folds"] = (
            fold_metrics if isinstance(fold_metrics, dict) else _folds_summary(fold_metrics)
        )
    if returns_matrix is not None:
        rows = np.shape(returns_matrix)[0]
        splits = min(16, (rows // 4) * 2)
        out["pbo"] = pbo_cscv(returns_matrix, splits, periods_per_year) if splits >= 2 else None
    return out
