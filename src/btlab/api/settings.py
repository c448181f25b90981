"""The service's one settings object, read from ``BTLAB_*`` environment variables."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ..errors import ConfigError
from ..plugins import plugin_names
from ..store import DEFAULT_RETENTION, default_home

#: Host names the service answers by default: loopback only (any port).
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


def _split(value: Any) -> Any:
    """A comma-separated environment value as a list (lists pass through)."""
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


def _default_workers() -> int:
    return max(1, min(2, os.cpu_count() or 1))


class Settings(BaseModel):
    """Where the service keeps its data and how it behaves. `from_env` reads ``BTLAB_<NAME>``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    home: Path = Field(default_factory=default_home, description="Home folder (BTLAB_HOME).")
    token: str | None = Field(
        None,
        description="When set, every endpoint needs 'Authorization: Bearer <token>' (BTLAB_TOKEN).",
    )
    retention: int = Field(
        DEFAULT_RETENTION, ge=1, description="Runs kept, newest first (BTLAB_RETENTION)."
    )
    workers: int = Field(
        default_factory=_default_workers, ge=1, le=64, description="Runs executing at once."
    )
    max_upload_bytes: int = Field(
        256 << 20, ge=1, description="Largest dataset upload accepted (413 above)."
    )
    max_request_bytes: int = Field(
        1 << 20, ge=1, description="Largest JSON request body accepted (413 above)."
    )
    heartbeat_seconds: float = Field(
        15.0, gt=0, description="Idle SSE connections get a comment line this often."
    )
    progress_interval: float = Field(
        0.05, ge=0, description="Least seconds between two progress events of a run stage."
    )
    allow_file_paths: bool = Field(
        False,
        description="Whether requests may name files on the server (data.source csv/parquet "
        "with a path) inside `file_roots`; off, data comes from uploads (POST /datasets) "
        "(BTLAB_ALLOW_FILE_PATHS).",
    )
    file_roots: tuple[Path, ...] = Field(
        (),
        description="With allow_file_paths, the folders whose files requests may name "
        "(comma-separated; BTLAB_FILE_ROOTS). Required then: no root, no file.",
    )
    allowed_hosts: tuple[str, ...] = Field(
        LOOPBACK_HOSTS,
        min_length=1,
        description="Host names (without port) the service answers in the Host header, and "
        "accepts as a request's Origin; '*' any (comma-separated; BTLAB_ALLOWED_HOSTS).",
    )

    @field_validator("file_roots", "allowed_hosts", mode="before")
    @classmethod
    def _lists(cls, value: Any) -> Any:
        return _split(value)

    @field_validator("token")
    @classmethod
    def _token(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not value.strip():
            raise ValueError("the token is blank: unset BTLAB_TOKEN to serve without a token")
        if not all(33 <= ord(c) <= 126 for c in value):
            raise ValueError(
                "the token may hold only printable ASCII without spaces (it is sent in a header)"
            )
        return value

    @field_validator("file_roots")
    @classmethod
    def _roots(cls, value: tuple[Path, ...]) -> tuple[Path, ...]:
        roots = []
        for root in value:
            resolved = root.expanduser().resolve()
            if not resolved.is_dir():
                raise ValueError(f"{root} is not a folder")
            roots.append(resolved)
        return tuple(roots)

    cluster: str | None = Field(
        None,
        description="The Dask scheduler whose workers run sweeps' batches and walk-forwards' "
        "train passes, e.g. "
        "tcp://10.0.0.5:8786 (BTLAB_CLUSTER; needs btlab[cluster]). Workers only compute: "
        "results come back here and only this service writes the store.",
    )

    plugins: tuple[str, ...] = Field(
        (),
        description="Modules imported when the app is created, to register their features and "
        "strategies (BTLAB_PLUGINS, comma-separated).",
    )

    @field_validator("plugins", mode="before")
    @classmethod
    def _split_plugins(cls, value: Any) -> Any:
        return plugin_names(value) if isinstance(value, str) else value

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Settings from ``BTLAB_HOME``, ``BTLAB_TOKEN``, ``BTLAB_RETENTION``... then `overrides`."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for name in cls.model_fields:
            raw = env.get(f"BTLAB_{name.upper()}")
            # an empty BTLAB_TOKEN is refused (it would silently turn auth off), other empty
            # variables count as unset
            if raw is not None and (raw != "" or name == "token"):
                values[name] = raw
        given = {k: v for k, v in overrides.items() if v is not None}
        values.update(given)

        def source(loc: tuple[Any, ...]) -> str:  # the flag or variable the value came from
            name = ".".join(map(str, loc))
            return f"--{name.replace('_', '-')}" if name in given else f"BTLAB_{name.upper()}"

        try:
            settings = cls.model_validate(values)
        except ValidationError as exc:
            errors = [(source(tuple(e["loc"])[:1]), e["msg"]) for e in exc.errors()]
            raise ConfigError("invalid service settings", errors) from None
        if settings.allow_file_paths and not settings.file_roots:
            raise ConfigError(
                "invalid service settings",
                [("BTLAB_FILE_ROOTS", "BTLAB_ALLOW_FILE_PATHS is on: name the folders whose "
                  "files requests may read (comma-separated)")],
            )  # fmt: skip
        return settings
