"""The signal kernels (kernels/signals.py) against their plain-Python twins and stated rules."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from btlab.kernels.signals import cross_target_nb, hold_state_nb
from tests.reference import signals as ref
from tests.strategies import bools


@st.composite
def four_signals(draw: st.DrawFn, max_size: int = 120) -> tuple[np.ndarray, ...]:
    n = draw(st.integers(0, max_size))
    return tuple(draw(bools(n)) for _ in range(4))


@settings(max_examples=300, deadline=None)
@given(signals=four_signals())
def test_hold_state_matches_twin(signals: tuple[np.ndarray, ...]) -> None:
    got = hold_state_nb(*signals)
    want = ref.hold_state(*(s.tolist() for s in signals))
    assert got.dtype == np.float64
    np.testing.assert_array_equal(got, want)


@settings(max_examples=100, deadline=None)
@given(signals=four_signals(), data=st.data())
def test_hold_state_prefix_property(signals: tuple[np.ndarray, ...], data: st.DataObject) -> None:
    """The state after bar i depends on the signals of bars 0..i only."""
    t = data.draw(st.integers(0, signals[0].shape[0]))
    full = hold_state_nb(*signals)
    part = hold_state_nb(*(np.ascontiguousarray(s[:t]) for s in signals))
    assert part.tobytes() == full[:t].tobytes()


@settings(max_examples=100, deadline=None)
@given(signals=four_signals())
def test_hold_state_without_short_entries_is_long_or_flat(signals: tuple[np.ndarray, ...]) -> None:
    el, xl, _, xs = signals
    never = np.zeros(el.shape[0], dtype=bool)
    out = hold_state_nb(el, xl, never, xs)
    assert set(np.unique(out)) <= {0.0, 1.0}
    # a long starts only on a bar where enter_long fires and exit_long does not
    starts = np.flatnonzero(np.diff(np.concatenate([[0.0], out])) > 0)
    assert el[starts].all() and not xl[starts].any()


T, F = True, False


@pytest.mark.parametrize(
    ("bars", "want"),
    [
        # enter long, hold through quiet bars, exit on exit_long
        ([(T, F, F, F), (F, F, F, F), (F, T, F, F), (F, F, F, F)], [1, 1, 0, 0]),
        # an exit and a re-entry of the same side on one bar leave the state flat
        ([(T, F, F, F), (T, T, F, F), (T, F, F, F)], [1, 0, 1]),
        # both entries on one bar: flat
        ([(T, F, T, F), (F, F, T, F)], [0, -1]),
        # enter_short flips a long to short on the same bar (when exit_short is quiet)
        ([(T, F, F, F), (F, F, T, F), (F, F, T, T)], [1, -1, 0]),
        # ... but enter_short with exit_short only closes the long
        ([(T, F, F, F), (F, F, T, T)], [1, 0]),
        # enter_long flips a short to long; exit_short alone closes it
        ([(F, F, T, F), (T, F, F, F), (F, F, T, F), (F, F, F, T)], [-1, 1, -1, 0]),
        # exit signals while flat do nothing
        ([(F, T, F, T), (F, F, F, F)], [0, 0]),
    ],
)
def test_hold_state_documented_rules(bars: list[tuple[bool, ...]], want: list[int]) -> None:
    cols = [np.array(c, dtype=bool) for c in zip(*bars, strict=True)]
    np.testing.assert_array_equal(hold_state_nb(*cols), np.array(want, dtype=np.float64))
    np.testing.assert_array_equal(ref.hold_state(*cols), np.array(want, dtype=np.float64))


@st.composite
def two_features(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray]:
    """Shifted-feature-like arrays: NaN warm-up, ties, infinities now and then."""
    n = draw(st.integers(0, 150))
    values = st.one_of(st.sampled_from([np.nan, np.inf, -np.inf, 1.0, 2.0]), st.floats(-1e6, 1e6))
    a = np.array(draw(st.lists(values, min_size=n, max_size=n)), dtype=np.float64)
    b = np.array(draw(st.lists(values, min_size=n, max_size=n)), dtype=np.float64)
    return a, b


@settings(max_examples=300, deadline=None)
@given(ab=two_features(), long_short=st.booleans())
def test_cross_target_matches_twin_and_numpy(
    ab: tuple[np.ndarray, np.ndarray], long_short: bool
) -> None:
    a, b = ab
    short = -0.5 if long_short else 0.0
    out = np.empty(a.size)
    cross_target_nb(a, b, 0.5, short, out)
    assert out.tolist() == ref.cross_target(a.tolist(), b.tolist(), 0.5, short)
    with np.errstate(invalid="ignore"):  # the vectorized form the strategies used to spell out
        want = np.where(a > b, 0.5, np.where(a < b, short, 0.0))
    want[~(np.isfinite(a) & np.isfinite(b))] = 0.0
    np.testing.assert_array_equal(out, want)
