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
from .portfolio.dataset import MAX_CELLS, MAX_SYMBOLS
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
#: The fields of a portfolio spec (`symbols` > 1, see `btlab.portfolio.synthetic`): at
#: `symbols` = 1 they keep their defaults and stay out of the identity, which is then exactly
#: the single-symbol identity it always was.
PORTFOLIO_FIELDS = ("symbols", "beta_mean", "beta_spread", "idio_vol_annual", "idio_vol_spread",
                    "list_within", "delist_within", "missing_bar_prob")  # fmt: skip

GARCH_ALPHA = 0.08
GARCH_BETA = 0.90
STUDENT_DF = 5.0

_TS_MIN = int(pd.Timestamp.min.value)
_TS_MAX = int(pd.Timestamp.max.value)


def spec_identity(spec: SyntheticData) -> str:
    """The synthetic dataset's identity: sha256 of its canonical spec (labels left out, the
    timeframe in its canonical spelling) and the generator version; no bar is generated."""
    single = spec.symbols == 1
    left_out = {*_LABEL_FIELDS, *PORTFOLIO_FIELDS} if single else set(_LABEL_FIELDS)
    fields = spec.model_dump(mode="json", exclude=left_out)
    if not single:
        fields["symbol_prefix"] = spec.symbol  # the symbols' names are part of the portfolio
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


def check_portfolio_bounds(spec: SyntheticData) -> None:
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


def garch_path(
    rng: np.random.Generator, n: int, mu: float, sigma_bar: float
) -> tuple[np.ndarray, np.ndarray]:
    """`n` log returns (and their GARCH(1,1) volatility) with Student-t innovations scaled to unit
    variance, around the per-bar drift `mu` and unconditional volatility `sigma_bar`."""
    z = rng.standard_t(STUDENT_DF, n) / math.sqrt(STUDENT_DF / (STUDENT_DF - 2.0))
    omega = sigma_bar**2 * (1.0 - GARCH_ALPHA - GARCH_BETA)
    log_ret, sigma = garch_returns_nb(z, mu, omega, GARCH_ALPHA, GARCH_BETA)
    return log_ret, sigma


def bars_from_returns(
    rng: np.random.Generator,
    log_ret: np.ndarray,
    sigma: np.ndarray,
    start_price: float,
    zero_volume_prob: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(open, high, low, close, volume) of a close path with log returns `log_ret` (per-bar
    volatility `sigma`): an overnight gap at each open, a high and low beyond the open/close
    range, a volume that grows with the size of the move, `zero_volume_prob` of bars blanked."""
    n = int(log_ret.shape[0])
    close = np.exp(math.log(start_price) + np.cumsum(log_ret))
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
    if zero_volume_prob > 0:
        volume[rng.uniform(0.0, 1.0, n) < zero_volume_prob] = 0.0
    return open_, high, low, close, volume


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
    if spec.symbols > 1:
        raise DataError(
            "portfolio_spec",
            f"data.symbols = {spec.symbols} describes a portfolio of {spec.symbols} symbols, not "
            "one dataset: load it with btlab.portfolio.load_portfolio",
        )
    n = spec.bars
    ppy = periods_per_year(spec.timeframe, spec.calendar)
    rng = rng_for(spec.seed, "synthetic")
    log_ret, sigma = garch_path(rng, n, spec.drift_annual / ppy, spec.vol_annual / math.sqrt(ppy))
    log_ret[0] = 0.0
    open_, high, low, close, volume = bars_from_returns(
        rng, log_ret, sigma, spec.start_price, spec.zero_volume_prob
    )
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
