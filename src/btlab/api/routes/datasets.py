"""Datasets: upload a CSV or Parquet file (validated as SPEC §1, stored once by content hash)."""

from __future__ import annotations

from pathlib import PurePath
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request, Response
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from ...errors import ConfigError
from ...store import sniff_format
from ..bodies import UPLOAD_TYPES, read_json, require_content_type
from ..deps import OrchestratorDep, StoreDep
from ..errors import ApiError
from ..models import ERRORS, DatasetOut, DatasetPatch, with_errors

router = APIRouter(tags=["datasets"])

_UPLOAD_DOC = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {
                        "file": {"type": "string", "format": "binary", "description": "CSV or Parquet file."},
                        "symbol": {"type": "string", "description": "Symbol (default: the file name's stem)."},
                        "timeframe": {"type": "string", "description": "Bar length, e.g. 1d (default: inferred)."},
                    },
                }
            },
            "text/csv": {"schema": {"type": "string", "format": "binary"}},
            "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
            "application/vnd.apache.parquet": {"schema": {"type": "string", "format": "binary"}},
        },
    }
}  # fmt: skip


def _form_text(value: object, name: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ApiError(
            422, "invalid_request", f"form field {name!r} must be text", [(name, "must be text")]
        )
    return value.strip() or None


@router.post(
    "/datasets",
    status_code=201,
    response_model=DatasetOut,
    responses=with_errors(
        {200: {"model": DatasetOut, "description": "The same bars, stored before"}},
        body=True,
    ),
    openapi_extra=_UPLOAD_DOC,
)
async def upload_dataset(
    request: Request,
    response: Response,
    store: StoreDep,
    symbol: Annotated[str | None, Query(min_length=1, max_length=64)] = None,
    timeframe: Annotated[str | None, Query(min_length=1, max_length=16)] = None,
    format: Annotated[
        Literal["csv", "parquet"] | None, Query(description="Default: sniffed.")
    ] = None,
) -> DatasetOut:
    """Upload bars as multipart (`file`, `symbol`, `timeframe`) or as the raw body (query parameters)."""
    filename: str | None = None
    if require_content_type(request, UPLOAD_TYPES) == "multipart/form-data":
        async with request.form(max_files=1, max_fields=8) as form:
            upload = form.get("file")
            if not isinstance(upload, UploadFile):
                raise ApiError(
                    422, "invalid_request", "the multipart upload needs a file field named 'file'",
                    [("file", "missing: send the file as form field 'file'")],
                )  # fmt: skip
            content = await upload.read()
            filename = upload.filename
            symbol = symbol or _form_text(form.get("symbol"), "symbol")
            timeframe = timeframe or _form_text(form.get("timeframe"), "timeframe")
    else:
        content = await request.body()
    if symbol is None and filename:
        symbol = PurePath(filename).stem[:64] or None
    if symbol is not None and len(symbol) > 64:
        raise ApiError(422, "invalid_request", "symbol is longer than 64 characters", [("symbol", "at most 64 characters")])  # fmt: skip
    fmt = format or sniff_format(filename, content)
    row, created = await run_in_threadpool(
        store.import_bytes, content, fmt, symbol=symbol, timeframe=timeframe
    )
    response.status_code = 201 if created else 200
    response.headers["Location"] = f"/datasets/{row.id}"
    return DatasetOut.of(row)


@router.get("/datasets", response_model=list[DatasetOut], responses=ERRORS)
def list_datasets(store: StoreDep) -> list[DatasetOut]:
    """Stored datasets, newest first."""
    return [DatasetOut.of(r) for r in store.list_datasets()]


@router.get("/datasets/{dataset_id}", response_model=DatasetOut, responses=ERRORS)
def get_dataset(dataset_id: str, store: StoreDep) -> DatasetOut:
    """One stored dataset (use its id as data.id with data.source 'dataset')."""
    return DatasetOut.of(store.get_dataset(dataset_id))


@router.patch(
    "/datasets/{dataset_id}",
    response_model=DatasetOut,
    responses=with_errors({}, body=True),
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": {"$ref": "#/components/schemas/DatasetPatch"}}
            },
        }
    },
)
async def patch_dataset(
    dataset_id: str, request: Request, store: StoreDep, orchestrator: OrchestratorDep
) -> DatasetOut:
    """Re-tag a stored dataset: `{"symbol": "GOOG"}` (the bars, and so the id, stay)."""
    await run_in_threadpool(store.get_dataset, dataset_id)  # 404 before the body is read
    body = await read_json(request)
    try:
        patch = DatasetPatch.model_validate(body if body is not None else {})
    except ValidationError as exc:
        raise ConfigError(
            "invalid request",
            [(".".join(map(str, e["loc"])) or "body", e["msg"]) for e in exc.errors()],
        ) from None
    row = await run_in_threadpool(orchestrator.set_dataset_symbol, dataset_id, patch.symbol)
    return DatasetOut.of(row)


@router.delete("/datasets/{dataset_id}", status_code=204, response_model=None, responses=ERRORS)
def delete_dataset(dataset_id: str, orchestrator: OrchestratorDep) -> Response:
    """Delete a stored dataset (409 while a queued or running run reads it)."""
    orchestrator.delete_dataset(dataset_id)
    return Response(status_code=204)
