"""`RequestModel`, the base of every section of a request (`btlab.config`, `FeatureSpec`).

It sits below the feature and strategy registries and the request itself, so each of them can
build on it without importing the others.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from functools import cache
from typing import Any, get_args

from pydantic import BaseModel, ConfigDict, TypeAdapter, model_validator

__all__ = ["HashOmitDefault", "NotHashed", "RequestModel", "hash_payload"]

_LAX_DATETIME: TypeAdapter[datetime] = TypeAdapter(datetime)


class HashOmitDefault:
    """Field marker (`Annotated[T, HashOmitDefault()]`): the field is left out of the hashed
    request while it holds its default. A field added to a request after runs were recorded
    carries it, so every request written before it keeps its config hash (and its stored runs)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "HashOmitDefault()"


class NotHashed:
    """Field marker (`Annotated[T, NotHashed()]`): the field is never in the hashed request. For
    settings that change what a result holds in memory, never a number or an artifact (a
    streamed sweep's `keep`)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "NotHashed()"


def _prune(model: BaseModel, dumped: dict[str, Any]) -> dict[str, Any]:
    for name, info in type(model).model_fields.items():
        if name not in dumped:
            continue
        value = getattr(model, name)
        if any(isinstance(m, NotHashed) for m in info.metadata):
            del dumped[name]
            continue
        omit = any(isinstance(m, HashOmitDefault) for m in info.metadata)
        if omit and value == info.get_default(call_default_factory=True):
            del dumped[name]
        elif isinstance(value, BaseModel) and isinstance(dumped[name], dict):
            _prune(value, dumped[name])
        elif isinstance(value, list | tuple) and isinstance(dumped[name], list):
            for item, out in zip(value, dumped[name], strict=True):
                if isinstance(item, BaseModel) and isinstance(out, dict):
                    _prune(item, out)
    return dumped


def hash_payload(model: BaseModel) -> dict[str, Any]:
    """`model.model_dump(mode="json")` without the `HashOmitDefault` fields at their default, at
    every depth: the request as its config hash sees it."""
    return _prune(model, model.model_dump(mode="json"))


@cache
def _datetime_fields(model: type[BaseModel]) -> tuple[str, ...]:
    def is_datetime(annotation: Any) -> bool:
        return annotation is datetime or datetime in get_args(annotation)

    return tuple(n for n, f in model.model_fields.items() if is_datetime(f.annotation))


class RequestModel(BaseModel):
    """Base of every request section: strict types (a JSON bool is not a number, a string is not
    a number, a float is not an int; an int fills a float field), finite floats only, no
    unknown fields. JSON has no timestamp type, so ISO 8601 text fills a datetime field."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)

    @model_validator(mode="before")
    @classmethod
    def _timestamps_from_text(cls, data: Any) -> Any:
        names = _datetime_fields(cls)
        if not names or not isinstance(data, Mapping):
            return data
        out = dict(data)
        for name in names:
            value = out.get(name)
            if isinstance(value, str):
                try:
                    datetime.fromisoformat(value)  # ISO text only: "1600000000" is not a date
                except ValueError:
                    continue  # left as text: strict validation names the field
                out[name] = _LAX_DATETIME.validate_python(value)
        return out
