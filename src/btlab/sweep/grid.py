"""A sweep's grid: its axes (a list of values or an inclusive range), their expansion into the
strategy's valid combinations, and the command line's `--grid NAME=...` axes."""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, model_validator

from ..errors import ConfigError
from ..hashing import canonical_json
from ..run_warnings import RunWarning
from ..strategies import resolve_strategy_params

__all__ = [
    "AXIS_TAGS",
    "MAX_COMBINATIONS",
    "GridAxis",
    "GridError",
    "GridExpansion",
    "GridRange",
    "expand_grid",
    "grid_axis",
    "grid_warnings",
    "parse_grid_option",
]

#: Most combinations one sweep may have (before invalid ones are skipped).
MAX_COMBINATIONS = 10_000

#: Distinct reasons for skipped combinations spelled out (in an error, in the warnings); the
#: rest are counted together.
MAX_REASONS = 5

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
AXIS_TAGS = ("values", "range")


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
            if len(reasons) < MAX_REASONS and reason not in reasons:
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


def grid_axis(value: Any) -> GridAxis:
    if isinstance(value, GridRange | list):
        return value
    if isinstance(value, Mapping):
        return GridRange.model_validate(value)
    raise TypeError("grid values must be lists or ranges")


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
