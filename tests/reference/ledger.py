"""Plain-Python twin of kernels/ledger.py: group fills into flat-to-flat round trips."""

from __future__ import annotations

import math


def trades(fills, last_bar: int, last_close: float, final_borrow_cum: float) -> list[dict]:
    out: list[dict] = []
    cur: dict | None = None

    def start(f, units: float, cost: float) -> dict:
        return {
            "entry_bar": int(f["bar"]), "side": 1 if units > 0 else -1, "units": abs(units),
            "in_notional": abs(units) * f["price"], "in_units": abs(units), "out_notional": 0.0, "out_units": 0.0,
            "gross_pnl": -units * f["price"], "costs": cost, "borrow0": float(f["borrow_cum"]),
        }  # fmt: skip

    def finish(t: dict, bar: int, reason: int, borrow_cum: float, is_open: bool) -> None:
        borrow = borrow_cum - t.pop("borrow0")
        t["borrow"] = borrow
        t["costs"] += borrow
        t["entry_price"] = t["in_notional"] / t["in_units"]
        t["exit_price"] = t["out_notional"] / t["out_units"] if t["out_units"] > 0 else math.nan
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
            cur["out_notional"] += abs(before) * price
            cur["out_units"] += abs(before)
            finish(cur, int(f["bar"]), int(f["reason"]), float(f["borrow_cum"]), False)
            cur = start(f, after, cost * (1 - share))
            continue
        cur["gross_pnl"] += -units * price
        cur["costs"] += cost
        if abs(after) > abs(before):
            cur["in_notional"] += abs(units) * price
            cur["in_units"] += abs(units)
            cur["units"] = max(cur["units"], abs(after))
        else:
            cur["out_notional"] += abs(units) * price
            cur["out_units"] += abs(units)
        if after == 0.0:
            finish(cur, int(f["bar"]), int(f["reason"]), float(f["borrow_cum"]), False)
            cur = None
    if cur is not None:
        position = float(fills[-1]["position_after"])
        cur["gross_pnl"] += position * last_close
        cur["out_notional"] += abs(position) * last_close
        cur["out_units"] += abs(position)
        finish(cur, last_bar, -1, final_borrow_cum, True)
    return out
