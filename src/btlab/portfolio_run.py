"""A portfolio run (SPEC §8): K symbols traded from one cash account through the one engine.

`run_portfolio` is `pipeline.run` for a `PortfolioDataset`: the same stages (features on each
symbol's own bars shifted onto the union clock, the strategy's (n, K) target, the engine, the
metrics of the one account, validation), the same config hash (over the portfolio's identity),
the same metrics path (`metrics.compute_metrics` on the account's equity, its gross exposure as
the exposure). A registered single-symbol strategy runs as `per_symbol` (each symbol weighted
1/K). `PortfolioResult` holds the arrays and builds the artifact tables: `equity` (one row per
clock bar: cash, equity, gross and net exposure), `fills` and `trades` with a `symbol` column,
`positions` (units and weight per bar and symbol) and `symbols` (per-symbol P&L, costs and
turnover).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd

from btlab.kernels.dtypes import REASON_NAMES, Flag
from btlab.kernels.ledger import trades_by_symbol
from btlab.kernels.metrics import return_moments_nb
from btlab.kernels.pairwise import pairwise_stack
from btlab.kernels.portfolio import PortfolioBars

from .benchmark import run_benchmark, with_benchmark_hash
from .config import RunConfig
from .data.portfolio import PortfolioDataset, with_prices
from .errors import RunCancelled
from .executors import BatchExecutor
from .identity import config_hash, run_identity
from .kernel_inputs import exec_params, rebalance_schedule, size_scale
from .metrics import annualized_ratio, compute_metrics, drawdown_path
from .portfolio_features import PortfolioFeatureStore
from .portfolio_strategies import (
    compute_portfolio_target,
    is_portfolio_strategy,
    required_portfolio_features,
)
from .result_display import result_html, result_repr, result_title
from .result_plot import plot_portfolio
from .result_stats import result_stats
from .run_cache import RunCache
from .run_result import DataIdentity, outcome_warnings, returns_series
from .run_warnings import RunWarning, skipped_warnings
from .simulation import Simulation, run_engine
from .stages import CancelCheck, EventSink, Stages
from .targets import TARGETS_STRATEGY, TargetsInput, own_targets
from .validation.assemble import run_validation
from .validation.permutation import Statistic
from .validation.run import bar_returns, fold_metrics, with_skips

__all__ = ["PortfolioResult", "portfolio_strategy", "run_portfolio"]

#: Artifact tables of a portfolio run, in the manifest's order.
PORTFOLIO_TABLES = ("equity", "fills", "trades", "positions", "symbols")


def portfolio_strategy(name: str, params: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """The portfolio strategy a request's strategy runs as: itself where it is a portfolio
    strategy, else `per_symbol` over the single-symbol strategy (each symbol weighted 1/K)."""
    if is_portfolio_strategy(name):
        return name, dict(params)
    return "per_symbol", {"strategy": name, "params": dict(params)}


def _marks(close: np.ndarray) -> np.ndarray:
    """Each symbol's last close at every clock bar (NaN before its first bar)."""
    frame = pd.DataFrame(close)
    marks: np.ndarray = frame.ffill().to_numpy()
    return marks


@dataclass(eq=False)
class PortfolioResult:
    """Everything one portfolio run produced. Arrays are the source of truth; frames are views."""

    config: RunConfig
    config_hash: str
    dataset: PortfolioDataset
    target: np.ndarray  # (n, K)
    units: np.ndarray  # (n, K)
    cash: np.ndarray
    equity_values: np.ndarray
    borrow: np.ndarray  # (n, K)
    marks: np.ndarray  # (n, K): each symbol's last close
    fill_records: np.ndarray
    trade_records: np.ndarray
    metrics: dict[str, Any]
    validation: dict[str, Any] | None
    flags: int
    halt_bar: int
    timings_ms: dict[str, float] = field(default_factory=dict)
    warnings: list[RunWarning] = field(default_factory=list)
    identity: DataIdentity | None = None
    #: The benchmark's equity per clock bar (`btlab.benchmark`), None where it is off.
    benchmark_equity: np.ndarray | None = None

    kind = "portfolio"
    tables = PORTFOLIO_TABLES

    @property
    def symbols(self) -> tuple[str, ...]:
        return self.dataset.symbols

    @property
    def ruined(self) -> bool:
        return bool(self.flags & Flag.RUINED)

    @property
    def halted(self) -> bool:
        return bool(self.flags & Flag.HALTED_MAX_DRAWDOWN)

    def __repr__(self) -> str:
        return result_repr(self)

    def _repr_html_(self) -> str:
        return result_html(self)

    def stats(self) -> pd.Series:
        """The account's statistics, as `RunResult.stats`."""
        return result_stats(self)

    def plot(self) -> Any:
        """An interactive Plotly figure: equity, drawdown, each symbol's weight."""
        return plot_portfolio(self, result_title(self))

    @cached_property
    def position_values(self) -> np.ndarray:
        """(n, K) units * mark: each position's marked value (0 where flat)."""
        values: np.ndarray = np.where(self.units != 0.0, self.units * self.marks, 0.0)
        return values

    @cached_property
    def gross_value(self) -> np.ndarray:
        """Σ |units * mark| per clock bar: the gross exposure in money."""
        gross: np.ndarray = np.abs(self.position_values).sum(axis=1)
        return gross

    def exposure_arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """(price, units) whose |product| / equity is the account's gross leverage per bar,
        the form the statistics kernels read a single symbol's exposure in."""
        return np.ones(self.gross_value.shape[0]), self.gross_value

    def _ts(self, bars: np.ndarray) -> pd.DatetimeIndex:
        return pd.DatetimeIndex(self.dataset.ts[bars].astype("datetime64[ns]"), tz="UTC")

    @property
    def returns(self) -> pd.Series:
        """The account's per-bar simple returns, quantstats-ready (`run_result.returns_series`)."""
        return returns_series(self.dataset.ts, self.equity_values)

    def _symbol_names(self, columns: np.ndarray) -> np.ndarray:
        names: np.ndarray = np.array(self.symbols, dtype=object)[columns]
        return names

    @cached_property
    def equity(self) -> pd.DataFrame:
        """Per clock bar: ts, cash, equity, gross and net exposure (fractions of equity),
        drawdown, borrow (all symbols), and the benchmark's equity (`benchmark`) where it is on."""
        eq = self.equity_values
        with np.errstate(divide="ignore", invalid="ignore"):
            gross = self.gross_value / eq
            net = self.position_values.sum(axis=1) / eq
        frame = pd.DataFrame(
            {
                "ts": self._ts(np.arange(eq.shape[0])), "cash": self.cash, "equity": eq,
                "gross_exposure": gross, "net_exposure": net, "drawdown": drawdown_path(eq),
                "borrow": self.borrow.sum(axis=1),
            }
        )  # fmt: skip
        if self.benchmark_equity is not None:
            frame["benchmark"] = self.benchmark_equity
        return frame

    @cached_property
    def fills(self) -> pd.DataFrame:
        """Per fill: ts, bar, symbol, side, units, prices, cost parts, reason, position after."""
        f = self.fill_records
        return pd.DataFrame(
            {
                "ts": self._ts(f["bar"]), "bar": f["bar"], "symbol": self._symbol_names(f["symbol"]),
                "side": np.where(f["units"] > 0, "buy", "sell"), "units": np.abs(f["units"]),
                "price": f["price"], "fill_price": f["fill_price"],
                "spread_cost": f["spread_cost"], "slippage_cost": f["slippage_cost"],
                "commission": f["commission"],
                "reason": np.array(REASON_NAMES, dtype=object)[f["reason"]]
                if f.size else np.array([], dtype=object),
                "position_after": f["position_after"],
            }
        )  # fmt: skip

    @cached_property
    def trades(self) -> pd.DataFrame:
        """Per round trip in one symbol: entry/exit ts, symbol, side, units, prices, P&L, costs."""
        t = self.trade_records
        reasons = np.array([*REASON_NAMES, "open"], dtype=object)
        return pd.DataFrame(
            {
                "entry_ts": self._ts(t["entry_bar"]), "exit_ts": self._ts(t["exit_bar"]),
                "symbol": self._symbol_names(t["symbol"]),
                "side": np.where(t["side"] > 0, "long", "short"), "units": t["units"],
                "entry_price": t["entry_price"], "exit_price": t["exit_price"],
                "gross_pnl": t["gross_pnl"], "costs": t["costs"], "borrow": t["borrow"],
                "net_pnl": t["net_pnl"], "return": t["return_"], "bars_held": t["bars_held"],
                "exit_reason": reasons[t["exit_reason"]] if t.size else np.array([], dtype=object),
            }
        )  # fmt: skip

    @cached_property
    def positions(self) -> pd.DataFrame:
        """Per clock bar and symbol (long form): ts, symbol, units, weight (value / equity)."""
        n, k = self.units.shape
        with np.errstate(divide="ignore", invalid="ignore"):
            weight = self.position_values / self.equity_values[:, None]
        return pd.DataFrame(
            {
                "ts": np.repeat(self._ts(np.arange(n)), k),
                "symbol": np.tile(np.array(self.symbols, dtype=object), n),
                "units": self.units.ravel(), "weight": weight.ravel(),
            }
        )  # fmt: skip

    @cached_property
    def symbols_table(self) -> pd.DataFrame:
        """Per symbol: net P&L (after costs and borrow), costs, borrow, traded notional,
        turnover (traded notional / mean equity), fills and closed trades."""
        f, t = self.fill_records, self.trade_records
        k = len(self.symbols)
        flows = -(f["units"] * f["fill_price"] + f["commission"])
        cash_flow = np.bincount(f["symbol"], weights=flows, minlength=k)
        costs = np.bincount(
            f["symbol"], weights=f["spread_cost"] + f["slippage_cost"] + f["commission"], minlength=k
        )  # fmt: skip
        traded = np.bincount(f["symbol"], weights=np.abs(f["units"]) * f["price"], minlength=k)
        borrow = self.borrow.sum(axis=0)
        final_value = self.position_values[-1]
        mean_equity = float(np.mean(self.equity_values))
        closed = ~t["is_open"]
        return pd.DataFrame(
            {
                "symbol": list(self.symbols), "net_pnl": cash_flow - borrow + final_value,
                "costs": costs + borrow, "borrow": borrow, "traded": traded,
                "turnover": traded / mean_equity if mean_equity > 0 else np.full(k, math.nan),
                "fills": np.bincount(f["symbol"], minlength=k),
                "trades": np.bincount(t["symbol"][closed], minlength=k),
            }
        )  # fmt: skip

    def table(self, name: str) -> pd.DataFrame:
        """The artifact table `name` (one of PORTFOLIO_TABLES)."""
        if name == "symbols":
            return self.symbols_table
        frame: pd.DataFrame = getattr(self, name)
        return frame


def _trades(sim: Simulation, marks: np.ndarray) -> np.ndarray:
    """Every symbol's round trips (its fills through the one ledger kernel, all symbols in one
    call), by entry bar then symbol; an open trade is marked at the symbol's last close on the
    last clock bar."""
    n, k = marks.shape
    trades = trades_by_symbol(sim.fills, k, n - 1, marks[-1], sim.borrow.sum(axis=0))
    order = np.lexsort((trades["symbol"], trades["entry_bar"]))
    out: np.ndarray = trades[order]
    return out


def permutation_statistic(result: PortfolioResult) -> Statistic:
    """The run's Sharpe re-computed on (n, K) price paths: the portfolio pipeline re-run.

    Each path becomes a `PortfolioDataset` on the run's clock (`data.portfolio.with_prices`:
    timestamps, volume and each symbol's bars kept), then a fresh `PortfolioFeatureStore`, the
    portfolio strategy, the size scale and the engine (`simulation.run_engine`) run as in
    `run_portfolio`, and the Sharpe is taken as the run's `metrics["sharpe"]`
    (`return_moments_nb` over the equity path, then `metrics.annualized_ratio`), so the real
    paths give that value bit for bit. Thread-safe: every path has its own store and buffers.
    """
    cfg, data = result.config, result.dataset
    n, k = data.close.shape
    name, params = portfolio_strategy(cfg.strategy.name, cfg.strategy.params)
    params_exec = exec_params(cfg)
    ppy = float(result.metrics["periods_per_year"])
    root_ppy = math.sqrt(ppy)
    # a calendar rebalance keeps its dates: the permutation reorders moves, not timestamps
    schedule = rebalance_schedule(cfg, data.ts)

    def statistic(open_: np.ndarray, high: np.ndarray, low: np.ndarray, close: np.ndarray) -> float:
        permuted = with_prices(data, open_, high, low, close)
        store = PortfolioFeatureStore(permuted)
        target = compute_portfolio_target(store, name, params)
        scale = size_scale(cfg, store, (n, k), ppy)
        bars = PortfolioBars(
            data.ts, permuted.open, permuted.high, permuted.low, permuted.close, data.volume
        )
        sim = run_engine(bars, np.ascontiguousarray(target), scale, params_exec, schedule=schedule)
        _count, mean, std, _downside = return_moments_nb(sim.equity, np.empty(n), pairwise_stack())
        return annualized_ratio(float(mean), float(std), root_ppy)

    return statistic


@dataclass
class PortfolioPermutations:
    """The recipe of a portfolio's permutation statistic for a cluster's workers
    (`validation.permutation.PathStatistics`): its request, bars and periods per year travel."""

    result: PortfolioResult

    def __getstate__(self) -> dict[str, Any]:
        r = self.result
        none, flat = np.zeros((0, 0)), np.zeros(0)
        slim = PortfolioResult(
            config=r.config, config_hash=r.config_hash, dataset=r.dataset, target=none,
            units=none, cash=flat, equity_values=flat, borrow=none, marks=none,
            fill_records=r.fill_records[:0], trade_records=r.trade_records[:0],
            metrics={"periods_per_year": r.metrics["periods_per_year"]}, validation=None,
            flags=r.flags, halt_bar=r.halt_bar,
        )  # fmt: skip
        return {"result": slim}

    def statistic(self) -> Statistic:
        return permutation_statistic(self.result)

    def batch(self) -> None:
        return None  # no fused kernel over a portfolio's paths


def _validate(
    result: PortfolioResult,
    stages: Stages,
    should_cancel: CancelCheck | None,
    executor: BatchExecutor | None = None,
) -> dict[str, Any]:
    """PSR, DSR, bootstrap and folds on the portfolio's per-bar returns, and the joint
    permutation test of every symbol's paths (SPEC §8 "Validation")."""
    cfg = result.config.validation
    ppy = float(result.metrics["periods_per_year"])
    folds = fold_metrics(result, cfg.folds.k) if cfg.folds.enabled else None  # type: ignore[arg-type]
    sink = stages.progress("validation")

    def progress(done: int, total: int) -> None:
        if should_cancel is not None and should_cancel():
            raise RunCancelled("run cancelled during validation")
        if sink is not None:
            sink(done, total)

    ds = result.dataset
    permute = cfg.permutation.enabled and result.config.strategy.name != TARGETS_STRATEGY
    out = run_validation(
        bar_returns(result.equity_values), cfg, root_seed=result.config.seed, periods_per_year=ppy,
        permutation_statistic=permutation_statistic(result) if permute else None,
        ohlc=(ds.open, ds.high, ds.low, ds.close), real_statistic=result.metrics["sharpe"],
        fold_metrics=folds, on_progress=progress, executor=executor,
        permutation_recipe=PortfolioPermutations(result) if permute else None,
    )  # fmt: skip
    return with_skips(out, result.config)


def run_portfolio(
    cfg: RunConfig,
    dataset: PortfolioDataset,
    *,
    explicit: bool,
    on_event: EventSink | None = None,
    should_cancel: CancelCheck | None = None,
    cache: RunCache | None = None,
    stages: Stages | None = None,
    executor: BatchExecutor | None = None,
    benchmark: pd.Series | None = None,
    targets: TargetsInput | None = None,
) -> PortfolioResult:
    """Run one portfolio backtest of `cfg` on `dataset` (already loaded: `explicit` where the
    caller handed the bars in rather than the request naming them); `benchmark` as
    `pipeline.run`'s; `targets` the caller's own, bars x symbols, for the reserved strategy
    `targets`."""
    stages = stages or Stages(on_event, should_cancel)
    cash = cfg.execution.initial_cash
    bench = run_benchmark(cfg.metrics.benchmark, dataset.close, dataset.ts, cash, benchmark)
    ppy = cfg.metrics.periods_per_year or dataset.meta.periods_per_year
    store = PortfolioFeatureStore(dataset, cache=cache.features if cache is not None else None)
    own = cfg.strategy.name == TARGETS_STRATEGY
    name, params = portfolio_strategy(cfg.strategy.name, cfg.strategy.params)

    def features() -> None:
        read = [] if own else required_portfolio_features(name, params)
        for spec in [*cfg.features, *read]:
            store.get(spec)

    stages.run("features", features)
    target = stages.run(
        "strategy",
        lambda: own_targets(cfg.strategy.params, dataset, targets) if own
        else compute_portfolio_target(store, name, params),
    )  # fmt: skip
    handed = target if targets is not None else None
    identity = run_identity(cfg, dataset, explicit=explicit, targets=handed)
    chash = with_benchmark_hash(
        config_hash(cfg, identity), bench if benchmark is not None else None
    )
    result = stages.run(
        "simulate",
        lambda: simulate_portfolio(
            cfg, dataset, store, ppy, target=target, identity=identity, chash=chash,
            benchmark_equity=bench, on_progress=stages.progress("simulate"),
            should_cancel=should_cancel,
        ),
    )  # fmt: skip
    result.metrics = stages.run("metrics", lambda: portfolio_metrics(result, ppy))
    if cfg.validation.enabled:
        result.validation = stages.run(
            "validation", lambda: _validate(result, stages, should_cancel, executor)
        )
    result.warnings = _warnings(result)
    result.timings_ms = stages.timings
    return result


#: Below this share of movable bars the joint permutation test is flagged as weak.
PERMUTATION_WEAK_SHARE = 0.5


def _warnings(result: PortfolioResult) -> list[RunWarning]:
    """What makes a portfolio result degenerate: the data's own warnings, what the run's
    numbers say (`run_result.outcome_warnings`, as for one symbol), and a joint permutation
    that can move too few bars (missing bars pin the rows they are in) to mean much."""
    out = [RunWarning("data", w) for w in result.dataset.meta.warnings]
    out.extend(outcome_warnings(result))
    out.extend(skipped_warnings(result.validation))
    section = (result.validation or {}).get("permutation")
    if section is not None:
        movable, bars = section["bars_permutable"], section["bars_after_first"]
        if movable < PERMUTATION_WEAK_SHARE * bars:
            out.append(
                RunWarning(
                    "permutation_weak",
                    f"the joint permutation can move only {movable:,} of {bars:,} bars: a bar "
                    "whose pattern of moves (which symbols have a bar there, which come back "
                    "from a missing bar) no other bar shares stays in place, so the permuted "
                    "paths are close to the real one and the p-value says little",
                )
            )
    return out


def simulate_portfolio(
    cfg: RunConfig,
    dataset: PortfolioDataset,
    store: PortfolioFeatureStore,
    periods_per_year: float,
    *,
    target: np.ndarray | None = None,
    identity: DataIdentity | None = None,
    chash: str = "",
    benchmark_equity: np.ndarray | None = None,
    on_progress: Callable[[int, int], None] | None = None,
    should_cancel: CancelCheck | None = None,
) -> PortfolioResult:
    """The portfolio through the engine (the strategy's target unless `target` is given, the
    size scale, the rebalance schedule, the trades), metrics and validation left to the caller
    (`portfolio_metrics`): `run_portfolio`'s simulate stage, and what a sweep runs for each
    combination of a portfolio grid."""
    n, k = dataset.close.shape
    if target is None:
        target = compute_portfolio_target(
            store, *portfolio_strategy(cfg.strategy.name, cfg.strategy.params)
        )
    scale = size_scale(cfg, store, (n, k), periods_per_year)
    bars = PortfolioBars(
        dataset.ts, dataset.open, dataset.high, dataset.low, dataset.close, dataset.volume
    )
    sim = run_engine(
        bars, np.ascontiguousarray(target), scale, exec_params(cfg),
        schedule=rebalance_schedule(cfg, dataset.ts), on_progress=on_progress,
        should_cancel=should_cancel,
    )  # fmt: skip
    marks = _marks(dataset.close)
    return PortfolioResult(
        config=cfg, config_hash=chash, dataset=dataset, target=target, units=sim.units,
        cash=sim.cash, equity_values=sim.equity, borrow=sim.borrow, marks=marks,
        fill_records=sim.fills, trade_records=_trades(sim, marks), metrics={}, validation=None,
        flags=sim.flags, halt_bar=sim.halt_bar, identity=identity,
        benchmark_equity=benchmark_equity,
    )  # fmt: skip


def portfolio_metrics(result: PortfolioResult, periods_per_year: float) -> dict[str, Any]:
    """The metrics of the one account (`metrics.compute_metrics`: its gross exposure as the
    exposure, every symbol's borrow, the result's benchmark)."""
    price, exposure = result.exposure_arrays()
    return compute_metrics(
        result.dataset.ts, price, result.equity_values, exposure, result.borrow.sum(axis=1),
        result.fill_records, result.trade_records,
        initial_cash=result.config.execution.initial_cash, periods_per_year=periods_per_year,
        ruined=result.ruined, halted=result.halted, benchmark=result.benchmark_equity,
    )  # fmt: skip
