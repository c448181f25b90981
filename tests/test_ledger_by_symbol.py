"""The ledger of a portfolio in one call (`trades_by_symbol`) is `trades_from_fills` of each
symbol's own fills, concatenated symbol by symbol, bit for bit."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

import btlab
from btlab.kernels import FILL_DTYPE, TRADE_DTYPE
from btlab.kernels.ledger import trades_by_symbol, trades_from_fills
from tests.reference import ledger as ref


def per_symbol(fills, k, last_bar, last_closes, borrow):
    parts = [
        trades_from_fills(fills[fills["symbol"] == j], last_bar, float(last_closes[j]), float(borrow[j]))
        for j in range(k)
        if (fills["symbol"] == j).any()
    ]  # fmt: skip
    return np.concatenate(parts) if parts else np.zeros(0, dtype=TRADE_DTYPE)


def assert_same(got: np.ndarray, want: np.ndarray) -> None:
    assert got.dtype == want.dtype and got.shape == want.shape
    for name in TRADE_DTYPE.names:  # field by field: the records' padding bytes are not data
        assert got[name].tobytes() == want[name].tobytes(), name


def test_a_portfolio_run_ledger_is_each_symbols_ledger() -> None:
    result = btlab.run(
        {
            "data": {"symbols": 7, "bars": 400, "seed": 3},
            "strategy": {"name": "xs_momentum", "params": {"lookback": 20, "top": 2, "bottom": 2}},
            "execution": {"rebalance": "weekly", "commission_bps": 1.0, "spread_bps": 2.0,
                          "borrow_rate_annual": 0.05},
            "risk": {"stop_loss": 0.03},
            "validation": {"enabled": False},
        }
    )  # fmt: skip
    fills = result.fill_records
    n, k = result.marks.shape
    borrow = result.borrow.sum(axis=0)
    assert len(np.unique(fills["symbol"])) > 1 and len(fills) > 50
    got = trades_by_symbol(fills, k, n - 1, result.marks[-1], borrow)
    assert_same(got, per_symbol(fills, k, n - 1, result.marks[-1], borrow))


@settings(max_examples=60, deadline=None)
@given(
    k=st.integers(1, 5),
    steps=st.lists(st.tuples(st.integers(0, 4), st.sampled_from([-2.0, -1.0, 1.0, 3.0])), max_size=40),
)  # fmt: skip
def test_interleaved_fills_group_by_symbol(k: int, steps: list[tuple[int, float]]) -> None:
    """Fills of several symbols interleaved in any order, flips and closes included."""
    fills = np.zeros(len(steps), dtype=FILL_DTYPE)
    position = np.zeros(k)
    for i, (symbol, units) in enumerate(steps):
        j = symbol % k
        position[j] += units
        fills[i] = (i, j, units, 100.0 + i, 100.0 + i, 0.01, 0.0, 0.1, 0, position[j], 0.0)
    closes = 100.0 + np.arange(k)
    borrow = np.zeros(k)
    got = trades_by_symbol(fills, k, len(steps), closes, borrow)
    assert_same(got, per_symbol(fills, k, len(steps), closes, borrow))
    expected = ref.trades_by_symbol(fills, k, len(steps), closes, borrow)  # the plain twin
    assert len(got) == len(expected)
    for name in TRADE_DTYPE.names:
        want = np.array([t[name] for t in expected], dtype=TRADE_DTYPE[name])
        np.testing.assert_allclose(got[name], want, rtol=1e-12, atol=1e-9, err_msg=name)
