"""btlab: a deterministic backtest and validation engine.

    import btlab
    result = btlab.run({"strategy": {"name": "sma_cross", "params": {"fast": 20, "slow": 100}}})
    result.metrics["sharpe"], result.equity, result.fills, result.trades

The numba kernels are importable for direct calls on NumPy arrays: `btlab.kernels`.
"""

from __future__ import annotations

__version__ = "0.1.0"

from .artifacts import verify_artifacts, write_artifacts
from .config import RunConfig, parse_config
from .data import Dataset, from_dataframe, load_csv, load_file, load_parquet, synthetic
from .errors import BtlabError, ConfigError, DataError, NotFoundError, RunCancelled, RunError
from .pipeline import RunCache, RunResult, config_hash, resolve_config, run
from .presets import list_presets, load_preset, resolve_request

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
    "synthetic",
    "verify_artifacts",
    "write_artifacts",
]
