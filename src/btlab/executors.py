"""Where a many-part job's batches run: in this process, or on a Dask distributed cluster.

A job (a sweep's combinations, the permuted paths of a permutation test) is split into batches
that are independent of each other; `BatchExecutor.run` calls `fn(shared, batch)` for each and
hands every result back by its batch's index, so the caller assembles them in order and the
outcome cannot depend on how many workers there are or in which order batches finish (SPEC §11).

`LocalExecutor` runs the batches one after the other here (each batch is itself parallel over
the machine's cores through the numba kernels). `DaskExecutor` ships `shared` to every worker
once (`Client.scatter(..., broadcast=True)`), then one task per batch; a batch whose worker dies
is run again by the scheduler, and a task that raises is retried `retries` times before the job
fails. Workers only compute: results come back to this process, which alone writes artifacts
and the store (SQLite's WAL does not work on network file systems).

`executor_from_env()` picks the executor from `BTLAB_CLUSTER` (a scheduler address such as
`tcp://10.0.0.5:8786`; unset: local). `distributed` is the optional extra `btlab[cluster]`.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Sequence
from typing import Any, Protocol, TypeVar

from .errors import ConfigError, RunCancelled, RunError

__all__ = [
    "CLUSTER_ENV",
    "BatchExecutor",
    "DaskExecutor",
    "LocalExecutor",
    "executor_from_env",
]

#: The environment variable naming the scheduler of the cluster to run batches on.
CLUSTER_ENV = "BTLAB_CLUSTER"

S = TypeVar("S")
B = TypeVar("B")
R = TypeVar("R")

#: Called with (batch index, its result) as each batch completes.
OnResult = Callable[[int, Any], None]


class BatchExecutor(Protocol):
    """Runs independent batches of one job and reports each result by its batch's index."""

    #: How many batches can run at once (1 here; a cluster's worker threads).
    @property
    def parallelism(self) -> int: ...

    def run(
        self,
        fn: Callable[[S, B], R],
        shared: S,
        batches: Sequence[B],
        on_result: OnResult,
        should_cancel: Callable[[], bool] | None = None,
    ) -> None: ...


class LocalExecutor:
    """Every batch in this process, in order."""

    parallelism = 1

    def run(
        self,
        fn: Callable[[S, B], R],
        shared: S,
        batches: Sequence[B],
        on_result: OnResult,
        should_cancel: Callable[[], bool] | None = None,
    ) -> None:
        for index, batch in enumerate(batches):
            if should_cancel is not None and should_cancel():
                raise RunCancelled("cancelled between batches")
            on_result(index, fn(shared, batch))


_job_numbers = itertools.count()


class DaskExecutor:
    """Batches as tasks of a Dask distributed cluster (`btlab[cluster]`)."""

    def __init__(self, address: str | Any, *, retries: int = 2, timeout: float = 30.0) -> None:
        """`address`: a scheduler address, or a `distributed.Client` to use as it is."""
        try:
            from distributed import Client
        except ImportError:
            raise ConfigError(
                "no cluster engine",
                [(CLUSTER_ENV, "running on a cluster needs Dask distributed: "
                  "pip install 'btlab[cluster]'")],
            ) from None  # fmt: skip
        if isinstance(address, Client):
            self.client = address
            self._owned = False
        else:
            try:
                self.client = Client(address, timeout=timeout)
            except OSError as exc:
                raise RunError(f"cannot reach the cluster scheduler at {address}: {exc}") from None
            self._owned = True
        self.retries = retries

    @property
    def parallelism(self) -> int:
        threads: dict[str, int] = self.client.nthreads()
        return max(1, sum(threads.values()))

    def run(
        self,
        fn: Callable[[S, B], R],
        shared: S,
        batches: Sequence[B],
        on_result: OnResult,
        should_cancel: Callable[[], bool] | None = None,
    ) -> None:
        from distributed import as_completed

        if not batches:
            return
        job = f"btlab-{os.getpid()}-{next(_job_numbers)}"
        # the shared inputs go to every worker once; each task names them by their future
        [shared_future] = self.client.scatter([shared], broadcast=True, hash=False)
        futures = [
            self.client.submit(
                fn, shared_future, batch, key=f"{job}-{i}", retries=self.retries, pure=False
            )
            for i, batch in enumerate(batches)
        ]
        index = {future.key: i for i, future in enumerate(futures)}
        try:
            for future in as_completed(futures):
                if should_cancel is not None and should_cancel():
                    raise RunCancelled("cancelled between batches")
                on_result(index[future.key], future.result())
        finally:
            self.client.cancel([*futures, shared_future])

    def close(self) -> None:
        if self._owned:
            self.client.close()


_connected: dict[str, DaskExecutor] = {}


def executor_from_env(environ: dict[str, str] | None = None) -> BatchExecutor:
    """`DaskExecutor` on the scheduler `BTLAB_CLUSTER` names (one connection per address for
    the life of the process), else a `LocalExecutor`."""
    address = (environ if environ is not None else dict(os.environ)).get(CLUSTER_ENV, "").strip()
    if not address:
        return LocalExecutor()
    if address not in _connected:
        _connected[address] = DaskExecutor(address)
    return _connected[address]
