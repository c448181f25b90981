"""The execution engine (SPEC §3, §8): bars × symbols traded from one cash account.

`simulate_portfolio_nb` runs clock bars `[start, stop)` over K >= 1 symbols and keeps every
scalar of its state in `state` (the layout of `kernels/rules.py`: the account segment, then one
position segment per symbol), so a caller may run in chunks and get bit-identical results to one
call. A single-symbol run is K = 1 of this kernel (`kernels/execution.py` views its 1-D arrays as
one column). Every buffer comes from the caller; problems are status codes.

Inputs are (bars, symbols) C-ordered arrays with NaN in every price where a symbol has no bar at
a clock bar. Per clock bar:
1. open: per symbol with a bar, a max-drawdown close or a stop / take-profit gap exit;
2. orders: where the target row changed (any symbol) or every bar — or, on a calendar
   rebalance schedule, only from its bars on (a target change waits for the next one) —
   each symbol whose order can fill now (it has a bar with volume and a known size) is ordered
   to its target, sized on the equity marked at the reference prices (the open, or the last
   close of a symbol without a bar), each symbol's cap its share of `max_leverage`; sells are
   booked first, then buys, each in symbol order. A symbol without a bar waits, as on a bar
   without volume; before its first bar its target counts as 0;
3. intrabar: per symbol, a stop / take-profit level inside the bar's range exits there;
4. close: borrow on each short over the bar (at its mark), the orders placed for the close
   (sells first), the end-of-data close (a delisted symbol at its last close), the mark
   `equity = cash + Σ units_k * mark_k`, ruin (every position closed at its mark) and the
   max-drawdown halt (every position closed at its next open).

The steps are written out in the loop: a call per step that passes the state and fill arrays
costs reference counting on them, several times the work of the bar; only the (rare) fills are
calls. A single-symbol run sends its quiet bars — the target unchanged, no order waiting, no
halt, no borrow, no live stop touched, a mark that neither ruins nor breaches the drawdown
limit — through a short loop that writes what the steps would (2-3x faster per bar on a
typical strategy); the first bar that is not quiet goes through every step. Bit-identity with
the generic kernel (which runs every bar through the steps) is a property test.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ._jit import njit
from .cells import cell, set_cell
from .dtypes import FILL_DTYPE, FillAt, Flag, Reason, Status
from .rules import (
    ACCOUNT_SIZE,
    NS_PER_YEAR_365,
    P_BORROW_CUM,
    P_DD_CLOSE,
    P_ENTRY,
    P_MARK,
    P_PENDING,
    P_PREV_TARGET,
    P_READY,
    P_RELEASED,
    P_STOPPED_OUT,
    P_UNITS,
    PENDING_CHANGE,
    PENDING_NONE,
    PENDING_RESIZE,
    POSITION_SIZE,
    ST_BORROW_CUM,
    ST_CASH,
    ST_FLAGS,
    ST_HALT_BAR,
    ST_HALTED,
    ST_N_FILLS,
    ST_PEAK,
    ST_SCHEDULE_NEXT,
    exit_levels_nb,
    exit_touched_nb,
    exposure_wanted_nb,
    fill_cost_nb,
    size_known_nb,
    state_size,
    target_units_nb,
)


class PortfolioBars(NamedTuple):
    """The clock (int64 ns, (n,)) and (n, K) float64 prices and volume, NaN where no bar."""

    ts: np.ndarray
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray


class PortfolioOrders(NamedTuple):
    """What the strategy asks: (n, K) signed `target` and size `scale` (NaN: unknown), and the
    rebalance `schedule`: sorted int64 clock bars where every symbol is re-sized to its target
    (empty: only on a target change, or every bar where `ExecParams.every_bar`)."""

    target: np.ndarray
    scale: np.ndarray
    schedule: np.ndarray


class PortfolioBuffers(NamedTuple):
    """The caller's outputs: (n, K) units and borrow, (n,) cash and equity, FILL_DTYPE records."""

    units: np.ndarray
    cash: np.ndarray
    equity: np.ndarray
    borrow: np.ndarray
    fills: np.ndarray


@njit
def fresh_portfolio_state_nb(state, initial_cash):
    """Reset `state` (of `state_size(K)`) in place: all cash, no position, nothing pending."""
    state[:] = 0.0
    state[ST_CASH] = initial_cash
    state[ST_PEAK] = initial_cash
    state[ST_HALT_BAR] = -1.0
    n_symbols = (state.shape[0] - ACCOUNT_SIZE) // POSITION_SIZE
    for k in range(n_symbols):
        b = ACCOUNT_SIZE + k * POSITION_SIZE
        state[b + P_ENTRY] = np.nan
        state[b + P_MARK] = np.nan


def new_portfolio_state(initial_cash: float, n_symbols: int) -> np.ndarray:
    """A fresh state vector for `n_symbols` symbols."""
    state = np.empty(state_size(n_symbols), dtype=np.float64)
    fresh_portfolio_state_nb(state, initial_cash)
    return state


def portfolio_buffers(n_bars: int, n_symbols: int, capacity: int) -> PortfolioBuffers:
    """Fresh (uninitialized) output buffers."""
    return PortfolioBuffers(
        np.empty((n_bars, n_symbols)), np.empty(n_bars), np.empty(n_bars),
        np.empty((n_bars, n_symbols)), np.empty(capacity, dtype=FILL_DTYPE),
    )  # fmt: skip


@njit
def _fill_nb(fills, state, b, bar, symbol, units, price, reason, params):
    """Book one fill of `units` of the symbol whose position segment starts at `b`, at
    reference `price`: cash, position, entry and the record. False where the buffer is full."""
    k = int(state[ST_N_FILLS])
    if k >= fills.shape[0]:
        return False
    fill_price, spread_cost, slippage_cost, commission = fill_cost_nb(units, price, params)
    old_units = state[b + P_UNITS]
    new_units = old_units + units
    state[ST_CASH] -= units * fill_price + commission
    if new_units == 0.0:
        state[b + P_ENTRY] = np.nan
    elif old_units == 0.0 or (old_units > 0.0) != (new_units > 0.0):
        state[b + P_ENTRY] = price
    state[b + P_UNITS] = new_units
    rec = fills[k]
    rec["bar"] = bar
    rec["symbol"] = symbol
    rec["units"] = units
    rec["price"] = price
    rec["fill_price"] = fill_price
    rec["spread_cost"] = spread_cost
    rec["slippage_cost"] = slippage_cost
    rec["commission"] = commission
    rec["reason"] = reason
    rec["position_after"] = new_units
    rec["borrow_cum"] = state[b + P_BORROW_CUM]
    state[ST_N_FILLS] = k + 1
    return True


@njit
def _exit_nb(fills, state, b, bar, symbol, price, reason, params):
    """A stop / take-profit exit of the whole position at `price`: flat until the target changes.

    A waiting target change is kept (it was decided before the exit, and fills when it can); a
    waiting re-size of the old position is dropped.
    """
    if not _fill_nb(fills, state, b, bar, symbol, -state[b + P_UNITS], price, reason, params):
        return False
    state[b + P_STOPPED_OUT] = 1.0
    if state[b + P_PENDING] == PENDING_RESIZE:
        state[b + P_PENDING] = PENDING_NONE
        state[b + P_RELEASED] = 0.0
    return True


@njit
def _marked_equity_nb(state, prices, i, n_symbols):
    """cash + Σ units_k * p_k with p_k the symbol's price at bar i, its mark where it has none."""
    equity = state[ST_CASH]
    for k in range(n_symbols):
        b = ACCOUNT_SIZE + k * POSITION_SIZE
        units = state[b + P_UNITS]
        if units != 0.0:
            p = cell(prices, i, k)
            equity += units * (p if p == p else state[b + P_MARK])
    return equity


@njit
def _row_orders_nb(fills, state, bar, n_symbols, target, scale, prices, params):
    """Fill the orders of the symbols whose P_READY flag is set (clearing it):
    each to its target at its price at `bar`, on the equity marked at those prices; sells first,
    then buys, each in symbol order. A target change's order ends a stop's flat spell. Returns
    False where the fill buffer is full."""
    equity = _marked_equity_nb(state, prices, bar, n_symbols)
    gross = 0.0
    if n_symbols > 1:  # one symbol's share of the row is 1: no sum needed
        for k in range(n_symbols):
            p = cell(prices, bar, k)
            if p != p:
                p = state[ACCOUNT_SIZE + k * POSITION_SIZE + P_MARK]
            if p == p:  # listed (a symbol before its first bar wants nothing)
                tgt = cell(target, bar, k)
                if size_known_nb(tgt, cell(scale, bar, k), params):
                    gross += exposure_wanted_nb(tgt, cell(scale, bar, k), p, equity, params)
    capped = gross > params.max_leverage
    for sells in (True, False):
        for k in range(n_symbols):
            b = ACCOUNT_SIZE + k * POSITION_SIZE
            kind = state[b + P_READY]
            if kind == PENDING_NONE:
                continue
            tgt = cell(target, bar, k)
            p = cell(prices, bar, k)
            share = 1.0
            if capped:
                share = exposure_wanted_nb(tgt, cell(scale, bar, k), p, equity, params) / gross
            delta = target_units_nb(tgt, cell(scale, bar, k), p, equity, params, share)
            delta -= state[b + P_UNITS]
            if sells and delta >= 0.0:
                continue  # a buy (or nothing to trade): the second pass
            if delta != 0.0:
                if not _fill_nb(fills, state, b, bar, k, delta, p, Reason.SIGNAL, params):
                    return False
            state[b + P_READY] = PENDING_NONE
            if kind == PENDING_CHANGE:
                state[b + P_STOPPED_OUT] = 0.0
    return True


@njit
def _plus_position_nb(equity, units, mark):
    """`equity` plus a position of `units` marked at `mark` (nothing added for a flat one:
    its mark may be NaN)."""
    return equity + units * mark if units != 0.0 else equity


@njit
def _drawdown_breached_nb(equity, peak, max_drawdown):
    """Whether marked `equity` is `max_drawdown` (a fraction > 0) or more below `peak`."""
    return equity / peak - 1.0 <= -max_drawdown


@njit
def _may_be_quiet_nb(halted, dd_close, pending, units, borrow_rate):
    """Whether the next bar of a single-symbol run may be one on which only the mark can
    happen (the quiet span of `simulate_portfolio_nb`): trading has not halted, no close for
    the drawdown halt and no order waits, and no borrow accrues (not short, or no borrow
    rate). Scalars only: an array argument costs reference counting on every call."""
    return not (
        halted != 0.0 or dd_close != 0.0 or pending != 0.0
        or (units < 0.0 and borrow_rate > 0.0)
    )  # fmt: skip


@njit
def portfolio_inputs_agree_nb(bars, orders, state, out):
    """Whether every array has the clock's length and the symbols' width, and `state` fits."""
    n, n_symbols = bars.close.shape
    same = (n, n_symbols)
    return (
        bars.ts.shape[0] == n and bars.open.shape == same and bars.high.shape == same
        and bars.low.shape == same and bars.volume.shape == same
        and orders.target.shape == same and orders.scale.shape == same
        and out.units.shape == same and out.borrow.shape == same
        and out.cash.shape[0] == n and out.equity.shape[0] == n
        and state.shape[0] == ACCOUNT_SIZE + n_symbols * POSITION_SIZE
    )  # fmt: skip


@njit
def simulate_portfolio_nb(bars, orders, params, state, out, start, stop, one_symbol=None):
    """Run clock bars `[start, stop)` of one portfolio backtest; returns a `dtypes.Status` code.

    `bars` a `PortfolioBars`, `orders` a `PortfolioOrders`, `out` the caller's
    `PortfolioBuffers`, `state` of `rules.state_size(K)` (see the module docstring for the
    steps of a bar). `one_symbol` is None, or True for a single-symbol run whose arrays are 1-D
    (see `kernels/cells.py`): numba then compiles the kernel with K = 1 as a constant and 1-D
    indexing (the loops over symbols fold away), and with a bar on every clock bar (a single
    symbol's data has no missing bars, SPEC §1), so the K = 1 loop drops the missing-bar tests
    and marks at the bar's close directly.
    """
    ts, open_, high, low, close, volume = bars
    target, scale, schedule = orders
    units_out, cash_out, equity_out, borrow_out, fills = out
    n = close.shape[0]
    # a compile-time branch: numba prunes `is None` on the argument's type
    if one_symbol is None:
        if not portfolio_inputs_agree_nb(bars, orders, state, out):
            return Status.BAD_INPUT
        n_symbols = close.shape[1]
    else:  # a single-symbol caller (`simulate_one_nb`) checks its 1-D shapes itself
        n_symbols = 1
    scheduled = schedule.shape[0] > 0
    has_exits = params.stop_loss > 0.0 or params.take_profit > 0.0
    fill_at_open = params.fill_at == FillAt.OPEN
    # (start >= 0: the quiet loop indexes unsigned; a negative start wraps as NumPy's, below)
    quiet_possible = not scheduled and not params.every_bar and start >= 0
    last_quiet = min(stop, n - 1)  # the last bar of the data closes out: never quiet
    check_peak = params.max_drawdown > 0.0
    i = start
    while i < stop:
        # Bars on which nothing can happen but the mark go through a short loop here (the
        # steps below would write the same); the bar that ends the span, if any, goes through
        # the steps. Only for one symbol (nested: numba prunes the branch on the argument's
        # type only where `is None` stands alone). See `_may_be_quiet_nb`.
        if one_symbol is not None:
            b = ACCOUNT_SIZE
            units = state[b + P_UNITS]
            if quiet_possible and _may_be_quiet_nb(
                state[ST_HALTED], state[b + P_DD_CLOSE], state[b + P_PENDING], units,
                params.borrow_rate_annual,
            ):  # fmt: skip
                prev, cash, peak = state[b + P_PREV_TARGET], state[ST_CASH], state[ST_PEAK]
                # a live stop / take-profit (NaN: off, or flat) ends the span at a bar whose
                # open or range touches it
                live = has_exits and units != 0.0
                stop_level, take_level, side = np.nan, np.nan, 1.0
                if live:
                    stop_level, take_level = exit_levels_nb(units, state[b + P_ENTRY], params)
                    if units < 0.0:  # mirrored: a short's stop is above, its take-profit below
                        stop_level, take_level, side = -stop_level, -take_level, -1.0
                first = i
                # indexed by an unsigned copy of i: no wrap-around test per access (~20% here)
                while i < last_quiet and target[np.uint64(i)] == prev:
                    u = np.uint64(i)
                    if live:
                        o = side * open_[u]
                        lo = min(o, side * (low[u] if side > 0.0 else high[u]))
                        hi = max(o, side * (high[u] if side > 0.0 else low[u]))
                        if lo <= stop_level or hi >= take_level:
                            break
                    equity = _plus_position_nb(cash, units, close[u])
                    if equity <= 0.0:
                        break  # ruin: the steps below close the position
                    if check_peak:
                        if equity > peak:
                            peak = equity  # the steps below raise it to the same value
                        if _drawdown_breached_nb(equity, peak, params.max_drawdown):
                            break
                    borrow_out[u] = 0.0
                    units_out[u] = units
                    cash_out[u] = cash
                    equity_out[u] = equity
                    i += 1
                state[ST_PEAK] = peak
                if i > first:
                    state[b + P_MARK] = close[i - 1]
                if i >= stop:
                    break
        halted = state[ST_HALTED] != 0.0
        # Is every symbol re-sized to its target on this bar: every bar, on the schedule, or
        # where the target row changed (a listed symbol's target differs from its last one)?
        resize = params.every_bar
        on_schedule = False
        if scheduled:
            nxt = int(state[ST_SCHEDULE_NEXT])
            while nxt < schedule.shape[0] and schedule[nxt] < i:
                nxt += 1
            if nxt < schedule.shape[0] and schedule[nxt] == i:
                resize = on_schedule = True
                nxt += 1
            state[ST_SCHEDULE_NEXT] = nxt
        # On a calendar schedule a target change waits for the next schedule bar (where every
        # symbol is re-sized anyway); otherwise a changed row re-sizes every symbol now.
        if not halted and not resize and not scheduled and n_symbols > 1:
            for k in range(n_symbols):
                b = ACCOUNT_SIZE + k * POSITION_SIZE
                listed = (
                    cell(close, i, k) == cell(close, i, k) or state[b + P_MARK] == state[b + P_MARK]
                )
                if (cell(target, i, k) if listed else 0.0) != state[b + P_PREV_TARGET]:
                    resize = True
                    break
        any_ready = False
        # The loops over symbols are fused where the steps of one symbol do not read another's
        # (a loop per step and bar costs as much as the step for one symbol).
        for k in range(n_symbols):
            b = ACCOUNT_SIZE + k * POSITION_SIZE
            o = cell(open_, i, k)
            has_bar = one_symbol is not None or o == o  # one symbol: a bar on every clock bar
            # 1. Open step: a halt decided at the last close, or an exit level the open gaps
            # through.
            if has_bar and state[b + P_DD_CLOSE] != 0.0:
                state[b + P_DD_CLOSE] = 0.0
                if state[b + P_UNITS] != 0.0:
                    units = -state[b + P_UNITS]
                    if not _fill_nb(fills, state, b, i, k, units, o, Reason.MAX_DRAWDOWN, params):
                        return Status.FILLS_FULL
            elif has_bar and has_exits and state[b + P_UNITS] != 0.0:
                reason, _level = exit_touched_nb(
                    state[b + P_UNITS], state[b + P_ENTRY], o, o, params
                )
                if reason >= 0:
                    if not _exit_nb(fills, state, b, i, k, o, reason, params):
                        return Status.FILLS_FULL
            # 2. Order step: where the target changed, or the row is re-sized, or an order
            # waits. It waits on a bar without volume, without a bar or without a known size,
            # then reads the target then current; a target change ends a stop's flat spell.
            if halted:
                continue
            tgt = cell(target, i, k)
            if not has_bar and state[b + P_MARK] != state[b + P_MARK]:
                tgt = 0.0  # not listed yet: a symbol before its first bar wants nothing
            if tgt != state[b + P_PREV_TARGET]:
                state[b + P_PENDING] = PENDING_CHANGE
            elif resize and state[b + P_STOPPED_OUT] == 0.0 and state[b + P_PENDING] == 0.0:
                state[b + P_PENDING] = PENDING_RESIZE
            state[b + P_PREV_TARGET] = tgt
            pending = state[b + P_PENDING]
            if scheduled and on_schedule and pending != PENDING_NONE:
                state[b + P_RELEASED] = 1.0  # this order may fill from this bar on
            if (
                pending != PENDING_NONE
                and (not scheduled or state[b + P_RELEASED] != 0.0)
                and has_bar
                and not (
                    (params.skip_zero_volume and cell(volume, i, k) == 0.0)
                    or not size_known_nb(tgt, cell(scale, i, k), params)
                )
            ):
                state[b + P_PENDING] = PENDING_NONE
                state[b + P_RELEASED] = 0.0
                state[b + P_READY] = pending
                any_ready = True
        if any_ready and fill_at_open:
            if not _row_orders_nb(fills, state, i, n_symbols, target, scale, open_, params):
                return Status.FILLS_FULL
            any_ready = False
        # 3. Intrabar step: a stop / take-profit level inside the bar's range exits there; then
        # the symbol's mark, and borrow for a short held over the bar (at the mark).
        for k in range(n_symbols):
            b = ACCOUNT_SIZE + k * POSITION_SIZE
            c = cell(close, i, k)
            if one_symbol is not None or c == c:
                units = state[b + P_UNITS]
                if has_exits and units != 0.0:
                    reason, level = exit_touched_nb(
                        units, state[b + P_ENTRY], cell(low, i, k), cell(high, i, k), params
                    )
                    if reason >= 0:
                        if not _exit_nb(fills, state, b, i, k, level, reason, params):
                            return Status.FILLS_FULL
                state[b + P_MARK] = c
            borrow = 0.0
            units = state[b + P_UNITS]
            if units < 0.0 and i > 0 and params.borrow_rate_annual > 0.0:
                mark = c if one_symbol is not None else state[b + P_MARK]
                dt = float(ts[i] - ts[i - 1])
                borrow = -units * mark * params.borrow_rate_annual * dt / NS_PER_YEAR_365
                state[ST_CASH] -= borrow
                state[ST_BORROW_CUM] += borrow
                state[b + P_BORROW_CUM] += borrow
            set_cell(borrow_out, i, k, borrow)
        # 4. Close step: the orders placed for the close (also after a stop on this bar: they
        # were placed first), the end exit, the equity mark, ruin and the max-drawdown halt.
        if any_ready:
            if not _row_orders_nb(fills, state, i, n_symbols, target, scale, close, params):
                return Status.FILLS_FULL
        if i == n - 1 and params.close_at_end:
            for k in range(n_symbols):
                b = ACCOUNT_SIZE + k * POSITION_SIZE
                if state[b + P_UNITS] != 0.0:
                    units = -state[b + P_UNITS]
                    mark = state[b + P_MARK]
                    if not _fill_nb(fills, state, b, i, k, units, mark, Reason.END, params):
                        return Status.FILLS_FULL
        equity = state[ST_CASH]
        for k in range(n_symbols):
            units = state[ACCOUNT_SIZE + k * POSITION_SIZE + P_UNITS]
            set_cell(units_out, i, k, units)
            if one_symbol is not None:  # its mark is this bar's close
                equity = _plus_position_nb(equity, units, cell(close, i, k))
            else:
                equity = _plus_position_nb(
                    equity, units, state[ACCOUNT_SIZE + k * POSITION_SIZE + P_MARK]
                )
        if equity <= 0.0 and (int(state[ST_FLAGS]) & Flag.RUINED) == 0:
            for k in range(n_symbols):
                b = ACCOUNT_SIZE + k * POSITION_SIZE
                state[b + P_DD_CLOSE] = 0.0
                if state[b + P_UNITS] != 0.0:
                    units = -state[b + P_UNITS]
                    mark = state[b + P_MARK]
                    if not _fill_nb(fills, state, b, i, k, units, mark, Reason.RUIN, params):
                        return Status.FILLS_FULL
                    set_cell(units_out, i, k, 0.0)
                    equity = state[ST_CASH]
            state[ST_HALTED] = 1.0
            state[ST_HALT_BAR] = i
            state[ST_FLAGS] = float(int(state[ST_FLAGS]) | Flag.RUINED)
        elif params.max_drawdown > 0.0 and state[ST_HALTED] == 0.0:
            if equity > state[ST_PEAK]:
                state[ST_PEAK] = equity
            if _drawdown_breached_nb(equity, state[ST_PEAK], params.max_drawdown):
                state[ST_HALTED] = 1.0
                state[ST_HALT_BAR] = i
                state[ST_FLAGS] = float(int(state[ST_FLAGS]) | Flag.HALTED_MAX_DRAWDOWN)
                for k in range(n_symbols):
                    b = ACCOUNT_SIZE + k * POSITION_SIZE
                    if state[b + P_UNITS] != 0.0:
                        state[b + P_DD_CLOSE] = 1.0
        cash_out[i] = state[ST_CASH]
        equity_out[i] = equity
        i += 1
    return Status.OK


@njit
def simulate_one_nb(bars, orders, params, state, out, start, stop):
    """`simulate_portfolio_nb` of one symbol whose arrays are 1-D (shapes checked by the
    caller): compiled with K = 1 as a constant."""
    return simulate_portfolio_nb(bars, orders, params, state, out, start, stop, True)


@njit
def simulate_portfolio_all_nb(bars, orders, params, state, out):
    """`simulate_portfolio_nb` over every clock bar from a fresh state (reset in `state`)."""
    fresh_portfolio_state_nb(state, params.initial_cash)
    return simulate_portfolio_nb(bars, orders, params, state, out, 0, bars.close.shape[0], None)
