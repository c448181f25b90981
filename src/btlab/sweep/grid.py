"""A sweep's grid: its axes (a list of values or an inclusive range), their expansion into the
valid combinations, and the command line's `--grid NAME=...` axes.

An axis named without a dot is a parameter of the strategy (`fast`); a dotted name is a field
of the request (`execution.commission_bps`, `risk.stop_loss`, `strategy.params.fast`) under one
of `FIELD_SECTIONS`. A combination is valid when the strategy accepts its parameters and the
request accepts its fields; the rest are skipped and counted."""

from __future__ import annotations

import itertools
import json
import math
from array import array
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Annotated, Any, overload

import numpy as np
from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, model_validator

from ..errors import ConfigError
from ..hashing import canonical_json, rng_for
from ..portfolio_strategies import is_portfolio_strategy, resolve_portfolio_strategy_params
from ..run_warnings import RunWarning
from ..strategies import resolve_strategy_params

__all__ = [
    "AXIS_TAGS",
    "FIELD_SECTIONS",
    "MAX_AXIS_VALUES",
    "MAX_COMBINATIONS",
    "GridAxis",
    "GridDistribution",
    "GridError",
    "GridExpansion",
    "GridRange",
    "expand_grid",
    "field_overrides",
    "grid_axis",
    "grid_warnings",
    "parse_grid_option",
]

#: Most combinations one sweep may have (before invalid ones are skipped). A sweep streams its
#: rows (`sweep.collect`), so memory is not what bounds it: what it keeps per combination is its
#: CSCV block sums (2 x pbo_splits doubles), its objective and Sharpe and its axis codes, about
#: 300 bytes at 16 splits (3 GB at this cap).
MAX_COMBINATIONS = 10_000_000
#: Most values one range axis may have.
MAX_AXIS_VALUES = 1_000_000

#: Distinct reasons for skipped combinations spelled out (in an error, in the warnings); the
#: rest are counted together.
MAX_REASONS = 5

Scalar = int | float | str | bool | None

#: The request sections a dotted axis may range over: how orders fill and cost, the risk and
#: sizing rules, the strategy's parameters. The data, the validation and the seed stay fixed
#: (the trials of one sweep are compared on the same bars, by the same tests).
FIELD_SECTIONS = ("execution", "risk", "strategy.params")

#: Validates the request fields of one combination: {dotted path: value} -> a ConfigError or
#: nothing (`SweepRequest` passes the run request's own validation).
FieldCheck = Callable[[Mapping[str, Any]], None]


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
        if (self.stop - self.start) / self.step >= MAX_AXIS_VALUES:
            raise ValueError(f"the range has more than {MAX_AXIS_VALUES} values")
        return self

    def values(self) -> list[int | float]:
        count = math.floor((self.stop - self.start) / self.step + 1e-9) + 1
        if all(isinstance(v, int) for v in (self.start, self.stop, self.step)):
            return [int(self.start + k * self.step) for k in range(count)]
        return [round(self.start + k * self.step, 12) for k in range(count)]


class GridDistribution(BaseModel):
    """A random axis: values drawn uniformly from [low, high] (log-uniform with `log`, whole
    numbers with `integer`); only in a sweep with `samples` (random search)."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)

    low: int | float = Field(description="Smallest value.")
    high: int | float = Field(description="Largest value (drawn too).")
    log: bool = Field(False, description="Draw log-uniformly (low > 0).")
    integer: bool = Field(False, description="Draw whole numbers.")

    @model_validator(mode="after")
    def _ordered(self) -> GridDistribution:
        for name in ("low", "high"):
            if isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be a number")
        if self.high < self.low:
            raise ValueError(f"high ({self.high}) must be >= low ({self.low})")
        if self.log and self.low <= 0:
            raise ValueError(f"a log-uniform axis needs low > 0, got {self.low}")
        if self.integer and (self.low != int(self.low) or self.high != int(self.high)):
            raise ValueError("an integer axis needs whole-number bounds")
        return self

    def draw(self, rng: np.random.Generator) -> int | float:
        if self.integer and not self.log:
            return int(rng.integers(int(self.low), int(self.high), endpoint=True))
        if self.log:
            value = math.exp(rng.uniform(math.log(self.low), math.log(self.high)))
        else:
            value = float(rng.uniform(self.low, self.high))
        if self.integer:
            return int(min(max(round(value), self.low), self.high))
        return round(value, 12)


def _axis_kind(value: Any) -> str | None:
    if isinstance(value, list | tuple):
        return "values"
    if isinstance(value, Mapping) and ("low" in value or "high" in value):
        return "random"
    if isinstance(value, GridDistribution):
        return "random"
    if isinstance(value, Mapping | GridRange):
        return "range"
    return None


#: One axis of a grid: a list of values, an inclusive range, or (random search) a distribution.
GridAxis = Annotated[
    Annotated[list[Scalar], Tag("values")]
    | Annotated[GridRange, Tag("range")]
    | Annotated[GridDistribution, Tag("random")],
    Discriminator(
        _axis_kind,
        custom_error_type="grid_axis",
        custom_error_message="expected a list of values, a range {start, stop, step} or a "
        "distribution {low, high, log, integer}",
    ),
]
AXIS_TAGS = ("values", "range", "random")


class GridError(ValueError):
    """An invalid grid, with one (field, message) pair per problem (see `expand_grid`)."""

    def __init__(self, errors: list[tuple[str, str]]) -> None:
        super().__init__("; ".join(f"{loc}: {msg}" for loc, msg in errors))
        self.errors = errors


def _axis_values(axis: GridAxis) -> list[Any]:
    if isinstance(axis, GridDistribution):
        return []  # drawn, not listed (`_draws`)
    return axis.values() if isinstance(axis, GridRange) else list(axis)


def _draws(
    axes: Mapping[str, GridAxis], names: list[str], samples: int, seed: int
) -> list[tuple[Any, ...]]:
    """`samples` distinct points, each axis drawn on its own from `rng_for(seed, "sweep")`: a
    listed axis uniformly among its values, a distribution from it. A point drawn again is
    drawn anew (at most 20 tries a sample: a small space gives fewer points)."""
    rng = rng_for(seed, "sweep")
    listed = {name: _axis_values(axes[name]) for name in names}
    seen: set[str] = set()
    points: list[tuple[Any, ...]] = []
    for _ in range(20 * samples):
        if len(points) == samples:
            break
        point = tuple(
            axis.draw(rng) if isinstance(axis := axes[name], GridDistribution)
            else listed[name][int(rng.integers(len(listed[name])))]
            for name in names
        )  # fmt: skip
        key = canonical_json(list(point))
        if key not in seen:
            seen.add(key)
            points.append(point)
    return points


class _Combinations(Sequence[Any]):
    """A lazy sequence over an expansion's valid combinations (`GridExpansion.points`, `params`,
    `fields`): item k is made from the combination's axis codes when asked for, so a grid of
    millions holds one small integer per axis per combination, not a Python object each."""

    def __init__(self, expansion: GridExpansion, item: Callable[[int], Any]) -> None:
        self._expansion, self._item = expansion, item

    def __len__(self) -> int:
        return int(self._expansion.codes.shape[0])

    @overload
    def __getitem__(self, k: int) -> Any: ...
    @overload
    def __getitem__(self, k: slice) -> list[Any]: ...
    def __getitem__(self, k: int | slice) -> Any:
        if isinstance(k, slice):
            return [self._item(i) for i in range(*k.indices(len(self)))]
        n = len(self)
        if not -n <= k < n:
            raise IndexError(f"combination {k} of {n}")
        return self._item(k % n)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Sequence):
            return NotImplemented
        return len(self) == len(other) and all(a == b for a, b in zip(self, other, strict=True))

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"<{len(self)} combinations>"


#: Resolved strategy parameters kept by `GridExpansion.params` (the rest are resolved again).
PARAMS_CACHE = 20_000


@dataclass(frozen=True, eq=False)
class GridExpansion:
    """A grid's axes (sorted by name), its valid combinations in grid order, and what was
    skipped and why.

    A combination is its row of `codes`: the index of its value on each axis. From it come,
    when asked for, `points[k]` (its values on the axes), `params[k]` (the strategy's
    parameters with defaults filled in) and `fields[k]` (its request fields {dotted path:
    value}, the strategy's parameters left out: empty where every axis is a strategy parameter).
    """

    axes: dict[str, list[Any]]
    size: int
    codes: np.ndarray  # valid combinations x axes (int32)
    skipped: int
    reasons: list[str]
    #: reason -> (combinations skipped for it, the first of them as {param: value}), in grid order
    skipped_by_reason: dict[str, tuple[int, dict[str, Any]]] = field(default_factory=dict)
    #: The combinations are random draws (`samples`), not the product of the axes.
    random: bool = False
    strategy: str = ""
    base_params: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.codes.shape[0])

    #: Made again on first use after unpickling (a cluster's workers get the fields alone).
    _CACHED = ("_values", "points", "params", "fields", "_grid_order", "_code_of")

    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k not in self._CACHED}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)

    @property
    def field_axes(self) -> list[str]:
        """The axes that are request fields, not strategy parameters."""
        return [name for name in self.axes if strategy_param(name) is None]

    @cached_property
    def _values(self) -> list[list[Any]]:
        return list(self.axes.values())

    def point(self, k: int) -> tuple[Any, ...]:
        row = self.codes[k]
        return tuple(values[int(row[i])] for i, values in enumerate(self._values))

    @cached_property
    def points(self) -> Sequence[tuple[Any, ...]]:
        return _Combinations(self, self.point)

    @cached_property
    def params(self) -> Sequence[dict[str, Any]]:
        cache: dict[int, dict[str, Any]] = {}
        names = list(self.axes)

        def resolved(k: int) -> dict[str, Any]:
            hit = cache.get(k)
            if hit is None:
                own = {
                    param: value for axis, value in zip(names, self.point(k), strict=True)
                    if (param := strategy_param(axis)) is not None
                }  # fmt: skip
                hit = _resolve_params(self.strategy, {**self.base_params, **own})
                if len(cache) < PARAMS_CACHE:
                    cache[k] = hit
            return hit

        return _Combinations(self, resolved)

    @cached_property
    def fields(self) -> Sequence[dict[str, Any]]:
        names = list(self.axes)
        picked = [i for i, name in enumerate(names) if strategy_param(name) is None]

        def request_fields(k: int) -> dict[str, Any]:
            point = self.point(k)
            return {names[i]: point[i] for i in picked}

        return _Combinations(self, request_fields)

    @cached_property
    def _grid_order(self) -> np.ndarray:
        """Each valid combination's index in the product of the axes (a grid only)."""
        shape = tuple(len(v) for v in self._values)
        return np.asarray(np.ravel_multi_index(tuple(self.codes.T.astype(np.int64)), shape))

    @cached_property
    def _code_of(self) -> list[dict[str, int]]:
        return [{canonical_json(v): i for i, v in enumerate(values)} for values in self._values]

    def index_of(self, point: Sequence[Any]) -> int | None:
        """The combination with these values on the axes (in axis order), None if none."""
        codes = []
        for code_of, value in zip(self._code_of, point, strict=True):
            code = code_of.get(canonical_json(value))
            if code is None:
                return None
            codes.append(code)
        if self.random:
            hits = np.flatnonzero((self.codes == np.asarray(codes, np.int32)).all(axis=1))
            return int(hits[0]) if hits.size else None
        order = self._grid_order
        target = np.ravel_multi_index(tuple(codes), tuple(len(v) for v in self._values))
        k = int(np.searchsorted(order, target))
        return k if k < order.shape[0] and int(order[k]) == target else None


def _combination_error(exc: ConfigError) -> str:
    return "; ".join(f"{loc}: {msg}" for loc, msg in exc.errors) or str(exc)


def strategy_param(axis: str) -> str | None:
    """The strategy parameter an axis names (`fast`, `strategy.params.fast`), else None (a
    request field such as `execution.commission_bps`)."""
    if "." not in axis:
        return axis
    prefix = "strategy.params."
    return axis[len(prefix) :] if axis.startswith(prefix) else None


def _resolve_params(strategy: str, params: Mapping[str, Any]) -> dict[str, Any]:
    if is_portfolio_strategy(strategy):
        return resolve_portfolio_strategy_params(strategy, params)
    return resolve_strategy_params(strategy, params)


def _axis_error(name: str, strategy: str, known: set[str]) -> str | None:
    """Why an axis name is not one a sweep can range over, or None."""
    param = strategy_param(name)
    if param is not None:
        if param in known:
            return None
        return f"not a parameter of {strategy!r} (has: {', '.join(sorted(known))})"
    if not any(name.startswith(f"{section}.") for section in FIELD_SECTIONS):
        sections = ", ".join(f"{s}.<field>" for s in FIELD_SECTIONS)
        return f"a sweep ranges over strategy parameters or the request fields {sections}"
    return None


def field_overrides(fields: Mapping[str, Any]) -> dict[str, Any]:
    """{dotted path: value} as the nested mapping it overrides in a request."""
    out: dict[str, Any] = {}
    for path, value in fields.items():
        node = out
        *parents, leaf = path.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return out


def expand_grid(
    strategy: str,
    base_params: Mapping[str, Any],
    grid: Mapping[str, GridAxis],
    check_fields: FieldCheck | None = None,
    *,
    samples: int | None = None,
    seed: int = 0,
    first_only: bool = False,
) -> GridExpansion:
    """Every combination of `grid` over `base_params`, each validated by the strategy (and, for
    axes over request fields, by `check_fields`, which raises the request's ConfigError).

    Raises ConfigError naming `grid` (or `grid.<param>`) for an empty grid or axis, a duplicate
    value, a name the strategy does not have (or a field outside `FIELD_SECTIONS`), more than
    MAX_COMBINATIONS combinations, or no valid combination. An unknown strategy raises the
    registry's ConfigError.

    With `samples`, the combinations are that many distinct random points (`_draws`, seeded by
    `seed`) instead of the product; an axis may then be a distribution, and `axes` lists each
    axis's distinct drawn values in ascending order. `first_only` stops at the first valid
    combination (its `size` and `skipped` then count the whole grid and what came before it).
    """
    known = set(_resolve_params(strategy, {}))  # every parameter, with its default
    if not grid:
        raise ConfigError("invalid sweep grid", [("grid", "give at least one parameter")])
    axes: dict[str, list[Any]] = {}
    errors: list[tuple[str, str]] = []
    params_of = {strategy_param(name): name for name in grid if strategy_param(name) is not None}
    for name in sorted(grid):
        values = _axis_values(grid[name])
        problem = _axis_error(name, strategy, known)
        param = strategy_param(name)
        if problem is not None:
            errors.append((f"grid.{name}", problem))
        elif param is not None and params_of.get(param) != name:
            errors.append((f"grid.{name}", f"the parameter {param!r} has two axes"))
        elif isinstance(grid[name], GridDistribution):
            if samples is None:
                errors.append((f"grid.{name}", "a distribution needs `samples` (random search)"))
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
    size = samples if samples is not None else math.prod(len(v) for v in axes.values())
    if size > MAX_COMBINATIONS:
        raise ConfigError(
            "invalid sweep grid",
            [("grid", f"{size} combinations; at most {MAX_COMBINATIONS} are allowed")],
        )
    gridded = {strategy_param(name) for name in axes}
    base = {k: v for k, v in base_params.items() if k not in gridded}
    names = list(axes)
    drawn = None if samples is None else _draws(grid, names, samples, seed)
    if drawn is not None:
        axes = {
            name: sorted({p[i] for p in drawn}, key=lambda v: (v is None, v))
            for i, name in enumerate(names)
        }
        size = len(drawn)
    values = list(axes.values())
    code_rows: Iterator[tuple[int, ...]]
    if drawn is not None:
        where = [{canonical_json(v): i for i, v in enumerate(vals)} for vals in values]
        code_rows = (
            tuple(where[i][canonical_json(v)] for i, v in enumerate(point)) for point in drawn
        )
    else:
        code_rows = itertools.product(*(range(len(vals)) for vals in values))
    param_at = [(i, p) for i, name in enumerate(names) if (p := strategy_param(name)) is not None]
    field_at = [i for i, name in enumerate(names) if strategy_param(name) is None]
    # with request-field axes, each distinct parameter set and each distinct field set is
    # checked once (a grid of parameters alone has no repeats to save)
    param_checks: dict[tuple[int, ...], str | None] | None = {} if field_at else None
    field_checks: dict[tuple[int, ...], str | None] = {}

    def params_error(codes: tuple[int, ...]) -> str | None:
        key = tuple(codes[i] for i, _ in param_at)
        if param_checks is not None and key in param_checks:
            return param_checks[key]
        own = {param: values[i][codes[i]] for i, param in param_at}
        try:
            _resolve_params(strategy, {**base, **own})
            reason = None
        except ConfigError as exc:
            reason = _combination_error(exc)
        if param_checks is not None:
            param_checks[key] = reason
        return reason

    def fields_error(codes: tuple[int, ...]) -> str | None:
        if not field_at or check_fields is None:
            return None
        key = tuple(codes[i] for i in field_at)
        if key not in field_checks:
            try:
                check_fields({names[i]: values[i][codes[i]] for i in field_at})
                field_checks[key] = None
            except ConfigError as exc:
                field_checks[key] = _combination_error(exc)
        return field_checks[key]

    valid = array("i")
    reasons: list[str] = []
    by_reason: dict[str, tuple[int, dict[str, Any]]] = {}
    for codes in code_rows:
        reason = params_error(codes)
        if reason is None:
            reason = fields_error(codes)
        if reason is None:
            valid.extend(codes)
            if first_only:
                break
            continue
        if len(reasons) < MAX_REASONS and reason not in reasons:
            reasons.append(reason)
        count, first = by_reason.get(reason, (0, None))
        if first is None:
            first = {name: values[i][codes[i]] for i, name in enumerate(names)}
        by_reason[reason] = (count + 1, first)
    if not valid:
        raise ConfigError(
            "invalid sweep grid",
            [("grid", f"no valid combination of {size}: {'; '.join(reasons)}")],
        )
    table = np.frombuffer(valid, dtype=np.int32).reshape(-1, len(names)).copy()
    return GridExpansion(
        axes, size, table, size - table.shape[0], reasons, by_reason, random=drawn is not None,
        strategy=strategy, base_params=base,
    )  # fmt: skip


def grid_axis(value: Any) -> GridAxis:
    if isinstance(value, GridRange | GridDistribution | list):
        return value
    if isinstance(value, Mapping):
        if _axis_kind(value) == "random":
            return GridDistribution.model_validate(value)
        return GridRange.model_validate(value)
    raise TypeError("grid values must be lists or ranges")


def _option_value(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text  # a bare word is a string: ma=sma,ema


#: The command line's distributions of a random axis: name -> GridDistribution flags.
DISTRIBUTIONS: dict[str, dict[str, bool]] = {
    "uniform": {}, "loguniform": {"log": True}, "randint": {"integer": True},
}  # fmt: skip


def parse_grid_option(text: str) -> tuple[str, list[Any] | dict[str, Any]]:
    """One command-line grid axis: `NAME=START:STOP:STEP` or `NAME=START:STOP` (an inclusive
    range, step 1) or `NAME=V1,V2,...` (a list; values read as JSON, else as strings), or a
    distribution for a random search: `NAME=uniform:LOW:HIGH`, `loguniform:LOW:HIGH`,
    `randint:LOW:HIGH`."""
    name, sep, spec = text.partition("=")
    name = name.strip()
    if not sep or not name or not spec.strip():
        raise ConfigError(
            "invalid --grid",
            [(text, "expected NAME=VALUES: NAME=START:STOP:STEP or NAME=V1,V2,...")],
        )
    kind, _, bounds = spec.partition(":")
    if kind.strip() in DISTRIBUTIONS:
        parts = [_option_value(p.strip()) for p in bounds.split(":")]
        if len(parts) != 2 or not all(
            isinstance(v, int | float) and not isinstance(v, bool) for v in parts
        ):
            raise ConfigError(
                "invalid --grid", [(f"grid.{name}", f"expected {kind}:LOW:HIGH, got {spec!r}")]
            )
        return name, {"low": parts[0], "high": parts[1], **DISTRIBUTIONS[kind.strip()]}
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


def grid_warnings(expansion: GridExpansion) -> list[RunWarning]:
    """`grid_skipped`: per reason, how many combinations it skipped and the first of them."""
    out = []
    reasons = list(expansion.skipped_by_reason.items())
    for reason, (count, first) in reasons[:MAX_REASONS]:
        combo = ", ".join(f"{name}={json.dumps(value)}" for name, value in first.items())
        example = "" if count == 1 else "the first: "
        out.append(
            RunWarning(
                "grid_skipped",
                f"{count} of {expansion.size} combinations skipped ({example}{combo}): {reason}",
            )
        )
    rest = sum(count for _, (count, _) in reasons[MAX_REASONS:])
    if rest:
        out.append(
            RunWarning("grid_skipped", f"{rest} more combinations skipped for other reasons")
        )
    return out
