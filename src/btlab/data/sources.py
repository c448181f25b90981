"""Changes to a loaded dataset: adjustment by adj_close and array replacement. (The dataset a
request names is loaded by `btlab.sources`, above the request.)"""

from __future__ import annotations

import dataclasses
from typing import Any

from ..errors import DataError
from .meta import Dataset, dataset_hash


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
    content = dataset_hash(
        dataset.ts, open_, high, low, close, dataset.volume, dataset.adj_close, dataset.extra
    )
    meta = dataset.meta.model_copy(update={"id": content, "adjusted": True})
    return Dataset(
        dataset.ts, open_, high, low, close, dataset.volume, dataset.adj_close, meta, dataset.extra
    )


def replace(dataset: Dataset, **changes: Any) -> Dataset:
    """A copy of `dataset` with some arrays replaced (metadata kept; the hash follows the content)."""
    return dataclasses.replace(dataset, **changes)
