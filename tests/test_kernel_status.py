"""The one status-to-error mapping and the one fill-buffer policy."""

from __future__ import annotations

import numpy as np
import pytest

from btlab.errors import RunError
from btlab.kernel_status import raise_for_status
from btlab.kernels import Status
from btlab.kernels.execution import fill_capacity, first_fill_capacity, with_fill_retry


def test_ok_codes_pass_and_a_bad_one_names_its_meaning_and_item() -> None:
    raise_for_status(Status.OK, "in the simulation")
    raise_for_status(np.zeros(4, np.int64), "in the sweep", "combination")
    with pytest.raises(RunError, match=r"in the simulation: array lengths disagree \(status 2\)"):
        raise_for_status(Status.BAD_INPUT, "in the simulation")
    codes = np.array([0.0, 0.0, Status.FILLS_FULL, Status.BAD_INPUT])  # the sweep's float rows
    with pytest.raises(RunError, match=r"in the sweep \(combination 2\): the fill buffer ran out"):
        raise_for_status(codes, "in the sweep", "combination")
    with pytest.raises(RunError, match="unknown status 9"):
        raise_for_status(9, "on a permuted path")


@pytest.mark.parametrize("n", [10, 5_000, 100_000])
def test_the_fill_policy_retries_once_with_the_bound(n: int) -> None:
    seen: list[int] = []

    def run(capacity: int) -> int:
        seen.append(capacity)
        return int(Status.FILLS_FULL) if capacity < fill_capacity(n) else int(Status.OK)

    assert with_fill_retry(n, run) == Status.OK
    first = first_fill_capacity(n)
    assert seen == ([first] if first == fill_capacity(n) else [first, fill_capacity(n)])
    assert first == min(3 * n + 2, max(1024, n // 8))
    seen.clear()
    assert with_fill_retry(n, lambda c: seen.append(c) or Status.OK) == Status.OK
    assert seen == [first]  # no retry where the first buffer sufficed
    batch = np.array([Status.OK, Status.FILLS_FULL])
    calls: list[int] = []

    def run_batch(capacity: int) -> np.ndarray:
        calls.append(capacity)
        if len(calls) == 2:
            batch[1] = Status.OK
        return batch

    assert list(with_fill_retry(n, run_batch)) == [Status.OK, Status.OK]
    assert calls == [first, fill_capacity(n)]
