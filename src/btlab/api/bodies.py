"""Request bodies: the content types each route takes, and JSON read with a bounded depth.

A browser may send a cross-site POST without asking first only with a "simple" content type
(text/plain, a form, or none at all), so routes that act take only the types named here: a page on
another site cannot queue a run or upload data in the user's name.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from typing import Any

from fastapi import Request

from .errors import ApiError

#: The deepest nesting a JSON body may have (a run request needs under ten levels).
MAX_JSON_DEPTH = 32

JSON_TYPES = ("application/json",)
UPLOAD_TYPES = (
    "multipart/form-data",
    "text/csv",
    "application/octet-stream",
    "application/vnd.apache.parquet",
)


def media_type(request: Request) -> str:
    """The request's media type, lower-cased, without parameters ("" when none is given)."""
    return request.headers.get("content-type", "").split(";", 1)[0].strip().lower()


def require_content_type(request: Request, allowed: Collection[str]) -> str:
    """The request's media type when it is one of `allowed`, else a 415 naming them."""
    given = media_type(request)
    if given not in allowed:
        shown = repr(given) if given else "none"
        expected = ", ".join(allowed)
        raise ApiError(
            415, "unsupported_media_type",
            f"Content-Type {shown} is not accepted here; send {expected}",
            [("header.content-type", f"must be one of: {expected}")],
        )  # fmt: skip
    return given


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _too_deep() -> ApiError:
    message = f"the request body is nested deeper than {MAX_JSON_DEPTH} levels"
    return ApiError(422, "too_deeply_nested", message, [("body", message)])


def json_depth_exceeds(value: Any, limit: int) -> bool:
    """Whether `value` nests lists/objects deeper than `limit` (iterative: no recursion)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Collection[Any] = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False


async def read_json(request: Request) -> Any:
    """The request body as JSON (None when empty): 415 unless application/json, 400 naming the
    position when malformed, 422 when nested deeper than `MAX_JSON_DEPTH`."""
    require_content_type(request, JSON_TYPES)
    raw = await request.body()
    if not raw.strip():
        return None
    try:
        value = json.loads(raw, parse_constant=_reject_constant)
    except RecursionError:
        raise _too_deep() from None
    except ValueError as exc:  # UnicodeDecodeError is one
        what = "UTF-8 JSON" if isinstance(exc, UnicodeDecodeError) else "valid JSON"
        raise ApiError(
            400, "malformed_json", f"the request body is not {what}: {exc}", [("body", str(exc))]
        ) from None
    if json_depth_exceeds(value, MAX_JSON_DEPTH):
        raise _too_deep()
    return value
