"""The probability of backtest overfitting by combinatorially symmetric cross-validation
(Bailey, Borwein, López de Prado & Zhu 2017)."""

from __future__ import annotations

import itertools
import math
from typing import Any

import numba
import numpy as np

from ..kernels.stats import CSCV_TILE, VAR_FLOOR, cscv_nb

_MAX_CSCV_SPLITS = 20


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
        np.empty((c, n_splits - n_splits // 2), np.int64),
        np.empty((min(c, numba.get_num_threads()), 4, CSCV_TILE)),
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
