"""Walk-forward with re-fitting (SPEC §10): the grid re-fitted on each window's train part,
the best combination trading the test part after it, one continuous out-of-sample curve.

A `WalkForwardRequest` is a sweep request (`btlab.sweep`) plus `walkforward: {train, test,
mode}`: lengths in bars (504) or calendar units ("2Y", "6M", "13W", "30D"), `rolling` (the
train part moves by `test`) or `anchored` (it starts at the first bar and grows by `test`);
windows step by `test` (`windows.resolve_windows`).

In each window every valid combination trades the train part from a flat account at its
first bar, as a sweep's pass over the part: the combinations grouped by their request fields,
each group one batched pass of the sweep kernels with its settings, the batches on the
request's executor (`btlab.executors`: here, or a cluster's workers, bit for bit the same);
features look back before the part (they are the past), nothing at or after the part's end is
read (`passes`). The combination with the best objective (ties: the first in grid order, as a
sweep) trades the test part: its target over the test bars, computed from the bars before the
test part's end, with its execution and risk settings. The windows' targets are stitched and
run through the engine once over the out-of-sample span, its settings changing at each
window's first test bar (`simulation.run_engine`'s segments), so the account (position, cash,
entry, stops, waiting orders) carries from one window into the next; it is flat before the
first test bar. The grid ranges over strategy parameters and request fields, except the
fields the run reads once (`request.RUN_FIELDS`: the initial cash, the close at the end, the
drawdown halt); those, calendar rebalances and portfolios are refused with a ConfigError.

`WalkForwardResult` holds the windows table (bars and dates, chosen parameters, in-sample
objective, Sharpe, return, CAGR, and the window's out-of-sample ones), the out-of-sample run
(a `RunResult` over the out-of-sample bars: equity, fills, trades, metrics), its validation
(PSR, DSR with `n_trials` = the number of valid combinations, bootstrap, folds; no permutation
test, see `run.PERMUTATION_SKIPPED`), the walk-forward efficiency (out-of-sample CAGR / the
mean of the windows' in-sample CAGRs of their chosen combinations) and the stability of the
chosen parameters across windows. Artifacts: the run's equity, fills, trades, metrics and
validation, `windows.parquet` and `walkforward.json`.

The package, one job a module: `windows` (the spec and its windows), `request` (the request,
parsing, its hash), `passes` (train pass, test inputs, the out-of-sample engine run), `result`
(`WalkForwardResult`, efficiency, stability, artifacts) and `run` (`run_walkforward`).
"""

from __future__ import annotations

from .request import WalkForwardRequest, parse_walkforward_request, walkforward_config_hash
from .result import WalkForwardResult
from .run import run_walkforward
from .windows import WalkForwardSpec, Window, resolve_windows

__all__ = [
    "WalkForwardRequest",
    "WalkForwardResult",
    "WalkForwardSpec",
    "Window",
    "parse_walkforward_request",
    "resolve_windows",
    "run_walkforward",
    "walkforward_config_hash",
]
