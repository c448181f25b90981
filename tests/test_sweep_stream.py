"""Streaming sweeps (SPEC §10): past KEEP_ALL_ROWS valid combinations a sweep writes its rows
to sweep.parquet as they come and keeps the `keep` best in memory. The same grid streamed and
kept whole gives the same rows, best, heatmap and validation; the file's bytes do not depend
on the batches or the order they finish in; there is no cap of 10,000."""

from __future__ import annotations

import gc
import io
import json
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

import btlab
from btlab.artifacts import TableSpool, table_bytes, verify_artifacts
from btlab.executors import LocalExecutor
from btlab.sweep import collect, run_sweep

GRID = {"fast": [3, 5, 8, 13, 21], "slow": [10, 20, 30, 40, 60, 90]}  # 28 valid of 30


def request(**extra: Any) -> dict[str, Any]:
    return {
        "data": {"bars": 600, "seed": 11},
        "strategy": {"name": "sma_cross", "params": {}},
        "execution": {"commission_bps": 1.0, "spread_bps": 2.0},
        "grid": GRID,
        "validation": {
            "bootstrap": {"n_resamples": 50},
            "permutation": {"n_permutations": 3},
            "folds": {"k": 3},
        },
        "pbo_splits": 8,
    } | extra


def streamed(monkeypatch: pytest.MonkeyPatch, body: dict[str, Any], **kw: Any) -> Any:
    with monkeypatch.context() as m:
        m.setattr(collect, "KEEP_ALL_ROWS", 4)
        return run_sweep(body, **kw)


def _written(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame as sweep.parquet holds it (`artifacts.table_bytes`)."""
    return pd.read_parquet(io.BytesIO(table_bytes(frame)))


def _frames_equal(a: pd.DataFrame, b: pd.DataFrame) -> None:
    a = a.sort_values("combo").reset_index(drop=True)
    b = b.sort_values("combo").reset_index(drop=True)
    assert list(a.columns) == list(b.columns)
    pd.testing.assert_frame_equal(a, b, check_exact=True, check_dtype=False)


def test_a_streamed_sweep_equals_the_same_sweep_kept_whole(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    whole = run_sweep(request())
    part = streamed(monkeypatch, request(keep=5))
    assert not whole.streamed and part.streamed
    assert part.best == whole.best
    assert part.heatmap_json == whole.heatmap_json
    assert json.dumps(part.validation, sort_keys=True) == json.dumps(
        whole.validation, sort_keys=True
    )  # the permutation statistic, PBO and DSR from the streamed pass too
    # every row on disk equals the whole table's (as written: both rounded by the one writer)
    on_disk = pd.read_parquet(part.rows_file)
    _frames_equal(on_disk, _written(whole.table))
    # in memory: the five best by the objective, best first
    ranked = whole.table.sort_values(["sharpe", "combo"], ascending=[False, True]).head(5)
    assert part.table["combo"].tolist() == ranked["combo"].tolist()
    _frames_equal(part.table, ranked)
    # a streamed heatmap() reads the file: the values as written (SIGNIFICANT_DIGITS)
    for metric in (None, "cagr"):
        pd.testing.assert_frame_equal(
            part.heatmap(metric=metric), whole.heatmap(metric=metric), rtol=1e-11
        )
    assert part.config_hash == whole.config_hash  # `keep` is not hashed
    codes = [w.code for w in part.warnings]
    assert "sweep_streamed" in codes and "sweep_streamed" not in [w.code for w in whole.warnings]
    manifest = part.write_artifacts(tmp_path / "s")
    assert verify_artifacts(tmp_path / "s") == []
    assert (tmp_path / "s" / "sweep.parquet").read_bytes() == part.rows_file.read_bytes()
    assert manifest["artifacts"]["sweep.parquet"]["bytes"] == part.rows_file.stat().st_size


class _ShuffledExecutor(LocalExecutor):
    """Runs the batches in reverse, as if a cluster of 5 slots finished them out of order."""

    parallelism = 5

    def run(
        self,
        fn: Callable[[Any, Any], Any],
        shared: Any,
        batches: Sequence[Any],
        on_result: Callable[[int, Any], None],
        should_cancel: Callable[[], bool] | None = None,
    ) -> None:
        for index in reversed(range(len(batches))):
            on_result(index, fn(shared, batches[index]))


def test_the_streamed_file_is_the_same_bytes_whatever_the_batches_and_their_order(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    body = request(validation={"enabled": False})
    a = streamed(monkeypatch, body)
    b = streamed(monkeypatch, body, executor=_ShuffledExecutor())
    assert a.rows_file.read_bytes() == b.rows_file.read_bytes()
    assert a.artifact_payloads().keys() == b.artifact_payloads().keys()


def test_request_field_axes_stream_every_combination(monkeypatch: pytest.MonkeyPatch) -> None:
    # the fields vary fastest: the pass runs them group by group, the file holds each once
    body = request(grid={**GRID, "risk.stop_loss": [None, 0.03]}, validation={"enabled": False})
    whole = run_sweep(body)
    part = streamed(monkeypatch, body)
    on_disk = pd.read_parquet(part.rows_file)
    assert sorted(on_disk["combo"]) == list(range(len(whole.table)))
    assert part.best == whole.best
    _frames_equal(on_disk, _written(whole.table))


def test_the_file_goes_with_the_result(monkeypatch: pytest.MonkeyPatch) -> None:
    part = streamed(monkeypatch, request(validation={"enabled": False}))
    path = part.rows_file
    assert path is not None and path.is_file()
    del part
    gc.collect()
    assert not path.exists()


def test_more_than_ten_thousand_combinations_stream_past_the_old_cap() -> None:
    grid = {
        "fast": {"start": 2, "stop": 121, "step": 1},
        "slow": {"start": 130, "stop": 229, "step": 1},
    }
    res = run_sweep(
        {**request(grid=grid, validation={"enabled": False}), "data": {"bars": 300, "seed": 2}}
    )
    valid = len(res.expansion)
    assert valid > 10_000 and res.streamed
    assert len(res.table) == 100  # the default `keep`
    meta = pq.ParquetFile(res.rows_file).metadata
    assert meta.num_rows == valid
    best = res.table.iloc[0]
    assert (
        best["combo"] == res.best["combo"]
        and res.best["params"] == res.expansion.params[int(best["combo"])]
    )
    assert res.table["sharpe"].is_monotonic_decreasing
    # the best's metrics are those of its single run
    single = btlab.run(res.request.combination_config(res.best["combo"]))
    assert single.metrics["sharpe"] == res.best["metrics"]["sharpe"]


def test_a_table_spool_writes_the_same_bytes_whatever_the_frames(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {
            "combo": np.arange(1000, dtype=np.int64),
            "x": rng.normal(size=1000),
            "stop": [None if i % 3 else 0.05 for i in range(1000)],
            "name": [f"n{i % 7}" for i in range(1000)],
        }
    )
    frame["stop"] = frame["stop"].astype("float64")
    out = []
    for cuts in ([1000], [1, 299, 700], [500, 500]):
        spool = TableSpool(tmp_path / f"{len(out)}.parquet", rows_per_group=256)
        lo = 0
        for size in cuts:
            spool.append(frame.iloc[lo : lo + size])
            lo += size
        out.append(spool.close().read_bytes())
    assert out[0] == out[1] == out[2]
    back = pd.read_parquet(tmp_path / "0.parquet")
    np.testing.assert_array_equal(back["combo"], frame["combo"])
    assert math.isnan(back["stop"][1]) and back["stop"][0] == 0.05


def test_keep_is_validated_and_leaves_the_hash_alone() -> None:
    from btlab.errors import ConfigError
    from btlab.sweep import parse_sweep_request

    with pytest.raises(ConfigError) as info:
        parse_sweep_request(request(keep=0))
    assert "keep" in str(info.value)
    a = parse_sweep_request(request())
    b = parse_sweep_request(request(keep=100))
    assert a.hash_payload() == b.hash_payload()


def test_a_request_with_its_expansion_in_use_pickles_for_the_cluster() -> None:
    import pickle

    from btlab.sweep import parse_sweep_request

    req = parse_sweep_request(request())
    e = req.expansion
    before = (list(e.params), list(e.points), list(e.fields), e.index_of(e.points[3]))
    again = pickle.loads(pickle.dumps(req)).expansion
    assert (list(again.params), list(again.points), list(again.fields)) == before[:3]
    assert again.index_of(e.points[3]) == before[3] == 3
