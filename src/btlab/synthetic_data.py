"""The synthetic provider (SPEC §1): seeded, deterministic bars that need no file.

Its identity is the hash of its canonical spec and `GENERATOR_VERSION` (see `spec_identity`), so
a request can be hashed without generating a bar. Timestamps follow the spec's calendar and stay
within what pandas can hold (`check_bounds`, used by the config model).
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from btlab.kernels.synthetic import garch_returns_nb

from .errors import DataError
from .hashing import canonical_json, rng_for, sha256_hex
from .timeframes import (
    DAY_NS,
    DAY_SECONDS,
    NS_PER_SECOND,
    Calendar,
    Timeframe,
    nominal_bars_per_day,
    periods_per_year,
    read_timeframe,
)

if TYPE_CHECKING:
    from .config import SyntheticData
    from .data import Dataset

#: Bump when the same spec would generate other bars: it is part of the synthetic identity.
GENERATOR_VERSION = 1
#: Intraday synthetic equity sessions open at 14:30 UTC.
EQUITY_SESSION_OPEN_SECONDS = 14 * 3600 + 1800
#: The most bars one request may generate: a run holds about 20 float64 arrays of its length
#: (bars, features, the kernel's outputs), so 10M bars is ~1.6 GB of memory.
MAX_BARS = 10_000_000
#: The spec fields that do not change the bars (a label, and an option that only errors).
_LABEL_FIELDS = ("symbol", "adjust")

GARCH_ALPHA = 0.08
GARCH_BETA = 0.90
STUDENT_DF = 5.0

_TS_MIN = int(pd.Timestamp.min.value)
_TS_MAX = int(pd.Timestamp.max.value)


def spec_identity(spec: SyntheticData) -> str:
    """The synthetic dataset's identity: sha256 of its canonical spec (labels left out, the
    timeframe in its canonical spelling) and the generator version; no bar is generated."""
    fields = spec.model_dump(mode="json", exclude=set(_LABEL_FIELDS))
    fields["timeframe"] = str(read_timeframe(spec.timeframe))
    text = canonical_json({"generator": f"btlab-synthetic-v{GENERATOR_VERSION}", "spec": fields})
    return sha256_hex(text.encode())


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


def generate(spec: SyntheticData | None = None, **overrides: Any) -> Dataset:
    """The embedded default dataset: seeded, deterministic, no file needed.

    Close follows a random walk in log price with GARCH(1,1) volatility clustering and Student-t
    innovations (fat tails) around the requested annual drift and volatility; each bar gets an
    overnight gap at its open, a high and low beyond the open/close range, and a volume that
    grows with the size of the move; `zero_volume_prob` blanks the volume of random bars.
    Everything comes from the generator seeded by `spec.seed` (not the run's root seed).
    """
    from .config import SyntheticData
    from .data import _build, check_timestamps

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
    ts = timestamps(spec.start, n, spec.timeframe, spec.calendar)
    check_timestamps(ts)  # §1 holds for generated bars too
    if not np.isfinite(close).all():
        raise DataError(
            "non_finite_price",
            f"the synthetic close overflowed ({n:,} bars with drift {spec.drift_annual} and "
            f"volatility {spec.vol_annual}); use fewer bars or milder parameters",
        )
    return _build(ts, open_, high, low, close, volume, None, symbol=spec.symbol,
                  timeframe=spec.timeframe, calendar=spec.calendar, source="synthetic")  # fmt: skip
