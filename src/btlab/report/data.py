"""Reading a run's (or a sweep's) artifact folder into the `ReportData` a report shows."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.parquet as pq

from ..artifacts import MANIFEST
from ..errors import NotFoundError, RunError
from ..metric_registry import SWEEP_COLUMNS

#: The artifact only a portfolio run writes: its presence makes the folder a portfolio's.
POSITIONS = "positions.parquet"
#: A sweep's best combination's equity (sweeps written before it have none).
BEST_EQUITY = "best_equity.parquet"


@dataclass(frozen=True)
class ReportData:
    """The artifacts a report shows. `equity`, `fills`, `trades` are None for a sweep; the
    `sweep*` and `heatmap` fields are None for a run; `positions` and `symbols` are set for a
    portfolio run only (its folder has `positions.parquet`)."""

    manifest: dict[str, Any]
    metrics: dict[str, Any]
    validation: dict[str, Any]
    equity: pd.DataFrame | None = None
    fills: pd.DataFrame | None = None
    trades: pd.DataFrame | None = None
    sweep: dict[str, Any] | None = None
    sweep_table: pd.DataFrame | None = None
    heatmap: dict[str, Any] | None = None
    positions: pd.DataFrame | None = None
    symbols: pd.DataFrame | None = None
    #: A sweep's best combination's equity table (`best_equity.parquet`; None in older folders).
    best_equity: pd.DataFrame | None = None
    walkforward: dict[str, Any] | None = None  # a walk-forward's walkforward.json
    windows: pd.DataFrame | None = None  # and its windows.parquet

    @property
    def is_sweep(self) -> bool:
        return self.sweep is not None

    @property
    def is_portfolio(self) -> bool:
        return self.positions is not None


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


def _read_table(
    folder: Path, name: str, wanted: Callable[[str], bool] | None = None
) -> pd.DataFrame:
    """The table, only its columns `wanted` says yes to where given (a streamed sweep's
    sweep.parquet may hold millions of rows: the report reads what it shows)."""
    path = folder / name
    if not path.is_file():
        raise RunError(f"cannot render the report: {path} is missing")
    try:
        if wanted is not None:
            names = pq.read_schema(path).names
            return pd.read_parquet(path, columns=[c for c in names if wanted(c)])
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
        sweep = _read_json(path, "sweep.json")
        shown = {"combo", *(sweep.get("axes") or {}), str(sweep.get("objective")), *SWEEP_COLUMNS}
        return ReportData(
            manifest, metrics, validation,
            sweep=sweep,
            sweep_table=_read_table(path, "sweep.parquet", shown.__contains__),
            heatmap=_read_json(path, "heatmap.json"),
            best_equity=_read_table(path, BEST_EQUITY) if (path / BEST_EQUITY).is_file() else None,
        )  # fmt: skip
    portfolio = (path / POSITIONS).is_file()
    walkforward = manifest.get("kind") == "walkforward"
    return ReportData(
        manifest, metrics, validation,
        equity=_read_table(path, "equity.parquet"),
        fills=_read_table(path, "fills.parquet"),
        trades=_read_table(path, "trades.parquet"),
        positions=_read_table(path, POSITIONS) if portfolio else None,
        symbols=_read_table(path, "symbols.parquet") if portfolio else None,
        walkforward=_read_json(path, "walkforward.json") if walkforward else None,
        windows=_read_table(path, "windows.parquet") if walkforward else None,
    )  # fmt: skip
