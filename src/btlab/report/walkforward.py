"""A walk-forward's section of the report: the out-of-sample equity with the window
boundaries, the windows with their chosen parameters, efficiency and parameter stability
(read from `windows.parquet` and `walkforward.json`; the out-of-sample run's own equity,
drawdown, position and monthly sections follow as a run's)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from .cells import cell, esc, figure_html, json_value
from .charts import _COLORS, _date_axis, _figure, _svg, date_numbers, minmax_indices

__all__ = ["walkforward_body"]


def _boundaries_chart(x: np.ndarray, equity: np.ndarray, starts: np.ndarray) -> str:
    fig = _figure(3.2)
    ax = fig.add_subplot()
    keep = minmax_indices(equity)
    ax.plot(x[keep], equity[keep], color=_COLORS["equity"], linewidth=1.1)
    for s in starts[1:]:  # the first test part starts where the curve does
        ax.axvline(float(s), color="#888888", linewidth=0.6, linestyle=":")
    _date_axis(ax, x)
    ax.set_title("Out-of-sample equity, window by window", loc="left")
    return _svg(fig, "walkforward")


def _windows_table(windows: pd.DataFrame, axes: list[str], objective: str) -> str:
    dates = ("train_start", "train_end", "test_start", "test_end")
    numbers = [("is_objective", f"IS {objective}", "ratio"), ("is_sharpe", "IS Sharpe", "ratio"),
               ("is_total_return", "IS return", "pct"), ("oos_sharpe", "OOS Sharpe", "ratio"),
               ("oos_total_return", "OOS return", "pct")]  # fmt: skip
    if objective == "sharpe":
        numbers = numbers[1:]
    head = "".join(
        f"<th>{esc(h)}</th>"
        for h in ["window", "train", "test", *axes, *(label for _, label, _ in numbers)]
    )
    rows = []
    for r in windows.to_dict("records"):
        d = {k: pd.Timestamp(r[k]).strftime("%Y-%m-%d") for k in dates}
        rows.append(
            f'<tr><td class="num">{int(r["window"])}</td>'
            f'<td class="date">{d["train_start"]} – {d["train_end"]}</td>'
            f'<td class="date">{d["test_start"]} – {d["test_end"]}</td>'
            + "".join(f'<td class="num" data-value="{esc(json_value(r[a]))}">{esc(r[a])}</td>'
                      for a in axes)
            + "".join(cell(r[k], kind, signed=True) for k, _, kind in numbers)
            + "</tr>"
        )  # fmt: skip
    return (
        f'<div class="wide"><table id="table-windows"><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table></div>"
    )


def _stability_text(stability: Mapping[str, Any]) -> str:
    parts = []
    for axis, s in stability.items():
        kept = s.get("share_kept")
        text = f"{axis}: {s.get('distinct')} distinct value(s)"
        if kept is not None:
            text += f", kept from the window before in {kept * 100:.0f}% of windows"
        if s.get("cv") is not None:
            text += f", std/mean {s['cv']:.2f}"
        parts.append(text)
    return "; ".join(parts)


def walkforward_body(
    summary: Mapping[str, Any], windows: pd.DataFrame, equity: pd.DataFrame
) -> str:
    """The walk-forward section (before the out-of-sample run's own sections)."""
    axes = list((summary.get("axes") or {}).keys())
    objective = str(summary.get("objective", "sharpe"))
    x = date_numbers(equity["ts"])
    starts = date_numbers(windows["test_start"])
    chart = figure_html(
        "chart-walkforward",
        _boundaries_chart(x, equity["equity"].to_numpy(np.float64), starts),
        "The stitched out-of-sample equity: each window's chosen combination trades its test "
        "part, the account carried from the window before; dotted lines mark where a window's "
        "test part starts.",
    )
    spec = summary.get("walkforward") or {}
    eff = summary.get("efficiency") or {}
    wfe = eff.get("wfe")
    note = (
        f"{len(windows)} windows ({esc(spec.get('mode', 'rolling'))}, train {esc(spec.get('train'))}, "
        f"test {esc(spec.get('test'))}); the grid of {summary.get('n_valid', 0):,} valid "
        f"combinations re-fitted on each train part by {esc(objective)}. Walk-forward "
        f"efficiency (OOS CAGR / mean IS CAGR of the chosen combinations): "
        f"{'undefined (' + esc(eff.get('wfe_undefined', '')) + ')' if wfe is None else f'{wfe:.3f}'}. "
        f"Parameter stability: {esc(_stability_text(summary.get('stability') or {}))}."
    )  # fmt: skip
    return (
        f'<section id="walkforward"><h2>Walk-forward</h2><p class="note">{note}</p>{chart}'
        f"{_windows_table(windows, axes, objective)}</section>"
    )
