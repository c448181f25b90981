"""Walk-forward with re-fitting (SPEC §10): window arithmetic, the choice of each window
against a sweep of its train part alone, the out-of-sample curve against the engine run of the
stitched targets, causality as a property, errors, the command line and the HTTP endpoint."""

from __future__ import annotations

import dataclasses
import itertools
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import btlab
from btlab.artifacts import verify_artifacts
from btlab.cli import main
from btlab.data import Dataset
from btlab.errors import ConfigError
from btlab.features import FeatureStore
from btlab.kernel_inputs import exec_params, size_scale
from btlab.kernels.dtypes import Flag
from btlab.kernels.ledger import trades_from_fills
from btlab.metrics import compute_metrics
from btlab.pipeline import simulate_chunked
from btlab.strategies import compute_target
from btlab.walkforward import (
    WalkForwardSpec,
    parse_walkforward_request,
    resolve_windows,
    run_walkforward,
)
from btlab.walkforward.passes import bar_slice

GRID = {"fast": [5, 10], "slow": [20, 40]}
#: The grid with request-field axes: each window's choice brings its own costs and stops.
FIELD_GRID = {**GRID, "execution.commission_bps": [0.0, 20.0], "risk.stop_loss": [None, 0.03]}


def request(**extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "data": {"bars": 400},
        "strategy": {"name": "sma_cross", "params": {"long_short": True}},
        "grid": GRID,
        "walkforward": {"train": 120, "test": 60},
        "validation": {"permutation": {"enabled": False}, "bootstrap": {"n_resamples": 50}},
    }
    return {**body, **extra}


@pytest.fixture(scope="module")
def dataset() -> Dataset:
    return btlab.synthetic(bars=400, seed=3)


def _bounds(spec: dict[str, Any], ts: np.ndarray, warmup: int = 0) -> list[tuple[int, int, int]]:
    windows = resolve_windows(WalkForwardSpec.model_validate(spec), ts, warmup)
    return [(w.train_start, w.train_end, w.test_end) for w in windows]


# ------------------------------------------------------------------ windows


def test_bar_windows_roll_and_anchor_by_the_test_length() -> None:
    ts = np.arange(100, dtype=np.int64)
    # rolling: train [25w, 25w + 40), test the 25 bars after; 40 + 3 * 25 = 115 > 100: 2 windows
    assert _bounds({"train": 40, "test": 25}, ts) == [(0, 40, 65), (25, 65, 90)]
    assert _bounds({"train": 40, "test": 20, "mode": "anchored"}, ts) == [
        (0, 40, 60), (0, 60, 80), (0, 80, 100),
    ]  # fmt: skip


def test_calendar_windows_start_at_the_first_bar_on_or_after_each_boundary() -> None:
    days = pd.bdate_range("2020-01-01", "2022-12-30", tz="UTC")  # weekdays only
    ts = days.as_unit("ns").asi8

    def bar(day: str) -> int:  # the first weekday at or after the day
        return int(np.searchsorted(ts, pd.Timestamp(day, tz="UTC").value))

    got = _bounds({"train": "1Y", "test": "6M"}, ts)
    # 2021-01-01 is a Friday, 2021-07-01 a Thursday, 2022-01-01 a Saturday (-> Monday the 3rd)
    assert got == [
        (0, bar("2021-01-01"), bar("2021-07-01")),
        (bar("2020-07-01"), bar("2021-07-01"), bar("2022-01-03")),
        (bar("2021-01-01"), bar("2022-01-03"), bar("2022-07-01")),
    ]
    # the next test part would end 2023-01-01, after the last bar (2022-12-30): not a window
    anchored = _bounds({"train": "13W", "test": "30D", "mode": "anchored"}, ts)
    start = pd.Timestamp("2020-01-01", tz="UTC")
    first_end = start + pd.DateOffset(weeks=13)
    assert anchored[0] == (
        0,
        bar(str(first_end.date())),
        bar(str((first_end + pd.DateOffset(days=30)).date())),
    )
    # one window per 30 days from the first test start up to the last bar: 1003 // 30
    assert (pd.Timestamp("2022-12-30", tz="UTC") - first_end).days == 1003
    assert all(a == 0 for a, _, _ in anchored) and len(anchored) == 33


@pytest.mark.parametrize(
    ("spec", "warmup", "field", "text"),
    [
        ({"train": 90, "test": 20}, 0, "walkforward", "do not fit the data: 100 bars"),
        (
            {"train": 40, "test": 20},
            40,
            "walkforward.train",
            "not more than the grid's warm-up of 40",
        ),
    ],
)
def test_windows_that_do_not_fit_are_errors_naming_the_field(
    spec: dict[str, Any], warmup: int, field: str, text: str
) -> None:
    with pytest.raises(ConfigError) as info:
        _bounds(spec, np.arange(100, dtype=np.int64), warmup)
    assert [loc for loc, _ in info.value.errors] == [field]
    assert text in info.value.errors[0][1]


def test_a_calendar_part_of_fewer_than_two_bars_is_an_error() -> None:
    ts = pd.date_range("2020-01-01", periods=60, freq="W", tz="UTC").as_unit("ns").asi8
    with pytest.raises(ConfigError) as info:
        _bounds({"train": "1Y", "test": "3D"}, ts)  # a weekly bar every 7 days: tests of 0-1 bars
    assert info.value.errors[0][0] == "walkforward.test"
    assert "needs at least 2" in info.value.errors[0][1]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"walkforward": {"train": 1, "test": 10}}, "walkforward.train"),
        ({"walkforward": {"train": "2Y", "test": 10}}, "walkforward"),
        ({"walkforward": {"train": "2Q", "test": "1Y"}}, "walkforward.train"),
        ({"walkforward": {"train": 100, "test": 50, "mode": "expanding"}}, "walkforward.mode"),
        (
            {"grid": {"fast": [5], "execution.initial_cash": [1e5, 2e5]}},
            "grid.execution.initial_cash",
        ),
        ({"grid": {"fast": [5], "risk.max_drawdown": [0.1, 0.2]}}, "grid.risk.max_drawdown"),
        (
            {"grid": {"fast": [5], "execution.close_at_end": [True, False]}},
            "grid.execution.close_at_end",
        ),
        (
            {"grid": {"fast": [5], "execution.rebalance": ["every_bar", "weekly"]}},
            "grid.execution.rebalance",
        ),
        ({"execution": {"rebalance": "monthly"}}, "execution.rebalance"),
        ({"walkforward": {"train": 300, "test": 200}}, "walkforward"),
        ({"walkforward": {"train": 30, "test": 50}}, "walkforward.train"),  # slow=40's warm-up
        ({"data": {"bars": 400, "symbols": 2}}, "data"),
    ],
)
def test_bad_requests_are_config_errors_naming_the_field(
    change: dict[str, Any], field: str
) -> None:
    with pytest.raises(ConfigError) as info:
        run_walkforward(request(**change))
    assert field in [loc for loc, _ in info.value.errors], info.value.errors


# ------------------------------------------------------------------ the choice of each window


def _engine_run(
    cfg: Any, dataset: Dataset, target: np.ndarray, scale: np.ndarray | None = None
) -> tuple[Any, np.ndarray]:
    scale = np.ones(len(dataset)) if scale is None else scale
    sim = simulate_chunked(dataset, target, scale, exec_params(cfg))
    trades = trades_from_fills(
        sim.fills, len(dataset) - 1, float(dataset.close[-1]), sim.borrow_total
    )
    return sim, trades


def test_anchored_choices_equal_a_sweep_of_the_train_part_alone(dataset: Dataset) -> None:
    result = run_walkforward(
        request(walkforward={"train": 150, "test": 50, "mode": "anchored"}), data=dataset
    )
    assert len(result.windows) == 5
    sweep_req = {k: v for k, v in request().items() if k != "walkforward"} | {
        "validation": {"enabled": False}
    }
    for w, row in zip(result.windows, result.table.to_dict("records"), strict=True):
        sweep = btlab.run_sweep(sweep_req, data=bar_slice(dataset, 0, w.train_end))
        assert sweep.best["combo"] == row["combo"]
        assert sweep.best["metrics"]["sharpe"] == row["is_sharpe"]
        assert sweep.best["metrics"]["total_return"] == row["is_total_return"]


def test_rolling_choices_are_the_best_engine_run_over_each_train_part(dataset: Dataset) -> None:
    """Each combination traded over the train part alone (flat at its first bar), features and
    targets from the bars before its end: the engine's run, then the objective's argmax."""
    req = parse_walkforward_request(request(objective="total_return"))
    result = run_walkforward(req, data=dataset)
    combos = req.expansion.params
    for w, row in zip(result.windows, result.table.to_dict("records"), strict=True):
        prefix = FeatureStore(bar_slice(dataset, 0, w.train_end))
        part = bar_slice(dataset, w.train_start, w.train_end)
        values = []
        for p in combos:
            target = compute_target(prefix, "sma_cross", p, prefix.n)[w.train_start :]
            sim, _ = _engine_run(req.run_config(p), part, target)
            values.append(sim.equity[-1] / req.execution.initial_cash - 1.0)
        best = int(np.argmax(values))  # the first of equal values, as the grid orders them
        assert row["combo"] == best
        assert row["is_total_return"] == pytest.approx(values[best], rel=1e-12, abs=1e-15)


def test_the_oos_curve_is_the_engine_run_of_the_stitched_targets(dataset: Dataset) -> None:
    req = parse_walkforward_request(request())
    result = run_walkforward(req, data=dataset)
    s0, end = result.windows[0].test_start, result.windows[-1].test_end
    # each chosen combination's target over its test part, from its single run on all the data
    stitched = np.concatenate([
        btlab.run(req.combination_config(int(row["combo"])), data=dataset).target[w.test_start : w.test_end]
        for w, row in zip(result.windows, result.table.to_dict("records"), strict=True)
    ])  # fmt: skip
    oos = bar_slice(dataset, s0, end)
    sim, trades = _engine_run(req.run_config({}), oos, stitched)
    run = result.oos_run
    np.testing.assert_array_equal(run.target, stitched)
    np.testing.assert_array_equal(run.equity_values, sim.equity)
    np.testing.assert_array_equal(run.fill_records, sim.fills)
    assert run.equity_values[0] != 0 and len(run.equity_values) == end - s0
    metrics = compute_metrics(
        oos.ts, oos.close, sim.equity, sim.units, sim.borrow, sim.fills, trades,
        initial_cash=req.execution.initial_cash, periods_per_year=run.metrics["periods_per_year"],
        ruined=bool(sim.flags & Flag.RUINED),
    )  # fmt: skip
    assert json.dumps(metrics, default=str) == json.dumps(run.metrics, default=str)
    # the account is carried across windows: one fresh account would restart at the cash
    assert result.table["oos_total_return"].notna().all()


@pytest.mark.parametrize("sizing", ["fraction", "vol_target"])
def test_a_stateful_strategy_enters_each_part_in_the_state_its_past_left(
    dataset: Dataset, sizing: str
) -> None:
    """The generic path (targets, not the fused cross): a breakout's held position comes into
    each train and test part from the bars before it, so each part trades the single run's
    target (and size scale) over all the data, cut to the part."""
    req = parse_walkforward_request(request(
        strategy={"name": "channel_breakout", "params": {"long_short": True}},
        grid={"entry_window": [20, 40], "exit_window": [5, 10]}, risk={"sizing": sizing},
        objective="total_return", validation={"enabled": False},
    ))  # fmt: skip
    result = run_walkforward(req, data=dataset)
    ppy = dataset.meta.periods_per_year
    full = [btlab.run(req.combination_config(k), data=dataset) for k in range(4)]
    scale = size_scale(req.run_config({}), FeatureStore(dataset), len(dataset), ppy)
    assert any(r.target[w.train_start] != 0 for r in full for w in result.windows[1:])
    for w, row in zip(result.windows, result.table.to_dict("records"), strict=True):
        part = bar_slice(dataset, w.train_start, w.train_end)
        cut = slice(w.train_start, w.train_end)
        returns = [
            _engine_run(r.config, part, r.target[cut], scale[cut])[0].equity[-1] / 1e5 - 1
            for r in full
        ]
        assert row["combo"] == int(np.argmax(returns))
        assert row["is_total_return"] == pytest.approx(returns[row["combo"]], rel=1e-12)
    s0, end = result.windows[0].test_start, result.windows[-1].test_end
    stitched = np.concatenate([
        full[int(row["combo"])].target[w.test_start : w.test_end]
        for w, row in zip(result.windows, result.table.to_dict("records"), strict=True)
    ])  # fmt: skip
    sim, _ = _engine_run(req.run_config({}), bar_slice(dataset, s0, end), stitched, scale[s0:end])
    np.testing.assert_array_equal(result.oos_run.equity_values, sim.equity)


def test_summary_efficiency_stability_and_validation(dataset: Dataset, tmp_path: Path) -> None:
    result = run_walkforward(request(), data=dataset)
    table = result.table
    is_mean = float(np.mean(table["is_cagr"]))
    assert result.efficiency["wfe"] == pytest.approx(result.metrics["cagr"] / is_mean)
    fast = list(table["fast"])
    stability = result.stability["fast"]
    assert stability["values"] == fast and stability["distinct"] == len(set(fast))
    kept = sum(a == b for a, b in itertools.pairwise(fast)) / (len(fast) - 1)
    assert stability["share_kept"] == pytest.approx(kept)
    assert stability["cv"] == pytest.approx(np.std(fast) / np.mean(fast))
    v = result.validation
    assert v is not None and v["psr"]["n_trials"] == 4 and v["dsr"]["n_trials"] == 4
    assert v["permutation"] is None and v["bootstrap"] is not None and v["folds"] is not None
    manifest = result.write_artifacts(tmp_path / "wf")
    assert manifest["kind"] == "walkforward"
    assert {"windows.parquet", "walkforward.json", "equity.parquet", "fills.parquet",
            "trades.parquet", "metrics.json", "validation.json"} == set(manifest["artifacts"])  # fmt: skip
    assert verify_artifacts(tmp_path / "wf") == []
    summary = json.loads((tmp_path / "wf" / "walkforward.json").read_text())
    assert [w["params"]["fast"] for w in summary["windows"]] == fast
    # the same request on the same data hashes the same; a sweep of it is another config
    again = run_walkforward(request(), data=dataset)
    assert again.config_hash == result.config_hash
    assert again.write_artifacts(tmp_path / "wf2")["run_hash"] == manifest["run_hash"]


def test_a_window_without_a_defined_objective_is_said(dataset: Dataset) -> None:
    # slow=100 is known from bar 101: window 0's 102 train bars never trade, its Sharpe is NaN
    result = run_walkforward(
        request(strategy={"name": "sma_cross", "params": {}}, grid={"fast": [5, 10], "slow": [100]},
                walkforward={"train": 102, "test": 60}, validation={"enabled": False}),
        data=dataset,
    )  # fmt: skip
    assert np.isnan(result.table["is_objective"][0]) and result.table["combo"][0] == 0
    assert np.isfinite(result.table["is_objective"][1:]).all()
    said = [w.message for w in result.warnings if w.code == "walkforward_undefined_objective"]
    assert said == [
        "in 1 of 4 windows (the first: window 0) no combination has a defined sharpe on the "
        "train part; the first combination in grid order trades the test part"
    ]


def test_progress_is_reported_per_window(dataset: Dataset) -> None:
    events: list[tuple[str, dict[str, Any]]] = []
    result = run_walkforward(request(), data=dataset, on_event=lambda k, d: events.append((k, d)))
    total = len(result.windows)
    progress = [d for k, d in events if k == "progress" and d["stage"] == "walkforward"]
    assert progress == [
        {"stage": "walkforward", "done": w, "total": total} for w in range(1, total + 1)
    ]
    stages = [d["stage"] for k, d in events if k == "stage" and d["status"] == "done"]
    assert stages == [
        "validate", "load_data", "features", "windows", "walkforward", "oos", "validation",
    ]  # fmt: skip


# ------------------------------------------------------------------ causality


def _with_prices_changed(dataset: Dataset, k: int, factor: float) -> Dataset:
    """Bars k.. scaled by `factor` (their OHLC stays consistent)."""
    arrays = {}
    for name in ("open", "high", "low", "close"):
        a = np.array(getattr(dataset, name))
        a[k:] *= factor
        arrays[name] = a
    return dataclasses.replace(dataset, **arrays)


@pytest.mark.parametrize("grid", [GRID, FIELD_GRID], ids=["params", "fields"])
@settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    w=st.integers(0, 3),
    offset=st.integers(0, 200),
    factor=st.floats(0.5, 2.0).filter(lambda f: abs(f - 1.0) > 1e-3),
    mode=st.sampled_from(["rolling", "anchored"]),
)
def test_prices_after_a_test_part_change_nothing_before_its_end(
    dataset: Dataset, grid: dict[str, Any], w: int, offset: int, factor: float, mode: str
) -> None:
    body = request(
        grid=grid, walkforward={"train": 100, "test": 60, "mode": mode},
        validation={"enabled": False},
    )  # fmt: skip
    base = run_walkforward(body, data=dataset)
    window = base.windows[w]
    k = min(window.test_end + offset, len(dataset) - 1)
    changed = run_walkforward(body, data=_with_prices_changed(dataset, k, factor))
    s0 = base.windows[0].test_start
    upto = window.test_end - s0
    np.testing.assert_array_equal(
        base.oos_run.equity_values[:upto], changed.oos_run.equity_values[:upto]
    )
    np.testing.assert_array_equal(base.table["combo"][: w + 1], changed.table["combo"][: w + 1])
    keep = base.oos_run.fill_records["bar"] < upto
    np.testing.assert_array_equal(
        base.oos_run.fill_records[keep],
        changed.oos_run.fill_records[changed.oos_run.fill_records["bar"] < upto],
    )


# ------------------------------------------------------------------ command line


def test_cli_wfo_writes_the_artifacts_and_the_report(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "wfo"
    argv = ["wfo", "--grid", "fast=5:10:5", "--grid", "slow=20,40", "--set", "data.bars=400",
            "--train", "120", "--test", "60", "--anchored", "--quiet", "--out", str(out)]  # fmt: skip
    assert main(argv) == 0
    printed = capsys.readouterr().out
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["kind"] == "walkforward" and verify_artifacts(out) == []
    summary = json.loads((out / "walkforward.json").read_text())
    assert summary["walkforward"] == {"train": 120, "test": 60, "mode": "anchored"}
    assert len(summary["windows"]) == 4 and "WFE" in printed and str(out) in printed
    page = (out / "report.html").read_text()
    assert 'id="walkforward"' in page and 'id="table-windows"' in page
    windows = page[page.index('id="table-windows"') :].split("</table>")[0]
    assert windows.count('<td class="date">') == 2 * 4  # train and test dates of each window
    assert main([*argv[:-1], str(tmp_path / "j"), "--json", "--no-report"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [w["params"] for w in data["windows"]] == [w["params"] for w in summary["windows"]]
    assert main(["wfo", "--quiet", "--set", "data.bars=400", "--train", "300", "--test", "200",
                 "--grid", "fast=5,10", "--out", str(tmp_path / "x")]) == 2  # fmt: skip
    assert "do not fit the data" in " ".join(capsys.readouterr().err.split())


# ------------------------------------------------------------------ HTTP


def test_post_walkforward_streams_progress_per_window(tmp_path: Path) -> None:
    import httpx

    from tests.api.conftest import SERVER_ENV, Server, stream_events

    home = tmp_path / "home"
    home.mkdir()
    server = Server(home, dict(SERVER_ENV)).start()
    try:
        with httpx.Client(base_url=server.url, timeout=60.0) as client:
            body = request(validation={"enabled": False})
            response = client.post("/walkforward", json=body)
            assert response.status_code == 201, response.text
            run = response.json()
            assert run["kind"] == "walkforward"
            events = stream_events(client, run["id"])
            assert events[-1].event == "completed", events[-1].data
            progress = [e.data for e in events if e.event == "progress"]
            windows = [p for p in progress if p["stage"] == "walkforward"]
            assert windows == [{"stage": "walkforward", "done": w, "total": 4} for w in range(1, 5)]
            manifest = client.get(f"/runs/{run['id']}/artifacts").json()
            assert {"windows.parquet", "walkforward.json", "equity.parquet"} <= set(
                manifest["artifacts"]
            )
            assert client.post("/walkforward", json=body).json()["id"] == run["id"]
            report = client.get(f"/runs/{run['id']}/report")
            assert report.status_code == 200 and 'id="walkforward"' in report.text
            bad = client.post("/walkforward", json=request(grid={"execution.initial_cash": [1, 2]}))
            assert bad.status_code == 422
            assert "grid.execution.initial_cash" in [d["loc"] for d in bad.json()["details"]]
    finally:
        server.stop()
