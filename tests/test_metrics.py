"""Metrics against direct numpy computations of the SPEC §5 formulas."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from btlab.kernels import FILL_DTYPE, TRADE_DTYPE
from btlab.kernels.metrics import equity_stats_nb, round_significant_nb, sharpe_nb
from btlab.metric_registry import (
    BY_NAME,
    FOLD,
    FROM_STATS,
    HEADLINE,
    METRIC_NAMES,
    METRICS,
    SWEEP_COLUMNS,
)
from btlab.metrics import annualized_ratio, compute_metrics
from tests.reference.metrics import numpy_metrics

DAY = 86_400 * 10**9


def numpy_stats(equity: np.ndarray) -> tuple[float, float, float, float]:
    r = equity[1:] / equity[:-1] - 1
    dd = equity / np.maximum.accumulate(equity) - 1
    return r.mean(), r.std(ddof=1), math.sqrt(np.mean(np.minimum(r, 0) ** 2)), dd.min()


@settings(max_examples=200, deadline=None)
@given(arrays(np.float64, st.integers(3, 300), elements=st.floats(1.0, 1e6)))
def test_equity_stats_match_numpy(equity: np.ndarray) -> None:
    _, mean, std, downside, max_dd, _ = equity_stats_nb(equity)
    want = numpy_stats(equity)
    np.testing.assert_allclose([mean, std, downside, max_dd], want, rtol=1e-9, atol=1e-14)


@settings(max_examples=200, deadline=None)
@given(arrays(np.float64, st.integers(2, 2000), elements=st.floats(1.0, 1e6)))
def test_return_moments_are_numpys_bit_for_bit(equity: np.ndarray) -> None:
    """mean and std (ddof 1) as NumPy computes them: the same pairwise sums, the same bits."""
    count, mean, std, downside, _, _ = equity_stats_nb(equity)
    r = equity[1:] / equity[:-1] - 1
    assert count == r.size and mean == np.mean(r)
    assert std == np.std(r, ddof=1) if r.size > 1 else math.isnan(std)
    assert downside == math.sqrt(np.mean(np.minimum(r, 0) ** 2))


@st.composite
def stepped_equity(draw: st.DrawFn) -> np.ndarray:
    """Equity paths of runs (up to several 128-bar spans long) that are flat, rise, fall, sit
    at the peak or at a new low, with ties, and an optional tail at 0 or below (ruin)."""
    level, parts = 100.0, []
    for _ in range(draw(st.integers(1, 8))):
        length = draw(st.sampled_from([1, 7, 127, 128, 129, 300]))
        kind = draw(st.sampled_from(["flat", "up", "down", "noise", "peak"]))
        if kind == "flat":
            run = np.full(length, level)
        elif kind == "peak":  # back exactly to the highest level so far, then flat
            run = np.full(length, max([level, *(p.max() for p in parts)]))
        else:
            seed = draw(st.integers(0, 2**16))
            step = np.random.default_rng(seed).normal(0.0, 0.01, length)
            step += {"up": 0.002, "down": -0.002, "noise": 0.0}[kind]
            run = level * np.cumprod(1.0 + step)
        parts.append(run)
        level = float(run[-1])
    equity = np.concatenate(parts)
    ruin = draw(st.integers(-1, equity.size - 1))
    if ruin >= 1:
        equity[ruin:] = 0.0 if ruin % 2 else -equity[ruin:]
    return equity


@settings(max_examples=300, deadline=None)
@given(equity=stepped_equity())
def test_drawdown_facts_are_the_definitions_bit_for_bit(equity: np.ndarray) -> None:
    """The spans that skip the steps (`_drawdown_span_nb`) never change a result: the max
    drawdown is `min(equity / cummax - 1)`'s bits and the duration the longest run below the
    running peak, counted bar by bar."""
    *_, max_dd, duration = equity_stats_nb(equity)
    peak = np.maximum.accumulate(equity)
    assert max_dd == min(0.0, float(np.min(equity / peak - 1.0)))
    run = longest = 0
    for e, p in zip(equity, peak, strict=True):
        run = 0 if e >= p else run + 1
        longest = max(longest, run)
    assert duration == longest


def test_drawdown_duration_counts_bars_below_the_peak() -> None:
    *_, duration = equity_stats_nb(np.array([1.0, 2.0, 1.5, 1.2, 2.0, 2.5, 2.4, 2.6]))
    assert duration == 2  # 1.5 and 1.2; the 2.0 back at the peak has recovered
    *_, flat = equity_stats_nb(np.full(60, 100_000.0))
    assert flat == 0  # a run that never trades is never in drawdown


def test_compute_metrics_formulas() -> None:
    rng = np.random.default_rng(1)
    n = 500
    ts = (np.arange(n, dtype=np.int64) * DAY) + 1_420_070_400 * 10**9
    equity = 10_000 * np.exp(np.cumsum(rng.normal(0.0003, 0.01, n)))
    close = np.full(n, 50.0)
    units = np.where(np.arange(n) % 3 == 0, 0.0, 10.0)
    fills = np.zeros(2, dtype=FILL_DTYPE)
    fills["units"] = [10.0, -10.0]
    fills["price"] = [50.0, 55.0]
    fills["spread_cost"] = [0.5, 0.5]
    fills["commission"] = [1.0, 1.0]
    trades = np.zeros(3, dtype=TRADE_DTYPE)
    trades["net_pnl"] = [10.0, -5.0, 3.0]
    trades["return_"] = [0.1, -0.05, 0.03]
    trades["bars_held"] = [4, 6, 2]
    trades["is_open"] = [False, False, True]
    m = compute_metrics(
        ts,
        close,
        equity,
        units,
        np.zeros(n),
        fills,
        trades,
        initial_cash=10_000.0,
        periods_per_year=252,
    )
    r = equity[1:] / equity[:-1] - 1
    years = (ts[-1] - ts[0]) / DAY / 365.25
    assert m["sharpe"] == pytest.approx(r.mean() / r.std(ddof=1) * math.sqrt(252), rel=1e-9)
    assert m["sortino"] == pytest.approx(
        r.mean() / math.sqrt(np.mean(np.minimum(r, 0) ** 2)) * math.sqrt(252), rel=1e-9
    )
    assert m["max_drawdown"] == pytest.approx(
        (equity / np.maximum.accumulate(equity) - 1).min(), rel=1e-12
    )
    assert m["cagr"] == pytest.approx((equity[-1] / 10_000) ** (1 / years) - 1, rel=1e-12)
    assert m["calmar"] == pytest.approx(m["cagr"] / abs(m["max_drawdown"]), rel=1e-12)
    assert m["annual_volatility"] == pytest.approx(r.std(ddof=1) * math.sqrt(252), rel=1e-9)
    assert m["total_return"] == pytest.approx(equity[-1] / 10_000 - 1)
    assert m["exposure"] == pytest.approx(np.mean(units != 0))
    assert m["turnover"] == pytest.approx((500 + 550) / equity.mean())
    assert m["trade_count"] == 2 and m["open_trade"] == 1
    assert m["win_rate"] == 0.5 and m["profit_factor"] == 2.0
    assert m["avg_trade_return"] == pytest.approx(0.025) and m["worst_trade_return"] == -0.05
    assert m["avg_bars_held"] == 5.0
    assert m["total_spread"] == 1.0 and m["total_commission"] == 2.0 and m["total_costs"] == 3.0


def _same(a: object, b: object) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return type(a) is type(b) and a == b


@st.composite
def run_arrays(draw: st.DrawFn) -> tuple[np.ndarray, ...]:
    """A run's arrays: positive equity (ruined from a bar on, sometimes), positions, borrow,
    fills and trades with random values (the metrics read their columns, not their story)."""
    n = draw(st.integers(0, 400))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    equity = 1e5 * np.exp(np.cumsum(rng.normal(0.0, 0.02, n)))
    flat = draw(st.integers(0, n))  # a flat stretch: equal bars, zero returns
    equity[:flat] = 1e5
    ruin = draw(st.one_of(st.none(), st.integers(0, max(n - 1, 0))))
    if ruin is not None and n:
        equity[ruin:] = draw(st.sampled_from([0.0, -3.0e5, -1.0]))
    units = np.where(rng.random(n) < 0.3, 0.0, rng.normal(0.0, 50.0, n))
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.01, n)))
    borrow = np.where(rng.random(n) < 0.5, 0.0, rng.random(n))
    k = draw(st.integers(0, 60))
    fills = np.zeros(k, dtype=FILL_DTYPE)
    for name in ("units", "price", "spread_cost", "slippage_cost", "commission"):
        fills[name] = rng.normal(1.0, 3.0, k) if name == "units" else rng.random(k) * 10
    t = draw(st.integers(0, 30))
    trades = np.zeros(t, dtype=TRADE_DTYPE)
    trades["net_pnl"] = np.round(rng.normal(0.0, 10.0, t), draw(st.sampled_from([0, 8])))
    trades["return_"] = rng.normal(0.0, 0.05, t)
    trades["bars_held"] = rng.integers(1, 50, t)
    trades["is_open"] = rng.random(t) < 0.2
    ts = (np.arange(n, dtype=np.int64) * DAY // draw(st.sampled_from([1, 24]))) + 10**18
    return ts, close, equity, units, borrow, fills, trades


@settings(max_examples=300, deadline=None)
@given(arrays_=run_arrays(), ruined=st.booleans(), halted=st.booleans())
def test_metrics_from_the_kernels_equal_numpys_bit_for_bit(
    arrays_: tuple[np.ndarray, ...], ruined: bool, halted: bool
) -> None:
    """The one path (per-path statistics kernels, then `metrics_from_stats`) gives what NumPy
    gives, bit for bit, in the registry's order: ruined or not, folds holding a ruin without its
    flag, flat equity, no fills, no trades, only open ones. (The metrics read from the arrays,
    `from_arrays`, are tested against their oracles in tests/test_metrics_oracles.py.)"""
    kw = {"initial_cash": 1e5, "periods_per_year": 252.0, "ruined": ruined, "halted": halted}
    got = compute_metrics(*arrays_, **kw)  # type: ignore[arg-type]
    want = numpy_metrics(*arrays_, **kw)
    assert tuple(got) == METRIC_NAMES and tuple(want) == FROM_STATS
    assert {k: (got[k], v) for k, v in want.items() if not _same(got[k], v)} == {}


@settings(max_examples=300, deadline=None)
@given(
    mean=st.floats(-1.0, 1.0) | st.just(0.0),
    dev=st.floats(0.0, 1.0) | st.sampled_from([0.0, math.nan]),
    scale=st.sampled_from([1.0, math.sqrt(252.0), math.sqrt(8760.0)]),
)
def test_the_sharpe_formula_is_the_same_in_the_core_and_the_kernels(
    mean: float, dev: float, scale: float
) -> None:
    want = mean / dev * scale if dev > 0 else math.nan
    assert _same(annualized_ratio(mean, dev, scale), want)
    assert _same(float(sharpe_nb(mean, dev, scale)), want)


def test_the_registry_names_each_metric_once_with_what_tables_need() -> None:
    assert len(set(METRIC_NAMES)) == len(METRICS) == 45
    # the row of sums first (metrics_from_stats, a sweep combination's), then the array metrics
    assert METRIC_NAMES[: len(FROM_STATS)] == FROM_STATS and len(FROM_STATS) == 32
    assert not any(BY_NAME[m].sweep_column or BY_NAME[m].fold for m in METRIC_NAMES[32:])
    assert {m.kind for m in METRICS} <= {
        "fraction", "ratio", "currency", "count", "bars", "number", "flag",
    }  # fmt: skip
    assert all(m.label and m.description and m.group for m in METRICS)
    # what the service stores with a run and the fold / sweep tables show, in registry order
    assert HEADLINE == (
        "final_equity", "total_return", "cagr", "annual_volatility", "sharpe", "sortino",
        "max_drawdown", "calmar", "exposure", "trade_count", "win_rate", "profit_factor",
        "total_costs", "n_bars", "ruined", "halted", "benchmark_return", "excess_return",
    )  # fmt: skip
    assert set(FOLD) == {
        "total_return", "cagr", "sharpe", "sortino", "max_drawdown", "annual_volatility",
        "trade_count", "win_rate",
    }  # fmt: skip
    assert SWEEP_COLUMNS == (
        "total_return", "cagr", "sharpe", "max_drawdown", "trade_count", "win_rate",
    )  # fmt: skip
    assert BY_NAME["max_drawdown"].narrow_label == "Max DD"


def test_get_registry_lists_every_metric_from_the_registry() -> None:
    from btlab.api.routes.catalog import get_registry

    listed = get_registry().metrics
    assert [m.name for m in listed] == list(METRIC_NAMES)
    sharpe = next(m for m in listed if m.name == "sharpe")
    assert (sharpe.label, sharpe.kind, sharpe.headline) == ("Sharpe", "ratio", True)
    assert sharpe.description == BY_NAME["sharpe"].description


@settings(max_examples=300, deadline=None)
@given(st.floats(allow_nan=False, allow_infinity=False, min_value=-1e280, max_value=1e280))
def test_significant_rounding_matches_the_decimal_rule(x: float) -> None:
    if 0 < abs(x) < 1e-280:
        x = 0.0  # far outside any price or money amount: left unrounded by design (see the kernel)
    got = round_significant_nb(np.array([x]), 12, np.empty(1))[0]
    want = float(f"{x:.12g}")
    if got != want:
        # at large magnitudes the binary scale (10**k, inexact past 1e22) moves the result by an
        # ulp or so; only at a decimal half-way point (the 13th digit a 5 and nothing after it,
        # within an ulp) may it round to the other neighbour, one unit of the 12th digit away
        # and never more (seen: 3.010597207115e279)
        unit = 10.0 ** (math.floor(math.log10(abs(want))) - 11)
        assert abs(got - want) <= unit * (1 + 1e-9), (x, got, want)
        if abs(got - want) > 1e-3 * unit:
            assert abs(abs(x) / unit % 1.0 - 0.5) < 1e-2, (x, got, want)
    assert (
        round_significant_nb(np.array([got]), 12, np.empty(1))[0] == got
    )  # idempotent: stable bytes
