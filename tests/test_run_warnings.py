"""Run warnings: a degenerate run says so in the result, the manifest, the events, the CLI and
the report, never only as a NaN or a count inside an artifact (issue 10, items 7 and 8)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import btlab
from btlab.artifacts import run_hash, write_artifacts
from btlab.cli import main, validation_summary
from btlab.orchestrator import Orchestrator
from btlab.run_warnings import RunWarning
from btlab.store import Store
from btlab.sweep import run_sweep

QUICK_VALIDATION = {"bootstrap": {"n_resamples": 50}, "permutation": {"n_permutations": 10}}
#: Four bars and a slow average of 100: the strategy never leaves its warm-up.
SHORT = {
    "data": {"bars": 4},
    "strategy": {"name": "sma_cross", "params": {"fast": 10, "slow": 100}},
    "validation": QUICK_VALIDATION,
}
#: A fixed commission above the cash: the first fill ruins the run.
RUINOUS = {
    "data": {"bars": 300},
    "strategy": {"name": "buy_and_hold"},
    "execution": {"commission_fixed": 1e9},
    "validation": {"enabled": False},
}


def codes(warnings: list[RunWarning]) -> list[str]:
    return [w.code for w in warnings]


def by_code(warnings: list[RunWarning], code: str) -> list[str]:
    return [w.message for w in warnings if w.code == code]


@pytest.fixture(scope="module")
def short_run() -> btlab.RunResult:
    return btlab.run(SHORT)


def test_data_shorter_than_the_warm_up_is_a_warning(short_run: btlab.RunResult) -> None:
    (message,) = by_code(short_run.warnings, "short_data")
    assert "4 bars" in message and "sma" in message and '"window":100' in message
    assert "warm-up" in message


def test_a_run_without_trades_is_a_warning(short_run: btlab.RunResult) -> None:
    assert short_run.metrics["fill_count"] == 0
    (message,) = by_code(short_run.warnings, "no_trades")
    assert "never traded" in message


def test_undefined_metrics_are_named_with_their_reason(short_run: btlab.RunResult) -> None:
    messages = by_code(short_run.warnings, "undefined_metrics")
    text = " | ".join(messages)
    for name in ("sharpe", "sortino", "calmar", "win_rate", "profit_factor"):
        assert name in text, text
    assert any("sharpe" in m and "no variance" in m for m in messages), messages
    assert any("win_rate" in m and "no closed trade" in m for m in messages), messages


def test_validation_that_could_not_be_computed_says_why(short_run: btlab.RunResult) -> None:
    text = " | ".join(by_code(short_run.warnings, "validation_undefined"))
    for section in ("psr", "bootstrap", "permutation", "folds"):
        assert section in text, text
    assert "no variance" in text


def test_a_normal_run_has_no_warnings() -> None:
    result = btlab.run({"data": {"bars": 500}, "validation": QUICK_VALIDATION})
    assert result.metrics["trade_count"] > 0
    assert result.warnings == []


def test_dataset_warnings_are_folded_in() -> None:
    ds = btlab.synthetic(bars=300)  # DatasetMeta.warnings holds "code: message"
    meta = ds.meta.model_copy(update={"warnings": ["stale_bars: 3 bars repeat the previous bar"]})
    ds = type(ds)(ds.ts, ds.open, ds.high, ds.low, ds.close, ds.volume, ds.adj_close, meta)
    result = btlab.run({"validation": {"enabled": False}}, data=ds)
    assert RunWarning("stale_bars", "3 bars repeat the previous bar") in result.warnings


def test_ruin_is_a_warning_and_the_drawdown_stops_at_minus_one() -> None:
    result = btlab.run(RUINOUS)
    assert result.ruined and result.metrics["ruined"]
    (message,) = by_code(result.warnings, "ruined")
    assert message.startswith("ruined at 2015-01-02") and "trading halted" in message
    assert result.metrics["final_equity"] < -1e9  # the debt stays in the equity and the return
    assert result.metrics["max_drawdown"] == -1.0
    assert result.equity["drawdown"].min() == -1.0


def test_fold_drawdowns_of_a_ruined_run_stop_at_minus_one() -> None:
    result = btlab.run({**RUINOUS, "validation": {"bootstrap": {"enabled": False},
                                                  "permutation": {"enabled": False}}})  # fmt: skip
    assert result.validation is not None
    folds = result.validation["folds"]["folds"]
    assert folds and all(f["max_drawdown"] == -1.0 for f in folds), folds


def test_a_max_drawdown_halt_is_a_warning_and_a_status_row(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    body = {"risk": {"max_drawdown": 0.05}, "validation": {"enabled": False}}
    result = btlab.run(body)
    assert result.halted and not result.ruined
    (message,) = by_code(result.warnings, "halted")
    assert message.startswith("halted at ") and "risk.max_drawdown (5.00%)" in message
    assert (
        main(["run", json.dumps(body), "--quiet", "--no-report", "--out", str(tmp_path / "r")]) == 0
    )
    assert "halted at" in " ".join(capsys.readouterr().out.split())


def test_warnings_are_in_the_manifest_and_its_hash(
    short_run: btlab.RunResult, tmp_path: Path
) -> None:
    manifest = write_artifacts(short_run, tmp_path / "run")
    on_disk = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert on_disk["warnings"] == [w.to_json() for w in short_run.warnings]
    assert "no_trades" in [w["code"] for w in on_disk["warnings"]]
    assert run_hash({**on_disk, "warnings": []}) != manifest["run_hash"]
    again = write_artifacts(btlab.run(SHORT), tmp_path / "again")
    assert again["run_hash"] == manifest["run_hash"]


def test_sweep_grid_values_skipped_are_warnings_with_the_value_and_the_reason() -> None:
    request = {**SHORT, "data": {"bars": 300}, "validation": {"enabled": False},
               "grid": {"fast": [5, 5.5, 20], "slow": [20, 50]}}  # fmt: skip
    result = run_sweep(request)
    messages = by_code(result.warnings, "grid_skipped")
    assert any("fast=5.5" in m and "integer" in m and "2 of 6 combinations" in m for m in messages)
    assert any("fast=20, slow=20" in m and "less than slow" in m for m in messages), messages
    assert result.summary()["n_skipped"] == 3


def test_sweep_of_data_shorter_than_the_warm_up_warns() -> None:
    request = {**SHORT, "data": {"bars": 30}, "validation": {"enabled": False},
               "grid": {"fast": [5, 10], "slow": [20, 100]}}  # fmt: skip
    result = run_sweep(request)
    (message,) = by_code(result.warnings, "short_data")
    assert '"window":100' in message and "30 bars" in message


def test_the_completed_event_carries_the_warnings(tmp_path: Path) -> None:
    store = Store(tmp_path / "home")
    orch = Orchestrator(store)
    try:
        run, _ = orch.submit(SHORT)
        assert orch.wait(run.id, 120).status == "completed"
        completed = next(e for e in store.events_after(run.id, 0) if e.type == "completed")
        assert "no_trades" in [w["code"] for w in completed.data["warnings"]]
    finally:
        orch.shutdown()
        store.close()


def test_the_cli_prints_each_warning_to_stderr(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        main(["run", json.dumps(SHORT), "--quiet", "--no-report", "--out", str(tmp_path / "r")])
        == 0
    )
    captured = capsys.readouterr()
    err = " ".join(captured.err.split())
    assert "warning: short_data:" in err and "warning: no_trades:" in err
    assert "nan" not in captured.out.lower()


def test_the_cli_shows_ruin_in_the_metrics_table(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        main(["run", json.dumps(RUINOUS), "--quiet", "--no-report", "--out", str(tmp_path / "r")])
        == 0
    )
    out = " ".join(capsys.readouterr().out.split())
    assert "ruined at 2015-01-02" in out and "equity <= 0, trading halted" in out


def test_validation_summary_says_what_is_undefined(short_run: btlab.RunResult) -> None:
    assert short_run.validation is not None
    line = validation_summary(short_run.validation)
    assert "nan" not in line.lower() and "Sharpe CI ," not in line
    assert "undefined" in line and "permutation p" in line


def test_repeated_grid_axis_is_an_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["sweep", "--quiet", "--grid", "fast=5,10", "--grid", "fast=20", "--grid", "slow=50",
            "--out", str(tmp_path / "s")]  # fmt: skip
    assert main(argv) == 2
    assert "grid.fast" in " ".join(capsys.readouterr().err.split())


def test_the_report_shows_a_warnings_box(short_run: btlab.RunResult, tmp_path: Path) -> None:
    from btlab.report import render_report

    write_artifacts(short_run, tmp_path / "run")
    page = render_report(tmp_path / "run")
    assert 'id="warnings"' in page
    for w in short_run.warnings:
        assert w.code in page


def test_the_sweep_report_shows_its_warnings(tmp_path: Path) -> None:
    from btlab.report import render_report

    request = {"data": {"bars": 300}, "validation": {"enabled": False},
               "grid": {"fast": [5, 5.5], "slow": [50]}}  # fmt: skip
    result = run_sweep(request)
    result.write_artifacts(tmp_path / "sweep")
    page = render_report(tmp_path / "sweep")
    assert 'id="warnings"' in page and 'data-code="grid_skipped"' in page and "fast=5.5" in page


def test_the_cli_sweep_prints_skipped_grid_values(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["sweep", "--quiet", "--no-report", "--no-validation", "--set", "data.bars=300",
            "--grid", "fast=5.5,10", "--grid", "slow=50", "--out", str(tmp_path / "s")]  # fmt: skip
    assert main(argv) == 0
    err = " ".join(capsys.readouterr().err.split())
    assert "warning: grid_skipped: 1 of 2 combinations skipped (fast=5.5, slow=50)" in err, err


def test_short_data_names_what_the_strategy_and_sizing_read_only() -> None:
    base = {"data": {"bars": 60}, "validation": {"enabled": False},
            "strategy": {"name": "sma_cross", "params": {"fast": 5, "slow": 20}}}  # fmt: skip
    extra = btlab.run({**base, "features": [{"name": "sma", "params": {"window": 100}}]})
    assert "short_data" not in codes(extra.warnings)  # computed on request, read by nothing
    sized = btlab.run({**base, "risk": {"sizing": "vol_target", "vol_lookback": 100}})
    (message,) = by_code(sized.warnings, "short_data")
    assert "rolling_vol" in message and "sma" not in message
