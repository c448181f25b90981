"""The service with `BTLAB_CLUSTER`: a sweep's batches run on a local Dask cluster's two worker
processes and the run completes with the numbers of an in-process sweep (SPEC §11)."""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

import httpx
import pandas as pd
import pytest

from btlab.executors import LocalExecutor
from btlab.sweep import run_sweep
from tests.api.conftest import SERVER_ENV, stream_events, tiny

distributed = pytest.importorskip("distributed")


@pytest.fixture(scope="module")
def scheduler(local_cluster: Any) -> str:
    address: str = local_cluster.scheduler_address
    return address


def test_a_sweep_served_on_the_cluster_equals_the_local_sweep(
    make_server: Callable[..., Any], scheduler: str
) -> None:
    server = make_server(**SERVER_ENV, BTLAB_CLUSTER=scheduler).start()
    body = {
        **tiny(seed=5), "data": {"bars": 400, "seed": 5},
        "grid": {"fast": [5, 10, 15], "slow": [40, 80], "execution.commission_bps": [0, 4]},
    }  # fmt: skip
    with httpx.Client(base_url=server.url, timeout=60.0) as client:
        created = client.post("/sweeps", json=body)
        assert created.status_code == 201, created.text
        run_id = created.json()["id"]
        events = stream_events(client, run_id)
        assert events[-1].event == "completed", events[-1].data
        table = client.get(f"/runs/{run_id}/artifacts/sweep.parquet")
        assert table.status_code == 200
    local = run_sweep(body, executor=LocalExecutor()).artifact_payloads()
    assert table.content == local["sweep.parquet"]  # the same bytes
    assert pd.read_parquet(io.BytesIO(table.content)).shape[0] == 12


def test_a_walkforward_served_on_the_cluster_equals_the_local_one(
    make_server: Callable[..., Any], scheduler: str
) -> None:
    from btlab.walkforward import run_walkforward

    server = make_server(**SERVER_ENV, BTLAB_CLUSTER=scheduler).start()
    body = {
        "data": {"bars": 400, "seed": 5}, "validation": {"enabled": False},
        "grid": {"fast": [5, 10], "slow": [20, 40], "risk.stop_loss": [None, 0.03]},
        "walkforward": {"train": 120, "test": 60},
    }  # fmt: skip
    with (
        distributed.Client(scheduler) as client,
        distributed.get_task_stream(client=client) as ts,
        httpx.Client(base_url=server.url, timeout=60.0) as http,
    ):
        created = http.post("/walkforward", json=body)
        assert created.status_code == 201, created.text
        run_id = created.json()["id"]
        events = stream_events(http, run_id)
        assert events[-1].event == "completed", events[-1].data
        served = {
            name: http.get(f"/runs/{run_id}/artifacts/{name}").content
            for name in ("windows.parquet", "equity.parquet", "walkforward.json")
        }
    assert any(str(t["key"]).startswith("btlab-") for t in ts.data)  # the workers ran them
    local = run_walkforward(body, executor=LocalExecutor()).artifact_payloads()
    assert served == {name: local[name] for name in served}
