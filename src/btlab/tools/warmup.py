"""Compile every numba kernel the service uses into numba's on-disk cache: `python -m btlab.tools.warmup`.

The kernels are jitted with ``cache=True``, so machine code compiled once is stored under
``NUMBA_CACHE_DIR`` (numba's default without it: ``__pycache__`` next to the kernel sources) and
loaded, not compiled, by any later process with the same kernel sources at the same paths, the
same numba and Python versions and the same CPU target (``NUMBA_CPU_NAME``). The container image
runs this module at build time, so the service answers its first request without compiling.

The warm-up runs a small workload through the service's own path (the orchestrator and store, in
a temporary home that is deleted afterwards): every preset with validation on, every registered
strategy, every registered feature, a run with every execution and risk option, runs on CSV,
Parquet and stored datasets, and sweeps down both kernel paths (fused crossover and targets) with
validation and PBO, artifacts written each time; then it renders the HTML report of a run and
of a sweep, so matplotlib builds its font cache (under ``MPLCONFIGDIR``) too. It lists every
kernel of `btlab.kernels` with the signatures this process compiled (cache misses) or loaded
(cache hits); ``--json PATH`` writes that report as JSON.

Every execution and risk option is run although none changes a kernel's compiled signature
today (`ExecParams` is a NamedTuple of fixed types): an option that does is then warmed too.

Exit status: 0 when every job completed and every compiled kernel was saved into the cache
directory; 1 when a job failed, a kernel could not be cached there (e.g. NUMBA_CACHE_DIR is not
writable, so numba fell back to another place) or, with ``--check``, when anything had to be
compiled at all (the cache was expected to hold everything already); 2 for a bad setup.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import pkgutil
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

#: Bars of the warm-up data: enough for the presets' longest windows, small enough to be quick.
WARMUP_BARS = 300
#: Seconds one warm-up job may take (compiling included) before it counts as failed.
JOB_TIMEOUT = 600.0

_SMALL_VALIDATION: dict[str, Any] = {
    "bootstrap": {"n_resamples": 20},
    "permutation": {"n_permutations": 2},
    "folds": {"k": 2},
}


@dataclass(frozen=True)
class Job:
    """One request of the warm-up workload, submitted like ``POST /runs`` or ``POST /sweeps``."""

    label: str
    kind: str  # "run" or "sweep"
    body: dict[str, Any]


@dataclass(frozen=True)
class JobResult:
    label: str
    status: str
    seconds: float
    error: str | None


@dataclass(frozen=True)
class KernelReport:
    """One jitted kernel after the workload: what this process compiled or loaded, and where."""

    name: str  # module.qualname inside btlab.kernels
    compiled: int  # signatures compiled here (numba cache misses)
    loaded: int  # signatures loaded from the cache (numba cache hits)
    cache_path: str | None  # where numba keeps this kernel's index and data files
    saved: bool  # an index file for this kernel exists in cache_path

    @property
    def used(self) -> bool:
        return self.compiled + self.loaded > 0


@dataclass(frozen=True)
class Report:
    jobs: list[JobResult]
    kernels: list[KernelReport]
    problems: list[str]

    @property
    def compiled(self) -> int:
        return sum(k.compiled for k in self.kernels)

    @property
    def loaded(self) -> int:
        return sum(k.loaded for k in self.kernels)


def kernel_dispatchers() -> dict[str, Any]:
    """Every numba dispatcher defined in a module of `btlab.kernels`, by ``module.qualname``."""
    # here, not at the top: importing the kernels needs a usable NUMBA_CACHE_DIR, checked first
    from numba.core.dispatcher import Dispatcher

    import btlab.kernels as package

    found: dict[str, Any] = {}
    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{package.__name__}.{info.name}")
        for obj in vars(module).values():
            if isinstance(obj, Dispatcher) and obj.py_func.__module__ == module.__name__:
                found[f"{info.name}.{obj.py_func.__qualname__}"] = obj
    return found


def expected_cache_root() -> Path | None:
    """``NUMBA_CACHE_DIR`` as numba reads it, or None (numba then caches next to the sources)."""
    # here, not at the top: `--help` and a bad argument answer without loading numba
    from numba.core import config

    cache_dir = str(getattr(config, "CACHE_DIR", "") or "")
    return Path(cache_dir).resolve() if cache_dir else None


def check_cache_dir(root: Path) -> str | None:
    """Why numba could not use `root` as its cache directory, or None when it can.

    numba needs to create files there (it tries before using a cache directory at all); where it
    cannot, it silently falls back to another location, or fails at import where none is usable.
    """
    try:
        root.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=root):
            pass
    except OSError as exc:
        return f"NUMBA_CACHE_DIR {root} is not writable by uid {os.getuid()}: {exc}"
    return None


def workload(workdir: Path, add_dataset: Callable[[Any], str]) -> list[Job]:
    """The warm-up requests. `workdir` receives the data files; `add_dataset` stores a dataset."""
    # here, not at the top: importing the kernels needs a usable NUMBA_CACHE_DIR, checked first
    from ..data import save_parquet
    from ..features import list_features
    from ..portfolio_strategies import list_portfolio_strategies
    from ..presets import list_presets
    from ..strategies import list_strategies
    from ..synthetic_data import generate as synthetic

    data = {"source": "synthetic", "bars": WARMUP_BARS}
    quick = {"data": data, "validation": {"enabled": False}}
    jobs = [
        Job(
            f"preset {name}",
            "run",
            # fewer bars, the preset's data otherwise (a portfolio preset keeps its symbols)
            {
                "preset": name,
                "overrides": {"data": {"bars": WARMUP_BARS}, "validation": _SMALL_VALIDATION},
            },
        )
        for name in list_presets()
    ]
    jobs += [
        Job(f"strategy {s['name']}", "run", {**quick, "strategy": {"name": s["name"]}})
        for s in list_strategies()
    ]
    jobs += [
        Job(
            f"portfolio strategy {s['name']}",
            "run",
            {**quick, "data": {**data, "symbols": 4}, "strategy": {"name": s["name"]}},
        )
        for s in list_portfolio_strategies()
    ]
    # `column` reads a dataset's extra column (synthetic data has none) and compiles nothing
    every_feature = [{"name": f["name"]} for f in list_features() if f["name"] != "column"]
    jobs.append(Job("every feature", "run", {**quick, "features": every_feature}))
    jobs.append(
        Job(
            "every execution and risk option",
            "run",
            {
                "data": {**data, "zero_volume_prob": 0.05},
                "strategy": {
                    "name": "sma_cross",
                    "params": {"fast": 5, "slow": 20, "long_short": True},
                },
                "execution": {
                    "fill": "close",
                    "rebalance": "every_bar",
                    "spread_bps": 2.0,
                    "slippage_bps": 1.0,
                    "commission_bps": 1.0,
                    "commission_fixed": 0.5,
                    "commission_min": 1.0,
                    "borrow_rate_annual": 0.05,
                    "skip_zero_volume": True,
                    "lot_size": 1.0,
                    "close_at_end": False,
                },
                "risk": {
                    "sizing": "units",
                    "units": 10.0,
                    "max_leverage": 2.0,
                    "stop_loss": 0.03,
                    "take_profit": 0.1,
                    "max_drawdown": 0.5,
                },
                "validation": _SMALL_VALIDATION,
            },
        )
    )
    # Data read from files and from the store: the service's other sources.
    frame = synthetic(bars=WARMUP_BARS, symbol="WARM").to_frame()
    frame["adj_close"] = frame["close"] * 0.5
    csv_path = workdir / "warm.csv"
    frame.to_csv(csv_path, index=False)
    stored = synthetic(bars=WARMUP_BARS, symbol="STORED", seed=11)
    parquet_path = workdir / "warm.parquet"
    save_parquet(stored, parquet_path)
    jobs += [
        Job("csv data, adjusted", "run",
            {**quick, "data": {"source": "csv", "path": str(csv_path), "adjust": True}}),
        Job("parquet data", "run",
            {**quick, "data": {"source": "parquet", "path": str(parquet_path)}}),
        Job("stored dataset", "run",
            {**quick, "data": {"source": "dataset", "id": add_dataset(stored)}}),
    ]  # fmt: skip
    sweep_common = {"data": data, "validation": _SMALL_VALIDATION, "pbo_splits": 4}
    jobs += [
        Job(
            "sweep sma_cross (fused crossover kernel)",
            "sweep",
            {**sweep_common, "strategy": {"name": "sma_cross"},
             "grid": {"fast": [5, 10], "slow": [20, 40]}},
        ),
        Job(
            "sweep channel_breakout (targets kernel)",
            "sweep",
            {**sweep_common, "strategy": {"name": "channel_breakout"},
             "grid": {"entry_window": [10, 20], "exit_window": [5]}},
        ),
    ]  # fmt: skip
    return jobs


def run_workload(log: Callable[[str], None]) -> list[JobResult]:
    """Run every warm-up job through an orchestrator on a temporary home (removed afterwards)."""
    # here, not at the top: importing the kernels needs a usable NUMBA_CACHE_DIR, checked first
    from ..orchestrator import Orchestrator
    from ..report import render_report
    from ..store import Store

    results: list[JobResult] = []
    first_completed: dict[str, tuple[str, str]] = {}  # kind -> (label, run id)
    with tempfile.TemporaryDirectory(prefix="btlab-warmup-") as tmp:
        home, workdir = Path(tmp) / "home", Path(tmp) / "files"
        workdir.mkdir()
        store = Store(home)
        orchestrator = Orchestrator(store, workers=1, progress_interval=1.0)
        orchestrator.start()
        try:
            for job in workload(workdir, lambda ds: store.add_dataset(ds)[0].id):
                start = time.perf_counter()
                try:
                    run, _ = orchestrator.submit(job.body, kind=job.kind)
                    row = orchestrator.wait(run.id, timeout=JOB_TIMEOUT)
                    status, error = row.status, row.error
                except Exception as exc:  # a request the service refuses is a warm-up failure
                    status, error = "failed", f"{type(exc).__name__}: {exc}"
                if status == "completed":
                    first_completed.setdefault(job.kind, (job.label, run.id))
                results.append(_logged(log, job.kind, job.label, status, start, error))
            # GET /runs/{id}/report renders with matplotlib: build its font cache now.
            for label, run_id in first_completed.values():
                start = time.perf_counter()
                try:
                    render_report(store.run_dir(run_id))
                    status, error = "completed", None
                except Exception as exc:
                    status, error = "failed", f"{type(exc).__name__}: {exc}"
                results.append(_logged(log, "report", label, status, start, error))
        finally:
            orchestrator.shutdown()
            store.close()
    return results


def _logged(
    log: Callable[[str], None], kind: str, label: str, status: str, start: float, error: str | None
) -> JobResult:
    result = JobResult(f"{kind} {label}", status, time.perf_counter() - start, error)
    log(f"  {kind:6} {label:44} {status:9} {result.seconds:6.1f} s")
    if error:
        log(f"         {error}")
    return result


def _saved(dispatcher: Any, cache_path: str | None) -> bool:
    if not cache_path or not os.path.isdir(cache_path):
        return False
    func = dispatcher.py_func
    module = func.__module__.rsplit(".", 1)[-1]
    prefix = f"{module}.{func.__qualname__}-"
    return any(n.startswith(prefix) and n.endswith(".nbi") for n in os.listdir(cache_path))


def kernel_reports(dispatchers: dict[str, Any]) -> list[KernelReport]:
    """What each dispatcher compiled or loaded in this process (numba's per-dispatcher stats)."""
    reports = []
    for name, dispatcher in dispatchers.items():
        stats = dispatcher.stats
        cache_path = stats.cache_path
        reports.append(
            KernelReport(
                name=name,
                compiled=sum(stats.cache_misses.values()),
                loaded=sum(stats.cache_hits.values()),
                cache_path=cache_path,
                saved=_saved(dispatcher, cache_path),
            )
        )
    return reports


def problems_of(
    jobs: Sequence[JobResult], kernels: Sequence[KernelReport], root: Path | None, *, check: bool
) -> list[str]:
    """Everything that makes the warm-up a failure, one sentence each."""
    problems = [f"job {j.label!r} {j.status}: {j.error}" for j in jobs if j.status != "completed"]
    for k in kernels:
        if k.compiled and k.cache_path is None:
            problems.append(f"kernel {k.name} is not cached (jitted without cache=True?)")
        elif (
            k.compiled
            and root is not None
            and not Path(k.cache_path or "").resolve().is_relative_to(root)
        ):
            problems.append(
                f"kernel {k.name} was cached in {k.cache_path}, outside NUMBA_CACHE_DIR {root}"
                " (numba could not write there)"
            )
        elif k.compiled and not k.saved:
            problems.append(f"kernel {k.name} was compiled but no index file is in {k.cache_path}")
        if check and k.compiled:
            problems.append(f"kernel {k.name} compiled {k.compiled} signature(s): not in the cache")
    if not any(k.used for k in kernels):
        problems.append("no kernel ran: the workload did not reach the kernels")
    return problems


def warm_up(log: Callable[[str], None], *, check: bool = False) -> Report:
    """Run the workload and account for every kernel (see the module docstring)."""
    dispatchers = kernel_dispatchers()
    jobs = run_workload(log)
    kernels = kernel_reports(dispatchers)
    return Report(jobs, kernels, problems_of(jobs, kernels, expected_cache_root(), check=check))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m btlab.tools.warmup",
        description="Compile every kernel the btlab service uses into numba's cache "
        "(NUMBA_CACHE_DIR) by running a small workload.",
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="fail if any kernel had to be compiled: the cache must already hold them all",
    )
    parser.add_argument("--quiet", action="store_true", help="print only problems and the summary")
    parser.add_argument(
        "--json", metavar="PATH", type=Path, help="also write the report (jobs, kernels) as JSON"
    )
    args = parser.parse_args(argv)

    def log(line: str) -> None:
        if not args.quiet:
            print(line, flush=True)

    started = time.perf_counter()
    # here, not at the top: `--help` and a bad argument answer without loading numba
    import numba
    from numba.core import config

    root = expected_cache_root()
    if root is not None:
        reason = check_cache_dir(root)
        if reason is not None:
            print(f"btlab warm-up: error: {reason}", file=sys.stderr)
            return 2
    print(
        f"btlab warm-up: numba {numba.__version__}, cache dir "
        f"{root if root is not None else 'next to the kernel sources (NUMBA_CACHE_DIR unset)'}, "
        f"cpu {getattr(config, 'CPU_NAME', None) or 'host'}{' (--check)' if args.check else ''}",
        flush=True,
    )
    report = warm_up(log, check=args.check)
    for k in report.kernels:
        if k.used:
            state = ", ".join(
                part
                for part in (
                    f"{k.compiled} compiled" if k.compiled else "",
                    f"{k.loaded} loaded" if k.loaded else "",
                )
                if part
            )
            log(f"  kernel {k.name:40} {state}")
    unused = [k.name for k in report.kernels if not k.used]
    if unused and report.compiled:  # with a warm cache, callees of cached kernels are not called
        log(f"  never reached by the workload (unused, or a path it misses): {', '.join(unused)}")
    layer: str
    try:
        layer = numba.threading_layer()  # type: ignore[attr-defined]
    except ValueError:  # no parallel kernel ran in this process
        layer = "none used"
    print(
        f"btlab warm-up: {len(report.jobs)} jobs, {len(report.kernels) - len(unused)} of "
        f"{len(report.kernels)} kernels used: {report.compiled} signature(s) compiled and cached, "
        f"{report.loaded} loaded from the cache; threading layer {layer}; "
        f"{time.perf_counter() - started:.1f} s",
        flush=True,
    )
    if args.json is not None:
        args.json.write_text(json.dumps(asdict(report), indent=2) + "\n", encoding="utf-8")
    for problem in report.problems:
        print(f"btlab warm-up: error: {problem}", file=sys.stderr)
    return 1 if report.problems else 0


if __name__ == "__main__":
    sys.exit(main())
