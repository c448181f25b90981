"""Sweep kernels: every parameter combination of one strategy in one parallel pass.

`sweep_cross_nb` runs "long where feature a > feature b" strategies (dual moving-average
crosses, price against a moving average) straight from a matrix of distinct features, each
computed once by the caller; `sweep_targets_nb` runs combinations whose targets the caller
computed. Both split the combinations into one contiguous chunk per thread (`prange` over the
chunks); a chunk owns its per-bar buffers, so memory is threads x bars, never combinations x
bars.

Per combination the kernels run the same execution kernel (`simulate_nb`, one call over all
bars), the same ledger (`trades_nb`) and the same per-path statistics as a single run
(`metrics.path_stats_nb`, `fill_stats_nb`, `trade_stats_nb`: every sum in NumPy's pairwise
order), so every metric a sweep reports equals the single run's bit for bit. Outputs, one row
per combination:

- `stats[c, :]`: the statistics in `metrics.STAT_NAMES` order, from which the core builds the
  metrics dict with the single run's function (`btlab.metrics.metrics_from_stats`);
- `blocks[c, g, :]`: the sum and the sum of squares of the per-bar returns
  `r[j] = equity[j+1]/equity[j] - 1` (non-finite ones count as 0) of block g, the returns
  `bounds[g] <= j < bounds[g+1]` — what CSCV needs, instead of the returns themselves.

A combination's result depends on its own inputs only, never on the number of threads.
"""

from __future__ import annotations

import numba
import numpy as np

from ._jit import njit
from .dtypes import FILL_DTYPE, TRADE_DTYPE, Status
from .execution import (
    ST_BORROW_CUM,
    ST_FLAGS,
    ST_HALT_BAR,
    ST_N_FILLS,
    STATE_SIZE,
    first_fill_capacity,
    simulate_fresh_nb,
)
from .ledger import trades_nb
from .metrics import (  # the per-path statistics a single run's metrics come from
    SW_FINAL,
    SW_FLAGS,
    SW_HALT_BAR,
    SW_STATUS,
    fill_stats_nb,
    path_stats_nb,
    trade_stats_nb,
)
from .signals import cross_target_nb


@njit
def simulate_combo_nb(
    ts, open_, high, low, close, volume, target, scale, params, state, units, cash, equity,
    borrow, fills, trades,
):  # fmt: skip
    """One combination's simulation from a fresh state. Returns `(status, fills, trades)`, the
    buffers grown to the bound of `execution.fill_capacity` where the first ones were too small
    (the run is then repeated, as `pipeline.simulate_chunked` does)."""
    first = fills.shape[0]
    status, fills = simulate_fresh_nb(
        ts, open_, high, low, close, volume, target, scale, params, state, fills,
        units, cash, equity, borrow,
    )  # fmt: skip
    if fills.shape[0] > first:  # the fills grew: the ledger needs room for their trades
        trades = np.empty(fills.shape[0] + 1, dtype=TRADE_DTYPE)
    return status, fills, trades


@njit
def run_combo_nb(
    ts, open_, high, low, close, volume, target, scale, params, bounds,
    state, units, cash, equity, borrow, fills, trades, scratch, row, blocks,
):  # fmt: skip
    """One combination: simulate, path statistics, fill totals, the ledger (`trades_nb`, as a
    single run) and its trade statistics, into `row` and `blocks`. Returns `(fills, trades)`,
    grown where the first buffers were too small. `scratch` holds `3 * n + 3` values."""
    n = close.shape[0]
    status, fills, trades = simulate_combo_nb(
        ts, open_, high, low, close, volume, target, scale, params, state, units, cash, equity,
        borrow, fills, trades,
    )  # fmt: skip
    row[SW_STATUS] = status
    if status != Status.OK:
        return fills, trades
    has_borrow = params.borrow_rate_annual > 0.0  # else every bar's borrow is 0
    path_stats_nb(close, units, equity, borrow, has_borrow, bounds, row, blocks, scratch)
    row[SW_FINAL] = equity[n - 1]
    row[SW_FLAGS] = state[ST_FLAGS]
    row[SW_HALT_BAR] = state[ST_HALT_BAR]
    k = int(state[ST_N_FILLS])
    fill_stats_nb(fills, k, row, scratch)
    n_trades = trades_nb(fills[:k], n - 1, close[n - 1], state[ST_BORROW_CUM], trades)
    trade_stats_nb(trades, n_trades, row, scratch)
    return fills, trades


@njit(parallel=True)
def sweep_cross_nb(
    ts, open_, high, low, close, volume, scale, features, a_idx, b_idx, long_value, short_value,
    params, bounds, n_chunks, stats, blocks,
):  # fmt: skip
    """Combination c: target `cross_target_nb(features[a_idx[c]], features[b_idx[c]],
    long_value[c], short_value[c])`, then `run_combo_nb` into `stats[c]` and `blocks[c]`.

    `features` is the (distinct features x bars) matrix of shifted features; `n_chunks`
    contiguous chunks of combinations run in parallel, each with its own buffers.
    """
    n = close.shape[0]
    n_combos = a_idx.shape[0]
    cap = first_fill_capacity(n)
    for t in numba.prange(n_chunks):
        lo = t * n_combos // n_chunks
        hi = (t + 1) * n_combos // n_chunks
        target = np.empty(n)
        units = np.empty(n)
        cash = np.empty(n)
        equity = np.empty(n)
        borrow = np.empty(n)
        state = np.empty(STATE_SIZE)
        fills = np.empty(cap, dtype=FILL_DTYPE)
        trades = np.empty(cap + 1, dtype=TRADE_DTYPE)
        scratch = np.empty(3 * n + 3)
        for c in range(lo, hi):
            cross_target_nb(
                features[a_idx[c]], features[b_idx[c]], long_value[c], short_value[c], target
            )
            fills, trades = run_combo_nb(
                ts, open_, high, low, close, volume, target, scale, params, bounds,
                state, units, cash, equity, borrow, fills, trades, scratch, stats[c], blocks[c],
            )  # fmt: skip


@njit(parallel=True)
def sweep_targets_nb(
    ts, open_, high, low, close, volume, scale, targets, params, bounds, n_chunks, stats, blocks
):
    """Combination c runs target `targets[c]` (a batch x bars matrix the caller bounds);
    otherwise as `sweep_cross_nb`."""
    n = close.shape[0]
    n_combos = targets.shape[0]
    cap = first_fill_capacity(n)
    for t in numba.prange(n_chunks):
        lo = t * n_combos // n_chunks
        hi = (t + 1) * n_combos // n_chunks
        units = np.empty(n)
        cash = np.empty(n)
        equity = np.empty(n)
        borrow = np.empty(n)
        state = np.empty(STATE_SIZE)
        fills = np.empty(cap, dtype=FILL_DTYPE)
        trades = np.empty(cap + 1, dtype=TRADE_DTYPE)
        scratch = np.empty(3 * n + 3)
        for c in range(lo, hi):
            fills, trades = run_combo_nb(
                ts, open_, high, low, close, volume, targets[c], scale, params, bounds,
                state, units, cash, equity, borrow, fills, trades, scratch, stats[c], blocks[c],
            )  # fmt: skip
