"""The datasets half of the btlab home: imported datasets as rows plus Parquet files.

`Store` inherits `DatasetStore`; the rows live in the ``datasets`` table of the same SQLite
database and the bars in ``datasets/<id>.parquet``. A dataset's row is the truth for its name
(symbol): the file holds the bars, named by their content hash.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError, NotFoundError
from .db import Database
from .rows import RunStateError, _dumps, now_iso

if TYPE_CHECKING:
    from ..data import Dataset

MAX_SYMBOL_LENGTH = 64


@dataclass(frozen=True)
class DatasetRow:
    """One imported dataset (its id is its content hash)."""

    id: str
    symbol: str
    timeframe: str
    rows: int
    start: str | None
    end: str | None
    gaps: int
    largest_gap_seconds: float | None
    source: str
    created_at: str
    meta: dict[str, Any] = field(default_factory=dict)


_DATASET_COLUMNS = (
    'id, symbol, timeframe, rows, start, "end", gaps, largest_gap_seconds, source, created_at, meta'
)


def _dataset(row: Sequence[Any]) -> DatasetRow:
    return DatasetRow(
        id=row[0], symbol=row[1], timeframe=row[2], rows=row[3], start=row[4], end=row[5],
        gaps=row[6], largest_gap_seconds=row[7], source=row[8], created_at=row[9],
        meta=json.loads(row[10]),
    )  # fmt: skip


def _iso(value: Any) -> str | None:
    if value is None:
        return None
    iso = getattr(value, "isoformat", None)
    return str(iso()) if callable(iso) else str(value)


class DatasetStore(Database):
    """Stored datasets: import, list, load, re-tag, delete (mixed into `Store`)."""

    def dataset_path(self, dataset_id: str) -> Path:
        if not dataset_id or not all(c in "0123456789abcdef" for c in dataset_id):
            raise NotFoundError(f"unknown dataset id {dataset_id!r}")
        return self.datasets_dir / f"{dataset_id}.parquet"

    def get_dataset(self, dataset_id: str) -> DatasetRow:
        rows = self._query(f"SELECT {_DATASET_COLUMNS} FROM datasets WHERE id = ?", (dataset_id,))
        if not rows:
            raise NotFoundError(f"unknown dataset id {dataset_id!r}")
        return _dataset(rows[0])

    def list_datasets(self) -> list[DatasetRow]:
        """Every stored dataset, newest first."""
        rows = self._query(f"SELECT {_DATASET_COLUMNS} FROM datasets ORDER BY created_at DESC, id")
        return [_dataset(r) for r in rows]

    def load_dataset(self, dataset_id: str) -> Dataset:
        """A stored dataset by id (the pipeline's ``resolve_stored``); NotFoundError if unknown.

        Its symbol is the row's (set at import, changed by `set_dataset_symbol`), not the one
        written into the file at import.
        """
        # here, not at the top: `btlab runs list` opens the store without pandas and pyarrow
        from ..data import load_parquet

        path = self.dataset_path(dataset_id)
        rows = self._query("SELECT symbol FROM datasets WHERE id = ?", (dataset_id,))
        if not path.is_file() or not rows:
            raise NotFoundError(
                f"unknown dataset id {dataset_id!r} (import it with POST /datasets or `btlab data import`)"
            )
        return load_parquet(path, symbol=str(rows[0][0]))

    def set_dataset_symbol(self, dataset_id: str, symbol: str) -> DatasetRow:
        """Re-tag a stored dataset: its symbol (the bars, and so its id, stay as they are).

        ConfigError for a symbol that is empty, over 64 characters or holds control characters.
        """
        name = symbol.strip()
        if not name or len(name) > MAX_SYMBOL_LENGTH or not name.isprintable():
            raise ConfigError(
                "invalid symbol",
                [("symbol", f"must be 1 to {MAX_SYMBOL_LENGTH} printable characters, got {symbol!r}")],
            )  # fmt: skip
        with self._tx() as tx:
            if tx.execute("SELECT 1 FROM datasets WHERE id = ?", (dataset_id,)).fetchone() is None:
                raise NotFoundError(f"unknown dataset id {dataset_id!r}")
            meta = json.loads(
                tx.execute("SELECT meta FROM datasets WHERE id = ?", (dataset_id,)).fetchone()[0]
            )
            meta["symbol"] = name
            tx.execute(
                "UPDATE datasets SET symbol = ?, meta = ? WHERE id = ?",
                (name, _dumps(meta), dataset_id),
            )
        return self.get_dataset(dataset_id)

    def delete_dataset(self, dataset_id: str) -> DatasetRow:
        """Delete a stored dataset: its row, then its file. RunStateError while a queued or
        running run reads it; finished runs keep their artifacts (a new run of it needs the
        bars imported again)."""
        with self._tx() as tx:
            row = tx.execute(
                f"SELECT {_DATASET_COLUMNS} FROM datasets WHERE id = ?", (dataset_id,)
            ).fetchone()
            if row is None:
                raise NotFoundError(f"unknown dataset id {dataset_id!r}")
            users = [
                r[0]
                for r in tx.execute(
                    "SELECT id FROM runs WHERE status IN ('queued', 'running') "
                    "AND json_extract(config, '$.data.source') = 'dataset' "
                    "AND json_extract(config, '$.data.id') = ?",
                    (dataset_id,),
                ).fetchall()
            ]
            if users:
                raise RunStateError(
                    f"dataset {dataset_id} is in use by active run(s) {', '.join(users)}; "
                    "cancel them or wait for them to finish"
                )
            holders = [
                r[0]
                for r in tx.execute(
                    "SELECT DISTINCT portfolio_id FROM portfolio_members WHERE dataset_id = ? "
                    "ORDER BY portfolio_id",
                    (dataset_id,),
                ).fetchall()
            ]
            if holders:
                raise RunStateError(
                    f"dataset {dataset_id} is a member of stored portfolio(s) "
                    f"{', '.join(holders)}; delete the portfolio(s) first"
                )
            tx.execute("DELETE FROM datasets WHERE id = ?", (dataset_id,))
        self.dataset_path(dataset_id).unlink(missing_ok=True)
        return _dataset(row)

    def add_dataset(self, dataset: Dataset) -> tuple[DatasetRow, bool]:
        """Store a validated dataset once by content hash: ``(row, created)``.

        The Parquet file is written to a temporary name and renamed into place before the row is
        inserted; the same content twice answers the existing row (its symbol and timeframe kept).
        """
        # here, not at the top: `btlab runs list` opens the store without pandas and pyarrow
        from ..data import save_parquet

        meta = dataset.meta
        dataset_id = str(dataset.hash)
        try:
            return self.get_dataset(dataset_id), False
        except NotFoundError:
            pass
        final = self.dataset_path(dataset_id)
        tmp = self.datasets_dir / f".{dataset_id}.{uuid.uuid4().hex[:8]}.tmp.parquet"
        try:
            save_parquet(dataset, tmp)
            os.replace(tmp, final)
        finally:
            tmp.unlink(missing_ok=True)
        meta_json = meta.model_dump(mode="json")
        row = DatasetRow(
            id=dataset_id,
            symbol=str(meta.symbol),
            timeframe=str(meta.timeframe),
            rows=int(meta.rows),
            start=_iso(meta.start),
            end=_iso(meta.end),
            gaps=int(meta.gaps),
            largest_gap_seconds=(
                float(meta.largest_gap_seconds) if meta.largest_gap_seconds is not None else None
            ),
            source=str(meta.source),
            created_at=now_iso(),
            meta=meta_json,
        )
        with self._tx() as tx:
            existing = tx.execute(
                f"SELECT {_DATASET_COLUMNS} FROM datasets WHERE id = ?", (dataset_id,)
            ).fetchone()
            if existing is not None:
                return _dataset(existing), False
            tx.execute(
                f"INSERT INTO datasets ({_DATASET_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    row.id, row.symbol, row.timeframe, row.rows, row.start, row.end, row.gaps,
                    row.largest_gap_seconds, row.source, row.created_at, _dumps(meta_json),
                ),
            )  # fmt: skip
        return row, True

    def import_bytes(
        self, content: bytes, fmt: str, *, symbol: str | None, timeframe: str | None
    ) -> tuple[DatasetRow, bool]:
        """Validate bytes of a CSV or Parquet file (SPEC §1) and store the dataset once.

        Raises DataError (naming the rule and rows) and writes nothing when the data is invalid.
        """
        # here, not at the top: `btlab runs list` opens the store without pandas and pyarrow
        from ..data import load_bytes

        dataset = load_bytes(content, fmt=fmt, symbol=symbol, timeframe=timeframe)
        return self.add_dataset(dataset)


def sniff_format(filename: str | None, content: bytes) -> str:
    """The format of an upload: "parquet" for Parquet bytes (magic ``PAR1``) or a .parquet/.pq name, else "csv"."""
    if content[:4] == b"PAR1":
        return "parquet"
    name = (filename or "").lower()
    return "parquet" if name.endswith((".parquet", ".pq")) else "csv"
