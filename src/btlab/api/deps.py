"""Dependencies as `Annotated` aliases: the seam between routes and the service objects.

They are `async def` although they only read app state: FastAPI runs a plain `def` dependency on
the thread pool, a hop per dependency per request for nothing.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from ..orchestrator import Orchestrator
from ..run_kinds import KINDS
from ..store import Store
from .events import EventHub
from .settings import Settings


def sweeps_available() -> bool:
    """Whether the orchestrator runs sweeps (POST /sweeps): "sweep" is one of its run kinds."""
    return "sweep" in KINDS


async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_orchestrator(request: Request) -> Orchestrator:
    orchestrator: Orchestrator = request.app.state.orchestrator
    return orchestrator


async def get_store(request: Request) -> Store:
    store: Store = request.app.state.orchestrator.store
    return store


async def get_hub(request: Request) -> EventHub:
    hub: EventHub = request.app.state.hub
    return hub


SettingsDep = Annotated[Settings, Depends(get_settings)]
OrchestratorDep = Annotated[Orchestrator, Depends(get_orchestrator)]
StoreDep = Annotated[Store, Depends(get_store)]
HubDep = Annotated[EventHub, Depends(get_hub)]
