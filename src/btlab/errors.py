"""Exceptions raised by btlab. Every one names the problem in its message.

BtlabError
├── DataError            a dataset breaks a rule of SPEC §1 (`rule`, first offending `rows`)
├── ConfigError          a request / config is invalid (`errors`: field path -> message)
├── RunError             the engine could not complete a run
│   ├── RunCancelled     the run was cancelled
│   ├── OutputFolderTaken  an output folder holds another run (btlab.artifacts)
│   └── ArtifactError    an artifact folder that does not match its manifest (btlab.reload)
├── NotFoundError        an unknown run, dataset, preset, feature or strategy
├── IdempotencyConflict  an Idempotency-Key reused with another body (btlab.store)
└── RunStateError        a run or dataset not in a state that allows the operation (btlab.store)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


class BtlabError(Exception):
    """Base of every error btlab raises on purpose."""


class DataError(BtlabError, ValueError):
    """A dataset breaks a data rule; `rule` names it and `rows` holds the first offending rows."""

    def __init__(self, rule: str, message: str, rows: Sequence[int] = ()) -> None:
        self.rule = rule
        self.rows = list(rows)
        where = f" (first offending rows: {', '.join(map(str, self.rows))})" if self.rows else ""
        super().__init__(f"{rule}: {message}{where}")


class ConfigError(BtlabError, ValueError):
    """An invalid request; `errors` lists (field path, message) pairs."""

    def __init__(self, message: str, errors: Sequence[tuple[str, str]] = ()) -> None:
        self.errors = list(errors)
        detail = "; ".join(f"{loc}: {msg}" for loc, msg in self.errors)
        super().__init__(f"{message}: {detail}" if detail else message)

    def details(self) -> list[dict[str, Any]]:
        return [{"loc": loc, "msg": msg} for loc, msg in self.errors]


class RunError(BtlabError, RuntimeError):
    """The engine could not complete a run."""


class RunCancelled(RunError):
    """The run was cancelled between stages or chunks."""


class NotFoundError(BtlabError, LookupError):
    """Something named does not exist."""


def pydantic_message(err: Mapping[str, Any]) -> str:
    """The message of one pydantic error dict as btlab words it (no "Value error, " prefix;
    NaN or infinity "must be a finite number", not a bound it happens to fail)."""
    if err.get("type") == "finite_number":
        return "must be a finite number"
    return str(err.get("msg", "")).removeprefix("Value error, ")
