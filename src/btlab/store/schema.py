"""The schema: its DDL as migrations and the version (``PRAGMA user_version``) they lead to."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from ..errors import BtlabError

SCHEMA_VERSION = 4

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
    # 2 -> 3: portfolios (SPEC §8): one id for K stored datasets, each under its symbol
    (
        """CREATE TABLE portfolios (
            id TEXT PRIMARY KEY,
            symbols INTEGER NOT NULL,
            timeframe TEXT NOT NULL,
            rows INTEGER NOT NULL,
            start TEXT,
            "end" TEXT,
            source TEXT NOT NULL,
            meta TEXT NOT NULL,
            created_at TEXT NOT NULL
        )""",
        """CREATE TABLE portfolio_members (
            portfolio_id TEXT NOT NULL,
            symbol TEXT NOT NULL,
            dataset_id TEXT NOT NULL,
            PRIMARY KEY (portfolio_id, symbol)
        ) WITHOUT ROWID""",
        "CREATE INDEX portfolio_members_dataset ON portfolio_members (dataset_id)",
    ),
    # 3 -> 4: the "walkforward" kind (SPEC §10); SQLite cannot alter a CHECK, so the table is
    # rebuilt with the same columns, rows and indexes
    (
        """CREATE TABLE runs_v4 (
            n INTEGER PRIMARY KEY AUTOINCREMENT,
            id TEXT NOT NULL UNIQUE,
            kind TEXT NOT NULL DEFAULT 'run' CHECK (kind IN ('run', 'sweep', 'walkforward')),
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
            body_hash TEXT,
            cancel_requested INTEGER NOT NULL DEFAULT 0
        )""",
        """INSERT INTO runs_v4 (n, id, kind, request, config, config_hash, dataset_hash, status,
            created_at, started_at, finished_at, error, run_hash, metrics, idempotency_key,
            body_hash, cancel_requested)
            SELECT n, id, kind, request, config, config_hash, dataset_hash, status, created_at,
            started_at, finished_at, error, run_hash, metrics, idempotency_key, body_hash,
            cancel_requested FROM runs""",
        # numbers of deleted runs are not handed out again: the counter moves with the rows
        "DELETE FROM sqlite_sequence WHERE name = 'runs_v4'",
        """INSERT INTO sqlite_sequence (name, seq)
            SELECT 'runs_v4', seq FROM sqlite_sequence WHERE name = 'runs'""",
        "DROP TABLE runs",
        "ALTER TABLE runs_v4 RENAME TO runs",
        """CREATE UNIQUE INDEX runs_live_config ON runs (kind, config_hash)
            WHERE status IN ('queued', 'running', 'completed')""",
        "CREATE INDEX runs_status ON runs (status)",
    ),
)


def migrate(conn: sqlite3.Connection, db_path: Path) -> int:
    """Bring the database of `conn` to `SCHEMA_VERSION` in one transaction; the version found.

    The caller holds the store's write lock; BEGIN IMMEDIATE keeps other processes out.
    """
    conn.execute("BEGIN IMMEDIATE")
    try:
        found = int(conn.execute("PRAGMA user_version").fetchone()[0])
        if found > SCHEMA_VERSION:
            raise BtlabError(
                f"{db_path} has schema version {found}, newer than this btlab "
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
