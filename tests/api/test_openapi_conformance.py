"""The OpenAPI document tells the truth: schemathesis fuzzes a real server on loopback (a bounded
run, a few hundred cases), and the disagreements it found once are pinned here one by one."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx

from .conftest import Server, tiny, wait_status

CHECKS = (
    "not_a_server_error,status_code_conformance,content_type_conformance,"
    "response_schema_conformance,unsupported_method,allow_header_conformance"
)


def test_schemathesis_finds_no_disagreement(server: Server, tmp_path: Path) -> None:
    assert server.url.startswith("http://127.0.0.1:")  # loopback only
    st = Path(sys.executable).parent / "st"
    done = subprocess.run(
        [str(st), "run", f"{server.url}/openapi.json", "--max-examples", "15", "--seed", "7",
         "--phases", "examples,fuzzing", "--checks", CHECKS, "--request-timeout", "30",
         "--max-failures", "20", "--no-color"],
        capture_output=True, text=True, timeout=300, cwd=tmp_path,  # its cache goes there
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]
    assert " passed" in done.stdout


def _spec(client: httpx.Client) -> dict:  # type: ignore[type-arg]
    spec: dict = client.get("/openapi.json").json()  # type: ignore[type-arg]
    return spec


def test_405_lists_every_method_of_the_path(client: httpx.Client) -> None:
    paths = _spec(client)["paths"]
    for template, ops in paths.items():
        path = template.replace("{run_id}", "0123456789abcdef").replace("{dataset_id}", "f" * 64)
        path = path.replace("{portfolio_id}", "e" * 64)
        path = path.replace("{name}", "metrics.json")
        documented = {m.upper() for m in ops}
        for method in {"PUT", "PATCH", "DELETE", "POST", "OPTIONS"} - documented:
            response = client.request(method, path)
            assert response.status_code == 405, (method, path)
            allowed = {m.strip() for m in response.headers["allow"].split(",")}
            assert allowed == documented, (method, template, allowed)


def test_errors_are_documented_as_json_on_every_route(client: httpx.Client) -> None:
    for template, ops in _spec(client)["paths"].items():
        for method, op in ops.items():
            for code in ("404", "422"):
                content = op["responses"][code]["content"]
                assert list(content) == ["application/json"], (method, template, code)
    report = client.get("/runs/0123456789abcdef/report")
    assert report.status_code == 404
    assert report.headers["content-type"] == "application/json"


def test_body_routes_document_415_and_400(client: httpx.Client) -> None:
    paths = _spec(client)["paths"]
    for template in ("/runs", "/sweeps", "/datasets"):
        responses = paths[template]["post"]["responses"]
        assert {"400", "415"} <= set(responses), template
    form = {f"f{i}": "x" for i in range(9)}  # more fields than the upload takes: a 400
    response = client.post("/datasets", files={"file": ("a.csv", b"ts")}, data=form)
    assert response.status_code == 400 and response.json()["code"] == "bad_request"


def test_last_event_id_is_documented_as_the_integer_it_must_be(client: httpx.Client) -> None:
    op = _spec(client)["paths"]["/runs/{run_id}/events"]["get"]
    (header,) = [p for p in op["parameters"] if p["name"] == "Last-Event-ID"]
    schema = header["schema"]
    pattern = schema.get("pattern") or next(
        s.get("pattern") for s in schema.get("anyOf", []) if s.get("type") == "string"
    )
    assert pattern == "^[0-9]{1,18}$"
    run = client.post("/runs", json=tiny(seed=7001)).json()["id"]
    wait_status(client, run, ("completed",))
    ok = client.get(f"/runs/{run}/events", headers={"Last-Event-ID": "9" * 18})
    assert ok.status_code == 200


def test_artifact_media_types_are_documented(client: httpx.Client) -> None:
    op = _spec(client)["paths"]["/runs/{run_id}/artifacts/{name}"]["get"]
    content = op["responses"]["200"]["content"]
    assert {"application/json", "text/csv", "application/vnd.apache.parquet"} <= set(content)
