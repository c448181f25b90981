"""Suite-wide settings. With NUMBA_DISABLE_JIT=1 (the coverage run of the kernels, .ci/run) the
kernels run as plain Python on NumPy scalars, and NumPy reports what compiled code does
silently: uint64 arithmetic wraps (SplitMix64 relies on it), and under the kernels'
`error_model="numpy"` a float division by zero gives inf or nan without a word. Those floating-
point reports are ignored there, raised in the kernels' modules only; anything else (and any
report from the core or the tests) still fails the test. Hypothesis runs derandomized there
(the `nojit` profile), so the coverage the run gates on is the same on every run.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numba
import pytest
from hypothesis import settings

settings.register_profile("nojit", derandomize=True)


def pytest_configure(config: pytest.Config) -> None:
    if numba.config.DISABLE_JIT:
        settings.load_profile("nojit")
        config.addinivalue_line(
            "filterwarnings",
            r"ignore:(overflow|invalid value|divide by zero) encountered:RuntimeWarning:btlab\.kernels\.",
        )


@pytest.fixture(scope="session")
def local_cluster() -> Iterator[Any]:
    """A real local Dask cluster of two single-threaded worker processes (SPEC §11's tests),
    shared by the whole session; skipped where the cluster extra is not installed."""
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0",
        silence_logs=50,
    ) as cluster:  # fmt: skip
        yield cluster
