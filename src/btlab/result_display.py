"""How a result shows itself in a notebook or a REPL: a two-line `repr`, and `_repr_html_` with
the headline metrics, the equity curve as a small inline SVG, the run's identity and warnings.

The SVG is hand-written (no plotting library): the equity thinned to about 300 buckets, each
keeping its lowest and highest value in bar order, so a drawdown shorter than a bucket still
shows. Everything here reads results by duck typing (a single-symbol run, a portfolio, a sweep).
"""

from __future__ import annotations

import html
import itertools
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Protocol

import numpy as np
import pandas as pd

from btlab import __version__

from .config import RunConfig
from .metric_registry import METRICS

__all__ = [
    "equity_svg",
    "result_html",
    "result_repr",
    "result_title",
    "sweep_html",
    "sweep_repr",
    "sweep_title",
    "thin_min_max",
]

#: Buckets of the inline equity curve (each keeps up to two points: its min and its max).
SVG_BUCKETS = 300
SVG_WIDTH, SVG_HEIGHT = 480, 120
_PARAMS_CHARS = 80


class _Data(Protocol):
    @property
    def ts(self) -> np.ndarray: ...
    @property
    def hash(self) -> str: ...
    @property
    def meta(self) -> Any: ...


class Shown(Protocol):
    """What the display reads of a run's result (a single-symbol run's or a portfolio's)."""

    config_hash: str
    metrics: dict[str, Any]
    equity_values: np.ndarray
    warnings: list[Any]  # RunWarning (code, message)

    @property
    def config(self) -> RunConfig: ...
    @property
    def dataset(self) -> _Data: ...


def _percent(value: Any) -> str:
    return _number(value, lambda v: f"{v * 100:+.2f}%")


def _number(value: Any, show: Callable[[Any], str] | None = None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if isinstance(value, float) and math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return show(value) if show is not None else f"{value:.2f}"


def format_metric(value: Any, kind: str) -> str:
    """A metric as a table shows it, by its registry kind (`metric_registry.Kind`)."""
    if kind == "flag" or isinstance(value, bool):
        return "yes" if value else "no"
    if kind == "fraction":
        return _number(value, lambda v: f"{v * 100:.2f}%")
    if kind == "currency":
        return _number(value, lambda v: f"{v:,.2f}")
    if kind in ("count", "bars"):
        return _number(value, lambda v: f"{int(v):,}")
    if kind == "ratio":
        return _number(value, lambda v: f"{v:.3f}")
    return _number(value, lambda v: f"{v:,.6g}")


def params_text(params: Mapping[str, Any]) -> str:
    """`k=v, ...`, cut to about 80 characters."""
    text = ", ".join(f"{k}={v!r}" for k, v in params.items())
    return text if len(text) <= _PARAMS_CHARS else text[: _PARAMS_CHARS - 1] + "…"


def _day(ns: Any) -> str:
    return str(pd.Timestamp(int(ns), unit="ns", tz="UTC").strftime("%Y-%m-%d"))


def data_label(dataset: _Data) -> str:
    """`SYM 1d, 2,520 bars 2015-01-02..2024-08-29` (a portfolio: its symbol count)."""
    meta = dataset.meta
    symbols = getattr(meta, "symbols", None)
    name = f"{len(symbols)} symbols" if symbols is not None else str(getattr(meta, "symbol", ""))
    ts = dataset.ts
    span = f"{_day(ts[0])}..{_day(ts[-1])}" if ts.shape[0] else "no bars"
    return f"{name} {meta.timeframe}, {ts.shape[0]:,} bars {span}".strip()


def _headline(metrics: Mapping[str, Any]) -> str:
    return (
        f"return {_percent(metrics.get('total_return'))}, "
        f"sharpe {_number(metrics.get('sharpe'))}, "
        f"max_dd {_percent(metrics.get('max_drawdown'))}"
    )


def _warning_count(warnings: list[Any]) -> str:
    count = len(warnings)
    return "" if not count else f", {count} warning" + ("s" if count > 1 else "")


def result_repr(result: Shown) -> str:
    """`<RunResult sma_cross(fast=10, ...) on SYN 1d, 2,520 bars 2015-01-02..2024-08-29` and
    ` return +3.10%, sharpe 0.57, max_dd -20.01% | config 907b8a32c14c>` on a second line."""
    strategy = result.config.strategy
    kind = type(result).__name__
    warned = _warning_count(result.warnings)
    return (
        f"<{kind} {strategy.name}({params_text(strategy.params)}) on {data_label(result.dataset)}"
        f"\n {_headline(result.metrics)}{warned} | config {result.config_hash[:12]}>"
    )


def thin_min_max(values: np.ndarray, buckets: int = SVG_BUCKETS) -> tuple[np.ndarray, np.ndarray]:
    """(bar index, value) of at most 2 * `buckets` points: each bucket's lowest and highest
    value, in bar order, so the extremes of the path (its drawdowns) survive the thinning."""
    n = values.shape[0]
    index = np.arange(n)
    if n <= 2 * buckets:
        return index, values
    edges = np.linspace(0, n, buckets + 1).astype(np.int64)
    keep: list[int] = []
    for lo, hi in itertools.pairwise(edges):
        part = values[lo:hi]
        finite = np.isfinite(part)
        if not finite.any():
            continue
        low = lo + int(np.argmin(np.where(finite, part, np.inf)))
        high = lo + int(np.argmax(np.where(finite, part, -np.inf)))
        keep.extend(sorted({low, high}))
    chosen = np.array(keep, dtype=np.int64)
    return chosen, values[chosen]


def equity_svg(values: np.ndarray, *, width: int = SVG_WIDTH, height: int = SVG_HEIGHT) -> str:
    """The equity path as an inline SVG polyline (thinned by `thin_min_max`)."""
    index, ys = thin_min_max(np.asarray(values, dtype=float))
    finite = np.isfinite(ys)
    index, ys = index[finite], ys[finite]
    if ys.size == 0:
        return ""
    lo, hi = float(ys.min()), float(ys.max())
    span_y = hi - lo if hi > lo else 1.0
    span_x = max(int(values.shape[0]) - 1, 1)
    px = index / span_x * (width - 2) + 1
    py = (1.0 - (ys - lo) / span_y) * (height - 2) + 1
    points = " ".join(f"{a:.1f},{b:.1f}" for a, b in zip(px, py, strict=True))
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="equity curve">'
        f'<polyline fill="none" stroke="#1f77b4" stroke-width="1" points="{points}"/></svg>'
    )


def _rows(pairs: Iterable[tuple[str, str]]) -> str:
    return "".join(
        f'<tr><th style="text-align:left">{html.escape(k)}</th>'
        f'<td style="text-align:right">{html.escape(v)}</td></tr>'
        for k, v in pairs
    )


def _table(pairs: Iterable[tuple[str, str]]) -> str:
    return f"<table>{_rows(pairs)}</table>"


def _warnings_html(warnings: list[Any]) -> str:
    if not warnings:
        return ""
    items = "".join(
        f"<li><code>{html.escape(w.code)}</code>: {html.escape(w.message)}</li>" for w in warnings
    )
    return f"<p><b>Warnings</b></p><ul>{items}</ul>"


def headline_pairs(metrics: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The registry's headline metrics present in `metrics`, as (label, shown value)."""
    return [
        (m.label, format_metric(metrics[m.name], m.kind))
        for m in METRICS
        if m.headline and m.name in metrics
    ]


def _identity(config_hash: str, data_hash: str) -> list[tuple[str, str]]:
    return [
        ("config hash", config_hash),
        ("data hash", data_hash),
        ("engine", f"btlab {__version__}"),
    ]


def result_title(result: Shown) -> str:
    """`RunResult: sma_cross(fast=10, ...) on SYN 1d, 2,520 bars 2015-01-02..2024-08-29`."""
    strategy = result.config.strategy
    return (
        f"{type(result).__name__}: {strategy.name}({params_text(strategy.params)}) on "
        f"{data_label(result.dataset)}"
    )


def result_html(result: Shown) -> str:
    """The notebook view: title, headline metrics, equity SVG, identity, warnings."""
    return (
        f'<div class="btlab-result"><p><b>{html.escape(result_title(result))}</b></p>'
        f"{_table(headline_pairs(result.metrics))}"
        f"{equity_svg(result.equity_values)}"
        f"{_table(_identity(result.config_hash, result.dataset.hash))}"
        f"{_warnings_html(result.warnings)}</div>"
    )


class _Grid(Protocol):
    @property
    def axes(self) -> dict[str, list[Any]]: ...
    @property
    def size(self) -> int: ...
    @property
    def params(self) -> Sequence[Any]: ...


class ShownSweep(Protocol):
    """What the display reads of a sweep's result."""

    config_hash: str
    best: dict[str, Any]
    best_run: Any
    warnings: list[Any]

    @property
    def request(self) -> Any: ...  # a SweepRequest (btlab.sweep sits above this module)
    @property
    def dataset(self) -> _Data: ...
    @property
    def expansion(self) -> _Grid: ...
    def best_point(self) -> dict[str, Any]: ...


def sweep_title(sweep: ShownSweep) -> str:
    """`SweepResult sma_cross over fast[6] x slow[3] (18 of 18 valid) on SYN 1d, ...`."""
    e = sweep.expansion
    axes = " x ".join(f"{k}[{len(v)}]" for k, v in e.axes.items())
    return (
        f"SweepResult {sweep.request.strategy.name} over {axes} ({len(e.params)} of {e.size} "
        f"valid) on {data_label(sweep.dataset)}"
    )


def sweep_repr(sweep: ShownSweep) -> str:
    """`<SweepResult sma_cross over fast[6] x slow[3] (...) | best ...: sharpe ... | config ...>`."""
    objective = sweep.request.objective
    value = sweep.best["metrics"].get(objective)
    warned = _warning_count(sweep.warnings)
    return (
        f"<{sweep_title(sweep)}\n best {params_text(sweep.best_point())}: {objective} "
        f"{_number(value)}; {_headline(sweep.best['metrics'])}{warned} | config "
        f"{sweep.config_hash[:12]}>"
    )


def sweep_html(sweep: ShownSweep, heatmap: pd.DataFrame) -> str:
    """The notebook view of a sweep: title, the best's headline metrics and equity, the
    objective's heatmap as a table, identity, warnings."""
    best = f"best ({sweep.request.objective}): {params_text(sweep.best_point())}"
    grid = heatmap.to_html(float_format=lambda v: f"{v:.3f}", na_rep="—", border=0)
    return (
        f'<div class="btlab-result"><p><b>{html.escape(sweep_title(sweep))}</b></p>'
        f"<p>{html.escape(best)}</p>{_table(headline_pairs(sweep.best['metrics']))}"
        f"{equity_svg(sweep.best_run.equity_values)}{grid}"
        f"{_table(_identity(sweep.config_hash, sweep.dataset.hash))}"
        f"{_warnings_html(sweep.warnings)}</div>"
    )
