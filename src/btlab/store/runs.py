"""Runs and their events: create (idempotent), start, finish (with the prune), cancel, delete.

The cancel flag of a running run is read by the transaction that finishes it, so the cancel and
the result are decided in one place.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping, Sequence
from typing import Any

from ..errors import NotFoundError
from .db import _Tx
from .retention import Retention
from .rows import (
    _RUN_COLUMNS,
    ACTIVE_STATUSES,
    CANCEL_WON,
    RUN_KINDS,
    RUN_STATUSES,
    TERMINAL_STATUSES,
    EventRow,
    Finished,
    IdempotencyConflict,
    RunRow,
    RunStateError,
    _dumps,
    _event,
    _run,
    new_run_id,
    now_iso,
)


class RunStore(Retention):
    """Runs, their events and idempotency keys (mixed into `Store`)."""

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
