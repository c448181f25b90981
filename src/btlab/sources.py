"""The dataset a request's `data` section names: a file, a stored dataset or the synthetic provider.

Above both the request (`btlab.config`) and the bars (`btlab.data`, which knows no request), so
neither has to import the other.
"""

from __future__ import annotations

from collections.abc import Callable

from .config import DataConfig, FileData, FileListData, StoredData
from .data import Dataset, adjust, declare, load_csv, load_parquet
from .errors import DataError
from .synthetic_data import generate

__all__ = ["load"]


def load(spec: DataConfig, *, resolve_stored: Callable[[str], Dataset] | None = None) -> Dataset:
    """The dataset a request's `data` section names (adjusted where it asks); a portfolio's
    (several files, a folder, a long file, `symbols` > 1) is `btlab.portfolio.load_portfolio`'s."""
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
        dataset = generate(spec)
    return adjust(dataset) if spec.adjust else dataset
