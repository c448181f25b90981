"""Core benchmarks (run by hand): kernel throughput, in-process pipeline, cold start.

    .venv/bin/python bench/bench_core.py            # btlab only
    .venv/bin/python bench/bench_core.py --vectorbt-python /path/to/vbt-venv/bin/python

Figures are recorded in bench/README.md with the machine they ran on.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
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
    from btlab.kernels import FILL_DTYPE, ExecParams, Status, new_state, simulate, simulate_nb
    from btlab.kernels.execution import BarInputs, OrderInputs, SimBuffers
    from btlab.synthetic_data import generate as synthetic

    ds = synthetic(
        SyntheticData(bars=n, calendar="24x7", timeframe="1m")
    )  # 10M bars fit before 2262
    rng = np.random.default_rng(0)
    target = np.repeat(rng.choice([-1.0, 0.0, 1.0], n // 50 + 1), 50)[:n]
    params = ExecParams(
        spread_bps=2.0, slippage_bps=1.0, commission_bps=1.0, commission_min=0.5, borrow_rate_annual=0.03,
        stop_loss=0.05, take_profit=0.1, max_drawdown=0.0, max_leverage=1.0,
    )  # fmt: skip
    arrays = (ds.ts, ds.open, ds.high, ds.low, ds.close, ds.volume)
    out = simulate(*arrays, target, params)
    # the kernel itself, as the pipeline calls it: preallocated outputs, reused
    fills = np.empty(len(out.fills) + 16, dtype=FILL_DTYPE)
    buffers = SimBuffers(*(np.empty(n) for _ in range(4)), fills)
    bars, orders = BarInputs(*arrays), OrderInputs(target, np.ones(n))

    def kernel() -> None:
        status = simulate_nb(bars, orders, params, new_state(params.initial_cash), buffers, 0, n)
        assert status == Status.OK

    best, median = best_of(kernel)
    print(f"kernel, costs+stops on, {n:,} bars, preallocated outputs: best {best * 1e3:.2f} ms "
          f"({n / best / 1e6:.0f} M bars/s), median {median * 1e3:.2f} ms, {len(out.fills):,} fills")  # fmt: skip
    best, median = best_of(lambda: simulate(*arrays, target, params))
    print(f"  simulate() allocating its {4 * n * 8 >> 20} MB of outputs per call: best {best * 1e3:.2f} ms "
          f"({n / best / 1e6:.0f} M bars/s), median {median * 1e3:.2f} ms")  # fmt: skip


def bench_bandwidth(mb: int = 512) -> float:
    """This machine's memory bandwidth (bytes/s): best of a NumPy copy between two `mb` MB
    arrays (reads + writes counted), far beyond any cache; the pipeline's floor is set by it."""
    src = np.ones(mb << 17)
    dst = np.empty_like(src)
    np.copyto(dst, src)
    best, _ = best_of(lambda: np.copyto(dst, src), repeat=7)
    copy_bw = 2 * src.nbytes / best
    read_best, _ = best_of(lambda: src.sum(), repeat=7)
    print(f"memory bandwidth: copy {copy_bw / 1e9:.1f} GB/s (read + write, {mb} MB arrays), "
          f"read-only (np.sum) {src.nbytes / read_best / 1e9:.1f} GB/s")  # fmt: skip
    return copy_bw


def pipeline_floor(n: int, bandwidth: float) -> tuple[float, float]:
    """(streaming floor, fresh-memory floor) in seconds of the 1M-bar pipeline's result.

    What it must read: the six columns the kernel takes (ts, open, high, low, close, volume);
    what it must write: the five per-bar arrays a RunResult holds (target, units, cash, equity,
    borrow). The features and the metrics' reads are intermediate (a fused pass needs none of
    them), so this is the floor of any engine producing the same result. The fresh-memory
    floor adds first touching the five output arrays (page faults), as any call that returns
    new arrays pays; it is measured, not computed.
    """
    floor = (6 + 5) * 8 * n / bandwidth

    def fresh() -> None:
        for _ in range(5):
            np.ones(n)

    best, _ = best_of(fresh)
    return floor, max(floor, best + 6 * 8 * n / bandwidth)


def bench_pipeline(n: int, vectorbt_python: str | None, bandwidth: float) -> None:
    import btlab
    from btlab.config import SyntheticData
    from btlab.synthetic_data import generate as synthetic

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
    stages: dict[str, list[float]] = {}
    for _ in range(7):
        for name, ms in btlab.run(request, data=ds).timings_ms.items():
            stages.setdefault(name, []).append(ms)
    print("  stages (best of 7): " + ", ".join(f"{k} {min(v):.1f} ms" for k, v in stages.items()))
    floor, fresh = pipeline_floor(n, bandwidth)
    print(f"  memory-traffic floor of its result (read 6 columns, write 5 per-bar arrays: "
          f"{11 * 8 * n / 1e6:.0f} MB): {floor * 1e3:.1f} ms streaming ({best / floor:.1f}x), "
          f"{fresh * 1e3:.1f} ms with the outputs' first touch ({best / fresh:.1f}x)")  # fmt: skip
    if not vectorbt_python:
        return
    with tempfile.TemporaryDirectory() as tmp:
        npz = os.path.join(tmp, "bars.npz")
        np.savez(npz, open=ds.open, close=ds.close)
        out = subprocess.run(
            [vectorbt_python, "-c", VBT_SCRIPT, npz], check=True, capture_output=True, text=True
        ).stdout.split()
    vbest, vmedian, version = float(out[0]), float(out[1]), out[2]
    print(f"vectorbt {version} same work: best {vbest * 1e3:.1f} ms, median {vmedian * 1e3:.1f} ms; "
          f"btlab is {vbest / best:.1f}x faster (best vs best)")  # fmt: skip


# The same work in vectorbt (run in its own virtualenv): two SMAs, crossover signals decided on
# the bar before, fills at the open, 1 bp fees, the Sharpe ratio.
VBT_SCRIPT = textwrap.dedent(
    """
    import statistics, sys, time
    import numpy as np, pandas as pd, vectorbt as vbt
    bars = np.load(sys.argv[1])
    close, open_ = pd.Series(bars["close"]), pd.Series(bars["open"])
    def run():
        fast = vbt.MA.run(close, 10).ma
        slow = vbt.MA.run(close, 50).ma
        above = fast > slow
        entries = (above & ~above.shift(1, fill_value=False)).shift(1, fill_value=False)
        exits = (~above & above.shift(1, fill_value=False)).shift(1, fill_value=False)
        pf = vbt.Portfolio.from_signals(close, entries, exits, price=open_, fees=1e-4, freq="1h")
        return float(pf.sharpe_ratio())
    run()
    times = []
    for _ in range(7):
        t = time.perf_counter(); run(); times.append(time.perf_counter() - t)
    print(min(times), statistics.median(times), vbt.__version__)
    """
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
    parser.add_argument(
        "--vectorbt-python",
        metavar="PYTHON",
        help="a Python with vectorbt installed (e.g. a separate venv) to time the same work",
    )
    args = parser.parse_args()
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, {platform.python_implementation()} {platform.python_version()}"
    )
    bandwidth = bench_bandwidth()
    bench_kernel(10 * args.bars)
    bench_pipeline(args.bars, args.vectorbt_python, bandwidth)
    bench_cold_start()


if __name__ == "__main__":
    main()
