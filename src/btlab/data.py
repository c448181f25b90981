"""Datasets (SPEC §1): loading and validating bars, the content hash, calendars, the synthetic provider.

A `Dataset` is one symbol at one timeframe: `ts` (int64 ns, UTC) and float64 `open`, `high`, `low`,
`close`, `volume` (read-only arrays), an optional `adj_close`, and its metadata. Every loader goes
through `from_dataframe`, which applies every rejection rule and raises a `DataError` naming the
rule and the first offending rows (0-based data rows, header excluded). Loading never writes.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import math
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import BaseModel, ConfigDict, Field

from btlab.kernels.synthetic import garch_returns_nb

from .datafiles import MAX_COLUMNS, read_csv, read_parquet
from .errors import DataError
from .hashing import rng_for

if TYPE_CHECKING:
    from .config import DataConfig, SyntheticData

PRICE_COLUMNS = ("open", "high", "low", "close")
REQUIRED_COLUMNS = ("ts", *PRICE_COLUMNS, "volume")
TS_ALIASES = ("ts", "date", "datetime", "timestamp", "time")
ADJ_ALIASES = ("adj_close", "adj close", "adjclose", "adjusted_close", "adjusted close")
MAX_REPORTED_ROWS = 5
NS_PER_SECOND = 1_000_000_000
DAY_SECONDS = 86_400
EQUITY_SESSION_SECONDS = 23_400  # 6.5 h; intraday equity sessions start 14:30 UTC
EQUITY_SESSION_OPEN_SECONDS = 14 * 3600 + 1800
HASH_FORMAT = b"btlab-dataset-v1"

Calendar = Literal["equities", "24x7"]


class DatasetMeta(BaseModel):
    """What a dataset is, beyond its bars; stored with it and listed by the service."""

    model_config = ConfigDict(frozen=True)

    id: str = Field(description="Content hash (sha256 of the canonical bytes of the bars).")
    symbol: str = Field(description="Symbol name.")
    timeframe: str = Field(description="Bar length, e.g. 1m, 1h, 1d.")
    calendar: Calendar = Field(description="'equities' (weekdays) or '24x7'.")
    periods_per_year: float = Field(description="Bars per year implied by timeframe and calendar.")
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
# Timeframes and calendars

_TF_UNITS = {"s": 1, "m": 60, "h": 3600, "d": DAY_SECONDS, "w": 7 * DAY_SECONDS}
_TF_RE = re.compile(r"^\s*(\d+)\s*(s|m|min|h|d|w)\s*$", re.IGNORECASE)


def parse_timeframe(timeframe: str) -> int:
    """Seconds per bar of a timeframe string like `1m`, `15m`, `1h`, `4h`, `1d`, `1w`."""
    match = _TF_RE.match(timeframe)
    if not match or int(match.group(1)) <= 0:
        raise DataError(
            "bad_timeframe",
            f"cannot read timeframe {timeframe!r}; use a count and a unit: s, m, h, d or w "
            "(e.g. 5m, 1h, 1d)",
        )
    unit = match.group(2).lower()
    return int(match.group(1)) * _TF_UNITS["m" if unit == "min" else unit]


def format_timeframe(seconds: int) -> str:
    """The shortest timeframe string for a bar length in seconds."""
    for unit, size in (("w", 7 * DAY_SECONDS), ("d", DAY_SECONDS), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def infer_calendar(ts: np.ndarray) -> Calendar:
    """'24x7' where more than 5% of bars fall on a Saturday or Sunday (UTC), else 'equities'."""
    if ts.shape[0] == 0:
        return "equities"
    weekday = (ts // (DAY_SECONDS * NS_PER_SECOND) + 3) % 7  # 1970-01-01 was a Thursday (3)
    return "24x7" if float(np.mean(weekday >= 5)) > 0.05 else "equities"


def infer_timeframe(ts: np.ndarray, calendar: Calendar) -> str:
    """The most common bar spacing, ignoring session and weekend breaks."""
    if ts.shape[0] < 2:
        return "1d"
    diffs = np.diff(ts) // NS_PER_SECOND
    values, counts = np.unique(diffs, return_counts=True)
    step = int(values[np.argmax(counts)])
    if calendar == "equities" and step in (3 * DAY_SECONDS,):  # e.g. weekly-ish Fri->Mon only
        step = DAY_SECONDS
    return format_timeframe(max(step, 1))


def periods_per_year(timeframe: str, calendar: Calendar) -> float:
    """Bars per year: daily equities 252, daily 24x7 365, intraday bars per day times that."""
    seconds = parse_timeframe(timeframe)
    days_per_year = 252.0 if calendar == "equities" else 365.0
    if seconds >= DAY_SECONDS:
        if seconds % (7 * DAY_SECONDS) == 0:
            return 52.0 / (seconds // (7 * DAY_SECONDS))
        return days_per_year / (seconds // DAY_SECONDS)
    if calendar == "equities":
        return math.ceil(EQUITY_SESSION_SECONDS / seconds) * days_per_year
    return (DAY_SECONDS / seconds) * days_per_year


def find_gaps(ts: np.ndarray, timeframe: str, calendar: Calendar) -> tuple[int, float | None]:
    """(count, largest in seconds) of places where the calendar expects bars that are missing.

    24x7: any spacing longer than one bar. Equities: daily and longer bars skip weekends; intraday
    bars skip the overnight break, and a missing weekday between sessions is a gap.
    """
    if ts.shape[0] < 2:
        return 0, None
    step = parse_timeframe(timeframe)
    diffs = np.diff(ts) // NS_PER_SECOND
    if calendar == "24x7" or step >= 7 * DAY_SECONDS:
        is_gap = diffs > step
    else:
        days = (ts // (DAY_SECONDS * NS_PER_SECOND)).astype("datetime64[D]")
        # business days strictly between consecutive bars' dates
        missing_days = np.busday_count(days[:-1], days[1:]) - 1
        missing_days = np.maximum(missing_days, 0)
        same_day = days[1:] == days[:-1]
        if step >= DAY_SECONDS:
            is_gap = missing_days > 0
        else:
            is_gap = (same_day & (diffs > step)) | (~same_day & (missing_days > 0))
    count = int(np.count_nonzero(is_gap))
    return count, (float(diffs[is_gap].max()) if count else None)


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

    cal: Calendar = calendar or infer_calendar(ts)
    tf = timeframe or infer_timeframe(ts, cal)
    parse_timeframe(tf)  # a clear error for a bad explicit timeframe
    return _build(ts, o, h, lo, c, volume, adj_close, symbol=symbol or "DATA", timeframe=tf,
                  calendar=cal, source=source)  # fmt: skip


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
    timeframe: str,
    calendar: Calendar,
    source: str,
    adjusted: bool = False,
) -> Dataset:
    gaps, largest = find_gaps(ts, timeframe, calendar)
    content = dataset_hash(ts, open_, high, low, close, volume, adj_close)
    meta = DatasetMeta(
        id=content,
        symbol=symbol,
        timeframe=timeframe,
        calendar=calendar,
        periods_per_year=periods_per_year(timeframe, calendar),
        rows=int(ts.shape[0]),
        start=datetime.fromtimestamp(int(ts[0]) / NS_PER_SECOND, tz=UTC),
        end=datetime.fromtimestamp(int(ts[-1]) / NS_PER_SECOND, tz=UTC),
        gaps=gaps,
        largest_gap_seconds=largest,
        source=source,
        has_adj_close=adj_close is not None,
        adjusted=adjusted,
    )
    return Dataset(ts, open_, high, low, close, volume, adj_close, meta)


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
    path: str | Path, *, symbol: str | None = None, timeframe: str | None = None
) -> Dataset:
    """A validated Dataset from a CSV file (header row; column names case-insensitive)."""
    p = Path(path)
    frame = _read_guarded(p, _read_csv, "CSV")
    return from_dataframe(frame, symbol=symbol or p.stem, timeframe=timeframe, source="csv")


def load_parquet(
    path: str | Path, *, symbol: str | None = None, timeframe: str | None = None
) -> Dataset:
    """A validated Dataset from a Parquet file (btlab's own files keep their symbol and calendar)."""
    p = Path(path)
    frame = _read_guarded(p, _read_parquet, "Parquet")
    stored = _stored_meta(p)
    return from_dataframe(
        frame,
        symbol=symbol or (stored.get("symbol") if stored else None) or p.stem,
        timeframe=timeframe or (stored.get("timeframe") if stored else None),
        calendar=stored.get("calendar") if stored else None,
        source=str(stored.get("source", "parquet")) if stored else "parquet",
    )


def load_file(
    path: str | Path, *, symbol: str | None = None, timeframe: str | None = None
) -> Dataset:
    """CSV or Parquet by file extension (.parquet/.pq are Parquet, anything else CSV)."""
    p = Path(path)
    if p.suffix.lower() in (".parquet", ".pq"):
        return load_parquet(p, symbol=symbol, timeframe=timeframe)
    return load_csv(p, symbol=symbol, timeframe=timeframe)


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
            "source": meta.source}  # fmt: skip
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
    m = dataset.meta
    return _build(
        dataset.ts, dataset.open * factor, dataset.high * factor, dataset.low * factor,
        dataset.adj_close.copy(), dataset.volume, dataset.adj_close, symbol=m.symbol,
        timeframe=m.timeframe, calendar=m.calendar, source=m.source, adjusted=True,
    )  # fmt: skip


def load(spec: DataConfig, *, resolve_stored: Callable[[str], Dataset] | None = None) -> Dataset:
    """The dataset a request's `data` section names (adjusted where it asks)."""
    source = spec.source
    if source == "synthetic":
        dataset = synthetic(spec)  # type: ignore[arg-type]
    elif source in ("csv", "parquet"):
        reader = load_csv if source == "csv" else load_parquet
        dataset = reader(spec.path, symbol=spec.symbol, timeframe=spec.timeframe)  # type: ignore[union-attr]
    else:
        if resolve_stored is None:
            raise DataError(
                "no_store",
                "stored datasets (data.source = 'dataset') need the btlab service or a Store; "
                "load the file with source 'csv' or 'parquet' instead",
            )
        dataset = resolve_stored(spec.id)  # type: ignore[union-attr]
    return adjust(dataset) if spec.adjust else dataset


# ---------------------------------------------------------------------------------------------
# The synthetic provider


def synthetic_timestamps(start: datetime, n: int, timeframe: str, calendar: Calendar) -> np.ndarray:
    """`n` bar timestamps (int64 ns, UTC) from `start` following the calendar.

    24x7: every `timeframe`. Equities: weekdays only; intraday bars start at 14:30 UTC and run for
    a 6.5 h session; daily bars are stamped at the start's time of day.
    """
    step = parse_timeframe(timeframe)
    origin = pd.Timestamp(start)
    origin = origin.tz_localize("UTC") if origin.tzinfo is None else origin.tz_convert("UTC")
    t0 = int(origin.value)
    if calendar == "24x7" or step >= 7 * DAY_SECONDS:
        return t0 + np.arange(n, dtype=np.int64) * (step * NS_PER_SECOND)
    day_ns = DAY_SECONDS * NS_PER_SECOND
    first_day = np.datetime64(t0 // day_ns, "D")
    if step >= DAY_SECONDS:
        stride = step // DAY_SECONDS
        days = np.busday_offset(first_day, np.arange(n, dtype=np.int64) * stride, roll="forward")
        return days.astype("datetime64[ns]").astype(np.int64) + (t0 % day_ns)
    per_day = math.ceil(EQUITY_SESSION_SECONDS / step)
    n_days = -(-n // per_day)
    days = np.busday_offset(first_day, np.arange(n_days, dtype=np.int64), roll="forward")
    day_ns_values = days.astype("datetime64[ns]").astype(np.int64)
    offsets = EQUITY_SESSION_OPEN_SECONDS * NS_PER_SECOND + np.arange(per_day) * (
        step * NS_PER_SECOND
    )
    return (day_ns_values[:, None] + offsets[None, :]).ravel()[:n]


GARCH_ALPHA = 0.08
GARCH_BETA = 0.90
STUDENT_DF = 5.0


def synthetic(spec: SyntheticData | None = None, **overrides: Any) -> Dataset:
    """The embedded default dataset: seeded, deterministic, no file needed.

    Close follows a random walk in log price with GARCH(1,1) volatility clustering and Student-t
    innovations (fat tails) around the requested annual drift and volatility; each bar gets an
    overnight gap at its open, a high and low beyond the open/close range, and a volume that
    grows with the size of the move; `zero_volume_prob` blanks the volume of random bars.
    Everything comes from the generator seeded by `spec.seed` (not the run's root seed).
    """
    from .config import SyntheticData

    if spec is None or overrides:
        base = spec.model_dump() if spec is not None else {}
        spec = SyntheticData.model_validate({**base, **overrides})
    n = spec.bars
    ppy = periods_per_year(spec.timeframe, spec.calendar)
    rng = rng_for(spec.seed, "synthetic")
    sigma_bar = spec.vol_annual / math.sqrt(ppy)
    # fat-tailed innovations scaled to unit variance
    z = rng.standard_t(STUDENT_DF, n) / math.sqrt(STUDENT_DF / (STUDENT_DF - 2.0))
    mu = spec.drift_annual / ppy
    omega = sigma_bar**2 * (1.0 - GARCH_ALPHA - GARCH_BETA)
    log_ret, sigma = garch_returns_nb(z, mu, omega, GARCH_ALPHA, GARCH_BETA)
    log_ret[0] = 0.0
    log_close = math.log(spec.start_price) + np.cumsum(log_ret)
    close = np.exp(log_close)
    # a share of each bar's move happens at the open (the gap), the rest during the bar
    gap_share = rng.uniform(0.0, 0.3, n)
    prev_close = np.concatenate([close[:1], close[:-1]])
    open_ = prev_close * np.exp(gap_share * log_ret + 0.1 * sigma * rng.standard_normal(n))
    body_high = np.maximum(open_, close)
    body_low = np.minimum(open_, close)
    high = body_high * np.exp(np.abs(rng.standard_normal(n)) * 0.5 * sigma)
    low = body_low * np.exp(-np.abs(rng.standard_normal(n)) * 0.5 * sigma)
    move = np.abs(log_ret) / np.maximum(sigma, 1e-12)
    volume = np.round(1e6 * np.exp(0.3 * rng.standard_normal(n)) * (0.6 + 0.4 * move))
    if spec.zero_volume_prob > 0:
        volume[rng.uniform(0.0, 1.0, n) < spec.zero_volume_prob] = 0.0
    ts = synthetic_timestamps(spec.start, n, spec.timeframe, spec.calendar)
    return _build(ts, open_, high, low, close, volume, None, symbol=spec.symbol,
                  timeframe=format_timeframe(parse_timeframe(spec.timeframe)),
                  calendar=spec.calendar, source="synthetic")  # fmt: skip


def replace(dataset: Dataset, **changes: Any) -> Dataset:
    """A copy of `dataset` with some arrays replaced (metadata kept; the hash follows the content)."""
    return dataclasses.replace(dataset, **changes)
