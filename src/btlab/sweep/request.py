"""The sweep request: a run request plus its grid, objective and PBO splits; parsing from a
mapping (or a preset with overrides) with errors named by field, and its config hash."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import cached_property
from typing import Any, Literal

from pydantic import Field, ValidationError, ValidationInfo, field_validator, model_validator

from ..config import RunConfig, error_fields
from ..errors import ConfigError
from ..hashing import canonical_json, sha256_hex
from ..pipeline import DataIdentity, hashed_request
from ..presets import preset_with_overrides
from ..timeframes import CALENDAR_REBALANCES
from .grid import AXIS_TAGS, GridAxis, GridError, GridExpansion, expand_grid, grid_axis
from .pbo import DEFAULT_PBO_SPLITS, MAX_PBO_SPLITS

__all__ = ["OBJECTIVES", "Objective", "SweepRequest", "parse_sweep_request", "sweep_config_hash"]

#: Metrics a sweep may maximize.
Objective = Literal[
    "sharpe", "sortino", "calmar", "cagr", "total_return", "final_equity", "max_drawdown",
    "profit_factor", "win_rate", "avg_trade_return",
]  # fmt: skip
OBJECTIVES: tuple[str, ...] = Objective.__args__  # type: ignore[attr-defined]


class SweepRequest(RunConfig):
    """A run request plus the grid of strategy parameters to sweep (see `btlab.sweep`).

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
        le=MAX_PBO_SPLITS,
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
            grid = {k: grid_axis(v) for k, v in data["grid"].items()}
            expansion = expand_grid(name, params, grid)
        except (ConfigError, ValidationError, TypeError, ValueError):
            base = {k: v for k, v in params.items() if k not in data["grid"]}
            return {**data, "strategy": {**strategy, "params": base}}
        first = dict(zip(expansion.axes, expansion.points[0], strict=True))
        return {**data, "strategy": {**strategy, "params": {**params, **first}}}

    @model_validator(mode="after")
    def _no_calendar_rebalance(self) -> SweepRequest:
        if self.execution.rebalance in CALENDAR_REBALANCES:
            raise ConfigError(
                "invalid sweep request",
                [("execution.rebalance", f"{self.execution.rebalance!r}: sweeps rebalance "
                  "on_change or every_bar (a calendar schedule runs in single runs)")],
            )  # fmt: skip
        return self

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


def _without_axis_tag(parts: Sequence[int | str]) -> tuple[int | str, ...]:
    """A grid axis's union tag (`grid.fast.range.step`) is not a field the user wrote."""
    if len(parts) > 2 and parts[0] == "grid" and parts[2] in AXIS_TAGS:
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


def sweep_config_hash(request: SweepRequest, identity: DataIdentity) -> str:
    """sha256 of the canonical sweep request (defaults filled in) with the data's identity."""
    return sha256_hex(canonical_json({"sweep_request": hashed_request(request, identity)}).encode())
