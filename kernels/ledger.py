"""Round-trip trades from fill records (one pass over the fills).

A trade runs from flat to flat; a fill that flips the side closes one trade and opens the
next, its units and costs split pro rata. Adding to or trimming a position stays in the trade.

A trade's entry (exit) price is the units-weighted mean of the reference prices of the fills
that built (reduced) it, taken as the first such price plus the weighted mean of the others'
differences from it: a trade entered by one fill, or by fills at one price, reports that price
exactly, not `notional / units` with its float noise. The return divides by the entry notional.
"""

from __future__ import annotations

import numpy as np

from ._jit import njit
from .dtypes import TRADE_DTYPE


@njit
def _open_trade_nb(trade, bar, symbol, side, units, price, costs, borrow_cum):
    trade["entry_bar"] = bar
    trade["symbol"] = symbol
    trade["side"] = side
    trade["units"] = abs(units)
    trade["entry_price"] = price  # the first entry price until the trade closes
    trade["exit_price"] = np.nan  # the first exit price once there is one
    trade["gross_pnl"] = -units * price
    trade["costs"] = costs
    trade["borrow"] = borrow_cum  # borrow_cum at entry until the trade closes


@njit
def _reduce_nb(trade, out_units, out_dev, units, price):
    """`units` (> 0) of a fill at `price` reduce the trade: the exit sums `(out_units, out_dev)`
    with it, `out_dev` the units-weighted differences from the first exit price."""
    if out_units == 0.0:
        trade["exit_price"] = price
    return out_units + units, out_dev + units * (price - trade["exit_price"])


@njit
def _close_trade_nb(
    trade, bar, reason, borrow_cum, in_notional, in_units, in_dev, out_units, out_dev, is_open
):
    trade["entry_price"] += in_dev / in_units
    if out_units > 0.0:
        trade["exit_price"] += out_dev / out_units
    trade["exit_bar"] = bar
    trade["exit_reason"] = reason
    trade["borrow"] = borrow_cum - trade["borrow"]
    trade["costs"] += trade["borrow"]
    trade["net_pnl"] = trade["gross_pnl"] - trade["costs"]
    trade["return_"] = trade["net_pnl"] / in_notional
    trade["bars_held"] = bar - trade["entry_bar"]
    trade["is_open"] = is_open


@njit
def trades_nb(fills, last_bar, last_close, final_borrow_cum, out):
    """Fill records (FILL_DTYPE) -> trade records (TRADE_DTYPE) in `out`; returns the count.

    A trade still open after the last fill is marked at `last_close` on `last_bar` with
    `is_open = True` and exit reason -1. `out` needs room for `fills.shape[0] + 1` trades.
    """
    count = 0
    in_trade = False
    # the open trade's sums: entry notional and units, the entry and exit units-weighted
    # differences from the first entry / exit price, and the exit units
    in_notional = in_units = in_dev = out_units = out_dev = 0.0
    for k in range(fills.shape[0]):
        f = fills[k]
        units = f["units"]
        price = f["price"]
        after = f["position_after"]
        before = after - units
        costs = f["spread_cost"] + f["slippage_cost"] + f["commission"]
        if not in_trade or before == 0.0:
            _open_trade_nb(
                out[count],
                f["bar"],
                f["symbol"],
                1 if units > 0.0 else -1,
                units,
                price,
                costs,
                f["borrow_cum"],
            )
            in_trade = True
            in_notional, in_units, in_dev, out_units, out_dev = (
                abs(units) * price, abs(units), 0.0, 0.0, 0.0
            )  # fmt: skip
            continue
        trade = out[count]
        flips = after != 0.0 and (after > 0.0) != (before > 0.0)
        if flips:
            closing = -before  # the part of this fill that closes the trade
            share = abs(closing) / abs(units)
            trade["gross_pnl"] += -closing * price
            trade["costs"] += costs * share
            out_units, out_dev = _reduce_nb(trade, out_units, out_dev, abs(closing), price)
            _close_trade_nb(
                trade, f["bar"], f["reason"], f["borrow_cum"], in_notional, in_units, in_dev,
                out_units, out_dev, False,
            )  # fmt: skip
            count += 1
            _open_trade_nb(
                out[count],
                f["bar"],
                f["symbol"],
                1 if after > 0.0 else -1,
                after,
                price,
                costs * (1.0 - share),
                f["borrow_cum"],
            )
            in_notional, in_units, in_dev, out_units, out_dev = (
                abs(after) * price, abs(after), 0.0, 0.0, 0.0
            )  # fmt: skip
            continue
        trade["gross_pnl"] += -units * price
        trade["costs"] += costs
        if abs(after) > abs(before):
            in_notional += abs(units) * price
            in_units += abs(units)
            in_dev += abs(units) * (price - trade["entry_price"])
            if abs(after) > trade["units"]:
                trade["units"] = abs(after)
        else:
            out_units, out_dev = _reduce_nb(trade, out_units, out_dev, abs(units), price)
        if after == 0.0:
            _close_trade_nb(
                trade, f["bar"], f["reason"], f["borrow_cum"], in_notional, in_units, in_dev,
                out_units, out_dev, False,
            )  # fmt: skip
            count += 1
            in_trade = False
    if in_trade:
        trade = out[count]
        position = fills[fills.shape[0] - 1]["position_after"]
        trade["gross_pnl"] += position * last_close
        out_units, out_dev = _reduce_nb(trade, out_units, out_dev, abs(position), last_close)
        _close_trade_nb(
            trade, last_bar, -1, final_borrow_cum, in_notional, in_units, in_dev, out_units,
            out_dev, True,
        )  # fmt: skip
        count += 1
    return count


def trades_from_fills(
    fills: np.ndarray, last_bar: int, last_close: float, final_borrow_cum: float
) -> np.ndarray:
    """Trade records (TRADE_DTYPE) of a run's fills; see `trades_nb`."""
    out = np.zeros(fills.shape[0] + 1, dtype=TRADE_DTYPE)
    count = trades_nb(fills, last_bar, last_close, final_borrow_cum, out)
    return out[:count].copy()


@njit
def trades_by_symbol_nb(fills, ends, last_bar, last_closes, final_borrow_cums, out):
    """`trades_nb` of each symbol's fills in one call: `fills` grouped by symbol (symbol j's in
    `[ends[j-1], ends[j])`, each in booking order), its trades marked at `last_closes[j]` with
    `final_borrow_cums[j]`; appended to `out` (room for `fills.shape[0] + len(ends)` trades)
    symbol by symbol. Returns the count."""
    count = 0
    start = 0
    for j in range(ends.shape[0]):
        stop = ends[j]
        if stop > start:
            count += trades_nb(
                fills[start:stop], last_bar, last_closes[j], final_borrow_cums[j], out[count:]
            )
        start = stop
    return count


def trades_by_symbol(
    fills: np.ndarray, n_symbols: int, last_bar: int, last_closes: np.ndarray,
    final_borrow_cums: np.ndarray,
) -> np.ndarray:  # fmt: skip
    """Trade records (TRADE_DTYPE) of a portfolio's fills, symbol by symbol (each symbol's in
    entry order); see `trades_by_symbol_nb`."""
    grouped = fills[np.argsort(fills["symbol"], kind="stable")]
    ends = np.cumsum(np.bincount(grouped["symbol"], minlength=n_symbols)).astype(np.int64)
    out = np.zeros(fills.shape[0] + n_symbols, dtype=TRADE_DTYPE)
    count = trades_by_symbol_nb(
        grouped, ends, last_bar, np.ascontiguousarray(last_closes, dtype=np.float64),
        np.ascontiguousarray(final_borrow_cums, dtype=np.float64), out,
    )  # fmt: skip
    return out[:count].copy()
