"""The one way every run drives the execution engine: `run_engine`.

It runs `kernels.portfolio.simulate_portfolio_nb` in chunks of clock bars (progress and
cancellation between them; bit-identical to one call), with the one fill-buffer policy
(`with_fill_retry`) and the one status-to-error map (`raise_for_status`). A single-symbol run
passes 1-D arrays (the engine compiles K = 1 with 1-D cells), a portfolio (n, K) arrays.

The settings may change along the run (`ParamSegments`: a walk-forward's windows each trade
with their own costs and stops): the engine then runs each segment's bars with its settings,
the state (position, cash, entry, stops, pending orders, fill count) carried from one segment
into the next as from one chunk into the next. What is read once for the whole run — the
initial cash of the fresh state — must be the same in every segment.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeAlias

import numpy as np

from btlab.kernels.dtypes import FILL_DTYPE, Status
from btlab.kernels.execution import ExecParams, with_fill_retry
from btlab.kernels.portfolio import (
    PortfolioBars,
    PortfolioBuffers,
    PortfolioOrders,
    fresh_portfolio_state_nb,
    simulate_one_nb,
    simulate_portfolio_nb,
)
from btlab.kernels.rules import ST_BORROW_CUM, ST_FLAGS, ST_HALT_BAR, ST_N_FILLS, state_size

from .errors import RunCancelled
from .kernel_status import raise_for_status
from .stages import CancelCheck

__all__ = ["SIMULATION_CHUNK", "ParamSegments", "Simulation", "run_engine", "segment_bounds"]

#: Bars per kernel call: progress and cancellation are checked between chunks.
SIMULATION_CHUNK = 1 << 18
_NO_SCHEDULE = np.zeros(0, dtype=np.int64)

#: The settings of a run whose settings change along it: (first bar, settings) per segment,
#: the first at bar 0, the first bars strictly increasing; each holds up to the next one.
ParamSegments: TypeAlias = Sequence[tuple[int, ExecParams]]


@dataclass
class Simulation:
    """The engine's outputs: units and borrow per bar (and symbol), cash and equity per bar,
    the fill records, the outcome flags, the halt bar and the total borrow paid."""

    units: np.ndarray
    cash: np.ndarray
    equity: np.ndarray
    borrow: np.ndarray
    fills: np.ndarray
    flags: int
    halt_bar: int
    borrow_total: float


def run_engine(
    bars: PortfolioBars,
    target: np.ndarray,
    scale: np.ndarray,
    params: ExecParams | ParamSegments,
    *,
    schedule: np.ndarray | None = None,
    on_progress: Callable[[int, int], None] | None = None,
    should_cancel: CancelCheck | None = None,
    chunk: int = SIMULATION_CHUNK,
) -> Simulation:
    """Run the engine over every clock bar in chunks. `bars` and `target`/`scale` are 1-D (one
    symbol) or (n, K); `schedule` the sorted clock bars of a calendar rebalance (or none).
    `params`: the run's settings, or its `ParamSegments` (each segment's bars run with its
    settings, the state carried across; ValueError where they do not start at bar 0, do not
    increase, reach past the bars or differ in their initial cash)."""
    n = bars.close.shape[0]
    one_symbol = bars.close.ndim == 1
    k_symbols = 1 if one_symbol else int(bars.close.shape[1])
    orders = PortfolioOrders(target, scale, _NO_SCHEDULE if schedule is None else schedule)
    state = np.empty(state_size(k_symbols))
    shape = (n,) if one_symbol else (n, k_symbols)
    units, borrow = np.empty(shape), np.empty(shape)
    cash, equity = np.empty(n), np.empty(n)
    result: list[PortfolioBuffers] = []

    pieces = segment_bounds(n, params, chunk)
    initial_cash = (params if isinstance(params, ExecParams) else params[0][1]).initial_cash
    engine = simulate_one_nb if one_symbol else simulate_portfolio_nb

    def run(capacity: int) -> int:
        fresh_portfolio_state_nb(state, initial_cash)
        fills = np.empty(capacity, dtype=FILL_DTYPE)
        result[:] = [PortfolioBuffers(units, cash, equity, borrow, fills)]
        for start, stop, settings in pieces:
            if should_cancel is not None and should_cancel():
                raise RunCancelled("run cancelled during simulation")
            status = int(engine(bars, orders, settings, state, result[0], start, stop))
            if status != Status.OK:
                return status
            if on_progress is not None:
                on_progress(stop, n)
        return int(Status.OK)

    raise_for_status(with_fill_retry(n, run, k_symbols), "in the simulation")
    out = result[0]
    n_fills = int(state[ST_N_FILLS])
    return Simulation(
        units, cash, equity, borrow, out.fills[:n_fills].copy(), int(state[ST_FLAGS]),
        int(state[ST_HALT_BAR]), float(state[ST_BORROW_CUM]),
    )  # fmt: skip


def segment_bounds(
    n: int, params: ExecParams | ParamSegments, chunk: int = SIMULATION_CHUNK
) -> list[tuple[int, int, ExecParams]]:
    """The kernel calls of a run over `n` bars: (start, stop, settings), cut at every `chunk`
    bars and at every segment's first bar (see `run_engine`)."""
    if chunk < 1:
        raise ValueError(f"chunk must be >= 1, got {chunk}")
    segments = [(0, params)] if isinstance(params, ExecParams) else list(params)
    if not segments or segments[0][0] != 0:
        raise ValueError("the first segment of the settings starts at bar 0")
    firsts = [first for first, _ in segments]
    if any(b <= a for a, b in itertools.pairwise(firsts)) or firsts[-1] >= max(n, 1):
        raise ValueError(f"segments' first bars must increase within the {n} bars: {firsts}")
    if len({p.initial_cash for _, p in segments}) > 1:
        raise ValueError("every segment of one run starts from the same initial cash")
    out: list[tuple[int, int, ExecParams]] = []
    for i, (first, settings) in enumerate(segments):
        end = segments[i + 1][0] if i + 1 < len(segments) else n
        for start in range(first, end, chunk):
            out.append((start, min(end, start + chunk), settings))
    return out
