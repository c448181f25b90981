"""The metrics read from a run's arrays (`Metric.from_arrays`) against independent oracles:
scipy's OLS (`scipy.stats.linregress`), empyrical-reloaded and quantstats (test-only
dependencies), and the standard library's `statistics` where neither has the metric; then the
degenerate cases (no trades, no variance, the benchmark off)."""

from __future__ import annotations

import math
import statistics
from typing import Any

import empyrical
import matplotlib
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from btlab.kernels import FILL_DTYPE, TRADE_DTYPE
from btlab.metric_registry import BY_NAME, FROM_STATS, METRIC_NAMES
from btlab.metrics import compute_metrics

# quantstats restyles matplotlib when imported (rcParams: line caps, fonts...), and the report
# draws its charts with matplotlib: keep the style of every other test in this process
with matplotlib.rc_context():
    import quantstats as qs

DAY = 86_400 * 10**9
CASH = 1e5
BENCHMARK = ("benchmark_return", "excess_return", "alpha", "beta", "information_ratio",
             "tracking_error")  # fmt: skip


def _equity(returns: np.ndarray) -> np.ndarray:
    return CASH * np.concatenate([[1.0], np.cumprod(1.0 + returns)])


def _returns(equity: np.ndarray) -> np.ndarray:
    """SPEC §5's per-bar returns of an equity path."""
    out: np.ndarray = equity[1:] / equity[:-1] - 1.0
    return out


def _trades(returns: np.ndarray, open_last: bool = False) -> np.ndarray:
    t = np.zeros(returns.shape[0], dtype=TRADE_DTYPE)
    t["return_"] = returns
    t["net_pnl"] = returns * 1000.0
    t["bars_held"] = 3
    t["is_open"] = False
    if open_last and t.size:
        t["is_open"][-1] = True
    return t


def metrics_of(
    r: np.ndarray,
    b: np.ndarray | None = None,
    trades: np.ndarray | None = None,
    *,
    ppy: float = 252.0,
    exposed: float = 1.0,
) -> dict[str, Any]:
    """`compute_metrics` of a run whose per-bar returns are `r`, against a benchmark whose
    per-bar returns are `b` (None: off), with `trades` and a share `exposed` of bars held."""
    equity = _equity(r)
    n = equity.shape[0]
    units = np.where(np.arange(n) < round(exposed * n), 1.0, 0.0)
    return compute_metrics(
        np.arange(n, dtype=np.int64) * DAY + 10**18, np.full(n, 10.0), equity, units,
        np.zeros(n), np.zeros(0, dtype=FILL_DTYPE),
        trades if trades is not None else np.zeros(0, dtype=TRADE_DTYPE),
        initial_cash=CASH, periods_per_year=ppy, benchmark=None if b is None else _equity(b),
    )  # fmt: skip


@st.composite
def paired_returns(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray, float]:
    """Strategy and benchmark per-bar returns, correlated (a random beta plus noise)."""
    m = draw(st.integers(3, 600))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    b = rng.normal(draw(st.floats(-0.002, 0.002)), draw(st.floats(0.001, 0.05)), m)
    beta = draw(st.floats(-2.0, 2.0))
    r = beta * b + rng.normal(draw(st.floats(-0.001, 0.001)), draw(st.floats(1e-4, 0.03)), m)
    ppy = draw(st.sampled_from([12.0, 252.0, 365.0, 8760.0]))
    return np.clip(r, -0.9, None), np.clip(b, -0.9, None), ppy


def _series(values: np.ndarray) -> pd.Series:
    return pd.Series(values, index=pd.date_range("2000-01-03", periods=values.shape[0]))


@settings(max_examples=150, deadline=None)
@given(paired_returns())
def test_alpha_beta_are_scipys_ols_and_quantstats_and_empyricals(
    case: tuple[np.ndarray, np.ndarray, float],
) -> None:
    r, b, ppy = case
    m = metrics_of(r, b, ppy=ppy)
    # the returns the metrics see are those of the equity paths (SPEC §5's r and b)
    rs, bs = _returns(_equity(r)), _returns(_equity(b))
    ols = stats.linregress(bs, rs)
    assert m["beta"] == pytest.approx(ols.slope, rel=1e-9, abs=1e-12)
    assert m["alpha"] == pytest.approx(ols.intercept * ppy, rel=1e-7, abs=1e-12)
    greeks = qs.stats.greeks(_series(rs), _series(bs), periods=ppy)
    assert m["beta"] == pytest.approx(greeks["beta"], rel=1e-9, abs=1e-12)
    assert m["alpha"] == pytest.approx(greeks["alpha"], rel=1e-7, abs=1e-12)
    # empyrical compounds the per-bar intercept: (1 + alpha_bar) ** ppy - 1
    e_alpha, e_beta = empyrical.alpha_beta_aligned(rs, bs, annualization=ppy)
    assert m["beta"] == pytest.approx(e_beta, rel=1e-9, abs=1e-12)
    if -0.99 < e_alpha < 1e6:  # else the compounding leaves too few digits to invert
        alpha_bar = math.expm1(math.log1p(e_alpha) / ppy)
        assert m["alpha"] / ppy == pytest.approx(alpha_bar, rel=1e-6, abs=1e-13)
    assert m["benchmark_return"] == pytest.approx(np.prod(1 + b) - 1, rel=1e-12, abs=1e-15)
    assert m["excess_return"] == m["total_return"] - m["benchmark_return"]


@settings(max_examples=150, deadline=None)
@given(paired_returns())
def test_tracking_error_and_information_ratio_are_the_oracles(
    case: tuple[np.ndarray, np.ndarray, float],
) -> None:
    r, b, ppy = case
    m = metrics_of(r, b, ppy=ppy)
    rs, bs = _returns(_equity(r)), _returns(_equity(b))
    active = rs - bs
    assert m["tracking_error"] == pytest.approx(
        statistics.stdev(active.tolist()) * math.sqrt(ppy), rel=1e-9
    )
    # both libraries give the information ratio per bar; ours is annualized like the Sharpe
    root = math.sqrt(ppy)
    assert m["information_ratio"] == pytest.approx(
        empyrical.excess_sharpe(rs, bs) * root, rel=1e-7, abs=1e-12
    )
    assert m["information_ratio"] == pytest.approx(
        qs.stats.information_ratio(_series(rs), _series(bs)) * root, rel=1e-7, abs=1e-12
    )


@settings(max_examples=200, deadline=None)
@given(
    m=st.integers(1, 800),
    seed=st.integers(0, 2**32 - 1),
    scale=st.floats(1e-4, 0.1),
    skew=st.floats(-0.01, 0.01),
    zeros=st.floats(0.0, 0.9),
)
def test_var_cvar_omega_tail_ratio_are_empyricals(
    m: int, seed: int, scale: float, skew: float, zeros: float
) -> None:
    rng = np.random.default_rng(seed)
    r = rng.standard_t(3, m) * scale + skew
    r = np.where(rng.random(m) < zeros, 0.0, np.clip(r, -0.9, 5.0))
    got = metrics_of(r)
    rs = _returns(_equity(r))
    assert got["var_95"] == pytest.approx(empyrical.value_at_risk(rs, 0.05), rel=1e-12, abs=0)
    assert got["cvar_95"] == pytest.approx(
        empyrical.conditional_value_at_risk(rs, 0.05), rel=1e-12, abs=0
    )
    assert got["cvar_95"] <= got["var_95"]
    want_omega = empyrical.omega_ratio(rs, 0.0, required_return=0.0)  # NaN under 2 returns
    if not np.any(rs < 0):
        assert math.isnan(got["omega"]) and math.isnan(want_omega)
    elif rs.size >= 2:
        assert got["omega"] == pytest.approx(want_omega, rel=1e-9)
    else:
        assert got["omega"] == 0.0  # one losing bar
    if np.percentile(rs, 5) != 0:
        assert got["tail_ratio"] == pytest.approx(empyrical.tail_ratio(rs), rel=1e-12)
        assert got["tail_ratio"] == pytest.approx(qs.stats.tail_ratio(_series(rs)), rel=1e-9)
    else:
        assert math.isnan(got["tail_ratio"])


@settings(max_examples=200, deadline=None)
@given(
    n=st.integers(0, 200),
    seed=st.integers(0, 2**32 - 1),
    edge=st.floats(-0.02, 0.02),
    open_last=st.booleans(),
)
def test_sqn_and_kelly_are_the_oracles(n: int, seed: int, edge: float, open_last: bool) -> None:
    rng = np.random.default_rng(seed)
    ret = rng.normal(edge, 0.05, n)
    ret = np.where(ret == 0, 1e-9, ret)  # no zero trade: quantstats leaves them out of its rate
    trades = _trades(ret, open_last)
    got = metrics_of(rng.normal(0, 0.01, 50), trades=trades)
    closed = ret[:-1] if open_last and n else ret
    if closed.size >= 2:
        want = math.sqrt(closed.size) * statistics.fmean(closed) / statistics.stdev(closed)
        assert got["sqn"] == pytest.approx(want, rel=1e-9, abs=1e-12)
    else:
        assert math.isnan(got["sqn"])
    if (closed > 0).any() and (closed < 0).any():
        want_kelly = qs.stats.kelly_criterion(_series(closed))
        assert got["kelly_fraction"] == pytest.approx(want_kelly, rel=1e-9, abs=1e-12)
        assert got["win_rate"] == np.mean(closed > 0)
    else:
        assert math.isnan(got["kelly_fraction"])


def test_exposure_adjusted_return_is_cagr_per_unit_of_time_in_the_market() -> None:
    r = np.random.default_rng(4).normal(0.0005, 0.01, 999)
    got = metrics_of(r, exposed=0.25)
    assert got["exposure"] == 0.25
    assert got["exposure_adjusted_return"] == got["cagr"] / 0.25


# ------------------------------------------------------------------ degenerate cases


def test_without_a_benchmark_its_metrics_are_null_with_the_reason() -> None:
    from btlab.run_warnings import undefined_metric_warnings

    m = metrics_of(np.random.default_rng(1).normal(0, 0.01, 100))
    assert all(math.isnan(m[k]) for k in BENCHMARK)
    assert all(math.isfinite(m[k]) for k in ("var_95", "cvar_95", "omega", "tail_ratio"))
    (warning,) = [w for w in undefined_metric_warnings(m) if "benchmark_return" in w.message]
    assert warning.message == (
        "benchmark_return, excess_return, alpha, beta, information_ratio, tracking_error are "
        'undefined (null in metrics.json): the benchmark is off (metrics.benchmark = "none")'
    )


def test_no_trades_leave_the_trade_metrics_null() -> None:
    m = metrics_of(np.random.default_rng(2).normal(0, 0.01, 100))
    assert math.isnan(m["sqn"]) and math.isnan(m["kelly_fraction"])
    one = metrics_of(np.random.default_rng(2).normal(0, 0.01, 100), trades=_trades(np.array([0.1])))
    assert math.isnan(one["sqn"]) and math.isnan(one["kelly_fraction"])
    same = metrics_of(np.zeros(10), trades=_trades(np.full(5, 0.1)))  # no variance, no loss
    assert math.isnan(same["sqn"]) and math.isnan(same["kelly_fraction"])


def test_flat_equity_and_a_flat_benchmark() -> None:
    """Zero variance everywhere: what is defined is exact, the rest is null."""
    flat = metrics_of(np.zeros(50), np.zeros(50), exposed=0.0)
    assert flat["benchmark_return"] == 0.0 and flat["excess_return"] == 0.0
    assert flat["tracking_error"] == 0.0
    for k in ("alpha", "beta", "information_ratio", "omega", "tail_ratio"):
        assert math.isnan(flat[k]), k
    assert flat["var_95"] == 0.0 and flat["cvar_95"] == 0.0
    assert math.isnan(flat["exposure_adjusted_return"])  # never in the market
    # a benchmark whose returns are all equal (1e-3 each: its float mean differs by an ulp)
    drift = metrics_of(np.random.default_rng(3).normal(0, 0.01, 50), np.full(50, 1e-3))
    assert math.isnan(drift["beta"]) and math.isnan(drift["alpha"])
    assert math.isfinite(drift["information_ratio"])
    # active returns all equal: tracking error 0, no information ratio
    r = np.random.default_rng(5).normal(0, 0.01, 50)
    copy = metrics_of(r, r)
    assert copy["tracking_error"] == 0.0 and math.isnan(copy["information_ratio"])
    assert copy["beta"] == pytest.approx(1.0) and copy["alpha"] == pytest.approx(0.0, abs=1e-15)


def test_one_bar_has_no_returns_to_measure() -> None:
    m = metrics_of(np.zeros(0), np.zeros(0))
    assert m["benchmark_return"] == 0.0
    for k in ("alpha", "beta", "tracking_error", "var_95", "cvar_95", "tail_ratio", "omega"):
        assert math.isnan(m[k]), k


def test_every_array_metric_says_when_it_is_undefined() -> None:
    for name in METRIC_NAMES[len(FROM_STATS) :]:
        metric = BY_NAME[name]
        assert metric.from_arrays and metric.description
        assert metric.undefined, name
