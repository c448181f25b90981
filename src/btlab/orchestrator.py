"""Runs as a lifecycle: submit (idempotent), queue, execute off the caller's thread, persist, prune.

    orch = Orchestrator(Store(home))
    orch.start()                                   # recover what a crash left, then accept work
    run, created = orch.submit({"preset": "sma_cross_daily"})
    orch.wait(run.id)                              # or follow store.events_after(run.id, seq)

A run is a pipeline of named stages, each announced by ``stage`` events (``started``/``done``) with
a per-run ``seq``: validate, load_data, features, strategy, simulate, metrics, validation (when
enabled) come from `btlab.pipeline.run` (sweeps: `btlab.sweep.run_sweep`); the orchestrator adds
artifacts (written to a temporary folder and renamed to ``runs/<id>``), persist and prune (one
transaction that records the result, prunes beyond the retention and appends the terminal event).

Event types and their data:

- ``queued``    ``{run_id, kind, config_hash}`` (seq 1, written with the run)
- ``started``   ``{run_id}``
- ``stage``     ``{stage, status: "started"|"done", elapsed_ms?, pruned?}``
- ``progress``  ``{stage, done, total}`` (at most one per `progress_interval` per run, and the last)
- ``completed`` ``{run_id, run_hash, metrics, warnings, elapsed_ms}`` (headline metrics; the
  run's warnings as ``[{code, message}]``, empty when nothing is degenerate: `btlab.run_warnings`)
- ``failed``    ``{run_id, code, error}`` (code: config_error, data_error, run_error,
  internal_error, interrupted)
- ``cancelled`` ``{run_id, reason}``

Work goes through an `Executor`: `ThreadExecutor` (the default) runs jobs on an in-process thread
pool; the kernels release the GIL, so an event loop in the same process stays responsive. A
distributed executor ships the `Job` (plain JSON fields) to a worker that calls
`Orchestrator.execute` against the same home. A dataset/feature cache (`RunCache`) is shared by
the runs of a process, so a warm run skips loading and recomputing.
"""

from __future__ import annotations

import json
import logging
import shutil
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from .config import SyntheticData
from .data import Dataset
from .data.portfolio import PortfolioDataset
from .errors import BtlabError, ConfigError, DataError, NotFoundError, RunCancelled
from .executors import BatchExecutor, LocalExecutor
from .hashing import canonical_bytes, canonical_json, canonicalize, sha256_hex
from .metric_registry import HEADLINE
from .pipeline import RunCache, data_identity, load_dataset
from .run_kinds import run_kind
from .store import (
    INTERRUPTED,
    DatasetRow,
    EventRow,
    RecoveryReport,
    RunRow,
    RunStateError,
    Store,
)
from .targets import TARGETS_STRATEGY, own_targets

log = logging.getLogger("btlab.orchestrator")

_DATA_LOCKS = 16

#: Data sources that read a file named in the request (refused where `allow_files` is off).
FILE_SOURCES = ("csv", "parquet")


@dataclass(frozen=True)
class Job:
    """One run to execute: everything a worker needs, as plain JSON-able fields."""

    run_id: str
    kind: str
    config: dict[str, Any]
    config_hash: str


JobRunner = Callable[[Job], None]


class Executor(Protocol):
    """Where runs execute. `submit` must return at once; the work calls `runner(job)` later."""

    def submit(self, job: Job, runner: JobRunner) -> None: ...

    def shutdown(self, *, wait: bool) -> None:
        """Stop taking jobs; drop the ones not started; with `wait`, wait for the running ones."""


class ThreadExecutor:
    """The default executor: an in-process thread pool of `workers` threads."""

    def __init__(self, workers: int = 1) -> None:
        if workers < 1:
            raise ValueError(f"workers must be at least 1, got {workers}")
        self.workers = workers
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="btlab-run")

    def submit(self, job: Job, runner: JobRunner) -> None:
        self._pool.submit(runner, job)

    def shutdown(self, *, wait: bool) -> None:
        self._pool.shutdown(wait=wait, cancel_futures=True)


@dataclass(frozen=True)
class Prepared:
    """A validated request: the config as stored and the hashes that decide "the same run"."""

    kind: str
    config: dict[str, Any]
    config_hash: str
    dataset_hash: str | None  # None for synthetic data until the worker has generated it


def body_hash(kind: str, body: Any) -> str:
    """The hash an Idempotency-Key is checked against: kind and canonical body."""
    return sha256_hex(canonical_bytes({"kind": kind, "body": body}))


def headline(metrics: Mapping[str, Any]) -> dict[str, Any]:
    """The headline subset of a metrics dict (`metric_registry.HEADLINE`: stored with a run, sent
    with its ``completed`` event), JSON-ready (NaN/inf as null)."""
    picked = {k: metrics[k] for k in HEADLINE if k in metrics}
    out: dict[str, Any] = canonicalize(picked)
    return out


def _config_error(loc: str, exc: BtlabError) -> ConfigError:
    return ConfigError("invalid request", [(loc, str(exc))])


class _Progress:
    """Throttles progress events: at most one per `interval` per stage, and always the last."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self._last: dict[str, float] = {}

    def admit(self, data: Mapping[str, Any]) -> bool:
        if self.interval <= 0:
            return True
        stage = str(data.get("stage"))
        done, total = data.get("done"), data.get("total")
        now = time.monotonic()
        if done == total or now - self._last.get(stage, -1e18) >= self.interval:
            self._last[stage] = now
            return True
        return False


@dataclass
class _Active:
    cancel: threading.Event = field(default_factory=threading.Event)


def _named_files(spec: Any) -> list[tuple[str, Path]]:
    """Every file a request's data section names, with its field: `data.path` (a file or a
    folder, and then each file in it: a link inside could point anywhere) or `data.paths[i]`."""
    paths = getattr(spec, "paths", None)
    if paths is not None:
        return [(f"data.paths[{i}]", Path(p)) for i, p in enumerate(paths)]
    path = Path(spec.path)
    named = [("data.path", path)]
    if path.is_dir():
        named += [("data.path", child) for child in sorted(path.iterdir())]
    return named


class Orchestrator:
    """Accepts runs, executes them through an executor, records events, artifacts and results."""

    def __init__(
        self,
        store: Store,
        *,
        executor: Executor | None = None,
        cache: RunCache | None = None,
        workers: int = 1,
        progress_interval: float = 0.05,
        allow_files: bool = True,
        file_roots: Sequence[str | Path] | None = None,
        batches: BatchExecutor | None = None,
    ) -> None:
        self.store = store
        # where sweeps', walk-forwards' and permutation tests' batches run: a cluster
        # (BTLAB_CLUSTER), else the run's own thread
        self.batches: BatchExecutor = batches if batches is not None else LocalExecutor()
        self.allow_files = allow_files
        # None: any file (in-process use); else only files inside these folders
        self.file_roots = (
            None if file_roots is None else tuple(Path(r).resolve() for r in file_roots)
        )
        self.executor: Executor = executor or ThreadExecutor(workers)
        self.cache = cache if cache is not None else RunCache()
        self.progress_interval = progress_interval
        self._listeners: list[Callable[[list[EventRow]], None]] = []
        self._listeners_lock = threading.Lock()
        self._active: dict[str, _Active] = {}
        self._active_lock = threading.Lock()
        self._finished = threading.Condition()
        self._stopping = threading.Event()
        self._data_locks = [threading.Lock() for _ in range(_DATA_LOCKS)]
        store.listener = self._publish

    # -- events ----------------------------------------------------------------------------

    def add_listener(self, listener: Callable[[list[EventRow]], None]) -> None:
        """Call `listener(events)` after each commit that appended events (in seq order)."""
        with self._listeners_lock:
            self._listeners.append(listener)

    def remove_listener(self, listener: Callable[[list[EventRow]], None]) -> None:
        with self._listeners_lock:
            if listener in self._listeners:
                self._listeners.remove(listener)

    def _publish(self, events: list[EventRow]) -> None:
        with self._listeners_lock:
            listeners = list(self._listeners)
        for listener in listeners:
            try:
                listener(events)
            except Exception:
                log.exception("event listener failed")
        if any(e.terminal for e in events):
            with self._finished:
                self._finished.notify_all()

    # -- life cycle ------------------------------------------------------------------------

    def start(self) -> RecoveryReport:
        """Recover the home after a crash (interrupted runs, orphan folders); call once at start."""
        report = self.store.recover()
        if report.interrupted:
            log.warning("marked %d interrupted run(s) failed", len(report.interrupted))
        return report

    def shutdown(self, *, wait: bool = True) -> list[str]:
        """Stop: cancel running runs, drop queued ones; every unfinished run is failed "interrupted"."""
        self._stopping.set()
        with self._active_lock:
            for active in self._active.values():
                active.cancel.set()
        self.executor.shutdown(wait=wait)
        return self.store.interrupt_active(INTERRUPTED) if wait else []

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    # -- submit ----------------------------------------------------------------------------

    def _load_locked(
        self, config: Any, load: Callable[[], tuple[Any, Dataset | PortfolioDataset, str]]
    ) -> tuple[Any, Dataset | PortfolioDataset, str]:
        key = canonical_json(config.data.model_dump(mode="json"))
        with self._data_locks[hash(key) % _DATA_LOCKS]:
            return load()

    def prepare(self, body: Any, kind: str = "run") -> Prepared:
        """Validate a request body and hash it with its dataset (loaded through the warm cache).

        Raises ConfigError naming each bad field (an unknown preset or stored dataset included,
        and a file path where `allow_files` is off) or DataError naming the broken data rule.
        """
        run_type = run_kind(kind)
        try:
            cfg = run_type.resolve(body)
        except NotFoundError as exc:
            raise _config_error("preset", exc) from None
        if not self.allow_files and cfg.data.source in FILE_SOURCES:
            raise ConfigError(
                "invalid request",
                [("data.path", f"this server does not read files named in requests (data.source "
                  f"{cfg.data.source!r}); upload the file with POST /datasets and use "
                  '{"source": "dataset", "id": <its id>}')],
            )  # fmt: skip
        if isinstance(cfg.data, SyntheticData):
            # hashed by its spec: the worker generates the bars, never the request
            chash = run_type.config_hash(cfg, data_identity(cfg))
            return Prepared(kind, cfg.model_dump(mode="json"), chash, None)
        guarded = self.file_roots is not None and cfg.data.source in FILE_SOURCES
        if guarded:
            for where, path in _named_files(cfg.data):
                self._check_file_root(path, where)

        def load() -> tuple[Any, Dataset | PortfolioDataset, str]:
            ds = load_dataset(
                cfg, resolve_stored=self.store.load_dataset,
                resolve_portfolio=self.store.load_portfolio, cache=self.cache,
            )  # fmt: skip
            return cfg, ds, run_type.config_hash(cfg, data_identity(cfg, ds))

        try:
            _, dataset, chash = self._load_locked(cfg, load)
        except NotFoundError as exc:
            raise _config_error("data.id", exc) from None
        except DataError as exc:
            if not guarded:
                raise
            # a server file that is not data: name the rule and rows, never echo its content
            named = ", ".join(str(p) for _, p in _named_files(cfg.data))
            raise DataError(
                exc.rule, f"{named} is not a valid {cfg.data.source} dataset", exc.rows
            ) from None
        strategy = getattr(cfg, "strategy", None)
        if strategy is not None and strategy.name == TARGETS_STRATEGY:
            own_targets(strategy.params, dataset, None)  # a missing column: 422 now, not later
        return Prepared(kind, cfg.model_dump(mode="json"), chash, dataset.hash)

    def _check_file_root(self, path: Path, where: str = "data.path") -> None:
        """ConfigError (at `where`) unless `path` (links followed) lies inside one of
        `file_roots`."""
        assert self.file_roots is not None
        resolved = path.expanduser().resolve()
        if not any(resolved.is_relative_to(root) for root in self.file_roots):
            roots = ", ".join(map(str, self.file_roots)) or "none"
            raise ConfigError(
                "invalid request",
                [(where, f"{path} is outside the folders this server reads files from "
                  f"(BTLAB_FILE_ROOTS: {roots})")],
            )  # fmt: skip

    def submit(
        self, body: Any, *, kind: str = "run", idempotency_key: str | None = None
    ) -> tuple[RunRow, bool]:
        """Answer an existing run or queue a new one: ``(run, created)``.

        An Idempotency-Key seen before answers its run (IdempotencyConflict for another body);
        else a live run of the same kind and config hash answers; else a new run is queued.
        """
        if self.stopping:
            raise RunStateError("the service is shutting down; not accepting runs")
        bhash = body_hash(kind, body)
        if idempotency_key is not None:
            known = self.store.find_idempotent(idempotency_key, bhash)
            if known is not None:
                return known, False
        prepared = self.prepare(body, kind)
        run, created = self.store.create_run(
            kind=kind, request=body, config=prepared.config, config_hash=prepared.config_hash,
            dataset_hash=prepared.dataset_hash, body_hash=bhash, idempotency_key=idempotency_key,
        )  # fmt: skip
        if created:
            with self._active_lock:
                self._active[run.id] = _Active()
            job = Job(run.id, kind, prepared.config, prepared.config_hash)
            try:
                self.executor.submit(job, self.execute)
            except RuntimeError:  # the executor is shut down
                self._forget(run.id)
                self.store.finish_run(
                    run.id, "failed", error=INTERRUPTED,
                    events=[("failed", {"run_id": run.id, "code": INTERRUPTED, "error": INTERRUPTED})],
                )  # fmt: skip
                return self.store.get_run(run.id), True
        return run, created

    # -- cancel, delete, wait --------------------------------------------------------------

    def cancel(self, run_id: str) -> RunRow:
        """Cancel a run: a queued one at once, a running one when it next checks (and for sure at
        the transaction that would store its result). Returns the run as the cancel left it:
        ``cancel_requested`` when running, its final status when it had finished already."""
        run = self.store.request_cancel(run_id)
        if run.status == "cancelled":
            self._forget(run_id)
        elif run.status == "running":
            with self._active_lock:
                active = self._active.get(run_id)
            if active is not None:
                active.cancel.set()
        return run

    def delete(self, run_id: str) -> tuple[RunRow, bool]:
        """Delete a finished run (``(run, True)``), or cancel an active one (``(run, False)``).

        An active run that finishes before the cancel reaches it is neither: RunStateError
        naming its status (it completed or failed; nothing was cancelled or deleted).
        """
        run = self.store.get_run(run_id)
        if run.finished:
            return self.store.delete_run(run_id), True
        run = self.cancel(run_id)
        if run.status in ("completed", "failed"):
            raise RunStateError(
                f"run {run_id} {run.status} before the cancel reached it; nothing was cancelled "
                "(DELETE it again to delete it)",
                status=run.status,
            )
        return run, False

    # -- stored datasets -------------------------------------------------------------------

    def set_dataset_symbol(self, dataset_id: str, symbol: str) -> DatasetRow:
        """Re-tag a stored dataset; runs after this one read the new symbol."""
        row = self.store.set_dataset_symbol(dataset_id, symbol)
        self._forget_dataset(dataset_id)
        return row

    def delete_dataset(self, dataset_id: str) -> DatasetRow:
        """Delete a stored dataset (RunStateError while an active run reads it)."""
        row = self.store.delete_dataset(dataset_id)
        self._forget_dataset(dataset_id)
        return row

    def _forget_dataset(self, dataset_id: str) -> None:
        """Drop the warm cache's copies of a stored dataset (they carry its old symbol)."""
        for key in list(self.cache.datasets):
            spec = json.loads(key)
            if spec.get("source") == "dataset" and spec.get("id") == dataset_id:
                self.cache.datasets.pop(key, None)

    def wait(self, run_id: str, timeout: float | None = None) -> RunRow:
        """Block until the run is finished (or `timeout` seconds pass); returns its row."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._finished:
            while True:
                run = self.store.get_run(run_id)
                if run.finished:
                    return run
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return run
                self._finished.wait(0.25 if left is None else min(0.25, left))

    def active_count(self) -> int:
        with self._active_lock:
            return len(self._active)

    def _forget(self, run_id: str) -> None:
        with self._active_lock:
            self._active.pop(run_id, None)

    # -- execute ---------------------------------------------------------------------------

    def execute(self, job: Job) -> None:
        """Run one job to its end in this thread: every outcome is recorded, nothing is raised."""
        try:
            self._execute(job)
        except Exception:  # pragma: no cover - _execute records its own failures
            log.exception("run %s: unexpected failure", job.run_id)
        finally:
            self._forget(job.run_id)

    def _execute(self, job: Job) -> None:
        store, run_id = self.store, job.run_id
        with self._active_lock:
            active = self._active.setdefault(run_id, _Active())
        if self.stopping or store.mark_started(run_id) is None:
            return  # cancelled before it started, or the service is stopping
        start = time.perf_counter()
        progress = _Progress(self.progress_interval)

        def should_cancel() -> bool:
            return active.cancel.is_set()

        def on_event(kind: str, data: dict[str, Any]) -> None:
            if kind == "progress" and not progress.admit(data):
                return
            store.append_event(run_id, kind, canonicalize(data))

        folder = store.run_dir(run_id)
        try:
            run_type = run_kind(job.kind)
            result = run_type.execute(
                job.config, on_event=on_event, should_cancel=should_cancel,
                resolve_stored=store.load_dataset, resolve_portfolio=store.load_portfolio,
                cache=self.cache, batches=self.batches,
            )  # fmt: skip
            completion = run_type.report(result)
            if completion.config_hash != job.config_hash:
                raise DataError(
                    "data_changed",
                    f"the data changed after the request was accepted (config hash "
                    f"{completion.config_hash[:12]} != {job.config_hash[:12]}); post it again",
                )
            if should_cancel():
                raise RunCancelled("run cancelled before stage artifacts")
            on_event("stage", {"stage": "artifacts", "status": "started"})
            t0 = time.perf_counter()
            manifest = run_type.artifacts(result, folder)
            on_event("stage", {"stage": "artifacts", "status": "done", "elapsed_ms": _ms(t0)})
            on_event("stage", {"stage": "persist", "status": "started"})
            metrics = headline(completion.metrics)
            done = store.finish_run(
                run_id, "completed", run_hash=manifest["run_hash"], metrics=metrics,
                dataset_hash=manifest["dataset_hash"],
                events=[
                    ("stage", {"stage": "persist", "status": "done"}),
                    ("stage", {"stage": "prune", "status": "started"}),
                    ("stage", {"stage": "prune", "status": "done"}),
                    ("completed", {"run_id": run_id, "run_hash": manifest["run_hash"],
                                   "metrics": metrics, "warnings": completion.warnings,
                                   "elapsed_ms": _ms(start)}),
                ],
            )  # fmt: skip
            if done.status != "completed":  # cancelled meanwhile, or finished from outside
                _remove(folder)  # (shutdown): its artifacts must not stay
        except RunCancelled as exc:
            _remove(folder)
            if self.stopping:
                self._fail(run_id, INTERRUPTED, INTERRUPTED)
            else:
                store.finish_run(
                    run_id, "cancelled", error="cancelled",
                    events=[("cancelled", {"run_id": run_id, "reason": str(exc)})],
                )  # fmt: skip
        except RunStateError:
            _remove(folder)  # the run was finished from outside (shutdown); nothing to record
        except ConfigError as exc:
            _remove(folder)
            self._fail(run_id, "config_error", str(exc))
        except DataError as exc:
            _remove(folder)
            message = str(exc)
            if (
                self.file_roots is not None
                and job.config.get("data", {}).get("source") in FILE_SOURCES
            ):
                message = f"{exc.rule}: the data file is not a valid dataset"  # never its content
            self._fail(run_id, "data_error", message)
        except BtlabError as exc:
            _remove(folder)
            self._fail(run_id, "run_error", str(exc))
        except Exception as exc:
            log.exception("run %s failed", run_id)
            _remove(folder)
            self._fail(run_id, "internal_error", f"{type(exc).__name__}: {exc}")

    def _fail(self, run_id: str, code: str, error: str) -> None:
        self.store.finish_run(
            run_id, "failed", error=error,
            events=[("failed", {"run_id": run_id, "code": code, "error": error})],
        )  # fmt: skip


def _ms(start: float) -> float:
    return round((time.perf_counter() - start) * 1e3, 3)


def _remove(folder: Any) -> None:
    shutil.rmtree(folder, ignore_errors=True)
