"""PBO by CSCV from per-block return sums (SPEC §6): the sweep never builds a combinations x
bars matrix of returns, only each combination's sums over the CSCV groups."""

from __future__ import annotations

from typing import Any

import numpy as np

from btlab.kernels.stats import VAR_FLOOR

from ..validation import cscv_summary

__all__ = [
    "DEFAULT_PBO_SPLITS", "MAX_PBO_SPLITS", "block_bounds", "pbo_from_blocks",
    "pbo_from_group_sums",
]  # fmt: skip

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
    return pbo_from_group_sums(
        np.ascontiguousarray(raw.T), np.array(sq.T, order="C"), bounds, periods_per_year
    )


#: Strategies centered at a time by `pbo_from_group_sums` (its temporaries stay small).
CENTER_CHUNK = 65_536


def pbo_from_group_sums(
    group_raw: np.ndarray,
    group_sq: np.ndarray,
    bounds: np.ndarray,
    periods_per_year: float | None = None,
) -> dict[str, Any]:
    """`pbo_from_blocks` from the sums laid out splits x strategies, as a streamed sweep keeps
    them; `group_sq` is overwritten with the centered squares (so a million strategies need one
    more splits x strategies array, not four). The centering runs a chunk of strategies at a
    time, each strategy's row as `pbo_from_blocks` always summed it."""
    n_splits, n_strat = group_raw.shape
    if n_strat < 2:
        raise ValueError(f"PBO needs at least 2 strategies, got {n_strat}")
    if n_splits < 2 or n_splits % 2 or n_splits > MAX_PBO_SPLITS:
        raise ValueError(f"n_splits must be even and in [2, {MAX_PBO_SPLITS}], got {n_splits}")
    group_n = np.diff(bounds).astype(np.float64)
    t = float(bounds[-1])
    if t < 2 * n_splits:
        raise ValueError(f"PBO needs at least 2 rows per split ({2 * n_splits}), got {int(t)}")
    centered = np.empty_like(group_raw)
    var_floor = np.empty(n_strat)
    for lo in range(0, n_strat, CENTER_CHUNK):
        hi = min(n_strat, lo + CENTER_CHUNK)
        raw = np.ascontiguousarray(group_raw[:, lo:hi].T)
        sq = np.ascontiguousarray(group_sq[:, lo:hi].T)
        mu = raw.sum(axis=1, keepdims=True) / t
        centered_sq = np.maximum(sq - 2.0 * mu * raw + group_n * mu * mu, 0.0)
        var_floor[lo:hi] = VAR_FLOOR * centered_sq.sum(axis=1) / (t - 1.0)
        centered[:, lo:hi] = (raw - group_n * mu).T
        group_sq[:, lo:hi] = centered_sq.T
    return cscv_summary(
        group_raw, centered, group_sq, group_n, var_floor,
        n_splits=n_splits, n_bars=int(t), periods_per_year=periods_per_year,
    )  # fmt: skip
