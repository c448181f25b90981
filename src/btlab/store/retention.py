"""Retention and recovery: the prune (rows in one transaction, folders after it) and the
start-up clean-up of what a crash left (interrupted runs, stray folders and dataset files)."""

from __future__ import annotations

import shutil
from collections.abc import Sequence

from .db import Database, _Tx
from .rows import CANCEL_WON, INTERRUPTED, RecoveryReport, now_iso

DEFAULT_RETENTION = 100


class Retention(Database):
    """The newest `retention` runs are kept; `recover` cleans up after a crash."""

    retention: int

    def _delete_rows(self, tx: _Tx, ids: Sequence[str]) -> None:
        for chunk in range(0, len(ids), 500):
            part = list(ids[chunk : chunk + 500])
            marks = ",".join("?" * len(part))
            tx.execute(f"DELETE FROM events WHERE run_id IN ({marks})", part)
            tx.execute(f"DELETE FROM idempotency_keys WHERE run_id IN ({marks})", part)
            tx.execute(f"DELETE FROM runs WHERE id IN ({marks})", part)

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
