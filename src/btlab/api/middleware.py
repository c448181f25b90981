"""Plain ASGI middleware: Host allow-list, bearer-token auth and request body limits (before any
route runs)."""

from __future__ import annotations

import hmac
from collections.abc import Collection
from urllib.parse import urlsplit

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


def host_name(value: str) -> str | None:
    """The host of a Host header or an Origin's authority, lower-cased, without port or brackets."""
    text = value.strip().lower()
    if not text or any(c in text for c in "/?#@ \\"):
        return None
    if text.startswith("["):
        end = text.find("]")
        rest = text[end + 1 :]
        if end < 0 or (rest and not (rest.startswith(":") and rest[1:].isdigit())):
            return None
        return text[1:end]
    name, _, port = text.partition(":")
    if port and not port.isdigit():
        return None
    return name.rstrip(".") or None


class HostCheck:
    """Answers only requests whose Host header names an allowed host (and whose Origin, where a
    browser sends one, does too): a DNS-rebinding page reaches the server under its own name
    and is refused (400); a cross-site request from another origin is refused (403).

    `allowed` holds host names without ports; "*" allows every host (the Origin check included).
    """

    def __init__(self, app: ASGIApp, allowed: Collection[str]) -> None:
        self.app = app
        self.any = "*" in allowed
        self.allowed = frozenset(h.strip().lower().strip("[]") for h in allowed)

    def _ok(self, name: str | None) -> bool:
        return self.any or (name is not None and name in self.allowed)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.any:
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        host = headers.get("host", "")
        if not self._ok(host_name(host)):
            message = (
                f"Host {host!r} is not served here; allowed hosts: {', '.join(sorted(self.allowed))} "
                "(set BTLAB_ALLOWED_HOSTS to add names)"
            )
            response = error_response(
                400, "host_not_allowed", message, [("header.host", "not an allowed host")]
            )
            await response(scope, receive, send)
            return
        origin = headers.get("origin")
        if origin is not None:  # browsers send it on cross-origin requests and on POSTs
            parts = urlsplit(origin)
            if parts.scheme not in ("http", "https") or not self._ok(host_name(parts.netloc)):
                message = f"cross-site request from Origin {origin!r} refused"
                response = error_response(
                    403, "forbidden", message, [("header.origin", "not an allowed host")]
                )
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)
