"""Plain-Python twin of kernels/sweep.py: each combination run on its own through the execution
and ledger twins, its statistics taken from their definitions.

It shares no code with the kernels (no one-pass accumulators, no skipped divisions, no pairwise
sums, no buffer growth): tests/test_sweep.py compares the two on hypothesis-generated bars,
settings, features and targets. Values are Python floats; sums run left to right, but for the
CSCV blocks, which are defined as `np.sum` of each block.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from tests.reference import execution, ledger


def cross_target(
    a: list[float], b: list[float], long_value: float, short_value: float
) -> list[float]:
    """sma_cross / ma_trend on shifted features: long where a > b, short where a < b, 0 on ties or NaN."""
    out = []
    for x, y in zip(a, b, strict=True):
        if not (math.isfinite(x) and math.isfinite(y)) or x == y:
            out.append(0.0)
        else:
            out.append(long_value if x > y else short_value)
    return out


def _ratio(num: float, den: float) -> float:
    """num / den with IEEE results where Python would raise (x/0 -> +/-inf or NaN)."""
    if den == 0.0:
        return math.nan if num == 0.0 or math.isnan(num) else math.copysign(math.inf, num)
    return num / den


def _returns(equity: list[float]) -> list[float]:
    return [_ratio(equity[i], equity[i - 1]) - 1.0 for i in range(1, len(equity))]


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else math.nan


def combination(
    bars: tuple[Any, ...],
    target: list[float],
    scale: list[float],
    p: dict[str, Any],
    bounds: list[int],
) -> tuple[dict[str, float], list[tuple[float, float]]]:
    """(statistics by `STAT_NAMES` name, [(sum, sum of squares) of returns per block]) of one run."""
    ts, open_, high, low, close, volume = bars
    n = len(close)
    units, _cash, equity, borrow, fills, ruined, halted = execution.simulate(
        ts, open_, high, low, close, volume, target, scale, p
    )
    rows = [vars(f) for f in fills]
    trades = ledger.trades(rows, n - 1, float(close[-1]), sum(borrow)) if rows else []
    r = _returns(equity)
    mean = _mean(r)
    std = math.sqrt(sum((x - mean) ** 2 for x in r) / (len(r) - 1)) if len(r) > 1 else math.nan
    peaks = [max(equity[: i + 1]) for i in range(n)]
    longest = run = 0
    for i in range(1, n):  # bars below the running peak (a bar back at the peak has recovered)
        run = 0 if equity[i] >= peaks[i - 1] else run + 1
        longest = max(longest, run)
    leverage = [_ratio(abs(units[i] * close[i]), equity[i]) for i in range(n)]
    finite_leverage = [x for x in leverage if math.isfinite(x)]
    closed = [t for t in trades if not t["is_open"]]
    wins = [t["net_pnl"] for t in closed if t["net_pnl"] > 0]
    losses = [t["net_pnl"] for t in closed if t["net_pnl"] < 0]
    returns = [t["return_"] for t in closed]
    stats = {
        "n_returns": float(len(r)),
        "mean": mean,
        "std": std,
        "downside": math.sqrt(_mean([min(x, 0.0) ** 2 for x in r])) if r else math.nan,
        "max_drawdown": min([0.0, *(_ratio(equity[i], peaks[i]) - 1.0 for i in range(n))]),
        "max_dd_bars": float(longest),
        "final_equity": equity[-1],
        "exposed_bars": float(sum(1 for u in units if u != 0.0)),
        "leverage_sum": sum(finite_leverage),
        "leverage_count": float(len(finite_leverage)),
        "equity_sum": sum(equity),
        "traded": sum(abs(f["units"]) * f["price"] for f in rows),
        "fill_count": float(len(rows)),
        "spread": sum(f["spread_cost"] for f in rows),
        "slippage": sum(f["slippage_cost"] for f in rows),
        "commission": sum(f["commission"] for f in rows),
        "borrow": sum(borrow),
        "closed_trades": float(len(closed)),
        "open_trade": 1.0 if trades and trades[-1]["is_open"] else 0.0,
        "wins": float(len(wins)),
        "win_sum": sum(wins),
        "losses": float(len(losses)),
        "loss_sum": sum(losses),
        "return_sum": sum(returns),
        "best_return": max(returns) if returns else math.nan,
        "worst_return": min(returns) if returns else math.nan,
        "bars_held_sum": float(sum(t["bars_held"] for t in closed)),
        "ruined": float(ruined),
        "halted": float(halted),
    }
    blocks = []
    for g in range(len(bounds) - 1):
        block = np.array([x if math.isfinite(x) else 0.0 for x in r[bounds[g] : bounds[g + 1]]])
        blocks.append((float(np.sum(block)), float(np.sum(block * block))))  # np.sum's order
    return stats, blocks


def sweep_cross(
    bars: tuple[Any, ...],
    scale: list[float],
    features: list[list[float]],
    a_idx: list[int],
    b_idx: list[int],
    long_value: list[float],
    short_value: list[float],
    p: dict[str, Any],
    bounds: list[int],
) -> list[tuple[dict[str, float], list[tuple[float, float]]]]:
    """Twin of `sweep_cross_nb`: combination c trades the cross of features a_idx[c], b_idx[c]."""
    return [
        combination(bars, cross_target(features[a], features[b], lv, sv), scale, p, bounds)
        for a, b, lv, sv in zip(a_idx, b_idx, long_value, short_value, strict=True)
    ]


def sweep_targets(
    bars: tuple[Any, ...],
    scale: list[float],
    targets: list[list[float]],
    p: dict[str, Any],
    bounds: list[int],
) -> list[tuple[dict[str, float], list[tuple[float, float]]]]:
    """Twin of `sweep_targets_nb`: combination c trades targets[c]."""
    return [combination(bars, t, scale, p, bounds) for t in targets]
