"""What a walk-forward produced (`WalkForwardResult`): the windows table, the out-of-sample
run, its validation, the summary (efficiency, parameter stability) and the artifacts."""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .. import data as data_mod
from ..artifacts import (
    Payload,
    artifact_payloads,
    folder_manifest,
    table_bytes,
    write_result_folder,
)
from ..hashing import canonical_bytes
from ..run_result import DataIdentity, RunResult
from ..run_warnings import RunWarning
from ..sweep.grid import GridExpansion
from .request import WalkForwardRequest
from .windows import Window

__all__ = ["WalkForwardResult", "parameter_stability", "walkforward_efficiency"]


def _finite(value: Any) -> float | None:
    return float(value) if value is not None and math.isfinite(float(value)) else None


def walkforward_efficiency(oos_cagr: Any, is_cagrs: Sequence[Any]) -> dict[str, Any]:
    """WFE = the out-of-sample annualized return / the in-sample one, the in-sample one being
    the mean of the windows' train annualized returns of their chosen combinations; None
    (with the reason) where either is undefined or the in-sample one is 0."""
    values = [v for v in (_finite(c) for c in is_cagrs) if v is not None]
    is_mean = float(np.mean(values)) if values and len(values) == len(is_cagrs) else None
    oos = _finite(oos_cagr)
    wfe, reason = None, None
    if oos is None or is_mean is None:
        reason = "an annualized return is undefined"
    elif is_mean == 0:
        reason = "the in-sample annualized return is 0"
    else:
        wfe = oos / is_mean
    out = {"wfe": wfe, "oos_cagr": oos, "is_cagr_mean": is_mean}
    return out if reason is None else {**out, "wfe_undefined": reason}


def parameter_stability(axes: Sequence[str], chosen: Sequence[Sequence[Any]]) -> dict[str, Any]:
    """Per axis, over the windows' chosen values: how many distinct values, the share of windows
    (after the first) keeping the previous window's value, and for a numeric axis the mean,
    the std (ddof 0) and std / |mean| (None where the mean is 0)."""
    out: dict[str, Any] = {}
    for i, axis in enumerate(axes):
        values = [point[i] for point in chosen]
        keys = [repr(v) for v in values]
        kept = sum(1 for a, b in itertools.pairwise(keys) if a == b)
        entry: dict[str, Any] = {
            "values": values,
            "distinct": len(set(keys)),
            "share_kept": kept / (len(keys) - 1) if len(keys) > 1 else None,
        }
        if all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
            arr = np.asarray(values, dtype=np.float64)
            mean, std = float(arr.mean()), float(arr.std())
            entry |= {"mean": mean, "std": std, "cv": std / abs(mean) if mean else None}
        out[axis] = entry
    return out


@dataclass(eq=False)
class WalkForwardResult:
    """Everything a walk-forward produced (see `btlab.walkforward`)."""

    request: WalkForwardRequest
    config_hash: str
    dataset: data_mod.Dataset  # the whole data; `oos_run.dataset` is its out-of-sample span
    identity: DataIdentity
    expansion: GridExpansion
    windows: list[Window]
    table: pd.DataFrame  # windows.parquet: one row a window
    oos_run: RunResult  # the stitched out-of-sample run (its validation included)
    efficiency: dict[str, Any]
    stability: dict[str, Any]
    timings_ms: dict[str, float] = field(default_factory=dict)
    warnings: list[RunWarning] = field(default_factory=list)

    @property
    def metrics(self) -> dict[str, Any]:
        """The out-of-sample metrics."""
        return self.oos_run.metrics

    @property
    def validation(self) -> dict[str, Any] | None:
        """The validation of the out-of-sample curve."""
        return self.oos_run.validation

    def summary(self) -> dict[str, Any]:
        """walkforward.json: the windows (bars and chosen combinations), efficiency, stability."""
        spec = self.request.walkforward
        e = self.expansion
        return {
            "strategy": self.request.strategy.name,
            "objective": self.request.objective,
            "walkforward": spec.model_dump(mode="json"),
            "axes": e.axes,
            "n_combinations": e.size,
            "n_valid": len(e.params),
            "n_windows": len(self.windows),
            "oos": {
                "start_bar": self.windows[0].test_start,
                "end_bar": self.windows[-1].test_end - 1,
                "n_bars": self.windows[-1].test_end - self.windows[0].test_start,
            },
            "windows": [
                {
                    "window": w.index,
                    "train_start_bar": w.train_start,
                    "train_end_bar": w.train_end - 1,
                    "test_start_bar": w.test_start,
                    "test_end_bar": w.test_end - 1,
                    "combo": int(row["combo"]),
                    "params": {
                        a: None if v is None else _json(row[a])  # the table holds None as NaN
                        for a, v in zip(e.axes, e.points[int(row["combo"])], strict=True)
                    },
                }
                for w, row in zip(self.windows, self.table.to_dict("records"), strict=True)
            ],
            "efficiency": self.efficiency,
            "stability": self.stability,
        }

    def artifact_payloads(self) -> dict[str, bytes]:
        """Every artifact's bytes by file name (the manifest excepted): the out-of-sample run's
        tables, metrics and validation (`artifacts.artifact_payloads`), windows and summary."""
        return {
            **artifact_payloads(self.oos_run),
            "windows.parquet": table_bytes(self.table),
            "walkforward.json": canonical_bytes(self.summary()),
        }

    def manifest(self, payloads: Mapping[str, Payload]) -> dict[str, Any]:
        return folder_manifest(
            self.request, self.dataset, self.identity, self.config_hash, self.warnings,
            payloads, kind="walkforward",
        )  # fmt: skip

    def write_artifacts(
        self, out_dir: str | Path, *, overwrite: bool = False, replace_same_run: bool = False
    ) -> dict[str, Any]:
        """Write the artifacts and `manifest.json` to `out_dir` atomically; returns the manifest.
        As `artifacts.write_artifacts`: the same folder writer and the same rule for a
        non-empty `out_dir`."""
        return write_result_folder(
            out_dir, self.artifact_payloads, self.manifest, overwrite=overwrite,
            replace_same_run=replace_same_run,
        )  # fmt: skip


def _json(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value
