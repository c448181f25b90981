"""Datasets (SPEC §1): loading and validating bars, the content hash and the metadata.

Timeframes, calendars and periods per year are read in `timeframes`; the synthetic provider
lives in `synthetic_data`.

A `Dataset` is one symbol at one timeframe: `ts` (int64 ns, UTC) and float64 `open`, `high`, `low`,
`close`, `volume` (read-only arrays), an optional `adj_close`, and its metadata. Every loader goes
through `from_dataframe`, which applies every rejection rule and raises a `DataError` naming the
rule and the first offending rows (0-based data rows, header excluded). Loading never writes.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import BaseModel, ConfigDict, Field

from .datafiles import MAX_COLUMNS, read_csv, read_parquet
from .errors import DataError
from .timeframes import CALENDARS as CALENDARS
from .timeframes import DAY_SECONDS as DAY_SECONDS
from .timeframes import Calendar as Calendar
from .timeframes import DataInference as DataInference
from .timeframes import canonical_timeframe, describe
from .timeframes import find_gaps as find_gaps
from .timeframes import format_timeframe as format_timeframe
from .timeframes import infer_calendar as infer_calendar
from .timeframes import infer_timeframe as infer_timeframe
from .timeframes import parse_timeframe as parse_timeframe
from .timeframes import periods_per_year as periods_per_year
from .timeframes import read_timeframe as read_timeframe

PRICE_COLUMNS = ("open", "high", "low", "close")
REQUIRED_COLUMNS = ("ts", *PRICE_COLUMNS, "volume")
TS_ALIASES = ("ts", "date", "datetime", "timestamp", "time")
ADJ_ALIASES = ("adj_close", "adj close", "adjclose", "adjusted_close", "adjusted close")
MAX_REPORTED_ROWS = 5
NS_PER_SECOND = 1_000_000_000
HASH_FORMAT = b"btlab-dataset-v1"


class DatasetMeta(BaseModel):
    """What a dataset is, beyond its bars; stored with it and listed by the service."""

    model_config = ConfigDict(frozen=True)

    id: str = Field(description="Content hash (sha256 of the canonical bytes of the bars).")
    symbol: str = Field(description="Symbol name.")
    timeframe: str = Field(description="Bar length, e.g. 1m, 1h, 1d, 1w, 1mo, 1q.")
    calendar: Calendar = Field(
        description="'equities' (weekday sessions), '24x5' (weekdays round the clock) or '24x7'."
    )
    periods_per_year: float = Field(
        description="Bars per year implied by timeframe, calendar and bars per active day."
    )
    bars_per_day: float | None = Field(
        None, description="Intraday: bars per active day behind periods_per_year (else null)."
    )
    days_per_year: float | None = Field(
        None, description="Active days a year of the calendar (null for weekly and longer bars)."
    )
    timeframe_declared: bool = Field(
        False, description="Whether the timeframe was given (true) or inferred (false)."
    )
    calendar_declared: bool = Field(
        False, description="Whether the calendar was given (true) or inferred (false)."
    )
    rows: int = Field(description="Number of bars.")
    start: datetime = Field(description="Timestamp of the first bar (UTC).")
    end: datetime = Field(description="Timestamp of the last bar (UTC).")
    gaps: int = Field(description="Number of places where bars the calendar expects are missing.")
    largest_gap_seconds: float | None = Field(
        description="Length of the longest gap (time between the bars around it), or null."
    )
    source: str = Field(description="Where the bars came from: synthetic, csv, parquet, dataframe.")
    has_adj_close: bool = Field(description="Whether an adj_close column is present.")
    adjusted: bool = Field(False, description="Whether OHLC were scaled by adj_close/close.")
    inference: DataInference | None = Field(
        None, description="What the timestamps show: spacing, weekdays with bars, bars per day."
    )
    warnings: list[str] = Field(
        default_factory=list,
        description="Contradictions between declared and observed facts, each 'code: text'.",
    )

    def facts(self) -> dict[str, Any]:
        """The data facts a run depends on, without labels (symbol, source, whether declared)
        or the id (the manifest's dataset_hash)."""
        labels = {"id", "symbol", "source", "timeframe_declared", "calendar_declared"}
        return self.model_dump(mode="json", exclude=labels)


def _frozen(values: np.ndarray, dtype: type) -> np.ndarray:
    """A read-only contiguous array; one that is already read-only is shared, not copied."""
    if (
        isinstance(values, np.ndarray)
        and not values.flags.writeable
        and values.flags.c_contiguous
        and values.dtype == dtype
    ):
        return values
    out: np.ndarray = np.array(values, dtype=dtype, order="C", copy=True)
    out.flags.writeable = False
    return out


@dataclass(frozen=True, eq=False)
class Dataset:
    """Validated bars of one symbol at one timeframe. Arrays are read-only."""

    ts: np.ndarray
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray
    adj_close: np.ndarray | None
    meta: DatasetMeta
    _hash: list[str] = field(default_factory=list, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "ts", _frozen(self.ts, np.int64))
        for name in ("open", "high", "low", "close", "volume"):
            object.__setattr__(self, name, _frozen(getattr(self, name), np.float64))
        if self.adj_close is not None:
            object.__setattr__(self, "adj_close", _frozen(self.adj_close, np.float64))
        # dataclasses.replace() must not inherit a stale cached hash
        object.__setattr__(self, "_hash", [])

    def __len__(self) -> int:
        return int(self.ts.shape[0])

    @property
    def hash(self) -> str:
        """sha256 of the canonical bytes of the bars (see `dataset_hash`)."""
        if not self._hash:
            self._hash.append(
                dataset_hash(
                    self.ts, self.open, self.high, self.low, self.close, self.volume, self.adj_close
                )
            )
        return self._hash[0]

    def to_frame(self) -> pd.DataFrame:
        """The bars as a DataFrame with a tz-aware UTC `ts` column."""
        cols: dict[str, Any] = {"ts": pd.to_datetime(self.ts, unit="ns", utc=True)}
        for name in ("open", "high", "low", "close", "volume"):
            cols[name] = np.array(getattr(self, name))
        if self.adj_close is not None:
            cols["adj_close"] = np.array(self.adj_close)
        return pd.DataFrame(cols)

    def __repr__(self) -> str:
        m = self.meta
        return (
            f"Dataset({m.symbol!r}, {m.timeframe}, {m.rows} bars, {m.start:%Y-%m-%d %H:%M} .. "
            f"{m.end:%Y-%m-%d %H:%M}, hash={self.hash[:12]})"
        )


def dataset_hash(
    ts: np.ndarray,
    open_: np.ndarray,
    high: np.ndarray,
    low: np.ndarray,
    close: np.ndarray,
    volume: np.ndarray,
    adj_close: np.ndarray | None = None,
) -> str:
    """sha256 over a format tag, the row count, and each column's little-endian bytes in order.

    Only the bars count: the same bars under another symbol name or file are the same content.
    """
    h = hashlib.sha256()
    h.update(HASH_FORMAT)
    h.update(int(ts.shape[0]).to_bytes(8, "little"))
    h.update(np.ascontiguousarray(ts, dtype="<i8").tobytes())
    for col in (open_, high, low, close, volume):
        # +0.0 folds -0.0 into 0.0 so equal values hash equal
        h.update(np.ascontiguousarray(col + 0.0, dtype="<f8").tobytes())
    if adj_close is not None:
        h.update(b"adj_close")
        h.update(np.ascontiguousarray(adj_close + 0.0, dtype="<f8").tobytes())
    return h.hexdigest()


# ---------------------------------------------------------------------------------------------
# Validation: a DataFrame to a Dataset


def _first_rows(mask: np.ndarray) -> list[int]:
    return [int(i) for i in np.flatnonzero(mask)[:MAX_REPORTED_ROWS]]


def _normalize_columns(df: pd.DataFrame) -> pd.DataFrame:
    """Lower-cased, stripped column names; ts/adj_close aliases mapped; a datetime index kept."""
    if not isinstance(df, pd.DataFrame):
        raise DataError("not_a_dataframe", f"expected a pandas DataFrame, got {type(df).__name__}")
    frame = df
    names = [str(c).strip().lower() for c in frame.columns]
    index_name = str(frame.index.name).strip().lower() if frame.index.name is not None else None
    if not any(n in TS_ALIASES for n in names) and (
        isinstance(frame.index, pd.DatetimeIndex) or index_name in TS_ALIASES
    ):
        frame = frame.reset_index()
        names = [str(c).strip().lower() for c in frame.columns]
        names[0] = "ts"
    renamed: list[str] = []
    for name in names:
        if name in ADJ_ALIASES:
            name = "adj_close"
        renamed.append(name)
    ts_like = [n for n in renamed if n in TS_ALIASES]
    if "ts" not in renamed and ts_like:
        renamed[renamed.index(ts_like[0])] = "ts"
    if len(renamed) > MAX_COLUMNS:
        raise DataError(
            "too_many_columns", f"the data has {len(renamed)} columns; at most {MAX_COLUMNS}"
        )
    counts = Counter(renamed)  # one pass: list.count per column was quadratic
    duplicated = sorted(n for n in (*REQUIRED_COLUMNS, "adj_close") if counts[n] > 1)
    if duplicated:
        raise DataError(
            "duplicate_columns", f"columns given more than once: {', '.join(duplicated)}"
        )
    out = frame.copy(deep=False)
    out.columns = pd.Index(renamed)
    return out


def _parse_ts(values: pd.Series) -> np.ndarray:
    """UTC int64 nanoseconds; naive timestamps are UTC; numbers are epoch s/ms/us/ns by magnitude."""
    if pd.api.types.is_bool_dtype(values):
        raise DataError("bad_timestamp", "the timestamp column holds booleans", [0])
    if pd.api.types.is_numeric_dtype(values):
        numbers = values.to_numpy(dtype=np.float64, na_value=np.nan)
        bad = ~np.isfinite(numbers)
        if bad.any():
            raise DataError("bad_timestamp", "missing or non-finite timestamps", _first_rows(bad))
        biggest = float(np.abs(numbers).max()) if numbers.size else 0.0
        unit: Literal["s", "ms", "us", "ns"] = (
            "s" if biggest < 1e11 else "ms" if biggest < 1e14 else "us" if biggest < 1e17 else "ns"
        )
        parsed = pd.to_datetime(pd.Series(numbers), unit=unit, utc=True)
        return np.asarray(pd.DatetimeIndex(parsed).as_unit("ns").asi8, dtype=np.int64)
    if isinstance(values.dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_dtype(values):
        parsed_series = pd.to_datetime(values, utc=True)
    else:
        text = values.astype("string")
        try:
            parsed_series = pd.to_datetime(text, utc=True, errors="coerce", format="ISO8601")
        except (ValueError, TypeError):
            parsed_series = pd.to_datetime(text, utc=True, errors="coerce", format="mixed")
        if parsed_series.isna().any() and not text.isna().all():
            # not all ISO 8601: let pandas try each value on its own
            retry = pd.to_datetime(text, utc=True, errors="coerce", format="mixed")
            parsed_series = parsed_series.fillna(retry)
    bad = parsed_series.isna().to_numpy()
    if bad.any():
        raise DataError(
            "bad_timestamp", "missing or unparseable timestamps in column ts", _first_rows(bad)
        )
    return np.asarray(pd.DatetimeIndex(parsed_series).as_unit("ns").asi8, dtype=np.int64)


def check_timestamps(ts: np.ndarray) -> None:
    """The §1 timestamp rules: no duplicates, never decreasing (also for generated bars)."""
    diffs = np.diff(ts)
    bad = np.concatenate([[False], diffs == 0])
    if bad.any():
        raise DataError("duplicate_timestamp", "timestamps appear more than once", _first_rows(bad))
    bad = np.concatenate([[False], diffs < 0])
    if bad.any():
        raise DataError(
            "decreasing_timestamp",
            "timestamps go backwards (sort the rows by time)",
            _first_rows(bad),
        )


def _numeric(frame: pd.DataFrame, name: str) -> np.ndarray:
    column = frame[name]
    if pd.api.types.is_bool_dtype(column):
        raise DataError("non_numeric", f"column {name} holds booleans, not numbers", [0])
    if pd.api.types.is_numeric_dtype(column):
        return column.to_numpy(dtype=np.float64, na_value=np.nan)
    numbers = pd.to_numeric(column, errors="coerce")
    bad = (numbers.isna() & column.notna()).to_numpy()
    if bad.any():
        raise DataError(
            "non_numeric", f"column {name} holds values that are not numbers", _first_rows(bad)
        )
    return numbers.to_numpy(dtype=np.float64, na_value=np.nan)


def _check_prices(name: str, values: np.ndarray) -> None:
    bad = ~np.isfinite(values)
    if bad.any():
        raise DataError(
            "non_finite_price",
            f"column {name} has NaN, missing or infinite values",
            _first_rows(bad),
        )
    bad = values <= 0
    if bad.any():
        raise DataError("non_positive_price", f"column {name} has values <= 0", _first_rows(bad))


def from_dataframe(
    df: pd.DataFrame,
    *,
    symbol: str | None = None,
    timeframe: str | None = None,
    calendar: Calendar | None = None,
    source: str = "dataframe",
) -> Dataset:
    """A validated Dataset from a DataFrame with ts/open/high/low/close/volume (any case).

    `ts` may be a column (or `date`/`datetime`/`timestamp`) or a DatetimeIndex; `adj_close` (or
    `Adj Close`) is kept when present. Timeframe and calendar are inferred when not given.
    """
    frame = _normalize_columns(df)
    missing = [c for c in REQUIRED_COLUMNS if c not in frame.columns]
    if missing:
        have = ", ".join(map(str, frame.columns)) or "none"
        raise DataError(
            "missing_columns", f"missing required columns: {', '.join(missing)} (found: {have})"
        )
    if len(frame) == 0:
        raise DataError("empty", "the data has no rows")

    ts = _parse_ts(frame["ts"])
    prices = {name: _numeric(frame, name) for name in PRICE_COLUMNS}
    volume = _numeric(frame, "volume")
    adj_close = _numeric(frame, "adj_close") if "adj_close" in frame.columns else None

    check_timestamps(ts)
    for name, values in prices.items():
        _check_prices(name, values)
    if adj_close is not None:
        _check_prices("adj_close", adj_close)
    bad = ~np.isfinite(volume)
    if bad.any():
        raise DataError(
            "non_finite_volume",
            "column volume has NaN, missing or infinite values",
            _first_rows(bad),
        )
    bad = volume < 0
    if bad.any():
        raise DataError("negative_volume", "column volume has values < 0", _first_rows(bad))
    o, h, lo, c = prices["open"], prices["high"], prices["low"], prices["close"]
    bad = h < np.maximum(o, c)
    if bad.any():
        raise DataError("high_below_open_close", "high is below max(open, close)", _first_rows(bad))
    bad = lo > np.minimum(o, c)
    if bad.any():
        raise DataError("low_above_open_close", "low is above min(open, close)", _first_rows(bad))

    if calendar is not None and calendar not in CALENDARS:
        raise DataError(
            "bad_calendar", f"unknown calendar {calendar!r}; use one of {', '.join(CALENDARS)}"
        )
    return _build(ts, o, h, lo, c, volume, adj_close, symbol=symbol or "DATA",
                  timeframe=timeframe, calendar=calendar, source=source)  # fmt: skip


def _build(
    ts: np.ndarray,
    open_: np.ndarray,
    high: np.ndarray,
    low: np.ndarray,
    close: np.ndarray,
    volume: np.ndarray,
    adj_close: np.ndarray | None,
    *,
    symbol: str,
    timeframe: str | None,
    calendar: Calendar | None,
    source: str,
) -> Dataset:
    """A Dataset with its metadata; `timeframe` / `calendar` as declared (None: inferred)."""
    facts = describe(ts, timeframe=timeframe, calendar=calendar)
    content = dataset_hash(ts, open_, high, low, close, volume, adj_close)
    meta = DatasetMeta(
        id=content,
        symbol=symbol,
        timeframe=facts.timeframe,
        calendar=facts.calendar,
        periods_per_year=facts.periods_per_year,
        bars_per_day=facts.bars_per_day,
        days_per_year=facts.days_per_year,
        timeframe_declared=facts.timeframe_declared,
        calendar_declared=facts.calendar_declared,
        rows=int(ts.shape[0]),
        start=datetime.fromtimestamp(int(ts[0]) / NS_PER_SECOND, tz=UTC),
        end=datetime.fromtimestamp(int(ts[-1]) / NS_PER_SECOND, tz=UTC),
        gaps=facts.gaps,
        largest_gap_seconds=facts.largest_gap_seconds,
        source=source,
        has_adj_close=adj_close is not None,
        inference=facts.inference,
        warnings=facts.warnings,
    )
    return Dataset(ts, open_, high, low, close, volume, adj_close, meta)


def declare(
    dataset: Dataset, *, timeframe: str | None = None, calendar: Calendar | None = None
) -> Dataset:
    """The dataset with its timeframe and/or calendar declared (the others kept as they were)."""
    m = dataset.meta
    if (timeframe is None or canonical_timeframe(timeframe) == m.timeframe) and (
        calendar is None or calendar == m.calendar
    ):
        return dataset
    facts = describe(
        dataset.ts,
        timeframe=timeframe or (m.timeframe if m.timeframe_declared else None),
        calendar=calendar or (m.calendar if m.calendar_declared else None),
    )
    meta = m.model_copy(update={
        "timeframe": facts.timeframe, "calendar": facts.calendar,
        "periods_per_year": facts.periods_per_year, "bars_per_day": facts.bars_per_day,
        "days_per_year": facts.days_per_year, "timeframe_declared": facts.timeframe_declared,
        "calendar_declared": facts.calendar_declared, "gaps": facts.gaps,
        "largest_gap_seconds": facts.largest_gap_seconds, "inference": facts.inference,
        "warnings": facts.warnings,
    })  # fmt: skip
    return dataclasses.replace(dataset, meta=meta)


# ---------------------------------------------------------------------------------------------
# Files


def _read_guarded(path: Path, reader: Callable[[Path], pd.DataFrame], kind: str) -> pd.DataFrame:
    if not path.exists():
        raise DataError("file_not_found", f"no such file: {path}")
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
    reader = load_parquet if p.suffix.lower() in (".parquet", ".pq") else load_csv
    return reader(p, symbol=symbol, timeframe=timeframe, calendar=calendar)


def load_bytes(
    content: bytes,
    *,
    fmt: str,
    symbol: str | None = None,
    timeframe: str | None = None,
) -> Dataset:
    """A validated Dataset from the bytes of an uploaded CSV or Parquet file."""
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
    return from_dataframe(frame, symbol=symbol or "DATA", timeframe=timeframe, source=fmt)


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
    """Write the bars (and symbol/timeframe/calendar in the schema metadata) to a Parquet file."""
    import json

    columns: dict[str, Any] = {
        "ts": pa.array(dataset.ts.astype("datetime64[ns]"), pa.timestamp("ns", tz="UTC"))
    }
    for name in ("open", "high", "low", "close", "volume"):
        columns[name] = pa.array(np.asarray(getattr(dataset, name)))
    if dataset.adj_close is not None:
        columns["adj_close"] = pa.array(np.asarray(dataset.adj_close))
    meta = dataset.meta
    info = {"symbol": meta.symbol, "timeframe": meta.timeframe, "calendar": meta.calendar,
            "source": meta.source, "timeframe_declared": meta.timeframe_declared,
            "calendar_declared": meta.calendar_declared}  # fmt: skip
    table = pa.table(columns).replace_schema_metadata({_META_KEY: json.dumps(info).encode()})
    pq.write_table(table, path, compression="zstd")


# ---------------------------------------------------------------------------------------------
# Adjustment and sources


def adjust(dataset: Dataset) -> Dataset:
    """OHLC scaled by adj_close/close (volume unchanged); a DataError where there is no adj_close."""
    if dataset.adj_close is None:
        raise DataError(
            "adjust_without_adj_close",
            f"adjust: true needs an adj_close column, and dataset {dataset.meta.symbol!r} has none",
        )
    if dataset.meta.adjusted:
        return dataset
    factor = dataset.adj_close / dataset.close
    open_, high, low = dataset.open * factor, dataset.high * factor, dataset.low * factor
    close = dataset.adj_close.copy()
    content = dataset_hash(dataset.ts, open_, high, low, close, dataset.volume, dataset.adj_close)
    meta = dataset.meta.model_copy(update={"id": content, "adjusted": True})
    return Dataset(dataset.ts, open_, high, low, close, dataset.volume, dataset.adj_close, meta)


def replace(dataset: Dataset, **changes: Any) -> Dataset:
    """A copy of `dataset` with some arrays replaced (metadata kept; the hash follows the content)."""
    return dataclasses.replace(dataset, **changes)
