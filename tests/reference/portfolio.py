"""Plain-Python twin of kernels/portfolio.py, written from SPEC §3 and §8 as an object model.

One account trades K symbols on a union clock (NaN prices where a symbol has no bar). It shares
no code with the kernel; tests compare the two on random inputs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

YEAR_NS = 365 * 86_400 * 1e9
REASONS = {"signal": 0, "stop_loss": 1, "take_profit": 2, "max_drawdown": 3, "ruin": 4, "end": 5}


@dataclass
class Fill:
    bar: int
    symbol: int
    units: float
    price: float
    fill_price: float
    spread_cost: float
    slippage_cost: float
    commission: float
    reason: int
    position_after: float
    borrow_cum: float


@dataclass
class Position:
    units: float = 0.0
    entry: float = math.nan
    last_target: float = 0.0
    stopped: bool = False
    waiting: str | None = None  # "resize" or "change": waits for a bar it can fill on
    released: bool = False  # on a calendar schedule: a schedule bar came since it began waiting
    ready: str | None = None  # the order filling at this bar
    close_at_next_open: bool = False
    mark: float = math.nan  # last close seen
    borrow_cum: float = 0.0


@dataclass
class Account:
    p: dict
    cash: float
    positions: list[Position]
    fills: list[Fill] = field(default_factory=list)

    def trade(self, bar: int, k: int, units: float, price: float, reason: str) -> None:
        p, pos = self.p, self.positions[k]
        sign = 1.0 if units > 0 else -1.0
        fill_price = price * (1.0 + sign * (p["spread_bps"] / 2.0 + p["slippage_bps"]) / 1e4)
        spread = abs(units) * price * (p["spread_bps"] / 2.0) / 1e4
        slip = abs(units) * price * p["slippage_bps"] / 1e4
        commission = max(
            p["commission_min"],
            p["commission_bps"] / 1e4 * abs(units) * fill_price + p["commission_fixed"],
        )
        before = pos.units
        after = before + units
        self.cash -= units * fill_price + commission
        if after == 0.0:
            pos.entry = math.nan
        elif before == 0.0 or (before > 0) != (after > 0):
            pos.entry = price
        pos.units = after
        self.fills.append(
            Fill(bar, k, units, price, fill_price, spread, slip, commission, REASONS[reason], after,
                 pos.borrow_cum)
        )  # fmt: skip

    def exit_all(self, bar: int, k: int, price: float, reason: str) -> None:
        pos = self.positions[k]
        self.trade(bar, k, -pos.units, price, reason)
        pos.stopped = True
        if pos.waiting == "resize":
            pos.waiting = None
            pos.released = False


def exposure(p: dict, target: float, scale: float, price: float, equity: float) -> float:
    if equity <= 0 or price <= 0 or target == 0:
        return 0.0
    if p["sizing"] == 1:
        return abs(target * p["unit_size"] * price / equity)
    return abs(target * scale)


def wanted(
    p: dict, target: float, scale: float, price: float, equity: float, share: float
) -> float:
    if equity <= 0 or price <= 0 or target == 0:
        return 0.0
    w = target * p["unit_size"] if p["sizing"] == 1 else target * scale * equity / price
    cap = p["max_leverage"] * share * equity / price
    w = min(max(w, -cap), cap)
    if p["lot_size"] > 0:
        w = math.trunc(w / p["lot_size"]) * p["lot_size"]
    return w


def size_known(p: dict, target: float, scale: float) -> bool:
    return p["sizing"] == 1 or target == 0 or not math.isnan(scale)


def exit_hit(p: dict, units: float, entry: float, low: float, high: float):
    """(reason, level) the range [low, high] touches, the stop first; None where none."""
    sl, tp = p["stop_loss"], p["take_profit"]
    if units > 0:
        stop = entry * (1 - sl) if sl > 0 else None
        take = entry * (1 + tp) if tp > 0 else None
        if stop is not None and low <= stop:
            return "stop_loss", stop
        if take is not None and high >= take:
            return "take_profit", take
    else:
        stop = entry * (1 + sl) if sl > 0 else None
        take = entry * (1 - tp) if tp > 0 else None
        if stop is not None and high >= stop:
            return "stop_loss", stop
        if take is not None and low <= take:
            return "take_profit", take
    return None


def simulate(ts, open_, high, low, close, volume, target, scale, p: dict, schedule=()):
    """(units[n][K], cash[n], equity[n], borrow[n][K], fills, ruined, halted_dd) per SPEC §8.

    Prices are lists of rows (one value per symbol, NaN where the symbol has no bar)."""
    n, n_sym = len(close), len(close[0])
    acct = Account(p, p["initial_cash"], [Position() for _ in range(n_sym)])
    pos = acct.positions
    peak = p["initial_cash"]
    halted = ruined = halted_dd = False
    exits = p["stop_loss"] > 0 or p["take_profit"] > 0
    sched = set(schedule)
    units_out, cash_out, equity_out, borrow_out = [], [], [], []

    def has(i: int, k: int) -> bool:
        return not math.isnan(close[i][k])

    def eff_target(i: int, k: int) -> float:
        return target[i][k] if has(i, k) or not math.isnan(pos[k].mark) else 0.0

    def row_orders(i: int, prices) -> None:
        def price(k: int) -> float:
            return prices[i][k] if not math.isnan(prices[i][k]) else pos[k].mark

        equity = acct.cash
        for k in range(n_sym):
            if pos[k].units != 0:
                equity += pos[k].units * price(k)
        gross = 0.0
        if n_sym > 1:
            for k in range(n_sym):
                if not math.isnan(price(k)) and size_known(p, target[i][k], scale[i][k]):
                    gross += exposure(p, target[i][k], scale[i][k], price(k), equity)
        capped = gross > p["max_leverage"]
        for sells in (True, False):
            for k in range(n_sym):
                kind = pos[k].ready
                if kind is None:
                    continue
                tgt, sc, px = target[i][k], scale[i][k], prices[i][k]
                share = exposure(p, tgt, sc, px, equity) / gross if capped else 1.0
                delta = wanted(p, tgt, sc, px, equity, share) - pos[k].units
                if sells and delta >= 0:
                    continue
                if delta != 0:
                    acct.trade(i, k, delta, px, "signal")
                pos[k].ready = None
                if kind == "change":
                    pos[k].stopped = False

    for i in range(n):
        was_halted = halted
        on_schedule = i in sched
        resize = p["every_bar"] or on_schedule
        # a calendar schedule: target changes wait for its next bar (no row re-size between)
        if not was_halted and not resize and not sched and n_sym > 1:
            resize = any(eff_target(i, k) != pos[k].last_target for k in range(n_sym))
        any_ready = False
        for k in range(n_sym):
            q = pos[k]
            if has(i, k) and q.close_at_next_open:
                q.close_at_next_open = False
                if q.units != 0:
                    acct.trade(i, k, -q.units, open_[i][k], "max_drawdown")
            elif has(i, k) and exits and q.units != 0:
                hit = exit_hit(p, q.units, q.entry, open_[i][k], open_[i][k])
                if hit:
                    acct.exit_all(i, k, open_[i][k], hit[0])
            if was_halted:
                continue
            tgt = eff_target(i, k)
            if tgt != q.last_target:
                q.waiting = "change"
            elif resize and not q.stopped and q.waiting is None:
                q.waiting = "resize"
            q.last_target = tgt
            if sched and on_schedule and q.waiting is not None:
                q.released = True
            no_volume = p["skip_zero_volume"] and volume[i][k] == 0
            if (
                q.waiting is not None
                and (not sched or q.released)
                and has(i, k)
                and not no_volume
                and size_known(p, tgt, scale[i][k])
            ):
                q.ready, q.waiting = q.waiting, None
                q.released = False
                any_ready = True
        if any_ready and p["fill_at"] == 0:
            row_orders(i, open_)
            any_ready = False
        row_borrow: list[float] = []
        borrow_out.append(row_borrow)
        for k in range(n_sym):
            q = pos[k]
            if has(i, k):
                if exits and q.units != 0:
                    hit = exit_hit(p, q.units, q.entry, low[i][k], high[i][k])
                    if hit:
                        acct.exit_all(i, k, hit[1], hit[0])
                q.mark = close[i][k]
            borrow = 0.0
            if q.units < 0 and i > 0 and p["borrow_rate_annual"] > 0:
                dt = float(ts[i] - ts[i - 1])
                borrow = -q.units * q.mark * p["borrow_rate_annual"] * dt / YEAR_NS
                acct.cash -= borrow
                q.borrow_cum += borrow
            row_borrow.append(borrow)
        if any_ready:
            row_orders(i, close)
        if i == n - 1 and p["close_at_end"]:
            for k in range(n_sym):
                if pos[k].units != 0:
                    acct.trade(i, k, -pos[k].units, pos[k].mark, "end")
        equity = acct.cash
        for k in range(n_sym):
            if pos[k].units != 0:
                equity += pos[k].units * pos[k].mark
        if equity <= 0 and not ruined:
            for k in range(n_sym):
                pos[k].close_at_next_open = False
                if pos[k].units != 0:
                    acct.trade(i, k, -pos[k].units, pos[k].mark, "ruin")
                    equity = acct.cash
            ruined = halted = True
        elif p["max_drawdown"] > 0 and not halted:
            peak = max(peak, equity)
            if equity / peak - 1 <= -p["max_drawdown"]:
                halted = halted_dd = True
                for k in range(n_sym):
                    if pos[k].units != 0:
                        pos[k].close_at_next_open = True
        units_out.append([q.units for q in pos])
        cash_out.append(acct.cash)
        equity_out.append(equity)
    return units_out, cash_out, equity_out, borrow_out, acct.fills, ruined, halted_dd
