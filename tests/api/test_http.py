"""The service over real HTTP: uvicorn in a subprocess on a loopback port."""

from __future__ import annotations

import random
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from btlab.artifacts import run_hash
from btlab.hashing import sha256_hex

from .conftest import SERVER_ENV, Server, slow, stream_events, tiny, wait_status


def _post(client: httpx.Client, body: Any, **headers: str) -> httpx.Response:
    return client.post("/runs", json=body, headers=headers)


def test_post_stream_and_fetch_artifacts(client: httpx.Client) -> None:
    response = _post(client, tiny(seed=101))
    assert response.status_code == 201
    run = response.json()
    assert response.headers["location"] == f"/runs/{run['id']}"
    assert run["status"] == "queued" and run["config"]["seed"] == 101
    events = stream_events(client, run["id"])
    assert [e.id for e in events] == list(range(1, len(events) + 1))
    assert events[0].event == "queued" and events[1].event == "started"
    assert events[-1].event == "completed"
    stages = [e.data["stage"] for e in events if e.event == "stage" and e.data["status"] == "done"]
    assert stages == ["validate", "load_data", "features", "strategy", "simulate", "metrics",
                      "artifacts", "persist", "prune"]  # fmt: skip
    done = client.get(f"/runs/{run['id']}").json()
    assert done["status"] == "completed" and done["run_hash"] == events[-1].data["run_hash"]
    assert done["metrics"]["n_bars"] == 120
    # the manifest's hashes match the files served
    manifest = client.get(f"/runs/{run['id']}/artifacts").json()
    assert set(manifest["artifacts"]) == {"equity.parquet", "fills.parquet", "trades.parquet",
                                          "metrics.json", "validation.json"}  # fmt: skip
    for name, entry in manifest["artifacts"].items():
        body = client.get(f"/runs/{run['id']}/artifacts/{name}")
        assert body.status_code == 200
        assert len(body.content) == entry["bytes"] and sha256_hex(body.content) == entry["sha256"]
        assert body.headers["etag"] == f'"{entry["sha256"]}"'
    assert run_hash(manifest) == manifest["run_hash"] == done["run_hash"]
    raw = client.get(f"/runs/{run['id']}/artifacts/manifest.json")
    assert raw.status_code == 200 and raw.json()["run_hash"] == done["run_hash"]


def test_same_request_answers_the_retained_run(client: httpx.Client) -> None:
    first = _post(client, tiny(seed=102))
    wait_status(client, first.json()["id"], ("completed",))
    # leaving defaults out or writing them is the same request
    again = _post(client, {**tiny(seed=102), "execution": {"initial_cash": 100000.0}})
    assert again.status_code == 200 and again.json()["id"] == first.json()["id"]


def test_sse_resume_after_random_disconnects_gives_the_exact_sequence(
    client: httpx.Client,
) -> None:
    rng = random.Random(7)
    run_id = _post(client, slow(permutations=400, bars=50_000, seed=103)).json()["id"]
    received: list[int] = []
    types: list[str] = []
    last: int | None = None
    live = 0  # hang-ups while the run was still computing
    while not types or types[-1] not in ("completed", "failed", "cancelled"):
        chunk = stream_events(client, run_id, last_event_id=last, limit=rng.randint(1, 40))
        received += [e.id for e in chunk if e.id is not None]
        types += [e.event or "" for e in chunk]
        last = received[-1] if received else last
        live += client.get(f"/runs/{run_id}").json()["status"] == "running"
    assert types[-1] == "completed"
    assert received == list(range(1, len(received) + 1))  # no gap, no duplicate
    assert live >= 3
    assert types.count("progress") >= 400
    # a full replay of the finished run is the same sequence and closes by itself
    replay = stream_events(client, run_id)
    assert [e.id for e in replay] == received


def test_a_stream_opened_before_the_run_starts_gets_every_event(client: httpx.Client) -> None:
    blocker = _post(client, slow(permutations=60, bars=4000, seed=104)).json()["id"]
    queued = _post(client, tiny(seed=105)).json()
    assert queued["status"] == "queued"  # one worker, busy with the blocker
    events = stream_events(client, queued["id"])
    assert [e.id for e in events] == list(range(1, len(events) + 1))
    assert events[0].event == "queued" and events[-1].event == "completed"
    wait_status(client, blocker, ("completed",))


def test_twenty_concurrent_identical_posts_make_one_run(
    client: httpx.Client, server: Server
) -> None:
    body = tiny(seed=106)
    barrier = threading.Barrier(20)
    answers: list[httpx.Response] = []
    lock = threading.Lock()

    def post() -> None:
        with httpx.Client(base_url=server.url, timeout=30.0) as c:
            barrier.wait()
            response = c.post("/runs", json=body)
        with lock:
            answers.append(response)

    threads = [threading.Thread(target=post) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    codes = sorted(r.status_code for r in answers)
    assert codes == [200] * 19 + [201]
    assert len({r.json()["id"] for r in answers}) == 1
    config_hash = answers[0].json()["config_hash"]
    listed = client.get("/runs", params={"limit": 500}).json()["items"]
    assert sum(1 for r in listed if r["config_hash"] == config_hash) == 1


def test_idempotency_key(client: httpx.Client) -> None:
    first = _post(client, tiny(seed=107), **{"Idempotency-Key": "key-107"})
    assert first.status_code == 201
    same = _post(client, tiny(seed=107), **{"Idempotency-Key": "key-107"})
    assert same.status_code == 200 and same.json()["id"] == first.json()["id"]
    other = _post(client, tiny(seed=108), **{"Idempotency-Key": "key-107"})
    assert other.status_code == 409
    error = other.json()
    assert error["code"] == "idempotency_conflict" and "key-107" in error["message"]
    assert error["details"][0]["loc"] == "Idempotency-Key"
    # a key reused with another body is refused even when that body is invalid
    assert _post(client, {"seed": -1}, **{"Idempotency-Key": "key-107"}).status_code == 409


def test_list_runs_is_paged_newest_first(client: httpx.Client) -> None:
    ids = [_post(client, tiny(seed=200 + i)).json()["id"] for i in range(3)]
    page = client.get("/runs", params={"limit": 2}).json()
    assert [r["id"] for r in page["items"]] == ids[::-1][:2]
    assert page["next"] and page["total"] >= 3
    older = client.get(page["next"]).json()
    assert older["items"][0]["id"] == ids[0]
    # walking `next` visits every run once and stops at the last non-empty page
    seen, url, total = [], "/runs?limit=1", page["total"]
    while url:
        walked = client.get(url).json()
        assert walked["items"], f"{url} is an empty page"
        seen += [r["id"] for r in walked["items"]]
        url = walked["next"]
    assert len(seen) == len(set(seen)) >= total
    for run_id in ids:
        wait_status(client, run_id, ("completed",))


def test_delete_cancels_a_running_run_then_deletes_it(client: httpx.Client, server: Server) -> None:
    run_id = _post(client, slow(permutations=20_000, bars=4000, seed=109)).json()["id"]
    wait_status(client, run_id, ("running",))
    cancel = client.delete(f"/runs/{run_id}")
    assert cancel.status_code == 202
    events = stream_events(client, run_id)
    assert events[-1].event == "cancelled"
    assert client.get(f"/runs/{run_id}").json()["status"] == "cancelled"
    assert not (server.home / "runs" / run_id).exists()
    assert client.get(f"/runs/{run_id}/artifacts").status_code == 409
    assert client.delete(f"/runs/{run_id}").status_code == 204
    assert client.get(f"/runs/{run_id}").status_code == 404


def test_finished_run_replays_after_a_restart(make_server: Any) -> None:
    srv: Server = make_server(**SERVER_ENV).start()
    with httpx.Client(base_url=srv.url, timeout=30) as c:
        run_id = _post(c, tiny(seed=110)).json()["id"]
        before = stream_events(c, run_id)
    assert srv.stop() in (0, -15)
    srv.start()
    with httpx.Client(base_url=srv.url, timeout=30) as c:
        after = stream_events(c, run_id)
        assert [(e.id, e.event, e.data) for e in after] == [(e.id, e.event, e.data) for e in before]
        tail = stream_events(c, run_id, last_event_id=5)
        assert [e.id for e in tail] == [e.id for e in before][5:]
        past_end = stream_events(c, run_id, last_event_id=len(before) + 10)
        assert past_end == []


def test_kill_9_mid_run_then_restart_marks_it_interrupted(make_server: Any) -> None:
    srv: Server = make_server(**SERVER_ENV).start()
    with httpx.Client(base_url=srv.url, timeout=30) as c:
        done_id = _post(c, tiny(seed=111)).json()["id"]
        wait_status(c, done_id, ("completed",))
        run_id = _post(c, slow(permutations=20_000, bars=4000, seed=112)).json()["id"]
        stream_events(c, run_id, limit=20)  # well into the run
    srv.kill()
    runs_dir = srv.home / "runs"
    assert not (runs_dir / run_id).exists()  # no partial artifact folder under the run's name
    srv.start()
    with httpx.Client(base_url=srv.url, timeout=30) as c:
        run = c.get(f"/runs/{run_id}").json()
        assert run["status"] == "failed" and run["error"] == "interrupted"
        events = stream_events(c, run_id)
        assert events[-1].event == "failed" and events[-1].data["code"] == "interrupted"
        assert [e.id for e in events] == list(range(1, len(events) + 1))
        assert c.get(f"/runs/{done_id}").json()["status"] == "completed"
    assert sorted(p.name for p in runs_dir.iterdir()) == [done_id]
    srv.stop()
    with sqlite3.connect(srv.home / "btlab.sqlite3") as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_graceful_stop_interrupts_the_running_run(make_server: Any) -> None:
    srv: Server = make_server(**SERVER_ENV).start()
    with httpx.Client(base_url=srv.url, timeout=30) as c:
        run_id = _post(c, slow(permutations=20_000, bars=4000, seed=113)).json()["id"]
        stream_events(c, run_id, limit=10)
    start = time.monotonic()
    srv.stop()
    assert time.monotonic() - start < 15
    srv.start()
    with httpx.Client(base_url=srv.url, timeout=30) as c:
        run = c.get(f"/runs/{run_id}").json()
    assert run["status"] == "failed" and run["error"] == "interrupted"
    assert not (srv.home / "runs" / run_id).exists()


def test_datasets_upload_once_by_content_then_run_on_it(
    client: httpx.Client, tmp_path: Path
) -> None:
    import btlab

    frame = btlab.synthetic(bars=300, seed=3).to_frame()
    csv = frame.to_csv(index=False).encode()
    first = client.post("/datasets", files={"file": ("spy.csv", csv)}, data={"timeframe": "1d"})
    assert first.status_code == 201, first.text
    dataset = first.json()
    assert dataset["symbol"] == "spy" and dataset["rows"] == 300 and dataset["timeframe"] == "1d"
    again = client.post("/datasets", content=csv, params={"symbol": "OTHER"},
                        headers={"Content-Type": "text/csv"})  # fmt: skip
    assert again.status_code == 200 and again.json()["id"] == dataset["id"]
    listed = client.get("/datasets").json()
    assert [d["id"] for d in listed].count(dataset["id"]) == 1
    assert client.get(f"/datasets/{dataset['id']}").json()["rows"] == 300
    body = {**tiny(seed=114), "data": {"source": "dataset", "id": dataset["id"]}}
    run = _post(client, body).json()
    assert run["dataset_hash"] == dataset["id"]
    done = wait_status(client, run["id"], ("completed", "failed"))
    assert done["status"] == "completed", done["error"]


def test_uploaded_bars_and_the_same_file_are_the_same_run(
    client: httpx.Client, tmp_path: Path
) -> None:
    import btlab
    from btlab.artifacts import write_artifacts

    csv = btlab.synthetic(bars=400, seed=11).to_frame().to_csv(index=False).encode()
    path = tmp_path / "spy.csv"
    path.write_bytes(csv)
    uploaded = client.post("/datasets", content=csv, params={"symbol": "SPY"},
                           headers={"Content-Type": "text/csv"})  # fmt: skip
    assert uploaded.status_code in (200, 201), uploaded.text
    run = _post(
        client, {**tiny(seed=116), "data": {"source": "dataset", "id": uploaded.json()["id"]}}
    )
    served = wait_status(client, run.json()["id"], ("completed", "failed"))
    assert served["status"] == "completed", served["error"]
    local = btlab.run({**tiny(seed=116), "data": {"source": "csv", "path": str(path)}})
    manifest = write_artifacts(local, tmp_path / "local")
    assert served["config_hash"] == local.config_hash
    assert served["run_hash"] == manifest["run_hash"]


def test_same_request_on_a_fresh_home_gives_the_same_run_hash(
    client: httpx.Client, tmp_path: Path
) -> None:
    from btlab.orchestrator import Orchestrator
    from btlab.store import Store

    body = tiny(seed=115)
    run_id = _post(client, body).json()["id"]
    served = wait_status(client, run_id, ("completed",))["run_hash"]
    store = Store(tmp_path / "fresh")
    orch = Orchestrator(store)
    try:
        local, _ = orch.submit(body)
        assert orch.wait(local.id, 60).run_hash == served
    finally:
        orch.shutdown()
        store.close()


def test_health_registry_presets_and_openapi(client: httpx.Client) -> None:
    health = client.get("/health").json()
    assert health["status"] == "ok" and health["schema_version"] == 4
    registry = client.get("/registry").json()
    assert {"sma_cross"} <= {s["name"] for s in registry["strategies"]}
    assert {"sharpe", "max_drawdown"} <= {m["name"] for m in registry["metrics"]}
    assert all("properties" in f["params"] or f["params"] for f in registry["features"])
    presets = client.get("/presets").json()
    assert sum(p["default"] for p in presets) == 1
    spec = client.get("/openapi.json").json()
    assert {"/runs", "/runs/{run_id}", "/runs/{run_id}/events", "/runs/{run_id}/artifacts/{name}",
            "/presets", "/registry", "/datasets", "/health"} <= set(spec["paths"])  # fmt: skip
    assert "RunRequest" in spec["components"]["schemas"]
    assert "RunConfig" in spec["components"]["schemas"]


def test_a_preset_with_overrides_runs(client: httpx.Client) -> None:
    body = {"preset": "sma_cross_daily",
            "overrides": {"data": {"bars": 200}, "validation": {"enabled": False}, "seed": 116}}  # fmt: skip
    run = _post(client, body).json()
    assert run["request"] == body and run["config"]["data"]["bars"] == 200
    assert wait_status(client, run["id"], ("completed",))["status"] == "completed"


def test_sweeps_share_the_run_lifecycle(client: httpx.Client) -> None:
    body = {**tiny(seed=117), "data": {"bars": 300}, "grid": {"fast": [5, 10], "slow": [20, 40]}}
    response = client.post("/sweeps", json=body)
    assert response.status_code == 201, response.text
    sweep = response.json()
    assert sweep["kind"] == "sweep"
    events = stream_events(client, sweep["id"])
    assert events[-1].event == "completed", events[-1].data
    assert [e.id for e in events] == list(range(1, len(events) + 1))
    manifest = client.get(f"/runs/{sweep['id']}/artifacts").json()
    assert "sweep.parquet" in manifest["artifacts"]
    assert client.post("/sweeps", json=body).json()["id"] == sweep["id"]
    # the same settings as a single run are another kind: no collision
    assert client.get("/runs", params={"kind": "sweep"}).json()["total"] >= 1


def test_a_sweep_over_a_portfolio_and_a_cost_field_completes(client: httpx.Client) -> None:
    body = {
        **tiny(seed=118), "data": {"bars": 250, "symbols": 3},
        "strategy": {"name": "inverse_vol"}, "execution": {"rebalance": "monthly"},
        "grid": {"lookback": [10, 20], "execution.commission_bps": [0, 4]},
    }  # fmt: skip
    response = client.post("/sweeps", json=body)
    assert response.status_code == 201, response.text
    events = stream_events(client, response.json()["id"])
    assert events[-1].event == "completed", events[-1].data
    bad = {**body, "grid": {"lookback": [10], "data.bars": [100, 200]}}
    refused = client.post("/sweeps", json=bad)
    assert refused.status_code == 422 and "grid.data.bars" in refused.text
