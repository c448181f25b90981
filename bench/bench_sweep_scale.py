"""Sweeps at scale (issue 15): 10,000 dual-SMA combinations x 100,000 bars against vectorbt in
chunks, and 1,000,000 combinations x 10,000 bars streaming with a flat RSS.

Each case runs in its own child process, so its peak RSS is its own (`ru_maxrss` of the child),
and a thread samples the child's RSS while it runs (the curve shows whether memory stays flat).

    .venv/bin/python bench/bench_sweep_scale.py large --vectorbt-python /path/to/vbt/bin/python
    .venv/bin/python bench/bench_sweep_scale.py million

`large`: sma_cross long-only, fast 2..101 x slow 200..299 (10,000 valid), 100k one-minute bars,
1 bp commission + 1 bp spread, validation off (the sweep itself). vectorbt 1.2 runs the same
rule (the SMAs known at bar i-1, filled at bar i's open, the same fees as one 1.5 bp fee on
each side) `--chunk` combinations per `Portfolio.from_signals` call for `--vbt-chunks` calls,
extrapolated to the grid; its Sharpes are checked against btlab's on those combinations.

`million`: fast 2..1001 x slow 1002..2001 (1,000,000 valid) x 10k daily bars, validation on
with PBO (16 splits), DSR over the million trials, bootstrap and folds, the permutation test
off (each permutation is another million-combination pass).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from typing import Any

import numpy as np


def rss_mb() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


class Sampler(threading.Thread):
    """The process's RSS every `every` seconds, with the sweep's progress at that moment."""

    def __init__(self, every: float = 1.0) -> None:
        super().__init__(daemon=True)
        self.every, self.samples, self.done = every, [], 0
        self._stop = threading.Event()

    def run(self) -> None:
        start = time.perf_counter()
        while not self._stop.wait(self.every):
            self.samples.append((round(time.perf_counter() - start, 1), self.done, round(rss_mb())))

    def stop(self) -> None:
        self._stop.set()


LARGE = {
    "data": {"bars": 100_000, "seed": 1, "calendar": "24x7", "timeframe": "1m"},
    "strategy": {"name": "sma_cross"},
    "execution": {"commission_bps": 1.0, "spread_bps": 1.0},
    "grid": {"fast": {"start": 2, "stop": 101, "step": 1},
             "slow": {"start": 200, "stop": 299, "step": 1}},
    "validation": {"enabled": False},
}  # fmt: skip

MILLION = {
    "data": {"bars": 10_000, "seed": 2},
    "strategy": {"name": "sma_cross"},
    "execution": {"commission_bps": 1.0, "spread_bps": 1.0},
    "grid": {"fast": {"start": 2, "stop": 1001, "step": 1},
             "slow": {"start": 1002, "stop": 2001, "step": 1}},
    "validation": {"permutation": {"enabled": False}, "bootstrap": {"n_resamples": 200},
                   "folds": {"k": 4}},
}  # fmt: skip


def child(case: str, out_dir: str | None) -> None:
    import btlab

    request = LARGE if case == "large" else MILLION
    warm = {**request, "data": {**request["data"], "bars": 3000}, "grid": {"fast": [5, 10],
            "slow": [50, 60]}}  # fmt: skip
    btlab.run_sweep(warm)  # compile outside the timing
    base = rss_mb()
    sampler = Sampler(1.0 if case == "million" else 0.5)

    def on_event(kind: str, data: dict[str, Any]) -> None:
        if kind == "progress" and data.get("stage") == "sweep":
            sampler.done = data["done"]

    sampler.start()
    t = time.perf_counter()
    result = btlab.run_sweep(request, on_event=on_event)
    seconds = time.perf_counter() - t
    write_s = None
    if out_dir:
        t = time.perf_counter()
        result.write_artifacts(out_dir)
        write_s = time.perf_counter() - t
    sampler.stop()
    pbo = (result.validation or {}).get("pbo") or {}
    print(json.dumps({
        "case": case, "combinations": len(result.expansion), "bars": len(result.dataset),
        "seconds": round(seconds, 2), "timings_ms": {k: round(v) for k, v in result.timings_ms.items()},
        "write_s": None if write_s is None else round(write_s, 2),
        "rss_after_import_mb": round(base),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "rss_samples": sampler.samples, "streamed": result.streamed, "kept": len(result.table),
        "best": result.best["params"], "pbo": pbo.get("pbo"),
        "sharpe_of_best": result.best["metrics"]["sharpe"],
        "table_sharpe": result.table.set_index("combo")["sharpe"].to_dict()
        if case == "large" else None,
    }))  # fmt: skip


VBT_CHUNKS = textwrap.dedent(
    """
    import json, sys, time
    import numpy as np, pandas as pd, vectorbt as vbt
    bars = np.load(sys.argv[1])
    chunk, chunks = int(sys.argv[2]), int(sys.argv[3])
    close, open_ = pd.Series(bars["close"]), pd.Series(bars["open"])
    fast, slow = bars["fast"].tolist(), bars["slow"].tolist()
    def run(lo, hi):
        f_w, s_w = fast[lo:hi], slow[lo:hi]
        windows = sorted(set(f_w) | set(s_w))
        ma = vbt.MA.run(close, windows).ma
        ma.columns = windows
        f = ma[f_w].shift(1).to_numpy()
        s = ma[s_w].shift(1).to_numpy()
        long = f > s
        prev = np.vstack([np.zeros((1, long.shape[1]), dtype=bool), long[:-1]])
        pf = vbt.Portfolio.from_signals(close, long & ~prev, ~long & prev, price=open_,
                                        fees=1.5e-4, size=np.inf, init_cash=100_000.0, freq="1min")
        return pf.sharpe_ratio().to_numpy()
    run(0, 10)
    t = time.perf_counter()
    sharpe = []
    for c in range(chunks):
        sharpe.extend(float(x) for x in run(c * chunk, (c + 1) * chunk))
    seconds = time.perf_counter() - t
    import resource
    print(json.dumps({"seconds": seconds, "combinations": chunk * chunks, "sharpe": sharpe,
                      "version": vbt.__version__,
                      "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
    """
)


def vectorbt_chunks(python: str, chunk: int, chunks: int) -> dict[str, Any]:
    import btlab

    ds = btlab.synthetic(**LARGE["data"])
    from btlab.sweep import parse_sweep_request

    req = parse_sweep_request(LARGE)
    points = [req.expansion.points[k] for k in range(chunk * chunks)]
    with tempfile.TemporaryDirectory() as tmp:
        npz = os.path.join(tmp, "bars.npz")
        np.savez(npz, open=ds.open, close=ds.close, fast=[p[0] for p in points],
                 slow=[p[1] for p in points])  # fmt: skip
        out = subprocess.run([python, "-c", VBT_CHUNKS, npz, str(chunk), str(chunks)],
                             check=True, capture_output=True, text=True).stdout  # fmt: skip
    return json.loads(out.strip().splitlines()[-1])


def run_child(case: str, out_dir: str | None) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--child", case, *(["--out", out_dir] if out_dir else [])]
    done = subprocess.run(cmd, check=True, capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("case", nargs="?", choices=["large", "million"], default="large")
    parser.add_argument("--child", choices=["large", "million"], help=argparse.SUPPRESS)
    parser.add_argument("--out", help="also write the artifacts here (timed apart)")
    parser.add_argument("--vectorbt-python", help="a Python with vectorbt 1.2 installed")
    parser.add_argument("--chunk", type=int, default=200, help="vectorbt combinations per call")
    parser.add_argument("--vbt-chunks", type=int, default=5, help="vectorbt calls to time")
    args = parser.parse_args()
    if args.child:
        child(args.child, args.out)
        return
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"load {os.getloadavg()[0]:.1f}")  # fmt: skip
    ours = run_child(args.case, args.out)
    sharpe = ours.pop("table_sharpe")
    samples = ours.pop("rss_samples")
    print(json.dumps(ours, indent=1))
    step = max(1, len(samples) // 20)
    print("RSS samples (s, combinations done, MB):", samples[::step] + samples[-1:])
    if args.case == "large" and args.vectorbt_python:
        vbt = vectorbt_chunks(args.vectorbt_python, args.chunk, args.vbt_chunks)
        per = vbt["seconds"] / vbt["combinations"]
        full = per * ours["combinations"]
        theirs = np.array(vbt["sharpe"])
        mine = np.array([sharpe[k] if k in sharpe else sharpe[str(k)] for k in range(len(theirs))])
        print(f"vectorbt {vbt['version']}: {vbt['combinations']} combinations in "
              f"{vbt['seconds']:.1f} s ({args.chunk} a call), peak RSS {vbt['peak_rss_mb']:.0f} MB "
              f"-> {full:.0f} s for {ours['combinations']}")  # fmt: skip
        print(f"btlab {ours['seconds']} s: {full / ours['seconds']:.1f}x vectorbt-in-chunks")
        print(f"Sharpe agreement on those combinations: max |diff| "
              f"{float(np.nanmax(np.abs(mine - theirs))):.2e}")  # fmt: skip


if __name__ == "__main__":
    main()
