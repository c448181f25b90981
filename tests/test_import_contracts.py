"""The dependency direction, enforced: `.ci/lint-imports` checks pyproject's import contracts.

kernels <- core <- api <- cli <- tools, the core itself in ordered floors (so no import circle
can come back, not even through a function-local or TYPE_CHECKING import); nothing imports the
API but `btlab serve` (service_cli); the kernels import only numpy, numba and the standard
library; every module of btlab is placed in a layer; the modules of the btlab.sweep,
btlab.validation and btlab.data packages import downward only. The tree as it is keeps them
all; each planted violation (in a copy of the sources) breaks exactly the contracts it should,
so a contract that stopped checking anything would fail here.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = Path(".ci") / "lint-imports"
LAYERS = "kernels <- core floors <- api <- cli <- tools"
API = "nothing imports the API but `btlab serve`"
KERNEL_DEPS = "kernels import only numpy, numba and the standard library"
SWEEP = "btlab.sweep's modules import downward only (no circles)"
VALIDATION = "btlab.validation's modules import downward only (no circles)"
DATA = "btlab.data's modules import downward only (no circles)"
#: A contract's verdict line: its name, KEPT or BROKEN, and how many imports it ignores, if any.
VERDICT = re.compile(r"^(?P<name>.+) (?P<verdict>KEPT|BROKEN)(?: \(\d+ ignored imports?\))?$")


def _lint(tree: Path) -> tuple[int, dict[str, str]]:
    """Run the script in `tree`: its exit code and each contract's verdict (KEPT or BROKEN)."""
    proc = subprocess.run(
        [str(tree / SCRIPT)], cwd=tree, capture_output=True, text=True, timeout=300
    )
    verdicts = {}
    for line in proc.stdout.splitlines():
        if match := VERDICT.match(line):
            verdicts[match["name"]] = match["verdict"]
    assert verdicts, proc.stdout + proc.stderr
    return proc.returncode, verdicts


def _copy_sources(dest: Path) -> Path:
    """The files the script builds from, and the script, with the running virtualenv as .venv."""
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, dest / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info")
    for name in ("src", "kernels", "presets", ".ci"):
        shutil.copytree(ROOT / name, dest / name, ignore=ignore)
    (dest / ".venv").symlink_to(Path(sys.executable).parents[1])
    return dest


def test_the_tree_keeps_every_contract() -> None:
    code, verdicts = _lint(ROOT)
    assert verdicts == {
        LAYERS: "KEPT",
        API: "KEPT",
        KERNEL_DEPS: "KEPT",
        SWEEP: "KEPT",
        VALIDATION: "KEPT",
        DATA: "KEPT",
    }
    assert code == 0


# (file to plant in, line appended, the contracts it must break)
VIOLATIONS = {
    # the core brings pandas and pydantic with it: the kernels' own contract breaks too
    "kernel imports the core": (
        "kernels/signals.py",
        "from btlab import config",
        {LAYERS, KERNEL_DEPS},
    ),
    "kernel imports pandas": ("kernels/stats.py", "import pandas", {KERNEL_DEPS}),
    "core imports the API": (
        "src/btlab/report/page.py",
        "from btlab.api import Settings",
        {LAYERS, API},
    ),
    "cli.py imports the API": ("src/btlab/cli.py", "from .api import create_app", {API}),
    "API imports the CLI": ("src/btlab/api/app.py", "from ..cli import main", {LAYERS}),
    "a module in no layer": ("src/btlab/unplaced.py", "import math", {LAYERS}),
    # the circles the floors replaced: each comes back through a function-local import
    "the request imports the pipeline": (
        "src/btlab/config.py",
        "def _upward() -> None:\n    from .pipeline import run  # noqa: F401",
        # validation.assemble reads the request: through it, a path up to validation.run
        {LAYERS, VALIDATION},
    ),
    "the bars import the request": (
        "src/btlab/data.py",
        "def _upward() -> None:\n    from .config import SyntheticData  # noqa: F401",
        {LAYERS},
    ),
    "a run's validation imports the pipeline": (
        "src/btlab/validation/run.py",
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from ..pipeline import run",
        {LAYERS},
    ),
    "the library imports the tools": (
        "src/btlab/orchestrator.py",
        "def _upward() -> None:\n    from .tools import warmup  # noqa: F401",
        {LAYERS},
    ),
    "a sweep module imports upward": (
        "src/btlab/sweep/pbo.py",
        "from .result import SweepResult",
        {SWEEP},
    ),
    "a validation module imports upward": (
        "src/btlab/validation/sharpe.py",
        "from .bootstrap import stationary_bootstrap",
        {VALIDATION},
    ),
    "a data module imports upward": (
        "src/btlab/data/meta.py",
        "from .frames import from_dataframe",
        {DATA},
    ),
}


@pytest.mark.parametrize("case", VIOLATIONS)
def test_a_planted_violation_breaks_its_contract(case: str, tmp_path: Path) -> None:
    path, line, broken = VIOLATIONS[case]
    tree = _copy_sources(tmp_path)
    module = tree / path
    module.write_text((module.read_text() if module.exists() else "") + f"\n{line}\n")
    code, verdicts = _lint(tree)
    assert {name for name, verdict in verdicts.items() if verdict == "BROKEN"} == broken
    assert len(verdicts) == 6
    assert code == 1
