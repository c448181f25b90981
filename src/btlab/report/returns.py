"""The report's return and risk views: rolling Sharpe and volatility, the histogram of per-bar
returns, and the table of the deepest drawdown periods (their numbers come from `stats`)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .cells import cell, esc, figure_html
from .charts import _COLORS, BUCKETS, _date_axis, _figure, _legend, _svg, minmax_indices
from .stats import (
    ReturnHistogram,
    drawdown_periods,
    return_histogram,
    rolling_sharpe_volatility,
    rolling_window,
)

#: Drawdown periods listed, deepest first.
TOP_DRAWDOWNS = 5
#: Buckets per rolling curve: a rolling mean is smooth, half the other charts' resolution shows it.
ROLLING_BUCKETS = BUCKETS // 2
#: The histogram's width in inches: it stands beside the return table.
HISTOGRAM_WIDTH = 7.5


def rolling_chart(x: np.ndarray, sharpe: np.ndarray, volatility: np.ndarray, window: int) -> str:
    """Two panels on one time axis: the rolling Sharpe over the rolling volatility."""
    # here, not at the top: the light commands start without matplotlib (see charts)
    from matplotlib.ticker import PercentFormatter

    fig = _figure(3.6)
    fig.subplots_adjust(bottom=0.12, top=0.9, hspace=0.35)
    top, bottom = fig.subplots(2, 1, sharex=True)
    for ax, values, color, label in ((top, sharpe, _COLORS["equity"], "Sharpe"),
                                     (bottom, volatility, _COLORS["drawdown"], "volatility")):  # fmt: skip
        keep = minmax_indices(values, ROLLING_BUCKETS)
        ax.plot(x[keep], values[keep], color=color, linewidth=0.9, label=f"rolling {label}")
        _legend(ax)
    top.axhline(0.0, color="#9aa0a6", linewidth=0.6)
    bottom.yaxis.set_major_formatter(PercentFormatter(xmax=1.0))
    if np.isfinite(volatility).any():
        bottom.set_ylim(0.0, float(np.nanmax(volatility)) * 1.1 or 0.01)
    _date_axis(bottom, x)
    top.set_title(f"Rolling Sharpe and volatility ({window:,} bars, annualized)", loc="left")
    return _svg(fig, "rolling")


def histogram_chart(hist: ReturnHistogram) -> str:
    # here, not at the top: the light commands start without matplotlib (see charts)
    from matplotlib.ticker import PercentFormatter

    fig = _figure(2.9, width=HISTOGRAM_WIDTH)  # beside a table: narrower, the same text size
    fig.subplots_adjust(left=0.13, right=0.97, top=0.86, bottom=0.16)
    ax = fig.add_subplot()
    # one outline path for all bins (bars would draw one path each)
    ax.stairs(hist.counts, hist.edges, fill=True, color="#1f5fa880")
    ax.stairs(hist.counts, hist.edges, color="#1f5fa8", linewidth=0.6)
    ax.axvline(hist.mean, color="#1d2129", linewidth=1.0,
               label=f"mean {hist.mean * 100:.3f}%")  # fmt: skip
    ax.axvline(hist.var95, color=_COLORS["drawdown"], linewidth=1.0, linestyle="--",
               label=f"VaR 95% {hist.var95 * 100:.3f}%")  # fmt: skip
    ax.xaxis.set_major_formatter(PercentFormatter(xmax=1.0))
    ax.set_ylabel("bars")
    _legend(ax)
    ax.set_title("Per-bar returns", loc="left")
    return _svg(fig, "histogram")


def _stamp(ts: np.ndarray, bar: int | None, daily: bool) -> str:
    if bar is None:
        return "open"
    when = pd.Timestamp(int(ts[bar]), tz="UTC")
    return str(when.strftime("%Y-%m-%d" if daily else "%Y-%m-%d %H:%M"))


def drawdown_table(equity: np.ndarray, ts: np.ndarray, daily: bool) -> str:
    """The TOP_DRAWDOWNS deepest periods: start, valley, recovery ("open"), depth, bars."""
    periods = drawdown_periods(equity)
    rows = []
    for rank, p in enumerate(periods[:TOP_DRAWDOWNS], start=1):
        days = (int(ts[p.recovery if p.recovery is not None else -1]) - int(ts[p.start])) / 86.4e12
        rows.append(
            f'<tr data-rank="{rank}"><th scope="row">{rank}</th>'
            f'<td class="date" data-bar="{p.start}">{esc(_stamp(ts, p.start, daily))}</td>'
            f'<td class="date" data-bar="{p.valley}">{esc(_stamp(ts, p.valley, daily))}</td>'
            f'<td class="date" data-bar="{"" if p.recovery is None else p.recovery}">'
            f"{esc(_stamp(ts, p.recovery, daily))}</td>"
            f"{cell(p.depth, 'pct', signed=True)}{cell(p.duration, 'int')}"
            f"{cell(days, 'float1')}</tr>"
        )
    caption = (
        "No drawdown: the equity never fell below its running peak." if not periods
        else f"The {min(len(periods), TOP_DRAWDOWNS)} deepest of {len(periods):,} drawdown periods."
    )  # fmt: skip
    return (
        f'<div class="wide"><table id="table-drawdowns"><caption>{esc(caption)}</caption>'
        '<thead><tr><th scope="col">#</th><th scope="col">Start</th><th scope="col">Valley</th>'
        '<th scope="col">Recovery</th><th scope="col">Depth</th><th scope="col">Bars</th>'
        '<th scope="col">Days</th></tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table></div>"
    )


def _returns_table(hist: ReturnHistogram) -> str:
    rows = (
        ("n", "Returns", cell(hist.n, "int")),
        ("mean", "Mean", cell(hist.mean, "pct", signed=True)),
        ("std", "Std (ddof 1)", cell(hist.std, "pct")),
        ("var95", "VaR 95%", cell(hist.var95, "pct", signed=True)),
        ("cvar95", "CVaR 95%", cell(hist.cvar95, "pct", signed=True)),
    )
    body = "".join(
        f'<tr data-key="{k}"><th scope="row">{label}</th>{c}</tr>' for k, label, c in rows
    )
    return (
        f'<table id="table-returns"><caption>Per-bar returns</caption><tbody>{body}</tbody></table>'
    )


def returns_section(
    x: np.ndarray, equity: np.ndarray, ts: np.ndarray, periods_per_year: float, daily: bool
) -> str:  # fmt: skip
    """The section: rolling chart (where the run is long enough), histogram, drawdown periods."""
    parts = []
    window = rolling_window(equity.shape[0], periods_per_year)
    if window:
        sharpe, vol = rolling_sharpe_volatility(equity, window, periods_per_year)
        parts.append(figure_html(
            "chart-rolling", rolling_chart(x, sharpe, vol, window),
            f"Sharpe and volatility of the {window:,} per-bar returns ending at each bar "
            f"(half a year of bars, at most a quarter of the run), annualized as the metrics "
            f"(√{periods_per_year:g}).",
        ))  # fmt: skip
    hist = return_histogram(equity)
    if hist is not None:
        parts.append(
            '<div class="two">' + _returns_table(hist)
            + figure_html("chart-histogram", histogram_chart(hist),
                          f"{hist.n:,} per-bar returns in {hist.counts.size} bins; the solid line "
                          "marks the mean, the dashed one the VaR 95% (the 5% quantile)."
                          + (f" {hist.outside:,} returns beyond the 0.1%–99.9% quantiles are not "
                             "drawn." if hist.outside else ""))
            + "</div>"
        )  # fmt: skip
    parts.append(drawdown_table(equity, ts, daily))
    return f'<section id="returns"><h2>Returns and drawdowns</h2>{"".join(parts)}</section>'
