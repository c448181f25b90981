"""btlab: a deterministic backtest and validation engine."""

__version__ = "0.1.0"
