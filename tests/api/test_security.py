"""Security: loopback by default, a bearer token on every endpoint when set, artifacts only by
the names in their manifest, and no reading of server files named in requests."""

from __future__ import annotations

import hmac
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from btlab.cli import build_parser

from .conftest import SERVER_ENV, Server, free_port, iter_sse, tiny, wait_status

TOKEN = "s3cret-token-for-tests"


def test_serve_binds_loopback_by_default(tmp_path: Path) -> None:
    """`btlab serve` without --host answers on 127.0.0.1 and on no other address."""
    assert build_parser().parse_args(["serve"]).host == "127.0.0.1"
    port = free_port()
    env = {**os.environ, "BTLAB_HOME": str(tmp_path / "home"), "BTLAB_WORKERS": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "btlab.cli", "serve", "--port", str(port), "--log-level", "warning"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            try:
                assert httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "server did not start"
                time.sleep(0.05)
        # a socket bound to 0.0.0.0 would accept on every local address (127.0.0.2 included on
        # Linux, where all of 127/8 is loopback); one bound to 127.0.0.1 refuses it
        with (
            pytest.raises(OSError),
            socket.create_connection(("127.0.0.2", port), timeout=2),
        ):
            pass
    finally:
        proc.terminate()
        proc.wait(30)
        if proc.stderr:
            proc.stderr.close()


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A server with BTLAB_TOKEN set and one completed run and one dataset."""
    home = tmp_path_factory.mktemp("sec") / "home"
    home.mkdir()
    srv = Server(home, {**SERVER_ENV, "BTLAB_TOKEN": TOKEN}).start()
    with httpx.Client(base_url=srv.url, timeout=60, headers=srv.auth()) as c:
        run_id = c.post("/runs", json=tiny(seed=700)).json()["id"]
        wait_status(c, run_id, ("completed",))
        import btlab

        csv = btlab.synthetic(bars=60, seed=2).to_frame().to_csv(index=False).encode()
        dataset = c.post("/datasets", files={"file": ("spy.csv", csv)}).json()["id"]
    yield srv, run_id, dataset
    srv.stop()


def _endpoints(srv: Server, run_id: str, dataset: str) -> list[tuple[str, str]]:
    """Every route of the app (from its OpenAPI document) with real ids, plus docs and a 404."""
    spec = httpx.get(srv.url + "/openapi.json", headers=srv.auth()).json()
    out = []
    for template, ops in spec["paths"].items():
        path = template.replace("{run_id}", run_id).replace("{dataset_id}", dataset)
        path = path.replace("{name}", "metrics.json")
        out += [(method.upper(), path) for method in ops]
    return sorted([*out, ("GET", "/openapi.json"), ("GET", "/docs"), ("GET", "/redoc"),
                   ("GET", "/nope")])  # fmt: skip


BAD_HEADERS = {
    "missing": {},
    "wrong-token": {"Authorization": "Bearer wrong"},
    "token-prefix": {"Authorization": f"Bearer {TOKEN[:-1]}"},
    "token-suffix": {"Authorization": f"Bearer {TOKEN}x"},
    "basic-scheme": {"Authorization": f"Basic {TOKEN}"},
    "bare-token": {"Authorization": TOKEN},
    "scheme-only": {"Authorization": "Bearer"},
    "non-ascii": {"Authorization": "Bearer \xe9t\xe9".encode("latin-1")},
}


@pytest.mark.parametrize("name", list(BAD_HEADERS))
def test_every_endpoint_needs_the_token(name: str, secured: Any) -> None:
    srv, run_id, dataset = secured
    endpoints = _endpoints(srv, run_id, dataset)
    assert ("GET", f"/runs/{run_id}/events") in endpoints
    assert len(endpoints) >= 14
    with httpx.Client(base_url=srv.url, timeout=30, headers=srv.auth()) as c:
        before = c.get("/runs").json()["total"], c.get("/datasets").json()
    with httpx.Client(base_url=srv.url, timeout=30) as c:
        for method, path in endpoints:
            response = c.request(method, path, headers=BAD_HEADERS[name], json=tiny(seed=701))
            assert response.status_code == 401, (method, path, response.text)
            assert response.headers["www-authenticate"] == "Bearer"
            body = response.json()
            assert body["code"] == "unauthorized" and "token" in body["message"].lower()
            assert body["details"] == [{"loc": "header.authorization", "msg": body["message"]}]
    with httpx.Client(base_url=srv.url, timeout=30, headers=srv.auth()) as c:
        after = c.get("/runs").json()["total"], c.get("/datasets").json()
    assert after == before  # nothing was run, uploaded or deleted without the token


def test_the_token_opens_every_endpoint(secured: Any) -> None:
    srv, run_id, dataset = secured
    with httpx.Client(base_url=srv.url, timeout=30, headers=srv.auth()) as c:
        for method, path in _endpoints(srv, run_id, dataset):
            if method == "DELETE" or path == "/nope":
                continue
            kwargs: dict[str, Any] = {}
            if path in ("/runs", "/sweeps") and method == "POST":
                kwargs["json"] = {
                    **tiny(seed=700),
                    **({"grid": {"fast": [5]}} if "sweeps" in path else {}),
                }
            if path == "/datasets" and method == "POST":
                kwargs["files"] = {"file": ("x.csv", b"")}  # reaches validation: 422, not 401
            response = c.request(method, path, **kwargs)
            assert response.status_code != 401, (method, path)
            assert response.status_code < 500, (method, path, response.text)
        # the event stream with the token: a full replay
        with c.stream("GET", f"/runs/{run_id}/events") as response:
            assert response.status_code == 200
            events = list(iter_sse(response))
        assert events[0].event == "queued" and events[-1].event == "completed"
        # lower-case scheme is the same scheme (RFC 7235)
        lower = {"Authorization": f"bearer {TOKEN}"}
        assert httpx.get(srv.url + "/health", headers=lower).status_code == 200


def test_the_token_is_compared_in_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """The check goes through hmac.compare_digest (no early exit on the first differing byte)."""
    import asyncio

    from btlab.api import middleware

    calls: list[tuple[bytes, bytes]] = []
    compare = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return compare(a, b)

    monkeypatch.setattr(middleware.hmac, "compare_digest", spy)

    async def ok(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    def status(header: str) -> int:
        sent: list[dict[str, Any]] = []

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        scope = {"type": "http", "method": "GET", "path": "/", "query_string": b"",
                 "headers": [(b"authorization", header.encode())]}  # fmt: skip
        asyncio.run(middleware.BearerAuth(ok, TOKEN)(scope, receive, send))
        return int(sent[0]["status"])

    assert status("Bearer nope") == 401
    assert status(f"Bearer {TOKEN}") == 204
    assert calls == [(b"nope", TOKEN.encode()), (TOKEN.encode(), TOKEN.encode())]


def test_artifacts_only_by_manifest_names(secured: Any) -> None:
    srv, run_id, _ = secured
    folder = srv.home / "runs" / run_id
    (folder / "notes.txt").write_text("not in the manifest")
    (folder / "link.json").symlink_to(srv.home / "btlab.sqlite3")
    with httpx.Client(base_url=srv.url, timeout=30, headers=srv.auth()) as c:
        manifest = c.get(f"/runs/{run_id}/artifacts").json()
        for name in manifest["artifacts"]:
            assert c.get(f"/runs/{run_id}/artifacts/{name}").status_code == 200
        for name in ("notes.txt", "link.json", "btlab.sqlite3", "%2E%2E", "runs"):
            response = c.get(f"/runs/{run_id}/artifacts/{name}")
            assert response.status_code == 404, name
            assert "has no artifact" in response.json()["message"]


def test_requests_cannot_read_server_files(tmp_path: Path, secured: Any) -> None:
    """A request naming a file on the server is refused by the service (upload it instead);
    the library and CLI, which run as the user on the user's files, still read paths."""
    import btlab
    from btlab.errors import ConfigError
    from btlab.orchestrator import Orchestrator
    from btlab.store import Store

    srv, _, _ = secured
    path = tmp_path / "bars.csv"
    path.write_bytes(btlab.synthetic(bars=60, seed=3).to_frame().to_csv(index=False).encode())
    body = {**tiny(seed=702), "data": {"source": "csv", "path": str(path)}}
    with httpx.Client(base_url=srv.url, timeout=30, headers=srv.auth()) as c:
        response = c.post("/runs", json=body)
        assert response.status_code == 422
        assert response.json()["details"][0]["loc"] == "data.path"
        preset = {"preset": "sma_cross_daily", "overrides": {"data": body["data"]}}
        assert c.post("/runs", json=preset).status_code == 422
        sweep = c.post("/sweeps", json={**body, "grid": {"fast": [5, 10]}})
        assert sweep.status_code == 422 and "does not read files" in sweep.json()["message"]
    store = Store(tmp_path / "home")
    try:
        with pytest.raises(ConfigError, match="does not read files"):
            Orchestrator(store, allow_files=False).prepare(body)
        assert Orchestrator(store).prepare(body).dataset_hash
    finally:
        store.close()
