"""Validation and sweep benchmarks (run by hand; the figures are not CI assertions).

    .venv/bin/python bench/bench_validation.py
    .venv/bin/python bench/bench_validation.py --vectorbt-python /work/bench-venvs/vbt/bin/python

(a) What the default validation (PSR/DSR, 1000 bootstrap resamples, 100 permutations that re-run
    features, strategy and kernel, 5 folds) adds to a dual-SMA run on 100k hourly bars, warm:
    `btlab.run` with validation on minus off, in this process (as from Python) and in a process
    with the allocator tuned as the CLI and the service tune it. Goal: <= 250 ms.
(b) A dual-SMA sweep, fast 5..50 step 5 x slow 20..200 step 20 (100 combinations, of which the
    90 with fast < slow are valid), 1 bp commission, on the same bars, warm: `run_sweep` without
    validation, end to end (features, every combination's full metrics and PBO block sums, the
    best combination re-run in full). Goal: <= 100 ms. With --vectorbt-python, vectorbt 1.2 does
    the same work in its own virtualenv: the distinct SMAs once, the crossover decided on bar
    i-1 and filled at bar i's open, 1 bp fees, one Sharpe per combination, for the same 90
    combinations; the script checks the two engines' Sharpes agree and prints the ratio.

Differences that remain, by construction: btlab sizes an order to `equity / price` and pays the
fee from cash, vectorbt shrinks the order so the fee fits (Sharpes differ in the 4th digit);
vectorbt's first return is measured from the initial cash, btlab's from bar 1; btlab computes
every metric and the trade ledger per combination, vectorbt only what the Sharpe needs. Both
runs here use `close_at_end = false` so neither sells at the last bar. btlab uses numba threads
(all cores); vectorbt's from_signals runs on one, so btlab is also timed on one thread.

Recorded on a 2-core Intel Xeon VM (KVM, shared with other jobs; timings noisy), Python 3.11,
numba 0.6x, numpy 2.4 — see the final report of the "Validation and sweeps" issue for figures.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Callable
from typing import Any

import numpy as np

BARS = 100_000
RUN = {
    "strategy": {"name": "sma_cross", "params": {"fast": 10, "slow": 50}},
    "execution": {"commission_bps": 1.0},
}
GRID = {
    "fast": {"start": 5, "stop": 50, "step": 5},
    "slow": {"start": 20, "stop": 200, "step": 20},
}


def timed(fn: Callable[[], object], repeat: int) -> tuple[float, float]:
    """(best, median) wall seconds over `repeat` calls after one warm-up call."""
    from bench_core import best_of  # this folder is the script's first path entry

    return best_of(fn, repeat)


def bars() -> Any:
    from btlab.config import SyntheticData
    from btlab.synthetic_data import generate as synthetic

    return synthetic(SyntheticData(bars=BARS, calendar="24x7", timeframe="1h"))


def bench_validation(repeat: int) -> None:
    import btlab

    ds = bars()
    off = RUN | {"validation": {"enabled": False}}
    base_best, base_median = timed(lambda: btlab.run(off, data=ds), repeat)
    on_best, on_median = timed(lambda: btlab.run(RUN, data=ds), repeat)
    print(
        f"  run without validation: best {base_best * 1e3:.1f} ms, median {base_median * 1e3:.1f} ms"
    )
    print(
        f"  run with default validation: best {on_best * 1e3:.1f} ms, median {on_median * 1e3:.1f} ms"
    )
    print(f"  validation adds: {(on_best - base_best) * 1e3:.0f} ms (best), "
          f"{(on_median - base_median) * 1e3:.0f} ms (median)   goal <= 250 ms")  # fmt: skip
    parts = {
        "psr/dsr": {"bootstrap": {"enabled": False}, "permutation": {"enabled": False}, "folds": {"enabled": False}},
        "+ bootstrap (1000)": {"permutation": {"enabled": False}, "folds": {"enabled": False}},
        "+ folds (5)": {"permutation": {"enabled": False}, "bootstrap": {"enabled": False}},
        "+ permutation (100)": {"bootstrap": {"enabled": False}, "folds": {"enabled": False}},
    }  # fmt: skip
    for name, cfg in parts.items():
        best, _ = timed(
            lambda cfg=cfg: btlab.run(RUN | {"validation": cfg}, data=ds), max(3, repeat // 2)
        )
        print(f"    {name:<22} adds {(best - base_best) * 1e3:6.1f} ms")


def sweep_request() -> dict[str, Any]:
    return {
        "strategy": {"name": "sma_cross", "params": {}},
        "execution": {"commission_bps": 1.0, "close_at_end": False},
        "grid": GRID,
        "validation": {"enabled": False},
    }


def bench_sweep(repeat: int, vectorbt_python: str | None) -> None:
    import numba

    from btlab.sweep import run_sweep

    ds = bars()
    req = sweep_request()
    result = run_sweep(req, data=ds)
    summary = result.summary()
    best, median = timed(lambda: run_sweep(req, data=ds), repeat)
    stage = run_sweep(req, data=ds).timings_ms
    print(f"  {summary['n_valid']} valid of {summary['n_combinations']} combinations, "
          f"{numba.get_num_threads()} threads: best {best * 1e3:.1f} ms, median {median * 1e3:.1f} ms   "
          f"goal <= 100 ms")  # fmt: skip
    print("    stages (last call): " + ", ".join(f"{k} {v:.1f} ms" for k, v in stage.items()))
    threads = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        best1, median1 = timed(lambda: run_sweep(req, data=ds), max(3, repeat // 2))
    finally:
        numba.set_num_threads(threads)
    print(f"  one thread: best {best1 * 1e3:.1f} ms, median {median1 * 1e3:.1f} ms")
    if not vectorbt_python:
        return
    points = result.expansion.points  # (fast, slow) of every valid combination, in table order
    with tempfile.TemporaryDirectory() as tmp:
        npz = os.path.join(tmp, "bars.npz")
        np.savez(
            npz,
            open=ds.open,
            close=ds.close,
            fast=[p[0] for p in points],
            slow=[p[1] for p in points],
        )
        out = subprocess.run(
            [vectorbt_python, "-c", VBT_SWEEP, npz, str(repeat)], check=True, capture_output=True, text=True
        ).stdout  # fmt: skip
    vbt = json.loads(out)
    ours = result.table["sharpe"].to_numpy(dtype=float)
    theirs = np.array(vbt["sharpe"], dtype=float)
    diff = float(np.nanmax(np.abs(ours - theirs)))
    print(f"  vectorbt {vbt['version']} same grid: best {vbt['best'] * 1e3:.1f} ms, "
          f"median {vbt['median'] * 1e3:.1f} ms")  # fmt: skip
    print(f"  btlab is {vbt['best'] / best:.1f}x faster ({numba.get_num_threads()} threads), "
          f"{vbt['best'] / best1:.1f}x on one thread (best vs best)")  # fmt: skip
    print(f"  Sharpe agreement: max |btlab - vectorbt| = {diff:.2e} over {len(points)} combinations, "
          f"same best: {int(np.nanargmax(ours)) == int(np.nanargmax(theirs))}")  # fmt: skip


# The same sweep in vectorbt (its own virtualenv): each distinct SMA once, the crossover of the
# SMAs known at bar i-1 (shifted one bar, as btlab's registry does), entries and exits filled at
# bar i's open with all the cash, 1 bp fees, one annualized Sharpe per combination.
VBT_SWEEP = textwrap.dedent(
    """
    import json, statistics, sys, time
    import numpy as np, pandas as pd, vectorbt as vbt
    bars = np.load(sys.argv[1])
    repeat = int(sys.argv[2])
    close, open_ = pd.Series(bars["close"]), pd.Series(bars["open"])
    fast, slow = bars["fast"].tolist(), bars["slow"].tolist()
    def run():
        windows = sorted(set(fast) | set(slow))
        ma = vbt.MA.run(close, windows).ma
        ma.columns = windows
        f = ma[fast].shift(1).to_numpy()
        s = ma[slow].shift(1).to_numpy()
        long = f > s
        prev = np.vstack([np.zeros((1, long.shape[1]), dtype=bool), long[:-1]])
        pf = vbt.Portfolio.from_signals(close, long & ~prev, ~long & prev, price=open_, fees=1e-4,
                                        size=np.inf, init_cash=100_000.0, freq="1h")
        return pf.sharpe_ratio().to_numpy()
    sharpe = run()
    times = []
    for _ in range(repeat):
        t = time.perf_counter(); run(); times.append(time.perf_counter() - t)
    print(json.dumps({"best": min(times), "median": statistics.median(times),
                      "version": vbt.__version__, "sharpe": [float(x) for x in sharpe]}))
    """
)


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            cpu = next(
                line.split(":", 1)[1].strip() for line in fh if line.startswith("model name")
            )
    except (OSError, StopIteration):
        pass
    import numba

    return (f"{cpu}, {os.cpu_count()} cores, {platform.python_implementation()} {platform.python_version()}, "
            f"numpy {np.__version__}, numba {numba.__version__}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--repeat", type=int, default=15, help="timed calls per figure")
    parser.add_argument(
        "--vectorbt-python", metavar="PYTHON", help="a Python with vectorbt 1.2 installed"
    )
    parser.add_argument("--only", choices=["validation", "sweep"], help=argparse.SUPPRESS)
    parser.add_argument("--tuned", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.tuned:
        from btlab.runtime import tune_allocator

        tune_allocator()
    if args.only == "validation":
        bench_validation(args.repeat)
        return
    print(f"machine: {machine()}")
    print(f"(a) default validation on {BARS:,} bars, in-process (plain allocator):")
    bench_validation(args.repeat)
    print("(a) the same with the allocator tuned as the CLI and the service run:")
    sys.stdout.flush()
    subprocess.run([sys.executable, __file__, "--only", "validation", "--tuned", "--repeat", str(args.repeat)],
                   check=True)  # fmt: skip
    print(f"(b) dual-SMA sweep on {BARS:,} bars:")
    bench_sweep(args.repeat, args.vectorbt_python)


if __name__ == "__main__":
    main()
