"""The btlab home: SQLite (WAL) for runs, events and datasets, files for artifacts and datasets.

Layout of the home folder (``BTLAB_HOME``, default ``~/.btlab``)::

    btlab.sqlite3            runs, events, idempotency keys, datasets (WAL mode)
    runs/<run id>/           artifacts of a completed run or sweep (temp folder + rename)
    datasets/<hash>.parquet  imported datasets, named by their content hash

Choices written down here:

- Connections come from a small pool (any thread may borrow one; idle ones are kept up to
  `MAX_IDLE_CONNECTIONS`), ``busy_timeout`` 5 s, ``synchronous=NORMAL`` (durable across a killed
  process; a power cut may lose the last commits, never corrupt). Every write goes through
  `Store._tx`: a process lock plus ``BEGIN IMMEDIATE``, so a multi-row change is one transaction
  and check-then-insert sequences are atomic, also against another process (the CLI) using the
  same home.
- The schema version is ``PRAGMA user_version``; ``MIGRATIONS[i]`` takes version ``i`` to ``i + 1``.
- A run has a ``kind``: "run" (one backtest) or "sweep" (a parameter grid). "The same run" is
  decided by kind and config hash among *live* runs (queued, running, completed): a partial
  UNIQUE index enforces it. Failed and cancelled runs are not live, so the same request posted
  again runs again (a failure may have been transient; a cancel was a choice to stop, not a result).
- Idempotency keys live in their own table (a key points to the run it answered; several keys may
  point to one run). They go when their run goes.
- Every event a transaction appends is handed to the ``listener`` after the commit and while the
  write lock is still held, so listeners see each run's events in ``seq`` order. A listener must be
  quick and must not write to the store; its exceptions are logged, never raised to the writer.
- Retention counts every run, newest first by creation; only finished runs are deleted. Finishing a
  run prunes in the same transaction (rows of runs, events and keys), and the folders go after the
  commit; `recover` removes whatever a crash left between the two.
- A home is served by one server process at a time: `recover` (run at start-up) marks every
  queued or running run failed ("interrupted").
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import shutil
import sqlite3
import stat
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from .errors import BtlabError, NotFoundError
from .store_datasets import DatasetRow as DatasetRow  # re-exported: callers import it here
from .store_datasets import DatasetStore
from .store_datasets import sniff_format as sniff_format

if TYPE_CHECKING:
    pass

log = logging.getLogger("btlab.store")

SCHEMA_VERSION = 2
DB_NAME = "btlab.sqlite3"
DEFAULT_RETENTION = 100
MAX_IDLE_CONNECTIONS = 8

RUN_KINDS = ("run", "sweep")
RUN_STATUSES = ("queued", "running", "completed", "failed", "cancelled")
LIVE_STATUSES = ("queued", "running", "completed")
ACTIVE_STATUSES = ("queued", "running")
TERMINAL_STATUSES = ("completed", "failed", "cancelled")
EVENT_TYPES = ("queued", "started", "stage", "progress", "completed", "failed", "cancelled")
INTERRUPTED = "interrupted"
#: The reason of a run whose cancel was asked before its result was stored.
CANCEL_WON = "cancelled before its results were stored"

#: Schema migrations: MIGRATIONS[i] takes a database at version i to version i + 1.
MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        """CREATE TABLE runs (
            n INTEGER PRIMARY KEY AUTOINCREMENT,
            id TEXT NOT NULL UNIQUE,
            kind TEXT NOT NULL DEFAULT 'run' CHECK (kind IN ('run', 'sweep')),
            request TEXT NOT NULL,
            config TEXT NOT NULL,
            config_hash TEXT NOT NULL,
            dataset_hash TEXT,
            status TEXT NOT NULL CHECK (status IN
                ('queued', 'running', 'completed', 'failed', 'cancelled')),
            created_at TEXT NOT NULL,
            started_at TEXT,
            finished_at TEXT,
            error TEXT,
            run_hash TEXT,
            metrics TEXT,
            idempotency_key TEXT,
            body_hash TEXT
        )""",
        """CREATE UNIQUE INDEX runs_live_config ON runs (kind, config_hash)
            WHERE status IN ('queued', 'running', 'completed')""",
        "CREATE INDEX runs_status ON runs (status)",
        """CREATE TABLE events (
            run_id TEXT NOT NULL,
            seq INTEGER NOT NULL,
            type TEXT NOT NULL,
            data TEXT NOT NULL,
            created_at TEXT NOT NULL,
            PRIMARY KEY (run_id, seq)
        ) WITHOUT ROWID""",
        """CREATE TABLE idempotency_keys (
            key TEXT PRIMARY KEY,
            body_hash TEXT NOT NULL,
            run_id TEXT NOT NULL,
            created_at TEXT NOT NULL
        )""",
        "CREATE INDEX idempotency_keys_run ON idempotency_keys (run_id)",
        """CREATE TABLE datasets (
            id TEXT PRIMARY KEY,
            symbol TEXT NOT NULL,
            timeframe TEXT NOT NULL,
            rows INTEGER NOT NULL,
            start TEXT,
            "end" TEXT,
            gaps INTEGER NOT NULL,
            largest_gap_seconds REAL,
            source TEXT NOT NULL,
            meta TEXT NOT NULL,
            created_at TEXT NOT NULL
        )""",
    ),
    # 1 -> 2: a cancel asked of a running run, read by the transaction that finishes it
    ("ALTER TABLE runs ADD COLUMN cancel_requested INTEGER NOT NULL DEFAULT 0",),
)


class IdempotencyConflict(BtlabError):
    """An Idempotency-Key was used before with another request body."""

    def __init__(self, key: str, run_id: str) -> None:
        self.key = key
        self.run_id = run_id
        super().__init__(
            f"Idempotency-Key {key!r} was already used with another request body (run {run_id})"
        )


class RunStateError(BtlabError):
    """The run is not in a state that allows the operation (e.g. deleting a running run).

    `status` is the run's status where the error is about one run.
    """

    def __init__(self, message: str, status: str | None = None) -> None:
        self.status = status
        super().__init__(message)


def now_iso() -> str:
    """The current UTC time, ISO 8601 with milliseconds."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def default_home() -> Path:
    """``$BTLAB_HOME`` or ``~/.btlab``."""
    env = os.environ.get("BTLAB_HOME")
    return Path(env).expanduser() if env else Path.home() / ".btlab"


def new_run_id() -> str:
    """A random run id: 16 hex digits (64 bits)."""
    return secrets.token_hex(8)


def _dumps(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), allow_nan=False, default=str)


def _loads(text: str | None) -> Any:
    return None if text is None else json.loads(text)


@dataclass(frozen=True)
class RunRow:
    """One run as stored."""

    n: int
    id: str
    kind: str
    request: Any
    config: dict[str, Any]
    config_hash: str
    dataset_hash: str | None
    status: str
    created_at: str
    started_at: str | None
    finished_at: str | None
    error: str | None
    run_hash: str | None
    metrics: dict[str, Any] | None
    cancel_requested: bool = False

    @property
    def finished(self) -> bool:
        return self.status in TERMINAL_STATUSES


@dataclass(frozen=True)
class EventRow:
    """One event of a run: ``seq`` counts 1, 2, 3... per run."""

    run_id: str
    seq: int
    type: str
    data: dict[str, Any]
    created_at: str

    @property
    def terminal(self) -> bool:
        return self.type in TERMINAL_STATUSES


@dataclass
class Finished:
    """What `Store.finish_run` did: the events it wrote and the runs its prune removed."""

    events: list[EventRow] = field(default_factory=list)
    pruned: list[str] = field(default_factory=list)
    status: str | None = None  # the status written (None: nothing changed)

    @property
    def changed(self) -> bool:
        return bool(self.events)


@dataclass
class RecoveryReport:
    """What `Store.recover` cleaned up at start-up."""

    interrupted: list[str] = field(default_factory=list)
    removed_folders: list[str] = field(default_factory=list)
    removed_dataset_files: list[str] = field(default_factory=list)
    dangling_datasets: list[str] = field(default_factory=list)


_RUN_COLUMNS = (
    "n, id, kind, request, config, config_hash, dataset_hash, status, created_at, started_at, "
    "finished_at, error, run_hash, metrics, cancel_requested"
)


def _run(row: Sequence[Any]) -> RunRow:
    return RunRow(
        n=row[0], id=row[1], kind=row[2], request=_loads(row[3]), config=_loads(row[4]),
        config_hash=row[5], dataset_hash=row[6], status=row[7], created_at=row[8],
        started_at=row[9], finished_at=row[10], error=row[11], run_hash=row[12],
        metrics=_loads(row[13]), cancel_requested=bool(row[14]),
    )  # fmt: skip


def _event(row: Sequence[Any]) -> EventRow:
    return EventRow(
        run_id=row[0], seq=row[1], type=row[2], data=json.loads(row[3]), created_at=row[4]
    )


EventListener = Callable[[list[EventRow]], None]


class _Tx:
    """One open write transaction: its connection and the events it appended."""

    __slots__ = ("conn", "events")

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self.events: list[EventRow] = []

    def execute(self, sql: str, args: Sequence[Any] = ()) -> sqlite3.Cursor:
        return self.conn.execute(sql, args)


class Store(DatasetStore):
    """Runs, events and datasets of one btlab home. Safe to share between threads."""

    def __init__(
        self,
        home: str | Path | None = None,
        *,
        retention: int = DEFAULT_RETENTION,
        listener: EventListener | None = None,
    ) -> None:
        if retention < 1:
            raise ValueError(f"retention must be at least 1, got {retention}")
        self.home = Path(home).expanduser() if home is not None else default_home()
        self.retention = retention
        self.listener = listener
        self.runs_dir = self.home / "runs"
        self.datasets_dir = self.home / "datasets"
        self.db_path = self.home / DB_NAME
        for folder in (self.home, self.runs_dir, self.datasets_dir):
            folder.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._pool_lock = threading.Lock()
        self._idle: list[sqlite3.Connection] = []
        self._closed = False
        self.migrate()

    # -- connections and transactions ------------------------------------------------------

    def _open(self) -> sqlite3.Connection:
        conn = sqlite3.connect(
            self.db_path, isolation_level=None, timeout=5.0, check_same_thread=False
        )
        conn.execute("PRAGMA busy_timeout = 5000")
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
        return conn

    @contextmanager
    def _connection(self) -> Iterator[sqlite3.Connection]:
        """Borrow a connection from the pool (opened on demand, closed if the pool is full)."""
        with self._pool_lock:
            if self._closed:
                raise RuntimeError("the store is closed")
            conn = self._idle.pop() if self._idle else None
        if conn is None:
            conn = self._open()
        try:
            yield conn
        finally:
            if conn.in_transaction:  # pragma: no cover - every path ends its transaction
                conn.rollback()
            with self._pool_lock:
                keep = not self._closed and len(self._idle) < MAX_IDLE_CONNECTIONS
                if keep:
                    self._idle.append(conn)
            if not keep:
                conn.close()

    @contextmanager
    def _tx(self) -> Iterator[_Tx]:
        """One write transaction (process lock + BEGIN IMMEDIATE); its events go to the listener."""
        with self._connection() as conn, self._lock:
            tx = _Tx(conn)
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield tx
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
            if tx.events and self.listener is not None:
                try:
                    self.listener(tx.events)
                except Exception:
                    log.exception("event listener failed")

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        """A read transaction: one consistent snapshot for several statements."""
        with self._connection() as conn:
            conn.execute("BEGIN")
            try:
                yield conn
            finally:
                conn.execute("COMMIT")

    def _query(self, sql: str, args: Sequence[Any] = ()) -> list[Any]:
        with self._connection() as conn:
            return conn.execute(sql, args).fetchall()

    def close(self) -> None:
        """Close the pooled connections; borrowed ones close when given back."""
        with self._pool_lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()

    def migrate(self) -> int:
        """Bring the schema to `SCHEMA_VERSION`; returns the version found before."""
        with self._connection() as conn, self._lock:
            conn.execute("BEGIN IMMEDIATE")
            try:
                found = int(conn.execute("PRAGMA user_version").fetchone()[0])
                if found > SCHEMA_VERSION:
                    raise BtlabError(
                        f"{self.db_path} has schema version {found}, newer than this btlab "
                        f"({SCHEMA_VERSION}); upgrade btlab"
                    )
                for version in range(found, SCHEMA_VERSION):
                    for statement in MIGRATIONS[version]:
                        conn.execute(statement)
                    conn.execute(f"PRAGMA user_version = {version + 1}")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
        return found

    def schema_version(self) -> int:
        return int(self._query("PRAGMA user_version")[0][0])

    def integrity_check(self) -> str:
        """``PRAGMA integrity_check``: "ok" when the database is sound."""
        return str(self._query("PRAGMA integrity_check")[0][0])

    # -- events ----------------------------------------------------------------------------

    def _append(self, tx: _Tx, run_id: str, type_: str, data: Mapping[str, Any]) -> EventRow:
        if type_ not in EVENT_TYPES:
            raise ValueError(f"unknown event type {type_!r}")
        seq = int(
            tx.execute(
                "SELECT COALESCE(MAX(seq), 0) + 1 FROM events WHERE run_id = ?", (run_id,)
            ).fetchone()[0]
        )
        event = EventRow(run_id, seq, type_, dict(data), now_iso())
        tx.execute(
            "INSERT INTO events (run_id, seq, type, data, created_at) VALUES (?, ?, ?, ?, ?)",
            (run_id, seq, type_, _dumps(event.data), event.created_at),
        )
        tx.events.append(event)
        return event

    def append_event(self, run_id: str, type_: str, data: Mapping[str, Any]) -> EventRow:
        """Append one event to an active run (its seq is the next of that run).

        RunStateError when the run is unknown or finished: nothing follows a terminal event.
        """
        with self._tx() as tx:
            row = tx.execute("SELECT status FROM runs WHERE id = ?", (run_id,)).fetchone()
            if row is None or row[0] not in ACTIVE_STATUSES:
                raise RunStateError(
                    f"run {run_id} is {row[0] if row else 'unknown'}; it takes no more events"
                )
            return self._append(tx, run_id, type_, data)

    def events_after(self, run_id: str, seq: int = 0) -> list[EventRow]:
        """The run's events with a seq above `seq`, in order."""
        rows = self._query(
            "SELECT run_id, seq, type, data, created_at FROM events "
            "WHERE run_id = ? AND seq > ? ORDER BY seq",
            (run_id, seq),
        )
        return [_event(r) for r in rows]

    # -- runs ------------------------------------------------------------------------------

    @staticmethod
    def _get(conn: sqlite3.Connection | _Tx, run_id: str) -> RunRow | None:
        row = conn.execute(f"SELECT {_RUN_COLUMNS} FROM runs WHERE id = ?", (run_id,)).fetchone()
        return _run(row) if row is not None else None

    def get_run(self, run_id: str) -> RunRow:
        """The run `run_id`, or NotFoundError."""
        with self._connection() as conn:
            run = self._get(conn, run_id)
        if run is None:
            raise NotFoundError(f"unknown run id {run_id!r}")
        return run

    def find_idempotent(self, key: str, body_hash: str) -> RunRow | None:
        """The run answered for `key` (IdempotencyConflict when the body differs), or None."""
        with self._read() as conn:
            return self._find_idempotent(conn, key, body_hash)

    def _find_idempotent(
        self, conn: sqlite3.Connection | _Tx, key: str, body_hash: str
    ) -> RunRow | None:
        row = conn.execute(
            "SELECT body_hash, run_id FROM idempotency_keys WHERE key = ?", (key,)
        ).fetchone()
        if row is None:
            return None
        if row[0] != body_hash:
            raise IdempotencyConflict(key, row[1])
        return self._get(conn, row[1])

    def create_run(
        self,
        *,
        request: Any,
        config: Mapping[str, Any],
        config_hash: str,
        dataset_hash: str | None,
        body_hash: str,
        idempotency_key: str | None = None,
        kind: str = "run",
    ) -> tuple[RunRow, bool]:
        """Atomically answer an existing run or create a queued one; ``(run, created)``.

        In one BEGIN IMMEDIATE transaction: an Idempotency-Key seen before answers its run (or
        raises IdempotencyConflict for another body); else a live run of the same kind and config
        hash answers; else a new run is inserted with its ``queued`` event (seq 1).
        """
        if kind not in RUN_KINDS:
            raise ValueError(f"unknown run kind {kind!r}; expected one of {RUN_KINDS}")
        with self._tx() as tx:
            if idempotency_key is not None:
                known = self._find_idempotent(tx, idempotency_key, body_hash)
                if known is not None:
                    return known, False
            row = tx.execute(
                f"SELECT {_RUN_COLUMNS} FROM runs WHERE kind = ? AND config_hash = ? "
                "AND status IN ('queued', 'running', 'completed')",
                (kind, config_hash),
            ).fetchone()
            created = row is None
            if created:
                run_id = new_run_id()
                tx.execute(
                    "INSERT INTO runs (id, kind, request, config, config_hash, dataset_hash, "
                    "status, created_at, idempotency_key, body_hash) "
                    "VALUES (?, ?, ?, ?, ?, ?, 'queued', ?, ?, ?)",
                    (
                        run_id, kind, _dumps(request), _dumps(config), config_hash, dataset_hash,
                        now_iso(), idempotency_key, body_hash,
                    ),
                )  # fmt: skip
                self._append(
                    tx, run_id, "queued",
                    {"run_id": run_id, "kind": kind, "config_hash": config_hash},
                )  # fmt: skip
                run = self._get(tx, run_id)
                assert run is not None
            else:
                run = _run(row)
            if idempotency_key is not None:
                tx.execute(
                    "INSERT INTO idempotency_keys (key, body_hash, run_id, created_at) "
                    "VALUES (?, ?, ?, ?)",
                    (idempotency_key, body_hash, run.id, now_iso()),
                )
            return run, created

    def list_runs(
        self,
        *,
        limit: int = 50,
        offset: int = 0,
        before: int | None = None,
        status: str | None = None,
        kind: str | None = None,
    ) -> tuple[list[RunRow], int]:
        """Runs newest first: ``(page, total)``; `before` is a cursor (the ``n`` of the last run seen)."""
        where: list[str] = []
        args: list[Any] = []
        if status is not None:
            where.append("status = ?")
            args.append(status)
        if kind is not None:
            where.append("kind = ?")
            args.append(kind)
        total_where = " WHERE " + " AND ".join(where) if where else ""
        total_args = list(args)
        if before is not None:
            where.append("n < ?")
            args.append(before)
        clause = " WHERE " + " AND ".join(where) if where else ""
        with self._read() as conn:
            rows = conn.execute(
                f"SELECT {_RUN_COLUMNS} FROM runs{clause} ORDER BY n DESC LIMIT ? OFFSET ?",
                (*args, limit, offset),
            ).fetchall()
            total = int(
                conn.execute(f"SELECT COUNT(*) FROM runs{total_where}", total_args).fetchone()[0]
            )
        return [_run(r) for r in rows], total

    def count_runs(self) -> dict[str, int]:
        """Runs by status."""
        rows = self._query("SELECT status, COUNT(*) FROM runs GROUP BY status")
        return {status: 0 for status in RUN_STATUSES} | {s: int(c) for s, c in rows}

    def run_ids(self) -> set[str]:
        return {r[0] for r in self._query("SELECT id FROM runs")}

    def mark_started(self, run_id: str, data: Mapping[str, Any] | None = None) -> EventRow | None:
        """queued -> running with a ``started`` event; None when the run is no longer queued."""
        with self._tx() as tx:
            cur = tx.execute(
                "UPDATE runs SET status = 'running', started_at = ? WHERE id = ? AND status = 'queued'",
                (now_iso(), run_id),
            )
            if cur.rowcount == 0:
                return None
            return self._append(tx, run_id, "started", {"run_id": run_id, **(data or {})})

    def finish_run(
        self,
        run_id: str,
        status: str,
        *,
        error: str | None = None,
        run_hash: str | None = None,
        metrics: Mapping[str, Any] | None = None,
        events: Sequence[tuple[str, Mapping[str, Any]]] = (),
        from_statuses: Sequence[str] = ACTIVE_STATUSES,
        prune: bool = True,
        dataset_hash: str | None = None,
    ) -> Finished:
        """Finish a run: status, times, its last events and the retention prune in one transaction.

        The run must be in one of `from_statuses` (else nothing changes and the result is empty).
        A run whose cancel was asked (`request_cancel`) ends cancelled instead of `status`, its
        folder removed before the commit: the cancel and the result are decided in one place.
        With `prune`, finished runs beyond the newest `retention` go in the same transaction (this
        run excepted) and their folders after the commit.
        """
        if status not in TERMINAL_STATUSES:
            raise ValueError(f"{status!r} is not a terminal status")
        done = Finished()
        marks = ",".join("?" * len(from_statuses))
        cancel_won = False
        with self._tx() as tx:
            if status != "cancelled":
                asked = tx.execute(
                    "SELECT cancel_requested FROM runs WHERE id = ?", (run_id,)
                ).fetchone()
                if asked is not None and asked[0]:  # the cancel came first: it wins
                    status, error, run_hash, metrics = "cancelled", "cancelled", None, None
                    events = [("cancelled", {"run_id": run_id, "reason": CANCEL_WON})]
                    cancel_won = True
            cur = tx.execute(
                "UPDATE runs SET status = ?, finished_at = ?, error = ?, run_hash = ?, metrics = ?, "
                f"dataset_hash = COALESCE(?, dataset_hash) WHERE id = ? AND status IN ({marks})",
                (
                    status, now_iso(), error, run_hash,
                    _dumps(metrics) if metrics is not None else None, dataset_hash, run_id,
                    *from_statuses,
                ),
            )  # fmt: skip
            if cur.rowcount == 0:
                return done
            done.status = status
            if cancel_won:  # its artifacts go before the commit: never cancelled with files
                self._remove_folder(run_id)
            done.events = [self._append(tx, run_id, t, d) for t, d in events]
            if prune:
                done.pruned = self._prune_rows(tx, self.retention, keep_id=run_id)
        for pruned in done.pruned:
            self._remove_folder(pruned)
        return done

    def request_cancel(self, run_id: str) -> RunRow:
        """Cancel a run, in one transaction with the check of its status; the run as it is then.

        A queued run is cancelled at once; a running one is marked ``cancel_requested``, so the
        transaction that finishes it (`finish_run`) ends it cancelled whatever it computed; a
        finished run is left as it is (the caller sees its status: the cancel came too late).
        """
        with self._tx() as tx:
            run = self._get(tx, run_id)
            if run is None:
                raise NotFoundError(f"unknown run id {run_id!r}")
            if run.status == "queued":
                tx.execute(
                    "UPDATE runs SET status = 'cancelled', finished_at = ?, error = 'cancelled' "
                    "WHERE id = ?",
                    (now_iso(), run_id),
                )
                self._append(
                    tx, run_id, "cancelled", {"run_id": run_id, "reason": "cancelled before start"}
                )
            elif run.status == "running":
                tx.execute("UPDATE runs SET cancel_requested = 1 WHERE id = ?", (run_id,))
            else:
                return run
            after = self._get(tx, run_id)
            assert after is not None
            return after

    def cancel_queued(self, run_id: str, reason: str = "cancelled before start") -> EventRow | None:
        """Cancel a run that has not started; its ``cancelled`` event, or None if it is not queued."""
        done = self.finish_run(
            run_id, "cancelled", error="cancelled", from_statuses=("queued",),
            events=[("cancelled", {"run_id": run_id, "reason": reason})],
        )  # fmt: skip
        return done.events[-1] if done.events else None

    def _delete_rows(self, tx: _Tx, ids: Sequence[str]) -> None:
        for chunk in range(0, len(ids), 500):
            part = list(ids[chunk : chunk + 500])
            marks = ",".join("?" * len(part))
            tx.execute(f"DELETE FROM events WHERE run_id IN ({marks})", part)
            tx.execute(f"DELETE FROM idempotency_keys WHERE run_id IN ({marks})", part)
            tx.execute(f"DELETE FROM runs WHERE id IN ({marks})", part)

    def delete_run(self, run_id: str) -> RunRow:
        """Delete a finished run: rows in one transaction, then its folder. RunStateError if active."""
        with self._tx() as tx:
            run = self._get(tx, run_id)
            if run is None:
                raise NotFoundError(f"unknown run id {run_id!r}")
            if not run.finished:
                raise RunStateError(f"run {run_id} is {run.status}; cancel it before deleting it")
            self._delete_rows(tx, [run_id])
        self._remove_folder(run_id)
        return run

    def _prune_rows(self, tx: _Tx, keep: int, keep_id: str | None = None) -> list[str]:
        ids = [
            r[0]
            for r in tx.execute(
                "SELECT id FROM runs WHERE status IN ('completed', 'failed', 'cancelled') "
                "AND id != ? AND n NOT IN (SELECT n FROM runs ORDER BY n DESC LIMIT ?)",
                (keep_id or "", keep),
            ).fetchall()
        ]
        if ids:
            self._delete_rows(tx, ids)
        return ids

    def prune(self, keep: int | None = None) -> list[str]:
        """Keep the newest `keep` runs (default: the retention): older finished runs go.

        Rows of runs, their events and keys are deleted in one transaction; the folders after it.
        Queued and running runs are never deleted (they count toward the newest, though).
        """
        keep = self.retention if keep is None else keep
        if keep < 0:
            raise ValueError(f"keep must be >= 0, got {keep}")
        with self._tx() as tx:
            ids = self._prune_rows(tx, keep)
        for run_id in ids:
            self._remove_folder(run_id)
        return ids

    def run_dir(self, run_id: str) -> Path:
        """The artifact folder of a run (exists only for completed runs)."""
        if not run_id or not all(c in "0123456789abcdef" for c in run_id):
            raise NotFoundError(f"unknown run id {run_id!r}")
        return self.runs_dir / run_id

    def open_run_file(self, run_id: str, name: str) -> BinaryIO:
        """A file of a run's artifact folder, opened for reading without following links.

        NotFoundError when the folder or the file is missing, a symbolic link or not a regular
        file: a link planted under runs/ must not serve a file from elsewhere.
        """
        folder = self.run_dir(run_id)
        if not name or name in (".", "..") or "/" in name or "\0" in name:
            raise NotFoundError(f"run {run_id} has no file {name!r}")
        nofollow = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0)
        try:
            dir_fd = os.open(folder, nofollow | getattr(os, "O_DIRECTORY", 0))
        except FileNotFoundError:
            raise NotFoundError(f"run {run_id} has no artifacts (pruned or deleted)") from None
        except OSError:
            raise NotFoundError(
                f"the artifact folder of run {run_id} is a link or not a folder; btlab serves "
                "no links under runs/"
            ) from None
        try:
            fd = os.open(name, nofollow, dir_fd=dir_fd)
        except FileNotFoundError:
            raise NotFoundError(f"{name!r} of run {run_id} is gone (pruned or deleted)") from None
        except OSError:
            raise NotFoundError(
                f"{name!r} of run {run_id} is a link or unreadable; btlab serves no links under runs/"
            ) from None
        finally:
            os.close(dir_fd)
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise NotFoundError(f"{name!r} of run {run_id} is not a regular file")
        return os.fdopen(fd, "rb")

    def _remove_folder(self, run_id: str) -> None:
        shutil.rmtree(self.runs_dir / run_id, ignore_errors=True)

    def interrupt_active(self, reason: str = INTERRUPTED) -> list[str]:
        """Mark every queued or running run failed with `reason` (and a ``failed`` event); one
        whose cancel was asked ends cancelled, as the cancel promised."""
        with self._tx() as tx:
            rows = tx.execute(
                "SELECT id, cancel_requested FROM runs WHERE status IN ('queued', 'running') "
                "ORDER BY n"
            ).fetchall()
            active = [r[0] for r in rows]
            for run_id, asked in rows:
                if asked:
                    tx.execute(
                        "UPDATE runs SET status = 'cancelled', finished_at = ?, error = 'cancelled' "
                        "WHERE id = ?",
                        (now_iso(), run_id),
                    )
                    self._append(tx, run_id, "cancelled", {"run_id": run_id, "reason": CANCEL_WON})
                    self._remove_folder(run_id)
                    continue
                tx.execute(
                    "UPDATE runs SET status = 'failed', finished_at = ?, error = ? WHERE id = ?",
                    (now_iso(), reason, run_id),
                )
                self._append(
                    tx, run_id, "failed", {"run_id": run_id, "error": reason, "code": reason}
                )
        return active

    def recover(self) -> RecoveryReport:
        """Start-up clean-up after a crash (call it only where no other process serves this home).

        Runs left queued or running are marked failed with error "interrupted" (and a ``failed``
        event); folders under runs/ that belong to no completed run, and leftover temporary
        folders, are removed; dataset files without a row (and rows without a file) too.
        """
        report = RecoveryReport(interrupted=self.interrupt_active())
        completed = {r[0] for r in self._query("SELECT id FROM runs WHERE status = 'completed'")}
        for entry in self.runs_dir.iterdir():
            if entry.name not in completed or not entry.is_dir() or entry.is_symlink():
                if entry.is_dir() and not entry.is_symlink():
                    shutil.rmtree(entry, ignore_errors=True)
                else:
                    entry.unlink(missing_ok=True)
                report.removed_folders.append(entry.name)
        known = {r[0] for r in self._query("SELECT id FROM datasets")}
        on_disk = set()
        for entry in self.datasets_dir.iterdir():
            stem = entry.name.removesuffix(".parquet")
            if entry.name.endswith(".parquet") and stem in known and entry.is_file():
                on_disk.add(stem)
                continue
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)
            report.removed_dataset_files.append(entry.name)
        dangling = sorted(known - on_disk)
        if dangling:
            with self._tx() as tx:
                for dataset_id in dangling:
                    tx.execute("DELETE FROM datasets WHERE id = ?", (dataset_id,))
            report.dangling_datasets = dangling
        return report
