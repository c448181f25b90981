"""Direct twin comparisons for kernels that other tests only reach through a bigger kernel.

`equity_stats_nb` (kernels/metrics.py) was compared with numpy on four of its six outputs; here
all six, the drawdown duration and the return count included, against tests/reference/metrics.py.
The building blocks of kernels/stats.py (SplitMix64 steps, geometric block lengths, circular block
sums, one stationary-bootstrap resample's sums, Sharpe from sums) are checked one by one against
tests/reference/stats.py, so a failure names the piece rather than the whole bootstrap or CSCV.
"""

from __future__ import annotations

import math

import numpy as np
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from btlab.kernels.metrics import equity_stats_nb
from btlab.kernels.stats import (
    bootstrap_resample_sums_nb,
    circular_block_sum_nb,
    geometric_length_nb,
    sharpe_from_sums_nb,
    splitmix64_nb,
)
from tests.reference import metrics as ref_metrics
from tests.reference import stats as ref_stats

U64 = st.integers(0, 2**64 - 1)
# hypothesis favours small and boundary integers; draws that matter for inversion are uniform
UNIFORM_U64 = st.integers(0, 2**32 - 1).map(
    lambda seed: int(np.random.default_rng(seed).integers(0, 2**64, dtype=np.uint64))
)


@st.composite
def equity_paths(draw: st.DrawFn) -> np.ndarray:
    """Positive equity paths: random, or with flat stretches and exact returns to the peak."""
    n = draw(st.integers(0, 300))
    if draw(st.booleans()):
        return draw(arrays(np.float64, n, elements=st.floats(1.0, 1e6)))
    levels = np.array(
        draw(st.lists(st.sampled_from([90.0, 95.0, 100.0, 105.0]), min_size=n, max_size=n))
    )
    return np.ascontiguousarray(levels, dtype=np.float64)


@settings(max_examples=200, deadline=None)
@given(equity=equity_paths())
def test_equity_stats_matches_twin(equity: np.ndarray) -> None:
    got = equity_stats_nb(equity)
    want = ref_metrics.equity_stats(equity.tolist())
    assert int(got[0]) == want[0] and int(got[5]) == want[5]
    # Welford against two-pass fsum: 1e-9 relative (stated in the kernel: ~1e-15 of numpy's),
    # with an absolute floor for a mean or std that is 0 up to rounding
    np.testing.assert_allclose(got[1:5], want[1:5], rtol=1e-9, atol=1e-15, equal_nan=True)


@settings(max_examples=200, deadline=None)
@given(state=U64)
def test_splitmix64_step_matches_twin(state: int) -> None:
    nxt, out = splitmix64_nb(np.uint64(state))
    assert (int(nxt), int(out)) == ref_stats.splitmix64(state)


@settings(max_examples=300, deadline=None)
@given(
    x=st.one_of(U64, UNIFORM_U64),
    p=st.sampled_from([1.0, 0.5, 0.1, 1 / 7, 0.01, 1e-4]),
    remaining=st.one_of(st.integers(1, 8), st.integers(1, 500)),
)
def test_geometric_length_matches_twin(x: int, p: float, remaining: int) -> None:
    log_q = 0.0 if p >= 1.0 else math.log1p(-p)
    got = geometric_length_nb(np.uint64(x), log_q, remaining)
    assert got == min(ref_stats.geometric_length(x, p), remaining)
    assert 1 <= got <= remaining


@settings(max_examples=200, deadline=None)
@given(
    values=arrays(np.float64, st.integers(1, 60), elements=st.floats(-1e3, 1e3)),
    data=st.data(),
)
def test_circular_block_sum_matches_a_plain_sum(values: np.ndarray, data: st.DataObject) -> None:
    n = values.shape[0]
    start = data.draw(st.integers(0, n - 1))
    length = data.draw(st.integers(1, n))
    prefix = np.concatenate([[0.0], np.cumsum(values)])
    want = math.fsum(float(values[(start + j) % n]) for j in range(length))
    got = circular_block_sum_nb(prefix, start, length)
    assert abs(got - want) <= 1e-12 * (1.0 + float(np.sum(np.abs(values))))


@settings(max_examples=100, deadline=None)
@given(
    values=arrays(np.float64, st.integers(2, 80), elements=st.floats(-0.1, 0.1)),
    key=U64,
    mean_block_length=st.sampled_from([1.0, 2.5, 10.0, 100.0]),
)
def test_one_resample_sums_match_the_built_resample(
    values: np.ndarray, key: int, mean_block_length: float
) -> None:
    p = 1.0 / mean_block_length
    log_q = 0.0 if p >= 1.0 else math.log1p(-p)
    prefix = np.concatenate([[0.0], np.cumsum(values)])
    prefix_sq = np.concatenate([[0.0], np.cumsum(values * values)])
    s1, s2 = bootstrap_resample_sums_nb(prefix, prefix_sq, np.uint64(key), log_q)
    idx = ref_stats.stationary_bootstrap_indices(values.shape[0], key, mean_block_length)
    scale = 1.0 + float(np.sum(np.abs(values)))
    assert abs(s1 - math.fsum(float(values[i]) for i in idx)) <= 1e-12 * scale
    assert abs(s2 - math.fsum(float(values[i]) ** 2 for i in idx)) <= 1e-12 * scale


@settings(max_examples=200, deadline=None)
@given(
    values=arrays(np.float64, st.integers(2, 60), elements=st.floats(-0.05, 0.05)),
    offset=st.sampled_from(["zero", "mean", "first", "far"]),
    flat=st.booleans(),
)
def test_sharpe_from_sums_matches_twin(values: np.ndarray, offset: str, flat: bool) -> None:
    """mean / std(ddof=1) from sums centred by any offset; all-equal values give 0 or +/-inf."""
    if flat:
        values = np.full(values.shape[0], values[0])
        offset = "first"  # centred exactly: the variance is exactly 0
    n = values.shape[0]
    c = {"zero": 0.0, "mean": float(np.mean(values)), "first": float(values[0]), "far": 0.3}[offset]
    centred = values - c
    s2 = math.fsum((centred * centred).tolist())
    got = sharpe_from_sums_nb(
        math.fsum(values.tolist()), math.fsum(centred.tolist()), s2, float(n), 0.0
    )
    if flat:
        assert got == ref_stats.sample_sharpe(values.tolist(), "sign")
        return
    exact_ss = math.fsum(((values - math.fsum(values.tolist()) / n) ** 2).tolist())
    # the sums lose the digits the offset costs: keep to cases where that leaves > 9 of them
    # (and away from spreads whose squares underflow)
    assume(exact_ss > 1e-6 * s2 and exact_ss > 1e-30)
    want = ref_stats.sample_sharpe(values.tolist(), "sign")
    assert abs(got - want) <= 1e-9 * abs(want) + 1e-12
