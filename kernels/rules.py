"""The rules one order, fill or exit follows (SPEC §3, §8), shared by every execution kernel.

`ExecParams` holds a run's settings; the state vector's layout (an account segment, then one
position segment per symbol) is defined here, so the engine (`kernels/portfolio.py`) and the
single-symbol entry points (`kernels/execution.py`) read the same fields. The functions are
scalar: cost of a fill, the units a target asks for, whether a size is known, and the stop /
take-profit levels a price range touches.
"""

from __future__ import annotations

import math
from typing import NamedTuple

from ._jit import njit
from .dtypes import FillAt, Reason, Sizing

NS_PER_YEAR_365 = 365.0 * 86_400.0 * 1e9

# The float64 state vector: the account segment, then POSITION_SIZE fields per symbol (position
# field f of symbol s at ACCOUNT_SIZE + s * POSITION_SIZE + f).
# Account: money, the equity path's facts, the fill count, the halts and the schedule cursor.
ST_CASH = 0
ST_PEAK = 1  # highest marked equity so far (starts at the initial cash)
ST_BORROW_CUM = 2  # borrow paid by the whole account so far
ST_N_FILLS = 3
ST_FLAGS = 4  # bit set of dtypes.Flag
ST_HALTED = 5  # 1.0 once trading has halted (ruin or max drawdown)
ST_SCHEDULE_NEXT = 6  # index of the next entry of the rebalance schedule not yet passed
ST_HALT_BAR = 7
ACCOUNT_SIZE = 8
# Position (per symbol): what is held, how it was entered, its order flow and its mark.
P_UNITS = 0
P_ENTRY = 1  # reference price of the fill that opened the position or flipped its side
P_PREV_TARGET = 2
P_STOPPED_OUT = 3  # 1.0: after a stop / take-profit, until a target change's order fills
P_PENDING = 4  # a PENDING_* code: an order waits for a bar with volume and a known size
P_READY = 5  # a PENDING_* code: the order that fills at this bar (its open or its close)
P_DD_CLOSE = 6  # 1.0: max drawdown reached, close this position at its next bar's open
P_MARK = 7  # the symbol's last close (NaN before its first bar)
P_BORROW_CUM = 8  # borrow paid on this symbol's shorts so far
P_RELEASED = 9  # 1.0: on a calendar schedule, the waiting order may fill (a schedule bar came)
POSITION_SIZE = 10
# The fields of the first (for a single-symbol run, the only) position.
ST_UNITS = ACCOUNT_SIZE + P_UNITS
ST_ENTRY = ACCOUNT_SIZE + P_ENTRY
ST_PREV_TARGET = ACCOUNT_SIZE + P_PREV_TARGET
ST_STOPPED_OUT = ACCOUNT_SIZE + P_STOPPED_OUT
ST_PENDING = ACCOUNT_SIZE + P_PENDING


def state_size(n_symbols: int) -> int:
    """Length of the state vector of a run over `n_symbols` symbols."""
    return ACCOUNT_SIZE + n_symbols * POSITION_SIZE


STATE_SIZE = state_size(1)

# What a waiting order (P_PENDING) carries. A target change survives a stop or take-profit exit
# (it was decided before it); a re-size of an unchanged target (every bar, on the rebalance
# schedule, or because another symbol's target changed) does not.
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


def fill_capacity(n_bars: int, n_symbols: int = 1) -> int:
    """Fills one run can produce at most: per symbol a gap exit, an order and an intrabar exit
    per bar, plus the end (or ruin) close and one spare."""
    return n_symbols * (3 * n_bars + 2)


def first_fill_capacity(n_bars: int, n_symbols: int = 1) -> int:
    """The fill buffer a run starts with: enough for nearly every strategy; a run that fills it
    (status FILLS_FULL) is repeated with `fill_capacity`, which never overflows."""
    return min(fill_capacity(n_bars, n_symbols), max(1024, n_bars * n_symbols // 8))


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
def target_units_nb(target, scale, price, equity, params, share=1.0):
    """Units wanted for `target` at reference `price` with `equity` marked at that price.

    Sized by equity fraction (times `scale`, the vol-target multiplier) or by a fixed unit
    count, clipped to `share` of `max_leverage` (a portfolio whose target row asks for more
    gross exposure than `max_leverage` gives each symbol its share of the row, |w_k| / Σ|w|, so
    the row is scaled down proportionally; one symbol's share is 1), rounded toward zero to
    `lot_size` where it is > 0.
    """
    if equity <= 0.0 or price <= 0.0 or target == 0.0:
        return 0.0  # flat needs no scale (it may be unknown: NaN)
    if params.sizing == Sizing.UNITS:
        wanted = target * params.unit_size
    else:
        wanted = target * scale * equity / price
    limit = params.max_leverage * share * equity / price
    if wanted > limit:
        wanted = limit
    elif wanted < -limit:
        wanted = -limit
    if params.lot_size > 0.0:
        wanted = math.trunc(wanted / params.lot_size) * params.lot_size
    return wanted


@njit
def exposure_wanted_nb(target, scale, price, equity, params):
    """|wanted exposure| / equity of `target` before the leverage cap (0 where it sizes to 0):
    the symbol's term of the target row's gross exposure."""
    if equity <= 0.0 or price <= 0.0 or target == 0.0:
        return 0.0
    if params.sizing == Sizing.UNITS:
        return abs(target * params.unit_size * price / equity)
    return abs(target * scale)


@njit
def size_known_nb(target, scale, params):
    """Whether `target_units_nb` can size `target`: False only where the size needs a scale
    that is still unknown (NaN, the vol-target warm-up); such an order waits."""
    return params.sizing == Sizing.UNITS or target == 0.0 or not math.isnan(scale)


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
