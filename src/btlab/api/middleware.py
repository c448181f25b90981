"""Plain ASGI middleware: bearer-token auth and request body limits (before any route runs)."""

from __future__ import annotations

import hmac
from collections.abc import Collection

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .errors import PayloadTooLarge, error_response


class BearerAuth:
    """With a token set, every HTTP request needs ``Authorization: Bearer <token>`` (else 401)."""

    def __init__(self, app: ASGIApp, token: str | None) -> None:
        self.app = app
        self.token = token.encode() if token else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and self.token is not None:
            header = Headers(scope=scope).get("authorization", "")
            scheme, _, given = header.partition(" ")
            if scheme.lower() != "bearer" or not hmac.compare_digest(
                given.strip().encode(), self.token
            ):
                message = (
                    "missing Authorization header: this server needs 'Authorization: Bearer <token>'"
                    if not header
                    else "invalid bearer token"
                )
                response = error_response(
                    401, "unauthorized", message, [("header.authorization", message)],
                    headers={"WWW-Authenticate": "Bearer"},
                )  # fmt: skip
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


class BodyLimit:
    """Bounds request bodies: `upload_limit` on `upload_paths`, `limit` elsewhere (413 above).

    A declared Content-Length over the limit is refused before the body is read; a body that
    streams past it raises `PayloadTooLarge` inside the route (answered as 413 by its handler).
    """

    def __init__(
        self, app: ASGIApp, *, limit: int, upload_limit: int, upload_paths: Collection[str]
    ) -> None:
        self.app = app
        self.limit = limit
        self.upload_limit = upload_limit
        self.upload_paths = frozenset(upload_paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        path = scope["path"].rstrip("/") or "/"
        limit = self.upload_limit if path in self.upload_paths else self.limit
        declared = Headers(scope=scope).get("content-length")
        if declared is not None:
            if not (declared.strip().isascii() and declared.strip().isdigit()):
                response = error_response(
                    400, "bad_request", f"invalid Content-Length header {declared!r}",
                    [("header.content-length", "must be a non-negative integer")],
                )  # fmt: skip
                await response(scope, receive, send)
                return
            if int(declared) > limit:
                response = error_response(
                    413, "payload_too_large",
                    f"request body of {int(declared)} bytes is larger than the limit of {limit} bytes",
                    [("body", f"at most {limit} bytes")],
                )  # fmt: skip
                await response(scope, receive, send)
                return
        received = 0

        async def limited() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise PayloadTooLarge(limit)
            return message

        await self.app(scope, limited, send)
