"""The checked inputs of every statistic: a finite 1-D returns array, a root seed's generator."""

from __future__ import annotations

import numpy as np

from ..hashing import rng_for

__all__ = ["finite_returns", "seeded_generator"]


def finite_returns(returns: np.ndarray, name: str = "returns") -> np.ndarray:
    r = np.asarray(returns, dtype=np.float64)
    if r.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array, got shape {r.shape}")
    if not np.all(np.isfinite(r)):
        raise ValueError(
            f"{name} must be finite (first non-finite at index {int(np.argmin(np.isfinite(r)))})"
        )
    return r


def seeded_generator(seed: int | np.random.Generator, module: str) -> np.random.Generator:
    if isinstance(seed, np.random.Generator):
        return seed
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or int(seed) < 0:
        raise ValueError(f"seed must be a non-negative integer root seed, got {seed!r}")
    return rng_for(int(seed), module)
