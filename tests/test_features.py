"""Indicator kernels and the feature registry.

Each kernel in kernels/indicators.py is checked three ways on random inputs: against the pandas
computation its docstring names, against its plain-Python twin (tests/reference/indicators.py),
and for the prefix property (running on `x[:t]` gives the prefix of running on `x`, bit for bit).

Tolerances, stated once:
- twins: sma within 2 ulps of the exactly rounded mean; rolling std 1e-12 relative to the exact
  value (the kernel claims ~1e-13); recursive kernels (ewm, ema, atr) 1e-12 relative; rsi 1e-12
  relative plus 1e-10 RSI points (the twin's `100 - 100 / (1 + up/down)` cancels near 0);
  max, min, returns and true range exactly.
- pandas: 1e-9 relative, plus an absolute term only where pandas' own arithmetic is the limit:
  1e-12 of the series' largest magnitude for rolling sums, and for the rolling variance
  `1e-12 * window * max|x|^2` (pandas' running update loses digits when the level dwarfs the
  spread; the exact twin holds the kernel to 1e-12 there). NaN positions must match exactly.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import btlab
from btlab import features as registry
from btlab.config import FeatureSpec, parse_config
from btlab.data import Dataset, from_dataframe
from btlab.errors import ConfigError
from btlab.features import FeatureStore, list_features, resolve_feature_params
from btlab.kernels import indicators as K
from btlab.pipeline import RunCache
from btlab.strategies import list_strategies
from tests.reference import indicators as R
from tests.schema_check import assert_valid_json_schema, instance_errors
from tests.strategies import Bars, bars, fixed_bars, series, windows

FAST = settings(max_examples=100, deadline=None)


# --------------------------------------------------------------------------- comparison helpers


def same_nan(got: np.ndarray, want: np.ndarray) -> None:
    assert got.dtype == np.float64 and got.shape == want.shape
    bad = np.flatnonzero(np.isnan(got) != np.isnan(want))
    assert bad.size == 0, (
        f"NaN positions differ at {bad[:10]}: got {got[bad[:3]]}, want {want[bad[:3]]}"
    )


def close_to(got: np.ndarray, want: np.ndarray, rtol: float, atol: float = 0.0) -> None:
    same_nan(got, want)
    np.testing.assert_allclose(got, want, rtol=rtol, atol=atol, equal_nan=True)


def exactly(got: np.ndarray, want: np.ndarray) -> None:
    same_nan(got, want)
    np.testing.assert_array_equal(got, want)


def scale_of(x: np.ndarray) -> float:
    finite = np.abs(x[np.isfinite(x)])
    return float(finite.max()) if finite.size else 0.0


def pd_rsi(close: pd.Series, window: int) -> pd.Series:
    """The pandas formulation in `rsi_nb`'s docstring, with the documented 0/0 -> 50."""
    delta = close.diff()
    kw = {"alpha": 1.0 / window, "adjust": False, "min_periods": window, "ignore_na": True}
    up = delta.clip(lower=0).ewm(**kw).mean()
    down = (-delta.clip(upper=0)).ewm(**kw).mean()
    rsi = 100 - 100 / (1 + up / down)
    return rsi.mask((up == 0) & (down == 0), 50.0)


def pd_true_range(high: pd.Series, low: pd.Series, close: pd.Series) -> pd.Series:
    prev = close.shift(1)
    return pd.concat([high - low, (high - prev).abs(), (low - prev).abs()], axis=1).max(axis=1)


def pd_atr(high: pd.Series, low: pd.Series, close: pd.Series, window: int) -> pd.Series:
    tr = pd_true_range(high, low, close)
    return tr.ewm(alpha=1.0 / window, adjust=False, min_periods=window).mean()


@st.composite
def ohlc(draw: st.DrawFn, nan_close: bool = False) -> tuple[np.ndarray, ...]:
    """(high, low, close) of valid bars at a random magnitude; optionally NaN closes."""
    b = draw(bars(min_size=1, max_size=80))
    k = 10.0 ** draw(st.integers(-6, 6))
    high, low, close = b.high * k, b.low * k, b.close * k
    if nan_close:
        rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
        close[rng.random(len(b)) < draw(st.sampled_from([0.05, 0.3]))] = np.nan
    return high, low, close


# --------------------------------------------------------------------------- kernels vs pandas


@FAST
@given(x=series(nan=True), w=windows())
def test_sma_matches_pandas_rolling_mean(x: np.ndarray, w: int) -> None:
    want = pd.Series(x).rolling(w).mean().to_numpy()
    close_to(K.sma_nb(x, w), want, rtol=1e-9, atol=1e-12 * scale_of(x))


@FAST
@given(x=series(nan=True), w=windows())
def test_ema_matches_pandas_ewm_span(x: np.ndarray, w: int) -> None:
    s = pd.Series(x)
    want = s.ewm(span=w, adjust=False, min_periods=w, ignore_na=True).mean().to_numpy()
    close_to(K.ema_nb(x, w), want, rtol=1e-9)


@FAST
@given(
    x=series(nan=True),
    alpha=st.floats(0.001, 1.0),
    min_periods=st.integers(0, 30),
)
def test_ewm_matches_pandas_ewm_alpha(x: np.ndarray, alpha: float, min_periods: int) -> None:
    s = pd.Series(x)
    want = s.ewm(alpha=alpha, adjust=False, ignore_na=True, min_periods=min_periods).mean()
    close_to(K.ewm_nb(x, alpha, min_periods), want.to_numpy(), rtol=1e-9)


@FAST
@given(x=series(nan=True), w=windows(), ddof=st.sampled_from([0, 1]))
def test_rolling_std_matches_pandas(x: np.ndarray, w: int, ddof: int) -> None:
    got = K.rolling_std_nb(x, w, ddof)
    want = pd.Series(x).rolling(w).std(ddof=ddof).to_numpy()
    same_nan(got, want)
    level = pd.Series(np.abs(x)).rolling(w).max().to_numpy()
    ok = ~np.isnan(want)
    err = np.abs(got[ok] ** 2 - want[ok] ** 2)
    assert np.all(err <= 1e-9 * want[ok] ** 2 + 1e-12 * w * level[ok] ** 2)


@FAST
@given(x=series(nan=True), w=windows())
def test_rolling_max_min_match_pandas(x: np.ndarray, w: int) -> None:
    s = pd.Series(x)
    exactly(K.rolling_max_nb(x, w), s.rolling(w).max().to_numpy())
    exactly(K.rolling_min_nb(x, w), s.rolling(w).min().to_numpy())


@FAST
@given(x=series(nan=True, positive=True))
def test_returns_match_pandas(x: np.ndarray) -> None:
    s = pd.Series(x)
    exactly(K.simple_returns_nb(x), s.pct_change(fill_method=None).to_numpy())
    close_to(K.log_returns_nb(x), np.log(s / s.shift(1)).to_numpy(), rtol=1e-14)


@FAST
@given(x=series(nan=True), w=windows())
def test_rsi_matches_the_documented_pandas_formula(x: np.ndarray, w: int) -> None:
    want = pd_rsi(pd.Series(x), w).to_numpy()
    close_to(K.rsi_nb(x, w), want, rtol=1e-9, atol=1e-9)


@FAST
@given(hlc=ohlc(nan_close=True), w=windows())
def test_true_range_and_atr_match_pandas(hlc: tuple[np.ndarray, ...], w: int) -> None:
    high, low, close = hlc
    h, lo, c = pd.Series(high), pd.Series(low), pd.Series(close)
    close_to(K.true_range_nb(high, low, close), pd_true_range(h, lo, c).to_numpy(), rtol=1e-15)
    close_to(K.atr_nb(high, low, close, w), pd_atr(h, lo, c, w).to_numpy(), rtol=1e-9)


def test_documented_warm_up_lengths() -> None:
    """The first value sits where the docstrings say: sma/ema/max at window-1, rsi at window,
    atr at window-1 (seeded with the first bar's range), rolling std(ddof) needs window > ddof."""
    x = np.linspace(100.0, 130.0, 31) + np.sin(np.arange(31.0))
    for w in (1, 2, 5, 14):
        for kernel in (K.sma_nb, K.ema_nb, K.rolling_max_nb, K.rolling_min_nb):
            assert np.isnan(kernel(x, w)).sum() == w - 1, kernel
        assert np.isnan(K.rsi_nb(x, w)).sum() == w
        assert np.isnan(K.atr_nb(x + 1, x - 1, x, w)).sum() == w - 1
        assert K.atr_nb(x + 1, x - 1, x, 1)[0] == 2.0
    assert np.isnan(K.rolling_std_nb(x, 1, 1)).all()
    assert np.isnan(K.rolling_std_nb(x, 3, 1)).sum() == 2
    assert np.isnan(K.simple_returns_nb(x)).sum() == 1


def test_rsi_edge_values() -> None:
    """100 where nothing fell, 0 where nothing rose, 50 where nothing moved (pandas gives NaN)."""
    up = np.arange(1.0, 20.0)
    assert np.all(K.rsi_nb(up, 5)[5:] == 100.0)
    assert np.all(K.rsi_nb(up[::-1].copy(), 5)[5:] == 0.0)
    assert np.all(K.rsi_nb(np.full(19, 7.0), 5)[5:] == 50.0)


# --------------------------------------------------------------------------- kernels vs twins


def assert_ulps(got: np.ndarray, want: np.ndarray, ulps: float) -> None:
    same_nan(got, want)
    ok = ~np.isnan(want)
    err = np.abs(got[ok] - want[ok])
    assert np.all(err <= ulps * np.spacing(np.abs(want[ok]))), np.max(err)


@settings(max_examples=120, deadline=None)
@given(x=series(nan=True, max_size=100), w=windows())
def test_sma_within_two_ulps_of_the_exact_mean(x: np.ndarray, w: int) -> None:
    assert_ulps(K.sma_nb(x, w), R.sma(x, w), 2)


@settings(max_examples=120, deadline=None)
@given(x=series(nan=True, max_size=100), w=windows(), ddof=st.sampled_from([0, 1, 2]))
def test_rolling_std_matches_exact_twin(x: np.ndarray, w: int, ddof: int) -> None:
    close_to(K.rolling_std_nb(x, w, ddof), R.rolling_std(x, w, ddof), rtol=1e-12)


@FAST
@given(x=series(nan=True), w=windows())
def test_recursive_kernels_match_twins(x: np.ndarray, w: int) -> None:
    close_to(K.ema_nb(x, w), R.ema(x, w), rtol=1e-12)
    close_to(K.ewm_nb(x, 1.0 / w, w), R.ewm(x, 1.0 / w, w), rtol=1e-12)
    close_to(K.rsi_nb(x, w), R.rsi(x, w), rtol=1e-12, atol=1e-10)


@FAST
@given(x=series(nan=True), w=windows())
def test_rolling_extremes_match_twins(x: np.ndarray, w: int) -> None:
    exactly(K.rolling_max_nb(x, w), R.rolling_max(x, w))
    exactly(K.rolling_min_nb(x, w), R.rolling_min(x, w))


def test_rolling_extremes_take_infinities_as_values() -> None:
    """Only NaN blanks a window; +/-inf are values (pandas' rolling max/min answer NaN there)."""
    x = np.array([1.0, np.inf, 3.0, -np.inf, 5.0, 6.0, np.nan, 8.0, 9.0])
    for w in (1, 2, 3):
        exactly(K.rolling_max_nb(x, w), R.rolling_max(x, w))
        exactly(K.rolling_min_nb(x, w), R.rolling_min(x, w))


@FAST
@given(x=series(nan=True, positive=True))
def test_returns_match_twins(x: np.ndarray) -> None:
    exactly(K.simple_returns_nb(x), R.simple_returns(x))
    close_to(K.log_returns_nb(x), R.log_returns(x), rtol=1e-15)


@FAST
@given(x=series(nan=True), w=windows(), data=st.data())
def test_true_range_and_atr_match_twins(x: np.ndarray, w: int, data: st.DataObject) -> None:
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    high = x + np.abs(rng.normal(0.0, 1.0, x.shape[0])) * scale_of(x)
    low = x - np.abs(rng.normal(0.0, 1.0, x.shape[0])) * scale_of(x)
    close = np.where(rng.random(x.shape[0]) < 0.5, high, low)
    close[rng.random(x.shape[0]) < 0.1] = np.nan
    exactly(K.true_range_nb(high, low, close), R.true_range(high, low, close))
    close_to(K.atr_nb(high, low, close, w), R.atr(high, low, close, w), rtol=1e-12)


@FAST
@given(x=series(nan=False, max_size=100), w=windows())
def test_sma_fast_and_checked_passes_agree_on_finite_data(x: np.ndarray, w: int) -> None:
    """`sma_nb`'s claim: both passes do the same arithmetic on finite values (bit for bit)."""
    fast = np.empty_like(x)
    checked = np.empty_like(x)
    assert K._sma_fast_nb(x, w, fast)
    K._sma_checked_nb(x, w, checked)
    exactly(fast, checked)


@FAST
@given(
    a=st.floats(allow_nan=False, allow_infinity=False, min_value=-1e300, max_value=1e300),
    b=st.floats(allow_nan=False, allow_infinity=False, min_value=-1e300, max_value=1e300),
)
def test_two_sum_is_exact(a: float, b: float) -> None:
    s, e = K._two_sum_nb(a, b)
    assert s == a + b
    assert Fraction(s) + Fraction(e) == Fraction(a) + Fraction(b)


# --------------------------------------------------------------------------- causality


def _one_input_kernels(w: int) -> dict[str, Callable[[np.ndarray], np.ndarray]]:
    return {
        "sma": lambda v: K.sma_nb(v, w),
        "ema": lambda v: K.ema_nb(v, w),
        "ewm": lambda v: K.ewm_nb(v, 1.0 / w, w),
        "std": lambda v: K.rolling_std_nb(v, w, 1),
        "max": lambda v: K.rolling_max_nb(v, w),
        "min": lambda v: K.rolling_min_nb(v, w),
        "returns": K.simple_returns_nb,
        "log_returns": K.log_returns_nb,
        "rsi": lambda v: K.rsi_nb(v, w),
        "atr": lambda v: K.atr_nb(v * 1.01, v * 0.99, v, w),
        "true_range": lambda v: K.true_range_nb(v * 1.01, v * 0.99, v),
    }


@settings(max_examples=80, deadline=None)
@given(x=series(nan=True, positive=True, min_size=1, max_size=100), w=windows(), data=st.data())
def test_prefix_property_every_kernel(x: np.ndarray, w: int, data: st.DataObject) -> None:
    """`out[i]` depends on `x[0..i]` only: the prefix's result is the result's prefix, bit for
    bit, also where later data holds a NaN (which sends `sma_nb` down its checked pass)."""
    t = data.draw(st.integers(0, x.shape[0]))
    for name, kernel in _one_input_kernels(w).items():
        full = kernel(x)
        part = kernel(np.ascontiguousarray(x[:t]))
        assert part.tobytes() == full[:t].tobytes(), name


# --------------------------------------------------------------------------- the registry


@dataclass
class FakeData:
    """What FeatureStore reads of a dataset, with no validation (so NaN can go in)."""

    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray
    adj_close: np.ndarray | None = None


def dataset(b: Bars, seed: int = 0) -> Dataset:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "ts": pd.to_datetime(b.ts, utc=True),
            "open": b.open, "high": b.high, "low": b.low, "close": b.close, "volume": b.volume,
            "adj_close": b.close * rng.uniform(0.8, 1.0, len(b)),
            "signal": rng.normal(size=len(b)),  # an extra column, read by the `column` feature
        }
    )  # fmt: skip
    return from_dataframe(frame)


def _pd_feature(frame: pd.DataFrame, name: str, p: dict[str, Any]) -> pd.Series:
    """The pandas computation each registered feature is documented as (unshifted)."""
    s = frame[p["source"]] if "source" in p else None
    w = p.get("window", 0)
    table: dict[str, Callable[[], pd.Series]] = {
        "price": lambda: s,
        "column": lambda: frame[p["name"]],
        "sma": lambda: s.rolling(w).mean(),
        "ema": lambda: s.ewm(span=w, adjust=False, min_periods=w).mean(),
        "returns": lambda: s.pct_change(fill_method=None),
        "log_returns": lambda: np.log(s / s.shift(1)),
        "trailing_return": lambda: s / s.shift(w) - 1.0,
        "rolling_vol": lambda: np.log(s / s.shift(1)).rolling(w).std(ddof=1),
        "rolling_max": lambda: s.rolling(w).max(),
        "rolling_min": lambda: s.rolling(w).min(),
        "rsi": lambda: pd_rsi(s, w),
        "atr": lambda: pd_atr(frame["high"], frame["low"], frame["close"], w),
    }
    return table[name]()


@st.composite
def params_for(draw: st.DrawFn, schema: dict[str, Any]) -> dict[str, Any]:
    """Random valid parameters from a feature's JSON schema (small windows, any source)."""
    out: dict[str, Any] = {}
    for key, prop in schema["properties"].items():
        if "enum" in prop:
            out[key] = draw(st.sampled_from(prop["enum"]))
        elif prop.get("type") == "integer":
            out[key] = draw(st.integers(prop["minimum"], prop["minimum"] + 25))
    return out


REGISTERED = [f["name"] for f in list_features()]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(b=bars(min_size=2, max_size=80), data=st.data())
@pytest.mark.parametrize("name", REGISTERED)
def test_registry_serves_each_feature_shifted_by_one_bar(
    name: str, b: Bars, data: st.DataObject
) -> None:
    """What a strategy sees at row i is the documented pandas value at i - 1 (NaN at row 0),
    read-only. Every registered feature is listed here, so a new one needs a pandas definition
    in `_pd_feature` (a KeyError says which)."""
    schema = next(f["params"] for f in list_features() if f["name"] == name)
    params = data.draw(params_for(schema))
    ds = dataset(b)
    store = FeatureStore(ds)
    got = store.get(FeatureSpec(name=name, params=params))
    full = resolve_feature_params(name, params)
    want = _pd_feature(ds.to_frame(), name, full).shift(1).to_numpy(dtype=np.float64)
    assert np.isnan(got[0])
    close_to(got, want, rtol=1e-9, atol=1e-12 * scale_of(want))
    assert not got.flags.writeable
    with pytest.raises(ValueError, match="read-only"):
        got[-1] = 0.0
    with pytest.raises(ValueError, match="WRITEABLE"):  # nor can it be made writeable again
        got.flags.writeable = True


def test_shift_is_bitwise_the_raw_kernel_one_bar_late() -> None:
    ds = dataset(fixed_bars(120, 5))
    store = FeatureStore(ds)
    close = np.asarray(ds.close)
    cases = {
        ("sma", 7): K.sma_nb(close, 7),
        ("rolling_max", 9): K.rolling_max_nb(np.asarray(ds.high), 9),
        ("rsi", 14): K.rsi_nb(close, 14),
        ("rolling_vol", 5): K.rolling_std_nb(K.log_returns_nb(close), 5, 1),
    }
    for (name, w), raw in cases.items():
        got = store.get(FeatureSpec(name=name, params={"window": w}))
        assert np.isnan(got[0])
        assert got[1:].tobytes() == raw[:-1].tobytes(), name
    assert registry.shift(np.array([])).shape == (0,)


def test_nan_inputs_pass_through_the_registry_shifted() -> None:
    x = fixed_bars(40, 1).close
    x[[10, 25]] = np.nan
    store = FeatureStore(FakeData(x, x * 1.01, x * 0.99, x, np.ones(40)))
    got = store.get(FeatureSpec(name="sma", params={"window": 3}))
    exactly(got, registry.shift(K.sma_nb(x, 3)))
    assert np.isnan(got[11:14]).all() and np.isfinite(got[14:26]).all()


class Spy:
    """Counts the raw computations of each registered feature (wrapping the real function and,
    where it has one, the form that writes into the store's array), by name (`calls`) and by
    (name, parameters) (`keys`)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls: dict[str, int] = {}
        self.keys: dict[tuple[str, str], int] = {}
        for name, entry in list(registry._REGISTRY.items()):
            into = None if entry.into is None else self._wrap(name, entry.into)
            monkeypatch.setitem(
                registry._REGISTRY,
                name,
                dataclasses.replace(entry, fn=self._wrap(name, entry.fn), into=into),
            )

    def _wrap(self, name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def counted(data: Any, p: Any, *out: np.ndarray) -> Any:
            self.calls[name] = self.calls.get(name, 0) + 1
            key = (name, p.model_dump_json())
            self.keys[key] = self.keys.get(key, 0) + 1
            return fn(data, p, *out)

        return counted


def test_store_computes_each_distinct_feature_once(monkeypatch: pytest.MonkeyPatch) -> None:
    spy = Spy(monkeypatch)
    store = FeatureStore(dataset(fixed_bars(60, 2)))
    first = store.get(FeatureSpec(name="sma", params={"window": 5}))
    # the same feature spelled with its default source, and asked for again: no new computation
    again = store.get(FeatureSpec(name="sma", params={"window": 5, "source": "close"}))
    assert again is first
    store.get(FeatureSpec(name="sma", params={"window": 6}))
    store.get(FeatureSpec(name="sma", params={"window": 5, "source": "open"}))
    store.get(FeatureSpec(name="ema", params={"window": 5}))
    assert spy.calls == {"sma": 3, "ema": 1}
    assert store.computed == 4


def test_a_run_computes_each_distinct_feature_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """The strategy's features, the request's extra features and the vol-target sizing share
    one computation per distinct (feature, params)."""
    spy = Spy(monkeypatch)
    request = {
        "data": {"bars": 300, "seed": 20_261_125},  # data no other test uses: nothing cached
        "features": [
            {"name": "sma", "params": {"window": 10}},
            {"name": "rolling_vol", "params": {"window": 20, "source": "close"}},
            {"name": "rsi", "params": {"window": 14}},
        ],
        "strategy": {"name": "sma_cross", "params": {"fast": 10, "slow": 50}},
        "risk": {"sizing": "vol_target", "vol_lookback": 20},
        "validation": {"enabled": False},
    }
    btlab.run(request)
    assert spy.calls == {"sma": 2, "rolling_vol": 1, "rsi": 1}
    assert set(spy.keys.values()) == {1}


def test_shared_cache_is_keyed_by_dataset(monkeypatch: pytest.MonkeyPatch) -> None:
    spy = Spy(monkeypatch)
    cache = RunCache().features
    spec = FeatureSpec(name="sma", params={"window": 5})
    a = FeatureStore(dataset(fixed_bars(50, 1)), cache=cache).get(spec)
    assert FeatureStore(dataset(fixed_bars(50, 1)), cache=cache).get(spec) is a
    b = FeatureStore(dataset(fixed_bars(50, 2)), cache=cache).get(spec)
    assert spy.calls == {"sma": 2} and not np.array_equal(a, b, equal_nan=True)
    with pytest.raises(ValueError, match="content hash"):
        FeatureStore(FakeData(*([np.ones(3)] * 5)), cache=cache)


@pytest.mark.parametrize(
    ("name", "params", "field", "message"),
    [
        ("sma", {"window": 0}, "window", "greater than or equal to 1"),
        ("sma", {"window": -5}, "window", "greater than or equal to 1"),
        ("sma", {"window": True}, "window", "boolean"),
        ("sma", {"window": 2.5}, "window", "integer"),
        ("sma", {"window": "ten"}, "window", "integer"),
        ("sma", {"window": 100_001}, "window", "less than or equal to 100000"),
        ("sma", {"windw": 5}, "windw", "Extra inputs are not permitted"),
        ("sma", {"source": "volume"}, "source", "'open', 'high', 'low', 'close' or 'adj_close'"),
        ("rolling_vol", {"window": 1}, "window", "greater than or equal to 2"),
        ("rolling_max", {"source": "vwap"}, "source", "Input should be"),
        ("atr", {"source": "close"}, "source", "Extra inputs"),
        ("ema", [5], "params", "expected an object"),
    ],
)
def test_bad_feature_params_name_the_field(
    name: str, params: Any, field: str, message: str
) -> None:
    with pytest.raises(ConfigError) as info:
        resolve_feature_params(name, params)
    where = "params" if field == "params" else f"params.{field}"
    assert any(loc == where and message in msg for loc, msg in info.value.errors), info.value
    assert name in str(info.value)


def test_bad_feature_in_a_request_names_its_path() -> None:
    with pytest.raises(ConfigError) as info:
        parse_config({"features": [{"name": "sma"}, {"name": "ema", "params": {"window": 0}}]})
    assert [loc for loc, _ in info.value.errors] == ["features.1.params.window"]


def test_unknown_feature_is_rejected_listing_the_known_ones() -> None:
    with pytest.raises(ConfigError, match="unknown feature 'smaa'") as info:
        resolve_feature_params("smaa", {})
    assert [loc for loc, _ in info.value.errors] == ["name"]
    assert all(name in str(info.value) for name in REGISTERED)
    with pytest.raises(ConfigError, match="unknown feature") as info:
        parse_config({"features": [{"name": "sma"}, {"name": "smaa"}]})
    assert [loc for loc, _ in info.value.errors] == ["features.1.name"]


def test_missing_adj_close_is_a_config_error_naming_source() -> None:
    b = fixed_bars(10, 0)
    store = FeatureStore(FakeData(b.open, b.high, b.low, b.close, b.volume, None))
    with pytest.raises(ConfigError) as info:
        store.get(FeatureSpec(name="sma", params={"window": 3, "source": "adj_close"}))
    assert info.value.errors == [("source", "the dataset has no adj_close column")]


# --------------------------------------------------------------------------- parameter schemas


def _registries() -> list[tuple[str, str, dict[str, Any], Callable[..., Any]]]:
    from btlab.strategies import resolve_strategy_params

    out = [("feature", f["name"], f["params"], resolve_feature_params) for f in list_features()]
    out += [
        ("strategy", s["name"], s["params"], resolve_strategy_params) for s in list_strategies()
    ]
    return out


@pytest.mark.parametrize(("kind", "name", "schema", "resolve"), _registries())
def test_parameter_schemas_are_valid_json_schemas_the_models_enforce(
    kind: str, name: str, schema: dict[str, Any], resolve: Callable[..., Any]
) -> None:
    """Each listed schema is a valid JSON Schema whose defaults are the model's defaults, and
    every bound it states is enforced by the model with an error naming the field."""
    assert_valid_json_schema(schema, f"{kind} {name}")
    assert schema["type"] == "object" and schema["additionalProperties"] is False
    defaults = resolve(name, {})
    assert defaults == {k: p["default"] for k, p in schema["properties"].items()}
    assert not instance_errors(defaults, schema, schema)
    for key, prop in schema["properties"].items():
        outside = []
        if "minimum" in prop:
            outside.append(prop["minimum"] - (1 if prop["type"] == "integer" else 1e-9))
        if "exclusiveMinimum" in prop:
            outside.append(prop["exclusiveMinimum"])
        if "maximum" in prop:
            outside.append(prop["maximum"] + (1 if prop["type"] == "integer" else 1e-9))
        if prop.get("type") in ("integer", "number"):
            outside.append(True)
        if "enum" in prop:
            outside.append("not-a-choice")
        for value in outside:
            with pytest.raises(ConfigError) as info:
                resolve(name, {key: value})
            assert f"params.{key}" in [loc for loc, _ in info.value.errors], (
                key,
                value,
                info.value,
            )
    with pytest.raises(ConfigError) as info:
        resolve(name, {"no_such_param": 1})
    assert [loc for loc, _ in info.value.errors] == ["params.no_such_param"]


def test_schema_check_catches_broken_schemas() -> None:
    """The structural check is not a rubber stamp."""
    good = {"type": "object", "properties": {"w": {"type": "integer", "minimum": 1, "default": 3}}}
    assert_valid_json_schema(good)
    broken = [
        {"type": "object", "properties": {"w": {"type": "int"}}},
        {"type": "object", "properties": {"w": {"type": "integer", "minimum": 1, "default": 0}}},
        {"type": "object", "properties": {"w": {"type": "integer", "default": True}}},
        {"type": "object", "properties": {"w": {"minimun": 1}}},
        {"type": "object", "properties": {}, "required": ["w"]},
        {"type": "object", "properties": {"w": {"enum": []}}},
        {"type": "object", "properties": {"w": {"$ref": "#/$defs/missing"}}},
        {"type": "object", "properties": {"w": {"type": "number", "maximum": math.nan}}},
    ]
    for schema in broken:
        with pytest.raises(AssertionError):
            assert_valid_json_schema(schema)
