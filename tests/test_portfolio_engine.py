"""The portfolio engine (SPEC §8) against its plain-Python twin, K = 1 against the single-symbol
entry point, and its properties: conservation of money, causality over every symbol, chunking."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from btlab.kernels import FILL_DTYPE, ExecParams, Flag, Reason, Status
from btlab.kernels.portfolio import (
    PortfolioBars,
    PortfolioOrders,
    new_portfolio_state,
    portfolio_buffers,
    simulate_portfolio_all_nb,
    simulate_portfolio_nb,
)
from btlab.kernels.rules import ST_N_FILLS, fill_capacity
from tests.reference import portfolio as ref
from tests.strategies import bars, exec_params, scales, targets

PROPS = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def run(pb: PortfolioBars, orders: PortfolioOrders, p: ExecParams):
    n, k = pb.close.shape
    out = portfolio_buffers(n, k, fill_capacity(n, k))
    state = new_portfolio_state(p.initial_cash, k)
    status = simulate_portfolio_all_nb(pb, orders, p, state, out)
    assert status == 0
    return out, out.fills[: int(state[ST_N_FILLS])].copy(), state


@st.composite
def portfolios(draw: st.DrawFn, max_symbols: int = 4, min_size: int = 2, max_size: int = 40):
    """K symbols on one clock: each a random bar series, with a random listing, delisting and
    gaps (NaN rows), at least one bar each."""
    k = draw(st.integers(1, max_symbols))
    base = draw(bars(min_size=min_size, max_size=max_size))
    n = len(base)
    cols = [draw(bars(min_size=n, max_size=n)) for _ in range(k)]
    ts = base.ts
    arrays = {name: np.empty((n, k)) for name in ("open", "high", "low", "close", "volume")}
    for j, b in enumerate(cols):
        first = draw(st.integers(0, n - 1))
        last = draw(st.integers(first, n - 1))
        present = np.zeros(n, dtype=bool)
        present[first : last + 1] = True
        if draw(st.booleans()):  # gaps inside the listed span
            holes = draw(st.lists(st.integers(first, last), max_size=max(1, (last - first) // 3)))
            present[holes] = False
            present[first] = True
        for name in arrays:
            col = getattr(b, name)
            arrays[name][:, j] = np.where(present, col, np.nan)
    return PortfolioBars(ts, *(np.ascontiguousarray(arrays[x]) for x in
                               ("open", "high", "low", "close", "volume")))  # fmt: skip


@st.composite
def orders_for(draw: st.DrawFn, pb: PortfolioBars, sizing: int) -> PortfolioOrders:
    n, k = pb.close.shape
    target = np.column_stack([draw(targets(n)) for _ in range(k)])
    scale = np.column_stack([draw(scales(n, sizing)) for _ in range(k)])
    schedule = np.array(sorted(draw(st.sets(st.integers(0, n - 1), max_size=4))), dtype=np.int64)
    return PortfolioOrders(np.ascontiguousarray(target), np.ascontiguousarray(scale), schedule)


def rows(a: np.ndarray) -> list[list[float]]:
    return [list(map(float, r)) for r in a]


def assert_matches_twin(pb: PortfolioBars, orders: PortfolioOrders, p: ExecParams) -> None:
    out, fills, state = run(pb, orders, p)
    units, cash, equity, borrow, twin_fills, ruined, halted = ref.simulate(
        pb.ts, rows(pb.open), rows(pb.high), rows(pb.low), rows(pb.close), rows(pb.volume),
        rows(orders.target), rows(orders.scale), p._asdict(), list(map(int, orders.schedule)),
    )  # fmt: skip
    tol = dict(rtol=1e-12, atol=1e-12 * p.initial_cash)
    np.testing.assert_allclose(out.units, np.array(units).reshape(out.units.shape), **tol)
    np.testing.assert_allclose(out.cash, cash, **tol)
    np.testing.assert_allclose(out.equity, equity, **tol)
    np.testing.assert_allclose(out.borrow, np.array(borrow).reshape(out.borrow.shape), **tol)
    assert len(fills) == len(twin_fills)
    for name in FILL_DTYPE.names:
        expected = np.array([getattr(f, name) for f in twin_fills], dtype=FILL_DTYPE[name])
        np.testing.assert_allclose(fills[name], expected, **tol, err_msg=name)
    flags = int(state[4])
    assert bool(flags & Flag.RUINED) == ruined
    assert bool(flags & Flag.HALTED_MAX_DRAWDOWN) == halted


@PROPS
@given(data=st.data(), pb=portfolios(), p=exec_params())
def test_portfolio_kernel_matches_the_twin(data: st.DataObject, pb: PortfolioBars, p) -> None:
    """Random K, listings, delistings and gaps, costs, stops, borrow, lots, leverage, halts."""
    assert_matches_twin(pb, data.draw(orders_for(pb, p.sizing)), p)


@PROPS
@given(data=st.data(), pb=portfolios(max_symbols=3, min_size=8), p=exec_params())
def test_portfolio_kernel_matches_the_twin_with_a_tight_leverage_cap(
    data: st.DataObject, pb: PortfolioBars, p: ExecParams
) -> None:
    """Gross targets over the cap: every row is scaled down by the same factor."""
    p = p._replace(max_leverage=data.draw(st.sampled_from([0.3, 0.5, 1.0])))
    assert_matches_twin(pb, data.draw(orders_for(pb, p.sizing)), p)


def assert_one_column_equals_the_1d_run(b, target, scale, p) -> None:
    """The 1-D run (compiled for one symbol: quiet bars go through the short loop) equals the
    same run as an (n, 1) portfolio (the generic kernel, every bar through every step)."""
    from btlab.kernels import simulate

    n = len(b)
    one = simulate(*b.arrays(), target, p, scale=scale)
    col = lambda a: np.ascontiguousarray(a, dtype=np.float64).reshape(n, 1)  # noqa: E731
    pb = PortfolioBars(b.ts, col(b.open), col(b.high), col(b.low), col(b.close), col(b.volume))
    out, fills, _ = run(pb, PortfolioOrders(col(target), col(scale), np.zeros(0, np.int64)), p)
    assert np.array_equal(out.equity, one.equity) and np.array_equal(out.cash, one.cash)
    assert np.array_equal(out.units[:, 0], one.units)
    assert np.array_equal(out.borrow[:, 0], one.borrow)
    assert fills.tobytes() == one.fills.tobytes()


@settings(max_examples=80, deadline=None)
@given(data=st.data(), b=bars(), p=exec_params())
def test_one_column_equals_the_single_symbol_entry_point(data: st.DataObject, b, p) -> None:
    """K = 1 as a (n, 1) portfolio (the generic compiled kernel) equals `simulate`'s 1-D run."""
    n = len(b)
    assert_one_column_equals_the_1d_run(b, data.draw(targets(n)), data.draw(scales(n, p.sizing)), p)


@settings(max_examples=150, deadline=None)
@given(
    data=st.data(), b=bars(min_size=100, max_size=400, zero_volume=False), p=exec_params(),
    change=st.sampled_from([0.005, 0.02, 0.08]),
    exits=st.tuples(st.sampled_from([0.0, 0.01, 0.03]), st.sampled_from([0.0, 0.01, 0.03])),
    borrow=st.sampled_from([0.0, 0.0, 0.05]),
)  # fmt: skip
def test_quiet_spans_equal_the_generic_kernel(
    data: st.DataObject, b, p, change: float, exits: tuple[float, float], borrow: float
) -> None:
    """Long spans of an unchanged target (the single-symbol kernel's quiet loop), ended by
    stops, take-profits, ruin (leverage on volatile bars), the drawdown halt, a target change
    or the data's end: bit for bit the generic kernel's run."""
    n = len(b)
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    levels = rng.permutation(np.array([0.0, 1.0, -1.0, 3.0, -3.0, 0.5, -0.5]))
    target = levels[np.cumsum(rng.random(n) < change) % len(levels)]
    p = p._replace(
        max_leverage=max(p.max_leverage, 3.0), stop_loss=exits[0], take_profit=exits[1],
        borrow_rate_annual=borrow,
    )  # fmt: skip
    assert_one_column_equals_the_1d_run(b, target, data.draw(scales(n, p.sizing)), p)


@PROPS
@given(data=st.data(), pb=portfolios(), p=exec_params())
def test_money_is_conserved_across_symbols(data: st.DataObject, pb: PortfolioBars, p) -> None:
    """Final cash = initial - Σ (units * fill_price + commission) - Σ borrow, over all symbols,
    and equity = cash + Σ units * mark at every bar."""
    out, fills, _ = run(pb, data.draw(orders_for(pb, p.sizing)), p)
    spent = float(np.sum(fills["units"] * fills["fill_price"] + fills["commission"]))
    assert np.isclose(out.cash[-1], p.initial_cash - spent - out.borrow.sum(), rtol=1e-9,
                      atol=1e-6 * p.initial_cash)  # fmt: skip
    mark = np.copy(pb.close)
    for j in range(mark.shape[1]):  # each symbol marked at its last close
        col = mark[:, j]
        idx = np.where(~np.isnan(col), np.arange(len(col)), 0)
        np.maximum.accumulate(idx, out=idx)
        mark[:, j] = np.where(np.isnan(col[idx]), 0.0, col[idx])
    expected = out.cash + np.sum(np.where(out.units != 0, out.units * mark, 0.0), axis=1)
    np.testing.assert_allclose(out.equity, expected, rtol=1e-9, atol=1e-6 * p.initial_cash)


@PROPS
@given(data=st.data(), pb=portfolios(min_size=4), p=exec_params())
def test_no_bar_sees_a_later_bar_of_any_symbol(data: st.DataObject, pb: PortfolioBars, p) -> None:
    """SPEC §8 causality: changing every value of every symbol from clock bar j on (prices and
    targets) leaves every output before j unchanged."""
    p = p._replace(close_at_end=False)
    orders = data.draw(orders_for(pb, p.sizing))
    n = pb.close.shape[0]
    j = data.draw(st.integers(1, n - 1))
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))

    def later(a: np.ndarray, lo: float, hi: float) -> np.ndarray:
        a = a.copy()
        a[j:] = np.where(np.isnan(a[j:]), np.nan, rng.uniform(lo, hi, a[j:].shape))
        return a

    close = later(pb.close, 50.0, 150.0)
    other = PortfolioBars(
        pb.ts, later(pb.open, 50, 150), np.fmax(later(pb.high, 150, 200), close),
        np.fmin(later(pb.low, 1, 50), close), close, later(pb.volume, 0, 10),
    )  # fmt: skip
    other_orders = orders._replace(target=later(orders.target, -1, 1))
    a, fa, _ = run(pb, orders, p)
    b, fb, _ = run(other, other_orders, p)
    assert np.array_equal(a.equity[:j], b.equity[:j]) and np.array_equal(a.units[:j], b.units[:j])
    assert fa[fa["bar"] < j].tobytes() == fb[fb["bar"] < j].tobytes()


@settings(max_examples=60, deadline=None)
@given(data=st.data(), pb=portfolios(min_size=5), p=exec_params(), chunk=st.integers(1, 7))
def test_chunked_portfolio_runs_are_bit_identical(data, pb: PortfolioBars, p, chunk: int) -> None:
    orders = data.draw(orders_for(pb, p.sizing))
    whole, whole_fills, _ = run(pb, orders, p)
    n, k = pb.close.shape
    out = portfolio_buffers(n, k, fill_capacity(n, k))
    state = new_portfolio_state(p.initial_cash, k)
    for start in range(0, n, chunk):
        assert simulate_portfolio_nb(pb, orders, p, state, out, start, min(n, start + chunk)) == 0
    assert np.array_equal(out.equity, whole.equity)
    assert out.fills[: int(state[ST_N_FILLS])].tobytes() == whole_fills.tobytes()


def _two_symbols(n: int = 6) -> PortfolioBars:
    ts = np.arange(n, dtype=np.int64) * 86_400 * 10**9
    px = np.column_stack([np.full(n, 100.0), np.full(n, 50.0)])
    return PortfolioBars(ts, px, px * 1.01, px * 0.99, px.copy(), np.full((n, 2), 1e6))


def test_a_rebalance_books_sells_before_buys() -> None:
    """Symbol 1 (bought first) is sold to fund symbol 0: the sell is the bar's first fill,
    though symbol 0 comes first in symbol order."""
    pb = _two_symbols()
    target = np.array([[0, 0], [0, 1], [0, 1], [1, 0], [1, 0], [1, 0]], dtype=np.float64)
    orders = PortfolioOrders(target, np.ones_like(target), np.zeros(0, np.int64))
    _, fills, _ = run(pb, orders, ExecParams(commission_bps=10.0, close_at_end=False))
    bar3 = fills[fills["bar"] == 3]
    assert list(bar3["symbol"]) == [1, 0] and bar3["units"][0] < 0 < bar3["units"][1]
    assert list(fills["reason"]) == [Reason.SIGNAL] * 3


def test_the_leverage_cap_scales_the_whole_row() -> None:
    """Targets 0.9 and 0.6 under a cap of 1.0 are scaled by 1/1.5 each: weights 0.6 and 0.4."""
    pb = _two_symbols()
    target = np.tile([0.9, 0.6], (6, 1))
    orders = PortfolioOrders(target, np.ones_like(target), np.zeros(0, np.int64))
    out, _fills, _ = run(pb, orders, ExecParams(close_at_end=False))
    weights = out.units[-1] * pb.close[-1] / out.equity[-1]
    np.testing.assert_allclose(weights, [0.6, 0.4], rtol=1e-12)


def test_a_symbol_without_a_bar_waits_and_a_delisted_one_is_closed_at_its_last_close() -> None:
    pb = _two_symbols()
    close = pb.close.copy()
    close[1, 1] = np.nan  # symbol 1 has no bar at clock bar 1 (its order waits for bar 2)
    close[4:, 0] = np.nan  # symbol 0 is delisted after clock bar 3
    close[3, 0] = 120.0
    nan = np.isnan(close)
    pb = pb._replace(
        open=np.where(nan, np.nan, pb.open), high=np.where(nan, np.nan, np.fmax(pb.high, close)),
        low=np.where(nan, np.nan, pb.low), close=close,
        volume=np.where(nan, np.nan, pb.volume),
    )  # fmt: skip
    target = np.tile([0.5, 0.5], (6, 1))
    target[0] = 0.0
    orders = PortfolioOrders(target, np.ones_like(target), np.zeros(0, np.int64))
    out, fills, _ = run(pb, orders, ExecParams())
    assert [(int(f["bar"]), int(f["symbol"])) for f in fills[fills["reason"] == Reason.SIGNAL]] == [
        (1, 0), (2, 1)]  # fmt: skip
    end = fills[fills["reason"] == Reason.END]
    assert list(end["symbol"]) == [0, 1] and end["price"][0] == 120.0  # its last close
    assert out.units[5, 0] == 0.0


def _crash(n: int = 6, drop_at: int = 2, factor: float = 0.7) -> PortfolioBars:
    """Two symbols whose prices fall to `factor` from bar `drop_at` on."""
    pb = _two_symbols(n)
    scale = np.where(np.arange(n) >= drop_at, factor, 1.0)[:, None]
    return pb._replace(
        open=pb.open * scale, high=pb.high * scale, low=pb.low * scale, close=pb.close * scale
    )


def _held(n: int, weight: float) -> PortfolioOrders:
    target = np.full((n, 2), weight)
    return PortfolioOrders(target, np.ones_like(target), np.zeros(0, np.int64))


@pytest.mark.parametrize(
    ("params", "reason"),
    [
        (ExecParams(max_drawdown=0.1, close_at_end=False), Reason.MAX_DRAWDOWN),
        (ExecParams(max_leverage=5.0, close_at_end=False), Reason.RUIN),
    ],
)
def test_a_halt_close_that_finds_the_fill_buffer_full_says_so(params, reason) -> None:
    """The max-drawdown close (next open) and the ruin close (this close) of every position
    report FILLS_FULL where the buffer has no room left, as every other fill does."""
    pb = _crash(factor=0.7 if reason == Reason.MAX_DRAWDOWN else 0.75)
    orders = _held(6, 0.5 if reason == Reason.MAX_DRAWDOWN else 2.5)
    _, fills, _ = run(pb, orders, params)
    first = int(np.flatnonzero(fills["reason"] == reason)[0])
    n, k = pb.close.shape
    out = portfolio_buffers(n, k, first)  # room for every fill before that close
    state = new_portfolio_state(params.initial_cash, k)
    assert simulate_portfolio_all_nb(pb, orders, params, state, out) == Status.FILLS_FULL


def test_arrays_of_other_shapes_are_bad_input() -> None:
    pb = _two_symbols()
    orders = _held(5, 0.5)  # one bar short
    out = portfolio_buffers(6, 2, 64)
    state = new_portfolio_state(1e5, 2)
    assert simulate_portfolio_all_nb(pb, orders, ExecParams(), state, out) == Status.BAD_INPUT


def test_a_run_started_part_way_skips_the_schedule_entries_before_it() -> None:
    """A fresh state started at bar 3: the entries at bars 0 and 1 are passed; the target
    change seen at bar 3 waits for the schedule's bar 4."""
    pb = _two_symbols()
    orders = _held(6, 0.5)._replace(schedule=np.array([0, 1, 4], dtype=np.int64))
    out = portfolio_buffers(6, 2, 64)
    state = new_portfolio_state(1e5, 2)
    assert simulate_portfolio_nb(pb, orders, ExecParams(), state, out, 3, 6) == Status.OK
    bars = out.fills[: int(state[ST_N_FILLS])]["bar"]
    assert set(bars.tolist()) == {4, 5}  # the entry at the schedule's bar 4, the end at 5
    assert int(state[6]) == 3  # ST_SCHEDULE_NEXT: every entry passed


def test_on_a_calendar_schedule_a_target_change_waits_for_the_next_schedule_bar() -> None:
    """Targets change at bars 1 and 3; the schedule is bars 0 and 4: the first change trades at
    bar 4 (reading the target then current), nothing trades between."""
    pb = _two_symbols(7)
    target = np.zeros((7, 2))
    target[1:, 0] = 0.5
    target[3:, 1] = 0.3
    orders = PortfolioOrders(target, np.ones_like(target), np.array([0, 4], dtype=np.int64))
    _, fills, _ = run(pb, orders, ExecParams(close_at_end=False))
    assert [(int(f["bar"]), int(f["symbol"])) for f in fills] == [(4, 0), (4, 1)]
    every = orders._replace(schedule=np.zeros(0, dtype=np.int64))
    _, fills, _ = run(pb, every, ExecParams(close_at_end=False))
    assert [int(f["bar"]) for f in fills][:2] == [1, 3]  # on_change: at once


def test_the_cell_overloads_pick_the_arrays_own_indexing() -> None:
    """`cells.cell` / `set_cell` compile to a[i] for one symbol's 1-D array, a[i, k] else (the
    typing functions run at compile time; here they are called directly)."""
    from numba import types

    from btlab.kernels import cells

    one, two = types.Array(types.float64, 1, "C"), types.Array(types.float64, 2, "C")
    a, b = np.arange(3.0), np.arange(6.0).reshape(3, 2)
    assert cells._cell_typed(one, types.int64, types.int64)(a, 2, 1) == 2.0
    assert cells._cell_typed(two, types.int64, types.int64)(b, 2, 1) == 5.0
    cells._set_cell_typed(one, types.int64, types.int64, types.float64)(a, 0, 1, 9.0)
    cells._set_cell_typed(two, types.int64, types.int64, types.float64)(b, 0, 1, 7.0)
    assert a[0] == 9.0 and b[0, 1] == 7.0
    assert cells.cell(a, 1, 0) == 1.0 and cells.cell(b, 1, 0) == 2.0
