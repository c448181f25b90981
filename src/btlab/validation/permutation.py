"""The Monte Carlo permutation test: a strategy's statistic on price paths whose bars are
reordered, against its value on the real path."""

from __future__ import annotations

import math
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol

import numpy as np

from ..executors import BatchExecutor, LocalExecutor
from ..kernels.stats import rebuild_ohlc_nb, shuffle_into_nb
from .inputs import finite_returns, seeded_generator
from .joint_permutation import JointPermutationBase

Statistic = Callable[[np.ndarray, np.ndarray, np.ndarray, np.ndarray], float]
#: `(base, keys) -> values`: the statistic of every path `base.permute_key(k)` for k in `keys`,
#: equal to `Statistic` on each path (e.g. one fused parallel kernel for the whole batch).
BatchStatistic = Callable[["PermutationBase", np.ndarray], np.ndarray]
Progress = Callable[[int, int], None]


class PathStatistics(Protocol):
    """A picklable recipe of a run's permutation statistic, built where the paths are run (a
    cluster's worker): the statistic, and its fused batch form where one exists."""

    def statistic(self) -> Statistic: ...

    def batch(self) -> BatchStatistic | None: ...


class PermutationJob:
    """What a worker needs for its batches of permutation keys: the recipe and the split path.
    The statistic is built on the worker's first batch and kept for the job (it does not
    travel: it holds per-thread buffers)."""

    def __init__(self, recipe: PathStatistics, base: PermutationBase | JointPermutationBase):
        self.recipe, self.base = recipe, base
        self._built: tuple[Statistic, BatchStatistic | None] | None = None

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_built": None}

    def values(self, keys: np.ndarray) -> np.ndarray:
        """The statistic on the path of each key, in order."""
        if self._built is None:
            single = isinstance(self.base, PermutationBase)
            self._built = (self.recipe.statistic(), self.recipe.batch() if single else None)
        statistic, batch = self._built
        if batch is not None:
            assert isinstance(self.base, PermutationBase)
            return batch(self.base, keys)
        out = np.empty(keys.shape[0])
        buffers = self.base.buffers()
        for i, key in enumerate(keys):
            out[i] = statistic(*self.base.permute_key(key, out=buffers))
        return out


def permutation_values(job: PermutationJob, keys: np.ndarray) -> np.ndarray:
    """One batch of a permutation test on a cluster's worker (`PermutationJob.values`)."""
    return job.values(keys)


class PermutationBase:
    """A price path split once into what a permutation shuffles: close log returns and bar shapes.

    Bar j (j >= 1) is the close-to-close log return log(c[j]/c[j-1]) plus its shape
    log(o/c), log(h/c), log(l/c), held as ratios in row j - 1 of `bars`. A permutation
    reorders bars 1..n-1 as whole units (each bar keeps its own shape, so its gap to the
    previous close and its range travel with it) and leaves bar 0 unchanged.
    """

    def __init__(
        self, open: np.ndarray, high: np.ndarray, low: np.ndarray, close: np.ndarray
    ) -> None:
        o, h, lo, c = (
            finite_returns(a, name)
            for a, name in ((open, "open"), (high, "high"), (low, "low"), (close, "close"))
        )
        if not o.shape == h.shape == lo.shape == c.shape:
            raise ValueError(
                f"open, high, low and close must have the same length, got {o.size}, {h.size}, {lo.size}, {c.size}"
            )
        if c.size < 2:
            raise ValueError(f"a price path needs at least 2 bars to permute, got {c.size}")
        if np.any(o <= 0) or np.any(h <= 0) or np.any(lo <= 0) or np.any(c <= 0):
            raise ValueError("open, high, low and close must be > 0 to take log returns")
        self.n = c.size
        self.first = np.array([o[0], h[0], lo[0], c[0]])
        # one row per bar 1..n-1: close-to-close ratio, open/close, high/close, low/close
        self.bars = np.empty((self.n - 1, 4))
        np.divide(c[1:], c[:-1], out=self.bars[:, 0])
        for k, a in enumerate((o, h, lo), 1):
            np.divide(a[1:], c[1:], out=self.bars[:, k])

    def buffers(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Arrays `permute_key` may fill instead of allocating: the order, open, high, low, close."""
        n = self.n
        return np.empty(n - 1, np.int64), np.empty(n), np.empty(n), np.empty(n), np.empty(n)

    def permute_key(
        self, key: int | np.uint64, out: tuple[np.ndarray, ...] | None = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """The permuted path (open, high, low, close) of one 64-bit key, as read-only arrays:
        new ones, or the last four of `out` (from `buffers()`) overwritten."""
        order, o, h, lo, c = self.buffers() if out is None else out
        shuffle_into_nb(order, np.uint64(key))
        for a in (o, h, lo, c):
            a.flags.writeable = True
        rebuild_ohlc_nb(self.first, self.bars, order, o, h, lo, c)
        for a in (o, h, lo, c):
            a.flags.writeable = False
        return o, h, lo, c

    def permute(
        self, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """One permuted path (open, high, low, close) from one key drawn from `rng`."""
        return self.permute_key(permutation_keys(rng, 1)[0])


def permutation_keys(rng: np.random.Generator, n_permutations: int) -> np.ndarray:
    """The per-permutation shuffle keys, drawn in one call from the permutation module's generator."""
    return rng.integers(
        0, np.iinfo(np.uint64).max, size=n_permutations, dtype=np.uint64, endpoint=True
    )


def permute_ohlc(
    open: np.ndarray, high: np.ndarray, low: np.ndarray, close: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A permutation of the price path: bars 1..n-1 reordered whole (see `PermutationBase`)."""
    return PermutationBase(open, high, low, close).permute(rng)


def default_workers() -> int:
    """Threads for the permutation test: the machine's cores (kernels release the GIL), at most 8."""
    return max(1, min(8, os.cpu_count() or 1))


def permutation_test(
    statistic: Statistic,
    open: np.ndarray,
    high: np.ndarray,
    low: np.ndarray,
    close: np.ndarray,
    *,
    n_permutations: int,
    seed: int | np.random.Generator,
    real_value: float | None = None,
    on_progress: Progress | None = None,
    workers: int | None = None,
    batch_statistic: BatchStatistic | None = None,
    executor: BatchExecutor | None = None,
    recipe: PathStatistics | None = None,
) -> dict[str, Any]:
    """Monte Carlo permutation test: p = (1 + #{perm >= real}) / (n + 1).

    `statistic(o, h, l, c)` re-runs features, strategy and kernel on a path and returns e.g. its
    Sharpe; for a portfolio, (n, K) arrays with NaN where a symbol has no bar, the paths
    permuted jointly (`JointPermutationBase`). `real_value` is the statistic on the real path (computed when None). `seed` is the
    root seed (draws come from `rng_for(seed, "permutation")`) or a Generator. A permutation
    whose statistic is NaN counts as not >= real (`n_nan` reports how many); a NaN real value
    gives a NaN p-value. A portfolio's result also says how many of its bars after the first
    the joint permutation can move (`bars_permutable` of `bars_after_first`). `on_progress(done, total)` is called as permutations complete.
    Permutation i is shuffled by key i of `permutation_keys`; `workers` threads (default: the
    cores) run them, and `statistic` must be thread-safe (btlab's kernels release the GIL).
    The arrays `statistic` receives are read-only and are overwritten by the same thread's
    next permutation: copy anything kept beyond the call. With `batch_statistic` (which must
    equal `statistic` path by path) the permutations run in batches of `4 * workers` keys,
    one call each (it parallelizes itself), and progress is reported after each batch.
    With a cluster `executor` (not a `LocalExecutor`) and the statistic's picklable `recipe`,
    the keys go to its workers in about four batches per worker thread (`PermutationJob`); the
    values land by key index, so the result is the one computed here.
    """
    if n_permutations < 1:
        raise ValueError(f"n_permutations must be >= 1, got {n_permutations}")
    # (n, K) paths of a portfolio: one joint permutation of the clock's bars (SPEC §8)
    base: PermutationBase | JointPermutationBase = (
        JointPermutationBase(open, high, low, close)
        if np.ndim(close) == 2
        else PermutationBase(open, high, low, close)
    )
    rng = seeded_generator(seed, "permutation")
    real = (
        float(statistic(*(np.asarray(a, dtype=np.float64) for a in (open, high, low, close))))
        if real_value is None
        else float(real_value)
    )
    keys = permutation_keys(rng, n_permutations)
    null = np.empty(n_permutations)
    local = threading.local()

    def one(key: np.uint64) -> float:
        buffers = getattr(local, "buffers", None)
        if buffers is None:  # one set of path arrays per thread, reused: no allocation per path
            buffers = local.buffers = base.buffers()
        return float(statistic(*base.permute_key(key, out=buffers)))

    # Each permutation depends only on its key, so threads change the speed, never the result.
    n_workers = default_workers() if workers is None else max(1, workers)
    if executor is not None and recipe is not None and not isinstance(executor, LocalExecutor):
        parts = max(1, min(n_permutations, 4 * executor.parallelism))
        batches = [b for b in np.array_split(keys, parts) if b.size]
        starts = np.cumsum([0] + [b.size for b in batches[:-1]])
        done = [0]

        def on_result(index: int, values: np.ndarray) -> None:
            start = int(starts[index])
            null[start : start + values.shape[0]] = values
            done[0] += values.shape[0]
            if on_progress is not None:
                on_progress(done[0], n_permutations)

        executor.run(permutation_values, PermutationJob(recipe, base), batches, on_result)
    elif (
        batch_statistic is not None
    ):  # batches as the threaded path's: same progress, same cancel points
        size = 4 * n_workers
        for start in range(0, n_permutations, size):
            stop = min(n_permutations, start + size)
            if not isinstance(base, PermutationBase):
                raise ValueError("a batch statistic runs on one symbol's path, not a portfolio's")
            null[start:stop] = batch_statistic(base, keys[start:stop])
            if on_progress is not None:
                for i in range(start, stop):
                    on_progress(i + 1, n_permutations)
    elif n_workers == 1:
        for i in range(n_permutations):
            null[i] = one(keys[i])
            if on_progress is not None:
                on_progress(i + 1, n_permutations)
    else:
        batch = 4 * n_workers  # bounded memory: a few paths in flight per thread
        with ThreadPoolExecutor(n_workers, thread_name_prefix="btlab-perm") as pool:
            for start in range(0, n_permutations, batch):
                stop = min(n_permutations, start + batch)
                for i, value in enumerate(pool.map(one, keys[start:stop]), start):
                    null[i] = value
                    if on_progress is not None:
                        on_progress(i + 1, n_permutations)
    finite = null[np.isfinite(null)]
    n_ge = int(np.sum(null >= real)) if math.isfinite(real) else 0
    q = np.quantile(finite, [0.05, 0.5, 0.95]) if finite.size else np.full(3, math.nan)
    joint = (
        {"bars_permutable": base.movable, "bars_after_first": base.n - 1}
        if isinstance(base, JointPermutationBase)
        else {}
    )
    return {
        "p_value": (1.0 + n_ge) / (n_permutations + 1.0) if math.isfinite(real) else math.nan,
        "real": real,
        "n_permutations": n_permutations,
        "n_ge": n_ge,
        "n_nan": int(n_permutations - finite.size),
        "null_mean": float(np.mean(finite)) if finite.size else math.nan,
        "null_std": float(np.std(finite, ddof=1)) if finite.size > 1 else math.nan,
        "null_quantiles": {"q05": float(q[0]), "q50": float(q[1]), "q95": float(q[2])},
        **joint,
    }
