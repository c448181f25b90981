"""The execution kernel against its plain-Python twin, SPEC §3 rules one by one, and its properties."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from btlab.kernels import FILL_DTYPE, ExecParams, Flag, Reason, simulate
from btlab.kernels.execution import (
    ST_N_FILLS,
    BarInputs,
    OrderInputs,
    SimBuffers,
    new_state,
    simulate_nb,
)
from tests.reference import execution as ref
from tests.strategies import Bars, bars, exec_params, scales, targets

DAY = 86_400 * 10**9
PROPS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def run(b: Bars, target: np.ndarray, p: ExecParams, scale: np.ndarray | None = None):
    return simulate(*b.arrays(), target, p, scale=scale)


def assert_matches_twin(b: Bars, target: np.ndarray, scale: np.ndarray, p: ExecParams) -> None:
    out = run(b, target, p, scale)
    units, cash, equity, borrow, fills, ruined, halted = ref.simulate(
        *b.arrays(), target, scale, p._asdict()
    )
    tol = dict(rtol=1e-12, atol=1e-12 * p.initial_cash)
    np.testing.assert_allclose(out.units, units, **tol)
    np.testing.assert_allclose(out.cash, cash, **tol)
    np.testing.assert_allclose(out.equity, equity, **tol)
    np.testing.assert_allclose(out.borrow, borrow, **tol)
    assert len(out.fills) == len(fills)
    for name in FILL_DTYPE.names:
        expected = np.array([getattr(f, name) for f in fills], dtype=FILL_DTYPE[name])
        np.testing.assert_allclose(out.fills[name], expected, **tol, err_msg=name)
    assert bool(out.flags & Flag.RUINED) == ruined
    assert bool(out.flags & Flag.HALTED_MAX_DRAWDOWN) == halted


@PROPS
@given(data=st.data(), b=bars(), p=exec_params())
def test_kernel_matches_reference_twin(data: st.DataObject, b: Bars, p: ExecParams) -> None:
    """Bar by bar against the twin, unknown (NaN) scales included."""
    target = data.draw(targets(len(b)))
    assert_matches_twin(b, target, data.draw(scales(len(b), p.sizing)), p)


@PROPS
@given(data=st.data(), b=bars(min_size=10), p=exec_params(), volume_seed=st.integers(0, 2**32 - 1))
def test_kernel_matches_twin_where_orders_wait_through_stops(
    data: st.DataObject, b: Bars, p: ExecParams, volume_seed: int
) -> None:
    """Half the bars without volume and a stop always on: orders wait often, and stops hit
    while they wait (a target change kept, an every_bar re-size dropped)."""
    p = p._replace(skip_zero_volume=True, stop_loss=p.stop_loss or 0.02, max_drawdown=0.0)
    no_volume = np.random.default_rng(volume_seed).random(len(b)) < 0.5
    b = Bars(b.ts, b.open, b.high, b.low, b.close, np.where(no_volume, 0.0, 1000.0))
    target = data.draw(targets(len(b)))
    assert_matches_twin(b, target, data.draw(scales(len(b), p.sizing)), p)


@settings(max_examples=60, deadline=None)
@given(data=st.data(), b=bars(min_size=5, max_size=80), p=exec_params(), chunk=st.integers(1, 7))
def test_chunked_runs_are_bit_identical(
    data: st.DataObject, b: Bars, p: ExecParams, chunk: int
) -> None:
    target = data.draw(targets(len(b)))
    scale = data.draw(scales(len(b), p.sizing))
    whole = run(b, target, p, scale)
    n = len(b)
    state = new_state(p.initial_cash)
    fills = np.empty(3 * n + 2, dtype=FILL_DTYPE)
    outs = [np.empty(n) for _ in range(4)]
    bars, orders, out = BarInputs(*b.arrays()), OrderInputs(target, scale), SimBuffers(*outs, fills)
    for start in range(0, n, chunk):
        assert simulate_nb(bars, orders, p, state, out, start, min(n, start + chunk)) == 0
    for got, want in zip(outs, (whole.units, whole.cash, whole.equity, whole.borrow), strict=True):
        assert np.array_equal(got, want)
    assert fills[: int(state[ST_N_FILLS])].tobytes() == whole.fills.tobytes()


@PROPS
@given(data=st.data(), b=bars(), p=exec_params())
def test_conservation_of_money(data: st.DataObject, b: Bars, p: ExecParams) -> None:
    """final - initial = P&L of the fills at reference prices (+ open position marked) - every cost."""
    target = data.draw(targets(len(b)))
    out = run(b, target, p, data.draw(scales(len(b), p.sizing)))
    f = out.fills
    trading_pnl = float(np.sum(-f["units"] * f["price"])) + out.units[-1] * b.close[-1]
    costs = float(
        np.sum(f["spread_cost"] + f["slippage_cost"] + f["commission"]) + np.sum(out.borrow)
    )
    scale = p.initial_cash + float(np.sum(np.abs(f["units"] * f["price"])))
    assert abs((out.equity[-1] - p.initial_cash) - (trading_pnl - costs)) <= 1e-9 * scale


COST_FIELDS = ("spread_bps", "slippage_bps", "commission_bps", "borrow_rate_annual")


@PROPS
@given(
    data=st.data(),
    b=bars(),
    p=exec_params(costs=True, lots=False),
    field=st.sampled_from(COST_FIELDS),
    bump=st.sampled_from([0.1, 1.0, 50.0]),
)
def test_raising_a_proportional_cost_never_raises_final_equity(
    data: st.DataObject, b: Bars, p: ExecParams, field: str, bump: float
) -> None:
    """Same targets, same positions (unit sizing, leverage cap never binding): more cost, no more money."""
    p = p._replace(
        sizing=1,
        max_leverage=100.0,
        max_drawdown=0.0,
        initial_cash=1e9,
        commission_fixed=0.0,
        commission_min=0.0,
    )
    target = data.draw(targets(len(b)))
    base = run(b, target, p)
    dearer = run(b, target, p._replace(**{field: getattr(p, field) + bump}))
    assert np.array_equal(base.units, dearer.units)
    assert dearer.equity[-1] <= base.equity[-1]


@settings(max_examples=80, deadline=None)
@given(data=st.data(), b=bars(min_size=4, max_size=60), p=exec_params(close_at_end=False))
def test_prefix_property(data: st.DataObject, b: Bars, p: ExecParams) -> None:
    """Running on bars[:t] gives the prefix of running on bars (without the end-of-data exit)."""
    target = data.draw(targets(len(b)))
    t = data.draw(st.integers(1, len(b) - 1))
    scale = data.draw(scales(len(b), p.sizing))
    full = run(b, target, p, scale)
    cut = Bars(*(a[:t] for a in b.arrays()))
    part = run(cut, target[:t], p, scale[:t])
    assert np.array_equal(part.equity, full.equity[:t])
    assert np.array_equal(part.units, full.units[:t])
    assert part.fills.tobytes() == full.fills[full.fills["bar"] < t].tobytes()


def flat_bars(opens, highs, lows, closes, volume=None, step_days=1) -> Bars:
    n = len(closes)
    vol = np.full(n, 1000.0) if volume is None else np.asarray(volume, dtype=float)
    ts = (np.arange(n, dtype=np.int64) * step_days * DAY) + 1_420_070_400 * 10**9
    return Bars(ts, *(np.asarray(a, dtype=float) for a in (opens, highs, lows, closes)), vol)


def test_golden_round_trip_with_every_cost() -> None:
    """Hand-computed: buy 1x at bar 1's open, sell at bar 3's open; 10 bps spread, 5 slippage, 2 commission, min 1."""
    b = flat_bars(
        [100, 100, 110, 120, 120],
        [101, 101, 111, 121, 121],
        [99, 99, 109, 119, 119],
        [100, 110, 120, 120, 120],
    )
    p = ExecParams(
        initial_cash=10_000.0,
        spread_bps=10.0,
        slippage_bps=5.0,
        commission_bps=2.0,
        commission_min=1.0,
    )
    out = run(b, np.array([0.0, 1.0, 1.0, 0.0, 0.0]), p)
    buy, sell = out.fills
    assert buy["units"] == pytest.approx(100.0)  # 1.0 * 10_000 / 100
    assert buy["fill_price"] == pytest.approx(100.0 * 1.001)  # + (5 + 5) bps
    assert buy["commission"] == pytest.approx(2e-4 * 100 * 100.1)  # 2.002 > min 1
    cash_after_buy = 10_000.0 - 100 * 100.1 - 2.002
    assert out.equity[1] == pytest.approx(cash_after_buy + 100 * 110)
    assert sell["units"] == pytest.approx(-100.0)
    assert sell["fill_price"] == pytest.approx(120.0 * 0.999)
    final = cash_after_buy + 100 * 119.88 - 2e-4 * 100 * 119.88
    assert out.equity[-1] == pytest.approx(final)
    assert sell["spread_cost"] == pytest.approx(100 * 120 * 5e-4)
    assert sell["slippage_cost"] == pytest.approx(100 * 120 * 5e-4)
    assert [int(r) for r in out.fills["reason"]] == [Reason.SIGNAL, Reason.SIGNAL]


def test_fill_at_close_uses_the_close_and_equity_marks_there() -> None:
    b = flat_bars([100, 100, 100], [105, 105, 105], [95, 95, 95], [100, 102, 104])
    out = run(
        b,
        np.array([0.0, 1.0, 1.0]),
        ExecParams(initial_cash=1_000.0, fill_at=1, close_at_end=False),
    )
    assert out.fills["bar"][0] == 1 and out.fills["price"][0] == 102.0
    assert out.equity[1] == pytest.approx(1_000.0)
    assert out.equity[2] == pytest.approx(1_000.0 / 102 * 104)


def test_stop_gapped_through_exits_at_the_open_and_stays_flat_until_target_changes() -> None:
    b = flat_bars(
        [100, 100, 90, 95, 95, 95],
        [101, 101, 96, 96, 96, 96],
        [99, 99, 89, 94, 94, 94],
        [100, 100, 95, 95, 95, 95],
    )
    target = np.array([0.0, 1.0, 1.0, 1.0, 0.0, 1.0])
    out = run(
        b,
        target,
        ExecParams(initial_cash=1_000.0, stop_loss=0.05, every_bar=True, close_at_end=False),
    )
    reasons = [int(r) for r in out.fills["reason"]]
    assert reasons == [Reason.SIGNAL, Reason.STOP_LOSS, Reason.SIGNAL]
    assert out.fills["bar"][1] == 2 and out.fills["price"][1] == 90.0  # the open, not the 95 level
    assert out.units[3] == 0.0 and out.units[4] == 0.0  # every_bar does not re-enter after a stop
    assert out.fills["bar"][2] == 5  # re-entry once the target changes (0 -> 1)


def test_bar_touching_both_levels_exits_at_the_stop_and_entry_bar_is_checked() -> None:
    b = flat_bars([100, 100, 100], [101, 112, 101], [99, 94, 99], [100, 100, 100])
    out = run(
        b,
        np.array([0.0, 1.0, 1.0]),
        ExecParams(initial_cash=1_000.0, stop_loss=0.05, take_profit=0.1),
    )
    assert int(out.fills["reason"][1]) == Reason.STOP_LOSS
    assert out.fills["bar"][1] == 1 and out.fills["price"][1] == pytest.approx(95.0)


def test_take_profit_on_a_short_and_borrow_by_calendar_time() -> None:
    b = flat_bars(
        [100, 100, 100, 100],
        [101, 101, 101, 101],
        [99, 99, 99, 85],
        [100, 100, 100, 100],
        step_days=2,
    )
    p = ExecParams(initial_cash=1_000.0, take_profit=0.1, borrow_rate_annual=0.365)
    out = run(b, np.array([0.0, -1.0, -1.0, -1.0]), p)
    assert int(out.fills["reason"][-1]) == Reason.TAKE_PROFIT and out.fills["price"][
        -1
    ] == pytest.approx(90.0)
    # 10 units short at 100 held over two 2-day bars: 10 * 100 * 0.365 * 2 / 365 each
    assert out.borrow[1] == pytest.approx(2.0) and out.borrow[2] == pytest.approx(2.0)
    assert out.borrow[3] == 0.0  # flat before the close


def test_zero_volume_defers_the_order_to_the_next_bar_with_volume() -> None:
    b = flat_bars(
        [100, 100, 101, 102], [101] * 4, [99] * 4, [100, 101, 102, 103], volume=[1, 0, 0, 5]
    )
    out = run(b, np.array([0.0, 1.0, 1.0, 1.0]), ExecParams(initial_cash=1_000.0))
    assert list(out.fills["bar"]) == [3, 3]  # entry on bar 3, then the end-of-data exit
    off = run(
        b, np.array([0.0, 1.0, 1.0, 1.0]), ExecParams(initial_cash=1_000.0, skip_zero_volume=False)
    )
    assert off.fills["bar"][0] == 1


def test_lot_size_and_leverage_cap() -> None:
    b = flat_bars([30, 30], [31, 31], [29, 29], [30, 30])
    out = run(
        b, np.array([3.0, 3.0]), ExecParams(initial_cash=1_000.0, max_leverage=2.0, lot_size=5.0)
    )
    assert out.fills["units"][0] == 65.0  # cap 2 * 1000 / 30 = 66.67, rounded down to lots of 5


def test_max_drawdown_halts_at_next_open() -> None:
    b = flat_bars(
        [100, 100, 80, 70, 60], [101, 101, 81, 71, 61], [99, 79, 69, 59, 59], [100, 80, 70, 60, 60]
    )
    out = run(b, np.array([1.0] * 5), ExecParams(initial_cash=1_000.0, max_drawdown=0.15))
    assert out.flags & Flag.HALTED_MAX_DRAWDOWN and out.halt_bar == 1
    assert int(out.fills["reason"][1]) == Reason.MAX_DRAWDOWN and out.fills["bar"][1] == 2
    assert np.all(out.units[2:] == 0.0) and len(out.fills) == 2


def test_ruin_closes_and_halts() -> None:
    b = flat_bars(
        [100, 100, 160, 100], [101, 170, 170, 101], [99, 99, 99, 99], [100, 150, 160, 100]
    )
    out = run(b, np.array([-3.0] * 4), ExecParams(initial_cash=1_000.0, max_leverage=3.0))
    assert out.flags & Flag.RUINED and out.halt_bar == 1
    assert int(out.fills["reason"][-1]) == Reason.RUIN and np.all(out.units[1:] == 0.0)
    assert out.equity[1] <= 0.0 and out.equity[-1] == out.equity[1]


def test_bad_lengths_are_rejected() -> None:
    b = flat_bars([1, 1], [1, 1], [1, 1], [1, 1])
    with pytest.raises(ValueError, match="lengths"):
        simulate(*b.arrays(), np.zeros(3), ExecParams())


def test_an_order_with_unknown_scale_waits_for_the_first_bar_where_it_is_known() -> None:
    """Buy-and-hold sized by a scale unknown (NaN) for 3 bars, rebalanced on change only: the
    order decided at bar 0 fills at bar 3, sized by the target and the scale of bar 3."""
    b = flat_bars(
        [100, 101, 102, 103, 104, 105], [106] * 6, [99] * 6, [101, 102, 103, 104, 105, 105]
    )
    scale = np.array([np.nan, np.nan, np.nan, 0.5, 0.8, 0.8])
    target = np.ones(6)
    for fill_at, price in ((0, 103.0), (1, 104.0)):
        p = ExecParams(initial_cash=1_000.0, sizing=2, fill_at=fill_at, close_at_end=False)
        out = run(b, target, p, scale)
        assert list(out.fills["bar"]) == [3], fill_at
        assert out.fills["price"][0] == price
        assert out.fills["units"][0] == pytest.approx(0.5 * 1_000.0 / price)
        assert np.all(out.units[:3] == 0.0) and np.all(np.isfinite(out.equity))


def test_an_order_to_go_flat_needs_no_scale() -> None:
    """Target 0 sizes to 0 units whatever the scale: an unknown scale does not hold it back."""
    b = flat_bars([100] * 5, [101] * 5, [99] * 5, [100] * 5)
    p = ExecParams(initial_cash=1_000.0, sizing=2, close_at_end=False)
    scale = np.array([1.0, 1.0, np.nan, np.nan, np.nan])
    out = run(b, np.array([0.0, 1.0, 1.0, 0.0, 0.0]), p, scale)
    assert list(out.fills["bar"]) == [1, 3] and out.units[3] == 0.0
    # unit sizing reads no scale at all
    units = run(b, np.array([0.0, 1.0, 1.0, 2.0, 2.0]), p._replace(sizing=1), scale)
    assert list(units.fills["bar"]) == [1, 3] and units.units[3] == 2.0


def stop_bars(gap: bool) -> Bars:
    """Long from bar 1 at 100 with a 5% stop (95); bar 3 trades no volume. Intrabar: bar 3's low
    touches 95; gap: bar 4 opens at 90, through the stop. Bar 5 jumps to 110."""
    lows = [99, 99, 99, 99 if gap else 94, 89 if gap else 99, 99]
    opens = [100, 100, 100, 100, 90 if gap else 100, 110]
    highs = [101, 101, 101, 101, 101, 111]
    closes = [100, 100, 100, 100, 100, 110]
    return flat_bars(opens, highs, lows, closes, volume=[1, 1, 1, 0, 1, 1])


@pytest.mark.parametrize("gap", [False, True])
@pytest.mark.parametrize("fill_at", [0, 1])
@pytest.mark.parametrize("every_bar", [False, True])
def test_a_stop_keeps_an_order_that_waits_for_volume(
    gap: bool, fill_at: int, every_bar: bool
) -> None:
    """The target drops 1 -> 0.5 on bar 3, which has no volume, so the order waits; the stop
    exits (bar 3 intrabar, or bar 4 at the open); the waiting order is kept and fills on bar 4,
    sized from the target then current (0.5), and every_bar re-sizes normally after it."""
    b = stop_bars(gap)
    p = ExecParams(
        initial_cash=1_000.0,
        stop_loss=0.05,
        fill_at=fill_at,
        every_bar=every_bar,
        close_at_end=False,
    )
    out = run(b, np.array([0.0, 1.0, 1.0, 0.5, 0.5, 0.5]), p)
    stop_bar, stop_price = (4, 90.0) if gap else (3, 95.0)
    reasons = [int(r) for r in out.fills["reason"]]
    assert reasons[:3] == [Reason.SIGNAL, Reason.STOP_LOSS, Reason.SIGNAL]
    assert out.fills["bar"][1] == stop_bar and out.fills["price"][1] == stop_price
    order = out.fills[2]
    price = (b.open if fill_at == 0 else b.close)[4]
    assert order["bar"] == 4 and order["price"] == price
    # 10 units bought at 100 and sold at the stop: equity 10 * stop_price, half of it re-invested
    assert order["units"] == pytest.approx(0.5 * 10.0 * stop_price / price)
    # the order that re-entered ends the stop's hold: every_bar re-sizes at bar 5's new price
    assert list(out.fills["bar"][3:]) == ([5] if every_bar else [])


@pytest.mark.parametrize("fill_at", [0, 1])
def test_a_stop_drops_a_waiting_every_bar_resize(fill_at: int) -> None:
    """With every_bar and an unchanged target, the order waiting on bar 3 is only a re-size: the
    stop's "flat until the target changes" wins and nothing re-enters."""
    p = ExecParams(
        initial_cash=1_000.0, stop_loss=0.05, fill_at=fill_at, every_bar=True, close_at_end=False
    )
    out = run(stop_bars(False), np.array([0.0, 1.0, 1.0, 1.0, 1.0, 1.0]), p)
    assert [int(r) for r in out.fills["reason"]] == [Reason.SIGNAL, Reason.STOP_LOSS]
    assert np.all(out.units[3:] == 0.0)


def test_a_close_order_filled_after_a_stop_on_its_bar_ends_the_flat_spell() -> None:
    """fill = "close", every bar has volume: the target drops to 0.5 on bar 3, whose low hits
    the stop; the order placed for bar 3's close still fills, and as a target change's order it
    ends the stop's flat spell, so every_bar re-sizes at bar 5's new price."""
    b = stop_bars(False)
    b = Bars(b.ts, b.open, b.high, b.low, b.close, np.full(len(b), 1.0))
    p = ExecParams(initial_cash=1_000.0, stop_loss=0.05, fill_at=1, every_bar=True)
    out = run(b, np.array([0.0, 1.0, 1.0, 0.5, 0.5, 0.5]), p._replace(close_at_end=False))
    assert [int(r) for r in out.fills["reason"]] == [Reason.SIGNAL, Reason.STOP_LOSS] + [
        Reason.SIGNAL
    ] * 2
    assert list(out.fills["bar"]) == [1, 3, 3, 5]
    assert out.fills["units"][2] == pytest.approx(0.5 * 950.0 / 100.0)
