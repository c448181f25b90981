"""What decides "the same run": the identity of a request's data and the config hash over it.

The data's identity is its content hash with its effective timeframe, calendar and adjustment,
or, for the synthetic provider, the hash of its spec (no bar generated); the config hash is the
sha256 of the canonical request with the data section replaced by that identity, and, for a
run handed its own targets, their content hash under "targets", and, where the request runs
user code, the hashes of that code under "code" (`code_identity`, SPEC §9).
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np

from .config import RunConfig, SyntheticData
from .data import Dataset
from .data.portfolio import PortfolioDataset
from .features import feature_code, has_user_features
from .hashing import canonical_json, sha256_hex
from .kernel_inputs import read_features
from .portfolio_strategies import (
    is_portfolio_strategy,
    portfolio_strategy_code,
    required_portfolio_features,
)
from .run_result import DataIdentity
from .strategies import strategy_code
from .synthetic_data import spec_identity
from .targets import targets_identity
from .timeframes import canonical_timeframe

__all__ = ["code_identity", "config_hash", "data_identity", "hashed_request", "run_identity"]


def data_identity(
    config: RunConfig, dataset: Dataset | PortfolioDataset | None = None
) -> DataIdentity:
    """The identity of a request's data: the synthetic spec's when `dataset` is None (the data
    the request itself names), else the content of `dataset` with its effective timeframe and
    calendar."""
    if isinstance(dataset, PortfolioDataset):
        adjusted = any(member.meta.adjusted for member in dataset.members.values())
        return DataIdentity(dataset.hash, dataset.meta.timeframe, dataset.meta.calendar, adjusted)
    if dataset is not None:
        m = dataset.meta
        return DataIdentity(dataset.hash, m.timeframe, m.calendar, m.adjusted)
    spec = config.data
    if not isinstance(spec, SyntheticData):
        raise TypeError(f"the identity of {spec.source!r} data is its content: pass the dataset")
    return DataIdentity(
        spec_identity(spec), canonical_timeframe(spec.timeframe), spec.calendar, spec.adjust
    )


def hashed_request(config: RunConfig, identity: DataIdentity) -> dict[str, Any]:
    """The request as hashed and recorded: every default filled in, the data section replaced by
    the data's identity (so a path, a stored id or a symbol name does not make another run),
    and `code`, the hashes of the user code it runs, where it runs any (`code_identity`: a
    request of built-ins only hashes as before)."""
    payload = config.hash_payload()
    payload["data"] = identity.payload()
    if identity.targets is not None:  # only then: requests without caller targets keep their hash
        digest, shape = identity.targets
        payload["targets"] = {"hash": digest, "shape": list(shape)}
    code = code_identity(config)
    if code:
        payload["code"] = code
    return payload


def _strategy_param_sets(config: RunConfig) -> Iterator[Mapping[str, Any]]:
    """The strategy parameters a request runs with: its own, and for a sweep request (a floor
    above: known here by its `expansion`) those of each valid combination too (one at a time:
    a sweep's are resolved as they are asked for)."""
    expansion = getattr(config, "expansion", None)
    yield config.strategy.params
    if expansion is not None:
        yield from expansion.params


def code_identity(config: RunConfig) -> dict[str, str]:
    """The hashes of the user code a request runs (SPEC §9), by key: its strategy
    (`strategy:<name>`, or `portfolio_strategy:<name>` and the single-symbol strategies it
    runs) and each feature it computes or reads (`feature:<name>`), with every parameter set
    it stands for. Empty where it runs built-ins only."""
    name = config.strategy.name
    portfolio = is_portfolio_strategy(name)
    user_features = has_user_features()
    # without user features only the strategy's own code counts: one parameter set will do
    param_sets = itertools.islice(_strategy_param_sets(config), None if user_features else 1)
    code: dict[str, str | None] = {}
    if not portfolio:
        code[f"strategy:{name}"] = strategy_code(name)
    for params in param_sets:
        if portfolio:
            code.update(portfolio_strategy_code(name, params))
        if user_features:
            read = required_portfolio_features(name, params) if portfolio else (
                read_features(config, params))  # fmt: skip
            for spec in [*config.features, *read]:
                code[f"feature:{spec.name}"] = feature_code(spec.name)
    return {key: digest for key, digest in sorted(code.items()) if digest is not None}


def config_hash(config: RunConfig, identity: DataIdentity) -> str:
    """sha256 of the canonical request (defaults filled in) with the data's identity."""
    return sha256_hex(canonical_json({"request": hashed_request(config, identity)}).encode())


def run_identity(
    config: RunConfig,
    dataset: Dataset | PortfolioDataset,
    *,
    explicit: bool = False,
    targets: np.ndarray | None = None,
) -> DataIdentity:
    """The identity a run records: its synthetic spec's, unless the bars were handed in, with
    the content hash of the `targets` handed in (if any)."""
    synthetic = isinstance(config.data, SyntheticData) and not explicit
    identity = data_identity(config, None if synthetic else dataset)
    if targets is None:
        return identity
    return dataclasses.replace(identity, targets=targets_identity(targets))
