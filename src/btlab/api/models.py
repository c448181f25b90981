"""Request and response models of the HTTP API (input, output and storage never mix)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, RootModel

from ..config import RunConfig
from ..store import DatasetRow, EventRow, PortfolioRow, RunRow

RunStatus = Literal["queued", "running", "completed", "failed", "cancelled"]
RunKind = Literal["run", "sweep", "walkforward"]
EventType = Literal["queued", "started", "stage", "progress", "completed", "failed", "cancelled"]


class _Out(BaseModel):
    model_config = ConfigDict(frozen=True)


# -- errors ------------------------------------------------------------------------------------


class ErrorDetail(_Out):
    loc: str = Field(description="Where: a field path (strategy.params.fast), header or rule.")
    msg: str = Field(description="What is wrong there.")


class ErrorResponse(_Out):
    """Every 4xx (and 5xx) answer."""

    code: str = Field(description="Machine-readable error code, e.g. invalid_request, not_found.")
    message: str = Field(description="Human-readable message naming the problem.")
    details: list[ErrorDetail] = Field(default_factory=list)


_ERROR_SCHEMA = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorResponse"}}}

#: The errors every route may answer, always as JSON whatever the route's own content type.
ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"description": text, "content": _ERROR_SCHEMA}
    for code, text in {
        400: "Malformed request (not JSON, a bad multipart form, a Host not allowed)",
        401: "Missing or wrong bearer token",
        403: "A cross-site request (its Origin is not an allowed host)",
        404: "Unknown run, dataset, preset or artifact",
        409: "Conflict (Idempotency-Key reused with another body; run state)",
        413: "Request body too large",
        422: "Invalid request: each bad field is named",
    }.items()
}

#: Routes that take a body also answer 415 for a content type they do not take.
BODY_ERRORS: dict[int | str, dict[str, Any]] = {
    415: {"description": "Unsupported Content-Type", "content": _ERROR_SCHEMA}
}


def with_errors(
    extra: dict[int | str, dict[str, Any]], *, body: bool = False
) -> dict[int | str, dict[str, Any]]:
    """OpenAPI responses: `extra` plus the error shape of every 4xx (and 415 with a `body`)."""
    return {**ERRORS, **(BODY_ERRORS if body else {}), **extra}


# -- requests ----------------------------------------------------------------------------------


class PresetRequest(BaseModel):
    """A named preset with overrides merged into it (in depth)."""

    model_config = ConfigDict(extra="forbid")

    preset: str = Field(description="A preset name (GET /presets).")
    overrides: dict[str, Any] = Field(
        default_factory=dict, description="Parts of a run request replacing the preset's."
    )


class RunRequest(RootModel[PresetRequest | RunConfig]):
    """POST /runs body: a full run request, or a preset with overrides (empty body: the default preset)."""


# -- runs --------------------------------------------------------------------------------------


class RunLinks(_Out):
    run: str
    events: str
    artifacts: str


class RunSummary(_Out):
    """A run as listed."""

    id: str = Field(description="Run id (16 hex digits).")
    kind: RunKind
    status: RunStatus
    config_hash: str = Field(
        description="sha256 of the request with defaults and the dataset hash."
    )
    dataset_hash: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    error: str | None = Field(description="Why it failed (e.g. 'interrupted') or was cancelled.")
    run_hash: str | None = Field(description="sha256 of the manifest without timestamps.")
    metrics: dict[str, Any] | None = Field(description="Headline metrics of a completed run.")
    cancel_requested: bool = Field(
        False, description="A cancel was asked while it ran: it ends cancelled, with no artifacts."
    )
    links: RunLinks


class RunDetail(RunSummary):
    """A run with its request as posted and the config as resolved (every default filled in)."""

    request: Any = Field(description="The body as posted (null: the default preset).")
    config: dict[str, Any]


class RunPage(_Out):
    items: list[RunSummary]
    total: int = Field(description="Runs matching the filters.")
    limit: int
    offset: int
    next: str | None = Field(description="URL of the next (older) page, or null.")


def _links(run_id: str) -> RunLinks:
    return RunLinks(
        run=f"/runs/{run_id}",
        events=f"/runs/{run_id}/events",
        artifacts=f"/runs/{run_id}/artifacts",
    )


def run_summary(row: RunRow) -> RunSummary:
    return RunSummary(
        id=row.id, kind=row.kind, status=row.status, config_hash=row.config_hash,
        dataset_hash=row.dataset_hash, created_at=row.created_at, started_at=row.started_at,
        finished_at=row.finished_at, error=row.error, run_hash=row.run_hash,
        metrics=row.metrics, cancel_requested=row.cancel_requested, links=_links(row.id),
    )  # fmt: skip


def run_detail(row: RunRow) -> RunDetail:
    return RunDetail(**run_summary(row).model_dump(), request=row.request, config=row.config)


class EventOut(_Out):
    """One event as sent over SSE: `id:` is seq, `event:` the type, `data:` this model's data."""

    seq: int
    type: EventType
    data: dict[str, Any]
    created_at: datetime

    @classmethod
    def of(cls, event: EventRow) -> EventOut:
        return cls(seq=event.seq, type=event.type, data=event.data, created_at=event.created_at)


# -- artifacts ---------------------------------------------------------------------------------


class ArtifactEntry(_Out):
    bytes: int
    sha256: str


class Manifest(BaseModel):
    """manifest.json of a run (SPEC §4); sweeps add their own fields."""

    model_config = ConfigDict(extra="allow", frozen=True)

    engine: str
    engine_version: str
    versions: dict[str, str]
    config_hash: str
    dataset_hash: str
    request: dict[str, Any]
    artifacts: dict[str, ArtifactEntry]
    created_at: str
    run_hash: str


# -- presets, registry, datasets, health -------------------------------------------------------


class PresetOut(_Out):
    name: str
    description: str
    default: bool = Field(description="Whether an empty POST /runs runs this preset.")
    request: dict[str, Any]


class FeatureInfo(_Out):
    name: str
    description: str
    params: dict[str, Any] = Field(description="JSON schema of the parameters.")


class StrategyInfo(_Out):
    name: str
    description: str
    params: dict[str, Any] = Field(description="JSON schema of the parameters.")
    features: Any = Field(description="Features the strategy reads, with its default parameters.")


class MetricInfo(_Out):
    """One metric of metrics.json (`btlab.metric_registry`)."""

    name: str
    label: str = Field(description="What a table shows for it.")
    kind: str = Field(
        description="fraction (shown in percent), ratio, currency, count, bars, number or flag."
    )
    description: str = Field(description="Its definition.")
    undefined: str | None = Field(description="When it is null (undefined), where it can be.")
    headline: bool = Field(description="Among the headline metrics of GET /runs and events.")


class Registry(_Out):
    features: list[FeatureInfo]
    strategies: list[StrategyInfo]
    metrics: list[MetricInfo]


class DatasetOut(_Out):
    """One stored dataset: one symbol's bars."""

    kind: Literal["dataset"] = Field(
        "dataset", description="Always 'dataset' (an upload may answer a portfolio instead)."
    )
    id: str = Field(
        description="Content hash of the bars; use it as data.id with source 'dataset'."
    )
    symbol: str
    timeframe: str
    rows: int
    start: datetime | None
    end: datetime | None
    gaps: int = Field(description="Places where bars the calendar expects are missing.")
    largest_gap_seconds: float | None
    source: str
    created_at: datetime
    meta: dict[str, Any]

    @classmethod
    def of(cls, row: DatasetRow) -> DatasetOut:
        return cls(
            id=row.id, symbol=row.symbol, timeframe=row.timeframe, rows=row.rows, start=row.start,
            end=row.end, gaps=row.gaps, largest_gap_seconds=row.largest_gap_seconds,
            source=row.source, created_at=row.created_at, meta=row.meta,
        )  # fmt: skip


class PortfolioOut(_Out):
    """One stored portfolio (SPEC §8): K stored datasets, each under its symbol, on one clock."""

    kind: Literal["portfolio"] = Field("portfolio", description="Always 'portfolio'.")
    id: str = Field(
        description="The portfolio hash (over the sorted symbols and their bars); use it as "
        "data.id with source 'dataset' to run the portfolio."
    )
    symbols: list[str] = Field(description="Its symbols, sorted.")
    members: dict[str, str] = Field(
        description="Each symbol's stored dataset id (GET /datasets/{id}): symbol -> id."
    )
    timeframe: str
    rows: int = Field(description="Clock bars: the sorted union of every symbol's timestamps.")
    start: datetime | None
    end: datetime | None
    gaps: int = Field(description="Places where clock bars the calendar expects are missing.")
    largest_gap_seconds: float | None
    source: str
    created_at: datetime
    meta: dict[str, Any] = Field(
        description="Its facts: calendar, periods per year, each symbol's listing (first and "
        "last clock bar, missing bars), the inference and any warnings."
    )

    @classmethod
    def of(cls, row: PortfolioRow) -> PortfolioOut:
        return cls(
            id=row.id, symbols=sorted(row.members), members=row.members, timeframe=row.timeframe,
            rows=row.rows, start=row.start, end=row.end, gaps=int(row.meta.get("gaps", 0)),
            largest_gap_seconds=row.meta.get("largest_gap_seconds"), source=row.source,
            created_at=row.created_at, meta=row.meta,
        )  # fmt: skip


class DatasetPatch(BaseModel):
    """PATCH /datasets/{id}: what may change of a stored dataset (its bars and id never do)."""

    model_config = ConfigDict(extra="forbid")

    symbol: str = Field(min_length=1, max_length=64, description="The dataset's new symbol.")


class Health(_Out):
    status: Literal["ok"]
    version: str
    schema_version: int
    workers: int
    active_runs: int = Field(description="Runs queued or running in this process.")
    streams: int = Field(description="Open event streams (SSE clients) of runs.")
    runs: dict[str, int] = Field(description="Stored runs by status.")
    sweeps: bool = Field(description="Whether POST /sweeps is available.")
