"""What the store holds and hands out: statuses, row types, errors and the JSON columns' codec."""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ..errors import BtlabError

RUN_KINDS = ("run", "sweep", "walkforward")
RUN_STATUSES = ("queued", "running", "completed", "failed", "cancelled")
LIVE_STATUSES = ("queued", "running", "completed")
ACTIVE_STATUSES = ("queued", "running")
TERMINAL_STATUSES = ("completed", "failed", "cancelled")
EVENT_TYPES = ("queued", "started", "stage", "progress", "completed", "failed", "cancelled")
INTERRUPTED = "interrupted"
#: The reason of a run whose cancel was asked before its result was stored.
CANCEL_WON = "cancelled before its results were stored"


class IdempotencyConflict(BtlabError):
    """An Idempotency-Key was used before with another request body."""

    def __init__(self, key: str, run_id: str) -> None:
        self.key = key
        self.run_id = run_id
        super().__init__(
            f"Idempotency-Key {key!r} was already used with another request body (run {run_id})"
        )


class RunStateError(BtlabError):
    """The run is not in a state that allows the operation (e.g. deleting a running run).

    `status` is the run's status where the error is about one run.
    """

    def __init__(self, message: str, status: str | None = None) -> None:
        self.status = status
        super().__init__(message)


def now_iso() -> str:
    """The current UTC time, ISO 8601 with milliseconds."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def new_run_id() -> str:
    """A random run id: 16 hex digits (64 bits)."""
    return secrets.token_hex(8)


def _dumps(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), allow_nan=False, default=str)


def _loads(text: str | None) -> Any:
    return None if text is None else json.loads(text)


@dataclass(frozen=True)
class RunRow:
    """One run as stored."""

    n: int
    id: str
    kind: str
    request: Any
    config: dict[str, Any]
    config_hash: str
    dataset_hash: str | None
    status: str
    created_at: str
    started_at: str | None
    finished_at: str | None
    error: str | None
    run_hash: str | None
    metrics: dict[str, Any] | None
    cancel_requested: bool = False

    @property
    def finished(self) -> bool:
        return self.status in TERMINAL_STATUSES


@dataclass(frozen=True)
class EventRow:
    """One event of a run: ``seq`` counts 1, 2, 3... per run."""

    run_id: str
    seq: int
    type: str
    data: dict[str, Any]
    created_at: str

    @property
    def terminal(self) -> bool:
        return self.type in TERMINAL_STATUSES


@dataclass
class Finished:
    """What `Store.finish_run` did: the events it wrote and the runs its prune removed."""

    events: list[EventRow] = field(default_factory=list)
    pruned: list[str] = field(default_factory=list)
    status: str | None = None  # the status written (None: nothing changed)

    @property
    def changed(self) -> bool:
        return bool(self.events)


@dataclass
class RecoveryReport:
    """What `Store.recover` cleaned up at start-up."""

    interrupted: list[str] = field(default_factory=list)
    removed_folders: list[str] = field(default_factory=list)
    removed_dataset_files: list[str] = field(default_factory=list)
    dangling_datasets: list[str] = field(default_factory=list)


_RUN_COLUMNS = (
    "n, id, kind, request, config, config_hash, dataset_hash, status, created_at, started_at, "
    "finished_at, error, run_hash, metrics, cancel_requested"
)


def _run(row: Sequence[Any]) -> RunRow:
    return RunRow(
        n=row[0], id=row[1], kind=row[2], request=_loads(row[3]), config=_loads(row[4]),
        config_hash=row[5], dataset_hash=row[6], status=row[7], created_at=row[8],
        started_at=row[9], finished_at=row[10], error=row[11], run_hash=row[12],
        metrics=_loads(row[13]), cancel_requested=bool(row[14]),
    )  # fmt: skip


def _event(row: Sequence[Any]) -> EventRow:
    return EventRow(
        run_id=row[0], seq=row[1], type=row[2], data=json.loads(row[3]), created_at=row[4]
    )


EventListener = Callable[[list[EventRow]], None]
