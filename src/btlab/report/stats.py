"""The numbers behind the report's return and drawdown sections, each computed in one place.

- **Per-bar returns** are SPEC §5's `r[i] = equity[i] / equity[i-1] - 1` (i >= 1), NaN where
  not finite; the metrics and validation read the same returns.
- **Rolling Sharpe and volatility** over `rolling_window` bars: the metrics' own annualization
  (`metrics.annualized_ratio` with `sqrt(periods_per_year)`, std with ddof 1), so a window
  over a whole run gives its `sharpe` and `annual_volatility` (to rounding: pandas' rolling
  sums are not NumPy's pairwise ones).
- **The histogram** marks the mean return and the historical VaR 95 %: the 5 % quantile of the
  per-bar returns (linear interpolation), a return (negative for a loss); CVaR 95 % is the mean
  of the returns at or below it. Its bins span the 0.1 % to 99.9 % quantiles (widened to hold
  the mean and the VaR): the few returns beyond are counted, not drawn.
- **Drawdown periods** are the runs of bars below the running equity peak of
  `metrics.drawdown_path` (a bar back at the peak has recovered, as `max_drawdown_duration_bars`
  counts): start is the first bar below the peak, valley the deepest bar, recovery the first bar
  back at the peak (None while the period is open at the end), duration the bars below the peak.

`metrics` is imported inside the functions (it loads numba): rendering imports it, the light
commands that only import the report package do not.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

#: The rolling window in years of bars (half a year: 126 daily bars) ...
ROLLING_YEARS = 0.5
#: ... and at most this fraction of the run, so a short run still draws a curve.
ROLLING_MAX_SHARE = 0.25
#: No rolling chart below this window (a Sharpe of fewer returns says little).
ROLLING_MIN_BARS = 10
#: The quantiles of the per-bar returns the histogram's bins span.
HISTOGRAM_RANGE = (0.001, 0.999)


def bar_returns_path(equity: np.ndarray) -> np.ndarray:
    """Per-bar returns aligned with the bars: element i is `equity[i] / equity[i-1] - 1`, NaN at
    bar 0 and wherever the return is not finite (the returns `validation.run.bar_returns` keeps)."""
    eq = np.asarray(equity, dtype=np.float64)
    out = np.full(eq.shape[0], np.nan)
    if eq.shape[0] > 1:
        with np.errstate(divide="ignore", invalid="ignore"):
            r = eq[1:] / eq[:-1] - 1.0
        out[1:] = np.where(np.isfinite(r), r, np.nan)
    return out


def rolling_window(n_bars: int, periods_per_year: float) -> int:
    """Bars per rolling window: half a year of bars, at most a quarter of the run; 0 (no chart)
    where that is under ROLLING_MIN_BARS."""
    wanted = round(periods_per_year * ROLLING_YEARS) if math.isfinite(periods_per_year) else 0
    window = min(int(wanted), int(n_bars * ROLLING_MAX_SHARE))
    return window if window >= ROLLING_MIN_BARS else 0


def rolling_sharpe_volatility(
    equity: np.ndarray, window: int, periods_per_year: float
) -> tuple[np.ndarray, np.ndarray]:
    """(annualized Sharpe, annualized volatility) of the `window` returns ending at each bar;
    NaN until a window is full or where it holds an undefined return."""
    from ..metrics import annualized_ratio  # here: it loads numba (see the docstring)

    returns = pd.Series(bar_returns_path(equity))
    rolling = returns.rolling(window, min_periods=window)
    mean, std = rolling.mean().to_numpy(), rolling.std(ddof=1).to_numpy()
    root = math.sqrt(periods_per_year)
    sharpe = np.array([annualized_ratio(float(m), float(s), root) if np.isfinite(m) else math.nan
                       for m, s in zip(mean, std, strict=True)])  # fmt: skip
    return sharpe, std * root


@dataclass(frozen=True)
class ReturnHistogram:
    """Per-bar returns binned: `counts[i]` returns in `[edges[i], edges[i+1])` (the last bin
    closed) over the central HISTOGRAM_RANGE of the returns (`outside` returns lie beyond it and
    are in no bin); the mean, std, VaR 95 % (the 5 % quantile) and CVaR 95 % (the mean at or
    below it) are of all `n` returns."""

    counts: np.ndarray
    edges: np.ndarray
    n: int
    outside: int
    mean: float
    std: float
    var95: float
    cvar95: float


def return_histogram(equity: np.ndarray, bins: int = 60) -> ReturnHistogram | None:
    """The histogram of the finite per-bar returns; None with fewer than two."""
    r = bar_returns_path(equity)
    r = r[np.isfinite(r)]
    if r.size < 2:
        return None
    var95 = float(np.quantile(r, 0.05))
    # the central range, so that a few extreme bars do not squeeze the rest into three bins
    lo, hi = (float(q) for q in np.quantile(r, HISTOGRAM_RANGE))
    lo, hi = min(lo, var95), max(hi, float(r.mean()))
    if not hi > lo:
        lo, hi = lo - 1e-4, hi + 1e-4
    inside = (r >= lo) & (r <= hi)
    counts, edges = np.histogram(r[inside], bins=bins, range=(lo, hi))
    return ReturnHistogram(counts=counts, edges=edges, n=int(r.size),
                           outside=int(r.size - inside.sum()), mean=float(r.mean()),
                           std=float(r.std(ddof=1)), var95=var95,
                           cvar95=float(r[r <= var95].mean()))  # fmt: skip


@dataclass(frozen=True)
class DrawdownPeriod:
    """One run of bars below the running peak (bar indices; `recovery` None while open)."""

    start: int
    valley: int
    recovery: int | None
    depth: float
    duration: int


def drawdown_periods(equity: np.ndarray) -> list[DrawdownPeriod]:
    """Every drawdown period of an equity path, deepest first (ties: the earlier first)."""
    from ..metrics import drawdown_path  # here: it loads numba (see the docstring)

    dd = drawdown_path(np.asarray(equity, dtype=np.float64))
    below = np.concatenate([[False], dd < 0, [False]])
    edges = np.flatnonzero(below[1:] != below[:-1])  # starts and ends (exclusive), alternating
    periods = []
    n = dd.shape[0]
    for start, end in zip(edges[::2], edges[1::2], strict=True):
        valley = start + int(np.argmin(dd[start:end]))
        periods.append(DrawdownPeriod(start=int(start), valley=int(valley),
                                      recovery=int(end) if end < n else None,
                                      depth=float(dd[valley]), duration=int(end - start)))  # fmt: skip
    periods.sort(key=lambda p: (p.depth, p.start))
    return periods
