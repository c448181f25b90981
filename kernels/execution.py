"""The per-bar execution kernel (SPEC §3): orders, fills, costs, stops, borrow, halts.

`simulate_nb` runs bars `[start, stop)` and keeps every scalar of its state in `state`, so a
caller may run a long series in chunks (to report progress or cancel between them) and get
bit-identical results to one call over all bars. Outputs are preallocated by the caller; the
kernel reports problems with a status code instead of raising.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from ._jit import njit
from .dtypes import FILL_DTYPE, FillAt, Flag, Reason, Sizing, Status

NS_PER_YEAR_365 = 365.0 * 86_400.0 * 1e9

# Indices into the float64 state vector.
ST_CASH = 0
ST_UNITS = 1
ST_ENTRY = 2  # reference price of the fill that opened the position or flipped its side
ST_PEAK = 3  # highest marked equity so far (starts at the initial cash)
ST_BORROW_CUM = 4
ST_PREV_TARGET = 5
ST_N_FILLS = 6
ST_FLAGS = 7  # bit set of dtypes.Flag
ST_HALTED = 8  # 1.0 once trading has halted (ruin or max drawdown)
ST_DD_CLOSE_PENDING = 9  # 1.0: max drawdown reached, close at the next bar's open
ST_STOPPED_OUT = 10  # 1.0: after a stop / take-profit, until a target change's order fills
ST_PENDING = 11  # a PENDING_* code: an order waits for a bar with volume and a known size
ST_HALT_BAR = 12
STATE_SIZE = 13

# What a waiting order (ST_PENDING) carries. A target change survives a stop or take-profit exit
# (it was decided before it); an every-bar re-size of an unchanged target does not.
PENDING_NONE = 0.0
PENDING_RESIZE = 1.0
PENDING_CHANGE = 2.0


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


def new_state(initial_cash: float) -> np.ndarray:
    """A fresh state vector: all cash, no position, nothing pending."""
    state = np.zeros(STATE_SIZE, dtype=np.float64)
    state[ST_CASH] = initial_cash
    state[ST_ENTRY] = np.nan
    state[ST_PEAK] = initial_cash
    state[ST_HALT_BAR] = -1.0
    return state


@njit
def fresh_state_nb(state, initial_cash):
    """Reset `state` in place to what `new_state(initial_cash)` returns."""
    state[:] = 0.0
    state[ST_CASH] = initial_cash
    state[ST_ENTRY] = np.nan
    state[ST_PEAK] = initial_cash
    state[ST_HALT_BAR] = -1.0


@njit
def fill_capacity(n_bars):
    """Fills one run can produce at most: gap exit, order and intrabar exit per bar, plus the end."""
    return 3 * n_bars + 2


@njit
def first_fill_capacity(n_bars):
    """The fill buffer a run starts with: enough for nearly every strategy; a run that fills it
    (status FILLS_FULL) is repeated with `fill_capacity(n_bars)`, which never overflows."""
    return min(fill_capacity(n_bars), max(1024, n_bars // 8))


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
def _exit_reason_at_open_nb(units, entry, open_price, params):
    """Stop / take-profit level that the open gaps through, as a Reason, or -1."""
    if units > 0.0:
        if params.stop_loss > 0.0 and open_price <= entry * (1.0 - params.stop_loss):
            return Reason.STOP_LOSS
        if params.take_profit > 0.0 and open_price >= entry * (1.0 + params.take_profit):
            return Reason.TAKE_PROFIT
    else:
        if params.stop_loss > 0.0 and open_price >= entry * (1.0 + params.stop_loss):
            return Reason.STOP_LOSS
        if params.take_profit > 0.0 and open_price <= entry * (1.0 - params.take_profit):
            return Reason.TAKE_PROFIT
    return -1


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
def simulate_nb(
    ts_ns, open_, high, low, close, volume, target, scale, params, state, fills,
    units_out, cash_out, equity_out, borrow_out, start, stop,
):  # fmt: skip
    """Run bars `[start, stop)` of one backtest; returns a `dtypes.Status` code.

    Per bar (SPEC §3): (1) a max-drawdown close or a stop/take-profit gap exits at the open;
    (2) a changed target (or every bar) sends an order, filled now at the open or at the
    close, deferred past zero-volume bars and past bars whose size scale is unknown (NaN);
    (3) stop-loss / take-profit levels touched by the bar's range exit there, the stop first
    where both are touched, keeping a waiting target change; (4) close fills, borrow on a
    short held over the bar, the end-of-data exit, marking, ruin and max-drawdown checks.
    """
    n = close.shape[0]
    if (
        open_.shape[0] != n or high.shape[0] != n or low.shape[0] != n or volume.shape[0] != n
        or ts_ns.shape[0] != n or target.shape[0] != n or scale.shape[0] != n
        or units_out.shape[0] != n or cash_out.shape[0] != n or equity_out.shape[0] != n
        or borrow_out.shape[0] != n or state.shape[0] != STATE_SIZE
    ):  # fmt: skip
        return Status.BAD_INPUT
    has_exits = params.stop_loss > 0.0 or params.take_profit > 0.0
    fill_at_open = params.fill_at == FillAt.OPEN
    for i in range(start, stop):
        tgt = target[i]
        # 1. Open: a halt decided at the last close, or an exit level the open gaps through.
        if state[ST_DD_CLOSE_PENDING] != 0.0:
            state[ST_DD_CLOSE_PENDING] = 0.0
            if state[ST_UNITS] != 0.0:
                if not _fill_nb(
                    fills, state, i, -state[ST_UNITS], open_[i], Reason.MAX_DRAWDOWN, params
                ):
                    return Status.FILLS_FULL
        elif has_exits and state[ST_UNITS] != 0.0:
            reason = _exit_reason_at_open_nb(state[ST_UNITS], state[ST_ENTRY], open_[i], params)
            if reason >= 0:
                if not _exit_nb(fills, state, i, open_[i], reason, params):
                    return Status.FILLS_FULL
        # 2. Order: where the target changed (or every bar, unless stopped out), or one waits.
        # It waits on a bar without volume or without a known size, then reads the target then
        # current; a target change ends a stop's flat spell once its order fills.
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
        # 3. Intrabar: stop / take-profit levels inside the bar's range.
        units = state[ST_UNITS]
        if has_exits and units != 0.0:
            entry = state[ST_ENTRY]
            reason = -1
            level = 0.0
            if units > 0.0:
                if params.stop_loss > 0.0 and low[i] <= entry * (1.0 - params.stop_loss):
                    reason = Reason.STOP_LOSS
                    level = entry * (1.0 - params.stop_loss)
                elif params.take_profit > 0.0 and high[i] >= entry * (1.0 + params.take_profit):
                    reason = Reason.TAKE_PROFIT
                    level = entry * (1.0 + params.take_profit)
            else:
                if params.stop_loss > 0.0 and high[i] >= entry * (1.0 + params.stop_loss):
                    reason = Reason.STOP_LOSS
                    level = entry * (1.0 + params.stop_loss)
                elif params.take_profit > 0.0 and low[i] <= entry * (1.0 - params.take_profit):
                    reason = Reason.TAKE_PROFIT
                    level = entry * (1.0 - params.take_profit)
            if reason >= 0:
                if not _exit_nb(fills, state, i, level, reason, params):
                    return Status.FILLS_FULL
        # 4. Close: borrow for a short held over the bar, close fills, end exit, mark, checks.
        borrow = 0.0
        units = state[ST_UNITS]
        if units < 0.0 and i > 0 and params.borrow_rate_annual > 0.0:
            dt = float(ts_ns[i] - ts_ns[i - 1])
            borrow = -units * close[i] * params.borrow_rate_annual * dt / NS_PER_YEAR_365
            state[ST_CASH] -= borrow
            state[ST_BORROW_CUM] += borrow
        borrow_out[i] = borrow
        if order_at_close != PENDING_NONE:  # also after a stop on this bar: it was placed first
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
def simulate_fresh_nb(
    ts, open_, high, low, close, volume, target, scale, params, state, fills,
    units, cash, equity, borrow,
):  # fmt: skip
    """One simulation from a fresh state over all bars. Returns `(status, fills)`: where the
    first fill buffer is too small the run is repeated with one of `fill_capacity(n)` records
    (the bound), as `pipeline.simulate_chunked` does."""
    n = close.shape[0]
    fresh_state_nb(state, params.initial_cash)
    status = simulate_nb(
        ts, open_, high, low, close, volume, target, scale, params, state, fills,
        units, cash, equity, borrow, 0, n,
    )  # fmt: skip
    if status == Status.FILLS_FULL:
        fills = np.empty(fill_capacity(n), dtype=FILL_DTYPE)
        fresh_state_nb(state, params.initial_cash)
        status = simulate_nb(
            ts, open_, high, low, close, volume, target, scale, params, state, fills,
            units, cash, equity, borrow, 0, n,
        )  # fmt: skip
    return status, fills


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
    arrays = [
        np.ascontiguousarray(a, dtype=np.float64) for a in (open_, high, low, close, volume, target)
    ]
    scale_arr = np.ones(n) if scale is None else np.ascontiguousarray(scale, dtype=np.float64)
    ts = np.ascontiguousarray(ts_ns, dtype=np.int64)
    # A first pass with a modest buffer covers nearly every strategy; the bound never overflows.
    for capacity in (first_fill_capacity(n), fill_capacity(n)):
        state = new_state(params.initial_cash)
        fills = np.empty(capacity, dtype=FILL_DTYPE)
        units, cash, equity, borrow = (np.empty(n) for _ in range(4))
        status = simulate_nb(
            ts, *arrays, scale_arr, params, state, fills, units, cash, equity, borrow, 0, n
        )
        if status == Status.OK:
            k = int(state[ST_N_FILLS])
            return SimulationOutput(
                units,
                cash,
                equity,
                borrow,
                fills[:k].copy(),
                int(state[ST_FLAGS]),
                int(state[ST_HALT_BAR]),
            )
        if status != Status.FILLS_FULL:
            raise ValueError(
                f"simulate: array lengths disagree (status {status}); every array needs {n} rows"
            )
    raise AssertionError("unreachable: fill_capacity bounds the fills of any run")
