"""Timeframes, calendars and periods per year read from data shaped like each market."""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pandas as pd
import pytest

from btlab import data, sources, synthetic_data
from btlab.config import FileData, StoredData, SyntheticData, parse_config
from btlab.errors import ConfigError, DataError
from btlab.timeframes import read_timeframe


def bars(ts: pd.DatetimeIndex | pd.Series) -> pd.DataFrame:
    """Valid OHLCV bars on the given timestamps."""
    n = len(ts)
    close = 100.0 + np.sin(np.arange(n) / 7.0)
    return pd.DataFrame({"ts": ts, "open": close, "high": close + 1, "low": close - 1,
                         "close": close, "volume": 1000.0})  # fmt: skip


def fx_hours(weeks: int = 52) -> pd.DatetimeIndex:
    """Hourly FX: Sunday 22:00 UTC to Friday 21:00 UTC (the last bar opens at 20:00)."""
    hours = pd.date_range("2023-01-01 22:00", periods=weeks * 7 * 24, freq="h", tz="UTC")
    day, hour = hours.day_of_week, hours.hour
    keep = ((day < 4) | ((day == 4) & (hour < 21)) | ((day == 6) & (hour >= 22))) & (day != 5)
    return hours[keep]


def session(freq: str, open_: str, close: str, days: int = 260) -> pd.DatetimeIndex:
    """Weekday exchange sessions [open, close) at `freq`."""
    out = []
    for day in pd.bdate_range("2023-01-02", periods=days, tz="UTC"):
        out.append(pd.date_range(day + pd.Timedelta(f"{open_}:00"), day + pd.Timedelta(f"{close}:00"),
                                 freq=freq, inclusive="left"))  # fmt: skip
    return out[0].append(out[1:])


def test_hourly_fx_is_24x5_with_260_days_of_24_bars() -> None:
    ts = fx_hours()
    ds = data.from_dataframe(bars(ts))
    m = ds.meta
    assert (m.timeframe, m.calendar) == ("1h", "24x5")
    assert m.bars_per_day == 24 and m.days_per_year == 260
    assert m.periods_per_year == 24 * 260
    # the data holds about as many bars a year as that says (the audit's ~6,200)
    assert abs(len(ts) - m.periods_per_year) / m.periods_per_year < 0.02
    assert m.inference is not None
    assert m.inference.trading_weekdays == ["Mon", "Tue", "Wed", "Thu", "Fri"]
    assert 0.01 < m.inference.weekend_bar_share < 0.03  # Sunday evenings
    assert m.inference.median_bars_per_active_day == 24
    assert m.gaps == 0 and m.warnings == []


def test_a_missing_fx_hour_is_a_gap_but_the_weekend_is_not() -> None:
    ts = fx_hours(4).delete([30, 31])
    ds = data.from_dataframe(bars(ts))
    assert ds.meta.calendar == "24x5"
    assert (ds.meta.gaps, ds.meta.largest_gap_seconds) == (1, 3 * 3600.0)


def test_hourly_crypto_is_24x7() -> None:
    ds = data.from_dataframe(bars(pd.date_range("2023-01-01", periods=24 * 90, freq="h", tz="UTC")))
    assert (ds.meta.timeframe, ds.meta.calendar, ds.meta.periods_per_year) == ("1h", "24x7", 8760)
    assert ds.meta.inference is not None and len(ds.meta.inference.trading_weekdays) == 7


@pytest.mark.parametrize(
    ("freq", "open_", "close", "per_day", "tf"),
    [
        ("5min", "14:30", "21:00", 78, "5m"),  # NYSE
        ("1h", "14:30", "21:00", 7, "1h"),
        ("30min", "08:00", "16:30", 17, "30m"),  # a European session: 8.5 h, not 6.5 h
    ],
)
def test_exchange_sessions_count_their_own_bars_per_day(
    freq: str, open_: str, close: str, per_day: int, tf: str
) -> None:
    ds = data.from_dataframe(bars(session(freq, open_, close, days=60)))
    m = ds.meta
    assert (m.timeframe, m.calendar) == (tf, "equities")
    assert m.bars_per_day == per_day and m.periods_per_year == per_day * 252
    assert m.gaps == 0


def test_a_partial_session_is_too_short_to_count_bars_per_day() -> None:
    ts = pd.date_range("2024-01-03 14:30", periods=5, freq="5min", tz="UTC")
    assert data.from_dataframe(bars(ts)).meta.periods_per_year == 78 * 252  # nominal 6.5 h


@pytest.mark.parametrize(
    ("dates", "tf", "ppy"),
    [
        (pd.date_range("2012-01-31", periods=156, freq="ME", tz="UTC"), "1mo", 12),
        (pd.date_range("2012-01-01", periods=156, freq="MS", tz="UTC"), "1mo", 12),
        (pd.date_range("2012-01-31", periods=120, freq="BME", tz="UTC"), "1mo", 12),
        (pd.date_range("2000-03-31", periods=80, freq="QE", tz="UTC"), "1q", 4),
        (pd.date_range("2000-01-01", periods=80, freq="QS", tz="UTC"), "1q", 4),
        (pd.date_range("2015-01-02", periods=300, freq="W-FRI", tz="UTC"), "1w", 52),
    ],
)
def test_calendar_bars_are_inferred_with_their_periods_per_year(
    dates: pd.DatetimeIndex, tf: str, ppy: float
) -> None:
    ds = data.from_dataframe(bars(dates))
    assert ds.meta.timeframe == tf and ds.meta.periods_per_year == ppy
    assert ds.meta.gaps == 0 and ds.meta.warnings == []


def test_a_missing_month_is_one_gap() -> None:
    dates = pd.date_range("2012-01-31", periods=40, freq="ME", tz="UTC").delete(10)
    ds = data.from_dataframe(bars(dates))
    assert ds.meta.timeframe == "1mo" and ds.meta.gaps == 1


def test_periods_per_year_of_each_unit() -> None:
    assert data.periods_per_year("1mo", "equities") == 12
    assert data.periods_per_year("1mo", "24x7") == 12
    assert data.periods_per_year("3mo", "24x7") == 4 == data.periods_per_year("1q", "24x5")
    assert data.periods_per_year("1w", "24x7") == 52
    assert data.periods_per_year("1d", "24x5") == 260
    assert data.periods_per_year("1h", "24x5") == 24 * 260
    assert data.periods_per_year("30m", "equities", bars_per_day=17) == 17 * 252


def test_timeframe_units_and_the_ambiguous_capital_m() -> None:
    assert str(read_timeframe("1mo")) == "1mo" and str(read_timeframe("3mo")) == "1q"
    assert str(read_timeframe("1Q")) == "1q" and str(read_timeframe("60min")) == "1h"
    assert str(read_timeframe("1m")) == "1m" and read_timeframe("1m").seconds == 60
    with pytest.raises(DataError) as info:
        read_timeframe("1M")
    assert "ambiguous" in str(info.value) and "'mo'" in str(info.value)
    assert "'m'" in str(info.value)
    with pytest.raises(ConfigError) as cfg_info:
        parse_config({"data": {"timeframe": "1M"}})
    assert cfg_info.value.errors[0][0] == "data.timeframe"
    assert "ambiguous" in cfg_info.value.errors[0][1]


def test_a_declared_timeframe_the_timestamps_contradict_is_a_warning() -> None:
    monthly = bars(pd.date_range("2012-01-31", periods=156, freq="ME", tz="UTC"))
    ds = data.from_dataframe(monthly, timeframe="1m")
    assert ds.meta.timeframe == "1m"  # the declaration wins ...
    (warning,) = [w for w in ds.meta.warnings if w.startswith("timeframe_mismatch:")]
    assert "declared 1m" in warning and "1mo" in warning and "155 of 155" in warning
    assert ds.meta.inference is not None and ds.meta.inference.timeframe == "1mo"
    assert data.from_dataframe(monthly, timeframe="1mo").meta.warnings == []


def test_a_declared_calendar_the_bars_contradict_is_a_warning() -> None:
    ds = data.from_dataframe(bars(fx_hours(8)), calendar="equities")
    assert ds.meta.calendar == "equities" and ds.meta.calendar_declared
    assert any(w.startswith("calendar_mismatch: declared equities") for w in ds.meta.warnings)
    crypto = bars(pd.date_range("2023-01-01", periods=200, freq="D", tz="UTC"))
    assert data.from_dataframe(crypto, calendar="24x7").meta.warnings == []


def test_file_and_stored_data_may_set_the_calendar(tmp_path: object) -> None:
    cfg = parse_config({"data": {"source": "csv", "path": "x.csv", "calendar": "24x7"}})
    assert isinstance(cfg.data, FileData) and cfg.data.calendar == "24x7"
    cfg = parse_config({"data": {"source": "dataset", "id": "abc", "calendar": "24x5"}})
    assert isinstance(cfg.data, StoredData) and cfg.data.calendar == "24x5"
    with pytest.raises(ConfigError) as info:
        parse_config({"data": {"source": "csv", "path": "x.csv", "calendar": "weekends"}})
    assert info.value.errors[0][0] == "data.calendar"


def test_a_declared_calendar_on_a_file_changes_its_annualisation(tmp_path: object) -> None:
    from pathlib import Path

    path = Path(str(tmp_path)) / "daily.csv"
    bars(pd.bdate_range("2020-01-01", periods=300, tz="UTC")).to_csv(path, index=False)
    inferred = sources.load(FileData(source="csv", path=str(path)))
    declared = sources.load(FileData(source="csv", path=str(path), calendar="24x5"))
    assert (inferred.meta.calendar, inferred.meta.periods_per_year) == ("equities", 252)
    assert (declared.meta.calendar, declared.meta.periods_per_year) == ("24x5", 260)
    assert declared.meta.warnings == []  # daily weekday bars fit either


# ---------------------------------------------------------------- the synthetic provider


@pytest.mark.parametrize(
    ("tf", "cal", "ppy"),
    [("1h", "24x5", 24 * 260), ("15m", "24x5", 96 * 260), ("1d", "24x5", 260),
     ("1mo", "equities", 12), ("1q", "24x7", 4)],
)  # fmt: skip
def test_synthetic_calendars_agree_with_inference(tf: str, cal: str, ppy: float) -> None:
    ds = synthetic_data.generate(SyntheticData(bars=400, timeframe=tf, calendar=cal))
    assert ds.meta.periods_per_year == ppy and ds.meta.gaps == 0
    again = data.from_dataframe(ds.to_frame())
    assert again.meta.timeframe == ds.meta.timeframe
    assert again.meta.periods_per_year == ppy or (cal == "24x5" and tf == "1d")  # weekday days
    assert ds.meta.warnings == []


def test_synthetic_bars_are_bounded_by_what_the_timeframe_can_hold() -> None:
    with pytest.raises(ConfigError) as info:
        parse_config({"data": {"bars": 70_000}})
    loc, message = info.value.errors[0]
    assert loc == "data.bars" and "2262-04-11" in message and "at most 64,511" in message
    with pytest.raises(ConfigError, match="at most 10,000,000 bars"):
        parse_config({"data": {"bars": 20_000_000, "timeframe": "1m", "calendar": "24x7"}})
    # 2015-01 to 2262-04: 2,967 monthly steps
    with pytest.raises(ConfigError, match="at most 2,968 fit"):
        parse_config({"data": {"bars": 5000, "timeframe": "1mo"}})
    # the last bar that fits is valid and increasing
    ds = synthetic_data.generate(SyntheticData(bars=64_511, start=datetime(2015, 1, 2)))
    assert ds.meta.end.year == 2262 and (np.diff(ds.ts) > 0).all()


def test_synthetic_start_outside_the_pandas_range_is_an_error() -> None:
    with pytest.raises(ConfigError) as info:
        parse_config({"data": {"start": "1500-01-01"}})
    assert info.value.errors[0][0] == "data.start"
    assert "outside the dates pandas can hold" in info.value.errors[0][1]


def test_default_synthetic_data_keeps_252() -> None:
    ds = synthetic_data.generate()
    assert ds.meta.periods_per_year == 252 and ds.meta.calendar == "equities"
    assert ds.meta.timeframe == "1d" and ds.meta.rows == 2520


def test_generated_timestamps_obey_the_import_rules(monkeypatch: pytest.MonkeyPatch) -> None:

    real = synthetic_data.timestamps

    def wrapped(*args: object) -> np.ndarray:
        ts = real(*args).copy()  # type: ignore[arg-type]
        ts[5] = ts[2]  # what an int64 overflow past 2262 looked like: time running backwards
        return ts

    monkeypatch.setattr(synthetic_data, "timestamps", wrapped)
    with pytest.raises(DataError) as info:
        synthetic_data.generate(SyntheticData(bars=50))
    assert info.value.rule == "decreasing_timestamp" and info.value.rows == [5]
