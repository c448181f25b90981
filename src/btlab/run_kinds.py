"""The kinds of run the orchestrator executes: one `RunKind` each, looked up by name.

A kind says how its request body is resolved (presets, overrides, validation) and hashed with
its data, how it is executed, which artifacts it writes and what it reports when it completes.
The orchestrator knows nothing else about a kind, so a new one (walk-forward, say) is one class
here and one entry in `KINDS` (and its name in the store's `RUN_KINDS`, which checks the kind
of every row it writes).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

from .artifacts import write_artifacts
from .config import RunConfig
from .data import Dataset
from .errors import ConfigError
from .executors import BatchExecutor, LocalExecutor
from .pipeline import CancelCheck, EventSink, PortfolioResolver, config_hash, run
from .portfolio_run import PortfolioResult
from .presets import resolve_request
from .run_cache import RunCache
from .run_result import DataIdentity, RunResult
from .sweep import SweepRequest, SweepResult, parse_sweep_request, run_sweep, sweep_config_hash
from .walkforward import (
    WalkForwardRequest,
    WalkForwardResult,
    parse_walkforward_request,
    run_walkforward,
    walkforward_config_hash,
)

__all__ = [
    "KINDS", "Completion", "RunKind", "RunRequest", "SingleRun", "Sweep", "WalkForward", "run_kind",
]  # fmt: skip

#: What every kind's request carries (a RunConfig or a SweepRequest): its data section.
RunRequest = RunConfig | SweepRequest
Req = TypeVar("Req", bound=RunRequest)
Res = TypeVar("Res")


@dataclass(frozen=True)
class Completion:
    """What a finished run reports: its config hash (checked against the one accepted), its
    metrics (the store keeps the headline ones) and its warnings as ``[{code, message}]``."""

    config_hash: str
    metrics: Mapping[str, Any]
    warnings: list[dict[str, str]]


class RunKind(Protocol[Req, Res]):
    """One kind of run, as the orchestrator drives it (see the module docstring)."""

    name: str

    def resolve(self, body: Any) -> Req:
        """The validated request of a body; ConfigError naming each bad field, NotFoundError for
        an unknown preset."""
        ...

    def config_hash(self, request: Req, identity: DataIdentity) -> str:
        """The hash that decides "the same run": the request with its data's identity."""
        ...

    def execute(
        self,
        config: Mapping[str, Any],
        *,
        on_event: EventSink,
        should_cancel: CancelCheck,
        resolve_stored: Callable[[str], Dataset],
        resolve_portfolio: PortfolioResolver | None = None,
        cache: RunCache,
        batches: BatchExecutor | None = None,
    ) -> Res:
        """Run the stored request (`resolve`'s request as JSON) to its result (a stored id is a
        portfolio where `resolve_portfolio` knows it, else a dataset of `resolve_stored`);
        `batches`: where a many-part job's batches run (a cluster; default: this process)."""
        ...

    def artifacts(self, result: Res, out: Path) -> dict[str, Any]:
        """Write the result's artifact folder `out`; its manifest."""
        ...

    def report(self, result: Res) -> Completion:
        """What the finished run reports (see `Completion`)."""
        ...


class SingleRun:
    """One backtest: `btlab.pipeline.run`, artifacts by `btlab.artifacts.write_artifacts`."""

    name = "run"

    def resolve(self, body: Any) -> RunConfig:
        return resolve_request(body)

    def config_hash(self, request: RunConfig, identity: DataIdentity) -> str:
        return config_hash(request, identity)

    def execute(
        self,
        config: Mapping[str, Any],
        *,
        on_event: EventSink,
        should_cancel: CancelCheck,
        resolve_stored: Callable[[str], Dataset],
        resolve_portfolio: PortfolioResolver | None = None,
        cache: RunCache,
        batches: BatchExecutor | None = None,
    ) -> RunResult | PortfolioResult:
        return run(
            config, on_event=on_event, should_cancel=should_cancel,
            resolve_stored=resolve_stored, resolve_portfolio=resolve_portfolio, cache=cache,
            executor=batches if batches is not None else LocalExecutor(),
        )  # fmt: skip

    def artifacts(self, result: RunResult | PortfolioResult, out: Path) -> dict[str, Any]:
        return write_artifacts(result, out)

    def report(self, result: RunResult | PortfolioResult) -> Completion:
        return Completion(
            result.config_hash, result.metrics, [w.to_json() for w in result.warnings]
        )


class Sweep:
    """A parameter grid: `btlab.sweep.run_sweep`; it reports its best combination's metrics."""

    name = "sweep"

    def resolve(self, body: Any) -> SweepRequest:
        return parse_sweep_request(body if body is not None else {})

    def config_hash(self, request: SweepRequest, identity: DataIdentity) -> str:
        return sweep_config_hash(request, identity)

    def execute(
        self,
        config: Mapping[str, Any],
        *,
        on_event: EventSink,
        should_cancel: CancelCheck,
        resolve_stored: Callable[[str], Dataset],
        resolve_portfolio: PortfolioResolver | None = None,
        cache: RunCache,
        batches: BatchExecutor | None = None,
    ) -> SweepResult:
        return run_sweep(
            config, on_event=on_event, should_cancel=should_cancel,
            resolve_stored=resolve_stored, resolve_portfolio=resolve_portfolio, cache=cache,
            executor=batches if batches is not None else LocalExecutor(),
        )  # fmt: skip

    def artifacts(self, result: SweepResult, out: Path) -> dict[str, Any]:
        return result.write_artifacts(out)

    def report(self, result: SweepResult) -> Completion:
        return Completion(
            result.config_hash, result.best["metrics"], [w.to_json() for w in result.warnings]
        )


class WalkForward:
    """Walk-forward with re-fitting: `btlab.walkforward.run_walkforward`; it reports the
    out-of-sample metrics."""

    name = "walkforward"

    def resolve(self, body: Any) -> WalkForwardRequest:
        return parse_walkforward_request(body if body is not None else {})

    def config_hash(self, request: WalkForwardRequest, identity: DataIdentity) -> str:
        return walkforward_config_hash(request, identity)

    def execute(
        self,
        config: Mapping[str, Any],
        *,
        on_event: EventSink,
        should_cancel: CancelCheck,
        resolve_stored: Callable[[str], Dataset],
        resolve_portfolio: PortfolioResolver | None = None,
        cache: RunCache,
        batches: BatchExecutor | None = None,
    ) -> WalkForwardResult:
        return run_walkforward(
            config, on_event=on_event, should_cancel=should_cancel,
            resolve_stored=resolve_stored, resolve_portfolio=resolve_portfolio, cache=cache,
            executor=batches if batches is not None else LocalExecutor(),
        )  # fmt: skip

    def artifacts(self, result: WalkForwardResult, out: Path) -> dict[str, Any]:
        return result.write_artifacts(out)

    def report(self, result: WalkForwardResult) -> Completion:
        return Completion(
            result.config_hash, result.metrics, [w.to_json() for w in result.warnings]
        )


#: Every kind by its name (the `kind` of a run in the store and the API); kinds hold no state.
KINDS: dict[str, RunKind[Any, Any]] = {
    kind.name: kind for kind in (SingleRun(), Sweep(), WalkForward())
}


def run_kind(name: str) -> RunKind[Any, Any]:
    """The kind called `name`; a ConfigError at `kind` for an unknown one."""
    kind = KINDS.get(name)
    if kind is None:
        raise ConfigError("invalid request", [("kind", f"unknown run kind {name!r}")])
    return kind
