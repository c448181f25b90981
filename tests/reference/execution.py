"""Plain-Python twin of kernels/execution.py, written from SPEC §3 as a readable object model.

It shares no code with the kernel; tests compare the two bar by bar on random inputs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

YEAR_NS = 365 * 86_400 * 1e9
REASONS = {"signal": 0, "stop_loss": 1, "take_profit": 2, "max_drawdown": 3, "ruin": 4, "end": 5}


@dataclass
class Fill:
    bar: int
    units: float
    price: float
    fill_price: float
    spread_cost: float
    slippage_cost: float
    commission: float
    reason: int
    position_after: float
    borrow_cum: float
    symbol: int = 0


@dataclass
class Book:
    p: dict
    cash: float
    units: float = 0.0
    entry: float = math.nan
    borrow_cum: float = 0.0
    fills: list[Fill] = field(default_factory=list)

    def trade(self, bar: int, units: float, price: float, reason: str) -> None:
        p = self.p
        sign = 1.0 if units > 0 else -1.0
        fill_price = price * (1.0 + sign * (p["spread_bps"] / 2.0 + p["slippage_bps"]) / 1e4)
        spread = abs(units) * price * (p["spread_bps"] / 2.0) / 1e4
        slip = abs(units) * price * p["slippage_bps"] / 1e4
        commission = max(
            p["commission_min"],
            p["commission_bps"] / 1e4 * abs(units) * fill_price + p["commission_fixed"],
        )
        before = self.units
        after = before + units
        self.cash -= units * fill_price + commission
        if after == 0.0:
            self.entry = math.nan
        elif before == 0.0 or (before > 0) != (after > 0):
            self.entry = price
        self.units = after
        self.fills.append(
            Fill(
                bar,
                units,
                price,
                fill_price,
                spread,
                slip,
                commission,
                REASONS[reason],
                after,
                self.borrow_cum,
            )
        )

    def wanted(self, target: float, scale: float, price: float) -> float:
        p = self.p
        equity = self.cash + self.units * price
        if equity <= 0 or price <= 0 or target == 0:
            return 0.0
        w = target * p["unit_size"] if p["sizing"] == 1 else target * scale * equity / price
        cap = p["max_leverage"] * equity / price
        w = min(max(w, -cap), cap)
        if p["lot_size"] > 0:
            w = math.trunc(w / p["lot_size"]) * p["lot_size"]
        return w

    def rebalance(self, bar: int, target: float, scale: float, price: float) -> None:
        delta = self.wanted(target, scale, price) - self.units
        if delta != 0.0:
            self.trade(bar, delta, price, "signal")


def levels(p: dict, units: float, entry: float) -> tuple[float | None, float | None]:
    """(stop level, take-profit level) of the open position, None where off."""
    sl, tp = p["stop_loss"], p["take_profit"]
    if units > 0:
        return (entry * (1 - sl) if sl > 0 else None, entry * (1 + tp) if tp > 0 else None)
    return (entry * (1 + sl) if sl > 0 else None, entry * (1 - tp) if tp > 0 else None)


def simulate(ts, open_, high, low, close, volume, target, scale, p: dict):
    """Returns (units, cash, equity, borrow, fills, ruined, halted_dd) per SPEC §3."""
    n = len(close)
    book = Book(p, p["initial_cash"])
    units_out, cash_out, equity_out, borrow_out = [], [], [], []
    halted = ruined = halted_dd = False
    close_at_next_open = stopped = False
    # the order waiting for a bar with volume and a known size: None, "resize" (every_bar, same
    # target) or "change" (a target change, which a stop exit does not cancel)
    waiting: str | None = None
    peak = p["initial_cash"]
    last_target = 0.0

    def exit_at(bar: int, price: float, reason: str) -> None:
        nonlocal stopped, waiting
        book.trade(bar, -book.units, price, reason)
        stopped = True
        if waiting == "resize":
            waiting = None

    for i in range(n):
        # 1. open
        if close_at_next_open:
            close_at_next_open = False
            if book.units != 0:
                book.trade(i, -book.units, open_[i], "max_drawdown")
        elif book.units != 0 and (p["stop_loss"] > 0 or p["take_profit"] > 0):
            stop, take = levels(p, book.units, book.entry)
            long = book.units > 0
            if stop is not None and (open_[i] <= stop if long else open_[i] >= stop):
                exit_at(i, open_[i], "stop_loss")
            elif take is not None and (open_[i] >= take if long else open_[i] <= take):
                exit_at(i, open_[i], "take_profit")
        # 2. order
        at_close: str | None = None
        if not halted:
            if target[i] != last_target:
                waiting = "change"
            elif p["every_bar"] and not stopped and waiting is None:
                waiting = "resize"
            no_volume = p["skip_zero_volume"] and volume[i] == 0
            unknown_size = p["sizing"] != 1 and target[i] != 0 and math.isnan(scale[i])
            if waiting is not None and not no_volume and not unknown_size:
                kind, waiting = waiting, None
                if p["fill_at"] == 0:
                    book.rebalance(i, target[i], scale[i], open_[i])
                    if kind == "change":
                        stopped = False
                else:
                    at_close = kind
        last_target = target[i]
        # 3. intrabar
        if book.units != 0 and (p["stop_loss"] > 0 or p["take_profit"] > 0):
            stop, take = levels(p, book.units, book.entry)
            long = book.units > 0
            if stop is not None and (low[i] <= stop if long else high[i] >= stop):
                exit_at(i, stop, "stop_loss")
            elif take is not None and (high[i] >= take if long else low[i] <= take):
                exit_at(i, take, "take_profit")
        # 4. close
        borrow = 0.0
        if book.units < 0 and i > 0 and p["borrow_rate_annual"] > 0:
            borrow = (
                -book.units
                * close[i]
                * p["borrow_rate_annual"]
                * float(ts[i] - ts[i - 1])
                / YEAR_NS
            )
            book.cash -= borrow
            book.borrow_cum += borrow
        if at_close is not None:  # placed before any stop on this bar, so it still fills
            book.rebalance(i, target[i], scale[i], close[i])
            if at_close == "change":
                stopped = False
        if i == n - 1 and p["close_at_end"] and book.units != 0:
            book.trade(i, -book.units, close[i], "end")
        equity = book.cash + book.units * close[i]
        if equity <= 0 and not ruined:
            if book.units != 0:
                book.trade(i, -book.units, close[i], "ruin")
                equity = book.cash
            ruined = halted = True
            close_at_next_open = False
        elif p["max_drawdown"] > 0 and not halted:
            peak = max(peak, equity)
            if equity / peak - 1 <= -p["max_drawdown"]:
                halted = halted_dd = True
                close_at_next_open = book.units != 0
        units_out.append(book.units)
        cash_out.append(book.cash)
        equity_out.append(equity)
        borrow_out.append(borrow)
    return units_out, cash_out, equity_out, borrow_out, book.fills, ruined, halted_dd
