"""GET /runs/{id}/report over real HTTP, and `btlab report` on the server's home."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from btlab.cli import main
from btlab.report import REPORT_NAME, generator_tag

from ..test_report import CHARTS, element, parse_report, value
from .conftest import Server, slow, stream_events, tiny, wait_status


def test_report_is_rendered_once_then_served_from_the_run_folder(
    client: httpx.Client, server: Server
) -> None:
    run = client.post("/runs", json=tiny(seed=301)).json()
    done = wait_status(client, run["id"], ("completed",))
    folder = server.home / "runs" / run["id"]
    assert not (folder / REPORT_NAME).exists()  # the run itself renders nothing
    response = client.get(f"/runs/{run['id']}/report")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    page = parse_report(response.text)
    for chart_id in CHARTS:
        element(page, chart_id)
    identity = element(page, "table-identity").text()
    assert done["run_hash"] in identity and done["config_hash"] in identity
    sharpe = next(tr for tr in page.find_all("tr") if tr.attrs.get("data-metric") == "sharpe")
    assert value(sharpe.find("td")) == pytest.approx(done["metrics"]["sharpe"], rel=1e-11)
    # cached in the run folder, and served as it is from then on
    cached = (folder / REPORT_NAME).read_bytes()
    assert cached == response.content and generator_tag().encode() in cached
    (folder / REPORT_NAME).write_bytes(cached.replace(b"<h1>", b"<h1>cached "))
    assert "<h1>cached " in client.get(f"/runs/{run['id']}/report").text
    # a view, not an artifact: the manifest and run hash are untouched
    manifest = client.get(f"/runs/{run['id']}/artifacts").json()
    assert REPORT_NAME not in manifest["artifacts"] and manifest["run_hash"] == done["run_hash"]
    assert client.get(f"/runs/{run['id']}/artifacts/{REPORT_NAME}").status_code == 404


def test_sweep_report_over_http(client: httpx.Client) -> None:
    body = {**tiny(seed=302), "data": {"bars": 300}, "grid": {"fast": [5, 10], "slow": [20, 40]}}
    sweep = client.post("/sweeps", json=body).json()
    wait_status(client, sweep["id"], ("completed",))
    response = client.get(f"/runs/{sweep['id']}/report")
    assert response.status_code == 200, response.text
    page = parse_report(response.text)
    element(page, "chart-heatmap")
    element(page, "table-best")
    assert len(element(page, "table-top").find("tbody").find_all("tr")) == 4


def test_report_of_an_unknown_or_unfinished_run(client: httpx.Client, server: Server) -> None:
    unknown = client.get("/runs/0123456789abcdef/report")
    assert unknown.status_code == 404 and unknown.json()["code"] == "not_found"
    run_id = client.post("/runs", json=slow(permutations=20_000, bars=4000, seed=303)).json()["id"]
    wait_status(client, run_id, ("running",))
    busy = client.get(f"/runs/{run_id}/report")
    assert busy.status_code == 409 and "running" in busy.json()["message"]
    assert main(["report", run_id, "--home", str(server.home)]) == 2  # the CLI says the same
    assert client.delete(f"/runs/{run_id}").status_code == 202
    assert stream_events(client, run_id)[-1].event == "cancelled"
    assert client.get(f"/runs/{run_id}/report").status_code == 409


def test_btlab_report_on_a_stored_run(
    client: httpx.Client, server: Server, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = client.post("/runs", json=tiny(seed=304)).json()
    done = wait_status(client, run["id"], ("completed",))
    target = tmp_path / "report.html"
    assert main(["report", run["id"], "--home", str(server.home), "--out", str(target)]) == 0
    assert str(target) in capsys.readouterr().out
    assert done["run_hash"] in target.read_text(encoding="utf-8")
    assert main(["report", run["id"], "--home", str(server.home)]) == 0  # into the run folder
    folder_report = server.home / "runs" / run["id"] / REPORT_NAME
    assert folder_report.read_bytes() == target.read_bytes()
    assert client.get(f"/runs/{run['id']}/report").content == target.read_bytes()
