"""A dataset (SPEC §1): its validated bars (`Dataset`), their content hash and the metadata."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from ..timeframes import Calendar, DataInference

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
    extra_columns: list[str] = Field(
        default_factory=list,
        description="Numeric columns beyond OHLCV and adj_close, kept as data (sorted): a "
        "strategy reads them through the `column` feature.",
    )
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
        if not self.extra_columns:  # the facts of data without extra columns stay as they were
            labels.add("extra_columns")
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
    #: Numeric columns beyond OHLCV and adj_close, by name (sorted), float64 (NaN allowed).
    extra: Mapping[str, np.ndarray] = field(default_factory=dict)
    _hash: list[str] = field(default_factory=list, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "ts", _frozen(self.ts, np.int64))
        for name in ("open", "high", "low", "close", "volume"):
            object.__setattr__(self, name, _frozen(getattr(self, name), np.float64))
        if self.adj_close is not None:
            object.__setattr__(self, "adj_close", _frozen(self.adj_close, np.float64))
        extra = {name: _frozen(self.extra[name], np.float64) for name in sorted(self.extra)}
        object.__setattr__(self, "extra", extra)  # a dict, not a proxy: datasets are pickled
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
                    self.ts,
                    self.open,
                    self.high,
                    self.low,
                    self.close,
                    self.volume,
                    self.adj_close,
                    self.extra,
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
        for name, values in self.extra.items():
            cols[name] = np.array(values)
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
    extra: Mapping[str, np.ndarray] | None = None,
) -> str:
    """sha256 over a format tag, the row count, and each column's little-endian bytes in order.

    Only the bars count: the same bars under another symbol name or file are the same content.
    Extra columns follow in name order, each as a tag, its name's length and UTF-8 bytes and its
    values (every NaN as the one quiet NaN), so data without them hashes as it always has.
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
    for name in sorted(extra or {}):
        values = np.asarray((extra or {})[name], dtype=np.float64)
        encoded = name.encode("utf-8")
        h.update(b"extra_column")
        h.update(len(encoded).to_bytes(8, "little"))
        h.update(encoded)
        canonical = np.where(np.isnan(values), np.nan, values + 0.0)
        h.update(np.ascontiguousarray(canonical, dtype="<f8").tobytes())
    return h.hexdigest()
