"""Portfolio loaders (SPEC §8 "Data"): K symbols from a long table, a mapping, files or a folder.

Every symbol goes through `data.from_dataframe`, so every §1 rule holds per symbol, and every
error names the symbol (and the file, where there is one) besides the rule and the rows. In a
long table the rows are those of the whole table (0-based data rows, header excluded), not of
the symbol's own bars. A file without a `symbol` column is one symbol named by its stem; a file
with one is a long table. The same symbol from two files is an error naming both.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from .. import data as data_mod
from .. import sources
from ..config import DataConfig, FileData, FileListData, StoredData, SyntheticData
from ..data import Dataset
from ..data.portfolio import MAX_SYMBOLS, PortfolioDataset, from_members
from ..data.portfolio_meta import common_timeframe
from ..errors import DataError, NotFoundError
from ..timeframes import Calendar
from .synthetic import generate_portfolio

#: The long table's symbol column (its name case-insensitive, as every column's).
SYMBOL_COLUMN = "symbol"
_SUFFIXES = {"csv": (".csv",), "parquet": data_mod.files.PARQUET_SUFFIXES}


def _named(exc: DataError, symbol: str, file: Path | None, rows: np.ndarray | None) -> DataError:
    """`exc` with the symbol (and file) named, its rows mapped to the whole table's (`rows`)."""
    text = str(exc).removeprefix(f"{exc.rule}: ")
    if exc.rows:
        text = text[: text.rfind(" (first offending rows:")]
    where = f"symbol {symbol!r}" + (f" in {file}" if file is not None else "")
    mapped = [int(rows[r]) for r in exc.rows] if rows is not None else exc.rows
    return DataError(exc.rule, f"{where}: {text}", mapped)


def _member(
    frame: pd.DataFrame,
    symbol: str,
    *,
    file: Path | None = None,
    rows: np.ndarray | None = None,
    timeframe: str | None,
    calendar: Calendar | None,
    source: str,
) -> Dataset:
    try:
        return data_mod.from_dataframe(
            frame, symbol=symbol, timeframe=timeframe, calendar=calendar, source=source
        )
    except DataError as exc:
        raise _named(exc, symbol, file, rows) from None


def _symbol_name(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise DataError(
            "portfolio_symbol_name", f"{where}symbol names must be non-empty text, got {value!r}"
        )
    return value.strip()


def _symbol_column(frame: pd.DataFrame) -> Any | None:
    """The label of the frame's symbol column (any case), or None; two of them is an error."""
    found = [c for c in frame.columns if str(c).strip().lower() == SYMBOL_COLUMN]
    if len(found) > 1:
        raise DataError("duplicate_columns", f"columns given more than once: {SYMBOL_COLUMN}")
    return found[0] if found else None


def _check_count(count: int, what: str) -> None:
    if count > MAX_SYMBOLS:
        raise DataError(
            "portfolio_too_many_symbols",
            f"a portfolio holds at most {MAX_SYMBOLS:,} symbols; {what} {count:,}",
        )


def _split_long(
    frame: pd.DataFrame, file: Path | None
) -> list[tuple[str, pd.DataFrame, np.ndarray]]:
    """(symbol, its rows of the table, their positions in the table) of a long table, by symbol."""
    where = f"{file}: " if file is not None else ""
    column = _symbol_column(frame)
    if column is None:
        have = ", ".join(map(str, frame.columns)) or "none"
        raise DataError(
            "missing_columns",
            f"{where}a long table needs a {SYMBOL_COLUMN} column (found: {have})",
        )
    if len(frame) == 0:
        raise DataError("empty", f"{where}the table has no rows")
    values = frame[column]
    text = values.astype("string").str.strip()
    bad = (values.isna() | text.isna() | (text == "")).to_numpy(dtype=bool)
    if bad.any():
        raise DataError(
            "missing_symbol",
            f"{where}column {SYMBOL_COLUMN} is empty in some rows",
            [int(i) for i in np.flatnonzero(bad)[: data_mod.MAX_REPORTED_ROWS]],
        )
    codes, names = pd.factorize(text.to_numpy(dtype=object), sort=True)
    _check_count(len(names), f"{where}the table holds")
    order = np.argsort(codes, kind="stable")
    bounds = np.searchsorted(codes[order], np.arange(len(names) + 1))
    rest = frame.drop(columns=[column])
    return [
        (str(name), rest.iloc[order[bounds[j] : bounds[j + 1]]], order[bounds[j] : bounds[j + 1]])
        for j, name in enumerate(names)
    ]


def from_long(
    frame: pd.DataFrame,
    *,
    timeframe: str | None = None,
    calendar: Calendar | None = None,
    source: str = "dataframe",
) -> PortfolioDataset:
    """A portfolio from a long table: `ts, symbol, open, high, low, close, volume` (any case,
    the single-symbol loader's column aliases; rows in any symbol order, each symbol's in time
    order). Errors name the symbol and the rows of the whole table."""
    if not isinstance(frame, pd.DataFrame):
        raise DataError(
            "not_a_dataframe", f"expected a pandas DataFrame, got {type(frame).__name__}"
        )
    members = {
        symbol: _member(
            part, symbol, rows=rows, timeframe=timeframe, calendar=calendar, source=source
        )
        for symbol, part, rows in _split_long(frame, None)
    }
    return from_members(members, timeframe=timeframe, calendar=calendar, source=source)


def from_frames(
    frames: Mapping[str, pd.DataFrame | Dataset],
    *,
    timeframe: str | None = None,
    calendar: Calendar | None = None,
    source: str = "dataframe",
) -> PortfolioDataset:
    """A portfolio from a mapping symbol -> DataFrame (each one symbol's bars, as
    `data.from_dataframe` takes them) or -> Dataset (used as it is, its timeframe / calendar
    declared where given). Errors name the symbol."""
    if not isinstance(frames, Mapping):
        raise DataError(
            "not_a_mapping", f"expected a mapping symbol -> DataFrame, got {type(frames).__name__}"
        )
    _check_count(len(frames), "got")
    members: dict[str, Dataset] = {}
    for key, value in frames.items():
        symbol = _symbol_name(key, "")
        if symbol in members:
            raise DataError("duplicate_symbol", f"symbol {symbol!r} is given twice")
        if isinstance(value, Dataset):
            members[symbol] = data_mod.declare(value, timeframe=timeframe, calendar=calendar)
        else:
            members[symbol] = _member(
                value, symbol, timeframe=timeframe, calendar=calendar, source=source
            )
    return from_members(members, timeframe=timeframe, calendar=calendar)


def _file_members(
    path: Path,
    *,
    fmt: str | None,
    symbol: str | None,
    timeframe: str | None,
    calendar: Calendar | None,
) -> list[tuple[str, Dataset]]:
    """The symbols of one file: a long table where it has a symbol column, else one symbol."""
    kind = fmt or ("parquet" if path.suffix.lower() in data_mod.files.PARQUET_SUFFIXES else "csv")
    frame = data_mod.read_frame(path, fmt=kind)
    if _symbol_column(frame) is None:
        name = _symbol_name(symbol or path.stem, f"{path}: ")
        return [(name, _member(frame, name, file=path, timeframe=timeframe, calendar=calendar,
                               source=kind))]  # fmt: skip
    if symbol is not None:
        raise DataError(
            "portfolio_symbol",
            f"{path} has a {SYMBOL_COLUMN} column (a long table): its symbols come from it, so "
            f"no symbol name ({symbol!r}) can be given for the file",
        )
    return [
        (
            name,
            _member(
                part,
                name,
                file=path,
                rows=rows,
                timeframe=timeframe,
                calendar=calendar,
                source=kind,
            ),
        )
        for name, part, rows in _split_long(frame, path)
    ]


def load_files(
    paths: Sequence[str | Path],
    *,
    fmt: str | None = None,
    timeframe: str | None = None,
    calendar: Calendar | None = None,
    symbol: str | None = None,
) -> PortfolioDataset:
    """A portfolio from CSV / Parquet files (`fmt` None: each by its extension): each file is one
    symbol named by its stem, or a long table where it has a `symbol` column (`symbol` names
    the one symbol of a single file). The same symbol in two files is an error naming both."""
    if isinstance(paths, str | Path):
        paths = [paths]
    if not paths:
        raise DataError("portfolio_empty", "a portfolio needs at least one file")
    _check_count(len(paths), "got files:")
    if symbol is not None and len(paths) > 1:
        raise DataError("portfolio_symbol", "a symbol name can be given for one file only")
    members: dict[str, Dataset] = {}
    origin: dict[str, Path] = {}
    for raw in paths:
        path = Path(raw)
        for name, member in _file_members(
            path, fmt=fmt, symbol=symbol, timeframe=timeframe, calendar=calendar
        ):
            if name in origin:
                raise DataError(
                    "duplicate_symbol",
                    f"symbol {name!r} is in two files: {origin[name]} and {path}",
                )
            origin[name] = path
            members[name] = member
        _check_count(len(members), "the files hold")
    common_timeframe(members, origins=origin)  # a mismatch names the odd symbols' files
    return from_members(members, timeframe=timeframe, calendar=calendar)


def folder_files(folder: str | Path, *, fmt: str | None = None) -> list[Path]:
    """The data files of a folder, sorted: `.csv` for csv, `.parquet`/`.pq` for parquet, all of
    them for None; hidden files and subfolders are left out."""
    path = Path(folder)
    if not path.is_dir():
        raise DataError("file_not_found", f"no such folder: {path}")
    suffixes = _SUFFIXES[fmt] if fmt is not None else (*_SUFFIXES["csv"], *_SUFFIXES["parquet"])
    found = sorted(
        p for p in path.iterdir()
        if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in suffixes
    )  # fmt: skip
    if not found:
        raise DataError("empty", f"folder {path} holds no {' or '.join(suffixes)} files")
    return found


def load_folder(
    folder: str | Path,
    *,
    fmt: str | None = None,
    timeframe: str | None = None,
    calendar: Calendar | None = None,
) -> PortfolioDataset:
    """A portfolio from every data file of a folder (see `folder_files` and `load_files`)."""
    return load_files(folder_files(folder, fmt=fmt), fmt=fmt, timeframe=timeframe,
                      calendar=calendar)  # fmt: skip


def load_path(
    path: str | Path,
    *,
    fmt: str | None = None,
    timeframe: str | None = None,
    calendar: Calendar | None = None,
    symbol: str | None = None,
) -> PortfolioDataset:
    """A folder of files, a long file, or one symbol's file (named `symbol`, else its stem)."""
    if Path(path).is_dir():
        if symbol is not None:
            raise DataError(
                "portfolio_symbol",
                f"{path} is a folder of files, each named by its stem: no symbol name "
                f"({symbol!r}) can be given for it",
            )
        return load_folder(path, fmt=fmt, timeframe=timeframe, calendar=calendar)
    return load_files([path], fmt=fmt, timeframe=timeframe, calendar=calendar, symbol=symbol)


def as_portfolio(
    data: PortfolioDataset | Dataset | pd.DataFrame | Mapping[str, pd.DataFrame | Dataset],
) -> PortfolioDataset:
    """Bars handed in by a caller as a portfolio: a long DataFrame (with a symbol column), one
    symbol's DataFrame or Dataset (K = 1), or a mapping symbol -> DataFrame / Dataset."""
    if isinstance(data, PortfolioDataset):
        return data
    if isinstance(data, Dataset):
        return from_members({data.meta.symbol: data})
    if isinstance(data, pd.DataFrame):
        if _symbol_column(data) is not None:
            return from_long(data)
        single = data_mod.from_dataframe(data)
        return from_members({single.meta.symbol: single})
    return from_frames(data)


def _symbol_count(frame: pd.DataFrame) -> int:
    """How many distinct symbols a frame's symbol column names (0 without one)."""
    column = _symbol_column(frame)
    if column is None:
        return 0
    text = frame[column].astype("string").str.strip()
    return int(text[text.notna() & (text != "")].nunique())


def load_upload(
    content: bytes,
    *,
    fmt: str,
    symbol: str | None = None,
    default_symbol: str | None = None,
    timeframe: str | None = None,
) -> Dataset | PortfolioDataset:
    """The bars of an uploaded CSV or Parquet file: a portfolio where a `symbol` column names
    several symbols (a long table, `from_long`: errors name the symbol and the upload's data
    rows), else one symbol's dataset named `symbol`, else `default_symbol` (e.g. the file
    name's stem), else DATA, exactly as `data.load_bytes` loads it. A long table takes its
    symbols from its rows, so naming one (`symbol`) is an error."""
    frame = data_mod.read_bytes(content, fmt=fmt)
    if _symbol_count(frame) <= 1:
        return data_mod.from_dataframe(
            frame, symbol=symbol or default_symbol or "DATA", timeframe=timeframe, source=fmt
        )
    if symbol is not None:
        raise DataError(
            "portfolio_symbol",
            f"the upload has a {SYMBOL_COLUMN} column naming {_symbol_count(frame):,} symbols "
            f"(a long table): its symbols come from it, so no symbol name ({symbol!r}) can be "
            "given for it",
        )
    return from_long(frame, timeframe=timeframe, source=fmt)


def _stored(
    spec: StoredData, resolve: Callable[[str], PortfolioDataset] | None
) -> PortfolioDataset | None:
    """The stored portfolio `spec.id` names (its timeframe / calendar declared where the request
    does), or None where there is no resolver or it knows no such portfolio."""
    if resolve is None:
        return None
    try:
        portfolio = resolve(spec.id)
    except NotFoundError:
        return None
    if spec.timeframe is None and spec.calendar is None:
        return portfolio
    members = {
        s: data_mod.declare(m, timeframe=spec.timeframe, calendar=spec.calendar)
        for s, m in portfolio.members.items()
    }
    return from_members(
        members, timeframe=spec.timeframe, calendar=spec.calendar, source=portfolio.meta.source
    )


def _adjusted(portfolio: PortfolioDataset) -> PortfolioDataset:
    members = {s: data_mod.adjust(m) for s, m in portfolio.members.items()}
    m = portfolio.meta
    return from_members(
        members,
        timeframe=m.timeframe if m.timeframe_declared else None,
        calendar=m.calendar if m.calendar_declared else None,
        source=m.source,
    )


def load_portfolio(
    spec: DataConfig,
    *,
    resolve_stored: Callable[[str], Dataset] | None = None,
    resolve_portfolio: Callable[[str], PortfolioDataset] | None = None,
) -> PortfolioDataset:
    """The portfolio a request's `data` section names (adjusted where it asks): synthetic with
    `symbols` K (K = 1 is the single dataset of `data.load`), a file, long file or folder
    (`path`), a list of files (`paths`), or a stored portfolio or dataset (`id`: a portfolio
    where `resolve_portfolio` knows it, e.g. `Store.load_portfolio`, else a dataset, K = 1)."""
    if isinstance(spec, SyntheticData) and spec.symbols > 1:
        portfolio = generate_portfolio(spec)  # adjust: true fails below (no adj_close), per symbol
    elif isinstance(spec, StoredData) and (stored := _stored(spec, resolve_portfolio)):
        portfolio = stored
    elif isinstance(spec, SyntheticData | StoredData):
        single = sources.load(spec, resolve_stored=resolve_stored)  # adjusted where it asks
        return from_members({single.meta.symbol: single}, timeframe=single.meta.timeframe
                            if single.meta.timeframe_declared else None)  # fmt: skip
    elif isinstance(spec, FileListData):
        portfolio = load_files(
            spec.paths, fmt=spec.source, timeframe=spec.timeframe, calendar=spec.calendar
        )
    else:
        assert isinstance(spec, FileData)
        portfolio = load_path(spec.path, fmt=spec.source, timeframe=spec.timeframe,
                              calendar=spec.calendar, symbol=spec.symbol)  # fmt: skip
    return _adjusted(portfolio) if spec.adjust else portfolio


def names_a_portfolio(
    spec: DataConfig,
    data: PortfolioDataset | Dataset | pd.DataFrame | Mapping[str, Any] | None = None,
) -> bool:
    """Whether a request's data (or the bars handed in) is a portfolio rather than one symbol:
    a mapping or a long table handed in, several synthetic symbols, a list of files, a folder,
    or a file with a symbol column (read from its header, not its rows)."""
    if data is not None:
        if isinstance(data, PortfolioDataset | Mapping):
            return True
        return isinstance(data, pd.DataFrame) and _symbol_column(data) is not None
    if isinstance(spec, SyntheticData):
        return spec.symbols > 1
    if isinstance(spec, FileListData):
        return True
    if isinstance(spec, FileData):
        path = Path(spec.path)
        if path.is_dir():
            return True
        try:
            columns = _header(path, spec.source)
        except (OSError, ValueError):
            return False  # the single-symbol loader reports the unreadable file
        return any(str(c).strip().lower() == SYMBOL_COLUMN for c in columns)
    return False


def _header(path: Path, fmt: str) -> list[str]:
    """The column names of a CSV or Parquet file, without reading its rows."""
    if fmt == "parquet":
        return list(pq.read_schema(path).names)
    with path.open("r", encoding="utf-8", errors="replace") as fh:
        first = fh.readline()
    return [c.strip().strip('"') for c in first.split(",")]
