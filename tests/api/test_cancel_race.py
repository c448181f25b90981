"""DELETE of a running run races its completion: a 202 means it ends cancelled with no artifacts,
else the answer says it came too late (409 with the status). Never a 202 for a completed run."""

from __future__ import annotations

import asyncio
import json
import random
import time
from pathlib import Path

import httpx
import pytest

from btlab.orchestrator import Orchestrator
from btlab.store import RunStateError, Store

from .conftest import Server, tiny, wait_status


def _wait_running(store: Store, run_id: str, timeout: float = 30.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = store.get_run(run_id).status
        if status != "queued":
            return status
        time.sleep(0.0005)
    raise AssertionError(f"run {run_id} did not start")


def test_cancel_against_completion_keeps_its_word(tmp_path: Path) -> None:
    store = Store(tmp_path / "home")
    orch = Orchestrator(store, workers=1, progress_interval=0)
    orch.start()
    rng = random.Random(11)
    outcomes = {"cancelled": 0, "too_late": 0, "deleted": 0}
    try:
        # how long a run takes once warm, so the cancels land all over it
        first, _ = orch.submit(tiny(seed=5000))
        orch.wait(first.id, 120)
        t0 = time.perf_counter()
        timing, _ = orch.submit(tiny(seed=5001))
        orch.wait(timing.id, 60)
        duration = time.perf_counter() - t0
        deadline = time.monotonic() + 60
        for i in range(80):
            if time.monotonic() > deadline:
                break
            run, _ = orch.submit(tiny(seed=5100 + i))
            if _wait_running(store, run.id) != "running":
                continue
            time.sleep(rng.uniform(0, duration))
            try:
                answered, deleted = orch.delete(run.id)
            except RunStateError as exc:
                final = orch.wait(run.id, 60)
                assert exc.status == final.status and final.status in ("completed", "failed")
                assert final.status in str(exc)
                outcomes["too_late"] += 1
                continue
            if deleted:  # finished before the DELETE looked: deleted, gone
                assert not (store.runs_dir / run.id).exists()
                outcomes["deleted"] += 1
                continue
            assert answered.status in ("running", "cancelled")  # the 202
            final = orch.wait(run.id, 60)
            assert final.status == "cancelled", (i, final)
            assert final.run_hash is None and final.metrics is None
            assert not (store.runs_dir / run.id).exists(), "a cancelled run kept artifacts"
            events = store.events_after(run.id)
            assert events[-1].type == "cancelled"
            assert not any(e.type == "completed" for e in events)
            outcomes["cancelled"] += 1
    finally:
        orch.shutdown()
        store.close()
    print(outcomes)
    assert outcomes["cancelled"] >= 5, outcomes


def test_a_cancel_that_finds_the_run_finished_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """DELETE looked while the run was running; by its cancel's transaction it had completed."""
    import dataclasses

    store = Store(tmp_path / "home")
    orch = Orchestrator(store, workers=1)
    orch.start()
    try:
        run, _ = orch.submit(tiny(seed=5200))
        done = orch.wait(run.id, 120)
        assert done.status == "completed"
        stale = dataclasses.replace(done, status="running", finished_at=None)
        real_get = store.get_run
        monkeypatch.setattr(store, "get_run", lambda run_id: stale)
        with pytest.raises(RunStateError, match="completed before the cancel") as caught:
            orch.delete(run.id)
        assert caught.value.status == "completed"
        monkeypatch.setattr(store, "get_run", real_get)
        after = store.get_run(run.id)
        assert after.status == "completed" and not after.cancel_requested
        assert (store.runs_dir / run.id / "manifest.json").is_file()  # untouched
    finally:
        orch.shutdown()
        store.close()


def test_http_delete_answers_409_with_the_status(server: Server, client: httpx.Client) -> None:
    """The error shape of a cancel that came too late: 409, code run_state, the status named."""
    from btlab.api.errors import _run_state

    response = asyncio.run(_run_state(None, RunStateError("run x completed", status="completed")))  # type: ignore[arg-type]
    body = json.loads(bytes(response.body))
    assert response.status_code == 409 and body["code"] == "run_state"
    assert body["details"] == [{"loc": "status", "msg": "completed"}]
    run = client.post("/runs", json=tiny(seed=5201)).json()["id"]
    wait_status(client, run, ("completed",))
    assert client.delete(f"/runs/{run}").status_code == 204


def test_a_requested_cancel_survives_a_crash(tmp_path: Path) -> None:
    """A run killed after its cancel was asked ends cancelled at the next start, not failed."""
    store = Store(tmp_path / "home")
    try:
        asked, _ = store.create_run(request={}, config={}, config_hash="a" * 64,
                                    dataset_hash=None, body_hash="b" * 64)  # fmt: skip
        other, _ = store.create_run(request={}, config={}, config_hash="c" * 64,
                                    dataset_hash=None, body_hash="d" * 64)  # fmt: skip
        for run in (asked, other):
            store.mark_started(run.id)
        assert store.request_cancel(asked.id).cancel_requested
        (store.runs_dir / asked.id).mkdir()  # artifacts half-written when the process died
        report = store.recover()
        assert set(report.interrupted) == {asked.id, other.id}
        assert store.get_run(asked.id).status == "cancelled"
        assert store.events_after(asked.id)[-1].type == "cancelled"
        assert store.get_run(other.id).status == "failed"
        assert not (store.runs_dir / asked.id).exists()
    finally:
        store.close()
