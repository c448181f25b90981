"""The run-kind seam: the orchestrator drives every kind through `btlab.run_kinds.RunKind` alone
(resolve, config_hash, execute, artifacts, report), looked up by name in `KINDS`."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from btlab import run_kinds, store
from btlab.errors import ConfigError
from btlab.orchestrator import Orchestrator
from btlab.run_kinds import KINDS, Completion, SingleRun, run_kind
from btlab.run_result import DataIdentity, RunResult
from btlab.store import Store

BODY = {"data": {"bars": 300}, "validation": {"enabled": False}}


def test_every_stored_kind_has_one_implementation() -> None:
    assert set(KINDS) == set(store.RUN_KINDS)
    for name, kind in KINDS.items():
        assert kind.name == name and run_kind(name) is kind


def test_an_unknown_kind_is_a_config_error_at_kind() -> None:
    with pytest.raises(ConfigError) as info:
        run_kind("walk_forward")
    assert info.value.errors == [("kind", "unknown run kind 'walk_forward'")]


class _Traced(SingleRun):
    """The single run, recording which of its methods the orchestrator called, and reporting
    its own metrics: what a new kind would change."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def resolve(self, body: Any) -> Any:
        self.calls.append("resolve")
        return super().resolve(body)

    def config_hash(self, request: Any, identity: DataIdentity) -> str:
        self.calls.append("config_hash")
        return super().config_hash(request, identity)

    def execute(self, config: Mapping[str, Any], **kw: Any) -> RunResult:
        self.calls.append("execute")
        return super().execute(config, **kw)

    def artifacts(self, result: RunResult, out: Path) -> dict[str, Any]:
        self.calls.append("artifacts")
        return super().artifacts(result, out)

    def report(self, result: RunResult) -> Completion:
        self.calls.append("report")
        done = super().report(result)
        return Completion(done.config_hash, {"sharpe": 1.25}, [{"code": "traced", "message": ""}])


def test_the_orchestrator_knows_a_kind_only_through_its_protocol(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    traced = _Traced()
    monkeypatch.setitem(run_kinds.KINDS, "run", traced)
    home = Store(tmp_path / "home")
    orch = Orchestrator(home)
    try:
        run, _ = orch.submit(BODY)
        done = orch.wait(run.id, 120)
        assert done.status == "completed", done.error
        assert traced.calls == ["resolve", "config_hash", "execute", "report", "artifacts"]
        completed = next(e for e in home.events_after(run.id, 0) if e.type == "completed")
        assert completed.data["metrics"] == {"sharpe": 1.25}  # what the kind reported
        assert completed.data["warnings"] == [{"code": "traced", "message": ""}]
        assert (home.run_dir(run.id) / "manifest.json").is_file()
    finally:
        orch.shutdown()
        home.close()
