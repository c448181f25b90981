"""Run metrics (SPEC §5): one row of per-path statistics, then one function to the metrics dict.

`path_statistics` runs the statistics kernels (`kernels.metrics`: return moments, drawdown,
exposure and leverage, fill and trade totals, every sum in NumPy's pairwise order) over a run's
arrays; the sweep kernel fills the same row for each combination. `metrics_from_stats` turns a
row into the metrics dict, for single runs, sweep combinations and folds alike.
`array_metrics` adds what needs the run's own arrays rather than a row of sums: the quantiles
and tails of the per-bar returns, the trade-distribution statistics and the comparison with the
benchmark (`btlab.benchmark`); `compute_metrics` (single runs, portfolio runs, a sweep's best
run, folds) returns both. What each metric is lives in `btlab.metric_registry`.
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
    path_scratch_size,
    path_stats_nb,
    trade_stats_nb,
)
from btlab.kernels.pairwise import pairwise_stack  # fmt: skip

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
    bounds: np.ndarray = _NO_BOUNDS,
    blocks: np.ndarray = _NO_BLOCKS,
) -> np.ndarray:
    """One row of per-path statistics (`kernels.metrics.STAT_NAMES`) of a run or a part of one,
    by the kernels the sweep runs for each combination, so both give the same bits. With CSCV
    group `bounds`, each group's return sums go to `blocks` (groups x BLOCK_FIELDS), as the
    sweep kernels write them.

    A part of a ruined run (a fold) may hold the ruin without its flag: equity at or below 0
    (then the raw drawdown is at or below -1, or the first bar is already there) sets the
    reported drawdown to -1, as `reported_max_drawdown`.
    """
    n = equity.shape[0]
    row = np.zeros(N_STATS)
    scratch = np.empty(max(path_scratch_size(n), fills.shape[0], trades.shape[0]))
    stack = pairwise_stack()
    path_stats_nb(close, units, equity, borrow, True, bounds, row, blocks, scratch, stack)
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
    benchmark: np.ndarray | None = None,
) -> dict[str, Any]:
    """Every metric of SPEC §5 as a flat dict of plain Python values (NaN where undefined), in
    `metric_registry.METRICS` order. `benchmark`: the benchmark's equity per bar
    (`btlab.benchmark`), None where it is off (its metrics are then NaN)."""
    row = path_statistics(close, equity, units, borrow, fills, trades, ruined=ruined, halted=halted)
    base = metrics_from_stats(
        row, n=equity.shape[0], years=span_years(ts_ns), initial_cash=initial_cash,
        periods_per_year=periods_per_year,
    )  # fmt: skip
    return base | array_metrics(equity, trades, base, benchmark=benchmark)


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


#: The tail of the per-bar returns that `var_95` and `cvar_95` describe.
TAIL = 0.05


def per_bar_returns(equity: np.ndarray) -> np.ndarray:
    """`equity[i] / equity[i-1] - 1` for i >= 1 (NaN or inf where equity[i-1] is 0)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        out: np.ndarray = equity[1:] / equity[:-1] - 1.0
    return out


#: A std of per-bar returns below this is rounding, not variance: returns computed as ratios
#: of an equity path that compounds a constant rate differ from it by ulps of 1 (~1e-16).
RETURN_NOISE = 1e-12


def _constant(values: np.ndarray) -> bool:
    """All equal up to rounding: no values, all equal (their float mean may still differ from
    them by an ulp), or a std (ddof 1) below `RETURN_NOISE`."""
    if values.size < 2 or values.max() == values.min():
        return True
    return bool(np.std(values, ddof=1) < RETURN_NOISE)


def tail_metrics(r: np.ndarray) -> dict[str, float]:
    """Historical 95 % VaR and CVaR (per bar, as returns: negative is a loss), the omega ratio
    at threshold 0 and the tail ratio, of the finite per-bar returns `r`."""
    m = r.shape[0]
    if m == 0:
        return dict.fromkeys(("var_95", "cvar_95", "omega", "tail_ratio"), math.nan)
    low, high = (float(q) for q in np.percentile(r, [100 * TAIL, 100 * (1 - TAIL)]))
    cut = int((m - 1) * TAIL)  # the cut+1 lowest returns: those at or below var_95
    losses = float(-np.minimum(r, 0.0).sum())
    return {
        "var_95": low,
        "cvar_95": float(np.mean(np.partition(r, cut)[: cut + 1])),
        "omega": float(np.maximum(r, 0.0).sum()) / losses if losses > 0 else math.nan,
        "tail_ratio": abs(high) / abs(low) if low != 0 else math.nan,
    }


def trade_metrics(trades: np.ndarray, win_rate: float) -> dict[str, float]:
    """SQN and the Kelly fraction of the closed trades' net returns (`return_`)."""
    closed = trades[~trades["is_open"]]
    ret = closed["return_"]
    n = ret.shape[0]
    sqn = (
        math.sqrt(n) * float(np.mean(ret)) / float(np.std(ret, ddof=1))
        if n >= 2 and not _constant(ret)
        else math.nan
    )
    wins, losses = ret[closed["net_pnl"] > 0.0], ret[closed["net_pnl"] < 0.0]
    kelly = math.nan
    if wins.size and losses.size:
        payoff = float(np.mean(wins)) / abs(float(np.mean(losses)))
        kelly = win_rate - (1.0 - win_rate) / payoff
    return {"sqn": sqn, "kelly_fraction": kelly}


def benchmark_metrics(
    r: np.ndarray, benchmark: np.ndarray | None, total_return: float, initial_cash: float,
    periods_per_year: float,
) -> dict[str, float]:  # fmt: skip
    """The run against its benchmark's equity path (`benchmark`, None where it is off): the
    benchmark's total return, the excess return, OLS alpha (annualized, risk-free 0) and beta
    of the per-bar returns `r` (all of them, NaN where not finite) on the benchmark's, the
    tracking error and the information ratio, over the bars where both returns are finite."""
    out = dict.fromkeys(
        ("benchmark_return", "excess_return", "alpha", "beta", "information_ratio",
         "tracking_error"), math.nan,
    )  # fmt: skip
    if benchmark is None or benchmark.shape[0] == 0:
        return out
    bench_return = float(benchmark[-1]) / initial_cash - 1.0
    out["benchmark_return"] = bench_return
    out["excess_return"] = total_return - bench_return
    b = per_bar_returns(benchmark)
    both = np.isfinite(r) & np.isfinite(b)
    rs, bs = r[both], b[both]
    if rs.shape[0] < 2:
        return out
    active = rs - bs
    deviation = 0.0 if _constant(active) else float(np.std(active, ddof=1))
    root_ppy = math.sqrt(periods_per_year)
    out["tracking_error"] = deviation * root_ppy
    out["information_ratio"] = annualized_ratio(float(np.mean(active)), deviation, root_ppy)
    if not _constant(bs):
        mean_r, mean_b = float(np.mean(rs)), float(np.mean(bs))
        beta = float(np.sum((rs - mean_r) * (bs - mean_b)) / np.sum((bs - mean_b) ** 2))
        out["beta"] = beta
        out["alpha"] = (mean_r - beta * mean_b) * periods_per_year
    return out


def array_metrics(
    equity: np.ndarray, trades: np.ndarray, base: dict[str, Any], *,
    benchmark: np.ndarray | None = None,
) -> dict[str, Any]:  # fmt: skip
    """The metrics read from a run's arrays (`Metric.from_arrays`), after `base` (the run's
    `metrics_from_stats`): tails of the per-bar returns, the trade statistics, the
    exposure-adjusted return and the comparison with `benchmark` (its equity path, or None)."""
    r = per_bar_returns(equity)
    exposure, cagr = float(base["exposure"]), float(base["cagr"])
    return {
        **benchmark_metrics(
            r, benchmark, float(base["total_return"]), float(base["initial_cash"]),
            float(base["periods_per_year"]),
        ),
        **tail_metrics(r[np.isfinite(r)]),
        **trade_metrics(trades, float(base["win_rate"])),
        "exposure_adjusted_return": (
            cagr / exposure if exposure > 0 and math.isfinite(cagr) else math.nan
        ),
    }  # fmt: skip
