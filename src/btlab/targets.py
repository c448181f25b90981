"""Targets the caller brings (SPEC §9): an array, Series or DataFrame of targets, entry/exit
signals made into targets, or a dataset's own column, in place of a registered strategy.

A run with such targets records the reserved strategy `targets` (`TARGETS_STRATEGY`): with
`params.column` null the targets were handed to `btlab.run(..., targets=...)`, and their
content hash (`targets_identity`) joins the config hash; with `params.column` naming an extra
column of the dataset they are that column, whose values the dataset hash already covers.

Timing: `target[i]` is the position wanted during bar i, decided before bar i opens, exactly as
a strategy's target (whose features the registry has shifted by one bar). Caller targets are
taken as they are, never shifted: the caller asserts that `target[i]` uses nothing of bar i or
later. A signal computed from bar i's close is therefore shifted by the caller
(`entries.shift(1, fill_value=False)`) before it is handed in.

Alignment: a NumPy array is positional (n values, or (n, K) for a portfolio, columns in the
portfolio's symbol order); a Series or DataFrame is aligned by its DatetimeIndex to the run's
clock (naive timestamps are UTC; any order; every clock bar once, no other), a DataFrame's
columns being the symbols (any one column for a single symbol). Values are finite, except where
a portfolio's symbol is not listed (before its first bar, after its last): there the target is
0 whatever is given, as SPEC §8 treats it.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeAlias

import numpy as np
import pandas as pd
from pydantic import Field

from .data import Dataset
from .data.portfolio import PortfolioDataset
from .errors import ConfigError
from .features import Params, extra_column, validate_params
from .kernels.signals import hold_state_into_nb

__all__ = [
    "PERMUTATION_SKIPPED",
    "TARGETS_STRATEGY",
    "Signals",
    "TargetsInput",
    "TargetsParams",
    "caller_targets",
    "column_targets",
    "own_targets",
    "resolve_targets_params",
    "signals",
    "targets_identity",
]

#: The reserved strategy name of a run whose targets do not come from a registered strategy.
TARGETS_STRATEGY = "targets"

#: validation.json's reason (under "skipped") where the permutation test cannot run.
PERMUTATION_SKIPPED = (
    "the permutation test re-runs the strategy on permuted prices; these targets come from the "
    "caller, so there is no strategy to re-run (psr, dsr, bootstrap and folds still apply)"
)

_HASH_FORMAT = b"btlab-targets-v1"
_SHOWN = 3


class TargetsParams(Params):
    """Parameters of the reserved strategy `targets`."""

    column: str | None = Field(
        None,
        min_length=1,
        max_length=200,
        description="An extra column of the dataset holding the targets, taken as they are "
        "(not shifted: target[i] is decided before bar i opens). Null: the targets handed to "
        "btlab.run(..., targets=...).",
    )


def resolve_targets_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """The `targets` strategy's parameters validated, defaults filled in (ConfigError if bad)."""
    dumped: dict[str, Any] = validate_params(
        "strategy", TARGETS_STRATEGY, TargetsParams, params
    ).model_dump(mode="json")
    return dumped


@dataclass(frozen=True, eq=False)
class Signals:
    """Entry/exit booleans that become targets (`signals`); pass it as `targets=`."""

    entries: Any = None
    exits: Any = None
    short_entries: Any = None
    short_exits: Any = None
    size: float = 1.0


def signals(
    entries: Any = None,
    exits: Any = None,
    short_entries: Any = None,
    short_exits: Any = None,
    *,
    size: float = 1.0,
) -> Signals:
    """Entry/exit signals, each an array, Series or DataFrame of booleans like the targets
    (missing values count as False), for `btlab.run(..., targets=btlab.signals(...))`.

    They become targets through the hold-state latch (`kernels.signals.hold_state_nb`): an
    entry holds +size (a short entry -size) from its bar until an exit. On one bar exits are
    read first: a long leaves on `exits` or `short_entries`, a short on `short_exits` or
    `entries`; a flat position (also one that has just left) enters only where nothing on the
    same bar contradicts it, so an entry with its own exit, or a long with a short entry, on one
    bar leaves it flat. The signal at bar i sets the target of bar i (decided before it opens).
    """
    if entries is None and short_entries is None:
        raise ConfigError("invalid signals", [("entries", "give entries, short_entries or both")])
    if not (isinstance(size, int | float) and not isinstance(size, bool)) or not (
        math.isfinite(size) and size > 0
    ):
        raise ConfigError(
            "invalid signals", [("size", f"expected a finite number > 0, got {size!r}")]
        )
    return Signals(entries, exits, short_entries, short_exits, float(size))


#: What `btlab.run(..., targets=...)` takes.
TargetsInput: TypeAlias = np.ndarray | pd.Series | pd.DataFrame | Signals | Sequence[float]


def _bad(field: str, message: str) -> ConfigError:
    return ConfigError("invalid targets", [(field, message)])


def _clock(data: Dataset | PortfolioDataset) -> tuple[np.ndarray, tuple[str, ...]]:
    if isinstance(data, PortfolioDataset):
        return data.ts, data.symbols
    return data.ts, (data.meta.symbol,)


def _stamps(ns: np.ndarray) -> str:
    shown = ", ".join(str(pd.Timestamp(int(v), unit="ns", tz="UTC")) for v in ns[:_SHOWN])
    return shown + (f" and {ns.shape[0] - _SHOWN} more" if ns.shape[0] > _SHOWN else "")


def _rows(index: pd.Index, ts: np.ndarray, field: str) -> np.ndarray:
    """The clock bar of each row of `index` (a DatetimeIndex holding every clock bar once),
    or a ConfigError naming what is missing, extra or repeated."""
    n = ts.shape[0]
    if not isinstance(index, pd.DatetimeIndex):
        if isinstance(index, pd.RangeIndex) and index.equals(pd.RangeIndex(n)):
            return np.arange(n)  # a default index: the values are positional
        raise _bad(field, f"the index must be the run's timestamps (a DatetimeIndex), got "
                          f"{type(index).__name__}")  # fmt: skip
    stamps = index.tz_localize("UTC") if index.tz is None else index.tz_convert("UTC")
    got = np.asarray(stamps.as_unit("ns").asi8, dtype=np.int64)
    repeated = pd.Index(got).duplicated()
    if repeated.any():
        raise _bad(field, f"timestamps given more than once: {_stamps(got[repeated])}")
    missing = np.setdiff1d(ts, got)
    extra = np.setdiff1d(got, ts)
    if missing.size or extra.size:
        parts = []
        if missing.size:
            parts.append(f"{missing.size} bar(s) of the run's clock are missing: "
                         f"{_stamps(missing)}")  # fmt: skip
        if extra.size:
            parts.append(f"{extra.size} timestamp(s) are not bars of the run: {_stamps(extra)}")
        raise _bad(field, f"not aligned to the run's {n} bars: " + "; ".join(parts))
    rows: np.ndarray = np.searchsorted(ts, got)
    return rows


def _aligned(values: Any, data: Dataset | PortfolioDataset, field: str) -> np.ndarray:
    """`values` as an (n, K) array on the run's clock and symbols (object or numeric dtype)."""
    ts, symbols = _clock(data)
    n, k = ts.shape[0], len(symbols)
    if isinstance(values, pd.Series):
        if k != 1:
            raise _bad(field, f"a Series holds one symbol's values; this portfolio has {k} "
                              "symbols: give a DataFrame with a column per symbol")  # fmt: skip
        values = values.to_frame()
    if isinstance(values, pd.DataFrame):
        names = [str(c) for c in values.columns]
        if k == 1 and len(names) == 1:
            order = [0]
        else:
            missing = [s for s in symbols if s not in names]
            extra = sorted(set(names) - set(symbols))
            if missing or extra or len(set(names)) != len(names):
                raise _bad(field, f"the columns must be the symbols {list(symbols)}; missing: "
                                  f"{missing or 'none'}, not in the data: {extra or 'none'}")  # fmt: skip
            order = [names.index(s) for s in symbols]
        out = np.empty((n, k), dtype=values.to_numpy().dtype)
        out[_rows(values.index, ts, field)] = values.to_numpy()[:, order]
        return out
    arr = np.asarray(values)
    if arr.ndim == 1 and k == 1:
        arr = arr[:, None]
    if arr.shape != (n, k):
        want = f"({n},)" if k == 1 else f"({n}, {k}) (bars x symbols {list(symbols)})"
        raise _bad(field, f"expected shape {want}, got {arr.shape}")
    return arr


def _listed(data: Dataset | PortfolioDataset) -> np.ndarray:
    """(n, K) bool: where each symbol is listed (first bar <= i <= last bar)."""
    if not isinstance(data, PortfolioDataset):
        return np.ones((len(data), 1), dtype=bool)
    clock = np.arange(len(data))[:, None]
    listed: np.ndarray = (clock >= data.first_bar[None, :]) & (clock <= data.last_bar[None, :])
    return listed


def _first_bad(bad: np.ndarray, data: Dataset | PortfolioDataset) -> str:
    i, k = (int(v) for v in np.argwhere(bad)[0])
    ts, symbols = _clock(data)
    where = f"bar {i} ({pd.Timestamp(int(ts[i]), unit='ns', tz='UTC')})"
    return where + (f", symbol {symbols[k]!r}" if isinstance(data, PortfolioDataset) else "")


def _finished(target: np.ndarray, data: Dataset | PortfolioDataset, field: str) -> np.ndarray:
    """Checked float64 targets, 0 where a symbol is not listed; 1-D for a single symbol."""
    listed = _listed(data)
    bad = ~np.isfinite(target) & listed
    if bad.any():
        raise _bad(field, f"{int(bad.sum())} value(s) are NaN or infinite, the first at "
                          f"{_first_bad(bad, data)} (use 0 for flat)")  # fmt: skip
    out = np.where(listed, target, 0.0) + 0.0  # +0.0: -0.0 is 0.0, for the hash too
    if not isinstance(data, PortfolioDataset):
        return np.ascontiguousarray(out[:, 0])
    return np.ascontiguousarray(out)


def _numbers(values: Any, data: Dataset | PortfolioDataset, field: str) -> np.ndarray:
    arr = _aligned(values, data, field)
    if arr.dtype == np.bool_:
        return arr.astype(np.float64)
    try:
        return np.asarray(arr, dtype=np.float64)
    except (TypeError, ValueError):
        raise _bad(field, "the targets must be numbers") from None


def _booleans(values: Any, data: Dataset | PortfolioDataset, field: str) -> np.ndarray:
    """A signal as (n, K) bool: True/False or 1/0, a missing value (NaN, None) False."""
    arr = _aligned(values, data, field)
    if arr.dtype == np.bool_:
        return arr
    frame = pd.DataFrame(arr)
    missing = frame.isna().to_numpy()
    try:
        numbers = frame.where(~missing, 0).to_numpy(dtype=np.float64)
    except (TypeError, ValueError):
        raise _bad(field, "a signal must hold booleans (True/False or 1/0)") from None
    bad = (numbers != 0) & (numbers != 1)
    if bad.any():
        raise _bad(field, f"a signal must hold booleans (True/False or 1/0); "
                          f"{_first_bad(bad, data)} holds {float(numbers[bad][0])!r}")  # fmt: skip
    out: np.ndarray = numbers == 1
    return out


def _from_signals(sig: Signals, data: Dataset | PortfolioDataset) -> np.ndarray:
    ts, symbols = _clock(data)
    listed = _listed(data)  # a signal where its symbol is not listed is ignored
    never = np.zeros((ts.shape[0], len(symbols)), dtype=bool)
    parts = [
        never if value is None else _booleans(value, data, f"signals.{name}") & listed
        for name, value in (("entries", sig.entries), ("exits", sig.exits),
                            ("short_entries", sig.short_entries), ("short_exits", sig.short_exits))
    ]  # fmt: skip
    out = np.empty((ts.shape[0], len(symbols)), dtype=np.float64)
    state = np.empty(ts.shape[0], dtype=np.float64)
    for k in range(len(symbols)):
        columns = [np.ascontiguousarray(p[:, k]) for p in parts]
        hold_state_into_nb(*columns, state)
        out[:, k] = state * sig.size
    return out


def caller_targets(targets: TargetsInput, data: Dataset | PortfolioDataset) -> np.ndarray:
    """The caller's targets (or signals) on the run's clock: float64, finite, (n,) for one
    symbol, (n, K) for a portfolio, 0 where a symbol is not listed; a ConfigError naming what
    is misshapen, misaligned or not finite."""
    if isinstance(targets, Signals):
        return _finished(_from_signals(targets, data), data, "signals")
    return _finished(_numbers(targets, data, "targets"), data, "targets")


def _target_column(data: Dataset, column: str) -> np.ndarray:
    """`features.extra_column`, its error naming the request's field for the targets."""
    try:
        return extra_column(data, column)
    except ConfigError as exc:
        raise ConfigError(
            "unknown dataset column", [("strategy.params.column", m) for _, m in exc.errors]
        ) from None


def column_targets(data: Dataset | PortfolioDataset, column: str) -> np.ndarray:
    """The targets a dataset's extra column holds, as they are (not shifted). A portfolio's
    symbols each hold the column: at a clock bar where a listed symbol has no bar (a gap) its
    target is its last bar's."""
    if not isinstance(data, PortfolioDataset):
        return _finished(_target_column(data, column)[:, None], data, f"data column {column!r}")
    out = np.full((len(data), data.n_symbols), np.nan)
    for k, symbol in enumerate(data.symbols):
        try:
            values = _target_column(data.members[symbol], column)
        except ConfigError as exc:
            named = ConfigError(f"symbol {symbol!r}: {exc}")
            named.errors = [(f, f"symbol {symbol!r}: {m}") for f, m in exc.errors]
            raise named from None
        out[data.positions[k], k] = values
        bad = ~np.isfinite(values)
        if bad.any():
            first = int(np.flatnonzero(bad)[0])
            raise _bad(f"data column {column!r}", f"symbol {symbol!r}: NaN or infinite at its "
                       f"bar {first} (use 0 for flat)")  # fmt: skip
    filled = pd.DataFrame(out).ffill().to_numpy()  # gaps hold the last bar's target
    return _finished(filled, data, f"data column {column!r}")


def own_targets(
    params: Mapping[str, Any], data: Dataset | PortfolioDataset, targets: TargetsInput | None
) -> np.ndarray:
    """The targets of a run of the reserved strategy `targets` (its `params`): those handed in,
    else the data column `params["column"]` (a ConfigError where there is neither)."""
    if targets is not None:
        return caller_targets(targets, data)
    column = params.get("column")
    if column is None:
        raise ConfigError("invalid request", [("strategy.params.column", f"strategy "
                          f"{TARGETS_STRATEGY!r} takes its targets from a data column (name it "
                          "here) or from btlab.run(..., targets=...)")])  # fmt: skip
    return column_targets(data, str(column))


def targets_identity(target: np.ndarray) -> tuple[str, tuple[int, ...]]:
    """(sha256, shape) of the final targets: what joins the config hash."""
    h = hashlib.sha256()
    h.update(_HASH_FORMAT)
    h.update(len(target.shape).to_bytes(8, "little"))
    for dim in target.shape:
        h.update(int(dim).to_bytes(8, "little"))
    h.update(np.ascontiguousarray(target + 0.0, dtype="<f8").tobytes())
    return h.hexdigest(), tuple(int(d) for d in target.shape)
