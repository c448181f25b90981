"""Walk-forward benchmark (run by hand): 20 windows x 100 combinations over 100k bars against
a sweep over the same number of bar-combinations (100 combinations x the 20 train parts' bars
laid end to end) and against 20 sweeps of one train part each, all with validation off.

    .venv/bin/python bench/bench_walkforward.py [--repeat 3]

Figures are recorded in bench/README.md with the machine they ran on.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable

N_BARS, TRAIN, TEST = 100_000, 20_000, 4_000  # 20_000 + 20 * 4_000 = 100k: 20 windows
GRID = {"fast": list(range(5, 55, 5)), "slow": list(range(60, 260, 20))}  # 10 x 10


def timed(fn: Callable[[], object], repeat: int) -> tuple[float, float]:
    """(best, median) wall seconds over `repeat` calls after a warm-up call."""
    fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times), statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    import btlab

    base = {
        "strategy": {"name": "sma_cross", "params": {"long_short": True}},
        "grid": GRID, "validation": {"enabled": False},
        "data": {"bars": N_BARS, "timeframe": "1m", "calendar": "24x7"},
    }  # fmt: skip
    bars = btlab.synthetic(bars=N_BARS, timeframe="1m", calendar="24x7", seed=1)
    windows = (N_BARS - TRAIN) // TEST
    same_work = btlab.synthetic(bars=windows * TRAIN, timeframe="1m", calendar="24x7", seed=1)
    wf_body = {**base, "walkforward": {"train": TRAIN, "test": TEST}}

    def walkforward() -> object:
        return btlab.run_walkforward(wf_body, data=bars)

    def sweep() -> object:
        return btlab.run_sweep(base, data=same_work)

    from btlab.walkforward.passes import bar_slice

    parts = [bar_slice(bars, w * TEST, w * TEST + TRAIN) for w in range(windows)]

    def part_sweeps() -> object:  # the same passes, each train part alone (warm-up lost)
        return [btlab.run_sweep(base, data=part) for part in parts]

    result = walkforward()
    assert len(result.windows) == windows  # type: ignore[attr-defined]
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} cpus, "
          f"python {sys.version.split()[0]}")  # fmt: skip
    print(f"walk-forward: {windows} windows x 100 combinations, train {TRAIN:,} test {TEST:,} "
          f"over {N_BARS:,} bars; sweep: 100 combinations x {windows * TRAIN:,} bars")  # fmt: skip
    wf_best, wf_med = timed(walkforward, args.repeat)
    sw_best, sw_med = timed(sweep, args.repeat)
    parts_best, parts_med = timed(part_sweeps, args.repeat)
    print(
        f"walk-forward best {wf_best:.3f} s (median {wf_med:.3f} s); stages "
        f"{ {k: round(v) for k, v in result.timings_ms.items()} } ms"
    )  # type: ignore[attr-defined]
    print(f"sweep        best {sw_best:.3f} s (median {sw_med:.3f} s)")
    print(
        f"{windows} sweeps of one train part each: best {parts_best:.3f} s (median {parts_med:.3f} s)"
    )
    print(f"ratio to the sweep (best) {wf_best / sw_best:.2f}x, (median) {wf_med / sw_med:.2f}x; "
          f"goal <= 1.2x; to the {windows} part sweeps {wf_best / parts_best:.2f}x")  # fmt: skip


if __name__ == "__main__":
    main()
