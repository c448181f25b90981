"""The report's price, benchmark, log-scale, rolling, histogram, drawdown-period and trades
sections, and a sweep's best equity, each against a computation of its own."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

import btlab
from btlab.report import render_report, write_report
from btlab.report.charts import log_scale
from btlab.report.stats import (
    bar_returns_path,
    drawdown_periods,
    return_histogram,
    rolling_sharpe_volatility,
    rolling_window,
)
from btlab.sweep import run_sweep
from tests.test_report import Node, element, parse_report, value

SMALL: dict[str, Any] = {
    "data": {"bars": 900, "seed": 7},
    "strategy": {"name": "sma_cross", "params": {"fast": 10, "slow": 40, "long_short": True}},
    "execution": {"spread_bps": 2.0, "commission_bps": 1.0},
    "validation": {"enabled": False},
}
BUY, SELL = "#1e8449", "#c0392b"  # the price chart's marker colours


@pytest.fixture(scope="module")
def small() -> btlab.RunResult:
    return btlab.run(SMALL)


@pytest.fixture(scope="module")
def run_dir(small: btlab.RunResult, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("sections") / "run"
    btlab.write_artifacts(small, out)
    return out


@pytest.fixture(scope="module")
def artifact_equity(run_dir: Path) -> np.ndarray:
    """The equity the report reads: the artifact's (floats rounded to 12 digits)."""
    return pd.read_parquet(run_dir / "equity.parquet")["equity"].to_numpy()


@pytest.fixture(scope="module")
def page(run_dir: Path) -> Node:
    return parse_report(render_report(run_dir))


def _with_equity(run_dir: Path, tmp_path: Path, change: Any) -> Path:
    """A copy of the run folder whose equity.parquet is `change(frame)` (a fixture frame)."""
    out = tmp_path / "changed"
    shutil.copytree(run_dir, out)
    frame = pd.read_parquet(run_dir / "equity.parquet")
    change(frame).to_parquet(out / "equity.parquet")
    return out


def _markers(figure: Node, color: str) -> int:
    """<use> elements (markers) drawn in `color`, the legend's sample included."""
    return sum(f"fill: {color}" in u.attrs.get("style", "") for u in figure.find_all("use"))


# ---------------------------------------------------------------- the equity artifact's close


def test_equity_artifact_gains_the_close_and_keeps_its_columns(
    small: btlab.RunResult, run_dir: Path
) -> None:
    frame = pd.read_parquet(run_dir / "equity.parquet")
    assert list(frame.columns) == ["ts", "target", "units", "cash", "equity", "exposure",
                                   "drawdown", "borrow", "close", "benchmark"]  # fmt: skip
    np.testing.assert_allclose(frame["close"], small.dataset.close, rtol=1e-11)


# ---------------------------------------------------------------- price and fills


def test_price_chart_marks_one_fill_per_side_and_slice_of_the_time_axis(
    small: btlab.RunResult, page: Node
) -> None:
    figure = element(page, "chart-price")
    fills = small.fills
    ts = small.dataset.ts.astype(np.float64)
    # the slice of the time axis (1/100 of it) each fill's bar falls in
    slices = np.floor((ts[fills["bar"]] - ts[0]) / (ts[-1] - ts[0]) * 100).astype(int)
    for side, color in (("buy", BUY), ("sell", SELL)):
        mine = slices[(fills["side"] == side).to_numpy()]
        assert mine.size
        assert _markers(figure, color) == np.unique(mine).size + 1  # and the legend's
    shown = _markers(figure, BUY) + _markers(figure, SELL) - 2
    caption = figure.find("figcaption").text()
    assert (f"all {len(fills):,} fills marked" if shown == len(fills)
            else f"{shown:,} of {len(fills):,} fills marked") in caption  # fmt: skip


def test_price_markers_are_thinned_on_a_long_run(tmp_path: Path) -> None:
    result = btlab.run({**SMALL, "data": {"bars": 20_000, "timeframe": "15m", "seed": 3},
                        "strategy": {"name": "sma_cross", "params": {"fast": 5, "slow": 20}}})  # fmt: skip
    btlab.write_artifacts(result, tmp_path / "long")
    figure = element(parse_report(render_report(tmp_path / "long")), "chart-price")
    drawn = _markers(figure, BUY) + _markers(figure, SELL) - 2
    assert len(result.fills) > 1000 and 0 < drawn <= 2 * 100
    assert f"{drawn:,} of {len(result.fills):,} fills marked" in figure.text()


def test_a_folder_without_the_close_column_has_no_price_chart(
    run_dir: Path, tmp_path: Path
) -> None:
    old = _with_equity(run_dir, tmp_path, lambda f: f.drop(columns=["close"]))
    page = parse_report(render_report(old))
    assert not page.find_all(id="chart-price")
    element(page, "chart-position")


# ---------------------------------------------------------------- benchmark and log scale


def test_benchmark_is_drawn_where_the_equity_table_has_one(run_dir: Path, tmp_path: Path) -> None:
    def add_benchmark(frame: pd.DataFrame) -> pd.DataFrame:
        frame["benchmark"] = 100_000.0 * frame["close"] / frame["close"].iloc[0]
        return frame

    def drop_benchmark(frame: pd.DataFrame) -> pd.DataFrame:
        return frame.drop(columns=["benchmark"], errors="ignore")

    with_it = element(parse_report(render_report(_with_equity(run_dir, tmp_path, add_benchmark))),
                      "chart-equity")  # fmt: skip
    bare = _with_equity(run_dir, tmp_path / "bare", drop_benchmark)
    without = element(parse_report(render_report(bare)), "chart-equity")
    assert "benchmark" in with_it.find("svg").text() and "Benchmark" in with_it.text()
    assert "benchmark" not in without.text().lower()
    # one more line: the benchmark's path with its colour
    assert sum("#9a7d0a" in p.attrs.get("style", "") for p in with_it.find_all("path")) >= 1


def test_log_scale_switches_above_a_tenfold_span() -> None:
    assert not log_scale(np.array([100.0, 999.0]))
    assert log_scale(np.array([100.0, 1001.0]))
    assert log_scale(np.array([100.0, 500.0]), np.array([100.0, 1200.0]))  # the benchmark counts
    assert not log_scale(np.array([-5.0, 100.0, 5000.0]))  # ruined: no log of zero or less
    assert not log_scale(np.array([np.nan, 100.0, 200.0]))


@pytest.mark.parametrize("growth", [5.0, 30.0])
def test_equity_chart_is_logarithmic_where_the_curve_spans_ten_times(
    run_dir: Path, tmp_path: Path, growth: float
) -> None:
    def grow(frame: pd.DataFrame) -> pd.DataFrame:
        frame["equity"] = 100_000.0 * growth ** np.linspace(0.0, 1.0, len(frame))
        return frame

    figure = element(parse_report(render_report(_with_equity(run_dir, tmp_path, grow))),
                     "chart-equity")  # fmt: skip
    log = growth > 10
    assert ("Equity (log scale)" in figure.find("svg").text()) == log
    assert ("Log scale" in figure.find("figcaption").text()) == log


# ---------------------------------------------------------------- rolling Sharpe and volatility


def test_rolling_window_is_half_a_year_at_most_a_quarter_of_the_run() -> None:
    assert rolling_window(2520, 252.0) == 126
    assert rolling_window(200, 252.0) == 50
    assert rolling_window(30, 252.0) == 0  # a 7-bar window says nothing: no chart
    assert rolling_window(100_000, 252.0 * 26) == 3276


def test_rolling_statistics_are_the_metrics_over_each_window(small: btlab.RunResult) -> None:
    eq = small.equity_values
    ppy = small.metrics["periods_per_year"]
    window = 60
    sharpe, vol = rolling_sharpe_volatility(eq, window, ppy)
    assert np.isnan(sharpe[:window]).all() and np.isnan(vol[:window]).all()
    r = eq[1:] / eq[:-1] - 1.0
    for end in (window, 300, eq.size - 1):  # the window of returns ending at bar `end`
        part = r[end - window : end]
        assert vol[end] == pytest.approx(part.std(ddof=1) * math.sqrt(ppy), rel=1e-9)
        assert sharpe[end] == pytest.approx(part.mean() / part.std(ddof=1) * math.sqrt(ppy),
                                            rel=1e-9)  # fmt: skip
    # one window over the whole run: the run's own metrics
    whole_sharpe, whole_vol = rolling_sharpe_volatility(eq, eq.size - 1, ppy)
    assert whole_sharpe[-1] == pytest.approx(small.metrics["sharpe"], rel=1e-9)
    assert whole_vol[-1] == pytest.approx(small.metrics["annual_volatility"], rel=1e-9)


def test_rolling_chart_is_there_unless_the_run_is_too_short(page: Node, tmp_path: Path) -> None:
    figure = element(page, "chart-rolling")
    assert "Rolling Sharpe and volatility (126 bars" in figure.find("svg").text()
    short = btlab.run({**SMALL, "data": {"bars": 36, "seed": 7},
                       "strategy": {"name": "sma_cross", "params": {"fast": 3, "slow": 8}}})  # fmt: skip
    btlab.write_artifacts(short, tmp_path / "short")
    short_page = parse_report(render_report(tmp_path / "short"))
    assert not short_page.find_all(id="chart-rolling")
    element(short_page, "chart-histogram")


# ---------------------------------------------------------------- the return histogram


def test_histogram_data_are_the_per_bar_returns(artifact_equity: np.ndarray, page: Node) -> None:
    eq = artifact_equity
    r = eq[1:] / eq[:-1] - 1.0
    hist = return_histogram(eq)
    assert hist is not None
    assert hist.n == r.size and int(hist.counts.sum()) + hist.outside == r.size
    assert hist.mean == pytest.approx(r.mean(), rel=1e-12)
    assert hist.var95 == pytest.approx(np.quantile(r, 0.05), rel=1e-12)
    assert hist.cvar95 == pytest.approx(r[r <= np.quantile(r, 0.05)].mean(), rel=1e-12)
    assert hist.edges[0] <= hist.var95 and hist.edges[0] <= hist.mean <= hist.edges[-1]
    inside = (r >= hist.edges[0]) & (r <= hist.edges[-1])
    assert np.array_equal(hist.counts, np.histogram(r[inside], bins=hist.edges)[0])
    shown = {tr.attrs["data-key"]: value(tr.find("td"))
             for tr in element(page, "table-returns").find_all("tr")}  # fmt: skip
    assert shown == {"n": hist.n, "mean": hist.mean, "std": hist.std, "var95": hist.var95,
                     "cvar95": hist.cvar95}  # fmt: skip
    svg_text = element(page, "chart-histogram").find("svg").text()
    assert f"mean {hist.mean * 100:.3f}%" in svg_text
    assert f"VaR 95% {hist.var95 * 100:.3f}%" in svg_text


def test_bar_returns_path_is_aligned_and_nan_where_undefined() -> None:
    r = bar_returns_path(np.array([100.0, 110.0, 0.0, 0.0, 5.0]))
    assert np.isnan(r[0]) and r[1] == pytest.approx(0.1) and r[2] == -1.0
    assert np.isnan(r[3]) and np.isnan(r[4])  # 0/0 and 5/0


# ---------------------------------------------------------------- drawdown periods


def _periods_by_walking(equity: list[float]) -> list[tuple[int, int, int | None, float, int]]:
    """Drawdown periods by a plain walk over the bars: (start, valley, recovery, depth, bars)."""
    out = []
    peak = -math.inf
    start = valley = None
    for i, e in enumerate(equity):
        dd = -1.0 if e <= 0 else e / peak - 1.0 if peak > 0 else 0.0
        if start is None:
            if e >= peak:
                peak = e
            elif dd < 0:
                start, valley, depth = i, i, dd
        elif e >= peak:  # back at the peak: recovered
            out.append((start, valley, i, depth, i - start))
            peak, start = e, None
        elif dd < depth:
            valley, depth = i, dd
    if start is not None:
        out.append((start, valley, None, depth, len(equity) - start))
    return sorted(out, key=lambda p: (p[3], p[0]))


def _same_periods(equity: list[float], want: list[tuple[int, int, int | None, float, int]]) -> None:
    got = drawdown_periods(np.array(equity, dtype=float))
    assert [(p.start, p.valley, p.recovery, p.duration) for p in got] == [
        (s, v, r, n) for s, v, r, _, n in want]  # fmt: skip
    assert [p.depth for p in got] == pytest.approx([d for _, _, _, d, _ in want], rel=1e-12)


def test_drawdown_periods_of_a_hand_made_curve() -> None:
    equity = [100.0, 90.0, 95.0, 100.0, 120.0, 60.0, 80.0, 130.0, 130.0, 117.0, 104.0]
    want = [(5, 5, 7, -0.5, 2), (9, 10, None, -0.2, 2), (1, 1, 3, -0.1, 2)]
    _same_periods(equity, want)
    _same_periods(equity, _periods_by_walking(equity))
    assert drawdown_periods(np.full(5, 100.0)) == []  # flat equity is never in drawdown


@given(st.lists(st.floats(1.0, 1000.0), min_size=1, max_size=60))
def test_drawdown_periods_match_a_walk_over_the_bars(equity: list[float]) -> None:
    _same_periods(equity, _periods_by_walking(equity))


def test_drawdown_table_is_the_deepest_five_and_agrees_with_the_metrics(
    small: btlab.RunResult, artifact_equity: np.ndarray, page: Node
) -> None:
    periods = drawdown_periods(artifact_equity)
    # the artifact rounds equity to 12 digits: a drawdown moves by ~1e-12 of the equity
    assert periods[0].depth == pytest.approx(small.metrics["max_drawdown"], abs=1e-10)
    assert max(p.duration for p in periods) == small.metrics["max_drawdown_duration_bars"]
    rows = element(page, "table-drawdowns").find("tbody").find_all("tr")
    assert len(rows) == min(5, len(periods)) == 5
    ts = pd.DatetimeIndex(small.equity["ts"])
    for row, p in zip(rows, periods, strict=False):
        cells = row.find_all("td")
        assert [c.attrs["data-bar"] for c in cells[:3]] == [
            str(p.start), str(p.valley), "" if p.recovery is None else str(p.recovery)]  # fmt: skip
        assert cells[0].text() == f"{ts[p.start]:%Y-%m-%d}"
        assert cells[2].text() == ("open" if p.recovery is None else f"{ts[p.recovery]:%Y-%m-%d}")
        assert value(cells[3]) == p.depth and value(cells[4]) == p.duration


# ---------------------------------------------------------------- trades


def test_a_single_symbol_run_lists_its_trades(small: btlab.RunResult, page: Node) -> None:
    table = element(page, "table-trades")
    heads = [th.text() for th in table.find("thead").find_all("th")]
    assert heads[:3] == ["Side", "Entry", "Exit"] and "Symbol" not in heads
    rows = table.find("tbody").find_all("tr")
    trades = small.trades
    assert len(rows) == min(len(trades), 200) > 0
    for row, (_, trade) in zip(rows, trades.iterrows(), strict=False):
        cells = row.find_all("td")
        assert cells[0].text() == trade["side"]
        assert value(cells[7]) == pytest.approx(trade["net_pnl"], rel=1e-11)


# ---------------------------------------------------------------- a sweep's best equity


@pytest.fixture(scope="module")
def sweep_dir(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any]:
    sweep = run_sweep({**SMALL, "strategy": {"name": "sma_cross"},
                       "grid": {"fast": [5, 10], "slow": [30, 60]}})  # fmt: skip
    out = tmp_path_factory.mktemp("sections") / "sweep"
    sweep.write_artifacts(out)
    return out, sweep


def test_a_sweep_writes_and_draws_its_best_equity(sweep_dir: tuple[Path, Any]) -> None:
    out, sweep = sweep_dir
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert "best_equity.parquet" in manifest["artifacts"]
    best = pd.read_parquet(out / "best_equity.parquet")
    alone = btlab.run(sweep.request.run_config(sweep.best["params"]))
    assert list(best.columns) == list(alone.equity.columns)
    np.testing.assert_allclose(best["equity"], alone.equity_values, rtol=1e-11)
    page = parse_report(render_report(out))
    for chart_id in ("chart-best-equity", "chart-best-drawdown"):
        assert len(element(page, chart_id).find("svg").find_all("path")) > 10
    assert "best_equity.parquet" in element(page, "sweep").text()


def test_an_older_sweep_folder_without_best_equity_still_renders(
    sweep_dir: tuple[Path, Any], tmp_path: Path
) -> None:
    old = tmp_path / "old"
    shutil.copytree(sweep_dir[0], old)
    (old / "best_equity.parquet").unlink()
    page = parse_report(render_report(old))
    assert not page.find_all(id="chart-best-equity")
    assert "keeps no per-bar path" in element(page, "sweep").text()
    element(page, "chart-heatmap")


def test_sections_render_the_same_bytes_twice(run_dir: Path, tmp_path: Path) -> None:
    first = write_report(run_dir, tmp_path / "a.html").read_bytes()
    assert write_report(run_dir, tmp_path / "b.html").read_bytes() == first


def test_no_rolling_chart_without_periods_per_year(run_dir: Path, tmp_path: Path) -> None:
    old = tmp_path / "old"
    shutil.copytree(run_dir, old)
    metrics = json.loads((old / "metrics.json").read_text(encoding="utf-8"))
    del metrics["periods_per_year"]
    (old / "metrics.json").write_text(json.dumps(metrics), encoding="utf-8")
    page = parse_report(render_report(old))
    assert not page.find_all(id="chart-rolling")
    element(page, "chart-histogram")
