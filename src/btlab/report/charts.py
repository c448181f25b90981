"""The report's charts: matplotlib figures as inline SVG, series downsampled to their extremes.

matplotlib is imported inside the functions that draw, not here: importing it costs a large
part of a second, and `btlab`'s light commands must start without it.
"""

from __future__ import annotations

import io
import json
import math
import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure
    from matplotlib.typing import RcKeyType


#: Buckets per drawn series (two points each): about one point per pixel of the chart.
BUCKETS = 600
#: Trade markers: at most one of each kind per this many equal slices of the time axis.
MARKER_COLUMNS = 160
#: The price chart's fill markers: fewer slices, they sit on a busier line.
PRICE_MARKER_COLUMNS = 100
#: Width of the charts in inches (SVG: 72 pt per inch); the page scales them to its width. 9 in
#: with 9.5 pt text reads at 1400 px (scaled up about 1.2×) and at 700 px (down to about 0.75×).
CHART_WIDTH = 9.0
#: Fixed margins (fractions of the figure) so the time axes of the stacked charts line up.
_LEFT, _RIGHT = 0.085, 0.985

_COLORS = {
    "equity": "#1f5fa8",
    "cash": "#8a8f98",
    "drawdown": "#c0392b",
    "target": "#cfd4da",
    "exposure": "#1f5fa8",
    "long": "#1e8449",
    "short": "#c0392b",
    "exit": "#34495e",
    "benchmark": "#9a7d0a",
    "price": "#4a4f57",
}
#: matplotlib settings for every chart (`render_html` draws the page inside them).
RC: dict[RcKeyType, Any] = {
    "svg.fonttype": "none",
    "font.family": "sans-serif",
    "font.sans-serif": ["DejaVu Sans", "Arial", "Helvetica"],
    "font.size": 9.5,
    "axes.titlesize": 10.5,
    "axes.labelsize": 9.5,
    "axes.edgecolor": "#9aa0a6",
    "axes.linewidth": 0.6,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.color": "#e3e6ea",
    "grid.linewidth": 0.6,
    "xtick.color": "#4a4f57",
    "ytick.color": "#4a4f57",
    "xtick.major.size": 3.0,
    "ytick.major.size": 3.0,
    "legend.frameon": False,
    "legend.fontsize": 9.0,
    "path.simplify": True,
    "image.interpolation": "nearest",
    "date.epoch": "1970-01-01T00:00:00",  # date_numbers() counts days from it
}

_SVG_ROOT = re.compile(r"<svg\b[^>]*>")
_SVG_ATTR = re.compile(r'\s(?:xmlns(?::\w+)?|version)="[^"]*"')
_SVG_ELEMENT_ID = re.compile(r' id="[A-Za-z][\w.]*_\d+"')
_SVG_METADATA = re.compile(r"<metadata>.*?</metadata>\s*", re.S)
_SVG_INDENT = re.compile(r"\n\s+")
_SVG_COORDS = re.compile(r' (d|x|y)="([^"]*)"')
_LONG_DECIMAL = re.compile(r"(\.\d\d)\d+")


def minmax_indices(values: np.ndarray, buckets: int = BUCKETS) -> np.ndarray:
    """Sorted indices of the first and last value and of each bucket's minimum and maximum.

    The values are cut into `buckets` equal runs (the last one shorter); non-finite values are
    never chosen as an extreme of a bucket that has a finite one. Short series come back whole.
    """
    n = int(values.shape[0])
    if n <= 2 * buckets:
        return np.arange(n)
    size = -(-n // buckets)
    rows = -(-n // size)
    padded = np.empty(rows * size)
    padded[:n] = values
    padded[n:] = values[-1]  # repeating the last value changes no extreme
    finite = np.isfinite(padded)
    lows = np.where(finite, padded, np.inf).reshape(rows, size).argmin(axis=1)
    highs = np.where(finite, padded, -np.inf).reshape(rows, size).argmax(axis=1)
    base = np.arange(rows) * size
    picked = np.concatenate([[0, n - 1], base + lows, base + highs])
    return np.unique(np.minimum(picked, n - 1))


def date_numbers(ts: pd.Series) -> np.ndarray:
    """Matplotlib date numbers (days since 1970-01-01) of UTC timestamps."""
    ns = pd.DatetimeIndex(ts).as_unit("ns").asi8.astype(np.float64)
    out: np.ndarray = ns / 86_400e9
    return out


def _figure(height: float, width: float = CHART_WIDTH) -> Figure:
    # here, not at the top: the light commands start without matplotlib (see the docstring)
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height))
    fig.subplots_adjust(left=_LEFT, right=_RIGHT, top=0.9, bottom=0.16)
    return fig


def _date_axis(ax: Axes, x: np.ndarray) -> None:
    # here, not at the top: the light commands start without matplotlib (see the docstring)
    import matplotlib.dates as mdates

    locator = mdates.AutoDateLocator(minticks=4, maxticks=10)  # type: ignore[no-untyped-call]
    ax.xaxis.set_major_locator(locator)
    formatter = mdates.ConciseDateFormatter(locator)  # type: ignore[no-untyped-call]
    ax.xaxis.set_major_formatter(formatter)
    ax.set_xlim(float(x[0]), float(x[-1]) if x[-1] > x[0] else float(x[0]) + 1.0)


def _legend(ax: Axes) -> None:
    """The legend above the plot, right-aligned on the title's line: it never hides data."""
    ax.legend(loc="lower right", bbox_to_anchor=(1.0, 1.0), ncols=6, borderaxespad=0.2,
              handlelength=1.6, columnspacing=1.2)  # fmt: skip


def _compact_money(value: float, _pos: Any = None) -> str:
    for limit, suffix in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= limit:
            return f"{value / limit:,.4g}{suffix}"
    return f"{value:,.4g}"


def _svg(fig: Figure, salt: str) -> str:
    """The figure as inline SVG: no prologue, metadata, namespaces or per-element ids."""
    # here, not at the top: the light commands start without matplotlib (see the docstring)
    import matplotlib

    buf = io.StringIO()
    with matplotlib.rc_context({"svg.hashsalt": f"btlab-{salt}"}):
        fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None})
    text = buf.getvalue()
    start = text.index("<svg")
    text = _SVG_METADATA.sub("", text[start:])
    root = _SVG_ROOT.match(text)
    assert root is not None
    head = _SVG_ATTR.sub("", root.group(0)).replace("<svg", '<svg role="img"', 1)
    body = _SVG_INDENT.sub("\n", _SVG_ELEMENT_ID.sub("", text[root.end() :]))
    # coordinates to 0.01 pt: far below a pixel, a third fewer bytes
    body = _SVG_COORDS.sub(
        lambda m: f' {m.group(1)}="' + _LONG_DECIMAL.sub(r"\1", m.group(2)) + '"', body
    )
    return head + body.strip()


#: The equity chart switches to a log scale where its curves span more than this factor.
LOG_SPAN = 10.0


def log_scale(*series: np.ndarray) -> bool:
    """Whether curves are drawn on a log scale: every finite value positive and the largest
    over the smallest above LOG_SPAN (a ruined run's equity at or below zero stays linear)."""
    values = np.concatenate([np.asarray(s, dtype=np.float64) for s in series])
    values = values[np.isfinite(values)]
    if values.size == 0 or values.min() <= 0:
        return False
    return bool(values.max() / values.min() > LOG_SPAN)


def equity_chart(
    x: np.ndarray, equity: np.ndarray, initial_cash: float, benchmark: np.ndarray | None = None
) -> tuple[str, bool]:
    """The chart, and whether its y axis is logarithmic (`log_scale` of equity and benchmark)."""
    fig = _figure(3.2)
    ax = fig.add_subplot()
    keep = minmax_indices(equity)
    if benchmark is not None:
        keep_b = minmax_indices(benchmark)
        ax.plot(x[keep_b], benchmark[keep_b], color=_COLORS["benchmark"], linewidth=0.9,
                label="benchmark")  # fmt: skip
    ax.plot(x[keep], equity[keep], color=_COLORS["equity"], linewidth=1.1, label="equity")
    ax.axhline(initial_cash, color=_COLORS["cash"], linewidth=0.8, linestyle="--",
               label="initial cash")  # fmt: skip
    # here, not at the top: the light commands start without matplotlib (see the docstring)
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    log = log_scale(equity, *([] if benchmark is None else [benchmark]))
    if log:
        ax.set_yscale("log")
        ax.yaxis.set_major_locator(LogLocator(base=10.0, subs=(1.0, 2.0, 5.0)))
        ax.yaxis.set_minor_formatter(NullFormatter())
    ax.yaxis.set_major_formatter(FuncFormatter(_compact_money))
    _date_axis(ax, x)
    _legend(ax)
    ax.set_title("Equity" + (" (log scale)" if log else ""), loc="left")
    return _svg(fig, "equity"), log


def price_chart(
    x: np.ndarray, close: np.ndarray, fills: pd.DataFrame, ts: np.ndarray
) -> tuple[str, str]:  # fmt: skip
    """The close with a marker at each fill's bar and price (buy ▲, sell ▼), thinned as the
    position chart's trade markers; and a caption naming how many were drawn."""
    fig = _figure(2.9)
    ax = fig.add_subplot()
    keep = minmax_indices(close)
    ax.plot(x[keep], close[keep], color=_COLORS["price"], linewidth=0.9, label="close")
    lo, hi = float(x[0]), float(x[-1])
    n_fills, shown = len(fills), 0
    if n_fills:
        if "bar" in fills:
            bars = fills["bar"].to_numpy(np.int64)
        else:
            bars = np.searchsorted(ts, pd.DatetimeIndex(fills["ts"]).as_unit("ns").asi8)
        bars = np.clip(bars, 0, len(x) - 1)
        price = fills["fill_price" if "fill_price" in fills else "price"].to_numpy(np.float64)
        buy = (fills["side"].astype(str) == "buy").to_numpy()
        for mask, marker, color, label in ((buy, "^", _COLORS["long"], "buy"),
                                           (~buy, "v", _COLORS["short"], "sell")):  # fmt: skip
            pick = np.flatnonzero(mask)
            pick = pick[_thin(x[bars[pick]], lo, hi, PRICE_MARKER_COLUMNS)]
            shown += pick.size
            if pick.size:
                ax.plot(x[bars[pick]], price[pick], linestyle="none", marker=marker,
                        markersize=5, color=color, label=label, alpha=0.85)  # fmt: skip
    # here, not at the top: the light commands start without matplotlib (see the docstring)
    from matplotlib.ticker import FuncFormatter

    ax.yaxis.set_major_formatter(FuncFormatter(_compact_money))
    _date_axis(ax, x)
    _legend(ax)
    ax.set_title("Price and fills", loc="left")
    if not n_fills:
        caption = "The close of each bar. No fills."
    elif shown == n_fills:
        caption = f"The close of each bar; all {n_fills:,} fills marked at their fill price."
    else:
        caption = (
            f"The close of each bar; {shown:,} of {n_fills:,} fills marked at their fill price "
            f"(at most one buy and one sell per 1/{PRICE_MARKER_COLUMNS} of the time axis)."
        )
    return _svg(fig, "price"), caption


def drawdown_chart(x: np.ndarray, drawdown: np.ndarray) -> str:
    fig = _figure(2.3)
    ax = fig.add_subplot()
    dd = np.where(np.isfinite(drawdown), drawdown, np.nan)
    keep = minmax_indices(dd)
    xs, ys = x[keep], np.nan_to_num(dd[keep], nan=0.0)
    # one polygon (the curve closed along 0) draws both the area and its edge
    ax.fill(np.r_[xs[0], xs, xs[-1]], np.r_[0.0, ys, 0.0], facecolor="#c0392b40",
            edgecolor=_COLORS["drawdown"], linewidth=0.8)  # fmt: skip
    if np.isfinite(dd).any() and np.nanmin(dd) < 0:
        trough = int(np.nanargmin(dd))
        ax.plot([x[trough]], [dd[trough]], marker="o", markersize=4, color=_COLORS["drawdown"],
                clip_on=False)  # fmt: skip
        right_half = x[trough] > (x[0] + x[-1]) / 2  # label on the side with room
        ax.annotate(
            f"max {dd[trough] * 100:.2f}%", (x[trough], dd[trough]),
            xytext=(-6 if right_half else 6, -2), textcoords="offset points", va="top",
            ha="right" if right_half else "left", fontsize=8.5, color=_COLORS["drawdown"],
        )  # fmt: skip
        ax.set_ylim(min(float(np.nanmin(dd)) * 1.18, -0.01), 0.0)
    else:
        ax.set_ylim(-0.01, 0.001)
    # here, not at the top: the light commands start without matplotlib (see the docstring)
    from matplotlib.ticker import PercentFormatter

    ax.yaxis.set_major_formatter(PercentFormatter(xmax=1.0))
    _date_axis(ax, x)
    ax.set_title("Drawdown", loc="left")
    return _svg(fig, "drawdown")


def _thin(x: np.ndarray, lo: float, hi: float, columns: int = MARKER_COLUMNS) -> np.ndarray:
    """Indices of the first of the points in each of `columns` equal slices of [lo, hi]."""
    if x.size == 0:
        return np.arange(0)
    col = np.floor((x - lo) / max(hi - lo, 1e-12) * columns).astype(np.int64)
    _, first = np.unique(col, return_index=True)
    return np.sort(first)


def position_chart(
    x: np.ndarray, target: np.ndarray, exposure: np.ndarray, trades: pd.DataFrame,
    ts: np.ndarray,
) -> tuple[str, str]:  # fmt: skip
    """The chart and a caption naming how many trade markers were drawn."""
    fig = _figure(2.7)
    ax = fig.add_subplot()
    expo = np.where(np.isfinite(exposure), exposure, np.nan)
    keep_t = minmax_indices(target)
    keep_e = minmax_indices(expo)
    # the target is a wide pale band under the exposure line, visible where they coincide
    ax.plot(x[keep_t], target[keep_t], color=_COLORS["target"], linewidth=3.0,
            drawstyle="steps-post", label="target")  # fmt: skip
    ax.plot(x[keep_e], expo[keep_e], color=_COLORS["exposure"], linewidth=0.9, alpha=0.9,
            label="exposure (position × close / equity)")  # fmt: skip
    ax.axhline(0.0, color="#9aa0a6", linewidth=0.6)
    lo, hi = float(x[0]), float(x[-1])
    shown = 0
    n_trades = len(trades)
    if n_trades:
        entry_bar = np.clip(
            np.searchsorted(ts, trades["entry_ts"].to_numpy(np.int64)), 0, len(x) - 1
        )
        exit_bar = np.clip(np.searchsorted(ts, trades["exit_ts"].to_numpy(np.int64)), 0, len(x) - 1)
        long = (trades["side"].astype(str) == "long").to_numpy()
        held = np.maximum(exit_bar - 1, entry_bar)
        groups = (
            (entry_bar[long], "^", _COLORS["long"], "long entry"),
            (entry_bar[~long], "v", _COLORS["short"], "short entry"),
        )
        for bars, marker, color, label in groups:
            pick = bars[_thin(x[bars], lo, hi)]
            shown += pick.size
            if pick.size:
                ax.plot(x[pick], expo[pick], linestyle="none", marker=marker, markersize=5,
                        color=color, label=label, clip_on=False)  # fmt: skip
        pick_exit = _thin(x[exit_bar], lo, hi)
        shown += pick_exit.size
        ax.plot(x[exit_bar[pick_exit]], expo[held[pick_exit]], linestyle="none", marker="x",
                markersize=4, color=_COLORS["exit"], label="exit", clip_on=False)  # fmt: skip
    finite = np.concatenate([target[np.isfinite(target)], expo[np.isfinite(expo)], [0.0]])
    top, bottom = float(finite.max()), float(finite.min())
    if top - bottom < 0.05:  # never in the market: show the scale of a full position
        top, bottom = max(top, 1.0), min(bottom, -1.0)
    pad = (top - bottom) * 0.12
    ax.set_ylim(bottom - pad, top + pad)
    _date_axis(ax, x)
    _legend(ax)
    ax.set_title("Position (fraction of equity)", loc="left")
    markers = 2 * n_trades
    if not n_trades:
        caption = "No trades."
    elif shown == markers:
        caption = f"{n_trades:,} trades; every entry and exit is marked."
    else:
        caption = (
            f"{n_trades:,} trades; {shown:,} of {markers:,} entry/exit markers drawn (at most one "
            f"of each kind per 1/{MARKER_COLUMNS} of the time axis)."
        )
    return _svg(fig, "position"), caption


def heatmap_chart(heatmap: Mapping[str, Any]) -> str:
    # here, not at the top: the light commands start without matplotlib (see the docstring)
    import matplotlib
    from matplotlib.patches import Rectangle

    xs = list(heatmap["x"]["values"])
    y_axis = heatmap.get("y")
    ys = list(y_axis["values"]) if y_axis else [""]
    z = np.array(
        [[np.nan if v is None else float(v) for v in row] for row in heatmap["z"]], dtype=float
    )
    height = min(7.0, max(2.4, 0.9 + 0.32 * len(ys)))
    fig = _figure(height)
    top, bottom = 1 - 0.4 / height, 0.62 / height  # margins in inches, whatever the height
    fig.subplots_adjust(left=0.1, right=0.97, top=top, bottom=bottom)
    ax = fig.add_subplot()
    ax.grid(False)
    cmap = matplotlib.colormaps["viridis"].with_extremes(bad="#e3e6ea")
    finite = z[np.isfinite(z)]
    vmin, vmax = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    image = ax.imshow(np.ma.masked_invalid(z), cmap=cmap, aspect="auto", origin="lower",
                      vmin=vmin, vmax=vmax if vmax > vmin else vmin + 1e-12)  # fmt: skip
    # at most 0.2 in wide: on a tall heatmap a wider bar pushes its label out of the figure
    aspect = max(20.0, (top - bottom) * height / 0.2)
    colorbar = fig.colorbar(image, ax=ax, pad=0.01, fraction=0.04, aspect=aspect)
    colorbar.set_label(str(heatmap.get("metric", "")))
    step_x = max(1, math.ceil(len(xs) / 25))
    step_y = max(1, math.ceil(len(ys) / 20))
    ax.set_xticks(range(0, len(xs), step_x), [str(v) for v in xs[::step_x]])
    if y_axis:
        ax.set_yticks(range(0, len(ys), step_y), [str(v) for v in ys[::step_y]])
    else:
        ax.set_yticks([])
    ax.set_xlabel(str(heatmap["x"]["name"]))
    if y_axis:
        ax.set_ylabel(str(y_axis["name"]))
    if len(xs) <= 20 and len(ys) <= 20:
        mid = (vmin + vmax) / 2
        for (row, col), value in np.ndenumerate(z):
            if np.isfinite(value):
                ax.text(col, row, f"{value:.2f}", ha="center", va="center", fontsize=8.5,
                        color="#111111" if value > mid else "#ffffff")  # fmt: skip
    best = heatmap.get("best") or {}
    x_name, y_name = heatmap["x"]["name"], (y_axis or {}).get("name")
    bx = _index_of(xs, best.get(x_name))
    by = _index_of(ys, best.get(y_name)) if y_name else 0
    if bx is not None and by is not None:
        ax.add_patch(Rectangle((bx - 0.5, by - 0.5), 1, 1, fill=False, edgecolor="#e74c3c",
                               linewidth=2.0))  # fmt: skip
    ax.set_title(f"{heatmap.get('metric', '')} by {x_name}" + (f" and {y_name}" if y_name else ""),
                 loc="left")  # fmt: skip
    return _svg(fig, "heatmap")


def _index_of(values: Sequence[Any], value: Any) -> int | None:
    key = json.dumps(value, sort_keys=True)
    for i, v in enumerate(values):
        if json.dumps(v, sort_keys=True) == key:
            return i
    return None
