"""Validation (SPEC §1): a DataFrame to a `Dataset`, every rejection rule with its first rows.

Every loader goes through `from_dataframe`, which applies every rule and raises a `DataError`
naming the rule and the first offending rows (0-based data rows, header excluded).
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from datetime import UTC, datetime
from typing import Literal

import numpy as np
import pandas as pd

from ..datafiles import MAX_COLUMNS
from ..errors import DataError
from ..timeframes import CALENDARS, Calendar, canonical_timeframe, describe
from .meta import NS_PER_SECOND, Dataset, DatasetMeta, dataset_hash

PRICE_COLUMNS = ("open", "high", "low", "close")
REQUIRED_COLUMNS = ("ts", *PRICE_COLUMNS, "volume")
TS_ALIASES = ("ts", "date", "datetime", "timestamp", "time")
ADJ_ALIASES = ("adj_close", "adj close", "adjclose", "adjusted_close", "adjusted close")
#: Columns with a meaning of their own; every other numeric column is kept as an extra column.
KNOWN_COLUMNS = (*REQUIRED_COLUMNS, "adj_close", "symbol")
MAX_REPORTED_ROWS = 5
#: The code of the dataset warning that names the extra columns left out (not numeric).
IGNORED_COLUMNS = "ignored_columns"


def _first_rows(mask: np.ndarray) -> list[int]:
    return [int(i) for i in np.flatnonzero(mask)[:MAX_REPORTED_ROWS]]


def _normalize_columns(df: pd.DataFrame) -> pd.DataFrame:
    """Stripped column names, the known ones (and ts/adj_close aliases) lower-cased and mapped;
    a datetime index kept."""
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
    # an extra column keeps its own spelling (stripped): a strategy names it as the file does
    originals = [str(c).strip() for c in frame.columns]
    recognised = (*KNOWN_COLUMNS, *TS_ALIASES)
    renamed = [n if n in recognised else originals[i] for i, n in enumerate(renamed)]
    if len(renamed) > MAX_COLUMNS:
        raise DataError(
            "too_many_columns", f"the data has {len(renamed)} columns; at most {MAX_COLUMNS}"
        )
    counts = Counter(renamed)  # one pass: list.count per column was quadratic
    duplicated = sorted(n for n, count in counts.items() if count > 1)
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


def _is_saved_index(name: str) -> bool:
    """pandas' name for an index written into a file without a name ("Unnamed: 0")."""
    head, sep, tail = name.partition(":")
    return head.strip().lower() == "unnamed" and bool(sep) and tail.strip().isdigit()


def _extra_columns(frame: pd.DataFrame) -> tuple[dict[str, np.ndarray], list[str]]:
    """The numeric columns beyond the known ones (booleans as 0/1, NaN kept as missing), and
    the names of those left out: text, dates, and a saved index ("Unnamed: 0")."""
    kept: dict[str, np.ndarray] = {}
    ignored: list[str] = []
    for name in frame.columns:
        name = str(name)
        if name in KNOWN_COLUMNS:
            continue
        column = frame[name]
        values: np.ndarray | None = None
        if _is_saved_index(name) or not name:
            values = None
        elif pd.api.types.is_bool_dtype(column):
            values = column.to_numpy(dtype=np.float64)
        elif pd.api.types.is_numeric_dtype(column):
            values = column.to_numpy(dtype=np.float64, na_value=np.nan)
        elif pd.api.types.is_object_dtype(column) or pd.api.types.is_string_dtype(column):
            numbers = pd.to_numeric(column, errors="coerce")
            if not (numbers.isna() & column.notna()).any():
                values = numbers.to_numpy(dtype=np.float64, na_value=np.nan)
        if values is None:
            ignored.append(name)
            continue
        bad = np.isinf(values)
        if bad.any():
            raise DataError(
                "non_finite_column",
                f"column {name} has infinite values (an extra column may hold NaN, not inf)",
                _first_rows(bad),
            )
        kept[name] = values
    return kept, ignored


def _ignored_warning(ignored: list[str]) -> list[str]:
    if not ignored:
        return []
    names = ", ".join(repr(n) for n in ignored[:MAX_REPORTED_ROWS])
    more = (
        f" and {len(ignored) - MAX_REPORTED_ROWS} more" if len(ignored) > MAX_REPORTED_ROWS else ""
    )
    return [
        f"{IGNORED_COLUMNS}: column(s) {names}{more} are not numeric (or are a "
        "saved index) and were left out: an extra column is kept only where it holds numbers"
    ]


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
    symbols = frame["symbol"] if "symbol" in frame.columns else None
    if isinstance(symbols, pd.Series):
        names = pd.unique(symbols.astype("string").str.strip().dropna())
        if len(names) > 1:
            shown = ", ".join(repr(str(n)) for n in names[:5]) + (", ..." if len(names) > 5 else "")
            raise DataError(
                "many_symbols",
                f"the data holds {len(names):,} symbols ({shown}): a long table is a portfolio; "
                "load it with btlab.portfolio.from_long or load_portfolio",
            )

    ts = _parse_ts(frame["ts"])
    prices = {name: _numeric(frame, name) for name in PRICE_COLUMNS}
    volume = _numeric(frame, "volume")
    adj_close = _numeric(frame, "adj_close") if "adj_close" in frame.columns else None
    extra, ignored = _extra_columns(frame)

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
                  timeframe=timeframe, calendar=calendar, source=source, extra=extra,
                  ignored=ignored)  # fmt: skip


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
    extra: dict[str, np.ndarray] | None = None,
    ignored: list[str] | None = None,
) -> Dataset:
    """A Dataset with its metadata; `timeframe` / `calendar` as declared (None: inferred);
    `extra` its extra columns, `ignored` the names of columns left out (a dataset warning)."""
    extra = extra or {}
    facts = describe(ts, timeframe=timeframe, calendar=calendar)
    content = dataset_hash(ts, open_, high, low, close, volume, adj_close, extra)
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
        extra_columns=sorted(extra),
        inference=facts.inference,
        warnings=[*facts.warnings, *_ignored_warning(ignored or [])],
    )
    return Dataset(ts, open_, high, low, close, volume, adj_close, meta, extra)


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
        "warnings": [*facts.warnings,
                     *(w for w in m.warnings if w.startswith(f"{IGNORED_COLUMNS}:"))],
    })  # fmt: skip
    return dataclasses.replace(dataset, meta=meta)
