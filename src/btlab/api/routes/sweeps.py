"""Sweeps and walk-forwards: a parameter grid (re-fitted per window) run as one job, with the
same lifecycle and events as a run."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from ..deps import OrchestratorDep
from ..models import RunDetail, with_errors
from .runs import IdempotencyKey, submit

router = APIRouter(tags=["sweeps"])


@router.post(
    "/sweeps",
    status_code=201,
    response_model=RunDetail,
    responses=with_errors(
        {200: {"model": RunDetail, "description": "A retained sweep: same config hash or key"}},
        body=True,
    ),
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": {"$ref": "#/components/schemas/SweepRequest"}}
            },
        }
    },
)
async def create_sweep(
    request: Request,
    response: Response,
    orchestrator: OrchestratorDep,
    idempotency_key: IdempotencyKey = None,
) -> RunDetail:
    """Submit a sweep (a run request plus `grid`); follow it at /runs/{id} like any run."""
    return await submit(orchestrator, request, response, "sweep", idempotency_key)


@router.post(
    "/walkforward",
    status_code=201,
    response_model=RunDetail,
    responses=with_errors(
        {
            200: {
                "model": RunDetail,
                "description": "A retained walk-forward: same config hash or key",
            }
        },
        body=True,
    ),
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": {"$ref": "#/components/schemas/WalkForwardRequest"}}
            },
        }
    },
)
async def create_walkforward(
    request: Request,
    response: Response,
    orchestrator: OrchestratorDep,
    idempotency_key: IdempotencyKey = None,
) -> RunDetail:
    """Submit a walk-forward (a sweep request plus `walkforward: {train, test, mode}`); follow
    it at /runs/{id} like any run (progress events: {"stage": "walkforward", "done", "total"})."""
    return await submit(orchestrator, request, response, "walkforward", idempotency_key)
