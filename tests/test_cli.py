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


def test_set_values_are_json_so_numbers_stay_numbers() -> None:
    from btlab.presets import resolve_request

    args = build_parser().parse_args(
        ["run", "--set", "execution.commission_bps=2", "--set", "data.start=2020-01-02"]
    )
    config = resolve_request(build_request(args))
    assert config.execution.commission_bps == 2.0
    assert str(config.data.start) == "2020-01-02 00:00:00"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("setting", "field", "message"),
    [
        ("execution.spread_bps=NaN", "execution.spread_bps", "must be a finite number"),
        ('execution.commission_bps="2"', "execution.commission_bps", "number"),
        ("data.bars=true", "data.bars", "integer"),
    ],
)
def test_set_rejects_what_the_api_rejects(
    setting: str, field: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["run", "--quiet", "--set", setting]) == 2
    err = capsys.readouterr().err.replace("\n", " ")
    assert field in err and message in err, err
