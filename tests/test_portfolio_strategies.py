"""The portfolio strategy registry (btlab.portfolio_strategies): causality over K symbols with
listings, delistings and missing bars (SPEC §2 with §8's wording), the per-symbol rule against
single-symbol runs, each cross-sectional rule against a plain computation, and the parameters."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, ClassVar

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import btlab
from btlab import portfolio_strategies as registry
from btlab.config import FeatureSpec
from btlab.data.portfolio import PortfolioDataset, from_members
from btlab.errors import ConfigError
from btlab.features import FeatureStore, Params, raw_feature
from btlab.portfolio_features import PortfolioFeatureStore, Universe
from btlab.portfolio_strategies import (
    PortfolioStrategy,
    PortfolioStrategyConfig,
    compute_portfolio_target,
    list_portfolio_strategies,
    required_portfolio_features,
    resolve_portfolio_strategy_params,
)
from btlab.strategies import compute_target, list_strategies
from tests.portfolios import perturbed, portfolios
from tests.test_strategies import strategy_params

NAMES = [s["name"] for s in list_portfolio_strategies()]
SINGLE = [s["name"] for s in list_strategies()]
SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def portfolio_params(draw: st.DrawFn, name: str, n_symbols: int) -> dict[str, Any]:
    """Random valid parameters of portfolio strategy `name` for a portfolio of n_symbols."""
    gross = draw(st.sampled_from([1.0, 0.5, 2.0]))
    if name == "equal_weight":
        return {"gross": gross}
    if name == "inverse_vol":
        return {"lookback": draw(st.integers(2, 12)), "gross": gross}
    if name == "xs_momentum":
        top = draw(st.integers(1, n_symbols))
        bottom = draw(st.integers(0, n_symbols - top))
        return {"lookback": draw(st.integers(1, 12)), "top": top, "bottom": bottom, "gross": gross}
    if name == "per_symbol":
        inner = draw(st.sampled_from(SINGLE))
        p: dict[str, Any] = {"strategy": inner, "params": draw(strategy_params(inner))}
        if draw(st.booleans()):
            symbols = [f"S{k}" for k in range(n_symbols)]
            p["weights"] = {s: draw(st.sampled_from([0.5, 0.25, -0.3, 1.0])) for s in symbols}
        return p
    raise KeyError(f"no parameters for portfolio strategy {name!r}: add them to this module")


def target_of(data: PortfolioDataset, name: str, params: Mapping[str, Any]) -> np.ndarray:
    return compute_portfolio_target(PortfolioFeatureStore(data), name, params)


# --------------------------------------------------------------------------- causality


@SETTINGS
@given(data=portfolios(max_bars=80), draw=st.data())
@pytest.mark.parametrize("name", NAMES)
def test_changing_any_symbol_from_clock_bar_j_leaves_targets_up_to_j_unchanged(
    name: str, data: PortfolioDataset, draw: st.DataObject
) -> None:
    """SPEC §8: target[i, k] is decided before clock bar i opens from bars strictly before i,
    so changing any value of any symbol at clock bars j.. (another path, or NaN) leaves
    target[0..j] bit-identical."""
    params = draw.draw(portfolio_params(name, data.n_symbols))
    j = draw.draw(st.integers(0, len(data) - 1))
    base = target_of(data, name, params)
    for nan in (False, True):
        other = target_of(
            perturbed(data, j, draw.draw(st.integers(0, 2**32 - 1)), nan), name, params
        )
        assert other[: j + 1].tobytes() == base[: j + 1].tobytes()


@SETTINGS
@given(data=portfolios(max_bars=80), draw=st.data())
@pytest.mark.parametrize("name", NAMES)
def test_a_symbol_not_listed_has_target_0(
    name: str, data: PortfolioDataset, draw: st.DataObject
) -> None:
    params = draw.draw(portfolio_params(name, data.n_symbols))
    target = target_of(data, name, params)
    assert target.shape == (len(data), data.n_symbols) and target.dtype == np.float64
    assert np.isfinite(target).all()
    clock = np.arange(len(data))[:, None]
    listed = (clock >= data.first_bar) & (clock <= data.last_bar)
    assert not target[~listed].any()


# --------------------------------------------------------------------------- per_symbol


@SETTINGS
@given(data=portfolios(max_bars=80), draw=st.data())
def test_per_symbol_is_each_symbols_own_run_times_its_weight(
    data: PortfolioDataset, draw: st.DataObject
) -> None:
    """At symbol k's own bars, target[:, k] is its single-symbol target (computed on the symbol
    alone) times its weight; in its gaps, the target of its next own bar."""
    params = draw.draw(portfolio_params("per_symbol", data.n_symbols))
    target = target_of(data, "per_symbol", params)
    weights = params.get("weights") or {s: 1.0 / data.n_symbols for s in data.symbols}
    for k, symbol in enumerate(data.symbols):
        member = data.members[symbol]
        single = compute_target(
            FeatureStore(member), params["strategy"], params["params"], len(member)
        )
        pos = data.positions[k]
        assert target[pos, k].tobytes() == (weights[symbol] * single).tobytes()
        nxt = np.searchsorted(pos, np.arange(pos[0], pos[-1] + 1))  # its next own bar
        assert (
            target[pos[0] : pos[-1] + 1, k].tobytes() == (weights[symbol] * single[nxt]).tobytes()
        )


@pytest.mark.parametrize("inner", SINGLE)
def test_per_symbol_with_one_symbol_is_the_single_symbol_target_bit_for_bit(inner: str) -> None:
    ds = btlab.synthetic(bars=400, seed=11)
    params = {"strategy": inner, "params": {}}
    got = target_of(from_members({"ONLY": ds}), "per_symbol", params)
    want = compute_target(FeatureStore(ds), inner, {}, len(ds))
    assert got[:, 0].tobytes() == want.tobytes()


# --------------------------------------------------------------------------- cross-sectional rules


def three_symbols() -> PortfolioDataset:
    """A lists first; B lists on the 11th bar; C delists after 40 bars."""
    return from_members(
        {
            "A": btlab.synthetic(bars=60, seed=1, start=datetime(2015, 1, 5)),
            "B": btlab.synthetic(bars=50, seed=2, start=datetime(2015, 1, 19)),
            "C": btlab.synthetic(bars=40, seed=3, start=datetime(2015, 1, 5)),
        }
    )


def test_equal_weight_splits_gross_over_the_listed_symbols() -> None:
    target = target_of(three_symbols(), "equal_weight", {"gross": 0.9})
    np.testing.assert_allclose(target[5], [0.45, 0.0, 0.45], rtol=1e-15)
    np.testing.assert_allclose(target[20], [0.3, 0.3, 0.3], rtol=1e-15)
    np.testing.assert_allclose(target[45], [0.45, 0.45, 0.0], rtol=1e-15)


def _known_before(data: PortfolioDataset, spec: FeatureSpec) -> np.ndarray:
    """(n, K): the raw feature at each symbol's last bar timestamped before each clock bar."""
    out = np.full((len(data), data.n_symbols), np.nan)
    for k, symbol in enumerate(data.symbols):
        member = data.members[symbol]
        raw = raw_feature(member, spec)
        for i, ts in enumerate(data.ts):
            before = np.flatnonzero(member.ts < ts)
            if before.size:
                out[i, k] = raw[before[-1]]
    return out


def test_inverse_vol_weights_are_one_over_vol_normalised() -> None:
    data = three_symbols()
    target = target_of(data, "inverse_vol", {"lookback": 5})
    vol = _known_before(data, FeatureSpec(name="rolling_vol", params={"window": 5}))
    for i in range(len(data)):
        known = [k for k in range(3) if np.isfinite(vol[i, k]) and i <= data.last_bar[k]]
        want = np.zeros(3)
        if known:
            inv = 1.0 / vol[i, known]
            want[known] = inv / inv.sum()
        np.testing.assert_allclose(target[i], want, rtol=1e-12, atol=0.0)
    assert not target[:6].any()  # A and C need 5 returns (6 bars) before their first weight


def test_xs_momentum_holds_the_best_and_shorts_the_worst_trailing_returns() -> None:
    data = three_symbols()
    target = target_of(data, "xs_momentum", {"lookback": 3, "top": 1, "bottom": 1, "gross": 2.0})
    ret = _known_before(data, FeatureSpec(name="trailing_return", params={"window": 3}))
    traded = 0
    for i in range(len(data)):
        ranked = [k for k in range(3) if np.isfinite(ret[i, k]) and i <= data.last_bar[k]]
        want = np.zeros(3)
        if len(ranked) >= 2:
            order = sorted(ranked, key=lambda k: (-ret[i, k], k))
            want[order[0]], want[order[-1]] = 1.0, -1.0
            traded += 1
        assert target[i].tolist() == want.tolist(), i
    assert traded > 40


def test_xs_momentum_ties_go_to_symbol_order_and_a_price_path_is_one_return() -> None:
    """Two symbols with the same closes tie: the earlier symbol is held long."""
    same = btlab.synthetic(bars=30, seed=4)
    data = from_members({"B": same, "A": same, "C": btlab.synthetic(bars=30, seed=5)})
    target = target_of(data, "xs_momentum", {"lookback": 2, "top": 1})
    held = target[3:]
    assert not held[:, 1].any()  # B never: a tie with A goes to A
    assert ((held[:, 0] == 1.0) | (held[:, 2] == 1.0)).all()


# --------------------------------------------------------------------------- parameters


@pytest.mark.parametrize(
    ("name", "params", "loc", "message"),
    [
        ("equal_weight", {"gross": 0}, "params.gross", "greater than 0"),
        ("equal_weight", {"gross": True}, "params.gross", "expected a number, got a boolean"),
        ("inverse_vol", {"lookback": 1}, "params.lookback", "greater than or equal to 2"),
        ("inverse_vol", {"lookback": 2.5}, "params.lookback", "integer"),
        ("xs_momentum", {"top": 0}, "params.top", "greater than or equal to 1"),
        ("xs_momentum", {"bottom": -1}, "params.bottom", "greater than or equal to 0"),
        ("xs_momentum", {"lookback": 0}, "params.lookback", "greater than or equal to 1"),
        ("xs_momentum", {"topp": 2}, "params.topp", "Extra inputs are not permitted"),
        ("per_symbol", {"strategy": "nope"}, "params.strategy", "unknown strategy 'nope'"),
        ("per_symbol", {"params": {"fast": 0}}, "params.params.fast", "greater than or equal to 1"),
        ("per_symbol", {"params": {"fast": 50, "slow": 10}}, "params.params", "fast (50) must be less than slow (10)"),
        ("per_symbol", {"weights": {"A": "x"}}, "params.weights.A", "number"),
        ("per_symbol", {"weights": [1.0]}, "params.weights", "dictionary"),
    ],
)  # fmt: skip
def test_bad_params_are_rejected_naming_the_field(
    name: str, params: dict[str, Any], loc: str, message: str
) -> None:
    with pytest.raises(ConfigError) as info:
        resolve_portfolio_strategy_params(name, params)
    assert any(got == loc and message in msg for got, msg in info.value.errors), info.value.errors


def test_per_symbol_weights_must_name_each_symbol() -> None:
    data = from_members({s: btlab.synthetic(bars=30, seed=i) for i, s in enumerate("ABC")})
    params = {"strategy": "buy_and_hold", "weights": {"A": 0.5, "B": 0.5, "Z": 1.0}}
    with pytest.raises(ConfigError) as info:
        target_of(data, "per_symbol", params)
    assert info.value.errors == [
        ("params.weights", "unknown symbol 'Z'"),
        ("params.weights", "no weight for 1 symbol(s): 'C'"),
    ]
    ok = target_of(
        data, "per_symbol", {"strategy": "buy_and_hold", "weights": {"A": 1, "B": -0.5, "C": 0}}
    )
    assert ok[0].tolist() == [1.0, -0.5, 0.0]


def test_xs_momentum_asks_for_no_more_symbols_than_the_portfolio_has() -> None:
    data = from_members({s: btlab.synthetic(bars=30, seed=i) for i, s in enumerate("AB")})
    with pytest.raises(ConfigError, match=r"top \(2\) \+ bottom \(1\) exceeds the portfolio's 2"):
        target_of(data, "xs_momentum", {"top": 2, "bottom": 1})


def test_defaults_resolve_and_list_their_features() -> None:
    listed = {s["name"]: s for s in list_portfolio_strategies()}
    assert set(listed) == {"per_symbol", "equal_weight", "inverse_vol", "xs_momentum"}
    assert listed["equal_weight"]["features"] == {}
    assert listed["inverse_vol"]["features"]["vol"] == {
        "name": "rolling_vol",
        "params": {"window": 60, "source": "close"},
    }
    assert listed["xs_momentum"]["features"]["momentum"]["name"] == "trailing_return"
    assert set(listed["per_symbol"]["features"]) == {"fast", "slow"}  # sma_cross by default
    filled = resolve_portfolio_strategy_params("per_symbol", {"strategy": "ma_trend"})
    assert filled["params"] == {"window": 200, "ma": "sma", "long_short": False, "size": 1.0}
    specs = required_portfolio_features("per_symbol", {"params": {"fast": 5, "slow": 20}})
    assert [s.params["window"] for s in specs] == [5, 20]


def test_the_config_model_fills_defaults_and_names_unknown_strategies() -> None:
    config = PortfolioStrategyConfig.model_validate({"name": "xs_momentum", "params": {"top": 2}})
    assert config.params == {"lookback": 120, "top": 2, "bottom": 0, "gross": 1.0}
    with pytest.raises(ValueError, match="known portfolio strategies: equal_weight, inverse_vol"):
        PortfolioStrategyConfig.model_validate({"name": "momentum"})


class _BadParams(Params):
    pass


class _Bad(PortfolioStrategy[_BadParams]):
    name = "bad"
    description = "answers whatever the test sets"
    Params = _BadParams
    answer: ClassVar[np.ndarray] = np.zeros(0)

    @classmethod
    def target(cls, f: Mapping[str, np.ndarray], p: _BadParams, universe: Universe) -> np.ndarray:
        return cls.answer


def test_compute_portfolio_target_rejects_a_broken_strategy(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(registry._REGISTRY, "bad", _Bad)
    a = btlab.synthetic(bars=4, seed=1)
    b = btlab.synthetic(bars=2, seed=2, start=datetime(2015, 1, 6))
    store = PortfolioFeatureStore(from_members({"A": a, "B": b}))
    answer = np.zeros((4, 2))
    answer[1, 1] = 0.5  # B lists at bar 2
    monkeypatch.setattr(_Bad, "answer", answer)
    with pytest.raises(ValueError, match="not listed at bar 1, symbol 'B'"):
        compute_portfolio_target(store, "bad", {})
    answer[1, 1], answer[3, 0] = 0.0, np.inf
    with pytest.raises(ValueError, match="non-finite target at bar 3, symbol 'A'"):
        compute_portfolio_target(store, "bad", {})
    monkeypatch.setattr(_Bad, "answer", np.zeros(4))
    with pytest.raises(ValueError, match=r"shape \(4,\), expected \(4, 2\)"):
        compute_portfolio_target(store, "bad", {})
