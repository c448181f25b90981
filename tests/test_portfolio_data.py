"""Portfolio data (SPEC §8 "Data", "Clock"): every loader, the §1 rules per symbol with the
symbol named, the identity, the union clock, the facts, and the K-symbol synthetic provider."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import btlab
from btlab import data, sources
from btlab import portfolio as pf
from btlab.config import (
    MAX_PORTFOLIO_FILES,
    FileData,
    FileListData,
    StoredData,
    SyntheticData,
    parse_config,
)
from btlab.data import portfolio as pf_dataset
from btlab.errors import ConfigError, DataError
from btlab.portfolio.synthetic import expected_correlation, factor_loadings, listing_spans
from btlab.synthetic_data import spec_identity
from tests.test_data import REJECTIONS, good_frame


def bars(days: list[int], base: float = 100.0) -> pd.DataFrame:
    """Daily bars at the given day offsets from 2024-01-01 (a Monday), prices rising."""
    ts = pd.Timestamp("2024-01-01", tz="UTC") + pd.to_timedelta(days, unit="D")
    close = base + np.arange(len(days), dtype=float)
    return pd.DataFrame(
        {"ts": ts, "open": close - 0.5, "high": close + 1, "low": close - 1, "close": close,
         "volume": np.full(len(days), 1000.0)}
    )  # fmt: skip


def long_table(frames: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """The frames as one long table, rows interleaved by time (then symbol)."""
    parts = [f.assign(symbol=s) for s, f in frames.items()]
    table = pd.concat(parts, ignore_index=True)
    return table.sort_values(["ts", "symbol"], kind="stable").reset_index(drop=True)


WEEKDAYS = [0, 1, 2, 3, 4, 7, 8, 9, 10, 11]  # two weeks of weekday bars


# --- loaders ---------------------------------------------------------------------------------


def test_a_long_table_gives_each_symbol_its_own_validated_dataset() -> None:
    frames = {"BBB": bars(WEEKDAYS, 50.0), "AAA": bars(WEEKDAYS[2:], 20.0)}
    table = long_table(frames).rename(
        columns={"ts": "Date", "symbol": "Symbol", "open": "Open", "close": "CLOSE"}
    )
    port = pf.from_long(table)
    assert port.symbols == ("AAA", "BBB")
    for symbol, frame in frames.items():
        alone = data.from_dataframe(frame, symbol=symbol)
        assert port.members[symbol].hash == alone.hash
        assert port.members[symbol].meta.symbol == symbol
    assert port.meta.source == "dataframe"
    assert len(port) == len(WEEKDAYS)


#: A long table has one set of columns for every symbol and no symbol without rows: those two
#: rules are the whole table's (tested below), the rest are each symbol's.
LONG_REJECTIONS = [r for r in REJECTIONS if r[0] not in ("missing_columns", "empty")]


@pytest.mark.parametrize(("rule", "make", "rows"), LONG_REJECTIONS)
def test_every_rule_broken_in_a_long_table_names_the_symbol_and_the_table_rows(
    rule: str, make, rows: list[int]
) -> None:
    bad = make()
    good = good_frame(len(bad))
    table = pd.concat([good.assign(symbol="GOOD"), bad.assign(symbol="BAD")], ignore_index=True)
    with pytest.raises(DataError) as info:
        pf.from_long(table)
    assert info.value.rule == rule
    assert "symbol 'BAD'" in str(info.value)
    # BAD's rows follow GOOD's in the table: its own row r is the table's row len(good) + r
    assert info.value.rows == [len(good) + r for r in rows]


def test_an_empty_symbol_in_a_long_table_names_the_rows() -> None:
    table = long_table({"A": bars(WEEKDAYS), "B": bars(WEEKDAYS)})
    table.loc[[3, 7], "symbol"] = [None, "  "]
    with pytest.raises(DataError) as info:
        pf.from_long(table)
    assert info.value.rule == "missing_symbol" and info.value.rows == [3, 7]


def test_a_long_table_without_a_symbol_column_or_rows_is_refused() -> None:
    with pytest.raises(DataError, match="needs a symbol column") as info:
        pf.from_long(bars(WEEKDAYS))
    assert info.value.rule == "missing_columns"
    with pytest.raises(DataError) as info:
        pf.from_long(bars(WEEKDAYS).assign(symbol="A").iloc[:0])
    assert info.value.rule == "empty"
    with pytest.raises(DataError) as info:
        pf.from_long(long_table({"A": bars(WEEKDAYS)}).drop(columns=["volume"]))
    assert info.value.rule == "missing_columns" and "symbol 'A'" in str(info.value)


@pytest.mark.parametrize(("rule", "make", "rows"), REJECTIONS)
def test_every_rule_broken_in_a_mapping_names_the_symbol(rule: str, make, rows) -> None:
    with pytest.raises(DataError) as info:
        pf.from_frames({"OK": good_frame(), "XYZ": make()})
    assert info.value.rule == rule
    assert str(info.value).startswith(f"{rule}: symbol 'XYZ': ")
    assert info.value.rows == rows


def test_a_mapping_takes_frames_and_datasets_and_refuses_blank_or_repeated_names() -> None:
    ds = data.from_dataframe(bars(WEEKDAYS), symbol="X")
    port = pf.from_frames({"X": ds, "Y": bars(WEEKDAYS[:5])})
    assert port.members["X"] is ds and port.symbols == ("X", "Y")
    with pytest.raises(DataError, match="non-empty text"):
        pf.from_frames({" ": bars(WEEKDAYS)})
    with pytest.raises(DataError, match="given twice") as info:
        pf.from_frames({"A": bars(WEEKDAYS), " A": bars(WEEKDAYS)})
    assert info.value.rule == "duplicate_symbol"


def _write(frame: pd.DataFrame, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".csv":
        frame.to_csv(path, index=False)
    else:
        frame.to_parquet(path)
    return path


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_files_are_one_symbol_each_named_by_their_stem(tmp_path: Path, suffix: str) -> None:
    a = _write(bars(WEEKDAYS), tmp_path / f"AAA{suffix}")
    b = _write(bars(WEEKDAYS[3:], 7.0), tmp_path / f"BBB{suffix}")
    port = pf.load_files([b, a])
    assert port.symbols == ("AAA", "BBB")
    assert port.members["BBB"].hash == data.load_file(b).hash
    assert port.meta.source == suffix[1:]


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_an_error_in_a_file_names_the_symbol_and_the_file(tmp_path: Path, suffix: str) -> None:
    frame = bars(WEEKDAYS)
    frame.loc[4, "high"] = 1.0
    _write(bars(WEEKDAYS), tmp_path / f"GOOD{suffix}")
    path = _write(frame, tmp_path / f"BAD{suffix}")
    with pytest.raises(DataError) as info:
        pf.load_folder(tmp_path)
    assert info.value.rule == "high_below_open_close" and info.value.rows == [4]
    assert f"symbol 'BAD' in {path}" in str(info.value)


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_a_long_file_is_read_by_its_symbol_column(tmp_path: Path, suffix: str) -> None:
    table = long_table({"A": bars(WEEKDAYS), "B": bars(WEEKDAYS[1:], 9.0)})
    path = _write(table, tmp_path / f"universe{suffix}")
    port = pf.load_path(path)
    assert port.symbols == ("A", "B")
    assert port.members["A"].hash == data.from_dataframe(bars(WEEKDAYS)).hash
    table.loc[6, "volume"] = -1.0
    _write(table, path)
    with pytest.raises(DataError) as info:
        pf.load_files([path])
    assert info.value.rule == "negative_volume" and info.value.rows == [6]
    assert f"symbol '{table.loc[6, 'symbol']}' in {path}" in str(info.value)
    with pytest.raises(DataError, match="long table") as info:
        pf.load_path(path, symbol="X")
    assert info.value.rule == "portfolio_symbol"


def test_long_files_and_single_files_mix_and_a_symbol_in_two_files_names_both(
    tmp_path: Path,
) -> None:
    long = _write(long_table({"A": bars(WEEKDAYS), "B": bars(WEEKDAYS)}), tmp_path / "ab.csv")
    c = _write(bars(WEEKDAYS), tmp_path / "C.parquet")
    assert pf.load_files([long, c]).symbols == ("A", "B", "C")
    again = _write(bars(WEEKDAYS), tmp_path / "other" / "B.csv")
    with pytest.raises(DataError) as info:
        pf.load_files([long, again])
    assert info.value.rule == "duplicate_symbol"
    assert str(long) in str(info.value) and str(again) in str(info.value)
    twin = _write(bars(WEEKDAYS), tmp_path / "sub" / "C.csv")
    with pytest.raises(DataError, match="'C' is in two files") as info:
        pf.load_files([c, twin])
    assert str(c) in str(info.value) and str(twin) in str(info.value)


def test_a_folder_reads_its_data_files_and_two_with_one_stem_is_an_error(tmp_path: Path) -> None:
    _write(bars(WEEKDAYS), tmp_path / "B.csv")
    _write(bars(WEEKDAYS), tmp_path / "A.csv")
    (tmp_path / "notes.txt").write_text("not data")
    (tmp_path / ".hidden.csv").write_text("ts,open\n")
    (tmp_path / "nested").mkdir()
    assert [p.name for p in pf.folder_files(tmp_path)] == ["A.csv", "B.csv"]
    assert pf.load_folder(tmp_path).symbols == ("A", "B")
    _write(bars(WEEKDAYS), tmp_path / "A.parquet")
    assert pf.load_folder(tmp_path, fmt="csv").symbols == ("A", "B")  # by the format's suffix
    with pytest.raises(DataError) as info:
        pf.load_folder(tmp_path)
    assert info.value.rule == "duplicate_symbol"
    assert "A.csv" in str(info.value) and "A.parquet" in str(info.value)
    with pytest.raises(DataError, match=r"holds no \.parquet or \.pq files"):
        pf.load_folder(tmp_path / "nested", fmt="parquet")
    with pytest.raises(DataError, match="no such folder"):
        pf.load_folder(tmp_path / "missing")


def test_one_symbol_loaders_point_a_portfolio_to_the_portfolio_loaders(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="is a folder") as info:
        data.load_csv(tmp_path)
    assert "load_portfolio" in str(info.value)
    with pytest.raises(DataError, match="holds 2 symbols") as info:
        data.from_dataframe(long_table({"A": bars(WEEKDAYS), "B": bars(WEEKDAYS)}))
    assert info.value.rule == "many_symbols"
    # one symbol in a symbol column is one dataset, as before
    assert len(data.from_dataframe(bars(WEEKDAYS).assign(symbol="A"))) == len(WEEKDAYS)


def test_as_portfolio_takes_every_shape_a_caller_hands_in() -> None:
    frames = {"A": bars(WEEKDAYS), "B": bars(WEEKDAYS[2:])}
    port = pf.from_frames(frames)
    assert pf.as_portfolio(port) is port
    assert pf.as_portfolio(frames).hash == port.hash
    assert pf.as_portfolio(long_table(frames)).hash == port.hash
    single = pf.as_portfolio(bars(WEEKDAYS))
    assert single.symbols == ("DATA",) and single.n_symbols == 1
    ds = data.from_dataframe(bars(WEEKDAYS), symbol="Q")
    assert pf.as_portfolio(ds).members["Q"] is ds


# --- identity --------------------------------------------------------------------------------


def test_the_hash_follows_the_symbols_and_bars_not_the_order_they_came_in(tmp_path: Path) -> None:
    frames = {"A": bars(WEEKDAYS), "B": bars(WEEKDAYS[1:], 5.0), "C": bars(WEEKDAYS[:-2], 9.0)}
    reference = pf.from_frames(frames).hash
    assert pf.from_frames(dict(reversed(list(frames.items())))).hash == reference
    table = long_table(frames)
    shuffled = table.sample(frac=1.0, random_state=3).sort_values("ts", kind="stable")
    assert not shuffled["symbol"].equals(table["symbol"])
    assert pf.from_long(shuffled).hash == reference
    by_symbol = table.sort_values(["symbol", "ts"])
    assert pf.from_long(by_symbol).hash == reference
    paths = [_write(f, tmp_path / f"{s}.csv") for s, f in frames.items()]
    assert pf.load_files(paths).hash == pf.load_files(paths[::-1]).hash == reference
    # a renamed symbol or one changed price is another portfolio
    assert pf.from_frames({**frames, "D": frames.pop("C")}).hash != reference
    moved = bars(WEEKDAYS)
    moved.loc[3, "close"] += 0.25
    assert pf.from_frames({"A": moved, "B": bars(WEEKDAYS[1:], 5.0),
                           "C": bars(WEEKDAYS[:-2], 9.0)}).hash != reference  # fmt: skip
    assert (
        pf.from_frames({"A": bars(WEEKDAYS)}).meta.id == pf.from_frames({"A": bars(WEEKDAYS)}).hash
    )


# --- the union clock and the facts -----------------------------------------------------------


def test_the_union_clock_with_listing_delisting_and_gaps() -> None:
    full = WEEKDAYS
    late = WEEKDAYS[3:7]  # lists late, delists early
    gappy = [d for d in WEEKDAYS if d not in (4, 8)]  # two missing bars inside its span
    port = pf.from_frames({"FULL": bars(full), "LATE": bars(late), "GAPPY": bars(gappy)})
    clock = pd.Timestamp("2024-01-01", tz="UTC") + pd.to_timedelta(full, unit="D")
    assert np.array_equal(port.ts, clock.as_unit("ns").asi8)
    k = {s: j for j, s in enumerate(port.symbols)}
    assert port.symbols == ("FULL", "GAPPY", "LATE")
    assert np.array_equal(port.positions[k["LATE"]], [3, 4, 5, 6])
    assert np.array_equal(port.positions[k["GAPPY"]], [0, 1, 2, 3, 5, 7, 8, 9])
    assert np.isnan(port.close[[0, 1, 2, 7, 8, 9], k["LATE"]]).all()
    assert np.isnan(port.volume[[4, 6], k["GAPPY"]]).all()
    assert np.isfinite(port.open[:, k["FULL"]]).all()
    assert np.array_equal(port.close[port.positions[k["LATE"]], k["LATE"]], bars(late)["close"])
    assert list(port.first_bar) == [0, 0, 3] and list(port.last_bar) == [9, 9, 6]
    spans = {s.symbol: s for s in port.meta.listings}
    assert (spans["LATE"].listed_late, spans["LATE"].delisted) == (True, True)
    assert (spans["FULL"].listed_late, spans["FULL"].delisted) == (False, False)
    assert spans["GAPPY"].missing_bars == 2 and spans["GAPPY"].rows == 8
    assert spans["LATE"].start == pd.Timestamp("2024-01-04", tz="UTC").to_pydatetime()
    assert spans["LATE"].dataset_id == port.members["LATE"].hash
    assert port.meta.rows == 10 and port.meta.symbols == ["FULL", "GAPPY", "LATE"]
    for name in ("open", "close", "volume"):
        assert not getattr(port, name).flags.writeable


def test_the_portfolio_facts_are_inferred_from_the_union_clock() -> None:
    port = pf.from_frames({"A": bars(WEEKDAYS), "B": bars(WEEKDAYS[5:])})
    m = port.meta
    assert (m.timeframe, m.calendar, m.periods_per_year) == ("1d", "equities", 252.0)
    assert not m.timeframe_declared and not m.calendar_declared
    assert m.start == pd.Timestamp("2024-01-01", tz="UTC").to_pydatetime()
    assert m.end == pd.Timestamp("2024-01-12", tz="UTC").to_pydatetime()
    assert m.gaps == 0  # the weekend is no gap of an equities calendar
    assert "id" not in m.facts() and "source" not in m.facts()
    # crypto-like: every day of the week on the clock
    every_day = list(range(21))
    m = pf.from_frames({"A": bars(every_day), "B": bars(every_day[3:])}).meta
    assert (m.calendar, m.periods_per_year) == ("24x7", 365.0)
    declared = pf.from_frames({"A": bars(WEEKDAYS)}, timeframe="1d", calendar="24x5").meta
    assert declared.calendar == "24x5" and declared.calendar_declared
    assert declared.periods_per_year == 260.0


def test_members_at_another_timeframe_are_refused_naming_the_odd_symbol() -> None:
    hourly = bars(WEEKDAYS)
    hourly["ts"] = pd.date_range("2024-01-01 14:00", periods=len(WEEKDAYS), freq="h", tz="UTC")
    with pytest.raises(DataError) as info:
        pf.from_frames({"A": bars(WEEKDAYS), "B": bars(WEEKDAYS), "ODD": hourly})
    assert info.value.rule == "portfolio_timeframe_mismatch"
    assert "'ODD' is 1h" in str(info.value) and "2 of 3 are 1d" in str(info.value)
    assert "'A'" not in str(info.value)


def test_a_file_at_another_timeframe_is_named_with_its_symbol(tmp_path: Path) -> None:
    hourly = bars(WEEKDAYS)
    hourly["ts"] = pd.date_range("2024-01-01 14:00", periods=len(WEEKDAYS), freq="h", tz="UTC")
    _write(bars(WEEKDAYS), tmp_path / "A.csv")
    _write(bars(WEEKDAYS), tmp_path / "B.csv")
    odd = _write(hourly, tmp_path / "H.csv")
    with pytest.raises(DataError) as info:
        pf.load_folder(tmp_path)
    assert info.value.rule == "portfolio_timeframe_mismatch"
    assert f"'H' (in {odd}) is 1h" in str(info.value)


def test_the_clock_times_the_symbols_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pf_dataset, "MAX_CELLS", 15)
    with pytest.raises(DataError, match=r"10 bars x 2 symbols is 20") as info:
        pf.from_frames({"A": bars(WEEKDAYS), "B": bars(WEEKDAYS)})
    assert info.value.rule == "portfolio_too_large"
    assert pf.from_frames({"A": bars(WEEKDAYS)}).n_symbols == 1


# --- the synthetic provider ------------------------------------------------------------------


def test_the_single_symbol_synthetic_identity_and_bars_are_unchanged() -> None:
    base = SyntheticData()
    # the identity recorded before portfolios existed (the goldens' config hashes hold it too)
    assert spec_identity(base) == "a81c87fd5554e364ab485555de5029b98f9de0c5e10c83cd8d25c97d75144bb0"
    assert spec_identity(SyntheticData(symbols=1, beta_mean=1.0, list_within=0.0)) == (
        spec_identity(base)
    )
    port = pf.load_portfolio(base)
    assert port.symbols == ("SYN",) and port.members["SYN"].hash == btlab.synthetic().hash


def test_portfolio_fields_on_one_symbol_are_refused_naming_the_field() -> None:
    for name, value in [("beta_mean", 1.5), ("list_within", 0.2), ("missing_bar_prob", 0.1)]:
        with pytest.raises(ConfigError) as info:
            parse_config({"data": {name: value}})
        assert info.value.errors[0][0] == f"data.{name}"
        assert "symbols > 1" in info.value.errors[0][1]


def test_the_synthetic_portfolio_is_seeded_and_names_its_symbols() -> None:
    spec = SyntheticData(symbols=12, bars=300)
    port = pf.load_portfolio(spec)
    assert port.symbols == tuple(f"SYN{k:02d}" for k in range(1, 13))
    assert pf.load_portfolio(spec).hash == port.hash
    assert pf.load_portfolio(spec.model_copy(update={"seed": 8})).hash != port.hash
    assert pf.load_portfolio(spec.model_copy(update={"beta_mean": 0.5})).hash != port.hash
    assert spec_identity(spec) != spec_identity(spec.model_copy(update={"beta_mean": 0.5}))
    assert spec_identity(spec) != spec_identity(spec.model_copy(update={"symbol": "Q"}))
    # a symbol's bars do not depend on how many symbols follow it
    fewer = pf.load_portfolio(spec.model_copy(update={"symbols": 3}))
    assert fewer.members["SYN02"].hash == port.members["SYN02"].hash
    assert len({m.hash for m in port.members.values()}) == 12
    assert port.meta.source == "synthetic" and port.meta.timeframe_declared
    wide = pf.load_portfolio(SyntheticData(symbols=120, bars=20, symbol="X"))
    assert wide.symbols[0] == "X001" and wide.symbols[-1] == "X120"


def test_the_one_factor_model_correlates_the_symbols_as_specified() -> None:
    spec = SyntheticData(symbols=5, bars=6000, beta_mean=1.0, beta_spread=0.6,
                         idio_vol_annual=0.2, idio_vol_spread=0.6, vol_annual=0.2)  # fmt: skip
    port = pf.load_portfolio(spec)
    returns = np.diff(np.log(port.close), axis=0)[1:]
    observed = np.corrcoef(returns.T)
    expected = expected_correlation(spec)
    off = ~np.eye(5, dtype=bool)
    assert expected[off].min() < 0.35 < 0.6 < expected[off].max()  # a spread worth testing
    np.testing.assert_allclose(observed[off], expected[off], atol=0.06)
    betas, idio = factor_loadings(spec)
    assert np.all(np.abs(betas - 1.0) <= 0.6) and np.all(np.abs(idio / 0.2 - 1.0) <= 0.6)
    # each symbol's volatility is its beta's share of the factor's plus its own
    vol = returns.std(axis=0) * np.sqrt(252)
    np.testing.assert_allclose(vol, np.sqrt(betas**2 * 0.2**2 + idio**2), rtol=0.15)
    independent = pf.load_portfolio(spec.model_copy(update={"beta_mean": 0.0, "beta_spread": 0.0}))
    r0 = np.diff(np.log(independent.close), axis=0)[1:]
    assert np.abs(np.corrcoef(r0.T)[off]).max() < 0.06


def test_symbols_list_and_delist_at_different_dates_on_request() -> None:
    spec = SyntheticData(symbols=8, bars=400, list_within=0.3, delist_within=0.25,
                         missing_bar_prob=0.03)  # fmt: skip
    port = pf.load_portfolio(spec)
    first, end = listing_spans(spec)
    assert len(port) == 400  # the earliest lists at the first bar, the latest ends at the last
    assert first.min() == 0 and end.max() == 400 and len(set(first)) > 3 and len(set(end)) > 3
    assert np.all(first <= 0.3 * 400) and np.all(end >= 400 - 0.25 * 400)
    assert list(port.first_bar) == list(first) and list(port.last_bar) == list(end - 1)
    spans = port.meta.listings
    assert sum(s.listed_late for s in spans) >= 4 and sum(s.delisted for s in spans) >= 4
    missing = np.array([s.missing_bars for s in spans])
    spanned = end - first
    assert missing.sum() > 0 and abs(missing.sum() / spanned.sum() - 0.03) < 0.015
    for j in range(8):
        inside = np.zeros(400, dtype=bool)
        inside[first[j] : end[j]] = True
        assert np.isnan(port.close[~inside, j]).all()
    assert pf.load_portfolio(spec).hash == port.hash


def test_synthetic_portfolio_bounds_name_the_field() -> None:
    cases = [
        ({"symbols": pf.MAX_SYMBOLS + 1, "bars": 2}, "data.symbols", "at most 5,000 symbols"),
        ({"symbols": 1000, "bars": 20_001}, "data.symbols", "20,000,000"),
        ({"symbols": 3, "bars": 10, "list_within": 0.6, "delist_within": 0.35},
         "data.delist_within", "at least 2"),
    ]  # fmt: skip
    for fields, where, text in cases:
        with pytest.raises(ConfigError) as info:
            parse_config({"data": fields})
        assert info.value.errors[0][0] == where and text in info.value.errors[0][1], info.value
    assert MAX_PORTFOLIO_FILES == pf.MAX_SYMBOLS
    with pytest.raises(DataError, match="load_portfolio") as info:
        btlab.synthetic(symbols=3)
    assert info.value.rule == "portfolio_spec"


def test_adjust_on_a_synthetic_portfolio_names_the_symbol() -> None:
    with pytest.raises(DataError, match="'SYN01' has none"):
        pf.load_portfolio(SyntheticData(symbols=2, bars=30, adjust=True))


# --- the request's data section --------------------------------------------------------------


def test_a_request_names_a_portfolio_by_paths_a_folder_or_a_long_file(tmp_path: Path) -> None:
    frames = {"A": bars(WEEKDAYS), "B": bars(WEEKDAYS[2:])}
    paths = [str(_write(f, tmp_path / "dir" / f"{s}.csv")) for s, f in frames.items()]
    reference = pf.from_frames(frames).hash
    cfg = parse_config({"data": {"source": "csv", "paths": paths}})
    assert isinstance(cfg.data, FileListData)
    assert pf.load_portfolio(cfg.data).hash == reference
    folder = parse_config({"data": {"source": "csv", "path": str(tmp_path / "dir")}}).data
    assert isinstance(folder, FileData) and pf.load_portfolio(folder).hash == reference
    long = _write(long_table(frames), tmp_path / "long.parquet")
    spec = parse_config({"data": {"source": "parquet", "path": str(long), "timeframe": "1D"}})
    port = pf.load_portfolio(spec.data)
    assert port.hash == reference and port.meta.timeframe_declared
    assert "paths" not in cfg.hash_payload()["data"]
    with pytest.raises(DataError, match="load_portfolio") as info:
        sources.load(cfg.data)
    assert info.value.rule == "portfolio_spec"
    named = FileData(source="csv", path=str(tmp_path / "dir"), symbol="X")
    with pytest.raises(DataError, match="is a folder") as info:
        pf.load_portfolio(named)
    assert info.value.rule == "portfolio_symbol"


def test_a_single_file_or_stored_dataset_is_a_portfolio_of_one(tmp_path: Path) -> None:
    path = _write(bars(WEEKDAYS), tmp_path / "one.csv")
    port = pf.load_portfolio(FileData(source="csv", path=str(path), symbol="ONE"))
    assert port.symbols == ("ONE",)
    ds = data.from_dataframe(bars(WEEKDAYS), symbol="S")
    stored = pf.load_portfolio(StoredData(source="dataset", id="x"), resolve_stored=lambda _: ds)
    assert stored.members["S"].hash == ds.hash


def test_adjust_scales_every_symbol_and_names_one_without_adj_close(tmp_path: Path) -> None:
    with_adj = bars(WEEKDAYS).assign(adj_close=lambda f: f["close"] * 0.5)
    _write(with_adj, tmp_path / "A.csv")
    _write(with_adj, tmp_path / "B.csv")
    port = pf.load_portfolio(FileData(source="csv", path=str(tmp_path), adjust=True))
    assert all(m.meta.adjusted for m in port.members.values())
    np.testing.assert_allclose(port.close[:, 0], with_adj["adj_close"])
    _write(bars(WEEKDAYS), tmp_path / "C.csv")
    with pytest.raises(DataError, match="dataset 'C' has none"):
        pf.load_portfolio(FileData(source="csv", path=str(tmp_path), adjust=True))


def test_the_files_section_is_strict_and_names_its_fields() -> None:
    for body, where in [
        ({"source": "csv", "paths": []}, "data.paths"),
        ({"source": "csv", "paths": ["a.csv", "a.csv"]}, "data.paths"),
        ({"source": "csv", "paths": ["a.csv", ""]}, "data.paths.1"),
        ({"source": "csv", "paths": "a.csv"}, "data.paths"),
        ({"source": "parquet", "paths": ["a"], "symbol": "A"}, "data.symbol"),
        ({"source": "csv", "paths": ["a"], "timeframe": "7x"}, "data.timeframe"),
    ]:
        with pytest.raises(ConfigError) as info:
            parse_config({"data": body})
        assert [loc for loc, _ in info.value.errors] == [where], info.value
    assert "listed twice" in str(_error({"source": "csv", "paths": ["a.csv", "a.csv"]}))


def _error(body: dict[str, object]) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        parse_config({"data": body})
    return info.value


# --- stored portfolios -----------------------------------------------------------------------


def test_a_portfolio_is_stored_once_and_loads_back_under_its_symbols(tmp_path: Path) -> None:
    from btlab.errors import NotFoundError
    from btlab.store import RunStateError, Store

    frames = {"A": bars(WEEKDAYS), "B": bars(WEEKDAYS[2:], 5.0)}
    port = pf.from_frames(frames)
    store = Store(tmp_path / "home")
    try:
        # B's bars were stored before under another name: the portfolio keeps its own
        earlier, _ = store.add_dataset(data.from_dataframe(frames["B"], symbol="OLD"))
        row, created = store.add_portfolio(port)
        assert created and row.id == port.hash and row.symbols == 2 and row.rows == 10
        assert row.members == {s: m.hash for s, m in port.members.items()}
        assert row.members["B"] == earlier.id and store.get_dataset(earlier.id).symbol == "OLD"
        again, created = store.add_portfolio(pf.from_frames(dict(reversed(frames.items()))))
        assert not created and again.id == row.id
        loaded = store.load_portfolio(row.id)
        assert loaded.hash == port.hash and loaded.symbols == ("A", "B")
        assert [p.id for p in store.list_portfolios()] == [row.id]
        spec = StoredData(source="dataset", id=row.id)
        via_request = pf.load_portfolio(
            spec, resolve_stored=store.load_dataset, resolve_portfolio=store.load_portfolio
        )
        assert via_request.hash == port.hash
        one = pf.load_portfolio(
            StoredData(source="dataset", id=earlier.id),
            resolve_stored=store.load_dataset,
            resolve_portfolio=store.load_portfolio,
        )
        assert one.symbols == ("OLD",)
        with pytest.raises(RunStateError, match="member of stored portfolio"):
            store.delete_dataset(earlier.id)
        store.delete_portfolio(row.id)
        with pytest.raises(NotFoundError):
            store.get_portfolio(row.id)
        store.delete_dataset(earlier.id)  # no longer held
    finally:
        store.close()


def test_data_import_of_a_long_file_or_a_folder_stores_one_portfolio(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    from btlab.cli import main
    from btlab.store import Store

    frames = {"A": bars(WEEKDAYS), "B": bars(WEEKDAYS[2:], 5.0)}
    long = _write(long_table(frames), tmp_path / "universe.csv")
    home = str(tmp_path / "home")
    assert main(["data", "import", str(long), "--json", "--home", home]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["kind"] == "portfolio" and printed["created"]
    assert printed["id"] == pf.from_frames(frames).hash and printed["symbols"] == 2
    for s, f in frames.items():
        _write(f, tmp_path / "folder" / f"{s}.parquet")
    assert main(["data", "import", str(tmp_path / "folder"), "--home", home]) == 0
    assert "already stored: portfolio of 2 symbols" in capsys.readouterr().out
    assert main(["data", "list", "--home", home]) == 0
    listed = capsys.readouterr().out
    assert "portfolios" in listed and printed["id"] in listed
    store = Store(home)
    try:
        assert store.load_portfolio(printed["id"]).hash == printed["id"]
    finally:
        store.close()
