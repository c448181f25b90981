"""The btlab home: SQLite (WAL) for runs, events and datasets, files for artifacts and datasets.

Layout of the home folder (``BTLAB_HOME``, default ``~/.btlab``)::

    btlab.sqlite3            runs, events, idempotency keys, datasets, portfolios (WAL mode)
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
- A run has a ``kind``: "run" (one backtest), "sweep" (a parameter grid) or "walkforward". "The same run" is
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

The package, one job a module (`Store` composes the mixins; nothing here imports upwards):

    rows.py       statuses, row types (RunRow, EventRow, ...), errors, the JSON codec
    home.py       the home folder and its paths; a run's files, read without following links
    schema.py     the DDL as migrations, the schema version
    db.py         the connection pool, write and read transactions, appending events
    retention.py  the prune (one transaction) and the recovery after a crash
    runs.py       run rows, events, lifecycle, idempotency, the cancel flag
    datasets.py   dataset rows and their Parquet files
    portfolios.py portfolio rows: one id for K stored datasets, each under its symbol
"""

from __future__ import annotations

from pathlib import Path

from .datasets import MAX_SYMBOL_LENGTH, DatasetRow, DatasetStore, sniff_format
from .db import MAX_IDLE_CONNECTIONS, Database
from .home import DB_NAME, Home, default_home
from .portfolios import PortfolioRow, PortfolioStore
from .retention import DEFAULT_RETENTION, Retention
from .rows import (
    ACTIVE_STATUSES,
    CANCEL_WON,
    EVENT_TYPES,
    INTERRUPTED,
    LIVE_STATUSES,
    RUN_KINDS,
    RUN_STATUSES,
    TERMINAL_STATUSES,
    EventListener,
    EventRow,
    Finished,
    IdempotencyConflict,
    RecoveryReport,
    RunRow,
    RunStateError,
    new_run_id,
    now_iso,
)
from .runs import RunStore
from .schema import MIGRATIONS, SCHEMA_VERSION

__all__ = [
    "ACTIVE_STATUSES", "CANCEL_WON", "DB_NAME", "DEFAULT_RETENTION", "EVENT_TYPES", "INTERRUPTED",
    "LIVE_STATUSES", "MAX_IDLE_CONNECTIONS", "MAX_SYMBOL_LENGTH", "MIGRATIONS", "RUN_KINDS",
    "RUN_STATUSES", "SCHEMA_VERSION", "TERMINAL_STATUSES", "Database", "DatasetRow",
    "DatasetStore", "EventListener", "EventRow", "Finished", "Home", "IdempotencyConflict",
    "PortfolioRow", "PortfolioStore", "RecoveryReport", "Retention", "RunRow", "RunStateError", "RunStore", "Store",
    "default_home", "new_run_id", "now_iso", "sniff_format",
]  # fmt: skip


class Store(RunStore, PortfolioStore):
    """Runs, events, datasets and portfolios of one btlab home. Safe to share between threads."""

    def __init__(
        self,
        home: str | Path | None = None,
        *,
        retention: int = DEFAULT_RETENTION,
        listener: EventListener | None = None,
    ) -> None:
        if retention < 1:
            raise ValueError(f"retention must be at least 1, got {retention}")
        super().__init__(home, listener=listener)
        self.retention = retention
        self.migrate()
