"""One-pass statistics of an equity path (SPEC §5), the heavy part of the metrics."""

from __future__ import annotations

import math

import numpy as np

from ._jit import njit


@njit
def equity_stats_nb(equity):
    """Per-bar return moments and drawdown facts of `equity` in one pass.

    Returns `(n_returns, mean, std_ddof1, downside_dev, max_drawdown, max_dd_duration_bars)`
    where returns are `equity[i] / equity[i-1] - 1` for i >= 1, the downside deviation is
    `sqrt(mean(min(r, 0)^2))`, `max_drawdown = min(equity / cummax(equity) - 1)` and the
    duration is the longest run of bars spent below the running peak (a bar back at the peak
    has recovered: flat equity is never in drawdown). Mean and variance use
    Welford's update, equal to numpy's two-pass values to ~1e-15 relative.
    """
    n = equity.shape[0]
    mean = 0.0
    m2 = 0.0
    down2 = 0.0
    count = 0
    peak = -np.inf
    max_dd = 0.0
    under = 0
    longest = 0
    for i in range(n):
        e = equity[i]
        if e >= peak:
            peak = e
            under = 0
        else:
            under += 1
            if under > longest:
                longest = under
        dd = e / peak - 1.0
        if dd < max_dd:
            max_dd = dd
        if i > 0:
            r = e / equity[i - 1] - 1.0
            count += 1
            delta = r - mean
            mean += delta / count
            m2 += delta * (r - mean)
            if r < 0.0:
                down2 += r * r
    std = math.sqrt(m2 / (count - 1)) if count > 1 else np.nan
    downside = math.sqrt(down2 / count) if count > 0 else np.nan
    if count == 0:
        mean = np.nan
    return count, mean, std, downside, max_dd, longest


@njit
def round_significant_nb(x, digits, out):
    """`x` rounded to `digits` significant digits (half to even), NaN and inf kept.

    Tables are written with these values so their bytes do not depend on the last bit of a
    float. Equals `float(f"{v:.{digits}g}")` except, rarely, for values within an ulp of a
    decimal half-way point. Magnitudes beyond ~1e±288 (never money or prices) are left as they are.
    """
    for i in range(x.shape[0]):
        v = x[i]
        if v == 0.0 or not math.isfinite(v):
            out[i] = v
            continue
        exponent = math.floor(math.log10(abs(v)))
        shift = digits - 1 - exponent
        if shift > 300 or shift < -300:
            out[i] = v
        elif shift >= 0:
            scale = 10.0**shift
            out[i] = np.round(v * scale) / scale
        else:
            scale = 10.0 ** (-shift)
            out[i] = np.round(v / scale) * scale
    return out
