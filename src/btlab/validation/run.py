"""The validation stage of a run: wires a RunResult into the statistics of this package.

Fold metrics come from the run's own arrays; the permutation test re-runs features, strategy
and kernel on each permuted price path (same timestamps and volume, fresh feature store).
"""

from __future__ import annotations

import dataclasses
import math
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numba
import numpy as np

from ..errors import RunCancelled
from ..executors import BatchExecutor
from ..features import FeatureStore
from ..kernel_inputs import exec_params, rebalance_schedule, size_scale
from ..kernel_status import raise_for_status
from ..kernels.dtypes import FILL_DTYPE, Status
from ..kernels.execution import (
    STATE_SIZE,
    new_state,
    with_fill_retry,
)
from ..kernels.metrics import return_moments_nb
from ..kernels.pairwise import PAIRWISE_STACK_SHAPE, pairwise_stack
from ..kernels.permutation import (
    LINE_CLOSE,
    LINE_EMA,
    LINE_SMA,
    WORK_ROWS,
    permuted_cross_sharpe_nb,
)
from ..kernels.portfolio import (
    PortfolioBars,
    PortfolioBuffers,
    PortfolioOrders,
    fresh_portfolio_state_nb,
    simulate_one_nb,
)
from ..metric_registry import FOLD
from ..metrics import annualized_ratio, compute_metrics
from ..metrics import bar_returns as bar_returns  # the one formula, re-exported for callers
from ..run_cache import RunCache
from ..run_result import RunResult
from ..strategies import compute_target, cross_rule
from ..targets import PERMUTATION_SKIPPED, TARGETS_STRATEGY
from .assemble import run_validation
from .permutation import BatchStatistic, PermutationBase


def segment_metrics(result: RunResult, a: int, b: int) -> dict[str, Any]:
    """The metrics of bars `a..b-1` of a run, starting from the equity bar `a - 1` left (the
    initial cash at 0): its fills and the trades that exit inside."""
    ppy = result.metrics["periods_per_year"]
    ds = result.dataset
    price, units = result.exposure_arrays()
    borrow = result.borrow if result.borrow.ndim == 1 else result.borrow.sum(axis=1)
    start_equity = (
        result.config.execution.initial_cash if a == 0 else float(result.equity_values[a - 1])
    )
    fills = result.fill_records[
        (result.fill_records["bar"] >= a) & (result.fill_records["bar"] < b)
    ]
    trades = result.trade_records[
        (result.trade_records["exit_bar"] >= a) & (result.trade_records["exit_bar"] < b)
    ]
    return compute_metrics(
        ds.ts[a:b], price[a:b], result.equity_values[a:b], units[a:b], borrow[a:b], fills,
        trades, initial_cash=start_equity, periods_per_year=ppy,
    )  # fmt: skip


def fold_metrics(result: RunResult, k: int) -> dict[str, Any]:
    """Metrics on k contiguous time folds, each starting from the equity the previous one left."""
    n = result.equity_values.shape[0]
    edges = np.linspace(0, n, k + 1).astype(np.int64)
    folds = []
    for j in range(k):
        a, b = int(edges[j]), int(edges[j + 1])
        if b - a < 2:
            continue
        m = segment_metrics(result, a, b)
        folds.append(
            {"fold": j, "start_bar": a, "end_bar": b - 1} | {name: m[name] for name in FOLD}
        )
    sharpes = [f["sharpe"] for f in folds if f["sharpe"] is not None and math.isfinite(f["sharpe"])]
    positive = sum(1 for s in sharpes if s > 0) / len(folds) if folds else math.nan
    return {"k": k, "folds": folds, "share_positive_sharpe": positive}


def permutation_statistic(
    result: RunResult,
) -> Callable[[np.ndarray, np.ndarray, np.ndarray, np.ndarray], float]:
    """The run's Sharpe re-computed on a price path: features, strategy and kernel re-run.

    The same arithmetic as the run's `metrics["sharpe"]` (`return_moments_nb` over the equity
    path, then `metrics.annualized_ratio`), so the real path gives that value bit for bit. Each calling thread keeps its own
    kernel buffers across calls (the permutation test calls it once per path), and the
    timestamps and volume are the run's.
    """
    cfg = result.config
    params = exec_params(cfg)
    ppy = float(result.metrics["periods_per_year"])
    root_ppy = math.sqrt(ppy)
    base = result.dataset
    n = len(base)
    local = threading.local()
    # a calendar rebalance keeps its dates: the permutation reorders returns, not timestamps
    schedule = rebalance_schedule(cfg, base.ts)
    if schedule is None:
        schedule = np.zeros(0, dtype=np.int64)

    def statistic(open_: np.ndarray, high: np.ndarray, low: np.ndarray, close: np.ndarray) -> float:
        permuted = dataclasses.replace(
            base, open=open_, high=high, low=low, close=close, adj_close=None
        )
        store = FeatureStore(permuted)
        target = compute_target(store, cfg.strategy.name, cfg.strategy.params, n)
        scale = size_scale(cfg, store, n, ppy)
        if not hasattr(local, "buffers"):  # this thread's kernel buffers, reused across paths
            local.buffers = [np.empty(n) for _ in range(5)]
            local.state = new_state(params.initial_cash)
            local.stack = pairwise_stack()
            local.fills = np.empty(0, dtype=FILL_DTYPE)
        units, cash, equity, borrow, scratch = local.buffers
        bars = PortfolioBars(base.ts, open_, high, low, close, base.volume)
        orders = PortfolioOrders(target, scale, schedule)

        def run(capacity: int) -> int:
            if local.fills.shape[0] < capacity:  # a grown buffer stays grown
                local.fills = np.empty(capacity, dtype=FILL_DTYPE)
            out = PortfolioBuffers(units, cash, equity, borrow, local.fills)
            fresh_portfolio_state_nb(local.state, params.initial_cash)
            return int(simulate_one_nb(bars, orders, params, local.state, out, 0, n))

        raise_for_status(with_fill_retry(n, run), "on a permuted path")
        _count, mean, std, _downside = return_moments_nb(equity, scratch, local.stack)
        return annualized_ratio(float(mean), float(std), root_ppy)

    return statistic


#: The lines `kernels.permutation.line_nb` computes, by feature name.
_LINE_KINDS = {"price": LINE_CLOSE, "sma": LINE_SMA, "ema": LINE_EMA}


def permutation_batch(result: RunResult) -> BatchStatistic | None:
    """The fused form of `permutation_statistic(result)` where one exists, else None.

    For a crossover strategy (`strategies.cross_rule`) on lines of the close (the close, its
    SMA or EMA) sized without vol targeting, `kernels.permutation.permuted_cross_sharpe_nb`
    runs a whole batch of permutations in one parallel pass: the same kernels as the generic
    path, so the same values bit for bit, without a feature store or the GIL per path.
    """
    cfg = result.config
    rule = cross_rule(cfg.strategy.name, cfg.strategy.params)
    if rule is None or cfg.risk.sizing == "vol_target":
        return None
    if rebalance_schedule(cfg, result.dataset.ts) is not None:
        return None  # the fused kernel has no calendar schedule: the generic path runs
    lines = []
    for spec in rule[:2]:
        kind = _LINE_KINDS.get(spec.name)
        if kind is None or spec.params.get("source") != "close":
            return None
        lines.append((kind, int(spec.params.get("window", 0))))
    (a_kind, a_window), (b_kind, b_window) = lines
    long_value, short_value = rule[2], rule[3]
    params = exec_params(cfg)
    root_ppy = math.sqrt(float(result.metrics["periods_per_year"]))
    ds = result.dataset

    n = len(ds)
    threads = numba.get_num_threads()
    buffers: list[np.ndarray] = []  # the chunks' work arrays, made on the first call, reused
    fill_buffers: dict[int, np.ndarray] = {}  # the chunks' fill records, by capacity

    def batch(base: PermutationBase, keys: np.ndarray) -> np.ndarray:
        if not buffers:
            buffers.extend((
                np.empty((threads, WORK_ROWS, n)), np.empty((threads, n - 1), np.int64),
                np.empty((threads, STATE_SIZE)), np.empty((threads, *PAIRWISE_STACK_SHAPE)),
            ))  # fmt: skip
        keys = np.ascontiguousarray(keys, np.uint64)
        out = np.empty(keys.shape[0])
        status = np.empty(keys.shape[0], dtype=np.int64)
        todo: np.ndarray | None = None  # None: every key; else the keys that ran out of fills

        def run(capacity: int) -> np.ndarray:
            nonlocal todo
            some = keys if todo is None else keys[todo]
            chunks = max(1, min(some.shape[0], threads))
            if capacity not in fill_buffers:
                fill_buffers[capacity] = np.empty((threads, capacity), FILL_DTYPE)
            work, orders, states, stacks = (b[:chunks] for b in buffers)
            got, got_status = np.empty(some.shape[0]), np.empty(some.shape[0], dtype=np.int64)
            permuted_cross_sharpe_nb(
                ds.ts, ds.volume, base.first, base.bars, some, a_kind, a_window, b_kind,
                b_window, long_value, short_value, params, root_ppy, work, orders, states, stacks,
                fill_buffers[capacity][:chunks], got, got_status,
            )  # fmt: skip
            pick = slice(None) if todo is None else todo
            out[pick], status[pick] = got, got_status
            todo = np.flatnonzero(status == Status.FILLS_FULL)
            return status

        raise_for_status(with_fill_retry(n, run), "on a permuted path", "permutation")
        return out

    return batch


@dataclass
class RunPermutations:
    """The recipe of a run's permutation statistic for a cluster's workers (`PathStatistics`):
    the run's request, bars and periods per year travel, not its arrays."""

    result: RunResult

    def __getstate__(self) -> dict[str, Any]:
        r = self.result
        none = np.zeros(0)
        slim = RunResult(
            config=r.config, config_hash=r.config_hash, dataset=r.dataset, target=none,
            units=none, cash=none, equity_values=none, borrow=none, fill_records=r.fill_records[:0],
            trade_records=r.trade_records[:0],
            metrics={"periods_per_year": r.metrics["periods_per_year"]}, validation=None,
            flags=r.flags, halt_bar=r.halt_bar,
        )  # fmt: skip
        return {"result": slim}

    def statistic(self) -> Callable[[np.ndarray, np.ndarray, np.ndarray, np.ndarray], float]:
        return permutation_statistic(self.result)

    def batch(self) -> BatchStatistic | None:
        return permutation_batch(self.result)


def validate_result(
    result: RunResult,
    store: FeatureStore,
    *,
    on_progress: Callable[[int, int], None] | None = None,
    should_cancel: Callable[[], bool] | None = None,
    cache: RunCache | None = None,
    executor: BatchExecutor | None = None,
) -> dict[str, Any]:
    """validation.json of a run (SPEC §6); the permutations on `executor` (a cluster) where
    given. A run of the caller's own targets (strategy `targets`) has no strategy to re-run on
    permuted prices: its permutation test is skipped, the reason under `skipped.permutation`."""
    cfg = result.config.validation
    permute = cfg.permutation.enabled and result.config.strategy.name != TARGETS_STRATEGY
    ppy = float(result.metrics["periods_per_year"])
    returns = bar_returns(result.equity_values)
    folds = fold_metrics(result, cfg.folds.k) if cfg.folds.enabled else None

    def progress(done: int, total: int) -> None:
        if should_cancel is not None and should_cancel():
            raise RunCancelled("run cancelled during validation")
        if on_progress is not None:
            on_progress(done, total)

    ds = result.dataset
    out = run_validation(
        returns, cfg, root_seed=result.config.seed, periods_per_year=ppy,
        permutation_statistic=permutation_statistic(result) if permute else None,
        permutation_batch=permutation_batch(result) if permute else None,
        ohlc=(ds.open, ds.high, ds.low, ds.close), real_statistic=result.metrics["sharpe"],
        fold_metrics=folds, on_progress=progress, executor=executor,
        permutation_recipe=RunPermutations(result) if permute else None,
    )  # fmt: skip
    return with_skips(out, result.config)


def with_skips(validation: dict[str, Any], config: Any) -> dict[str, Any]:
    """`validation` with `skipped` (section -> reason) where a section asked for cannot run:
    the permutation test of a run of the caller's own targets."""
    if config.validation.permutation.enabled and config.strategy.name == TARGETS_STRATEGY:
        validation["skipped"] = {"permutation": PERMUTATION_SKIPPED}
    return validation
