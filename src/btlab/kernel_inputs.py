"""A request as the execution kernel takes it: its scalar settings, the per-bar size scale and
the features the targets and sizes are read from.

Shared by the single run (`btlab.pipeline`), its validation (`btlab.validation.run`) and the
sweep, so each builds the kernel's inputs the one way.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from btlab.kernels.dtypes import FillAt, Sizing
from btlab.kernels.execution import ExecParams

from .config import RunConfig
from .features import FeatureSpec, FeatureStore
from .portfolio_features import PortfolioFeatureStore
from .strategies import required_features
from .targets import TARGETS_STRATEGY
from .timeframes import CALENDAR_REBALANCES
from .timeframes import rebalance_schedule as timeframes_schedule

__all__ = ["exec_params", "read_features", "size_scale", "sizing_features"]


def exec_params(config: RunConfig) -> ExecParams:
    """The kernel's scalar settings from a request."""
    ex, risk = config.execution, config.risk
    sizing = {"fraction": Sizing.FRACTION, "units": Sizing.UNITS, "vol_target": Sizing.VOL_TARGET}[
        risk.sizing
    ]
    return ExecParams(
        initial_cash=ex.initial_cash,
        fill_at=FillAt.OPEN if ex.fill == "open" else FillAt.CLOSE,
        every_bar=ex.rebalance == "every_bar",
        sizing=sizing,
        unit_size=risk.units,
        max_leverage=risk.max_leverage,
        lot_size=ex.lot_size,
        spread_bps=ex.spread_bps,
        slippage_bps=ex.slippage_bps,
        commission_bps=ex.commission_bps,
        commission_fixed=ex.commission_fixed,
        commission_min=ex.commission_min,
        borrow_rate_annual=ex.borrow_rate_annual,
        skip_zero_volume=ex.skip_zero_volume,
        stop_loss=risk.stop_loss or 0.0,
        take_profit=risk.take_profit or 0.0,
        max_drawdown=risk.max_drawdown or 0.0,
        close_at_end=ex.close_at_end,
    )


def sizing_features(config: RunConfig) -> list[FeatureSpec]:
    """The features the sizing reads: the realized volatility for vol_target, else none."""
    risk = config.risk
    if risk.sizing != "vol_target":
        return []
    return [FeatureSpec(name="rolling_vol", params={"window": risk.vol_lookback})]


def read_features(config: RunConfig, params: Mapping[str, Any] | None = None) -> list[FeatureSpec]:
    """The features a run's targets and sizes are made from: the strategy's (with `params`,
    default the request's) and the sizing's (the request's extra `features` are only computed).
    Targets handed in (the reserved `targets` strategy) read no feature of their own."""
    if config.strategy.name == TARGETS_STRATEGY:
        return sizing_features(config)
    strategy = required_features(
        config.strategy.name, config.strategy.params if params is None else params
    )
    return [*strategy, *sizing_features(config)]


def size_scale(
    config: RunConfig,
    store: FeatureStore | PortfolioFeatureStore,
    n: int | tuple[int, int],
    periods_per_year: float,
) -> np.ndarray:
    """Per-bar size multiplier: ones, or `min(max_leverage, vol_target / realized_vol)` for vol_target.

    `n` is the bar count, or (bars, symbols) with a portfolio's store (one scale per symbol).

    The realized volatility is the registry's (shifted) rolling std of log returns, annualized.
    Where it is not yet known (warm-up) the scale is NaN: unknown, not zero, so the kernel holds
    an order that needs it until the first bar where it is known (SPEC §3, as on a bar without
    volume). A zero volatility gives the leverage cap.
    """
    risk = config.risk
    if risk.sizing != "vol_target":
        return np.ones(n)
    vol = store.get(sizing_features(config)[0]) * math.sqrt(periods_per_year)
    with np.errstate(divide="ignore", invalid="ignore"):
        scale: np.ndarray = np.minimum(risk.max_leverage, risk.vol_target_annual / vol)
    return scale


def rebalance_schedule(config: RunConfig, ts_ns: np.ndarray) -> np.ndarray | None:
    """The clock bars of the request's calendar rebalance (`timeframes.rebalance_schedule`), or
    None where it rebalances on a target change or every bar (`ExecParams.every_bar`)."""
    rule = config.execution.rebalance
    if rule not in CALENDAR_REBALANCES:
        return None
    return timeframes_schedule(ts_ns, rule)
