"""Event streams with several clients: every client gets every event, idle streams get
heartbeats, a hung-up client's queue goes at once, and a shutdown ends streams cleanly."""

from __future__ import annotations

import contextlib
import threading
import time
from typing import Any

import httpx

from .conftest import SERVER_ENV, Server, Sse, iter_sse, slow, stream_events, tiny, wait_status

CLIENTS = 10  # the benchmark (bench/bench_http.py) checks 50


def _streams(client: httpx.Client) -> int:
    return int(client.get("/health").json()["streams"])


def _wait_streams(client: httpx.Client, count: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while (seen := _streams(client)) != count:
        assert time.monotonic() < deadline, f"{seen} open streams, expected {count}"
        time.sleep(0.02)


def _blocker(client: httpx.Client, seed: int) -> str:
    """A long run holding the one worker, so runs posted after it stay queued.

    The fused permutation kernel does 20,000 paths of 4,000 bars in about 2 s, short enough to end
    before a test is done with it; the maximum count on 20,000 bars holds the worker for minutes,
    and every test cancels it."""
    request = slow(permutations=100_000, bars=20_000, seed=seed)
    run_id: str = client.post("/runs", json=request).json()["id"]
    wait_status(client, run_id, ("running",))
    return run_id


def test_every_client_receives_every_event(client: httpx.Client, server: Server) -> None:
    blocker = _blocker(client, seed=600)
    run_id = client.post("/runs", json=slow(permutations=150, bars=3000, seed=601)).json()["id"]
    assert client.get(f"/runs/{run_id}").json()["status"] == "queued"
    received: list[list[Sse]] = [[] for _ in range(CLIENTS)]

    def follow(i: int) -> None:
        with httpx.Client(base_url=server.url, timeout=60) as c:
            received[i] = stream_events(c, run_id)

    base = _streams(client)
    threads = [threading.Thread(target=follow, args=(i,)) for i in range(CLIENTS)]
    for t in threads:
        t.start()
    _wait_streams(client, base + CLIENTS)  # every client is subscribed before the run starts
    assert client.delete(f"/runs/{blocker}").status_code == 202
    for t in threads:
        t.join(120)
    replay = [(e.id, e.event, e.data) for e in stream_events(client, run_id)]
    assert replay[-1][1] == "completed"
    assert sum(1 for e in replay if e[1] == "progress") >= 150
    assert [e[0] for e in replay] == list(range(1, len(replay) + 1))
    for events in received:
        assert [(e.id, e.event, e.data) for e in events] == replay
    _wait_streams(client, base)


def test_an_idle_stream_gets_heartbeats(client: httpx.Client) -> None:
    """SERVER_ENV sets a 1 s heartbeat: a comment line (`: ping`) on a stream with no events."""
    blocker = _blocker(client, seed=610)
    run_id = client.post("/runs", json=tiny(seed=611)).json()["id"]
    lines: list[str] = []
    start = time.monotonic()
    with client.stream("GET", f"/runs/{run_id}/events", timeout=5.0) as response:
        for line in response.iter_lines():  # a missing heartbeat is a read timeout
            lines.append(line)
            if sum(line.startswith(":") for line in lines) >= 2:
                break
    assert time.monotonic() - start < 10
    assert lines[:2] == ["id: 1", "event: queued"]  # the stored event first, then only pings
    assert not any(line.startswith("id: 2") for line in lines)
    assert next(line for line in lines if line.startswith(":")).startswith(": ping")
    client.delete(f"/runs/{blocker}")
    wait_status(client, run_id, ("completed",))


def test_a_client_that_hangs_up_is_unsubscribed(client: httpx.Client) -> None:
    run_id = _blocker(client, seed=620)
    base = _streams(client)
    readers = []  # held: dropping a reader closes its connection
    with contextlib.ExitStack() as stack:
        for _ in range(5):
            response = stack.enter_context(client.stream("GET", f"/runs/{run_id}/events"))
            readers.append(iter_sse(response))
            assert [next(readers[-1]).id for _ in range(3)] == [1, 2, 3]
        assert _streams(client) == base + 5
    _wait_streams(client, base, timeout=5)  # each hang-up drops its queue
    # a resumed client still gets the rest, then the end
    client.delete(f"/runs/{run_id}")
    tail = stream_events(client, run_id, last_event_id=3)
    assert tail[0].id == 4 and tail[-1].event == "cancelled"
    _wait_streams(client, base)


def test_shutdown_ends_streams_cleanly_and_they_resume_after_a_restart(make_server: Any) -> None:
    srv: Server = make_server(**SERVER_ENV).start()
    lines: list[str] = []
    errors: list[BaseException] = []
    reading = threading.Event()

    def follow(run_id: str) -> None:
        try:
            with (
                httpx.Client(base_url=srv.url, timeout=60) as c,
                c.stream("GET", f"/runs/{run_id}/events") as response,
            ):
                for line in response.iter_lines():
                    lines.append(line)
                    if line == "id: 5":
                        reading.set()
        except BaseException as exc:  # the stream must end cleanly, not be cut
            errors.append(exc)

    with httpx.Client(base_url=srv.url, timeout=30) as c:
        run_id = _blocker(c, seed=630)
        reader = threading.Thread(target=follow, args=(run_id,))
        reader.start()
        assert reading.wait(30)
        _wait_streams(c, 1)
    start = time.monotonic()
    srv.stop()
    reader.join(30)
    assert not reader.is_alive()
    assert time.monotonic() - start < 10
    assert errors == []
    assert lines[-2:] == [": server shutting down; reconnect with Last-Event-ID to resume", ""]
    last = max(int(line[4:]) for line in lines if line.startswith("id: "))
    srv.start()
    with httpx.Client(base_url=srv.url, timeout=30) as c:
        rest = stream_events(c, run_id, last_event_id=last)
    assert [e.id for e in rest] == list(range(last + 1, last + 1 + len(rest)))
    assert rest[-1].event == "failed" and rest[-1].data["code"] == "interrupted"
