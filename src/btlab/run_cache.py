"""The warm cache of a process: datasets and shifted features shared across runs (the
service's warm path), each bounded by a count and by bytes.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, MutableMapping
from typing import Any, Generic, TypeVar

import numpy as np

from .data import Dataset

__all__ = ["CACHE_BYTES", "LRU", "RunCache"]

K = TypeVar("K")
V = TypeVar("V")


class LRU(MutableMapping[K, V], Generic[K, V]):
    """A small thread-safe least-recently-used mapping, bounded by count and, with `weigh`, by
    the total weight (bytes) of its values; the newest value is kept even when alone too heavy."""

    def __init__(
        self, maxsize: int, max_weight: int | None = None, weigh: Callable[[V], int] | None = None
    ) -> None:
        self.maxsize = maxsize
        self.max_weight = max_weight
        self._weigh = weigh
        self._data: OrderedDict[K, V] = OrderedDict()
        self._weights: dict[K, int] = {}
        self._lock = threading.Lock()

    @property
    def weight(self) -> int:
        return sum(self._weights.values())

    def __getitem__(self, key: K) -> V:
        with self._lock:
            value = self._data[key]
            self._data.move_to_end(key)
            return value

    def __setitem__(self, key: K, value: V) -> None:
        with self._lock:
            self._data[key] = value
            self._data.move_to_end(key)
            if self._weigh is not None:
                self._weights[key] = self._weigh(value)
            while len(self._data) > self.maxsize or (
                self.max_weight is not None
                and len(self._data) > 1
                and sum(self._weights.values()) > self.max_weight
            ):
                old, _ = self._data.popitem(last=False)
                self._weights.pop(old, None)

    def __delitem__(self, key: K) -> None:
        with self._lock:
            del self._data[key]
            self._weights.pop(key, None)

    def __iter__(self) -> Any:
        with self._lock:
            return iter(list(self._data))

    def __len__(self) -> int:
        return len(self._data)


def _dataset_bytes(dataset: Dataset) -> int:
    arrays = (dataset.ts, dataset.open, dataset.high, dataset.low, dataset.close, dataset.volume)
    adj = dataset.adj_close.nbytes if dataset.adj_close is not None else 0
    return sum(a.nbytes for a in arrays) + adj + sum(a.nbytes for a in dataset.extra.values())


#: What the warm cache of a process may hold: datasets and shifted features are kept between
#: runs, so without a byte bound a few large runs would pin gigabytes for good.
CACHE_BYTES = 512 << 20


class RunCache:
    """Datasets and shifted features shared across runs of one process (the service's warm path),
    each kind bounded by a count and by `max_bytes` of arrays."""

    def __init__(
        self, max_datasets: int = 8, max_features: int = 256, max_bytes: int = CACHE_BYTES
    ) -> None:
        self.datasets: LRU[str, Dataset] = LRU(max_datasets, max_bytes, _dataset_bytes)
        self.features: LRU[str, np.ndarray] = LRU(max_features, max_bytes, lambda a: a.nbytes)
