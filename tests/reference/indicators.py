"""Plain-Python twins of kernels/indicators.py, written from the definitions, not from the kernels.

Lists and loops, no numpy arithmetic and no pandas. Window sums are exact (`fractions.Fraction`)
and rounded once, so a twin is the correctly rounded value where the kernel promises "a few
ulps" or "~1e-13 relative". Rolling twins answer NaN for a window that holds a non-finite
value (sma, std) or a NaN (max, min); recursive twins skip NaN observations and carry the
last value. Each returns a float64 array of the input's length.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from fractions import Fraction

import numpy as np

NAN = math.nan


def _floats(x: Sequence[float]) -> list[float]:
    return [float(v) for v in x]


def _windows(x: list[float], window: int) -> list[list[float] | None]:
    """The window ending at each bar, or None during warm-up."""
    return [x[i - window + 1 : i + 1] if i >= window - 1 else None for i in range(len(x))]


def sma(x: Sequence[float], window: int) -> np.ndarray:
    """The exact window mean, correctly rounded; NaN where the window holds a non-finite value."""
    out = []
    for win in _windows(_floats(x), window):
        if win is None or not all(math.isfinite(v) for v in win):
            out.append(NAN)
        else:
            out.append(float(sum(Fraction(v) for v in win) / window))
    return np.array(out, dtype=np.float64)


def rolling_std(x: Sequence[float], window: int, ddof: int = 1) -> np.ndarray:
    """sqrt(sum((v - mean)^2) / (window - ddof)) with the sum exact; NaN where window <= ddof."""
    out = []
    for win in _windows(_floats(x), window):
        if window <= ddof or win is None or not all(math.isfinite(v) for v in win):
            out.append(NAN)
            continue
        exact = [Fraction(v) for v in win]
        mean = sum(exact) / window
        out.append(math.sqrt(float(sum((v - mean) ** 2 for v in exact) / (window - ddof))))
    return np.array(out, dtype=np.float64)


def _extreme(x: Sequence[float], window: int, pick: type[max] | type[min]) -> np.ndarray:
    out = []
    for win in _windows(_floats(x), window):
        out.append(NAN if win is None or any(math.isnan(v) for v in win) else pick(win))
    return np.array(out, dtype=np.float64)


def rolling_max(x: Sequence[float], window: int) -> np.ndarray:
    """Largest value of the window (inf counts); NaN where the window holds a NaN."""
    return _extreme(x, window, max)


def rolling_min(x: Sequence[float], window: int) -> np.ndarray:
    """Smallest value of the window (-inf counts); NaN where the window holds a NaN."""
    return _extreme(x, window, min)


def ewm(x: Sequence[float], alpha: float, min_periods: int) -> np.ndarray:
    """Recursive EW mean seeded with the first observation; NaN observations are skipped.

    NaN until `min_periods` observations were seen.
    """
    out = []
    mean = NAN
    seen = 0
    for v in _floats(x):
        if not math.isnan(v):
            mean = v if seen == 0 else (1.0 - alpha) * mean + alpha * v
            seen += 1
        out.append(mean if seen >= min_periods else NAN)
    return np.array(out, dtype=np.float64)


def ema(x: Sequence[float], span: int) -> np.ndarray:
    """EMA with alpha = 2 / (span + 1), NaN for the first span - 1 observations."""
    return ewm(x, 2.0 / (span + 1.0), span)


def simple_returns(x: Sequence[float]) -> np.ndarray:
    v = _floats(x)
    out = [NAN] * min(1, len(v))
    for i in range(1, len(v)):
        out.append(v[i] / v[i - 1] - 1.0)
    return np.array(out, dtype=np.float64)


def log_returns(x: Sequence[float]) -> np.ndarray:
    v = _floats(x)
    out = [NAN] * min(1, len(v))
    for i in range(1, len(v)):
        ratio = v[i] / v[i - 1]
        out.append(NAN if math.isnan(ratio) else math.log(ratio))
    return np.array(out, dtype=np.float64)


def rsi(close: Sequence[float], window: int) -> np.ndarray:
    """Wilder RSI: gains and losses of each change averaged by `ewm(alpha = 1 / window)`, then
    `100 - 100 / (1 + up / down)`; 100 where nothing fell, 50 where nothing moved at all."""
    c = _floats(close)
    changes = [NAN] + [c[i] - c[i - 1] for i in range(1, len(c))]
    gains = [d if math.isnan(d) else max(d, 0.0) for d in changes[: len(c)]]
    losses = [d if math.isnan(d) else max(-d, 0.0) for d in changes[: len(c)]]
    up = ewm(gains, 1.0 / window, window)
    down = ewm(losses, 1.0 / window, window)
    out = []
    for u, d in zip(up.tolist(), down.tolist(), strict=True):
        if math.isnan(u) or math.isnan(d):
            out.append(NAN)
        elif d == 0.0:
            out.append(100.0 if u > 0.0 else 50.0)
        else:
            out.append(100.0 - 100.0 / (1.0 + u / d))
    return np.array(out, dtype=np.float64)


def true_range(high: Sequence[float], low: Sequence[float], close: Sequence[float]) -> np.ndarray:
    """max(high - low, |high - prev close|, |low - prev close|); high - low at bar 0 and where
    the previous close is NaN; NaN where high or low is NaN."""
    h, lo, c = _floats(high), _floats(low), _floats(close)
    out = []
    for i in range(len(h)):
        if math.isnan(h[i]) or math.isnan(lo[i]):
            out.append(NAN)
        elif i == 0 or math.isnan(c[i - 1]):
            out.append(h[i] - lo[i])
        else:
            out.append(max(h[i] - lo[i], abs(h[i] - c[i - 1]), abs(lo[i] - c[i - 1])))
    return np.array(out, dtype=np.float64)


def atr(
    high: Sequence[float], low: Sequence[float], close: Sequence[float], window: int
) -> np.ndarray:
    """Wilder's average of the true range: ewm(alpha = 1 / window), NaN for window - 1 bars."""
    return ewm(true_range(high, low, close).tolist(), 1.0 / window, window)
