"""The offline HTML report of a run or a sweep, rendered from its artifact folder.

`render_report(folder)` reads what a run wrote (`manifest.json`, `metrics.json`,
`validation.json`, `equity.parquet`, `fills.parquet`, `trades.parquet`; a sweep folder has
`sweep.json`, `sweep.parquet` and `heatmap.json` instead of the three tables) and returns one
self-contained HTML page. `write_report` writes it (temporary file + rename), `cached_report`
reuses a report already written by this same renderer. `btlab run`, `btlab report` and
`GET /runs/{id}/report` all go through `write_report`, so the three show the same page.

Choices:

- **Charts are matplotlib SVG, inline.** Interactive JavaScript libraries (plotly, bokeh)
  embed one megabyte or more of script to work offline, over the size budget; matplotlib draws
  static SVG of a few tens of KB per chart. Text stays text (`svg.fonttype = "none"`), so the
  page is searchable and the browser's sans-serif font draws the labels. The XML prologue,
  metadata and namespace URLs are stripped: the page holds no URL of any kind and needs no
  network. Each chart gets its own `svg.hashsalt`, so the ids matplotlib derives for clip
  paths and markers are stable from render to render and distinct between the charts of one
  page; its per-element ids (`figure_1`, `axes_1`, ...) repeat across charts and are dropped.
- **Downsampling keeps extremes.** A series longer than `2 * BUCKETS` points is cut into
  `BUCKETS` equal runs of bars, and only each run's minimum and maximum (in time order) plus the
  first and last bar are drawn: every drawdown trough and equity spike survives, and a
  100,000-bar run draws at most ~1,200 points per line. Trade markers are thinned to at most
  one of each kind (long entry, short entry, exit) per 1/160 of the time axis
  (`MARKER_COLUMNS`), so a run with thousands of trades still draws a few hundred markers.
- **Monthly returns** are compounded from the equity at each month's last bar (UTC months),
  the first month against the initial cash, so the months of a year multiply to the yearly
  total and all months to the total return. Months without bars are left blank.
- **The report is a view, not an artifact.** Its bytes depend on matplotlib's version, which
  `run_hash` does not pin, so it is never listed in the manifest and never hashed. For one
  renderer (the `generator` meta tag: report format, btlab and matplotlib versions) the same
  artifacts give the same bytes: no timestamps, no random ids, fixed number formats.
- Every number cell carries the unrounded value in `data-value` (JSON), so a script (or a
  test) can read the page without parsing the display format.
- A sweep stores no per-bar path, so its report has the heatmap of the objective, the best
  combination, the top combinations and PBO, but no equity, drawdown, position or monthly
  charts; it prints the `btlab run` command that reproduces the best combination for those.
- matplotlib keeps global settings; renders in one process are serialized by a lock.
"""

from __future__ import annotations

import html
import io
import json
import math
import os
import re
import tempfile
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from btlab import __version__

from .artifacts import MANIFEST
from .errors import NotFoundError, RunError
from .metric_registry import BY_NAME, FOLD, GROUP_TITLES, METRICS, SWEEP_COLUMNS, in_group

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure
    from matplotlib.typing import RcKeyType

__all__ = [
    "BUCKETS",
    "REPORT_NAME",
    "ReportData",
    "cached_report",
    "generator_tag",
    "load_report_data",
    "minmax_indices",
    "monthly_returns",
    "render_html",
    "render_report",
    "write_report",
]

REPORT_NAME = "report.html"
#: Bump when the page changes: a cached report of another format is rendered again.
REPORT_FORMAT = 3
#: Buckets per drawn series (two points each): about one point per pixel of the chart.
BUCKETS = 600
#: Trade markers: at most one of each kind per this many equal slices of the time axis.
MARKER_COLUMNS = 160
#: Width of the charts in inches (SVG: 72 pt per inch); the page scales them to its width.
CHART_WIDTH = 11.0
#: Fixed margins (fractions of the figure) so the time axes of the stacked charts line up.
_LEFT, _RIGHT = 0.075, 0.985
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_COLORS = {
    "equity": "#1f5fa8",
    "cash": "#8a8f98",
    "drawdown": "#c0392b",
    "target": "#cfd4da",
    "exposure": "#1f5fa8",
    "long": "#1e8449",
    "short": "#c0392b",
    "exit": "#34495e",
}
_RC: dict[RcKeyType, Any] = {
    "svg.fonttype": "none",
    "font.family": "sans-serif",
    "font.sans-serif": ["DejaVu Sans", "Arial", "Helvetica"],
    "font.size": 9.0,
    "axes.titlesize": 10.0,
    "axes.labelsize": 9.0,
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
    "legend.fontsize": 8.5,
    "path.simplify": True,
    "image.interpolation": "nearest",
    "date.epoch": "1970-01-01T00:00:00",  # _dates() counts days from it
}
_RENDER_LOCK = threading.Lock()
_SVG_ROOT = re.compile(r"<svg\b[^>]*>")
_SVG_ATTR = re.compile(r'\s(?:xmlns(?::\w+)?|version)="[^"]*"')
_SVG_ELEMENT_ID = re.compile(r' id="[A-Za-z][\w.]*_\d+"')
_SVG_METADATA = re.compile(r"<metadata>.*?</metadata>\s*", re.S)
_SVG_INDENT = re.compile(r"\n\s+")
_SVG_COORDS = re.compile(r' (d|x|y)="([^"]*)"')
_LONG_DECIMAL = re.compile(r"(\.\d\d)\d+")


def generator_tag() -> str:
    """What made a report: its format and the versions its bytes depend on."""
    return f"btlab-report/{REPORT_FORMAT} btlab/{__version__} matplotlib/{version('matplotlib')}"


# ---------------------------------------------------------------- inputs


@dataclass(frozen=True)
class ReportData:
    """The artifacts a report shows. `equity`, `fills`, `trades` are None for a sweep; the
    `sweep*` and `heatmap` fields are None for a run."""

    manifest: dict[str, Any]
    metrics: dict[str, Any]
    validation: dict[str, Any]
    equity: pd.DataFrame | None = None
    fills: pd.DataFrame | None = None
    trades: pd.DataFrame | None = None
    sweep: dict[str, Any] | None = None
    sweep_table: pd.DataFrame | None = None
    heatmap: dict[str, Any] | None = None

    @property
    def is_sweep(self) -> bool:
        return self.sweep is not None


def _read_json(folder: Path, name: str) -> dict[str, Any]:
    path = folder / name
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RunError(f"cannot render the report: {path} is missing") from None
    except (OSError, ValueError) as exc:
        raise RunError(f"cannot render the report: {path} is unreadable: {exc}") from None
    if not isinstance(value, dict):
        raise RunError(f"cannot render the report: {path} is not a JSON object")
    return value


def _read_table(folder: Path, name: str) -> pd.DataFrame:
    path = folder / name
    if not path.is_file():
        raise RunError(f"cannot render the report: {path} is missing")
    try:
        return pd.read_parquet(path)
    except Exception as exc:  # pyarrow raises several types for a damaged file
        raise RunError(f"cannot render the report: {path} is unreadable: {exc}") from None


def load_report_data(folder: str | Path) -> ReportData:
    """Read a run's (or a sweep's) artifact folder. NotFoundError without a manifest there;
    RunError naming the file when an artifact is missing or unreadable."""
    path = Path(folder)
    if not (path / MANIFEST).is_file():
        raise NotFoundError(f"{path} is not a run folder: it has no {MANIFEST}")
    manifest = _read_json(path, MANIFEST)
    metrics = _read_json(path, "metrics.json")
    validation = _read_json(path, "validation.json")
    if manifest.get("kind") == "sweep":
        return ReportData(
            manifest, metrics, validation,
            sweep=_read_json(path, "sweep.json"),
            sweep_table=_read_table(path, "sweep.parquet"),
            heatmap=_read_json(path, "heatmap.json"),
        )  # fmt: skip
    return ReportData(
        manifest, metrics, validation,
        equity=_read_table(path, "equity.parquet"),
        fills=_read_table(path, "fills.parquet"),
        trades=_read_table(path, "trades.parquet"),
    )  # fmt: skip


# ---------------------------------------------------------------- numbers


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


def monthly_returns(
    ts: pd.Series | pd.DatetimeIndex, equity: np.ndarray, initial_cash: float
) -> pd.DataFrame:
    """Compounded returns by UTC calendar month: rows are years, columns 1..12 and "year".

    A month's return is its last equity over the previous month's last equity (the first
    month's over `initial_cash`) minus one; the year's is the same from year end to year end.
    Months without bars are NaN.
    """
    index = pd.DatetimeIndex(ts)
    index = index.tz_convert("UTC") if index.tz is not None else index.tz_localize("UTC")
    series = pd.Series(np.asarray(equity, dtype=np.float64), index=index)
    key = index.year * 12 + (index.month - 1)
    month_end = series.groupby(key).last()
    prev = np.concatenate([[initial_cash], month_end.to_numpy()[:-1]])
    with np.errstate(divide="ignore", invalid="ignore"):
        month_ret = month_end.to_numpy() / prev - 1.0
    keys = month_end.index.to_numpy()
    table = pd.DataFrame(
        np.nan,
        index=pd.Index(range(int(keys[0]) // 12, int(keys[-1]) // 12 + 1), name="year"),
        columns=[*range(1, 13), "year"],
    )
    for k, r in zip(keys, month_ret, strict=True):
        table.loc[int(k) // 12, int(k) % 12 + 1] = r
    year_end = series.groupby(index.year).last()
    prev_year = np.concatenate([[initial_cash], year_end.to_numpy()[:-1]])
    with np.errstate(divide="ignore", invalid="ignore"):
        table.loc[year_end.index.to_numpy(), "year"] = year_end.to_numpy() / prev_year - 1.0
    return table


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _fmt(value: Any, kind: str) -> str:
    """A number as shown: pct, ratio, prob, money, int, bars, float1, bool; '—' when missing."""
    if isinstance(value, bool) or kind == "bool":
        return "—" if value is None else ("yes" if value else "no")
    if value is None or isinstance(value, str):
        return "—" if value is None else value
    if not isinstance(value, int | float):
        return _json_value(value)
    if not math.isfinite(value):
        return "—" if math.isnan(value) else ("∞" if value > 0 else "-∞")
    if kind == "pct":
        return f"{value * 100:.2f}%"
    if kind == "ratio":
        return f"{value:.3f}"
    if kind == "prob":
        return f"{value:.4f}"
    if kind == "money":
        return f"{value:,.2f}"
    if kind in ("int", "bars"):
        return f"{round(value):,}" + (" bars" if kind == "bars" else "")
    if kind == "float1":
        return f"{value:,.1f}"
    return f"{value:,.6g}"


def _json_value(value: Any) -> str:
    """The raw value for a data-value attribute: JSON, NaN/inf as null (as the artifacts)."""

    def clean(v: Any) -> Any:
        if isinstance(v, float) and not math.isfinite(v):
            return None
        if isinstance(v, np.generic):
            return clean(v.item())
        if isinstance(v, list | tuple):
            return [clean(x) for x in v]
        return v

    return json.dumps(clean(value), separators=(",", ":"), sort_keys=True)


def _esc(text: Any) -> str:
    return html.escape(str(text), quote=True)


def _sign_class(value: Any) -> str:
    if not _finite(value) or value == 0:
        return ""
    return "pos" if value > 0 else "neg"


def _cell(value: Any, kind: str, *, signed: bool = False) -> str:
    """A number cell: the value as shown, and unrounded (JSON) in data-value."""
    cls = " ".join(c for c in ("num", _sign_class(value) if signed else "") if c)
    return (
        f'<td class="{cls}" data-value="{_esc(_json_value(value))}">{_esc(_fmt(value, kind))}</td>'
    )


# ---------------------------------------------------------------- charts


def _dates(ts: pd.Series) -> np.ndarray:
    """Matplotlib date numbers (days since 1970-01-01) of UTC timestamps."""
    ns = pd.DatetimeIndex(ts).as_unit("ns").asi8.astype(np.float64)
    out: np.ndarray = ns / 86_400e9
    return out


def _figure(height: float) -> Figure:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(CHART_WIDTH, height))
    fig.subplots_adjust(left=_LEFT, right=_RIGHT, top=0.9, bottom=0.16)
    return fig


def _date_axis(ax: Axes, x: np.ndarray) -> None:
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


def _equity_chart(x: np.ndarray, equity: np.ndarray, initial_cash: float) -> str:
    fig = _figure(3.2)
    ax = fig.add_subplot()
    keep = minmax_indices(equity)
    ax.plot(x[keep], equity[keep], color=_COLORS["equity"], linewidth=1.1, label="equity")
    ax.axhline(initial_cash, color=_COLORS["cash"], linewidth=0.8, linestyle="--",
               label="initial cash")  # fmt: skip
    from matplotlib.ticker import FuncFormatter

    ax.yaxis.set_major_formatter(FuncFormatter(_compact_money))
    _date_axis(ax, x)
    _legend(ax)
    ax.set_title("Equity", loc="left")
    return _svg(fig, "equity")


def _drawdown_chart(x: np.ndarray, drawdown: np.ndarray) -> str:
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


def _position_chart(
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


def _heatmap_chart(heatmap: Mapping[str, Any]) -> str:
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
                ax.text(col, row, f"{value:.2f}", ha="center", va="center", fontsize=7.5,
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


# ---------------------------------------------------------------- page parts

#: How the report shows each metric kind of `metric_registry` (`_fmt`'s kinds).
_SHOWN_AS = {"fraction": "pct", "ratio": "ratio", "currency": "money", "count": "int",
             "bars": "bars", "number": "float1", "flag": "bool"}  # fmt: skip
_KINDS = {m.name: _SHOWN_AS[m.kind] for m in METRICS}
_LABELS = {m.name: m.label for m in METRICS}
_SIGNED = {m.name for m in METRICS if m.signed}


def _metrics_tables(metrics: Mapping[str, Any]) -> str:
    groups: list[tuple[str, str, Iterable[tuple[str, str, str]]]] = [
        (slug, title, [(m.name, m.label, _KINDS[m.name]) for m in in_group(slug)])
        for slug, title in GROUP_TITLES.items()
    ]
    other = [(k, k.replace("_", " "), "auto") for k in sorted(metrics) if k not in _KINDS]
    if other:
        groups.append(("other", "Other", other))
    parts = []
    for slug, title, rows in groups:
        body = "".join(
            f'<tr data-metric="{_esc(key)}"><th scope="row">{_esc(label)}</th>'
            f"{_cell(metrics.get(key), kind, signed=key in _SIGNED)}</tr>"
            for key, label, kind in rows
            if key in metrics
        )
        parts.append(
            f'<table id="table-metrics-{slug}" class="metrics"><caption>{_esc(title)}</caption>'
            f"<tbody>{body}</tbody></table>"
        )
    return '<div class="metric-grid">' + "".join(parts) + "</div>"


def _pct1(value: float) -> str:
    """A return in percent with one decimal, never "-0.0"."""
    text = f"{value * 100:.1f}"
    return "0.0" if text == "-0.0" else text


def _monthly_table(table: pd.DataFrame) -> str:
    finite = table.to_numpy(dtype=float)[:, :12]
    finite = finite[np.isfinite(finite)]
    scale = float(np.abs(finite).max()) if finite.size else 0.0
    head = "".join(f'<th scope="col">{m}</th>' for m in _MONTHS)
    rows = []
    for year, row in table.iterrows():
        cells = []
        for month in [*range(1, 13), "year"]:
            value = row[month]
            if not np.isfinite(value):
                cells.append('<td class="num empty"></td>')
                continue
            style = ""
            if month != "year" and scale > 0:
                alpha = min(1.0, abs(value) / scale) * 0.55
                rgb = "30,132,73" if value > 0 else "192,57,43"
                style = f' style="background:rgba({rgb},{alpha:.2f})"'
            cls = "num total" if month == "year" else "num"
            cells.append(
                f'<td class="{cls} {_sign_class(value)}" data-month="{month}" '
                f'data-value="{_esc(_json_value(float(value)))}"{style}>{_pct1(value)}</td>'
            )
        rows.append(f'<tr data-year="{year}"><th scope="row">{year}</th>{"".join(cells)}</tr>')
    return (
        '<div class="wide"><table id="table-monthly" class="monthly"><thead><tr>'
        f'<th scope="col">Year</th>{head}<th scope="col">Total</th></tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table></div>"
    )


def _row(key: str, label: str, value_cell: str, detail: str, meaning: str) -> str:
    return (
        f'<tr data-key="{_esc(key)}"><th scope="row">{_esc(label)}</th>{value_cell}'
        f'<td class="detail">{_esc(detail)}</td><td class="meaning">{_esc(meaning)}</td></tr>'
    )


def _validation_rows(v: Mapping[str, Any]) -> list[str]:
    rows: list[str] = []
    psr = v.get("psr") or {}
    if psr.get("psr") is not None:
        rows.append(_row(
            "psr", "PSR (SR* = 0)", _cell(psr["psr"], "prob"),
            f"{_fmt(psr.get('n_obs'), 'int')} returns, skew {_fmt(psr.get('skew'), 'ratio')}, "
            f"kurtosis {_fmt(psr.get('kurtosis'), 'ratio')}",
            "Probability that the true Sharpe is above 0, given skew and fat tails.",
        ))  # fmt: skip
    dsr = v.get("dsr") or {}
    if dsr.get("dsr") is not None:
        rows.append(_row(
            "dsr", "DSR", _cell(dsr["dsr"], "prob"),
            f"{_fmt(dsr.get('n_trials'), 'int')} trial(s), benchmark Sharpe per bar "
            f"{_fmt(dsr.get('sr_benchmark'), 'prob')}",
            "PSR against the best Sharpe expected from this many trials by luck.",
        ))  # fmt: skip
    if "min_trl" in psr:
        trl = psr["min_trl"]
        rows.append(_row(
            "min_trl", "Minimum track record", _cell(trl, "bars"),
            f"{_fmt(psr.get('min_trl_years'), 'ratio')} years" if _finite(trl)
            else "not defined: the observed Sharpe is not above 0",
            "Bars needed for the observed Sharpe to be above 0 with 95% confidence.",
        ))  # fmt: skip
    boot = v.get("bootstrap") or {}
    if boot.get("sharpe_ci"):
        lo, hi = boot["sharpe_ci"]
        conf = boot.get("confidence", 0.95)
        rows.append(_row(
            "bootstrap_ci", f"Sharpe {_fmt(conf * 100, 'int')}% CI (bootstrap)",
            f'<td class="num" data-value="{_esc(_json_value([lo, hi]))}">'
            f"[{_esc(_fmt(lo, 'ratio'))}, {_esc(_fmt(hi, 'ratio'))}]</td>",
            f"stationary bootstrap, {_fmt(boot.get('n_resamples'), 'int')} resamples, mean block "
            f"{_fmt(boot.get('mean_block_length'), 'float1')} bars; Sharpe {_fmt(boot.get('sharpe'), 'ratio')}",
            "Range of the annualized Sharpe over resampled return paths.",
        ))  # fmt: skip
        rows.append(_row(
            "p_sharpe_le_0", "P(Sharpe ≤ 0) (bootstrap)", _cell(boot.get("p_sharpe_le_0"), "prob"),
            f"{_fmt(boot.get('n_valid'), 'int')} valid resamples",
            "Share of resampled paths whose Sharpe is 0 or below.",
        ))  # fmt: skip
    perm = v.get("permutation") or {}
    if perm.get("p_value") is not None:
        q = perm.get("null_quantiles") or {}
        rows.append(_row(
            "permutation", "Permutation p-value", _cell(perm["p_value"], "prob"),
            f"{_fmt(perm.get('n_permutations'), 'int')} permutations; real {_fmt(perm.get('real'), 'ratio')} "
            f"vs null mean {_fmt(perm.get('null_mean'), 'ratio')} (5–95%: {_fmt(q.get('q05'), 'ratio')} "
            f"to {_fmt(q.get('q95'), 'ratio')}); {_fmt(perm.get('n_ge'), 'int')} at or above real",
            "Chance of a result this good on shuffled prices: the signal's edge over noise.",
        ))  # fmt: skip
        statistic = (v.get("sweep") or {}).get("permutation_statistic")
        if statistic:
            rows[-1] = rows[-1].replace(
                '<td class="detail">', f'<td class="detail">statistic: {_esc(statistic)}; ', 1
            )
    folds = v.get("folds") or {}
    if folds.get("share_positive_sharpe") is not None:
        rows.append(_row(
            "folds", "Folds with Sharpe > 0", _cell(folds["share_positive_sharpe"], "pct"),
            f"{_fmt(folds.get('k'), 'int')} contiguous folds",
            "Whether the result holds across time, not just on average.",
        ))  # fmt: skip
    pbo = v.get("pbo")
    if isinstance(pbo, Mapping) and pbo.get("pbo") is not None:
        rows.append(_row(
            "pbo", "PBO (CSCV)", _cell(pbo["pbo"], "prob"),
            f"{_fmt(pbo.get('n_splits'), 'int')} splits, {_fmt(pbo.get('n_combinations'), 'int')} "
            f"train/test combinations of {_fmt(pbo.get('n_strategies'), 'int')} strategies; "
            f"P(OOS loss) {_fmt(pbo.get('prob_oos_loss'), 'prob')}, degradation slope "
            f"{_fmt(pbo.get('degradation_slope'), 'ratio')}",
            "Probability that the in-sample best is below the median out of sample.",
        ))  # fmt: skip
    sweep = v.get("sweep") or {}
    if sweep.get("pbo_skipped"):
        rows.append(_row("pbo", "PBO (CSCV)", _cell(None, "prob"),
                         f"not computed: {sweep['pbo_skipped']}", ""))  # fmt: skip
    return rows


def _fold_dates(ts: np.ndarray | None, bar: Any, stamp: str | None = None) -> str:
    """A fold boundary's date: from the run's bar timestamps, else from `stamp` (a sweep's
    sweep.json records its folds' dates), else the bar number."""
    if ts is not None and _finite(bar) and 0 <= int(bar) < ts.size:
        when = pd.Timestamp(int(ts[int(bar)]), tz="UTC")
    elif stamp is not None:
        when = pd.Timestamp(stamp)
    else:
        return f"bar {_fmt(bar, 'int')}"
    return str(when.strftime("%Y-%m-%d %H:%M")).removesuffix(" 00:00")


def _folds_table(
    folds: Sequence[Mapping[str, Any]], ts: np.ndarray | None, dates: Sequence[Sequence[str]] = ()
) -> str:
    columns = [(name, BY_NAME[name].narrow_label, _KINDS[name]) for name in FOLD]
    head = "".join(f'<th scope="col">{label}</th>' for _, label, _ in columns)
    rows = []
    for i, fold in enumerate(folds):
        start, end = dates[i] if i < len(dates) else (None, None)
        cells = "".join(
            _cell(fold.get(key), kind, signed=key in _SIGNED) for key, _, kind in columns
        )
        rows.append(
            f'<tr data-fold="{_esc(fold.get("fold"))}"><th scope="row">{_esc(fold.get("fold"))}</th>'
            f'<td class="date">{_esc(_fold_dates(ts, fold.get("start_bar"), start))}</td>'
            f'<td class="date">{_esc(_fold_dates(ts, fold.get("end_bar"), end))}</td>{cells}</tr>'
        )
    return (
        '<div class="wide"><table id="table-folds"><caption>Time folds</caption><thead><tr>'
        f'<th scope="col">Fold</th><th scope="col">From</th><th scope="col">To</th>{head}</tr>'
        f"</thead><tbody>{''.join(rows)}</tbody></table></div>"
    )


def _validation_section(
    validation: Mapping[str, Any], ts: np.ndarray | None, fold_dates: Sequence[Sequence[str]] = ()
) -> str:
    if not validation or validation.get("enabled") is False:
        return (
            '<section id="validation"><h2>Validation</h2>'
            '<p class="note">Validation was not enabled for this run.</p></section>'
        )
    rows = _validation_rows(validation)
    table = (
        '<table id="table-validation"><thead><tr><th scope="col">Statistic</th>'
        '<th scope="col">Value</th><th scope="col">Detail</th><th scope="col">What it says</th>'
        f"</tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )
    folds = (validation.get("folds") or {}).get("folds") or []
    return (
        f'<section id="validation"><h2>Validation</h2>{table}'
        f"{_folds_table(folds, ts, fold_dates) if folds else ''}</section>"
    )


def _params_text(params: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={_json_value(v)}" for k, v in sorted(params.items())) or "—"


def _data_text(data: Mapping[str, Any]) -> tuple[str, str | None]:
    """(symbol, timeframe) as an older manifest's request gives them (timeframe None when not given)."""
    source = data.get("source", "synthetic")
    if source == "dataset":
        return f"stored dataset {str(data.get('id', ''))[:12]}", None
    symbol = data.get("symbol") or (
        Path(str(data.get("path", ""))).stem if source != "synthetic" else ""
    )
    return str(symbol or "—"), data.get("timeframe")


def _data_rows(manifest: Mapping[str, Any]) -> list[tuple[str, str, str]]:
    """The data facts of the manifest: calendar, annualisation and the evidence behind them."""
    facts = manifest.get("dataset") or {}
    if not facts:
        return []
    labels = manifest.get("labels") or {}
    from .timeframes import DataInference, inference_text

    def how(name: str) -> str:
        return "declared" if labels.get(f"{name}_declared") else "inferred"

    rows = [
        ("calendar", "Calendar", f"{facts.get('calendar', '—')} ({how('calendar')})"),
        ("periods_per_year", "Periods per year", _fmt(facts.get("periods_per_year"), "auto")),
    ]
    inference = facts.get("inference")
    if inference:
        evidence = inference_text(
            str(facts.get("calendar")), DataInference.model_validate(inference),
            facts.get("bars_per_day"),
        )  # fmt: skip
        rows.append(("inference", "Inferred from the data",
                     f"timeframe {inference.get('timeframe')}, calendar "
                     f"{inference.get('calendar')}; {evidence}"))  # fmt: skip
    largest = facts.get("largest_gap_seconds")
    rows.append(("gaps", "Gaps", f"{facts.get('gaps', 0):,}"
                 + (f" (largest {_fmt(largest / 86400, 'auto')} days)" if largest else "")))  # fmt: skip
    return rows


def _identity(data: ReportData, ts: np.ndarray | None) -> tuple[str, str]:
    """(page title, identity table)."""
    m = data.manifest
    request = m.get("request") or {}
    strategy = request.get("strategy") or {}
    if m.get("dataset"):
        symbol = str((m.get("labels") or {}).get("symbol") or "—")
        timeframe: str | None = str(m["dataset"].get("timeframe"))
    else:  # a manifest from before the data facts were recorded
        symbol, timeframe = _data_text(request.get("data") or {})
        if timeframe is None and ts is not None and ts.size > 1:
            from .timeframes import infer_timeframe

            timeframe = str(infer_timeframe(ts)[0])
    execution = request.get("execution") or {}
    rows: list[tuple[str, str, str]] = [
        ("kind", "Kind", "sweep" if data.is_sweep else "run"),
        ("strategy", "Strategy", str(strategy.get("name", "—"))),
        ("params", "Parameters", _params_text(strategy.get("params") or {})),
        ("symbol", "Symbol", symbol),
        ("timeframe", "Timeframe", str(timeframe or "—")),
        *_data_rows(m),
    ]
    if data.is_sweep and data.sweep is not None:
        axes = data.sweep.get("axes") or {}
        grid = "; ".join(f"{k} ∈ {{{', '.join(_json_value(x) for x in vals)}}}"
                         for k, vals in axes.items())  # fmt: skip
        fixed = {k: v for k, v in (strategy.get("params") or {}).items() if k not in axes}
        rows[2] = ("params", "Fixed parameters", _params_text(fixed))
        rows += [
            ("grid", "Grid", grid),
            ("combinations", "Combinations",
             f"{data.sweep.get('n_valid', 0):,} valid of {data.sweep.get('n_combinations', 0):,} "
             f"({data.sweep.get('n_skipped', 0):,} skipped)"),
            ("objective", "Objective", f"maximize {data.sweep.get('objective', '—')}"),
        ]  # fmt: skip
    if ts is not None and ts.size:
        first, last = (pd.Timestamp(int(t), tz="UTC") for t in (ts[0], ts[-1]))
        daily = not (ts % 86_400_000_000_000).any()
        form = "%Y-%m-%d" if daily else "%Y-%m-%d %H:%M"
        rows.append(("range", "Range", f"{first:{form}} → {last:{form}} UTC"))
    rows.append(("bars", "Bars", _fmt(data.metrics.get("n_bars"), "int")))
    rows.append((
        "costs", "Costs",
        f"spread {_fmt(execution.get('spread_bps'), 'auto')} bps, slippage "
        f"{_fmt(execution.get('slippage_bps'), 'auto')} bps, commission "
        f"{_fmt(execution.get('commission_bps'), 'auto')} bps; fill at {execution.get('fill', '—')}",
    ))  # fmt: skip
    rows.append(("seed", "Root seed", str(request.get("seed", "—"))))
    rows += [
        ("config_hash", "Config hash", str(m.get("config_hash", "—"))),
        ("run_hash", "Run hash", str(m.get("run_hash", "—"))),
        ("dataset_hash", "Dataset hash", str(m.get("dataset_hash", "—"))),
        ("versions", "Engine",
         ", ".join(f"{k} {v}" for k, v in sorted((m.get("versions") or {}).items()))),
    ]  # fmt: skip
    body = "".join(
        f'<tr data-key="{_esc(key)}"><th scope="row">{_esc(label)}</th>'
        f'<td class="{"hash" if key.endswith("hash") else ""}">{_esc(value)}</td></tr>'
        for key, label, value in rows
    )
    title = f"{strategy.get('name', 'run')} on {symbol}" + (f" {timeframe}" if timeframe else "")
    if data.is_sweep:
        title = f"Sweep: {title}"
    return title, f'<table id="table-identity" class="identity"><tbody>{body}</tbody></table>'


def _warnings_box(manifest: Mapping[str, Any], metrics: Mapping[str, Any]) -> str:
    """The run's warnings (`btlab.run_warnings`, from the manifest) in a box under the title;
    a folder written before warnings existed shows the ruin / halt flags of its metrics."""
    warnings = manifest.get("warnings")
    if not isinstance(warnings, list):
        return _flags(metrics)
    if not warnings:
        return ""
    items = "".join(
        f'<li data-code="{_esc(w.get("code", ""))}"><code>{_esc(w.get("code", ""))}</code> '
        f"{_esc(w.get('message', ''))}</li>"
        for w in warnings
        if isinstance(w, Mapping)
    )
    noun = "warning" if len(warnings) == 1 else "warnings"
    return (
        f'<section id="warnings" class="warning"><strong>{len(warnings)} {noun}: read this '
        f"result's numbers with {'it' if len(warnings) == 1 else 'them'}.</strong>"
        f"<ul>{items}</ul></section>"
    )


def _flags(metrics: Mapping[str, Any]) -> str:
    notes = []
    if metrics.get("ruined"):
        notes.append("The run was ruined: equity fell to zero or below and trading stopped.")
    if metrics.get("halted"):
        notes.append("Trading halted at the max-drawdown limit.")
    return "".join(f'<p class="warning">{_esc(n)}</p>' for n in notes)


def _figure_html(chart_id: str, svg: str, caption: str) -> str:
    return (
        f'<figure id="{chart_id}" class="chart">{svg}'
        f"<figcaption>{_esc(caption)}</figcaption></figure>"
    )


def _run_body(data: ReportData) -> tuple[str, np.ndarray]:
    equity = data.equity
    trades = data.trades
    assert equity is not None and trades is not None
    ts = pd.DatetimeIndex(equity["ts"]).as_unit("ns").asi8
    x = _dates(equity["ts"])
    eq = equity["equity"].to_numpy(dtype=np.float64)
    initial_cash = float(data.metrics.get("initial_cash") or (eq[0] if eq.size else 0.0))
    n = eq.size
    drawn = f"{min(n, minmax_indices(eq).size):,} of {n:,} bars drawn"
    position_svg, position_caption = _position_chart(
        x, equity["target"].to_numpy(np.float64), equity["exposure"].to_numpy(np.float64),
        trades, ts,
    )  # fmt: skip
    charts = (
        _figure_html("chart-equity", _equity_chart(x, eq, initial_cash),
                     f"Marked equity at each bar's close ({drawn}: each bucket's low and high)."),
        _figure_html("chart-drawdown", _drawdown_chart(x, equity["drawdown"].to_numpy(np.float64)),
                     "Equity over its running peak, minus one; the dot marks the deepest point."),
        _figure_html("chart-position", position_svg,
                     "Target: the strategy's wanted position; exposure: the position held. "
                     + position_caption),
    )  # fmt: skip
    monthly = monthly_returns(equity["ts"], eq, initial_cash)
    body = (
        f'<section id="charts"><h2>Equity, drawdown and position</h2>{"".join(charts)}</section>'
        '<section id="monthly"><h2>Monthly returns (%)</h2>'
        '<p class="note">Compounded from the equity at each UTC month\'s last bar; the first month '
        "against the initial cash. Total: the year's months compounded.</p>"
        f"{_monthly_table(monthly)}</section>"
    )
    return body, ts


def _sweep_body(data: ReportData) -> str:
    assert data.sweep is not None and data.sweep_table is not None and data.heatmap is not None
    sweep, table, heatmap = data.sweep, data.sweep_table, data.heatmap
    objective = str(sweep.get("objective", "sharpe"))
    best = sweep.get("best") or {}
    axes = list((sweep.get("axes") or {}).keys())
    best_rows = "".join(
        f'<tr data-param="{_esc(k)}"><th scope="row">{_esc(k)}</th>'
        f'<td data-value="{_esc(_json_value(v))}">{_esc(_json_value(v))}</td></tr>'
        for k, v in sorted((best.get("params") or {}).items())
    )
    best_rows += (
        f'<tr data-param="objective"><th scope="row">{_esc(objective)}</th>'
        f"{_cell(data.metrics.get(objective), _KINDS.get(objective, 'auto'))}</tr>"
    )
    fixed = heatmap.get("fixed") or {}
    caption = "The objective of every valid combination; the red box marks the best."
    if fixed:
        caption += " Other axes fixed at the best's values: " + _params_text(fixed) + "."
    if any(v is None for row in heatmap.get("z", []) for v in row):
        caption += " Grey cells: combinations the strategy rejects."
    metric_cols = [objective, *[c for c in SWEEP_COLUMNS if c != objective]]
    metric_cols = [c for c in metric_cols if c in table.columns]
    order = table.sort_values(by=[objective, "combo"], ascending=[False, True], kind="mergesort",
                              na_position="last")  # fmt: skip
    top = order.head(10)
    head = "".join(f'<th scope="col">{_esc(c)}</th>' for c in axes) + "".join(
        f'<th scope="col">{_esc(_LABELS.get(c, c))}</th>' for c in metric_cols
    )
    rows = []
    for _, rec in top.iterrows():
        cells = "".join(f"<td>{_esc(_json_value(rec[a]))}</td>" for a in axes if a in rec)
        cells += "".join(
            _cell(float(rec[c]) if rec[c] is not None else None, _KINDS.get(c, "auto"),
                  signed=c in _SIGNED)
            for c in metric_cols
        )  # fmt: skip
        rows.append(f'<tr data-combo="{int(rec["combo"])}">{cells}</tr>')
    best_params = best.get("params") or {}
    sets = " ".join(
        f"--set strategy.params.{k}={_json_value(best_params[k])}" for k in axes if k in best_params
    )
    return (
        '<section id="sweep"><h2>Sweep</h2><div class="two">'
        f'<table id="table-best"><caption>Best combination</caption><tbody>{best_rows}</tbody></table>'
        '<p class="note">A sweep keeps no per-bar path: for the equity, drawdown, position and '
        "monthly returns of the best combination, run it alone: the sweep's request without "
        "<code>grid</code>, <code>objective</code> and <code>pbo_splits</code>, with "
        f"<code>{_esc(sets)}</code>.</p></div>"
        + _figure_html("chart-heatmap", _heatmap_chart(heatmap), caption)
        + f'<div class="wide"><table id="table-top"><caption>Top {len(top)} of {len(table):,} '
        f"combinations by {_esc(objective)}</caption><thead><tr>{head}</tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table></div></section>"
    )


_CSS = """
:root{--fg:#1d2129;--muted:#5f6670;--line:#e3e6ea;--bg:#ffffff;--band:#f6f7f9;--pos:#1e8449;--neg:#c0392b}
*{box-sizing:border-box}
body{margin:0;background:var(--band);color:var(--fg);font:14px/1.45 -apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,"DejaVu Sans",sans-serif}
main{max-width:1120px;margin:0 auto;padding:24px 28px 48px;background:var(--bg);min-height:100vh}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:32px 0 10px;padding-bottom:4px;border-bottom:1px solid var(--line)}
.sub{color:var(--muted);margin:0 0 16px}
table{border-collapse:collapse;font-variant-numeric:tabular-nums;margin:0 0 12px}
caption{text-align:left;font-weight:600;padding:0 0 4px}
th,td{padding:3px 10px;border-bottom:1px solid var(--line);text-align:left;vertical-align:top}
thead th{font-weight:600;color:var(--muted);border-bottom:2px solid var(--line)}
tbody th{font-weight:500}
td.num{text-align:right;white-space:nowrap}
.pos{color:var(--pos)}.neg{color:var(--neg)}
table.identity td{overflow-wrap:anywhere}table.identity td.hash{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:12.5px}
.metric-grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(300px,1fr));gap:8px 24px;align-items:start}
.metric-grid table{width:100%}
figure.chart{margin:8px 0 16px}figure.chart svg{display:block;width:100%;height:auto}
figcaption{color:var(--muted);font-size:12.5px;margin-top:2px}
table.monthly{width:100%;font-size:12.5px}table.monthly th,table.monthly td{padding:3px 6px;text-align:right}
table.monthly td.total{font-weight:600;border-left:2px solid var(--line)}
table.monthly td.pos,table.monthly td.neg{color:var(--fg)}
td.detail{color:var(--muted);font-size:12.5px}td.meaning{font-size:12.5px;max-width:300px}
.note{color:var(--muted);font-size:12.5px}.warning{background:#fdecea;border-left:4px solid var(--neg);padding:6px 10px}
#warnings ul{margin:6px 0 0;padding-left:20px}#warnings li{margin:2px 0}
.wide{overflow-x:auto}td.date{white-space:nowrap}
.two{display:grid;grid-template-columns:minmax(240px,1fr) 2fr;gap:16px;align-items:start}
code{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:12px;background:var(--band);padding:1px 4px;overflow-wrap:anywhere}
footer{color:var(--muted);font-size:12px;margin-top:32px}
"""


def render_html(data: ReportData) -> str:
    """The report page of loaded artifacts (see the module docstring)."""
    import matplotlib

    with _RENDER_LOCK, matplotlib.rc_context(_RC):
        if data.is_sweep:
            ts = None
            body = _sweep_body(data)
        else:
            body, ts = _run_body(data)
        title, identity = _identity(data, ts)
        fold_dates = (data.sweep or {}).get("fold_dates") or [] if data.is_sweep else []
        validation = _validation_section(data.validation, ts, fold_dates)
    metrics = (
        f'<section id="metrics"><h2>Metrics{" of the best combination" if data.is_sweep else ""}'
        f"</h2>{_metrics_tables(data.metrics)}</section>"
    )
    run_hash = str(data.manifest.get("run_hash", ""))
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<meta name="generator" content="{_esc(generator_tag())}">'
        f'<meta name="btlab-run-hash" content="{_esc(run_hash)}">'
        f"<title>{_esc(title)} — btlab report</title><style>{_CSS.strip()}</style></head>"
        f'<body><main><header id="identity"><h1>{_esc(title)}</h1>'
        f'<p class="sub">btlab {"sweep" if data.is_sweep else "run"} report · run hash '
        f"<code>{_esc(run_hash[:16])}</code></p>{_warnings_box(data.manifest, data.metrics)}"
        f"{identity}</header>"
        + (body + metrics if data.is_sweep else metrics + body)
        + validation
        + f"<footer>Rendered from the run's artifacts by {_esc(generator_tag())}. The report is "
        "a view of the artifacts and is not part of the manifest.</footer></main></body></html>\n"
    )


def render_report(folder: str | Path) -> str:
    """The report page of an artifact folder (a run's or a sweep's)."""
    return render_html(load_report_data(folder))


def _write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.tmp-", dir=path.parent)
    try:
        os.fchmod(fd, 0o644)  # as the artifacts beside it (mkstemp makes files 0600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(text.encode("utf-8"))
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_report(folder: str | Path, out: str | Path | None = None) -> Path:
    """Render the report of `folder` and write it to `out` (default `folder/report.html`)
    through a temporary file renamed into place; returns the path written."""
    path = Path(out) if out is not None else Path(folder) / REPORT_NAME
    _write_atomic(path, render_report(folder))
    return path


def cached_report(folder: str | Path) -> Path:
    """`folder/report.html` when this renderer wrote it (same generator tag), else a new one."""
    path = Path(folder) / REPORT_NAME
    try:
        with open(path, "rb") as fh:
            head = fh.read(1024).decode("utf-8", errors="replace")
    except FileNotFoundError:
        head = ""
    if f'<meta name="generator" content="{_esc(generator_tag())}">' in head:
        return path
    return write_report(folder)
