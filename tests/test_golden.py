"""Every kind of run still writes the artifacts recorded under tests/golden/ (see its docstring)."""

from __future__ import annotations

import json

import pytest

from tests.golden import cases, path, record

CASES = sorted(cases())


@pytest.mark.parametrize("case", CASES)
def test_artifacts_equal_the_golden_record(case: str) -> None:
    golden = json.loads(path(case).read_text(encoding="utf-8"))
    now = json.loads(json.dumps(record(cases()[case]())))
    assert now["config_hash"] == golden["config_hash"]
    assert now["dataset_hash"] == golden["dataset_hash"]
    assert now["warnings"] == golden["warnings"]
    assert sorted(now["artifacts"]) == sorted(golden["artifacts"])
    for name, held in golden["artifacts"].items():
        assert now["artifacts"][name] == held, f"{case}: {name} changed"


def test_every_case_is_recorded() -> None:
    recorded = sorted(p.stem for p in path("x").parent.glob("*.json"))
    assert recorded == CASES
