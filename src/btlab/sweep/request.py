"""The sweep request: a run request plus its grid, objective and PBO splits; parsing from a
mapping (or a preset with overrides) with errors named by field, and its config hash."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import cached_property
from typing import Annotated, Any, ClassVar, Literal

from pydantic import Field, ValidationError, ValidationInfo, field_validator, model_validator

from ..config import RunConfig, error_fields, field_errors, merge_overrides
from ..errors import ConfigError
from ..hashing import canonical_json, sha256_hex
from ..pipeline import DataIdentity, hashed_request
from ..presets import preset_with_overrides
from ..request_model import HashOmitDefault, NotHashed
from .grid import (
    AXIS_TAGS,
    MAX_COMBINATIONS,
    FieldCheck,
    GridAxis,
    GridError,
    GridExpansion,
    expand_grid,
    field_overrides,
    grid_axis,
    strategy_param,
)
from .pbo import DEFAULT_PBO_SPLITS, MAX_PBO_SPLITS

__all__ = ["OBJECTIVES", "Objective", "SweepRequest", "parse_sweep_request", "sweep_config_hash"]

#: The fields a sweep request adds to a run request.
SWEEP_FIELDS = ("grid", "objective", "pbo_splits", "samples", "keep")
#: The rows a streamed sweep keeps in memory by default, and at most.
DEFAULT_KEEP = 100
MAX_KEEP = 100_000


def fields_check(payload: Mapping[str, Any], own: Sequence[str] = SWEEP_FIELDS) -> FieldCheck:
    """The check of one combination's request fields: the run request with them set must be
    valid (a ConfigError naming each bad field otherwise). `own`: the fields the request adds
    to a run request (left out of the run request)."""
    base = {k: v for k, v in payload.items() if k not in own}

    def check(fields: Mapping[str, Any]) -> None:
        try:
            RunConfig.model_validate(merge_overrides(base, field_overrides(fields)))
        except ValidationError as exc:
            raise ConfigError("invalid combination", field_errors(exc)) from None

    return check


#: Metrics a sweep may maximize.
Objective = Literal[
    "sharpe", "sortino", "calmar", "cagr", "total_return", "final_equity", "max_drawdown",
    "profit_factor", "win_rate", "avg_trade_return",
]  # fmt: skip
OBJECTIVES: tuple[str, ...] = Objective.__args__  # type: ignore[attr-defined]


class SweepRequest(RunConfig):
    """A run request plus the grid to sweep (see `btlab.sweep`).

    The request may leave the gridded strategy parameters and fields out, or give any value;
    they are set to the first valid combination's values, so the request hashes the same
    whatever was written there.
    """

    #: The fields this request adds to a run request (a subclass adding its own lists them).
    own_fields: ClassVar[tuple[str, ...]] = SWEEP_FIELDS

    # before `grid`: the grid's validator reads it
    samples: Annotated[int | None, HashOmitDefault()] = Field(
        None,
        ge=1,
        le=MAX_COMBINATIONS,
        description="Random search: this many distinct combinations drawn from the axes (a "
        "list or range uniformly among its values, {low, high, log, integer} from that "
        "distribution), seeded by the request's seed; unset: every combination of the grid.",
    )
    grid: dict[str, GridAxis] = Field(
        description="Strategy parameter (`fast`) or request field (`execution.commission_bps`, "
        "`risk.stop_loss`: under execution, risk or strategy.params) -> values: a list, or "
        "{start, stop, step} (stop included)."
    )
    objective: Objective = Field("sharpe", description="The metric the best combination maximizes.")
    keep: Annotated[int, NotHashed()] = Field(
        DEFAULT_KEEP,
        ge=1,
        le=MAX_KEEP,
        description="A sweep of more than 10,000 valid combinations streams its rows to "
        "sweep.parquet and keeps this many best (by the objective) in memory; a smaller one "
        "keeps every row. Not in the config hash: no number or artifact depends on it.",
    )
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
            expansion = expand_grid(
                name, params, grid, fields_check(data, cls.own_fields), samples=data.get("samples"),
                seed=data.get("seed", 0), first_only=True,
            )  # fmt: skip
        except (ConfigError, ValidationError, TypeError, ValueError):
            gridded = {strategy_param(k) for k in data["grid"]}
            base = {k: v for k, v in params.items() if k not in gridded}
            return {**data, "strategy": {**strategy, "params": base}}
        first = dict(expansion.params[0])
        first_fields = field_overrides(expansion.fields[0])
        return {
            **merge_overrides(data, first_fields),
            "strategy": {**strategy, "params": {**params, **first}},
        }

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
        payload = {k: v.model_dump(mode="json") if hasattr(v, "model_dump") else v
                   for k, v in info.data.items()}  # fmt: skip
        try:
            expand_grid(
                strategy.name, strategy.params, value, fields_check(payload, cls.own_fields),
                samples=info.data.get("samples"), seed=info.data.get("seed", 0),
            )  # fmt: skip
        except ConfigError as exc:
            raise GridError(exc.errors) from None
        return value

    @cached_property
    def expansion(self) -> GridExpansion:
        """The grid expanded and validated (computed once per request)."""
        payload = self.model_dump(mode="json")
        return expand_grid(
            self.strategy.name, self.strategy.params, self.grid,
            fields_check(payload, self.own_fields),
            samples=self.samples, seed=self.seed,
        )  # fmt: skip

    def run_config(
        self, params: Mapping[str, Any], fields: Mapping[str, Any] | None = None
    ) -> RunConfig:
        """The single-run request of one combination: the sweep's settings with these strategy
        params and request fields ({dotted path: value}, `expansion.fields[k]`)."""
        payload = self.model_dump(mode="json", exclude=set(self.own_fields))
        payload["strategy"]["params"] = {**payload["strategy"]["params"], **params}
        return RunConfig.model_validate(merge_overrides(payload, field_overrides(fields or {})))

    def combination_config(self, k: int) -> RunConfig:
        """The single-run request of the expansion's combination `k`."""
        e = self.expansion
        return self.run_config(e.params[k], e.fields[k])


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
        sweep_fields: dict[str, Any] = {k: body.pop(k) for k in SWEEP_FIELDS if k in body}
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
