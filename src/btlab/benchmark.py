"""The benchmark a run is measured against (SPEC §5): its per-bar equity path, in currency.

`metrics.benchmark` picks it. `"auto"` (the default) is the equal-weight index of the run's
symbols, frictionless and rebalanced to equal weights every bar: its return over bar i is the
mean of the bar's returns of the symbols listed at bar i (`basket_returns`). For one symbol that
is its buy-and-hold, `close[i] / close[0]`. `"none"` turns it off. From Python a caller may hand
in its own series of levels (`run(config, data, benchmark=series)`): it is aligned to the run's
clock by timestamp (`given_benchmark`) and its content hash joins the config hash
(`with_benchmark_hash`), so two runs with different benchmarks are never the same run.

Every path is scaled to the initial cash: `benchmark[0] = initial_cash`, so it starts where the
strategy's account does and `benchmark[-1] / initial_cash - 1` is its total return.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .errors import ConfigError, DataError
from .hashing import canonical_json, sha256_hex

__all__ = [
    "basket_returns",
    "benchmark_equity",
    "given_benchmark",
    "run_benchmark",
    "with_benchmark_hash",
]

_SHOWN = 3  # timestamps named in an error


def basket_returns(close: np.ndarray) -> np.ndarray:
    """Per-bar returns of the equal-weight index of (n, K) closes (NaN where a symbol has no
    bar), rebalanced every bar: `b[0] = 0`, and for i >= 1 the mean over the symbols listed at
    bar i of `mark[i, k] / mark[i-1, k] - 1` (`mark` = the last close, as the engine marks a
    position). Listed at i: a bar at or before i-1 (it could have been held into bar i) and its
    last bar at or after i (after a delisting it drops out, its weight going to the others). A
    bar with no listed symbol returns 0 (the index sits in cash)."""
    n, k = close.shape
    out = np.zeros(n)
    if n < 2 or k == 0:
        return out
    has_bar = np.isfinite(close)
    marks = pd.DataFrame(close).ffill().to_numpy()
    first = np.where(has_bar.any(axis=0), has_bar.argmax(axis=0), n)
    last = n - 1 - has_bar[::-1].argmax(axis=0)
    bars = np.arange(1, n)[:, None]
    listed = (first[None, :] <= bars - 1) & (last[None, :] >= bars)
    with np.errstate(divide="ignore", invalid="ignore"):
        step = np.where(listed, marks[1:] / marks[:-1] - 1.0, 0.0)
    count = listed.sum(axis=1)
    out[1:] = np.where(count > 0, step.sum(axis=1) / np.maximum(count, 1), 0.0)
    return out


def benchmark_equity(close: np.ndarray, initial_cash: float) -> np.ndarray:
    """The default benchmark's equity per clock bar, from `initial_cash`: one symbol's
    buy-and-hold (`initial_cash * close / close[0]`; `close` 1-D, or (n, 1)), else the
    equal-weight index of `basket_returns` compounded."""
    prices = close if close.ndim == 2 else close[:, None]
    if prices.shape[1] == 1:
        one = prices[:, 0]
        held: np.ndarray = initial_cash * (one / one[0])
        return held
    compounded: np.ndarray = initial_cash * np.cumprod(1.0 + basket_returns(prices))
    return compounded


def given_benchmark(series: pd.Series, ts_ns: np.ndarray, initial_cash: float) -> np.ndarray:
    """A caller's benchmark levels (prices or an equity curve, indexed by timestamp; naive
    timestamps are UTC) at the run's clock bars, scaled to start at `initial_cash`.

    Every clock bar must have a value at exactly its timestamp (other timestamps are ignored):
    a DataError names the first bars it lacks. The values there must be finite and positive.
    """
    if not isinstance(series, pd.Series):
        raise ConfigError(
            "invalid benchmark", [("benchmark", f"a pandas Series, not {type(series).__name__}")]
        )
    if not isinstance(series.index, pd.DatetimeIndex):
        raise DataError(
            "benchmark_index",
            f"the benchmark's index must be a DatetimeIndex, not {type(series.index).__name__} "
            "(e.g. series.index = pd.to_datetime(series.index, utc=True))",
        )
    index = series.index.tz_localize("UTC") if series.index.tz is None else series.index
    stamps = index.tz_convert("UTC").as_unit("ns").asi8
    if np.unique(stamps).shape[0] != stamps.shape[0]:
        raise DataError("benchmark_index", "the benchmark's index repeats a timestamp")
    values = pd.Series(series.to_numpy(dtype=np.float64, na_value=np.nan), index=stamps)
    aligned = values.reindex(ts_ns).to_numpy()
    missing = np.flatnonzero(~np.isin(ts_ns, stamps))
    if missing.size:
        raise DataError(
            "benchmark_coverage",
            f"the benchmark has no value at {missing.size} of the run's {ts_ns.shape[0]} bars "
            f"(first: {_iso(ts_ns[missing[:_SHOWN]])}); give a value at every bar's timestamp, "
            "e.g. series.reindex(bar_timestamps, method='ffill') to carry levels forward",
            missing[:_SHOWN].tolist(),
        )
    bad = np.flatnonzero(~(np.isfinite(aligned) & (aligned > 0)))
    if bad.size:
        raise DataError(
            "benchmark_values",
            f"the benchmark's levels must be finite and positive at every bar; {bad.size} are "
            f"not (first at {_iso(ts_ns[bad[:_SHOWN]])})",
            bad[:_SHOWN].tolist(),
        )
    scaled: np.ndarray = initial_cash * (aligned / aligned[0])
    return scaled


def run_benchmark(
    choice: str, close: np.ndarray, ts_ns: np.ndarray, initial_cash: float,
    given: pd.Series | None = None,
) -> np.ndarray | None:  # fmt: skip
    """A run's benchmark equity per clock bar: the caller's series where given (a ConfigError
    where `metrics.benchmark` is "none": which one is meant?), None where `choice` is "none",
    else the default (`benchmark_equity` of the run's closes)."""
    if given is not None:
        if choice == "none":
            raise ConfigError(
                "invalid request",
                [("metrics.benchmark", 'is "none", but a benchmark series was given to run()')],
            )
        return given_benchmark(given, ts_ns, initial_cash)
    if choice == "none":
        return None
    return benchmark_equity(close, initial_cash)


def with_benchmark_hash(config_hash: str, benchmark: np.ndarray | None) -> str:
    """The config hash of a run given its own benchmark: the request's hash joined with the
    content hash of the aligned benchmark path (`config_hash` itself without one)."""
    if benchmark is None:
        return config_hash
    content = sha256_hex(np.ascontiguousarray(benchmark, dtype="<f8").tobytes())
    return sha256_hex(canonical_json({"run": config_hash, "benchmark": content}).encode())


def _iso(ts_ns: np.ndarray) -> str:
    return ", ".join(pd.Timestamp(int(t), tz="UTC").isoformat() for t in ts_ns)
