"""The strategy registry: each strategy's target against a plain pandas reference written here,
warm-up, long-only vs long/short, parameter constraints, and causality at strategy level.

References use only pandas on the raw bars: a feature a strategy sees at row i is the pandas
value at i - 1 (`.shift(1)`), so a match also checks that strategies read shifted features.
Moving averages from pandas and from the kernels differ in the last bits, so a bar where the
two compared values are within 1e-9 relative of each other (a near tie) is left out of the
comparison; RSI thresholds are drawn away from near ties instead (the latch carries state).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from btlab import strategies as registry
from btlab.config import FeatureSpec, parse_config
from btlab.data import Dataset, from_dataframe
from btlab.errors import ConfigError
from btlab.features import FeatureStore, Params
from btlab.strategies import (
    Strategy,
    compute_target,
    list_strategies,
    required_features,
    resolve_strategy_params,
)
from tests.strategies import Bars, bars, fixed_bars

NAMES = [s["name"] for s in list_strategies()]
LONG_SHORT = [s["name"] for s in list_strategies() if "long_short" in s["params"]["properties"]]
SETTINGS = settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def strategy_params(draw: st.DrawFn, name: str, long_short: bool | None = None) -> dict[str, Any]:
    """Random valid parameters of strategy `name` (small windows, so warm-up ends in the data)."""
    p: dict[str, Any] = {"size": draw(st.sampled_from([0.25, 1.0, 2.0]))}
    ls = draw(st.booleans()) if long_short is None else long_short
    if name == "sma_cross":
        fast = draw(st.integers(1, 15))
        p |= {"fast": fast, "slow": draw(st.integers(fast + 1, 40)), "long_short": ls}
        p["ma"] = draw(st.sampled_from(["sma", "ema"]))
    elif name == "ma_trend":
        p |= {"window": draw(st.integers(1, 40)), "long_short": ls}
        p["ma"] = draw(st.sampled_from(["sma", "ema"]))
    elif name == "channel_breakout":
        entry = draw(st.integers(2, 30))
        p |= {"entry_window": entry, "exit_window": draw(st.integers(2, entry)), "long_short": ls}
    elif name == "rsi_reversion":
        lower = draw(st.floats(5.0, 60.0))
        p |= {"window": draw(st.integers(1, 20)), "lower": lower}
        p["upper"] = draw(st.floats(lower + 1.0, 95.0))
    elif name != "buy_and_hold":
        raise KeyError(f"no reference for strategy {name!r}: add one to this module")
    return p


def dataset(b: Bars) -> Dataset:
    cols = {"open": b.open, "high": b.high, "low": b.low, "close": b.close, "volume": b.volume}
    return from_dataframe(pd.DataFrame({"ts": pd.to_datetime(b.ts, utc=True), **cols}))


@dataclass
class FakeData:
    """What FeatureStore reads of a dataset, unvalidated, so closes can be NaN."""

    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray
    adj_close: np.ndarray | None = None


def target_of(data: Any, name: str, params: Mapping[str, Any]) -> np.ndarray:
    n = int(np.asarray(data.close).shape[0])
    return compute_target(FeatureStore(data), name, params, n)


# --------------------------------------------------------------------------- pandas references


def pd_rsi(close: pd.Series, window: int) -> pd.Series:
    delta = close.diff()
    kw = {"alpha": 1.0 / window, "adjust": False, "min_periods": window}
    up = delta.clip(lower=0).ewm(**kw).mean()
    down = (-delta.clip(upper=0)).ewm(**kw).mean()
    return (100 - 100 / (1 + up / down)).mask((up == 0) & (down == 0), 50.0)


def pd_ma(close: pd.Series, kind: str, window: int) -> pd.Series:
    if kind == "sma":
        return close.rolling(window).mean()
    return close.ewm(span=window, adjust=False, min_periods=window).mean()


def reference(name: str, p: dict[str, Any], close: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """(target, comparable): the rule applied to pandas values shifted one bar, and the bars
    that are not near ties between pandas and kernel arithmetic."""
    n = len(close)
    size = p["size"]
    prev = close.shift(1).to_numpy()  # the close a strategy knows before bar i opens
    comparable = np.ones(n, dtype=bool)
    if name == "buy_and_hold":
        return np.full(n, size), comparable
    if name in ("sma_cross", "ma_trend"):
        cross = name == "sma_cross"
        a = pd_ma(close, p["ma"], p["fast"]).shift(1).to_numpy() if cross else prev
        b = pd_ma(close, p["ma"], p["slow" if cross else "window"]).shift(1).to_numpy()
        short = -size if p["long_short"] else 0.0
        with np.errstate(invalid="ignore"):
            target = np.select([a > b, a < b], [size, short], 0.0)  # NaN compares false: 0
            comparable = ~(np.abs(a - b) <= 1e-9 * np.maximum(np.abs(a), np.abs(b)))
        return target, comparable
    if name == "channel_breakout":
        e, x = p["entry_window"], p["exit_window"]
        hi = close.rolling(e).max().shift(1).to_numpy()
        lo_exit = close.rolling(x).min().shift(1).to_numpy()
        lo = close.rolling(e).min().shift(1).to_numpy()
        hi_exit = close.rolling(x).max().shift(1).to_numpy()
        out = np.zeros(n)
        state = 0
        for i in range(n):
            needed = [prev[i], hi[i], lo_exit[i]] + ([lo[i], hi_exit[i]] if p["long_short"] else [])
            if np.isnan(needed).any():
                state = 0
                continue
            go_long, leave_long = prev[i] >= hi[i], prev[i] <= lo_exit[i]
            go_short = p["long_short"] and prev[i] <= lo[i]
            leave_short = not p["long_short"] or prev[i] >= hi_exit[i]
            if (state == 1 and (leave_long or go_short)) or (
                state == -1 and (leave_short or go_long)
            ):
                state = 0
            if state == 0 and go_long and not leave_long and not go_short:
                state = 1
            elif state == 0 and go_short and not leave_short and not go_long:
                state = -1
            out[i] = state * size
        return out, comparable
    if name == "rsi_reversion":
        rsi = pd_rsi(close, p["window"]).shift(1).to_numpy()
        out = np.zeros(n)
        held = False
        for i in range(n):
            if np.isnan(rsi[i]):
                held = False
            elif not held and rsi[i] < p["lower"]:
                held = True
            elif held and rsi[i] > p["upper"]:
                held = False
            out[i] = size if held else 0.0
        near = np.minimum(np.abs(rsi - p["lower"]), np.abs(rsi - p["upper"])) < 1e-7
        assume(not near.any())
        return out, comparable
    raise KeyError(name)


@SETTINGS
@given(b=bars(min_size=2, max_size=250), data=st.data())
@pytest.mark.parametrize("name", NAMES)
def test_target_matches_pandas_reference(name: str, b: Bars, data: st.DataObject) -> None:
    params = data.draw(strategy_params(name))
    got = target_of(dataset(b), name, params)
    want, comparable = reference(name, params, pd.Series(b.close))
    assert got.dtype == np.float64 and got.shape == (len(b),)
    np.testing.assert_array_equal(got[comparable], want[comparable])


def test_ma_trend_on_its_own_one_bar_average_is_always_flat() -> None:
    """A price equal to its moving average (window 1) is neither above nor below: flat."""
    b = fixed_bars(30, seed=4)
    for ma in ("sma", "ema"):
        params = {"window": 1, "ma": ma, "long_short": True}
        assert not target_of(dataset(b), "ma_trend", params).any()


@SETTINGS
@given(b=bars(min_size=2, max_size=80), nan_share=st.sampled_from([0.0, 0.05, 0.3]), data=st.data())
@pytest.mark.parametrize("name", NAMES)
def test_nan_inputs_give_a_zero_target(
    name: str, b: Bars, nan_share: float, data: st.DataObject
) -> None:
    """Warm-up, and NaN anywhere in the inputs: where any feature the strategy reads is NaN at
    row i, target[i] is 0; the target is finite everywhere."""
    params = data.draw(strategy_params(name))
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    close = b.close.copy()
    close[rng.random(len(b)) < nan_share] = np.nan
    fake = FakeData(b.open, b.high, b.low, close, b.volume)
    store = FeatureStore(fake)
    target = compute_target(store, name, params, len(b))
    unknown = np.zeros(len(b), dtype=bool)
    for spec in required_features(name, params):
        unknown |= np.isnan(store.get(spec))
    assert np.isfinite(target).all()
    assert not target[unknown].any()
    if required_features(name, params):
        assert target[0] == 0.0  # every feature is NaN at row 0 (the registry's shift)


@SETTINGS
@given(b=bars(min_size=2, max_size=250), data=st.data())
@pytest.mark.parametrize("name", LONG_SHORT)
def test_long_only_is_the_long_side_of_long_short(name: str, b: Bars, data: st.DataObject) -> None:
    params = data.draw(strategy_params(name, long_short=True))
    ds = dataset(b)
    both = target_of(ds, name, params)
    long_only = target_of(ds, name, params | {"long_short": False})
    size = params["size"]
    assert set(np.unique(both)) <= {-size, 0.0, size}
    assert set(np.unique(long_only)) <= {0.0, size}
    np.testing.assert_array_equal(long_only, np.maximum(both, 0.0))


@SETTINGS
@given(b=bars(min_size=2, max_size=250), data=st.data())
def test_rsi_reversion_is_long_or_flat(b: Bars, data: st.DataObject) -> None:
    params = data.draw(strategy_params("rsi_reversion"))
    assert set(np.unique(target_of(dataset(b), "rsi_reversion", params))) <= {0.0, params["size"]}


def perturbed(b: Bars, k: int, seed: int) -> Bars:
    """Bars k.. replaced by another valid path; bars before k untouched."""
    rng = np.random.default_rng(seed)
    scale = np.exp(rng.normal(0.0, 0.1, len(b)))
    scale[:k] = 1.0
    o, h, lo, c = (a * scale for a in (b.open, b.high, b.low, b.close))
    return Bars(b.ts, o, h, lo, c, b.volume)


@SETTINGS
@given(b=bars(min_size=3, max_size=100), data=st.data())
@pytest.mark.parametrize("name", NAMES)
def test_changing_bars_from_k_leaves_target_up_to_k_unchanged(
    name: str, b: Bars, data: st.DataObject
) -> None:
    """SPEC §2 at strategy level: target[0..k] is decided before bar k's data exist."""
    params = data.draw(strategy_params(name))
    k = data.draw(st.integers(0, len(b) - 1))
    base = target_of(dataset(b), name, params)
    other = target_of(dataset(perturbed(b, k, data.draw(st.integers(0, 2**32 - 1)))), name, params)
    assert base[: k + 1].tobytes() == other[: k + 1].tobytes()
    # unknowable later bars (NaN from k on) change nothing either
    nan_after = b.close.copy()
    nan_after[k:] = np.nan
    fake = FakeData(b.open, b.high, b.low, nan_after, b.volume)
    assert target_of(fake, name, params)[: k + 1].tobytes() == base[: k + 1].tobytes()


# --------------------------------------------------------------------------- parameter rules


@pytest.mark.parametrize(
    ("name", "params", "loc", "message"),
    [
        ("sma_cross", {"fast": 50, "slow": 10}, "params", "fast (50) must be less than slow (10)"),
        ("sma_cross", {"fast": 20, "slow": 20}, "params", "fast (20) must be less than slow (20)"),
        ("sma_cross", {"fast": 0}, "params.fast", "greater than or equal to 1"),
        ("sma_cross", {"fast": -3}, "params.fast", "greater than or equal to 1"),
        ("sma_cross", {"slow": 1}, "params.slow", "greater than or equal to 2"),
        ("sma_cross", {"fast": True}, "params.fast", "expected a number, got a boolean"),
        ("sma_cross", {"size": False}, "params.size", "expected a number, got a boolean"),
        ("sma_cross", {"fast": 2.5}, "params.fast", "integer"),
        ("sma_cross", {"size": 0}, "params.size", "greater than 0"),
        ("sma_cross", {"size": float("nan")}, "params.size", ""),
        ("sma_cross", {"ma": "wma"}, "params.ma", "'sma' or 'ema'"),
        ("sma_cross", {"fastt": 5}, "params.fastt", "Extra inputs are not permitted"),
        ("sma_cross", [10, 50], "params", "expected an object"),
        ("ma_trend", {"window": 0}, "params.window", "greater than or equal to 1"),
        ("ma_trend", {"window": True}, "params.window", "boolean"),
        (
            "channel_breakout",
            {"entry_window": 10, "exit_window": 20},
            "params",
            "exit_window (20) must be less than or equal to entry_window (10)",
        ),
        ("channel_breakout", {"entry_window": 1}, "params.entry_window", "greater than or equal to 2"),
        ("channel_breakout", {"exit_window": -1}, "params.exit_window", "greater than or equal to 2"),
        ("rsi_reversion", {"lower": 70, "upper": 30}, "params", "lower (70) must be less than upper (30)"),
        ("rsi_reversion", {"lower": 50, "upper": 50}, "params", "lower (50) must be less than upper (50)"),
        ("rsi_reversion", {"upper": 101}, "params.upper", "less than or equal to 100"),
        ("rsi_reversion", {"window": 0}, "params.window", "greater than or equal to 1"),
        ("rsi_reversion", {"long_short": True}, "params.long_short", "Extra inputs"),
        ("buy_and_hold", {"size": -1.0}, "params.size", "greater than 0"),
    ],
)  # fmt: skip
def test_bad_strategy_params_are_rejected_naming_the_field(
    name: str, params: Any, loc: str, message: str
) -> None:
    with pytest.raises(ConfigError) as info:
        resolve_strategy_params(name, params)
    assert any(at == loc and message in msg for at, msg in info.value.errors), info.value
    assert f"strategy {name!r}" in str(info.value)


def test_cross_field_rules_name_both_fields_in_a_request() -> None:
    with pytest.raises(ConfigError) as info:
        parse_config({"strategy": {"name": "sma_cross", "params": {"fast": 30, "slow": 30}}})
    assert info.value.errors == [("strategy.params", "fast (30) must be less than slow (30)")]
    with pytest.raises(ConfigError) as info:
        parse_config({"strategy": {"name": "sma_cross", "params": {"fast": 0}}})
    assert [loc for loc, _ in info.value.errors] == ["strategy.params.fast"]


def test_unknown_strategy_lists_the_known_ones() -> None:
    with pytest.raises(ConfigError) as info:
        resolve_strategy_params("sma_crossover", {})
    assert [loc for loc, _ in info.value.errors] == ["name"]
    assert "'sma_crossover'" in str(info.value) and all(n in str(info.value) for n in NAMES)


def test_defaults_are_valid_and_listed_with_their_features() -> None:
    """The registry lists each strategy's features at its default parameters."""
    for entry in list_strategies():
        defaults = resolve_strategy_params(entry["name"], {})
        listed = {FeatureSpec(**f).key() for f in entry["features"].values()}
        assert {spec.key() for spec in required_features(entry["name"], defaults)} == listed


class _BadParams(Params):
    pass


class _Bad(Strategy[_BadParams]):
    name = "bad"
    description = "returns what it is told to"
    Params = _BadParams
    answer: ClassVar[np.ndarray] = np.zeros(0)

    @classmethod
    def target(cls, f: Mapping[str, np.ndarray], p: _BadParams, n: int) -> np.ndarray:
        return cls.answer


def test_compute_target_rejects_a_broken_strategy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(registry._REGISTRY, "bad", _Bad)
    b = fixed_bars(5)
    store = FeatureStore(dataset(b))
    monkeypatch.setattr(_Bad, "answer", np.array([0.0, 1.0, np.nan, 1.0, 0.0]))
    with pytest.raises(ValueError, match="non-finite target at bar 2"):
        compute_target(store, "bad", {}, 5)
    monkeypatch.setattr(_Bad, "answer", np.zeros(4))
    with pytest.raises(ValueError, match=r"shape \(4,\), expected \(5,\)"):
        compute_target(store, "bad", {}, 5)
    with pytest.raises(ValueError, match="holds 5 bars"):
        compute_target(store, "buy_and_hold", {}, 6)
