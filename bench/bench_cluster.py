"""Scale-out figures (SPEC §11), run by hand: Dask distributed against Ray on this machine's
work, then btlab's sweep on a local 2-worker Dask cluster against the same sweep in-process.

    .venv/bin/python bench/bench_cluster.py --ray-python /work/bench-venvs/ray/bin/python

Engine probes (each engine on a local cluster of 2 single-threaded worker processes, the
same probe script for both): start-up, per-task overhead of 500 empty tasks, shipping a
80 MB array to every worker, 200 tasks reading it, and a numba function's first call on a
fresh worker (the compile a worker pays, or its load from a shared NUMBA_CACHE_DIR). Then the
sweep: 10,000 dual-SMA combinations x `--bars` bars with costs, in-process
(`LocalExecutor`) and on the cluster (`DaskExecutor`), results checked identical.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from typing import Any

PROBE = r"""
import json, os, sys, time
import numpy as np
engine = sys.argv[1]
out = {}
def noop(x): return x
def reads(a, i): return float(a[i])
def compile_numba(_):
    t = time.perf_counter()
    import numba
    @numba.njit(cache=False)  # a fresh compile: what a worker pays without a shared cache
    def s(a):
        t = 0.0
        for v in a: t += v
        return t
    s(np.ones(10))
    return time.perf_counter() - t
data = np.random.default_rng(0).normal(size=10_000_000)
t0 = time.perf_counter()
if engine == "dask":
    from distributed import Client, LocalCluster
    cluster = LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=":0", silence_logs=50)
    client = Client(cluster)
    client.gather(client.map(noop, range(4)))
    out["start_s"] = time.perf_counter() - t0
    t = time.perf_counter(); client.gather(client.map(noop, range(500), pure=False))
    out["task_ms"] = (time.perf_counter() - t) / 500 * 1e3
    t = time.perf_counter(); [fut] = client.scatter([data], broadcast=True, hash=False)
    out["ship_80mb_s"] = time.perf_counter() - t
    t = time.perf_counter(); client.gather(client.map(reads, [fut] * 200, range(200), pure=False))
    out["task_on_shipped_ms"] = (time.perf_counter() - t) / 200 * 1e3
    out["numba_first_call_s"] = max(client.gather(client.map(compile_numba, range(2), pure=False)))
    client.close(); cluster.close()
else:
    import ray
    ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR")
    r_noop = ray.remote(num_cpus=1)(noop); r_reads = ray.remote(num_cpus=1)(reads)
    r_compile = ray.remote(num_cpus=1)(compile_numba)
    ray.get([r_noop.remote(i) for i in range(4)])
    out["start_s"] = time.perf_counter() - t0
    t = time.perf_counter(); ray.get([r_noop.remote(i) for i in range(500)])
    out["task_ms"] = (time.perf_counter() - t) / 500 * 1e3
    t = time.perf_counter(); ref = ray.put(data)
    out["ship_80mb_s"] = time.perf_counter() - t
    t = time.perf_counter(); ray.get([r_reads.remote(ref, i) for i in range(200)])
    out["task_on_shipped_ms"] = (time.perf_counter() - t) / 200 * 1e3
    out["numba_first_call_s"] = max(ray.get([r_compile.remote(i) for i in range(2)]))
    ray.shutdown()
print(json.dumps(out))
"""


def probe(python: str, engine: str) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "NUMBA_CACHE_DIR": cache}
        done = subprocess.run(
            [python, "-c", PROBE, engine], env=env, capture_output=True, text=True, check=False
        )
    if done.returncode != 0:
        return {"error": done.stderr.strip().splitlines()[-1:]}
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def sweep_figures(bars: int, combos: int) -> dict[str, Any]:
    import numpy as np
    from distributed import Client, LocalCluster

    import btlab
    from btlab.executors import DaskExecutor, LocalExecutor

    side = round(combos**0.5)
    request = {
        "data": {"bars": bars, "seed": 1, "calendar": "24x7", "timeframe": "1m"},
        "strategy": {"name": "sma_cross"},
        "execution": {"commission_bps": 1.0, "spread_bps": 1.0},
        "grid": {"fast": {"start": 2, "stop": 1 + side, "step": 1},
                 "slow": {"start": 200, "stop": 199 + side, "step": 1}},
        "validation": {"enabled": False},
    }  # fmt: skip
    btlab.run_sweep({**request, "data": {**request["data"], "bars": 2000}},
                    executor=LocalExecutor())  # compile  # fmt: skip
    t = time.perf_counter()
    local = btlab.run_sweep(request, executor=LocalExecutor())
    local_s = time.perf_counter() - t
    with LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=":0",
                      silence_logs=50) as cluster, Client(cluster) as client:  # fmt: skip
        executor = DaskExecutor(client)
        btlab.run_sweep({**request, "data": {**request["data"], "bars": 2000}}, executor=executor)
        t = time.perf_counter()
        remote = btlab.run_sweep(request, executor=executor)
        remote_s = time.perf_counter() - t
    same = local.table.equals(remote.table) and bool(
        np.array_equal(local.best_run.equity_values, remote.best_run.equity_values)
    )
    return {
        "combinations": len(local.table), "bars": bars, "in_process_s": round(local_s, 2),
        "cluster_2_workers_s": round(remote_s, 2), "ratio": round(remote_s / local_s, 3),
        "identical": same,
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ray-python", help="a Python with ray, numpy and numba installed")
    parser.add_argument("--bars", type=int, default=100_000)
    parser.add_argument("--combinations", type=int, default=10_000)
    parser.add_argument("--skip-sweep", action="store_true")
    args = parser.parse_args()
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"Python {platform.python_version()}")  # fmt: skip
    print("dask:", json.dumps(probe(sys.executable, "dask")))
    if args.ray_python:
        print("ray: ", json.dumps(probe(args.ray_python, "ray")))
    if not args.skip_sweep:
        print("sweep:", json.dumps(sweep_figures(args.bars, args.combinations)))


if __name__ == "__main__":
    main()
