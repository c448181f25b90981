"""Fixtures of the service tests: a real uvicorn server in a subprocess, SSE parsing, tiny requests."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

#: A run that takes a few milliseconds: 120 bars, no validation.
TINY: dict[str, Any] = {
    "data": {"bars": 120},
    "strategy": {"name": "sma_cross", "params": {"fast": 5, "slow": 20}},
    "validation": {"enabled": False},
}


def tiny(seed: int = 0, **extra: Any) -> dict[str, Any]:
    """A tiny request; different seeds are different runs (the seed is part of the request)."""
    return {**TINY, "seed": seed, **extra}


def slow(permutations: int = 200, bars: int = 5000, seed: int = 0) -> dict[str, Any]:
    """A run with one progress event per permutation: long enough to interrupt."""
    return {
        "data": {"bars": bars},
        "strategy": {"name": "sma_cross", "params": {"fast": 5, "slow": 20}},
        "validation": {
            "bootstrap": {"enabled": False},
            "folds": {"enabled": False},
            "permutation": {"n_permutations": permutations},
        },
        "seed": seed,
    }


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    """`btlab serve` in a subprocess on a loopback port, with its own home folder."""

    home: Path
    env: dict[str, str] = field(default_factory=dict)
    port: int = 0
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60.0) -> Server:
        self.port = free_port()
        env = {**os.environ, "BTLAB_HOME": str(self.home), "PYTHONUNBUFFERED": "1", **self.env}
        log = open(self.home.parent / f"{self.home.name}-server.log", "ab")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "btlab.cli", "serve", "--host", "127.0.0.1",
             "--port", str(self.port), "--log-level", "warning"],
            env=env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}: {self.log()}")
            try:
                if httpx.get(
                    self.url + "/health", timeout=1.0, headers=self.auth()
                ).status_code in (200, 401):
                    return self
            except httpx.TransportError:
                time.sleep(0.05)
        raise RuntimeError(f"server did not start in {timeout} s: {self.log()}")

    def auth(self) -> dict[str, str]:
        token = self.env.get("BTLAB_TOKEN")
        return {"Authorization": f"Bearer {token}"} if token else {}

    def log(self) -> str:
        path = self.home.parent / f"{self.home.name}-server.log"
        return path.read_text(errors="replace")[-4000:] if path.exists() else ""

    def stop(self) -> int:
        """SIGTERM and wait (graceful shutdown)."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        return int(self.proc.returncode)

    def kill(self) -> None:
        """kill -9: no shutdown code runs."""
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)


@pytest.fixture
def make_server(tmp_path: Path) -> Iterator[Any]:
    """A factory of servers (stopped at the end of the test)."""
    servers: list[Server] = []

    def make(home: Path | None = None, **env: str) -> Server:
        server = Server(home or tmp_path / f"home{len(servers)}", dict(env))
        server.home.mkdir(parents=True, exist_ok=True)
        servers.append(server)
        return server

    yield make
    for server in servers:
        if server.proc is not None and server.proc.poll() is None:
            server.stop()


SERVER_ENV = {
    "BTLAB_WORKERS": "1",
    "BTLAB_PROGRESS_INTERVAL": "0",
    "BTLAB_MAX_REQUEST_BYTES": str(64 << 10),
    "BTLAB_MAX_UPLOAD_BYTES": str(256 << 10),
    "BTLAB_HEARTBEAT_SECONDS": "1",
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One server shared by a module's tests: 1 worker, every progress event, small body limits."""
    home = tmp_path_factory.mktemp("srv") / "home"
    home.mkdir()
    srv = Server(home, dict(SERVER_ENV)).start()
    yield srv
    srv.stop()


@pytest.fixture
def client(server: Server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=30.0) as c:
        yield c


@dataclass(frozen=True)
class Sse:
    id: int | None
    event: str | None
    data: Any


def iter_sse(response: httpx.Response) -> Iterator[Sse]:
    """Parse an SSE stream into events (comment lines such as pings are skipped)."""
    fields: dict[str, str] = {}
    for line in response.iter_lines():
        if line == "":
            if "data" in fields or "event" in fields:
                raw = fields.get("data")
                yield Sse(
                    int(fields["id"]) if "id" in fields else None,
                    fields.get("event"),
                    json.loads(raw) if raw else None,
                )
            fields = {}
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        fields[name] = fields[name] + "\n" + value if name in fields else value


def stream_events(
    client: httpx.Client, run_id: str, last_event_id: int | None = None, limit: int | None = None
) -> list[Sse]:
    """Read a run's events (from after `last_event_id`), at most `limit` of them, then hang up."""
    headers = {"Last-Event-ID": str(last_event_id)} if last_event_id is not None else {}
    out: list[Sse] = []
    with client.stream("GET", f"/runs/{run_id}/events", headers=headers) as response:
        assert response.status_code == 200, response.read()
        for event in iter_sse(response):
            out.append(event)
            if limit is not None and len(out) >= limit:
                break
    return out


def wait_status(
    client: httpx.Client, run_id: str, statuses: tuple[str, ...], timeout: float = 60.0
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run: dict[str, Any] = client.get(f"/runs/{run_id}").json()
        if run["status"] in statuses:
            return run
        time.sleep(0.02)
    raise AssertionError(f"run {run_id} not in {statuses} after {timeout} s")
