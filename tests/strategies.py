"""Hypothesis strategies shared by the property tests: bars, targets, execution settings."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from hypothesis import strategies as st

from btlab.kernels import ExecParams


@dataclass(frozen=True)
class Bars:
    ts: np.ndarray
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray

    def __len__(self) -> int:
        return int(self.close.shape[0])

    def arrays(self) -> tuple[np.ndarray, ...]:
        return (self.ts, self.open, self.high, self.low, self.close, self.volume)


@st.composite
def bars(draw: st.DrawFn, min_size: int = 2, max_size: int = 60, zero_volume: bool = True) -> Bars:
    """Valid OHLCV bars: a random walk close, opens gapping around it, ranges that bracket both."""
    n = draw(st.integers(min_size, max_size))
    seed = draw(st.integers(0, 2**32 - 1))
    vol = draw(st.sampled_from([0.005, 0.02, 0.08]))
    rng = np.random.default_rng(seed)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, vol, n)))
    prev = np.concatenate([[100.0], close[:-1]])
    open_ = prev * np.exp(rng.normal(0.0, vol / 2, n))
    high = np.maximum(open_, close) * np.exp(np.abs(rng.normal(0.0, vol, n)))
    low = np.minimum(open_, close) * np.exp(-np.abs(rng.normal(0.0, vol, n)))
    volume = (
        rng.integers(0, 5, n).astype(np.float64) * 1000.0 if zero_volume else np.full(n, 1000.0)
    )
    steps = rng.choice(np.array([1, 1, 1, 3, 4]) * 86_400 * 10**9, n)
    ts = np.cumsum(steps).astype(np.int64) + 1_420_070_400 * 10**9
    return Bars(ts, open_, high, low, close, volume)


@st.composite
def targets(draw: st.DrawFn, n: int) -> np.ndarray:
    """Piecewise-constant targets from a small set of levels, including shorts and leverage."""
    levels = draw(
        st.lists(
            st.sampled_from([-2.0, -1.0, -0.5, 0.0, 0.0, 0.5, 1.0, 1.5]), min_size=1, max_size=8
        )
    )
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    changes = rng.random(n) < draw(st.sampled_from([0.05, 0.2, 0.6]))
    idx = np.cumsum(changes) % len(levels)
    return np.array(levels, dtype=np.float64)[idx]


@st.composite
def scales(draw: st.DrawFn, n: int, sizing: int) -> np.ndarray:
    """Per-bar size multipliers: ones for fraction and unit sizing (as the pipeline passes), a
    random scale for vol_target; either sometimes unknown (NaN) over a leading run of bars, as
    the vol-target scale is during its warm-up, and now and then on a later bar too."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    scale = rng.uniform(0.0, 2.0, n) if sizing == 2 else np.ones(n)
    if draw(st.booleans()):
        scale[: draw(st.integers(0, n))] = np.nan
    if draw(st.booleans()):
        scale[rng.random(n) < 0.1] = np.nan
    return scale


def exec_params(
    *, costs: bool = True, risk: bool = True, lots: bool = True, close_at_end: bool | None = None
) -> st.SearchStrategy[ExecParams]:
    """Execution settings with every cost and risk option in play (each switchable off)."""
    bps = st.sampled_from([0.0, 0.5, 3.0, 25.0]) if costs else st.just(0.0)
    money = st.sampled_from([0.0, 1.0, 7.5]) if costs else st.just(0.0)
    frac = st.sampled_from([0.0, 0.02, 0.05, 0.2]) if risk else st.just(0.0)
    return st.builds(
        ExecParams,
        initial_cash=st.sampled_from([1_000.0, 100_000.0]),
        fill_at=st.sampled_from([0, 1]),
        every_bar=st.booleans(),
        sizing=st.sampled_from([0, 1, 2]),
        unit_size=st.sampled_from([1.0, 10.0, 333.0]),
        max_leverage=st.sampled_from([0.5, 1.0, 3.0]),
        lot_size=st.sampled_from([0.0, 1.0, 0.25]) if lots else st.just(0.0),
        spread_bps=bps,
        slippage_bps=bps,
        commission_bps=bps,
        commission_fixed=money,
        commission_min=money,
        borrow_rate_annual=st.sampled_from([0.0, 0.03, 0.5]) if costs else st.just(0.0),
        skip_zero_volume=st.booleans(),
        stop_loss=frac,
        take_profit=frac,
        max_drawdown=st.sampled_from([0.0, 0.1, 0.3]) if risk else st.just(0.0),
        close_at_end=st.booleans() if close_at_end is None else st.just(close_at_end),
    )


SERIES_KINDS = ("walk", "noise", "offset", "steps", "flat_runs")


@st.composite
def series(
    draw: st.DrawFn,
    min_size: int = 0,
    max_size: int = 80,
    nan: bool = False,
    positive: bool = False,
) -> np.ndarray:
    """Float64 series for the indicator kernels, at magnitudes from 1e-8 to 1e8.

    Kinds: a positive random walk (prices), signed noise, a large level with a tiny spread
    (cancellation in sums of squares), integer steps (exact ties and exact zero means) and runs
    of equal values (zero-variance windows). `positive` keeps every value > 0 (for returns);
    `nan` sprinkles NaN in (none, a few or many, sometimes a leading run).
    """
    n = draw(st.integers(min_size, max_size))
    kind = draw(st.sampled_from(SERIES_KINDS))
    scale = 10.0 ** draw(st.integers(-8, 8))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    if kind == "walk":
        x = np.exp(np.cumsum(rng.normal(0.0, draw(st.sampled_from([0.001, 0.02, 0.3])), n)))
    elif kind == "noise":
        x = rng.normal(0.0, 1.0, n)
    elif kind == "offset":
        x = draw(st.sampled_from([1e3, 1e6, 1e9])) + rng.normal(0.0, 1.0, n)
    elif kind == "steps":
        x = np.cumsum(rng.integers(-3, 4, n)).astype(np.float64) + 20.0 * n
    else:
        x = np.repeat(rng.normal(0.0, 1.0, n), rng.integers(1, 8, n))[:n]
    if positive:
        x = np.abs(x) + 0.5
    x = np.ascontiguousarray(x * scale, dtype=np.float64)
    if nan and n:
        x[rng.random(n) < draw(st.sampled_from([0.0, 0.05, 0.3]))] = np.nan
        if draw(st.booleans()):
            x[: draw(st.integers(0, n))] = np.nan
    return x


def windows(max_value: int = 40) -> st.SearchStrategy[int]:
    """Window lengths: mostly short (1 and 2 included), sometimes longer than the series."""
    return st.one_of(st.integers(1, 4), st.integers(1, max_value), st.integers(1, 2 * max_value))


@st.composite
def bools(draw: st.DrawFn, n: int) -> np.ndarray:
    """A boolean array of length n that fires rarely, often or almost always."""
    p = draw(st.sampled_from([0.0, 0.05, 0.3, 0.7, 1.0]))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    return np.ascontiguousarray(rng.random(n) < p)


def fixed_bars(n: int, seed: int = 0, vol: float = 0.02) -> Bars:
    """Deterministic valid daily bars (for example-based tests): a random-walk close, opens at
    the previous close, ranges 1% beyond both, volume 1000."""
    rng = np.random.default_rng(seed)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, vol, n)))
    open_ = np.concatenate([[100.0], close[:-1]])
    high = np.maximum(open_, close) * 1.01
    low = np.minimum(open_, close) * 0.99
    ts = (np.arange(n, dtype=np.int64) + 16_437) * 86_400 * 10**9
    return Bars(ts, open_, high, low, close, np.full(n, 1000.0))
