"""Sweeps and walk-forwards on a real local Dask cluster (two worker processes): the same
numbers as in-process whatever the worker count or completion order, and a worker killed
mid-sweep costs a retry, not a result (SPEC §11)."""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

distributed = pytest.importorskip("distributed")  # the cluster extra is in the dev install

from btlab.errors import ConfigError  # noqa: E402
from btlab.executors import (  # noqa: E402
    CLUSTER_ENV,
    DaskExecutor,
    LocalExecutor,
    executor_from_env,
)
from btlab.sweep import SweepResult, run_sweep  # noqa: E402
from btlab.walkforward import WalkForwardResult, run_walkforward  # noqa: E402


@pytest.fixture(scope="module")
def cluster(local_cluster: Any) -> Any:
    return local_cluster


@pytest.fixture(scope="module")
def executor(cluster: Any) -> Iterator[DaskExecutor]:
    with distributed.Client(cluster) as client:
        yield DaskExecutor(client)


def assert_same_sweep(a: SweepResult, b: SweepResult) -> None:
    assert a.config_hash == b.config_hash
    assert a.table.equals(b.table)
    assert a.best == b.best
    assert a.validation == b.validation
    np.testing.assert_array_equal(a.best_run.equity_values, b.best_run.equity_values)


FIELD_GRID: dict[str, Any] = {
    "data": {"bars": 600, "seed": 3},
    "grid": {
        "fast": [5, 10, 15, 20],
        "slow": [40, 60, 80],
        "execution.commission_bps": [0.0, 3.0],
    },
    "validation": {"permutation": {"n_permutations": 4}, "bootstrap": {"n_resamples": 50}},
    "pbo_splits": 4,
}

PORTFOLIO_GRID: dict[str, Any] = {
    "data": {"bars": 400, "seed": 8, "symbols": 6},
    "strategy": {"name": "xs_momentum"},
    "execution": {"rebalance": "monthly", "commission_bps": 2.0},
    "grid": {"lookback": [10, 20, 40, 60, 90], "top": [1, 2, 3]},
    "validation": {"enabled": False},
}


@pytest.mark.parametrize("request_body", [FIELD_GRID, PORTFOLIO_GRID], ids=["fields", "portfolio"])
def test_a_sweep_on_the_cluster_equals_the_local_sweep(
    executor: DaskExecutor, request_body: dict[str, Any]
) -> None:
    local = run_sweep(request_body, executor=LocalExecutor())
    remote = run_sweep(request_body, executor=executor)
    assert executor.parallelism == 2
    assert_same_sweep(local, remote)


def test_a_worker_killed_mid_sweep_is_retried_and_changes_nothing(
    cluster: Any, executor: DaskExecutor
) -> None:
    body = {**PORTFOLIO_GRID, "grid": {"lookback": list(range(10, 130, 4)), "top": [1, 2]}}
    local = run_sweep(body, executor=LocalExecutor())
    before = set(executor.client.scheduler_info()["workers"])
    pids: dict[str, int] = executor.client.run(os.getpid)
    killed = threading.Event()

    def kill_one(event: str, data: dict[str, Any]) -> None:
        if event == "progress" and data.get("stage") == "sweep" and not killed.is_set():
            killed.set()
            # the worker process dies at once, with whatever batch it holds (its nanny restarts it)
            os.kill(pids[sorted(pids)[0]], signal.SIGKILL)

    remote = run_sweep(body, executor=executor, on_event=kill_one)
    assert killed.is_set()
    executor.client.wait_for_workers(2, timeout=60)
    after = set(executor.client.scheduler_info()["workers"])
    assert after != before  # a worker was replaced
    assert_same_sweep(local, remote)


def test_executor_from_env(monkeypatch: pytest.MonkeyPatch, cluster: Any) -> None:
    assert isinstance(executor_from_env({}), LocalExecutor)
    chosen = executor_from_env({CLUSTER_ENV: cluster.scheduler_address})
    assert isinstance(chosen, DaskExecutor) and chosen.parallelism == 2
    assert executor_from_env({CLUSTER_ENV: cluster.scheduler_address}) is chosen  # one connection
    monkeypatch.setenv(CLUSTER_ENV, cluster.scheduler_address)
    res = run_sweep(
        {"data": {"bars": 300}, "grid": {"fast": [5, 10]}, "validation": {"enabled": False}}
    )
    assert len(res.table) == 2


def test_an_unreachable_scheduler_is_a_clear_error() -> None:
    with pytest.raises(
        Exception, match=r"cannot reach the cluster scheduler at tcp://127\.0\.0\.1:1"
    ):
        DaskExecutor("tcp://127.0.0.1:1", timeout=2)


def test_without_distributed_the_error_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    import builtins

    real_import = builtins.__import__

    def no_distributed(name: str, *args: Any, **kwargs: Any) -> Any:
        if name == "distributed" or name.startswith("distributed."):
            raise ImportError("no distributed")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_distributed)
    with pytest.raises(ConfigError, match=r"btlab\[cluster\]"):
        DaskExecutor("tcp://127.0.0.1:1")


@pytest.mark.parametrize(
    "request_body",
    [
        {"data": {"bars": 800, "seed": 4}, "strategy": {"name": "sma_cross"}},  # fused paths
        {"data": {"bars": 600, "seed": 4}, "strategy": {"name": "rsi_reversion"}},
        {
            "data": {"bars": 400, "seed": 4, "symbols": 4},
            "strategy": {"name": "inverse_vol"},
            "execution": {"rebalance": "monthly"},
        },
    ],
    ids=["fused", "generic", "portfolio"],
)
def test_a_runs_permutation_test_on_the_cluster_equals_the_local_one(
    executor: DaskExecutor, request_body: dict[str, Any]
) -> None:
    import btlab

    body = {**request_body, "validation": {"permutation": {"n_permutations": 12}}}
    local = btlab.run(body, executor=LocalExecutor())
    remote = btlab.run(body, executor=executor)
    assert local.validation is not None and local.validation["permutation"]["n_permutations"] == 12
    assert remote.validation == local.validation


# ------------------------------------------------------------------ walk-forward

WF_VALIDATION = {"permutation": {"enabled": False}, "bootstrap": {"n_resamples": 50}}
WALKFORWARD_FUSED: dict[str, Any] = {
    "data": {"bars": 600, "seed": 3},
    "strategy": {"name": "sma_cross", "params": {"long_short": True}},
    "grid": {"fast": [5, 10, 15], "slow": [20, 40], "risk.stop_loss": [None, 0.03],
             "execution.commission_bps": [0.0, 10.0]},
    "walkforward": {"train": 150, "test": 60},
    "validation": WF_VALIDATION,
}  # fmt: skip
#: A stateful strategy (its targets over each window's prefix, on the worker) sized by
#: volatility (the scale from the worker's own features) with a cost axis.
WALKFORWARD_GENERIC: dict[str, Any] = {
    "data": {"bars": 500, "seed": 6},
    "strategy": {"name": "channel_breakout", "params": {"long_short": True}},
    "grid": {"entry_window": [20, 40], "exit_window": [5, 10],
             "execution.commission_bps": [0.0, 10.0], "risk.vol_lookback": [10, 30]},
    "risk": {"sizing": "vol_target"},
    "walkforward": {"train": "6M", "test": "3M"},
    "objective": "total_return",
    "validation": WF_VALIDATION,
}  # fmt: skip


def assert_same_walkforward(a: WalkForwardResult, b: WalkForwardResult) -> None:
    assert a.config_hash == b.config_hash
    assert a.table.equals(b.table)
    assert a.efficiency == b.efficiency and a.stability == b.stability
    np.testing.assert_array_equal(a.oos_run.equity_values, b.oos_run.equity_values)
    assert a.artifact_payloads() == b.artifact_payloads()  # every artifact, byte for byte


def _cluster_tasks(ts: Any) -> list[str]:
    return [str(t["key"]) for t in ts.data if str(t["key"]).startswith("btlab-")]


@pytest.mark.parametrize(
    "request_body", [WALKFORWARD_FUSED, WALKFORWARD_GENERIC], ids=["fused", "generic"]
)
def test_a_walkforward_on_the_cluster_equals_the_local_one(
    executor: DaskExecutor, request_body: dict[str, Any]
) -> None:
    local = run_walkforward(request_body, executor=LocalExecutor())
    with distributed.get_task_stream(client=executor.client) as ts:
        remote = run_walkforward(request_body, executor=executor)
    # every window's train pass went to the workers, in batches (several a window)
    assert len(_cluster_tasks(ts)) >= 2 * len(remote.windows)
    assert_same_walkforward(local, remote)
    assert len(remote.windows) >= 3


def test_btlab_wfo_runs_on_the_cluster_btlab_cluster_names(
    monkeypatch: pytest.MonkeyPatch, executor: DaskExecutor, cluster: Any, tmp_path: Any
) -> None:
    from btlab.cli import main

    argv = ["wfo", "--grid", "fast=5,10", "--grid", "slow=20,40",
            "--grid", "execution.commission_bps=0,10", "--set", "data.bars=400",
            "--train", "120", "--test", "60", "--quiet", "--no-report"]  # fmt: skip
    assert main([*argv, "--out", str(tmp_path / "here")]) == 0
    monkeypatch.setenv(CLUSTER_ENV, cluster.scheduler_address)
    with distributed.get_task_stream(client=executor.client) as ts:
        assert main([*argv, "--out", str(tmp_path / "there")]) == 0
    assert _cluster_tasks(ts)  # the batches ran on the workers
    for name in ("windows.parquet", "equity.parquet", "fills.parquet", "walkforward.json"):
        assert (tmp_path / "here" / name).read_bytes() == (tmp_path / "there" / name).read_bytes()
