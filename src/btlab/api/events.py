"""Live events for SSE clients: a hub that fans committed events out to one queue per client.

Resume without gaps or duplicates: a client subscribes *first*, then reads the stored events
after its Last-Event-ID, then takes live events from its queue, skipping any seq it has sent.
Every event committed after the subscription reaches the queue (the store hands events to the
hub after each commit, in seq order), and every event committed before it is in the read, so the
two overlap but never leave a hole.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from collections.abc import AsyncIterator
from typing import Any

import anyio
from sse_starlette import ServerSentEvent
from starlette.concurrency import run_in_threadpool

from ..store import TERMINAL_STATUSES, EventRow, Store

_CLOSE = None


class EventHub:
    """Per-run subscriber queues living on one event loop; `publish` may be called from any thread."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._subscribers: dict[str, set[asyncio.Queue[EventRow | None]]] = {}
        self._lock = threading.Lock()
        self._closed = False

    def subscribe(self, run_id: str) -> asyncio.Queue[EventRow | None]:
        queue: asyncio.Queue[EventRow | None] = asyncio.Queue()
        with self._lock:
            if self._closed:
                queue.put_nowait(_CLOSE)
            else:
                self._subscribers.setdefault(run_id, set()).add(queue)
        return queue

    def unsubscribe(self, run_id: str, queue: asyncio.Queue[EventRow | None]) -> None:
        with self._lock:
            queues = self._subscribers.get(run_id)
            if queues is not None:
                queues.discard(queue)
                if not queues:
                    del self._subscribers[run_id]

    def subscriber_count(self) -> int:
        with self._lock:
            return sum(len(q) for q in self._subscribers.values())

    def publish(self, events: list[EventRow]) -> None:
        """Hand events to their runs' subscribers (called by the store after each commit)."""
        with self._lock:
            targets = [
                (queue, event)
                for event in events
                for queue in self._subscribers.get(event.run_id, ())
            ]
        if not targets:
            return
        with contextlib.suppress(RuntimeError):  # a closed loop: the server is gone
            self._loop.call_soon_threadsafe(_deliver, targets)

    def close(self) -> None:
        """End every stream (server shutdown)."""
        with self._lock:
            self._closed = True
            queues = [q for qs in self._subscribers.values() for q in qs]
            self._subscribers.clear()
        for queue in queues:
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(queue.put_nowait, _CLOSE)


def _deliver(targets: list[tuple[asyncio.Queue[EventRow | None], EventRow]]) -> None:
    for queue, event in targets:
        queue.put_nowait(event)


def sse_message(event: EventRow) -> dict[str, Any]:
    """One SSE message: ``id:`` seq, ``event:`` type, ``data:`` the event's JSON data."""
    return {
        "id": str(event.seq),
        "event": event.type,
        "data": json.dumps(event.data, sort_keys=True, separators=(",", ":")),
    }


def wire(event: EventRow) -> bytes:
    """The bytes of one SSE message as sent (see `sse_message`)."""
    data: bytes = ServerSentEvent(**sse_message(event)).encode()
    return data


#: The comment a stream ends with when the server shuts down (the client resumes elsewhere).
FAREWELL = "server shutting down; reconnect with Last-Event-ID to resume"
_FAREWELL_BYTES = ServerSentEvent(comment=FAREWELL).encode()

#: Stored events sent per write when a stream replays.
REPLAY_CHUNK = 256


async def _close_when(event: anyio.Event, queue: asyncio.Queue[EventRow | None]) -> None:
    await event.wait()
    queue.put_nowait(_CLOSE)


async def run_events(
    store: Store,
    hub: EventHub,
    run_id: str,
    after: int = 0,
    shutdown: anyio.Event | None = None,
) -> AsyncIterator[bytes]:
    """The run's events after seq `after`: stored ones, then live ones; ends after the terminal one.

    Each yield is the wire bytes of one or more SSE messages: the stored events go in chunks of
    `REPLAY_CHUNK`, and live events that queued up while the client was being written to go
    together, so a client that falls behind catches up in a few socket writes, not one per event.
    When `shutdown` is set (or the hub closes) while waiting for live events, the stream ends
    cleanly with a `FAREWELL` comment; the client resumes with its Last-Event-ID.
    """
    queue = hub.subscribe(run_id)
    watcher = asyncio.create_task(_close_when(shutdown, queue)) if shutdown else None
    try:
        last = after
        stored = await run_in_threadpool(store.events_after, run_id, after)
        for i in range(0, len(stored), REPLAY_CHUNK):
            yield b"".join(wire(e) for e in stored[i : i + REPLAY_CHUNK])
        if stored:
            last = stored[-1].seq
            if stored[-1].terminal:
                return
        run = await run_in_threadpool(store.get_run, run_id)
        if run.status in TERMINAL_STATUSES:
            # finished between the read and the status check, or `after` is past its end
            rest = await run_in_threadpool(store.events_after, run_id, last)
            if rest:
                yield b"".join(wire(e) for e in rest)
            return
        while True:
            batch = [await queue.get()]
            while not queue.empty():
                batch.append(queue.get_nowait())
            out: list[bytes] = []
            done = False
            for live in batch:
                if live is _CLOSE:
                    out.append(_FAREWELL_BYTES)
                    done = True
                    break
                if live.seq <= last:
                    continue
                events = [live]
                if live.seq > last + 1:  # cannot happen with an intact hub; heal from the store
                    events = await run_in_threadpool(store.events_after, run_id, last)
                for event in events:
                    out.append(wire(event))
                    last = event.seq
                    if event.terminal:
                        done = True
                        break
                if done:
                    break
            if out:
                yield b"".join(out)
            if done:
                return
    finally:
        if watcher is not None:
            watcher.cancel()
        hub.unsubscribe(run_id, queue)
