"""The report page: identity and warnings, the run's or the sweep's sections, CSS, assembly."""

from __future__ import annotations

import math
import threading
from collections.abc import Mapping
from importlib.metadata import version
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from btlab import __version__

from ..metric_registry import SWEEP_COLUMNS
from ..timeframes import DataInference, infer_timeframe, inference_text
from .cells import KINDS, LABELS, SIGNED, cell, esc, figure_html, fmt, json_value, params_text
from .charts import (
    RC,
    date_numbers,
    drawdown_chart,
    equity_chart,
    heatmap_chart,
    minmax_indices,
    position_chart,
    price_chart,
)
from .data import ReportData, load_report_data
from .portfolio import symbols_table, symbols_text, trades_table, weights_figure
from .returns import returns_section
from .tables import metrics_tables, monthly_returns, monthly_table, validation_section
from .walkforward import walkforward_body

#: Bump when the page changes: a cached report of another format is rendered again.
REPORT_FORMAT = 4

_RENDER_LOCK = threading.Lock()


def generator_tag() -> str:
    """What made a report: its format and the versions its bytes depend on."""
    return f"btlab-report/{REPORT_FORMAT} btlab/{__version__} matplotlib/{version('matplotlib')}"


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

    def how(name: str) -> str:
        return "declared" if labels.get(f"{name}_declared") else "inferred"

    rows = [
        ("calendar", "Calendar", f"{facts.get('calendar', '—')} ({how('calendar')})"),
        ("periods_per_year", "Periods per year", fmt(facts.get("periods_per_year"), "auto")),
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
                 + (f" (largest {fmt(largest / 86400, 'auto')} days)" if largest else "")))  # fmt: skip
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
            timeframe = str(infer_timeframe(ts)[0])
    execution = request.get("execution") or {}
    symbol_row = ("symbol", "Symbol", symbol)
    kind = "sweep" if data.is_sweep else "walk-forward" if data.walkforward else "run"
    if data.positions is not None:
        n_symbols, symbols = symbols_text(m, data.positions)
        symbol, kind = f"{n_symbols:,} symbols", "portfolio run"
        symbol_row = ("symbols", "Symbols", symbols)
    rows: list[tuple[str, str, str]] = [
        ("kind", "Kind", kind),
        ("strategy", "Strategy", str(strategy.get("name", "—"))),
        ("params", "Parameters", params_text(strategy.get("params") or {})),
        symbol_row,
        ("timeframe", "Timeframe", str(timeframe or "—")),
        *_data_rows(m),
    ]
    if data.positions is not None:
        rows.append(("rebalance", "Rebalance", str(execution.get("rebalance", "—"))))
    if data.is_sweep and data.sweep is not None:
        axes = data.sweep.get("axes") or {}
        grid = "; ".join(f"{k} ∈ {{{', '.join(json_value(x) for x in vals)}}}"
                         for k, vals in axes.items())  # fmt: skip
        fixed = {k: v for k, v in (strategy.get("params") or {}).items() if k not in axes}
        rows[2] = ("params", "Fixed parameters", params_text(fixed))
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
    rows.append(("bars", "Bars", fmt(data.metrics.get("n_bars"), "int")))
    rows.append((
        "costs", "Costs",
        f"spread {fmt(execution.get('spread_bps'), 'auto')} bps, slippage "
        f"{fmt(execution.get('slippage_bps'), 'auto')} bps, commission "
        f"{fmt(execution.get('commission_bps'), 'auto')} bps; fill at {execution.get('fill', '—')}",
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
        f'<tr data-key="{esc(key)}"><th scope="row">{esc(label)}</th>'
        f'<td class="{"hash" if key.endswith("hash") else ""}">{esc(value)}</td></tr>'
        for key, label, value in rows
    )
    title = f"{strategy.get('name', 'run')} on {symbol}" + (f" {timeframe}" if timeframe else "")
    if data.is_sweep or data.walkforward:
        title = f"{'Sweep' if data.is_sweep else 'Walk-forward'}: {title}"
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
        f'<li data-code="{esc(w.get("code", ""))}"><code>{esc(w.get("code", ""))}</code> '
        f"{esc(w.get('message', ''))}</li>"
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
    return "".join(f'<p class="warning">{esc(n)}</p>' for n in notes)


def _equity_figures(equity: pd.DataFrame, initial_cash: float, prefix: str = "chart") -> list[str]:
    """The equity chart (with the benchmark where the table has one) and the drawdown chart."""
    x = date_numbers(equity["ts"])
    eq = equity["equity"].to_numpy(dtype=np.float64)
    benchmark = (
        equity["benchmark"].to_numpy(dtype=np.float64) if "benchmark" in equity.columns else None
    )
    n = eq.size
    drawn = f"{min(n, minmax_indices(eq).size):,} of {n:,} bars drawn"
    svg, log = equity_chart(x, eq, initial_cash, benchmark)
    caption = f"Marked equity at each bar's close ({drawn}: each bucket's low and high)."
    if benchmark is not None:
        caption += " Benchmark: the benchmark's equity from the same initial cash."
    if log:
        caption += " Log scale: the curves span more than 10×."
    return [
        figure_html(f"{prefix}-equity", svg, caption),
        figure_html(f"{prefix}-drawdown", drawdown_chart(x, equity["drawdown"].to_numpy(np.float64)),
                    "Equity over its running peak, minus one; the dot marks the deepest point."),
    ]  # fmt: skip


def _run_body(data: ReportData) -> tuple[str, np.ndarray]:
    equity = data.equity
    trades = data.trades
    assert equity is not None and trades is not None
    ts = pd.DatetimeIndex(equity["ts"]).as_unit("ns").asi8
    x = date_numbers(equity["ts"])
    eq = equity["equity"].to_numpy(dtype=np.float64)
    initial_cash = float(data.metrics.get("initial_cash") or (eq[0] if eq.size else 0.0))
    charts = _equity_figures(equity, initial_cash)
    daily = not (ts % 86_400_000_000_000).any()
    tables = ""
    if data.positions is not None:
        assert data.symbols is not None
        charts.append(weights_figure(data.positions, ts, x))
        heading = "Equity, drawdown and weights"
        tables = (
            '<section id="symbols"><h2>Symbols</h2><p class="note">Per symbol: P&amp;L after '
            "costs and borrow (an open position at its last mark), costs (spread, slippage, "
            "commission and borrow), traded notional, turnover (traded over the mean equity), "
            "fills and closed round trips; its mean weight (signed) and largest |weight|.</p>"
            f"{symbols_table(data.symbols, data.positions)}</section>"
        )
    else:
        if "close" in equity.columns and data.fills is not None:
            price_svg, price_caption = price_chart(
                x, equity["close"].to_numpy(np.float64), data.fills, ts
            )
            charts.append(figure_html("chart-price", price_svg, price_caption))
        position_svg, position_caption = position_chart(
            x, equity["target"].to_numpy(np.float64), equity["exposure"].to_numpy(np.float64),
            trades, ts,
        )  # fmt: skip
        charts.append(figure_html("chart-position", position_svg,
                     "Target: the strategy's wanted position; exposure: the position held. "
                     + position_caption))  # fmt: skip
        heading = "Equity, drawdown, price and position"
    tables += f'<section id="trades"><h2>Trades</h2>{trades_table(trades, daily)}</section>'
    # a folder without it draws no rolling chart rather than guess an annualization
    ppy = float(data.metrics.get("periods_per_year") or math.nan)
    monthly = monthly_returns(equity["ts"], eq, initial_cash)
    body = (
        f'<section id="charts"><h2>{heading}</h2>{"".join(charts)}</section>'
        + returns_section(x, eq, ts, ppy, daily)
        + tables
        + '<section id="monthly"><h2>Monthly returns (%)</h2>'
        '<p class="note">Compounded from the equity at each UTC month\'s last bar; the first month '
        "against the initial cash. Total: the year's months compounded.</p>"
        f"{monthly_table(monthly)}</section>"
    )
    return body, ts


def _sweep_body(data: ReportData) -> str:
    assert data.sweep is not None and data.sweep_table is not None and data.heatmap is not None
    sweep, table, heatmap = data.sweep, data.sweep_table, data.heatmap
    objective = str(sweep.get("objective", "sharpe"))
    best = sweep.get("best") or {}
    axes = list((sweep.get("axes") or {}).keys())
    best_rows = "".join(
        f'<tr data-param="{esc(k)}"><th scope="row">{esc(k)}</th>'
        f'<td data-value="{esc(json_value(v))}">{esc(json_value(v))}</td></tr>'
        for k, v in sorted((best.get("params") or {}).items())
    )
    best_rows += (
        f'<tr data-param="objective"><th scope="row">{esc(objective)}</th>'
        f"{cell(data.metrics.get(objective), KINDS.get(objective, 'auto'))}</tr>"
    )
    fixed = heatmap.get("fixed") or {}
    caption = "The objective of every valid combination; the red box marks the best."
    if fixed:
        caption += " Other axes fixed at the best's values: " + params_text(fixed) + "."
    if any(v is None for row in heatmap.get("z", []) for v in row):
        caption += " Grey cells: combinations the strategy rejects."
    metric_cols = [objective, *[c for c in SWEEP_COLUMNS if c != objective]]
    metric_cols = [c for c in metric_cols if c in table.columns]
    order = table.sort_values(by=[objective, "combo"], ascending=[False, True], kind="mergesort",
                              na_position="last")  # fmt: skip
    top = order.head(10)
    head = "".join(f'<th scope="col">{esc(c)}</th>' for c in axes) + "".join(
        f'<th scope="col">{esc(LABELS.get(c, c))}</th>' for c in metric_cols
    )
    rows = []
    for _, rec in top.iterrows():
        cells = "".join(f"<td>{esc(json_value(rec[a]))}</td>" for a in axes if a in rec)
        cells += "".join(
            cell(float(rec[c]) if rec[c] is not None else None, KINDS.get(c, "auto"),
                  signed=c in SIGNED)
            for c in metric_cols
        )  # fmt: skip
        rows.append(f'<tr data-combo="{int(rec["combo"])}">{cells}</tr>')
    best_params = best.get("params") or {}
    if data.best_equity is not None:
        cash = float(data.metrics.get("initial_cash") or 0.0)
        best_charts = _equity_figures(data.best_equity, cash, prefix="chart-best")
        kept = "The best combination's equity and drawdown are drawn below (best_equity.parquet)."
    else:  # a sweep folder written before best_equity.parquet
        best_charts = []
        kept = "This sweep folder keeps no per-bar path of the best combination."
    best_fields = best.get("fields") or {}
    sets = " ".join(
        [f"--set strategy.params.{k}={json_value(best_params[k])}"
         for k in axes if k in best_params and k not in best_fields]
        + [f"--set {k}={json_value(v)}" for k, v in best_fields.items()]
    )  # fmt: skip
    return (
        '<section id="sweep"><h2>Sweep</h2><div class="two">'
        f'<table id="table-best"><caption>Best combination</caption><tbody>{best_rows}</tbody></table>'
        f'<p class="note">{kept} For its position, trades and monthly returns, run it alone: the '
        "sweep's request without <code>grid</code>, <code>objective</code>, "
        f"<code>pbo_splits</code> and <code>samples</code>, with <code>{esc(sets)}</code>.</p></div>"
        + "".join(best_charts)
        + figure_html("chart-heatmap", heatmap_chart(heatmap), caption)
        + f'<div class="wide"><table id="table-top"><caption>Top {len(top)} of {len(table):,} '
        f"combinations by {esc(objective)}</caption><thead><tr>{head}</tr></thead>"
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
@media (max-width:760px){main{padding:16px 12px 32px}h1{font-size:19px}.two{grid-template-columns:1fr}th,td{padding:3px 6px}.metric-grid{grid-template-columns:1fr}}
"""


def render_html(data: ReportData) -> str:
    """The report page of loaded artifacts (see the package docstring)."""
    import matplotlib  # here, not at the top: see charts' docstring (start-up time)

    with _RENDER_LOCK, matplotlib.rc_context(RC):
        if data.is_sweep:
            ts = None
            body = _sweep_body(data)
        else:
            body, ts = _run_body(data)
        if data.walkforward is not None and data.windows is not None and data.equity is not None:
            body = walkforward_body(data.walkforward, data.windows, data.equity) + body
        title, identity = _identity(data, ts)
        fold_dates = (data.sweep or {}).get("fold_dates") or [] if data.is_sweep else []
        validation = validation_section(data.validation, ts, fold_dates)
    metrics = (
        f'<section id="metrics"><h2>Metrics{" of the best combination" if data.is_sweep else ""}'
        f"</h2>{metrics_tables(data.metrics)}</section>"
    )
    run_hash = str(data.manifest.get("run_hash", ""))
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<meta name="generator" content="{esc(generator_tag())}">'
        f'<meta name="btlab-run-hash" content="{esc(run_hash)}">'
        f"<title>{esc(title)} — btlab report</title><style>{_CSS.strip()}</style></head>"
        f'<body><main><header id="identity"><h1>{esc(title)}</h1>'
        f'<p class="sub">btlab {"sweep" if data.is_sweep else "run"} report · run hash '
        f"<code>{esc(run_hash[:16])}</code></p>{_warnings_box(data.manifest, data.metrics)}"
        f"{identity}</header>"
        + (body + metrics if data.is_sweep else metrics + body)
        + validation
        + f"<footer>Rendered from the run's artifacts by {esc(generator_tag())}. The report is "
        "a view of the artifacts and is not part of the manifest.</footer></main></body></html>\n"
    )


def render_report(folder: str | Path) -> str:
    """The report page of an artifact folder (a run's or a sweep's)."""
    return render_html(load_report_data(folder))
