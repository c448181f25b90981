"""Every enum and record dtype the kernels read or write.

Enums are NamedTuple instances of ints so numba reads them as compile-time constants
(`Reason.STOP_LOSS` inside a kernel is just the integer 2).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np


class _Reason(NamedTuple):
    SIGNAL: int = 0
    STOP_LOSS: int = 1
    TAKE_PROFIT: int = 2
    MAX_DRAWDOWN: int = 3
    RUIN: int = 4
    END: int = 5


class _FillAt(NamedTuple):
    OPEN: int = 0
    CLOSE: int = 1


class _Sizing(NamedTuple):
    FRACTION: int = 0
    UNITS: int = 1
    VOL_TARGET: int = 2


class _Status(NamedTuple):
    """Return code of the execution kernel."""

    OK: int = 0
    FILLS_FULL: int = 1  # the fill buffer was too small; nothing after `n_fills` is valid
    BAD_INPUT: int = 2  # array lengths disagree


class _Flag(NamedTuple):
    """Bits of the execution kernel's outcome flags."""

    RUINED: int = 1
    HALTED_MAX_DRAWDOWN: int = 2


Reason = _Reason()
FillAt = _FillAt()
Sizing = _Sizing()
Status = _Status()
Flag = _Flag()

#: What each `Status` code means, in words, by code.
STATUS_MESSAGES: tuple[str, ...] = (
    "ok",
    "the fill buffer ran out (a larger one is needed)",
    "array lengths disagree",
)


def status_message(status: int) -> str:
    """The words for an execution-kernel status code (an unknown code says so)."""
    code = int(status)
    if 0 <= code < len(STATUS_MESSAGES):
        return STATUS_MESSAGES[code]
    return f"unknown status {code}"


REASON_NAMES: tuple[str, ...] = (
    "signal",
    "stop_loss",
    "take_profit",
    "max_drawdown",
    "ruin",
    "end",
)

#: One record per fill. `units` is signed (+ buy, - sell); costs are positive money amounts.
#: `borrow_cum` is the borrow paid by the run up to this fill, so a trade's borrow is a difference.
FILL_DTYPE = np.dtype(
    [
        ("bar", np.int64),
        ("symbol", np.int64),  # the symbol's column (0 in a single-symbol run)
        ("units", np.float64),
        ("price", np.float64),
        ("fill_price", np.float64),
        ("spread_cost", np.float64),
        ("slippage_cost", np.float64),
        ("commission", np.float64),
        ("reason", np.int64),
        ("position_after", np.float64),
        ("borrow_cum", np.float64),
    ],
    align=True,
)

#: One record per round trip (flat -> flat, or a side flip), built from the fills.
TRADE_DTYPE = np.dtype(
    [
        ("entry_bar", np.int64),
        ("exit_bar", np.int64),
        ("symbol", np.int64),  # the symbol's column (0 in a single-symbol run)
        ("side", np.int64),
        ("units", np.float64),  # largest absolute position held in the trade
        # units-weighted mean reference price of the fills that built / reduced the trade (one
        # fill's price exactly where it is one fill, or fills at one price; see kernels/ledger.py)
        ("entry_price", np.float64),
        ("exit_price", np.float64),
        ("gross_pnl", np.float64),
        ("costs", np.float64),  # spread + slippage + commission + borrow
        ("borrow", np.float64),
        ("net_pnl", np.float64),
        ("return_", np.float64),  # net_pnl / entry notional
        ("bars_held", np.int64),
        ("exit_reason", np.int64),
        ("is_open", np.bool_),
    ],
    align=True,
)
