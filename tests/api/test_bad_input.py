"""Bad input at every endpoint: a 4xx with the one error shape whose message names the problem.

Every case is sent to a real server; each must answer ``{code, message, details: [{loc, msg}]}``
with the expected status, a message naming the problem, no new run, dataset or file, and no
traceback in the server's log (never a 500).
"""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

import btlab

from .conftest import Server, slow, tiny, wait_status

UPLOAD_LIMIT = 256 << 10  # SERVER_ENV
REQUEST_LIMIT = 64 << 10
HEADER = b"ts,open,high,low,close,volume\n"


def _csv(*rows: str) -> bytes:
    return HEADER + "".join(f"{r}\n" for r in rows).encode()


def _chunks(total: int, size: int = 8 << 10) -> Iterator[bytes]:
    """A body sent chunked (no Content-Length), so only the streamed byte count can refuse it."""
    for _ in range(total // size + 1):
        yield b" " * size


def _long_csv(broken: tuple[str, int] | None = None) -> bytes:
    """A long table of symbols A and B, 3 days each; `broken` (symbol, day) has high < close."""
    rows = ["ts,symbol,open,high,low,close,volume"]
    for symbol in "AB":
        for day in range(1, 4):
            high = "0.9" if (symbol, day) == broken else "1.5"
            rows.append(f"2020-01-0{day},{symbol},1,{high},0.5,1.2,100")
    return "\n".join(rows).encode() + b"\n"


def _good_csv() -> bytes:
    frame = btlab.synthetic(bars=50, seed=1).to_frame()
    return frame.to_csv(index=False).encode()


@dataclass(frozen=True)
class Case:
    id: str
    method: str
    path: str  # "{run}" is a completed run, "{cancelled}" a cancelled one
    status: int
    needle: str  # the message must name the problem: this text appears in it
    loc: str | None = None  # a detail with this loc (or one inside it) must be present
    kwargs: dict[str, Any] = field(default_factory=dict)
    raw: bool = False  # send the path byte for byte (no client-side normalization)


def _json(body: bytes) -> dict[str, Any]:
    return {"content": body, "headers": {"Content-Type": "application/json"}}


def _csv_upload(body: bytes, **params: str) -> dict[str, Any]:
    return {"content": body, "headers": {"Content-Type": "text/csv"}, "params": params}


CASES = [
    # -- POST /runs: malformed JSON, wrong types, unknown fields, presets, data, limits
    Case("runs-malformed-json", "POST", "/runs", 400, "not valid JSON", "body", _json(b'{"seed": ')),
    Case("runs-not-utf8", "POST", "/runs", 400, "not UTF-8", "body", _json(b'{"seed": "\xff"}')),
    Case("runs-nan-literal", "POST", "/runs", 400, "NaN is not valid JSON", "body", _json(b'{"seed": NaN}')),
    Case("runs-array-body", "POST", "/runs", 422, "expected a JSON object", "request", {"json": [1, 2]}),
    Case("runs-wrong-type", "POST", "/runs", 422, "seed", "seed", {"json": {"seed": "abc"}}),
    Case("runs-bars-past-2262", "POST", "/runs", 422, "the last date pandas can hold", "data.bars",
         {"json": {"data": {"bars": 200_000}}}),
    Case("runs-too-many-bars", "POST", "/runs", 422, "at most 10,000,000 bars", "data.bars",
         {"json": {"data": {"bars": 50_000_000, "timeframe": "1m", "calendar": "24x7"}}}),
    Case("runs-capital-m", "POST", "/runs", 422, "ambiguous", "data.timeframe",
         {"json": {"data": {"timeframe": "1M"}}}),
    Case("runs-wrong-nested-type", "POST", "/runs", 422, "execution.commission_bps",
         "execution.commission_bps", {"json": {"execution": {"commission_bps": "x"}}}),
    Case("runs-out-of-range", "POST", "/runs", 422, "strategy.params.fast", "strategy.params.fast",
         {"json": {"strategy": {"name": "sma_cross", "params": {"fast": 0}}}}),
    Case("runs-inconsistent-params", "POST", "/runs", 422, "fast (50) must be less than slow (10)",
         "strategy.params",
         {"json": {"strategy": {"name": "sma_cross", "params": {"fast": 50, "slow": 10}}}}),
    Case("runs-unknown-field", "POST", "/runs", 422, "bogus", "bogus", {"json": {"bogus": 1}}),
    Case("runs-bool-as-int", "POST", "/runs", 422, "data.bars: Input should be a valid integer",
         "data.bars", {"json": {"data": {"bars": True}}}),
    Case("runs-text-as-number", "POST", "/runs", 422,
         "execution.commission_bps: Input should be a valid number", "execution.commission_bps",
         {"json": {"execution": {"commission_bps": "2"}}}),
    Case("runs-fixed-commission-too-big", "POST", "/runs", 422,
         "execution.commission_fixed: Input should be less than or equal to", "execution.commission_fixed",
         {"json": {"execution": {"commission_fixed": 1e12}}}),
    Case("runs-huge-float", "POST", "/runs", 422, "execution.commission_fixed", "execution.commission_fixed",
         {"json": {"execution": {"commission_fixed": 1e308}}}),
    Case("runs-overflowing-float", "POST", "/runs", 422, "must be a finite number",
         "execution.spread_bps", _json(b'{"execution": {"spread_bps": 1e999}}')),
    Case("runs-text-param", "POST", "/runs", 422, "strategy.params.fast", "strategy.params.fast",
         {"json": {"strategy": {"name": "sma_cross", "params": {"fast": "5"}}}}),
    Case("runs-unknown-param", "POST", "/runs", 422, "zzz", "strategy.params.zzz",
         {"json": {"strategy": {"name": "sma_cross", "params": {"zzz": 1}}}}),
    Case("runs-unknown-strategy", "POST", "/runs", 422, "unknown strategy 'nope'", "strategy",
         {"json": {"strategy": {"name": "nope"}}}),
    Case("runs-unknown-source", "POST", "/runs", 422, "data.source must be one of", "data",
         {"json": {"data": {"source": "ftp"}}}),
    Case("runs-unknown-preset", "POST", "/runs", 422, "unknown preset 'nope'", "preset",
         {"json": {"preset": "nope"}}),
    Case("runs-preset-not-a-string", "POST", "/runs", 422, "preset", "preset", {"json": {"preset": 5}}),
    Case("runs-preset-stray-key", "POST", "/runs", 422, "put it in 'overrides'", "x",
         {"json": {"preset": "sma_cross_daily", "x": 1}}),
    Case("runs-preset-bad-override", "POST", "/runs", 422, "seed", "seed",
         {"json": {"preset": "sma_cross_daily", "overrides": {"seed": "x"}}}),
    Case("runs-unknown-dataset", "POST", "/runs", 422, "unknown dataset id", "data.id",
         {"json": {"data": {"source": "dataset", "id": "0" * 64}}}),
    Case("runs-dataset-traversal", "POST", "/runs", 422, "unknown dataset id", "data.id",
         {"json": {"data": {"source": "dataset", "id": "../../btlab.sqlite3"}}}),
    Case("runs-file-path-refused", "POST", "/runs", 422, "does not read files", "data.path",
         {"json": {"data": {"source": "csv", "path": "/etc/passwd"}}}),
    Case("runs-seed-too-big", "POST", "/runs", 422, "seed", "seed", {"json": {"seed": 10**40}}),
    Case("runs-long-idempotency-key", "POST", "/runs", 422, "Idempotency-Key",
         "header.Idempotency-Key", {"json": tiny(1), "headers": {"Idempotency-Key": "k" * 300}}),
    Case("runs-oversized-body", "POST", "/runs", 413, f"limit of {REQUEST_LIMIT} bytes", "body",
         _json(b" " * (REQUEST_LIMIT + 1))),
    Case("runs-oversized-chunked", "POST", "/runs", 413, f"limit of {REQUEST_LIMIT} bytes", "body",
         {"content": _chunks(REQUEST_LIMIT), "headers": {"Content-Type": "application/json"}}),
    Case("runs-deeply-nested", "POST", "/runs", 422, "nested deeper than", "body",
         _json(b"[" * 10_000 + b"]" * 10_000)),
    Case("runs-nested-500", "POST", "/runs", 422, "nested deeper than", "body",
         _json(b'{"overrides": ' + b"[" * 500 + b"]" * 500 + b"}")),
    Case("runs-text-plain", "POST", "/runs", 415, "send application/json", "header.content-type",
         {"content": b'{"seed": 1}', "headers": {"Content-Type": "text/plain"}}),
    Case("runs-form", "POST", "/runs", 415, "send application/json", "header.content-type",
         {"data": {"seed": "1"}}),
    Case("runs-no-content-type", "POST", "/runs", 415, "Content-Type none", "header.content-type",
         {"content": b'{"seed": 1}'}),
    Case("runs-empty-no-content-type", "POST", "/runs", 415, "Content-Type none",
         "header.content-type"),
    # -- POST /sweeps
    Case("sweeps-text-plain", "POST", "/sweeps", 415, "send application/json", "header.content-type",
         {"content": b'{"seed": 1}', "headers": {"Content-Type": "text/plain"}}),
    Case("sweeps-deeply-nested", "POST", "/sweeps", 422, "nested deeper than", "body",
         _json(b"[" * 2_000 + b"]" * 2_000)),
    Case("sweeps-malformed-json", "POST", "/sweeps", 400, "not valid JSON", "body", _json(b"{")),
    Case("sweeps-no-grid", "POST", "/sweeps", 422, "grid", "grid", {"json": tiny(1)}),
    Case("sweeps-unknown-grid-param", "POST", "/sweeps", 422, "grid.zzz: not a parameter", "grid",
         {"json": {**tiny(1), "grid": {"zzz": [1, 2]}}}),
    Case("sweeps-empty-axis", "POST", "/sweeps", 422, "grid.fast", "grid",
         {"json": {**tiny(1), "grid": {"fast": []}}}),
    Case("sweeps-text-range", "POST", "/sweeps", 422, "grid.fast.start", "grid.fast.start",
         {"json": {**tiny(1), "grid": {"fast": {"start": "5", "stop": 10, "step": 5}}}}),
    Case("sweeps-unknown-field", "POST", "/sweeps", 422, "zzz", "zzz",
         {"json": {**tiny(1), "grid": {"fast": [5, 10]}, "zzz": 1}}),
    Case("sweeps-oversized-body", "POST", "/sweeps", 413, "limit", "body",
         _json(b" " * (REQUEST_LIMIT + 1))),
    # -- POST /walkforward
    Case("walkforward-text-plain", "POST", "/walkforward", 415, "send application/json",
         "header.content-type", {"content": b'{"seed": 1}', "headers": {"Content-Type": "text/plain"}}),
    Case("walkforward-malformed-json", "POST", "/walkforward", 400, "not valid JSON", "body",
         _json(b"{")),
    Case("walkforward-no-windows", "POST", "/walkforward", 422, "walkforward", "walkforward",
         {"json": {**tiny(1), "grid": {"fast": [5, 10]}}}),
    Case("walkforward-bad-length", "POST", "/walkforward", 422, "calendar length",
         "walkforward.train", {"json": {**tiny(1), "grid": {"fast": [5, 10]},
                                        "walkforward": {"train": "2Q", "test": 20}}}),
    Case("walkforward-run-field-axis", "POST", "/walkforward", 422, "cannot range over",
         "grid.execution.initial_cash",
         {"json": {**tiny(1), "grid": {"execution.initial_cash": [1e4, 2e4]},
                   "walkforward": {"train": 60, "test": 20}}}),
    # -- GET /runs: query parameters
    Case("list-limit-zero", "GET", "/runs", 422, "limit", "query.limit", {"params": {"limit": 0}}),
    Case("list-limit-not-int", "GET", "/runs", 422, "limit", "query.limit", {"params": {"limit": "x"}}),
    Case("list-limit-too-big", "GET", "/runs", 422, "limit", "query.limit", {"params": {"limit": 501}}),
    Case("list-offset-negative", "GET", "/runs", 422, "offset", "query.offset", {"params": {"offset": -1}}),
    Case("list-before-overflow", "GET", "/runs", 422, "before", "query.before",
         {"params": {"before": 2**63}}),
    Case("list-bad-status", "GET", "/runs", 422, "status", "query.status", {"params": {"status": "x"}}),
    Case("list-bad-kind", "GET", "/runs", 422, "kind", "query.kind", {"params": {"kind": "x"}}),
    # -- /runs/{id}: bad run ids
    Case("run-unknown-id", "GET", "/runs/0123456789abcdef", 404, "unknown run id"),
    Case("run-not-hex", "GET", "/runs/zzz", 404, "unknown run id 'zzz'"),
    Case("run-long-id", "GET", "/runs/" + "a" * 300, 404, "unknown run id"),
    Case("run-nul-id", "GET", "/runs/%00", 404, "unknown run id"),
    Case("run-delete-unknown", "DELETE", "/runs/0123456789abcdef", 404, "unknown run id"),
    # -- events: unknown run, bad Last-Event-ID, bad ?after
    Case("events-unknown-run", "GET", "/runs/0123456789abcdef/events", 404, "unknown run id"),
    Case("events-leid-text", "GET", "/runs/{run}/events", 422, "Last-Event-ID", "header.last-event-id",
         {"headers": {"Last-Event-ID": "abc"}}),
    Case("events-leid-negative", "GET", "/runs/{run}/events", 422, "Last-Event-ID",
         "header.last-event-id", {"headers": {"Last-Event-ID": "-1"}}),
    Case("events-leid-overflow", "GET", "/runs/{run}/events", 422, "Last-Event-ID",
         "header.last-event-id", {"headers": {"Last-Event-ID": str(2**63)}}),
    Case("events-leid-non-ascii-digit", "GET", "/runs/{run}/events", 422, "Last-Event-ID",
         "header.last-event-id", {"headers": {"Last-Event-ID": "\xb2".encode("latin-1")}}),
    Case("events-leid-too-long", "GET", "/runs/{run}/events", 422, "Last-Event-ID",
         "header.Last-Event-ID", {"headers": {"Last-Event-ID": "1" * 40}}),
    Case("events-after-negative", "GET", "/runs/{run}/events", 422, "after", "query.after",
         {"params": {"after": -1}}),
    Case("events-after-overflow", "GET", "/runs/{run}/events", 422, "after", "query.after",
         {"params": {"after": 2**63}}),
    # -- artifacts: unknown run, unfinished run, names outside the manifest, traversal
    Case("manifest-unknown-run", "GET", "/runs/0123456789abcdef/artifacts", 404, "unknown run id"),
    Case("manifest-cancelled-run", "GET", "/runs/{cancelled}/artifacts", 409, "is cancelled"),
    Case("artifact-cancelled-run", "GET", "/runs/{cancelled}/artifacts/metrics.json", 409, "is cancelled"),
    Case("artifact-unknown-name", "GET", "/runs/{run}/artifacts/secret.txt", 404,
         "has no artifact 'secret.txt'"),
    Case("artifact-database", "GET", "/runs/{run}/artifacts/btlab.sqlite3", 404, "has no artifact"),
    Case("artifact-dotdot-encoded", "GET", "/runs/{run}/artifacts/%2E%2E", 404, "has no artifact '..'"),
    Case("artifact-encoded-slash", "GET", "/runs/{run}/artifacts/..%2F..%2Fbtlab.sqlite3", 404,
         "no such endpoint", raw=True),
    Case("artifact-encoded-lowercase", "GET", "/runs/{run}/artifacts/%2e%2e%2fmanifest.json", 404,
         "no such endpoint", raw=True),
    Case("artifact-raw-dotdot", "GET", "/runs/{run}/artifacts/../../btlab.sqlite3", 404,
         "no such endpoint", raw=True),
    Case("artifact-backslash", "GET", "/runs/{run}/artifacts/..%5C..%5Cbtlab.sqlite3", 404,
         "has no artifact"),
    Case("artifact-nul", "GET", "/runs/{run}/artifacts/metrics.json%00", 404, "has no artifact"),
    Case("artifact-unknown-run", "GET", "/runs/0123456789abcdef/artifacts/metrics.json", 404,
         "unknown run id"),
    # -- POST /datasets: empty, bad CSV, bad Parquet, bad parameters, oversized
    Case("upload-empty-body", "POST", "/datasets", 422, "empty", "empty", _csv_upload(b"")),
    Case("upload-empty-file", "POST", "/datasets", 422, "empty", "empty",
         {"files": {"file": ("x.csv", b"")}}),
    Case("upload-no-file-field", "POST", "/datasets", 422, "field named 'file'", "file",
         {"files": {"other": ("x.csv", b"a")}}),
    Case("upload-header-only", "POST", "/datasets", 422, "no rows", "empty", _csv_upload(HEADER)),
    Case("upload-missing-columns", "POST", "/datasets", 422, "missing required columns",
         "missing_columns", _csv_upload(b"a,b\n1,2\n")),
    Case("upload-bad-timestamp", "POST", "/datasets", 422, "unparseable timestamps",
         "bad_timestamp", _csv_upload(_csv("notadate,1,1,1,1,1", "2020-01-02,1,1,1,1,1"))),
    Case("upload-duplicate-timestamp", "POST", "/datasets", 422, "duplicate_timestamp",
         "duplicate_timestamp", _csv_upload(_csv("2020-01-01,1,1,1,1,1", "2020-01-01,1,1,1,1,1"))),
    Case("upload-nan-price", "POST", "/datasets", 422, "non_finite_price", "non_finite_price",
         _csv_upload(_csv("2020-01-01,1,1,1,nan,1", "2020-01-02,1,1,1,1,1"))),
    Case("upload-high-below", "POST", "/datasets", 422, "high is below", "high_below_open_close",
         _csv_upload(_csv("2020-01-01,1,0.5,1,1,1", "2020-01-02,1,1,1,1,1"))),
    Case("upload-negative-volume", "POST", "/datasets", 422, "negative_volume", "negative_volume",
         _csv_upload(_csv("2020-01-01,1,1,1,1,-1", "2020-01-02,1,1,1,1,1"))),
    Case("upload-binary-garbage", "POST", "/datasets", 422, "cannot read the upload", "unreadable_file",
         _csv_upload(b"\x00\xff\xfe garbage")),
    Case("upload-text-plain", "POST", "/datasets", 415, "text/csv", "header.content-type",
         {"content": "GOOD", "headers": {"Content-Type": "text/plain"}}),
    Case("upload-urlencoded-form", "POST", "/datasets", 415, "multipart/form-data",
         "header.content-type", {"data": {"file": "ts,open"}}),
    Case("upload-no-content-type", "POST", "/datasets", 415, "Content-Type none",
         "header.content-type", {"content": "GOOD"}),
    Case("upload-bad-parquet", "POST", "/datasets", 422, "as parquet", "unreadable_file",
         _csv_upload(b"PAR1 not really PAR1")),
    Case("upload-bad-format", "POST", "/datasets", 422, "format", "query.format",
         {"content": b"x", "params": {"format": "xls"}}),
    Case("upload-bad-timeframe", "POST", "/datasets", 422, "timeframe 'zz'", "bad_timeframe",
         {**_csv_upload(b""), "content": "GOOD", "params": {"timeframe": "zz"}}),
    Case("upload-long-symbol", "POST", "/datasets", 422, "symbol", "query.symbol",
         {"content": b"x", "params": {"symbol": "s" * 100}}),
    Case("upload-oversized", "POST", "/datasets", 413, f"limit of {UPLOAD_LIMIT} bytes", "body",
         _csv_upload(b"a" * (UPLOAD_LIMIT + 1))),
    Case("upload-oversized-multipart", "POST", "/datasets", 413, f"limit of {UPLOAD_LIMIT} bytes",
         "body", {"files": {"file": ("x.csv", b"a" * (UPLOAD_LIMIT + 1))}}),
    Case("upload-oversized-chunked", "POST", "/datasets", 413, f"limit of {UPLOAD_LIMIT} bytes",
         "body", {"content": _chunks(UPLOAD_LIMIT), "headers": {"Content-Type": "text/csv"}}),
    Case("dataset-unknown-id", "GET", "/datasets/zzz", 404, "unknown dataset id 'zzz'"),
    # -- a long upload (a portfolio): the broken row is named by its symbol and table row
    Case("upload-long-broken-row", "POST", "/datasets", 422,
         "symbol 'B': high is below max(open, close) (first offending rows: 4)",
         "high_below_open_close", _csv_upload(_long_csv(("B", 2)))),
    Case("upload-long-named", "POST", "/datasets", 422, "no symbol name ('X')",
         "portfolio_symbol", _csv_upload(_long_csv(), symbol="X")),
    Case("portfolio-unknown-id", "GET", "/portfolios/zzz", 404, "unknown portfolio id 'zzz'"),
    Case("dataset-traversal", "GET", "/datasets/..%2F..%2Fbtlab.sqlite3", 404, "no such endpoint",
         raw=True),
    # -- no such endpoint, wrong method
    Case("unknown-endpoint", "GET", "/nope", 404, "no such endpoint: GET /nope"),
    Case("wrong-method", "PUT", "/runs", 405, "method PUT is not allowed on /runs"),
    Case("wrong-method-run", "POST", "/runs/{run}", 405, "method POST is not allowed"),
]  # fmt: skip


@pytest.fixture(scope="module")
def runs(server: Server) -> dict[str, str]:
    """A completed run and a cancelled one on the module's server."""
    with httpx.Client(base_url=server.url, timeout=60) as c:
        done = c.post("/runs", json=tiny(seed=900)).json()["id"]
        wait_status(c, done, ("completed",))
        cancelled = c.post("/runs", json=slow(permutations=20_000, bars=4000, seed=901)).json()[
            "id"
        ]
        wait_status(c, cancelled, ("running",))
        assert c.delete(f"/runs/{cancelled}").status_code == 202
        wait_status(c, cancelled, ("cancelled",))
        # a file in the run's folder that the manifest does not list
        (server.home / "runs" / done / "secret.txt").write_text("not an artifact")
    return {"run": done, "cancelled": cancelled}


def _state(server: Server, client: httpx.Client) -> dict[str, Any]:
    """What a bad request must not change."""
    return {
        "runs": client.get("/runs", params={"limit": 500}).json()["total"],
        "datasets": client.get("/datasets").json(),
        "dataset_files": sorted(p.name for p in (server.home / "datasets").iterdir()),
        "run_folders": sorted(p.name for p in (server.home / "runs").iterdir()),
    }


def _raw(server: Server, method: str, path: str) -> tuple[int, bytes]:
    """Send the path exactly as written (httpx would resolve ``..`` before sending)."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        conn.request(method, path)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_is_a_4xx_that_names_the_problem(
    case: Case, server: Server, client: httpx.Client, runs: dict[str, str]
) -> None:
    path = case.path.format(**runs)
    kwargs = dict(case.kwargs)
    if kwargs.get("content") == "GOOD":
        kwargs["content"] = _good_csv()
    before = _state(server, client)
    log_before = server.log()
    if case.raw:
        status, raw = _raw(server, case.method, path)
    else:
        response = client.request(case.method, path, **kwargs)
        status, raw = response.status_code, response.content
    assert status == case.status, raw
    body = json.loads(raw)
    assert set(body) == {"code", "message", "details"}, body
    assert isinstance(body["code"], str) and body["code"], body
    assert case.needle.lower() in body["message"].lower(), body["message"]
    assert all(set(d) == {"loc", "msg"} and d["loc"] and d["msg"] for d in body["details"]), body
    if case.loc is not None:  # that field, or a field inside it
        locs = [d["loc"] for d in body["details"]]
        assert any(loc == case.loc or loc.startswith(case.loc + ".") for loc in locs), locs
    assert _state(server, client) == before  # nothing half-written
    assert "Traceback" not in server.log().removeprefix(log_before)


def _routes(client: httpx.Client) -> set[tuple[str, str]]:
    spec = client.get("/openapi.json").json()
    return {(m.upper(), path) for path, ops in spec["paths"].items() for m in ops}


def test_every_route_with_a_body_or_query_has_bad_input_cases(client: httpx.Client) -> None:
    """A new route taking a body or query parameters needs its cases above."""
    no_input = {("GET", "/presets"), ("GET", "/registry"), ("GET", "/health"), ("GET", "/datasets"),
                ("GET", "/portfolios")}  # fmt: skip
    plain = {r for r in _routes(client) if "{" not in r[1]} - no_input
    covered = {(c.method, c.path) for c in CASES}
    assert plain - covered == set()


def test_every_route_answers_an_unknown_id_with_a_404_naming_it(
    client: httpx.Client, runs: dict[str, str]
) -> None:
    """Every route with a path parameter, including routes added later (e.g. a run's report)."""
    checked = 0
    for method, template in sorted(_routes(client)):
        if "{" not in template:
            continue
        path = template.replace("{run_id}", "0123456789abcdef").replace("{dataset_id}", "f" * 64)
        path = path.replace("{portfolio_id}", "f" * 64)
        if "{name}" in path:
            path = path.replace("0123456789abcdef", runs["run"]).replace("{name}", "nope.bin")
        response = client.request(method, path)
        body = response.json()
        assert response.status_code == 404, (method, path, body)
        assert set(body) == {"code", "message", "details"} and body["code"] == "not_found"
        assert ("0123456789abcdef" in body["message"] or "f" * 64 in body["message"]
                or "'nope.bin'" in body["message"]), body["message"]  # fmt: skip
        checked += 1
    assert checked >= 6
