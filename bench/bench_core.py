"""Core benchmarks (run by hand): kernel throughput, in-process pipeline, cold start.

    .venv/bin/python bench/bench_core.py            # btlab only
    .venv/bin/python bench/bench_core.py --vectorbt # also vectorbt, if installed (pip install vectorbt)

Figures are recorded in bench/README.md with the machine they ran on.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable

import numpy as np


def best_of(fn: Callable[[], object], repeat: int = 15) -> tuple[float, float]:
    """(best, median) wall seconds over `repeat` warm calls."""
    fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times), statistics.median(times)


def bench_kernel(n: int) -> None:
    from btlab.config import SyntheticData
    from btlab.data import synthetic
    from btlab.kernels import ExecParams, simulate

    ds = synthetic(SyntheticData(bars=n, calendar="24x7", timeframe="1h"))
    rng = np.random.default_rng(0)
    target = np.repeat(rng.choice([-1.0, 0.0, 1.0], n // 50 + 1), 50)[:n]
    params = ExecParams(
        spread_bps=2.0, slippage_bps=1.0, commission_bps=1.0, commission_min=0.5, borrow_rate_annual=0.03,
        stop_loss=0.05, take_profit=0.1, max_drawdown=0.0, max_leverage=1.0,
    )  # fmt: skip
    arrays = (ds.ts, ds.open, ds.high, ds.low, ds.close, ds.volume)
    best, median = best_of(lambda: simulate(*arrays, target, params))
    out = simulate(*arrays, target, params)
    print(f"kernel, costs+stops on, {n:,} bars: best {best * 1e3:.2f} ms ({n / best / 1e6:.0f} M bars/s), "
          f"median {median * 1e3:.2f} ms, {len(out.fills):,} fills")  # fmt: skip


def bench_pipeline(n: int, with_vectorbt: bool) -> None:
    import btlab
    from btlab.config import SyntheticData
    from btlab.data import synthetic

    ds = synthetic(SyntheticData(bars=n, calendar="24x7", timeframe="1h"))
    request = {
        "strategy": {"name": "sma_cross", "params": {"fast": 10, "slow": 50}},
        "execution": {"commission_bps": 1.0},
        "validation": {"enabled": False},
    }
    best, median = best_of(lambda: btlab.run(request, data=ds))
    print(
        f"pipeline (dual SMA + strategy + kernel + metrics), {n:,} bars: best {best * 1e3:.1f} ms, median {median * 1e3:.1f} ms"
    )
    if not with_vectorbt:
        return
    try:
        import pandas as pd
        import vectorbt as vbt
    except ImportError:
        print("vectorbt not installed: pip install vectorbt")
        return
    close = pd.Series(ds.close)
    open_ = pd.Series(ds.open)

    def vbt_run() -> float:
        fast = vbt.MA.run(close, 10).ma
        slow = vbt.MA.run(close, 50).ma
        entries = (fast > slow) & ~(fast.shift(1) > slow.shift(1))
        exits = (fast < slow) & ~(fast.shift(1) < slow.shift(1))
        pf = vbt.Portfolio.from_signals(
            close,
            entries.shift(1, fill_value=False),
            exits.shift(1, fill_value=False),
            price=open_,
            fees=1e-4,
            freq="1h",
        )
        return float(pf.sharpe_ratio())

    vbest, vmedian = best_of(vbt_run, repeat=5)
    print(
        f"vectorbt {vbt.__version__} same work: best {vbest * 1e3:.1f} ms, median {vmedian * 1e3:.1f} ms; ratio {vbest / best:.1f}x"
    )


def bench_cold_start() -> None:
    code = textwrap.dedent(
        """
        import time; t = time.perf_counter()
        import btlab
        btlab.run({"data": {"bars": 10000}, "validation": {"enabled": False}})
        print(time.perf_counter() - t)
        """
    )
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, env=env
    )  # warms the numba cache
    times = [float(subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True, env=env).stdout)
             for _ in range(5)]  # fmt: skip
    wall = []
    for _ in range(3):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, env=env)
        wall.append(time.perf_counter() - start)
    print(f"fresh process, warm numba cache: import + first 10k-bar run {min(times):.2f} s (in-process), "
          f"{min(wall):.2f} s (whole interpreter)")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--bars", type=int, default=1_000_000)
    parser.add_argument("--vectorbt", action="store_true")
    args = parser.parse_args()
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, {platform.python_implementation()} {platform.python_version()}"
    )
    bench_kernel(10 * args.bars)
    bench_pipeline(args.bars, args.vectorbt)
    bench_cold_start()


if __name__ == "__main__":
    main()
