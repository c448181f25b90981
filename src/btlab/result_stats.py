"""`stats()` of a result: its metrics as one pandas Series in backtesting.py's order and naming
(`Backtest.run()`), plus the few values that library shows and btlab has no metric for.

Each row either reads a metric (`result.metrics`, scaled to percent where its label says
`[%]`), or is derived here from the result's arrays: the start, end and duration, the equity
peak, the bar-compounded annual return, the drawdown episodes (average depth, longest and
average duration as time), the geometric mean trade and the trades' durations. A label is
backtesting.py's only where the meaning matches; the mapping is tabled in docs/python.md. A
metric another module adds later (`alpha`, `sqn`, ...) is read with `.get`, NaN while absent.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import pandas as pd

from .metrics import drawdown_path

__all__ = ["DrawdownEpisodes", "drawdown_episodes", "heatmap_frame", "result_stats"]


class _Bars(Protocol):
    @property
    def ts(self) -> np.ndarray: ...


class StatsSource(Protocol):
    """What `result_stats` reads of a result (a single-symbol run's or a portfolio's)."""

    metrics: dict[str, Any]
    equity_values: np.ndarray
    trade_records: np.ndarray

    @property
    def dataset(self) -> _Bars: ...


@dataclass(frozen=True)
class DrawdownEpisodes:
    """Each run of bars below the running equity peak: its depth (the lowest drawdown, < 0),
    its length in bars, and its duration from the peak bar before it to the bar back at the peak
    (or the last bar, while not recovered), as backtesting.py measures a drawdown's duration."""

    depth: np.ndarray
    bars: np.ndarray
    duration_ns: np.ndarray


def drawdown_episodes(equity: np.ndarray, ts_ns: np.ndarray) -> DrawdownEpisodes:
    """The drawdown episodes of an equity path (`metrics.drawdown_path` below 0)."""
    dd = drawdown_path(equity)
    edges = np.diff(np.concatenate([[0], (dd < 0.0).astype(np.int8), [0]]))
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)  # ends: exclusive
    depth = np.array([dd[s:e].min() for s, e in zip(starts, ends, strict=True)], dtype=float)
    last = ts_ns.shape[0] - 1
    peak_bar = np.maximum(starts - 1, 0)
    back_bar = np.minimum(ends, last)
    duration = (ts_ns[back_bar] - ts_ns[peak_bar]).astype(np.int64)
    return DrawdownEpisodes(depth, (ends - starts).astype(np.int64), duration)


def _pct(value: Any) -> float:
    return float(value) * 100.0 if value is not None else math.nan


def _get(metrics: Mapping[str, Any], key: str) -> float:
    value = metrics.get(key)
    return math.nan if value is None else float(value)


def _timedelta(ns: float, resolution: str) -> pd.Timedelta | Any:
    """A duration, rounded up to the resolution of the bar spacing (as backtesting.py does)."""
    if not math.isfinite(ns):
        return pd.NaT
    return pd.Timedelta(round(ns), unit="ns").ceil(resolution)


def _bar_resolution(ts_ns: np.ndarray) -> str:
    """The resolution of the median bar spacing ("D" for daily bars, "h" for hourly, ...)."""
    if ts_ns.shape[0] < 2:
        return "s"
    return str(pd.Timedelta(int(np.median(np.diff(ts_ns))), unit="ns").resolution_string)


def _annual_return(equity: np.ndarray, periods_per_year: float) -> float:
    """The per-bar returns' geometric mean (the returns Sharpe reads) compounded over a year:
    `(equity[-1] / equity[0]) ** (periods_per_year / (n - 1)) - 1`; -1 once equity is gone."""
    n = equity.shape[0]
    if n < 2 or not equity[0] > 0:
        return math.nan
    growth = float(equity[-1] / equity[0])
    return growth ** (periods_per_year / (n - 1)) - 1.0 if growth > 0 else -1.0


def _geometric_mean(returns: np.ndarray) -> float:
    """`exp(mean(log(1 + r))) - 1` of closed trades' returns; -1 where one lost everything."""
    if returns.size == 0:
        return math.nan
    if (returns <= -1.0).any():
        return -1.0
    return math.expm1(float(np.log1p(returns).mean()))


def _span(values_ns: np.ndarray, resolution: str) -> tuple[Any, Any]:
    """(longest, mean) of durations in ns as Timedeltas; NaT where there are none."""
    if values_ns.size == 0:
        return pd.NaT, pd.NaT
    as_float = values_ns.astype(float)
    return _timedelta(float(as_float.max()), resolution), _timedelta(
        float(as_float.mean()), resolution
    )


def result_stats(result: StatsSource) -> pd.Series:
    """The result's statistics as backtesting.py names and orders them, then btlab's own."""
    m = result.metrics
    equity = result.equity_values
    ts = result.dataset.ts.astype(np.int64)
    start = pd.Timestamp(int(ts[0]), unit="ns", tz="UTC")  # a dataset has a bar at least
    end = pd.Timestamp(int(ts[-1]), unit="ns", tz="UTC")
    resolution = _bar_resolution(ts)
    episodes = drawdown_episodes(equity, ts)
    dd_longest, dd_mean = _span(episodes.duration_ns, resolution)
    closed = result.trade_records[~result.trade_records["is_open"]]
    trade_longest, trade_mean = _span(ts[closed["exit_bar"]] - ts[closed["entry_bar"]], resolution)
    rows: dict[str, Any] = {
        "Start": start,
        "End": end,
        "Duration": end - start,
        "Exposure Time [%]": _pct(m["exposure"]),
        "Equity Final [$]": float(m["final_equity"]),
        "Equity Peak [$]": float(equity.max()),
        "Commissions [$]": float(m["total_commission"]),
        "Return [%]": _pct(m["total_return"]),
        "Buy & Hold Return [%]": _pct(m.get("benchmark_return")),
        "Return (Ann.) [%]": _pct(_annual_return(equity, float(m["periods_per_year"]))),
        "Volatility (Ann.) [%]": _pct(m["annual_volatility"]),
        "CAGR [%]": _pct(m["cagr"]),
        "Sharpe Ratio": float(m["sharpe"]),
        "Sortino Ratio": float(m["sortino"]),
        "Calmar Ratio": float(m["calmar"]),
        "Alpha (Ann.) [%]": _pct(m.get("alpha")),
        "Beta": _get(m, "beta"),
        "Max. Drawdown [%]": _pct(m["max_drawdown"]),
        "Avg. Drawdown [%]": _pct(episodes.depth.mean()) if episodes.depth.size else 0.0,
        "Max. Drawdown Duration": dd_longest,
        "Avg. Drawdown Duration": dd_mean,
        "# Trades": int(m["trade_count"]),
        "Win Rate [%]": _pct(m["win_rate"]),
        "Best Trade [%]": _pct(m["best_trade_return"]),
        "Worst Trade [%]": _pct(m["worst_trade_return"]),
        "Avg. Trade [%]": _pct(_geometric_mean(closed["return_"])),
        "Max. Trade Duration": trade_longest,
        "Avg. Trade Duration": trade_mean,
        "Profit Factor": float(m["profit_factor"]),
        "Expectancy [%]": _pct(m["avg_trade_return"]),
        "SQN": _get(m, "sqn"),
        "Kelly Criterion": _get(m, "kelly_fraction"),
        # btlab's own, beyond backtesting.py's list
        "Excess Return [%]": _pct(m.get("excess_return")),
        "Information Ratio": _get(m, "information_ratio"),
        "Tracking Error (Ann.) [%]": _pct(m.get("tracking_error")),
        "VaR 95% [%]": _pct(m.get("var_95")),
        "CVaR 95% [%]": _pct(m.get("cvar_95")),
        "Omega Ratio": _get(m, "omega"),
        "Tail Ratio": _get(m, "tail_ratio"),
        "Exposure-Adj. Return [%]": _pct(m.get("exposure_adjusted_return")),
        "Max. Drawdown Duration [bars]": int(m["max_drawdown_duration_bars"]),
        "Avg. Bars Held": float(m["avg_bars_held"]),
        "Avg. Gross Leverage": float(m["avg_gross_leverage"]),
        "Turnover (Ann.)": float(m["turnover_annual"]),
        "Costs [$]": float(m["total_costs"]),
        "# Fills": int(m["fill_count"]),
        "Open Trade": bool(m["open_trade"]),
    }
    return pd.Series(rows, dtype=object, name="stats")


def heatmap_frame(
    table: pd.DataFrame,
    axes: Mapping[str, list[Any]],
    best: Mapping[str, Any] | None,
    *,
    x: str | None = None,
    y: str | None = None,
    metric: str,
) -> pd.DataFrame:
    """`metric` of a sweep's table over the axes `x` (columns) and `y` (rows; the first two axes
    by default), every other axis fixed at `best`'s value (the best combination's); NaN where a
    combination was skipped. With `best` None (a random search, whose draws rarely share the
    other axes' values) no axis is fixed and a cell is the largest value of the draws in it, as
    in heatmap.json. With one axis, one row named after the metric."""
    names = list(axes)
    x = x if x is not None else names[0]
    if y is None:
        y = next((name for name in names if name != x), None)
    for name in (x, y):
        if name is not None and name not in axes:
            raise KeyError(f"{name!r} is not an axis of the sweep (axes: {', '.join(names)})")
    if x == y:
        raise ValueError(f"x and y must be two different axes, both are {x!r}")
    if metric not in table.columns:
        raise KeyError(f"{metric!r} is not a column of the sweep table")
    fixed = {k: best[k] for k in names if k not in (x, y)} if best is not None else {}
    # by lookup rather than a pivot: an axis may hold None (a field set to null), which the
    # table holds as None or NaN and a pivot would drop
    at: dict[tuple[Any, Any], float] = {}
    for _, row in table.iterrows():
        if all(_key(row[k]) == _key(v) for k, v in fixed.items()):
            cell = (_key(row[x]), _key(row[y]) if y is not None else None)
            value = float(row[metric])
            if not value <= at.get(cell, -math.inf):  # the largest (a NaN only where alone)
                at[cell] = value
    ys = axes[y] if y is not None else [None]
    z = [[at.get((_key(xv), _key(yv)), math.nan) for xv in axes[x]] for yv in ys]
    index = pd.Index(axes[y], name=y) if y is not None else pd.Index([metric])
    return pd.DataFrame(z, index=index, columns=pd.Index(axes[x], name=x), dtype=float)


def _key(value: Any) -> Any:
    """An axis value as a lookup key: None and NaN alike (a null field's value)."""
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else value
