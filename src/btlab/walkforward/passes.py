"""A walk-forward's two passes: the grid over one window's train part, and the chosen
combinations' stitched targets through the engine over the out-of-sample span.

Nothing at or after a part's end is read: each window's features come from a store of the
bars before its end (`prefix_store`: the registry's causal features cut there), so a feature
value inside the part may look back before the part (it is still the past: no warm-up is lost
at each window) but never past its end. A train
part is traded from a flat account at its first bar, each combination by the sweep kernels in
one batched pass (`sweep.passes.run_pass` where the strategy is a fused cross of two features;
otherwise the targets are computed over the prefix and the part's bars go through
`kernels.sweep.sweep_targets`, so a strategy that holds a state, e.g. a breakout, enters the
part in the state its past left it in, as it trades the test part).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import numba
import numpy as np
import pandas as pd

from btlab.kernels.execution import BarInputs
from btlab.kernels.ledger import trades_from_fills
from btlab.kernels.metrics import BLOCK_FIELDS, N_STATS, SW_STATUS
from btlab.kernels.sweep import ScratchPool, sweep_targets

from .. import data as data_mod
from ..config import FeatureSpec
from ..features import FeatureStore
from ..kernel_inputs import exec_params, size_scale
from ..kernel_status import raise_for_status
from ..pipeline import CancelCheck, Simulation, simulate_chunked
from ..strategies import compute_target
from ..sweep.engine import TARGET_BATCH_BYTES, CrossRules
from ..sweep.passes import SweepData, run_pass
from .request import WalkForwardRequest

__all__ = [
    "WindowStore",
    "bar_slice",
    "oos_inputs",
    "oos_simulation",
    "prefix_store",
    "train_stats",
]  # fmt: skip


def bar_slice(dataset: data_mod.Dataset, a: int, b: int) -> data_mod.Dataset:
    """Bars `a..b-1` of a dataset as a dataset: its arrays are views, its rows, start and end
    the part's; `meta.id` stays the whole data's (a caller that shows the part sets its own)."""
    ts = dataset.ts[a:b]
    meta = dataset.meta.model_copy(
        update={
            "rows": b - a,
            "start": _utc(int(ts[0])),
            "end": _utc(int(ts[-1])),
        }
    )
    adj = None if dataset.adj_close is None else dataset.adj_close[a:b]
    part = dataclasses.replace(
        dataset, ts=ts, open=dataset.open[a:b], high=dataset.high[a:b], low=dataset.low[a:b],
        close=dataset.close[a:b], volume=dataset.volume[a:b], adj_close=adj, meta=meta,
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


def train_stats(
    request: WalkForwardRequest,
    prefix: FeatureStore,
    a: int,
    periods_per_year: float,
    rules: CrossRules | None,
    should_cancel: CancelCheck | None = None,
) -> np.ndarray:
    """Every valid combination traded over bars `a..` of the prefix (the train part) from a flat
    account: combinations x N_STATS, each row the statistics of that engine run."""
    dataset = prefix.data
    b = prefix.n
    part = bar_slice(dataset, a, b)
    view = WindowStore(prefix, part, a)
    bounds = np.array([0, b - a - 1], dtype=np.int64)  # one block: the blocks are not used
    if rules is not None:
        out = run_pass(
            request, SweepData(part, view), bounds, periods_per_year, rules=rules,
            should_cancel=should_cancel,
        )  # fmt: skip
        stats: np.ndarray = out.stats
        return stats
    return _target_stats(request, prefix, part, view, a, bounds, periods_per_year)


def _target_stats(
    request: WalkForwardRequest,
    prefix: FeatureStore,
    part: data_mod.Dataset,
    view: WindowStore,
    a: int,
    bounds: np.ndarray,
    periods_per_year: float,
) -> np.ndarray:
    """The generic path: targets over the prefix, cut to the part, in bounded batches."""
    combos: Sequence[Mapping[str, Any]] = request.expansion.params
    cfg = request.combination_config(0)
    n, total, name = len(part), len(combos), request.strategy.name
    scale = size_scale(cfg, view, n, periods_per_year)
    params = exec_params(cfg)
    stats = np.zeros((total, N_STATS))
    blocks = np.zeros((total, bounds.shape[0] - 1, BLOCK_FIELDS))
    prices = BarInputs(part.ts, part.open, part.high, part.low, part.close, part.volume)
    threads = numba.get_num_threads()
    batch = max(threads, min(total, TARGET_BATCH_BYTES // max(1, 8 * prefix.n)))
    pool = ScratchPool()
    for lo in range(0, total, batch):
        hi = min(total, lo + batch)
        targets = np.stack([compute_target(prefix, name, p, prefix.n)[a:] for p in combos[lo:hi]])
        sweep_targets(
            prices, scale, targets, params, bounds, min(threads, hi - lo), stats[lo:hi],
            blocks[lo:hi], pool,
        )  # fmt: skip
    raise_for_status(stats[:, SW_STATUS], "in the walk-forward's train pass", "combination")
    return stats


def oos_inputs(
    request: WalkForwardRequest,
    prefix: FeatureStore,
    a: int,
    params: Mapping[str, Any],
    periods_per_year: float,
) -> tuple[np.ndarray, np.ndarray]:
    """(target, size scale) of one combination over bars `a..` of the prefix (a test part)."""
    cfg = request.run_config(params)
    target = compute_target(prefix, request.strategy.name, params, prefix.n)[a:]
    part = bar_slice(prefix.data, a, prefix.n)
    scale = size_scale(cfg, WindowStore(prefix, part, a), len(part), periods_per_year)
    return target, np.asarray(scale)


def oos_simulation(
    request: WalkForwardRequest,
    oos: data_mod.Dataset,
    target: np.ndarray,
    scale: np.ndarray,
    *,
    should_cancel: CancelCheck | None = None,
) -> tuple[Simulation, np.ndarray]:
    """The engine once over the out-of-sample bars with the stitched target: (simulation,
    trades), the account flat at the first test bar and carried through every window."""
    cfg = request.run_config({})
    sim = simulate_chunked(oos, target, scale, exec_params(cfg), should_cancel=should_cancel)
    n = len(oos)
    trades = trades_from_fills(sim.fills, n - 1, float(oos.close[-1]), sim.borrow_total)
    return sim, trades
