"""Shifted features of a portfolio on its union clock (SPEC §2, §8 "Causality").

Each feature of the registry (btlab.features) is computed on each symbol's OWN bars (an SMA
over the symbol's bars, never over clock bars with NaN) and then placed on the clock by
`kernels.clock.place_shifted_nb`: `value[i, k]` is the raw feature at symbol k's last own bar
strictly before clock bar i. So it is NaN up to and including the symbol's first bar, carried
forward through its gaps and after its last bar, and at the symbol's own bars it is exactly the
single-symbol registry's shift. `PortfolioFeatureStore.get` is the only way out, and hands out
(n, K) read-only arrays.

`Universe` is what a portfolio strategy knows of the clock besides its features: the symbols,
their own bars' clock indices and the (n, K) `tradable` mask (listed: first bar <= i <= last).
"""

from __future__ import annotations

from collections.abc import MutableMapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from .data.portfolio import PortfolioDataset
from .errors import ConfigError
from .features import cache_key, raw_feature
from .kernels.clock import place_shifted_nb

if TYPE_CHECKING:
    from .features import FeatureSpec

__all__ = ["PortfolioFeatureStore", "Universe"]


def _read_only(values: np.ndarray) -> np.ndarray:
    values.flags.writeable = False
    # a view of a read-only base cannot be made writeable again (as features.shift)
    view: np.ndarray = values.view()
    return view


@dataclass(frozen=True, eq=False)
class Universe:
    """The clock as a portfolio strategy sees it. `tradable[i, k]`: symbol k is listed at clock
    bar i (its first bar <= i <= its last bar); read-only (n, K) bool."""

    symbols: tuple[str, ...]
    positions: tuple[np.ndarray, ...]
    tradable: np.ndarray

    @property
    def n(self) -> int:
        return int(self.tradable.shape[0])

    @property
    def n_symbols(self) -> int:
        return len(self.symbols)

    @classmethod
    def of(cls, data: PortfolioDataset) -> Universe:
        n = len(data)
        clock = np.arange(n)[:, None]
        tradable = (clock >= data.first_bar[None, :]) & (clock <= data.last_bar[None, :])
        return cls(data.symbols, data.positions, _read_only(tradable))


class PortfolioFeatureStore:
    """Shifted (n, K) features of one portfolio, each distinct (name, params) computed once.

    As `btlab.features.FeatureStore`: `cache` (e.g. the service's LRU) shares results across
    stores and runs, keyed by the portfolio's hash (`data.hash`) with the feature key;
    `computed` counts the features this store computed (each over all K symbols).
    """

    def __init__(
        self, data: PortfolioDataset, cache: MutableMapping[str, np.ndarray] | None = None
    ) -> None:
        self.data = data
        self.n = len(data)
        self.n_symbols = data.n_symbols
        self.universe = Universe.of(data)
        self._shared = cache
        self._prefix = f"portfolio:{data.hash}|" if cache is not None else ""
        self._local: dict[str, np.ndarray] = {}
        self.computed = 0

    def get(self, spec: FeatureSpec) -> np.ndarray:
        """The feature of every symbol on the clock, shifted: (n, K) float64, read-only."""
        key = cache_key(spec)
        arr = self._local.get(key)
        if arr is not None:
            return arr
        if self._shared is not None:
            arr = self._shared.get(self._prefix + key)
            if arr is not None and arr.shape != (self.n, self.n_symbols):
                arr = None
        if arr is None:
            arr = self._compute(spec)
            self.computed += 1
            if self._shared is not None:
                self._shared[self._prefix + key] = arr
        self._local[key] = arr
        return arr

    def _compute(self, spec: FeatureSpec) -> np.ndarray:
        out = np.empty((self.n, self.n_symbols), dtype=np.float64)
        for k, symbol in enumerate(self.data.symbols):
            try:
                raw = raw_feature(self.data.members[symbol], spec)
            except ConfigError as exc:  # e.g. no adj_close: say which symbol lacks it
                named = ConfigError(f"symbol {symbol!r}: {exc}")
                named.errors = exc.errors
                raise named from None
            except ValueError as exc:
                raise ValueError(f"symbol {symbol!r}: {exc}") from None
            place_shifted_nb(raw, self.data.positions[k], k, out)
        return _read_only(out)
