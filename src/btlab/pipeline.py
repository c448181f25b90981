"""The run pipeline: data -> features -> strategy -> simulate -> metrics -> validation.

`run()` is the one entry point used by Python research code, the CLI and the service. It
returns a `RunResult` holding the arrays; DataFrames are built on first access so the hot
path stays in NumPy.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeAlias

import numpy as np
import pandas as pd

from btlab.kernels.dtypes import Flag
from btlab.kernels.execution import ExecParams
from btlab.kernels.ledger import trades_from_fills
from btlab.kernels.portfolio import PortfolioBars

from . import data as data_mod
from . import sources
from .benchmark import run_benchmark, with_benchmark_hash
from .config import FileData, RunConfig, StoredData, StrategyConfig, parse_config
from .data.portfolio import PortfolioDataset, from_members
from .errors import ConfigError, NotFoundError
from .executors import BatchExecutor, executor_from_env
from .features import FeatureStore
from .hashing import canonical_json
from .identity import config_hash as config_hash
from .identity import data_identity as data_identity
from .identity import hashed_request as hashed_request
from .identity import run_identity as run_identity
from .kernel_inputs import exec_params as exec_params
from .kernel_inputs import read_features as read_features
from .kernel_inputs import rebalance_schedule
from .kernel_inputs import size_scale as size_scale
from .kernel_inputs import sizing_features as sizing_features
from .metrics import compute_metrics
from .portfolio.loaders import as_portfolio, load_portfolio, names_a_portfolio
from .portfolio_run import PortfolioResult as PortfolioResult
from .portfolio_run import run_portfolio
from .portfolio_strategies import is_portfolio_strategy
from .run_cache import CACHE_BYTES as CACHE_BYTES
from .run_cache import LRU as LRU
from .run_cache import RunCache as RunCache
from .run_result import DataIdentity as DataIdentity
from .run_result import RunResult as RunResult
from .run_result import outcome_warnings
from .run_warnings import dataset_warnings, validation_warnings, warmup_warnings
from .simulation import SIMULATION_CHUNK as SIMULATION_CHUNK
from .simulation import ParamSegments as ParamSegments
from .simulation import Simulation as Simulation
from .simulation import run_engine
from .stages import CancelCheck as CancelCheck
from .stages import EventSink as EventSink
from .stages import Stages as Stages
from .strategies import compute_target
from .targets import TARGETS_STRATEGY, TargetsInput, caller_targets, own_targets
from .validation.run import validate_result

#: Bars a caller may hand to `run`: one symbol's, or a portfolio's.
PortfolioInput: TypeAlias = (
    pd.DataFrame
    | data_mod.Dataset
    | PortfolioDataset
    | Mapping[str, pd.DataFrame | data_mod.Dataset]
)

#: Where a stored portfolio comes from, by id (`Store.load_portfolio`): NotFoundError where the
#: id names none (it may still name a stored dataset).
PortfolioResolver: TypeAlias = Callable[[str], PortfolioDataset]


def _stored_portfolio(
    config: RunConfig, resolve_portfolio: PortfolioResolver | None
) -> PortfolioDataset | None:
    """The stored portfolio a request's `data.id` names, or None (no resolver, another source,
    or an id that names no portfolio: then it is a stored dataset's, or unknown)."""
    if resolve_portfolio is None or not isinstance(config.data, StoredData):
        return None
    try:
        return resolve_portfolio(config.data.id)
    except NotFoundError:
        return None


def with_targets(config: RunConfig, targets: TargetsInput | None) -> RunConfig:
    """The request a run with `targets` handed in is: its strategy the reserved `targets`
    (ConfigError where the request names another strategy, or a data column as well)."""
    if targets is None:
        return config
    strategy = config.strategy
    if strategy.name == TARGETS_STRATEGY and strategy.params.get("column") is not None:
        raise ConfigError("invalid request", [("strategy.params.column", "the targets come "
                          "from run(targets=...) or from a data column, not both")])  # fmt: skip
    if "strategy" in config.model_fields_set and strategy.name != TARGETS_STRATEGY:
        raise ConfigError("invalid request", [("strategy", f"the request names strategy "
                          f"{strategy.name!r} and run() was handed targets: leave the strategy "
                          f"out (or name {TARGETS_STRATEGY!r})")])  # fmt: skip
    return config.model_copy(update={"strategy": StrategyConfig(name=TARGETS_STRATEGY)})


def _data_cache_key(config: RunConfig) -> str | None:
    spec = config.data
    if isinstance(spec, FileData):
        try:
            stat = Path(spec.path).stat()
        except OSError:
            return None  # let the loader report the missing file
        return canonical_json(
            {**spec.model_dump(mode="json"), "mtime_ns": stat.st_mtime_ns, "size": stat.st_size}
        )
    return canonical_json(spec.model_dump(mode="json"))


def load_dataset(
    config: RunConfig,
    data: PortfolioInput | None = None,
    *,
    resolve_stored: Callable[[str], data_mod.Dataset] | None = None,
    resolve_portfolio: PortfolioResolver | None = None,
    cache: RunCache | None = None,
) -> data_mod.Dataset | PortfolioDataset:
    """The run's bars: `data` when given (adjusted if the config asks), else the config's
    source; a PortfolioDataset where they are a portfolio's (`names_a_portfolio`, or a stored
    portfolio that `resolve_portfolio` knows by `data.id`) or the strategy is a portfolio
    strategy (one symbol then runs as a portfolio of one)."""
    stored = _stored_portfolio(config, resolve_portfolio) if data is None else None
    if stored is not None:
        # declared and adjusted as the request asks, by the one loader of a request's portfolio
        return load_portfolio(config.data, resolve_portfolio=lambda _id: stored)
    if names_a_portfolio(config.data, data) or is_portfolio_strategy(config.strategy.name):
        return load_portfolio_dataset(config, data, resolve_stored=resolve_stored)
    if data is not None:
        assert isinstance(data, pd.DataFrame | data_mod.Dataset)  # a portfolio's is above
        dataset = data if isinstance(data, data_mod.Dataset) else data_mod.from_dataframe(data)
        return data_mod.adjust(dataset) if config.data.adjust else dataset
    key = _data_cache_key(config) if cache is not None else None
    if cache is not None and key is not None and key in cache.datasets:
        return cache.datasets[key]
    dataset = sources.load(config.data, resolve_stored=resolve_stored)
    if cache is not None and key is not None:
        cache.datasets[key] = dataset
    return dataset


def resolve_config(
    config: RunConfig | Mapping[str, Any] | None,
    data: pd.DataFrame | data_mod.Dataset | None = None,
    *,
    resolve_stored: Callable[[str], data_mod.Dataset] | None = None,
    resolve_portfolio: PortfolioResolver | None = None,
    cache: RunCache | None = None,
    targets: TargetsInput | None = None,
) -> tuple[RunConfig, data_mod.Dataset | PortfolioDataset, str]:
    """(config, dataset, config hash) without running anything: what decides "the same run"
    (`targets`: the caller's, as `run` takes them)."""
    cfg = with_targets(parse_config(config), targets)
    dataset = load_dataset(
        cfg, data, resolve_stored=resolve_stored, resolve_portfolio=resolve_portfolio, cache=cache
    )
    handed = None if targets is None else caller_targets(targets, dataset)
    identity = run_identity(cfg, dataset, explicit=data is not None, targets=handed)
    return cfg, dataset, config_hash(cfg, identity)


def load_portfolio_dataset(
    config: RunConfig,
    data: PortfolioInput | None = None,
    *,
    resolve_stored: Callable[[str], data_mod.Dataset] | None = None,
) -> PortfolioDataset:
    """A portfolio run's bars: `data` when given (adjusted per symbol if the config asks), else
    the config's source (`portfolio.load_portfolio`)."""
    if data is not None:
        portfolio = as_portfolio(data)
        if config.data.adjust:
            portfolio = from_members({s: data_mod.adjust(m) for s, m in portfolio.members.items()})
        return portfolio
    return load_portfolio(config.data, resolve_stored=resolve_stored)


def simulate_chunked(
    dataset: data_mod.Dataset,
    target: np.ndarray,
    scale: np.ndarray,
    params: ExecParams | ParamSegments,
    *,
    schedule: np.ndarray | None = None,
    on_progress: Callable[[int, int], None] | None = None,
    should_cancel: CancelCheck | None = None,
) -> Simulation:
    """The engine over one symbol's bars (K = 1): `simulation.run_engine` on its arrays
    (`params`: the run's settings, or (first bar, settings) of each segment of it)."""
    bars = PortfolioBars(
        dataset.ts, dataset.open, dataset.high, dataset.low, dataset.close, dataset.volume
    )
    return run_engine(
        bars, target, scale, params, schedule=schedule, on_progress=on_progress,
        should_cancel=should_cancel,
    )  # fmt: skip


def run(
    config: RunConfig | Mapping[str, Any] | None = None,
    data: PortfolioInput | None = None,
    *,
    targets: TargetsInput | None = None,
    on_event: EventSink | None = None,
    should_cancel: CancelCheck | None = None,
    resolve_stored: Callable[[str], data_mod.Dataset] | None = None,
    resolve_portfolio: PortfolioResolver | None = None,
    cache: RunCache | None = None,
    executor: BatchExecutor | None = None,
    benchmark: pd.Series | None = None,
) -> RunResult | PortfolioResult:
    """Run one backtest. `config` is a RunConfig or a mapping (None: all defaults, the synthetic data).

    `data` replaces the config's data source: one symbol's DataFrame (ts/open/high/low/close/
    volume) or Dataset, or a portfolio (a long DataFrame with a symbol column, a mapping
    symbol -> DataFrame or Dataset, a PortfolioDataset). A portfolio (handed in or named by the
    request: several synthetic symbols, files, a folder, a long file, a stored portfolio's id
    that `resolve_portfolio` knows) or a portfolio strategy
    runs as `portfolio_run.run_portfolio` and returns a PortfolioResult. `benchmark`: levels
    (prices or an equity curve) indexed by timestamp with a value at every bar, to measure the
    run against instead of `metrics.benchmark` (`btlab.benchmark`; its content joins the config
    hash). The permutation test's paths run on `executor` (default: the cluster `BTLAB_CLUSTER`
    names, else this process; `btlab.executors`), with the same result wherever they run.
    Raises ConfigError, DataError or RunCancelled.

    `targets` replaces the strategy with the caller's own targets (`btlab.targets`): an array,
    Series or DataFrame (bars x symbols) of targets, or `btlab.signals(...)`, each taken as
    decided before its bar opens (not shifted); the run's strategy is then the reserved
    `targets` and the targets' content hash joins the config hash.
    """
    executor = executor if executor is not None else executor_from_env()
    stages = Stages(on_event, should_cancel)
    cfg = stages.run("validate", lambda: with_targets(parse_config(config), targets))
    loaded = stages.run(
        "load_data",
        lambda: load_dataset(
            cfg, data, resolve_stored=resolve_stored, resolve_portfolio=resolve_portfolio,
            cache=cache,
        ),
    )  # fmt: skip
    if isinstance(loaded, PortfolioDataset):
        return run_portfolio(
            cfg, loaded, explicit=data is not None, should_cancel=should_cancel, cache=cache,
            stages=stages, executor=executor, benchmark=benchmark, targets=targets,
        )  # fmt: skip
    dataset = loaded
    initial_cash = cfg.execution.initial_cash
    bench = run_benchmark(cfg.metrics.benchmark, dataset.close, dataset.ts, initial_cash, benchmark)
    n = len(dataset)
    ppy = cfg.metrics.periods_per_year or dataset.meta.periods_per_year
    feature_cache = cache.features if cache is not None else None
    store = FeatureStore(dataset, cache=feature_cache)

    own = cfg.strategy.name == TARGETS_STRATEGY
    read = read_features(cfg)

    def features() -> None:
        for spec in [*cfg.features, *read]:
            store.get(spec)

    stages.run("features", features)
    target = stages.run(
        "strategy",
        lambda: own_targets(cfg.strategy.params, dataset, targets) if own
        else compute_target(store, cfg.strategy.name, cfg.strategy.params, n),
    )  # fmt: skip
    handed = target if targets is not None else None
    identity = run_identity(cfg, dataset, explicit=data is not None, targets=handed)
    chash = with_benchmark_hash(
        config_hash(cfg, identity), bench if benchmark is not None else None
    )
    scale = size_scale(cfg, store, n, ppy)
    params = exec_params(cfg)
    sim = stages.run(
        "simulate",
        lambda: simulate_chunked(
            dataset,
            target,
            scale,
            params,
            schedule=rebalance_schedule(cfg, dataset.ts),
            on_progress=stages.progress("simulate"),
            should_cancel=should_cancel,
        ),
    )
    trades = trades_from_fills(sim.fills, n - 1, float(dataset.close[-1]), sim.borrow_total)
    metrics = stages.run(
        "metrics",
        lambda: compute_metrics(
            dataset.ts, dataset.close, sim.equity, sim.units, sim.borrow, sim.fills, trades,
            initial_cash=initial_cash, periods_per_year=ppy, ruined=bool(sim.flags & Flag.RUINED),
            halted=bool(sim.flags & Flag.HALTED_MAX_DRAWDOWN), benchmark=bench,
        ),
    )  # fmt: skip
    result = RunResult(
        config=cfg, config_hash=chash, dataset=dataset, target=target, units=sim.units, cash=sim.cash,
        equity_values=sim.equity, borrow=sim.borrow, fill_records=sim.fills, trade_records=trades,
        metrics=metrics, validation=None, flags=sim.flags, halt_bar=sim.halt_bar,
        identity=identity, benchmark_equity=bench,
    )  # fmt: skip
    if cfg.validation.enabled:
        result.validation = stages.run(
            "validation", lambda: validate_result(result, store, on_progress=stages.progress("validation"),
                                                  should_cancel=should_cancel, cache=cache,
                                                  executor=executor)
        )  # fmt: skip
    result.warnings = [
        *dataset_warnings(dataset), *warmup_warnings(store, read), *outcome_warnings(result),
        *validation_warnings(result.validation, result.metrics),
    ]  # fmt: skip
    result.timings_ms = stages.timings
    return result
