"""Reloading a run from its artifacts: `load(folder_or_run_id)` gives back the `RunResult`,
`PortfolioResult` or `SweepResult` that wrote them (`btlab run`, `btlab sweep`,
`write_artifacts`, or a stored run of the service, by id).

Nothing is read before the folder is checked against its manifest (`verify_artifacts`): a
missing or changed artifact is an error naming the file. Then:

- the config is parsed from the manifest's request (the request as hashed, every default filled
  in) with the data section as requested (`labels.data`); `config_hash` and the data's
  `identity` are the manifest's. A request the engine no longer parses into the same hashed
  request (a default changed since) is said by a `config_differs` warning.
- the arrays are rebuilt from the tables with the kernels' dtypes (`kernels.dtypes`), so the
  frames are the results' own views of them (`RunResult.equity` ...), equal to the written ones
  to the tables' 12 significant digits. Fields no table holds are derived: a fill's
  `borrow_cum` from the per-bar borrow (before the bar's borrow for fills at the open and
  intrabar exits, after it for fills at the close), `flags` from the `ruined` / `halted`
  metrics and `halt_bar` from the equity path, a portfolio's per-symbol borrow from each bar's
  total shared among the shorts held over the bar by value (the engine's rule; checked against
  the symbols table's totals, `borrow_apportioned` where they disagree), its target re-computed
  by its strategy on the re-loaded bars.
- the bars are re-loaded from the data section (synthetic: generated again; files and stored
  datasets: read again) and used only where their content hash is the manifest's
  `dataset_hash`. A single-symbol run whose bars cannot be had again (handed to `run()`, a file
  changed or gone) gets the bars the artifacts hold: the timestamps and the close where the
  equity table has one (else NaN; open, high, low and volume NaN), said by `bars_not_reloaded`.
  A portfolio run or a sweep needs its bars (the target, the marks, the best combination's
  re-run), so there it is a DataError saying why.
- metrics come from metrics.json (null back to NaN), validation from validation.json as written
  (null where undefined), the warnings from the manifest (then the reload's own).

A sweep folder holds no per-bar tables: its best combination is re-run on the re-loaded bars
(as `run_sweep` runs it) and checked against metrics.json (`best_run_differs` where the engine
no longer gives the same numbers). What no artifact records is left empty: `timings_ms`, and a
sweep's `fused` (how its pass ran) is False.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from btlab.kernels.dtypes import FILL_DTYPE, REASON_NAMES, TRADE_DTYPE, Flag, Reason

from .artifacts import MANIFEST, verify_artifacts
from .config import RunConfig, parse_config
from .data import Dataset, DatasetMeta, dataset_hash
from .data.portfolio import PortfolioDataset
from .errors import BtlabError, DataError, RunError
from .features import FeatureStore
from .hashing import canonical_json, canonicalize
from .metric_registry import BY_NAME, METRIC_NAMES
from .pipeline import hashed_request, load_dataset
from .portfolio_features import PortfolioFeatureStore
from .portfolio_run import PortfolioResult, _marks, portfolio_strategy
from .portfolio_strategies import compute_portfolio_target
from .run_folders import run_folder
from .run_result import DataIdentity, RunResult
from .run_warnings import RunWarning
from .store import DB_NAME, Store, default_home
from .sweep import SweepRequest, SweepResult, parse_sweep_request
from .sweep.run import _single_run

__all__ = ["ArtifactError", "load"]

Result = RunResult | PortfolioResult | SweepResult


class ArtifactError(RunError):
    """An artifact folder that does not match its manifest, or lacks what a reload reads."""


def load(
    folder_or_run_id: str | os.PathLike[str], *, store: Store | str | Path | None = None
) -> Result:
    """The result an artifact folder (a path) or a stored run (its id) holds; see the module
    docstring. `store`: the btlab home to look run ids and stored datasets up in — a `Store`,
    or its folder (default: ``$BTLAB_HOME`` or ``~/.btlab``, never created).

    NotFoundError for an unknown folder or run, ArtifactError for a folder that does not match
    its manifest, DataError for a portfolio or sweep whose bars cannot be re-loaded.
    """
    with _opened(store) as (held, home):
        folder = run_folder(folder_or_run_id, held, home)
        manifest = _verified_manifest(folder)
        if manifest.get("kind") == "sweep":
            return _load_sweep(folder, manifest, held)
        if "positions.parquet" in manifest["artifacts"]:
            return _load_portfolio(folder, manifest, held)
        return _load_single(folder, manifest, held)


@contextmanager
def _opened(store: Store | str | Path | None) -> Iterator[tuple[Store | None, Path]]:
    """(the store, its home): the one given, or the home's where it exists (closed after)."""
    if isinstance(store, Store):
        yield store, store.home
        return
    home = Path(store).expanduser() if store is not None else default_home()
    opened = Store(home) if (home / DB_NAME).is_file() else None
    try:
        yield opened, home
    finally:
        if opened is not None:
            opened.close()


def _verified_manifest(folder: Path) -> dict[str, Any]:
    try:
        problems = verify_artifacts(folder)
        manifest: dict[str, Any] = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ArtifactError(
            f"{folder / MANIFEST} is not a readable btlab manifest: {exc}"
        ) from None
    if problems:
        raise ArtifactError(
            f"artifact folder {folder} does not match its manifest: {'; '.join(problems)}"
        )
    return manifest


# --- what the manifest says -----------------------------------------------------------------


def _identity(manifest: Mapping[str, Any]) -> DataIdentity:
    data = manifest["request"]["data"]
    return DataIdentity(data["identity"], data["timeframe"], data["calendar"], data["adjust"])


def _request_body(manifest: Mapping[str, Any]) -> tuple[dict[str, Any], list[RunWarning]]:
    """The request to parse (the hashed one with the data section as requested), and a warning
    where the manifest does not record that section."""
    labels = manifest.get("labels") or {}
    body = {**manifest["request"]}
    if isinstance(labels.get("data"), Mapping):
        body["data"] = labels["data"]
        return body, []
    ident = manifest["request"]["data"]
    body["data"] = {"timeframe": ident["timeframe"], "calendar": ident["calendar"]}
    return body, [
        RunWarning(
            "data_unknown",
            f"the manifest does not record the request's data section (the bars came from "
            f"{labels.get('location', 'an unknown source')}): config.data is a synthetic "
            "placeholder with the run's timeframe and calendar, not the run's data",
        )
    ]


def _config_warnings(config: RunConfig, manifest: Mapping[str, Any]) -> list[RunWarning]:
    """`config_differs` where the parsed config does not hash as the recorded request."""
    recorded = manifest["request"]
    parsed = json.loads(canonical_json(hashed_request(config, _identity(manifest))))
    differs = sorted(k for k in {*recorded, *parsed} if recorded.get(k) != parsed.get(k))
    if not differs:
        return []
    return [
        RunWarning(
            "config_differs",
            f"this engine parses the recorded request into another request ({', '.join(differs)} "
            "differ: a default or a parameter rule changed since the run): config is that "
            "parse, config_hash and the artifacts are the run's",
        )
    ]


def _recorded_warnings(manifest: Mapping[str, Any]) -> list[RunWarning]:
    return [RunWarning(w["code"], w["message"]) for w in manifest.get("warnings") or []]


def _json(folder: Path, name: str) -> Any:
    return json.loads((folder / name).read_text(encoding="utf-8"))


def _metrics(folder: Path) -> dict[str, Any]:
    """metrics.json in the registry's order (the file's keys are sorted) with its nulls back to
    NaN (JSON has no NaN: a metric's null is undefined)."""
    held: dict[str, Any] = _json(folder, "metrics.json")
    order = [*(k for k in METRIC_NAMES if k in held), *(k for k in held if k not in BY_NAME)]
    return {k: math.nan if held[k] is None and k in BY_NAME else held[k] for k in order}


def _validation(folder: Path) -> dict[str, Any] | None:
    held: dict[str, Any] = _json(folder, "validation.json")
    return None if held == {"enabled": False} else held


def _table(folder: Path, name: str) -> dict[str, np.ndarray]:
    """A table's columns as arrays (timestamps as int64 ns since the epoch, UTC)."""
    table = pq.read_table(folder / f"{name}.parquet")
    out: dict[str, np.ndarray] = {}
    for column in table.column_names:
        # a copy: writable, as a result's own arrays are
        values = np.array(table.column(column).to_numpy(zero_copy_only=False))
        if values.dtype.kind == "M":
            values = values.astype("datetime64[ns]").view(np.int64)
        out[column] = values
    return out


# --- the bars ----------------------------------------------------------------------------------


def _reloaded_bars(
    config: RunConfig, manifest: Mapping[str, Any], store: Store | None
) -> tuple[Dataset | PortfolioDataset | None, str | None]:
    """(the run's bars loaded again, None) where their content hash is the manifest's, else
    (None, why not)."""
    labels = manifest.get("labels") or {}
    location = str(labels.get("location", "its data source"))
    if location.endswith("handed to run()"):
        return None, f"the bars were handed to run() ({location}), the request names no source"
    if not isinstance(labels.get("data"), Mapping):
        return None, "the manifest does not record the request's data section"
    try:
        loaded = load_dataset(
            config,
            resolve_stored=None if store is None else store.load_dataset,
            resolve_portfolio=None if store is None else store.load_portfolio,
        )
    except (BtlabError, OSError) as exc:
        return None, f"the bars could not be loaded again from {location}: {exc}"
    want = str(manifest["dataset_hash"])
    if loaded.hash != want:
        return None, (
            f"the bars at {location} are not the run's any more (content hash "
            f"{loaded.hash[:16]}…, the run's {want[:16]}…)"
        )
    return loaded, None


def _bars_from_artifacts(manifest: Mapping[str, Any], equity: Mapping[str, np.ndarray]) -> Dataset:
    """The bars the artifacts hold: the timestamps, the close where the equity table has one."""
    ts = equity["ts"]
    nan = np.full(ts.shape[0], math.nan)
    close = np.asarray(equity["close"], dtype=np.float64) if "close" in equity else nan
    labels = manifest.get("labels") or {}
    meta = DatasetMeta(
        **manifest["dataset"],
        id=dataset_hash(ts, nan, nan, nan, close, nan),
        symbol=str(labels.get("symbol") or "?"),
        source="artifacts",
        timeframe_declared=bool(labels.get("timeframe_declared")),
        calendar_declared=bool(labels.get("calendar_declared")),
    )
    return Dataset(ts, nan, nan, nan, close, nan, None, meta)


def _required_bars(
    config: RunConfig, manifest: Mapping[str, Any], store: Store | None, what: str
) -> Dataset | PortfolioDataset:
    bars, why = _reloaded_bars(config, manifest, store)
    if bars is None:
        raise DataError(
            "bars_not_reloaded",
            f"{what} cannot be reloaded without its bars ({why}); the artifacts are readable "
            "as files (metrics.json, the Parquet tables)",
        )
    return bars


# --- the records -------------------------------------------------------------------------------


def _codes(names: np.ndarray, known: tuple[str, ...], what: str) -> np.ndarray:
    index = {name: i for i, name in enumerate(known)}
    try:
        return np.array([index[str(n)] for n in names], dtype=np.int64)
    except KeyError as exc:
        raise ArtifactError(f"unknown {what} {exc.args[0]!r} in the artifacts") from None


def _bars_of(ts: np.ndarray, stamps: np.ndarray) -> np.ndarray:
    bars: np.ndarray = np.searchsorted(ts, stamps).astype(np.int64)
    return bars


def _fill_records(
    fills: Mapping[str, np.ndarray], symbols: tuple[str, ...], fill_at_close: bool
) -> tuple[np.ndarray, np.ndarray]:
    """FILL_DTYPE records of a fills table (`borrow_cum` left for `_with_borrow_cum`), and
    which of them fill after their bar's borrow: at the close (ruin, end, orders filled at the
    close), not at the open or as an intrabar exit."""
    out = np.zeros(fills["bar"].shape[0], dtype=FILL_DTYPE)
    out["bar"] = fills["bar"]
    out["symbol"] = _codes(fills["symbol"], symbols, "symbol") if "symbol" in fills else 0
    sign = np.where(fills["side"] == "buy", 1.0, -1.0)
    out["units"] = sign * fills["units"]
    for name in ("price", "fill_price", "spread_cost", "slippage_cost", "commission"):
        out[name] = fills[name]
    out["position_after"] = fills["position_after"]
    out["reason"] = _codes(fills["reason"], REASON_NAMES, "fill reason")
    after = (out["reason"] == Reason.RUIN) | (out["reason"] == Reason.END)
    if fill_at_close:
        after |= out["reason"] == Reason.SIGNAL
    return out, after


def _with_borrow_cum(records: np.ndarray, after: np.ndarray, borrow: np.ndarray) -> np.ndarray:
    """`records` with the borrow paid up to each fill (`borrow`: (n, K) per bar and symbol)."""
    cum = np.cumsum(borrow, axis=0)
    row = np.where(after, records["bar"], records["bar"] - 1)
    records["borrow_cum"] = np.where(row >= 0, cum[np.maximum(row, 0), records["symbol"]], 0.0)
    return records


def _held_at_borrow(units: np.ndarray, records: np.ndarray, after: np.ndarray) -> np.ndarray:
    """(n, K) the units each symbol holds when its bar's borrow is charged: the last bar's,
    changed by the bar's fills before the borrow (the last of them per bar and symbol)."""
    k = units.shape[1]
    held = np.vstack([np.zeros((1, k)), units[:-1]])
    before = records[~after]
    keys = before["bar"] * k + before["symbol"]
    _, first_from_end = np.unique(keys[::-1], return_index=True)
    last = keys.shape[0] - 1 - first_from_end
    held.reshape(-1)[keys[last]] = before["position_after"][last]
    return held


def _trade_records(
    trades: Mapping[str, np.ndarray], ts: np.ndarray, symbols: tuple[str, ...]
) -> np.ndarray:
    out = np.zeros(trades["side"].shape[0], dtype=TRADE_DTYPE)
    out["entry_bar"] = _bars_of(ts, trades["entry_ts"])
    out["exit_bar"] = _bars_of(ts, trades["exit_ts"])
    out["symbol"] = _codes(trades["symbol"], symbols, "symbol") if "symbol" in trades else 0
    out["side"] = np.where(trades["side"] == "long", 1, -1)
    for name in ("units", "entry_price", "exit_price", "gross_pnl", "costs", "borrow"):
        out[name] = trades[name]
    out["net_pnl"] = trades["net_pnl"]
    out["return_"] = trades["return"]
    out["bars_held"] = trades["bars_held"]
    is_open = trades["exit_reason"] == "open"
    reasons = np.where(is_open, REASON_NAMES[0], trades["exit_reason"])
    out["exit_reason"] = np.where(is_open, -1, _codes(reasons, REASON_NAMES, "exit reason"))
    out["is_open"] = is_open
    return out


def _outcome(metrics: Mapping[str, Any], equity: np.ndarray, config: RunConfig) -> tuple[int, int]:
    """(flags, halt_bar) from the metrics' ruined / halted and the equity path: ruin at the first
    close at or below 0, a halt at the first close `max_drawdown` below the peak (the initial
    cash counts as one), as the engine decides them."""
    flags = (Flag.RUINED if metrics.get("ruined") else 0) | (
        Flag.HALTED_MAX_DRAWDOWN if metrics.get("halted") else 0
    )
    if flags & Flag.RUINED:
        return flags, int(np.argmax(equity <= 0.0))
    if flags & Flag.HALTED_MAX_DRAWDOWN:
        peak = np.maximum.accumulate(np.maximum(equity, config.execution.initial_cash))
        depth = equity / peak - 1.0
        limit = -(config.risk.max_drawdown or 0.0)
        # the tables' 12 digits may put the limit's own bar a hair above it
        hit = np.flatnonzero(depth <= limit + 1e-9)
        return flags, int(hit[0]) if hit.size else int(np.argmin(depth))
    return flags, -1


# --- the kinds ---------------------------------------------------------------------------------


def _load_single(folder: Path, manifest: dict[str, Any], store: Store | None) -> RunResult:
    body, warnings = _request_body(manifest)
    config = parse_config(body)
    equity = _table(folder, "equity")
    bars, why = _reloaded_bars(config, manifest, store)
    if bars is not None and not isinstance(bars, Dataset):
        bars, why = None, "the re-loaded data is a portfolio's"
    if bars is None:
        bars = _bars_from_artifacts(manifest, equity)
        close = "the close from the equity table" if "close" in equity else "no close (NaN)"
        warnings.append(
            RunWarning(
                "bars_not_reloaded",
                f"{why}: the dataset holds the artifacts' timestamps and {close}; open, high, "
                "low and volume are NaN (metrics, tables and arrays are the run's)",
            )
        )
    elif not np.array_equal(bars.ts, equity["ts"]):
        raise ArtifactError(f"{folder}: the equity table's timestamps are not the bars'")
    metrics = _metrics(folder)
    values = {k: np.asarray(equity[k], dtype=np.float64) for k in
              ("target", "units", "cash", "equity", "borrow")}  # fmt: skip
    records, after = _fill_records(_table(folder, "fills"), ("",), config.execution.fill == "close")
    fills = _with_borrow_cum(records, after, values["borrow"][:, None])
    flags, halt_bar = _outcome(metrics, values["equity"], config)
    return RunResult(
        config=config, config_hash=manifest["config_hash"], dataset=bars,
        target=values["target"], units=values["units"], cash=values["cash"],
        equity_values=values["equity"], borrow=values["borrow"], fill_records=fills,
        trade_records=_trade_records(_table(folder, "trades"), equity["ts"], ("",)),
        metrics=metrics, validation=_validation(folder), flags=flags, halt_bar=halt_bar,
        warnings=[*_recorded_warnings(manifest), *warnings, *_config_warnings(config, manifest)],
        identity=_identity(manifest), benchmark_equity=_benchmark(equity),
    )  # fmt: skip


def _benchmark(equity: Mapping[str, Any]) -> np.ndarray | None:
    """The benchmark's equity path as the equity table holds it (None where it was off)."""
    return np.asarray(equity["benchmark"], dtype=np.float64) if "benchmark" in equity else None


def _load_portfolio(folder: Path, manifest: dict[str, Any], store: Store | None) -> PortfolioResult:
    body, warnings = _request_body(manifest)
    config = parse_config(body)
    bars = _required_bars(config, manifest, store, "a portfolio run")
    if not isinstance(bars, PortfolioDataset):
        raise ArtifactError(f"{folder}: a portfolio's artifacts, but its data is one symbol's")
    equity = _table(folder, "equity")
    n, k = bars.close.shape
    positions = _table(folder, "positions")
    if positions["symbol"].shape[0] != n * k or list(positions["symbol"][:k]) != list(bars.symbols):
        raise ArtifactError(f"{folder}: positions.parquet is not one row per bar and symbol")
    units = np.asarray(positions["units"], dtype=np.float64).reshape(n, k)
    marks = _marks(bars.close)
    records, after = _fill_records(
        _table(folder, "fills"), bars.symbols, config.execution.fill == "close"
    )
    # each bar's borrow of all symbols, shared by the value each short held over the bar (the
    # rate and the bar's length are every symbol's): the engine's split, checked against each
    # symbol's total in the symbols table
    total = np.asarray(equity["borrow"], dtype=np.float64)
    held = _held_at_borrow(units, records, after)
    short = np.where(held < 0.0, -held * np.nan_to_num(marks), 0.0)
    weight = short.sum(axis=1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        borrow = np.where(weight > 0.0, total[:, None] * short / weight, 0.0)
    by_symbol = np.asarray(_table(folder, "symbols")["borrow"], dtype=np.float64)
    if not np.allclose(borrow.sum(axis=0), by_symbol, rtol=1e-9, atol=1e-9 * max(total.sum(), 1.0)):
        warnings.append(
            RunWarning(
                "borrow_apportioned",
                "the artifacts hold each bar's borrow of all symbols, not each symbol's, and "
                "sharing it among the shorts held over the bar by value does not give each "
                "symbol's total of the symbols table: PortfolioResult.borrow is that share",
            )
        )
    name, params = portfolio_strategy(config.strategy.name, config.strategy.params)
    target = compute_portfolio_target(PortfolioFeatureStore(bars), name, params)
    fills = _with_borrow_cum(records, after, borrow)
    metrics = _metrics(folder)
    values = np.asarray(equity["equity"], dtype=np.float64)
    flags, halt_bar = _outcome(metrics, values, config)
    return PortfolioResult(
        config=config, config_hash=manifest["config_hash"], dataset=bars, target=target,
        units=units, cash=np.asarray(equity["cash"], dtype=np.float64), equity_values=values,
        borrow=borrow, marks=marks, fill_records=fills,
        trade_records=_trade_records(_table(folder, "trades"), bars.ts, bars.symbols),
        metrics=metrics, validation=_validation(folder), flags=flags, halt_bar=halt_bar,
        warnings=[*_recorded_warnings(manifest), *warnings, *_config_warnings(config, manifest)],
        identity=_identity(manifest), benchmark_equity=_benchmark(equity),
    )  # fmt: skip


def _load_sweep(folder: Path, manifest: dict[str, Any], store: Store | None) -> SweepResult:
    body, warnings = _request_body(manifest)
    request: SweepRequest = parse_sweep_request(body)
    bars = _required_bars(request, manifest, store, "a sweep")
    if not isinstance(bars, Dataset):
        raise ArtifactError(f"{folder}: a sweep's artifacts, but its data is a portfolio's")
    identity = _identity(manifest)
    summary = _json(folder, "sweep.json")
    metrics = _metrics(folder)
    params, fields = summary["best"]["params"], summary["best"].get("fields")
    ppy = request.metrics.periods_per_year or bars.meta.periods_per_year
    best_run = _single_run(
        request.run_config(params, fields), bars, FeatureStore(bars), ppy, identity
    )
    if canonicalize(best_run.metrics) != canonicalize(metrics):
        warnings.append(
            RunWarning(
                "best_run_differs",
                "the best combination re-run here does not give the metrics.json of the sweep "
                "(the engine changed since?): metrics are the artifacts', best_run this re-run",
            )
        )
    table = pq.read_table(folder / "sweep.parquet").to_pandas()
    return SweepResult(
        request=request, config_hash=manifest["config_hash"], dataset=bars, identity=identity,
        expansion=request.expansion, table=pd.DataFrame(table),
        best={"combo": summary["best"]["combo"], "params": params, "metrics": metrics,
              **({"fields": fields} if fields is not None else {})},
        best_run=best_run, heatmap_json=_json(folder, "heatmap.json"),
        validation=_validation(folder), fused=False,
        warnings=[*_recorded_warnings(manifest), *warnings, *_config_warnings(request, manifest)],
    )  # fmt: skip
