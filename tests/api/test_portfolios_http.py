"""Portfolios through the service (SPEC §7, §8): a long upload is stored as a portfolio, runs
over it (and over a synthetic portfolio) are followed like any run, and `btlab run --home` runs
a stored portfolio by its id."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest

import btlab
from btlab.cli import main
from btlab.portfolio import from_long

from .conftest import SERVER_ENV, Server, stream_events, wait_status

BARS = 160


def member(seed: int, drop_first: int = 0) -> pd.DataFrame:
    """One symbol's bars (a later listing where `drop_first` > 0)."""
    frame = btlab.synthetic(bars=BARS, seed=seed).to_frame()
    return frame.iloc[drop_first:].reset_index(drop=True)


def long_table(seed: int = 0) -> pd.DataFrame:
    """Three symbols in one long table: AAA, BBB (listing 10 bars late) and CCC."""
    parts = [
        member(seed + 1).assign(symbol="AAA"),
        member(seed + 2, drop_first=10).assign(symbol="BBB"),
        member(seed + 3).assign(symbol="CCC"),
    ]
    return pd.concat(parts, ignore_index=True)


def csv_bytes(frame: pd.DataFrame) -> bytes:
    return frame.to_csv(index=False).encode()


def upload(client: httpx.Client, frame: pd.DataFrame, name: str = "universe.csv") -> httpx.Response:
    return client.post("/datasets", files={"file": (name, csv_bytes(frame))})


def completed(client: httpx.Client, run_id: str) -> dict[str, Any]:
    run = wait_status(client, run_id, ("completed", "failed", "cancelled"), timeout=120)
    assert run["status"] == "completed", run
    return run


def no_validation(data: dict[str, Any], strategy: str = "equal_weight") -> dict[str, Any]:
    return {"data": data, "strategy": {"name": strategy}, "validation": {"enabled": False}}


def without_data(request: dict[str, Any]) -> dict[str, Any]:
    """The request for `btlab.run(..., data=bars)`, which hands the bars in."""
    return {k: v for k, v in request.items() if k != "data"}


# -- uploads ---------------------------------------------------------------------------------


def test_a_long_csv_upload_is_stored_as_a_portfolio(client: httpx.Client) -> None:
    table = long_table()
    first = upload(client, table)
    assert first.status_code == 201, first.text
    body = first.json()
    expected = from_long(table)
    assert body["kind"] == "portfolio" and body["id"] == expected.hash
    assert first.headers["location"] == f"/portfolios/{body['id']}"
    assert body["symbols"] == ["AAA", "BBB", "CCC"] and sorted(body["members"]) == body["symbols"]
    assert body["rows"] == BARS  # the union clock
    assert body["source"] == "csv" and body["timeframe"] == "1d"
    spans = {s["symbol"]: s for s in body["meta"]["listings"]}
    assert spans["BBB"]["first_bar"] == 10 and spans["BBB"]["listed_late"]
    blocks = pd.concat([table[table["symbol"] == s] for s in ("CCC", "AAA", "BBB")])
    again = upload(client, blocks, "other-name.csv")
    assert again.status_code == 200 and again.json()["id"] == body["id"]  # in any symbol order

    shown = client.get(f"/portfolios/{body['id']}")
    assert shown.status_code == 200 and shown.json() == body
    listed = client.get("/portfolios").json()
    assert [p["id"] for p in listed].count(body["id"]) == 1
    datasets = {d["id"]: d for d in client.get("/datasets").json()}
    for symbol, dataset_id in body["members"].items():  # the members, as datasets
        assert datasets[dataset_id]["kind"] == "dataset"
        assert datasets[dataset_id]["symbol"] == symbol
        assert datasets[dataset_id]["rows"] == (BARS - 10 if symbol == "BBB" else BARS)
    assert body["id"] not in datasets  # the listing of datasets keeps its shape
    missing = client.get(f"/datasets/{body['id']}")
    assert missing.status_code == 404 and f"/portfolios/{body['id']}" in missing.json()["message"]


def test_a_long_parquet_body_is_stored_as_a_portfolio(client: httpx.Client) -> None:
    table = long_table(seed=20)
    buffer = io.BytesIO()
    table.to_parquet(buffer)
    response = client.post(
        "/datasets",
        content=buffer.getvalue(),
        headers={"Content-Type": "application/vnd.apache.parquet"},
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["kind"] == "portfolio" and body["source"] == "parquet"
    assert body["id"] == from_long(table).hash


def test_a_single_symbol_upload_is_a_dataset_as_before(client: httpx.Client) -> None:
    frame = member(40)
    response = client.post("/datasets", files={"file": ("SPY.csv", csv_bytes(frame))})
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["kind"] == "dataset" and body["symbol"] == "SPY" and body["rows"] == BARS
    assert response.headers["location"] == f"/datasets/{body['id']}"
    assert body["id"] == btlab.from_dataframe(frame).hash
    one_symbol = frame.assign(symbol="ONE")  # a symbol column with one name: one dataset
    single = client.post("/datasets?symbol=X", content=csv_bytes(one_symbol),
                         headers={"Content-Type": "text/csv"})  # fmt: skip
    assert single.status_code == 200 and single.json()["kind"] == "dataset"  # the same bars


def test_a_broken_row_of_a_long_upload_names_the_symbol_and_the_row(
    client: httpx.Client,
) -> None:
    table = long_table(seed=60)
    bad_row = BARS + 5  # BBB's 6th bar, counted in the whole table
    assert table.loc[bad_row, "symbol"] == "BBB"
    table.loc[bad_row, "high"] = table.loc[bad_row, "low"] - 1.0
    before = (len(client.get("/datasets").json()), len(client.get("/portfolios").json()))
    response = upload(client, table)
    assert response.status_code == 422, response.text
    error = response.json()
    assert error["code"] == "invalid_data"
    assert "symbol 'BBB'" in error["message"], error
    assert f"first offending rows: {bad_row}" in error["message"], error
    after = (len(client.get("/datasets").json()), len(client.get("/portfolios").json()))
    assert after == before  # nothing stored, not even the good members


def test_a_long_upload_takes_no_symbol_name(client: httpx.Client) -> None:
    response = client.post(
        "/datasets", files={"file": ("u.csv", csv_bytes(long_table(seed=70)))}, data={"symbol": "X"}
    )
    assert response.status_code == 422
    assert response.json()["details"][0]["loc"] == "portfolio_symbol"


def test_an_empty_symbol_in_a_long_upload_names_the_rows(client: httpx.Client) -> None:
    table = long_table(seed=80)
    table["symbol"] = table["symbol"].astype(object)
    table.loc[3, "symbol"] = None
    response = upload(client, table)
    assert response.status_code == 422
    assert "missing_symbol" in response.text and "first offending rows: 3" in response.text


# -- runs ------------------------------------------------------------------------------------


def test_a_run_over_a_stored_portfolio(client: httpx.Client) -> None:
    stored = upload(client, long_table(seed=100)).json()
    request = no_validation({"source": "dataset", "id": stored["id"]})
    posted = client.post("/runs", json=request, headers={"Idempotency-Key": "pf-run-1"})
    assert posted.status_code == 201, posted.text
    run = posted.json()
    assert run["dataset_hash"] == stored["id"]
    again = client.post("/runs", json=request)
    assert again.status_code == 200 and again.json()["id"] == run["id"]
    keyed = client.post("/runs", json=request, headers={"Idempotency-Key": "pf-run-1"})
    assert keyed.status_code == 200 and keyed.json()["id"] == run["id"]

    events = stream_events(client, run["id"])
    assert [e.id for e in events] == list(range(1, len(events) + 1))
    assert events[-1].event == "completed"
    stages = [e.data["stage"] for e in events if e.event == "stage" and e.data["status"] == "done"]
    assert stages[:2] == ["validate", "load_data"] and "simulate" in stages
    assert any(e.event == "progress" for e in events)

    done = completed(client, run["id"])
    assert {"sharpe", "max_drawdown"} <= set(done["metrics"])
    manifest = client.get(f"/runs/{run['id']}/artifacts").json()
    assert {"positions.parquet", "symbols.parquet", "equity.parquet"} <= set(manifest["artifacts"])
    assert manifest["dataset_hash"] == stored["id"]
    for name in ("positions.parquet", "symbols.parquet"):
        got = client.get(f"/runs/{run['id']}/artifacts/{name}")
        assert got.status_code == 200
        assert got.headers["etag"].strip('"') == manifest["artifacts"][name]["sha256"]
        table = pd.read_parquet(io.BytesIO(got.content))
        assert set(table["symbol"]) == {"AAA", "BBB", "CCC"}
    # the same portfolio handed in through Python is the same result
    local = btlab.run(without_data(request), data=long_table(seed=100))
    assert done["metrics"]["sharpe"] == pytest.approx(local.metrics["sharpe"], rel=1e-9)

    # a single-symbol strategy runs on each symbol (per_symbol) of the stored portfolio
    per_symbol = client.post("/runs", json=no_validation(request["data"], "buy_and_hold"))
    assert per_symbol.status_code == 201, per_symbol.text
    completed(client, per_symbol.json()["id"])


def test_a_synthetic_portfolio_runs(client: httpx.Client) -> None:
    request = no_validation({"symbols": 8, "bars": 300})
    posted = client.post("/runs", json=request)
    assert posted.status_code == 201, posted.text
    run_id = posted.json()["id"]
    assert client.post("/runs", json=request).json()["id"] == run_id
    completed(client, run_id)
    symbols = pd.read_parquet(
        io.BytesIO(client.get(f"/runs/{run_id}/artifacts/symbols.parquet").content)
    )
    assert len(symbols) == 8
    positions = pd.read_parquet(
        io.BytesIO(client.get(f"/runs/{run_id}/artifacts/positions.parquet").content)
    )
    assert positions["symbol"].nunique() == 8
    other = client.post("/runs", json=no_validation({"symbols": 7, "bars": 300}))
    assert other.status_code == 201 and other.json()["id"] != run_id


def test_an_unknown_portfolio_id_is_a_422_naming_data_id(client: httpx.Client) -> None:
    response = client.post("/runs", json=no_validation({"source": "dataset", "id": "ab" * 32}))
    assert response.status_code == 422
    assert [d["loc"] for d in response.json()["details"]] == ["data.id"]


def test_deleting_a_portfolio_then_its_members(client: httpx.Client) -> None:
    stored = upload(client, long_table(seed=120)).json()
    member_id = stored["members"]["AAA"]
    held = client.delete(f"/datasets/{member_id}")
    assert held.status_code == 409 and stored["id"] in held.json()["message"]
    wrong = client.delete(f"/datasets/{stored['id']}")
    assert wrong.status_code == 404 and "/portfolios/" in wrong.json()["message"]
    assert client.delete(f"/portfolios/{stored['id']}").status_code == 204
    assert client.get(f"/portfolios/{stored['id']}").status_code == 404
    assert client.delete(f"/portfolios/{stored['id']}").status_code == 404
    assert client.delete(f"/datasets/{member_id}").status_code == 204  # no longer held
    run = client.post("/runs", json=no_validation({"source": "dataset", "id": stored["id"]}))
    assert run.status_code == 422 and run.json()["details"][0]["loc"] == "data.id"


# -- files on the server, inside BTLAB_FILE_ROOTS --------------------------------------------


def test_portfolio_files_inside_the_file_roots(make_server: Any, tmp_path: Path) -> None:
    root = tmp_path / "root"
    folder = root / "universe"
    folder.mkdir(parents=True)
    table = long_table(seed=140)
    for symbol, part in table.groupby("symbol"):
        part.drop(columns="symbol").to_csv(folder / f"{symbol}.csv", index=False)
    table.to_csv(root / "long.csv", index=False)
    outside = tmp_path / "outside.csv"
    member(1).to_csv(outside, index=False)
    (folder / "zzz.csv").symlink_to(outside)  # a link inside the folder, to a file outside

    server: Server = make_server(
        **SERVER_ENV, BTLAB_ALLOW_FILE_PATHS="true", BTLAB_FILE_ROOTS=str(root)
    ).start()
    with httpx.Client(base_url=server.url, timeout=60.0) as client:
        linked = client.post("/runs", json=no_validation({"source": "csv", "path": str(folder)}))
        assert linked.status_code == 422, linked.text
        assert linked.json()["details"][0]["loc"] == "data.path"
        assert "outside the folders" in linked.json()["details"][0]["msg"]
        os.unlink(folder / "zzz.csv")

        by_folder = client.post("/runs", json=no_validation({"source": "csv", "path": str(folder)}))
        assert by_folder.status_code == 201, by_folder.text
        run_id = by_folder.json()["id"]
        assert by_folder.json()["dataset_hash"] == from_long(table).hash
        paths = [str(folder / f"{s}.csv") for s in ("AAA", "BBB", "CCC")]
        by_list = client.post("/runs", json=no_validation({"source": "csv", "paths": paths}))
        by_long = client.post("/runs", json=no_validation({"source": "csv", "path": str(root / "long.csv")}))  # fmt: skip
        stored = client.post("/datasets", files={"file": ("u.csv", csv_bytes(table))}).json()
        by_id = client.post("/runs", json=no_validation({"source": "dataset", "id": stored["id"]}))
        # the same bars, however named, are the same run
        assert [r.status_code for r in (by_list, by_long, by_id)] == [200, 200, 200]
        assert {r.json()["id"] for r in (by_list, by_long, by_id)} == {run_id}
        completed(client, run_id)

        out = client.post(
            "/runs", json=no_validation({"source": "csv", "paths": [paths[0], str(outside)]})
        )
        assert out.status_code == 422
        assert [d["loc"] for d in out.json()["details"]] == ["data.paths[1]"]


# -- btlab run --home ------------------------------------------------------------------------


def test_btlab_run_home_runs_a_stored_portfolio(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    home = tmp_path / "home"
    table = long_table(seed=160)
    long = tmp_path / "universe.csv"
    table.to_csv(long, index=False)
    assert main(["data", "import", str(long), "--home", str(home), "--json"]) == 0
    portfolio_id = json.loads(capsys.readouterr().out)["id"]
    request = json.dumps(no_validation({"source": "dataset", "id": portfolio_id}))
    out = tmp_path / "out"
    argv = ["run", request, "--home", str(home), "--out", str(out), "--json", "--no-report",
            "--quiet"]  # fmt: skip
    assert main(argv) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["data"]["id"] == portfolio_id and printed["data"]["symbols"] == [
        "AAA", "BBB", "CCC"
    ]  # fmt: skip
    assert (out / "positions.parquet").is_file() and (out / "symbols.parquet").is_file()
    local = btlab.run(without_data(json.loads(request)), data=table)
    assert printed["metrics"]["sharpe"] == pytest.approx(local.metrics["sharpe"], rel=1e-9)

    unknown = json.dumps(no_validation({"source": "dataset", "id": "cd" * 32}))
    assert main(["run", unknown, "--home", str(home), "--out", str(tmp_path / "o2"),
                 "--quiet"]) != 0  # fmt: skip
    assert "unknown dataset id" in capsys.readouterr().err


def test_a_portfolio_a_queued_run_reads_cannot_be_deleted(tmp_path: Path) -> None:
    from btlab.orchestrator import Job, JobRunner, Orchestrator
    from btlab.store import RunStateError, Store

    class Held:  # an executor that keeps every job queued
        def submit(self, job: Job, runner: JobRunner) -> None:
            pass

        def shutdown(self, *, wait: bool) -> None:
            pass

    store = Store(tmp_path / "home")
    try:
        row, _ = store.add_portfolio(from_long(long_table(seed=180)))
        orchestrator = Orchestrator(store, executor=Held())
        run, created = orchestrator.submit(no_validation({"source": "dataset", "id": row.id}))
        assert created and run.status == "queued" and run.dataset_hash == row.id
        with pytest.raises(RunStateError, match=f"in use by active run.*{run.id}"):
            store.delete_portfolio(row.id)
        orchestrator.cancel(run.id)
        store.delete_portfolio(row.id)  # no active run reads it now
    finally:
        store.close()
