"""Notebook display of results: the short repr, `_repr_html_` (well-formed, with the equity SVG),
`stats()` (each row the metric it reads, the derived rows recomputed here independently),
`plot()` (Plotly figures with the expected traces, a clear error without plotly) and a sweep's
`heatmap()`."""

from __future__ import annotations

import dataclasses
import itertools
import math
import subprocess
import sys
from html.parser import HTMLParser
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import btlab
from btlab.result_display import SVG_BUCKETS, thin_min_max
from btlab.result_stats import drawdown_episodes

NO_VALIDATION = {"validation": {"enabled": False}}


@pytest.fixture(scope="module")
def run() -> btlab.RunResult:
    return btlab.run(
        {"data": {"bars": 900, "seed": 4}, "execution": {"commission_bps": 2.0}, **NO_VALIDATION,
         "strategy": {"name": "sma_cross", "params": {"fast": 10, "slow": 40}}}
    )  # fmt: skip


@pytest.fixture(scope="module")
def portfolio() -> btlab.PortfolioResult:
    frames = {
        name: btlab.synthetic(bars=400, seed=seed).to_frame()
        for seed, name in enumerate(["AAA", "BBB", "CCC"])
    }
    result = btlab.run(
        {"strategy": {"name": "equal_weight"}, "execution": {"rebalance": "monthly"},
         **NO_VALIDATION},
        data=frames,
    )  # fmt: skip
    assert isinstance(result, btlab.PortfolioResult)
    return result


@pytest.fixture(scope="module")
def sweep() -> btlab.SweepResult:
    return btlab.run_sweep(
        {"data": {"bars": 700, "seed": 2}, "strategy": {"name": "sma_cross", "params": {}},
         "grid": {"fast": [5, 10, 20], "slow": [20, 60], "size": [0.5, 1.0]}, **NO_VALIDATION}
    )  # fmt: skip


# ------------------------------------------------------------------ repr


def test_repr_is_short_and_names_the_run(
    run: btlab.RunResult, portfolio: btlab.PortfolioResult, sweep: btlab.SweepResult
) -> None:
    for result, kind in ((run, "RunResult"), (portfolio, "PortfolioResult")):
        text = repr(result)
        assert len(text) < 300 and text.count("\n") == 1, text
        assert text.startswith(f"<{kind} {result.config.strategy.name}(")
        assert result.config_hash[:12] in text and "sharpe" in text and "max_dd" in text
    assert "900 bars" in repr(run) and "3 symbols" in repr(portfolio)
    text = repr(sweep)
    assert len(text) < 400 and text.count("\n") == 1, text
    assert text.startswith("<SweepResult sma_cross over fast[3] x size[2] x slow[2]")  # axes sorted
    assert sweep.config_hash[:12] in text


def test_repr_cuts_long_params() -> None:
    from btlab.result_display import params_text

    text = params_text({f"p{i}": "x" * 10 for i in range(20)})
    assert len(text) == 80 and text.endswith("…")


# ------------------------------------------------------------------ html


class _Tags(HTMLParser):
    """Checks that every tag closes in order; collects the tags, attributes and text."""

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.seen: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.stack.append(tag)
        self.seen.append((tag, dict(attrs)))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.seen.append((tag, dict(attrs)))

    def handle_endtag(self, tag: str) -> None:
        assert self.stack and self.stack[-1] == tag, (self.stack, tag)
        self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parsed(markup: str) -> _Tags:
    parser = _Tags()
    parser.feed(markup)
    parser.close()
    assert parser.stack == [], parser.stack
    return parser


def _polyline_points(tags: _Tags) -> list[tuple[float, float]]:
    (points,) = [a["points"] for tag, a in tags.seen if tag == "polyline"]
    assert points is not None
    return [(float(x), float(y)) for x, y in (p.split(",") for p in points.split())]


def test_html_is_well_formed_with_metrics_svg_and_identity(
    run: btlab.RunResult, portfolio: btlab.PortfolioResult
) -> None:
    for result in (run, portfolio):
        tags = parsed(result._repr_html_())
        text = " ".join(tags.text)
        names = [tag for tag, _ in tags.seen]
        assert names.count("svg") == 1 and "table" in names
        assert result.config_hash in text and result.dataset.hash in text
        assert f"btlab {btlab.__version__}" in text and "Sharpe" in text
        points = _polyline_points(tags)
        assert 2 <= len(points) <= 2 * SVG_BUCKETS
        assert all(0 <= x <= 480 and 0 <= y <= 120 for x, y in points)


def test_html_lists_the_warnings() -> None:
    short = btlab.run({"data": {"bars": 4}, **NO_VALIDATION})
    assert short.warnings
    text = " ".join(parsed(short._repr_html_()).text)
    assert "Warnings" in text
    for warning in short.warnings:
        assert warning.code in text


def test_html_svg_shows_the_lowest_equity(run: btlab.RunResult) -> None:
    """The curve's lowest point is the equity's minimum: the y axis is scaled to it."""
    points = _polyline_points(parsed(run._repr_html_()))
    assert max(y for _, y in points) == pytest.approx(119.0)  # the bottom edge: the minimum
    assert min(y for _, y in points) == pytest.approx(1.0)  # the top edge: the peak


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.floats(-1e6, 1e6, allow_nan=False), min_size=1, max_size=2000),
    st.integers(1, 50),
)
def test_thinning_keeps_the_extremes_in_bar_order(values: list[float], buckets: int) -> None:
    series = np.array(values)
    index, kept = thin_min_max(series, buckets)
    assert len(index) <= max(2 * buckets, len(series)) and np.all(np.diff(index) > 0)
    assert np.array_equal(kept, series[index])
    assert kept.min() == series.min() and kept.max() == series.max()
    if len(series) > 2 * buckets:
        assert len(index) <= 2 * buckets
        edges = np.linspace(0, len(series), buckets + 1).astype(np.int64)
        for lo, hi in itertools.pairwise(edges):  # each bucket's min and max
            inside = kept[(index >= lo) & (index < hi)]
            assert inside.min() == series[lo:hi].min() and inside.max() == series[lo:hi].max()


# ------------------------------------------------------------------ stats

#: stats() rows that read one metric: label -> (metric, scale).
FROM_METRICS = {
    "Exposure Time [%]": ("exposure", 100.0),
    "Equity Final [$]": ("final_equity", 1.0),
    "Commissions [$]": ("total_commission", 1.0),
    "Return [%]": ("total_return", 100.0),
    "Volatility (Ann.) [%]": ("annual_volatility", 100.0),
    "CAGR [%]": ("cagr", 100.0),
    "Sharpe Ratio": ("sharpe", 1.0),
    "Sortino Ratio": ("sortino", 1.0),
    "Calmar Ratio": ("calmar", 1.0),
    "Max. Drawdown [%]": ("max_drawdown", 100.0),
    "# Trades": ("trade_count", 1.0),
    "Win Rate [%]": ("win_rate", 100.0),
    "Best Trade [%]": ("best_trade_return", 100.0),
    "Worst Trade [%]": ("worst_trade_return", 100.0),
    "Profit Factor": ("profit_factor", 1.0),
    "Expectancy [%]": ("avg_trade_return", 100.0),
    "Max. Drawdown Duration [bars]": ("max_drawdown_duration_bars", 1.0),
    "Avg. Bars Held": ("avg_bars_held", 1.0),
    "Avg. Gross Leverage": ("avg_gross_leverage", 1.0),
    "Turnover (Ann.)": ("turnover_annual", 1.0),
    "Costs [$]": ("total_costs", 1.0),
    "# Fills": ("fill_count", 1.0),
}
#: Rows of metrics another module adds (read when present): label -> (metric, scale).
OPTIONAL = {
    "Buy & Hold Return [%]": ("benchmark_return", 100.0),
    "Alpha (Ann.) [%]": ("alpha", 100.0),
    "Beta": ("beta", 1.0),
    "SQN": ("sqn", 1.0),
    "Kelly Criterion": ("kelly_fraction", 1.0),
    "Excess Return [%]": ("excess_return", 100.0),
    "Information Ratio": ("information_ratio", 1.0),
    "Tracking Error (Ann.) [%]": ("tracking_error", 100.0),
    "VaR 95% [%]": ("var_95", 100.0),
    "CVaR 95% [%]": ("cvar_95", 100.0),
    "Omega Ratio": ("omega", 1.0),
    "Tail Ratio": ("tail_ratio", 1.0),
    "Exposure-Adj. Return [%]": ("exposure_adjusted_return", 100.0),
}
#: backtesting.py 0.6.6's `Backtest.run()` labels, in its order, that stats() keeps as they are.
BACKTESTING_ORDER = [
    "Start", "End", "Duration", "Exposure Time [%]", "Equity Final [$]", "Equity Peak [$]",
    "Commissions [$]", "Return [%]", "Buy & Hold Return [%]", "Return (Ann.) [%]",
    "Volatility (Ann.) [%]", "CAGR [%]", "Sharpe Ratio", "Sortino Ratio", "Calmar Ratio", "Beta",
    "Max. Drawdown [%]", "Avg. Drawdown [%]", "Max. Drawdown Duration", "Avg. Drawdown Duration",
    "# Trades", "Win Rate [%]", "Best Trade [%]", "Worst Trade [%]", "Avg. Trade [%]",
    "Max. Trade Duration", "Avg. Trade Duration", "Profit Factor", "Expectancy [%]", "SQN",
    "Kelly Criterion",
]  # fmt: skip


def _same(a: Any, b: Any) -> bool:
    return (isinstance(a, float) and math.isnan(a) and math.isnan(b)) or a == pytest.approx(b)


def test_stats_follow_backtesting_order(run: btlab.RunResult) -> None:
    labels = list(run.stats().index)
    assert [label for label in labels if label in BACKTESTING_ORDER] == BACKTESTING_ORDER
    assert set(FROM_METRICS) | set(OPTIONAL) <= set(labels)


def test_stats_rows_are_the_metrics_they_read(
    run: btlab.RunResult, portfolio: btlab.PortfolioResult
) -> None:
    for result in (run, portfolio):
        stats, m = result.stats(), result.metrics
        for label, (key, scale) in FROM_METRICS.items():
            assert _same(stats[label], m[key] * scale), label
        for label, (key, scale) in OPTIONAL.items():  # NaN while the metric is absent
            expected = m[key] * scale if key in m else math.nan
            assert _same(stats[label], expected), label
        assert stats["Open Trade"] is bool(m["open_trade"])


def test_stats_show_optional_metrics_when_present(run: btlab.RunResult) -> None:
    extra = {key: 0.125 + i for i, (key, _scale) in enumerate(OPTIONAL.values())}
    stats = dataclasses.replace(run, metrics={**run.metrics, **extra}).stats()
    for label, (key, scale) in OPTIONAL.items():
        assert stats[label] == pytest.approx(extra[key] * scale), label


def _drawdown_runs(equity: np.ndarray) -> list[tuple[int, int, float]]:
    """(first bar, end bar exclusive, depth) of each run below the running peak, by a loop."""
    out, peak, start, depth = [], -math.inf, None, 0.0
    for i, value in enumerate(equity):
        peak = max(peak, value)
        dd = value / peak - 1.0
        if dd < 0 and start is None:
            start, depth = i, dd
        elif dd < 0:
            depth = min(depth, dd)
        elif start is not None:
            out.append((start, i, depth))
            start = None
    if start is not None:
        out.append((start, len(equity), depth))
    return out


def test_stats_derived_rows_recomputed(
    run: btlab.RunResult, portfolio: btlab.PortfolioResult
) -> None:
    for result in (run, portfolio):
        stats, m = result.stats(), result.metrics
        frame, trades = result.equity, result.trades
        equity = frame["equity"].to_numpy()
        ts = frame["ts"]
        assert stats["Start"] == ts.iloc[0] and stats["End"] == ts.iloc[-1]
        assert stats["Duration"] == ts.iloc[-1] - ts.iloc[0]
        assert stats["Equity Peak [$]"] == equity.max()
        n = len(equity)
        annual = (equity[-1] / equity[0]) ** (m["periods_per_year"] / (n - 1)) - 1
        assert stats["Return (Ann.) [%]"] == pytest.approx(annual * 100)
        runs = _drawdown_runs(equity)
        assert max(e - s for s, e, _ in runs) == m["max_drawdown_duration_bars"]
        assert stats["Avg. Drawdown [%]"] == pytest.approx(np.mean([d for *_, d in runs]) * 100)
        spans = [ts.iloc[min(e, n - 1)] - ts.iloc[s - 1] for s, e, _ in runs]
        assert stats["Max. Drawdown Duration"] == max(spans).ceil("D")
        assert stats["Avg. Drawdown Duration"] == pd.Series(spans).mean().ceil("D")
        closed = trades[trades["exit_reason"] != "open"]
        held = closed["exit_ts"] - closed["entry_ts"]
        assert stats["Max. Trade Duration"] == held.max().ceil("D")
        assert stats["Avg. Trade Duration"] == held.mean().ceil("D")
        growth = np.prod(1 + closed["return"].to_numpy()) ** (1 / len(closed)) - 1
        assert stats["Avg. Trade [%]"] == pytest.approx(growth * 100)


def test_drawdown_episodes_of_a_small_path() -> None:
    day = 86_400 * 10**9
    equity = np.array([100.0, 110.0, 105.0, 100.0, 110.0, 120.0, 115.0])
    episodes = drawdown_episodes(equity, np.arange(7) * day)
    assert episodes.bars.tolist() == [2, 1]
    assert episodes.depth == pytest.approx([100 / 110 - 1, 115 / 120 - 1])
    # from the peak bar before to the bar back at the peak, or the last bar while under it
    assert (episodes.duration_ns // day).tolist() == [3, 1]
    flat = drawdown_episodes(np.full(5, 100.0), np.arange(5) * day)
    assert flat.depth.size == 0


def test_stats_of_a_run_without_trades() -> None:
    idle = btlab.run({"data": {"bars": 30}, **NO_VALIDATION})
    stats = idle.stats()
    assert stats["# Trades"] == 0 and math.isnan(stats["Avg. Trade [%]"])
    assert stats["Max. Trade Duration"] is pd.NaT and stats["Max. Drawdown Duration"] is pd.NaT
    assert stats["Avg. Drawdown [%]"] == 0.0 and stats["Equity Peak [$]"] == 100_000.0


def test_sweep_stats_are_the_best_runs(sweep: btlab.SweepResult) -> None:
    assert sweep.stats().equals(sweep.best_run.stats())


# ------------------------------------------------------------------ heatmap


def test_heatmap_is_the_objective_grid(sweep: btlab.SweepResult) -> None:
    frame = sweep.heatmap()
    grid = sweep.heatmap_json
    assert frame.columns.name == grid["x"]["name"] and frame.index.name == grid["y"]["name"]
    assert list(frame.columns) == grid["x"]["values"] and list(frame.index) == grid["y"]["values"]
    z = np.array([[math.nan if v is None else v for v in row] for row in grid["z"]])
    assert np.array_equal(frame.to_numpy(), z, equal_nan=True)
    skipped = sweep.heatmap(x="fast", y="slow")
    assert math.isnan(skipped.loc[20, 20]) and not math.isnan(skipped.loc[20, 5])  # fast >= slow


def test_heatmap_of_other_axes_and_metrics(sweep: btlab.SweepResult) -> None:
    best = sweep.best["params"]
    table = sweep.table
    frame = sweep.heatmap(x="size", y="fast", metric="max_drawdown")
    assert list(frame.columns) == [0.5, 1.0] and list(frame.index) == [5, 10, 20]
    for fast in (5, 10, 20):
        for size in (0.5, 1.0):
            at = (table["fast"] == fast) & (table["size"] == size)
            row = table[at & (table["slow"] == best["slow"])]  # the other axis at the best's
            expected = row["max_drawdown"].iloc[0] if len(row) else math.nan
            assert _same(frame.loc[fast, size], expected)
    with pytest.raises(KeyError, match="'lookback' is not an axis"):
        sweep.heatmap(x="lookback")
    with pytest.raises(ValueError, match="two different axes"):
        sweep.heatmap(x="fast", y="fast")
    with pytest.raises(KeyError, match="not a column"):
        sweep.heatmap(metric="nope")


def test_heatmap_of_one_axis_is_one_row() -> None:
    one = btlab.run_sweep(
        {"data": {"bars": 300}, "strategy": {"name": "sma_cross", "params": {"slow": 50}},
         "grid": {"fast": [5, 10, 20]}, **NO_VALIDATION}
    )  # fmt: skip
    frame = one.heatmap(metric="cagr")
    assert list(frame.index) == ["cagr"] and list(frame.columns) == [5, 10, 20]
    assert frame.iloc[0].tolist() == pytest.approx(one.table["cagr"].tolist())
    assert one.heatmap().iloc[0].tolist() == pytest.approx(one.heatmap_json["z"][0])  # sharpe


def test_heatmap_over_a_field_axis_with_null() -> None:
    fields = btlab.run_sweep(
        {"data": {"bars": 400}, "strategy": {"name": "sma_cross", "params": {"slow": 40}},
         "grid": {"fast": [5, 10], "risk.stop_loss": [None, 0.05]}, **NO_VALIDATION}
    )  # fmt: skip
    frame = fields.heatmap(x="risk.stop_loss", y="fast")
    assert list(frame.index) == [5, 10] and frame.shape == (2, 2)
    for k, row in fields.table.iterrows():
        stop = row["risk.stop_loss"]
        column = 0 if stop is None or math.isnan(stop) else 1
        assert frame.loc[row["fast"]].iloc[column] == row["sharpe"], k
    assert not frame.isna().any().any()


def test_heatmap_of_a_random_search_is_the_best_draw_per_cell() -> None:
    search = btlab.run_sweep(
        {"data": {"bars": 400}, "strategy": {"name": "sma_cross"}, "samples": 10,
         "grid": {"fast": {"low": 3, "high": 30, "integer": True}, "slow": [40, 80],
                  "execution.commission_bps": {"low": 0.5, "high": 5.0}}, **NO_VALIDATION}
    )  # fmt: skip
    frame = search.heatmap()  # the first two axes, the third not held fixed
    z = np.array([[math.nan if v is None else v for v in row] for row in search.heatmap_json["z"]])
    assert np.array_equal(frame.to_numpy(), z, equal_nan=True)
    assert np.nanmax(frame.to_numpy()) == search.best["metrics"]["sharpe"]
    assert frame.notna().sum().sum() == len(search.table.groupby(["fast", "slow"]))


def test_sweep_html_is_well_formed(sweep: btlab.SweepResult) -> None:
    tags = parsed(sweep._repr_html_())
    assert [tag for tag, _ in tags.seen].count("svg") == 1
    assert sweep.config_hash in " ".join(tags.text)


# ------------------------------------------------------------------ plot


def _benchmark(result: Any) -> list[str]:
    """["benchmark"] where the result carries a benchmark's equity (metrics.benchmark)."""
    return ["benchmark"] if getattr(result, "benchmark_equity", None) is not None else []


def test_run_plot_has_equity_drawdown_and_exposure(run: btlab.RunResult) -> None:
    go = pytest.importorskip("plotly.graph_objects")
    fig = run.plot()
    assert isinstance(fig, go.Figure)
    traces = {t.name: t for t in fig.data}
    assert [t.name for t in fig.data] == ["equity", *_benchmark(run), "drawdown", "exposure"]
    assert np.array_equal(traces["equity"].y, run.equity_values)
    assert np.allclose(traces["drawdown"].y, run.equity["drawdown"])
    assert np.allclose(traces["exposure"].y, run.equity["exposure"], equal_nan=True)
    with_benchmark = dataclasses.replace(run)
    with_benchmark.benchmark_equity = run.equity_values * 0.9  # type: ignore[attr-defined]
    traces = {t.name: t for t in with_benchmark.plot().data}
    assert list(traces) == ["equity", "benchmark", "drawdown", "exposure"]
    assert np.array_equal(traces["benchmark"].y, run.equity_values * 0.9)


def test_portfolio_plot_has_the_weights(portfolio: btlab.PortfolioResult) -> None:
    go = pytest.importorskip("plotly.graph_objects")
    fig = portfolio.plot()
    assert isinstance(fig, go.Figure)
    names = ["equity", *_benchmark(portfolio), "drawdown", "AAA", "BBB", "CCC"]
    assert [t.name for t in fig.data] == names
    weights = portfolio.positions.pivot(index="ts", columns="symbol", values="weight")
    assert np.allclose(fig.data[names.index("AAA")].y, weights["AAA"], equal_nan=True)


def test_sweep_plot_is_the_heatmap(sweep: btlab.SweepResult) -> None:
    go = pytest.importorskip("plotly.graph_objects")
    fig = sweep.plot(metric="cagr")
    assert isinstance(fig, go.Figure) and [t.type for t in fig.data] == ["heatmap"]
    expected = sweep.heatmap(metric="cagr").to_numpy()
    assert np.array_equal(np.array(fig.data[0].z, dtype=float), expected, equal_nan=True)


def test_plot_without_plotly_names_the_extra(
    run: btlab.RunResult, sweep: btlab.SweepResult, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in [m for m in sys.modules if m == "plotly" or m.startswith("plotly.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "plotly", None)  # as if not installed: import fails
    for result in (run, sweep):
        with pytest.raises(ImportError, match=r"pip install 'btlab\[plot\]'"):
            result.plot()


def test_importing_the_results_leaves_plotly_unloaded() -> None:
    code = (
        "import sys, btlab, btlab.run_result, btlab.portfolio_run, btlab.sweep.result; "
        "print('plotly' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
