"""The stationary bootstrap of the Sharpe ratio (Politis & Romano 1994)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..kernels.stats import stationary_bootstrap_sharpe_nb
from .inputs import finite_returns, seeded_generator
from .sharpe import sharpe


def default_block_length(n: int) -> float:
    """The default mean block length: round(n ** (1/3)), at least 1."""
    return float(max(1, round(n ** (1.0 / 3.0))))


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
    r = finite_returns(returns)
    if n_resamples < 1:
        raise ValueError(f"n_resamples must be >= 1, got {n_resamples}")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    if not periods_per_year > 0.0:
        raise ValueError(f"periods_per_year must be > 0, got {periods_per_year}")
    mbl = default_block_length(r.size) if mean_block_length is None else float(mean_block_length)
    if not mbl >= 1.0 or not math.isfinite(mbl):
        raise ValueError(f"mean_block_length must be >= 1 bar, got {mean_block_length}")
    keys = bootstrap_keys(seeded_generator(seed, "bootstrap"), n_resamples)
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
