"""One error shape for every 4xx (and the rare 5xx): ``{code, message, details: [{loc, msg}]}``.

btlab's own exceptions map to statuses here, so routes raise them and never build errors:

    ConfigError          422 invalid_request   (details: each bad field)
    DataError            422 invalid_data      (details: the broken rule; message: first rows)
    NotFoundError        404 not_found
    IdempotencyConflict  409 idempotency_conflict
    RunStateError        409 run_state
    PayloadTooLarge      413 payload_too_large
    ApiError             its own status and code
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from ..errors import ConfigError, DataError, NotFoundError
from ..store import IdempotencyConflict, RunStateError

log = logging.getLogger("btlab.api")

_STATUS_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "invalid_request",
}


class ApiError(Exception):
    """An HTTP error with our shape: status, machine-readable code, message, field details."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        details: Iterable[tuple[str, str]] = (),
        headers: dict[str, str] | None = None,
    ) -> None:
        self.status = status
        self.code = code
        self.message = message
        self.details = list(details)
        self.headers = headers
        super().__init__(message)


class PayloadTooLarge(Exception):
    """A request body went over its limit."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        super().__init__(f"request body is larger than the limit of {limit} bytes")


def error_body(code: str, message: str, details: Sequence[tuple[str, str]] = ()) -> dict[str, Any]:
    return {
        "code": code,
        "message": message,
        "details": [{"loc": loc, "msg": msg} for loc, msg in details],
    }


def error_response(
    status: int,
    code: str,
    message: str,
    details: Sequence[tuple[str, str]] = (),
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    return JSONResponse(error_body(code, message, details), status_code=status, headers=headers)


def _clean(msg: str) -> str:
    return msg.removeprefix("Value error, ")


def _loc(parts: Sequence[Any]) -> str:
    return ".".join(str(p) for p in parts) or "request"


async def _api_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return error_response(exc.status, exc.code, exc.message, exc.details, exc.headers)


async def _validation(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    details = [(_loc(e.get("loc", ())), _clean(str(e.get("msg", "")))) for e in exc.errors()]
    if any(e.get("type") == "json_invalid" for e in exc.errors()):
        return error_response(400, "malformed_json", "the request body is not valid JSON", details)
    message = "invalid request: " + "; ".join(f"{loc}: {msg}" for loc, msg in details)
    return error_response(422, "invalid_request", message, details)


async def _http(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = _STATUS_CODES.get(exc.status_code, "error" if exc.status_code >= 500 else "bad_request")
    message = str(exc.detail)
    if exc.status_code == 404 and message == "Not Found":
        message = f"no such endpoint: {request.method} {request.url.path}"
    elif exc.status_code == 405 and message == "Method Not Allowed":
        message = f"method {request.method} is not allowed on {request.url.path}"
    headers = dict(exc.headers) if exc.headers else None
    if exc.status_code == 405:  # every route of the path, not only the first one matched
        allowed = _allowed_methods(request)
        if allowed:
            headers = {**(headers or {}), "Allow": ", ".join(allowed)}
    return error_response(exc.status_code, code, message, headers=headers)


_METHODS = ("DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT")


def _allowed_methods(request: Request) -> list[str]:
    """The methods some route answers on this path (included routers too)."""
    allowed = []
    for method in _METHODS:
        scope = {**request.scope, "method": method}
        if any(route.matches(scope)[0] is Match.FULL for route in request.app.router.routes):
            allowed.append(method)
    return allowed


async def _config(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ConfigError)
    details = [(loc, _clean(msg)) for loc, msg in exc.errors]
    message = str(exc).replace("Value error, ", "")
    return error_response(422, "invalid_request", message, details)


async def _data(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, DataError)
    return error_response(422, "invalid_data", str(exc), [(exc.rule, str(exc))])


async def _not_found(_: Request, exc: Exception) -> JSONResponse:
    return error_response(404, "not_found", str(exc))


async def _idempotency(_: Request, exc: Exception) -> JSONResponse:
    return error_response(409, "idempotency_conflict", str(exc), [("Idempotency-Key", str(exc))])


async def _run_state(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RunStateError)
    details = [("status", exc.status)] if exc.status else []
    return error_response(409, "run_state", str(exc), details)


async def _too_large(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, PayloadTooLarge)
    return error_response(
        413, "payload_too_large", str(exc), [("body", f"at most {exc.limit} bytes")]
    )


async def _internal(_: Request, exc: Exception) -> JSONResponse:
    log.exception("internal error", exc_info=exc)
    return error_response(500, "internal_error", f"internal error: {type(exc).__name__}")


def install_error_handlers(app: FastAPI) -> None:
    """Route every error through the one shape."""
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(StarletteHTTPException, _http)
    app.add_exception_handler(ConfigError, _config)
    app.add_exception_handler(DataError, _data)
    app.add_exception_handler(NotFoundError, _not_found)
    app.add_exception_handler(IdempotencyConflict, _idempotency)
    app.add_exception_handler(RunStateError, _run_state)
    app.add_exception_handler(PayloadTooLarge, _too_large)
    app.add_exception_handler(Exception, _internal)
