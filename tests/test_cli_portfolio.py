"""`btlab run` on a portfolio (SPEC §8): several synthetic symbols, --data given several times,
a folder of files, a long file; the summary names the symbols, --json and the report work."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from btlab.cli import build_parser, build_request, main
from btlab.report import REPORT_NAME

FAST = ["--quiet", "--set", "validation.permutation.enabled=false"]


def _bars(symbol: str, seed: int, start: str = "2020-01-01", n: int = 300) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0003, 0.015, n)))
    open_ = np.concatenate([[100.0], close[:-1]])
    return pd.DataFrame({
        "ts": pd.bdate_range(start, periods=n, tz="UTC"), "open": open_,
        "high": np.maximum(open_, close) * 1.005, "low": np.minimum(open_, close) * 0.995,
        "close": close, "volume": 1e6,
    })  # fmt: skip


def _folder(tmp_path: Path, suffix: str = ".csv") -> Path:
    folder = tmp_path / "bars"
    folder.mkdir()
    for i, name in enumerate(("AAA", "BBB", "CCC")):
        frame = _bars(name, i, start=f"2020-01-{1 + i:02d}")
        if suffix == ".csv":
            frame.to_csv(folder / f"{name}.csv", index=False)
        else:
            frame.to_parquet(folder / f"{name}.parquet", index=False)
    return folder


def test_a_synthetic_portfolio_runs_end_to_end(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    assert main(["run", "--out", str(out), "--set", "data.symbols=8", *FAST]) == 0
    printed = capsys.readouterr().out
    assert "sma_cross on 8 symbols" in printed
    assert "data: 8 symbols (SYN01, SYN02, SYN03, … SYN08) 1d" in printed
    manifest = json.loads((out / "manifest.json").read_text())
    assert {"positions.parquet", "symbols.parquet"} <= set(manifest["artifacts"])
    assert manifest["dataset"]["symbols"] == [f"SYN{i:02d}" for i in range(1, 9)]
    report = (out / REPORT_NAME).read_text(encoding="utf-8")
    assert 'id="chart-weights"' in report and 'id="table-symbols"' in report
    assert f"report: {out / REPORT_NAME}" in printed


def test_json_names_the_symbols(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    argv = ["run", "equal_weight_monthly", "--json", "--out", str(out), *FAST]
    assert main(argv) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["data"]["symbols"] == [f"SYN{i:02d}" for i in range(1, 21)]
    assert printed["run_hash"] == json.loads((out / "manifest.json").read_text())["run_hash"]
    assert printed["report"] == str(out / REPORT_NAME)


def test_data_given_several_times_is_a_portfolio(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = _folder(tmp_path)
    files = [str(folder / f"{s}.csv") for s in ("AAA", "BBB", "CCC")]
    args = build_parser().parse_args(
        ["run", "equal_weight_monthly", *[a for f in files for a in ("--data", f)]]
    )
    assert build_request(args)["overrides"]["data"] == {"source": "csv", "paths": files}
    out = tmp_path / "run"
    argv = ["run", "equal_weight_monthly", "--out", str(out), "--json", *FAST]
    assert main([*argv, *[a for f in files for a in ("--data", f)]]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["data"]["symbols"] == ["AAA", "BBB", "CCC"]
    symbols = pd.read_parquet(out / "symbols.parquet")
    assert list(symbols["symbol"]) == ["AAA", "BBB", "CCC"] and (symbols["fills"] > 0).all()


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_a_folder_is_a_portfolio(
    tmp_path: Path, suffix: str, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = _folder(tmp_path, suffix)
    out = tmp_path / "run"
    argv = ["run", "equal_weight_monthly", "--data", str(folder), "--out", str(out), *FAST]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "equal_weight on 3 symbols" in printed and "data: 3 symbols (AAA, BBB, CCC)" in printed
    fills = pd.read_parquet(out / "fills.parquet")
    assert set(fills["symbol"]) == {"AAA", "BBB", "CCC"}


def test_a_long_file_is_a_portfolio(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    long = pd.concat([_bars(s, i).assign(symbol=s) for i, s in enumerate(("XA", "XB"))])
    path = tmp_path / "long.parquet"
    long.to_parquet(path, index=False)
    out = tmp_path / "run"
    argv = ["run", "xs_momentum_top", "--data", str(path), "--out", str(out), "--json", *FAST,
            "--set", "strategy.params.top=1"]  # fmt: skip
    assert main(argv) == 0
    assert json.loads(capsys.readouterr().out)["data"]["symbols"] == ["XA", "XB"]
    assert set(pd.read_parquet(out / "positions.parquet")["symbol"]) == {"XA", "XB"}


def test_files_of_two_formats_are_refused_naming_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _bars("A", 0).to_csv(tmp_path / "A.csv", index=False)
    _bars("B", 1).to_parquet(tmp_path / "B.parquet", index=False)
    argv = ["run", "--data", str(tmp_path / "A.csv"), "--data", str(tmp_path / "B.parquet")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "--data" in err and "A.csv" in err and "B.parquet" in err


def test_a_folder_of_both_formats_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = _folder(tmp_path)
    _bars("DDD", 3).to_parquet(folder / "DDD.parquet", index=False)
    assert main(["run", "--data", str(folder), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert str(folder) in err and "both" in err
