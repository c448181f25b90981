"""`Stages`, the one stage runner of every kind of run (single, portfolio, sweep): stage events
with timings, progress callbacks and cancellation between stages."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

from .errors import RunCancelled

__all__ = ["CancelCheck", "EventSink", "Stages"]

EventSink = Callable[[str, dict[str, Any]], None]
CancelCheck = Callable[[], bool]

V = TypeVar("V")


class Stages:
    """The one stage runner of every kind of run: emits stage events with timings and checks
    for cancellation between stages (`kind` names the run in the cancel message)."""

    def __init__(
        self, on_event: EventSink | None, should_cancel: CancelCheck | None, kind: str = "run"
    ) -> None:
        self.on_event = on_event
        self.should_cancel = should_cancel
        self.kind = kind
        self.timings: dict[str, float] = {}

    def run(self, name: str, fn: Callable[[], V]) -> V:
        if self.should_cancel is not None and self.should_cancel():
            raise RunCancelled(f"{self.kind} cancelled before stage {name}")
        if self.on_event is not None:
            self.on_event("stage", {"stage": name, "status": "started"})
        start = time.perf_counter()
        value = fn()
        elapsed = (time.perf_counter() - start) * 1e3
        self.timings[name] = elapsed
        if self.on_event is not None:
            self.on_event(
                "stage", {"stage": name, "status": "done", "elapsed_ms": round(elapsed, 3)}
            )
        return value

    def progress(self, stage: str) -> Callable[[int, int], None] | None:
        sink = self.on_event
        if sink is None:
            return None
        return lambda done, total: sink("progress", {"stage": stage, "done": done, "total": total})
