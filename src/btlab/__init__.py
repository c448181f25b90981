"""btlab: a deterministic backtest and validation engine.

    import btlab
    result = btlab.run({"strategy": {"name": "sma_cross", "params": {"fast": 20, "slow": 100}}})
    result.metrics["sharpe"], result.equity, result.fills, result.trades

Parameter grids: `btlab.run_sweep(request_with_grid)`; walk-forward with re-fitting:
`btlab.run_walkforward(request_with_grid_and_walkforward)`. Your own targets or entry/exit
signals in place of a strategy: `btlab.run(config, data, targets=array | btlab.signals(...))`.
A run written to a folder (or stored by the service) comes back with
`btlab.load(folder_or_run_id)`. Your own strategies and features: `@btlab.strategy` (on a
function or a `Strategy` subclass) and `@btlab.feature` (docs/extending.md). The numba kernels
are importable for direct calls on NumPy arrays: `btlab.kernels`.

Every public name is imported when first asked for (PEP 562), so `import btlab` — and the
commands that need none of it, such as `btlab presets` and `btlab --help` — pay neither for
numba's compiler nor for pandas and pyarrow (about 1-2 s of start-up on a small machine).
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:  # for type checkers only: each name is imported on first access (below)
    from . import kernels as kernels
    from .artifacts import verify_artifacts, write_artifacts
    from .code_identity import RegistrationWarning
    from .config import RunConfig, parse_config
    from .data import Dataset, from_dataframe, load_csv, load_file, load_parquet
    from .data.portfolio import PortfolioDataset
    from .errors import BtlabError, ConfigError, DataError, NotFoundError, RunCancelled, RunError
    from .features import feature
    from .pipeline import RunCache, RunResult, config_hash, resolve_config, run
    from .portfolio_run import PortfolioResult
    from .presets import list_presets, load_preset, resolve_request
    from .reload import load
    from .run_warnings import RunWarning
    from .strategies import Strategy, strategy
    from .sweep import SweepRequest, SweepResult, run_sweep
    from .synthetic_data import generate as synthetic
    from .targets import Signals, signals
    from .walkforward import WalkForwardRequest, WalkForwardResult, run_walkforward

#: Where each public name lives (the module imported on first access; "module:name" where the
#: module calls it otherwise).
_LAZY: dict[str, str] = {
    **dict.fromkeys(("verify_artifacts", "write_artifacts"), "artifacts"),
    **dict.fromkeys(("RunConfig", "parse_config"), "config"),
    **dict.fromkeys(("Dataset", "from_dataframe", "load_csv", "load_file", "load_parquet"), "data"),
    **dict.fromkeys(
        ("BtlabError", "ConfigError", "DataError", "NotFoundError", "RunCancelled", "RunError"),
        "errors",
    ),
    **dict.fromkeys(("RunCache", "RunResult", "config_hash", "resolve_config", "run"), "pipeline"),
    **dict.fromkeys(("list_presets", "load_preset", "resolve_request"), "presets"),
    "RunWarning": "run_warnings",
    "load": "reload",
    "RegistrationWarning": "code_identity",
    "feature": "features",
    **dict.fromkeys(("Strategy", "strategy"), "strategies"),
    "PortfolioDataset": "data.portfolio",
    "PortfolioResult": "portfolio_run",
    **dict.fromkeys(("SweepRequest", "SweepResult", "run_sweep"), "sweep"),
    "synthetic": "synthetic_data:generate",
    **dict.fromkeys(("Signals", "signals"), "targets"),
    **dict.fromkeys(("WalkForwardRequest", "WalkForwardResult", "run_walkforward"), "walkforward"),
}


def __getattr__(name: str) -> Any:
    """A public name, imported from its module when first asked for; `btlab.kernels` too."""
    if name == "kernels":
        return import_module(".kernels", __name__)
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'btlab' has no attribute {name!r}")
    module, _, attribute = module.partition(":")
    value = getattr(import_module(f".{module}", __name__), attribute or name)
    globals()[name] = value  # later look-ups are plain attribute reads
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY, "kernels"})


__all__ = [
    "BtlabError",
    "ConfigError",
    "DataError",
    "Dataset",
    "NotFoundError",
    "PortfolioDataset",
    "PortfolioResult",
    "RegistrationWarning",
    "RunCache",
    "RunCancelled",
    "RunConfig",
    "RunError",
    "RunResult",
    "RunWarning",
    "Signals",
    "Strategy",
    "SweepRequest",
    "SweepResult",
    "WalkForwardRequest",
    "WalkForwardResult",
    "__version__",
    "config_hash",
    "feature",
    "from_dataframe",
    "list_presets",
    "load",
    "load_csv",
    "load_file",
    "load_parquet",
    "load_preset",
    "parse_config",
    "resolve_config",
    "resolve_request",
    "run",
    "run_sweep",
    "run_walkforward",
    "signals",
    "strategy",
    "synthetic",
    "verify_artifacts",
    "write_artifacts",
]
