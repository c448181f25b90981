"""The per-bar execution kernel (SPEC §3): orders, fills, costs, stops, borrow, halts.

`simulate_nb` runs bars `[start, stop)` and keeps every scalar of its state in `state`, so a
caller may run a long series in chunks (to report progress or cancel between them) and get
bit-identical results to one call over all bars. Every buffer comes from the caller (no kernel
allocates); the kernel reports problems with a status code instead of raising. The plain-Python
`simulate` allocates and runs it; `with_fill_retry` is the one fill-buffer policy of every caller.

`simulate_nb(bars, orders, params, state, out, start, stop)` takes its inputs grouped:
`BarInputs` (timestamps and prices), `OrderInputs` (target and size scale), `ExecParams`
(settings) and `SimBuffers` (outputs). Its loop is four steps per bar (open, order, intrabar,
close), written out in the loop body rather than called: numba reference-counts the arrays a
call passes (state, fills), which cost ~5x the kernel's time per bar even with the calls
inlined, so the shared rules are scalar functions instead: one, `exit_levels_nb` (through
`exit_touched_nb`), gives the stop / take-profit levels of a position to both the open-gap and
the intrabar exit; `_fill_nb`, `_order_nb` and `_exit_nb` book the (rare) fills.

A second axis (symbols in one cash account) is planned as an extension, not a rewrite: the
state vector is an account segment (`ST_CASH` .. `ST_HALT_BAR`) then a position segment
(`P_*` offsets); a portfolio's state is the account segment followed by one position segment
per symbol, the bar inputs and per-bar outputs gain a symbol axis, and the open / order /
intrabar steps run per symbol (reading and writing that symbol's segment, the position fields
offset by `ACCOUNT_SIZE + s * POSITION_SIZE`) before the close step marks the account. Nothing
of that is built yet.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np

from ._jit import njit
from .dtypes import FILL_DTYPE, FillAt, Flag, Reason, Sizing, Status, status_message

NS_PER_YEAR_365 = 365.0 * 86_400.0 * 1e9

# The float64 state vector: account fields, then the fields of the one position. A portfolio
# (a symbol axis) extends it without a rewrite: the account segment once, then one position
# segment of POSITION_SIZE per symbol (position field f of symbol s at
# ACCOUNT_SIZE + s * POSITION_SIZE + f, i.e. a (symbols, POSITION_SIZE) block after the account
# row), with the steps below run per symbol against the one account.
# Account: money, the equity path's facts, the fill count and the halts.
ST_CASH = 0
ST_PEAK = 1  # highest marked equity so far (starts at the initial cash)
ST_BORROW_CUM = 2
ST_N_FILLS = 3
ST_FLAGS = 4  # bit set of dtypes.Flag
ST_HALTED = 5  # 1.0 once trading has halted (ruin or max drawdown)
ST_DD_CLOSE_PENDING = 6  # 1.0: max drawdown reached, close every position at the next bar's open
ST_HALT_BAR = 7
ACCOUNT_SIZE = 8
# Position (per symbol): what is held, how it was entered, and its order flow.
P_UNITS = 0
P_ENTRY = 1  # reference price of the fill that opened the position or flipped its side
P_PREV_TARGET = 2
P_STOPPED_OUT = 3  # 1.0: after a stop / take-profit, until a target change's order fills
P_PENDING = 4  # a PENDING_* code: an order waits for a bar with volume and a known size
POSITION_SIZE = 5
ST_UNITS = ACCOUNT_SIZE + P_UNITS
ST_ENTRY = ACCOUNT_SIZE + P_ENTRY
ST_PREV_TARGET = ACCOUNT_SIZE + P_PREV_TARGET
ST_STOPPED_OUT = ACCOUNT_SIZE + P_STOPPED_OUT
ST_PENDING = ACCOUNT_SIZE + P_PENDING
STATE_SIZE = ACCOUNT_SIZE + POSITION_SIZE

# What a waiting order (ST_PENDING) carries. A target change survives a stop or take-profit exit
# (it was decided before it); an every-bar re-size of an unchanged target does not.
PENDING_NONE = 0.0
PENDING_RESIZE = 1.0
PENDING_CHANGE = 2.0


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


class ExecParams(NamedTuple):
    """Scalar settings of one simulation; a NamedTuple so numba passes it as one argument.

    Cost settings are in basis points; `stop_loss`, `take_profit` and `max_drawdown` are
    fractions where 0 means "off".
    """

    initial_cash: float = 100_000.0
    fill_at: int = FillAt.OPEN
    every_bar: bool = False
    sizing: int = Sizing.FRACTION
    unit_size: float = 1.0
    max_leverage: float = 1.0
    lot_size: float = 0.0
    spread_bps: float = 0.0
    slippage_bps: float = 0.0
    commission_bps: float = 0.0
    commission_fixed: float = 0.0
    commission_min: float = 0.0
    borrow_rate_annual: float = 0.0
    skip_zero_volume: bool = True
    stop_loss: float = 0.0
    take_profit: float = 0.0
    max_drawdown: float = 0.0
    close_at_end: bool = True


@njit
def fresh_state_nb(state, initial_cash):
    """Reset `state` in place to what `new_state(initial_cash)` returns."""
    state[:] = 0.0
    state[ST_CASH] = initial_cash
    state[ST_ENTRY] = np.nan
    state[ST_PEAK] = initial_cash
    state[ST_HALT_BAR] = -1.0


def new_state(initial_cash: float) -> np.ndarray:
    """A fresh state vector: all cash, no position, nothing pending."""
    state = np.empty(STATE_SIZE, dtype=np.float64)
    fresh_state_nb(state, initial_cash)
    return state


def fill_capacity(n_bars: int) -> int:
    """Fills one run can produce at most: gap exit, order and intrabar exit per bar, plus the end."""
    return 3 * n_bars + 2


def first_fill_capacity(n_bars: int) -> int:
    """The fill buffer a run starts with: enough for nearly every strategy; a run that fills it
    (status FILLS_FULL) is repeated with `fill_capacity(n_bars)`, which never overflows."""
    return min(fill_capacity(n_bars), max(1024, n_bars // 8))


def with_fill_retry(n_bars: int, run: Callable[[int], Any]) -> Any:
    """The one fill-buffer policy of every caller of the execution kernel.

    `run(capacity)` does the work with fill buffers of `capacity` records and returns its status:
    one `Status` code, or an array of them for a batch (where a second call re-does only the
    items that ran out). It runs with `first_fill_capacity(n_bars)`; where a status is
    FILLS_FULL, once more with `fill_capacity(n_bars)`, the bound no run exceeds.
    """
    status = run(first_fill_capacity(n_bars))
    if np.any(np.asarray(status) == Status.FILLS_FULL):
        status = run(fill_capacity(n_bars))
    return status


@njit
def fill_cost_nb(units, price, params):
    """Fill price and cost parts of trading `units` (signed) at reference `price`.

    Returns `(fill_price, spread_cost, slippage_cost, commission)`; a buy pays up, a sell
    receives less: `fill_price = price * (1 ± (spread_bps/2 + slippage_bps) / 1e4)`.
    """
    side = 1.0 if units > 0.0 else -1.0
    abs_units = abs(units)
    fill_price = price * (1.0 + side * (params.spread_bps / 2.0 + params.slippage_bps) / 1e4)
    spread_cost = abs_units * price * (params.spread_bps / 2.0) / 1e4
    slippage_cost = abs_units * price * params.slippage_bps / 1e4
    commission = params.commission_bps / 1e4 * abs_units * fill_price + params.commission_fixed
    if commission < params.commission_min:
        commission = params.commission_min
    return fill_price, spread_cost, slippage_cost, commission


@njit
def _fill_nb(fills, state, bar, units, price, reason, params):
    """Book one fill of `units` at reference `price`: cash, position, entry and the record.

    Returns False where the fill buffer is full (nothing is booked then).
    """
    k = int(state[ST_N_FILLS])
    if k >= fills.shape[0]:
        return False
    fill_price, spread_cost, slippage_cost, commission = fill_cost_nb(units, price, params)
    old_units = state[ST_UNITS]
    new_units = old_units + units
    state[ST_CASH] -= units * fill_price + commission
    if new_units == 0.0:
        state[ST_ENTRY] = np.nan
    elif old_units == 0.0 or (old_units > 0.0) != (new_units > 0.0):
        state[ST_ENTRY] = price
    state[ST_UNITS] = new_units
    rec = fills[k]
    rec["bar"] = bar
    rec["units"] = units
    rec["price"] = price
    rec["fill_price"] = fill_price
    rec["spread_cost"] = spread_cost
    rec["slippage_cost"] = slippage_cost
    rec["commission"] = commission
    rec["reason"] = reason
    rec["position_after"] = new_units
    rec["borrow_cum"] = state[ST_BORROW_CUM]
    state[ST_N_FILLS] = k + 1
    return True


@njit
def target_units_nb(target, scale, price, equity, params):
    """Units wanted for `target` at reference `price` with `equity` marked at that price.

    Sized by equity fraction (times `scale`, the vol-target multiplier) or by a fixed unit
    count, clipped to `max_leverage`, rounded toward zero to `lot_size` where it is > 0.
    """
    if equity <= 0.0 or price <= 0.0 or target == 0.0:
        return 0.0  # flat needs no scale (it may be unknown: NaN)
    if params.sizing == Sizing.UNITS:
        wanted = target * params.unit_size
    else:
        wanted = target * scale * equity / price
    limit = params.max_leverage * equity / price
    if wanted > limit:
        wanted = limit
    elif wanted < -limit:
        wanted = -limit
    if params.lot_size > 0.0:
        wanted = math.trunc(wanted / params.lot_size) * params.lot_size
    return wanted


@njit
def size_known_nb(target, scale, params):
    """Whether `target_units_nb` can size `target`: False only where the size needs a scale
    that is still unknown (NaN, the vol-target warm-up); such an order waits."""
    return params.sizing == Sizing.UNITS or target == 0.0 or not math.isnan(scale)


@njit
def _order_nb(fills, state, bar, target, scale, price, params):
    """Trade from the current position to the units `target` asks for at `price`."""
    units = state[ST_UNITS]
    equity = state[ST_CASH] + units * price
    delta = target_units_nb(target, scale, price, equity, params) - units
    if delta == 0.0:
        return True
    return _fill_nb(fills, state, bar, delta, price, Reason.SIGNAL, params)


@njit
def exit_levels_nb(units, entry, params):
    """`(stop_level, take_level)` of a position of `units` (signed, != 0) entered at `entry`:
    below / above the entry for a long, mirrored for a short; NaN where the rule is off."""
    side = 1.0 if units > 0.0 else -1.0
    stop_level = entry * (1.0 - side * params.stop_loss) if params.stop_loss > 0.0 else math.nan
    take_level = entry * (1.0 + side * params.take_profit) if params.take_profit > 0.0 else math.nan
    return stop_level, take_level


@njit
def exit_touched_nb(units, entry, low, high, params):
    """`(reason, level)` of the exit level a price range `[low, high]` touches, the stop first
    where both are; reason -1 where none is. The open gap passes `low = high = open`."""
    stop_level, take_level = exit_levels_nb(units, entry, params)
    if units > 0.0:
        if low <= stop_level:
            return Reason.STOP_LOSS, stop_level
        if high >= take_level:
            return Reason.TAKE_PROFIT, take_level
    else:
        if high >= stop_level:
            return Reason.STOP_LOSS, stop_level
        if low <= take_level:
            return Reason.TAKE_PROFIT, take_level
    return -1, 0.0


@njit
def _exit_nb(fills, state, bar, price, reason, params):
    """A stop / take-profit exit of the whole position at `price`: flat until the target changes.

    A waiting target change is kept (it was decided before the exit, and fills when it can); a
    waiting every-bar re-size of the old position is dropped.
    """
    if not _fill_nb(fills, state, bar, -state[ST_UNITS], price, reason, params):
        return False
    state[ST_STOPPED_OUT] = 1.0
    if state[ST_PENDING] == PENDING_RESIZE:
        state[ST_PENDING] = PENDING_NONE
    return True


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
    """Run bars `[start, stop)` of one backtest; returns a `dtypes.Status` code.

    `bars` is a `BarInputs`, `orders` an `OrderInputs`, `out` the caller's `SimBuffers`. Per bar
    (SPEC §3): (1) a max-drawdown close or a stop/take-profit gap exits at the open; (2) a
    changed target (or every bar) sends an order, filled now at the open or at the close,
    deferred past zero-volume bars and past bars whose size scale is unknown (NaN); (3)
    stop-loss / take-profit levels touched by the bar's range exit there, the stop first where
    both are touched, keeping a waiting target change; (4) close fills, borrow on a short held
    over the bar, the end-of-data exit, marking, ruin and max-drawdown checks.
    """
    if not inputs_agree_nb(bars, orders, state, out):
        return Status.BAD_INPUT
    ts, open_, high, low, close, volume = bars
    target, scale = orders
    units_out, cash_out, equity_out, borrow_out, fills = out
    n = close.shape[0]
    has_exits = params.stop_loss > 0.0 or params.take_profit > 0.0
    fill_at_open = params.fill_at == FillAt.OPEN
    # The steps are written out in the loop, not called: a call per step and bar costs reference
    # counting on its array arguments (state, fills), several times the work of the bar itself
    # (measured ~5x on the 10M-bar benchmark, inlined calls included).
    for i in range(start, stop):
        tgt = target[i]
        # 1. Open step: a halt decided at the last close, or an exit level the open gaps through.
        if state[ST_DD_CLOSE_PENDING] != 0.0:
            state[ST_DD_CLOSE_PENDING] = 0.0
            if state[ST_UNITS] != 0.0:
                if not _fill_nb(
                    fills, state, i, -state[ST_UNITS], open_[i], Reason.MAX_DRAWDOWN, params
                ):
                    return Status.FILLS_FULL
        elif has_exits and state[ST_UNITS] != 0.0:
            o = open_[i]
            reason, _level = exit_touched_nb(state[ST_UNITS], state[ST_ENTRY], o, o, params)
            if reason >= 0:
                if not _exit_nb(fills, state, i, o, reason, params):
                    return Status.FILLS_FULL
        # 2. Order step: where the target changed (or every bar, unless stopped out), or one
        # waits. It waits on a bar without volume or without a known size, then reads the
        # target then current; a target change ends a stop's flat spell once its order fills.
        order_at_close = PENDING_NONE
        if state[ST_HALTED] == 0.0:
            if tgt != state[ST_PREV_TARGET]:
                state[ST_PENDING] = PENDING_CHANGE
            elif params.every_bar and state[ST_STOPPED_OUT] == 0.0 and state[ST_PENDING] == 0.0:
                state[ST_PENDING] = PENDING_RESIZE
            pending = state[ST_PENDING]
            if pending != PENDING_NONE and not (
                (params.skip_zero_volume and volume[i] == 0.0)
                or not size_known_nb(tgt, scale[i], params)
            ):
                state[ST_PENDING] = PENDING_NONE
                if fill_at_open:
                    if not _order_nb(fills, state, i, tgt, scale[i], open_[i], params):
                        return Status.FILLS_FULL
                    if pending == PENDING_CHANGE:
                        state[ST_STOPPED_OUT] = 0.0
                else:
                    order_at_close = pending
        state[ST_PREV_TARGET] = tgt
        # 3. Intrabar step: a stop / take-profit level inside the bar's range exits there.
        if has_exits and state[ST_UNITS] != 0.0:
            reason, level = exit_touched_nb(
                state[ST_UNITS], state[ST_ENTRY], low[i], high[i], params
            )
            if reason >= 0:
                if not _exit_nb(fills, state, i, level, reason, params):
                    return Status.FILLS_FULL
        # 4. Close step: borrow for a short held over the bar, the order placed for the close
        # (also after a stop on this bar: it was placed first), the end exit, mark, checks.
        borrow = 0.0
        units = state[ST_UNITS]
        if units < 0.0 and i > 0 and params.borrow_rate_annual > 0.0:
            dt = float(ts[i] - ts[i - 1])
            borrow = -units * close[i] * params.borrow_rate_annual * dt / NS_PER_YEAR_365
            state[ST_CASH] -= borrow
            state[ST_BORROW_CUM] += borrow
        borrow_out[i] = borrow
        if order_at_close != PENDING_NONE:
            if not _order_nb(fills, state, i, tgt, scale[i], close[i], params):
                return Status.FILLS_FULL
            if order_at_close == PENDING_CHANGE:
                state[ST_STOPPED_OUT] = 0.0
        if i == n - 1 and params.close_at_end and state[ST_UNITS] != 0.0:
            if not _fill_nb(fills, state, i, -state[ST_UNITS], close[i], Reason.END, params):
                return Status.FILLS_FULL
        equity = state[ST_CASH] + state[ST_UNITS] * close[i]
        if equity <= 0.0 and (int(state[ST_FLAGS]) & Flag.RUINED) == 0:
            if state[ST_UNITS] != 0.0:
                if not _fill_nb(fills, state, i, -state[ST_UNITS], close[i], Reason.RUIN, params):
                    return Status.FILLS_FULL
                equity = state[ST_CASH]
            state[ST_HALTED] = 1.0
            state[ST_DD_CLOSE_PENDING] = 0.0
            state[ST_HALT_BAR] = i
            state[ST_FLAGS] = float(int(state[ST_FLAGS]) | Flag.RUINED)
        elif params.max_drawdown > 0.0 and state[ST_HALTED] == 0.0:
            if equity > state[ST_PEAK]:
                state[ST_PEAK] = equity
            if equity / state[ST_PEAK] - 1.0 <= -params.max_drawdown:
                state[ST_HALTED] = 1.0
                state[ST_HALT_BAR] = i
                state[ST_FLAGS] = float(int(state[ST_FLAGS]) | Flag.HALTED_MAX_DRAWDOWN)
                if state[ST_UNITS] != 0.0:
                    state[ST_DD_CLOSE_PENDING] = 1.0
        units_out[i] = state[ST_UNITS]
        cash_out[i] = state[ST_CASH]
        equity_out[i] = equity
    return Status.OK


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
