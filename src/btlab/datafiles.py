"""Reading CSV and Parquet files into frames, with errors that name the rule and the data row.

pandas alone would take minutes over a header of 100,000 columns, fill a short (ragged) row with
NaN (reported later as a "non-finite price"), and name a file line ("line 3") where a data row is
meant. These readers check first what pandas cannot say well: the column count (from the header
or the Parquet footer, before any parsing), binary bytes in a CSV, and rows with fewer or more
fields than the header. Rows are 0-based data rows, header excluded, as in every DataError.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq

from .errors import DataError

#: The most columns a file may have: a dataset needs seven, this leaves room for any extras.
MAX_COLUMNS = 1000

Source = Path | io.BytesIO

_SNIFF_BYTES = 1 << 16


def _label(source: Source) -> str:
    return str(source) if isinstance(source, Path) else "the upload"


def _head(source: Source, size: int) -> bytes:
    if isinstance(source, Path):
        with source.open("rb") as file:
            return file.read(size)
    return source.getvalue()[:size]


def _first_line(source: Source) -> bytes:
    if isinstance(source, io.BytesIO):
        value = source.getvalue()
        end = value.find(b"\n")
        return value if end < 0 else value[:end]
    parts: list[bytes] = []
    with source.open("rb") as file:
        while chunk := file.read(_SNIFF_BYTES):
            end = chunk.find(b"\n")
            if end >= 0:
                parts.append(chunk[:end])
                break
            parts.append(chunk)
    return b"".join(parts)


def _too_many(source: Source, count: int) -> DataError:
    return DataError(
        "too_many_columns",
        f"{_label(source)} has {count} columns; at most {MAX_COLUMNS} are read (a dataset "
        "needs ts, open, high, low, close, volume and optionally adj_close)",
    )


def _records(source: Source) -> Iterator[tuple[int, int, list[str]]]:
    """(data row, file line, fields) of every non-blank record after the header."""
    raw = source.open("rb") if isinstance(source, Path) else io.BytesIO(source.getvalue())
    with raw, io.TextIOWrapper(raw, encoding="utf-8", errors="replace", newline="") as text:
        reader = csv.reader(text, skipinitialspace=True)
        next(reader, None)  # the header
        row = 0
        for fields in reader:
            if not fields:  # a blank line: pandas skips it too
                continue
            yield row, reader.line_num, fields
            row += 1


def _check_header(source: Source) -> int:
    """The header's field count; DataError over `MAX_COLUMNS` or for binary bytes."""
    head = _head(source, _SNIFF_BYTES)
    nul = head.find(b"\x00")
    if nul >= 0:
        raise DataError(
            "unreadable_file",
            f"cannot read {_label(source)} as CSV: it holds binary data (a NUL byte at byte "
            f"{nul}); send a CSV text file, or Parquet",
        )
    first = _first_line(source).decode("utf-8", errors="replace")
    fields = len(next(csv.reader([first]), []))
    if fields > MAX_COLUMNS:  # before pandas spends minutes on it
        raise _too_many(source, fields)
    return fields


def _ragged(source: Source, header: int, *, longer: bool) -> DataError | None:
    """A DataError naming the first data row with fewer (or, `longer`, more) fields."""
    for row, line, fields in _records(source):
        if (len(fields) > header) if longer else (len(fields) < header):
            word = "more" if longer else "fewer"
            return DataError(
                "ragged_row",
                f"data row {row} (line {line} of {_label(source)}) has {len(fields)} fields, "
                f"{word} than the header's {header}",
                [row],
            )
    return None


def _not_utf8(source: Source, exc: UnicodeDecodeError) -> DataError:
    content = _head(source, 1 << 62)
    try:
        content.decode("utf-8")
        at = exc.start
    except UnicodeDecodeError as full:
        at = full.start
    line = content.count(b"\n", 0, at) + 1
    return DataError(
        "unreadable_file",
        f"cannot read {_label(source)} as CSV: it is not UTF-8 text (byte {at}, on line {line})",
    )


def read_csv(source: Source) -> pd.DataFrame:
    """A CSV file's frame (header row; fields may have spaces after the commas)."""
    header = _check_header(source)
    if isinstance(source, io.BytesIO):
        source.seek(0)
    try:
        frame = pd.read_csv(source, skipinitialspace=True)
    except pd.errors.ParserError:
        error = _ragged(source, header, longer=True)
        if error is None:
            raise
        raise error from None
    except UnicodeDecodeError as exc:
        raise _not_utf8(source, exc) from None
    if not isinstance(frame.index, pd.RangeIndex):  # pandas took a longer first row's
        error = _ragged(source, header, longer=True)  # extra field for an index
        if error is not None:
            raise error
    if frame.shape[1] and len(frame) and frame.iloc[:, -1].isna().any():
        # a short row leaves its last fields empty: find it before it passes for missing prices
        error = _ragged(source, header, longer=False)
        if error is not None:
            raise error
    return frame


def read_parquet(source: Source) -> pd.DataFrame:
    """A Parquet file's frame; its column count is checked from the footer first."""
    count = pq.ParquetFile(source).metadata.num_columns
    if count > MAX_COLUMNS:
        raise _too_many(source, count)
    if isinstance(source, io.BytesIO):
        source.seek(0)
    frame: pd.DataFrame = pq.read_table(source).to_pandas()
    return frame
