"""Indicator kernels: rolling and recursive statistics over one float64 array.

Every indicator returns a float64 array of the input's length with NaN during warm-up, and
is causal: `out[i]` depends on `x[0..i]` only, so running on a prefix gives the prefix of the
result. Each is a jitted `*_into_nb` kernel that writes into
the caller's `out` (and allocates nothing) and, under the plain name without `_into`, a
plain-Python wrapper that allocates `out` and calls it (the names the core and plugins call on
NumPy arrays). The docstrings name the plain pandas equivalent; tests compare both that and a
plain-Python twin (tests/reference/indicators.py).

NaN inside the data is not expected (datasets are validated) but never crashes a kernel:
rolling kernels answer NaN while a NaN is inside the window (as pandas with
`min_periods=window` does) and recover after it; the recursive (ewm) kernels skip a NaN
observation and carry the last value (as pandas with `ignore_na=True`).
"""

from __future__ import annotations

import math

import numpy as np

from ._jit import njit


@njit
def _two_sum_nb(a, b):
    """Knuth's TwoSum: `(s, e)` with `s = fl(a + b)` and `s + e == a + b` exactly; no branch."""
    s = a + b
    bp = s - a
    e = (a - (s - bp)) + (b - bp)
    return s, e


@njit
def _slide_sum_nb(s, c, new, old):
    """Compensated running sum `s + c` after adding `new` and removing `old` (exact TwoSums)."""
    d, e1 = _two_sum_nb(new, -old)
    s, e2 = _two_sum_nb(s, d)
    return s, c + (e1 + e2)


@njit
def _sma_fast_nb(x, window, out):
    """`sma_nb` without NaN handling; returns False where the running sum went non-finite."""
    n = x.shape[0]
    s = 0.0
    c = 0.0
    for i in range(min(window - 1, n)):
        s, c = _slide_sum_nb(s, c, x[i], 0.0)
        out[i] = np.nan
    if window - 1 < n:
        s, c = _slide_sum_nb(s, c, x[window - 1], 0.0)
        out[window - 1] = (s + c) / window
    for i in range(window, n):
        s, c = _slide_sum_nb(s, c, x[i], x[i - window])
        out[i] = (s + c) / window
    return math.isfinite(s + c)


@njit
def _sma_checked_nb(x, window, out):
    """`sma_nb` where non-finite values count as 0 and blank the windows that see them."""
    n = x.shape[0]
    s = 0.0
    c = 0.0
    last_bad = -window
    for i in range(n):
        v = x[i]
        if not math.isfinite(v):
            last_bad = i
            v = 0.0
        old = 0.0
        if i >= window:
            old = x[i - window]
            if not math.isfinite(old):
                old = 0.0
        s, c = _slide_sum_nb(s, c, v, old)
        out[i] = np.nan if i < window - 1 or i - last_bad < window else (s + c) / window


def sma_nb(x: np.ndarray, window: int) -> np.ndarray:
    """Simple moving average: `pd.Series(x).rolling(window).mean()`.

    O(n) running sum, compensated (each step adds `x[i] - x[i - window]` as an exact TwoSum
    pair and keeps the rounding errors apart), so the result stays within a few ulps of the
    exactly rounded window mean over any length of data. A non-finite value makes the
    `window` results that see it NaN (a second, checked pass runs only then; both passes do
    the same arithmetic on finite values, so results do not depend on later data).
    """
    return sma_into_nb(x, window, np.empty(x.shape[0], dtype=np.float64))


@njit
def sma_into_nb(x, window, out):
    """`sma_nb` written into `out` (length of `x`), which it returns."""
    if not _sma_fast_nb(x, window, out):
        _sma_checked_nb(x, window, out)
    return out


def ewm_nb(x: np.ndarray, alpha: float, min_periods: int) -> np.ndarray:
    """Exponentially weighted mean, recursive form: `ewm(alpha=alpha, adjust=False,
    ignore_na=True, min_periods=min_periods).mean()`.

    `y = x[first]`, then `y = (1 - alpha) * y + alpha * x[i]`; NaN observations are skipped
    (the last value carries). The result is NaN until `min_periods` observations were seen.
    """
    return ewm_into_nb(x, alpha, min_periods, np.empty(x.shape[0], dtype=np.float64))


@njit
def ewm_into_nb(x, alpha, min_periods, out):
    """`ewm_nb` written into `out` (length of `x`), which it returns."""
    n = x.shape[0]
    y = np.nan
    seen = 0
    keep = 1.0 - alpha
    for i in range(n):
        v = x[i]
        if not math.isnan(v):
            y = v if seen == 0 else keep * y + alpha * v
            seen += 1
        out[i] = y if seen >= min_periods else np.nan
    return out


def ema_nb(x: np.ndarray, span: int) -> np.ndarray:
    """Exponential moving average: `ewm(span=span, adjust=False, min_periods=span,
    ignore_na=True).mean()`.

    `alpha = 2 / (span + 1)`, seeded with the first value; NaN for the first `span - 1` bars.
    A NaN observation is skipped (`ignore_na=True`: pandas' default `False` would decay the
    last value over the gap instead); without NaN the two are the same.
    """
    return ema_into_nb(x, span, np.empty(x.shape[0], dtype=np.float64))


@njit
def ema_into_nb(x, span, out):
    """`ema_nb` written into `out` (length of `x`), which it returns."""
    return ewm_into_nb(x, 2.0 / (span + 1.0), span, out)


@njit
def _window_moments_nb(x, stop, window):
    """Exact restart for `rolling_std_nb` over `x[stop - window:stop]`: `(k, s1, s2)` with
    `k` the window mean (corrected two-pass), `s1 = sum(x - k)`, `s2 = sum((x - k) ** 2)`."""
    start = stop - window
    m = 0.0
    for j in range(start, stop):
        m += x[j]
    m /= window
    r = 0.0
    for j in range(start, stop):
        r += x[j] - m
    k = m + r / window
    s1 = 0.0
    c1 = 0.0
    s2 = 0.0
    c2 = 0.0
    for j in range(start, stop):
        d = x[j] - k
        s1, c1 = _slide_sum_nb(s1, c1, d, 0.0)
        s2, c2 = _slide_sum_nb(s2, c2, d * d, 0.0)
    return k, s1 + c1, s2 + c2


def rolling_std_nb(x: np.ndarray, window: int, ddof: int = 1) -> np.ndarray:
    """Rolling standard deviation: `pd.Series(x).rolling(window).std(ddof=ddof)`.

    Compensated running sums of `d = x - k` and `d ** 2` about a shift `k` (the window mean
    at the last restart), `m2 = sum(d**2) - sum(d)**2 / window`. An exact two-pass restart
    re-centres `k` wherever that subtraction would cancel more than two digits, so the
    result keeps ~1e-13 relative accuracy however large the level is against the spread
    (where pandas' running update drifts). All NaN where `window <= ddof`.
    """
    return rolling_std_into_nb(x, window, ddof, np.empty(x.shape[0], dtype=np.float64))


@njit
def rolling_std_into_nb(x, window, ddof, out):
    """`rolling_std_nb` written into `out` (length of `x`), which it returns."""
    n = x.shape[0]
    if window <= ddof:
        out[:] = np.nan
        return out
    last_bad = -window
    fresh = False
    k = 0.0
    s1 = 0.0
    c1 = 0.0
    s2 = 0.0
    c2 = 0.0
    m2 = 0.0
    for i in range(n):
        if not math.isfinite(x[i]):
            last_bad = i
        if i < window - 1 or i - last_bad < window:
            fresh = False
            out[i] = np.nan
            continue
        if fresh:
            dn = x[i] - k
            do = x[i - window] - k
            s1, c1 = _slide_sum_nb(s1, c1, dn, do)
            s2, c2 = _slide_sum_nb(s2, c2, dn * dn, do * do)
            t1 = s1 + c1
            t2 = s2 + c2
            m2 = t2 - t1 * t1 / window
            fresh = m2 >= 1e-2 * t2
        if not fresh:
            k, t1, t2 = _window_moments_nb(x, i + 1, window)
            s1, c1, s2, c2 = t1, 0.0, t2, 0.0
            m2 = t2 - t1 * t1 / window
            fresh = True
        out[i] = math.sqrt(m2 / (window - ddof)) if m2 > 0.0 else 0.0
    return out


@njit
def rolling_extreme_into_nb(x, window, is_max, out, buf):
    """Rolling max (`is_max`) or min into `out`, van Herk / Gil-Werman: blocks of `window`
    bars; the answer is the extreme of the previous block's suffix and the current block's
    prefix, the suffix extremes kept in `buf` (`window` values); every answer uses bars up to
    `i` only. Returns `out`."""
    n = x.shape[0]
    neutral = -np.inf if is_max else np.inf
    buf[:window] = neutral
    last_bad = -window
    for b0 in range(0, n, window):
        b1 = min(b0 + window, n)
        run = neutral
        for i in range(b0, b1):
            v = x[i]
            if math.isnan(v):
                last_bad = i
                v = neutral
            j = i - b0 + 1
            if is_max:
                run = max(run, v)
                out[i] = max(run, buf[j]) if j < window else run
            else:
                run = min(run, v)
                out[i] = min(run, buf[j]) if j < window else run
            if i < window - 1 or i - last_bad < window:
                out[i] = np.nan
        if b1 - b0 == window:
            acc = neutral
            for i in range(b1 - 1, b0 - 1, -1):
                v = x[i]
                if not math.isnan(v):
                    acc = max(acc, v) if is_max else min(acc, v)
                buf[i - b0] = acc
    return out


def rolling_max_nb(x: np.ndarray, window: int) -> np.ndarray:
    """Rolling maximum: `pd.Series(x).rolling(window).max()` (O(n), no data-dependent branches)."""
    out = np.empty(x.shape[0], dtype=np.float64)
    return rolling_extreme_into_nb(x, window, True, out, np.empty(window))


def rolling_min_nb(x: np.ndarray, window: int) -> np.ndarray:
    """Rolling minimum: `pd.Series(x).rolling(window).min()` (O(n), no data-dependent branches)."""
    out = np.empty(x.shape[0], dtype=np.float64)
    return rolling_extreme_into_nb(x, window, False, out, np.empty(window))


def simple_returns_nb(x: np.ndarray) -> np.ndarray:
    """Simple returns: `pd.Series(x).pct_change(fill_method=None)`; the first value is NaN."""
    return simple_returns_into_nb(x, np.empty(x.shape[0], dtype=np.float64))


@njit
def simple_returns_into_nb(x, out):
    """`simple_returns_nb` written into `out` (the input's length), which it returns."""
    n = x.shape[0]
    if n > 0:
        out[0] = np.nan
    for i in range(1, n):
        out[i] = x[i] / x[i - 1] - 1.0
    return out


def log_returns_nb(x: np.ndarray) -> np.ndarray:
    """Log returns: `np.log(s / s.shift(1))`; the first value is NaN."""
    return log_returns_into_nb(x, np.empty(x.shape[0], dtype=np.float64))


@njit
def log_returns_into_nb(x, out):
    """`log_returns_nb` written into `out` (the input's length), which it returns."""
    n = x.shape[0]
    if n > 0:
        out[0] = np.nan
    for i in range(1, n):
        out[i] = math.log(x[i] / x[i - 1])
    return out


def rsi_nb(close: np.ndarray, window: int) -> np.ndarray:
    """Relative strength index with Wilder smoothing, in the common pandas formulation::

        delta = close.diff()
        kw = dict(alpha=1/window, adjust=False, min_periods=window, ignore_na=True)
        up = delta.clip(lower=0).ewm(**kw).mean()
        down = (-delta.clip(upper=0)).ewm(**kw).mean()
        rsi = 100 - 100 / (1 + up / down)

    The averages are seeded with the first change (not Wilder's SMA of the first `window`
    changes), so the first value is at index `window`. Computed as `100 * up / (up + down)`:
    100 where nothing fell, and 50 where nothing moved over the whole memory (`up == down
    == 0`, where the pandas formula gives NaN). One pass, no temporaries.
    """
    return rsi_into_nb(close, window, np.empty(close.shape[0], dtype=np.float64))


@njit
def rsi_into_nb(close, window, out):
    """`rsi_nb` written into `out` (the input's length), which it returns."""
    n = close.shape[0]
    alpha = 1.0 / window
    keep = 1.0 - alpha
    up = 0.0
    down = 0.0
    seen = 0
    for i in range(n):
        if i > 0:
            d = close[i] - close[i - 1]
            if not math.isnan(d):
                g = d if d > 0.0 else 0.0
                lo = -d if d < 0.0 else 0.0
                if seen == 0:
                    up = g
                    down = lo
                else:
                    up = keep * up + alpha * g
                    down = keep * down + alpha * lo
                seen += 1
        total = up + down
        if seen < window or math.isnan(total):
            out[i] = np.nan
        elif total > 0.0:
            out[i] = 100.0 * up / total
        else:
            out[i] = 50.0
    return out


def true_range_nb(high: np.ndarray, low: np.ndarray, close: np.ndarray) -> np.ndarray:
    """True range: `max(high - low, |high - prev_close|, |low - prev_close|)`; `high - low` at 0."""
    return true_range_into_nb(high, low, close, np.empty(high.shape[0], dtype=np.float64))


@njit
def true_range_into_nb(high, low, close, out):
    """`true_range_nb` written into `out` (the input's length), which it returns."""
    n = high.shape[0]
    for i in range(n):
        tr = high[i] - low[i]
        if i > 0:
            pc = close[i - 1]
            a = abs(high[i] - pc)
            b = abs(low[i] - pc)
            if a > tr:
                tr = a
            if b > tr:
                tr = b
        out[i] = tr
    return out


def atr_nb(high: np.ndarray, low: np.ndarray, close: np.ndarray, window: int) -> np.ndarray:
    """Average true range, Wilder smoothing: `true_range.ewm(alpha=1/window, adjust=False,
    min_periods=window, ignore_na=True).mean()`, seeded with `high[0] - low[0]`; the first
    value is at index `window - 1`. The true range is `max(high - low, |high - prev_close|,
    |low - prev_close|)` (`high - low` at bar 0), as `true_range_nb`. One pass, no temporaries.
    """
    return atr_into_nb(high, low, close, window, np.empty(high.shape[0], dtype=np.float64))


@njit
def atr_into_nb(high, low, close, window, out):
    """`atr_nb` written into `out` (the input's length), which it returns."""
    n = high.shape[0]
    alpha = 1.0 / window
    keep = 1.0 - alpha
    y = 0.0
    seen = 0
    for i in range(n):
        tr = high[i] - low[i]
        if i > 0:
            pc = close[i - 1]
            a = abs(high[i] - pc)
            b = abs(low[i] - pc)
            if a > tr:
                tr = a
            if b > tr:
                tr = b
        if not math.isnan(tr):
            y = tr if seen == 0 else keep * y + alpha * tr
            seen += 1
        out[i] = y if seen >= window else np.nan
    return out
