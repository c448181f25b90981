"""Determinism: the same request in fresh processes writes byte-identical artifacts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import btlab
from btlab.artifacts import verify_artifacts

SCRIPT = """
import sys, btlab
result = btlab.run(btlab.load_preset(sys.argv[1]) | {"validation": {"bootstrap": {"n_resamples": 200},
                                                      "permutation": {"n_permutations": 10}}})
btlab.write_artifacts(result, sys.argv[2])
"""


def run_in_fresh_process(preset: str, out: Path, hash_seed: str) -> dict:
    env = {**os.environ, "PYTHONHASHSEED": hash_seed}
    subprocess.run(
        [sys.executable, "-c", SCRIPT, preset, str(out)], check=True, env=env, timeout=600
    )
    return json.loads((out / "manifest.json").read_text())


def test_two_processes_with_different_hash_seeds_write_identical_artifacts(tmp_path: Path) -> None:
    a = run_in_fresh_process("sma_cross_long_short", tmp_path / "a", "1")
    b = run_in_fresh_process("sma_cross_long_short", tmp_path / "b", "987654")
    assert a["run_hash"] == b["run_hash"]
    for name in a["artifacts"]:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    assert verify_artifacts(tmp_path / "a") == []


def test_order_of_runs_does_not_matter(tmp_path: Path) -> None:
    small = {
        "data": {"bars": 300},
        "validation": {"bootstrap": {"n_resamples": 50}, "permutation": {"n_permutations": 5}},
    }
    first = btlab.write_artifacts(btlab.run(small), tmp_path / "first")
    btlab.run(btlab.load_preset("breakout_stops") | {"validation": {"enabled": False}})
    again = btlab.write_artifacts(btlab.run(small), tmp_path / "again")
    assert first["run_hash"] == again["run_hash"]


def test_manifest_detects_tampering(tmp_path: Path) -> None:
    btlab.write_artifacts(
        btlab.run({"data": {"bars": 200}, "validation": {"enabled": False}}), tmp_path / "run"
    )
    assert verify_artifacts(tmp_path / "run") == []
    (tmp_path / "run" / "metrics.json").write_text("{}")
    assert any("metrics.json" in p for p in verify_artifacts(tmp_path / "run"))


def test_existing_output_folder_is_not_overwritten_by_accident(tmp_path: Path) -> None:
    result = btlab.run({"data": {"bars": 200}, "validation": {"enabled": False}})
    btlab.write_artifacts(result, tmp_path / "run")
    try:
        btlab.write_artifacts(result, tmp_path / "run")
    except btlab.RunError as exc:
        assert "already exists" in str(exc)
    else:
        raise AssertionError("expected a RunError")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]  # no temporary folder left behind
