"""The clock and cross-section kernels (kernels/clock.py, kernels/cross_section.py) against
their plain-Python twins (tests/reference/clock.py, tests/reference/cross_section.py) and the
rules their docstrings state."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from btlab.kernels.clock import place_decision_nb, place_shifted_nb
from btlab.kernels.cross_section import equal_weight_nb, inverse_vol_nb, rank_long_short_nb
from tests.reference import clock as ref_clock
from tests.reference import cross_section as ref_xs

SETTINGS = settings(max_examples=200, deadline=None)


@st.composite
def own_bars(draw: st.DrawFn) -> tuple[int, np.ndarray, np.ndarray]:
    """A clock length n, a symbol's own bars on it (sorted clock indices, any gaps, listing and
    delisting anywhere), and a raw series on those bars with NaN now and then."""
    n = draw(st.integers(1, 40))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    present = rng.random(n) < draw(st.sampled_from([0.3, 0.7, 1.0]))
    present[rng.integers(0, n)] = True  # a symbol has at least one bar
    positions = np.flatnonzero(present).astype(np.int64)
    raw = rng.normal(0.0, 1.0, positions.shape[0])
    raw[rng.random(positions.shape[0]) < 0.2] = np.nan
    return n, positions, raw


@SETTINGS
@given(bars=own_bars(), k_of=st.integers(1, 3), data=st.data())
def test_place_shifted_matches_twin(
    bars: tuple[int, np.ndarray, np.ndarray], k_of: int, data: st.DataObject
) -> None:
    n, positions, raw = bars
    k = data.draw(st.integers(0, k_of - 1))
    out = np.full((n, k_of), 7.0)
    place_shifted_nb(raw, positions, k, out)
    want = ref_clock.place_shifted(raw.tolist(), positions.tolist(), n)
    assert out[:, k].tobytes() == want.tobytes()
    others = np.delete(out, k, axis=1)
    assert (others == 7.0).all()  # only column k is written


@SETTINGS
@given(bars=own_bars())
def test_place_shifted_at_own_bars_is_the_registry_shift(
    bars: tuple[int, np.ndarray, np.ndarray],
) -> None:
    """At the symbol's own bars the placed value is the single-symbol shift raw[j - 1]."""
    from btlab.features import shift

    n, positions, raw = bars
    out = np.empty((n, 1))
    place_shifted_nb(raw, positions, 0, out)
    assert out[positions, 0].tobytes() == shift(raw).tobytes()
    assert np.isnan(out[: positions[0] + 1, 0]).all()


@SETTINGS
@given(bars=own_bars(), weight=st.sampled_from([1.0, 0.25, -0.5, 0.0]))
def test_place_decision_matches_twin(
    bars: tuple[int, np.ndarray, np.ndarray], weight: float
) -> None:
    n, positions, raw = bars
    own_target = np.nan_to_num(raw)
    out = np.full((n, 2), 7.0)
    place_decision_nb(own_target, positions, 1, weight, out)
    want = ref_clock.place_decision(own_target.tolist(), positions.tolist(), n, weight)
    assert out[:, 1].tobytes() == want.tobytes()
    assert (out[:, 0] == 7.0).all()
    assert out[positions, 1].tobytes() == (weight * own_target).tobytes()


@st.composite
def rows(draw: st.DrawFn, ties: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(n, K) values (NaN, zero and negative now and then; few distinct levels when `ties`)
    and a tradable mask."""
    n = draw(st.integers(0, 30))
    k = draw(st.integers(1, 24))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    if ties:
        values = rng.choice(np.array([-0.1, 0.0, -0.0, 0.05, 0.2]), (n, k))
    else:
        values = rng.lognormal(-4.0, 1.0, (n, k))
        values[rng.random((n, k)) < 0.05] = 0.0
    values[rng.random((n, k)) < 0.15] = np.nan
    tradable = rng.random((n, k)) < draw(st.sampled_from([0.5, 0.9, 1.0]))
    return values, tradable


GROSS = st.sampled_from([1.0, 0.5, 2.0, 1.3])


@SETTINGS
@given(inputs=rows(), gross=GROSS)
def test_equal_weight_matches_twin(inputs: tuple[np.ndarray, np.ndarray], gross: float) -> None:
    _, tradable = inputs
    out = np.full(tradable.shape, 7.0)
    equal_weight_nb(tradable, gross, out)
    assert out.tobytes() == ref_xs.equal_weight(tradable, gross).tobytes()
    held = tradable.any(axis=1)
    np.testing.assert_allclose(out.sum(axis=1)[held], gross, rtol=1e-12)
    assert not out[~tradable].any()


@SETTINGS
@given(inputs=rows(), gross=GROSS)
def test_inverse_vol_matches_twin(inputs: tuple[np.ndarray, np.ndarray], gross: float) -> None:
    vol, tradable = inputs
    out = np.full(vol.shape, 7.0)
    inverse_vol_nb(vol, tradable, gross, out)
    assert out.tobytes() == ref_xs.inverse_vol(vol, tradable, gross).tobytes()
    eligible = tradable & np.isfinite(vol) & (np.nan_to_num(vol) > 0)
    assert not out[~eligible].any()
    held = eligible.any(axis=1)
    np.testing.assert_allclose(out.sum(axis=1)[held], gross, rtol=1e-12)
    # weights are proportional to 1 / vol within a row
    for i in np.flatnonzero(held):
        w = out[i, eligible[i]] * vol[i, eligible[i]]
        np.testing.assert_allclose(w, w[0], rtol=1e-12)


@SETTINGS
@given(inputs=st.one_of(rows(), rows(ties=True)), gross=GROSS, data=st.data())
def test_rank_long_short_matches_twin(
    inputs: tuple[np.ndarray, np.ndarray], gross: float, data: st.DataObject
) -> None:
    score, tradable = inputs
    n_sym = score.shape[1]
    top = data.draw(st.integers(1, n_sym))
    bottom = data.draw(st.integers(0, n_sym - top))
    out = np.full(score.shape, 7.0)
    order = np.full(n_sym, -1, dtype=np.int64)
    rank_long_short_nb(score, tradable, top, bottom, gross, order, out)
    want = ref_xs.rank_long_short(score, tradable, top, bottom, gross)
    assert out.tobytes() == want.tobytes()
    ranked = tradable & np.isfinite(score)
    assert not out[~ranked].any()
    traded = ranked.sum(axis=1) >= top + bottom
    assert not out[~traded].any()
    assert ((out > 0).sum(axis=1)[traded] == top).all()
    assert ((out < 0).sum(axis=1)[traded] == bottom).all()
    np.testing.assert_allclose(np.abs(out).sum(axis=1)[traded], gross, rtol=1e-12)
    # every long scores at least as high as every unheld ranked symbol, every short at most
    for i in np.flatnonzero(traded):
        s = score[i]
        longs, shorts = s[out[i] > 0], s[out[i] < 0]
        rest = s[ranked[i] & (out[i] == 0)]
        if rest.size:
            assert longs.min() >= rest.max()
            if bottom:
                assert shorts.max() <= rest.min()


def test_rank_ties_go_to_symbol_order() -> None:
    score = np.array([[0.1, 0.1, 0.1, 0.1]])
    tradable = np.ones((1, 4), dtype=bool)
    out = np.empty((1, 4))
    rank_long_short_nb(score, tradable, 1, 1, 1.0, np.empty(4, dtype=np.int64), out)
    assert out.tolist() == [[0.5, 0.0, 0.0, -0.5]]
    rank_long_short_nb(score, tradable, 2, 0, 1.0, np.empty(4, dtype=np.int64), out)
    assert out.tolist() == [[0.5, 0.5, 0.0, 0.0]]


def test_rank_a_nan_score_is_never_held() -> None:
    score = np.array([[np.nan, 0.3, -0.2, np.nan, 0.1]])
    tradable = np.ones((1, 5), dtype=bool)
    out = np.empty((1, 5))
    rank_long_short_nb(score, tradable, 1, 1, 2.0, np.empty(5, dtype=np.int64), out)
    assert out.tolist() == [[0.0, 1.0, -1.0, 0.0, 0.0]]
    # three ranked, four asked for: flat
    rank_long_short_nb(score, tradable, 2, 2, 2.0, np.empty(5, dtype=np.int64), out)
    assert not out.any()
