"""What a sweep keeps of its combinations while their statistics arrive (SPEC §10).

A pass hands its batches over in plan order (`passes.run_pass_into`); a collector turns each
row of statistics into the combination's metrics and keeps what the sweep reports: every
combination's objective and per-bar Sharpe (the trials of the DSR), its CSCV block sums (the
PBO), the counts behind the warnings, and its metrics row. A grid of at most `KEEP_ALL_ROWS`
valid combinations keeps every row in memory (the table `btlab.sweep` has always returned); a
larger one streams: its rows go to sweep.parquet on disk as they come (`artifacts.TableSpool`)
and memory holds only the `keep` best rows by the objective. Either way a combination's
metrics come from the same statistics row by the same `metrics_from_stats`, so the numbers
do not depend on which mode ran.
"""

from __future__ import annotations

import heapq
import math
import tempfile
import weakref
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from btlab.kernels.metrics import SW_MEAN, SW_STD

from ..artifacts import TableSpool
from ..metrics import metrics_from_stats
from ..run_warnings import RunWarning
from .grid import GridExpansion
from .request import SweepRequest

__all__ = [
    "KEEP_ALL_ROWS", "BestObjective", "PassSink", "SweepCollector", "combination_frame",
    "row_metrics", "streamed_warnings",
]  # fmt: skip

#: A sweep with more valid combinations streams its rows (the most the first version ran,
#: whose results are bit for bit what it returned).
KEEP_ALL_ROWS = 10_000

#: Receives a pass's batches in plan order: (combination indices, statistics rows, block sums).
PassSink = Callable[[np.ndarray, np.ndarray, np.ndarray], None]


def row_metrics(
    request: SweepRequest, n: int, years: float, periods_per_year: float
) -> Callable[[int, np.ndarray], dict[str, Any]]:
    """Combination k's metrics from its statistics row (its own initial cash where an axis
    sets it)."""
    e = request.expansion
    default_cash = request.execution.initial_cash
    cash_axis = "execution.initial_cash" in e.axes

    def metrics(k: int, row: np.ndarray) -> dict[str, Any]:
        cash = (
            e.fields[k].get("execution.initial_cash", default_cash) if cash_axis else default_cash
        )
        return metrics_from_stats(
            row, n=n, years=years, periods_per_year=periods_per_year, initial_cash=cash
        )

    return metrics


def _axis_dtypes(expansion: GridExpansion) -> dict[str, Any]:
    """Each axis column's dtype as pandas gives it for the axis's whole list of values, so every
    batch of a streamed table has the same column types."""
    return {name: pd.Series(values).dtype for name, values in expansion.axes.items()}


def combination_frame(
    expansion: GridExpansion,
    members: Sequence[int],
    rows: Sequence[dict[str, Any]],
    dtypes: dict[str, Any] | None = None,
) -> pd.DataFrame:
    """sweep.parquet's rows of these combinations: combo, its value on each axis, its metrics."""
    columns: dict[str, Any] = {"combo": np.asarray(members, dtype=np.int64)}
    points = [expansion.points[k] for k in members]
    for i, name in enumerate(expansion.axes):
        values = [p[i] for p in points]
        columns[name] = values if dtypes is None else pd.Series(values, dtype=dtypes[name])
    frame = pd.DataFrame(columns)
    return pd.concat([frame, pd.DataFrame.from_records(list(rows))], axis=1)


class BestObjective:
    """A permuted pass's statistic: the best objective over the grid (`result.best_index`'s
    rule: the largest finite value, else the first combination's)."""

    def __init__(self, metrics: Callable[[int, np.ndarray], dict[str, Any]], objective: str):
        self._metrics, self._objective = metrics, objective
        self.best = -math.inf
        self.first = math.nan
        self._any = False

    def __call__(self, members: np.ndarray, stats: np.ndarray, blocks: np.ndarray) -> None:
        for k, row in zip(members.tolist(), stats, strict=True):
            value = float(self._metrics(k, row)[self._objective])
            if k == 0:
                self.first = value
            if math.isfinite(value) and value > self.best:
                self.best, self._any = value, True

    @property
    def value(self) -> float:
        return self.best if self._any else self.first


class SweepCollector:
    """What a sweep keeps of its combinations (see the module's docstring)."""

    def __init__(
        self,
        request: SweepRequest,
        n_blocks: int,
        metrics: Callable[[int, np.ndarray], dict[str, Any]],
        *,
        keep_all: bool | None = None,
        spool_dir: str | Path | None = None,
    ) -> None:
        e = request.expansion
        total = len(e)
        self.expansion, self.objective_name, self.keep = e, request.objective, request.keep
        self._metrics = metrics
        self.objective = np.full(total, np.nan)
        self.trial_sharpes = np.full(total, np.nan)
        # the CSCV sums as PBO reads them, splits x combinations (`pbo.pbo_from_group_sums`)
        self.block_sum = np.zeros((n_blocks, total))
        self.block_sq = np.zeros((n_blocks, total))
        self.ruined = 0
        self.idle = 0
        self.streamed = (total > KEEP_ALL_ROWS) if keep_all is None else not keep_all
        self._rows: list[dict[str, Any] | None] = [] if self.streamed else [None] * total
        self._top: list[tuple[float, int, int, dict[str, Any]]] = []  # (value, -k, k, row)
        self._first: dict[str, Any] | None = None
        self._spool: TableSpool | None = None
        self._dtypes = _axis_dtypes(e) if self.streamed else None
        if self.streamed:
            handle = tempfile.NamedTemporaryFile(  # noqa: SIM115 - removed with the collector
                prefix="btlab-sweep-", suffix=".parquet", dir=spool_dir, delete=False
            )
            handle.close()
            path = Path(handle.name)
            self._spool = TableSpool(path)
            self._finalizer = weakref.finalize(self, path.unlink, missing_ok=True)

    def __call__(self, members: np.ndarray, stats: np.ndarray, blocks: np.ndarray) -> None:
        self.block_sum[:, members] = blocks[:, :, 0].T
        self.block_sq[:, members] = blocks[:, :, 1].T
        with np.errstate(divide="ignore", invalid="ignore"):
            self.trial_sharpes[members] = stats[:, SW_MEAN] / stats[:, SW_STD]
        ks = members.tolist()
        rows = [self._metrics(k, row) for k, row in zip(ks, stats, strict=True)]
        for k, row in zip(ks, rows, strict=True):
            value = float(row[self.objective_name])
            self.objective[k] = value
            self.ruined += bool(row["ruined"])
            self.idle += row["fill_count"] == 0
            if not self.streamed:
                self._rows[k] = row
                continue
            if k == 0:
                self._first = row
            if math.isfinite(value):
                item = (value, -k, k, row)
                if len(self._top) < self.keep:
                    heapq.heappush(self._top, item)
                elif item[:2] > self._top[0][:2]:
                    heapq.heapreplace(self._top, item)
        if self._spool is not None:
            self._spool.append(combination_frame(self.expansion, ks, rows, self._dtypes))

    def take_file(self) -> Path | None:
        """A streamed sweep's sweep.parquet, finished, now the caller's to remove (else None)."""
        if self._spool is None:
            return None
        if self._spool.rows:
            self._spool.close()
        self._finalizer.detach()
        return self._spool.path

    def kept(self) -> list[tuple[int, dict[str, Any]]]:
        """(combination, metrics row) of what is held in memory: every row in grid order, or
        (streamed) the `keep` best by the objective, best first (the first combination's
        when no objective is finite)."""
        if not self.streamed:
            return [(k, row) for k, row in enumerate(self._rows) if row is not None]
        top = sorted(self._top, key=lambda item: (-item[0], item[2]))
        if not top and self._first is not None:
            return [(0, self._first)]
        return [(k, row) for _, _, k, row in top]

    def table(self) -> pd.DataFrame:
        """The sweep's table in memory (see `kept`)."""
        kept = self.kept()
        return combination_frame(
            self.expansion, [k for k, _ in kept], [row for _, row in kept], self._dtypes
        )


def streamed_warnings(collector: SweepCollector) -> list[RunWarning]:
    """`sweep_streamed`: the table in memory is not every row (sweep.parquet is)."""
    if not collector.streamed:
        return []
    total = len(collector.expansion)
    return [
        RunWarning(
            "sweep_streamed",
            f"{total} combinations streamed: sweep.parquet holds every row, the table in "
            f"memory the {min(collector.keep, total)} best by {collector.objective_name} "
            "(set `keep` for more)",
        )
    ]
