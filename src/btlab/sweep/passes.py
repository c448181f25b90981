"""A sweep's pass over its combinations, by the fastest path that covers each.

Combinations that differ only in the strategy's parameters run through the sweep kernels in
one batched pass (`engine.sweep_pass`). A grid over request fields (`execution.*`, `risk.*`) is
split into groups with the same fields, each group one such pass with its own settings. What
the sweep kernels do not cover — a portfolio's grid, a calendar rebalance — runs each
combination through the one engine as a single run does (`simulation.run_engine`), then the
statistics kernels over its path with the CSCV blocks. Every path gives a combination the same
statistics row, bit for bit, as the single run of it (`SweepRequest.combination_config`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from btlab.kernels.dtypes import Flag
from btlab.kernels.ledger import trades_from_fills
from btlab.kernels.metrics import BLOCK_FIELDS, N_STATS

from .. import data as data_mod
from ..config import RunConfig
from ..data.portfolio import PortfolioDataset
from ..executors import BatchExecutor, LocalExecutor
from ..features import FeatureStore
from ..hashing import canonical_json
from ..kernel_inputs import rebalance_schedule
from ..metrics import path_statistics
from ..pipeline import CancelCheck, Simulation, exec_params, simulate_chunked, size_scale
from ..portfolio_features import PortfolioFeatureStore
from ..portfolio_run import simulate_portfolio
from ..strategies import compute_target
from ..timeframes import CALENDAR_REBALANCES
from .collect import PassSink
from .engine import CrossRules, PassBuffers, PassOutput, cross_rules, sweep_pass
from .request import SweepRequest

__all__ = [
    "PassBatch",
    "PassJob",
    "SweepData",
    "combination_stats",
    "pass_batch",
    "plan_batches",
    "run_job",
    "run_job_into",
    "run_pass",
    "run_pass_into",
    "simulate_single",
]


@dataclass
class SweepData:
    """The bars a sweep runs on with their feature store: one symbol's or a portfolio's."""

    dataset: data_mod.Dataset | PortfolioDataset
    store: FeatureStore | PortfolioFeatureStore

    @property
    def is_portfolio(self) -> bool:
        return isinstance(self.dataset, PortfolioDataset)


def simulate_single(
    cfg: RunConfig, dataset: data_mod.Dataset, store: FeatureStore, periods_per_year: float
) -> tuple[np.ndarray, Simulation, np.ndarray]:
    """One symbol's combination through the engine as `pipeline.run` runs it: (target, the
    simulation, the trades)."""
    n = len(dataset)
    target = compute_target(store, cfg.strategy.name, cfg.strategy.params, n)
    sim = simulate_chunked(
        dataset, target, size_scale(cfg, store, n, periods_per_year), exec_params(cfg),
        schedule=rebalance_schedule(cfg, dataset.ts),
    )  # fmt: skip
    trades = trades_from_fills(sim.fills, n - 1, float(dataset.close[-1]), sim.borrow_total)
    return target, sim, trades


def combination_stats(
    cfg: RunConfig, data: SweepData, periods_per_year: float, bounds: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """One combination through the engine as its single run goes (`pipeline.run`, or
    `portfolio_run.run_portfolio`): its statistics row and CSCV block sums."""
    blocks = np.zeros((bounds.shape[0] - 1, BLOCK_FIELDS))
    if isinstance(data.dataset, PortfolioDataset):
        assert isinstance(data.store, PortfolioFeatureStore)
        result = simulate_portfolio(cfg, data.dataset, data.store, periods_per_year)
        price, exposure = result.exposure_arrays()
        row = path_statistics(
            price, result.equity_values, exposure, result.borrow.sum(axis=1),
            result.fill_records, result.trade_records, ruined=result.ruined,
            halted=result.halted, bounds=bounds, blocks=blocks,
        )  # fmt: skip
        return row, blocks
    assert isinstance(data.store, FeatureStore)
    dataset = data.dataset
    _target, sim, trades = simulate_single(cfg, dataset, data.store, periods_per_year)
    row = path_statistics(
        dataset.close, sim.equity, sim.units, sim.borrow, sim.fills, trades,
        ruined=bool(sim.flags & Flag.RUINED), halted=bool(sim.flags & Flag.HALTED_MAX_DRAWDOWN),
        bounds=bounds, blocks=blocks,
    )  # fmt: skip
    return row, blocks


def _kernel_covers(cfg: RunConfig, data: SweepData) -> bool:
    """Whether the sweep kernels run this combination's settings (one symbol, no calendar)."""
    return not data.is_portfolio and cfg.execution.rebalance not in CALENDAR_REBALANCES


def _select(rules: CrossRules | None, members: Sequence[int]) -> CrossRules | None:
    if rules is None:
        return None
    picked = np.asarray(members, dtype=np.int64)
    return CrossRules(
        [rules.a[k] for k in members], [rules.b[k] for k in members],
        rules.long_value[picked], rules.short_value[picked],
    )  # fmt: skip


@dataclass(frozen=True)
class PassBatch:
    """Combinations run together: through the sweep kernels (`kernel`, one group of request
    fields) or one by one through the engine."""

    members: tuple[int, ...]
    kernel: bool


class PassJob:
    """What every batch of a pass reads; shipped to each worker of a cluster once. The feature
    store does not travel: a worker builds its own over the bars, once, on its first batch."""

    def __init__(
        self,
        request: SweepRequest,
        data: SweepData,
        bounds: np.ndarray,
        periods_per_year: float,
        rules: CrossRules | None,
    ) -> None:
        self.request, self.dataset, self.bounds = request, data.dataset, bounds
        self.periods_per_year, self.rules = periods_per_year, rules
        self._store: FeatureStore | PortfolioFeatureStore | None = data.store
        self._buffers = threading.local()  # each thread's PassBuffers (a worker may run several)

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_store": None, "_buffers": None}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._buffers = threading.local()

    def buffers(self) -> PassBuffers:
        """This thread's buffers, reused by every batch of the job it runs."""
        held: PassBuffers | None = getattr(self._buffers, "value", None)
        if held is None:
            held = self._buffers.value = PassBuffers()
        return held

    def data(self) -> SweepData:
        if self._store is None:
            self._store = (
                PortfolioFeatureStore(self.dataset)
                if isinstance(self.dataset, PortfolioDataset)
                else FeatureStore(self.dataset)
            )
        return SweepData(self.dataset, self._store)

    def run_batch(self, batch: PassBatch) -> tuple[np.ndarray, np.ndarray, bool]:
        """One batch's statistics rows and block sums (in its members' order), and whether the
        fused kernel ran it."""
        request, data = self.request, self.data()
        members = list(batch.members)
        if batch.kernel:
            assert isinstance(data.dataset, data_mod.Dataset)
            assert isinstance(data.store, FeatureStore)
            e = request.expansion
            params = [e.params[k] for k in members]
            name = request.strategy.name
            rules = _select(self.rules, members)
            out = sweep_pass(
                data.dataset, data.store, request.combination_config(members[0]), name, params,
                self.bounds, self.periods_per_year,
                rules=rules if rules is not None else cross_rules(name, params),
                buffers=self.buffers(),
            )  # fmt: skip
            return out.stats, out.blocks, out.fused
        stats = np.zeros((len(members), N_STATS))
        blocks = np.zeros((len(members), self.bounds.shape[0] - 1, BLOCK_FIELDS))
        for i, k in enumerate(members):
            stats[i], blocks[i] = combination_stats(
                request.combination_config(k), data, self.periods_per_year, self.bounds
            )
        return stats, blocks, False


def pass_batch(job: PassJob, batch: PassBatch) -> tuple[np.ndarray, np.ndarray, bool]:
    """One batch of a pass (`PassJob.run_batch`, which a job of its own kind may change): its
    statistics rows and block sums (in its members' order), and whether the fused kernel ran
    it."""
    return job.run_batch(batch)


#: Batches per group of combinations, per slot of the executor: enough to report progress and
#: balance a cluster's workers, few enough that a batch's fixed costs stay small.
BATCHES_PER_SLOT = 4
#: Fewest combinations in one batch through the sweep kernels (its chunks fill the cores).
MIN_KERNEL_BATCH = 16
#: Most combinations in one batch: what a batch holds (its rows, its features' matrix) stays
#: small however large the grid, and progress and cancel come between batches.
MAX_BATCH = 4096
#: Least work (combinations x bars) a kernel batch is cut to (~0.1 s of one core): a small pass
#: (a walk-forward window's 100 combinations x 20k bars) is one batch, not many short parallel
#: calls, each of which waits at its end for both threads (a time slice on a loaded machine).
MIN_BATCH_WORK = 16_000_000


def plan_batches(request: SweepRequest, data: SweepData, parallelism: int = 1) -> list[PassBatch]:
    """The pass's batches: each group of combinations sharing their request fields split in
    about `BATCHES_PER_SLOT * max(2, parallelism)` parts (of at most MAX_BATCH; a kernel batch
    of at least MIN_BATCH_WORK bar-combinations), in grid order."""
    e = request.expansion
    total = len(e)
    groups: dict[str, list[int]] = {}
    if e.field_axes:
        for k, fields in enumerate(e.fields):
            groups.setdefault(canonical_json(fields), []).append(k)
    else:
        groups[""] = list(range(total))
    parts = BATCHES_PER_SLOT * max(2, parallelism)
    bars = data.dataset.close.size  # bars x symbols
    out: list[PassBatch] = []
    for members in groups.values():
        kernel = _kernel_covers(request.combination_config(members[0]), data)
        size = -(-len(members) // parts)
        if kernel:
            size = max(size, MIN_KERNEL_BATCH, -(-MIN_BATCH_WORK // max(1, bars)))
        size = min(max(size, 1), MAX_BATCH)
        for lo in range(0, len(members), size):
            out.append(PassBatch(tuple(members[lo : lo + size]), kernel))
    return out


def run_pass_into(
    request: SweepRequest,
    data: SweepData,
    bounds: np.ndarray,
    periods_per_year: float,
    sink: PassSink,
    *,
    rules: CrossRules | None = None,
    on_progress: Callable[[int, int], None] | None = None,
    should_cancel: CancelCheck | None = None,
    executor: BatchExecutor | None = None,
) -> bool:
    """Every valid combination of the request's grid, each by the fastest path covering it (see
    the module's docstring), its batches run by `executor` (default: here) and handed to `sink`
    in plan order whatever order they finish in; returns whether the fused kernel ran them all.
    `rules`: the fused rules of the whole grid (`engine.cross_rules`), computed once by the
    caller (else each batch makes its own)."""
    job = PassJob(request, data, bounds, periods_per_year, rules)
    return run_job_into(
        job, sink, on_progress=on_progress, should_cancel=should_cancel, executor=executor
    )


def run_job_into(
    job: PassJob,
    sink: PassSink,
    *,
    on_progress: Callable[[int, int], None] | None = None,
    should_cancel: CancelCheck | None = None,
    executor: BatchExecutor | None = None,
) -> bool:
    """`run_pass_into` of a job made by the caller (a `PassJob`, or one of its own kind whose
    `run_batch` computes a batch its own way): the job's batches (`plan_batches`) run by
    `executor` and handed to `sink` in plan order."""
    executor = executor if executor is not None else LocalExecutor()
    request = job.request
    total = len(request.expansion)
    batches = plan_batches(request, job.data(), executor.parallelism)
    fused = [True]
    done = [0]
    waiting: dict[int, tuple[np.ndarray, np.ndarray, bool]] = {}
    next_index = [0]

    def on_result(index: int, result: tuple[np.ndarray, np.ndarray, bool]) -> None:
        waiting[index] = result
        while next_index[0] in waiting:
            i = next_index[0]
            stats, blocks, kernel = waiting.pop(i)
            members = np.asarray(batches[i].members, dtype=np.int64)
            sink(members, stats, blocks)
            fused[0] = fused[0] and kernel
            done[0] += members.shape[0]
            next_index[0] += 1
        if on_progress is not None:
            on_progress(done[0], total)

    executor.run(pass_batch, job, batches, on_result, should_cancel)
    return fused[0]


def run_pass(
    request: SweepRequest,
    data: SweepData,
    bounds: np.ndarray,
    periods_per_year: float,
    *,
    rules: CrossRules | None = None,
    on_progress: Callable[[int, int], None] | None = None,
    should_cancel: CancelCheck | None = None,
    executor: BatchExecutor | None = None,
) -> PassOutput:
    """`run_pass_into` with every statistics row and block sum kept, by combination index."""
    job = PassJob(request, data, bounds, periods_per_year, rules)
    return run_job(job, on_progress=on_progress, should_cancel=should_cancel, executor=executor)


def run_job(
    job: PassJob,
    *,
    on_progress: Callable[[int, int], None] | None = None,
    should_cancel: CancelCheck | None = None,
    executor: BatchExecutor | None = None,
) -> PassOutput:
    """`run_job_into` with every statistics row and block sum kept, by combination index."""
    total = len(job.request.expansion)
    stats = np.zeros((total, N_STATS))
    blocks = np.zeros((total, job.bounds.shape[0] - 1, BLOCK_FIELDS))

    def keep(members: np.ndarray, rows: np.ndarray, sums: np.ndarray) -> None:
        stats[members], blocks[members] = rows, sums

    fused = run_job_into(
        job, keep, on_progress=on_progress, should_cancel=should_cancel, executor=executor
    )
    return PassOutput(stats, blocks, fused)
