"""Files (SPEC §1): CSV and Parquet files and uploaded bytes to a `Dataset`, and Parquet out.

Loading never writes; a file that cannot be read is a `DataError` naming the file.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from ..datafiles import read_csv, read_parquet
from ..errors import DataError
from ..timeframes import Calendar
from .frames import from_dataframe
from .meta import Dataset


def _read_guarded(path: Path, reader: Callable[[Path], pd.DataFrame], kind: str) -> pd.DataFrame:
    if not path.exists():
        raise DataError("file_not_found", f"no such file: {path}")
    if path.is_dir():
        raise DataError(
            "unreadable_file",
            f"{path} is a folder, not a file: a folder of files is a portfolio (load it with "
            "btlab.portfolio.load_portfolio or load_folder)",
        )
    if not path.is_file():
        raise DataError("unreadable_file", f"not a regular file: {path}")
    try:
        return reader(path)
    except DataError:
        raise
    except pd.errors.EmptyDataError:
        raise DataError("empty", f"{path} is empty") from None
    except (
        OSError,
        ValueError,
        pa.ArrowException,
        UnicodeDecodeError,
        pd.errors.ParserError,
    ) as exc:
        raise DataError("unreadable_file", f"cannot read {path} as {kind}: {exc}") from None


def _read_csv(source: Path | io.BytesIO) -> pd.DataFrame:
    return read_csv(source)


def _read_parquet(source: Path | io.BytesIO) -> pd.DataFrame:
    return read_parquet(source)


PARQUET_SUFFIXES = (".parquet", ".pq")


def read_frame(path: str | Path, *, fmt: str | None = None) -> pd.DataFrame:
    """A CSV or Parquet file's frame, not yet validated (`fmt` None: by the file's extension,
    .parquet/.pq Parquet, anything else CSV); a DataError naming the file where it cannot be read."""
    p = Path(path)
    if fmt is None:
        fmt = "parquet" if p.suffix.lower() in PARQUET_SUFFIXES else "csv"
    if fmt == "parquet":
        return _read_guarded(p, _read_parquet, "Parquet")
    return _read_guarded(p, _read_csv, "CSV")


def load_csv(
    path: str | Path,
    *,
    symbol: str | None = None,
    timeframe: str | None = None,
    calendar: Calendar | None = None,
) -> Dataset:
    """A validated Dataset from a CSV file (header row; column names case-insensitive)."""
    p = Path(path)
    frame = _read_guarded(p, _read_csv, "CSV")
    return from_dataframe(
        frame, symbol=symbol or p.stem, timeframe=timeframe, calendar=calendar, source="csv"
    )


def load_parquet(
    path: str | Path,
    *,
    symbol: str | None = None,
    timeframe: str | None = None,
    calendar: Calendar | None = None,
) -> Dataset:
    """A validated Dataset from a Parquet file (btlab's own files keep their symbol and what was
    declared of their timeframe and calendar)."""
    p = Path(path)
    frame = _read_guarded(p, _read_parquet, "Parquet")
    stored = _stored_meta(p) or {}

    def kept(name: str) -> Any:
        # files written before the `*_declared` flags hold values that were all taken as given
        return stored.get(name) if stored.get(f"{name}_declared", True) else None

    return from_dataframe(
        frame,
        symbol=symbol or stored.get("symbol") or p.stem,
        timeframe=timeframe or kept("timeframe"),
        calendar=calendar or kept("calendar"),
        source=str(stored.get("source", "parquet")),
    )


def load_file(
    path: str | Path,
    *,
    symbol: str | None = None,
    timeframe: str | None = None,
    calendar: Calendar | None = None,
) -> Dataset:
    """CSV or Parquet by file extension (.parquet/.pq are Parquet, anything else CSV)."""
    p = Path(path)
    reader = load_parquet if p.suffix.lower() in PARQUET_SUFFIXES else load_csv
    return reader(p, symbol=symbol, timeframe=timeframe, calendar=calendar)


def load_bytes(
    content: bytes,
    *,
    fmt: str,
    symbol: str | None = None,
    timeframe: str | None = None,
) -> Dataset:
    """A validated Dataset from the bytes of an uploaded CSV or Parquet file."""
    frame = read_bytes(content, fmt=fmt)
    return from_dataframe(frame, symbol=symbol or "DATA", timeframe=timeframe, source=fmt)


def read_bytes(content: bytes, *, fmt: str) -> pd.DataFrame:
    """The frame of an uploaded CSV or Parquet file's bytes, not yet validated; a DataError
    naming the rule where it cannot be read (empty, unreadable, ragged rows, too wide)."""
    if not content:
        raise DataError("empty", "the upload is empty")
    if fmt not in ("csv", "parquet"):
        raise DataError("unreadable_file", f"unknown format {fmt!r}; use csv or parquet")
    reader = _read_csv if fmt == "csv" else _read_parquet
    try:
        frame = reader(io.BytesIO(content))
    except DataError:
        raise
    except pd.errors.EmptyDataError:
        raise DataError("empty", "the upload has no rows") from None
    except (
        OSError,
        ValueError,
        pa.ArrowException,
        UnicodeDecodeError,
        pd.errors.ParserError,
    ) as exc:
        raise DataError("unreadable_file", f"cannot read the upload as {fmt}: {exc}") from None
    return frame


_META_KEY = b"btlab.dataset"


def _stored_meta(path: Path) -> dict[str, Any] | None:
    try:
        raw = pq.read_schema(path).metadata or {}
    except (OSError, pa.ArrowException):
        return None
    if _META_KEY not in raw:
        return None
    import json

    value = json.loads(raw[_META_KEY])
    return value if isinstance(value, dict) else None


def save_parquet(dataset: Dataset, path: str | Path) -> None:
    """Write the bars and extra columns (and symbol/timeframe/calendar in the schema metadata)
    to a Parquet file."""
    import json

    columns: dict[str, Any] = {
        "ts": pa.array(dataset.ts.astype("datetime64[ns]"), pa.timestamp("ns", tz="UTC"))
    }
    for name in ("open", "high", "low", "close", "volume"):
        columns[name] = pa.array(np.asarray(getattr(dataset, name)))
    if dataset.adj_close is not None:
        columns["adj_close"] = pa.array(np.asarray(dataset.adj_close))
    for name, values in dataset.extra.items():  # read back as extra columns by from_dataframe
        columns[name] = pa.array(np.asarray(values))
    meta = dataset.meta
    info = {"symbol": meta.symbol, "timeframe": meta.timeframe, "calendar": meta.calendar,
            "source": meta.source, "timeframe_declared": meta.timeframe_declared,
            "calendar_declared": meta.calendar_declared}  # fmt: skip
    table = pa.table(columns).replace_schema_metadata({_META_KEY: json.dumps(info).encode()})
    pq.write_table(table, path, compression="zstd")
