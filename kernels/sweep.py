"""Sweep kernels: every parameter combination of one strategy in one parallel pass.

`sweep_cross_nb` runs "long where feature a > feature b" strategies (dual moving-average
crosses, price against a moving average) straight from a matrix of distinct features, each
computed once by the caller; `sweep_targets_nb` runs combinations whose targets the caller
computed. Both run one chunk per thread (`prange` over the chunks), and each chunk takes the
next combination not yet taken from a shared counter (`atomics.fetch_add_nb`) until none is
left: combinations cost unalike (a fast window trades more) and threads run unalike (a host's
neighbours slow one core), and a fixed share would leave the faster thread waiting at the end.
Chunk t works in the caller's buffers
`SweepScratch[*][t]`, so memory is threads x bars, never combinations x bars, and no kernel
allocates. `sweep_cross` / `sweep_targets` are the plain-Python entry points: they apply the
fill-buffer policy (a combination whose fills outgrow the first buffer is re-run with the
bound) in buffers made once per capacity (`ScratchPool`) and reused by every later batch.

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

A combination's result depends on its own inputs only, never on the number of threads or on
which thread ran it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numba
import numpy as np

from ._jit import njit
from .atomics import fetch_add_nb
from .dtypes import FILL_DTYPE, TRADE_DTYPE, Status
from .execution import (
    ST_BORROW_CUM,
    ST_FLAGS,
    ST_HALT_BAR,
    ST_N_FILLS,
    STATE_SIZE,
    BarInputs,
    ExecParams,
    OrderInputs,
    SimBuffers,
    simulate_all_nb,
    with_fill_retry,
)
from .ledger import trades_nb
from .metrics import (  # the per-path statistics a single run's metrics come from
    SW_FINAL,
    SW_FLAGS,
    SW_HALT_BAR,
    SW_STATUS,
    fill_stats_nb,
    path_scratch_size,
    path_stats_nb,
    trade_stats_nb,
)
from .pairwise import PAIRWISE_STACK_SHAPE
from .signals import cross_target_nb


@njit
def run_combo_nb(bars, orders, params, bounds, state, out, trades, scratch, stack, row, blocks):
    """One combination: simulate from a fresh state, path statistics, fill totals, the ledger
    (`trades_nb`, as a single run) and its trade statistics, into `row` and `blocks`.

    `out` is the combination's `SimBuffers`, `trades` room for `out.fills.shape[0] + 1` trade
    records, `scratch` `max(3 * n + 3, metrics.path_scratch_size(n))` values, `stack`
    `pairwise.pairwise_sum_nb`'s. `row[SW_STATUS]` is the execution status: where it is not OK
    (FILLS_FULL: the caller re-runs with larger buffers) nothing else is written.
    """
    n = bars.close.shape[0]
    status = simulate_all_nb(bars, orders, params, state, out)
    row[SW_STATUS] = status
    if status != Status.OK:
        return
    units, equity, borrow, fills = out.units, out.equity, out.borrow, out.fills
    has_borrow = params.borrow_rate_annual > 0.0  # else every bar's borrow is 0
    path_stats_nb(
        bars.close, units, equity, borrow, has_borrow, bounds, row, blocks, scratch, stack
    )
    row[SW_FINAL] = equity[n - 1]
    row[SW_FLAGS] = state[ST_FLAGS]
    row[SW_HALT_BAR] = state[ST_HALT_BAR]
    k = int(state[ST_N_FILLS])
    fill_stats_nb(fills, k, row, scratch, stack)
    n_trades = trades_nb(fills[:k], n - 1, bars.close[n - 1], state[ST_BORROW_CUM], trades)
    trade_stats_nb(trades, n_trades, row, scratch, stack)


#: Per-bar rows of one chunk's `SweepScratch.work`: target, units, cash, equity, borrow.
WORK_ROWS = 5


class SweepScratch(NamedTuple):
    """The per-chunk buffers of a sweep kernel (first axis: the chunk, one per parallel task)."""

    work: np.ndarray  # (chunks, WORK_ROWS, n) float64
    state: np.ndarray  # (chunks, STATE_SIZE) float64
    fills: np.ndarray  # (chunks, capacity) FILL_DTYPE
    trades: np.ndarray  # (chunks, capacity + 1) TRADE_DTYPE
    scratch: np.ndarray  # (chunks, max(3 * n + 3, path_scratch_size(n))) float64
    stack: np.ndarray  # (chunks, *pairwise.PAIRWISE_STACK_SHAPE) float64
    taken: np.ndarray  # (chunks,) int64: [0] counts the combinations taken (the kernels set it)


def sweep_scratch(n_chunks: int, n_bars: int, capacity: int) -> SweepScratch:
    """Fresh buffers for `n_chunks` chunks over `n_bars` bars with `capacity` fill records each."""
    return SweepScratch(
        np.empty((n_chunks, WORK_ROWS, n_bars)),
        np.empty((n_chunks, STATE_SIZE)),
        np.empty((n_chunks, capacity), dtype=FILL_DTYPE),
        np.empty((n_chunks, capacity + 1), dtype=TRADE_DTYPE),
        np.empty((n_chunks, max(3 * n_bars + 3, path_scratch_size(n_bars)))),
        np.empty((n_chunks, *PAIRWISE_STACK_SHAPE)),
        np.zeros(n_chunks, dtype=np.int64),
    )


@njit
def _run_chunk_nb(bars, target, scale, params, bounds, buf, t, c, stats, blocks):
    """Combination c (row c of `stats` and `blocks`) in chunk t's buffers of `buf`."""
    w = buf.work[t]
    out = SimBuffers(w[1], w[2], w[3], w[4], buf.fills[t])
    run_combo_nb(
        bars, OrderInputs(target, scale), params, bounds, buf.state[t], out, buf.trades[t],
        buf.scratch[t], buf.stack[t], stats[c], blocks[c],
    )  # fmt: skip


@njit(parallel=True)
def sweep_cross_nb(
    bars, scale, features, a_idx, b_idx, long_value, short_value, params, bounds, buf, stats,
    blocks,
):  # fmt: skip
    """Combination c: target `cross_target_nb(features[a_idx[c]], features[b_idx[c]],
    long_value[c], short_value[c])`, then `run_combo_nb` into `stats[c]` and `blocks[c]`.

    `features` is the (distinct features x bars) matrix of shifted features; the combinations
    run in `buf.work.shape[0]` chunks, in parallel, chunk t in the buffers `buf[*][t]` (a
    `SweepScratch`) taking the next combination from `buf.taken[0]` until none is left.
    """
    n_combos = a_idx.shape[0]
    buf.taken[0] = 0
    for t in numba.prange(buf.work.shape[0]):
        target = buf.work[t][0]
        while True:  # the next combination not taken: see the module's docstring
            c = fetch_add_nb(buf.taken, 0, 1)
            if c >= n_combos:
                break
            cross_target_nb(
                features[a_idx[c]], features[b_idx[c]], long_value[c], short_value[c], target
            )
            _run_chunk_nb(bars, target, scale, params, bounds, buf, t, c, stats, blocks)


@njit(parallel=True)
def sweep_targets_nb(bars, scale, targets, params, bounds, buf, stats, blocks):
    """Combination c runs target `targets[c]` (a batch x bars matrix the caller bounds);
    otherwise as `sweep_cross_nb`."""
    n_combos = targets.shape[0]
    buf.taken[0] = 0
    for t in numba.prange(buf.work.shape[0]):
        while True:
            c = fetch_add_nb(buf.taken, 0, 1)
            if c >= n_combos:
                break
            _run_chunk_nb(bars, targets[c], scale, params, bounds, buf, t, c, stats, blocks)


class ScratchPool:
    """`SweepScratch` buffers by fill capacity, made on first use and handed out again (as
    views of their first chunks) to every later batch of a pass: a 100k-bar batch's buffers
    are ~6 MB a chunk, and fresh ones cost their page faults on every batch."""

    def __init__(self) -> None:
        self._made: dict[int, SweepScratch] = {}

    def get(self, n_chunks: int, n_bars: int, capacity: int) -> SweepScratch:
        buf = self._made.get(capacity)
        if buf is None or buf.work.shape[0] < n_chunks or buf.work.shape[2] != n_bars:
            buf = self._made[capacity] = sweep_scratch(n_chunks, n_bars, capacity)
        return SweepScratch(*(field[:n_chunks] for field in buf))


def _with_fill_retry(
    n_bars: int,
    n_chunks: int,
    stats: np.ndarray,
    blocks: np.ndarray,
    run: Callable[[np.ndarray | None, SweepScratch, np.ndarray, np.ndarray], None],
    pool: ScratchPool | None,
) -> None:
    """The fill-buffer policy (`execution.with_fill_retry`) over a batch of combinations: all of
    them with the first buffers, then only those that ran out, with the bound; the buffers
    come from `pool` (a fresh one where None)."""
    rows: np.ndarray | None = None  # None: every row
    buffers = pool if pool is not None else ScratchPool()

    def attempt(capacity: int) -> np.ndarray:
        nonlocal rows
        count = stats.shape[0] if rows is None else rows.shape[0]
        buf = buffers.get(max(1, min(n_chunks, count)), n_bars, capacity)
        if rows is None:
            run(None, buf, stats, blocks)
        else:
            sub_stats, sub_blocks = stats[rows], blocks[rows]
            run(rows, buf, sub_stats, sub_blocks)
            stats[rows], blocks[rows] = sub_stats, sub_blocks
        status = stats[:, SW_STATUS]
        rows = np.flatnonzero(status == Status.FILLS_FULL)
        return status

    with_fill_retry(n_bars, attempt)


def sweep_cross(
    bars: BarInputs,
    scale: np.ndarray,
    features: np.ndarray,
    a_idx: np.ndarray,
    b_idx: np.ndarray,
    long_value: np.ndarray,
    short_value: np.ndarray,
    params: ExecParams,
    bounds: np.ndarray,
    n_chunks: int,
    stats: np.ndarray,
    blocks: np.ndarray,
    pool: ScratchPool | None = None,
) -> None:
    """`sweep_cross_nb` in `n_chunks` chunks under the fill policy, in buffers from `pool`
    (kept by the caller across batches; fresh ones where None); `stats[:, SW_STATUS]` holds
    each combination's final status."""

    def run(rows: np.ndarray | None, buf: SweepScratch, st: np.ndarray, bl: np.ndarray) -> None:
        pick = slice(None) if rows is None else rows
        sweep_cross_nb(
            bars, scale, features, a_idx[pick], b_idx[pick], long_value[pick], short_value[pick],
            params, bounds, buf, st, bl,
        )  # fmt: skip

    _with_fill_retry(bars.close.shape[0], n_chunks, stats, blocks, run, pool)


def sweep_targets(
    bars: BarInputs,
    scale: np.ndarray,
    targets: np.ndarray,
    params: ExecParams,
    bounds: np.ndarray,
    n_chunks: int,
    stats: np.ndarray,
    blocks: np.ndarray,
    pool: ScratchPool | None = None,
) -> None:
    """`sweep_targets_nb` in `n_chunks` chunks under the fill policy, in buffers from `pool`
    as `sweep_cross`; `stats[:, SW_STATUS]` holds each combination's final status."""

    def run(rows: np.ndarray | None, buf: SweepScratch, st: np.ndarray, bl: np.ndarray) -> None:
        picked = targets if rows is None else np.ascontiguousarray(targets[rows])
        sweep_targets_nb(bars, scale, picked, params, bounds, buf, st, bl)

    _with_fill_retry(bars.close.shape[0], n_chunks, stats, blocks, run, pool)
