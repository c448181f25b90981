"""The report's tables: metrics, monthly returns, validation statistics and time folds."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from ..metric_registry import BY_NAME, FOLD, GROUP_TITLES, in_group
from .cells import KINDS, SIGNED, cell, esc, fmt, is_finite_number, json_value, sign_class

_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


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


def metrics_tables(metrics: Mapping[str, Any]) -> str:
    groups: list[tuple[str, str, Iterable[tuple[str, str, str]]]] = [
        (slug, title, [(m.name, m.label, KINDS[m.name]) for m in in_group(slug)])
        for slug, title in GROUP_TITLES.items()
    ]
    other = [(k, k.replace("_", " "), "auto") for k in sorted(metrics) if k not in KINDS]
    if other:
        groups.append(("other", "Other", other))
    parts = []
    for slug, title, rows in groups:
        body = "".join(
            f'<tr data-metric="{esc(key)}"><th scope="row">{esc(label)}</th>'
            f"{cell(metrics.get(key), kind, signed=key in SIGNED)}</tr>"
            for key, label, kind in rows
            if key in metrics
        )
        parts.append(
            f'<table id="table-metrics-{slug}" class="metrics"><caption>{esc(title)}</caption>'
            f"<tbody>{body}</tbody></table>"
        )
    return '<div class="metric-grid">' + "".join(parts) + "</div>"


def _pct1(value: float) -> str:
    """A return in percent with one decimal, never "-0.0"."""
    text = f"{value * 100:.1f}"
    return "0.0" if text == "-0.0" else text


def monthly_table(table: pd.DataFrame) -> str:
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
                f'<td class="{cls} {sign_class(value)}" data-month="{month}" '
                f'data-value="{esc(json_value(float(value)))}"{style}>{_pct1(value)}</td>'
            )
        rows.append(f'<tr data-year="{year}"><th scope="row">{year}</th>{"".join(cells)}</tr>')
    return (
        '<div class="wide"><table id="table-monthly" class="monthly"><thead><tr>'
        f'<th scope="col">Year</th>{head}<th scope="col">Total</th></tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table></div>"
    )


def _row(key: str, label: str, value_cell: str, detail: str, meaning: str) -> str:
    return (
        f'<tr data-key="{esc(key)}"><th scope="row">{esc(label)}</th>{value_cell}'
        f'<td class="detail">{esc(detail)}</td><td class="meaning">{esc(meaning)}</td></tr>'
    )


def _validation_rows(v: Mapping[str, Any]) -> list[str]:
    rows: list[str] = []
    psr = v.get("psr") or {}
    if psr.get("psr") is not None:
        rows.append(_row(
            "psr", "PSR (SR* = 0)", cell(psr["psr"], "prob"),
            f"{fmt(psr.get('n_obs'), 'int')} returns, skew {fmt(psr.get('skew'), 'ratio')}, "
            f"kurtosis {fmt(psr.get('kurtosis'), 'ratio')}",
            "Probability that the true Sharpe is above 0, given skew and fat tails.",
        ))  # fmt: skip
    dsr = v.get("dsr") or {}
    if dsr.get("dsr") is not None:
        rows.append(_row(
            "dsr", "DSR", cell(dsr["dsr"], "prob"),
            f"{fmt(dsr.get('n_trials'), 'int')} trial(s), benchmark Sharpe per bar "
            f"{fmt(dsr.get('sr_benchmark'), 'prob')}",
            "PSR against the best Sharpe expected from this many trials by luck.",
        ))  # fmt: skip
    if "min_trl" in psr:
        trl = psr["min_trl"]
        rows.append(_row(
            "min_trl", "Minimum track record", cell(trl, "bars"),
            f"{fmt(psr.get('min_trl_years'), 'ratio')} years" if is_finite_number(trl)
            else "not defined: the observed Sharpe is not above 0",
            "Bars needed for the observed Sharpe to be above 0 with 95% confidence.",
        ))  # fmt: skip
    boot = v.get("bootstrap") or {}
    if boot.get("sharpe_ci"):
        lo, hi = boot["sharpe_ci"]
        conf = boot.get("confidence", 0.95)
        rows.append(_row(
            "bootstrap_ci", f"Sharpe {fmt(conf * 100, 'int')}% CI (bootstrap)",
            f'<td class="num" data-value="{esc(json_value([lo, hi]))}">'
            f"[{esc(fmt(lo, 'ratio'))}, {esc(fmt(hi, 'ratio'))}]</td>",
            f"stationary bootstrap, {fmt(boot.get('n_resamples'), 'int')} resamples, mean block "
            f"{fmt(boot.get('mean_block_length'), 'float1')} bars; Sharpe {fmt(boot.get('sharpe'), 'ratio')}",
            "Range of the annualized Sharpe over resampled return paths.",
        ))  # fmt: skip
        rows.append(_row(
            "p_sharpe_le_0", "P(Sharpe ≤ 0) (bootstrap)", cell(boot.get("p_sharpe_le_0"), "prob"),
            f"{fmt(boot.get('n_valid'), 'int')} valid resamples",
            "Share of resampled paths whose Sharpe is 0 or below.",
        ))  # fmt: skip
    perm = v.get("permutation") or {}
    if perm.get("p_value") is not None:
        q = perm.get("null_quantiles") or {}
        rows.append(_row(
            "permutation", "Permutation p-value", cell(perm["p_value"], "prob"),
            f"{fmt(perm.get('n_permutations'), 'int')} permutations; real {fmt(perm.get('real'), 'ratio')} "
            f"vs null mean {fmt(perm.get('null_mean'), 'ratio')} (5–95%: {fmt(q.get('q05'), 'ratio')} "
            f"to {fmt(q.get('q95'), 'ratio')}); {fmt(perm.get('n_ge'), 'int')} at or above real",
            "Chance of a result this good on shuffled prices: the signal's edge over noise.",
        ))  # fmt: skip
        statistic = (v.get("sweep") or {}).get("permutation_statistic")
        if statistic:
            rows[-1] = rows[-1].replace(
                '<td class="detail">', f'<td class="detail">statistic: {esc(statistic)}; ', 1
            )
    skipped = v.get("skipped") or {}
    if skipped.get("permutation"):  # a run of the caller's own targets: no strategy to re-run
        rows.append(_row("permutation", "Permutation p-value", cell(None, "prob"),
                         f"not computed: {skipped['permutation']}", ""))  # fmt: skip
    folds = v.get("folds") or {}
    if folds.get("share_positive_sharpe") is not None:
        rows.append(_row(
            "folds", "Folds with Sharpe > 0", cell(folds["share_positive_sharpe"], "pct"),
            f"{fmt(folds.get('k'), 'int')} contiguous folds",
            "Whether the result holds across time, not just on average.",
        ))  # fmt: skip
    pbo = v.get("pbo")
    if isinstance(pbo, Mapping) and pbo.get("pbo") is not None:
        rows.append(_row(
            "pbo", "PBO (CSCV)", cell(pbo["pbo"], "prob"),
            f"{fmt(pbo.get('n_splits'), 'int')} splits, {fmt(pbo.get('n_combinations'), 'int')} "
            f"train/test combinations of {fmt(pbo.get('n_strategies'), 'int')} strategies; "
            f"P(OOS loss) {fmt(pbo.get('prob_oos_loss'), 'prob')}, degradation slope "
            f"{fmt(pbo.get('degradation_slope'), 'ratio')}",
            "Probability that the in-sample best is below the median out of sample.",
        ))  # fmt: skip
    sweep = v.get("sweep") or {}
    if sweep.get("pbo_skipped"):
        rows.append(_row("pbo", "PBO (CSCV)", cell(None, "prob"),
                         f"not computed: {sweep['pbo_skipped']}", ""))  # fmt: skip
    return rows


def _fold_dates(ts: np.ndarray | None, bar: Any, stamp: str | None = None) -> str:
    """A fold boundary's date: from the run's bar timestamps, else from `stamp` (a sweep's
    sweep.json records its folds' dates), else the bar number."""
    if ts is not None and is_finite_number(bar) and 0 <= int(bar) < ts.size:
        when = pd.Timestamp(int(ts[int(bar)]), tz="UTC")
    elif stamp is not None:
        when = pd.Timestamp(stamp)
    else:
        return f"bar {fmt(bar, 'int')}"
    return str(when.strftime("%Y-%m-%d %H:%M")).removesuffix(" 00:00")


def _folds_table(
    folds: Sequence[Mapping[str, Any]], ts: np.ndarray | None, dates: Sequence[Sequence[str]] = ()
) -> str:
    columns = [(name, BY_NAME[name].narrow_label, KINDS[name]) for name in FOLD]
    head = "".join(f'<th scope="col">{label}</th>' for _, label, _ in columns)
    rows = []
    for i, fold in enumerate(folds):
        start, end = dates[i] if i < len(dates) else (None, None)
        cells = "".join(cell(fold.get(key), kind, signed=key in SIGNED) for key, _, kind in columns)
        rows.append(
            f'<tr data-fold="{esc(fold.get("fold"))}"><th scope="row">{esc(fold.get("fold"))}</th>'
            f'<td class="date">{esc(_fold_dates(ts, fold.get("start_bar"), start))}</td>'
            f'<td class="date">{esc(_fold_dates(ts, fold.get("end_bar"), end))}</td>{cells}</tr>'
        )
    return (
        '<div class="wide"><table id="table-folds"><caption>Time folds</caption><thead><tr>'
        f'<th scope="col">Fold</th><th scope="col">From</th><th scope="col">To</th>{head}</tr>'
        f"</thead><tbody>{''.join(rows)}</tbody></table></div>"
    )


def validation_section(
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
