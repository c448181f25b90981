"""Retention (SPEC §7): only the newest N runs are kept; the prune is one transaction that leaves
no orphan folder and no dangling row (runs, events, idempotency keys). The store's semantics
first, then 130 runs over a real server with the default retention of 100."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import httpx
import pytest

from btlab.store import DEFAULT_RETENTION, Store

from .conftest import SERVER_ENV, Server, tiny, wait_status


def _add(store: Store, name: str, *, finish: str | None = "completed") -> str:
    """A run row with an idempotency key and a folder, finished with `finish` (None: left queued)."""
    run, created = store.create_run(
        request={"name": name}, config={"name": name}, config_hash=f"hash-{name}",
        dataset_hash=None, body_hash=f"body-{name}", idempotency_key=f"key-{name}",
    )  # fmt: skip
    assert created
    if finish is not None:
        assert store.mark_started(run.id) is not None
        folder = store.run_dir(run.id)
        folder.mkdir()
        (folder / "metrics.json").write_text("{}")
        done = store.finish_run(run.id, finish, events=[(finish, {"run_id": run.id})])
        assert done.changed
    return run.id


def _rows(home: Path) -> dict[str, set[str]]:
    """Run ids per table, read straight from the database file."""
    with sqlite3.connect(home / "btlab.sqlite3") as db:
        return {
            "runs": {r[0] for r in db.execute("SELECT id FROM runs")},
            "events": {r[0] for r in db.execute("SELECT DISTINCT run_id FROM events")},
            "keys": {r[0] for r in db.execute("SELECT run_id FROM idempotency_keys")},
        }


def _folders(home: Path) -> set[str]:
    return {p.name for p in (home / "runs").iterdir()}


@pytest.fixture
def store(tmp_path: Path) -> Any:
    s = Store(tmp_path / "home", retention=3)
    yield s
    s.close()


def test_finishing_a_run_keeps_exactly_the_newest_and_leaves_nothing_dangling(
    store: Store,
) -> None:
    ids = [
        _add(store, f"r{i}", finish=("completed", "failed", "cancelled")[i % 3]) for i in range(8)
    ]
    assert store.run_ids() == set(ids[-3:])
    rows = _rows(store.home)
    assert rows == {"runs": set(ids[-3:]), "events": set(ids[-3:]), "keys": set(ids[-3:])}
    assert _folders(store.home) == set(ids[-3:])
    # a pruned run's key is free again: the same key and body make a new run
    again, created = store.create_run(
        request={}, config={}, config_hash="hash-r0", dataset_hash=None, body_hash="body-r0",
        idempotency_key="key-r0",
    )  # fmt: skip
    assert created and again.id not in ids


def test_active_runs_count_toward_the_newest_but_are_never_pruned(store: Store) -> None:
    old_queued = _add(store, "q0", finish=None)
    done = [_add(store, f"d{i}") for i in range(4)]
    # newest three by creation: d1, d2, d3; d0 goes, the older queued run stays
    assert store.run_ids() == {old_queued, *done[1:]}
    young_queued = _add(store, "q1", finish=None)
    last = _add(store, "d4")
    # newest three: d3, q1, d4 -- so d1 and d2 go, q0 and q1 stay (never pruned while active)
    assert store.run_ids() == {old_queued, done[3], young_queued, last}
    assert _rows(store.home)["keys"] == store.run_ids()
    assert _folders(store.home) == {done[3], last}


def test_a_run_finishing_late_is_kept_until_the_next_prune(store: Store) -> None:
    late = _add(store, "late", finish=None)
    newer = [_add(store, f"n{i}") for i in range(3)]
    assert store.mark_started(late) is not None
    done = store.finish_run(late, "completed", events=[("completed", {"run_id": late})])
    assert done.pruned == []  # the run that just finished is never its own prune's victim
    assert store.run_ids() == {late, *newer}
    assert store.prune() == [late]
    assert store.run_ids() == set(newer)
    assert _rows(store.home) == {"runs": set(newer), "events": set(newer), "keys": set(newer)}


def test_prune_with_an_explicit_count(store: Store) -> None:
    ids = [_add(store, f"r{i}") for i in range(3)]
    assert set(store.prune(keep=1)) == set(ids[:2])
    assert store.run_ids() == {ids[2]} and _folders(store.home) == {ids[2]}
    assert store.prune(keep=0) == ids[2:]
    assert _rows(store.home) == {"runs": set(), "events": set(), "keys": set()}
    with pytest.raises(ValueError, match="keep must be >= 0"):
        store.prune(keep=-1)
    with pytest.raises(ValueError, match="retention must be at least 1"):
        Store(store.home, retention=0)


def test_a_failing_prune_changes_nothing(store: Store) -> None:
    """The finish, its events and the prune are one transaction: a failure in the prune undoes all."""
    ids = [_add(store, f"r{i}") for i in range(3)]
    running = _add(store, "running", finish=None)
    assert store.mark_started(running) is not None
    with sqlite3.connect(store.db_path) as db:
        db.execute(
            "CREATE TRIGGER refuse BEFORE DELETE ON idempotency_keys "
            "BEGIN SELECT RAISE(ABORT, 'refused by test'); END"
        )
    before = _rows(store.home)
    events_before = store.events_after(running)
    with pytest.raises(sqlite3.IntegrityError, match="refused by test"):
        store.finish_run(running, "completed", events=[("completed", {"run_id": running})])
    assert _rows(store.home) == before
    assert store.get_run(running).status == "running"
    assert store.events_after(running) == events_before
    assert _folders(store.home) == set(ids)  # folders go only after the commit


def test_recover_removes_what_a_crash_left(store: Store) -> None:
    kept = _add(store, "kept")
    running = _add(store, "running", finish=None)
    assert store.mark_started(running) is not None
    # a crash between renaming the folder into place and the commit, a temporary folder, a stray
    # folder with no row and a stray file
    (store.runs_dir / running).mkdir()
    (store.runs_dir / f".{running}.tmp-x1y2").mkdir()
    (store.runs_dir / "0123456789abcdef").mkdir()
    (store.runs_dir / "stray.txt").write_text("x")
    report = store.recover()
    assert report.interrupted == [running]
    assert store.get_run(running).status == "failed"
    assert store.get_run(running).error == "interrupted"
    assert store.events_after(running)[-1].type == "failed"
    assert _folders(store.home) == {kept}
    assert store.integrity_check() == "ok"


def test_130_runs_over_http_keep_exactly_the_newest_100(make_server: Any) -> None:
    """Default retention, a real server: the oldest 30 runs leave no row, event, key or folder."""
    env = {k: v for k, v in SERVER_ENV.items() if k != "BTLAB_PROGRESS_INTERVAL"}
    srv: Server = make_server(**env).start()
    assert DEFAULT_RETENTION == 100
    with httpx.Client(base_url=srv.url, timeout=60) as c:
        ids = []
        for i in range(130):
            response = c.post(
                "/runs", json=tiny(seed=5000 + i), headers={"Idempotency-Key": f"k{i}"}
            )
            assert response.status_code == 201, response.text
            ids.append(response.json()["id"])
        for run_id in ids[-2:]:  # one worker runs them in order; two workers might swap the last
            assert (
                wait_status(c, run_id, ("completed", "failed"), timeout=120)["status"]
                == "completed"
            )
        listed = c.get("/runs", params={"limit": 500}).json()
        assert listed["total"] == 100
        assert [r["id"] for r in listed["items"]] == ids[:-101:-1]
        assert {r["status"] for r in listed["items"]} == {"completed"}
        health = c.get("/health").json()
        assert sum(health["runs"].values()) == 100
        for run_id in (ids[0], ids[29]):
            assert c.get(f"/runs/{run_id}").status_code == 404
            assert c.get(f"/runs/{run_id}/events").status_code == 404
            assert c.get(f"/runs/{run_id}/artifacts").status_code == 404
        assert c.get(f"/runs/{ids[30]}/artifacts").status_code == 200
        # a pruned run's key is forgotten with it: the same key and body queue a new run
        again = c.post("/runs", json=tiny(seed=5000), headers={"Idempotency-Key": "k0"})
        assert again.status_code == 201 and again.json()["id"] not in ids
        # a retained run's key still answers it
        kept = c.post("/runs", json=tiny(seed=5129), headers={"Idempotency-Key": "k129"})
        assert kept.status_code == 200 and kept.json()["id"] == ids[-1]
        wait_status(c, again.json()["id"], ("completed",))
    srv.stop()
    kept_ids = set(ids[-99:]) | {again.json()["id"]}  # the re-post pushed out ids[30]
    assert _rows(srv.home) == {"runs": kept_ids, "events": kept_ids, "keys": kept_ids}
    assert _folders(srv.home) == kept_ids
    with sqlite3.connect(srv.home / "btlab.sqlite3") as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
