"""Named run requests: the JSON files of the top-level `presets/` folder (installed as package `btlab._presets`).

A preset file holds `{"description": str, "request": {...a RunConfig...}}`. A request body may
name a preset and override parts of it: `{"preset": "sma_cross_daily", "overrides": {...}}`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from importlib import resources
from typing import TYPE_CHECKING, Any

from .errors import ConfigError, NotFoundError

if TYPE_CHECKING:
    from .config import RunConfig

DEFAULT_PRESET = "sma_cross_daily"


def _files() -> dict[str, Any]:
    return {
        entry.name.removesuffix(".json"): entry
        for entry in resources.files("btlab._presets").iterdir()
        if entry.name.endswith(".json")
    }


def list_presets() -> dict[str, dict[str, Any]]:
    """Every preset by name: `{"description": ..., "request": ...}`."""
    return {
        name: json.loads(entry.read_text(encoding="utf-8"))
        for name, entry in sorted(_files().items())
    }


def load_preset(name: str) -> dict[str, Any]:
    """The request of preset `name`; NotFoundError naming the known presets otherwise."""
    files = _files()
    if name not in files:
        raise NotFoundError(f"unknown preset {name!r}; known presets: {', '.join(sorted(files))}")
    request: dict[str, Any] = json.loads(files[name].read_text(encoding="utf-8"))["request"]
    return request


def resolve_request(body: Mapping[str, Any] | None) -> RunConfig:
    """A RunConfig from a request body: a RunConfig mapping, or a preset name with overrides."""
    # here, not at the top: `btlab presets` lists them without pydantic's models and numba
    from .config import parse_config

    if body is None:
        return parse_config(load_preset(DEFAULT_PRESET))
    if not isinstance(body, Mapping):
        raise ConfigError(
            "invalid request", [("request", f"expected a JSON object, got {type(body).__name__}")]
        )
    if "preset" not in body:
        if "overrides" in body:
            raise ConfigError(
                "invalid request", [("overrides", "overrides need a 'preset' to apply to")]
            )
        return parse_config(body)
    extra = set(body) - {"preset", "overrides"}
    if extra:
        raise ConfigError(
            "invalid request",
            [(k, "not allowed beside 'preset' (put it in 'overrides')") for k in sorted(extra)],
        )
    name = body["preset"]
    if not isinstance(name, str):
        raise ConfigError("invalid request", [("preset", "must be a preset name (a string)")])
    overrides = body.get("overrides") or {}
    if not isinstance(overrides, Mapping):
        raise ConfigError("invalid request", [("overrides", "must be a JSON object")])
    return parse_config(preset_with_overrides(name, overrides))


def preset_with_overrides(name: str, overrides: Mapping[str, Any]) -> dict[str, Any]:
    """Preset `name`'s request with `overrides` merged in depth; overrides naming a data
    `source` replace the preset's data section whole (no synthetic leftovers beside a file), and
    overrides naming another strategy drop the preset's parameters (they are the old
    strategy's), keeping only the parameters the overrides give."""
    # here, not at the top: `btlab presets` lists them without pydantic's models and numba
    from .config import merge_overrides

    base = load_preset(name)
    data_override = overrides.get("data")
    if isinstance(data_override, Mapping) and "source" in data_override:
        base = {k: v for k, v in base.items() if k != "data"}
    strategy_override = overrides.get("strategy")
    base_strategy = base.get("strategy")
    if (
        isinstance(strategy_override, Mapping)
        and isinstance(base_strategy, Mapping)
        and strategy_override.get("name", base_strategy.get("name")) != base_strategy.get("name")
    ):
        base = {**base, "strategy": {k: v for k, v in base_strategy.items() if k != "params"}}
    return merge_overrides(base, overrides)
