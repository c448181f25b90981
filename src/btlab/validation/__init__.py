"""Validation statistics of a backtest (SPEC §6): PSR, DSR, bootstrap, permutation test, PBO.

One module per statistic, each importing only the ones below it: `inputs` (checked returns
and seeds), `sharpe` (moments, PSR, DSR, MinTRL), `bootstrap`, `permutation`, `cscv` (PBO),
`assemble` (`run_validation`, the validation.json dict) and `run` (a run's validation stage:
`validate_result`, the fold metrics and the permutation statistic of a RunResult).

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

from .assemble import run_validation
from .bootstrap import bootstrap_keys, default_block_length, stationary_bootstrap
from .cscv import cscv_summary as cscv_summary
from .cscv import pbo_cscv
from .permutation import (
    BatchStatistic as BatchStatistic,
)
from .permutation import (
    PermutationBase,
    permutation_test,
    permute_ohlc,
)
from .permutation import (
    Progress as Progress,
)
from .permutation import (
    Statistic as Statistic,
)
from .permutation import (
    default_workers as default_workers,
)
from .permutation import (
    permutation_keys as permutation_keys,
)
from .sharpe import (
    EULER_GAMMA,
    dsr,
    expected_max_sharpe,
    min_track_record_length,
    min_trl_from_moments,
    moments,
    psr,
    psr_from_moments,
    sharpe,
    sr_estimator_variance,
)

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
