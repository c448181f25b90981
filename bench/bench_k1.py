"""Single-symbol (K = 1) figures of two btlab trees, interleaved (run by hand).

    .venv/bin/python bench/bench_k1.py --python /work/wt/old/.venv/bin/python \\
        --python .venv/bin/python --rounds 4

Each round runs one fresh worker process per interpreter, in turn (old, new, old, new, ...), so
the two trees see the same load on a shared machine. A worker times, warm, the best process CPU
time of N calls in its own process (all threads, spinning included; `--wall`: wall time, which
on a busy shared VM moves by 2x): the execution kernel as `bench_core.py` calls it (`simulate_nb`, preallocated outputs,
costs + stops + borrow on), the in-process dual-SMA pipeline (1M bars), the 100-combination
sweep of `bench_validation.py` (100k bars) and what the 100-permutation test adds to a 100k-bar
run. The driver prints each figure's best over all rounds per tree and the ratio new / old.
`--worker` runs one worker in this interpreter (prints JSON).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np


def best(fn: Callable[[], object], repeat: int) -> float:
    """The best process CPU time of `repeat` warm calls (every thread's; on a machine shared
    with other jobs the CPU time of the work, unlike its wall time, leaves out the time the
    process waited for a core)."""
    clock = time.perf_counter if os.environ.get("BENCH_K1_CLOCK") == "wall" else time.process_time
    fn()
    times = []
    for _ in range(repeat):
        start = clock()
        fn()
        times.append(clock() - start)
    return min(times)


def synthetic(bars: int, timeframe: str) -> Any:
    from btlab.config import SyntheticData

    try:
        from btlab.synthetic_data import generate
    except ImportError:  # the tree before the data package moved
        from btlab.data import synthetic as generate
    return generate(SyntheticData(bars=bars, calendar="24x7", timeframe=timeframe))


def kernel_seconds(n: int, repeat: int) -> float:
    from btlab.kernels import FILL_DTYPE, ExecParams, Status, new_state, simulate, simulate_nb
    from btlab.kernels.execution import BarInputs, OrderInputs, SimBuffers

    ds = synthetic(n, "1m")
    rng = np.random.default_rng(0)
    target = np.repeat(rng.choice([-1.0, 0.0, 1.0], n // 50 + 1), 50)[:n]
    params = ExecParams(
        spread_bps=2.0, slippage_bps=1.0, commission_bps=1.0, commission_min=0.5, borrow_rate_annual=0.03,
        stop_loss=0.05, take_profit=0.1, max_drawdown=0.0, max_leverage=1.0,
    )  # fmt: skip
    arrays = (ds.ts, ds.open, ds.high, ds.low, ds.close, ds.volume)
    out = simulate(*arrays, target, params)
    fills = np.empty(len(out.fills) + 16, dtype=FILL_DTYPE)
    buffers = SimBuffers(*(np.empty(n) for _ in range(4)), fills)
    bars, orders = BarInputs(*arrays), OrderInputs(target, np.ones(n))

    def kernel() -> None:
        status = simulate_nb(bars, orders, params, new_state(params.initial_cash), buffers, 0, n)
        assert status == Status.OK

    return best(kernel, repeat)


def worker(kernel_bars: int, repeat: int) -> dict[str, float]:
    import btlab
    from btlab.sweep import run_sweep

    out = {"kernel": kernel_seconds(kernel_bars, repeat)}
    ds = synthetic(1_000_000, "1h")
    request = {
        "strategy": {"name": "sma_cross", "params": {"fast": 10, "slow": 50}},
        "execution": {"commission_bps": 1.0},
        "validation": {"enabled": False},
    }
    out["pipeline"] = best(lambda: btlab.run(request, data=ds), repeat)
    small = synthetic(100_000, "1h")
    sweep = {
        "strategy": {"name": "sma_cross", "params": {}},
        "execution": {"commission_bps": 1.0, "close_at_end": False},
        "grid": {
            "fast": {"start": 5, "stop": 50, "step": 5},
            "slow": {"start": 20, "stop": 200, "step": 20},
        },
        "validation": {"enabled": False},
    }
    out["sweep"] = best(lambda: run_sweep(sweep, data=small), repeat)
    run = {
        "strategy": {"name": "sma_cross", "params": {"fast": 10, "slow": 50}},
        "execution": {"commission_bps": 1.0},
    }
    off = run | {"validation": {"enabled": False}}
    perm = run | {
        "validation": {"bootstrap": {"enabled": False}, "folds": {"enabled": False}}
    }  # PSR/DSR (< 1 ms) and the 100 permutations
    base = best(lambda: btlab.run(off, data=small), repeat)
    out["permutation"] = best(lambda: btlab.run(perm, data=small), max(3, repeat // 2)) - base
    out["kernel_bars"] = float(kernel_bars)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--python", action="append", default=[], help="an interpreter (repeat)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--repeat", type=int, default=9)
    parser.add_argument("--kernel-bars", type=int, default=5_000_000)
    parser.add_argument("--worker", action="store_true")
    parser.add_argument("--wall", action="store_true", help="time wall seconds, not CPU time")
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.kernel_bars, args.repeat)))
        return
    pythons = args.python or [sys.executable]
    results: dict[str, list[dict[str, float]]] = {p: [] for p in pythons}
    cmd = [
        __file__,
        "--worker",
        "--repeat",
        str(args.repeat),
        "--kernel-bars",
        str(args.kernel_bars),
    ]
    for r in range(args.rounds):
        for py in pythons:
            env = {**os.environ, "PYTHONHASHSEED": "0"}
            if args.wall:
                env["BENCH_K1_CLOCK"] = "wall"
            text = subprocess.run([py, *cmd], check=True, capture_output=True, text=True, env=env)
            row = json.loads(text.stdout)
            results[py].append(row)
            print(f"round {r} {py}: " + ", ".join(f"{k} {v * 1e3:.1f} ms" for k, v in row.items()
                                                  if k != "kernel_bars"), flush=True)  # fmt: skip
    keys = ("kernel", "pipeline", "sweep", "permutation")
    bests = {p: {k: min(row[k] for row in rows) for k in keys} for p, rows in results.items()}
    for p in pythons:
        print(f"best {p}: " + ", ".join(f"{k} {bests[p][k] * 1e3:.1f} ms" for k in keys))
    if len(pythons) == 2:
        old, new = pythons
        print("new / old (best vs best): "
              + ", ".join(f"{k} {bests[new][k] / bests[old][k]:.3f}" for k in keys))  # fmt: skip
        # the ratio within each round (the same moment's load), then its median over rounds
        for k in keys:
            ratios = sorted(n[k] / o[k] for o, n in zip(results[old], results[new], strict=True))
            print(f"  {k}: per-round new/old {', '.join(f'{x:.3f}' for x in ratios)}")


if __name__ == "__main__":
    main()
