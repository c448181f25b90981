"""The permutation test of a crossover strategy in one parallel pass (SPEC §6).

`permuted_cross_sharpe_nb` does, for each shuffle key, what the core's generic path does with
a feature store and the strategy registry: shuffle the bars (`stats.shuffle_into_nb`),
rebuild the price path (`stats.rebuild_ohlc_nb`), compute the two lines the rule compares
(the close, its SMA or its EMA: the registry's own feature kernels), shift them by one bar,
apply the crossover rule (`signals.cross_target_nb`), run the execution kernel and take the
annualized Sharpe from `metrics.return_moments_nb` — the same kernels in the same order, so
each value equals the generic path's bit for bit. Keys are split into one contiguous chunk per
thread (`prange` over the chunks); chunk t works in the caller's buffers (index t of each),
so memory is threads x bars and the kernel allocates nothing.
"""

from __future__ import annotations

import numba

from ._jit import njit
from .execution import BarInputs, OrderInputs, SimBuffers, simulate_all_nb
from .indicators import ema_into_nb, sma_into_nb
from .metrics import return_moments_nb, sharpe_nb
from .signals import cross_target_nb
from .stats import rebuild_ohlc_nb, shuffle_into_nb

# What a line of the rule is: the close itself, or a moving average of it.
LINE_CLOSE = 0
LINE_SMA = 1
LINE_EMA = 2


@njit
def line_nb(close, kind, window, out):
    """The unshifted line `kind` of `close`: the close itself, or `sma_nb` / `ema_nb` of it
    written into `out` (the same arithmetic as the registry's features)."""
    if kind == LINE_SMA:
        return sma_into_nb(close, window, out)
    if kind == LINE_EMA:
        return ema_into_nb(close, window, out)
    return close


#: Per-bar work arrays of one chunk of `permuted_cross_sharpe_nb` (rows of `work[t]`).
WORK_ROWS = 12


@njit(parallel=True)
def permuted_cross_sharpe_nb(
    ts, volume, first, bars, keys, a_kind, a_window, b_kind, b_window, long_value, short_value,
    params, root_ppy, work, orders, states, stacks, fills, out, status_out,
):  # fmt: skip
    """`out[k]`: the annualized Sharpe `mean / std * root_ppy` (NaN where std is 0) of the
    crossover rule "`long_value` where line a > line b, `short_value` where a < b" re-run on
    the price path that key `keys[k]` permutes; `status_out[k]` its execution status (where it
    is FILLS_FULL the caller re-runs that key with larger fill buffers; `out[k]` is then junk).

    `first` and `bars` are `validation.PermutationBase`'s split of the real path; `ts` and
    `volume` stay the real ones. Sizing is by equity fraction or units (scale 1 on every bar).
    The keys run in `work.shape[0]` contiguous chunks, in parallel; chunk t works in
    `work[t]` (`WORK_ROWS` x n floats), `orders[t]` (n - 1 ints), `states[t]` (a state vector),
    `stacks[t]` (`pairwise.PAIRWISE_STACK_SHAPE`) and `fills[t]` (fill records), so a caller that keeps them pays no allocation per call.
    """
    n = ts.shape[0]
    n_keys = keys.shape[0]
    n_chunks = work.shape[0]
    for t in numba.prange(n_chunks):
        lo = t * n_keys // n_chunks
        hi = (t + 1) * n_keys // n_chunks
        w = work[t]
        order = orders[t]
        open_, high, low, close = w[0], w[1], w[2], w[3]
        target, scale, units, cash = w[4], w[5], w[6], w[7]
        equity, borrow, line_a, line_b = w[8], w[9], w[10], w[11]
        scale[:] = 1.0
        state = states[t]
        path = BarInputs(ts, open_, high, low, close, volume)
        sim_out = SimBuffers(units, cash, equity, borrow, fills[t])
        for k in range(lo, hi):
            shuffle_into_nb(order, keys[k])
            rebuild_ohlc_nb(first, bars, order, open_, high, low, close)
            a = line_nb(close, a_kind, a_window, line_a)
            b = line_nb(close, b_kind, b_window, line_b)
            # the registry's +1 shift: row i compares the lines of bar i - 1; row 0 is warm-up
            target[0] = 0.0
            cross_target_nb(a[: n - 1], b[: n - 1], long_value, short_value, target[1:])
            status = simulate_all_nb(path, OrderInputs(target, scale), params, state, sim_out)
            status_out[k] = status
            _count, mean, std, _downside = return_moments_nb(
                equity, line_a, stacks[t]
            )  # a: used up
            out[k] = sharpe_nb(mean, std, root_ppy)
