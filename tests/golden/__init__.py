"""Golden artifacts: what every kind of run wrote when they were recorded, held byte for byte.

`python -m tests.golden.write` records them (only on purpose: a change of any number is a change
of the engine's results and must be said in its commit); `tests/test_golden.py` holds the code to
them. Tables are compared column by column, by the canonical JSON of each (floats rounded as the
artifacts round them), so a Parquet writer's own metadata cannot move them and a difference names
the column; JSON artifacts are kept whole, so a difference shows which number moved.
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from btlab.artifacts import artifact_payloads
from btlab.hashing import canonical_json

FOLDER = Path(__file__).resolve().parent

#: Every cost and risk option at once, long and short, on data with zero-volume bars.
EVERY_OPTION: dict[str, Any] = {
    "data": {"bars": 1500, "seed": 11, "zero_volume_prob": 0.05, "vol_annual": 0.35},
    "strategy": {"name": "sma_cross", "params": {"fast": 8, "slow": 30, "long_short": True}},
    "execution": {
        "fill": "close",
        "rebalance": "every_bar",
        "spread_bps": 3.0,
        "slippage_bps": 1.5,
        "commission_bps": 2.0,
        "commission_fixed": 0.5,
        "commission_min": 1.0,
        "borrow_rate_annual": 0.04,
        "lot_size": 1.0,
    },
    "risk": {
        "sizing": "vol_target",
        "vol_target_annual": 0.2,
        "vol_lookback": 15,
        "max_leverage": 1.5,
        "stop_loss": 0.06,
        "take_profit": 0.2,
        "max_drawdown": 0.5,
    },
    "validation": {"permutation": {"n_permutations": 30}},
    "seed": 5,
}

#: Fixed units on the open, stops only: the sizing mode the presets do not use.
UNITS_SIZING: dict[str, Any] = {
    "data": {"bars": 800, "seed": 3},
    "strategy": {"name": "sma_cross", "params": {"fast": 5, "slow": 20}},
    "execution": {"commission_bps": 1.0},
    "risk": {"sizing": "units", "units": 250.0, "max_leverage": 3.0, "stop_loss": 0.04},
    "validation": {"permutation": {"n_permutations": 20}},
    "seed": 9,
}

SWEEP: dict[str, Any] = {
    "data": {"bars": 1200, "seed": 4},
    "strategy": {"name": "sma_cross"},
    "execution": {"spread_bps": 1.0, "commission_bps": 1.0},
    "grid": {"fast": {"start": 5, "stop": 25, "step": 5}, "slow": [40, 60, 80]},
    "seed": 2,
}


def _presets() -> dict[str, Callable[[], Any]]:
    import btlab

    return {
        f"preset_{name}": (lambda name=name: btlab.run(btlab.load_preset(name)))
        for name in btlab.list_presets()
    }


def cases() -> dict[str, Callable[[], Any]]:
    """Case name -> a function giving its result (a RunResult or a SweepResult)."""
    import btlab

    return {
        **_presets(),
        "every_option": lambda: btlab.run(EVERY_OPTION),
        "every_option_halted": lambda: btlab.run(
            {**EVERY_OPTION, "risk": {**EVERY_OPTION["risk"], "max_drawdown": 0.3}}
        ),
        "units_sizing": lambda: btlab.run(UNITS_SIZING),
        "sweep": lambda: btlab.run_sweep(SWEEP),
    }


def _table_digest(payload: bytes) -> dict[str, Any]:
    table = pq.read_table(io.BytesIO(payload))
    data = {
        name: (
            column.cast(pa.int64()) if pa.types.is_timestamp(column.type) else column
        ).to_pylist()
        for name, column in zip(table.column_names, table.columns, strict=True)
    }
    # one digest a column, so a column added to an artifact leaves the others' records whole
    return {
        "rows": table.num_rows,
        "columns": {
            name: hashlib.sha256(canonical_json(values).encode()).hexdigest()
            for name, values in data.items()
        },
    }


def record(result: Any) -> dict[str, Any]:
    """What a result's artifacts hold, in the form kept under tests/golden/."""
    payloads: dict[str, bytes] = (
        result.artifact_payloads()
        if hasattr(result, "artifact_payloads")
        else artifact_payloads(result)
    )
    artifacts: dict[str, Any] = {}
    for name, payload in sorted(payloads.items()):
        if name.endswith(".json"):
            artifacts[name] = json.loads(payload)
        elif name.endswith(".parquet"):
            artifacts[name] = _table_digest(payload)
        else:
            artifacts[name] = {"sha256": hashlib.sha256(payload).hexdigest()}
    return {
        "config_hash": result.config_hash,
        "dataset_hash": result.dataset.hash,
        "warnings": [w.to_json() for w in result.warnings],
        "artifacts": artifacts,
    }


def path(case: str) -> Path:
    return FOLDER / f"{case}.json"
