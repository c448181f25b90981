"""The walk-forward request: a sweep request plus its `walkforward` windows; parsing from a
mapping (or a preset with overrides) with errors named by field, and its config hash."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from pydantic import Field, ValidationError, model_validator

from ..errors import ConfigError
from ..hashing import canonical_json, sha256_hex
from ..identity import hashed_request
from ..presets import preset_with_overrides
from ..run_result import DataIdentity
from ..sweep.request import SWEEP_FIELDS, SweepRequest, _errors
from ..timeframes import CALENDAR_REBALANCES
from .windows import WalkForwardSpec

__all__ = [
    "RUN_FIELDS",
    "WalkForwardRequest",
    "parse_walkforward_request",
    "walkforward_config_hash",
]

#: The fields a walk-forward request adds to a run request.
WALKFORWARD_FIELDS = (*SWEEP_FIELDS, "walkforward")

#: Request fields a walk-forward grid may not range over, and why: the out-of-sample run is one
#: engine run whose settings change at each window's first test bar, and these are read once
#: for the whole run (or decide how it ends), not bar by bar.
RUN_FIELDS: dict[str, str] = {
    "execution.initial_cash": "the out-of-sample account starts once, with one initial cash, "
    "and carries its cash from each window into the next",
    "execution.close_at_end": "the position is closed (or not) once, at the out-of-sample "
    "run's last bar, not at each window's",
    "risk.max_drawdown": "the drawdown halt is the whole run's: its peak equity is followed "
    "only while the rule is on, and a halt ends trading for every later window",
}


class WalkForwardRequest(SweepRequest):
    """A sweep request plus `walkforward` (see `btlab.walkforward`).

    The grid may range over strategy parameters and request fields; each window's choice
    trades its test part with its own execution and risk settings, the account carried from
    one window into the next. The fields the whole out-of-sample run reads once (`RUN_FIELDS`)
    and calendar rebalances are refused.
    """

    own_fields: ClassVar[tuple[str, ...]] = WALKFORWARD_FIELDS

    walkforward: WalkForwardSpec = Field(
        description="The windows: train and test lengths (bars or calendar units) and the mode."
    )

    @model_validator(mode="after")
    def _supported(self) -> WalkForwardRequest:
        errors = [
            (f"grid.{axis}", f"a walk-forward grid cannot range over {axis}: {RUN_FIELDS[axis]} "
             "(set it in the request instead)")
            for axis in self.grid if axis in RUN_FIELDS
        ]  # fmt: skip
        rebalance = self.grid.get("execution.rebalance")
        calendar = [v for v in rebalance if v in CALENDAR_REBALANCES] if isinstance(
            rebalance, list) else []  # fmt: skip
        if calendar:
            errors.append(
                ("grid.execution.rebalance", f"a walk-forward runs on target changes or every "
                 f"bar, not a calendar rebalance ({calendar[0]!r})")
            )  # fmt: skip
        elif self.execution.rebalance in CALENDAR_REBALANCES:
            errors.append(
                ("execution.rebalance", f"a walk-forward runs on target changes or every bar, "
                 f"not a calendar rebalance ({self.execution.rebalance!r})")
            )  # fmt: skip
        if errors:
            raise ValueError("; ".join(f"{loc}: {msg}" for loc, msg in errors))
        return self


def parse_walkforward_request(obj: WalkForwardRequest | Mapping[str, Any]) -> WalkForwardRequest:
    """A WalkForwardRequest from a mapping, or a ConfigError naming each bad field.

    As `sweep.parse_sweep_request`, with `walkforward` beside `grid`: a request, or a preset
    with overrides `{"preset": name, "overrides": {...}, "grid": {...}, "walkforward": {...}}`.
    """
    if isinstance(obj, WalkForwardRequest):
        return obj
    if not isinstance(obj, Mapping):
        raise ConfigError(
            "invalid walk-forward request",
            [("request", f"expected a JSON object, got {type(obj).__name__}")],
        )
    body = dict(obj)
    if "preset" in body:
        name = body.pop("preset")
        if not isinstance(name, str):
            raise ConfigError("invalid walk-forward request", [("preset", "must be a preset name")])
        overrides = body.pop("overrides", None) or {}
        if not isinstance(overrides, Mapping):
            raise ConfigError(
                "invalid walk-forward request", [("overrides", "must be a JSON object")]
            )
        own = {k: body.pop(k) for k in WALKFORWARD_FIELDS if k in body}
        if body:
            raise ConfigError(
                "invalid walk-forward request",
                [(k, "not allowed beside 'preset' (put it in 'overrides')") for k in sorted(body)],
            )
        body = {**preset_with_overrides(name, overrides), **own}
    try:
        return WalkForwardRequest.model_validate(body)
    except ValidationError as exc:
        raise ConfigError("invalid walk-forward request", _unsupported(exc)) from None


def _unsupported(exc: ValidationError) -> list[tuple[str, str]]:
    """The errors by field; the request-wide check's own errors keep the fields they name."""
    out: list[tuple[str, str]] = []
    for loc, msg in _errors(exc):
        if loc == "request" or not loc:
            for part in msg.removeprefix("Value error, ").split("; "):
                field, _, text = part.partition(": ")
                out.append((field, text) if text else (loc or "request", part))
        else:
            out.append((loc, msg))
    return out


def walkforward_config_hash(request: WalkForwardRequest, identity: DataIdentity) -> str:
    """sha256 of the canonical walk-forward request (defaults filled in) with the data's
    identity, under its own key (a sweep of the same grid hashes differently)."""
    return sha256_hex(
        canonical_json({"walkforward_request": hashed_request(request, identity)}).encode()
    )
