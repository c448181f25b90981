"""The command line: the default run, overrides, errors that name the problem."""

from __future__ import annotations

import json
import os
import subprocess
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


HEAVY_MODULES = ("numba", "pandas", "pyarrow", "matplotlib", "fastapi")


@pytest.mark.parametrize(
    "argv",
    [["presets"], ["presets", "--json"], ["--help"], ["run", "--help"], ["runs", "list"],
     ["report", "nosuch"]],
)  # fmt: skip
def test_light_commands_import_no_heavy_module(argv: list[str], tmp_path: Path) -> None:
    """`btlab presets` and `btlab --help` start in a fraction of a second: they never import
    numba's compiler, pandas, pyarrow, matplotlib or fastapi (each costs 0.1-1 s of start-up)."""
    code = (
        "import sys\nfrom btlab.cli import main\n"
        f"try:\n    main({argv!r})\nexcept SystemExit:\n    pass\n"
        f"print(sorted(m for m in {HEAVY_MODULES!r} if m in sys.modules), file=sys.stderr)"
    )
    env = {**os.environ, "BTLAB_HOME": str(tmp_path / "home")}
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
    )
    assert done.stderr.strip().splitlines()[-1] == "[]", done.stderr
    assert done.stdout.strip() or "error:" in done.stderr  # the command did say something


def test_import_btlab_is_light_and_names_load_on_use() -> None:
    code = (
        "import sys, btlab\n"
        f"print(sorted(m for m in {HEAVY_MODULES!r} if m in sys.modules))\n"
        "btlab.run\nprint('btlab.pipeline' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["[]", "True"]


def _no_run(*args: object, **kwargs: object) -> None:
    raise AssertionError("the run was computed before the output folder was checked")


def test_a_taken_out_folder_is_refused_before_computing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import btlab.pipeline
    import btlab.sweep

    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "notes.txt").write_text("mine")
    monkeypatch.setattr(btlab.pipeline, "run", _no_run)
    monkeypatch.setattr(btlab.sweep, "run_sweep", _no_run)
    for command in (["run"], ["sweep", "--grid", "fast=5,10"], ["run", "--data", "/no/such.csv"]):
        assert main([*command, "--quiet", "--out", str(tmp_path / "taken")]) == 2
        err = " ".join(capsys.readouterr().err.split())
        assert "not a btlab run" in err and "(pass --force to replace it)" in err, err
    assert (tmp_path / "taken" / "notes.txt").read_text() == "mine"


def test_one_rule_for_default_and_explicit_out_folders(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The same bars in a.csv and b.csv are one run (the data's identity is its content, not
    its file): one default folder, and the second replaces the first with the same bytes. A
    folder holding another run (here: one written by another engine version) is refused,
    default folder or not; --force replaces it."""
    import btlab

    monkeypatch.chdir(tmp_path)
    frame = btlab.synthetic(bars=300, seed=2).to_frame()
    frame.to_csv("a.csv", index=False)
    frame.to_csv("b.csv", index=False)
    base = ["run", "--quiet", "--json", "--no-validation", "--no-report"]

    def run(*extra: str) -> tuple[int, str]:
        code = main([*base, *extra])
        captured = capsys.readouterr()
        return code, captured.out if code == 0 else " ".join(captured.err.split())

    code, out = run("--data", "a.csv")
    assert code == 0
    first = json.loads(out)
    folder = Path(first["out"])
    assert folder.parent == Path("btlab-out")
    code, out = run("--data", "b.csv")  # the same bars: the same run replaces itself
    second = json.loads(out)
    assert code == 0 and (second["out"], second["run_hash"]) == (str(folder), first["run_hash"])
    assert second["data"]["symbol"] == "b"  # a label: the folder now says so
    manifest_path = folder / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest_path.write_text(json.dumps({**manifest, "engine_version": "0.0.1"}))
    code, err = run("--data", "b.csv")
    assert code == 2 and "already holds another run" in err and "--force" in err, err
    assert json.loads(manifest_path.read_text())["engine_version"] == "0.0.1"  # untouched
    code, out = run("--data", "b.csv", "--force")
    assert code == 0 and json.loads(out)["out"] == str(folder)
    assert json.loads(out)["run_hash"] == first["run_hash"]
    # an explicit --out follows the same rule
    code, out = run("--data", "a.csv", "--out", "mine")
    assert code == 0
    code, out = run("--data", "a.csv", "--out", "mine")
    assert code == 0
    code, err = run("--data", "a.csv", "--out", "mine", "--seed", "9")
    assert code == 2 and "already holds another run" in err


def test_output_folders_and_files_get_the_usual_modes(tmp_path: Path) -> None:
    import os

    old = os.umask(0o022)
    try:
        assert (
            main(["run", "--quiet", "--no-validation", "--out", str(tmp_path / "a" / "run")]) == 0
        )
    finally:
        os.umask(old)
    folder = tmp_path / "a" / "run"
    assert oct(folder.stat().st_mode & 0o777) == oct(0o755)
    assert oct((tmp_path / "a").stat().st_mode & 0o777) == oct(0o755)
    modes = {p.name: oct(p.stat().st_mode & 0o777) for p in folder.iterdir()}
    assert set(modes.values()) == {oct(0o644)}, modes
    assert "report.html" in modes


def test_the_documented_output_folders_are_git_ignored() -> None:
    """The default `btlab-out/` and every `--out` folder of the README and docs examples."""
    import re

    root = Path(__file__).resolve().parent.parent
    ignored = (root / ".gitignore").read_text().splitlines()
    docs = [root / "README.md", *sorted((root / "docs").glob("*.md"))]
    folders = {"btlab-out"} | {
        m.group(1).split("/")[0]
        for doc in docs
        for m in re.finditer(r"--out ([\w.-]+/[^\s`)]*)", doc.read_text())
    }
    assert folders >= {"btlab-out", "runs"}
    assert {f for f in folders if f"/{f}/" not in ignored and f"{f}/" not in ignored} == set()


def test_messages_are_never_hard_wrapped(tmp_path: Path) -> None:
    """Errors and the artifacts line are one line each in a pipe (a CI log), however long."""
    bad = tmp_path / ("a-long-file-name-so-the-message-passes-eighty-columns" * 2 + ".csv")
    bad.write_text("ts,open,high,low,close,volume\n2020-01-01,1,1,1,1,1\n2020-01-01,1,1,1,1,1\n")
    done = subprocess.run(
        [sys.executable, "-m", "btlab.cli", "run", "--quiet", "--data", str(bad)],
        capture_output=True, text=True, env={**os.environ, "COLUMNS": "80"},
    )  # fmt: skip
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and len(lines[0]) > 80, lines
    assert lines[0].endswith("(first offending rows: 1)")
    out = tmp_path / ("an-output-folder-whose-name-is-long-enough-to-pass-eighty-columns" * 2)
    done = subprocess.run(
        [sys.executable, "-m", "btlab.cli", "run", "--quiet", "--no-validation", "--no-report",
         "--set", "data.bars=300", "--out", str(out)],
        capture_output=True, text=True, env={**os.environ, "COLUMNS": "80"},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert f"artifacts: {out}  run_hash " in done.stdout


def test_sweep_table_ranks_the_best_first() -> None:
    import io
    from types import SimpleNamespace

    import pandas as pd
    from rich.console import Console

    from btlab.cli import sweep_table

    frame = pd.DataFrame(
        {"combo": [0, 1, 2], "fast": [5, 10, 15], "sharpe": [0.1, 0.9, 0.5],
         "total_return": [0.0] * 3, "max_drawdown": [-0.1] * 3, "trade_count": [3] * 3}
    )  # fmt: skip
    result = SimpleNamespace(
        request=SimpleNamespace(objective="sharpe"), table=frame,
        expansion=type("Grid", (), {"axes": {"fast": [5, 10, 15]}, "__len__": lambda _: 3})(),
    )  # fmt: skip
    console = Console(width=120, record=True, file=io.StringIO())
    console.print(sweep_table(result))
    rows = [
        line.split()
        for line in console.export_text().replace("│", " ").splitlines()
        if "0.9000" in line or "0.5000" in line
    ]
    assert [r[:3] for r in rows] == [["1", "1", "10"], ["2", "2", "15"]]  # rank, combo, fast


def test_preset_descriptions_name_their_risk_rules() -> None:
    """`btlab presets` is where users choose: a stop, a take-profit or a drawdown halt that
    changes how a preset trades is in its description."""
    from btlab.presets import list_presets

    for name, preset in list_presets().items():
        risk, text = preset["request"].get("risk", {}), preset["description"]
        for key, words in (("stop_loss", "stop-loss"), ("take_profit", "take-profit"),
                           ("max_drawdown", "drawdown")):  # fmt: skip
            if risk.get(key):
                assert f"{round(risk[key] * 100)}% {words}" in text, (name, key, text)


def _btlab(argv: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """The CLI in its own process (a plugin's registrations stay out of this one)."""
    root = str(Path(__file__).resolve().parent.parent)
    return subprocess.run(
        [sys.executable, "-m", "btlab.cli", *argv], cwd=cwd, capture_output=True, text=True,
        env={**os.environ, "PYTHONPATH": root, **env}, timeout=300,
    )  # fmt: skip


def test_plugins_register_strategies_for_the_cli_and_the_service(tmp_path: Path) -> None:
    request = json.dumps({"strategy": {"name": "plugin_constant", "params": {"weight": 0.25}},
                          "data": {"bars": 300}, "validation": {"enabled": False}})  # fmt: skip
    run = ["run", request, "--quiet", "--no-report", "--json"]
    without = _btlab([*run, "--out", "a"], tmp_path)
    assert without.returncode == 2 and "unknown strategy 'plugin_constant'" in without.stderr
    flag = _btlab([*run, "--out", "b", "--plugin", "tests.plugin_example"], tmp_path)
    assert flag.returncode == 0, flag.stderr
    manifest = json.loads((tmp_path / "b" / "manifest.json").read_text())
    assert manifest["request"]["strategy"] == {
        "name": "plugin_constant",
        "params": {"weight": 0.25},
    }
    env = _btlab([*run, "--out", "c"], tmp_path, BTLAB_PLUGINS=" tests.plugin_example, ")
    assert env.returncode == 0, env.stderr
    assert json.loads(env.stdout)["run_hash"] == json.loads(flag.stdout)["run_hash"]
    grid = json.dumps({"strategy": {"name": "plugin_constant", "params": {}}, "data": {"bars": 300},
                       "grid": {"weight": [0.1, 0.2]}, "validation": {"enabled": False}})  # fmt: skip
    sweep = [
        "sweep",
        grid,
        "--quiet",
        "--no-report",
        "--out",
        "d",
        "--plugin",
        "tests.plugin_example",
    ]
    swept = _btlab(sweep, tmp_path)
    assert swept.returncode == 0, swept.stderr
    missing = _btlab([*run, "--out", "e", "--plugin", "no_such_plugin"], tmp_path)
    assert missing.returncode == 2
    assert "--plugin: no_such_plugin: No module named 'no_such_plugin'" in missing.stderr
    assert "PYTHONPATH" in missing.stderr
    service = (
        "from btlab.api import Settings, create_app\n"
        "from btlab.strategies import list_strategies\n"
        "create_app(Settings.from_env({'BTLAB_PLUGINS': 'tests.plugin_example'}))\n"
        "print('plugin_constant' in [s['name'] for s in list_strategies()])"
    )
    root = str(Path(__file__).resolve().parent.parent)
    done = subprocess.run([sys.executable, "-c", service], cwd=tmp_path, capture_output=True,
                          text=True, env={**os.environ, "PYTHONPATH": root}, timeout=300)  # fmt: skip
    assert done.stdout.strip() == "True", done.stderr


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
    captured = capsys.readouterr()
    err = captured.err.replace("\n", " ")  # a run's warnings go to stderr, the dataset's among them
    assert "warning: timeframe_mismatch: declared 1m" in err
    assert "155 of 155 spacings count as gaps" in err
    manifest = json.loads((tmp_path / "b" / "manifest.json").read_text())
    assert manifest["dataset"]["warnings"][0].startswith("timeframe_mismatch:")
    assert manifest["dataset"]["calendar"] == "24x7"
    report = (tmp_path / "b" / "report.html").read_text()
    assert 'data-code="timeframe_mismatch"' in report
    # the capital M is refused, naming both spellings
    assert main([*base, "--set", "data.timeframe=1M"]) == 2
    err = capsys.readouterr().err.replace("\n", "")
    assert "ambiguous" in err and "'mo'" in err
