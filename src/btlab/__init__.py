"""btlab: a deterministic backtest and validation engine.

    import btlab
    result = btlab.run({"strategy": {"name": "sma_cross", "params": {"fast": 20, "slow": 100}}})
    result.metrics["sharpe"], result.equity, result.fills, result.trades

Parameter grids: `btlab.run_sweep(request_with_grid)` (loaded on first use, so `import btlab`
does not pay for the sweep kernels). The numba kernels are importable for direct calls on NumPy
arrays: `btlab.kernels`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

from .artifacts import verify_artifacts, write_artifacts
from .config import RunConfig, parse_config
from .data import Dataset, from_dataframe, load_csv, load_file, load_parquet, synthetic
from .errors import BtlabError, ConfigError, DataError, NotFoundError, RunCancelled, RunError
from .pipeline import RunCache, RunResult, config_hash, resolve_config, run
from .presets import list_presets, load_preset, resolve_request
from .run_warnings import RunWarning

if TYPE_CHECKING:
    from .sweep import SweepRequest, SweepResult, run_sweep

_LAZY = {"SweepRequest", "SweepResult", "run_sweep"}


def __getattr__(name: str) -> Any:
    """The sweep API, imported when first asked for (PEP 562)."""
    if name in _LAZY:
        from . import sweep

        return getattr(sweep, name)
    raise AttributeError(f"module 'btlab' has no attribute {name!r}")


__all__ = [
    "BtlabError",
    "ConfigError",
    "DataError",
    "Dataset",
    "NotFoundError",
    "RunCache",
    "RunCancelled",
    "RunConfig",
    "RunError",
    "RunResult",
    "RunWarning",
    "SweepRequest",
    "SweepResult",
    "__version__",
    "config_hash",
    "from_dataframe",
    "list_presets",
    "load_csv",
    "load_file",
    "load_parquet",
    "load_preset",
    "parse_config",
    "resolve_config",
    "resolve_request",
    "run",
    "run_sweep",
    "synthetic",
    "verify_artifacts",
    "write_artifacts",
]
