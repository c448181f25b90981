"""Assembles the FastAPI app: settings, lifespan (store, orchestrator, event hub), routes, errors."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from .. import __version__
from ..executors import DaskExecutor
from ..orchestrator import Orchestrator
from ..plugins import load_plugins
from ..store import Store
from ..sweep import SweepRequest
from ..walkforward import WalkForwardRequest
from .deps import sweeps_available
from .docs import install_docs
from .errors import install_error_handlers
from .events import EventHub
from .middleware import BearerAuth, BodyLimit, HostCheck
from .models import DatasetPatch, ErrorResponse, RunRequest
from .routes import catalog, datasets, portfolios, runs, sweeps
from .settings import Settings

DESCRIPTION = """\
Deterministic backtests over HTTP. POST a request (or a preset with overrides) to `/runs`, follow
`/runs/{id}/events` (Server-Sent Events, resumable with `Last-Event-ID`), then fetch the manifest
and artifacts. The same request on the same data is the same run: posting it again answers the
retained run. Every 4xx has the shape `{code, message, details: [{loc, msg}]}`.
"""


def _component_schemas() -> dict[str, type[BaseModel]]:
    schemas: dict[str, type[BaseModel]] = {
        "RunRequest": RunRequest, "ErrorResponse": ErrorResponse, "DatasetPatch": DatasetPatch,
    }  # fmt: skip
    if sweeps_available():
        schemas["SweepRequest"] = SweepRequest
        schemas["WalkForwardRequest"] = WalkForwardRequest
    return schemas


def _install_openapi(app: FastAPI) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = get_openapi(
            title=app.title, version=app.version, description=app.description, routes=app.routes
        )
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        for name, model in _component_schemas().items():
            body = model.model_json_schema(ref_template="#/components/schemas/{model}")
            for def_name, definition in body.pop("$defs", {}).items():
                components.setdefault(def_name, definition)
            components[name] = body
        if app.state.settings.token:
            schema["components"]["securitySchemes"] = {
                "bearer": {"type": "http", "scheme": "bearer"}
            }
            schema["security"] = [{"bearer": []}]
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def create_app(settings: Settings | None = None) -> FastAPI:
    """The btlab service. `settings` default to `Settings.from_env()` (BTLAB_* variables).

    The store, orchestrator and event hub are created at start-up (the lifespan): a crash's
    leftovers are recovered then, and at shutdown running runs are stopped and marked failed
    ("interrupted"), streams end and the database is closed.
    """
    settings = settings or Settings.from_env()
    load_plugins(settings.plugins)  # user features and strategies, before any request

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        store = Store(settings.home, retention=settings.retention)
        batches = (
            await run_in_threadpool(DaskExecutor, settings.cluster) if settings.cluster else None
        )
        orchestrator = Orchestrator(
            store, workers=settings.workers, progress_interval=settings.progress_interval,
            allow_files=settings.allow_file_paths, file_roots=settings.file_roots,
            batches=batches,
        )  # fmt: skip
        hub = EventHub(asyncio.get_running_loop())
        orchestrator.add_listener(hub.publish)
        await run_in_threadpool(orchestrator.start)
        app.state.orchestrator = orchestrator
        app.state.hub = hub
        try:
            yield
        finally:
            await run_in_threadpool(orchestrator.shutdown)
            if batches is not None:
                await run_in_threadpool(batches.close)
            hub.close()
            store.close()

    app = FastAPI(
        title="btlab",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,  # served from the package by install_docs: no CDN
        redoc_url=None,
    )
    app.state.settings = settings
    install_error_handlers(app)
    app.include_router(runs.router)
    if sweeps_available():
        app.include_router(sweeps.router)
    app.include_router(datasets.router)
    app.include_router(portfolios.router)
    app.include_router(catalog.router)
    app.add_middleware(
        BodyLimit, limit=settings.max_request_bytes, upload_limit=settings.max_upload_bytes,
        upload_paths={"/datasets"},
    )  # fmt: skip
    app.add_middleware(BearerAuth, token=settings.token)
    app.add_middleware(HostCheck, allowed=settings.allowed_hosts)
    install_docs(app)
    _install_openapi(app)
    return app
