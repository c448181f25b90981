"""The command line: the default run, overrides, errors that name the problem."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from btlab.cli import build_parser, build_request, main, parse_set


def test_default_run_writes_artifacts(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    assert main(["run", "--quiet", "--out", str(out), "--set", "validation.enabled=false"]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert {
        "equity.parquet",
        "fills.parquet",
        "trades.parquet",
        "metrics.json",
        "validation.json",
    } <= set(manifest["artifacts"])
    assert "sharpe" in capsys.readouterr().out


def test_json_output_and_set_overrides(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["run", "vol_target_trend", "--quiet", "--json", "--out", str(tmp_path / "r"), "--no-validation",
                 "--set", "strategy.params.window=50", "--seed", "3"])  # fmt: skip
    assert code == 0
    printed = json.loads(capsys.readouterr().out)
    manifest = json.loads((tmp_path / "r" / "manifest.json").read_text())
    assert (
        manifest["request"]["strategy"]["params"]["window"] == 50
        and manifest["request"]["seed"] == 3
    )
    assert printed["run_hash"] == manifest["run_hash"]


def test_data_file_replaces_the_source(tmp_path: Path) -> None:
    args = build_parser().parse_args(["run", "sma_cross_daily", "--data", str(tmp_path / "x.csv")])
    body = build_request(args)
    assert body["overrides"]["data"] == {"source": "csv", "path": str(tmp_path / "x.csv")}


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["run", "no_such_preset"], "unknown preset"),
        (["run", "{not json"], "not valid JSON"),
        (["run", "--set", "strategy.params.fast=500"], "fast"),
        (["run", "--set", "nonsense"], "KEY.PATH=VALUE"),
        (["run", "--data", "/no/such/file.csv"], "file_not_found"),
        (["run", "missing.json"], "no such file"),
    ],
)
def test_bad_input_exits_2_with_a_clear_message(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([*argv, "--quiet"]) == 2
    assert message in capsys.readouterr().err.replace("\n", "")


def test_parse_set_nests_and_parses_json() -> None:
    assert parse_set(["a.b=1", "a.c=x", "d=[1,2]"]) == {"a": {"b": 1, "c": "x"}, "d": [1, 2]}


def test_allocator_tuning_is_idempotent() -> None:
    from btlab.runtime import tune_allocator

    first = tune_allocator()
    assert tune_allocator() is first
    if sys.platform.startswith("linux"):
        assert first  # glibc machines (CI, Docker) get the tuning


def test_too_many_synthetic_bars_exit_2_naming_the_limit(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["run", "--quiet", "--no-validation", "--set", "data.bars=70000"]) == 2
    err = capsys.readouterr().err.replace("\n", "")
    assert "data.bars" in err and "2262-04-11" in err and "at most 64,511" in err


def test_run_prints_the_data_facts_and_the_timeframe_warning(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import numpy as np
    import pandas as pd

    dates = pd.date_range("2012-01-31", periods=156, freq="ME", tz="UTC")
    close = 100 * np.exp(np.cumsum(np.random.default_rng(3).normal(0.01, 0.05, len(dates))))
    path = tmp_path / "btcusd.csv"
    pd.DataFrame({"ts": dates, "open": close, "high": close * 1.02, "low": close * 0.98,
                  "close": close, "volume": 1.0}).to_csv(path, index=False)  # fmt: skip
    base = ["run", "--quiet", "--no-validation", "--data", str(path), "--set",
            "strategy.params.fast=3", "--set", "strategy.params.slow=12"]  # fmt: skip
    assert main([*base, "--out", str(tmp_path / "a")]) == 0
    out = capsys.readouterr().out.replace("\n", " ")
    assert "btcusd 1mo (inferred)" in out and "periods_per_year 12" in out
    assert "2012-01-31" in out and "156 bars" in out and "warning" not in out
    # a declared minute on monthly bars is kept, and said to contradict the timestamps
    assert main([*base, "--set", "data.timeframe=1m", "--set", "data.calendar=24x7",
                 "--out", str(tmp_path / "b")]) == 0  # fmt: skip
    out = capsys.readouterr().out.replace("\n", " ")
    assert "warning: timeframe_mismatch: declared 1m" in out
    assert "155 of 155 spacings count as gaps" in out
    manifest = json.loads((tmp_path / "b" / "manifest.json").read_text())
    assert manifest["dataset"]["warnings"][0].startswith("timeframe_mismatch:")
    assert manifest["dataset"]["calendar"] == "24x7"
    report = (tmp_path / "b" / "report.html").read_text()
    assert 'data-warning="timeframe_mismatch"' in report
    # the capital M is refused, naming both spellings
    assert main([*base, "--set", "data.timeframe=1M"]) == 2
    err = capsys.readouterr().err.replace("\n", "")
    assert "ambiguous" in err and "'mo'" in err
