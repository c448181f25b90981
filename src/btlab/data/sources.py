"""Sources: the dataset a request names (`load`), adjustment, and the synthetic provider's entry."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import DataError
from ..timeframes import Calendar
from .files import load_csv, load_parquet
from .frames import declare
from .meta import Dataset, dataset_hash

if TYPE_CHECKING:
    from ..config import DataConfig, SyntheticData


def adjust(dataset: Dataset) -> Dataset:
    """OHLC scaled by adj_close/close (volume unchanged); a DataError where there is no adj_close."""
    if dataset.adj_close is None:
        raise DataError(
            "adjust_without_adj_close",
            f"adjust: true needs an adj_close column, and dataset {dataset.meta.symbol!r} has none",
        )
    if dataset.meta.adjusted:
        return dataset
    factor = dataset.adj_close / dataset.close
    open_, high, low = dataset.open * factor, dataset.high * factor, dataset.low * factor
    close = dataset.adj_close.copy()
    content = dataset_hash(dataset.ts, open_, high, low, close, dataset.volume, dataset.adj_close)
    meta = dataset.meta.model_copy(update={"id": content, "adjusted": True})
    return Dataset(dataset.ts, open_, high, low, close, dataset.volume, dataset.adj_close, meta)


def load(spec: DataConfig, *, resolve_stored: Callable[[str], Dataset] | None = None) -> Dataset:
    """The dataset a request's `data` section names (adjusted where it asks)."""
    from ..config import FileData, FileListData, StoredData

    if isinstance(spec, FileListData):
        raise DataError(
            "portfolio_spec",
            f"data.paths lists {len(spec.paths)} files: a portfolio, not one dataset; load it "
            "with btlab.portfolio.load_portfolio",
        )
    if isinstance(spec, FileData):
        reader = load_csv if spec.source == "csv" else load_parquet
        dataset = reader(
            spec.path, symbol=spec.symbol, timeframe=spec.timeframe, calendar=spec.calendar
        )
    elif isinstance(spec, StoredData):
        if resolve_stored is None:
            raise DataError(
                "no_store",
                "stored datasets (data.source = 'dataset') need the btlab service or a Store; "
                "load the file with source 'csv' or 'parquet' instead",
            )
        dataset = declare(resolve_stored(spec.id), timeframe=spec.timeframe, calendar=spec.calendar)
    else:
        dataset = synthetic(spec)
    return adjust(dataset) if spec.adjust else dataset


# ---------------------------------------------------------------------------------------------
# The synthetic provider (in synthetic_data.py)


def synthetic(spec: SyntheticData | None = None, **overrides: Any) -> Dataset:
    """The embedded default dataset: seeded, deterministic, no file needed (see `synthetic_data`)."""
    from ..synthetic_data import generate

    return generate(spec, **overrides)


def synthetic_timestamps(start: datetime, n: int, timeframe: str, calendar: Calendar) -> np.ndarray:
    """`n` bar timestamps (int64 ns, UTC) of the synthetic provider (see `synthetic_data`)."""
    from ..synthetic_data import timestamps

    return timestamps(start, n, timeframe, calendar)


def replace(dataset: Dataset, **changes: Any) -> Dataset:
    """A copy of `dataset` with some arrays replaced (metadata kept; the hash follows the content)."""
    return dataclasses.replace(dataset, **changes)
