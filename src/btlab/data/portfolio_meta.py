"""What a portfolio dataset is, beyond its bars: the facts of its union clock and each symbol's span.

Each member keeps its own `DatasetMeta`. The portfolio's timeframe is the one its members share
(a member at another timeframe is an error naming it); its calendar and periods per year are
inferred from the union clock by `timeframes.describe`, as a single dataset's are from its bars.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from ..errors import DataError
from ..timeframes import Calendar, DataInference, canonical_timeframe, describe
from .meta import Dataset

NS_PER_SECOND = 1_000_000_000


def _utc(ns: int) -> datetime:
    return datetime.fromtimestamp(ns / NS_PER_SECOND, tz=UTC)


class SymbolSpan(BaseModel):
    """One symbol's place on the union clock: its listing, delisting and missing bars."""

    model_config = ConfigDict(frozen=True)

    symbol: str = Field(description="Symbol name.")
    dataset_id: str = Field(description="The member's content hash (its DatasetMeta.id).")
    rows: int = Field(description="The symbol's own bars.")
    first_bar: int = Field(description="Clock index of its first bar (its listing).")
    last_bar: int = Field(description="Clock index of its last bar.")
    start: datetime = Field(description="Timestamp of its first bar (UTC).")
    end: datetime = Field(description="Timestamp of its last bar (UTC).")
    listed_late: bool = Field(description="Whether it lists after the clock's first bar.")
    delisted: bool = Field(description="Whether its last bar is before the clock's last bar.")
    missing_bars: int = Field(
        description="Clock bars between its first and last bar where it has no bar."
    )


class PortfolioMeta(BaseModel):
    """The facts of a portfolio dataset (SPEC §8 "Data", "Clock")."""

    model_config = ConfigDict(frozen=True)

    id: str = Field(description="The portfolio's identity (its hash over the sorted symbols).")
    symbols: list[str] = Field(description="Symbol names, sorted.")
    timeframe: str = Field(description="Bar length every member shares, e.g. 1d.")
    calendar: Calendar = Field(description="Calendar inferred from (or declared for) the clock.")
    periods_per_year: float = Field(description="Clock bars per year (annualisation).")
    bars_per_day: float | None = Field(None, description="Intraday: clock bars per active day.")
    days_per_year: float | None = Field(None, description="Active days a year of the calendar.")
    timeframe_declared: bool = Field(False, description="Whether the timeframe was given.")
    calendar_declared: bool = Field(False, description="Whether the calendar was given.")
    rows: int = Field(description="Clock bars (the sorted union of every symbol's timestamps).")
    start: datetime = Field(description="The clock's first bar (UTC).")
    end: datetime = Field(description="The clock's last bar (UTC).")
    gaps: int = Field(description="Places where the calendar expects clock bars that are missing.")
    largest_gap_seconds: float | None = Field(description="Longest clock gap, or null.")
    source: str = Field(description="Where the bars came from: synthetic, csv, parquet, ...")
    listings: list[SymbolSpan] = Field(description="Each symbol's span, in symbol order.")
    inference: DataInference | None = Field(None, description="What the clock's timestamps show.")
    warnings: list[str] = Field(default_factory=list, description="Contradictions, 'code: text'.")

    def facts(self) -> dict[str, Any]:
        """The data facts a run depends on, without labels (source, whether declared) or the id."""
        labels = {"id", "source", "timeframe_declared", "calendar_declared"}
        return self.model_dump(mode="json", exclude=labels)


def common_timeframe(
    members: Mapping[str, Dataset], *, origins: Mapping[str, Any] | None = None
) -> str:
    """The timeframe every member has; a DataError naming the symbols that differ from most
    (and the file each came from, where `origins` maps symbols to files)."""
    counts = Counter(m.meta.timeframe for m in members.values())
    usual, _ = max(counts.items(), key=lambda kv: (kv[1], kv[0]))
    odd = sorted((s, m.meta.timeframe) for s, m in members.items() if m.meta.timeframe != usual)
    if odd:
        where = origins or {}
        listed = ", ".join(
            f"{s!r}" + (f" (in {where[s]})" if s in where else "") + f" is {tf}"
            for s, tf in odd[:5]
        )
        more = f" (and {len(odd) - 5} more)" if len(odd) > 5 else ""
        raise DataError(
            "portfolio_timeframe_mismatch",
            f"the symbols of a portfolio share one timeframe: {counts[usual]} of {len(members)} "
            f"are {usual}, but {listed}{more}; declare the timeframe (data.timeframe) where it "
            "was inferred from too few bars, or resample the odd symbol",
        )
    return usual


def portfolio_meta(
    symbols: Sequence[str],
    members: Mapping[str, Dataset],
    ts: np.ndarray,
    positions: Sequence[np.ndarray],
    *,
    portfolio_id: str,
    timeframe: str | None = None,
    calendar: Calendar | None = None,
    source: str | None = None,
) -> PortfolioMeta:
    """The facts of K aligned members; `timeframe` / `calendar` as declared (None: from the data)."""
    shared = common_timeframe(members)
    if timeframe is not None and canonical_timeframe(timeframe) != shared:
        raise DataError(
            "portfolio_timeframe_mismatch",
            f"the portfolio is declared {canonical_timeframe(timeframe)}, but its symbols are "
            f"{shared} (declare the timeframe on the members too)",
        )
    facts = describe(ts, timeframe=shared, calendar=calendar)
    n = int(ts.shape[0])
    listings = []
    for symbol, pos in zip(symbols, positions, strict=True):
        first, last = int(pos[0]), int(pos[-1])
        listings.append(
            SymbolSpan(
                symbol=symbol,
                dataset_id=members[symbol].meta.id,
                rows=int(pos.shape[0]),
                first_bar=first,
                last_bar=last,
                start=_utc(int(ts[first])),
                end=_utc(int(ts[last])),
                listed_late=first > 0,
                delisted=last < n - 1,
                missing_bars=(last - first + 1) - int(pos.shape[0]),
            )
        )
    sources = sorted({m.meta.source for m in members.values()})
    declared = any(m.meta.timeframe_declared for m in members.values()) or timeframe is not None
    return PortfolioMeta(
        id=portfolio_id,
        symbols=list(symbols),
        timeframe=facts.timeframe,
        calendar=facts.calendar,
        periods_per_year=facts.periods_per_year,
        bars_per_day=facts.bars_per_day,
        days_per_year=facts.days_per_year,
        timeframe_declared=declared,
        calendar_declared=calendar is not None,
        rows=n,
        start=_utc(int(ts[0])),
        end=_utc(int(ts[-1])),
        gaps=facts.gaps,
        largest_gap_seconds=facts.largest_gap_seconds,
        source=source or "+".join(sources),
        listings=listings,
        inference=facts.inference,
        warnings=facts.warnings,
    )
