"""Stored datasets keep the symbol they were given, can be re-tagged and deleted (HTTP and CLI)."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

import btlab
from btlab.cli import main
from btlab.errors import ConfigError, NotFoundError
from btlab.store import RunStateError, Store

from .conftest import Server, slow, tiny, wait_status


def _csv(seed: int, bars: int = 300) -> bytes:
    return btlab.synthetic(bars=bars, seed=seed).to_frame().to_csv(index=False).encode()


def test_an_uploaded_symbol_is_kept_and_can_be_corrected(
    server: Server, client: httpx.Client
) -> None:
    up = client.post("/datasets", files={"file": ("x.csv", _csv(41))}, data={"symbol": "GOOG"})
    assert up.status_code == 201, up.text
    dataset = up.json()
    assert dataset["symbol"] == "GOOG"
    store = Store(server.home)
    try:
        assert store.load_dataset(dataset["id"]).meta.symbol == "GOOG"  # what a run reads
        again = client.post("/datasets", content=_csv(41), params={"symbol": "GOOGL"},
                            headers={"Content-Type": "text/csv"})  # fmt: skip
        assert again.status_code == 200 and again.json()["symbol"] == "GOOG"  # same bars
        patched = client.patch(f"/datasets/{dataset['id']}", json={"symbol": "GOOGL"})
        assert patched.status_code == 200, patched.text
        assert patched.json()["symbol"] == "GOOGL" and patched.json()["id"] == dataset["id"]
        assert patched.json()["meta"]["symbol"] == "GOOGL"
        assert client.get(f"/datasets/{dataset['id']}").json()["symbol"] == "GOOGL"
        assert store.load_dataset(dataset["id"]).meta.symbol == "GOOGL"
        body = {**tiny(seed=4100), "data": {"source": "dataset", "id": dataset["id"]}}
        run = client.post("/runs", json=body).json()["id"]
        assert wait_status(client, run, ("completed", "failed"))["status"] == "completed"
        manifest = client.get(f"/runs/{run}/artifacts").json()
        assert manifest["labels"]["symbol"] == "GOOGL"  # the run knows what it traded
        report = client.get(f"/runs/{run}/report")
        assert report.status_code == 200 and "<title>sma_cross on GOOGL" in report.text
    finally:
        store.close()


@pytest.mark.parametrize(
    ("kwargs", "status", "needle"),
    [
        ({"json": {"symbol": ""}}, 422, "symbol"),
        ({"json": {"symbol": "x" * 65}}, 422, "symbol"),
        ({"json": {"symbol": "A", "rows": 3}}, 422, "rows"),
        ({"json": {}}, 422, "symbol"),
        ({"content": b'{"symbol": "A"}', "headers": {"Content-Type": "text/plain"}}, 415,
         "application/json"),
    ],
)  # fmt: skip
def test_bad_patches_name_the_problem(
    client: httpx.Client,
    kwargs: dict,
    status: int,
    needle: str,  # type: ignore[type-arg]
) -> None:
    dataset = client.post("/datasets", files={"file": ("p.csv", _csv(42))}).json()["id"]
    response = client.patch(f"/datasets/{dataset}", **kwargs)
    assert response.status_code == status, response.text
    assert needle in response.text
    assert client.get(f"/datasets/{dataset}").json()["symbol"] == "p"


def test_delete_a_dataset(server: Server, client: httpx.Client) -> None:
    dataset = client.post("/datasets", files={"file": ("d.csv", _csv(43, 1500))}).json()["id"]
    body = {**slow(permutations=50_000, bars=1500, seed=4101),
            "data": {"source": "dataset", "id": dataset}}  # fmt: skip
    run = client.post("/runs", json=body).json()["id"]
    wait_status(client, run, ("running",))
    busy = client.delete(f"/datasets/{dataset}")
    assert busy.status_code == 409 and run in busy.json()["message"]
    assert client.delete(f"/runs/{run}").status_code == 202
    wait_status(client, run, ("cancelled",))
    assert client.delete(f"/datasets/{dataset}").status_code == 204
    assert client.get(f"/datasets/{dataset}").status_code == 404
    assert not (server.home / "datasets" / f"{dataset}.parquet").exists()
    assert client.delete(f"/datasets/{dataset}").status_code == 404
    again = client.post("/runs", json={**tiny(seed=4102), "data": body["data"]})
    assert again.status_code == 422 and "unknown dataset id" in again.text


def test_cli_data_tag_and_rm(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    home = tmp_path / "home"
    path = tmp_path / "spy.csv"
    path.write_bytes(_csv(44))
    assert main(["data", "import", str(path), "--home", str(home)]) == 0
    store = Store(home)
    try:
        (row,) = store.list_datasets()
        assert row.symbol == "spy"
        assert main(["data", "import", str(path), "--symbol", "SPY", "--home", str(home)]) == 0
        assert f"btlab data tag {row.id} SPY" in capsys.readouterr().out
        assert main(["data", "tag", row.id, "SPY", "--home", str(home)]) == 0
        assert "spy -> SPY" in capsys.readouterr().out
        assert store.get_dataset(row.id).symbol == "SPY"
        assert main(["data", "tag", row.id, " ", "--home", str(home)]) == 2
        assert main(["data", "rm", row.id, "f" * 64, "--home", str(home)]) == 2  # all or none
        assert store.get_dataset(row.id).symbol == "SPY"
        assert main(["data", "rm", row.id, "--home", str(home)]) == 0
        assert store.list_datasets() == []
        assert not (home / "datasets" / f"{row.id}.parquet").exists()
        with pytest.raises(NotFoundError):
            store.set_dataset_symbol(row.id, "X")
        with pytest.raises(NotFoundError):
            store.delete_dataset(row.id)
    finally:
        store.close()


def test_store_refuses_bad_symbols_and_busy_deletes(tmp_path: Path) -> None:
    store = Store(tmp_path / "home")
    try:
        row, _ = store.add_dataset(btlab.synthetic(bars=50, seed=45))
        for bad in ("", " ", "a" * 65, "tab\there"):
            with pytest.raises(ConfigError, match="symbol"):
                store.set_dataset_symbol(row.id, bad)
        config = {"data": {"source": "dataset", "id": row.id}}
        store.create_run(request={}, config=config, config_hash="c" * 64, dataset_hash=row.id,
                         body_hash="b" * 64)  # fmt: skip
        with pytest.raises(RunStateError, match="in use"):
            store.delete_dataset(row.id)
    finally:
        store.close()
