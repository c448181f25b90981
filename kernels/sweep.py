"""Sweep kernels: every parameter combination of one strategy in one parallel pass.

`sweep_cross_nb` runs "long where feature a > feature b" strategies (dual moving-average
crosses, price against a moving average) straight from a matrix of distinct features, each
computed once by the caller; `sweep_targets_nb` runs combinations whose targets the caller
computed. Both split the combinations into one contiguous chunk per thread (`prange` over the
chunks); a chunk owns its per-bar buffers, so memory is threads x bars, never combinations x bars.

Per combination the kernels run the same execution kernel (`simulate_nb`, one call over all
bars) and the same ledger (`trades_nb`) as a single run, and `bar_stats_nb` repeats the
arithmetic of `metrics.equity_stats_nb` step for step, so those results are bit-identical to a
single run; the remaining metric sums are compensated (Neumaier), within an ulp or two of
NumPy's pairwise sums. Outputs, one row per combination:

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
    ST_CASH,
    ST_ENTRY,
    ST_FLAGS,
    ST_HALT_BAR,
    ST_N_FILLS,
    ST_PEAK,
    STATE_SIZE,
    simulate_nb,
)
from .ledger import trades_nb

STAT_NAMES: tuple[str, ...] = (
    "status",  # dtypes.Status of the execution kernel
    "n_returns",
    "mean",  # per-bar return mean (Welford, as equity_stats_nb)
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
def neumaier_add_nb(s, c, x):
    """One step of Neumaier's compensated sum: returns the new `(sum, compensation)`."""
    t = s + x
    if abs(s) >= abs(x):
        c += (s - t) + x
    else:
        c += (x - t) + s
    return t, c


@njit
def cross_target_nb(a, b, long_value, short_value, out):
    """`out[i]`: `long_value` where `a[i] > b[i]`, `short_value` where `a[i] < b[i]`, else 0,
    and 0 where either is NaN (warm-up): the sma_cross / ma_trend rule on shifted features."""
    for i in range(out.shape[0]):
        x = a[i]
        y = b[i]
        if not (math.isfinite(x) and math.isfinite(y)):
            out[i] = 0.0
        elif x > y:
            out[i] = long_value
        elif x < y:
            out[i] = short_value
        else:
            out[i] = 0.0


@njit
def fresh_state_nb(state, initial_cash):
    """Reset `state` to `execution.new_state(initial_cash)`."""
    state[:] = 0.0
    state[ST_CASH] = initial_cash
    state[ST_ENTRY] = np.nan
    state[ST_PEAK] = initial_cash
    state[ST_HALT_BAR] = -1.0


@njit
def bar_stats_nb(close, units, equity, borrow, bounds, row, blocks):
    """One pass over a simulation's bars: the statistics of `metrics.equity_stats_nb` with the
    same arithmetic in the same order (so bit-identical), the exposure, leverage, equity and
    borrow sums, and per block of returns their sum and sum of squares (`blocks[g, 0:2]`).

    Divisions whose result is known are skipped, exactly: a return where equity did not change
    is 0 (`e / e - 1`), as is its drawdown unchanged; a flat bar's leverage is 0.
    """
    n = equity.shape[0]
    blocks[:, :] = 0.0
    mean = 0.0
    m2 = 0.0
    down2 = 0.0
    count = 0
    peak = -np.inf
    max_dd = 0.0
    under = 0
    longest = 0
    exposed = 0
    lev_s, lev_c, lev_n = 0.0, 0.0, 0
    eq_s, eq_c = 0.0, 0.0
    br_s, br_c = 0.0, 0.0
    g = 0
    next_bound = bounds[1] if bounds.shape[0] > 1 else n
    last_block = blocks.shape[0] - 1
    prev = 0.0
    for i in range(n):
        e = equity[i]
        u = units[i]
        # equity_stats_nb, step for step
        if e > peak:
            peak = e
            under = 0
        else:
            under += 1
            if under > longest:
                longest = under
        if i == 0 or e != prev:
            dd = e / peak - 1.0
            if dd < max_dd:
                max_dd = dd
        if i > 0:
            r = 0.0 if e == prev and e != 0.0 and math.isfinite(e) else e / prev - 1.0
            count += 1
            delta = r - mean
            mean += delta / count
            m2 += delta * (r - mean)
            if r < 0.0:
                down2 += r * r
            # CSCV blocks over returns j = i - 1
            while g < last_block and i - 1 >= next_bound:
                g += 1
                next_bound = bounds[g + 1]
            if math.isfinite(r):
                blocks[g, 0] += r
                blocks[g, 1] += r * r
        prev = e
        # exposure and leverage |u * close| / e (0 / e for a flat bar)
        if u != 0.0:
            exposed += 1
            lev = abs(u * close[i]) / e
            if math.isfinite(lev):
                lev_s, lev_c = neumaier_add_nb(lev_s, lev_c, lev)
                lev_n += 1
        elif e != 0.0 and e == e:
            lev_n += 1
        eq_s, eq_c = neumaier_add_nb(eq_s, eq_c, e)
        b = borrow[i]
        if b != 0.0:
            br_s, br_c = neumaier_add_nb(br_s, br_c, b)
    row[SW_N_RETURNS] = count
    row[SW_MEAN] = mean if count > 0 else np.nan
    row[SW_STD] = math.sqrt(m2 / (count - 1)) if count > 1 else np.nan
    row[SW_DOWNSIDE] = math.sqrt(down2 / count) if count > 0 else np.nan
    row[SW_MAX_DD] = max_dd
    row[SW_DD_BARS] = longest
    row[SW_EXPOSED] = exposed
    row[SW_LEV_SUM] = lev_s + lev_c
    row[SW_LEV_COUNT] = lev_n
    row[SW_EQUITY_SUM] = eq_s + eq_c
    row[SW_BORROW] = br_s + br_c


@njit
def fill_stats_nb(fills, k, row):
    """Traded notional and cost totals of the first `k` fills into `row`."""
    tr_s, tr_c = 0.0, 0.0
    sp_s, sp_c = 0.0, 0.0
    sl_s, sl_c = 0.0, 0.0
    co_s, co_c = 0.0, 0.0
    for j in range(k):
        f = fills[j]
        tr_s, tr_c = neumaier_add_nb(tr_s, tr_c, abs(f["units"]) * f["price"])
        sp_s, sp_c = neumaier_add_nb(sp_s, sp_c, f["spread_cost"])
        sl_s, sl_c = neumaier_add_nb(sl_s, sl_c, f["slippage_cost"])
        co_s, co_c = neumaier_add_nb(co_s, co_c, f["commission"])
    row[SW_FILLS] = k
    row[SW_TRADED] = tr_s + tr_c
    row[SW_SPREAD] = sp_s + sp_c
    row[SW_SLIPPAGE] = sl_s + sl_c
    row[SW_COMMISSION] = co_s + co_c


@njit
def trade_stats_nb(trades, count, row):
    """Closed-trade counts and sums of the first `count` trade records into `row`."""
    closed = 0
    wins = 0
    losses = 0
    held = 0
    w_s, w_c = 0.0, 0.0
    l_s, l_c = 0.0, 0.0
    r_s, r_c = 0.0, 0.0
    best = -np.inf
    worst = np.inf
    for j in range(count):
        t = trades[j]
        if t["is_open"]:
            continue
        closed += 1
        net = t["net_pnl"]
        if net > 0.0:
            wins += 1
            w_s, w_c = neumaier_add_nb(w_s, w_c, net)
        elif net < 0.0:
            losses += 1
            l_s, l_c = neumaier_add_nb(l_s, l_c, net)
        ret = t["return_"]
        r_s, r_c = neumaier_add_nb(r_s, r_c, ret)
        best = max(best, ret)
        worst = min(worst, ret)
        held += t["bars_held"]
    row[SW_CLOSED] = closed
    row[SW_OPEN_TRADE] = 1.0 if count > 0 and trades[count - 1]["is_open"] else 0.0
    row[SW_WINS] = wins
    row[SW_WIN_SUM] = w_s + w_c
    row[SW_LOSSES] = losses
    row[SW_LOSS_SUM] = l_s + l_c
    row[SW_RET_SUM] = r_s + r_c
    row[SW_RET_BEST] = best if closed > 0 else np.nan
    row[SW_RET_WORST] = worst if closed > 0 else np.nan
    row[SW_HELD_SUM] = held


@njit
def run_combo_nb(
    ts, open_, high, low, close, volume, target, scale, params, bounds,
    state, units, cash, equity, borrow, fills, trades, row, blocks,
):  # fmt: skip
    """One combination: simulate, ledger, statistics. Returns `(status, fills, trades)`, the
    buffers grown to the bound of `execution.fill_capacity` where the first ones were too small."""
    n = close.shape[0]
    fresh_state_nb(state, params.initial_cash)
    status = simulate_nb(
        ts, open_, high, low, close, volume, target, scale, params, state, fills,
        units, cash, equity, borrow, 0, n,
    )  # fmt: skip
    if status == Status.FILLS_FULL:
        fills = np.empty(3 * n + 2, dtype=FILL_DTYPE)
        trades = np.empty(3 * n + 3, dtype=TRADE_DTYPE)
        fresh_state_nb(state, params.initial_cash)
        status = simulate_nb(
            ts, open_, high, low, close, volume, target, scale, params, state, fills,
            units, cash, equity, borrow, 0, n,
        )  # fmt: skip
    row[SW_STATUS] = status
    if status != Status.OK:
        return status, fills, trades
    row[SW_FINAL] = equity[n - 1] if n > 0 else params.initial_cash
    row[SW_FLAGS] = state[ST_FLAGS]
    row[SW_HALT_BAR] = state[ST_HALT_BAR]
    bar_stats_nb(close, units, equity, borrow, bounds, row, blocks)
    k = int(state[ST_N_FILLS])
    fill_stats_nb(fills, k, row)
    n_trades = trades_nb(fills[:k], n - 1, close[n - 1], state[ST_BORROW_CUM], trades)
    trade_stats_nb(trades, n_trades, row)
    return status, fills, trades


@njit
def _first_capacity_nb(n):
    """The first fill buffer of a chunk, as `pipeline.simulate_chunked` sizes it."""
    return min(3 * n + 2, max(1024, n // 8))


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
    cap = _first_capacity_nb(n)
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
        for c in range(lo, hi):
            cross_target_nb(
                features[a_idx[c]], features[b_idx[c]], long_value[c], short_value[c], target
            )
            _, fills, trades = run_combo_nb(
                ts, open_, high, low, close, volume, target, scale, params, bounds,
                state, units, cash, equity, borrow, fills, trades, stats[c], blocks[c],
            )  # fmt: skip


@njit(parallel=True)
def sweep_targets_nb(
    ts, open_, high, low, close, volume, scale, targets, params, bounds, n_chunks, stats, blocks
):
    """Combination c runs target `targets[c]` (a batch x bars matrix the caller bounds);
    otherwise as `sweep_cross_nb`."""
    n = close.shape[0]
    n_combos = targets.shape[0]
    cap = _first_capacity_nb(n)
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
        for c in range(lo, hi):
            _, fills, trades = run_combo_nb(
                ts, open_, high, low, close, volume, targets[c], scale, params, bounds,
                state, units, cash, equity, borrow, fills, trades, stats[c], blocks[c],
            )  # fmt: skip
