"""The clock of the synthetic provider: its bar timestamps and the bounds a spec must fit.

Pure calendar arithmetic over a timeframe and a calendar (no bars, no request model), so the
request's `SyntheticData` can check its bounds (`check_bounds`) while `synthetic_data`, which
generates the bars, builds on the request.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

from .timeframes import (
    DAY_NS,
    DAY_SECONDS,
    NS_PER_SECOND,
    Calendar,
    Timeframe,
    nominal_bars_per_day,
    read_timeframe,
)

__all__ = ["MAX_BARS", "BoundsError", "check_bounds", "timestamps"]

#: Intraday synthetic equity sessions open at 14:30 UTC.
EQUITY_SESSION_OPEN_SECONDS = 14 * 3600 + 1800
#: The most bars one request may generate: a run holds about 20 float64 arrays of its length
#: (bars, features, the kernel's outputs), so 10M bars is ~1.6 GB of memory.
MAX_BARS = 10_000_000
#: The most symbols of a portfolio, and of clock bars x symbols: a portfolio run holds about ten
#: (bars, symbols) arrays, so 20M cells is ~1.6 GB, the single-symbol ceiling of MAX_BARS.
MAX_SYMBOLS = 5_000
MAX_CELLS = 20_000_000
#: The fields of a portfolio spec (`symbols` > 1, see `btlab.portfolio.synthetic`): at
#: `symbols` = 1 they keep their defaults and stay out of the identity, which is then exactly
#: the single-symbol identity it always was.
PORTFOLIO_FIELDS = ("symbols", "beta_mean", "beta_spread", "idio_vol_annual", "idio_vol_spread",
                    "list_within", "delist_within", "missing_bar_prob")  # fmt: skip

_TS_MIN = int(pd.Timestamp.min.value)
_TS_MAX = int(pd.Timestamp.max.value)


def _origin_ns(start: datetime) -> int:
    origin = pd.Timestamp(start)
    origin = origin.tz_localize("UTC") if origin.tzinfo is None else origin.tz_convert("UTC")
    return int(origin.value)


def _session(tf: Timeframe, calendar: Calendar) -> tuple[int, int]:
    """(bars per active day, open of the day in seconds) of intraday synthetic bars."""
    if calendar == "equities":
        return int(nominal_bars_per_day(tf, calendar)), EQUITY_SESSION_OPEN_SECONDS
    return DAY_SECONDS // tf.seconds, 0


def _month_start_ns(month_index: np.ndarray) -> np.ndarray:
    months = month_index.astype("datetime64[M]")
    return np.asarray(months.astype("datetime64[D]").astype(np.int64) * DAY_NS)


def _last_ns(start: datetime, n: int, tf: Timeframe, calendar: Calendar) -> int:
    """The last of `n` timestamps, in exact integer arithmetic (beyond int64 where it overflows)."""
    t0 = _origin_ns(start)
    day, time_of_day = divmod(t0, DAY_NS)
    if tf.months:
        month0 = int(np.datetime64(day, "D").astype("datetime64[M]").astype(np.int64))
        last_month = np.datetime64(month0 + (n - 1) * tf.months, "M").astype("datetime64[D]")
        return int(last_month.astype(np.int64)) * DAY_NS + time_of_day
    if calendar == "24x7" or tf.seconds >= 7 * DAY_SECONDS:
        return t0 + (n - 1) * tf.seconds * NS_PER_SECOND
    first_day = np.datetime64(day, "D")
    if tf.seconds >= DAY_SECONDS:
        stride = tf.seconds // DAY_SECONDS
        last = np.busday_offset(first_day, (n - 1) * stride, roll="forward")
        return int(last.astype(np.int64)) * DAY_NS + time_of_day
    per_day, open_s = _session(tf, calendar)
    last = np.busday_offset(first_day, (n - 1) // per_day, roll="forward")
    return (
        int(last.astype(np.int64)) * DAY_NS
        + (open_s + ((n - 1) % per_day) * tf.seconds) * NS_PER_SECOND
    )


class BoundsError(ValueError):
    """Synthetic bars that do not fit: `field` names the spec field to change."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def check_bounds(bars: int, start: datetime, timeframe: str, calendar: Calendar) -> None:
    """A BoundsError naming the field and the reason where `bars` bars from `start` do not fit."""
    if bars > MAX_BARS:
        raise BoundsError(
            "bars",
            f"at most {MAX_BARS:,} bars (a run holds about 20 arrays of this length in memory); "
            f"got {bars:,}",
        )
    try:
        t0 = _origin_ns(start)
    except (OverflowError, ValueError, pd.errors.OutOfBoundsDatetime):
        t0 = _TS_MIN - 1
    if not _TS_MIN <= t0 <= _TS_MAX:
        raise BoundsError(
            "start",
            f"start {start:%Y-%m-%d} is outside the dates pandas can hold "
            f"({pd.Timestamp.min:%Y-%m-%d} to {pd.Timestamp.max:%Y-%m-%d})",
        )
    tf = read_timeframe(timeframe)
    if tf.intraday and calendar != "equities" and DAY_SECONDS % tf.seconds:
        raise BoundsError(
            "timeframe",
            f"a {calendar} synthetic timeframe below a day must divide the day; {tf} does not",
        )
    if _last_ns(start, bars, tf, calendar) <= _TS_MAX:
        return
    lo, hi = 1, bars  # the largest count that fits, by bisection on the exact last timestamp
    while lo < hi:
        mid = (lo + hi + 1) // 2
        lo, hi = (mid, hi) if _last_ns(start, mid, tf, calendar) <= _TS_MAX else (lo, mid - 1)
    raise BoundsError(
        "bars",
        f"{bars:,} bars of {tf} {calendar} from {start:%Y-%m-%d} would end after "
        f"{pd.Timestamp.max:%Y-%m-%d}, the last date pandas can hold; at most {lo:,} fit "
        "(use fewer bars or an earlier start)",
    )


def timestamps(start: datetime, n: int, timeframe: str, calendar: Calendar) -> np.ndarray:
    """`n` bar timestamps (int64 ns, UTC) from `start` following the calendar.

    24x7 (and weekly bars): every `timeframe` from `start`. Months and quarters: the first of each
    month from `start`'s month, at its time of day. Daily equities and 24x5: weekdays at the
    start's time of day. Intraday equities: 6.5 h weekday sessions from 14:30 UTC; intraday
    24x5: weekdays round the clock from 00:00 UTC.
    """
    tf = read_timeframe(timeframe)
    if n:
        check_bounds(n, start, timeframe, calendar)
    t0 = _origin_ns(start)
    day, time_of_day = divmod(t0, DAY_NS)
    steps = np.arange(n, dtype=np.int64)
    if tf.months:
        month0 = int(np.datetime64(day, "D").astype("datetime64[M]").astype(np.int64))
        return _month_start_ns(month0 + steps * tf.months) + time_of_day
    if calendar == "24x7" or tf.seconds >= 7 * DAY_SECONDS:
        return t0 + steps * (tf.seconds * NS_PER_SECOND)
    first_day = np.datetime64(day, "D")
    if tf.seconds >= DAY_SECONDS:
        stride = tf.seconds // DAY_SECONDS
        days = np.busday_offset(first_day, steps * stride, roll="forward")
        return np.asarray(days.astype(np.int64) * DAY_NS + time_of_day)
    per_day, open_s = _session(tf, calendar)
    n_days = -(-n // per_day)
    days = np.busday_offset(first_day, np.arange(n_days, dtype=np.int64), roll="forward")
    offsets = (open_s + np.arange(per_day, dtype=np.int64) * tf.seconds) * NS_PER_SECOND
    return np.asarray((days.astype(np.int64)[:, None] * DAY_NS + offsets[None, :]).ravel()[:n])


def check_portfolio_bounds(spec: Any) -> None:
    """A BoundsError naming the field where a portfolio spec does not fit: too many symbols or
    bars x symbols, a listing window that leaves a symbol fewer than 2 bars, or a portfolio field
    set on a single-symbol spec."""
    if spec.symbols == 1:
        for name in PORTFOLIO_FIELDS[1:]:
            if getattr(spec, name) != type(spec).model_fields[name].default:
                raise BoundsError(
                    name, "applies to a portfolio only (symbols > 1); leave it out for one symbol"
                )
        return
    if spec.symbols > MAX_SYMBOLS:
        raise BoundsError(
            "symbols", f"at most {MAX_SYMBOLS:,} symbols in a portfolio; got {spec.symbols:,}"
        )
    cells = spec.bars * spec.symbols
    if cells > MAX_CELLS:
        raise BoundsError(
            "symbols",
            f"bars x symbols is at most {MAX_CELLS:,} (a portfolio run holds about ten arrays of "
            f"bars x symbols in memory); {spec.bars:,} x {spec.symbols:,} is {cells:,}",
        )
    shortest = spec.bars - int(spec.list_within * spec.bars) - int(spec.delist_within * spec.bars)
    if shortest < 2:
        raise BoundsError(
            "delist_within" if spec.delist_within else "list_within",
            f"list_within + delist_within leave a symbol {shortest} of {spec.bars:,} bars; a "
            "symbol needs at least 2 (use smaller shares or more bars)",
        )
