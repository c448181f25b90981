"""The one list of run metrics (SPEC §5): what each is, how it is shown, where it appears.

`METRICS` holds one `Metric` per key of metrics.json, in the order `metrics.compute_metrics`
returns them: first those `metrics_from_stats` gives from a row of per-path sums (the order of
sweep.parquet's metric columns), then those read from a run's own arrays (`from_arrays`: the
benchmark, the tails of the returns, the trade distribution), which a sweep computes for its
best run only. Everything that names
metrics reads it: GET /registry, the CLI's metrics and sweep tables, the report's metric,
fold and sweep tables, the fold metrics of validation.json, the service's headline metrics,
the reasons of `undefined_metrics` warnings, and the metrics table of docs/concepts.md
(generated from it and checked by tests/test_docs.py).

Kinds say what a value is, so a table knows how to show it: `fraction` (a share or a return,
shown in percent), `ratio`, `currency` (money), `count`, `bars` (a number of bars), `number`
(any other real number) and `flag` (true / false).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

Kind = Literal["fraction", "ratio", "currency", "count", "bars", "number", "flag"]
Group = Literal["performance", "risk", "benchmark", "trading", "capital"]

#: The report's metric tables, in order: slug -> caption.
GROUP_TITLES: Mapping[str, str] = {
    "performance": "Performance",
    "risk": "Risk",
    "benchmark": "Against the benchmark",
    "trading": "Trading",
    "capital": "Capital and costs",
}


@dataclass(frozen=True)
class Metric:
    """One metric of metrics.json.

    `label` is what a table shows for it, `short_label` what a narrow one (the folds) shows;
    `description` its definition (formula) as GET /registry and the docs give it; `undefined`
    when it is NaN (null), where it can be. `signed`: a table colours its sign. `headline`: in
    the CLI's table and the service's run listings and `completed` events; `fold`: computed per
    time fold (validation.json); `sweep_column`: shown for each combination of a sweep;
    `from_arrays`: computed from the run's arrays (`metrics.array_metrics`), not from a row of
    sums, so a sweep's combinations do not have it (its best run does).
    """

    name: str
    label: str
    kind: Kind
    group: Group
    description: str
    undefined: str | None = None
    short_label: str | None = None
    signed: bool = False
    headline: bool = False
    fold: bool = False
    sweep_column: bool = False
    from_arrays: bool = False

    @property
    def narrow_label(self) -> str:
        return self.short_label or self.label


_RETURNS_UNDEFINED = "fewer than 2 per-bar returns, or returns without variance"
_NO_CLOSED_TRADE = "no closed trade"
_BENCHMARK_OFF = 'the benchmark is off (metrics.benchmark = "none")'
_ACTIVE = "r - b, r the run's per-bar returns, b the benchmark's"

METRICS: tuple[Metric, ...] = (
    Metric("initial_cash", "Initial cash", "currency", "capital", "Cash at the start."),
    Metric(
        "final_equity",
        "Final equity",
        "currency",
        "capital",
        "Equity marked at the last close.",
        headline=True,
    ),
    Metric(
        "total_return",
        "Total return",
        "fraction",
        "performance",
        "final_equity / initial_cash - 1.",
        short_label="Return",
        signed=True,
        headline=True,
        fold=True,
        sweep_column=True,
    ),
    Metric(
        "cagr",
        "CAGR",
        "fraction",
        "performance",
        "(final_equity / initial_cash) ** (1 / years) - 1, years = (ts_last - ts_first) / "
        "365.25 days; -1 where final_equity <= 0.",
        undefined="the data spans no calendar time",
        signed=True,
        headline=True,
        fold=True,
        sweep_column=True,
    ),
    Metric(
        "annual_volatility",
        "Annual volatility",
        "fraction",
        "performance",
        "std(r, ddof=1) * sqrt(periods_per_year), r[i] = equity[i]/equity[i-1] - 1.",
        undefined="fewer than 2 per-bar returns",
        short_label="Volatility",
        headline=True,
        fold=True,
    ),
    Metric(
        "sharpe",
        "Sharpe",
        "ratio",
        "performance",
        "mean(r) / std(r, ddof=1) * sqrt(periods_per_year).",
        undefined=_RETURNS_UNDEFINED,
        signed=True,
        headline=True,
        fold=True,
        sweep_column=True,
    ),
    Metric(
        "sortino",
        "Sortino",
        "ratio",
        "performance",
        "mean(r) / sqrt(mean(min(r, 0)^2)) * sqrt(periods_per_year).",
        undefined="no per-bar return below zero (no downside deviation)",
        signed=True,
        headline=True,
        fold=True,
    ),
    Metric(
        "max_drawdown",
        "Max drawdown",
        "fraction",
        "performance",
        "min(equity / cummax(equity) - 1) (a negative number); -1 where ruined (equity <= 0).",
        short_label="Max DD",
        headline=True,
        fold=True,
        sweep_column=True,
    ),
    Metric(
        "max_drawdown_duration_bars",
        "Max drawdown duration",
        "bars",
        "performance",
        "Longest run of bars below the running equity peak (a bar back at the peak has "
        "recovered, so flat equity is never in drawdown).",
    ),
    Metric(
        "calmar",
        "Calmar",
        "ratio",
        "performance",
        "cagr / |max_drawdown|.",
        undefined="no drawdown, or cagr undefined",
        signed=True,
        headline=True,
    ),
    Metric(
        "exposure",
        "Time in market",
        "fraction",
        "trading",
        "Share of bars ending with an open position.",
        headline=True,
    ),
    Metric(
        "avg_gross_leverage",
        "Average gross leverage",
        "ratio",
        "trading",
        "Mean of |units * close| / equity over the bars.",
        undefined="no bar with a finite leverage",
    ),
    Metric(
        "turnover",
        "Turnover",
        "ratio",
        "trading",
        "Traded notional (at reference prices) / mean equity.",
        undefined="the mean equity is not positive",
    ),
    Metric(
        "turnover_annual",
        "Turnover per year",
        "ratio",
        "trading",
        "turnover per calendar year.",
        undefined="the data spans no calendar time, or turnover undefined",
    ),
    Metric(
        "trade_count",
        "Trades",
        "count",
        "trading",
        "Closed round trips (flat to flat, or a side flip).",
        headline=True,
        fold=True,
        sweep_column=True,
    ),
    Metric(
        "open_trade",
        "Open at the end",
        "count",
        "trading",
        "1 if a position is still open at the end (close_at_end off), else 0.",
    ),
    Metric(
        "win_rate",
        "Win rate",
        "fraction",
        "trading",
        "Share of closed trades with net P&L > 0.",
        undefined=_NO_CLOSED_TRADE,
        headline=True,
        fold=True,
        sweep_column=True,
    ),
    Metric(
        "profit_factor",
        "Profit factor",
        "ratio",
        "trading",
        "Sum of winning net P&L / |sum of losing net P&L| (null with no losses).",
        undefined="no closed trade, or no losing trade to divide by",
        headline=True,
    ),
    Metric(
        "avg_trade_return",
        "Average trade",
        "fraction",
        "trading",
        "Mean net return of closed trades (net P&L / entry notional).",
        undefined=_NO_CLOSED_TRADE,
        signed=True,
    ),
    Metric(
        "best_trade_return",
        "Best trade",
        "fraction",
        "trading",
        "Best closed trade's net return.",
        undefined=_NO_CLOSED_TRADE,
        signed=True,
    ),
    Metric(
        "worst_trade_return",
        "Worst trade",
        "fraction",
        "trading",
        "Worst closed trade's net return.",
        undefined=_NO_CLOSED_TRADE,
        signed=True,
    ),
    Metric(
        "avg_bars_held",
        "Average bars held",
        "number",
        "trading",
        "Mean bars held of closed trades.",
        undefined=_NO_CLOSED_TRADE,
    ),
    Metric("fill_count", "Fills", "count", "trading", "Number of fills."),
    Metric("total_spread", "Spread", "currency", "capital", "Spread paid over all fills."),
    Metric("total_slippage", "Slippage", "currency", "capital", "Slippage paid over all fills."),
    Metric(
        "total_commission", "Commission", "currency", "capital", "Commission paid over all fills."
    ),
    Metric("total_borrow", "Borrow", "currency", "capital", "Borrow paid on shorts."),
    Metric(
        "total_costs",
        "Total costs",
        "currency",
        "capital",
        "Spread + slippage + commission + borrow.",
        headline=True,
    ),
    Metric(
        "periods_per_year",
        "Periods per year",
        "number",
        "capital",
        "Bars per year used for annualizing.",
    ),
    Metric("n_bars", "Bars", "count", "capital", "Bars in the run.", headline=True),
    Metric(
        "ruined",
        "Ruined",
        "flag",
        "capital",
        "True where equity fell to zero or below and trading halted.",
        headline=True,
    ),
    Metric(
        "halted",
        "Halted by max drawdown",
        "flag",
        "capital",
        "True where the max-drawdown limit halted trading.",
        headline=True,
    ),
    Metric(
        "benchmark_return",
        "Benchmark return",
        "fraction",
        "benchmark",
        "benchmark[-1] / initial_cash - 1: the total return of the benchmark (metrics.benchmark; "
        "by default the buy-and-hold of the traded symbol, or the equal-weight index of a "
        "portfolio's symbols rebalanced every bar, frictionless).",
        undefined=_BENCHMARK_OFF,
        short_label="Benchmark",
        signed=True,
        headline=True,
        from_arrays=True,
    ),
    Metric(
        "excess_return",
        "Excess return",
        "fraction",
        "benchmark",
        "total_return - benchmark_return.",
        undefined=_BENCHMARK_OFF,
        signed=True,
        headline=True,
        from_arrays=True,
    ),
    Metric(
        "alpha",
        "Alpha (annual)",
        "fraction",
        "benchmark",
        "OLS intercept of r[i] = alpha_bar + beta * b[i] + e[i] times periods_per_year "
        "(arithmetic annualization; risk-free rate 0), b the benchmark's per-bar returns.",
        undefined=f"{_BENCHMARK_OFF}, fewer than 2 per-bar returns, or a benchmark without "
        "variance",
        signed=True,
        from_arrays=True,
    ),
    Metric(
        "beta",
        "Beta",
        "ratio",
        "benchmark",
        "OLS slope of r on b: cov(r, b) / var(b).",
        undefined=f"{_BENCHMARK_OFF}, fewer than 2 per-bar returns, or a benchmark without "
        "variance",
        signed=True,
        from_arrays=True,
    ),
    Metric(
        "information_ratio",
        "Information ratio",
        "ratio",
        "benchmark",
        f"mean(a) / std(a, ddof=1) * sqrt(periods_per_year), a = {_ACTIVE}.",
        undefined=f"{_BENCHMARK_OFF}, fewer than 2 per-bar returns, or active returns "
        "without variance",
        signed=True,
        from_arrays=True,
    ),
    Metric(
        "tracking_error",
        "Tracking error",
        "fraction",
        "benchmark",
        f"std(a, ddof=1) * sqrt(periods_per_year), a = {_ACTIVE}.",
        undefined=f"{_BENCHMARK_OFF}, or fewer than 2 per-bar returns",
        from_arrays=True,
    ),
    Metric(
        "var_95",
        "VaR 95 % (per bar)",
        "fraction",
        "risk",
        "Historical value at risk: the 5th percentile of r (linear interpolation), a return "
        "(negative: a loss).",
        undefined="no per-bar return",
        short_label="VaR 95",
        signed=True,
        from_arrays=True,
    ),
    Metric(
        "cvar_95",
        "CVaR 95 % (per bar)",
        "fraction",
        "risk",
        "Historical expected shortfall: the mean of the floor((m - 1) * 0.05) + 1 lowest of the "
        "m per-bar returns (those at or below var_95), a return (negative: a loss).",
        undefined="no per-bar return",
        short_label="CVaR 95",
        signed=True,
        from_arrays=True,
    ),
    Metric(
        "omega",
        "Omega (threshold 0)",
        "ratio",
        "risk",
        "sum(max(r, 0)) / sum(max(-r, 0)).",
        undefined="no per-bar return below zero",
        from_arrays=True,
    ),
    Metric(
        "tail_ratio",
        "Tail ratio",
        "ratio",
        "risk",
        "|95th percentile of r| / |5th percentile of r|.",
        undefined="no per-bar return, or a 5th percentile of 0",
        from_arrays=True,
    ),
    Metric(
        "sqn",
        "SQN",
        "ratio",
        "trading",
        "System quality number: sqrt(N) * mean(R) / std(R, ddof=1) over the N closed trades, "
        "R = each trade's net return (standing in for Van Tharp's R-multiple: a trade's initial "
        "risk is not known); no cap on N.",
        undefined="fewer than 2 closed trades, or trade returns without variance",
        signed=True,
        from_arrays=True,
    ),
    Metric(
        "kelly_fraction",
        "Kelly fraction",
        "fraction",
        "trading",
        "win_rate - (1 - win_rate) / payoff, payoff = mean net return of winning trades / "
        "|mean net return of losing trades|.",
        undefined="no winning or no losing closed trade",
        signed=True,
        from_arrays=True,
    ),
    Metric(
        "exposure_adjusted_return",
        "Exposure-adjusted return",
        "fraction",
        "performance",
        "cagr / exposure: the annual return per unit of time in the market.",
        undefined="never in the market, or cagr undefined",
        signed=True,
        from_arrays=True,
    ),
)

BY_NAME: Mapping[str, Metric] = {m.name: m for m in METRICS}
METRIC_NAMES: tuple[str, ...] = tuple(BY_NAME)
#: Stored with a run, sent with its `completed` event, shown by `btlab run`.
HEADLINE: tuple[str, ...] = tuple(m.name for m in METRICS if m.headline)
#: Computed on each time fold (validation.json's folds).
FOLD: tuple[str, ...] = tuple(m.name for m in METRICS if m.fold)
#: Shown for each combination in the sweep tables (after the objective).
SWEEP_COLUMNS: tuple[str, ...] = tuple(m.name for m in METRICS if m.sweep_column)
#: What `metrics.metrics_from_stats` gives (a sweep combination's metrics, in sweep.parquet).
FROM_STATS: tuple[str, ...] = tuple(m.name for m in METRICS if not m.from_arrays)


def in_group(group: str) -> tuple[Metric, ...]:
    """The metrics of one report table, in registry order."""
    return tuple(m for m in METRICS if m.group == group)


def metrics_reference() -> str:
    """The metrics table of docs/concepts.md (Markdown), generated from `METRICS`."""

    def cell(text: str) -> str:
        return text.replace("|", "\\|")

    rows = [
        "<!-- generated from btlab.metric_registry by `python -m tests.test_docs --write`; "
        "do not edit -->",
        "",
        "| metric | shown as | kind | definition | undefined (null) when |",
        "|---|---|---|---|---|",
    ]
    rows += [
        f"| `{m.name}` | {cell(m.label)} | {m.kind} | {cell(m.description)} "
        f"| {cell(m.undefined or '—')} |"
        for m in METRICS
    ]
    return "\n".join(rows) + "\n"
