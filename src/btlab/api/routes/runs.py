"""Runs: submit (idempotent), list, show, cancel/delete, stream events, fetch artifacts."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, BinaryIO, Literal
from urllib.parse import urlencode

import anyio
from fastapi import APIRouter, Header, Query, Request, Response
from fastapi.responses import HTMLResponse, StreamingResponse
from sse_starlette.sse import EventSourceResponse
from starlette.concurrency import run_in_threadpool

from ...artifacts import MANIFEST
from ...errors import NotFoundError
from ...orchestrator import Orchestrator
from ...report import REPORT_NAME, cached_report
from ...store import RUN_STATUSES, Store
from ..bodies import read_json
from ..deps import HubDep, OrchestratorDep, SettingsDep, StoreDep
from ..errors import ApiError
from ..events import run_events
from ..models import ERRORS, Manifest, RunDetail, RunPage, run_detail, run_summary, with_errors

router = APIRouter(tags=["runs"])

IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=255,
        description="The same key and body answer the same run; the same key with another body is a 409.",
    ),
]

#: The largest seq or cursor a client may name (SQLite integers are signed 64-bit).
MAX_SEQ = 2**63 - 1

#: At shutdown, how long an event stream may take to send its farewell and end cleanly.
SHUTDOWN_GRACE_SECONDS = 2.0

MEDIA_TYPES = {
    ".json": "application/json",
    ".parquet": "application/vnd.apache.parquet",
    ".csv": "text/csv",
    ".html": "text/html; charset=utf-8",
}


async def submit(
    orchestrator: Orchestrator,
    request: Request,
    response: Response,
    kind: str,
    idempotency_key: str | None,
) -> RunDetail:
    """Shared by POST /runs and POST /sweeps: 201 + Location for a new run, 200 for a known one."""
    body = await read_json(request)
    run, created = await run_in_threadpool(
        orchestrator.submit, body, kind=kind, idempotency_key=idempotency_key
    )
    response.status_code = 201 if created else 200
    response.headers["Location"] = f"/runs/{run.id}"
    return run_detail(run)


@router.post(
    "/runs",
    status_code=201,
    response_model=RunDetail,
    responses=with_errors(
        {200: {"model": RunDetail, "description": "A retained run: same config hash or key"}},
        body=True,
    ),
    openapi_extra={
        "requestBody": {
            "required": False,
            "content": {
                "application/json": {"schema": {"$ref": "#/components/schemas/RunRequest"}}
            },
        }
    },
)
async def create_run(
    request: Request,
    response: Response,
    orchestrator: OrchestratorDep,
    idempotency_key: IdempotencyKey = None,
) -> RunDetail:
    """Submit a run request (or a preset with overrides): queued and executed in the background."""
    return await submit(orchestrator, request, response, "run", idempotency_key)


@router.get("/runs", response_model=RunPage, responses=ERRORS)
def list_runs(
    store: StoreDep,
    limit: Annotated[int, Query(ge=1, le=500, description="Page size.")] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    before: Annotated[
        int | None,
        Query(ge=1, le=MAX_SEQ, description="Cursor: runs created before this one's n (see next)."),
    ] = None,
    status: Annotated[
        Literal["queued", "running", "completed", "failed", "cancelled"] | None, Query()
    ] = None,
    kind: Annotated[Literal["run", "sweep"] | None, Query()] = None,
) -> RunPage:
    """Runs, newest first, paged."""
    assert status is None or status in RUN_STATUSES
    # one row more than the page: `next` only where another page really follows
    rows, total = store.list_runs(
        limit=limit + 1, offset=offset, before=before, status=status, kind=kind
    )
    next_url = None
    if len(rows) > limit:
        rows = rows[:limit]
        params = {"limit": str(limit), "before": str(rows[-1].n)}
        if status:
            params["status"] = status
        if kind:
            params["kind"] = kind
        next_url = "/runs?" + urlencode(params)
    return RunPage(
        items=[run_summary(r) for r in rows], total=total, limit=limit, offset=offset, next=next_url
    )


@router.get("/runs/{run_id}", response_model=RunDetail, responses=ERRORS)
def get_run(run_id: str, store: StoreDep) -> RunDetail:
    """One run: status, times, hashes, headline metrics, request and resolved config."""
    return run_detail(store.get_run(run_id))


@router.delete(
    "/runs/{run_id}",
    status_code=204,
    response_model=None,
    responses=with_errors(
        {202: {"model": RunDetail, "description": "An active run: cancel requested"}}
    ),
)
def delete_run(run_id: str, orchestrator: OrchestratorDep) -> Response:
    """Delete a finished run and its artifacts (204), or cancel a queued/running one (202)."""
    run, deleted = orchestrator.delete(run_id)
    if deleted:
        return Response(status_code=204)
    return Response(
        run_detail(run).model_dump_json(), status_code=202, media_type="application/json"
    )


def _last_event_id(header: str | None, query: int | None) -> int:
    if query is not None:
        return query
    if header is None or header.strip() == "":
        return 0
    text = header.strip()
    if not (text.isascii() and text.isdigit()) or int(text) > MAX_SEQ:
        raise ApiError(
            422, "invalid_request",
            f"Last-Event-ID must be a non-negative integer (a seq) up to {MAX_SEQ}, got {header!r}",
            [("header.last-event-id", f"must be an integer in 0..{MAX_SEQ}")],
        )  # fmt: skip
    return int(text)


@router.get(
    "/runs/{run_id}/events",
    response_class=EventSourceResponse,
    responses=with_errors(
        {200: {"content": {"text/event-stream": {}}, "description": "SSE stream"}}
    ),
)
async def run_events_stream(
    run_id: str,
    store: StoreDep,
    hub: HubDep,
    settings: SettingsDep,
    last_event_id: Annotated[
        str | None,
        Header(
            alias="Last-Event-ID",
            max_length=32,
            description="Resume after this seq (a non-negative integer).",
            json_schema_extra={"pattern": "^[0-9]{1,18}$"},
        ),
    ] = None,
    after: Annotated[
        int | None,
        Query(ge=0, le=MAX_SEQ, description="Resume after this seq (as Last-Event-ID)."),
    ] = None,
) -> EventSourceResponse:
    """The run's events as SSE (`id:` seq, `event:` type, `data:` JSON); a finished run replays and closes."""
    start = _last_event_id(last_event_id, after)
    await run_in_threadpool(store.get_run, run_id)  # 404 before the stream starts
    shutdown = anyio.Event()
    return EventSourceResponse(
        run_events(store, hub, run_id, start, shutdown),
        ping=settings.heartbeat_seconds,
        send_timeout=30,
        headers={"Cache-Control": "no-store"},
        shutdown_event=shutdown,
        shutdown_grace_period=SHUTDOWN_GRACE_SECONDS,
    )


def _manifest(store: Store, run_id: str) -> tuple[Path, dict[str, Any]]:
    run = store.get_run(run_id)
    if run.status != "completed":
        raise ApiError(
            409, "run_not_completed",
            f"run {run_id} is {run.status}; artifacts exist only for completed runs",
        )  # fmt: skip
    with store.open_run_file(run_id, MANIFEST) as file:
        manifest: dict[str, Any] = json.loads(file.read().decode("utf-8"))
    return store.run_dir(run_id), manifest


@router.get("/runs/{run_id}/artifacts", response_model=Manifest, responses=ERRORS)
def get_manifest(run_id: str, store: StoreDep) -> dict[str, Any]:
    """The run's manifest: every artifact with its bytes and sha256, the hashes and versions."""
    return _manifest(store, run_id)[1]


def _chunks(file: BinaryIO, size: int = 1 << 16) -> Iterator[bytes]:
    with file:
        while chunk := file.read(size):
            yield chunk


@router.get(
    "/runs/{run_id}/artifacts/{name}",
    response_class=StreamingResponse,
    responses=with_errors(
        {
            200: {
                "content": {media: {} for media in dict.fromkeys(MEDIA_TYPES.values())}
                | {"application/octet-stream": {}},
                "description": "The file (its media type by its extension)",
            }
        }
    ),
)
def get_artifact(run_id: str, name: str, store: StoreDep) -> StreamingResponse:
    """One artifact file, by a name listed in the manifest (or manifest.json)."""
    _, manifest = _manifest(store, run_id)
    artifacts = manifest.get("artifacts", {})
    if name != MANIFEST and name not in artifacts:
        raise ApiError(
            404, "not_found",
            f"run {run_id} has no artifact {name!r}; artifacts: {', '.join(sorted([*artifacts, MANIFEST]))}",
        )  # fmt: skip
    file = store.open_run_file(run_id, name)  # never through a link
    headers = {"Content-Length": str(os.fstat(file.fileno()).st_size)}
    if name in artifacts:
        headers["ETag"] = f'"{artifacts[name]["sha256"]}"'
    media = MEDIA_TYPES.get(Path(name).suffix, "application/octet-stream")
    return StreamingResponse(_chunks(file), media_type=media, headers=headers)


@router.get(
    "/runs/{run_id}/report",
    response_class=HTMLResponse,
    responses=with_errors(
        {200: {"content": {"text/html": {}}, "description": "One self-contained HTML page"}}
    ),
)
def get_report(run_id: str, store: StoreDep) -> Response:
    """The run's (or sweep's) offline HTML report: rendered on first request, then kept in its folder."""
    folder, manifest = _manifest(store, run_id)
    # the renderer reads the artifacts and may reuse report.html: none of them may be a link
    names = [*manifest.get("artifacts", {})]
    if (folder / REPORT_NAME).is_symlink():
        names.append(REPORT_NAME)
    for name in names:
        store.open_run_file(run_id, name).close()
    try:
        body = cached_report(folder).read_bytes()
    except FileNotFoundError:
        raise NotFoundError(f"run {run_id} has no artifacts (pruned or deleted)") from None
    return Response(body, media_type=MEDIA_TYPES[".html"], headers={"Cache-Control": "no-cache"})
