"""`kernels.atomics.fetch_add_nb`: every item of a shared counter taken once, by any thread."""

from __future__ import annotations

import numba
import numpy as np

from btlab.kernels.atomics import fetch_add_nb


@numba.njit(parallel=True, cache=False)
def _take_all(counter: np.ndarray, taken_by: np.ndarray, seen: np.ndarray, chunks: int) -> None:
    counter[0] = 0
    for t in numba.prange(chunks):
        while True:
            c = fetch_add_nb(counter, 0, 1)
            if c >= seen.shape[0]:
                break
            seen[c] += 1
            taken_by[c] = t
            acc = 0.0  # some work, so the chunks overlap in time
            for i in range(200 + (c % 7) * 300):
                acc += i * 1e-9
            seen[c] += acc < 0.0


def test_each_item_is_taken_exactly_once_across_threads() -> None:
    n, chunks = 20_000, 4
    counter = np.zeros(1, dtype=np.int64)
    for _ in range(3):
        seen = np.zeros(n, dtype=np.int64)
        taken_by = np.full(n, -1, dtype=np.int64)
        _take_all(counter, taken_by, seen, chunks)
        assert np.all(seen == 1)
        assert counter[0] == n + chunks  # each chunk's last call finds nothing left
        assert set(np.unique(taken_by)) <= set(range(chunks))
    if numba.get_num_threads() > 1 and not numba.config.DISABLE_JIT:
        assert len(np.unique(taken_by)) > 1  # the threads shared the items
