"""Your own targets over HTTP (SPEC §9): an uploaded dataset's extra column as the run's
targets (strategy `targets`, `params.column`, not shifted), and as a feature of a strategy."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import numpy as np

import btlab
from btlab.artifacts import write_artifacts

from .conftest import wait_status

BARS = 300


def _upload(client: httpx.Client, position: np.ndarray) -> dict[str, object]:
    frame = btlab.synthetic(bars=BARS, seed=21).to_frame()
    frame["my_target"] = position
    frame["sector"] = "tech"  # text: left out, with a warning
    response = client.post("/datasets", content=frame.to_csv(index=False).encode(),
                           params={"symbol": "SIG"}, headers={"Content-Type": "text/csv"})  # fmt: skip
    assert response.status_code in (200, 201), response.text
    dataset: dict[str, object] = response.json()
    return dataset


def test_an_uploaded_column_is_the_runs_targets(client: httpx.Client, tmp_path: Path) -> None:
    position = np.where(np.arange(BARS) % 40 < 20, 1.0, -1.0)
    dataset = _upload(client, position)
    assert dataset["meta"]["extra_columns"] == ["my_target"]  # type: ignore[index]
    # the upload says what it left out (the stored file holds only what was kept)
    assert any(w.startswith("ignored_columns: column(s) 'sector'")
               for w in dataset["meta"]["warnings"])  # type: ignore[index]  # fmt: skip
    body = {
        "data": {"source": "dataset", "id": dataset["id"]},
        "strategy": {"name": "targets", "params": {"column": "my_target"}},
        "validation": {"permutation": {"n_permutations": 9}, "bootstrap": {"n_resamples": 20}},
        "seed": 301,
    }
    created = client.post("/runs", json=body)
    assert created.status_code == 201, created.text
    done = wait_status(client, created.json()["id"], ("completed", "failed"))
    assert done["status"] == "completed", done["error"]
    run_id = done["id"]
    validation = client.get(f"/runs/{run_id}/artifacts/validation.json").json()
    assert validation["permutation"] is None and "permutation" in validation["skipped"]
    manifest = client.get(f"/runs/{run_id}/artifacts").json()
    assert manifest["request"]["strategy"] == {"name": "targets", "params": {"column": "my_target"}}
    assert "validation_skipped" in {w["code"] for w in manifest["warnings"]}
    # the same targets in Python, unshifted, are the same numbers
    local_data = btlab.synthetic(bars=BARS, seed=21)
    local = btlab.run({k: v for k, v in body.items() if k not in ("data", "strategy")},
                      local_data, targets=position)  # fmt: skip
    served = client.get(f"/runs/{run_id}/artifacts/metrics.json").json()
    written = write_artifacts(local, tmp_path / "local")
    local_metrics = json.loads((tmp_path / "local" / "metrics.json").read_bytes())
    assert served == local_metrics and written["config_hash"] != done["config_hash"]
    # the same request again is the retained run; another column content is another run
    assert client.post("/runs", json=body).status_code == 200
    other = _upload(client, -position)
    again = client.post("/runs", json={**body, "data": {"source": "dataset", "id": other["id"]}})
    assert again.status_code == 201 and again.json()["config_hash"] != done["config_hash"]


def test_an_unknown_column_is_a_422_naming_the_columns(client: httpx.Client) -> None:
    dataset = _upload(client, np.zeros(BARS))
    body = {
        "data": {"source": "dataset", "id": dataset["id"]},
        "strategy": {"name": "targets", "params": {"column": "nope"}},
        "validation": {"enabled": False},
    }
    refused = client.post("/runs", json=body)
    assert refused.status_code == 422, refused.text
    (detail,) = refused.json()["details"]
    assert detail["loc"] == "strategy.params.column" and "'my_target'" in detail["msg"]
    # without a column there is nothing to run (over HTTP no targets can be handed in)
    body["strategy"] = {"name": "targets"}
    assert client.post("/runs", json=body).status_code == 422
