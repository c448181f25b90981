"""Portfolio runs end to end (SPEC §8): the pipeline, every way in, artifacts, and K = 1 of the
same engine equal to a single-symbol run."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import btlab
import btlab.timeframes
from btlab.artifacts import verify_artifacts, write_artifacts
from btlab.portfolio_run import PortfolioResult
from btlab.sweep import run_sweep

BASE = {"data": {"symbols": 4, "bars": 400}, "validation": {"enabled": False}}


def _run(**sections: object) -> PortfolioResult:
    result = btlab.run({**BASE, **sections})
    assert isinstance(result, PortfolioResult)
    return result


def test_one_symbol_as_a_portfolio_equals_the_single_symbol_run() -> None:
    """per_symbol on one symbol (weight 1) is the same kernel, the same fills, the same metrics."""
    config = {"execution": {"commission_bps": 3.0, "spread_bps": 2.0},
              "risk": {"stop_loss": 0.05}, "validation": {"enabled": False}}  # fmt: skip
    single = btlab.run(config)
    params = single.config.strategy.params
    one = btlab.run({**config, "strategy": {"name": "per_symbol",
                                            "params": {"strategy": "sma_cross", "params": params}}})  # fmt: skip
    assert isinstance(one, PortfolioResult) and one.dataset.n_symbols == 1
    assert np.array_equal(one.equity_values, single.equity_values)
    assert np.array_equal(one.units[:, 0], single.units)
    assert one.fill_records.tobytes() == single.fill_records.tobytes()
    for name in one.trade_records.dtype.names:  # field by field (records pad between fields)
        assert np.array_equal(one.trade_records[name], single.trade_records[name]), name
    assert one.metrics == single.metrics


def test_money_adds_up_across_the_symbols_table() -> None:
    result = _run(strategy={"name": "xs_momentum", "params": {"lookback": 20, "top": 2}},
                  execution={"commission_bps": 5.0, "rebalance": "weekly"})  # fmt: skip
    table = result.symbols_table
    final = result.equity_values[-1]
    assert final == pytest.approx(result.config.execution.initial_cash + table["net_pnl"].sum())
    costs = result.fill_records
    assert table["costs"].sum() == pytest.approx(
        float(np.sum(costs["spread_cost"] + costs["slippage_cost"] + costs["commission"]))
    )
    assert result.metrics["fill_count"] == len(result.fills) == table["fills"].sum()


def test_weights_follow_the_equal_weight_target_after_each_monthly_rebalance() -> None:
    result = _run(strategy={"name": "equal_weight"}, execution={"rebalance": "monthly"})
    cash0 = result.config.execution.initial_cash
    at_open = result.units[0] * result.dataset.open[0] / cash0  # sized at bar 0's open
    np.testing.assert_allclose(at_open, 0.25, rtol=1e-12)
    positions = result.positions  # weights at each close: drifted from the open's 1/4
    first = positions[positions["ts"] == positions["ts"].iloc[0]]
    mark = result.units[0] * result.dataset.close[0] / result.equity_values[0]
    np.testing.assert_allclose(first["weight"].to_numpy(), mark, rtol=1e-12)
    starts = set(btlab.timeframes.rebalance_schedule(result.dataset.ts, "monthly").tolist())
    assert set(result.fills["bar"][result.fills["reason"] == "signal"]) <= starts
    assert set(result.fills["symbol"]) == set(result.dataset.symbols)


def test_a_mapping_and_a_long_table_of_the_same_bars_are_the_same_run() -> None:
    frames = {
        sym: btlab.synthetic(bars=300, seed=i).to_frame() for i, sym in enumerate(["BBB", "AAA"])
    }
    long = pd.concat([f.assign(symbol=s) for s, f in frames.items()], ignore_index=True)
    config = {"strategy": {"name": "inverse_vol", "params": {"lookback": 20}},
              "validation": {"enabled": False}}  # fmt: skip
    a = btlab.run(config, data=frames)
    b = btlab.run(config, data=long)
    assert isinstance(a, PortfolioResult) and isinstance(b, PortfolioResult)
    assert a.config_hash == b.config_hash and a.dataset.symbols == ("AAA", "BBB")
    assert np.array_equal(a.equity_values, b.equity_values)


def test_a_later_bar_of_one_symbol_changes_nothing_before_it() -> None:
    """SPEC §8 causality through the whole pipeline: features, cross-section, engine."""
    frames = {s: btlab.synthetic(bars=200, seed=i).to_frame() for i, s in enumerate("ABC")}
    config = {"strategy": {"name": "xs_momentum", "params": {"lookback": 10, "top": 1}},
              "validation": {"enabled": False}}  # fmt: skip
    a = btlab.run(config, data=frames)
    j = 120
    moved = {k: v.copy() for k, v in frames.items()}
    for col in ("open", "high", "low", "close"):
        moved["B"].loc[j:, col] *= 1.5
    b = btlab.run(config, data=moved)
    assert isinstance(a, PortfolioResult) and isinstance(b, PortfolioResult)
    assert np.array_equal(a.equity_values[:j], b.equity_values[:j])
    assert not np.array_equal(a.equity_values, b.equity_values)


def test_portfolio_artifacts_are_written_hashed_and_deterministic(tmp_path: Path) -> None:
    config = {**BASE, "strategy": {"name": "sma_cross"}, "validation": {"enabled": True}}
    first = write_artifacts(btlab.run(config), tmp_path / "a")
    second = write_artifacts(btlab.run(config), tmp_path / "b")
    assert first["run_hash"] == second["run_hash"]
    names = set(first["artifacts"])
    assert {"positions.parquet", "symbols.parquet", "fills.parquet", "trades.parquet"} <= names
    assert verify_artifacts(tmp_path / "a") == []
    fills = pd.read_parquet(tmp_path / "a" / "fills.parquet")
    assert fills["symbol"].str.startswith("SYN").all()
    # the joint permutation test runs on portfolios: no warning, a permutation section
    assert "permutation_skipped" not in {w["code"] for w in first["warnings"]}
    validation = json.loads((tmp_path / "a" / "validation.json").read_text())
    assert 0.0 < validation["permutation"]["p_value"] <= 1.0


def test_a_sweep_over_portfolio_data_runs_each_combination_as_a_portfolio() -> None:
    res = run_sweep({**BASE, "grid": {"fast": [5, 10]}, "validation": {"enabled": False}})
    assert isinstance(res.best_run, PortfolioResult) and len(res.table) == 2
