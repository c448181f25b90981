"""The service commands of the CLI: `runs list|show|rm`, `data import|list`, `serve` arguments.

They work on a home folder directly (no server). Bad input exits 2 with a message naming the
problem and changes nothing.
"""

from __future__ import annotations

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
    ("import-a-folder", lambda t: ["data", "import", str(t)], "not a regular file"),
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
