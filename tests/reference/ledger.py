"""Plain-Python twin of kernels/ledger.py: group fills into flat-to-flat round trips.

Entry and exit prices are the units-weighted means of the fills' reference prices, computed as
an exact sum; fills all at one price give that price itself.
"""

from __future__ import annotations

import math


def mean_price(parts: list[tuple[float, float]]) -> float:
    """Units-weighted mean of `(units, price)` parts; exactly the price where they share one."""
    if len({price for _, price in parts}) == 1:
        return parts[0][1]
    return math.fsum(u * p for u, p in parts) / math.fsum(u for u, _ in parts)


def trades(fills, last_bar: int, last_close: float, final_borrow_cum: float) -> list[dict]:
    out: list[dict] = []
    cur: dict | None = None

    def start(f, units: float, cost: float) -> dict:
        return {
            "entry_bar": int(f["bar"]), "symbol": int(f["symbol"]), "side": 1 if units > 0 else -1, "units": abs(units),
            "in_notional": abs(units) * f["price"], "ins": [(abs(units), float(f["price"]))], "outs": [],
            "gross_pnl": -units * f["price"], "costs": cost, "borrow0": float(f["borrow_cum"]),
        }  # fmt: skip

    def finish(t: dict, bar: int, reason: int, borrow_cum: float, is_open: bool) -> None:
        borrow = borrow_cum - t.pop("borrow0")
        t["borrow"] = borrow
        t["costs"] += borrow
        ins, outs = t.pop("ins"), t.pop("outs")
        t["entry_price"] = mean_price(ins)
        t["exit_price"] = mean_price(outs) if outs else math.nan
        # where the price is one fill's own (the kernel must give it bit for bit)
        t["exact_prices"] = [name for name, parts in (("entry_price", ins), ("exit_price", outs))
                             if len({p for _, p in parts}) == 1]  # fmt: skip
        t["net_pnl"] = t["gross_pnl"] - t["costs"]
        t["return_"] = t["net_pnl"] / t["in_notional"]
        t.update(exit_bar=bar, exit_reason=reason, bars_held=bar - t["entry_bar"], is_open=is_open)
        out.append(t)

    for f in fills:
        units, price, after = float(f["units"]), float(f["price"]), float(f["position_after"])
        before = after - units
        cost = float(f["spread_cost"] + f["slippage_cost"] + f["commission"])
        if cur is None or before == 0.0:
            cur = start(f, units, cost)
            continue
        if after != 0.0 and (after > 0) != (before > 0):
            share = abs(before) / abs(units)
            cur["gross_pnl"] += before * price
            cur["costs"] += cost * share
            cur["outs"].append((abs(before), price))
            finish(cur, int(f["bar"]), int(f["reason"]), float(f["borrow_cum"]), False)
            cur = start(f, after, cost * (1 - share))
            continue
        cur["gross_pnl"] += -units * price
        cur["costs"] += cost
        if abs(after) > abs(before):
            cur["in_notional"] += abs(units) * price
            cur["ins"].append((abs(units), price))
            cur["units"] = max(cur["units"], abs(after))
        else:
            cur["outs"].append((abs(units), price))
        if after == 0.0:
            finish(cur, int(f["bar"]), int(f["reason"]), float(f["borrow_cum"]), False)
            cur = None
    if cur is not None:
        position = float(fills[-1]["position_after"])
        cur["gross_pnl"] += position * last_close
        cur["outs"].append((abs(position), last_close))
        finish(cur, last_bar, -1, final_borrow_cum, True)
    return out


def trades_by_symbol(
    fills, n_symbols: int, last_bar: int, last_closes, final_borrow_cums
) -> list[dict]:
    """Twin of `kernels.ledger.trades_by_symbol`: each symbol's own fills (in booking order)
    through `trades`, symbol by symbol."""
    out: list[dict] = []
    for j in range(n_symbols):
        own = [f for f in fills if int(f["symbol"]) == j]
        if own:
            out.extend(trades(own, last_bar, float(last_closes[j]), float(final_borrow_cums[j])))
    return out
