"""The benchmark (btlab.benchmark): its equity path against a plain-Python reading of its
definition, in single, portfolio and sweep runs, its column in equity.parquet, a caller's series
and its errors, and the config hashes it leaves alone."""

from __future__ import annotations

import io
import math
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings

import btlab
from btlab.artifacts import artifact_payloads
from btlab.benchmark import basket_returns, benchmark_equity
from btlab.config import parse_config
from btlab.data.portfolio import PortfolioDataset
from btlab.errors import ConfigError, DataError
from btlab.metric_registry import FROM_STATS, METRIC_NAMES
from btlab.pipeline import PortfolioResult, RunResult
from tests.portfolios import portfolios

SMALL: dict[str, Any] = {
    "data": {"bars": 300, "seed": 7},
    "strategy": {"name": "sma_cross", "params": {"fast": 5, "slow": 20}},
    "validation": {"enabled": False},
}
PORTFOLIO: dict[str, Any] = {
    "data": {
        "bars": 300,
        "seed": 7,
        "symbols": 4,
        "list_within": 0.3,
        "delist_within": 0.3,
        "missing_bar_prob": 0.05,
    },
    "strategy": {"name": "equal_weight"},
    "validation": {"enabled": False},
}


def reference_basket(close: np.ndarray) -> list[float]:
    """The equal-weight index's per-bar returns as its definition reads, one bar at a time."""
    n, k = close.shape
    out = [0.0]
    for i in range(1, n):
        parts = []
        for j in range(k):
            before = [c for c in close[:i, j] if not math.isnan(c)]  # bars at or before i-1
            listed_to = max((t for t in range(n) if not math.isnan(close[t, j])), default=-1)
            if not before or listed_to < i:
                continue
            now = close[i, j] if not math.isnan(close[i, j]) else before[-1]
            parts.append(now / before[-1] - 1.0)
        out.append(sum(parts) / len(parts) if parts else 0.0)
    return out


@settings(max_examples=150, deadline=None)
@given(portfolios(max_symbols=5, max_bars=40))
def test_the_equal_weight_index_is_its_definition(data: PortfolioDataset) -> None:
    got = basket_returns(data.close)
    np.testing.assert_allclose(got, reference_basket(data.close), rtol=1e-12, atol=1e-15)
    path = benchmark_equity(data.close, 1e4)
    assert path[0] == 1e4 and np.all(np.isfinite(path)) and np.all(path > 0)


def test_the_index_on_a_hand_example() -> None:
    nan = math.nan
    close = np.array(
        [
            [100.0, nan, 50.0],  # B lists at bar 1; C delists after bar 2
            [110.0, 20.0, 55.0],
            [nan, 22.0, 44.0],  # A has no bar: it returns 0 and catches up at bar 3
            [121.0, 24.2, nan],
        ]
    )
    want = [0.0, (0.10 + 0.10) / 2, (0.0 + 0.10 - 0.20) / 3, (0.10 + 0.10) / 2]
    np.testing.assert_allclose(basket_returns(close), want, rtol=1e-14)
    np.testing.assert_allclose(benchmark_equity(close, 1.0), np.cumprod(1 + np.array(want)))


def test_one_symbol_is_its_buy_and_hold_and_a_portfolio_of_one_gives_the_same_bits() -> None:
    close = 100 * np.exp(np.cumsum(np.random.default_rng(0).normal(0, 0.01, 50)))
    held = benchmark_equity(close, 1e5)
    assert np.array_equal(held, 1e5 * (close / close[0]))
    assert np.array_equal(benchmark_equity(close[:, None], 1e5), held)


def test_a_single_run_measures_against_the_buy_and_hold_of_its_symbol() -> None:
    res = btlab.run(SMALL)
    assert isinstance(res, RunResult)
    close = res.dataset.close
    assert res.benchmark_equity is not None
    np.testing.assert_array_equal(res.benchmark_equity, 1e5 * (close / close[0]))
    assert res.metrics["benchmark_return"] == pytest.approx(close[-1] / close[0] - 1, rel=1e-12)
    assert tuple(res.metrics) == METRIC_NAMES
    assert (
        res.metrics["excess_return"]
        == res.metrics["total_return"] - (res.metrics["benchmark_return"])
    )
    assert list(res.equity.columns)[-1] == "benchmark"
    table = pq.read_table(io.BytesIO(artifact_payloads(res)["equity.parquet"]))
    np.testing.assert_allclose(table.column("benchmark").to_numpy(), res.benchmark_equity)


def test_a_portfolio_run_measures_against_the_equal_weight_index() -> None:
    res = btlab.run(PORTFOLIO)
    assert isinstance(res, PortfolioResult) and res.benchmark_equity is not None
    want = 1e5 * np.cumprod(1 + np.array(reference_basket(res.dataset.close)))
    np.testing.assert_allclose(res.benchmark_equity, want, rtol=1e-12)
    assert "benchmark" in res.equity.columns
    assert math.isfinite(res.metrics["beta"]) and 0.5 < res.metrics["beta"] < 1.5


def test_benchmark_none_turns_it_off_and_keeps_the_other_numbers() -> None:
    on = btlab.run(SMALL)
    off = btlab.run({**SMALL, "metrics": {"benchmark": "none"}})
    assert off.benchmark_equity is None and "benchmark" not in off.equity.columns
    for k in ("benchmark_return", "excess_return", "alpha", "beta", "information_ratio",
              "tracking_error"):  # fmt: skip
        assert math.isnan(off.metrics[k]), k
    assert {k: off.metrics[k] for k in FROM_STATS} == {k: on.metrics[k] for k in FROM_STATS}
    assert off.config_hash != on.config_hash
    assert any("benchmark_return" in w.message for w in off.warnings)
    assert not any("benchmark_return" in w.message for w in on.warnings)


def test_the_default_benchmark_leaves_the_config_hash_alone() -> None:
    plain = parse_config(SMALL)
    explicit = parse_config({**SMALL, "metrics": {"benchmark": "auto"}})
    assert "benchmark" not in plain.hash_payload()["metrics"]
    assert btlab.run(SMALL).config_hash == btlab.run(explicit).config_hash


def _series_of(res: RunResult, values: np.ndarray) -> pd.Series:
    return pd.Series(values, index=pd.to_datetime(res.dataset.ts, utc=True))


def test_a_given_series_is_aligned_by_timestamp_and_joins_the_config_hash() -> None:
    base = btlab.run(SMALL)
    assert isinstance(base, RunResult)
    levels = 50 * np.exp(np.cumsum(np.random.default_rng(3).normal(0, 0.01, len(base.dataset))))
    series = _series_of(base, levels)
    # extra timestamps are ignored, order does not matter, a naive index is UTC
    extra = pd.concat([series, pd.Series([1.0], index=[pd.Timestamp("1990-01-01", tz="UTC")])])
    naive = extra.iloc[::-1].copy()
    naive.index = naive.index.tz_localize(None)
    got = btlab.run(SMALL, benchmark=naive)
    assert isinstance(got, RunResult) and got.benchmark_equity is not None
    np.testing.assert_allclose(got.benchmark_equity, 1e5 * levels / levels[0], rtol=1e-15)
    assert got.metrics["benchmark_return"] == pytest.approx(levels[-1] / levels[0] - 1)
    assert got.config_hash != base.config_hash
    assert btlab.run(SMALL, benchmark=series).config_hash == got.config_hash  # the same path
    other = btlab.run(SMALL, benchmark=series.where(series.index != series.index[5], 1.0))
    assert other.config_hash != got.config_hash


def test_a_given_series_must_cover_every_bar() -> None:
    base = btlab.run(SMALL)
    assert isinstance(base, RunResult)
    series = _series_of(base, np.linspace(1.0, 2.0, len(base.dataset)))
    with pytest.raises(DataError, match=r"benchmark_coverage.*no value at 2 of the run.s 300"):
        btlab.run(SMALL, benchmark=series.drop(series.index[[4, 9]]))
    with pytest.raises(DataError, match=r"benchmark_values.*finite and positive"):
        btlab.run(SMALL, benchmark=series.where(series.index != series.index[3], -1.0))
    with pytest.raises(DataError, match="benchmark_index"):
        btlab.run(SMALL, benchmark=pd.Series(np.ones(3), index=["a", "b", "c"]))
    with pytest.raises(ConfigError, match=r"metrics\.benchmark"):
        btlab.run({**SMALL, "metrics": {"benchmark": "none"}}, benchmark=series)


def test_a_portfolio_takes_a_given_series_too() -> None:
    base = btlab.run(PORTFOLIO)
    levels = np.linspace(10.0, 12.0, len(base.dataset.ts))
    got = btlab.run(PORTFOLIO, benchmark=pd.Series(levels, index=pd.to_datetime(base.dataset.ts)))
    assert isinstance(got, PortfolioResult) and got.benchmark_equity is not None
    np.testing.assert_allclose(got.benchmark_equity, 1e5 * levels / 10.0)
    assert got.config_hash != base.config_hash


def test_a_sweeps_best_run_has_every_metric_and_its_table_the_row_metrics() -> None:
    res = btlab.run_sweep({**SMALL, "grid": {"fast": [5, 10], "slow": [20, 40]}})
    assert tuple(res.best_run.metrics) == METRIC_NAMES
    assert res.best["metrics"]["benchmark_return"] == pytest.approx(
        res.dataset.close[-1] / res.dataset.close[0] - 1, rel=1e-12
    )
    assert res.best_run.benchmark_equity is not None
    metric_columns = [c for c in res.table.columns if c in METRIC_NAMES]
    assert metric_columns == list(FROM_STATS)


def test_a_portfolio_sweeps_best_run_is_measured_against_the_index() -> None:
    res = btlab.run_sweep({**PORTFOLIO, "grid": {"gross": [0.5, 1.0]}})
    best = res.best_run
    assert isinstance(best, PortfolioResult) and best.benchmark_equity is not None
    alone = btlab.run(res.request.combination_config(res.best["combo"]))
    assert isinstance(alone, PortfolioResult) and alone.benchmark_equity is not None
    np.testing.assert_array_equal(best.benchmark_equity, alone.benchmark_equity)
    assert {k: best.metrics[k] for k in METRIC_NAMES[len(FROM_STATS) :]} == {
        k: alone.metrics[k] for k in METRIC_NAMES[len(FROM_STATS) :]
    }
