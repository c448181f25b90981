"""`run_validation`: the `validation.json` dict of a run or sweep, from the statistics of the
package and the settings of the request."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..config import ValidationConfig
from ..executors import BatchExecutor
from ..hashing import seed_for
from .bootstrap import stationary_bootstrap
from .cscv import pbo_cscv
from .inputs import finite_returns
from .permutation import BatchStatistic, PathStatistics, Progress, Statistic, permutation_test
from .sharpe import dsr_parts, min_trl_from_moments, moments, psr_from_moments


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
    executor: BatchExecutor | None = None,
    permutation_recipe: PathStatistics | None = None,
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
    given, runs them in batches instead (see `permutation_test`); a cluster `executor` with the
    statistic's `permutation_recipe` runs them on its workers.
    """
    r = finite_returns(returns)
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
            ts = finite_returns(trial_sharpes, "trial_sharpes")
            var = float(np.var(ts, ddof=1)) if ts.size > 1 else None
        d, bench, used_var = dsr_parts(m, cfg.n_trials, var)
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
            executor=executor,
            recipe=permutation_recipe,
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
