"""Sweep kernels: every parameter combination of one strategy in one parallel pass.

`sweep_cross_nb` runs "long where feature a > feature b" strategies (dual moving-average
crosses, price against a moving average) straight from a matrix of distinct features, each
computed once by the caller; `sweep_targets_nb` runs combinations whose targets the caller
computed. Both split the combinations into one contiguous chunk per thread (`prange` over the
chunks); a chunk owns its per-bar buffers, so memory is threads x bars, never combinations x
bars.

Per combination the kernels run the same execution kernel (`simulate_nb`, one call over all
bars), the same ledger (`trades_nb`) and the same path statistics (`metrics.return_moments_nb`,
`drawdown_stats_nb`, `leverage_stats_nb`) as a single run, and add every other metric sum
(equity, borrow, fill costs, trade P&L) in NumPy's pairwise order (`metrics.np_sum_nb`), so
every metric a sweep reports equals the single run's bit for bit. Outputs, one row per
combination:

- `stats[c, :]`: the accumulators in `SW_*` order (see `STAT_NAMES`), from which the core builds
  the metrics dict exactly as `btlab.metrics.compute_metrics` would;
- `blocks[c, g, :]`: the sum and the sum of squares of the per-bar returns
  `r[j] = equity[j+1]/equity[j] - 1` (non-finite ones count as 0) of block g, the returns
  `bounds[g] <= j < bounds[g+1]` — what CSCV needs, instead of the returns themselves.

A combination's result depends on its own inputs only, never on the number of threads.
"""

from __future__ import annotations

import math

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
from .metrics import (
    drawdown_stats_nb,
    leverage_stats_nb,
    np_sum_nb,
    return_moments_nb,
)
from .signals import cross_target_nb

STAT_NAMES: tuple[str, ...] = (
    "status",  # dtypes.Status of the execution kernel
    "n_returns",
    "mean",  # per-bar return mean (as equity_stats_nb: NumPy's mean)
    "std",  # ddof 1
    "downside",  # sqrt(mean(min(r, 0)^2))
    "max_drawdown",
    "max_dd_bars",
    "final_equity",
    "exposed_bars",  # bars ending with units != 0
    "leverage_sum",  # sum of finite |units * close| / equity
    "leverage_count",
    "equity_sum",
    "traded",  # sum of |units| * price over fills
    "fill_count",
    "spread",
    "slippage",
    "commission",
    "borrow",
    "closed_trades",
    "open_trade",  # 1 if the last trade is still open
    "wins",  # closed trades with net P&L > 0
    "win_sum",
    "losses",  # closed trades with net P&L < 0
    "loss_sum",
    "return_sum",  # sum of closed trades' returns
    "best_return",
    "worst_return",
    "bars_held_sum",
    "flags",
    "halt_bar",
)
N_STATS = len(STAT_NAMES)
(
    SW_STATUS, SW_N_RETURNS, SW_MEAN, SW_STD, SW_DOWNSIDE, SW_MAX_DD, SW_DD_BARS, SW_FINAL,
    SW_EXPOSED, SW_LEV_SUM, SW_LEV_COUNT, SW_EQUITY_SUM, SW_TRADED, SW_FILLS, SW_SPREAD,
    SW_SLIPPAGE, SW_COMMISSION, SW_BORROW, SW_CLOSED, SW_OPEN_TRADE, SW_WINS, SW_WIN_SUM,
    SW_LOSSES, SW_LOSS_SUM, SW_RET_SUM, SW_RET_BEST, SW_RET_WORST, SW_HELD_SUM, SW_FLAGS,
    SW_HALT_BAR,
) = range(N_STATS)  # fmt: skip
BLOCK_FIELDS = 2  # sum of returns, sum of squared returns


@njit
def path_stats_nb(close, units, equity, borrow, has_borrow, bounds, row, blocks, scratch):
    """The per-bar statistics of a simulated path into `row`: the return moments and drawdown
    facts of `metrics.equity_stats_nb` (the same kernels, so bit-identical), the exposure and
    the leverage, equity and borrow sums of `metrics.compute_metrics` in NumPy's pairwise
    order (borrow is 0 without `has_borrow`). Per CSCV block g of returns
    (`bounds[g] <= j < bounds[g + 1]`, return j ending at bar j + 1) the sum and sum of squares
    of its finite returns go to `blocks[g]`. `scratch` holds >= n values.
    """
    n = close.shape[0]
    count, mean, std, downside = return_moments_nb(equity, scratch)
    for g in range(bounds.shape[0] - 1):
        s1, s2 = 0.0, 0.0
        for j in range(bounds[g], bounds[g + 1]):
            r = equity[j + 1] / equity[j] - 1.0
            if math.isfinite(r):
                s1 += r
                s2 += r * r
        blocks[g, 0] = s1
        blocks[g, 1] = s2
    max_dd, longest = drawdown_stats_nb(equity)
    exposed, lev_sum, lev_count = leverage_stats_nb(units, close, equity, scratch)
    row[SW_N_RETURNS] = count
    row[SW_MEAN] = mean
    row[SW_STD] = std
    row[SW_DOWNSIDE] = downside
    row[SW_MAX_DD] = max_dd
    row[SW_DD_BARS] = longest
    row[SW_EXPOSED] = exposed
    row[SW_LEV_SUM] = lev_sum
    row[SW_LEV_COUNT] = lev_count
    row[SW_EQUITY_SUM] = np_sum_nb(equity, n)
    row[SW_BORROW] = np_sum_nb(borrow, n) if has_borrow else 0.0


@njit
def fill_stats_nb(fills, k, row, scratch):
    """Traded notional and cost totals of the first `k` fills into `row`, each summed as
    `compute_metrics` sums its column (`scratch` holds at least `k` values)."""
    for j in range(k):
        scratch[j] = abs(fills[j]["units"]) * fills[j]["price"]
    row[SW_TRADED] = np_sum_nb(scratch, k)
    for j in range(k):
        scratch[j] = fills[j]["spread_cost"]
    row[SW_SPREAD] = np_sum_nb(scratch, k)
    for j in range(k):
        scratch[j] = fills[j]["slippage_cost"]
    row[SW_SLIPPAGE] = np_sum_nb(scratch, k)
    for j in range(k):
        scratch[j] = fills[j]["commission"]
    row[SW_COMMISSION] = np_sum_nb(scratch, k)
    row[SW_FILLS] = k


@njit
def trade_stats_nb(trades, count, row, scratch):
    """Closed-trade counts and sums of the first `count` trade records into `row`: the winning
    and losing net P&L and the returns each summed in trade order, as `compute_metrics` does
    (`scratch` holds at least `count` values)."""
    closed = 0
    wins = 0
    losses = 0
    held = 0
    best = -np.inf
    worst = np.inf
    for j in range(count):
        t = trades[j]
        if t["is_open"]:
            continue
        net = t["net_pnl"]
        if net > 0.0:
            scratch[wins] = net
            wins += 1
    row[SW_WIN_SUM] = np_sum_nb(scratch, wins)
    for j in range(count):
        t = trades[j]
        if not t["is_open"] and t["net_pnl"] < 0.0:
            scratch[losses] = t["net_pnl"]
            losses += 1
    row[SW_LOSS_SUM] = np_sum_nb(scratch, losses)
    for j in range(count):
        t = trades[j]
        if t["is_open"]:
            continue
        ret = t["return_"]
        scratch[closed] = ret
        closed += 1
        best = max(best, ret)
        worst = min(worst, ret)
        held += t["bars_held"]
    row[SW_RET_SUM] = np_sum_nb(scratch, closed)
    row[SW_CLOSED] = closed
    row[SW_OPEN_TRADE] = 1.0 if count > 0 and trades[count - 1]["is_open"] else 0.0
    row[SW_WINS] = wins
    row[SW_LOSSES] = losses
    row[SW_RET_BEST] = best if closed > 0 else np.nan
    row[SW_RET_WORST] = worst if closed > 0 else np.nan
    row[SW_HELD_SUM] = held


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
