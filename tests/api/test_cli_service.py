"""The service commands of the CLI: `runs list|show|rm`, `data import|list`, `serve` arguments.

They work on a home folder directly (no server). Bad input exits 2 with a message naming the
problem and changes nothing.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import btlab
from btlab.cli import build_parser, main
from btlab.orchestrator import Orchestrator
from btlab.store import Store

from .conftest import tiny


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A home with two completed runs (made in-process, as a server would)."""
    path = tmp_path_factory.mktemp("cli") / "home"
    store = Store(path)
    orch = Orchestrator(store)
    try:
        for seed in (1, 2):
            run, _ = orch.submit(tiny(seed=seed))
            assert orch.wait(run.id, 60).status == "completed"
    finally:
        orch.shutdown()
        store.close()
    return path


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """`btlab argv`: exit code, stdout, stderr (whitespace folded: rich wraps long lines)."""
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse errors
        code = int(exc.code or 0)
    captured = capsys.readouterr()
    return code, captured.out, " ".join(captured.err.split())


def _listed(home: Path, capsys: pytest.CaptureFixture[str]) -> list[str]:
    code, out, _ = _run(["runs", "list", "--json", "--home", str(home)], capsys)
    assert code == 0
    return [r["id"] for r in json.loads(out)["items"]]


def test_runs_list_and_show(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(["runs", "list", "--json", "--home", str(home)], capsys)
    assert code == 0
    listed = json.loads(out)
    assert listed["total"] == 2
    newest, oldest = listed["items"]
    assert newest["created_at"] >= oldest["created_at"]
    assert {r["status"] for r in listed["items"]} == {"completed"}
    code, out, _ = _run(["runs", "list", "--limit", "1", "--home", str(home)], capsys)
    assert code == 0 and newest["id"] in out and oldest["id"] not in out
    code, out, _ = _run(["runs", "show", oldest["id"], "--events", "--home", str(home)], capsys)
    assert code == 0
    shown = json.loads(out)
    assert shown["id"] == oldest["id"] and shown["request"] == tiny(seed=1)
    assert shown["config"]["seed"] == 1 and shown["run_hash"] == oldest["run_hash"]
    assert Path(shown["artifacts"]) == home / "runs" / oldest["id"]
    seqs = [e["seq"] for e in shown["events"]]
    assert seqs == list(range(1, len(seqs) + 1)) and shown["events"][-1]["type"] == "completed"


def test_runs_rm_deletes_rows_and_folder(
    home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    local = tmp_path / "home"
    store = Store(local)
    orch = Orchestrator(store)
    try:
        run, _ = orch.submit(tiny(seed=3))
        orch.wait(run.id, 60)
    finally:
        orch.shutdown()
        store.close()
    assert (local / "runs" / run.id).is_dir()
    code, out, _ = _run(["runs", "rm", run.id, "--home", str(local)], capsys)
    assert code == 0 and f"deleted {run.id}" in out
    assert not (local / "runs" / run.id).exists()
    assert _listed(local, capsys) == []
    code, _, err = _run(["runs", "show", run.id, "--home", str(local)], capsys)
    assert code == 2 and f"unknown run id '{run.id}'" in err


def test_runs_rm_is_all_or_nothing(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ids = _listed(home, capsys)
    code, _, err = _run(["runs", "rm", ids[0], "0123456789abcdef", "--home", str(home)], capsys)
    assert code == 2 and "unknown run id '0123456789abcdef'" in err
    assert _listed(home, capsys) == ids and (home / "runs" / ids[0]).is_dir()


def test_runs_rm_refuses_an_active_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = Store(tmp_path / "home")
    queued, _ = store.create_run(
        request={}, config={}, config_hash="h", dataset_hash=None, body_hash="b"
    )
    store.close()
    code, _, err = _run(["runs", "rm", queued.id, "--home", str(tmp_path / "home")], capsys)
    assert code == 2 and f"run {queued.id} is queued; cancel it before deleting it" in err
    assert _listed(tmp_path / "home", capsys) == [queued.id]


def test_data_import_and_list(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    local = str(tmp_path / "home")
    path = tmp_path / "bars.csv"
    btlab.synthetic(bars=80, seed=4).to_frame().to_csv(path, index=False)
    argv = ["data", "import", str(path), "--symbol", "SPY", "--timeframe", "1d", "--home", local]
    code, out, _ = _run([*argv, "--json"], capsys)
    assert code == 0
    imported = json.loads(out)
    assert imported["created"] and imported["symbol"] == "SPY" and imported["rows"] == 80
    assert imported["timeframe"] == "1d"
    assert (tmp_path / "home" / "datasets" / f"{imported['id']}.parquet").is_file()
    code, out, _ = _run(argv, capsys)
    assert code == 0 and "already stored" in out and imported["id"] in out
    code, out, _ = _run(["data", "list", "--json", "--home", local], capsys)
    assert code == 0 and [d["id"] for d in json.loads(out)] == [imported["id"]]
    code, out, _ = _run(["data", "list", "--home", local], capsys)
    assert code == 0 and "SPY" in out and imported["id"] in out  # the full id, as runs need it


def _bad_csv(tmp_path: Path) -> str:
    path = tmp_path / "bad.csv"
    path.write_text("ts,open,high,low,close,volume\n2020-01-01,1,1,1,1,1\n2020-01-01,1,1,1,1,1\n")
    return str(path)


def _good_csv(tmp_path: Path) -> str:
    path = tmp_path / "good.csv"
    btlab.synthetic(bars=30, seed=5).to_frame().to_csv(path, index=False)
    return str(path)


BAD = [
    ("import-missing-file", lambda t: ["data", "import", str(t / "nope.csv")], "no such file"),
    # a folder is a portfolio of its files: here one, e.csv, is empty
    ("import-a-folder", lambda t: ["data", "import", str(t)], "e.csv is empty"),
    ("import-bad-rows", lambda t: ["data", "import", _bad_csv(t), "--symbol", "S"],
     "duplicate_timestamp"),
    ("import-empty-file", lambda t: ["data", "import", str(t / "e.csv")], "empty"),
    ("import-bad-timeframe", lambda t: ["data", "import", _good_csv(t), "--timeframe", "zz"],
     "timeframe 'zz'"),
    ("show-unknown", lambda t: ["runs", "show", "0123456789abcdef"], "unknown run id"),
    ("show-traversal", lambda t: ["runs", "show", "../../etc"], "unknown run id '../../etc'"),
    ("rm-unknown", lambda t: ["runs", "rm", "zzz"], "unknown run id 'zzz'"),
    ("list-limit-zero", lambda t: ["runs", "list", "--limit", "0"], "must be a positive integer"),
    ("list-limit-text", lambda t: ["runs", "list", "--limit", "x"], "must be a positive integer"),
    ("list-bad-status", lambda t: ["runs", "list", "--status", "x"], "invalid choice: 'x'"),
    ("runs-no-action", lambda t: ["runs"], "required: ACTION"),
    ("data-no-action", lambda t: ["data"], "required: ACTION"),
    ("serve-bad-port", lambda t: ["serve", "--port", "99999"], "port must be in 0..65535"),
    ("serve-bad-workers", lambda t: ["serve", "--workers", "0"], "--workers"),
]  # fmt: skip


@pytest.mark.parametrize(("argv", "message"), [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_input_exits_2_naming_the_problem(
    argv: Any, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "e.csv").write_text("")
    home = tmp_path / "home"
    args = argv(tmp_path)
    code, out, err = _run([*args, "--home", str(home)] if len(args) > 1 else args, capsys)
    assert code == 2, (out, err)
    assert message in err, err
    if home.exists():  # nothing stored
        assert list((home / "datasets").iterdir()) == [] and list((home / "runs").iterdir()) == []


def test_the_installed_command_exits_2(tmp_path: Path) -> None:
    """The real entry point, not just main(): the exit status a shell sees."""
    proc = subprocess.run(
        [sys.executable, "-m", "btlab.cli", "runs", "show", "nope", "--home", str(tmp_path)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 2
    assert "unknown run id 'nope'" in proc.stderr and proc.stdout == ""


def test_serve_defaults_to_loopback() -> None:
    args = build_parser().parse_args(["serve"])
    assert (args.host, args.port) == ("127.0.0.1", 8000)


def test_bad_settings_name_their_source() -> None:
    """A bad value is named where it came from: the BTLAB_* variable or the command-line flag."""
    from btlab.api.settings import Settings
    from btlab.errors import ConfigError

    with pytest.raises(ConfigError) as info:
        Settings.from_env({"BTLAB_RETENTION": "0"})
    assert [loc for loc, _ in info.value.errors] == ["BTLAB_RETENTION"]
    with pytest.raises(ConfigError) as info:
        Settings.from_env({"BTLAB_WORKERS": "2"}, workers=0)
    assert [loc for loc, _ in info.value.errors] == ["--workers"]


def test_run_reads_a_dataset_imported_into_the_home(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`btlab data import` prints a request; `btlab run` with it loads the dataset from the home."""
    local = str(tmp_path / "home")
    code, out, _ = _run(["data", "import", _good_csv(tmp_path), "--json", "--home", local], capsys)
    assert code == 0
    dataset_id = json.loads(out)["id"]
    request = json.dumps(
        {"data": {"source": "dataset", "id": dataset_id}, "validation": {"enabled": False}}
    )
    argv = [
        "run",
        request,
        "--quiet",
        "--json",
        "--no-report",
        "--out",
        str(tmp_path / "r"),
        "--home",
        local,
    ]
    code, out, err = _run(argv, capsys)
    assert code == 0, err
    manifest = json.loads((tmp_path / "r" / "manifest.json").read_text())
    assert (
        manifest["dataset_hash"] == dataset_id
        and manifest["request"]["data"]["identity"] == dataset_id
    )
    assert json.loads(out)["run_hash"] == manifest["run_hash"]
    code, _, err = _run([*argv[:-1], str(tmp_path / "elsewhere")], capsys)
    assert code == 2 and str(tmp_path / "elsewhere") in err and "btlab data import" in err
    assert not (tmp_path / "elsewhere").exists()  # read-only: no home is created
    missing = request.replace(dataset_id, "f" * 64)
    code, _, err = _run(
        ["run", missing, "--quiet", "--home", local, "--out", str(tmp_path / "m")], capsys
    )
    assert code == 2 and "unknown dataset id" in err and local in err


def test_read_only_commands_create_no_home_and_name_it(
    tmp_path: Path, home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "no-home"
    code, out, _ = _run(["runs", "list", "--json", "--home", str(missing)], capsys)
    assert code == 0 and json.loads(out) == {"total": 0, "items": []}
    code, out, _ = _run(["runs", "list", "--home", str(missing)], capsys)
    assert code == 0 and "no btlab home there yet" in " ".join(out.split())
    for argv, message in [
        (["runs", "show", "0123456789abcdef"], f"there is no btlab home at {missing}"),
        (["runs", "rm", "0123456789abcdef"], f"there is no btlab home at {missing}"),
        (
            ["report", "nosuch"],
            f"there is no btlab home at {missing}; nor is there an artifact folder nosuch",
        ),
    ]:
        code, _, err = _run([*argv, "--home", str(missing)], capsys)
        assert code == 2 and message in err, err
    assert not missing.exists()
    code, _, err = _run(["runs", "show", "0123456789abcdef", "--home", str(home)], capsys)
    assert code == 2 and f"unknown run id '0123456789abcdef' in home {home}" in err
    code, _, err = _run(
        ["report", str(tmp_path / "btlab-out" / "typo"), "--home", str(home)], capsys
    )
    assert code == 2 and f"no such artifact folder: {tmp_path / 'btlab-out' / 'typo'}" in err


def test_runs_table_fits_80_columns_with_strategy_and_symbol() -> None:
    from types import SimpleNamespace

    from rich.console import Console

    from btlab.service_cli import runs_errors, runs_table

    def row(i: int, **extra: Any) -> Any:
        config = {
            "strategy": {"name": "sma_cross"},
            "data": {"source": "csv", "path": "/d/SPY.csv"},
        }
        fields = {"id": f"{i:016x}", "kind": "run", "status": "completed", "config": config,
                  "created_at": "2026-12-01T20:33:21.123Z", "error": None,
                  "metrics": {"sharpe": 1.2345, "total_return": -0.1234}}  # fmt: skip
        return SimpleNamespace(**(fields | extra))

    runs = [
        row(1),
        row(2, kind="sweep", config={"strategy": {"name": "breakout"}, "data": {"symbol": "QQQ"}}),
        row(3, status="failed", metrics=None, error="interrupted: the server stopped"),
        row(
            4,
            config={
                "strategy": {"name": "ma_trend"},
                "data": {"source": "dataset", "id": "ab" * 32},
            },
        ),
    ]
    console = Console(width=80, record=True, file=io.StringIO())
    console.print(runs_table(runs, "4 of 4 runs", {"ab" * 32: "IWM"}))
    text = console.export_text()
    assert max(len(line) for line in text.splitlines()) <= 80
    for expected in ("completed", "failed", "sharpe", "return", "strategy", "symbol", "SPY",
                     "QQQ", "IWM", "ma_trend", "sma_cross", "sweep breakout", "1.23", "-12.3%", "12-01 20:33",
                     *(r.id for r in runs)):  # fmt: skip
        assert expected in text, (expected, text)
    assert "…" not in text
    assert runs_errors(runs) == [f"{runs[2].id} failed: interrupted: the server stopped"]


def test_data_import_takes_a_calendar_and_prints_the_data_facts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "fx.csv"
    btlab.synthetic(bars=90, seed=6).to_frame().to_csv(path, index=False)
    argv = ["data", "import", str(path), "--calendar", "24x5", "--home", str(tmp_path / "h")]
    code, out, _ = _run(argv, capsys)
    assert code == 0
    assert "calendar 24x5 (declared)" in out and "periods_per_year 260" in out
    store = Store(tmp_path / "h")
    try:
        (row,) = store.list_datasets()
        assert store.load_dataset(row.id).meta.calendar == "24x5"
    finally:
        store.close()
