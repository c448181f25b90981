"""The database of a home: pooled SQLite (WAL) connections, write and read transactions, events.

Every write goes through `Database._tx` (process lock + BEGIN IMMEDIATE); the events a
transaction appends go to the listener after its commit, with the lock still held.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .home import Home
from .rows import EVENT_TYPES, EventListener, EventRow, _dumps, now_iso
from .schema import migrate as migrate_schema

log = logging.getLogger("btlab.store")

MAX_IDLE_CONNECTIONS = 8


class _Tx:
    """One open write transaction: its connection and the events it appended."""

    __slots__ = ("conn", "events")

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self.events: list[EventRow] = []

    def execute(self, sql: str, args: Sequence[Any] = ()) -> sqlite3.Cursor:
        return self.conn.execute(sql, args)


class Database(Home):
    """The connection pool and transactions of one home's database (migrated by the caller)."""

    def __init__(
        self, home: str | Path | None = None, *, listener: EventListener | None = None
    ) -> None:
        super().__init__(home)
        self.listener = listener
        self._lock = threading.RLock()
        self._pool_lock = threading.Lock()
        self._idle: list[sqlite3.Connection] = []
        self._closed = False

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
            return migrate_schema(conn, self.db_path)

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
