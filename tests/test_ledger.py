"""Round-trip trades: the kernel against its twin, and trades adding up to the run's P&L."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from btlab.kernels import TRADE_DTYPE, ExecParams, simulate
from btlab.kernels.ledger import trades_from_fills
from tests.reference import ledger as ref
from tests.strategies import Bars, bars, exec_params, scales, targets


def simulate_and_trade(b: Bars, target: np.ndarray, p: ExecParams, scale: np.ndarray | None = None):
    out = simulate(*b.arrays(), target, p, scale=scale)
    borrow_total = float(np.sum(out.borrow))
    return (
        out,
        trades_from_fills(out.fills, len(b) - 1, float(b.close[-1]), borrow_total),
        borrow_total,
    )


@settings(max_examples=150, deadline=None)
@given(data=st.data(), b=bars(), p=exec_params())
def test_trades_kernel_matches_twin(data: st.DataObject, b: Bars, p: ExecParams) -> None:
    target = data.draw(targets(len(b)))
    out, trades, borrow_total = simulate_and_trade(
        b, target, p, data.draw(scales(len(b), p.sizing))
    )
    expected = ref.trades(out.fills, len(b) - 1, float(b.close[-1]), borrow_total)
    assert len(trades) == len(expected)
    for name in TRADE_DTYPE.names:
        want = np.array([t[name] for t in expected], dtype=TRADE_DTYPE[name])
        np.testing.assert_allclose(trades[name], want, rtol=1e-12, atol=1e-9, err_msg=name)
    # a price the twin takes from one fill (or fills at one price) is that price, bit for bit
    for got, want in zip(trades, expected, strict=True):
        for name in want["exact_prices"]:
            assert got[name] == want[name], name


@settings(max_examples=150, deadline=None)
@given(data=st.data(), b=bars(), p=exec_params())
def test_trade_net_pnl_adds_up_to_the_equity_change(
    data: st.DataObject, b: Bars, p: ExecParams
) -> None:
    """Every dollar of P&L and cost lands in exactly one trade (the open one marked at the last close)."""
    target = data.draw(targets(len(b)))
    out, trades, _ = simulate_and_trade(b, target, p, data.draw(scales(len(b), p.sizing)))
    total = float(np.sum(trades["net_pnl"])) if len(trades) else 0.0
    # borrow paid while flat cannot happen, so every cost is inside some trade
    scale = p.initial_cash + float(np.sum(np.abs(out.fills["units"] * out.fills["price"])))
    assert abs(total - (out.equity[-1] - p.initial_cash)) <= 1e-9 * scale


def test_flip_splits_the_fill_between_two_trades() -> None:
    n = 4
    ts = np.arange(n, dtype=np.int64) * 86_400 * 10**9
    price = np.full(n, 100.0)
    p = ExecParams(initial_cash=1_000.0, commission_fixed=2.0, close_at_end=True)
    out = simulate(
        ts, price, price + 1, price - 1, price, np.ones(n), np.array([1.0, -1.0, -1.0, -1.0]), p
    )
    trades = trades_from_fills(out.fills, n - 1, 100.0, 0.0)
    assert list(trades["side"]) == [1, -1]
    # long 10 for $2 leaves 998 of equity, so the flip sells 19.98: 10 close the long, 9.98 open the short
    assert trades["units"][0] == 10.0 and trades["units"][1] == pytest.approx(9.98)
    # the flip fill's $2 is split by units between the two trades
    assert trades["costs"][0] == pytest.approx(2.0 + 2.0 * 10 / 19.98)
    assert trades["costs"][1] == pytest.approx(2.0 * 9.98 / 19.98 + 2.0)
    assert list(trades["exit_reason"]) == [0, 5]


def test_trade_prices_are_the_reference_prices_of_single_fills_exactly() -> None:
    """87 whole units bought at 114.42 and sold at 120.1: notional / units would print
    114.42000000000002; the trade reports the fill's reference price itself."""
    n = 4
    ts = np.arange(n, dtype=np.int64) * 86_400 * 10**9
    opens = np.array([114.42, 114.42, 120.1, 120.1])
    p = ExecParams(initial_cash=10_000.0, lot_size=1.0, close_at_end=False)
    out = simulate(
        ts, opens, opens + 1, opens - 1, opens, np.ones(n), np.array([1.0, 1.0, 0.0, 0.0]), p
    )
    assert list(out.fills["units"]) == [87.0, -87.0]
    assert 87.0 * 114.42 / 87.0 != 114.42  # the float noise the old average carried
    trades = trades_from_fills(out.fills, n - 1, 120.1, 0.0)
    assert trades["entry_price"][0] == 114.42 and trades["exit_price"][0] == 120.1


def test_trade_prices_average_the_fills_weighted_by_units() -> None:
    """Adding at another price: the units-weighted mean of the entry fills' reference prices."""
    n = 5
    ts = np.arange(n, dtype=np.int64) * 86_400 * 10**9
    opens = np.array([100.0, 100.0, 110.0, 120.0, 120.0])
    p = ExecParams(initial_cash=10_000.0, sizing=1, unit_size=10.0, close_at_end=False)
    target = np.array([1.0, 1.0, 3.0, 0.0, 0.0])  # 10 units at 100, 20 more at 110, out at 120
    out = simulate(ts, opens, opens + 1, opens - 1, opens, np.ones(n), target, p)
    trades = trades_from_fills(out.fills, n - 1, 120.0, 0.0)
    assert len(trades) == 1
    assert trades["entry_price"][0] == pytest.approx((10 * 100 + 20 * 110) / 30, rel=1e-15)
    assert trades["exit_price"][0] == 120.0
    assert trades["return_"][0] == pytest.approx((30 * 120 - 3_200) / 3_200)
