"""Start-up benchmark (run by hand): wall time of fresh `btlab` processes.

    .venv/bin/python bench/bench_startup.py              # the figures of bench/README.md
    .venv/bin/python bench/bench_startup.py --repeat 20

Each command runs `--repeat` times in a new interpreter (the numba cache warm: one untimed run
first); the best and the median wall time are printed. The light commands (`btlab --help`,
`btlab presets`, `import btlab`) have a goal of <= 0.5 s; the run rows show what a small run
costs from a fresh process with and without the HTML report.

`--first-run` times what a fresh install's first command costs: `btlab run` (the default
preset, validation and report included) with `NUMBA_CACHE_DIR` pointed at an empty folder,
so every kernel the run uses compiles (goal <= 10 s), then the same command again in a new
process on the cache it left (goal <= 1 s); and the same pair for a bare run (no validation,
no report). `--repeat` sets how many empty caches are tried (best and median printed).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# the installed entry point, as users run it (python -m btlab.cli where there is none)
_SCRIPT = Path(sys.executable).with_name("btlab")
BTLAB = [str(_SCRIPT)] if _SCRIPT.is_file() else [sys.executable, "-m", "btlab.cli"]
SMALL_RUN = ["run", "--quiet", "--no-validation", "--set", "data.bars=10000", "--force"]


def commands(out: Path) -> list[tuple[str, list[str]]]:
    return [
        ("python -c pass (the interpreter alone)", [sys.executable, "-c", "pass"]),
        ("import btlab", [sys.executable, "-c", "import btlab"]),
        ("btlab --help", [*BTLAB, "--help"]),
        ("btlab presets", [*BTLAB, "presets"]),
        ("import btlab.pipeline (the whole core)", [sys.executable, "-c", "import btlab.pipeline"]),
        (
            "btlab run, 10k bars, --no-report",
            [*BTLAB, *SMALL_RUN, "--out", str(out), "--no-report"],
        ),
        ("btlab run, 10k bars, with the report", [*BTLAB, *SMALL_RUN, "--out", str(out)]),
    ]


def time_command(argv: list[str], repeat: int) -> list[float]:
    subprocess.run(argv, check=True, capture_output=True)  # warm the numba and OS caches
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        subprocess.run(argv, check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return times


def wall(argv: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, check=True, capture_output=True, env=env)
    return time.perf_counter() - start


def first_run(repeat: int) -> None:
    """Cold (empty numba cache) and then warm fresh-process wall times of `btlab run`."""
    cases = {
        "btlab run (validation + report)": ["run", "--quiet", "--force"],
        "btlab run, bare (--no-validation --no-report)": [
            "run", "--quiet", "--force", "--no-validation", "--no-report",
        ],
    }  # fmt: skip
    for label, args in cases.items():
        cold, warm = [], []
        for _ in range(repeat):
            with tempfile.TemporaryDirectory(prefix="btlab-numba-") as cache:
                env = {**os.environ, "NUMBA_CACHE_DIR": cache}
                out = str(Path(cache) / "out")
                cold.append(wall([*BTLAB, *args, "--out", out], env))
                warm.append(wall([*BTLAB, *args, "--out", out], env))
        print(f"{label}: empty numba cache best {min(cold):.2f} s, median "
              f"{statistics.median(cold):.2f} s (goal <= 10 s); then warm, fresh process best "
              f"{min(warm):.2f} s, median {statistics.median(warm):.2f} s (goal <= 1 s)")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=10, help="timed runs per command")
    parser.add_argument(
        "--first-run", action="store_true", help="time a fresh install's first run instead"
    )
    args = parser.parse_args()
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, "
        f"{platform.python_implementation()} {platform.python_version()}"
    )
    if args.first_run:
        first_run(args.repeat)
        return
    with tempfile.TemporaryDirectory() as tmp:
        for label, argv in commands(Path(tmp) / "run"):
            times = time_command(
                argv, args.repeat if "run," not in label else max(3, args.repeat // 3)
            )
            print(f"{label:<45} best {min(times):6.3f} s  median {statistics.median(times):6.3f} s")


if __name__ == "__main__":
    main()
