"""`run_walkforward`: the stages of a walk-forward (validate, load_data, features, windows,
walkforward, oos, validation): the grid re-fitted on each window's train part, the chosen
combinations stitched into one out-of-sample run, its metrics and validation."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from btlab.kernels.dtypes import Flag
from btlab.kernels.execution import ExecParams

from .. import data as data_mod
from ..data.portfolio import PortfolioDataset
from ..errors import ConfigError, RunCancelled
from ..executors import BatchExecutor, executor_from_env
from ..features import FeatureStore
from ..hashing import canonical_json
from ..kernel_inputs import sizing_features
from ..metrics import compute_metrics, metrics_from_stats, span_years
from ..pipeline import (
    CancelCheck,
    EventSink,
    ParamSegments,
    RunCache,
    RunResult,
    Stages,
    load_dataset,
    run_identity,
)
from ..run_result import outcome_warnings
from ..run_warnings import RunWarning, dataset_warnings, validation_warnings
from ..strategies import required_features
from ..sweep.engine import cross_rules
from ..sweep.grid import grid_warnings
from ..sweep.result import best_index
from ..validation import run_validation
from ..validation.run import bar_returns, fold_metrics, segment_metrics
from .passes import bar_slice, oos_inputs, oos_simulation, prefix_store, train_stats
from .request import WalkForwardRequest, parse_walkforward_request, walkforward_config_hash
from .result import WalkForwardResult, parameter_stability, walkforward_efficiency
from .windows import Window, resolve_windows

__all__ = ["PERMUTATION_SKIPPED", "run_walkforward"]

#: Why a walk-forward's validation has no permutation test.
PERMUTATION_SKIPPED = (
    "not run for a walk-forward: an honest test re-fits every window on each permuted path "
    "(the whole walk-forward once a permutation); PSR, DSR, bootstrap and folds are of the "
    "out-of-sample curve"
)

#: The in-sample metrics kept per window (besides the objective).
IS_METRICS = ("sharpe", "total_return", "cagr")


def _field_groups(request: WalkForwardRequest) -> list[int]:
    """The first combination of each distinct set of request fields, in grid order (0 alone
    where the grid has no request-field axis)."""
    e = request.expansion
    if not e.field_axes:
        return [0]
    first: dict[str, int] = {}
    for k, fields in enumerate(e.fields):
        first.setdefault(canonical_json(fields), k)
    return list(first.values())


def _warmup(store: FeatureStore, request: WalkForwardRequest) -> int:
    """Bars before every combination's features (and its sizing's) are known."""
    specs = {s.key(): s for p in request.expansion.params for s in required_features(
        request.strategy.name, p)}  # fmt: skip
    for k in _field_groups(request):
        specs |= {s.key(): s for s in sizing_features(request.combination_config(k))}
    warm = 0
    for spec in specs.values():
        known = np.isfinite(store.get(spec))
        warm = max(warm, int(np.argmax(known)) if known.any() else store.n)
    return warm


@dataclasses.dataclass
class _Choice:
    window: Window
    combo: int
    objective: float
    metrics: dict[str, Any]
    target: np.ndarray
    scale: np.ndarray
    params: ExecParams  # the engine's settings over the test part (the combination's fields)


def _refit(
    req: WalkForwardRequest,
    full: FeatureStore,
    windows: list[Window],
    ppy: float,
    on_progress: Callable[[int, int], None] | None,
    should_cancel: CancelCheck | None,
    executor: BatchExecutor,
) -> list[_Choice]:
    """Each window: the grid over its train part (its batches on `executor`), the best by the
    objective, and that combination's target, size scale and settings over its test part."""
    combos = req.expansion.params
    rules = cross_rules(req.strategy.name, combos)

    def store(b: int) -> FeatureStore:
        return prefix_store(full, b)

    choices = []
    for w in windows:
        if should_cancel is not None and should_cancel():
            raise RunCancelled("walk-forward cancelled")
        a, b = w.train_start, w.train_end
        stats = train_stats(req, store(b), a, ppy, rules, should_cancel, executor)
        years = span_years(full.data.ts[a:b])
        rows = [
            metrics_from_stats(
                row, n=b - a, years=years, periods_per_year=ppy,
                initial_cash=req.execution.initial_cash,
            )
            for row in stats
        ]  # fmt: skip
        values = np.array([r[req.objective] for r in rows], dtype=np.float64)
        best = best_index(values)
        target, scale, params = oos_inputs(req, store(w.test_end), w.test_start, best, ppy)
        choices.append(_Choice(w, best, float(values[best]), rows[best], target, scale, params))
        if on_progress is not None:
            on_progress(w.index + 1, len(windows))
    return choices


def _segments(choices: list[_Choice]) -> ParamSegments:
    """The out-of-sample run's settings: (first bar, settings) where a window's choice brings
    settings other than the window before's (one segment where the grid has no field axis)."""
    s0 = choices[0].window.test_start
    segments: list[tuple[int, ExecParams]] = []
    for c in choices:
        if not segments or segments[-1][1] != c.params:
            segments.append((c.window.test_start - s0, c.params))
    return segments


def _undefined_choices(choices: list[_Choice], objective: str) -> list[RunWarning]:
    """`walkforward_undefined_objective`: windows where no combination's objective was defined
    on the train part (never traded, no variance), so the first in grid order was chosen."""
    bad = [c.window.index for c in choices if not np.isfinite(c.objective)]
    if not bad:
        return []
    return [
        RunWarning(
            "walkforward_undefined_objective",
            f"in {len(bad)} of {len(choices)} windows (the first: window {bad[0]}) no "
            f"combination has a defined {objective} on the train part; the first combination "
            "in grid order trades the test part",
        )
    ]


def _windows_table(
    req: WalkForwardRequest, dataset: data_mod.Dataset, choices: list[_Choice], oos: RunResult
) -> pd.DataFrame:
    e = req.expansion
    s0 = choices[0].window.test_start

    def ts(bar: int) -> pd.Timestamp:
        return pd.Timestamp(int(dataset.ts[bar]), tz="UTC")

    rows = []
    for c in choices:
        w = c.window
        m = segment_metrics(oos, w.test_start - s0, w.test_end - s0)
        rows.append(
            {
                "window": w.index, "train_start": ts(w.train_start), "train_end": ts(w.train_end - 1),
                "test_start": ts(w.test_start), "test_end": ts(w.test_end - 1),
                "train_start_bar": w.train_start, "train_end_bar": w.train_end - 1,
                "test_start_bar": w.test_start, "test_end_bar": w.test_end - 1,
                "combo": c.combo,
                **dict(zip(e.axes, e.points[c.combo], strict=True)),
                "is_objective": c.objective,
                **{f"is_{k}": c.metrics[k] for k in IS_METRICS},
                **{f"oos_{k}": m[k] for k in IS_METRICS},
            }
        )  # fmt: skip
    table = pd.DataFrame.from_records(rows)
    for name, values in e.axes.items():
        # a column of None alone (every window chose no stop, say) takes its axis's type, as
        # sweep.parquet's columns do: NaN in a float column, not a column of objects
        axis_dtype = pd.Series(values).dtype
        is_object = pd.api.types.is_object_dtype
        if is_object(table[name].dtype) and not is_object(axis_dtype):
            table[name] = table[name].astype(axis_dtype)
    return table


def run_walkforward(
    request: WalkForwardRequest | Mapping[str, Any],
    *,
    data: pd.DataFrame | data_mod.Dataset | None = None,
    on_event: EventSink | None = None,
    should_cancel: CancelCheck | None = None,
    resolve_stored: Callable[[str], data_mod.Dataset] | None = None,
    resolve_portfolio: Callable[[str], PortfolioDataset] | None = None,
    cache: RunCache | None = None,
    executor: BatchExecutor | None = None,
) -> WalkForwardResult:
    """Walk forward over the request's windows; see the docstring of `btlab.walkforward`.

    Each window's train pass runs in batches on `executor` (default: the cluster that
    `BTLAB_CLUSTER` names, else this process; `btlab.executors`), with the same results
    wherever they run. Events as `run_sweep`: "stage" (validate, load_data, features, windows,
    walkforward, oos, validation) and "progress" ({"stage": "walkforward", "done", "total"} in
    windows). Raises ConfigError, DataError or RunCancelled.
    """
    executor = executor if executor is not None else executor_from_env()
    stages = Stages(on_event, should_cancel, kind="walk-forward")
    req: WalkForwardRequest = stages.run("validate", lambda: parse_walkforward_request(request))
    loaded = stages.run(
        "load_data",
        lambda: load_dataset(
            req, data, resolve_stored=resolve_stored, resolve_portfolio=resolve_portfolio,
            cache=cache,
        ),
    )  # fmt: skip
    if isinstance(loaded, PortfolioDataset):
        raise ConfigError(
            "invalid walk-forward request",
            [("data", "a walk-forward runs on one symbol's bars, not a portfolio")],
        )
    dataset = loaded
    identity = run_identity(req, dataset, explicit=data is not None)
    chash = walkforward_config_hash(req, identity)
    ppy = req.metrics.periods_per_year or dataset.meta.periods_per_year
    full = FeatureStore(dataset, cache=cache.features if cache is not None else None)
    warmup = stages.run("features", lambda: _warmup(full, req))
    windows = stages.run("windows", lambda: resolve_windows(req.walkforward, dataset.ts, warmup))
    choices = stages.run(
        "walkforward",
        lambda: _refit(
            req, full, windows, ppy, stages.progress("walkforward"), should_cancel, executor
        ),
    )
    s0, end = windows[0].test_start, windows[-1].test_end
    oos_data = bar_slice(dataset, s0, end)
    oos_data = dataclasses.replace(
        oos_data, meta=oos_data.meta.model_copy(update={"id": oos_data.hash})
    )
    target = np.concatenate([c.target for c in choices])
    scale = np.concatenate([c.scale for c in choices])
    segments = _segments(choices)
    cfg = req.run_config({})

    def simulate() -> RunResult:
        sim, trades = oos_simulation(oos_data, target, scale, segments, should_cancel=should_cancel)
        metrics = compute_metrics(
            oos_data.ts, oos_data.close, sim.equity, sim.units, sim.borrow, sim.fills, trades,
            initial_cash=cfg.execution.initial_cash, periods_per_year=ppy,
            ruined=bool(sim.flags & Flag.RUINED), halted=bool(sim.flags & Flag.HALTED_MAX_DRAWDOWN),
        )  # fmt: skip
        return RunResult(
            config=cfg, config_hash=chash, dataset=oos_data, target=target, units=sim.units,
            cash=sim.cash, equity_values=sim.equity, borrow=sim.borrow, fill_records=sim.fills,
            trade_records=trades, metrics=metrics, validation=None, flags=sim.flags,
            halt_bar=sim.halt_bar, identity=identity,
        )  # fmt: skip

    oos = stages.run("oos", simulate)
    n_valid = len(req.expansion.params)
    if req.validation.enabled:
        vcfg = req.validation.model_copy(update={"n_trials": n_valid})

        def validate() -> dict[str, Any]:
            out = run_validation(
                bar_returns(oos.equity_values), vcfg, root_seed=req.seed, periods_per_year=ppy,
                fold_metrics=fold_metrics(oos, vcfg.folds.k) if vcfg.folds.enabled else None,
            )  # fmt: skip
            out["walkforward"] = {
                "n_trials": n_valid,
                "n_windows": len(windows),
                "dsr_trials": "the valid combinations of the grid, re-fitted in each window",
                **({"permutation_skipped": PERMUTATION_SKIPPED}
                   if vcfg.permutation.enabled else {}),
            }  # fmt: skip
            return out

        oos.validation = stages.run("validation", validate)
    table = _windows_table(req, dataset, choices, oos)
    efficiency = walkforward_efficiency(oos.metrics["cagr"], [c.metrics["cagr"] for c in choices])
    e = req.expansion
    stability = parameter_stability(list(e.axes), [e.points[c.combo] for c in choices])
    tail = len(dataset) - end
    warnings = [
        *dataset_warnings(dataset), *grid_warnings(e),
        *([RunWarning("walkforward_tail", f"the {tail} bars after the last window's test part "
           f"(from {pd.Timestamp(int(dataset.ts[end]), tz='UTC'):%Y-%m-%d}) are in no window")]
          if tail else []),
        *_undefined_choices(choices, req.objective),
        *(RunWarning(w.code, f"out of sample: {w.message}") for w in outcome_warnings(oos)),
        *validation_warnings(oos.validation, oos.metrics),
    ]  # fmt: skip
    oos.warnings = warnings
    return WalkForwardResult(
        request=req, config_hash=chash, dataset=dataset, identity=identity, expansion=e,
        windows=windows, table=table, oos_run=oos, efficiency=efficiency, stability=stability,
        timings_ms=stages.timings, warnings=warnings,
    )  # fmt: skip
