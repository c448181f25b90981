"""Datasets: upload a CSV or Parquet file (validated as SPEC §1, stored once by content hash).

A long file (a `symbol` column naming several symbols) is stored as a portfolio (SPEC §8): its
members as datasets, the portfolio under its hash (`GET /portfolios/{id}`).
"""

from __future__ import annotations

from pathlib import PurePath
from typing import Annotated, Literal, TypeAlias

from fastapi import APIRouter, Query, Request, Response
from pydantic import Field, ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from ...data.portfolio import PortfolioDataset
from ...errors import ConfigError, NotFoundError
from ...portfolio.loaders import load_upload
from ...store import Store, sniff_format
from ..bodies import UPLOAD_TYPES, read_json, require_content_type
from ..deps import OrchestratorDep, StoreDep
from ..errors import ApiError
from ..models import ERRORS, DatasetOut, DatasetPatch, PortfolioOut, with_errors

router = APIRouter(tags=["datasets"])

#: What an upload stores: one symbol's dataset, or a portfolio (a long file), told by `kind`.
Uploaded: TypeAlias = Annotated[DatasetOut | PortfolioOut, Field(discriminator="kind")]

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
                        "symbol": {"type": "string", "description": "Symbol (default: the file name's stem); not for a long file, whose symbol column names them."},
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
    response_model=Uploaded,
    responses=with_errors(
        {
            200: {"model": Uploaded, "description": "The same bars, stored before"},
            201: {"model": Uploaded, "description": "Stored: a dataset, or a portfolio (a long file)"},
        },
        body=True,
    ),
    openapi_extra=_UPLOAD_DOC,
)  # fmt: skip
async def upload_dataset(
    request: Request,
    response: Response,
    store: StoreDep,
    symbol: Annotated[str | None, Query(min_length=1, max_length=64)] = None,
    timeframe: Annotated[str | None, Query(min_length=1, max_length=16)] = None,
    format: Annotated[
        Literal["csv", "parquet"] | None, Query(description="Default: sniffed.")
    ] = None,
) -> DatasetOut | PortfolioOut:
    """Upload bars as multipart (`file`, `symbol`, `timeframe`) or as the raw body (query
    parameters). A long file (a `symbol` column naming several symbols) is stored as a
    portfolio, its members as datasets: the answer's `kind` says which."""
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
    stem = (PurePath(filename).stem[:64] or None) if filename else None
    if symbol is not None and len(symbol) > 64:
        raise ApiError(422, "invalid_request", "symbol is longer than 64 characters", [("symbol", "at most 64 characters")])  # fmt: skip
    fmt = format or sniff_format(filename, content)
    loaded = await run_in_threadpool(
        load_upload, content, fmt=fmt, symbol=symbol, default_symbol=stem, timeframe=timeframe
    )
    if isinstance(loaded, PortfolioDataset):
        held, created = await run_in_threadpool(store.add_portfolio, loaded)
        response.status_code = 201 if created else 200
        response.headers["Location"] = f"/portfolios/{held.id}"
        return PortfolioOut.of(held)
    row, created = await run_in_threadpool(store.add_dataset, loaded)
    response.status_code = 201 if created else 200
    response.headers["Location"] = f"/datasets/{row.id}"
    return DatasetOut.of(row)


def _not_a_portfolio(store: Store, dataset_id: str) -> None:
    """A 404 that points to GET /portfolios/{id} where the id is a stored portfolio's."""
    try:
        store.get_portfolio(dataset_id)
    except NotFoundError:
        return
    raise NotFoundError(
        f"{dataset_id!r} is a stored portfolio, not a dataset: see GET /portfolios/{dataset_id}"
    )


@router.get("/datasets", response_model=list[DatasetOut], responses=ERRORS)
def list_datasets(store: StoreDep) -> list[DatasetOut]:
    """Stored datasets, newest first (a stored portfolio's members among them; the portfolios
    themselves are GET /portfolios)."""
    return [DatasetOut.of(r) for r in store.list_datasets()]


@router.get("/datasets/{dataset_id}", response_model=DatasetOut, responses=ERRORS)
def get_dataset(dataset_id: str, store: StoreDep) -> DatasetOut:
    """One stored dataset (use its id as data.id with data.source 'dataset')."""
    _not_a_portfolio(store, dataset_id)
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
    await run_in_threadpool(_not_a_portfolio, store, dataset_id)
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
def delete_dataset(dataset_id: str, store: StoreDep, orchestrator: OrchestratorDep) -> Response:
    """Delete a stored dataset (409 while a queued or running run reads it, or while a stored
    portfolio holds it: delete the portfolio first)."""
    _not_a_portfolio(store, dataset_id)
    orchestrator.delete_dataset(dataset_id)
    return Response(status_code=204)
