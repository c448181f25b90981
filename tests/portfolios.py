"""Hypothesis strategies for portfolio tests: K symbols on a union clock, each listed and
delisted at random clock bars with random missing bars, and their later bars perturbed."""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import strategies as st

from btlab import data as btdata
from btlab.data.portfolio import PortfolioDataset, from_members

DAY = 86_400 * 10**9
T0 = 1_420_070_400 * 10**9  # 2015-01-01


def member(ts: np.ndarray, rng: np.random.Generator, symbol: str) -> btdata.Dataset:
    """A valid daily dataset on timestamps `ts`: a random-walk close, opens around the previous
    close, highs and lows that bracket both."""
    n = ts.shape[0]
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.02, n)))
    prev = np.concatenate([[100.0], close[:-1]])
    open_ = prev * np.exp(rng.normal(0.0, 0.01, n))
    frame = pd.DataFrame(
        {
            "ts": pd.to_datetime(ts, utc=True),
            "open": open_,
            "high": np.maximum(open_, close) * np.exp(np.abs(rng.normal(0.0, 0.01, n))),
            "low": np.minimum(open_, close) * np.exp(-np.abs(rng.normal(0.0, 0.01, n))),
            "close": close,
            "volume": rng.integers(0, 5, n).astype(np.float64) * 1000.0,
            "adj_close": close * rng.uniform(0.8, 1.0, n),
        }
    )
    return btdata.from_dataframe(frame, symbol=symbol, timeframe="1d", calendar="24x7")


@st.composite
def portfolios(
    draw: st.DrawFn, max_symbols: int = 4, min_bars: int = 2, max_bars: int = 60
) -> PortfolioDataset:
    """1..max_symbols symbols on a grid of up to max_bars days: each lists at a random bar,
    delists at a random later one (or stays to the end) and misses random bars between."""
    k = draw(st.integers(1, max_symbols))
    n = draw(st.integers(min_bars, max_bars))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    keep = draw(st.sampled_from([0.6, 0.9, 1.0]))
    grid = T0 + DAY * np.arange(n, dtype=np.int64)
    members = {}
    for j in range(k):
        start = int(rng.integers(0, n // 2 + 1)) if rng.random() < 0.6 else 0
        stop = int(rng.integers(start + 1, n + 1)) if rng.random() < 0.5 else n
        present = rng.random(stop - start) < keep
        present[0] = present[-1] = True
        ts = grid[start:stop][present]
        members[f"S{j}"] = member(ts, rng, f"S{j}")
    return from_members(members)


def perturbed(data: PortfolioDataset, j: int, seed: int, nan: bool = False) -> PortfolioDataset:
    """Every symbol's bars at clock bars j.. changed (another valid path, or NaN prices with
    `nan`); bars before j untouched, timestamps kept."""
    rng = np.random.default_rng(seed)
    changed = {}
    for symbol in data.symbols:
        m = data.members[symbol]
        later = m.ts >= data.ts[j] if j < len(data) else np.zeros(len(m.ts), dtype=bool)
        if nan:
            scale = np.where(later, np.nan, 1.0)
        else:
            scale = np.where(later, np.exp(rng.normal(0.0, 0.1, later.shape[0])), 1.0)
        arrays = {
            name: np.asarray(getattr(m, name)) * scale for name in ("open", "high", "low", "close")
        }
        volume = np.where(later, rng.integers(0, 5, later.shape[0]) * 700.0, m.volume)
        adj = None if m.adj_close is None else np.asarray(m.adj_close) * scale
        changed[symbol] = btdata.replace(m, volume=volume, adj_close=adj, **arrays)
    return from_members(changed)
