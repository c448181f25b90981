"""Walk-forward over request-field axes (SPEC §10): each window's choice trades its test part
with its own execution and risk settings, the account carried across (`run_engine`'s
segments, against the kernel run window by window by hand); a field value every window picks
equals that value fixed; the train pass groups the combinations by their fields."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest

import btlab
from btlab.data import Dataset
from btlab.features import FeatureStore
from btlab.kernel_inputs import exec_params, size_scale
from btlab.kernels.dtypes import FillAt
from btlab.kernels.execution import (
    ST_N_FILLS,
    BarInputs,
    ExecParams,
    OrderInputs,
    fill_capacity,
    new_state,
    sim_buffers,
    simulate_nb,
)
from btlab.kernels.metrics import SW_FINAL
from btlab.kernels.portfolio import PortfolioBars
from btlab.simulation import run_engine
from btlab.sweep.engine import cross_rules
from btlab.walkforward import WalkForwardResult, parse_walkforward_request, run_walkforward
from btlab.walkforward.passes import bar_slice, prefix_store, train_stats
from tests.test_walkforward import request

#: A grid over strategy parameters, costs and stops; on `dataset` its windows choose both
#: stop settings (the per-window settings are exercised, not one value throughout).
FIELD_GRID: dict[str, Any] = {
    "fast": [5, 10],
    "slow": [20, 40],
    "execution.commission_bps": [0.0, 20.0],
    "risk.stop_loss": [None, 0.03],
}


@pytest.fixture(scope="module")
def dataset() -> Dataset:
    return btlab.synthetic(bars=600, seed=3)


def _wf_request(**extra: Any) -> dict[str, Any]:
    return request(data={"bars": 600, "seed": 3}, walkforward={"train": 150, "test": 60}, **extra)


def _by_hand(
    dataset: Dataset, result: WalkForwardResult, target: np.ndarray, scale: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The out-of-sample run as the kernel runs it window by window: a fresh account at the
    first test bar, then each window's bars with its choice's settings, the state kept."""
    req = result.request
    s0, end = result.windows[0].test_start, result.windows[-1].test_end
    oos = bar_slice(dataset, s0, end)
    n = len(oos)
    bars = BarInputs(oos.ts, oos.open, oos.high, oos.low, oos.close, oos.volume)
    orders = OrderInputs(np.ascontiguousarray(target), np.ascontiguousarray(scale))
    out = sim_buffers(n, fill_capacity(n))
    state = new_state(req.execution.initial_cash)
    for w, combo in zip(result.windows, result.table["combo"], strict=True):
        params = exec_params(req.combination_config(int(combo)))
        status = simulate_nb(bars, orders, params, state, out, w.test_start - s0, w.test_end - s0)
        assert status == 0
    return out.equity, out.units, out.fills[: int(state[ST_N_FILLS])]


def test_each_window_trades_its_test_part_with_its_own_settings(dataset: Dataset) -> None:
    req = parse_walkforward_request(_wf_request(grid=FIELD_GRID))
    result = run_walkforward(req, data=dataset)
    table = result.table
    assert {"execution.commission_bps", "risk.stop_loss"} <= set(table.columns)
    chosen = [req.expansion.fields[int(k)] for k in table["combo"]]
    assert len({json.dumps(f) for f in chosen}) > 1  # the settings change between windows
    summary = result.summary()
    assert [w["params"]["risk.stop_loss"] for w in summary["windows"]] == [
        f["risk.stop_loss"] for f in chosen
    ]
    assert result.stability["risk.stop_loss"]["values"] == [f["risk.stop_loss"] for f in chosen]
    # the fused train pass: every combination's run over the train part with its own fields
    configs = [req.combination_config(k) for k in range(len(req.expansion))]
    targets = [btlab.run(cfg, data=dataset).target for cfg in configs]
    rules = cross_rules("sma_cross", req.expansion.params)
    assert rules is not None
    store = FeatureStore(dataset)
    for w in result.windows[:3]:
        part = bar_slice(dataset, w.train_start, w.train_end)
        bars = PortfolioBars(part.ts, part.open, part.high, part.low, part.close, part.volume)
        cut = slice(w.train_start, w.train_end)
        finals = [
            run_engine(bars, t[cut].copy(), np.ones(len(part)), exec_params(cfg)).equity[-1]
            for t, cfg in zip(targets, configs, strict=True)
        ]
        ppy = dataset.meta.periods_per_year
        stats = train_stats(req, prefix_store(store, w.train_end), w.train_start, ppy, rules)
        np.testing.assert_array_equal(stats[:, SW_FINAL], finals)
    # the chosen combinations' targets over their test parts (the fused cross holds no state:
    # its single run over all the data has them), the settings window by window by hand
    stitched = np.concatenate([
        targets[int(k)][w.test_start : w.test_end]
        for w, k in zip(result.windows, table["combo"], strict=True)
    ])  # fmt: skip
    equity, units, fills = _by_hand(dataset, result, stitched, np.ones(len(stitched)))
    run = result.oos_run
    np.testing.assert_array_equal(run.target, stitched)
    np.testing.assert_array_equal(run.equity_values, equity)
    np.testing.assert_array_equal(run.units, units)
    np.testing.assert_array_equal(run.fill_records, fills)
    # the commission charged on each fill is its window's (0 or 20 bps of the traded value)
    s0 = result.windows[0].test_start
    for w, f in zip(result.windows, chosen, strict=True):
        mine = fills[(fills["bar"] >= w.test_start - s0) & (fills["bar"] < w.test_end - s0)]
        bps = f["execution.commission_bps"]
        expect = bps / 1e4 * np.abs(mine["units"] * mine["fill_price"])
        np.testing.assert_allclose(mine["commission"], expect, rtol=1e-12, atol=0)


@pytest.mark.parametrize(
    ("axis", "values", "fixed"),
    [
        ("risk.stop_loss", [0.04], {"risk": {"stop_loss": 0.04}}),
        # 3% a fill of slippage: never the better choice on the train part
        ("execution.slippage_bps", [0.0, 300.0], {"execution": {"slippage_bps": 0.0}}),
    ],
    ids=["one-value", "dominated"],
)
def test_a_field_value_every_window_picks_equals_that_value_fixed(
    dataset: Dataset, axis: str, values: list[Any], fixed: dict[str, Any]
) -> None:
    grid = {"fast": [5, 10], "slow": [20, 40]}
    body = _wf_request(objective="total_return")
    gridded = run_walkforward({**body, "grid": {**grid, axis: values}}, data=dataset)
    assert (gridded.table[axis] == values[0]).all()
    plain = run_walkforward({**body, **fixed, "grid": grid}, data=dataset)
    columns = [c for c in plain.table.columns if c != "combo"]
    assert gridded.table[columns].equals(plain.table[columns])
    a, b = gridded.oos_run, plain.oos_run
    np.testing.assert_array_equal(a.equity_values, b.equity_values)
    np.testing.assert_array_equal(a.fill_records, b.fill_records)
    assert json.dumps(a.metrics, default=str) == json.dumps(b.metrics, default=str)
    assert gridded.efficiency == plain.efficiency


@pytest.mark.parametrize("sizing", ["fraction", "vol_target"])
def test_a_stateful_strategys_train_pass_runs_each_field_group_with_its_settings(
    dataset: Dataset, sizing: str
) -> None:
    """The generic path per group of request fields: each combination's train part is its
    single run's target (and its own sizing's scale) cut to the part, traded with its own
    costs from a flat account."""
    req = parse_walkforward_request(_wf_request(
        strategy={"name": "channel_breakout", "params": {"long_short": True}},
        grid={"entry_window": [20, 40], "exit_window": [5],
              "execution.commission_bps": [0.0, 15.0], "risk.vol_lookback": [10, 30]},
        risk={"sizing": sizing}, objective="total_return", validation={"enabled": False},
    ))  # fmt: skip
    result = run_walkforward(req, data=dataset)
    ppy = dataset.meta.periods_per_year
    store = FeatureStore(dataset)
    total = len(req.expansion)
    configs = [req.combination_config(k) for k in range(total)]
    full = [btlab.run(cfg, data=dataset) for cfg in configs]
    scales = [size_scale(cfg, store, len(dataset), ppy) for cfg in configs]
    for w, row in zip(result.windows, result.table.to_dict("records"), strict=True):
        part = bar_slice(dataset, w.train_start, w.train_end)
        cut = slice(w.train_start, w.train_end)
        bars = PortfolioBars(part.ts, part.open, part.high, part.low, part.close, part.volume)
        finals = np.array([
            run_engine(
                bars, np.ascontiguousarray(r.target[cut]), np.ascontiguousarray(s[cut]),
                exec_params(cfg),
            ).equity[-1]
            for r, s, cfg in zip(full, scales, configs, strict=True)
        ])  # fmt: skip
        # every combination's train run, not only the chosen one's
        stats = train_stats(req, prefix_store(store, w.train_end), w.train_start, ppy, None)
        np.testing.assert_array_equal(stats[:, SW_FINAL], finals)
        returns = finals / req.execution.initial_cash - 1
        assert row["combo"] == int(np.argmax(returns))
        assert row["is_total_return"] == pytest.approx(returns[row["combo"]], rel=1e-12)
    # the out-of-sample run: each window's target, scale and settings, the account carried
    s0, end = result.windows[0].test_start, result.windows[-1].test_end
    pairs = list(zip(result.windows, result.table["combo"], strict=True))
    target = np.concatenate([full[int(k)].target[w.test_start : w.test_end] for w, k in pairs])
    scale = np.concatenate([scales[int(k)][w.test_start : w.test_end] for w, k in pairs])
    equity, _units, fills = _by_hand(dataset, result, target, scale)
    np.testing.assert_array_equal(result.oos_run.equity_values, equity)
    np.testing.assert_array_equal(result.oos_run.fill_records, fills)
    assert end - s0 == len(equity)


# ------------------------------------------------------------------ the engine's segments


def _settings(rng: np.random.Generator) -> ExecParams:
    return ExecParams(
        fill_at=FillAt.OPEN if rng.random() < 0.5 else FillAt.CLOSE, every_bar=bool(rng.random() < 0.3),
        commission_bps=float(rng.choice([0.0, 5.0, 25.0])), spread_bps=float(rng.choice([0, 4])),
        stop_loss=float(rng.choice([0.0, 0.01, 0.03])), take_profit=float(rng.choice([0.0, 0.02])),
        max_leverage=float(rng.choice([1.0, 2.0])), lot_size=float(rng.choice([0.0, 1.0])),
        borrow_rate_annual=0.05,
    )  # fmt: skip


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("chunk", [7, 1 << 18])
def test_run_engine_segments_equal_the_kernel_run_segment_by_segment(seed: int, chunk: int) -> None:
    rng = np.random.default_rng(seed)
    data = btlab.synthetic(bars=500, seed=seed)
    n = len(data)
    target = np.repeat(rng.choice([-1.0, 0.0, 0.5, 1.0], size=n // 20 + 1), 20)[:n]
    scale = np.ones(n)
    firsts = [0, *sorted(rng.choice(np.arange(1, n), size=5, replace=False).tolist())]
    segments = [(int(b), _settings(rng)) for b in firsts]
    bars = PortfolioBars(data.ts, data.open, data.high, data.low, data.close, data.volume)
    sim = run_engine(bars, target, scale, segments, chunk=chunk)
    # by hand: one state, each segment's bars with its settings
    ins = BarInputs(data.ts, data.open, data.high, data.low, data.close, data.volume)
    out = sim_buffers(n, fill_capacity(n))
    state = new_state(100_000.0)
    ends = [*firsts[1:], n]
    for (first, params), stop in zip(segments, ends, strict=True):
        assert simulate_nb(ins, OrderInputs(target, scale), params, state, out, first, stop) == 0
    np.testing.assert_array_equal(sim.equity, out.equity)
    np.testing.assert_array_equal(sim.cash, out.cash)
    np.testing.assert_array_equal(sim.units, out.units)
    np.testing.assert_array_equal(sim.fills, out.fills[: int(state[ST_N_FILLS])])
    assert len(sim.fills) > 10  # the run trades (and its stops fire) across the boundaries
    # one segment is the plain run, however it is given
    one = segments[0][1]
    plain = run_engine(bars, target, scale, one)
    again = run_engine(bars, target, scale, [(0, one), (n // 2, one)], chunk=chunk)
    np.testing.assert_array_equal(plain.equity, again.equity)
    np.testing.assert_array_equal(plain.fills, again.fills)


@pytest.mark.parametrize(
    ("segments", "text"),
    [
        ([(1, ExecParams())], "starts at bar 0"),
        ([(0, ExecParams()), (0, ExecParams())], "must increase"),
        ([(0, ExecParams()), (10, ExecParams())], "must increase within the 10 bars"),
        ([(0, ExecParams()), (5, ExecParams(initial_cash=1.0))], "same initial cash"),
    ],
)
def test_bad_segments_are_refused(segments: list[tuple[int, ExecParams]], text: str) -> None:
    data = btlab.synthetic(bars=10, seed=1)
    bars = PortfolioBars(data.ts, data.open, data.high, data.low, data.close, data.volume)
    with pytest.raises(ValueError, match=text):
        run_engine(bars, np.zeros(10), np.ones(10), segments)


def test_a_none_every_window_chose_is_written_as_a_missing_value(
    dataset: Dataset, tmp_path: Any
) -> None:
    # a 90% stop never fires: it ties with no stop, and the first in grid order (None) wins
    result = run_walkforward(
        _wf_request(grid={"fast": [5, 10], "slow": [20], "risk.stop_loss": [None, 0.9]}),
        data=dataset,
    )
    assert result.table["risk.stop_loss"].isna().all()
    assert result.table["risk.stop_loss"].dtype == np.float64  # the axis's type, as a sweep's
    assert {w["params"]["risk.stop_loss"] for w in result.summary()["windows"]} == {None}
    result.write_artifacts(tmp_path / "wf")
    assert btlab.verify_artifacts(tmp_path / "wf") == []
