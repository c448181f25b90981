"""What can be asked for: presets, the registry of features/strategies/metrics, and health."""

from __future__ import annotations

from functools import cache

from fastapi import APIRouter

from ... import __version__
from ...features import list_features
from ...metric_registry import METRICS
from ...presets import DEFAULT_PRESET, list_presets
from ...strategies import list_strategies
from ..deps import HubDep, OrchestratorDep, sweeps_available
from ..models import (
    ERRORS,
    FeatureInfo,
    Health,
    MetricInfo,
    PresetOut,
    Registry,
    StrategyInfo,
)

router = APIRouter()


@cache
def _presets() -> list[PresetOut]:
    return [
        PresetOut(
            name=name,
            description=str(p.get("description", "")),
            default=name == DEFAULT_PRESET,
            request=p["request"],
        )
        for name, p in list_presets().items()
    ]


@cache
def _registry() -> Registry:
    return Registry(
        features=[FeatureInfo.model_validate(f) for f in list_features()],
        strategies=[StrategyInfo.model_validate(s) for s in list_strategies()],
        metrics=[
            MetricInfo(
                name=m.name,
                label=m.label,
                kind=m.kind,
                description=m.description,
                undefined=m.undefined,
                headline=m.headline,
            )
            for m in METRICS
        ],
    )


@router.get("/presets", response_model=list[PresetOut], tags=["catalog"], responses=ERRORS)
def get_presets() -> list[PresetOut]:
    """The named run requests (POST /runs with {"preset": name, "overrides": {...}})."""
    return _presets()


@router.get("/registry", response_model=Registry, tags=["catalog"], responses=ERRORS)
def get_registry() -> Registry:
    """Features, strategies and metrics, with the JSON schemas of their parameters."""
    return _registry()


@router.get("/health", response_model=Health, tags=["service"], responses=ERRORS)
def health(orchestrator: OrchestratorDep, hub: HubDep) -> Health:
    """Liveness and a count of stored runs by status."""
    store = orchestrator.store
    workers = getattr(orchestrator.executor, "workers", 0)
    return Health(
        status="ok", version=__version__, schema_version=store.schema_version(),
        workers=int(workers), active_runs=orchestrator.active_count(),
        streams=hub.subscriber_count(), runs=store.count_runs(), sweeps=sweeps_available(),
    )  # fmt: skip
