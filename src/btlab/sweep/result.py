"""What a sweep produced (`SweepResult`): its table, best combination, heatmap and validation,
and the artifacts and manifest it writes."""

from __future__ import annotations

import itertools
import math
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .. import data as data_mod
from ..artifacts import (
    Payload,
    folder_manifest,
    table_bytes,
    write_result_folder,
)
from ..data.portfolio import PortfolioDataset
from ..hashing import canonical_bytes
from ..pipeline import DataIdentity, PortfolioResult, RunResult
from ..result_display import sweep_html, sweep_repr, sweep_title
from ..result_plot import plot_heatmap
from ..result_stats import heatmap_frame
from ..run_warnings import RunWarning
from .grid import GridExpansion
from .request import SweepRequest

__all__ = [
    "SweepResult",
    "best_index",
    "combination_warnings",
    "objective_heatmap",
]


@dataclass(eq=False)
class SweepResult:
    """Everything a sweep produced: the table, the best combination, heatmap and validation."""

    request: SweepRequest
    config_hash: str
    dataset: data_mod.Dataset | PortfolioDataset
    identity: DataIdentity
    expansion: GridExpansion
    table: pd.DataFrame  # one row per valid combination: combo, the gridded params, metrics
    best: dict[str, Any]  # {"combo": index, "params": {...}, "metrics": {...}}
    best_run: RunResult | PortfolioResult  # the best combination re-run in full
    heatmap_json: dict[str, Any]  # heatmap.json: the objective over the first two axes
    validation: dict[str, Any] | None
    fused: bool
    timings_ms: dict[str, float] = field(default_factory=dict)
    #: What the user must know: skipped grid values, short data, the best's ruin, ... (see
    #: `btlab.run_warnings`); in the manifest, the completed event, the CLI and the report.
    warnings: list[RunWarning] = field(default_factory=list)
    #: A streamed sweep's sweep.parquet on disk (every row; `table` then holds the `keep`
    #: best): removed with this result. None where `table` is every row.
    rows_file: Path | None = None

    def __post_init__(self) -> None:
        if self.rows_file is not None:
            weakref.finalize(self, self.rows_file.unlink, missing_ok=True)

    @property
    def streamed(self) -> bool:
        """Whether the sweep streamed its rows (`table` then holds the `keep` best)."""
        return self.rows_file is not None

    def rows(self, columns: Sequence[str] | None = None) -> pd.DataFrame:
        """Every combination's row (sweep.parquet), `columns` only where given: the table, or a
        streamed sweep's file read back."""
        if self.rows_file is None:
            return self.table if columns is None else self.table[list(columns)]
        return pd.read_parquet(self.rows_file, columns=None if columns is None else list(columns))

    def __repr__(self) -> str:
        return sweep_repr(self)

    def _repr_html_(self) -> str:
        return sweep_html(self, self.heatmap())

    def heatmap(
        self, x: str | None = None, y: str | None = None, metric: str | None = None
    ) -> pd.DataFrame:
        """`metric` (default the objective) over the axes `x` (columns) and `y` (rows), the
        first two by default, every other axis fixed at the best's value; NaN where skipped.
        A random search fixes none: each cell is the best of its draws."""
        fixed = None if self.expansion.random else self.best_point()
        metric = metric or self.request.objective
        return heatmap_frame(
            self.rows([*self.expansion.axes, metric]) if self.streamed else self.table,
            self.expansion.axes, fixed, x=x, y=y, metric=metric,
        )  # fmt: skip

    def stats(self) -> pd.Series:
        """The best combination's run statistics (`RunResult.stats`)."""
        return self.best_run.stats()

    def plot(self, x: str | None = None, y: str | None = None, metric: str | None = None) -> Any:
        """An interactive Plotly heatmap of `heatmap(x, y, metric)` (`pip install 'btlab[plot]'`)."""
        metric = metric or self.request.objective
        return plot_heatmap(self.heatmap(x, y, metric), metric, sweep_title(self))

    @property
    def returns(self) -> pd.Series:
        """The best combination's per-bar simple returns (`RunResult.returns`)."""
        return self.best_run.returns

    def summary(self) -> dict[str, Any]:
        """sweep.json: the grid, its size, what was skipped, the objective and the best."""
        e = self.expansion
        return {
            "strategy": self.request.strategy.name,
            "axes": e.axes,
            "n_combinations": e.size,
            "n_valid": len(e.params),
            "n_skipped": e.skipped,
            "skipped_reasons": e.reasons,
            "objective": self.request.objective,
            "best": {k: self.best[k] for k in ("combo", "params", "fields") if k in self.best},
            "pbo_splits": self.request.pbo_splits,
            "fold_dates": self.fold_dates(),
        }

    def best_point(self) -> dict[str, Any]:
        """The best combination's value on each axis, by axis name as the grid gives it."""
        e = self.expansion
        return dict(zip(e.axes, e.points[self.best["combo"]], strict=True))

    def fold_dates(self) -> list[list[str]]:
        """The first and last bar's timestamp (ISO 8601, UTC) of each validation fold: a sweep
        folder has no equity table to read them from."""
        folds = ((self.validation or {}).get("folds") or {}).get("folds") or []
        ts = self.dataset.ts

        def iso(bar: int) -> str:
            return str(pd.Timestamp(int(ts[bar]), tz="UTC").strftime("%Y-%m-%dT%H:%M:%SZ"))

        return [[iso(f["start_bar"]), iso(f["end_bar"])] for f in folds]

    def artifact_payloads(self) -> dict[str, Payload]:
        """Every artifact's bytes by file name (the manifest excepted); best_equity.parquet is
        the best combination's equity table (as a run's equity.parquet), for the report."""
        return {
            "best_equity.parquet": table_bytes(self.best_run.equity),
            "sweep.parquet": self.rows_file or table_bytes(self.table),
            "sweep.json": canonical_bytes(self.summary()),
            "heatmap.json": canonical_bytes(self.heatmap_json),
            "metrics.json": canonical_bytes(self.best["metrics"]),
            "validation.json": canonical_bytes(
                self.validation if self.validation is not None else {"enabled": False}
            ),
        }

    def manifest(self, payloads: Mapping[str, Payload]) -> dict[str, Any]:
        return folder_manifest(
            self.request, self.dataset, self.identity, self.config_hash, self.warnings,
            payloads, kind="sweep",
        )  # fmt: skip

    def write_artifacts(
        self, out_dir: str | Path, *, overwrite: bool = False, replace_same_run: bool = False
    ) -> dict[str, Any]:
        """Write the artifacts and `manifest.json` to `out_dir` atomically; returns the manifest.
        As `artifacts.write_artifacts`: the same folder writer and the same rule for a
        non-empty `out_dir`."""
        return write_result_folder(
            out_dir, self.artifact_payloads, self.manifest, overwrite=overwrite,
            replace_same_run=replace_same_run,
        )  # fmt: skip


def best_index(values: np.ndarray) -> int:
    """The first index of the largest finite value (0 when none is finite)."""
    finite = np.isfinite(values)
    if not finite.any():
        return 0
    return int(np.argmax(np.where(finite, values, -np.inf)))


#: A random search's axis with more distinct values than this is shown in `HEATMAP_BINS` bins.
HEATMAP_MAX_VALUES = 40
HEATMAP_BINS = 20


def _binned(values: list[Any], drawn: list[Any]) -> tuple[list[Any], list[int]]:
    """An axis's heatmap labels and each drawn value's column: the distinct values themselves,
    or (more than HEATMAP_MAX_VALUES numbers) equal-count bins labelled by their midpoints."""
    numeric = all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)
    if len(values) <= HEATMAP_MAX_VALUES or not numeric:
        where = {canonical_bytes(v): i for i, v in enumerate(values)}
        return values, [where[canonical_bytes(v)] for v in drawn]
    edges = np.quantile(np.asarray(values, dtype=np.float64), np.linspace(0, 1, HEATMAP_BINS + 1))
    edges = np.unique(edges)
    columns = np.clip(np.searchsorted(edges, np.asarray(drawn, float), side="right") - 1, 0,
                      len(edges) - 2)  # fmt: skip
    labels = [round(float((a + b) / 2), 6) for a, b in itertools.pairwise(edges)]
    return labels, [int(c) for c in columns]


def _random_search_heatmap(
    expansion: GridExpansion, objective: str, values: np.ndarray, best: int
) -> dict[str, Any]:
    """A random search's heatmap: over the first two axes (binned where they have many values),
    each cell the best objective among the draws that fall in it (no axis is held fixed)."""
    names = list(expansion.axes)
    x_name, y_name = names[0], names[1] if len(names) > 1 else None
    x_labels, x_col = _binned(expansion.axes[x_name], [p[0] for p in expansion.points])
    if y_name is None:
        y_labels, y_row = [None], [0] * len(expansion.points)
    else:
        y_labels, y_row = _binned(expansion.axes[y_name], [p[1] for p in expansion.points])
    z: list[list[float | None]] = [[None] * len(x_labels) for _ in y_labels]
    for k, (col, row) in enumerate(zip(x_col, y_row, strict=True)):
        value = float(values[k])
        cell = z[row][col]
        if math.isfinite(value) and (cell is None or value > cell):
            z[row][col] = value
    return {
        "metric": objective,
        "x": {"name": x_name, "values": x_labels},
        "y": None if y_name is None else {"name": y_name, "values": y_labels},
        "fixed": {},
        "z": z,
        "best": dict(zip(names, expansion.points[best], strict=True)),
        "cells": "the best of the draws in each cell",
    }


def objective_heatmap(
    expansion: GridExpansion, objective: str, values: np.ndarray, best: int
) -> dict[str, Any]:
    """The objective over the first two axes (others fixed at the best's values): z[y][x]. A
    random search's: `_random_search_heatmap`."""
    if expansion.random:
        return _random_search_heatmap(expansion, objective, values, best)
    names = list(expansion.axes)
    best_point = expansion.points[best]
    x_name = names[0]
    y_name = names[1] if len(names) > 1 else None
    fixed = {k: best_point[i] for i, k in enumerate(names) if i >= 2}
    x_values = expansion.axes[x_name]
    y_values = expansion.axes[y_name] if y_name is not None else [None]
    # the cells by the combinations' codes: those at the best's codes on every other axis
    codes = expansion.codes
    in_plane = np.all(codes[:, 2:] == codes[best, 2:], axis=1)
    ks = np.flatnonzero(in_plane)
    xs = codes[ks, 0]
    ys = codes[ks, 1] if y_name is not None else np.zeros(ks.shape[0], np.int32)
    z: list[list[float | None]] = [[None] * len(x_values) for _ in y_values]
    for k, x, y in zip(ks.tolist(), xs.tolist(), ys.tolist(), strict=True):
        z[y][x] = float(values[k])
    return {
        "metric": objective,
        "x": {"name": x_name, "values": x_values},
        "y": None if y_name is None else {"name": y_name, "values": y_values},
        "fixed": fixed,
        "z": z,
        "best": dict(zip(names, best_point, strict=True)),
    }


def combination_warnings(ruined: int, idle: int, total: int) -> list[RunWarning]:
    """A sweep's combinations that were ruined or never traded (each row of sweep.parquet)."""
    out = []
    if ruined:
        out.append(
            RunWarning(
                "ruined",
                f"{ruined} of {total} combinations were ruined (equity <= 0, trading "
                "halted): see the ruined column of sweep.parquet",
            )
        )
    if idle:
        out.append(RunWarning("no_trades", f"{idle} of {total} combinations never traded"))
    return out
