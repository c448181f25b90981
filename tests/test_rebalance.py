"""Calendar rebalance schedules (SPEC §8 "Orders"), in single-symbol runs too."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import btlab
from btlab.sweep import parse_sweep_request
from btlab.timeframes import rebalance_schedule


def _ts(*stamps: str) -> np.ndarray:
    return pd.to_datetime(list(stamps), utc=True, format="ISO8601").as_unit("ns").asi8


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        ("daily", [0, 2, 3, 4, 5, 6]),
        ("weekly", [0, 4, 5, 6]),  # the weeks of Mon 2024-01-08, 2024-01-29 and 2024-04-01
        ("monthly", [0, 5, 6]),
        ("quarterly", [0, 6]),
    ],
)
def test_the_schedule_is_the_first_clock_bar_of_each_new_period(
    rule: str, expected: list[int]
) -> None:
    ts = _ts(
        "2024-01-04 10:00", "2024-01-04 15:00", "2024-01-05", "2024-01-06", "2024-01-08",
        "2024-02-01", "2024-04-01",
    )  # fmt: skip
    assert rebalance_schedule(ts, rule).tolist() == expected


def test_a_monthly_rebalance_resizes_buy_and_hold_at_each_month_start() -> None:
    base = {"strategy": {"name": "buy_and_hold"}, "validation": {"enabled": False}}
    once = btlab.run(base)
    monthly = btlab.run({**base, "execution": {"rebalance": "monthly"}})
    assert len(once.fills) == 2  # the entry and the end
    bars = monthly.fills["bar"].to_numpy()
    starts = set(rebalance_schedule(monthly.dataset.ts, "monthly").tolist())
    assert set(bars[monthly.fills["reason"] == "signal"]) <= starts
    assert len(bars) > 24  # ten years of month starts, most of them re-sizing
    # each re-size brings the exposure back to the target at that bar's open
    for bar in bars[monthly.fills["reason"] == "signal"][1:6]:
        units = monthly.fills.loc[monthly.fills["bar"] == bar, "position_after"].iloc[0]
        open_ = monthly.dataset.open[bar]
        equity = monthly.cash[bar - 1] + monthly.units[bar - 1] * open_
        assert units * open_ / equity == pytest.approx(1.0, rel=1e-12)


def test_the_permutation_test_keeps_the_schedule() -> None:
    """The fused crossover kernel has no schedule: a scheduled run takes the generic path,
    whose statistic on the real path is the run's Sharpe ratio bit for bit."""
    from btlab.validation.run import permutation_batch, permutation_statistic

    result = btlab.run({"execution": {"rebalance": "weekly"}, "validation": {"enabled": False}})
    assert permutation_batch(result) is None
    ds = result.dataset
    assert (
        permutation_statistic(result)(ds.open, ds.high, ds.low, ds.close)
        == result.metrics["sharpe"]
    )


def test_a_sweep_takes_a_calendar_rebalance() -> None:
    request = parse_sweep_request(
        {"grid": {"fast": [5, 10]}, "execution": {"rebalance": "monthly"}}
    )
    assert request.combination_config(1).execution.rebalance == "monthly"
