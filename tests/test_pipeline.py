"""The whole pipeline: causality and prefix properties, config handling, presets, hashing."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import btlab
from btlab.config import RunConfig, parse_config
from btlab.errors import ConfigError
from btlab.pipeline import data_identity
from btlab.presets import list_presets, load_preset, resolve_request
from tests.strategies import Bars, bars

STRATEGY_CASES = [
    {"name": "sma_cross", "params": {"fast": 3, "slow": 7}},
    {"name": "sma_cross", "params": {"fast": 2, "slow": 5, "ma": "ema", "long_short": True}},
    {"name": "ma_trend", "params": {"window": 4, "long_short": True}},
    {
        "name": "channel_breakout",
        "params": {"entry_window": 5, "exit_window": 3, "long_short": True},
    },
    {"name": "rsi_reversion", "params": {"window": 3, "lower": 40, "upper": 60}},
    {"name": "buy_and_hold", "params": {}},
]


def frame(b: Bars) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "ts": pd.to_datetime(b.ts, utc=True),
            "open": b.open, "high": b.high, "low": b.low, "close": b.close, "volume": b.volume,
        }
    )  # fmt: skip


def request(strategy: dict, **risk: float) -> dict:
    return {
        "strategy": strategy,
        "execution": {"spread_bps": 3, "slippage_bps": 1, "commission_bps": 2, "commission_min": 0.5,
                      "borrow_rate_annual": 0.05, "close_at_end": False},
        "risk": {"sizing": "vol_target", "vol_lookback": 3, "max_leverage": 2.0, **risk},
        "validation": {"enabled": False},
        # pinned: inferred from the whole dataset's calendar, it is metadata, not a bar's value
        "metrics": {"periods_per_year": 252},
    }  # fmt: skip


def perturb(b: Bars, k: int, seed: int) -> Bars:
    """Bars k.. replaced by another valid path (prices and volume), bars before k untouched."""
    rng = np.random.default_rng(seed)
    n = len(b)
    scale = np.exp(rng.normal(0, 0.1, n))
    scale[:k] = 1.0
    o, h, lo, c = (a * scale for a in (b.open, b.high, b.low, b.close))
    v = b.volume.copy()
    v[k:] = rng.integers(0, 5, n - k) * 1000.0
    return Bars(b.ts, o, h, lo, c, v)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(b=bars(min_size=12, max_size=50), strategy=st.sampled_from(STRATEGY_CASES), data=st.data())
def test_causality_nothing_before_k_depends_on_bars_from_k(
    b: Bars, strategy: dict, data: st.DataObject
) -> None:
    k = data.draw(st.integers(1, len(b) - 1))
    req = request(strategy, stop_loss=0.03, take_profit=0.06)
    base = btlab.run(req, data=frame(b))
    other = btlab.run(req, data=frame(perturb(b, k, data.draw(st.integers(0, 2**32 - 1)))))
    assert np.array_equal(base.target[: k + 1], other.target[: k + 1])
    assert np.array_equal(base.equity_values[:k], other.equity_values[:k])
    before = base.fill_records[base.fill_records["bar"] < k]
    assert before.tobytes() == other.fill_records[other.fill_records["bar"] < k].tobytes()


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(b=bars(min_size=12, max_size=50), strategy=st.sampled_from(STRATEGY_CASES), data=st.data())
def test_prefix_property_through_the_pipeline(b: Bars, strategy: dict, data: st.DataObject) -> None:
    t = data.draw(st.integers(2, len(b) - 1))
    req = request(strategy, max_drawdown=0.2)
    full = btlab.run(req, data=frame(b))
    part = btlab.run(req, data=frame(Bars(*(a[:t] for a in b.arrays()))))
    assert np.array_equal(part.target, full.target[:t])
    assert np.array_equal(part.equity_values, full.equity_values[:t])
    assert part.fill_records.tobytes() == full.fill_records[full.fill_records["bar"] < t].tobytes()


def test_default_run_produces_every_table_and_metric() -> None:
    result = btlab.run({"validation": {"enabled": False}})
    assert len(result.equity) == 2520
    assert list(result.equity.columns) == [
        "ts",
        "target",
        "units",
        "cash",
        "equity",
        "exposure",
        "drawdown",
        "borrow",
    ]
    assert {
        "side",
        "units",
        "price",
        "fill_price",
        "spread_cost",
        "slippage_cost",
        "commission",
        "reason",
    } <= set(result.fills)
    assert {"entry_ts", "exit_ts", "entry_price", "exit_price", "gross_pnl", "net_pnl", "return", "bars_held",
            "costs", "exit_reason"} <= set(result.trades)  # fmt: skip
    assert result.metrics["n_bars"] == 2520 and result.metrics["periods_per_year"] == 252
    assert result.trades["net_pnl"].sum() == pytest.approx(
        result.metrics["final_equity"] - 100_000, rel=1e-9
    )


@pytest.mark.parametrize("name", sorted(list_presets()))
def test_every_preset_runs(name: str) -> None:
    result = btlab.run(load_preset(name) | {"validation": {"enabled": False}})
    assert np.isfinite(result.metrics["final_equity"])
    assert result.metrics["trade_count"] > 0, "a preset should trade on its own data"


def test_leaving_out_a_default_is_the_same_request() -> None:
    implicit = parse_config({"strategy": {"name": "sma_cross", "params": {"fast": 5}}})
    explicit = parse_config(
        {
            "strategy": {"name": "sma_cross", "params": {"fast": 5, "slow": 50}},
            "execution": {"spread_bps": 0.0},
            "seed": 0,
        }
    )
    ident = data_identity(implicit)  # the synthetic spec's, the same for all three
    assert btlab.config_hash(implicit, ident) == btlab.config_hash(explicit, ident)
    other = parse_config({"strategy": {"name": "sma_cross", "params": {"fast": 6}}})
    assert btlab.config_hash(other, ident) != btlab.config_hash(implicit, ident)
    assert btlab.run(implicit).config_hash == btlab.config_hash(implicit, ident)


def test_other_data_is_another_run() -> None:
    _, _, h1 = btlab.resolve_config({"data": {"seed": 1}})
    _, _, h2 = btlab.resolve_config({"data": {"seed": 2}})
    assert h1 != h2


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"strategy": {"name": "nope"}}, "strategy.name"),
        (
            {"strategy": {"name": "sma_cross", "params": {"fast": 50, "slow": 10}}},
            "strategy.params",
        ),
        ({"strategy": {"name": "sma_cross", "params": {"fast": 0}}}, "strategy.params.fast"),
        ({"strategy": {"name": "sma_cross", "params": {"fastt": 5}}}, "strategy.params.fastt"),
        ({"features": [{"name": "no_such_feature"}]}, "features.0.name"),
        ({"features": [{"name": "sma", "params": {"window": -3}}]}, "features.0.params.window"),
        ({"execution": {"spread_bps": -1}}, "execution.spread_bps"),
        ({"execution": {"commission_bps": -0.5}}, "execution.commission_bps"),
        ({"risk": {"stop_loss": 1.5}}, "risk.stop_loss"),
        ({"data": {"source": "csv"}}, "data.path"),
        ({"seed": "abc"}, "seed"),
        ({"unknown_section": {}}, "unknown_section"),
    ],
)
def test_bad_configs_are_rejected_naming_the_field(body: dict, field: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(body)
    assert field in [loc for loc, _ in info.value.errors], info.value.errors
    assert "Value error" not in str(info.value)


def test_preset_overrides_merge_in_depth() -> None:
    config = resolve_request(
        {"preset": "sma_cross_daily", "overrides": {"strategy": {"params": {"fast": 5}}}}
    )
    assert isinstance(config, RunConfig)
    assert config.strategy.params["fast"] == 5 and config.strategy.params["slow"] == 100
    with pytest.raises(btlab.NotFoundError, match="unknown preset"):
        resolve_request({"preset": "nope"})
    with pytest.raises(ConfigError, match="overrides"):
        resolve_request({"overrides": {}})
