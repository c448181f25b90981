"""Run metrics (SPEC §5): one row of per-path statistics, then one function to the metrics dict.

`path_statistics` runs the statistics kernels (`kernels.metrics`: return moments, drawdown,
exposure and leverage, fill and trade totals, every sum in NumPy's pairwise order) over a run's
arrays; the sweep kernel fills the same row for each combination. `metrics_from_stats` turns a
row into the metrics dict, for single runs, sweep combinations and folds alike. What each
metric is lives in `btlab.metric_registry`.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from btlab.kernels.dtypes import Flag
from btlab.kernels.metrics import (
    BLOCK_FIELDS,
    N_STATS,
    SW_BORROW,
    SW_CLOSED,
    SW_COMMISSION,
    SW_DD_BARS,
    SW_DOWNSIDE,
    SW_EQUITY_SUM,
    SW_EXPOSED,
    SW_FILLS,
    SW_FINAL,
    SW_FLAGS,
    SW_HELD_SUM,
    SW_LEV_COUNT,
    SW_LEV_SUM,
    SW_LOSS_SUM,
    SW_LOSSES,
    SW_MAX_DD,
    SW_MEAN,
    SW_OPEN_TRADE,
    SW_RET_BEST,
    SW_RET_SUM,
    SW_RET_WORST,
    SW_SLIPPAGE,
    SW_SPREAD,
    SW_STD,
    SW_TRADED,
    SW_WIN_SUM,
    SW_WINS,
    fill_stats_nb,
    pairwise_stack,
    path_stats_nb,
    trade_stats_nb,
)  # fmt: skip

NS_PER_DAY = 86_400 * 1_000_000_000
DAYS_PER_YEAR = 365.25
#: `path_stats_nb` without CSCV blocks (a single run's, a fold's).
_NO_BOUNDS = np.zeros(1, dtype=np.int64)
_NO_BLOCKS = np.empty((0, BLOCK_FIELDS))


def bar_return_bars(equity: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(bars, returns): the per-bar returns `equity[i] / equity[i-1] - 1`, i >= 1 (SPEC §5),
    that are finite, and the bar `i` each belongs to (a ruined run's equity at or below zero
    makes some undefined: they are left out, as the validation leaves them out)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        r = equity[1:] / equity[:-1] - 1.0
    finite = np.isfinite(r)
    bars: np.ndarray = np.flatnonzero(finite) + 1
    kept: np.ndarray = r[finite]
    return bars, kept


def bar_returns(equity: np.ndarray) -> np.ndarray:
    """Per-bar returns `equity[i] / equity[i-1] - 1`, i >= 1 (SPEC §5), the finite ones."""
    return bar_return_bars(equity)[1]


def drawdown_path(equity: np.ndarray) -> np.ndarray:
    """Per bar `equity / cummax(equity) - 1`, and -1 (-100 %) wherever equity is at or below 0.

    Equity reaches zero or below only in a ruined run (costs or a gap beyond the capital; the
    kernel closes the position and halts at that close). Then `equity / peak - 1` is below -1
    (or, where the very first bar is ruined, 0 against a negative "peak"), and neither says what
    happened: everything was lost, which -100 % says, and `ruined` flags it. The loss beyond the
    capital stays in `final_equity` and `total_return`.
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        drawdown = equity / np.maximum.accumulate(equity) - 1.0
    out: np.ndarray = np.where(equity <= 0.0, -1.0, drawdown)
    return out


def reported_max_drawdown(max_drawdown: float, ruined: bool) -> float:
    """`min(drawdown_path(equity))` from the kernel's raw minimum: -1 where equity reached 0 or
    below (a ruined run: the kernel flags it at the first such close)."""
    return -1.0 if ruined else max_drawdown


def annualized_ratio(mean: float, deviation: float, scale: float) -> float:
    """`mean / deviation * scale`, NaN unless `deviation > 0`: the Sharpe ratio (with the std of
    the per-bar returns, ddof 1) and the Sortino ratio (with their downside deviation), scaled by
    `sqrt(periods_per_year)` (or 1, per bar). The kernels' copy is `kernels.metrics.sharpe_nb`."""
    return mean / deviation * scale if deviation > 0 else math.nan


def span_years(ts_ns: np.ndarray) -> float:
    """Calendar years from the first to the last bar, `(ts_last - ts_first) / 365.25 days`."""
    n = ts_ns.shape[0]
    return float(ts_ns[-1] - ts_ns[0]) / NS_PER_DAY / DAYS_PER_YEAR if n > 1 else 0.0


def path_statistics(
    close: np.ndarray,
    equity: np.ndarray,
    units: np.ndarray,
    borrow: np.ndarray,
    fills: np.ndarray,
    trades: np.ndarray,
    *,
    ruined: bool = False,
    halted: bool = False,
) -> np.ndarray:
    """One row of per-path statistics (`kernels.metrics.STAT_NAMES`) of a run or a part of one,
    by the kernels the sweep runs for each combination, so both give the same bits.

    A part of a ruined run (a fold) may hold the ruin without its flag: equity at or below 0
    (then the raw drawdown is at or below -1, or the first bar is already there) sets the
    reported drawdown to -1, as `reported_max_drawdown`.
    """
    n = equity.shape[0]
    row = np.zeros(N_STATS)
    scratch = np.empty(max(n, fills.shape[0], trades.shape[0], 1))
    stack = pairwise_stack()
    path_stats_nb(close, units, equity, borrow, True, _NO_BOUNDS, row, _NO_BLOCKS, scratch, stack)
    fill_stats_nb(fills, fills.shape[0], row, scratch, stack)
    trade_stats_nb(trades, trades.shape[0], row, scratch, stack)
    row[SW_FINAL] = equity[n - 1] if n else math.nan
    row[SW_FLAGS] = (Flag.RUINED if ruined else 0) | (Flag.HALTED_MAX_DRAWDOWN if halted else 0)
    if n and (row[SW_MAX_DD] <= -1.0 or equity[0] <= 0.0):
        row[SW_MAX_DD] = -1.0
    return row


def compute_metrics(
    ts_ns: np.ndarray,
    close: np.ndarray,
    equity: np.ndarray,
    units: np.ndarray,
    borrow: np.ndarray,
    fills: np.ndarray,
    trades: np.ndarray,
    *,
    initial_cash: float,
    periods_per_year: float,
    ruined: bool = False,
    halted: bool = False,
) -> dict[str, Any]:
    """Every metric of SPEC §5 as a flat dict of plain Python values (NaN where undefined)."""
    row = path_statistics(close, equity, units, borrow, fills, trades, ruined=ruined, halted=halted)
    return metrics_from_stats(
        row, n=equity.shape[0], years=span_years(ts_ns), initial_cash=initial_cash,
        periods_per_year=periods_per_year,
    )  # fmt: skip


def metrics_from_stats(
    row: np.ndarray, *, n: int, years: float, initial_cash: float, periods_per_year: float
) -> dict[str, Any]:
    """The metrics dict (in `metric_registry.METRICS` order) from one row of per-path statistics
    (`path_statistics`, or the sweep kernel's row of a combination): the one place every run,
    combination and fold takes its metrics from."""
    mean, std, downside = float(row[SW_MEAN]), float(row[SW_STD]), float(row[SW_DOWNSIDE])
    flags = int(row[SW_FLAGS])
    max_dd = reported_max_drawdown(float(row[SW_MAX_DD]), bool(flags & Flag.RUINED))
    root_ppy = math.sqrt(periods_per_year)
    final = float(row[SW_FINAL]) if n else initial_cash
    growth = final / initial_cash
    cagr = (
        growth ** (1.0 / years) - 1.0
        if years > 0 and growth > 0
        else (-1.0 if growth <= 0 else math.nan)
    )
    lev_n = int(row[SW_LEV_COUNT])
    mean_equity = float(row[SW_EQUITY_SUM]) / n if n else initial_cash
    turnover = float(row[SW_TRADED]) / mean_equity if mean_equity > 0 else math.nan
    closed, wins, losses = int(row[SW_CLOSED]), int(row[SW_WINS]), int(row[SW_LOSSES])
    spread, slippage = float(row[SW_SPREAD]), float(row[SW_SLIPPAGE])
    commission, borrow = float(row[SW_COMMISSION]), float(row[SW_BORROW])
    return {
        "initial_cash": initial_cash,
        "final_equity": final,
        "total_return": growth - 1.0,
        "cagr": cagr,
        "annual_volatility": std * root_ppy,
        "sharpe": annualized_ratio(mean, std, root_ppy),
        "sortino": annualized_ratio(mean, downside, root_ppy),
        "max_drawdown": max_dd,
        "max_drawdown_duration_bars": int(row[SW_DD_BARS]),
        "calmar": cagr / abs(max_dd) if max_dd < 0 else math.nan,
        "exposure": float(row[SW_EXPOSED]) / n if n else 0.0,
        # the mean of the finite |units * close| / equity (flat bars count 0)
        "avg_gross_leverage": float(row[SW_LEV_SUM]) / lev_n if lev_n else math.nan,
        "turnover": turnover,
        "turnover_annual": turnover / years if years > 0 else math.nan,
        "trade_count": closed,
        "open_trade": int(row[SW_OPEN_TRADE]),
        "win_rate": wins / closed if closed else math.nan,
        "profit_factor": float(row[SW_WIN_SUM]) / -float(row[SW_LOSS_SUM]) if losses else math.nan,
        "avg_trade_return": float(row[SW_RET_SUM]) / closed if closed else math.nan,
        "best_trade_return": float(row[SW_RET_BEST]) if closed else math.nan,
        "worst_trade_return": float(row[SW_RET_WORST]) if closed else math.nan,
        "avg_bars_held": float(row[SW_HELD_SUM]) / closed if closed else math.nan,
        "fill_count": int(row[SW_FILLS]),
        "total_spread": spread,
        "total_slippage": slippage,
        "total_commission": commission,
        "total_borrow": borrow,
        "total_costs": spread + slippage + commission + borrow,
        "periods_per_year": float(periods_per_year),
        "n_bars": int(n),
        "ruined": bool(flags & Flag.RUINED),
        "halted": bool(flags & Flag.HALTED_MAX_DRAWDOWN),
    }
