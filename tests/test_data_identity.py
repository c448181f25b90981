"""The config hash covers the data's identity, not its location (SPEC §1, §4)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import btlab
from btlab import data, synthetic_data
from btlab.artifacts import write_artifacts
from btlab.cli import main
from btlab.config import parse_config
from btlab.orchestrator import Orchestrator
from btlab.store import Store

BODY: dict[str, Any] = {
    "strategy": {"name": "sma_cross", "params": {"fast": 5, "slow": 20}},
    "validation": {"enabled": False},
}


def fx_csv(path: Path) -> bytes:
    """Hourly FX-shaped bars (Sunday 22:00 to Friday 21:00 UTC) written as a CSV file."""
    hours = pd.date_range("2023-01-01 22:00", periods=6 * 7 * 24, freq="h", tz="UTC")
    day, hour = hours.day_of_week, hours.hour
    keep = ((day < 4) | ((day == 4) & (hour < 21)) | ((day == 6) & (hour >= 22))) & (day != 5)
    ts = hours[keep]
    close = 1.1 * np.exp(np.cumsum(np.random.default_rng(5).normal(0, 1e-3, len(ts))))
    frame = pd.DataFrame({"ts": ts, "open": close, "high": close * 1.001, "low": close * 0.999,
                          "close": close, "volume": 1.0})  # fmt: skip
    content = frame.to_csv(index=False).encode()
    path.write_bytes(content)
    return content


def test_the_same_bars_by_file_and_by_upload_are_the_same_run(tmp_path: Path) -> None:
    csv = tmp_path / "eurusd.csv"
    content = fx_csv(csv)
    request = tmp_path / "request.json"
    request.write_text(json.dumps(BODY))
    by_file = tmp_path / "by-file"
    assert main(["run", str(request), "--data", str(csv), "--quiet", "--no-report",
                 "--out", str(by_file)]) == 0  # fmt: skip
    file_manifest = json.loads((by_file / "manifest.json").read_text())

    store = Store(tmp_path / "home")
    try:
        row, _ = store.import_bytes(content, "csv", symbol="EUR/USD", timeframe=None)
        stored = btlab.run({**BODY, "data": {"source": "dataset", "id": row.id}},
                           resolve_stored=store.load_dataset)  # fmt: skip
    finally:
        store.close()
    stored_manifest = write_artifacts(stored, tmp_path / "by-upload")
    assert stored_manifest["config_hash"] == file_manifest["config_hash"]
    assert stored_manifest["run_hash"] == file_manifest["run_hash"]
    assert stored_manifest["dataset_hash"] == file_manifest["dataset_hash"] == row.id
    # the labels say where the bars came from, outside the run hash
    assert file_manifest["labels"]["symbol"] == "eurusd"
    assert stored_manifest["labels"]["symbol"] == "EUR/USD"
    assert file_manifest["labels"]["location"] == str(csv)
    assert "path" not in json.dumps(file_manifest["request"]["data"])
    assert file_manifest["dataset"]["calendar"] == "24x5"


def test_a_stored_dataset_may_be_run_with_another_calendar(tmp_path: Path) -> None:
    content = fx_csv(tmp_path / "fx.csv")
    store = Store(tmp_path / "home")
    try:
        row, _ = store.import_bytes(content, "csv", symbol=None, timeframe=None)
        plain = btlab.run({**BODY, "data": {"source": "dataset", "id": row.id}},
                          resolve_stored=store.load_dataset)  # fmt: skip
        as_24x7 = btlab.run({**BODY, "data": {"source": "dataset", "id": row.id,
                                              "calendar": "24x7"}},
                            resolve_stored=store.load_dataset)  # fmt: skip
    finally:
        store.close()
    assert plain.dataset.meta.calendar == "24x5" and plain.metrics["periods_per_year"] == 6240
    assert as_24x7.dataset.meta.calendar == "24x7" and as_24x7.metrics["periods_per_year"] == 8760
    assert as_24x7.dataset.meta.calendar_declared
    assert any(w.startswith("calendar_mismatch") for w in as_24x7.dataset.meta.warnings)
    assert as_24x7.config_hash != plain.config_hash


def test_the_same_bars_as_a_dataframe_are_the_same_run_and_other_bars_are_not(
    tmp_path: Path,
) -> None:
    csv = tmp_path / "fx.csv"
    fx_csv(csv)
    by_file = btlab.run({**BODY, "data": {"source": "csv", "path": str(csv)}})
    by_frame = btlab.run(BODY, data=pd.read_csv(csv))
    assert by_file.config_hash == by_frame.config_hash
    frame = pd.read_csv(csv)
    frame.loc[3, "volume"] = 2.0
    assert btlab.run(BODY, data=frame).config_hash != by_file.config_hash
    # declaring what would be inferred anyway is the same run; declaring otherwise is not
    same = btlab.run({**BODY, "data": {"source": "csv", "path": str(csv), "timeframe": "1h"}})
    assert same.config_hash == by_file.config_hash
    other = btlab.run({**BODY, "data": {"source": "csv", "path": str(csv), "calendar": "24x7"}})
    assert other.config_hash != by_file.config_hash


def test_synthetic_identity_is_its_spec_not_its_symbol() -> None:
    from btlab.pipeline import data_identity

    a = parse_config({"data": {"symbol": "AAA"}})
    b = parse_config({"data": {"symbol": "BBB", "timeframe": "1D"}})
    assert data_identity(a) == data_identity(b)
    assert data_identity(parse_config({"data": {"seed": 8}})).id != data_identity(a).id
    assert btlab.run({**BODY, "data": {"bars": 300}}).config_hash == btlab.config_hash(
        parse_config({**BODY, "data": {"bars": 300}}),
        data_identity(parse_config({**BODY, "data": {"bars": 300}})),
    )


BIG = {"bars": 5_000_000, "timeframe": "1m", "calendar": "24x7"}


class _Idle:
    """An executor that takes jobs and runs none (the request path alone is under test)."""

    def submit(self, job: Any, runner: Any) -> None:
        pass

    def shutdown(self, *, wait: bool) -> None:
        pass


def test_posting_a_synthetic_run_generates_no_bars(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[int] = []
    real = synthetic_data.generate

    def spy(*args: Any, **kwargs: Any) -> data.Dataset:
        calls.append(1)
        return real(*args, **kwargs)

    # the one generator every synthetic path calls (data.synthetic imports it on each call)
    monkeypatch.setattr(synthetic_data, "generate", spy)
    store = Store(tmp_path / "home")
    orch = Orchestrator(store, executor=_Idle())  # type: ignore[arg-type]
    try:
        started = time.perf_counter()
        run, created = orch.submit({**BODY, "data": BIG})
        elapsed = time.perf_counter() - started
        assert created and run.status == "queued"
        assert calls == [], "POST /runs generated the synthetic bars in the request"
        assert elapsed < 2.0, elapsed  # generating 5M bars takes seconds
        assert run.dataset_hash is None  # known once the worker has generated the bars
        again, created = orch.submit({**BODY, "data": BIG})
        assert not created and again.id == run.id
    finally:
        orch.shutdown()
        store.close()


def test_a_finished_synthetic_run_records_the_hash_of_its_bars(tmp_path: Path) -> None:
    store = Store(tmp_path / "home")
    orch = Orchestrator(store)
    body = {**BODY, "data": {"bars": 200}}
    try:
        run, _ = orch.submit(body)
        done = orch.wait(run.id, 120)
        assert done.status == "completed", done.error
        bars_hash = data.synthetic(bars=200).hash
        assert done.dataset_hash == bars_hash
        manifest = json.loads((store.run_dir(run.id) / "manifest.json").read_text())
        assert manifest["dataset_hash"] == bars_hash
        assert done.config_hash == btlab.run(body).config_hash
    finally:
        orch.shutdown()
        store.close()


def test_the_warm_cache_is_bounded_by_bytes() -> None:
    from btlab.pipeline import RunCache

    cache = RunCache(max_bytes=3 * 8 * 1000)
    for i in range(5):
        cache.features[f"f{i}"] = np.zeros(1000)
    assert list(cache.features) == ["f2", "f3", "f4"] and cache.features.weight == 24_000
    cache.features["big"] = np.zeros(10_000)  # alone over the budget: kept, the rest evicted
    assert list(cache.features) == ["big"]
    cache.datasets["a"] = data.synthetic(bars=300)  # 6 columns x 300 bars x 8 bytes = 14.4 kB
    cache.datasets["b"] = data.synthetic(bars=300, seed=8)
    assert list(cache.datasets) == ["b"] and cache.datasets.weight == 14_400
