"""Run warnings: what makes a result degenerate, said where the user looks.

A run (or sweep) whose numbers are undefined or hollow still completes, but it carries a list
of `RunWarning(code, message)`: on `RunResult.warnings` / `SweepResult.warnings`, in the
manifest (`"warnings"`, so `run_hash` covers them), in the service's `completed` event, on the
CLI's stderr (one `warning:` line each) and in a box at the top of the report. Codes:

- `short_data`: a feature the strategy (or sizing) reads has no value on any bar: the data is
  no longer than its warm-up (after the registry's one-bar shift), so the strategy stays flat.
- `no_trades` / `no_closed_trades`: the strategy never traded / closed no round trip.
- `undefined_metrics`: metrics that are NaN (null in metrics.json), grouped by the reason.
- `validation_undefined`: a validation section (psr, bootstrap, permutation, folds, pbo) that
  could not be computed, and why.
- `validation_skipped`: a section asked for that does not apply to the run (validation.json's
  `skipped`), and why: the permutation test of a run of the caller's own targets.
- `ruined` / `halted`: equity fell to zero or below / the max-drawdown limit stopped trading.
- `grid_skipped` (sweeps): combinations the strategy rejects, by reason, with the first one.
- Dataset warnings (`DatasetMeta.warnings`, strings "code: message") are folded in as they are.

Messages are built from the results only (no timings, no paths), so the same run gives the same
warnings, and the same manifest bytes, every time.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from .data import Dataset
from .features import FeatureSpec, FeatureStore
from .hashing import canonical_json
from .metric_registry import BY_NAME

__all__ = [
    "RunWarning",
    "dataset_warnings",
    "skipped_warnings",
    "undefined_metric_warnings",
    "validation_warnings",
    "warmup_warnings",
]


@dataclass(frozen=True)
class RunWarning:
    """One thing the user must know about a result: a short `code` and a plain `message`."""

    code: str
    message: str

    def to_json(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message}

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"

    @classmethod
    def parse(cls, text: str) -> RunWarning:
        """A warning from "code: message" text (a dataset's); text without a code is `dataset`."""
        code, sep, message = text.partition(":")
        code = code.strip()
        if not sep or not code or not code.replace("_", "").isalnum():
            return cls("dataset", text.strip())
        return cls(code, message.strip())


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def when(ts_ns: int) -> str:
    """A bar's timestamp as text: the date, plus the time of day where it is not midnight."""
    ts = pd.Timestamp(int(ts_ns), unit="ns", tz="UTC")
    return ts.strftime("%Y-%m-%d") if ts == ts.normalize() else ts.strftime("%Y-%m-%d %H:%M:%S")


def dataset_warnings(dataset: Dataset) -> list[RunWarning]:
    """The dataset's own warnings (`DatasetMeta.warnings`, where the metadata has them)."""
    return [RunWarning.parse(str(text)) for text in getattr(dataset.meta, "warnings", None) or []]


def warmup_warnings(store: FeatureStore, specs: Iterable[FeatureSpec]) -> list[RunWarning]:
    """`short_data` where a feature read has no value on any bar (the store already holds them)."""
    seen: dict[str, FeatureSpec] = {}
    for spec in specs:
        seen.setdefault(spec.key(), spec)
    empty = [s for s in seen.values() if not np.isfinite(store.get(s)).any()]
    if not empty:
        return []
    names = ", ".join(f"{s.name} {canonical_json(s.params)}" for s in empty)
    return [
        RunWarning(
            "short_data",
            f"the data has {store.n} bars, no more than the warm-up of {names}: "
            f"{'it has' if len(empty) == 1 else 'they have'} no value on any bar (after the "
            "one-bar shift), so the strategy never left its warm-up; use more bars or a "
            "shorter window",
        )
    ]


def returns_reason(metrics: Mapping[str, Any]) -> str:
    """Why a statistic of the per-bar returns (Sharpe, PSR, bootstrap) is undefined."""
    n_bars = int(metrics.get("n_bars") or 0)
    if n_bars < 3:
        return f"{max(n_bars - 1, 0)} per-bar returns, at least 2 are needed"
    if metrics.get("annual_volatility") == 0:
        flat = metrics.get("fill_count") == 0
        return "the per-bar returns have no variance" + (
            "; the equity never changed" if flat else ""
        )
    return "the per-bar returns have no usable variance"


def _why_undefined(name: str, m: Mapping[str, Any]) -> str:
    """The reason a metric is NaN: the registry's (`Metric.undefined`), told apart where the
    run's other numbers say which of its cases it is."""
    if name == "profit_factor":
        return "no closed trade" if not m.get("trade_count") else "no losing trade to divide by"
    metric = BY_NAME.get(name)
    off = not _finite(m.get("benchmark_return"))
    if metric is not None and metric.group == "benchmark" and off:
        return 'the benchmark is off (metrics.benchmark = "none")'  # one warning, not four
    if name in ("sharpe", "annual_volatility") or (name == "sortino" and not _finite(m["sharpe"])):
        return returns_reason(m)
    if name == "calmar":
        return "no drawdown" if m.get("max_drawdown") == 0 else "cagr is undefined"
    if name == "turnover_annual":
        return (
            "turnover is undefined"
            if not _finite(m.get("turnover"))
            else "the data spans no calendar time"
        )
    return (
        metric.undefined
        if metric is not None and metric.undefined
        else "not computable on this run"
    )


def undefined_metric_warnings(metrics: Mapping[str, Any]) -> list[RunWarning]:
    """One `undefined_metrics` warning per reason, naming the metrics (in metrics order)."""
    groups: dict[str, list[str]] = {}
    for name, value in metrics.items():
        if isinstance(value, float) and math.isnan(value):
            groups.setdefault(_why_undefined(name, metrics), []).append(name)
    return [
        RunWarning(
            "undefined_metrics",
            f"{', '.join(names)} {'is' if len(names) == 1 else 'are'} undefined "
            f"(null in metrics.json): {reason}",
        )
        for reason, names in groups.items()
    ]


def validation_warnings(
    validation: Mapping[str, Any] | None, metrics: Mapping[str, Any]
) -> list[RunWarning]:
    """`validation_undefined` for each section that was asked for but could not be computed."""
    if not validation or not (validation.get("settings") or {}).get("enabled", False):
        return []
    why = returns_reason(metrics)
    out: list[str] = []
    psr = validation.get("psr")
    if psr is not None and not _finite(psr.get("psr")):
        out.append(f"psr: the probabilistic and deflated Sharpe ratios are undefined: {why}")
    boot = validation.get("bootstrap")
    if boot is not None and not all(_finite(v) for v in boot.get("sharpe_ci") or [None]):
        out.append(
            f"bootstrap: the Sharpe interval is undefined ({boot.get('n_valid', 0)} of "
            f"{boot.get('n_resamples')} resamples had a defined Sharpe): {why}"
        )
    perm = validation.get("permutation")
    if perm is not None and not _finite(perm.get("p_value")):
        cause = (
            f"the run's own Sharpe is undefined: {why}"
            if not _finite(perm.get("real"))
            else f"{perm.get('n_nan')} of {perm.get('n_permutations')} permuted paths gave none"
        )
        out.append(f"permutation: the p-value is undefined, as {cause}")
    folds = validation.get("folds")
    if folds is not None and not folds.get("folds"):
        out.append(
            f"folds: none of the {folds.get('k')} folds has 2 bars or more "
            f"({metrics.get('n_bars')} bars)"
        )
    sweep = validation.get("sweep") or {}
    if sweep.get("pbo_skipped"):
        out.append(f"pbo: not computed: {sweep['pbo_skipped']}")
    return [
        *(RunWarning("validation_undefined", text) for text in out),
        *skipped_warnings(validation),
    ]


def skipped_warnings(validation: Mapping[str, Any] | None) -> list[RunWarning]:
    """`validation_skipped` for each section validation.json lists under `skipped`."""
    return [
        RunWarning("validation_skipped", f"{section}: not computed: {why}")
        for section, why in ((validation or {}).get("skipped") or {}).items()
    ]
