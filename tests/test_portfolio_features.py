"""The portfolio feature store (btlab.portfolio_features): each registered feature computed on
each symbol's own bars and placed on the union clock, shifted (SPEC §2, §8 "Causality")."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import btlab
from btlab.config import FeatureSpec
from btlab.data.portfolio import PortfolioDataset, from_members
from btlab.errors import ConfigError
from btlab.features import FeatureStore, list_features, raw_feature
from btlab.portfolio_features import PortfolioFeatureStore, Universe
from tests.portfolios import perturbed, portfolios

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
# `column` reads an extra column these generated portfolios do not have (tests/test_extra_columns.py)
REGISTERED = [f["name"] for f in list_features() if f["name"] != "column"]


@st.composite
def specs(draw: st.DrawFn) -> FeatureSpec:
    """A registered feature with small random parameters (any source its schema allows)."""
    name = draw(st.sampled_from(REGISTERED))
    schema = next(f["params"] for f in list_features() if f["name"] == name)
    params: dict[str, Any] = {}
    for key, prop in schema["properties"].items():
        if "enum" in prop:
            params[key] = draw(st.sampled_from(prop["enum"]))
        elif prop.get("type") == "integer":
            params[key] = draw(st.integers(prop["minimum"], prop["minimum"] + 6))
    return FeatureSpec(name=name, params=params)


@SETTINGS
@given(data=portfolios(), spec=specs())
def test_each_value_is_the_feature_at_the_symbols_last_own_bar_before(
    data: PortfolioDataset, spec: FeatureSpec
) -> None:
    """value[i, k] = raw_k[c - 1] with c the number of symbol k's bars timestamped before clock
    bar i (found here from the timestamps, not the clock positions); NaN while c == 0."""
    got = PortfolioFeatureStore(data).get(spec)
    assert got.shape == (len(data), data.n_symbols) and got.dtype == np.float64
    for k, symbol in enumerate(data.symbols):
        member = data.members[symbol]
        raw = raw_feature(member, spec)  # over the symbol's own bars only
        c = np.searchsorted(member.ts, data.ts, side="left")
        want = np.where(c > 0, raw[np.maximum(c - 1, 0)], np.nan)
        assert got[:, k].tobytes() == want.tobytes(), (symbol, spec)


@SETTINGS
@given(data=portfolios(), spec=specs())
def test_at_a_symbols_own_bars_it_is_the_single_symbol_store(
    data: PortfolioDataset, spec: FeatureSpec
) -> None:
    """The same numbers as the single-symbol registry gives the symbol run on its own."""
    got = PortfolioFeatureStore(data).get(spec)
    for k, symbol in enumerate(data.symbols):
        single = FeatureStore(data.members[symbol]).get(spec)
        assert got[data.positions[k], k].tobytes() == single.tobytes()


@SETTINGS
@given(data=portfolios(), spec=specs(), draw=st.data())
def test_changing_bars_from_j_leaves_features_up_to_j_unchanged(
    data: PortfolioDataset, spec: FeatureSpec, draw: st.DataObject
) -> None:
    """Shifted on the clock: row j is computed from bars strictly before clock bar j."""
    j = draw.draw(st.integers(0, len(data) - 1))
    base = PortfolioFeatureStore(data).get(spec)
    for nan in (False, True):
        other = PortfolioFeatureStore(perturbed(data, j, draw.draw(st.integers(0, 99)), nan))
        assert other.get(spec)[: j + 1].tobytes() == base[: j + 1].tobytes()


def test_a_moving_average_runs_over_the_symbols_own_bars_across_its_gap() -> None:
    """B misses clock bars 2 and 3: its 2-bar SMA at clock bar 5 averages its closes of clock
    bars 1 and 4 (its last two bars before 5); through the gap it holds the value of bar 1."""
    a = btlab.synthetic(bars=7, seed=1)
    full = btlab.synthetic(bars=7, seed=2)
    keep = np.array([0, 1, 4, 5])
    frame = full.to_frame().iloc[keep]
    b = btlab.from_dataframe(frame, timeframe="1d", calendar="equities")
    store = PortfolioFeatureStore(from_members({"A": a, "B": b}))
    sma = store.get(FeatureSpec(name="sma", params={"window": 2}))
    close = np.asarray(full.close)
    assert np.isnan(sma[:2, 1]).all()  # bars 0, 1: fewer than two own bars before
    want = (close[0] + close[1]) / 2
    assert sma[2, 1] == want and sma[3, 1] == want and sma[4, 1] == want  # through the gap
    assert sma[5, 1] == (close[1] + close[4]) / 2
    assert sma[6, 1] == (close[4] + close[5]) / 2  # after B's last bar: its last value


def test_listing_and_delisting_on_the_clock() -> None:
    early = btlab.synthetic(bars=30, seed=1, start=datetime(2015, 1, 5))
    late = btlab.synthetic(bars=10, seed=2, start=datetime(2015, 1, 19))
    data = from_members({"LATE": late, "EARLY": early})
    assert data.symbols == ("EARLY", "LATE")
    store = PortfolioFeatureStore(data)
    price = store.get(FeatureSpec(name="price", params={}))
    first, last = int(data.first_bar[1]), int(data.last_bar[1])
    assert first == 10 and last == 19
    assert np.isnan(price[: first + 1, 1]).all()  # not known before the bar after its first
    assert price[first + 1, 1] == late.close[0]
    assert (price[last + 1 :, 1] == late.close[-1]).all()  # its last close, carried
    tradable = store.universe.tradable
    assert not tradable[:first, 1].any() and tradable[first : last + 1, 1].all()
    assert not tradable[last + 1 :, 1].any() and tradable[:, 0].all()


def test_k_1_is_the_single_symbol_store_bit_for_bit() -> None:
    ds = btlab.synthetic(bars=300, seed=3)
    store = PortfolioFeatureStore(from_members({"X": ds}))
    single = FeatureStore(ds)
    for name in REGISTERED:
        spec = FeatureSpec(name=name, params={"source": "close"} if name == "price" else {})
        assert store.get(spec)[:, 0].tobytes() == single.get(spec).tobytes(), name


def test_features_are_read_only_and_computed_once_per_spec() -> None:
    data = from_members({s: btlab.synthetic(bars=50, seed=i) for i, s in enumerate("ABC")})
    store = PortfolioFeatureStore(data)
    first = store.get(FeatureSpec(name="sma", params={"window": 5}))
    again = store.get(FeatureSpec(name="sma", params={"window": 5, "source": "close"}))
    assert again is first and store.computed == 1
    store.get(FeatureSpec(name="sma", params={"window": 6}))
    assert store.computed == 2
    assert not first.flags.writeable
    with pytest.raises(ValueError, match="read-only"):
        first[-1, 0] = 0.0
    with pytest.raises(ValueError, match="WRITEABLE"):
        first.flags.writeable = True
    assert not store.universe.tradable.flags.writeable


def test_a_shared_cache_is_keyed_by_the_portfolio() -> None:
    cache: dict[str, np.ndarray] = {}
    one = from_members({s: btlab.synthetic(bars=40, seed=i) for i, s in enumerate("AB")})
    two = from_members({s: btlab.synthetic(bars=40, seed=i + 5) for i, s in enumerate("AB")})
    spec = FeatureSpec(name="ema", params={"window": 4})
    a = PortfolioFeatureStore(one, cache).get(spec)
    reused = PortfolioFeatureStore(one, cache)
    assert reused.get(spec) is a and reused.computed == 0
    b = PortfolioFeatureStore(two, cache).get(spec)
    assert b is not a and b.tobytes() != a.tobytes() and len(cache) == 2


def test_a_symbol_without_adj_close_is_named() -> None:
    with_adj = btlab.synthetic(bars=20, seed=1)
    frame = with_adj.to_frame()
    frame["adj_close"] = frame["close"]
    data = from_members({"HAS": btlab.from_dataframe(frame, timeframe="1d"), "LACKS": with_adj})
    with pytest.raises(ConfigError, match="symbol 'LACKS'") as info:
        PortfolioFeatureStore(data).get(FeatureSpec(name="sma", params={"source": "adj_close"}))
    assert info.value.errors == [("source", "the dataset has no adj_close column")]


def test_universe_of_a_dataset() -> None:
    a = btlab.synthetic(bars=5, seed=1)
    b = btlab.synthetic(bars=2, seed=2, start=datetime(2015, 1, 6))
    universe = Universe.of(from_members({"A": a, "B": b}))
    assert universe.n == 5 and universe.n_symbols == 2 and universe.symbols == ("A", "B")
    assert universe.tradable[:, 1].tolist() == [
        False,
        False,
        True,
        True,
        False,
    ]  # 2, 5, 6, 7, 8 Jan
