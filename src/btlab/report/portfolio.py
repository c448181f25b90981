"""The report of a portfolio run (SPEC §8): its weights over time, per-symbol and trade tables.

A portfolio folder is a run folder with `positions.parquet` (units and weight per bar and
symbol) and `symbols.parquet` (per-symbol P&L, costs, turnover). Its page has the run page's
equity and drawdown charts, metrics, monthly returns and validation; in place of the
single-symbol position chart it draws the weights as stacked areas and adds two tables.

Choices:

- **At most `MAX_SERIES` bands.** The `MAX_SERIES - 1` symbols with the largest mean |weight|
  get a band each (ties by symbol order), every other symbol is summed into one grey "other"
  band, so a 500-symbol run draws 12 bands, not 500.
- **Longs stack up, shorts stack down**, each from zero, in the same colour per symbol; the
  net exposure is a line over them where the run holds any short.
- **Downsampled as the other charts.** The top edge of each band is a series; the bars drawn
  are the union of each edge's bucket extremes (`minmax_indices` with `BUCKETS / bands`
  buckets), so the chart draws about as many points as one line of the equity chart and
  every edge's extremes survive at that resolution.
- **Trades are listed, not all.** The first `MAX_TRADES` round trips in time order are shown;
  the caption says how many there are (all are in `trades.parquet`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from .cells import cell, esc, figure_html, fmt
from .charts import BUCKETS, _date_axis, _figure, _svg, minmax_indices

#: Bands of the weights chart, "other" included.
MAX_SERIES = 12
#: Round trips listed in the trades table.
MAX_TRADES = 200
#: The symbols named in the identity table before "and N more".
NAMED_SYMBOLS = 10

# 11 distinct colours (Tableau 10 and one more), then grey for "other"
_PALETTE = ("#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1",
            "#ff9da7", "#9c755f", "#17becf", "#6b4c9a")  # fmt: skip
_OTHER = "#bab0ac"


def weight_matrix(positions: pd.DataFrame, ts: np.ndarray) -> tuple[list[str], np.ndarray]:
    """(symbols in artifact order, weights bars x symbols) of the positions table, on the
    clock `ts` (ns); a bar where a symbol has no row (or a NaN weight) holds 0."""
    symbols = list(dict.fromkeys(positions["symbol"].astype(str)))
    wide = positions.pivot_table(index="ts", columns="symbol", values="weight", aggfunc="sum",
                                 dropna=False, observed=True)  # fmt: skip
    wide.index = pd.DatetimeIndex(wide.index).as_unit("ns")
    wide = wide.reindex(index=pd.DatetimeIndex(ts, tz="UTC"), columns=symbols)
    return symbols, np.nan_to_num(wide.to_numpy(dtype=np.float64), nan=0.0)


def chart_bands(
    symbols: Sequence[str], weights: np.ndarray
) -> tuple[list[str], np.ndarray, np.ndarray]:  # fmt: skip
    """(band labels, long parts, short parts; each bars x bands): the largest symbols by mean
    |weight|, then "other" where there are more than MAX_SERIES symbols, whose long part sums
    the others' longs and whose short part their shorts (a long and a short never net out)."""
    longs, shorts = np.maximum(weights, 0.0), np.minimum(weights, 0.0)
    k = len(symbols)
    if k <= MAX_SERIES:
        return list(symbols), longs, shorts
    size = np.abs(weights).mean(axis=0)
    order = np.lexsort((np.arange(k), -size))  # largest first, ties by symbol order
    top = np.sort(order[: MAX_SERIES - 1])
    rest = np.setdiff1d(np.arange(k), top)
    labels = [symbols[j] for j in top] + [f"other ({rest.size} symbols)"]
    return (
        labels,
        np.column_stack([longs[:, top], longs[:, rest].sum(axis=1)]),
        np.column_stack([shorts[:, top], shorts[:, rest].sum(axis=1)]),
    )


def weights_chart(
    x: np.ndarray, labels: Sequence[str], long_parts: np.ndarray, short_parts: np.ndarray
) -> tuple[str, int]:  # fmt: skip
    """The stacked-area chart of the bands and how many bars it draws."""
    n, m = long_parts.shape
    longs = np.cumsum(long_parts, axis=1)
    shorts = np.cumsum(short_parts, axis=1)
    has_short = bool((short_parts < 0).any())
    per = max(1, BUCKETS // max(m, 1))
    edges = [longs[:, j] for j in range(m)] + (
        [shorts[:, j] for j in range(m)] if has_short else []
    )
    keep = np.unique(np.concatenate([minmax_indices(e, per) for e in edges] or [np.arange(n)]))
    fig = _figure(3.4)
    fig.subplots_adjust(bottom=0.2)  # the legend goes under the plot: 12 names need a row
    ax = fig.add_subplot()
    ax.set_axisbelow(True)  # the grid under the bands, not over them
    xs = x[keep]
    colors = [*(_PALETTE[j % len(_PALETTE)] for j in range(m))]
    if labels and labels[-1].startswith("other ("):
        colors[-1] = _OTHER
    labeled: set[int] = set()  # one legend entry per band, whether it is long, short or both
    for stack in (longs, shorts) if has_short else (longs,):
        below = np.zeros(xs.size)
        for j in range(m):
            above = stack[keep, j]
            if np.any(above != below):
                ax.fill_between(xs, below, above, color=colors[j], linewidth=0.0,
                                label=None if j in labeled else labels[j])  # fmt: skip
                labeled.add(j)
            below = above
    if has_short:
        net = long_parts.sum(axis=1) + short_parts.sum(axis=1)
        ax.plot(xs, net[keep], color="#1d2129", linewidth=0.9, label="net exposure")
    ax.axhline(0.0, color="#9aa0a6", linewidth=0.6)
    top = float(longs[:, -1].max()) if m else 0.0
    bottom = float(shorts[:, -1].min()) if m and has_short else 0.0
    if top - bottom < 0.05:  # never in the market: show the scale of a full position
        top = max(top, 1.0)
    ax.set_ylim(bottom - 0.04 * (top - bottom), top * 1.06)
    # here, not at the top: the light commands start without matplotlib (see charts)
    from matplotlib.ticker import PercentFormatter

    ax.yaxis.set_major_formatter(PercentFormatter(xmax=1.0))
    _date_axis(ax, x)
    entries = len(ax.get_legend_handles_labels()[1])
    # one row (matplotlib fills a legend column by column: two rows would read out of order)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.1), ncols=max(entries, 1),
              borderaxespad=0.0, handlelength=1.0, handletextpad=0.4, columnspacing=0.8,
              fontsize=8.0)  # fmt: skip
    ax.set_title("Weights (position value / equity)", loc="left")
    return _svg(fig, "weights"), int(keep.size)


def weights_figure(data_positions: pd.DataFrame, ts: np.ndarray, x: np.ndarray) -> str:
    symbols, weights = weight_matrix(data_positions, ts)
    labels, long_parts, short_parts = chart_bands(symbols, weights)
    svg, drawn = weights_chart(x, labels, long_parts, short_parts)
    gross = np.abs(weights).sum(axis=1)
    caption = (
        f"Each symbol's position value over the equity at each bar's close, longs stacked up "
        f"from zero and shorts down ({min(drawn, ts.size):,} of {ts.size:,} bars drawn). "
        f"Mean gross exposure {fmt(float(gross.mean()) if gross.size else None, 'pct')}."
    )
    if len(symbols) > MAX_SERIES:
        caption += (
            f" The {MAX_SERIES - 1} symbols with the largest mean |weight| of {len(symbols):,} "
            "have a band each; the others are summed into \u201cother\u201d."
        )
    return figure_html("chart-weights", svg, caption)


_SYMBOL_COLUMNS = (
    ("net_pnl", "Net P&L", "money", True),
    ("costs", "Costs", "money", False),
    ("borrow", "Borrow", "money", False),
    ("traded", "Traded", "money", False),
    ("turnover", "Turnover", "ratio", False),
    ("fills", "Fills", "int", False),
    ("trades", "Trades", "int", False),
)


def symbols_table(symbols: pd.DataFrame, positions: pd.DataFrame) -> str:
    """One row per symbol (symbols.parquet), with its mean and last weight from positions,
    and a total row of the sums."""
    by_symbol = positions["weight"].groupby(positions["symbol"], sort=False, observed=True)
    mean_w = by_symbol.mean()
    max_w = positions["weight"].abs().groupby(positions["symbol"], sort=False, observed=True).max()
    head = "".join(f'<th scope="col">{esc(label)}</th>' for _, label, _, _ in _SYMBOL_COLUMNS)
    head += '<th scope="col">Mean weight</th><th scope="col">Max |weight|</th>'
    rows = []
    for rec in symbols.to_dict("records"):
        name = str(rec["symbol"])
        cells = "".join(
            cell(_number(rec.get(key)), kind, signed=signed)
            for key, _, kind, signed in _SYMBOL_COLUMNS
        )
        cells += cell(_number(mean_w.get(name)), "pct", signed=True)
        cells += cell(_number(max_w.get(name)), "pct")
        rows.append(f'<tr data-symbol="{esc(name)}"><th scope="row">{esc(name)}</th>{cells}</tr>')
    total = "".join(
        cell(_number(symbols[key].sum()), kind, signed=signed)
        if key in symbols and key != "turnover" else '<td class="num"></td>'
        for key, _, kind, signed in _SYMBOL_COLUMNS
    )  # fmt: skip
    return (
        '<div class="wide"><table id="table-symbols"><thead><tr><th scope="col">Symbol</th>'
        f"{head}</tr></thead><tbody>{''.join(rows)}</tbody>"
        f'<tfoot><tr data-symbol=""><th scope="row">All</th>{total}<td></td><td></td></tr>'
        "</tfoot></table></div>"
    )


def _number(value: Any) -> float | int | None:
    if value is None or isinstance(value, str):
        return None
    if isinstance(value, np.integer | int):
        return int(value)
    return float(value)


def _stamp(value: Any, daily: bool) -> str:
    when = pd.Timestamp(value)
    when = when.tz_localize("UTC") if when.tzinfo is None else when.tz_convert("UTC")
    return str(when.strftime("%Y-%m-%d" if daily else "%Y-%m-%d %H:%M"))


_TRADE_COLUMNS = (
    ("units", "Units", "auto", False),
    ("entry_price", "Entry price", "money", False),
    ("exit_price", "Exit price", "money", False),
    ("costs", "Costs", "money", False),
    ("net_pnl", "Net P&L", "money", True),
    ("return", "Return", "pct", True),
    ("bars_held", "Bars held", "int", False),
)


def trades_table(trades: pd.DataFrame, daily: bool) -> str:
    """The first MAX_TRADES round trips (entry time, then symbol, as the artifact holds them);
    a single-symbol run's trades (no `symbol` column) get no symbol column."""
    shown = trades.head(MAX_TRADES)
    by_symbol = "symbol" in trades
    head = "".join(f'<th scope="col">{esc(label)}</th>' for _, label, _, _ in _TRADE_COLUMNS)
    rows = []
    for i, rec in enumerate(shown.to_dict("records")):
        cells = "".join(
            cell(_number(rec.get(key)), kind, signed=signed)
            for key, _, kind, signed in _TRADE_COLUMNS
        )
        rows.append(
            f'<tr data-trade="{i}">'
            + (f"<td>{esc(rec['symbol'])}</td>" if by_symbol else "")
            + f"<td>{esc(rec['side'])}</td>"
            f'<td class="date">{esc(_stamp(rec["entry_ts"], daily))}</td>'
            f'<td class="date">{esc(_stamp(rec["exit_ts"], daily))}</td>{cells}'
            f"<td>{esc(rec['exit_reason'])}</td></tr>"
        )
    n = len(trades)
    caption = (
        "No trades." if not n
        else f"All {n:,} round trips." if n <= MAX_TRADES
        else f"The first {MAX_TRADES:,} of {n:,} round trips; all are in trades.parquet."
    )  # fmt: skip
    return (
        f'<div class="wide"><table id="table-trades"><caption>{esc(caption)}</caption><thead><tr>'
        + ('<th scope="col">Symbol</th>' if by_symbol else "")
        + '<th scope="col">Side</th><th scope="col">Entry</th>'
        f'<th scope="col">Exit</th>{head}<th scope="col">Exit reason</th></tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table></div>"
    )


def symbols_text(manifest: Mapping[str, Any], positions: pd.DataFrame) -> tuple[int, str]:
    """(number of symbols, the identity row's text: the count and the first names)."""
    facts = manifest.get("dataset") or {}
    names = [str(s) for s in facts.get("symbols") or dict.fromkeys(positions["symbol"])]
    shown = ", ".join(names[:NAMED_SYMBOLS])
    more = len(names) - NAMED_SYMBOLS
    return len(names), f"{len(names):,}: {shown}" + (f" and {more:,} more" if more > 0 else "")
