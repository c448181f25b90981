"""Parameter sweeps: every combination of a grid, by the fastest path that covers it.

A `SweepRequest` is a run request plus `grid`, a mapping from strategy parameters (`fast`) or
request fields (`execution.commission_bps`, `risk.stop_loss`: under execution, risk or
strategy.params) to the values to try: a list (`[5, 10, 20]`) or an inclusive range
(`{"start": 5, "stop": 50, "step": 5}`). Combinations sharing their request fields run through
the sweep kernels in one parallel pass; a portfolio's grid or a calendar rebalance runs each
combination through the engine (`passes.run_pass`).
The combinations are the product of the axes, parameters in sorted name order, values in the
order given. A combination the strategy rejects (e.g. `fast >= slow`) is skipped and counted,
not an error; a grid with no valid combination, or more than `MAX_COMBINATIONS`, is a
`ConfigError` naming `grid`.

`run_sweep` computes each distinct feature once, then runs every combination through the
execution kernel in parallel (`btlab.kernels.sweep`): the "feature a above feature b"
strategies (`sma_cross`, `ma_trend`) straight from the feature matrix, any other strategy from
targets computed in bounded batches. A combination's metrics equal those of a single
`btlab.run` of it (`SweepRequest.run_config(params)`) bit for bit: the kernel runs the single
run's statistics kernels and the core the single run's `metrics.metrics_from_stats`.

The best combination maximizes `objective` (default `sharpe`; ties: the first in grid order)
and is re-run in full for its metrics and returns. Validation (SPEC §6) is of the best
combination with `n_trials` = the number of valid combinations: PSR, DSR (benchmark from the
variance of the trials' Sharpe ratios), bootstrap, folds, a permutation test whose statistic
is the best objective over the whole grid on each permuted path (so it accounts for the
selection), and PBO by CSCV with `pbo_splits` groups (default 16) computed from per-block
return sums, never a combinations x bars matrix. Combinations whose Sharpe is undefined (no
variance: never traded) count as trials but not in the variance of the trials' Sharpes.

On the command line: `btlab sweep PRESET --grid fast=5:50:5 --grid slow=20:200:20`
(`parse_grid_option`: `NAME=START:STOP:STEP` inclusive, or `NAME=V1,V2,...`).

The package, one job a module: `grid` (axes, their expansion, `--grid` options), `request`
(`SweepRequest`, parsing, its hash), `engine` (the batched pass through the sweep kernels),
`pbo` (CSCV group bounds, PBO from block sums), `passes` (which path runs which combinations),
`result` (`SweepResult`, its artifacts and
manifest) and `run` (`run_sweep`'s stages and the validation of the best).
"""

from __future__ import annotations

from .grid import MAX_COMBINATIONS, GridExpansion, GridRange, expand_grid, parse_grid_option
from .pbo import DEFAULT_PBO_SPLITS, block_bounds, pbo_from_blocks
from .request import OBJECTIVES, SweepRequest, parse_sweep_request, sweep_config_hash
from .result import SweepResult
from .run import run_sweep

__all__ = [
    "DEFAULT_PBO_SPLITS",
    "MAX_COMBINATIONS",
    "OBJECTIVES",
    "GridExpansion",
    "GridRange",
    "SweepRequest",
    "SweepResult",
    "block_bounds",
    "expand_grid",
    "parse_grid_option",
    "parse_sweep_request",
    "pbo_from_blocks",
    "run_sweep",
    "sweep_config_hash",
]
