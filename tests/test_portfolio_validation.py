"""The joint permutation test of a portfolio (SPEC §8 "Validation"): one shuffle of the clock's
bars applied to every symbol at once, each symbol's bars kept where they are on the clock, the
portfolio pipeline re-run on every permuted path."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import assume, given, settings

import btlab
from btlab import data as btdata
from btlab.data.portfolio import from_members, with_prices
from btlab.portfolio_run import PortfolioResult, permutation_statistic
from btlab.validation.joint_permutation import JointPermutationBase
from btlab.validation.permutation import PermutationBase, permutation_test
from tests.portfolios import DAY, T0, member, portfolios

# staggered listings, delistings and missing bars: every kind of NaN row on the clock
DATA = {"symbols": 4, "bars": 240, "list_within": 0.3, "delist_within": 0.2,
        "missing_bar_prob": 0.05}  # fmt: skip
XS = {"name": "xs_momentum", "params": {"lookback": 20, "top": 2}}


def _run(config: dict[str, Any]) -> PortfolioResult:
    result = btlab.run(config)
    assert isinstance(result, PortfolioResult)
    return result


def _validated(seed: int, n: int = 12, data: dict[str, Any] | None = None) -> PortfolioResult:
    return _run({
        "seed": seed, "data": data or DATA, "strategy": XS,
        "validation": {"enabled": True, "permutation": {"n_permutations": n},
                       "bootstrap": {"enabled": False}},
    })  # fmt: skip


@pytest.mark.parametrize(
    "config",
    [
        {"data": DATA, "strategy": XS},
        {"data": DATA, "strategy": {"name": "sma_cross", "params": {"fast": 5, "slow": 20}},
         "risk": {"sizing": "vol_target", "vol_lookback": 10}},
        {"data": {**DATA, "symbols": 3}, "strategy": {"name": "inverse_vol"},
         "execution": {"rebalance": "monthly", "commission_bps": 5.0}},
    ],
    ids=["xs_momentum", "per_symbol_vol_target", "inverse_vol_monthly"],
)  # fmt: skip
def test_the_real_paths_statistic_is_the_runs_sharpe_bit_for_bit(config: dict[str, Any]) -> None:
    result = _run({**config, "validation": {"enabled": False}})
    ds = result.dataset
    assert np.isnan(ds.close).any()  # the clock has NaN rows to carry through
    value = permutation_statistic(result)(ds.open, ds.high, ds.low, ds.close)
    assert math.isfinite(value)
    assert value == result.metrics["sharpe"]


def test_a_portfolio_run_has_the_permutation_section_without_a_warning() -> None:
    result = _validated(7)
    assert result.validation is not None
    section = result.validation["permutation"]
    assert section["n_permutations"] == 12 and section["real"] == result.metrics["sharpe"]
    assert section["n_nan"] == 0 and 0.0 < section["p_value"] <= 1.0
    assert "permutation_skipped" not in {w.code for w in result.warnings}


def test_the_same_seed_gives_the_same_p_value_and_another_seed_another_null() -> None:
    a, b, c = (_validated(seed).validation["permutation"] for seed in (3, 3, 4))  # type: ignore[index]
    assert a == b
    assert a["null_mean"] != c["null_mean"]


def test_threads_change_nothing() -> None:
    result = _run({"data": DATA, "strategy": XS, "validation": {"enabled": False}})
    ds, stat = result.dataset, permutation_statistic(result)
    ohlc = (ds.open, ds.high, ds.low, ds.close)
    one = permutation_test(stat, *ohlc, n_permutations=6, seed=11, workers=1)
    many = permutation_test(stat, *ohlc, n_permutations=6, seed=11, workers=3)
    assert one == many


def _frame(ts: np.ndarray, close: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame({
        "ts": pd.to_datetime(ts, utc=True), "open": close * 0.99, "high": close * 1.02,
        "low": close * 0.97, "close": close, "volume": np.full(ts.shape[0], 1e3),
    })  # fmt: skip


def test_the_permutation_is_joint_perfectly_correlated_symbols_stay_so() -> None:
    rng = np.random.default_rng(5)
    n = 80
    grid = T0 + DAY * np.arange(n, dtype=np.int64)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.02, n)))
    members = {
        "A": btdata.from_dataframe(_frame(grid, close), symbol="A", timeframe="1d", calendar="24x7"),
        "B": btdata.from_dataframe(_frame(grid, 3.0 * close), symbol="B", timeframe="1d",
                                   calendar="24x7"),
        # listed late, with a gap: its own rows must not break the pair's
        "C": member(np.delete(grid[30:], 10), rng, "C"),
    }  # fmt: skip
    data = from_members(members)
    base = JointPermutationBase(data.open, data.high, data.low, data.close)
    r_a = np.diff(np.log(data.close[:, 0]))
    for key in range(20):
        *_, c = base.permute_key(key)
        ra, rb = np.diff(np.log(c[:, 0])), np.diff(np.log(c[:, 1]))
        assert np.corrcoef(ra, rb)[0, 1] > 1.0 - 1e-12
        np.testing.assert_allclose(c[:, 1], 3.0 * c[:, 0], rtol=1e-12)
        assert not np.allclose(ra, r_a)  # it did move the bars
        np.testing.assert_allclose(np.sort(ra), np.sort(r_a), rtol=1e-9, atol=1e-15)


def test_one_symbol_without_gaps_gets_the_single_symbol_tests_path() -> None:
    rng = np.random.default_rng(2)
    ds = member(T0 + DAY * np.arange(60, dtype=np.int64), rng, "X")
    single = PermutationBase(ds.open, ds.high, ds.low, ds.close)
    joint = JointPermutationBase(*(a[:, None] for a in (ds.open, ds.high, ds.low, ds.close)))
    for key in (0, 1, 2**63 + 5):
        for a, b in zip(single.permute_key(key), joint.permute_key(key), strict=True):
            assert np.array_equal(a, b[:, 0])


@settings(max_examples=60, deadline=None)
@given(portfolios(max_symbols=4, min_bars=2, max_bars=50))
def test_every_permuted_path_keeps_each_symbols_bars_and_the_data_rules(data: Any) -> None:
    assume(len(data) >= 2)  # a clock of one bar has nothing to permute
    base = JointPermutationBase(data.open, data.high, data.low, data.close)
    for key in (1, 99):
        o, h, lo, c = base.permute_key(key)
        permuted = with_prices(data, o, h, lo, c)
        for k, symbol in enumerate(data.symbols):
            m, real = permuted.members[symbol], data.members[symbol]
            assert np.array_equal(m.ts, real.ts) and np.array_equal(m.volume, real.volume)
            first = int(data.first_bar[k])  # the anchor of the symbol's path, unchanged
            assert (o[first, k], c[first, k]) == (data.open[first, k], data.close[first, k])
            # the §1 rules, checked by the importer itself
            frame = m.to_frame()
            btdata.from_dataframe(frame, symbol=symbol, timeframe="1d", calendar="24x7")
            # the symbol's own moves, reordered: the same multiset of close ratios
            real_moves = np.sort(real.close[1:] / real.close[:-1])
            np.testing.assert_allclose(np.sort(m.close[1:] / m.close[:-1]), real_moves, rtol=1e-9)
        for a in (o, h, lo, c):  # NaN exactly where the symbol has no bar
            assert np.array_equal(np.isnan(a), np.isnan(data.close))


def test_a_strategy_on_pure_noise_gets_no_extreme_p_value() -> None:
    # a new market each time (data seed) and a new set of permutations (root seed)
    p = [
        _validated(seed, n=19, data={"symbols": 4, "bars": 250, "drift_annual": 0.0,
                                     "seed": 100 + seed}).validation["permutation"]["p_value"]  # type: ignore[index]
        for seed in (1, 2, 3, 4)
    ]  # fmt: skip
    # under the null p is uniform on {1/20, ..., 1}: loose bounds a true null passes (one
    # small p-value in four is chance; seed 2's market fell and the ranking sat it out)
    assert sum(v <= 0.1 for v in p) <= 1, p
    assert 0.1 < float(np.mean(p)) < 0.9, p


def test_the_section_counts_the_bars_it_can_move_and_warns_where_few_can() -> None:
    full = _validated(1, n=3, data={"symbols": 3, "bars": 120}).validation["permutation"]  # type: ignore[index]
    assert full["bars_permutable"] == full["bars_after_first"] == 119
    # listing and delisting only split the clock into strata: nothing is pinned
    staggered = _validated(1, n=3, data={**DATA, "missing_bar_prob": 0.0})
    section = staggered.validation["permutation"]  # type: ignore[index]
    assert section["bars_permutable"] >= section["bars_after_first"] - 2
    assert "permutation_weak" not in {w.code for w in staggered.warnings}
    # halts of many symbols: most bars have a pattern of their own and stay in place
    halted = _validated(1, n=3, data={"symbols": 12, "bars": 200, "missing_bar_prob": 0.1})
    section = halted.validation["permutation"]  # type: ignore[index]
    assert section["bars_permutable"] < 0.5 * section["bars_after_first"]
    assert "permutation_weak" in {w.code for w in halted.warnings}


def test_paths_that_are_not_a_portfolios_are_refused_by_name() -> None:
    close = np.array([[1.0, np.nan], [1.1, 2.0], [1.2, 2.1]])
    high = close * 1.01
    with pytest.raises(ValueError, match="high must be finite exactly where close is"):
        JointPermutationBase(close, np.where(np.isnan(close), 1.0, high), close, close)
    with pytest.raises(ValueError, match="> 0"):
        JointPermutationBase(close, high, close * 0.0, close)
    with pytest.raises(ValueError, match="at least 2 bars"):
        JointPermutationBase(close[:1], high[:1], close[:1], close[:1])
