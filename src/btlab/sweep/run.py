"""`run_sweep`: the stages of a sweep (validate, load_data, features, sweep, best, validation)
and the validation of the best combination against the whole grid."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from btlab.kernels.dtypes import Flag

from .. import data as data_mod
from ..benchmark import run_benchmark
from ..config import FeatureSpec, RunConfig
from ..data.portfolio import PortfolioDataset, with_prices
from ..errors import RunCancelled
from ..executors import BatchExecutor, executor_from_env
from ..features import FeatureStore
from ..metrics import compute_metrics, span_years
from ..pipeline import (
    CancelCheck,
    DataIdentity,
    EventSink,
    PortfolioResult,
    RunCache,
    RunResult,
    Stages,
    config_hash,
    load_dataset,
    run_identity,
    sizing_features,
)
from ..portfolio_features import PortfolioFeatureStore
from ..portfolio_run import portfolio_metrics, portfolio_strategy, simulate_portfolio
from ..portfolio_strategies import required_portfolio_features
from ..run_result import outcome_warnings
from ..run_warnings import RunWarning, dataset_warnings, validation_warnings, warmup_warnings
from ..strategies import required_features
from ..validation import run_validation
from ..validation.run import bar_returns, fold_metrics
from .collect import BestObjective, SweepCollector, row_metrics, streamed_warnings
from .engine import CrossRules, cross_rules
from .grid import grid_warnings
from .passes import SweepData, run_pass_into, simulate_single
from .pbo import block_bounds, pbo_from_group_sums
from .request import SweepRequest, parse_sweep_request, sweep_config_hash
from .result import (
    SweepResult,
    best_index,
    combination_warnings,
    objective_heatmap,
)

__all__ = ["run_sweep"]


def _single_run(
    cfg: RunConfig,
    dataset: data_mod.Dataset,
    store: FeatureStore,
    periods_per_year: float,
    identity: DataIdentity,
) -> RunResult:
    """One combination the way `pipeline.run` computes it (validation left to the sweep)."""
    target, sim, trades = simulate_single(cfg, dataset, store, periods_per_year)
    cash = cfg.execution.initial_cash
    bench = run_benchmark(cfg.metrics.benchmark, dataset.close, dataset.ts, cash)
    metrics = compute_metrics(
        dataset.ts, dataset.close, sim.equity, sim.units, sim.borrow, sim.fills, trades,
        initial_cash=cash, periods_per_year=periods_per_year, ruined=bool(sim.flags & Flag.RUINED),
        halted=bool(sim.flags & Flag.HALTED_MAX_DRAWDOWN), benchmark=bench,
    )  # fmt: skip
    return RunResult(
        config=cfg, config_hash=config_hash(cfg, identity), dataset=dataset, target=target,
        units=sim.units, cash=sim.cash, equity_values=sim.equity, borrow=sim.borrow,
        fill_records=sim.fills, trade_records=trades, metrics=metrics, validation=None,
        flags=sim.flags, halt_bar=sim.halt_bar, identity=identity, benchmark_equity=bench,
    )  # fmt: skip


def _portfolio_run(
    cfg: RunConfig,
    dataset: PortfolioDataset,
    store: PortfolioFeatureStore,
    periods_per_year: float,
    identity: DataIdentity,
) -> PortfolioResult:
    """One portfolio combination the way `run_portfolio` computes it (validation left out)."""
    bench = run_benchmark(
        cfg.metrics.benchmark, dataset.close, dataset.ts, cfg.execution.initial_cash
    )
    result = simulate_portfolio(
        cfg, dataset, store, periods_per_year, identity=identity,
        chash=config_hash(cfg, identity), benchmark_equity=bench,
    )  # fmt: skip
    result.metrics = portfolio_metrics(result, periods_per_year)
    return result


def _best_run(
    cfg: RunConfig, data: SweepData, periods_per_year: float, identity: DataIdentity
) -> RunResult | PortfolioResult:
    if isinstance(data.dataset, PortfolioDataset):
        assert isinstance(data.store, PortfolioFeatureStore)
        return _portfolio_run(cfg, data.dataset, data.store, periods_per_year, identity)
    assert isinstance(data.store, FeatureStore)
    return _single_run(cfg, data.dataset, data.store, periods_per_year, identity)


def _permuted(
    data: SweepData, o: np.ndarray, h: np.ndarray, lo: np.ndarray, c: np.ndarray
) -> SweepData:
    """The sweep's bars with permuted prices and a fresh feature store over them."""
    if isinstance(data.dataset, PortfolioDataset):
        portfolio = with_prices(data.dataset, o, h, lo, c)
        return SweepData(portfolio, PortfolioFeatureStore(portfolio))
    single = dataclasses.replace(data.dataset, open=o, high=h, low=lo, close=c, adj_close=None)
    return SweepData(single, FeatureStore(single))


def _required_features(name: str, params: dict[str, Any], portfolio: bool) -> list[FeatureSpec]:
    if portfolio:
        return required_portfolio_features(*portfolio_strategy(name, params))
    return required_features(name, params)


def _validate(
    request: SweepRequest,
    best_run: RunResult | PortfolioResult,
    trial_sharpes: np.ndarray,
    group_sum: np.ndarray,
    group_sq: np.ndarray,
    bounds: np.ndarray,
    best_value: float,
    statistic: Callable[[np.ndarray, np.ndarray, np.ndarray, np.ndarray], float],
    periods_per_year: float,
    on_progress: Callable[[int, int], None] | None,
    should_cancel: CancelCheck | None,
) -> dict[str, Any]:
    n_valid = len(request.expansion.params)
    cfg = request.validation.model_copy(update={"n_trials": n_valid})

    def progress(done: int, total: int) -> None:
        if should_cancel is not None and should_cancel():
            raise RunCancelled("sweep cancelled during validation")
        if on_progress is not None:
            on_progress(done, total)

    ds = best_run.dataset
    finite = trial_sharpes[np.isfinite(trial_sharpes)]
    out = run_validation(
        bar_returns(best_run.equity_values), cfg, root_seed=request.seed,
        periods_per_year=periods_per_year,
        permutation_statistic=statistic if cfg.permutation.enabled else None,
        ohlc=(ds.open, ds.high, ds.low, ds.close), real_statistic=best_value,
        fold_metrics=fold_metrics(best_run, cfg.folds.k) if cfg.folds.enabled else None,  # type: ignore[arg-type]
        trial_sharpes=finite if finite.size > 1 else None, on_progress=progress,
        permutation_workers=1,  # each permuted sweep is itself parallel over the combinations
    )  # fmt: skip
    if not cfg.enabled:
        return out
    out["sweep"] = {
        "n_trials": n_valid,
        "objective": request.objective,
        "best_objective": best_value,
        "permutation_statistic": f"best {request.objective} over the grid",
    }
    splits = request.pbo_splits
    if n_valid >= 2 and bounds[-1] >= 2 * splits:
        out["pbo"] = pbo_from_group_sums(group_sum, group_sq, bounds, periods_per_year)
    else:
        out["pbo"] = None
        out["sweep"]["pbo_skipped"] = (
            "needs at least 2 valid combinations"
            if n_valid < 2
            else f"needs at least {2 * splits} bars of returns for {splits} splits"
        )
    return out


def run_sweep(
    request: SweepRequest | Mapping[str, Any],
    *,
    data: pd.DataFrame | data_mod.Dataset | PortfolioDataset | None = None,
    on_event: EventSink | None = None,
    should_cancel: CancelCheck | None = None,
    resolve_stored: Callable[[str], data_mod.Dataset] | None = None,
    resolve_portfolio: Callable[[str], PortfolioDataset] | None = None,
    cache: RunCache | None = None,
    executor: BatchExecutor | None = None,
) -> SweepResult:
    """Run every valid combination of the request's grid; see the docstring of `btlab.sweep`.

    Events as `pipeline.run`: "stage" (validate, load_data, features, sweep, best, validation)
    and "progress" ({"stage": "sweep", "done", "total"} in combinations; in permutations for
    "validation"). The combinations run in batches on `executor` (default: the cluster that
    `BTLAB_CLUSTER` names, else this process; `btlab.executors`), with the same results
    wherever they run. Raises ConfigError, DataError or RunCancelled.
    """
    executor = executor if executor is not None else executor_from_env()
    stages = Stages(on_event, should_cancel, kind="sweep")
    req: SweepRequest = stages.run("validate", lambda: parse_sweep_request(request))
    expansion = req.expansion
    dataset = stages.run(
        "load_data",
        lambda: load_dataset(
            req, data, resolve_stored=resolve_stored, resolve_portfolio=resolve_portfolio,
            cache=cache,
        ),
    )  # fmt: skip
    identity = run_identity(req, dataset, explicit=data is not None)
    chash = sweep_config_hash(req, identity)
    portfolio = isinstance(dataset, PortfolioDataset)
    n = dataset.close.shape[0]
    ppy = req.metrics.periods_per_year or dataset.meta.periods_per_year
    feature_cache = cache.features if cache is not None else None
    store = (
        PortfolioFeatureStore(dataset, cache=feature_cache)
        if isinstance(dataset, PortfolioDataset)
        else FeatureStore(dataset, cache=feature_cache)
    )
    sweep_data = SweepData(dataset, store)
    name = req.strategy.name
    combos = expansion.params
    years = span_years(dataset.ts)
    bounds = block_bounds(max(n - 1, 0), req.pbo_splits)
    metrics = row_metrics(req, n, years, ppy)
    collector = SweepCollector(req, bounds.shape[0] - 1, metrics)
    rules: CrossRules | None = None
    if collector.streamed:
        # millions of combinations: features are computed batch by batch as the pass needs
        # them (the store keeps each distinct one), the fused rules made by each batch
        stages.run("features", lambda: None)
    else:
        # each combination's parameters validated and its features keyed once, for every use
        rules = None if portfolio else cross_rules(name, combos)
        if rules is not None:  # a cross reads its two features: the distinct ones, in order
            distinct = dict(rules.a + rules.b)
            specs = [list(distinct.values())]
        else:
            specs = [_required_features(name, p, portfolio) for p in combos]
        stages.run("features", lambda: [store.get(s) for combo in specs for s in combo])
    fused = stages.run(
        "sweep",
        lambda: run_pass_into(
            req, sweep_data, bounds, ppy, collector, rules=rules,
            on_progress=stages.progress("sweep"), should_cancel=should_cancel, executor=executor,
        ),
    )  # fmt: skip
    objective = collector.objective
    best = best_index(objective)
    best_run = stages.run(
        "best", lambda: _best_run(req.combination_config(best), sweep_data, ppy, identity)
    )
    validation = None
    if req.validation.enabled:

        def statistic(o: np.ndarray, h: np.ndarray, lo: np.ndarray, c: np.ndarray) -> float:
            permuted = _permuted(sweep_data, o, h, lo, c)
            best_of = BestObjective(metrics, req.objective)
            run_pass_into(req, permuted, bounds, ppy, best_of, rules=rules, executor=executor)
            return best_of.value

        validation = stages.run(
            "validation",
            lambda: _validate(
                req, best_run, collector.trial_sharpes, collector.block_sum, collector.block_sq,
                bounds,
                float(objective[best]), statistic, ppy, stages.progress("validation"),
                should_cancel,
            ),
        )  # fmt: skip
    table = collector.table()
    kept = table["combo"].tolist()
    if collector.streamed:  # the features of the kept and the first combination
        specs = [_required_features(name, combos[k], portfolio) for k in sorted({0, *kept})]
    sizing = sizing_features(req)  # with the strategy's features: `read_features` of each
    best_text = ", ".join(
        f"{k}={json.dumps(v)}" for k, v in zip(expansion.axes, expansion.points[best], strict=True)
    )
    warnings = [
        *dataset_warnings(dataset), *grid_warnings(expansion),  # type: ignore[arg-type]
        *warmup_warnings(store, [s for combo in specs for s in [*combo, *sizing]]),  # type: ignore[arg-type]
        *combination_warnings(collector.ruined, collector.idle, len(expansion)),
        *(RunWarning(w.code, f"best combination ({best_text}): {w.message}")
          for w in outcome_warnings(best_run)),
        *validation_warnings(validation, best_run.metrics),
        *streamed_warnings(collector),
    ]  # fmt: skip
    return SweepResult(
        request=req,
        config_hash=chash,
        dataset=dataset,
        identity=identity,
        expansion=expansion,
        table=table,
        best={
            "combo": best,
            "params": combos[best],
            "metrics": best_run.metrics,
            **({"fields": expansion.fields[best]} if expansion.field_axes else {}),
        },
        best_run=best_run,
        heatmap_json=objective_heatmap(expansion, req.objective, objective, best),
        validation=validation,
        fused=fused,
        timings_ms=stages.timings,
        warnings=warnings,
        rows_file=collector.take_file(),
    )
