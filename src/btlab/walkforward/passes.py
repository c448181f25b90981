"""A walk-forward's two passes: the grid over one window's train part, and the chosen
combinations' stitched targets through the engine over the out-of-sample span.

Nothing at or after a part's end is read: each window's features come from a store of the
bars before its end (`prefix_store`: the registry's causal features cut there), so a feature
value inside the part may look back before the part (it is still the past: no warm-up is lost
at each window) but never past its end. A train part is traded from a flat account at its
first bar, every combination with its own request fields, as a sweep's pass over the part
(`TrainJob`: the sweep's batches, grouped by request fields, run by `sweep.passes.run_job`
here or on a cluster; the sweep kernels over the part's features where the strategy is a
fused cross of two features, otherwise the targets computed over the prefix and the part's
bars through `kernels.sweep.sweep_targets`, so a strategy that holds a state, e.g. a
breakout, enters the part in the state its past left it in, as it trades the test part).
The out-of-sample run is one engine run whose settings change at each window's first test
bar to the window's choice (`oos_simulation`, `simulation.run_engine`'s segments).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import numba
import numpy as np
import pandas as pd

from btlab.kernels.dtypes import Status
from btlab.kernels.execution import BarInputs, ExecParams
from btlab.kernels.ledger import trades_from_fills
from btlab.kernels.metrics import BLOCK_FIELDS, N_STATS, SW_STATUS
from btlab.kernels.sweep import ScratchPool, sweep_targets

from .. import data as data_mod
from ..config import FeatureSpec
from ..executors import BatchExecutor
from ..features import FeatureStore
from ..kernel_inputs import exec_params, size_scale
from ..kernel_status import raise_for_status
from ..pipeline import CancelCheck, ParamSegments, Simulation, simulate_chunked
from ..strategies import compute_target
from ..sweep.engine import TARGET_BATCH_BYTES, CrossRules
from ..sweep.passes import PassBatch, PassJob, SweepData, run_job
from .request import WalkForwardRequest

__all__ = [
    "TrainJob",
    "WindowStore",
    "bar_slice",
    "oos_inputs",
    "oos_simulation",
    "prefix_store",
    "train_stats",
]  # fmt: skip


def bar_slice(dataset: data_mod.Dataset, a: int, b: int) -> data_mod.Dataset:
    """Bars `a..b-1` of a dataset as a dataset: its arrays (extra columns too) are views, its
    rows, start and end the part's; `meta.id` stays the whole data's (a caller that shows the
    part sets its own)."""
    ts = dataset.ts[a:b]
    meta = dataset.meta.model_copy(
        update={
            "rows": b - a,
            "start": _utc(int(ts[0])),
            "end": _utc(int(ts[-1])),
        }
    )
    adj = None if dataset.adj_close is None else dataset.adj_close[a:b]
    extra = {name: values[a:b] for name, values in dataset.extra.items()}
    part = dataclasses.replace(
        dataset, ts=ts, open=dataset.open[a:b], high=dataset.high[a:b], low=dataset.low[a:b],
        close=dataset.close[a:b], volume=dataset.volume[a:b], adj_close=adj, meta=meta,
        extra=extra,
    )  # fmt: skip
    return part


def _utc(ns: int) -> datetime:
    return pd.Timestamp(ns, tz="UTC").to_pydatetime()


class WindowStore(FeatureStore):
    """The features of bars `a..a+n-1` as a store over those bars (`part`): each is the whole
    data's feature cut to the part. The registry's features are causal (SPEC §2: a value at a
    bar is computed from the bars before it, and a prefix's feature is the feature's prefix bit
    for bit), so these are the features of the bars before the part's end; nothing reads past
    it."""

    def __init__(self, full: FeatureStore, part: data_mod.Dataset, a: int) -> None:
        super().__init__(part)
        self._full = full
        self._a = a

    def get(self, spec: FeatureSpec) -> np.ndarray:
        arr: np.ndarray = self._full.get(spec)[self._a : self._a + self.n]
        return arr


def prefix_store(full: FeatureStore, b: int) -> WindowStore:
    """The store of the bars before `b`: what a part ending at `b` may read."""
    return WindowStore(full, bar_slice(full.data, 0, b), 0)


class TrainJob(PassJob):
    """One window's train pass, its batches those of a sweep (`sweep.passes.plan_batches`: the
    combinations grouped by their request fields, each group with its own settings) run by
    `sweep.passes.run_job` here or on a cluster's workers.

    What travels to each worker, once a window: the request, the bars before the part's end
    (the prefix), the part's first bar and the fused rules. A worker builds its own feature
    store over the prefix on its first batch (the registry's features are causal, so it is the
    whole data's store cut there, bit for bit); here the store cut from the whole data's is
    used as it is. A batch of a fused cross runs the sweep kernels over the part's features; any
    other strategy's targets are computed over the prefix and cut to the part
    (`kernels.sweep.sweep_targets`), so a strategy that holds a state enters the part in the
    state its past left it in."""

    def __init__(
        self,
        request: WalkForwardRequest,
        prefix: FeatureStore,
        a: int,
        periods_per_year: float,
        rules: CrossRules | None,
    ) -> None:
        self.prefix_data, self.a = prefix.data, a
        self._prefix: FeatureStore | None = prefix
        part = bar_slice(prefix.data, a, prefix.n)
        bounds = np.array([0, len(part) - 1], dtype=np.int64)  # one block: the blocks are unused
        view = WindowStore(prefix, part, a)
        super().__init__(request, SweepData(part, view), bounds, periods_per_year, rules)

    def __getstate__(self) -> dict[str, Any]:
        # the part is a view of the prefix: it is cut again from it on the worker
        return {**super().__getstate__(), "_prefix": None, "dataset": None}

    def prefix(self) -> FeatureStore:
        """The store of the bars before the part's end."""
        if self._prefix is None:
            self._prefix = FeatureStore(self.prefix_data)
        return self._prefix

    def data(self) -> SweepData:
        if self._store is None:
            prefix = self.prefix()
            part = bar_slice(self.prefix_data, self.a, prefix.n)
            self.dataset, self._store = part, WindowStore(prefix, part, self.a)
        return SweepData(self.dataset, self._store)

    def run_batch(self, batch: PassBatch) -> tuple[np.ndarray, np.ndarray, bool]:
        if not batch.kernel or self.rules is not None:
            return super().run_batch(batch)
        stats, blocks = self._target_stats(list(batch.members))
        return stats, blocks, False

    def _target_stats(self, members: list[int]) -> tuple[np.ndarray, np.ndarray]:
        """The generic path: targets over the prefix, cut to the part, in bounded batches; the
        members share their request fields (one group of `plan_batches`)."""
        request, data, prefix, a = self.request, self.data(), self.prefix(), self.a
        part, view = data.dataset, data.store
        assert isinstance(part, data_mod.Dataset) and isinstance(view, FeatureStore)
        combos: Sequence[Mapping[str, Any]] = request.expansion.params
        cfg = request.combination_config(members[0])
        n, total, name = len(part), len(members), request.strategy.name
        scale = size_scale(cfg, view, n, self.periods_per_year)
        params = exec_params(cfg)
        stats = np.zeros((total, N_STATS))
        blocks = np.zeros((total, self.bounds.shape[0] - 1, BLOCK_FIELDS))
        prices = BarInputs(part.ts, part.open, part.high, part.low, part.close, part.volume)
        threads = numba.get_num_threads()
        batch = max(threads, min(total, TARGET_BATCH_BYTES // max(1, 8 * prefix.n)))
        pool = ScratchPool()
        for lo in range(0, total, batch):
            hi = min(total, lo + batch)
            targets = np.stack(
                [compute_target(prefix, name, combos[k], prefix.n)[a:] for k in members[lo:hi]]
            )
            sweep_targets(
                prices, scale, targets, params, self.bounds, min(threads, hi - lo), stats[lo:hi],
                blocks[lo:hi], pool,
            )  # fmt: skip
        if np.any(stats[:, SW_STATUS] != Status.OK):  # named by the combinations' grid index
            codes = np.full(len(request.expansion), float(Status.OK))
            codes[members] = stats[:, SW_STATUS]
            raise_for_status(codes, "in the walk-forward's train pass", "combination")
        return stats, blocks


def train_stats(
    request: WalkForwardRequest,
    prefix: FeatureStore,
    a: int,
    periods_per_year: float,
    rules: CrossRules | None,
    should_cancel: CancelCheck | None = None,
    executor: BatchExecutor | None = None,
) -> np.ndarray:
    """Every valid combination traded over bars `a..` of the prefix (the train part) from a flat
    account, each with its own request fields: combinations x N_STATS, each row the statistics
    of that engine run. The batches run on `executor` (default: here), the rows assembled by
    combination index, so where they ran changes nothing."""
    job = TrainJob(request, prefix, a, periods_per_year, rules)
    out = run_job(job, should_cancel=should_cancel, executor=executor)
    stats: np.ndarray = out.stats
    return stats


def oos_inputs(
    request: WalkForwardRequest,
    prefix: FeatureStore,
    a: int,
    combo: int,
    periods_per_year: float,
) -> tuple[np.ndarray, np.ndarray, ExecParams]:
    """(target, size scale, engine settings) of the grid's combination `combo` over bars `a..`
    of the prefix (a test part): its strategy parameters and its request fields."""
    cfg = request.combination_config(combo)
    params = request.expansion.params[combo]
    target = compute_target(prefix, request.strategy.name, params, prefix.n)[a:]
    part = bar_slice(prefix.data, a, prefix.n)
    scale = size_scale(cfg, WindowStore(prefix, part, a), len(part), periods_per_year)
    return target, np.asarray(scale), exec_params(cfg)


def oos_simulation(
    oos: data_mod.Dataset,
    target: np.ndarray,
    scale: np.ndarray,
    params: ExecParams | ParamSegments,
    *,
    should_cancel: CancelCheck | None = None,
) -> tuple[Simulation, np.ndarray]:
    """The engine once over the out-of-sample bars with the stitched target, each window's bars
    with its chosen combination's settings (`params`: one for all, or (first bar, settings) per
    segment): (simulation, trades), the account flat at the first test bar and carried through
    every window (position, cash, entry price and stops, waiting orders)."""
    sim = simulate_chunked(oos, target, scale, params, should_cancel=should_cancel)
    n = len(oos)
    trades = trades_from_fills(sim.fills, n - 1, float(oos.close[-1]), sim.borrow_total)
    return sim, trades
