"""Hardening found by an outside audit (issue 11): deep JSON, cross-site requests and DNS
rebinding, links under runs/, server files, blank tokens."""

from __future__ import annotations

import http.client
import json
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from btlab.errors import ConfigError
from btlab.hashing import MAX_DEPTH, canonicalize

from .conftest import SERVER_ENV, Server, tiny, wait_status

# -- deeply nested JSON ------------------------------------------------------------------------


def _nested(depth: int, kind: str) -> bytes:
    if kind == "list":
        return b"[" * depth + b"]" * depth
    if kind == "object":
        return b'{"a":' * depth + b"1" + b"}" * depth
    return b'{"overrides":' + b"[" * depth + b"{}" + b"]" * depth + b"}"


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    depth=st.one_of(st.integers(33, 600), st.integers(600, 20_000)),
    kind=st.sampled_from(["list", "object", "mixed"]),
    path=st.sampled_from(["/runs", "/sweeps"]),
)
def test_deep_json_is_a_4xx_and_the_connection_stays_open(
    server: Server, depth: int, kind: str, path: str
) -> None:
    """Any depth past the bound answers 422 (never a 500), and the keep-alive connection serves
    the next request."""
    body = _nested(depth, kind)
    if len(body) > 60_000:  # under the test server's body limit (413 is covered elsewhere)
        body = _nested(60_000 // 12, kind)
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        conn.request("POST", path, body=body, headers={"Content-Type": "application/json"})
        response = conn.getresponse()
        answer = json.loads(response.read())
        assert response.status == 422, answer
        assert answer["code"] == "too_deeply_nested" and "deeper than 32" in answer["message"]
        conn.request("GET", "/health")  # the same connection
        assert conn.getresponse().status == 200
    finally:
        conn.close()


def test_json_at_the_depth_bound_is_accepted(client: httpx.Client) -> None:
    nested: Any = {}
    for _ in range(30):  # 32 levels with the body and "overrides"
        nested = {"x": nested}
    response = client.post("/runs", json={"preset": "sma_cross_daily", "overrides": nested})
    assert response.status_code == 422 and response.json()["code"] == "invalid_request"


def test_canonicalize_bounds_its_depth() -> None:
    deep: Any = 1
    for _ in range(MAX_DEPTH + 1):
        deep = [deep]
    with pytest.raises(ValueError, match="deeper than"):
        canonicalize(deep)
    for _ in range(5000):
        deep = [deep]
    with pytest.raises(ValueError, match="deeper than"):  # not a RecursionError
        canonicalize(deep)
    assert canonicalize([[[1.0]]]) == [[[1.0]]]


# -- cross-site requests and DNS rebinding -----------------------------------------------------


def _raw(server: Server, method: str, path: str, headers: dict[str, str], body: bytes = b"") -> Any:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
        for name, value in headers.items():
            conn.putheader(name, value)
        conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body)
        response = conn.getresponse()
        return response.status, json.loads(response.read() or b"null")
    finally:
        conn.close()


@pytest.mark.parametrize(
    "host", ["127.0.0.1", "localhost", "[::1]", "127.0.0.1:8000", "LOCALHOST:1", "[::1]:99"]
)
def test_loopback_hosts_are_served(server: Server, host: str) -> None:
    status, _ = _raw(server, "GET", "/health", {"Host": host})
    assert status == 200


@pytest.mark.parametrize(
    "host", ["evil.example", "evil.example:8000", "127.0.0.1.evil.example", "", "[::1]x",
             "localhost:abc", "user@localhost", "10.0.0.1"],
)  # fmt: skip
def test_other_hosts_are_refused(server: Server, host: str) -> None:
    """A DNS-rebinding page reaches the server under its own name: refused, results unread."""
    for method, path in (("GET", "/runs"), ("GET", "/health"), ("POST", "/runs")):
        status, body = _raw(
            server, method, path, {"Host": host, "Content-Type": "application/json"}
        )
        assert status == 400, (host, method, body)
        assert body["code"] == "host_not_allowed" and "BTLAB_ALLOWED_HOSTS" in body["message"]


def test_cross_site_origins_are_refused(server: Server, client: httpx.Client) -> None:
    before = client.get("/runs").json()["total"]
    body = json.dumps(tiny(seed=1101)).encode()
    for origin in ("https://evil.example", "null", "http://127.0.0.1.evil.example:8000"):
        headers = {"Host": f"127.0.0.1:{server.port}", "Origin": origin,
                   "Content-Type": "application/json"}  # fmt: skip
        status, answer = _raw(server, "POST", "/runs", headers, body)
        assert status == 403 and answer["code"] == "forbidden", (origin, answer)
    assert client.get("/runs").json()["total"] == before
    same = {"Origin": f"http://127.0.0.1:{server.port}"}
    assert client.get("/health", headers=same).status_code == 200


def test_allowed_hosts_are_configurable(make_server: Any) -> None:
    srv = make_server(**SERVER_ENV, BTLAB_ALLOWED_HOSTS="btlab.internal, 127.0.0.1").start()
    assert _raw(srv, "GET", "/health", {"Host": "btlab.internal:8000"})[0] == 200
    assert _raw(srv, "GET", "/health", {"Host": "localhost"})[0] == 400
    srv.stop()
    anyhost = make_server(**SERVER_ENV, BTLAB_ALLOWED_HOSTS="*").start()
    assert _raw(anyhost, "GET", "/health", {"Host": "whatever.example"})[0] == 200


# -- links under runs/ ---------------------------------------------------------------------------


def test_links_under_runs_are_not_followed(server: Server, client: httpx.Client) -> None:
    run = client.post("/runs", json=tiny(seed=1102)).json()["id"]
    wait_status(client, run, ("completed",))
    folder = server.home / "runs" / run
    secret = server.home.parent / "secret.json"
    secret.write_text('{"secret": true}')
    # an artifact named in the manifest replaced by a link
    (folder / "metrics.json").unlink()
    (folder / "metrics.json").symlink_to(secret)
    response = client.get(f"/runs/{run}/artifacts/metrics.json")
    assert response.status_code == 404 and "link" in response.json()["message"]
    assert "secret" not in response.text
    report = client.get(f"/runs/{run}/report")
    assert report.status_code == 404 and "link" in report.json()["message"]
    # the whole folder replaced by a link to a folder holding a manifest
    other = client.post("/runs", json=tiny(seed=1103)).json()["id"]
    wait_status(client, other, ("completed",))
    elsewhere = server.home.parent / "elsewhere"
    (server.home / "runs" / other).rename(elsewhere)
    (server.home / "runs" / other).symlink_to(elsewhere)
    for path in ("artifacts", "artifacts/metrics.json", "report"):
        response = client.get(f"/runs/{other}/{path}")
        assert response.status_code == 404, path
        assert "link" in response.json()["message"]


# -- files named in requests ---------------------------------------------------------------------


def test_file_paths_need_roots(tmp_path: Path) -> None:
    from btlab.api.settings import Settings

    with pytest.raises(ConfigError, match="BTLAB_FILE_ROOTS"):
        Settings.from_env({"BTLAB_ALLOW_FILE_PATHS": "true", "BTLAB_HOME": str(tmp_path)})
    with pytest.raises(ConfigError, match="not a folder"):
        Settings.from_env({"BTLAB_FILE_ROOTS": str(tmp_path / "nope")})
    given = Settings.from_env({"BTLAB_ALLOW_FILE_PATHS": "1", "BTLAB_FILE_ROOTS": f" {tmp_path} ,"})
    assert given.file_roots == (tmp_path.resolve(),)


def test_file_paths_stay_inside_their_roots(tmp_path: Path, make_server: Any) -> None:
    import btlab

    root = tmp_path / "data"
    root.mkdir()
    good = root / "bars.csv"
    good.write_text(btlab.synthetic(bars=60, seed=5).to_frame().to_csv(index=False))
    outside = tmp_path / "shadow"
    outside.write_text("root:*:19000:0:99999:7:::\ndaemon:*:19000:0:99999:7:::\n")
    (root / "link.csv").symlink_to(outside)
    (root / "shadow.csv").write_text(outside.read_text())
    srv = make_server(**SERVER_ENV, BTLAB_ALLOW_FILE_PATHS="true", BTLAB_FILE_ROOTS=str(root))
    srv.start()
    with httpx.Client(base_url=srv.url, timeout=60) as c:

        def post(path: Path | str) -> httpx.Response:
            body = {**tiny(seed=1104), "data": {"source": "csv", "path": str(path)}}
            return c.post("/runs", json=body)

        for path in (outside, root / "link.csv", root / ".." / "shadow", "/etc/passwd"):
            response = post(path)
            assert response.status_code == 422, response.text
            assert response.json()["details"][0]["loc"] == "data.path"
            assert "outside the folders" in response.text and "root:" not in response.text
        response = post(root / "shadow.csv")  # inside a root but not data: rule, no content
        assert response.status_code == 422, response.text
        assert response.json()["code"] == "invalid_data"
        assert "missing_columns" in response.text and "root:" not in response.text
        assert post(good).status_code == 201


# -- tokens ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("token", ["", " ", "\t", "two words", " padded", "t\u00e9"])
def test_blank_or_unsendable_tokens_are_refused_at_startup(tmp_path: Path, token: str) -> None:
    from btlab.api.settings import Settings

    with pytest.raises(ConfigError, match="BTLAB_TOKEN"):
        Settings.from_env({"BTLAB_TOKEN": token, "BTLAB_HOME": str(tmp_path)})
    assert Settings.from_env({"BTLAB_TOKEN": "s3cret", "BTLAB_HOME": str(tmp_path)}).token


def test_serve_refuses_an_empty_token(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    env = {**os.environ, "BTLAB_HOME": str(tmp_path / "home"), "BTLAB_TOKEN": ""}
    done = subprocess.run(
        [sys.executable, "-m", "btlab.cli", "serve", "--port", "0"],
        env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode != 0
    assert "BTLAB_TOKEN" in done.stderr and "blank" in done.stderr
    assert "serving" not in done.stderr


# -- btlab serve on a busy port ------------------------------------------------------------------


def test_serve_on_a_busy_port_names_it_and_announces_nothing(tmp_path: Path) -> None:
    import os
    import socket
    import subprocess
    import sys

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        env = {**os.environ, "BTLAB_HOME": str(tmp_path / "home")}
        done = subprocess.run(
            [sys.executable, "-m", "btlab.cli", "serve", "--port", str(port)],
            env=env, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
    assert done.returncode != 0
    assert f"port {port} on 127.0.0.1 is busy" in done.stderr, done.stderr
    assert "serving" not in done.stderr and "Errno" not in done.stderr


def test_serve_announces_the_bound_port(tmp_path: Path) -> None:
    import os
    import re
    import signal
    import subprocess
    import sys

    env = {**os.environ, "BTLAB_HOME": str(tmp_path / "home"), "BTLAB_WORKERS": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "btlab.cli", "serve", "--port", "0", "--log-level", "warning"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline()
        found = re.search(r"btlab serving .* on http://127\.0\.0\.1:(\d+)", line)
        assert found, line
        port = int(found.group(1))
        assert port != 0
        deadline = time.monotonic() + 60
        while True:  # the socket is bound already: the app answers once started
            try:
                assert httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline
                time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
        if proc.stderr:
            proc.stderr.close()


# -- /docs and /redoc offline ---------------------------------------------------------------------


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_docs_pages_load_only_local_assets(client: httpx.Client, page: str) -> None:
    """Every script, stylesheet and icon of the page is served by this server (no CDN)."""
    import re

    response = client.get(page)
    assert response.status_code == 200 and "text/html" in response.headers["content-type"]
    html = response.text
    urls = re.findall(r"""<(?:script|link)\b[^>]*?\b(?:src|href)=["']([^"']+)["']""", html)
    assert len(urls) >= 2, html
    assert "fonts.googleapis" not in html and "cdn" not in html.lower()
    for url in urls:
        assert url.startswith("/") and not url.startswith("//"), url
        asset = client.get(url)
        assert asset.status_code == 200, url
        assert len(asset.content) > 1000, url
    script = "swagger-ui-bundle.js" if page == "/docs" else "redoc.standalone.js"
    assert any(u.endswith(script) for u in urls)
    assert "/openapi.json" in html and client.get("/openapi.json").status_code == 200
