"""Plain-Python twin of kernels/metrics.py `equity_stats_nb`: lists, `math.fsum`, two passes."""

from __future__ import annotations

import math
from collections.abc import Sequence


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
