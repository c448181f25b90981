"""Sweeps over request fields (SPEC §10), over portfolios and with calendar rebalances: every
combination equals its single run bit for bit, whichever path ran it."""

from __future__ import annotations

from pathlib import Path

import pytest

import btlab
from btlab.errors import ConfigError
from btlab.sweep import run_sweep
from tests.test_sweep import assert_equals_single_runs

NO_VALIDATION = {"enabled": False}


def test_execution_and_risk_axes_equal_single_runs() -> None:
    res = run_sweep(
        {
            "data": {"bars": 500, "seed": 7},
            "strategy": {"name": "sma_cross"},
            "grid": {
                "fast": [5, 10],
                "slow": [40],
                "execution.commission_bps": [0.0, 5.0],
                "risk.stop_loss": [None, 0.03],
            },
            "validation": NO_VALIDATION,
        }
    )
    assert len(res.table) == 8
    assert set(res.table.columns) >= {"execution.commission_bps", "risk.stop_loss", "fast"}
    assert res.fused  # four groups of settings, each its own fused kernel pass
    assert_equals_single_runs(res)
    # costs only lower a combination's equity: the monotonicity the grid must show
    t = res.table
    free = t[t["execution.commission_bps"] == 0.0].reset_index(drop=True)
    paid = t[t["execution.commission_bps"] == 5.0].reset_index(drop=True)
    assert (paid["final_equity"] <= free["final_equity"]).all()
    best = res.best
    assert set(best["fields"]) == {"execution.commission_bps", "risk.stop_loss"}
    assert res.summary()["best"]["fields"] == best["fields"]


def test_initial_cash_axis_scales_each_row_by_its_own_cash() -> None:
    res = run_sweep(
        {
            "data": {"bars": 300, "seed": 2},
            "grid": {"fast": [5], "slow": [30], "execution.initial_cash": [1e4, 1e6]},
            "validation": NO_VALIDATION,
        }
    )
    assert list(res.table["initial_cash"]) == [1e4, 1e6]
    assert_equals_single_runs(res)


def test_invalid_field_values_are_skipped_with_the_field_named() -> None:
    res = run_sweep(
        {
            "data": {"bars": 300, "seed": 2},
            "grid": {"fast": [5], "slow": [30], "risk.max_leverage": [-1.0, 1.0, 2.0]},
            "validation": NO_VALIDATION,
        }
    )
    assert res.expansion.skipped == 1 and len(res.table) == 2
    assert any("risk.max_leverage" in w.message for w in res.warnings if w.code == "grid_skipped")


@pytest.mark.parametrize(
    ("axis", "needle"),
    [("data.bars", "strategy parameters or the request fields"), ("seed", "not a parameter")],
)
def test_axes_outside_the_sweepable_sections_are_refused(axis: str, needle: str) -> None:
    with pytest.raises(ConfigError) as info:
        run_sweep({"grid": {axis: [1, 2]}, "validation": NO_VALIDATION})
    assert any(loc == f"grid.{axis}" and needle in msg for loc, msg in info.value.errors)


def test_two_axes_for_one_parameter_are_refused() -> None:
    with pytest.raises(ConfigError) as info:
        run_sweep({"grid": {"fast": [5], "strategy.params.fast": [6]}})
    assert any("two axes" in msg for _loc, msg in info.value.errors)


def test_calendar_rebalance_sweep_runs_through_the_engine() -> None:
    res = run_sweep(
        {
            "data": {"bars": 400, "seed": 5},
            "strategy": {"name": "sma_cross"},
            "execution": {"rebalance": "monthly", "commission_bps": 2.0},
            "grid": {"fast": [5, 10], "slow": [40, 60]},
            "validation": NO_VALIDATION,
        }
    )
    assert not res.fused
    assert_equals_single_runs(res)


def test_rebalance_axis_mixes_kernel_and_engine_paths() -> None:
    res = run_sweep(
        {
            "data": {"bars": 400, "seed": 5},
            "grid": {"fast": [5, 10], "slow": [40], "execution.rebalance": ["on_change", "weekly"]},
            "validation": NO_VALIDATION,
        }
    )
    assert len(res.table) == 4
    assert_equals_single_runs(res)


PORTFOLIO = {
    "data": {"bars": 300, "seed": 4, "symbols": 5},
    "strategy": {"name": "xs_momentum"},
    "execution": {"rebalance": "monthly", "commission_bps": 3.0},
}


def test_portfolio_strategy_sweep_equals_portfolio_runs() -> None:
    res = run_sweep(
        {**PORTFOLIO, "grid": {"lookback": [20, 60], "top": [1, 2]}, "validation": NO_VALIDATION}
    )
    assert len(res.table) == 4
    assert isinstance(res.best_run, btlab.PortfolioResult)
    assert_equals_single_runs(res)
    best = btlab.run(res.request.combination_config(res.best["combo"]), data=res.dataset)
    assert best.metrics == res.best["metrics"]


def test_single_strategy_on_a_portfolio_sweeps_its_parameters() -> None:
    res = run_sweep(
        {
            "data": {"bars": 300, "seed": 4, "symbols": 3},
            "strategy": {"name": "sma_cross"},
            "grid": {"fast": [5, 10], "slow": [40]},
            "validation": NO_VALIDATION,
        }
    )
    assert_equals_single_runs(res)


def test_portfolio_sweep_validates_the_best_against_the_grid() -> None:
    res = run_sweep(
        {
            **PORTFOLIO,
            "grid": {"lookback": [20, 60], "top": [1, 2]},
            "validation": {"permutation": {"n_permutations": 5}, "bootstrap": {"n_resamples": 50}},
            "pbo_splits": 4,
        }
    )
    v = res.validation
    assert v is not None and v["sweep"]["n_trials"] == 4
    assert v["pbo"] is not None and 0.0 <= v["pbo"]["pbo"] <= 1.0
    assert v["permutation"]["n_permutations"] == 5
    # the same request gives the same numbers (the joint permutation is seeded)
    again = run_sweep(
        {
            **PORTFOLIO,
            "grid": {"lookback": [20, 60], "top": [1, 2]},
            "validation": {"permutation": {"n_permutations": 5}, "bootstrap": {"n_resamples": 50}},
            "pbo_splits": 4,
        }
    )
    assert again.validation == v and again.config_hash == res.config_hash


def test_field_axis_request_hashes_the_same_whatever_base_value_is_written() -> None:
    grid = {"fast": [5], "slow": [30], "execution.commission_bps": [1.0, 2.0]}
    a = btlab.sweep.parse_sweep_request({"grid": grid})
    b = btlab.sweep.parse_sweep_request({"grid": grid, "execution": {"commission_bps": 9.0}})
    assert a.execution.commission_bps == b.execution.commission_bps == 1.0
    assert a.model_dump() == b.model_dump()


RANDOM = {
    "data": {"bars": 400, "seed": 6},
    "strategy": {"name": "sma_cross"},
    "samples": 12,
    "grid": {
        "fast": {"low": 3, "high": 30, "integer": True},
        "slow": [60, 90, 120],
        "execution.commission_bps": {"low": 0.1, "high": 20.0, "log": True},
    },
    "validation": NO_VALIDATION,
    "seed": 3,
}


def test_random_search_draws_distinct_seeded_points_and_equals_single_runs() -> None:
    res = run_sweep(RANDOM)
    e = res.expansion
    assert e.random and e.size == 12 and len(set(e.points)) == len(e.points)
    fast_i = list(e.axes).index("fast")
    cost_i = list(e.axes).index("execution.commission_bps")
    assert all(isinstance(p[fast_i], int) and 3 <= p[fast_i] <= 30 for p in e.points)
    assert all(0.1 <= p[cost_i] <= 20.0 for p in e.points)
    assert_equals_single_runs(res)
    again = run_sweep(RANDOM)
    assert again.expansion.points == e.points and again.config_hash == res.config_hash
    other = run_sweep({**RANDOM, "seed": 4})
    assert other.expansion.points != e.points  # the root seed draws them
    z = res.heatmap_json["z"]
    assert max(v for row in z for v in row if v is not None) == res.best["metrics"]["sharpe"]


def test_a_distribution_without_samples_is_refused_naming_the_axis() -> None:
    with pytest.raises(ConfigError) as info:
        run_sweep({"grid": {"fast": {"low": 3, "high": 9}}, "validation": NO_VALIDATION})
    assert any(loc == "grid.fast" and "samples" in msg for loc, msg in info.value.errors)


def test_the_command_line_reads_distributions() -> None:
    from btlab.sweep import parse_grid_option

    assert parse_grid_option("lr=loguniform:0.001:0.1") == (
        "lr",
        {"low": 0.001, "high": 0.1, "log": True},
    )
    assert parse_grid_option("fast=randint:2:40") == (
        "fast",
        {"low": 2, "high": 40, "integer": True},
    )
    with pytest.raises(ConfigError):
        parse_grid_option("fast=uniform:2")


def test_an_axis_whose_only_value_is_none_is_written_as_missing(tmp_path: Path) -> None:
    """`risk.stop_loss: [None]` (the stop off) makes a column of None alone: sweep.parquet
    holds it as nulls (pandas 3's `astype(str)` keeps None missing, which Arrow's string
    column refused), and reads back as missing."""
    import pandas as pd

    grid = {"fast": [5, 10], "risk.stop_loss": [None]}
    res = run_sweep({"data": {"bars": 300}, "grid": grid, "validation": {"enabled": False}})
    res.write_artifacts(tmp_path / "out")
    back = pd.read_parquet(tmp_path / "out" / "sweep.parquet")
    assert back["risk.stop_loss"].isna().all() and len(back) == len(res.table)
    assert back["fast"].tolist() == res.table["fast"].tolist()
