"""The single-symbol entry points of the execution engine (SPEC §3).

A single-symbol run is K = 1 of the portfolio engine (`kernels/portfolio.py`): `simulate_nb`
views its 1-D bars, orders and outputs as one column and runs `simulate_portfolio_nb`, so one
kernel holds every rule. It runs bars `[start, stop)` and keeps every scalar of its state in
`state`, so a caller may run a long series in chunks (to report progress or cancel between
them) and get bit-identical results to one call over all bars. Every buffer comes from the
caller; problems are status codes. The plain-Python `simulate` allocates and runs it;
`with_fill_retry` is the one fill-buffer policy of every caller.

`simulate_nb(bars, orders, params, state, out, start, stop)` takes its inputs grouped:
`BarInputs` (timestamps and prices), `OrderInputs` (target and size scale), `ExecParams`
(settings, in `kernels/rules.py` with the state layout and the scalar rules) and `SimBuffers`
(outputs).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np

from ._jit import njit
from .dtypes import FILL_DTYPE, Status, status_message
from .portfolio import (
    PortfolioBars,
    PortfolioBuffers,
    PortfolioOrders,
    fresh_portfolio_state_nb,
    simulate_one_nb,
)
from .rules import (
    ACCOUNT_SIZE,
    NS_PER_YEAR_365,
    POSITION_SIZE,
    ST_BORROW_CUM,
    ST_CASH,
    ST_ENTRY,
    ST_FLAGS,
    ST_HALT_BAR,
    ST_HALTED,
    ST_N_FILLS,
    ST_PEAK,
    ST_PENDING,
    ST_PREV_TARGET,
    ST_STOPPED_OUT,
    ST_UNITS,
    STATE_SIZE,
    ExecParams,
    exit_levels_nb,
    exit_touched_nb,
    fill_capacity,
    fill_cost_nb,
    first_fill_capacity,
    size_known_nb,
    target_units_nb,
)

__all__ = [
    "ACCOUNT_SIZE",
    "NS_PER_YEAR_365",
    "POSITION_SIZE",
    "STATE_SIZE",
    "ST_BORROW_CUM",
    "ST_CASH",
    "ST_ENTRY",
    "ST_FLAGS",
    "ST_HALTED",
    "ST_HALT_BAR",
    "ST_N_FILLS",
    "ST_PEAK",
    "ST_PENDING",
    "ST_PREV_TARGET",
    "ST_STOPPED_OUT",
    "ST_UNITS",
    "BarInputs",
    "ExecParams",
    "OrderInputs",
    "SimBuffers",
    "SimulationOutput",
    "exit_levels_nb",
    "exit_touched_nb",
    "fill_capacity",
    "fill_cost_nb",
    "first_fill_capacity",
    "fresh_state_nb",
    "inputs_agree_nb",
    "new_state",
    "sim_buffers",
    "simulate",
    "simulate_all_nb",
    "simulate_nb",
    "size_known_nb",
    "target_units_nb",
    "with_fill_retry",
]


class BarInputs(NamedTuple):
    """The bars of one symbol: int64 nanosecond timestamps and float64 prices and volume."""

    ts: np.ndarray
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray


class OrderInputs(NamedTuple):
    """What the strategy asks per bar: the signed `target` and the size `scale` (NaN: unknown)."""

    target: np.ndarray
    scale: np.ndarray


class SimBuffers(NamedTuple):
    """The caller's output buffers: per-bar units, cash, equity and borrow; FILL_DTYPE records."""

    units: np.ndarray
    cash: np.ndarray
    equity: np.ndarray
    borrow: np.ndarray
    fills: np.ndarray


@njit
def fresh_state_nb(state, initial_cash):
    """Reset `state` in place to what `new_state(initial_cash)` returns."""
    fresh_portfolio_state_nb(state, initial_cash)


def new_state(initial_cash: float) -> np.ndarray:
    """A fresh state vector: all cash, no position, nothing pending."""
    state = np.empty(STATE_SIZE, dtype=np.float64)
    fresh_state_nb(state, initial_cash)
    return state


def with_fill_retry(n_bars: int, run: Callable[[int], Any], n_symbols: int = 1) -> Any:
    """The one fill-buffer policy of every caller of the execution kernel.

    `run(capacity)` does the work with fill buffers of `capacity` records and returns its status:
    one `Status` code, or an array of them for a batch (where a second call re-does only the
    items that ran out). It runs with `first_fill_capacity(n_bars, n_symbols)`; where a status
    is FILLS_FULL, once more with `fill_capacity(n_bars, n_symbols)`, the bound no run exceeds.
    """
    status = run(first_fill_capacity(n_bars, n_symbols))
    if np.any(np.asarray(status) == Status.FILLS_FULL):
        status = run(fill_capacity(n_bars, n_symbols))
    return status


@njit
def inputs_agree_nb(bars, orders, state, out):
    """Whether every per-bar array has the bars' length and `state` is a state vector."""
    n = bars.close.shape[0]
    return (
        bars.ts.shape[0] == n and bars.open.shape[0] == n and bars.high.shape[0] == n
        and bars.low.shape[0] == n and bars.volume.shape[0] == n
        and orders.target.shape[0] == n and orders.scale.shape[0] == n
        and out.units.shape[0] == n and out.cash.shape[0] == n and out.equity.shape[0] == n
        and out.borrow.shape[0] == n and state.shape[0] == STATE_SIZE
    )  # fmt: skip


@njit
def simulate_nb(bars, orders, params, state, out, start, stop):
    """Run bars `[start, stop)` of one single-symbol backtest; returns a `dtypes.Status` code.

    `bars` is a `BarInputs`, `orders` an `OrderInputs`, `out` the caller's `SimBuffers`: the
    portfolio engine with one symbol (its 1-D arrays as they are, no rebalance schedule beyond
    `params.every_bar`). See `kernels/portfolio.py` for the steps of a bar.
    """
    if not inputs_agree_nb(bars, orders, state, out):
        return Status.BAD_INPUT
    one = PortfolioBars(bars.ts, bars.open, bars.high, bars.low, bars.close, bars.volume)
    asks = PortfolioOrders(orders.target, orders.scale, bars.ts[:0])
    outs = PortfolioBuffers(out.units, out.cash, out.equity, out.borrow, out.fills)
    return simulate_one_nb(one, asks, params, state, outs, start, stop)


@njit
def simulate_all_nb(bars, orders, params, state, out):
    """`simulate_nb` over every bar from a fresh state (reset in `state`); returns its status."""
    fresh_state_nb(state, params.initial_cash)
    return simulate_nb(bars, orders, params, state, out, 0, bars.close.shape[0])


def sim_buffers(n_bars: int, capacity: int) -> SimBuffers:
    """Fresh (uninitialized) output buffers for `n_bars` bars and `capacity` fill records."""
    return SimBuffers(
        np.empty(n_bars), np.empty(n_bars), np.empty(n_bars), np.empty(n_bars),
        np.empty(capacity, dtype=FILL_DTYPE),
    )  # fmt: skip


class SimulationOutput(NamedTuple):
    """Per-bar arrays and the fill records of one simulation."""

    units: np.ndarray
    cash: np.ndarray
    equity: np.ndarray
    borrow: np.ndarray
    fills: np.ndarray  # FILL_DTYPE records, exactly the fills made
    flags: int  # dtypes.Flag bits
    halt_bar: int  # bar where trading halted, -1 if it did not


def simulate(
    ts_ns: np.ndarray,
    open_: np.ndarray,
    high: np.ndarray,
    low: np.ndarray,
    close: np.ndarray,
    volume: np.ndarray,
    target: np.ndarray,
    params: ExecParams,
    scale: np.ndarray | None = None,
) -> SimulationOutput:
    """Run `simulate_nb` over all bars with freshly allocated outputs (the research entry point).

    `ts_ns` are int64 nanoseconds since the epoch; `target` the wanted signed fraction of equity
    per bar (decided before the bar opens); `scale` an optional per-bar size multiplier, NaN
    where it is not yet known (an order that needs it waits, as on a bar without volume).
    """

    n = close.shape[0]
    bars = BarInputs(
        np.ascontiguousarray(ts_ns, dtype=np.int64),
        *(np.ascontiguousarray(a, dtype=np.float64) for a in (open_, high, low, close, volume)),
    )
    orders = OrderInputs(
        np.ascontiguousarray(target, dtype=np.float64),
        np.ones(n) if scale is None else np.ascontiguousarray(scale, dtype=np.float64),
    )
    state = new_state(params.initial_cash)
    result: list[SimBuffers] = []

    def run(capacity: int) -> int:
        result[:] = [sim_buffers(n, capacity)]
        return int(simulate_all_nb(bars, orders, params, state, result[0]))

    status = with_fill_retry(n, run)
    if status != Status.OK:
        raise ValueError(f"simulate: {status_message(status)}; every array needs {n} rows")
    out = result[0]
    k = int(state[ST_N_FILLS])
    return SimulationOutput(
        out.units, out.cash, out.equity, out.borrow, out.fills[:k].copy(), int(state[ST_FLAGS]),
        int(state[ST_HALT_BAR]),
    )  # fmt: skip
