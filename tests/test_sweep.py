"""Sweeps: single-run equality, the kernel twin, grids, best and heatmap, events, determinism,
DSR with the grid size, PBO, the command line and the HTTP endpoint."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numba
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import btlab
from btlab.cli import main
from btlab.errors import ConfigError, RunCancelled
from btlab.kernels import ExecParams
from btlab.kernels.dtypes import FILL_DTYPE, Flag, Status
from btlab.kernels.execution import BarInputs
from btlab.kernels.ledger import trades_from_fills
from btlab.kernels.metrics import (
    BLOCK_FIELDS,
    N_STATS,
    STAT_NAMES,
    SW_FLAGS,
    SW_STATUS,
    equity_stats_nb,
    path_scratch_size,
    path_stats_nb,
)
from btlab.kernels.pairwise import PAIRWISE_STACK_SHAPE, np_sum_nb, pairwise_stack
from btlab.kernels.sweep import sweep_cross, sweep_targets
from btlab.metric_registry import FROM_STATS, METRIC_NAMES
from btlab.metrics import compute_metrics, metrics_from_stats
from btlab.pipeline import DataIdentity, simulate_chunked
from btlab.sweep import (
    MAX_COMBINATIONS,
    GridRange,
    SweepResult,
    block_bounds,
    expand_grid,
    parse_sweep_request,
    pbo_from_blocks,
    run_sweep,
    sweep_config_hash,
)
from btlab.validation import dsr, pbo_cscv
from btlab.validation.run import bar_returns
from tests.reference import sweep as ref
from tests.strategies import Bars, bars, exec_params, scales, series, targets

NO_VALIDATION = {"enabled": False}
#: A small sweep: 9 combinations of which 8 are valid ((20, 20) is not: fast must be < slow).
GRID = {"fast": [5, 10, 20], "slow": {"start": 20, "stop": 60, "step": 20}}


def request(**extra: Any) -> dict[str, Any]:
    return {
        "data": {"bars": 400, "seed": 3},
        "strategy": {"name": "sma_cross", "params": {}},
        "execution": {"commission_bps": 1.0, "spread_bps": 2.0},
        "grid": GRID,
        "validation": NO_VALIDATION,
    } | extra


def same(x: Any, y: Any) -> bool:
    """Equal, NaN equal to NaN; numpy and Python scalars alike."""
    if isinstance(y, float) and math.isnan(y):
        return isinstance(x, float | np.floating) and math.isnan(x)
    return bool(x == y)


def assert_equals_single_runs(res: SweepResult) -> None:
    """Every combination's metrics equal those of `btlab.run` of it, bit for bit (those of a row
    of sums, `FROM_STATS`; the best run, re-run in full, has every metric)."""
    rows = res.table.to_dict("records")
    assert len(rows) == len(res.expansion.params)
    assert [c for c in res.table.columns if c in METRIC_NAMES] == list(FROM_STATS)
    for k, row in enumerate(rows):
        single = btlab.run(res.request.combination_config(k), data=res.dataset)
        diff = {
            m: (row[m], single.metrics[m])
            for m in FROM_STATS
            if not same(row[m], single.metrics[m])
        }
        assert not diff, (res.expansion.points[k], diff)
        if k == res.best["combo"]:
            best = res.best_run.metrics
            assert {m: v for m, v in single.metrics.items() if not same(best[m], v)} == {}


# ------------------------------------------------------------------ equal to single runs


@pytest.mark.parametrize(
    ("extra", "fused"),
    [
        ({}, True),
        (
            {
                "strategy": {"name": "sma_cross", "params": {"long_short": True, "ma": "ema"}},
                "execution": {
                    "fill": "close",
                    "commission_bps": 3.0,
                    "commission_min": 1.0,
                    "borrow_rate_annual": 0.2,
                    "slippage_bps": 2.0,
                },
                "risk": {"stop_loss": 0.03, "take_profit": 0.05, "max_leverage": 2.0},
            },
            True,
        ),
        (
            {
                "strategy": {"name": "ma_trend", "params": {"long_short": True}},
                "grid": {"window": [5, 20, 50], "size": [0.5, 1.5]},
                "risk": {
                    "sizing": "vol_target",
                    "vol_target_annual": 0.15,
                    "vol_lookback": 20,
                    "max_leverage": 3.0,
                    "max_drawdown": 0.1,
                },
                "execution": {"lot_size": 1.0, "commission_fixed": 2.0},
            },
            True,
        ),
        (
            {
                "strategy": {"name": "channel_breakout", "params": {"long_short": True}},
                "grid": {"entry_window": [10, 20, 40], "exit_window": [5, 10, 20]},
                "execution": {"rebalance": "every_bar", "commission_bps": 5.0},
            },
            False,
        ),
        (
            {
                "strategy": {"name": "rsi_reversion", "params": {}},
                "grid": {"window": [5, 14], "lower": [20.0, 30.0], "upper": [70.0, 80.0]},
                "data": {
                    "bars": 400,
                    "seed": 4,
                    "timeframe": "1h",
                    "calendar": "24x7",
                    "zero_volume_prob": 0.1,
                },
            },
            False,
        ),
    ],
    ids=["sma_cross", "long_short_close_stops_borrow", "ma_trend_vol_target", "breakout", "rsi"],
)
def test_every_combination_equals_its_single_run_exactly(
    extra: dict[str, Any], fused: bool
) -> None:
    res = run_sweep(request(**extra))
    assert res.fused is fused  # both kernels are covered: features fused, targets given
    assert_equals_single_runs(res)


def _dataset(b: Bars) -> btlab.Dataset:
    frame = pd.DataFrame(
        {"ts": pd.to_datetime(b.ts, utc=True), "open": b.open, "high": b.high, "low": b.low,
         "close": b.close, "volume": b.volume}
    )  # fmt: skip
    return btlab.from_dataframe(frame)


SETTINGS = st.fixed_dictionaries(
    {
        "execution": st.fixed_dictionaries(
            {
                "fill": st.sampled_from(["open", "close"]),
                "commission_bps": st.sampled_from([0.0, 1.0, 25.0]),
                "spread_bps": st.sampled_from([0.0, 3.0]),
                "commission_min": st.sampled_from([0.0, 5.0]),
                "borrow_rate_annual": st.sampled_from([0.0, 0.5]),
                "lot_size": st.sampled_from([0.0, 1.0]),
            }
        ),
        "risk": st.fixed_dictionaries(
            {
                "stop_loss": st.sampled_from([None, 0.02]),
                "take_profit": st.sampled_from([None, 0.05]),
                "max_drawdown": st.sampled_from([None, 0.1]),
                "max_leverage": st.sampled_from([1.0, 2.0]),
            }
        ),
        "long_short": st.booleans(),
    }
)


@settings(max_examples=25, deadline=None)
@given(b=bars(min_size=20, max_size=80), s=SETTINGS)
def test_sweep_equals_single_runs_on_generated_bars(b: Bars, s: dict[str, Any]) -> None:
    # The honest twin of the fused path as a whole: the pipeline's own single run of each
    # combination (features, strategy, kernel, ledger, metrics) on hypothesis bars and settings.
    req = request(
        strategy={"name": "sma_cross", "params": {"long_short": s["long_short"]}},
        grid={"fast": [1, 2, 4], "slow": [3, 8]},
        execution=s["execution"],
        risk=s["risk"],
    )
    assert_equals_single_runs(run_sweep(req, data=_dataset(b)))


# ------------------------------------------------------------------ the kernels and their twin


def _shifted_sma(close: np.ndarray, window: int) -> np.ndarray:
    out = np.full(close.size, np.nan)
    raw = pd.Series(close).rolling(window).mean().to_numpy()
    out[1:] = raw[:-1]
    return out


def _compare(got: np.ndarray, got_blocks: np.ndarray, want: list[Any], cash: float) -> None:
    for c, (stats, blocks) in enumerate(want):
        row = got[c]
        assert row[SW_STATUS] == Status.OK
        assert bool(int(row[SW_FLAGS]) & Flag.RUINED) == bool(stats["ruined"])
        assert bool(int(row[SW_FLAGS]) & Flag.HALTED_MAX_DRAWDOWN) == bool(stats["halted"])
        for j, name in enumerate(STAT_NAMES):
            if name in stats:
                scale = cash if name in ("final_equity", "equity_sum") else 1.0
                np.testing.assert_allclose(
                    row[j], stats[name], rtol=1e-9, atol=1e-9 * scale, err_msg=f"{c} {name}"
                )
        np.testing.assert_allclose(got_blocks[c], np.array(blocks), rtol=1e-9, atol=1e-12)


@settings(max_examples=40, deadline=None)
@given(
    data=st.data(),
    b=bars(min_size=3, max_size=50),
    p=exec_params(),
    seed=st.integers(0, 2**32 - 1),
    n_combos=st.integers(1, 6),
    splits=st.sampled_from([2, 4]),
    chunks=st.integers(1, 3),
)
def test_cross_kernel_matches_twin(
    data: st.DataObject, b: Bars, p: ExecParams, seed: int, n_combos: int, splits: int, chunks: int
) -> None:
    rng = np.random.default_rng(seed)
    n = len(b)
    features = np.stack(
        [_shifted_sma(b.close, w) for w in (1, 2, 3, 5)] + [_shifted_sma(b.close, 1)]
    )
    a_idx = rng.integers(0, features.shape[0], n_combos)
    b_idx = rng.integers(0, features.shape[0], n_combos)  # equal rows or features: ties, target 0
    long_value = rng.choice([0.5, 1.0, 2.0], n_combos)
    short_value = rng.choice([0.0, -1.0], n_combos)
    scale = data.draw(scales(n, p.sizing))
    bounds = block_bounds(n - 1, splits)
    stats = np.zeros((n_combos, N_STATS))
    blocks = np.zeros((n_combos, splits, BLOCK_FIELDS))
    sweep_cross(
        BarInputs(*b.arrays()), scale, features, a_idx, b_idx, long_value, short_value, p, bounds,
        min(chunks, n_combos), stats, blocks,
    )  # fmt: skip
    want = ref.sweep_cross(
        b.arrays(), list(scale), features.tolist(), list(a_idx), list(b_idx), list(long_value),
        list(short_value), p._asdict(), list(bounds),
    )  # fmt: skip
    _compare(stats, blocks, want, p.initial_cash)


@settings(max_examples=40, deadline=None)
@given(data=st.data(), b=bars(min_size=3, max_size=50), p=exec_params(), n_combos=st.integers(1, 5))
def test_targets_kernel_matches_twin(
    data: st.DataObject, b: Bars, p: ExecParams, n_combos: int
) -> None:
    n = len(b)
    tgts = np.stack([data.draw(targets(n)) for _ in range(n_combos)])
    scale = data.draw(scales(n, p.sizing))
    bounds = block_bounds(n - 1, 2)
    stats = np.zeros((n_combos, N_STATS))
    blocks = np.zeros((n_combos, 2, BLOCK_FIELDS))
    sweep_targets(BarInputs(*b.arrays()), scale, tgts, p, bounds, min(2, n_combos), stats, blocks)
    want = ref.sweep_targets(b.arrays(), list(scale), tgts.tolist(), p._asdict(), list(bounds))
    _compare(stats, blocks, want, p.initial_cash)


def test_the_sweep_grows_the_fill_buffer_and_stays_equal_to_a_single_run() -> None:
    # A target flipping every bar makes more fills than the first buffer (max(1024, n / 8)):
    # the kernel reports it and the sweep re-runs that combination with the bound, as the
    # pipeline does.
    ds = btlab.synthetic(bars=20_000, seed=2)
    n = len(ds)
    flip = np.where(np.arange(n) % 2 == 0, 1.0, -1.0)
    slow = np.repeat([0.0, 1.0, -1.0, 1.0], n // 4)
    tgts = np.stack([flip, slow, flip * 0.5])
    params = ExecParams(commission_bps=0.01, borrow_rate_annual=0.1)
    bounds = block_bounds(n - 1, 16)
    stats = np.zeros((3, N_STATS))
    blocks = np.zeros((3, 16, BLOCK_FIELDS))
    prices = BarInputs(ds.ts, ds.open, ds.high, ds.low, ds.close, ds.volume)
    sweep_targets(prices, np.ones(n), tgts, params, bounds, 2, stats, blocks)
    years = float(ds.ts[-1] - ds.ts[0]) / 86_400e9 / 365.25
    for c in range(3):
        sim = simulate_chunked(ds, tgts[c], np.ones(n), params)
        trades = trades_from_fills(sim.fills, n - 1, float(ds.close[-1]), sim.borrow_total)
        want = compute_metrics(
            ds.ts, ds.close, sim.equity, sim.units, sim.borrow, sim.fills, trades,
            initial_cash=params.initial_cash, periods_per_year=252.0,
            ruined=bool(sim.flags & Flag.RUINED), halted=bool(sim.flags & Flag.HALTED_MAX_DRAWDOWN),
        )  # fmt: skip
        got = metrics_from_stats(
            stats[c], n=n, years=years, initial_cash=params.initial_cash, periods_per_year=252.0
        )
        assert {k: v for k, v in got.items() if not same(v, want[k])} == {}
    assert stats[0, STAT_NAMES.index("fill_count")] > max(1024, n // 8)
    assert not stats[0, SW_FLAGS]  # not ruined: it traded all the way


@settings(max_examples=200, deadline=None)
@given(
    equity=series(min_size=2, max_size=300, positive=True),
    ruin=st.integers(-1, 299),
    splits=st.sampled_from([2, 4, 16]),
)
def test_path_statistics_equal_the_metrics_kernel_bit_for_bit(
    equity: np.ndarray, ruin: int, splits: int
) -> None:
    # The skipped divisions (unchanged equity, the drawdown gate, flat bars) must never change
    # a result: moments and drawdown facts as equity_stats_nb computes them, on paths with flat
    # runs, ties, tiny spreads and (from `ruin` on) equity at 0 or below.
    if 0 <= ruin < equity.size:
        equity[ruin:] = -equity[ruin:] if ruin % 2 else 0.0
    n = equity.size
    units = np.where(np.arange(n) % 3 == 0, 0.0, 2.0)
    bounds = block_bounds(n - 1, splits)
    rows, all_blocks = [], []
    for size in (n, path_scratch_size(n)):  # the returns divided again, or kept
        row = np.zeros(N_STATS)
        blocks = np.zeros((splits, BLOCK_FIELDS))
        path_stats_nb(
            np.ones(n), units, equity, np.zeros(n), False, bounds, row, blocks, np.empty(size),
            pairwise_stack(),
        )  # fmt: skip
        rows.append(row)
        all_blocks.append(blocks)
    assert rows[0].tobytes() == rows[1].tobytes()
    assert all_blocks[0].tobytes() == all_blocks[1].tobytes()
    count, mean, std, downside, max_dd, dd_bars = equity_stats_nb(equity)
    got = [
        row[STAT_NAMES.index(k)]
        for k in ("n_returns", "mean", "std", "downside", "max_drawdown", "max_dd_bars")
    ]
    for a, b in zip(got, [count, mean, std, downside, max_dd, dd_bars], strict=True):
        assert same(a, b), (got, [count, mean, std, downside, max_dd, dd_bars])
    with np.errstate(divide="ignore", invalid="ignore"):
        r = equity[1:] / equity[:-1] - 1.0
        lev = np.abs(units * 1.0) / equity
    r[~np.isfinite(r)] = 0.0
    # each block's finite returns and their squares summed as np.sum (the reference twin's)
    want = [
        [np.sum(r[bounds[g] : bounds[g + 1]]), np.sum(r[bounds[g] : bounds[g + 1]] ** 2)]
        for g in range(splits)
    ]
    assert blocks.tolist() == want
    assert same(row[STAT_NAMES.index("leverage_sum")], np.sum(lev[np.isfinite(lev)]))
    assert row[STAT_NAMES.index("equity_sum")] == np.sum(equity)


@pytest.mark.parametrize("n", [0, 1, 7, 8, 9, 127, 128, 129, 1000, 4099, 100_003])
def test_sums_follow_numpys_pairwise_order(n: int) -> None:
    # The sweep's metric sums equal np.sum bit for bit (contiguous arrays and record fields).
    rng = np.random.default_rng(n)
    x = rng.standard_normal(n) * rng.choice([1.0, 1e8, 1e-8], n)
    assert np_sum_nb(x, n, pairwise_stack()) == np.sum(x)
    fills = np.zeros(n, FILL_DTYPE)
    fills["commission"] = x
    assert np_sum_nb(np.ascontiguousarray(fills["commission"]), n, pairwise_stack()) == np.sum(
        fills["commission"]
    )
    if n:
        assert np_sum_nb(x, n, pairwise_stack()) / n == np.mean(x)
    # the stack is the caller's scratch: whatever it held before must not matter
    for junk in (1.0, -1.0, np.nan):
        assert np_sum_nb(x, n, np.full(PAIRWISE_STACK_SHAPE, junk)) == np.sum(x)


# ------------------------------------------------------------------ grids


def test_grid_lists_and_inclusive_ranges() -> None:
    assert GridRange(start=5, stop=50, step=5).values() == list(range(5, 51, 5))
    assert GridRange(start=5, stop=52, step=5).values()[-1] == 50  # stop off the step: left out
    assert GridRange(start=0.1, stop=0.5, step=0.1).values() == [0.1, 0.2, 0.3, 0.4, 0.5]
    assert all(isinstance(v, int) for v in GridRange(start=1, stop=9, step=2).values())
    e = expand_grid(
        "sma_cross", {}, {"slow": [30, 60], "fast": GridRange(start=5, stop=15, step=5)}
    )
    assert e.axes == {"fast": [5, 10, 15], "slow": [30, 60]}  # axes sorted by name
    assert e.points == [(5, 30), (5, 60), (10, 30), (10, 60), (15, 30), (15, 60)]
    assert e.params[0] == {"fast": 5, "slow": 30, "ma": "sma", "long_short": False, "size": 1.0}
    assert (e.size, e.skipped) == (6, 0)


def test_invalid_combinations_are_skipped_and_counted() -> None:
    res = run_sweep(request(grid={"fast": [5, 20, 40], "slow": [20, 40]}))
    summary = res.summary()
    assert (summary["n_combinations"], summary["n_valid"], summary["n_skipped"]) == (6, 3, 3)
    assert summary["skipped_reasons"][0] == "params: fast (20) must be less than slow (20)"
    assert res.table[["fast", "slow"]].values.tolist() == [[5, 20], [5, 40], [20, 40]]
    assert res.heatmap_json["z"][0][1] is None  # (fast 20, slow 20) was skipped


@pytest.mark.parametrize(
    ("grid", "loc", "message"),
    [
        ({}, "grid", "at least one parameter"),
        ({"fast": []}, "grid.fast", "at least one value"),
        ({"nope": [1, 2]}, "grid.nope", "not a parameter of 'sma_cross'"),
        ({"fast": [5, 5]}, "grid.fast", "duplicate value 5"),
        ({"fast": [100], "slow": [50]}, "grid", "no valid combination of 1"),
        (
            {
                "fast": {"start": 1, "stop": 4000, "step": 1},
                "slow": {"start": 4001, "stop": 7000, "step": 1},
            },
            "grid",
            f"at most {MAX_COMBINATIONS}",
        ),
        ({"fast": {"start": 5, "stop": 10, "step": 0}}, "grid.fast.step", "greater than 0"),
        ({"fast": {"start": 9, "stop": 1, "step": 1}}, "grid.fast", "must be >= start"),
        ({"fast": "5:10"}, "grid.fast", "a list of values, a range"),
    ],
)
def test_bad_grids_name_the_field(grid: dict[str, Any], loc: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_sweep_request(request(grid=grid))
    assert any(where == loc and message in msg for where, msg in info.value.errors), (
        info.value.errors
    )


def test_bad_sweep_settings_name_the_field() -> None:
    for body, loc in (
        (request(objective="nope"), "objective"),
        (request(pbo_splits=5), "pbo_splits"),
        ({k: v for k, v in request().items() if k != "grid"}, "grid"),
        ({"preset": "sma_cross_daily", "grid": GRID, "seed": 1}, "seed"),
    ):
        with pytest.raises(ConfigError) as info:
            parse_sweep_request(body)
        assert loc in [where for where, _ in info.value.errors], info.value.errors


def test_preset_form_and_base_params_do_not_change_the_hash() -> None:
    req = parse_sweep_request(
        {"preset": "sma_cross_daily", "overrides": {"data": {"bars": 300}}, "grid": GRID}
    )
    assert req.data.bars == 300 and req.strategy.name == "sma_cross"  # type: ignore[union-attr]
    written = request(strategy={"name": "sma_cross", "params": {"fast": 999, "slow": 3}})
    a, b = parse_sweep_request(written), parse_sweep_request(request())
    d = DataIdentity("d", "1d", "equities", False)
    assert sweep_config_hash(a, d) == sweep_config_hash(b, d)
    assert sweep_config_hash(parse_sweep_request(request(objective="calmar")), d) != (
        sweep_config_hash(b, d)
    )


def test_preset_with_a_data_source_override_replaces_the_data_section() -> None:
    """As POST /runs: naming a source drops the preset's synthetic fields (no 'extra' errors)."""
    req = parse_sweep_request(
        {"preset": "sma_cross_daily", "grid": GRID,
         "overrides": {"data": {"source": "dataset", "id": "ab" * 32}}}
    )  # fmt: skip
    assert req.data.source == "dataset" and req.data.id == "ab" * 32  # type: ignore[union-attr]


def test_bad_data_fields_are_named_as_in_a_run_request() -> None:
    """No union tag in the path: `data.bars`, as a run request names it."""
    with pytest.raises(ConfigError) as info:
        parse_sweep_request(request(data={"bars": -1}))
    assert [where for where, _ in info.value.errors] == ["data.bars"], info.value.errors
    with pytest.raises(ConfigError) as info:
        parse_sweep_request(request(strategy={"name": "sma_cross", "params": {"ma": "nope"}}))
    assert [where for where, _ in info.value.errors] == ["strategy.params.ma"], info.value.errors


# ------------------------------------------------------------------ best, heatmap


@pytest.mark.parametrize("objective", ["sharpe", "max_drawdown", "total_return", "profit_factor"])
def test_best_maximizes_the_objective(objective: str) -> None:
    res = run_sweep(request(objective=objective))
    values = res.table[objective].to_numpy(dtype=float)
    best = int(np.nanargmax(values))  # the first of equal values
    assert res.best["combo"] == best and res.best["params"] == res.expansion.params[best]
    assert same(res.best["metrics"][objective], values[best])
    assert res.summary()["best"] == {"combo": best, "params": res.expansion.params[best]}
    assert res.heatmap_json["metric"] == objective
    assert res.best["metrics"] == res.best_run.metrics


def test_heatmap_is_the_objective_over_the_first_two_axes() -> None:
    res = run_sweep(request())
    h = res.heatmap_json
    assert h["x"] == {"name": "fast", "values": [5, 10, 20]}
    assert h["y"] == {"name": "slow", "values": [20, 40, 60]}
    lookup = {(r["fast"], r["slow"]): r["sharpe"] for r in res.table.to_dict("records")}
    for yi, slow in enumerate(h["y"]["values"]):
        for xi, fast in enumerate(h["x"]["values"]):
            want = lookup.get((fast, slow))
            assert (h["z"][yi][xi] is None) if want is None else same(h["z"][yi][xi], want)
    best = res.expansion.points[res.best["combo"]]
    assert h["best"] == {"fast": best[0], "slow": best[1]} and h["fixed"] == {}
    # axes in name order (fast, size, slow): the third is fixed at the best combination's value
    three = run_sweep(request(grid={**GRID, "size": [0.5, 1.0]}))
    fast, size, slow = three.expansion.points[three.best["combo"]]
    assert three.heatmap_json["y"] == {"name": "size", "values": [0.5, 1.0]}
    assert three.heatmap_json["fixed"] == {"slow": slow}
    at = {
        (r["fast"], r["size"]): r["sharpe"]
        for r in three.table.to_dict("records")
        if r["slow"] == slow
    }
    assert same(
        three.heatmap_json["z"][[0.5, 1.0].index(size)][[5, 10, 20].index(fast)], at[(fast, size)]
    )
    # a single axis has no y
    one = run_sweep(request(grid={"fast": [5, 10]}))
    assert one.heatmap_json["y"] is None and len(one.heatmap_json["z"]) == 1


# ------------------------------------------------------------------ events, cancellation


def test_events_stream_stages_and_progress() -> None:
    events: list[tuple[str, dict[str, Any]]] = []
    validation = {"bootstrap": {"n_resamples": 50}, "permutation": {"n_permutations": 4}}
    res = run_sweep(request(validation=validation), on_event=lambda k, d: events.append((k, d)))
    started = [d["stage"] for k, d in events if k == "stage" and d["status"] == "started"]
    assert started == ["validate", "load_data", "features", "sweep", "best", "validation"]
    sweep = [
        (d["done"], d["total"]) for k, d in events if k == "progress" and d["stage"] == "sweep"
    ]
    assert sweep[-1] == (8, 8) and [d for d, _ in sweep] == sorted({d for d, _ in sweep})
    perms = [d["done"] for k, d in events if k == "progress" and d["stage"] == "validation"]
    assert perms == [1, 2, 3, 4]
    assert set(res.timings_ms) == set(started)


def test_cancel_stops_the_sweep() -> None:
    seen: list[str] = []

    def on_event(kind: str, data: dict[str, Any]) -> None:
        seen.append(kind)

    with pytest.raises(RunCancelled):
        run_sweep(request(), on_event=on_event, should_cancel=lambda: "progress" in seen)


# ------------------------------------------------------------------ determinism, validation


def _validated(seed: int = 0) -> dict[str, Any]:
    return request(
        seed=seed,
        validation={
            "bootstrap": {"n_resamples": 100},
            "permutation": {"n_permutations": 5},
            "folds": {"k": 3},
        },
    )


def test_same_request_same_artifact_bytes_any_thread_count(tmp_path: Path) -> None:
    a = run_sweep(_validated())
    threads = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        b = run_sweep(_validated())
    finally:
        numba.set_num_threads(threads)
    assert a.artifact_payloads() == b.artifact_payloads()
    ma = a.write_artifacts(tmp_path / "a")
    mb = b.write_artifacts(tmp_path / "b")
    assert ma["run_hash"] == mb["run_hash"] and ma["kind"] == "sweep"
    for name in ma["artifacts"]:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    other = run_sweep(_validated(seed=1))  # another root seed: other draws, same grid results
    assert other.artifact_payloads()["sweep.parquet"] == a.artifact_payloads()["sweep.parquet"]
    assert other.validation["bootstrap"] != a.validation["bootstrap"]  # type: ignore[index]


def test_dsr_deflates_by_the_number_of_valid_combinations() -> None:
    res = run_sweep(_validated())
    v = res.validation
    assert v is not None
    n_valid = len(res.expansion.params)
    assert n_valid == 8 and res.expansion.size == 9
    assert v["psr"]["n_trials"] == v["dsr"]["n_trials"] == v["sweep"]["n_trials"] == n_valid
    ppy = res.best["metrics"]["periods_per_year"]
    per_bar = res.table["sharpe"].to_numpy(dtype=float) / math.sqrt(ppy)
    variance = float(np.var(per_bar[np.isfinite(per_bar)], ddof=1))
    assert v["dsr"]["sr_variance_source"] == "trials"
    assert v["dsr"]["sr_variance"] == pytest.approx(variance, rel=1e-9)
    returns = bar_returns(res.best_run.equity_values)
    assert v["dsr"]["dsr"] == pytest.approx(dsr(returns, n_valid, variance), rel=1e-9)
    assert v["dsr"]["sr_benchmark"] > 0 and v["psr"]["dsr"] < v["psr"]["psr"]
    # the permutation statistic is the best objective over the grid on each path
    assert v["permutation"]["real"] == res.best["metrics"]["sharpe"]
    assert v["permutation"]["n_permutations"] == 5 and v["folds"]["k"] == 3


def test_pbo_equals_cscv_on_the_single_runs_returns() -> None:
    res = run_sweep(_validated())
    assert res.validation is not None
    pbo = res.validation["pbo"]
    matrix = np.column_stack(
        [
            bar_returns(btlab.run(res.request.run_config(p), data=res.dataset).equity_values)
            for p in res.expansion.params
        ]
    )
    want = pbo_cscv(matrix, 16)
    assert pbo["n_splits"] == 16 and pbo["n_combinations"] == 12870
    assert pbo["pbo"] == want["pbo"] and pbo["is_best_counts"] == want["is_best_counts"]
    assert pbo["logits"]["mean"] == pytest.approx(want["logits"]["mean"], rel=1e-9)
    short = run_sweep(_validated() | {"data": {"bars": 25}, "grid": {"fast": [2, 3], "slow": [5]}})
    assert short.validation["pbo"] is None  # type: ignore[index]
    assert "32 bars" in short.validation["sweep"]["pbo_skipped"]  # type: ignore[index]


def _blocks(m: np.ndarray, splits: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    bounds = block_bounds(m.shape[0], splits)
    return np.add.reduceat(m, bounds[:-1]).T, np.add.reduceat(m * m, bounds[:-1]).T, bounds


def test_pbo_from_blocks_is_cscv_noise_near_half_planted_edge_near_zero() -> None:
    pbos = []
    for s in range(20):
        noise = np.random.default_rng(s).normal(0.0, 0.01, (400, 10))
        res = pbo_from_blocks(*_blocks(noise, 8))
        assert res["pbo"] == pbo_cscv(noise, 8)["pbo"]
        pbos.append(res["pbo"])
    assert 0.4 < np.mean(pbos) < 0.6
    edge = np.random.default_rng(21).normal(0.0, 0.01, (800, 12))
    edge[:, 5] += 0.003
    res = pbo_from_blocks(*_blocks(edge, 16))
    assert res["pbo"] < 0.02 and res["is_best_counts"].get(5, 0) > 0.95 * 12870
    with pytest.raises(ValueError, match="2 strategies"):
        pbo_from_blocks(*_blocks(edge[:, :1], 16))


# ------------------------------------------------------------------ command line


def test_cli_sweep_prints_the_best_and_writes_artifacts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "sweep"
    argv = ["sweep", "--grid", "fast=5:20:5", "--grid", "slow=30,60", "--set", "data.bars=300",
            "--no-validation", "--quiet", "--out", str(out)]  # fmt: skip
    assert main(argv) == 0
    printed = capsys.readouterr().out
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["kind"] == "sweep"
    assert {"sweep.parquet", "sweep.json", "heatmap.json", "metrics.json"} <= set(
        manifest["artifacts"]
    )
    summary = json.loads((out / "sweep.json").read_text())
    assert summary["axes"] == {"fast": [5, 10, 15, 20], "slow": [30, 60]}
    best = summary["best"]["params"]
    assert f"fast={best['fast']}" in printed and "slow" in printed and str(out) in printed
    # --json: the same best, the artifact folder and the run hash
    assert main([*argv[:-1], str(tmp_path / "j"), "--json", "--objective", "total_return"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["objective"] == "total_return" and data["n_valid"] == 8
    assert (
        data["run_hash"] == json.loads((tmp_path / "j" / "manifest.json").read_text())["run_hash"]
    )


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--grid", "fast"], "NAME=VALUES"),
        (["--grid", "fast=5:x"], "fast"),
        (["--grid", "fast=1:2:3:4"], "START:STOP:STEP"),
        (["--grid", "nope=1,2"], "grid.nope"),
        (["--grid", "fast=100", "--grid", "slow=50"], "no valid combination"),
        ([], "grid"),
        (["no_such_preset", "--grid", "fast=5,10"], "unknown preset"),
    ],
)
def test_cli_sweep_bad_input_exits_2(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["sweep", "--quiet", "--set", "data.bars=200", *argv]) == 2
    assert message in " ".join(capsys.readouterr().err.split())  # rich may wrap long lines


# ------------------------------------------------------------------ HTTP


def test_post_sweeps_streams_progress_over_sse(tmp_path: Path) -> None:
    import httpx

    from tests.api.conftest import SERVER_ENV, Server, stream_events

    home = tmp_path / "home"
    home.mkdir()
    server = Server(home, dict(SERVER_ENV)).start()
    try:
        with httpx.Client(base_url=server.url, timeout=30.0) as client:
            body = request(seed=5, validation={"bootstrap": {"enabled": False}, "folds": {"enabled": False},
                                               "permutation": {"n_permutations": 3}})  # fmt: skip
            response = client.post("/sweeps", json=body)
            assert response.status_code == 201, response.text
            sweep = response.json()
            events = stream_events(client, sweep["id"])
            kinds = [e.event for e in events]
            assert kinds[0] == "queued" and kinds[-1] == "completed", events[-1].data
            progress = [e.data for e in events if e.event == "progress"]
            assert {"stage": "sweep", "done": 8, "total": 8} in progress
            assert {"stage": "validation", "done": 3, "total": 3} in progress
            manifest = client.get(f"/runs/{sweep['id']}/artifacts").json()
            assert {"sweep.json", "heatmap.json", "validation.json"} <= set(manifest["artifacts"])
            bad = client.post("/sweeps", json=request(grid={"nope": [1]}))
            assert bad.status_code == 422
            assert "grid.nope" in [d["loc"] for d in bad.json()["details"]], bad.json()
    finally:
        server.stop()


@pytest.mark.parametrize("best", [0, 7, -1])
def test_heatmap_cells_are_the_combinations_at_the_best_on_the_other_axes(best: int) -> None:
    """The heatmap's cells (read off the codes) against a lookup of each cell's point: a grid
    of three axes with invalid combinations (fast >= slow) skipped, as holes."""
    from btlab.sweep.grid import expand_grid
    from btlab.sweep.result import objective_heatmap

    e = expand_grid(
        "sma_cross", {}, {"fast": [5, 10, 20, 40], "slow": [10, 20, 30], "size": [0.5, 1.0]}
    )
    values = np.arange(len(e), dtype=float) * 1.5 - 3.0
    best = best % len(e)
    got = objective_heatmap(e, "sharpe", values, best)
    names = list(e.axes)
    fixed = e.points[best][2:]
    for yi, y in enumerate(e.axes[names[1]]):
        for xi, x in enumerate(e.axes[names[0]]):
            k = e.index_of((x, y, *fixed))
            assert got["z"][yi][xi] == (None if k is None else float(values[k]))
    assert any(v is None for row in got["z"] for v in row)  # the skipped ones are holes
