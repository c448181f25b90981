"""PBO by CSCV from per-block return sums (SPEC §6): the sweep never builds a combinations x
bars matrix of returns, only each combination's sums over the CSCV groups."""

from __future__ import annotations

from typing import Any

import numpy as np

from btlab.kernels.stats import VAR_FLOOR

from ..validation import cscv_summary

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
    return cscv_summary(
        np.ascontiguousarray(raw.T), np.ascontiguousarray(centered.T),
        np.ascontiguousarray(centered_sq.T), group_n, var_floor,
        n_splits=n_splits, n_bars=int(t), periods_per_year=periods_per_year,
    )  # fmt: skip
