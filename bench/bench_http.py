"""HTTP service benchmark (run by hand): `btlab serve` on a loopback port, real HTTP clients.

    .venv/bin/python bench/bench_http.py                 # the figures of bench/README.md
    .venv/bin/python bench/bench_http.py --iterations 10 --clients 20

Measures, against a fresh home folder:

1. a warm run over HTTP: POST /runs -> the ``completed`` event on /runs/{id}/events (so the
   artifacts are written, hashed and the result committed) for a 100k-bar dual-SMA request on
   the cached dataset, with validation off (goal p50 <= 150 ms) and with the default validation
   (goal p50 <= 300 ms). Each POST changes the root seed, so each is a new run (the config hash
   decides identity) on the same cached data and features; the server-side stage timings
   (``stage`` events) show where the time goes;
   Beside each, the same work in this process: `btlab.run` with the service's kind of warm
   cache (`RunCache`) and the tuned allocator, then `write_artifacts` to a folder (goal: the
   HTTP p50 within 1.3x of the in-process p50);
2. GET /runs/{id} with 100 runs stored: p50 / p99 (goal p99 <= 10 ms);
3. 50 concurrent SSE clients on one run: each must receive every event, in order.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

BARS = 100_000


def request(seed: int, *, validation: bool, bars: int = BARS) -> dict[str, Any]:
    body: dict[str, Any] = {
        "data": {"bars": bars, "timeframe": "1h", "calendar": "24x7"},
        "strategy": {"name": "sma_cross", "params": {"fast": 10, "slow": 50}},
        "execution": {"commission_bps": 1.0},
        "seed": seed,
    }
    if not validation:
        body["validation"] = {"enabled": False}
    return body


# -- the server --------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    """`btlab serve` in a subprocess with its own home; stopped with SIGTERM."""

    def __init__(self, home: Path, **env: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        full_env = {**os.environ, "BTLAB_HOME": str(home), **env}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "btlab.cli", "serve", "--port", str(self.port),
             "--log-level", "warning"],
            env=full_env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 120
        while True:
            if self.proc.poll() is not None:
                raise SystemExit(f"the server exited with {self.proc.returncode}")
            try:
                httpx.get(self.url + "/health", timeout=1).raise_for_status()
                return
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise SystemExit("the server did not start in 120 s") from None
                time.sleep(0.05)

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()


# -- SSE ---------------------------------------------------------------------------------------


def events(response: httpx.Response) -> Iterator[tuple[int, str, dict[str, Any]]]:
    """(seq, type, data) of each SSE message; comments (pings) skipped."""
    fields: dict[str, str] = {}
    for line in response.iter_lines():
        if line == "":
            if "data" in fields:
                yield int(fields["id"]), fields["event"], json.loads(fields["data"])
            fields = {}
        elif not line.startswith(":"):
            name, _, value = line.partition(":")
            fields[name] = value.removeprefix(" ")


def follow(client: httpx.Client, run_id: str) -> list[tuple[int, str, dict[str, Any]]]:
    with client.stream("GET", f"/runs/{run_id}/events") as response:
        response.raise_for_status()
        return list(events(response))


# -- measurements ------------------------------------------------------------------------------


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def in_process(*, validation: bool, n: int, seed0: int) -> float:
    """p50 ms of the same work in this process: run (warm cache) and write the artifacts."""
    import btlab
    from btlab.artifacts import write_artifacts
    from btlab.pipeline import RunCache

    cache = RunCache()
    walls = []
    with tempfile.TemporaryDirectory(prefix="btlab-inproc-") as tmp:
        write_artifacts(
            btlab.run(request(seed0, validation=validation), cache=cache), Path(tmp) / "w"
        )
        for i in range(1, n + 1):
            start = time.perf_counter()
            result = btlab.run(request(seed0 + i, validation=validation), cache=cache)
            write_artifacts(result, Path(tmp) / str(i))
            walls.append((time.perf_counter() - start) * 1e3)
    return statistics.median(walls)


def warm_runs(
    client: httpx.Client, *, validation: bool, n: int, seed0: int, goal_ms: float
) -> None:
    label = "default validation" if validation else "validation off"
    first = client.post("/runs", json=request(seed0, validation=validation)).json()["id"]
    assert follow(client, first)[-1][1] == "completed"  # compiles and caches: not timed
    walls, served = [], []
    stages: dict[str, list[float]] = defaultdict(list)
    for i in range(1, n + 1):
        start = time.perf_counter()
        response = client.post("/runs", json=request(seed0 + i, validation=validation))
        assert response.status_code == 201, response.text
        seen = follow(client, response.json()["id"])
        walls.append((time.perf_counter() - start) * 1e3)
        assert seen[-1][1] == "completed", seen[-1]
        served.append(seen[-1][2]["elapsed_ms"])
        for _, kind, data in seen:
            if kind == "stage" and data.get("status") == "done" and "elapsed_ms" in data:
                stages[data["stage"]].append(data["elapsed_ms"])
    p50 = statistics.median(walls)
    verdict = "meets" if p50 <= goal_ms else "MISSES"
    print(f"warm run over HTTP, {BARS:,} bars, {label}: p50 {p50:.0f} ms, p90 {pct(walls, 0.9):.0f} ms, "
          f"min {min(walls):.0f} ms over {n} runs ({verdict} the {goal_ms:.0f} ms goal); "
          f"server-side start->completed p50 {statistics.median(served):.0f} ms")  # fmt: skip
    parts = ", ".join(f"{k} {statistics.median(v):.1f}" for k, v in stages.items())
    print(f"  stage medians (ms): {parts}")
    local = in_process(validation=validation, n=n, seed0=seed0 + 5000)
    verdict = "meets" if p50 <= 1.3 * local else "MISSES"
    print(f"  the same work in-process (run + write_artifacts): p50 {local:.0f} ms; HTTP / in-process "
          f"{p50 / local:.2f}x ({verdict} the 1.3x goal)")  # fmt: skip


def get_run_latency(client: httpx.Client, n: int) -> None:
    listed = client.get("/runs", params={"limit": 500}).json()
    for seed in range(100 - listed["total"]):
        client.post("/runs", json=request(10_000 + seed, validation=False, bars=200))
    ids = [r["id"] for r in client.get("/runs", params={"limit": 500}).json()["items"]]
    deadline = time.monotonic() + 300
    while client.get("/health").json()["active_runs"] and time.monotonic() < deadline:
        time.sleep(0.1)
    stored = client.get("/runs", params={"limit": 500}).json()["total"]
    rng = random.Random(0)
    for run_id in ids[:20]:
        client.get(f"/runs/{run_id}")
    times = []
    for _ in range(n):
        run_id = rng.choice(ids)
        start = time.perf_counter()
        response = client.get(f"/runs/{run_id}")
        times.append((time.perf_counter() - start) * 1e3)
        assert response.status_code == 200
    p99 = pct(times, 0.99)
    verdict = "meets" if p99 <= 10 else "MISSES"
    print(f"GET /runs/{{id}} with {stored} runs stored: p50 {statistics.median(times):.2f} ms, "
          f"p99 {p99:.2f} ms over {n} requests ({verdict} the 10 ms goal)")  # fmt: skip


def many_clients(url: str, client: httpx.Client, clients: int) -> None:
    blocker = client.post("/runs", json={**request(20_000, validation=True), "validation": {
        "permutation": {"n_permutations": 100_000}}}).json()["id"]  # fmt: skip
    while client.get(f"/runs/{blocker}").json()["status"] != "running":
        time.sleep(0.02)
    body = {**request(20_001, validation=True, bars=20_000)}
    body["validation"] = {"permutation": {"n_permutations": 500}}
    run_id = client.post("/runs", json=body).json()["id"]
    base = client.get("/health").json()["streams"]
    results: list[list[tuple[int, str, dict[str, Any]]]] = [[] for _ in range(clients)]

    def one(i: int) -> None:
        with httpx.Client(base_url=url, timeout=300) as c:
            results[i] = follow(c, run_id)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    while client.get("/health").json()["streams"] < base + clients:
        time.sleep(0.02)
    start = time.perf_counter()
    client.delete(f"/runs/{blocker}")  # the run starts now, with every client listening
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - start
    replay = follow(client, run_id)
    ok = sum(r == replay for r in results)
    assert replay[-1][1] == "completed" and [e[0] for e in replay] == list(
        range(1, len(replay) + 1)
    )
    computed = replay[-1][2]["elapsed_ms"] / 1e3
    print(f"{clients} concurrent SSE clients on one run: {ok}/{clients} received all {len(replay)} "
          f"events in order, the last client done {elapsed:.2f} s after the start (the run itself "
          f"took {computed:.2f} s)")  # fmt: skip
    if ok != clients:
        raise SystemExit("some clients missed events")


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    import numba
    import numpy

    return (f"{cpu}, {os.cpu_count()} cores, {platform.system()} {platform.release()}, "
            f"{platform.python_implementation()} {platform.python_version()}, numpy {numpy.__version__}, "
            f"numba {numba.__version__}, load average {load:.2f} at start")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=30, help="timed warm runs per case")
    parser.add_argument("--gets", type=int, default=2000, help="timed GET /runs/{id}")
    parser.add_argument("--clients", type=int, default=50, help="concurrent SSE clients")
    parser.add_argument("--workers", default="1", help="BTLAB_WORKERS of the server")
    args = parser.parse_args()
    from btlab.runtime import tune_allocator

    tune_allocator()  # as the server tunes its own: the in-process figures compare like with like
    print(f"machine: {machine()}")
    with tempfile.TemporaryDirectory(prefix="btlab-bench-") as tmp:
        server = Server(Path(tmp) / "home", BTLAB_WORKERS=args.workers)
        try:
            with httpx.Client(base_url=server.url, timeout=300) as client:
                warm_runs(client, validation=False, n=args.iterations, seed0=0, goal_ms=150)
                warm_runs(client, validation=True, n=args.iterations, seed0=1000, goal_ms=300)
                get_run_latency(client, args.gets)
        finally:
            server.stop()
        # every progress event sent (no throttling): the most events a stream can carry
        server = Server(Path(tmp) / "fanout", BTLAB_WORKERS="1", BTLAB_PROGRESS_INTERVAL="0")
        try:
            with httpx.Client(base_url=server.url, timeout=300) as client:
                many_clients(server.url, client, args.clients)
        finally:
            server.stop()


if __name__ == "__main__":
    main()
