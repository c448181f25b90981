"""Interactive Plotly figures of results (`result.plot()`): equity (and the benchmark, where the
metrics carry one), drawdown, and the exposure of a single-symbol run or each symbol's weight in
a portfolio; a sweep's objective heatmap.

Plotly is the optional extra `btlab[plot]`, imported only when a figure is asked for (never by
`import btlab`); without it `plot()` raises an ImportError saying how to install it.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

import numpy as np
import pandas as pd

from .metrics import drawdown_path

__all__ = ["PLOT_EXTRA_HINT", "plot_heatmap", "plot_portfolio", "plot_run", "require_plotly"]

PLOT_EXTRA_HINT = "pip install 'btlab[plot]'"


def require_plotly() -> tuple[Any, Any]:
    """(plotly.graph_objects, plotly.subplots), or an ImportError naming the extra."""
    try:
        go = import_module("plotly.graph_objects")
        subplots = import_module("plotly.subplots")
    except ImportError as exc:
        raise ImportError(
            f"plot() needs plotly, an optional dependency of btlab: {PLOT_EXTRA_HINT}"
        ) from exc
    return go, subplots


def _times(ts_ns: np.ndarray) -> pd.DatetimeIndex:
    return pd.DatetimeIndex(ts_ns.astype("datetime64[ns]"), tz="UTC")


def _equity_and_drawdown(result: Any, title: str, third: str) -> tuple[Any, Any, pd.DatetimeIndex]:
    go, subplots = require_plotly()
    x = _times(result.dataset.ts)
    fig = subplots.make_subplots(
        rows=3, cols=1, shared_xaxes=True, vertical_spacing=0.04, row_heights=[0.55, 0.2, 0.25],
        subplot_titles=("Equity", "Drawdown", third),
    )  # fmt: skip
    equity = result.equity_values
    fig.add_trace(go.Scatter(x=x, y=equity, name="equity", mode="lines"), row=1, col=1)
    benchmark = getattr(result, "benchmark_equity", None)
    if benchmark is not None:
        fig.add_trace(
            go.Scatter(x=x, y=benchmark, name="benchmark", mode="lines", line={"dash": "dot"}),
            row=1, col=1,
        )  # fmt: skip
    fig.add_trace(
        go.Scatter(x=x, y=drawdown_path(equity), name="drawdown", mode="lines", fill="tozeroy"),
        row=2, col=1,
    )  # fmt: skip
    fig.update_yaxes(tickformat=".0%", row=2, col=1)
    fig.update_layout(title=title, hovermode="x unified", height=640)
    return go, fig, x


def plot_run(result: Any, title: str) -> Any:
    """A single-symbol run: equity, drawdown, exposure (position value / equity)."""
    go, fig, x = _equity_and_drawdown(result, title, "Exposure")
    with np.errstate(divide="ignore", invalid="ignore"):
        exposure = result.units * result.dataset.close / result.equity_values
    fig.add_trace(go.Scatter(x=x, y=exposure, name="exposure", mode="lines"), row=3, col=1)
    fig.update_yaxes(tickformat=".0%", row=3, col=1)
    return fig


def plot_portfolio(result: Any, title: str) -> Any:
    """A portfolio: the account's equity and drawdown, each symbol's weight (value / equity)."""
    go, fig, x = _equity_and_drawdown(result, title, "Weights")
    with np.errstate(divide="ignore", invalid="ignore"):
        weights = result.position_values / result.equity_values[:, None]
    for k, symbol in enumerate(result.symbols):
        fig.add_trace(
            go.Scatter(x=x, y=weights[:, k], name=str(symbol), mode="lines"),
            row=3, col=1,
        )  # fmt: skip
    fig.update_yaxes(tickformat=".0%", row=3, col=1)
    return fig


def plot_heatmap(frame: pd.DataFrame, metric: str, title: str) -> Any:
    """A sweep's metric over two axes (`heatmap_frame`'s pivot) as a Plotly heatmap."""
    go, _subplots = require_plotly()
    x = [str(v) for v in frame.columns]
    y = [str(v) for v in frame.index]
    fig = go.Figure(
        go.Heatmap(z=frame.to_numpy(dtype=float), x=x, y=y, name=metric, colorbar={"title": metric})
    )
    fig.update_layout(
        title=title, xaxis_title=str(frame.columns.name), yaxis_title=str(frame.index.name or "")
    )
    return fig
