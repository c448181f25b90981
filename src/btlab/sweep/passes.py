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

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from btlab.kernels.dtypes import Flag
from btlab.kernels.ledger import trades_from_fills
from btlab.kernels.metrics import BLOCK_FIELDS, N_STATS

from .. import data as data_mod
from ..config import RunConfig
from ..data.portfolio import PortfolioDataset
from ..errors import RunCancelled
from ..features import FeatureStore
from ..hashing import canonical_json
from ..kernel_inputs import rebalance_schedule
from ..metrics import path_statistics
from ..pipeline import CancelCheck, Simulation, exec_params, simulate_chunked, size_scale
from ..portfolio_features import PortfolioFeatureStore
from ..portfolio_run import simulate_portfolio
from ..strategies import compute_target
from ..timeframes import CALENDAR_REBALANCES
from .engine import CrossRules, PassOutput, cross_rules, sweep_pass
from .request import SweepRequest

__all__ = ["SweepData", "combination_stats", "run_pass", "simulate_single"]


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


def run_pass(
    request: SweepRequest,
    data: SweepData,
    bounds: np.ndarray,
    periods_per_year: float,
    *,
    rules: CrossRules | None = None,
    on_progress: Callable[[int, int], None] | None = None,
    should_cancel: CancelCheck | None = None,
) -> PassOutput:
    """Every valid combination of the request's grid, each by the fastest path covering it (see
    the module's docstring), in grid order. `rules`: the fused rules of the whole grid where
    every axis is a strategy parameter (`engine.cross_rules`), computed once by the caller."""
    e = request.expansion
    total = len(e.params)
    name = request.strategy.name
    groups: dict[str, list[int]] = {}
    for k, fields in enumerate(e.fields or [{}] * total):
        groups.setdefault(canonical_json(fields), []).append(k)
    stats = np.zeros((total, N_STATS))
    blocks = np.zeros((total, bounds.shape[0] - 1, BLOCK_FIELDS))
    done, fused = 0, True
    for members in groups.values():
        cfg = request.combination_config(members[0])
        if _kernel_covers(cfg, data):
            assert isinstance(data.dataset, data_mod.Dataset)
            assert isinstance(data.store, FeatureStore)
            params = [e.params[k] for k in members]
            whole = len(groups) == 1
            offset = done

            def progress(part: int, _total: int, offset: int = offset) -> None:
                if on_progress is not None:
                    on_progress(offset + part, total)

            out = sweep_pass(
                data.dataset, data.store, cfg, name, params, bounds, periods_per_year,
                on_progress=progress, should_cancel=should_cancel,
                rules=rules if whole and rules is not None else cross_rules(name, params),
            )  # fmt: skip
            stats[members], blocks[members] = out.stats, out.blocks
            fused = fused and out.fused
            done += len(members)
            continue
        fused = False
        for k in members:
            if should_cancel is not None and should_cancel():
                raise RunCancelled("sweep cancelled")
            stats[k], blocks[k] = combination_stats(
                request.combination_config(k), data, periods_per_year, bounds
            )
            done += 1
            if on_progress is not None:
                on_progress(done, total)
    return PassOutput(stats, blocks, fused)
