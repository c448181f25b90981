"""The run pipeline: data -> features -> strategy -> simulate -> metrics -> validation.

`run()` is the one entry point used by Python research code, the CLI and the service. It
returns a `RunResult` holding the arrays; DataFrames are built on first access so the hot
path stays in NumPy.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, MutableMapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Generic, TypeVar

import numpy as np
import pandas as pd

from btlab.kernels.dtypes import REASON_NAMES, FillAt, Flag, Sizing, Status
from btlab.kernels.execution import (
    ST_BORROW_CUM,
    ST_FLAGS,
    ST_HALT_BAR,
    ST_N_FILLS,
    BarInputs,
    ExecParams,
    OrderInputs,
    SimBuffers,
    new_state,
    sim_buffers,
    simulate_nb,
    with_fill_retry,
)
from btlab.kernels.ledger import trades_from_fills

from . import data as data_mod
from .config import FeatureSpec, FileData, RunConfig, SyntheticData, parse_config
from .errors import RunCancelled
from .features import FeatureStore
from .hashing import canonical_json, sha256_hex
from .kernel_status import raise_for_status
from .metrics import compute_metrics, drawdown_path
from .run_warnings import (
    RunWarning,
    dataset_warnings,
    outcome_warnings,
    validation_warnings,
    warmup_warnings,
)
from .strategies import compute_target, required_features
from .timeframes import canonical_timeframe

EventSink = Callable[[str, dict[str, Any]], None]
CancelCheck = Callable[[], bool]

#: Bars per kernel call: progress and cancellation are checked between chunks.
SIMULATION_CHUNK = 1 << 18

K = TypeVar("K")
V = TypeVar("V")


class LRU(MutableMapping[K, V], Generic[K, V]):
    """A small thread-safe least-recently-used mapping, bounded by count and, with `weigh`, by
    the total weight (bytes) of its values; the newest value is kept even when alone too heavy."""

    def __init__(
        self, maxsize: int, max_weight: int | None = None, weigh: Callable[[V], int] | None = None
    ) -> None:
        self.maxsize = maxsize
        self.max_weight = max_weight
        self._weigh = weigh
        self._data: OrderedDict[K, V] = OrderedDict()
        self._weights: dict[K, int] = {}
        self._lock = threading.Lock()

    @property
    def weight(self) -> int:
        return sum(self._weights.values())

    def __getitem__(self, key: K) -> V:
        with self._lock:
            value = self._data[key]
            self._data.move_to_end(key)
            return value

    def __setitem__(self, key: K, value: V) -> None:
        with self._lock:
            self._data[key] = value
            self._data.move_to_end(key)
            if self._weigh is not None:
                self._weights[key] = self._weigh(value)
            while len(self._data) > self.maxsize or (
                self.max_weight is not None
                and len(self._data) > 1
                and sum(self._weights.values()) > self.max_weight
            ):
                old, _ = self._data.popitem(last=False)
                self._weights.pop(old, None)

    def __delitem__(self, key: K) -> None:
        with self._lock:
            del self._data[key]
            self._weights.pop(key, None)

    def __iter__(self) -> Any:
        with self._lock:
            return iter(list(self._data))

    def __len__(self) -> int:
        return len(self._data)


def _dataset_bytes(dataset: data_mod.Dataset) -> int:
    arrays = (dataset.ts, dataset.open, dataset.high, dataset.low, dataset.close, dataset.volume)
    extra = dataset.adj_close.nbytes if dataset.adj_close is not None else 0
    return sum(a.nbytes for a in arrays) + extra


#: What the warm cache of a process may hold: datasets and shifted features are kept between
#: runs, so without a byte bound a few large runs would pin gigabytes for good.
CACHE_BYTES = 512 << 20


class RunCache:
    """Datasets and shifted features shared across runs of one process (the service's warm path),
    each kind bounded by a count and by `max_bytes` of arrays."""

    def __init__(
        self, max_datasets: int = 8, max_features: int = 256, max_bytes: int = CACHE_BYTES
    ) -> None:
        self.datasets: LRU[str, data_mod.Dataset] = LRU(max_datasets, max_bytes, _dataset_bytes)
        self.features: LRU[str, np.ndarray] = LRU(max_features, max_bytes, lambda a: a.nbytes)


@dataclass(eq=False)
class RunResult:
    """Everything one run produced. Arrays are the source of truth; frames are views built on demand."""

    config: RunConfig
    config_hash: str
    dataset: data_mod.Dataset
    target: np.ndarray
    units: np.ndarray
    cash: np.ndarray
    equity_values: np.ndarray
    borrow: np.ndarray
    fill_records: np.ndarray
    trade_records: np.ndarray
    metrics: dict[str, Any]
    validation: dict[str, Any] | None
    flags: int
    halt_bar: int
    timings_ms: dict[str, float] = field(default_factory=dict)
    #: What makes this result degenerate (short data, no trades, undefined numbers, ruin...).
    warnings: list[RunWarning] = field(default_factory=list)
    identity: DataIdentity | None = None  # the data's identity in the config hash

    @property
    def ruined(self) -> bool:
        return bool(self.flags & Flag.RUINED)

    @property
    def halted(self) -> bool:
        return bool(self.flags & Flag.HALTED_MAX_DRAWDOWN)

    def _ts(self, bars: np.ndarray) -> pd.DatetimeIndex:
        return pd.DatetimeIndex(self.dataset.ts[bars].astype("datetime64[ns]"), tz="UTC")

    @cached_property
    def equity(self) -> pd.DataFrame:
        """Per bar: ts, target, units, cash, equity, exposure, drawdown, borrow."""
        eq = self.equity_values
        with np.errstate(divide="ignore", invalid="ignore"):
            exposure = self.units * self.dataset.close / eq
        drawdown = drawdown_path(eq)
        return pd.DataFrame(
            {
                "ts": self._ts(np.arange(eq.shape[0])),
                "target": self.target,
                "units": self.units,
                "cash": self.cash,
                "equity": eq,
                "exposure": exposure,
                "drawdown": drawdown,
                "borrow": self.borrow,
            }
        )

    @cached_property
    def fills(self) -> pd.DataFrame:
        """Per fill: ts, bar, side, units, price, fill price, cost parts, reason, position after."""
        f = self.fill_records
        return pd.DataFrame(
            {
                "ts": self._ts(f["bar"]),
                "bar": f["bar"],
                "side": np.where(f["units"] > 0, "buy", "sell"),
                "units": np.abs(f["units"]),
                "price": f["price"],
                "fill_price": f["fill_price"],
                "spread_cost": f["spread_cost"],
                "slippage_cost": f["slippage_cost"],
                "commission": f["commission"],
                "reason": np.array(REASON_NAMES, dtype=object)[f["reason"]]
                if f.size
                else np.array([], dtype=object),
                "position_after": f["position_after"],
            }
        )

    @cached_property
    def trades(self) -> pd.DataFrame:
        """Per round trip: entry/exit ts and price, side, units, P&L, return, bars held, costs, exit reason."""
        t = self.trade_records
        reasons = np.array([*REASON_NAMES, "open"], dtype=object)  # index -1 -> "open"
        return pd.DataFrame(
            {
                "entry_ts": self._ts(t["entry_bar"]),
                "exit_ts": self._ts(t["exit_bar"]),
                "side": np.where(t["side"] > 0, "long", "short"),
                "units": t["units"],
                "entry_price": t["entry_price"],
                "exit_price": t["exit_price"],
                "gross_pnl": t["gross_pnl"],
                "costs": t["costs"],
                "borrow": t["borrow"],
                "net_pnl": t["net_pnl"],
                "return": t["return_"],
                "bars_held": t["bars_held"],
                "exit_reason": reasons[t["exit_reason"]] if t.size else np.array([], dtype=object),
            }
        )


@dataclass(frozen=True)
class DataIdentity:
    """What makes data "the same" for the config hash: its identity, not where it was found.

    `id` is the content hash of the bars (files, stored datasets, DataFrames) or, for the
    synthetic provider, the hash of its canonical spec (`synthetic_data.spec_identity`), so a
    synthetic request hashes without generating a bar. Symbol and file path are labels.
    """

    id: str
    timeframe: str
    calendar: str
    adjust: bool

    def payload(self) -> dict[str, Any]:
        return {"identity": self.id, "timeframe": self.timeframe, "calendar": self.calendar,
                "adjust": self.adjust}  # fmt: skip


def data_identity(config: RunConfig, dataset: data_mod.Dataset | None = None) -> DataIdentity:
    """The identity of a request's data: the synthetic spec's when `dataset` is None (the data
    the request itself names), else the content of `dataset` with its effective timeframe and
    calendar."""
    if dataset is not None:
        m = dataset.meta
        return DataIdentity(dataset.hash, m.timeframe, m.calendar, m.adjusted)
    spec = config.data
    if not isinstance(spec, SyntheticData):
        raise TypeError(f"the identity of {spec.source!r} data is its content: pass the dataset")
    from .synthetic_data import spec_identity

    return DataIdentity(
        spec_identity(spec), canonical_timeframe(spec.timeframe), spec.calendar, spec.adjust
    )


def hashed_request(config: RunConfig, identity: DataIdentity) -> dict[str, Any]:
    """The request as hashed and recorded: every default filled in, the data section replaced by
    the data's identity (so a path, a stored id or a symbol name does not make another run)."""
    payload = config.hash_payload()
    payload["data"] = identity.payload()
    return payload


def config_hash(config: RunConfig, identity: DataIdentity) -> str:
    """sha256 of the canonical request (defaults filled in) with the data's identity."""
    return sha256_hex(canonical_json({"request": hashed_request(config, identity)}).encode())


def run_identity(
    config: RunConfig, dataset: data_mod.Dataset, *, explicit: bool = False
) -> DataIdentity:
    """The identity a run records: its synthetic spec's, unless the bars were handed in."""
    synthetic = isinstance(config.data, SyntheticData) and not explicit
    return data_identity(config, None if synthetic else dataset)


def _data_cache_key(config: RunConfig) -> str | None:
    spec = config.data
    if isinstance(spec, FileData):
        try:
            stat = Path(spec.path).stat()
        except OSError:
            return None  # let the loader report the missing file
        return canonical_json(
            {**spec.model_dump(mode="json"), "mtime_ns": stat.st_mtime_ns, "size": stat.st_size}
        )
    return canonical_json(spec.model_dump(mode="json"))


def load_dataset(
    config: RunConfig,
    data: pd.DataFrame | data_mod.Dataset | None = None,
    *,
    resolve_stored: Callable[[str], data_mod.Dataset] | None = None,
    cache: RunCache | None = None,
) -> data_mod.Dataset:
    """The run's dataset: `data` when given (adjusted if the config asks), else the config's source."""
    if data is not None:
        dataset = data if isinstance(data, data_mod.Dataset) else data_mod.from_dataframe(data)
        return data_mod.adjust(dataset) if config.data.adjust else dataset
    key = _data_cache_key(config) if cache is not None else None
    if cache is not None and key is not None and key in cache.datasets:
        return cache.datasets[key]
    dataset = data_mod.load(config.data, resolve_stored=resolve_stored)
    if cache is not None and key is not None:
        cache.datasets[key] = dataset
    return dataset


def resolve_config(
    config: RunConfig | Mapping[str, Any] | None,
    data: pd.DataFrame | data_mod.Dataset | None = None,
    *,
    resolve_stored: Callable[[str], data_mod.Dataset] | None = None,
    cache: RunCache | None = None,
) -> tuple[RunConfig, data_mod.Dataset, str]:
    """(config, dataset, config hash) without running anything: what decides "the same run"."""
    cfg = parse_config(config)
    dataset = load_dataset(cfg, data, resolve_stored=resolve_stored, cache=cache)
    return cfg, dataset, config_hash(cfg, run_identity(cfg, dataset, explicit=data is not None))


def exec_params(config: RunConfig) -> ExecParams:
    """The kernel's scalar settings from a request."""
    ex, risk = config.execution, config.risk
    sizing = {"fraction": Sizing.FRACTION, "units": Sizing.UNITS, "vol_target": Sizing.VOL_TARGET}[
        risk.sizing
    ]
    return ExecParams(
        initial_cash=ex.initial_cash,
        fill_at=FillAt.OPEN if ex.fill == "open" else FillAt.CLOSE,
        every_bar=ex.rebalance == "every_bar",
        sizing=sizing,
        unit_size=risk.units,
        max_leverage=risk.max_leverage,
        lot_size=ex.lot_size,
        spread_bps=ex.spread_bps,
        slippage_bps=ex.slippage_bps,
        commission_bps=ex.commission_bps,
        commission_fixed=ex.commission_fixed,
        commission_min=ex.commission_min,
        borrow_rate_annual=ex.borrow_rate_annual,
        skip_zero_volume=ex.skip_zero_volume,
        stop_loss=risk.stop_loss or 0.0,
        take_profit=risk.take_profit or 0.0,
        max_drawdown=risk.max_drawdown or 0.0,
        close_at_end=ex.close_at_end,
    )


def sizing_features(config: RunConfig) -> list[FeatureSpec]:
    """The features the sizing reads: the realized volatility for vol_target, else none."""
    risk = config.risk
    if risk.sizing != "vol_target":
        return []
    return [FeatureSpec(name="rolling_vol", params={"window": risk.vol_lookback})]


def read_features(config: RunConfig, params: Mapping[str, Any] | None = None) -> list[FeatureSpec]:
    """The features a run's targets and sizes are made from: the strategy's (with `params`,
    default the request's) and the sizing's (the request's extra `features` are only computed)."""
    strategy = required_features(
        config.strategy.name, config.strategy.params if params is None else params
    )
    return [*strategy, *sizing_features(config)]


def size_scale(
    config: RunConfig, store: FeatureStore, n: int, periods_per_year: float
) -> np.ndarray:
    """Per-bar size multiplier: ones, or `min(max_leverage, vol_target / realized_vol)` for vol_target.

    The realized volatility is the registry's (shifted) rolling std of log returns, annualized.
    Where it is not yet known (warm-up) the scale is NaN: unknown, not zero, so the kernel holds
    an order that needs it until the first bar where it is known (SPEC §3, as on a bar without
    volume). A zero volatility gives the leverage cap.
    """
    risk = config.risk
    if risk.sizing != "vol_target":
        return np.ones(n)
    vol = store.get(sizing_features(config)[0]) * math.sqrt(periods_per_year)
    with np.errstate(divide="ignore", invalid="ignore"):
        scale: np.ndarray = np.minimum(risk.max_leverage, risk.vol_target_annual / vol)
    return scale


@dataclass
class Simulation:
    units: np.ndarray
    cash: np.ndarray
    equity: np.ndarray
    borrow: np.ndarray
    fills: np.ndarray
    flags: int
    halt_bar: int
    borrow_total: float


def simulate_chunked(
    dataset: data_mod.Dataset,
    target: np.ndarray,
    scale: np.ndarray,
    params: ExecParams,
    *,
    on_progress: Callable[[int, int], None] | None = None,
    should_cancel: CancelCheck | None = None,
    chunk: int = SIMULATION_CHUNK,
) -> Simulation:
    """Run the execution kernel over the dataset in chunks (bit-identical to one call)."""
    n = len(dataset)
    bars = BarInputs(
        dataset.ts, dataset.open, dataset.high, dataset.low, dataset.close, dataset.volume
    )
    orders = OrderInputs(target, scale)
    state = new_state(params.initial_cash)
    result: list[SimBuffers] = []

    def run(capacity: int) -> int:
        state[:] = new_state(params.initial_cash)
        result[:] = [sim_buffers(n, capacity)]
        for start in range(0, n, chunk):
            if should_cancel is not None and should_cancel():
                raise RunCancelled("run cancelled during simulation")
            stop = min(n, start + chunk)
            status = int(simulate_nb(bars, orders, params, state, result[0], start, stop))
            if status != Status.OK:
                return status
            if on_progress is not None:
                on_progress(stop, n)
        return int(Status.OK)

    raise_for_status(with_fill_retry(n, run), "in the simulation")
    out = result[0]
    k = int(state[ST_N_FILLS])
    return Simulation(
        out.units, out.cash, out.equity, out.borrow, out.fills[:k].copy(), int(state[ST_FLAGS]),
        int(state[ST_HALT_BAR]), float(state[ST_BORROW_CUM]),
    )  # fmt: skip


class Stages:
    """The one stage runner of every kind of run: emits stage events with timings and checks
    for cancellation between stages (`kind` names the run in the cancel message)."""

    def __init__(
        self, on_event: EventSink | None, should_cancel: CancelCheck | None, kind: str = "run"
    ) -> None:
        self.on_event = on_event
        self.should_cancel = should_cancel
        self.kind = kind
        self.timings: dict[str, float] = {}

    def run(self, name: str, fn: Callable[[], V]) -> V:
        if self.should_cancel is not None and self.should_cancel():
            raise RunCancelled(f"{self.kind} cancelled before stage {name}")
        if self.on_event is not None:
            self.on_event("stage", {"stage": name, "status": "started"})
        start = time.perf_counter()
        value = fn()
        elapsed = (time.perf_counter() - start) * 1e3
        self.timings[name] = elapsed
        if self.on_event is not None:
            self.on_event(
                "stage", {"stage": name, "status": "done", "elapsed_ms": round(elapsed, 3)}
            )
        return value

    def progress(self, stage: str) -> Callable[[int, int], None] | None:
        sink = self.on_event
        if sink is None:
            return None
        return lambda done, total: sink("progress", {"stage": stage, "done": done, "total": total})


def run(
    config: RunConfig | Mapping[str, Any] | None = None,
    data: pd.DataFrame | data_mod.Dataset | None = None,
    *,
    on_event: EventSink | None = None,
    should_cancel: CancelCheck | None = None,
    resolve_stored: Callable[[str], data_mod.Dataset] | None = None,
    cache: RunCache | None = None,
) -> RunResult:
    """Run one backtest. `config` is a RunConfig or a mapping (None: all defaults, the synthetic data).

    `data` (a DataFrame with ts/open/high/low/close/volume, or a Dataset) replaces the config's
    data source. Raises ConfigError, DataError or RunCancelled.
    """
    stages = Stages(on_event, should_cancel)
    cfg = stages.run("validate", lambda: parse_config(config))
    dataset = stages.run(
        "load_data", lambda: load_dataset(cfg, data, resolve_stored=resolve_stored, cache=cache)
    )
    identity = run_identity(cfg, dataset, explicit=data is not None)
    chash = config_hash(cfg, identity)
    n = len(dataset)
    ppy = cfg.metrics.periods_per_year or dataset.meta.periods_per_year
    feature_cache = cache.features if cache is not None else None
    store = FeatureStore(dataset, cache=feature_cache)

    read = read_features(cfg)

    def features() -> None:
        for spec in [*cfg.features, *read]:
            store.get(spec)

    stages.run("features", features)
    target = stages.run(
        "strategy", lambda: compute_target(store, cfg.strategy.name, cfg.strategy.params, n)
    )
    scale = size_scale(cfg, store, n, ppy)
    params = exec_params(cfg)
    sim = stages.run(
        "simulate",
        lambda: simulate_chunked(
            dataset,
            target,
            scale,
            params,
            on_progress=stages.progress("simulate"),
            should_cancel=should_cancel,
        ),
    )
    trades = trades_from_fills(sim.fills, n - 1, float(dataset.close[-1]), sim.borrow_total)
    metrics = stages.run(
        "metrics",
        lambda: compute_metrics(
            dataset.ts, dataset.close, sim.equity, sim.units, sim.borrow, sim.fills, trades,
            initial_cash=cfg.execution.initial_cash, periods_per_year=ppy,
            ruined=bool(sim.flags & Flag.RUINED), halted=bool(sim.flags & Flag.HALTED_MAX_DRAWDOWN),
        ),
    )  # fmt: skip
    result = RunResult(
        config=cfg, config_hash=chash, dataset=dataset, target=target, units=sim.units, cash=sim.cash,
        equity_values=sim.equity, borrow=sim.borrow, fill_records=sim.fills, trade_records=trades,
        metrics=metrics, validation=None, flags=sim.flags, halt_bar=sim.halt_bar,
        identity=identity,
    )  # fmt: skip
    if cfg.validation.enabled:
        from .validate_run import validate_result

        result.validation = stages.run(
            "validation", lambda: validate_result(result, store, on_progress=stages.progress("validation"),
                                                  should_cancel=should_cancel, cache=cache)
        )  # fmt: skip
    result.warnings = [
        *dataset_warnings(dataset), *warmup_warnings(store, read), *outcome_warnings(result),
        *validation_warnings(result.validation, result.metrics),
    ]  # fmt: skip
    result.timings_ms = stages.timings
    return result
