"""The parallel pass: every combination through the sweep kernels in batches, the "feature a
above feature b" strategies fused from the feature matrix (`sweep_cross`), any other from
targets computed a bounded batch at a time (`sweep_targets`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numba
import numpy as np

from btlab.kernels.execution import BarInputs
from btlab.kernels.metrics import BLOCK_FIELDS, N_STATS, SW_STATUS
from btlab.kernels.signals import cross_target_nb
from btlab.kernels.sweep import ScratchPool, sweep_cross, sweep_targets

from .. import data as data_mod
from ..config import FeatureSpec, RunConfig
from ..features import FeatureStore
from ..kernel_status import raise_for_status
from ..pipeline import exec_params, size_scale
from ..strategies import CROSS_STRATEGIES, compute_target, cross_rule

__all__ = [
    "TARGET_BATCH_BYTES",
    "CrossRules",
    "PassBuffers",
    "PassOutput",
    "cross_rules",
    "sweep_pass",
]

#: Memory the generic path may use for one batch of targets.
TARGET_BATCH_BYTES = 64 << 20


class PassBuffers:
    """What the batches of one pass reuse, made on first use: the kernels' buffers by fill
    capacity (`ScratchPool`) and the matrix the fused path stacks its distinct features into.
    A 100k-bar batch's matrix is ~100 MB, and fresh memory costs its page faults (0.1-0.2 s
    measured) on every batch. Not shared between threads: one per thread running batches."""

    def __init__(self) -> None:
        self.pool = ScratchPool()
        self._matrix: np.ndarray | None = None

    def stack(self, arrays: Sequence[np.ndarray]) -> np.ndarray:
        """`np.stack(arrays)` (1-D float64 arrays of one length) into the reused matrix: a
        view of its first rows, valid until the next call."""
        rows, n = len(arrays), arrays[0].shape[0]
        held = self._matrix
        if held is None or held.shape[1] != n or held.shape[0] < rows:
            held = self._matrix = np.empty((rows, n))
        out = held[:rows]
        np.stack(arrays, out=out)
        return out


@dataclass
class _CrossPlan:
    """The fused path: distinct shifted features and, per combination, which two it compares."""

    features: np.ndarray  # distinct features x bars
    a_idx: np.ndarray
    b_idx: np.ndarray
    long_value: np.ndarray
    short_value: np.ndarray


@dataclass
class CrossRules:
    """Per combination of a "feature a above feature b" strategy: the two features (by key,
    with their specs) and the long and short values. Validating and keying the parameters is
    done once per sweep (`cross_rules`), not again by every pass (the permuted paths of the
    sweep's validation each run one)."""

    a: list[tuple[str, FeatureSpec]]
    b: list[tuple[str, FeatureSpec]]
    long_value: np.ndarray
    short_value: np.ndarray


def cross_rules(name: str, combos: Sequence[Mapping[str, Any]]) -> CrossRules | None:
    """The fused rule of every combination where the strategy is a cross of two features
    (`strategies.cross_rule`), else None."""
    if name not in CROSS_STRATEGIES:
        return None
    rules = CrossRules([], [], np.empty(len(combos)), np.empty(len(combos)))
    for c, params in enumerate(combos):
        rule = cross_rule(name, params)
        if rule is None:
            return None
        rules.a.append((rule[0].key(), rule[0]))
        rules.b.append((rule[1].key(), rule[1]))
        rules.long_value[c], rules.short_value[c] = rule[2], rule[3]
    return rules


def _cross_plan(
    store: FeatureStore,
    name: str,
    combos: Sequence[Mapping[str, Any]],
    rules: CrossRules | None,
    buffers: PassBuffers,
) -> _CrossPlan | None:
    """The fused plan where the strategy is a cross of two features (probed against the registry)."""
    if rules is None:
        return None
    index: dict[str, int] = {}
    arrays: list[np.ndarray] = []
    a_idx, b_idx = np.empty(len(combos), np.int64), np.empty(len(combos), np.int64)
    for c in range(len(combos)):
        for side, idx in ((rules.a, a_idx), (rules.b, b_idx)):
            key, spec = side[c]
            if key not in index:
                index[key] = len(arrays)
                arrays.append(store.get(spec))
            idx[c] = index[key]
    long_value, short_value = rules.long_value, rules.short_value
    plan = _CrossPlan(buffers.stack(arrays), a_idx, b_idx, long_value, short_value)
    for c in sorted({0, len(combos) - 1}):  # the registry's own target must agree
        target = np.empty(store.n)
        cross_target_nb(
            plan.features[a_idx[c]], plan.features[b_idx[c]], long_value[c], short_value[c], target
        )
        if not np.array_equal(target, compute_target(store, name, combos[c], store.n)):
            return None
    return plan


@dataclass
class PassOutput:
    stats: np.ndarray  # combinations x N_STATS
    blocks: np.ndarray  # combinations x groups x BLOCK_FIELDS
    fused: bool


def sweep_pass(
    dataset: data_mod.Dataset,
    store: FeatureStore,
    cfg: RunConfig,
    name: str,
    combos: Sequence[Mapping[str, Any]],
    bounds: np.ndarray,
    periods_per_year: float,
    *,
    rules: CrossRules | None = None,
    buffers: PassBuffers | None = None,
) -> PassOutput:
    """Every combination (one batch of a pass: `passes.plan_batches` sizes it, and progress and
    cancel come between batches) through the sweep kernels: a fused cross in one parallel call
    (each call ends waiting for every thread), any other strategy's targets a bounded batch at
    a time (`rules`: `cross_rules(name, combos)` where the caller has them, else made here), in
    `buffers` (the caller's, kept across its batches; fresh ones where None)."""
    n, total = len(dataset), len(combos)
    scale = size_scale(cfg, store, n, periods_per_year)
    params = exec_params(cfg)
    stats = np.zeros((total, N_STATS))
    blocks = np.zeros((total, bounds.shape[0] - 1, BLOCK_FIELDS))
    threads = numba.get_num_threads()
    buffers = buffers if buffers is not None else PassBuffers()
    plan = _cross_plan(
        store, name, combos, rules if rules is not None else cross_rules(name, combos), buffers
    )
    prices = BarInputs(
        dataset.ts, dataset.open, dataset.high, dataset.low, dataset.close, dataset.volume
    )
    if plan is not None:
        batch = max(1, total)
    else:
        batch = max(threads, min(total, TARGET_BATCH_BYTES // max(1, 8 * n)))
    pool = buffers.pool
    for lo in range(0, total, batch):
        hi = min(total, lo + batch)
        chunks = min(threads, hi - lo)
        if plan is not None:
            sweep_cross(
                prices, scale, plan.features, plan.a_idx[lo:hi], plan.b_idx[lo:hi],
                plan.long_value[lo:hi], plan.short_value[lo:hi], params, bounds, chunks,
                stats[lo:hi], blocks[lo:hi], pool,
            )  # fmt: skip
        else:
            targets = np.stack([compute_target(store, name, p, n) for p in combos[lo:hi]])
            sweep_targets(
                prices, scale, targets, params, bounds, chunks, stats[lo:hi], blocks[lo:hi], pool
            )
    raise_for_status(stats[:, SW_STATUS], "in the sweep", "combination")
    return PassOutput(stats, blocks, plan is not None)
