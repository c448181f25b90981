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


async def run_events(
    store: Store, hub: EventHub, run_id: str, after: int = 0
) -> AsyncIterator[dict[str, Any]]:
    """The run's events after seq `after`: stored ones, then live ones; ends after the terminal one."""
    queue = hub.subscribe(run_id)
    try:
        last = after
        for event in await run_in_threadpool(store.events_after, run_id, after):
            yield sse_message(event)
            last = event.seq
            if event.terminal:
                return
        run = await run_in_threadpool(store.get_run, run_id)
        if run.status in TERMINAL_STATUSES:
            # finished between the read and the status check, or `after` is past its end
            for event in await run_in_threadpool(store.events_after, run_id, last):
                yield sse_message(event)
            return
        while True:
            live = await queue.get()
            if live is _CLOSE:
                return
            if live.seq <= last:
                continue
            batch = [live]
            if live.seq > last + 1:  # cannot happen with an intact hub; heal from the store
                batch = await run_in_threadpool(store.events_after, run_id, last)
            for event in batch:
                yield sse_message(event)
                last = event.seq
                if event.terminal:
                    return
    finally:
        hub.unsubscribe(run_id, queue)
