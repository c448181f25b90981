"""Run metrics (SPEC §5) from the equity path, the fills and the trades."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from btlab.kernels.metrics import (
    drawdown_stats_nb,
    leverage_stats_nb,
    pairwise_stack,
    return_moments_nb,
)

NS_PER_DAY = 86_400 * 1_000_000_000
DAYS_PER_YEAR = 365.25

#: Name -> one-line meaning, for GET /registry and the docs.
METRIC_DESCRIPTIONS: dict[str, str] = {
    "initial_cash": "Cash at the start.",
    "final_equity": "Equity marked at the last close.",
    "total_return": "final_equity / initial_cash - 1.",
    "cagr": "Compound annual growth over calendar years (ts_last - ts_first) / 365.25 days.",
    "annual_volatility": "std(r, ddof=1) * sqrt(periods_per_year), r[i] = equity[i]/equity[i-1] - 1.",
    "sharpe": "mean(r) / std(r, ddof=1) * sqrt(periods_per_year).",
    "sortino": "mean(r) / sqrt(mean(min(r, 0)^2)) * sqrt(periods_per_year).",
    "max_drawdown": "min(equity / cummax(equity) - 1) (a negative number); -1 where ruined (equity <= 0).",
    "max_drawdown_duration_bars": "Longest run of bars below the running equity peak (back at the peak is recovered).",
    "calmar": "cagr / |max_drawdown|.",
    "exposure": "Share of bars ending with an open position.",
    "avg_gross_leverage": "Mean of |units * close| / equity over the bars.",
    "turnover": "Traded notional (at reference prices) / mean equity.",
    "turnover_annual": "turnover per calendar year.",
    "trade_count": "Closed round trips (flat to flat, or a side flip).",
    "open_trade": "1 if a position is still open at the end (close_at_end off), else 0.",
    "win_rate": "Share of closed trades with net P&L > 0.",
    "profit_factor": "Sum of winning net P&L / |sum of losing net P&L| (null with no losses).",
    "avg_trade_return": "Mean net return of closed trades (net P&L / entry notional).",
    "best_trade_return": "Best closed trade's net return.",
    "worst_trade_return": "Worst closed trade's net return.",
    "avg_bars_held": "Mean bars held of closed trades.",
    "fill_count": "Number of fills.",
    "total_spread": "Spread paid over all fills.",
    "total_slippage": "Slippage paid over all fills.",
    "total_commission": "Commission paid over all fills.",
    "total_borrow": "Borrow paid on shorts.",
    "total_costs": "Spread + slippage + commission + borrow.",
    "periods_per_year": "Bars per year used for annualizing.",
    "n_bars": "Bars in the run.",
    "ruined": "True where equity fell to zero or below and trading halted.",
    "halted": "True where the max-drawdown limit halted trading.",
}


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


def _nan_if_empty(values: np.ndarray, fn: Any) -> float:
    return float(fn(values)) if values.size else math.nan


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
    n = equity.shape[0]
    scratch = np.empty(max(n, 1))  # the kernels' working memory, one value per bar
    stack = pairwise_stack()
    _count, mean, std, downside = return_moments_nb(equity, scratch, stack)
    max_dd, dd_bars = drawdown_stats_nb(equity)
    # a fold of a ruined run may hold the ruin without its flag: equity <= 0 says it
    max_dd = reported_max_drawdown(max_dd, ruined or (n > 0 and float(np.min(equity)) <= 0.0))
    exposed, leverage_sum, leverage_count = leverage_stats_nb(units, close, equity, scratch, stack)
    root_ppy = math.sqrt(periods_per_year)
    final = float(equity[-1]) if n else initial_cash
    years = float(ts_ns[-1] - ts_ns[0]) / NS_PER_DAY / DAYS_PER_YEAR if n > 1 else 0.0
    growth = final / initial_cash
    cagr = (
        growth ** (1.0 / years) - 1.0
        if years > 0 and growth > 0
        else (-1.0 if growth <= 0 else math.nan)
    )
    sharpe = mean / std * root_ppy if std > 0 else math.nan
    sortino = mean / downside * root_ppy if downside > 0 else math.nan
    traded = float(np.sum(np.abs(fills["units"]) * fills["price"])) if fills.size else 0.0
    mean_equity = float(np.mean(equity)) if n else initial_cash
    turnover = traded / mean_equity if mean_equity > 0 else math.nan
    closed = trades[~trades["is_open"]] if trades.size else trades
    net = closed["net_pnl"]
    wins = net[net > 0]
    losses = net[net < 0]
    spread = float(np.sum(fills["spread_cost"]))
    slippage = float(np.sum(fills["slippage_cost"]))
    commission = float(np.sum(fills["commission"]))
    total_borrow = float(np.sum(borrow))
    return {
        "initial_cash": initial_cash,
        "final_equity": final,
        "total_return": growth - 1.0,
        "cagr": cagr,
        "annual_volatility": std * root_ppy,
        "sharpe": sharpe,
        "sortino": sortino,
        "max_drawdown": max_dd,
        "max_drawdown_duration_bars": int(dd_bars),
        "calmar": cagr / abs(max_dd) if max_dd < 0 else math.nan,
        "exposure": exposed / n if n else 0.0,
        # the mean of the finite |units * close| / equity (flat bars count 0)
        "avg_gross_leverage": leverage_sum / leverage_count if leverage_count else math.nan,
        "turnover": turnover,
        "turnover_annual": turnover / years if years > 0 else math.nan,
        "trade_count": int(closed.shape[0]),
        "open_trade": int(trades.size > 0 and bool(trades["is_open"][-1])),
        "win_rate": float(wins.size / net.size) if net.size else math.nan,
        "profit_factor": float(wins.sum() / -losses.sum()) if losses.size else math.nan,
        "avg_trade_return": _nan_if_empty(closed["return_"], np.mean),
        "best_trade_return": _nan_if_empty(closed["return_"], np.max),
        "worst_trade_return": _nan_if_empty(closed["return_"], np.min),
        "avg_bars_held": _nan_if_empty(closed["bars_held"], np.mean),
        "fill_count": int(fills.shape[0]),
        "total_spread": spread,
        "total_slippage": slippage,
        "total_commission": commission,
        "total_borrow": total_borrow,
        "total_costs": spread + slippage + commission + total_borrow,
        "periods_per_year": float(periods_per_year),
        "n_bars": int(n),
        "ruined": bool(ruined),
        "halted": bool(halted),
    }


def headline(metrics: dict[str, Any]) -> dict[str, Any]:
    """The few numbers shown in tables and run listings."""
    keys = (
        "total_return",
        "cagr",
        "sharpe",
        "sortino",
        "max_drawdown",
        "trade_count",
        "win_rate",
        "final_equity",
    )
    return {k: metrics.get(k) for k in keys}
