"""Parameter sweeps: every combination of a grid of strategy parameters in one parallel pass.

A `SweepRequest` is a run request plus `grid`, a mapping from strategy parameters to the values
to try: a list (`[5, 10, 20]`) or an inclusive range (`{"start": 5, "stop": 50, "step": 5}`).
The combinations are the product of the axes, parameters in sorted name order, values in the
order given. A combination the strategy rejects (e.g. `fast >= slow`) is skipped and counted,
not an error; a grid with no valid combination, or more than `MAX_COMBINATIONS`, is a
`ConfigError` naming `grid`.

`run_sweep` computes each distinct feature once, then runs every combination through the
execution kernel in parallel (`btlab.kernels.sweep`): the "feature a above feature b"
strategies (`sma_cross`, `ma_trend`) straight from the feature matrix, any other strategy from
targets computed in bounded batches. A combination's metrics equal those of a single
`btlab.run` of it (`SweepRequest.run_config(params)`) bit for bit: the kernel runs the single
run's statistics kernels and the core the single run's `metrics.metrics_from_stats`.

The best combination maximizes `objective` (default `sharpe`; ties: the first in grid order)
and is re-run in full for its metrics and returns. Validation (SPEC §6) is of the best
combination with `n_trials` = the number of valid combinations: PSR, DSR (benchmark from the
variance of the trials' Sharpe ratios), bootstrap, folds, a permutation test whose statistic
is the best objective over the whole grid on each permuted path (so it accounts for the
selection), and PBO by CSCV with `pbo_splits` groups (default 16) computed from per-block
return sums, never a combinations x bars matrix. Combinations whose Sharpe is undefined (no
variance: never traded) count as trials but not in the variance of the trials' Sharpes.

On the command line: `btlab sweep PRESET --grid fast=5:50:5 --grid slow=20:200:20`
(`parse_grid_option`: `NAME=START:STOP:STEP` inclusive, or `NAME=V1,V2,...`).
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any, Literal

import numba
import numpy as np
import pandas as pd
from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from btlab import __version__
from btlab.kernels.dtypes import Flag
from btlab.kernels.execution import BarInputs
from btlab.kernels.ledger import trades_from_fills
from btlab.kernels.metrics import BLOCK_FIELDS, N_STATS, SW_MEAN, SW_STATUS, SW_STD
from btlab.kernels.signals import cross_target_nb
from btlab.kernels.stats import VAR_FLOOR, cscv_nb
from btlab.kernels.sweep import sweep_cross, sweep_targets

from . import data as data_mod
from .artifacts import (
    MANIFEST,
    OutputFolderTaken,
    data_sections,
    engine_versions,
    folder_conflict,
    run_hash,
    table_bytes,
    write_run_folder,
)
from .config import RunConfig, error_fields
from .errors import ConfigError, RunCancelled
from .features import FeatureStore
from .hashing import canonical_bytes, canonical_json, sha256_hex
from .kernel_status import raise_for_status
from .metrics import compute_metrics, metrics_from_stats, span_years
from .pipeline import (
    CancelCheck,
    DataIdentity,
    EventSink,
    RunCache,
    RunResult,
    config_hash,
    exec_params,
    hashed_request,
    load_dataset,
    read_features,
    run_identity,
    simulate_chunked,
    size_scale,
)
from .presets import preset_with_overrides
from .run_warnings import (
    RunWarning,
    combination_warnings,
    dataset_warnings,
    grid_warnings,
    outcome_warnings,
    validation_warnings,
    warmup_warnings,
)
from .strategies import (
    CROSS_STRATEGIES,
    compute_target,
    cross_rule,
    required_features,
    resolve_strategy_params,
)
from .validate_run import bar_returns, fold_metrics
from .validation import run_validation

__all__ = [
    "DEFAULT_PBO_SPLITS",
    "MAX_COMBINATIONS",
    "OBJECTIVES",
    "GridRange",
    "SweepRequest",
    "SweepResult",
    "expand_grid",
    "parse_grid_option",
    "parse_sweep_request",
    "pbo_from_blocks",
    "run_sweep",
    "sweep_config_hash",
]

#: Most combinations one sweep may have (before invalid ones are skipped).
MAX_COMBINATIONS = 10_000
DEFAULT_PBO_SPLITS = 16
_MAX_PBO_SPLITS = 20
#: Metrics a sweep may maximize.
Objective = Literal[
    "sharpe", "sortino", "calmar", "cagr", "total_return", "final_equity", "max_drawdown",
    "profit_factor", "win_rate", "avg_trade_return",
]  # fmt: skip
OBJECTIVES: tuple[str, ...] = Objective.__args__  # type: ignore[attr-defined]
#: Memory the generic path may use for one batch of targets.
TARGET_BATCH_BYTES = 64 << 20
_MAX_REASONS = 5

Scalar = int | float | str | bool


class GridRange(BaseModel):
    """An inclusive arithmetic range: start, start + step, ... up to stop (ints stay ints)."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)

    start: int | float = Field(description="First value.")
    stop: int | float = Field(description="Last value (included when on the step).")
    step: int | float = Field(gt=0, description="Increment (> 0).")

    @model_validator(mode="after")
    def _ordered(self) -> GridRange:
        if self.stop < self.start:
            raise ValueError(f"stop ({self.stop}) must be >= start ({self.start})")
        for name in ("start", "stop", "step"):
            value = getattr(self, name)
            if isinstance(value, bool) or not math.isfinite(value):
                raise ValueError(f"{name} must be a finite number")
        if (self.stop - self.start) / self.step >= MAX_COMBINATIONS:
            raise ValueError(f"the range has more than {MAX_COMBINATIONS} values")
        return self

    def values(self) -> list[int | float]:
        count = math.floor((self.stop - self.start) / self.step + 1e-9) + 1
        if all(isinstance(v, int) for v in (self.start, self.stop, self.step)):
            return [int(self.start + k * self.step) for k in range(count)]
        return [round(self.start + k * self.step, 12) for k in range(count)]


def _axis_kind(value: Any) -> str | None:
    if isinstance(value, list | tuple):
        return "values"
    if isinstance(value, Mapping | GridRange):
        return "range"
    return None


#: One axis of a grid: a list of values or an inclusive range.
GridAxis = Annotated[
    Annotated[list[Scalar], Tag("values")] | Annotated[GridRange, Tag("range")],
    Discriminator(
        _axis_kind,
        custom_error_type="grid_axis",
        custom_error_message="expected a list of values or a range {start, stop, step}",
    ),
]
_AXIS_TAGS = ("values", "range")


class GridError(ValueError):
    """An invalid grid, with one (field, message) pair per problem (see `expand_grid`)."""

    def __init__(self, errors: list[tuple[str, str]]) -> None:
        super().__init__("; ".join(f"{loc}: {msg}" for loc, msg in errors))
        self.errors = errors


def _axis_values(axis: GridAxis) -> list[Any]:
    return axis.values() if isinstance(axis, GridRange) else list(axis)


@dataclass(frozen=True)
class GridExpansion:
    """A grid's axes (sorted by name), its valid combinations (strategy params with defaults
    filled in, in grid order) with their values on the axes, and what was skipped and why."""

    axes: dict[str, list[Any]]
    size: int
    params: list[dict[str, Any]]
    points: list[tuple[Any, ...]]
    skipped: int
    reasons: list[str]
    #: reason -> (combinations skipped for it, the first of them as {param: value}), in grid order
    skipped_by_reason: dict[str, tuple[int, dict[str, Any]]] = field(default_factory=dict)


def _combination_error(exc: ConfigError) -> str:
    return "; ".join(f"{loc}: {msg}" for loc, msg in exc.errors) or str(exc)


def expand_grid(
    strategy: str, base_params: Mapping[str, Any], grid: Mapping[str, GridAxis]
) -> GridExpansion:
    """Every combination of `grid` over `base_params`, each validated by the strategy.

    Raises ConfigError naming `grid` (or `grid.<param>`) for an empty grid or axis, a duplicate
    value, a name the strategy does not have, more than MAX_COMBINATIONS combinations, or no
    valid combination. An unknown strategy raises the registry's ConfigError.
    """
    known = set(resolve_strategy_params(strategy, {}))  # every parameter, with its default
    if not grid:
        raise ConfigError("invalid sweep grid", [("grid", "give at least one parameter")])
    axes: dict[str, list[Any]] = {}
    errors: list[tuple[str, str]] = []
    for name in sorted(grid):
        values = _axis_values(grid[name])
        if name not in known:
            errors.append(
                (
                    f"grid.{name}",
                    f"not a parameter of {strategy!r} (has: {', '.join(sorted(known))})",
                )
            )
        elif not values:
            errors.append((f"grid.{name}", "give at least one value"))
        else:
            keys = [canonical_json(v) for v in values]
            dup = next((v for v, k in zip(values, keys, strict=True) if keys.count(k) > 1), None)
            if dup is not None:
                errors.append((f"grid.{name}", f"duplicate value {dup!r}"))
        axes[name] = values
    if errors:
        raise ConfigError("invalid sweep grid", errors)
    size = math.prod(len(v) for v in axes.values())
    if size > MAX_COMBINATIONS:
        raise ConfigError(
            "invalid sweep grid",
            [("grid", f"{size} combinations; at most {MAX_COMBINATIONS} are allowed")],
        )
    base = {k: v for k, v in base_params.items() if k not in axes}
    params: list[dict[str, Any]] = []
    points: list[tuple[Any, ...]] = []
    reasons: list[str] = []
    by_reason: dict[str, tuple[int, dict[str, Any]]] = {}
    for point in itertools.product(*axes.values()):
        combo = dict(zip(axes, point, strict=True))
        try:
            params.append(resolve_strategy_params(strategy, {**base, **combo}))
        except ConfigError as exc:
            reason = _combination_error(exc)
            if len(reasons) < _MAX_REASONS and reason not in reasons:
                reasons.append(reason)
            count, first = by_reason.get(reason, (0, combo))
            by_reason[reason] = (count + 1, first)
            continue
        points.append(point)
    if not params:
        raise ConfigError(
            "invalid sweep grid",
            [("grid", f"no valid combination of {size}: {'; '.join(reasons)}")],
        )
    return GridExpansion(axes, size, params, points, size - len(params), reasons, by_reason)


class SweepRequest(RunConfig):
    """A run request plus the grid of strategy parameters to sweep (see the module docstring).

    The strategy's base parameters may leave the gridded ones out; they are set to the first
    valid combination's values, so the request hashes the same whatever was written there.
    """

    grid: dict[str, GridAxis] = Field(
        description="Strategy parameter -> values: a list, or {start, stop, step} (stop included)."
    )
    objective: Objective = Field("sharpe", description="The metric the best combination maximizes.")
    pbo_splits: int = Field(
        DEFAULT_PBO_SPLITS,
        ge=2,
        le=_MAX_PBO_SPLITS,
        description="CSCV groups S for the PBO (even); needs at least 2 S bars.",
    )

    @model_validator(mode="before")
    @classmethod
    def _base_params(cls, data: Any) -> Any:
        """Set the gridded parameters of the base strategy to the first valid combination."""
        if not isinstance(data, Mapping) or not isinstance(data.get("grid"), Mapping):
            return data
        strategy = data.get("strategy") or {}
        if not isinstance(strategy, Mapping) or not isinstance(strategy.get("params", {}), Mapping):
            return data
        name = strategy.get("name", "sma_cross")
        params = dict(strategy.get("params") or {})
        try:
            grid = {k: _grid_axis(v) for k, v in data["grid"].items()}
            expansion = expand_grid(name, params, grid)
        except (ConfigError, ValidationError, TypeError, ValueError):
            base = {k: v for k, v in params.items() if k not in data["grid"]}
            return {**data, "strategy": {**strategy, "params": base}}
        first = dict(zip(expansion.axes, expansion.points[0], strict=True))
        return {**data, "strategy": {**strategy, "params": {**params, **first}}}

    @field_validator("pbo_splits")
    @classmethod
    def _even(cls, value: int) -> int:
        if value % 2:
            raise ValueError(f"must be even, got {value}")
        return value

    @field_validator("grid")
    @classmethod
    def _valid_grid(cls, value: dict[str, GridAxis], info: ValidationInfo) -> dict[str, GridAxis]:
        strategy = info.data.get("strategy")
        if strategy is None:
            return value  # the strategy's own error is reported
        try:
            expand_grid(strategy.name, strategy.params, value)
        except ConfigError as exc:
            raise GridError(exc.errors) from None
        return value

    @cached_property
    def expansion(self) -> GridExpansion:
        """The grid expanded and validated (computed once per request)."""
        return expand_grid(self.strategy.name, self.strategy.params, self.grid)

    def run_config(self, params: Mapping[str, Any]) -> RunConfig:
        """The single-run request of one combination (the sweep's settings, these strategy params)."""
        payload = self.model_dump(mode="json", exclude={"grid", "objective", "pbo_splits"})
        payload["strategy"]["params"] = {**payload["strategy"]["params"], **params}
        return RunConfig.model_validate(payload)


def _grid_axis(value: Any) -> GridAxis:
    if isinstance(value, GridRange | list):
        return value
    if isinstance(value, Mapping):
        return GridRange.model_validate(value)
    raise TypeError("grid values must be lists or ranges")


def _without_axis_tag(parts: Sequence[int | str]) -> tuple[int | str, ...]:
    """A grid axis's union tag (`grid.fast.range.step`) is not a field the user wrote."""
    if len(parts) > 2 and parts[0] == "grid" and parts[2] in _AXIS_TAGS:
        return (*parts[:2], *parts[3:])
    return tuple(parts)


def _errors(exc: ValidationError) -> list[tuple[str, str]]:
    """(field, message) pairs of a validation error, named as a run request's are
    (`config.error_fields`); a grid's own errors name their axis."""
    errors: list[tuple[str, str]] = []
    for e in exc.errors():
        error = (e.get("ctx") or {}).get("error")
        if isinstance(error, GridError):
            errors.extend(error.errors)
        else:
            errors.extend(error_fields({**e, "loc": _without_axis_tag(e["loc"])}))
    return errors


def parse_sweep_request(obj: SweepRequest | Mapping[str, Any]) -> SweepRequest:
    """A SweepRequest from a mapping, or a ConfigError naming each bad field.

    The mapping is a request with `grid` (and optionally `objective`, `pbo_splits`), or a preset
    with overrides: `{"preset": name, "overrides": {...}, "grid": {...}}`.
    """
    if isinstance(obj, SweepRequest):
        return obj
    if not isinstance(obj, Mapping):
        raise ConfigError(
            "invalid sweep request",
            [("request", f"expected a JSON object, got {type(obj).__name__}")],
        )
    body = dict(obj)
    if "preset" in body:
        name = body.pop("preset")
        if not isinstance(name, str):
            raise ConfigError("invalid sweep request", [("preset", "must be a preset name")])
        overrides = body.pop("overrides", None) or {}
        if not isinstance(overrides, Mapping):
            raise ConfigError("invalid sweep request", [("overrides", "must be a JSON object")])
        sweep_fields: dict[str, Any] = {
            k: body.pop(k) for k in ("grid", "objective", "pbo_splits") if k in body
        }
        if body:
            raise ConfigError(
                "invalid sweep request",
                [(k, "not allowed beside 'preset' (put it in 'overrides')") for k in sorted(body)],
            )
        body = {**preset_with_overrides(name, overrides), **sweep_fields}
    try:
        return SweepRequest.model_validate(body)
    except ValidationError as exc:
        raise ConfigError("invalid sweep request", _errors(exc)) from None


def _option_value(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text  # a bare word is a string: ma=sma,ema


def parse_grid_option(text: str) -> tuple[str, list[Any] | dict[str, Any]]:
    """One command-line grid axis: `NAME=START:STOP:STEP` or `NAME=START:STOP` (an inclusive
    range, step 1) or `NAME=V1,V2,...` (a list; values read as JSON, else as strings)."""
    name, sep, spec = text.partition("=")
    name = name.strip()
    if not sep or not name or not spec.strip():
        raise ConfigError(
            "invalid --grid",
            [(text, "expected NAME=VALUES: NAME=START:STOP:STEP or NAME=V1,V2,...")],
        )
    if ":" not in spec:
        return name, [_option_value(v.strip()) for v in spec.split(",")]
    parts = [p.strip() for p in spec.split(":")]
    if len(parts) not in (2, 3):
        raise ConfigError(
            "invalid --grid", [(f"grid.{name}", f"expected START:STOP:STEP, got {spec!r}")]
        )
    values = [_option_value(p) for p in parts]
    if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
        raise ConfigError(
            "invalid --grid", [(f"grid.{name}", f"range bounds must be numbers, got {spec!r}")]
        )
    return name, dict(zip(("start", "stop", "step"), [*values, 1][:3], strict=True))


def sweep_config_hash(request: SweepRequest, identity: DataIdentity) -> str:
    """sha256 of the canonical sweep request (defaults filled in) with the data's identity."""
    return sha256_hex(canonical_json({"sweep_request": hashed_request(request, identity)}).encode())


# ---------------------------------------------------------------- PBO from block sums


def block_bounds(n_returns: int, n_splits: int) -> np.ndarray:
    """CSCV group edges over `n_returns` rows: sizes differ by at most one (as `pbo_cscv`)."""
    return (np.arange(n_splits + 1, dtype=np.int64) * n_returns) // n_splits


def pbo_from_blocks(
    block_sum: np.ndarray,
    block_sq: np.ndarray,
    bounds: np.ndarray,
    periods_per_year: float | None = None,
) -> dict[str, Any]:
    """PBO by CSCV from per-block return sums, as `validation.pbo_cscv` from the full matrix.

    `block_sum[k, g]` and `block_sq[k, g]` are the sum and sum of squares of strategy k's
    returns in group g, the rows `bounds[g] <= j < bounds[g + 1]` (`block_bounds`). The sums are
    centered by each strategy's mean here, then the same kernel (`stats.cscv_nb`) ranks the
    IS-best among the OOS Sharpes for every choice of S/2 groups in sample. Same output as
    `pbo_cscv` (up to the rounding of the centered sums).
    """
    raw = np.asarray(block_sum, dtype=np.float64)
    sq = np.asarray(block_sq, dtype=np.float64)
    n_strat, n_splits = raw.shape
    if n_strat < 2:
        raise ValueError(f"PBO needs at least 2 strategies, got {n_strat}")
    if n_splits < 2 or n_splits % 2 or n_splits > _MAX_PBO_SPLITS:
        raise ValueError(f"n_splits must be even and in [2, {_MAX_PBO_SPLITS}], got {n_splits}")
    group_n = np.diff(bounds).astype(np.float64)
    t = float(bounds[-1])
    if t < 2 * n_splits:
        raise ValueError(f"PBO needs at least 2 rows per split ({2 * n_splits}), got {int(t)}")
    mu = raw.sum(axis=1, keepdims=True) / t
    centered = raw - group_n * mu
    centered_sq = np.maximum(sq - 2.0 * mu * raw + group_n * mu * mu, 0.0)
    var_floor = VAR_FLOOR * centered_sq.sum(axis=1) / (t - 1.0)
    combos = np.array(list(itertools.combinations(range(n_splits), n_splits // 2)), dtype=np.int64)
    c = combos.shape[0]
    logits, best = np.empty(c), np.empty(c, dtype=np.int64)
    sr_is, sr_oos = np.empty(c), np.empty(c)
    cscv_nb(
        np.ascontiguousarray(raw.T), np.ascontiguousarray(centered.T),
        np.ascontiguousarray(centered_sq.T), group_n, var_floor, combos, logits, best, sr_is, sr_oos,
        np.empty(n_splits, np.bool_), np.empty(n_strat),
    )  # fmt: skip
    scale = math.sqrt(periods_per_year) if periods_per_year is not None else 1.0
    finite = np.isfinite(sr_is) & np.isfinite(sr_oos)
    slope = math.nan
    if np.sum(finite) > 2 and np.ptp(sr_is[finite]) > 0:
        slope = float(np.polyfit(sr_is[finite], sr_oos[finite], 1)[0])
    q = np.quantile(logits, [0.05, 0.5, 0.95])
    return {
        "pbo": float(np.mean(logits <= 0.0)),
        "n_combinations": int(c),
        "n_splits": n_splits,
        "n_strategies": n_strat,
        "n_bars": int(t),
        "logits": {
            "mean": float(np.mean(logits)),
            "std": float(np.std(logits, ddof=1)) if c > 1 else math.nan,
            "min": float(np.min(logits)),
            "q05": float(q[0]),
            "median": float(q[1]),
            "q95": float(q[2]),
            "max": float(np.max(logits)),
        },
        "is_best_sharpe_mean": float(np.mean(sr_is)) * scale,
        "oos_sharpe_of_is_best_mean": float(np.mean(sr_oos)) * scale,
        "prob_oos_loss": float(np.mean(sr_oos < 0.0)),
        "degradation_slope": slope,
        "is_best_counts": {
            int(k): int(v) for k, v in zip(*np.unique(best, return_counts=True), strict=True)
        },
    }


# ---------------------------------------------------------------- the parallel pass


@dataclass
class _CrossPlan:
    """The fused path: distinct shifted features and, per combination, which two it compares."""

    features: np.ndarray  # distinct features x bars
    a_idx: np.ndarray
    b_idx: np.ndarray
    long_value: np.ndarray
    short_value: np.ndarray


def _cross_plan(
    store: FeatureStore, name: str, combos: Sequence[Mapping[str, Any]]
) -> _CrossPlan | None:
    """The fused plan where the strategy is a cross of two features (probed against the registry)."""
    if name not in CROSS_STRATEGIES:
        return None
    index: dict[str, int] = {}
    arrays: list[np.ndarray] = []
    a_idx, b_idx = np.empty(len(combos), np.int64), np.empty(len(combos), np.int64)
    long_value, short_value = np.empty(len(combos)), np.empty(len(combos))
    for c, params in enumerate(combos):
        rule = cross_rule(name, params)
        if rule is None:
            return None
        for j, spec in enumerate(rule[:2]):
            key = spec.key()
            if key not in index:
                index[key] = len(arrays)
                arrays.append(store.get(spec))
            (a_idx if j == 0 else b_idx)[c] = index[key]
        long_value[c], short_value[c] = rule[2], rule[3]
    plan = _CrossPlan(np.stack(arrays), a_idx, b_idx, long_value, short_value)
    for c in sorted({0, len(combos) - 1}):  # the registry's own target must agree
        target = np.empty(store.n)
        cross_target_nb(
            plan.features[a_idx[c]], plan.features[b_idx[c]], long_value[c], short_value[c], target
        )
        if not np.array_equal(target, compute_target(store, name, combos[c], store.n)):
            return None
    return plan


@dataclass
class _PassOutput:
    stats: np.ndarray  # combinations x N_STATS
    blocks: np.ndarray  # combinations x groups x BLOCK_FIELDS
    fused: bool


def _sweep_pass(
    dataset: data_mod.Dataset,
    store: FeatureStore,
    cfg: RunConfig,
    name: str,
    combos: Sequence[Mapping[str, Any]],
    bounds: np.ndarray,
    periods_per_year: float,
    *,
    on_progress: Callable[[int, int], None] | None = None,
    should_cancel: CancelCheck | None = None,
) -> _PassOutput:
    """Every combination through the sweep kernels, in batches between progress reports."""
    n, total = len(dataset), len(combos)
    scale = size_scale(cfg, store, n, periods_per_year)
    params = exec_params(cfg)
    stats = np.zeros((total, N_STATS))
    blocks = np.zeros((total, bounds.shape[0] - 1, BLOCK_FIELDS))
    threads = numba.get_num_threads()
    plan = _cross_plan(store, name, combos)
    prices = BarInputs(
        dataset.ts, dataset.open, dataset.high, dataset.low, dataset.close, dataset.volume
    )
    if plan is not None:
        batch = max(4 * threads, -(-total // 8))
    else:
        batch = max(threads, min(total, TARGET_BATCH_BYTES // max(1, 8 * n)))
    for lo in range(0, total, batch):
        if should_cancel is not None and should_cancel():
            raise RunCancelled("sweep cancelled")
        hi = min(total, lo + batch)
        chunks = min(threads, hi - lo)
        if plan is not None:
            sweep_cross(
                prices, scale, plan.features, plan.a_idx[lo:hi], plan.b_idx[lo:hi],
                plan.long_value[lo:hi], plan.short_value[lo:hi], params, bounds, chunks,
                stats[lo:hi], blocks[lo:hi],
            )  # fmt: skip
        else:
            targets = np.stack([compute_target(store, name, p, n) for p in combos[lo:hi]])
            sweep_targets(
                prices, scale, targets, params, bounds, chunks, stats[lo:hi], blocks[lo:hi]
            )
        if on_progress is not None:
            on_progress(hi, total)
    raise_for_status(stats[:, SW_STATUS], "in the sweep", "combination")
    return _PassOutput(stats, blocks, plan is not None)


# ---------------------------------------------------------------- results


@dataclass(eq=False)
class SweepResult:
    """Everything a sweep produced: the table, the best combination, heatmap and validation."""

    request: SweepRequest
    config_hash: str
    dataset: data_mod.Dataset
    identity: DataIdentity
    expansion: GridExpansion
    table: pd.DataFrame  # one row per valid combination: combo, the gridded params, metrics
    best: dict[str, Any]  # {"combo": index, "params": {...}, "metrics": {...}}
    best_run: RunResult  # the best combination re-run in full
    heatmap: dict[str, Any]
    validation: dict[str, Any] | None
    fused: bool
    timings_ms: dict[str, float] = field(default_factory=dict)
    #: What the user must know: skipped grid values, short data, the best's ruin, ... (see
    #: `btlab.run_warnings`); in the manifest, the completed event, the CLI and the report.
    warnings: list[RunWarning] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        """sweep.json: the grid, its size, what was skipped, the objective and the best."""
        e = self.expansion
        return {
            "strategy": self.request.strategy.name,
            "axes": e.axes,
            "n_combinations": e.size,
            "n_valid": len(e.params),
            "n_skipped": e.skipped,
            "skipped_reasons": e.reasons,
            "objective": self.request.objective,
            "best": {"combo": self.best["combo"], "params": self.best["params"]},
            "pbo_splits": self.request.pbo_splits,
            "fold_dates": self.fold_dates(),
        }

    def fold_dates(self) -> list[list[str]]:
        """The first and last bar's timestamp (ISO 8601, UTC) of each validation fold: a sweep
        folder has no equity table to read them from."""
        folds = ((self.validation or {}).get("folds") or {}).get("folds") or []
        ts = self.dataset.ts

        def iso(bar: int) -> str:
            return str(pd.Timestamp(int(ts[bar]), tz="UTC").strftime("%Y-%m-%dT%H:%M:%SZ"))

        return [[iso(f["start_bar"]), iso(f["end_bar"])] for f in folds]

    def artifact_payloads(self) -> dict[str, bytes]:
        """Every artifact's bytes by file name (the manifest excepted)."""
        return {
            "sweep.parquet": table_bytes(self.table),
            "sweep.json": canonical_bytes(self.summary()),
            "heatmap.json": canonical_bytes(self.heatmap),
            "metrics.json": canonical_bytes(self.best["metrics"]),
            "validation.json": canonical_bytes(
                self.validation if self.validation is not None else {"enabled": False}
            ),
        }

    def manifest(self, payloads: Mapping[str, bytes]) -> dict[str, Any]:
        manifest: dict[str, Any] = {
            "engine": "btlab",
            "engine_version": __version__,
            "kind": "sweep",
            "versions": engine_versions(),
            "config_hash": self.config_hash,
            "dataset_hash": self.dataset.hash,
            **data_sections(self.request, self.dataset, self.identity),
            "artifacts": {
                name: {"bytes": len(data), "sha256": sha256_hex(data)}
                for name, data in sorted(payloads.items())
            },
            "warnings": [w.to_json() for w in self.warnings],
            "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        manifest["run_hash"] = run_hash(manifest)
        return manifest

    def write_artifacts(
        self, out_dir: str | Path, *, overwrite: bool = False, replace_same_run: bool = False
    ) -> dict[str, Any]:
        """Write the artifacts and `manifest.json` to `out_dir` atomically; returns the manifest.

        As `artifacts.write_artifacts` (the same folder writer and the same rule for a
        non-empty `out_dir`).
        """
        out = Path(out_dir)
        if not overwrite and not replace_same_run and (reason := folder_conflict(out)):
            raise OutputFolderTaken(out, reason)
        payloads = self.artifact_payloads()
        manifest = self.manifest(payloads)
        write_run_folder(
            out,
            [*payloads.items(), (MANIFEST, canonical_bytes(manifest))],
            overwrite=overwrite,
            run_hash=manifest["run_hash"] if replace_same_run else None,
        )
        return manifest


def _best_index(values: np.ndarray) -> int:
    """The first index of the largest finite value (0 when none is finite)."""
    finite = np.isfinite(values)
    if not finite.any():
        return 0
    return int(np.argmax(np.where(finite, values, -np.inf)))


def _heatmap(
    expansion: GridExpansion, objective: str, values: np.ndarray, best: int
) -> dict[str, Any]:
    """The objective over the first two axes (others fixed at the best's values): z[y][x]."""
    names = list(expansion.axes)
    best_point = expansion.points[best]
    x_name = names[0]
    y_name = names[1] if len(names) > 1 else None
    fixed = {k: best_point[i] for i, k in enumerate(names) if i >= 2}
    lookup = {point: k for k, point in enumerate(expansion.points)}
    x_values = expansion.axes[x_name]
    y_values = expansion.axes[y_name] if y_name is not None else [None]
    z: list[list[float | None]] = []
    for y in y_values:
        row: list[float | None] = []
        for x in x_values:
            point = (x, *(() if y_name is None else (y,)), *fixed.values())
            k = lookup.get(point)
            row.append(None if k is None else float(values[k]))
        z.append(row)
    return {
        "metric": objective,
        "x": {"name": x_name, "values": x_values},
        "y": None if y_name is None else {"name": y_name, "values": y_values},
        "fixed": fixed,
        "z": z,
        "best": dict(zip(names, best_point, strict=True)),
    }


def _table(expansion: GridExpansion, rows: list[dict[str, Any]]) -> pd.DataFrame:
    columns: dict[str, Any] = {"combo": np.arange(len(rows), dtype=np.int64)}
    for i, name in enumerate(expansion.axes):
        columns[name] = [p[i] for p in expansion.points]
    frame = pd.DataFrame(columns)
    metrics = pd.DataFrame.from_records(rows)
    return pd.concat([frame, metrics], axis=1)


def _single_run(
    cfg: RunConfig,
    dataset: data_mod.Dataset,
    store: FeatureStore,
    periods_per_year: float,
    identity: DataIdentity,
) -> RunResult:
    """One combination the way `pipeline.run` computes it (validation left to the sweep)."""
    n = len(dataset)
    target = compute_target(store, cfg.strategy.name, cfg.strategy.params, n)
    sim = simulate_chunked(
        dataset, target, size_scale(cfg, store, n, periods_per_year), exec_params(cfg)
    )
    trades = trades_from_fills(sim.fills, n - 1, float(dataset.close[-1]), sim.borrow_total)
    metrics = compute_metrics(
        dataset.ts, dataset.close, sim.equity, sim.units, sim.borrow, sim.fills, trades,
        initial_cash=cfg.execution.initial_cash, periods_per_year=periods_per_year,
        ruined=bool(sim.flags & Flag.RUINED), halted=bool(sim.flags & Flag.HALTED_MAX_DRAWDOWN),
    )  # fmt: skip
    return RunResult(
        config=cfg, config_hash=config_hash(cfg, identity), dataset=dataset, target=target,
        units=sim.units, cash=sim.cash, equity_values=sim.equity, borrow=sim.borrow,
        fill_records=sim.fills, trade_records=trades, metrics=metrics, validation=None,
        flags=sim.flags, halt_bar=sim.halt_bar, identity=identity,
    )  # fmt: skip


class _Stages:
    """Stage events with timings, and cancellation checks between stages (as the pipeline's)."""

    def __init__(self, on_event: EventSink | None, should_cancel: CancelCheck | None) -> None:
        self.on_event = on_event
        self.should_cancel = should_cancel
        self.timings: dict[str, float] = {}

    def run(self, name: str, fn: Callable[[], Any]) -> Any:
        if self.should_cancel is not None and self.should_cancel():
            raise RunCancelled(f"sweep cancelled before stage {name}")
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


def _validate(
    request: SweepRequest,
    best_run: RunResult,
    trial_sharpes: np.ndarray,
    blocks: np.ndarray,
    bounds: np.ndarray,
    best_value: float,
    statistic: Callable[[np.ndarray, np.ndarray, np.ndarray, np.ndarray], float],
    periods_per_year: float,
    on_progress: Callable[[int, int], None] | None,
    should_cancel: CancelCheck | None,
) -> dict[str, Any]:
    n_valid = len(request.expansion.params)
    cfg = request.validation.model_copy(update={"n_trials": n_valid})

    def progress(done: int, total: int) -> None:
        if should_cancel is not None and should_cancel():
            raise RunCancelled("sweep cancelled during validation")
        if on_progress is not None:
            on_progress(done, total)

    ds = best_run.dataset
    finite = trial_sharpes[np.isfinite(trial_sharpes)]
    out = run_validation(
        bar_returns(best_run.equity_values), cfg, root_seed=request.seed,
        periods_per_year=periods_per_year,
        permutation_statistic=statistic if cfg.permutation.enabled else None,
        ohlc=(ds.open, ds.high, ds.low, ds.close), real_statistic=best_value,
        fold_metrics=fold_metrics(best_run, cfg.folds.k) if cfg.folds.enabled else None,
        trial_sharpes=finite if finite.size > 1 else None, on_progress=progress,
        permutation_workers=1,  # each permuted sweep is itself parallel over the combinations
    )  # fmt: skip
    if not cfg.enabled:
        return out
    out["sweep"] = {
        "n_trials": n_valid,
        "objective": request.objective,
        "best_objective": best_value,
        "permutation_statistic": f"best {request.objective} over the grid",
    }
    splits = request.pbo_splits
    if n_valid >= 2 and bounds[-1] >= 2 * splits:
        out["pbo"] = pbo_from_blocks(blocks[:, :, 0], blocks[:, :, 1], bounds, periods_per_year)
    else:
        out["pbo"] = None
        out["sweep"]["pbo_skipped"] = (
            "needs at least 2 valid combinations"
            if n_valid < 2
            else f"needs at least {2 * splits} bars of returns for {splits} splits"
        )
    return out


def run_sweep(
    request: SweepRequest | Mapping[str, Any],
    *,
    data: pd.DataFrame | data_mod.Dataset | None = None,
    on_event: EventSink | None = None,
    should_cancel: CancelCheck | None = None,
    resolve_stored: Callable[[str], data_mod.Dataset] | None = None,
    cache: RunCache | None = None,
) -> SweepResult:
    """Run every valid combination of the request's grid; see the module docstring.

    Events as `pipeline.run`: "stage" (validate, load_data, features, sweep, best, validation)
    and "progress" ({"stage": "sweep", "done", "total"} in combinations; in permutations for
    "validation"). Raises ConfigError, DataError or RunCancelled.
    """
    stages = _Stages(on_event, should_cancel)
    req: SweepRequest = stages.run("validate", lambda: parse_sweep_request(request))
    expansion = req.expansion
    dataset: data_mod.Dataset = stages.run(
        "load_data", lambda: load_dataset(req, data, resolve_stored=resolve_stored, cache=cache)
    )
    identity = run_identity(req, dataset, explicit=data is not None)
    chash = sweep_config_hash(req, identity)
    n = len(dataset)
    ppy = req.metrics.periods_per_year or dataset.meta.periods_per_year
    store = FeatureStore(dataset, cache=cache.features if cache is not None else None)
    name = req.strategy.name
    combos = expansion.params
    stages.run(
        "features", lambda: [store.get(s) for p in combos for s in required_features(name, p)]
    )
    bounds = block_bounds(max(n - 1, 0), req.pbo_splits)
    out: _PassOutput = stages.run(
        "sweep",
        lambda: _sweep_pass(
            dataset, store, req, name, combos, bounds, ppy,
            on_progress=stages.progress("sweep"), should_cancel=should_cancel,
        ),
    )  # fmt: skip
    years = span_years(dataset.ts)
    cash = req.execution.initial_cash
    rows = [
        metrics_from_stats(row, n=n, years=years, initial_cash=cash, periods_per_year=ppy)
        for row in out.stats
    ]
    objective = np.array([r[req.objective] for r in rows], dtype=np.float64)
    best = _best_index(objective)
    best_run: RunResult = stages.run(
        "best", lambda: _single_run(req.run_config(combos[best]), dataset, store, ppy, identity)
    )
    validation = None
    if req.validation.enabled:
        with np.errstate(divide="ignore", invalid="ignore"):
            trial_sharpes = out.stats[:, SW_MEAN] / out.stats[:, SW_STD]

        def statistic(o: np.ndarray, h: np.ndarray, lo: np.ndarray, c: np.ndarray) -> float:
            permuted = dataclasses.replace(dataset, open=o, high=h, low=lo, close=c, adj_close=None)
            p_out = _sweep_pass(permuted, FeatureStore(permuted), req, name, combos, bounds, ppy)
            values = [
                metrics_from_stats(r, n=n, years=years, initial_cash=cash, periods_per_year=ppy)[
                    req.objective
                ]
                for r in p_out.stats
            ]
            arr = np.array(values, dtype=np.float64)
            return float(arr[_best_index(arr)])

        validation = stages.run(
            "validation",
            lambda: _validate(
                req, best_run, trial_sharpes, out.blocks, bounds, float(objective[best]),
                statistic, ppy, stages.progress("validation"), should_cancel,
            ),
        )  # fmt: skip
    best_text = ", ".join(
        f"{k}={json.dumps(v)}" for k, v in combos[best].items() if k in expansion.axes
    )
    warnings = [
        *dataset_warnings(dataset), *grid_warnings(expansion),
        *warmup_warnings(store, [s for p in combos for s in read_features(req, p)]),
        *combination_warnings(rows),
        *(RunWarning(w.code, f"best combination ({best_text}): {w.message}")
          for w in outcome_warnings(best_run)),
        *validation_warnings(validation, best_run.metrics),
    ]  # fmt: skip
    return SweepResult(
        request=req,
        config_hash=chash,
        dataset=dataset,
        identity=identity,
        expansion=expansion,
        table=_table(expansion, rows),
        best={"combo": best, "params": combos[best], "metrics": best_run.metrics},
        best_run=best_run,
        heatmap=_heatmap(expansion, req.objective, objective, best),
        validation=validation,
        fused=out.fused,
        timings_ms=stages.timings,
        warnings=warnings,
    )
