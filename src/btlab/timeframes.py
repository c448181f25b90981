"""Timeframes, calendars and annualisation: what a dataset's timestamps say about its bars.

A timeframe is a count and a unit: `s`, `m` (minute), `h`, `d`, `w`, and the calendar units `mo`
(month) and `q` (quarter), whose bars have variable length. A capital `M` is refused as ambiguous
(a month to some, a minute once lower-cased). A calendar says which hours carry bars: `equities`
(exchange sessions on weekdays, 252 days a year), `24x5` (weekdays round the clock, as FX: 260
days) and `24x7` (every day: 365). `describe` infers both from the timestamps — the most common
spacing, which weekdays carry bars, the median count of bars per active day — and records the
evidence, the annualisation it implies and any contradiction with a declared value.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from .errors import DataError

NS_PER_SECOND = 1_000_000_000
DAY_SECONDS = 86_400
WEEK_SECONDS = 7 * DAY_SECONDS
DAY_NS = DAY_SECONDS * NS_PER_SECOND
#: Nominal length of a month (a Gregorian year / 12), for calendar bars' nominal seconds.
MONTH_SECONDS = 2_629_746
#: Intraday equity sessions are 6.5 h (the synthetic provider's session; the nominal bar count
#: where the data cannot say).
EQUITY_SESSION_SECONDS = 23_400

Calendar = Literal["equities", "24x5", "24x7"]
CALENDARS: tuple[Calendar, ...] = ("equities", "24x5", "24x7")

#: Active days a year each calendar annualises with (see docs/concepts.md, "Calendars").
DAYS_PER_YEAR: dict[str, float] = {"equities": 252.0, "24x5": 260.0, "24x7": 365.0}

#: A weekday "carries bars" when it holds at least this share of the busiest weekday's bars
#: (FX's Sunday-evening open holds ~10% of a weekday's and does not count).
CARRYING_SHARE = 0.25
#: Bars per active day spanning at least this many hours are round the clock (FX Fridays close
#: at 21:00-22:00 UTC; an exchange session is 6-9 h).
ROUND_THE_CLOCK_HOURS = 20.0

#: Fewer active days than this cannot say how long a session is: the nominal 6.5 h is used.
MIN_ACTIVE_DAYS = 3

_FIXED_UNITS = {"s": 1, "m": 60, "min": 60, "h": 3600, "d": DAY_SECONDS, "w": WEEK_SECONDS}
_MONTH_UNITS = {"mo": 1, "q": 3}
_TF_RE = re.compile(r"^\s*(\d+)\s*([A-Za-z]+)\s*$")
_WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def _bad_timeframe(timeframe: str, why: str) -> DataError:
    return DataError("bad_timeframe", f"cannot read timeframe {timeframe!r}: {why}")


@dataclass(frozen=True)
class Timeframe:
    """A bar length: `seconds` for fixed units, `months` (> 0) for calendar bars."""

    seconds: int
    months: int = 0

    def __str__(self) -> str:
        if self.months:
            return f"{self.months // 3}q" if self.months % 3 == 0 else f"{self.months}mo"
        for unit, size in (("w", WEEK_SECONDS), ("d", DAY_SECONDS), ("h", 3600), ("m", 60)):
            if self.seconds % size == 0:
                return f"{self.seconds // size}{unit}"
        return f"{self.seconds}s"

    @property
    def nominal_seconds(self) -> int:
        return self.months * MONTH_SECONDS if self.months else self.seconds

    @property
    def intraday(self) -> bool:
        return not self.months and self.seconds < DAY_SECONDS


def read_timeframe(timeframe: str) -> Timeframe:
    """A Timeframe from text like `1m`, `15m`, `1h`, `1d`, `1w`, `1mo`, `1q` (a clear error else)."""
    match = _TF_RE.match(timeframe)
    units = "s, m (minute), h, d, w, mo (month) or q (quarter)"
    if not match:
        raise _bad_timeframe(timeframe, f"use a count and a unit: {units} (e.g. 5m, 1h, 1d, 1mo)")
    count, unit = int(match.group(1)), match.group(2)
    if unit == "M":
        raise _bad_timeframe(
            timeframe, "'M' is ambiguous; write 'mo' for a month or 'm' for a minute"
        )
    unit = unit.lower()
    if count <= 0:
        raise _bad_timeframe(timeframe, "the count must be at least 1")
    if unit in _MONTH_UNITS:
        return Timeframe(0, count * _MONTH_UNITS[unit])
    if unit not in _FIXED_UNITS:
        raise _bad_timeframe(timeframe, f"unknown unit {unit!r}; use {units}")
    return Timeframe(count * _FIXED_UNITS[unit])


def parse_timeframe(timeframe: str) -> int:
    """Seconds per bar of a timeframe (nominal for months and quarters: a year / 12 per month)."""
    return read_timeframe(timeframe).nominal_seconds


def canonical_timeframe(timeframe: str) -> str:
    """The shortest spelling of a timeframe: `60m` is `1h`, `3mo` is `1q`."""
    return str(read_timeframe(timeframe))


def format_timeframe(seconds: int) -> str:
    """The shortest timeframe string for a fixed bar length in seconds."""
    return str(Timeframe(seconds))


def periods_per_year(
    timeframe: str, calendar: Calendar, bars_per_day: float | None = None
) -> float:
    """Bars per year: monthly 12, quarterly 4, weekly 52, daily the calendar's days a year
    (equities 252, 24x5 260, 24x7 365), intraday bars per active day times those days.

    `bars_per_day` is the count the data shows (see `describe`); without it, a session calendar
    assumes a 6.5 h session and round-the-clock calendars a full day of bars.
    """
    tf = read_timeframe(timeframe)
    if tf.months:
        return 12.0 / tf.months
    seconds = tf.seconds
    if seconds % WEEK_SECONDS == 0:
        return 52.0 / (seconds // WEEK_SECONDS)
    days_per_year = DAYS_PER_YEAR[calendar]
    if seconds >= DAY_SECONDS:
        return days_per_year / (seconds // DAY_SECONDS)
    if bars_per_day is None:
        bars_per_day = nominal_bars_per_day(tf, calendar)
    return bars_per_day * days_per_year


def nominal_bars_per_day(tf: Timeframe, calendar: Calendar) -> float:
    """Bars in one active day of the calendar: a 6.5 h session for equities, else a whole day."""
    if calendar == "equities":
        return float(math.ceil(EQUITY_SESSION_SECONDS / tf.seconds))
    return DAY_SECONDS / tf.seconds


# ---------------------------------------------------------------------------------------------
# Reading the timestamps


def _weekday(days: np.ndarray) -> np.ndarray:
    return (days + 3) % 7  # 1970-01-01 was a Thursday; Monday is 0


def _month_index(ts: np.ndarray) -> np.ndarray:
    return np.asarray(ts.astype("datetime64[ns]").astype("datetime64[M]").astype(np.int64))


def _mode(values: np.ndarray) -> tuple[int, float]:
    """(most common value, its share)."""
    uniq, counts = np.unique(values, return_counts=True)
    k = int(np.argmax(counts))
    return int(uniq[k]), float(counts[k]) / float(values.shape[0])


def infer_timeframe(ts: np.ndarray) -> tuple[Timeframe, float]:
    """(bar length, share of spacings that match it): the most common spacing; bars spaced by
    about a month or more are calendar bars counted in months (month-start and month-end
    stamps alike)."""
    if ts.shape[0] < 2:
        return Timeframe(DAY_SECONDS), 0.0
    diffs = np.diff(ts) // NS_PER_SECOND
    if float(np.median(diffs)) >= 26 * DAY_SECONDS:
        months = np.diff(_month_index(ts))
        step, _ = _mode(months[months > 0]) if (months > 0).any() else (1, 0.0)
        return Timeframe(0, step), float(np.mean(months == step))
    step, share = _mode(diffs)
    days = ts // DAY_NS
    if step == 3 * DAY_SECONDS and not (_weekday(days) >= 5).any():
        step = DAY_SECONDS  # daily weekday bars where Fri->Mon dominates
        share = float(np.mean(np.isin(diffs, (DAY_SECONDS, 3 * DAY_SECONDS))))
    return Timeframe(max(step, 1)), share


class DataInference(BaseModel):
    """What the timestamps show, and how the timeframe and calendar were read from them."""

    model_config = ConfigDict(frozen=True)

    timeframe: str = Field(description="The most common bar spacing (months for calendar bars).")
    timeframe_share: float = Field(description="Share of bar spacings equal to that timeframe.")
    calendar: Calendar = Field(description="The calendar the weekdays and bars per day suggest.")
    weekday_bars: list[int] = Field(description="Bars on each weekday (UTC), Monday first.")
    trading_weekdays: list[str] = Field(
        description=f"Weekdays holding at least {CARRYING_SHARE:.0%} of the busiest weekday's bars."
    )
    weekend_bar_share: float = Field(description="Share of bars on a Saturday or Sunday (UTC).")
    active_days: int = Field(description="Days (UTC) with at least one bar.")
    median_bars_per_active_day: float | None = Field(
        description="Median bars per active trading weekday (intraday data; else null)."
    )


@dataclass(frozen=True)
class DataFacts:
    """A dataset's timeframe, calendar and annualisation, with gaps, evidence and warnings."""

    timeframe: str
    calendar: Calendar
    periods_per_year: float
    bars_per_day: float | None
    days_per_year: float | None
    timeframe_declared: bool
    calendar_declared: bool
    gaps: int
    largest_gap_seconds: float | None
    inference: DataInference
    warnings: list[str]


def infer_calendar(ts: np.ndarray, tf: Timeframe | None = None) -> tuple[Calendar, DataInference]:
    """The calendar the bars follow and the evidence: which weekdays carry bars, and (intraday)
    whether the median active weekday holds a session or the whole day."""
    tf = tf or infer_timeframe(ts)[0]
    n = int(ts.shape[0])
    days = ts // DAY_NS
    weekday = _weekday(days)
    weekday_bars = np.bincount(weekday, minlength=7).astype(np.int64)
    weekend_share = float(weekday_bars[5:].sum()) / n if n else 0.0
    busiest = int(weekday_bars.max()) if n else 0
    carrying = [d for d in range(7) if busiest and weekday_bars[d] >= CARRYING_SHARE * busiest]
    if n:
        starts = np.flatnonzero(np.concatenate([[True], days[1:] != days[:-1]]))
        per_day = np.diff(np.append(starts, n))
        day_weekday = weekday[starts]
    else:
        per_day = day_weekday = np.zeros(0, dtype=np.int64)
    median: float | None = None
    if tf.intraday and per_day.size:
        trading = per_day[np.isin(day_weekday, carrying)]
        median = float(np.median(trading if trading.size else per_day))
    calendar: Calendar
    if 5 in carrying or 6 in carrying:
        calendar = "24x7"
    elif median is not None and median * tf.seconds >= ROUND_THE_CLOCK_HOURS * 3600:
        calendar = "24x5"
    else:
        calendar = "equities"
    evidence = DataInference(
        timeframe=str(tf),
        timeframe_share=0.0,
        calendar=calendar,
        weekday_bars=[int(x) for x in weekday_bars],
        trading_weekdays=[_WEEKDAYS[d] for d in carrying],
        weekend_bar_share=weekend_share,
        active_days=int(per_day.size),
        median_bars_per_active_day=median,
    )
    return calendar, evidence


def _weekend_seconds_before(ts_s: np.ndarray) -> np.ndarray:
    """Seconds of FX weekend (Friday 20:00 to Monday 00:00 UTC) from the epoch to each time."""
    window = 52 * 3600
    offset = DAY_SECONDS + 20 * 3600  # the epoch's week starts on a Thursday
    pos = ts_s % WEEK_SECONDS
    out: np.ndarray = (ts_s // WEEK_SECONDS) * window + np.clip(pos - offset, 0, window)
    return out


def find_gaps(ts: np.ndarray, timeframe: str, calendar: Calendar) -> tuple[int, float | None]:
    """(count, largest in seconds) of places where the calendar expects bars that are missing.

    Calendar bars (months, quarters): a spacing of more months than the bar. Weekly and longer,
    or 24x7: any spacing longer than one bar. 24x5 intraday: a spacing longer than one bar once
    the weekend (Friday 20:00 to Monday 00:00 UTC) is taken out. Equities, and daily 24x5: daily
    bars skip weekends; intraday bars skip the overnight break, and a missing weekday between
    sessions is a gap.
    """
    if ts.shape[0] < 2:
        return 0, None
    tf = read_timeframe(timeframe)
    diffs = np.diff(ts) // NS_PER_SECOND
    if tf.months:
        is_gap = np.diff(_month_index(ts)) > tf.months
    elif calendar == "24x7" or tf.seconds >= WEEK_SECONDS:
        is_gap = diffs > tf.seconds
    elif calendar == "24x5" and tf.intraday:
        weekend = np.diff(_weekend_seconds_before(ts // NS_PER_SECOND))
        is_gap = diffs - weekend > tf.seconds
    else:
        days = (ts // DAY_NS).astype("datetime64[D]")
        # business days strictly between consecutive bars' dates
        missing_days = np.maximum(np.busday_count(days[:-1], days[1:]) - 1, 0)
        same_day = days[1:] == days[:-1]
        if tf.seconds >= DAY_SECONDS:
            is_gap = missing_days > 0
        else:
            is_gap = (same_day & (diffs > tf.seconds)) | (~same_day & (missing_days > 0))
    count = int(np.count_nonzero(is_gap))
    return count, (float(diffs[is_gap].max()) if count else None)


def describe(
    ts: np.ndarray, *, timeframe: str | None = None, calendar: Calendar | None = None
) -> DataFacts:
    """The facts of a dataset's timestamps: declared timeframe and calendar win, inferred ones
    fill in, and a declared value the timestamps contradict gives a warning."""
    n = int(ts.shape[0])
    inferred_tf, share = infer_timeframe(ts)
    tf = read_timeframe(timeframe) if timeframe is not None else inferred_tf
    inferred_cal, evidence = infer_calendar(ts, tf)
    evidence = evidence.model_copy(update={"timeframe": str(inferred_tf), "timeframe_share": share})
    cal: Calendar = calendar or inferred_cal
    bars_per_day: float | None = None
    if tf.intraday:
        median = evidence.median_bars_per_active_day
        if cal == "equities" and median is not None and evidence.active_days >= MIN_ACTIVE_DAYS:
            bars_per_day = median
        else:
            bars_per_day = nominal_bars_per_day(tf, cal)
    days_per_year = DAYS_PER_YEAR[cal] if not tf.months and tf.seconds < WEEK_SECONDS else None
    tf_text = str(tf)
    gaps, largest = find_gaps(ts, tf_text, cal)
    warnings: list[str] = []
    if timeframe is not None and n >= 3 and str(inferred_tf) != tf_text:
        warnings.append(
            f"timeframe_mismatch: declared {tf_text} but the timestamps step by {inferred_tf} "
            f"({share:.0%} of spacings); periods_per_year and gaps follow the declared "
            f"{tf_text}, so {gaps:,} of {n - 1:,} spacings count as gaps"
        )
    short_bars = not tf.months and tf.seconds < WEEK_SECONDS
    # daily weekday bars cannot tell an exchange from FX: declaring either is no contradiction
    daily_weekdays = not tf.intraday and {cal, inferred_cal} <= {"equities", "24x5"}
    if calendar is not None and n >= 3 and short_bars and not daily_weekdays:
        if inferred_cal != cal:
            warnings.append(
                f"calendar_mismatch: declared {cal} but the bars look {inferred_cal} (bars on "
                f"{', '.join(evidence.trading_weekdays) or 'no day'}, "
                f"{evidence.weekend_bar_share:.1%} on weekends"
                + (
                    f", median {evidence.median_bars_per_active_day:g} bars per active day"
                    if evidence.median_bars_per_active_day is not None
                    else ""
                )
                + f"); periods_per_year follows the declared {cal}"
            )
    return DataFacts(
        timeframe=tf_text,
        calendar=cal,
        periods_per_year=periods_per_year(tf_text, cal, bars_per_day),
        bars_per_day=bars_per_day,
        days_per_year=days_per_year,
        timeframe_declared=timeframe is not None,
        calendar_declared=calendar is not None,
        gaps=gaps,
        largest_gap_seconds=largest,
        inference=evidence,
        warnings=warnings,
    )


def inference_text(
    facts_calendar: str, inference: DataInference, bars_per_day: float | None
) -> str:
    """One line saying why the calendar is what it is (for the CLI and the report)."""
    days = ", ".join(inference.trading_weekdays) or "no day"
    parts = [f"bars on {days}", f"{inference.weekend_bar_share:.1%} on weekends"]
    if inference.median_bars_per_active_day is not None:
        parts.append(f"median {inference.median_bars_per_active_day:g} bars per active day")
    if bars_per_day is not None:
        parts.append(f"{bars_per_day:g} bars a day x {DAYS_PER_YEAR[facts_calendar]:g} days")
    return "; ".join(parts)


def data_name(meta: Any, *, named: int = 3) -> str:
    """What a run's data is called: a dataset's symbol, or a portfolio's symbol count and its
    first `named` symbols and last one, e.g. "8 symbols (SYN01, SYN02, SYN03, … SYN08)"."""
    symbols = getattr(meta, "symbols", None)
    if symbols is None:
        return str(meta.symbol)
    names = [str(s) for s in symbols]
    shown = ", ".join(names[:named]) + (f", … {names[-1]}" if len(names) > named else "")
    noun = "symbol" if len(names) == 1 else "symbols"
    return f"{len(names):,} {noun} ({shown})"


def data_summary(meta: Any, *, warnings: bool = True) -> list[str]:
    """What the run took the data to be (timeframe, calendar, annualisation, range) and, unless
    `warnings` is false (a run prints them among its own warnings), the data's warnings."""

    def how(declared: bool) -> str:
        return "declared" if declared else "inferred"

    line = (
        f"data: {data_name(meta)} {meta.timeframe} ({how(meta.timeframe_declared)}), calendar "
        f"{meta.calendar} ({how(meta.calendar_declared)}), periods_per_year "
        f"{meta.periods_per_year:g}, {meta.start:%Y-%m-%d %H:%M} -> {meta.end:%Y-%m-%d %H:%M} UTC, "
        f"{meta.rows:,} bars, {meta.gaps:,} gaps"
    )
    lines = [line]
    if meta.inference is not None:
        lines.append(
            "  evidence: " + inference_text(meta.calendar, meta.inference, meta.bars_per_day)
        )
    if warnings:
        lines += [f"warning: {w}" for w in meta.warnings]
    return lines


#: Calendar rebalance rules (SPEC §8 "Orders"): re-size every symbol at the first clock bar of
#: each new UTC day, ISO week (from Monday), month or quarter.
CALENDAR_REBALANCES = ("daily", "weekly", "monthly", "quarterly")


def rebalance_schedule(ts_ns: np.ndarray, rule: str) -> np.ndarray:
    """Sorted int64 clock bars where a calendar `rule` re-sizes the portfolio: bar 0 and every
    bar whose UTC period (day, Monday-based week, month or quarter) differs from the bar
    before's. A ValueError for a rule that is not one of CALENDAR_REBALANCES."""
    if rule not in CALENDAR_REBALANCES:
        raise ValueError(f"unknown calendar rebalance {rule!r}")
    days = np.floor_divide(np.asarray(ts_ns, dtype=np.int64), DAY_NS)
    if rule == "daily":
        period = days
    elif rule == "weekly":
        period = np.floor_divide(days + 3, 7)  # 1970-01-01 was a Thursday: weeks from Monday
    else:
        months = np.asarray(ts_ns, dtype="datetime64[ns]").astype("datetime64[M]").astype(np.int64)
        period = months if rule == "monthly" else np.floor_divide(months, 3)
    starts = np.flatnonzero(np.diff(period) != 0) + 1
    return np.concatenate([np.zeros(min(1, period.shape[0]), dtype=np.int64), starts]).astype(
        np.int64
    )
