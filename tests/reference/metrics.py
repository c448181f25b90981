"""Plain-Python twin of kernels/metrics.py `equity_stats_nb` (lists, `math.fsum`, two passes),
and the metrics dict as NumPy computes it (`numpy_metrics`)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np


def equity_stats(equity: Sequence[float]) -> tuple[int, float, float, float, float, int]:
    """(n_returns, mean, std ddof 1, downside deviation, max drawdown, max drawdown duration).

    Returns `r[i] = e[i] / e[i-1] - 1` from bar 1 on; downside deviation
    `sqrt(mean(min(r, 0)^2))`; drawdown `e / running peak - 1`; the duration is the longest run
    of consecutive bars below the running peak (a bar back at the peak has recovered).
    """
    e = [float(v) for v in equity]
    r = [e[i] / e[i - 1] - 1.0 for i in range(1, len(e))]
    n = len(r)
    mean = math.fsum(r) / n if n else math.nan
    std = math.sqrt(math.fsum((v - mean) ** 2 for v in r) / (n - 1)) if n > 1 else math.nan
    downside = math.sqrt(math.fsum(min(v, 0.0) ** 2 for v in r) / n) if n else math.nan
    max_dd = 0.0
    longest = 0
    run = 0
    for i, v in enumerate(e):
        peak = max(e[: i + 1])
        max_dd = min(max_dd, v / peak - 1.0)
        at_peak = i == 0 or v >= max(e[:i])
        run = 0 if at_peak else run + 1
        longest = max(longest, run)
    return n, mean, std, downside, max_dd, longest


def numpy_metrics(
    ts_ns: Any,
    close: Any,
    equity: Any,
    units: Any,
    borrow: Any,
    fills: Any,
    trades: Any,
    *,
    initial_cash: float,
    periods_per_year: float,
    ruined: bool = False,
    halted: bool = False,
) -> dict[str, Any]:
    """The metrics of SPEC §5 straight from NumPy (`np.mean`, `np.std`, `np.sum` of columns and
    masks): the formulation `btlab.metrics.compute_metrics` had before it ran the statistics
    kernels, which must still give its bits."""
    n = equity.shape[0]
    with np.errstate(divide="ignore", invalid="ignore"):
        r = equity[1:] / equity[:-1] - 1.0 if n > 1 else np.empty(0)
        mean = float(np.mean(r)) if r.size else math.nan
        std = float(np.std(r, ddof=1)) if r.size > 1 else math.nan
        downside = float(np.sqrt(np.mean(np.minimum(r, 0.0) ** 2))) if r.size else math.nan
        dd = equity / np.maximum.accumulate(equity) - 1.0
        lev = np.abs(units * close) / equity
    max_dd = float(np.min(dd[~np.isnan(dd)], initial=0.0))
    longest = run = 0
    peak = -math.inf
    for v in equity:
        run = 0 if v >= peak else run + 1
        peak = max(peak, v)
        longest = max(longest, run)
    if ruined or (n > 0 and float(np.min(equity)) <= 0.0):
        max_dd = -1.0
    root = math.sqrt(periods_per_year)
    final = float(equity[-1]) if n else initial_cash
    years = float(ts_ns[-1] - ts_ns[0]) / 86_400e9 / 365.25 if n > 1 else 0.0
    growth = final / initial_cash
    if years > 0 and growth > 0:
        cagr = growth ** (1.0 / years) - 1.0
    else:
        cagr = -1.0 if growth <= 0 else math.nan
    traded = float(np.sum(np.abs(fills["units"]) * fills["price"])) if fills.size else 0.0
    mean_equity = float(np.mean(equity)) if n else initial_cash
    turnover = traded / mean_equity if mean_equity > 0 else math.nan
    closed = trades[~trades["is_open"]]
    net = closed["net_pnl"]
    wins, losses = net[net > 0], net[net < 0]
    rets = closed["return_"]
    finite_lev = lev[np.isfinite(lev)]
    costs = [float(np.sum(fills[k])) for k in ("spread_cost", "slippage_cost", "commission")]
    total_borrow = float(np.sum(borrow))
    return {
        "initial_cash": initial_cash,
        "final_equity": final,
        "total_return": growth - 1.0,
        "cagr": cagr,
        "annual_volatility": std * root,
        "sharpe": mean / std * root if std > 0 else math.nan,
        "sortino": mean / downside * root if downside > 0 else math.nan,
        "max_drawdown": max_dd,
        "max_drawdown_duration_bars": longest,
        "calmar": cagr / abs(max_dd) if max_dd < 0 else math.nan,
        "exposure": float(np.sum(units != 0.0)) / n if n else 0.0,
        "avg_gross_leverage": float(np.mean(finite_lev)) if finite_lev.size else math.nan,
        "turnover": turnover,
        "turnover_annual": turnover / years if years > 0 else math.nan,
        "trade_count": int(closed.shape[0]),
        "open_trade": int(trades.size > 0 and bool(trades["is_open"][-1])),
        "win_rate": wins.size / net.size if net.size else math.nan,
        "profit_factor": float(wins.sum() / -losses.sum()) if losses.size else math.nan,
        "avg_trade_return": float(np.mean(rets)) if rets.size else math.nan,
        "best_trade_return": float(np.max(rets)) if rets.size else math.nan,
        "worst_trade_return": float(np.min(rets)) if rets.size else math.nan,
        "avg_bars_held": float(np.mean(closed["bars_held"])) if rets.size else math.nan,
        "fill_count": int(fills.shape[0]),
        "total_spread": costs[0],
        "total_slippage": costs[1],
        "total_commission": costs[2],
        "total_borrow": total_borrow,
        "total_costs": costs[0] + costs[1] + costs[2] + total_borrow,
        "periods_per_year": float(periods_per_year),
        "n_bars": int(n),
        "ruined": bool(ruined),
        "halted": bool(halted),
    }
