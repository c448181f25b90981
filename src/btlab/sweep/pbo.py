"""PBO by CSCV from per-block return sums (SPEC §6): the sweep never builds a combinations x
bars matrix of returns, only each combination's sums over the CSCV groups."""

from __future__ import annotations

import itertools
import math
from typing import Any

import numpy as np

from btlab.kernels.stats import VAR_FLOOR, cscv_nb

__all__ = ["DEFAULT_PBO_SPLITS", "MAX_PBO_SPLITS", "block_bounds", "pbo_from_blocks"]

DEFAULT_PBO_SPLITS = 16
MAX_PBO_SPLITS = 20


def block_bounds(n_returns: int, n_splits: int) -> np.ndarray:
    """CSCV group edges over `n_returns` rows: sizes differ by at most one (as `pbo_cscv`)."""
    return (np.arange(n_splits + 1, dtype=np.int64) * n_returns) // n_splits


def pbo_from_blocks(
    block_sum: np.ndarray,
    block_sq: np.ndarray,
    bounds: np.ndarray,
    periods_per_year: float | None = None,
) -> dict[str, Any]:
    """PBO by CSCV from per-block return sums, as `validation.pbo_cscv` from the full matrix.

    `block_sum[k, g]` and `block_sq[k, g]` are the sum and sum of squares of strategy k's
    returns in group g, the rows `bounds[g] <= j < bounds[g + 1]` (`block_bounds`). The sums are
    centered by each strategy's mean here, then the same kernel (`stats.cscv_nb`) ranks the
    IS-best among the OOS Sharpes for every choice of S/2 groups in sample. Same output as
    `pbo_cscv` (up to the rounding of the centered sums).
    """
    raw = np.asarray(block_sum, dtype=np.float64)
    sq = np.asarray(block_sq, dtype=np.float64)
    n_strat, n_splits = raw.shape
    if n_strat < 2:
        raise ValueError(f"PBO needs at least 2 strategies, got {n_strat}")
    if n_splits < 2 or n_splits % 2 or n_splits > MAX_PBO_SPLITS:
        raise ValueError(f"n_splits must be even and in [2, {MAX_PBO_SPLITS}], got {n_splits}")
    group_n = np.diff(bounds).astype(np.float64)
    t = float(bounds[-1])
    if t < 2 * n_splits:
        raise ValueError(f"PBO needs at least 2 rows per split ({2 * n_splits}), got {int(t)}")
    mu = raw.sum(axis=1, keepdims=True) / t
    centered = raw - group_n * mu
    centered_sq = np.maximum(sq - 2.0 * mu * raw + group_n * mu * mu, 0.0)
    var_floor = VAR_FLOOR * centered_sq.sum(axis=1) / (t - 1.0)
    combos = np.array(list(itertools.combinations(range(n_splits), n_splits // 2)), dtype=np.int64)
    c = combos.shape[0]
    logits, best = np.empty(c), np.empty(c, dtype=np.int64)
    sr_is, sr_oos = np.empty(c), np.empty(c)
    cscv_nb(
        np.ascontiguousarray(raw.T), np.ascontiguousarray(centered.T),
        np.ascontiguousarray(centered_sq.T), group_n, var_floor, combos, logits, best, sr_is, sr_oos,
        np.empty(n_splits, np.bool_), np.empty(n_strat),
    )  # fmt: skip
    scale = math.sqrt(periods_per_year) if periods_per_year is not None else 1.0
    finite = np.isfinite(sr_is) & np.isfinite(sr_oos)
    slope = math.nan
    if np.sum(finite) > 2 and np.ptp(sr_is[finite]) > 0:
        slope = float(np.polyfit(sr_is[finite], sr_oos[finite], 1)[0])
    q = np.quantile(logits, [0.05, 0.5, 0.95])
    return {
        "pbo": float(np.mean(logits <= 0.0)),
        "n_combinations": int(c),
        "n_splits": n_splits,
        "n_strategies": n_strat,
        "n_bars": int(t),
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
