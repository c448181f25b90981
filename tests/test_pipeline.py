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
        "benchmark",
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


@pytest.mark.parametrize("fill", ["open", "close"])
@pytest.mark.parametrize(
    "strategy",
    [{"name": "sma_cross", "params": {"fast": 10, "slow": 20}}, {"name": "buy_and_hold"}],
)
def test_vol_target_order_waits_for_the_volatility_instead_of_being_dropped(
    strategy: dict, fill: str
) -> None:
    """With a 20-bar vol lookback the volatility is known from bar 21 (20 log returns, bars
    1..20, shifted a bar). A target set before that (buy-and-hold: bar 0; sma_cross 10/20: bar
    20) waits, as a zero-volume order does, and fills at bar 21 even when rebalancing on change."""
    result = btlab.run(
        {
            "strategy": strategy,
            "execution": {"fill": fill, "rebalance": "on_change"},
            "risk": {"sizing": "vol_target", "vol_lookback": 20},
            "validation": {"enabled": False},
        }
    )
    assert np.flatnonzero(result.target)[0] <= 20 and result.target[21] != 0.0
    first = result.fill_records[0]
    assert first["bar"] == 21 and first["position_after"] > 0.0
    assert np.all(result.units[:21] == 0.0)


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
    # another strategy does not inherit the preset strategy's parameters; its own are kept
    other = resolve_request(
        {"preset": "sma_cross_daily",
         "overrides": {"strategy": {"name": "rsi_reversion", "params": {"window": 10}}}}
    )  # fmt: skip
    assert isinstance(other, RunConfig) and other.strategy.params["window"] == 10
    bare = resolve_request(
        {"preset": "sma_cross_daily", "overrides": {"strategy": {"name": "buy_and_hold"}}}
    )
    assert isinstance(bare, RunConfig) and bare.strategy.name == "buy_and_hold"
    same = resolve_request(
        {"preset": "sma_cross_daily", "overrides": {"strategy": {"name": "sma_cross"}}}
    )
    assert isinstance(same, RunConfig) and same.strategy.params["slow"] == 100
    with pytest.raises(btlab.NotFoundError, match="unknown preset"):
        resolve_request({"preset": "nope"})
    with pytest.raises(ConfigError, match="overrides"):
        resolve_request({"overrides": {}})


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({"data": {"bars": True}}, "data.bars", "integer"),
        ({"seed": True}, "seed", "integer"),
        ({"execution": {"commission_bps": "2"}}, "execution.commission_bps", "number"),
        ({"execution": {"initial_cash": "1e5"}}, "execution.initial_cash", "number"),
        ({"risk": {"max_leverage": False}}, "risk.max_leverage", "number"),
        ({"execution": {"close_at_end": 1}}, "execution.close_at_end", "boolean"),
        ({"validation": {"bootstrap": {"n_resamples": 100.0}}}, "validation.bootstrap.n_resamples",
         "integer"),
        ({"strategy": {"name": "sma_cross", "params": {"fast": "10"}}}, "strategy.params.fast",
         "integer"),
        ({"strategy": {"name": "sma_cross", "params": {"fast": 10.0}}}, "strategy.params.fast",
         "integer"),
        ({"features": [{"name": "sma", "params": {"window": "5"}}]}, "features.0.params.window",
         "integer"),
    ],
)  # fmt: skip
def test_request_types_are_strict(body: dict, field: str, message: str) -> None:
    """A JSON bool is not a number, a string is not a number, a float is not an int."""
    with pytest.raises(ConfigError) as info:
        parse_config(body)
    errors = dict(info.value.errors)
    assert field in errors, info.value.errors
    assert message in errors[field], errors[field]


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
@pytest.mark.parametrize(
    "field",
    ["execution.spread_bps", "execution.commission_fixed", "execution.initial_cash",
     "risk.max_leverage", "risk.stop_loss", "metrics.periods_per_year", "data.vol_annual"],
)  # fmt: skip
def test_nan_and_inf_are_rejected_by_name(field: str, value: float) -> None:
    section, name = field.split(".")
    with pytest.raises(ConfigError) as info:
        parse_config({section: {name: value}})
    errors = dict(info.value.errors)
    assert errors.get(field) == "must be a finite number", info.value.errors


@pytest.mark.parametrize(
    ("field", "too_big"),
    [
        ("execution.initial_cash", 1e13),
        ("execution.commission_fixed", 1e12),
        ("execution.commission_fixed", 1e308),
        ("execution.commission_min", 1e12),
        ("execution.lot_size", 1e12),
        ("risk.units", 1e13),
        ("metrics.periods_per_year", 1e10),
        ("validation.bootstrap.mean_block_length", 1e12),
        ("validation.n_trials", 10**13),
    ],
)
def test_every_cost_and_size_has_an_upper_bound(field: str, too_big: float) -> None:
    *sections, name = field.split(".")
    body: dict = {name: too_big}
    for section in reversed(sections):
        body = {section: body}
    with pytest.raises(ConfigError) as info:
        parse_config(body)
    errors = dict(info.value.errors)
    assert "less than or equal to" in errors.get(field, ""), info.value.errors


def test_lax_where_json_has_no_type_of_its_own() -> None:
    """Ints fill float fields; ISO text (and datetime objects) fill timestamps."""
    from datetime import datetime

    cfg = parse_config({"execution": {"commission_bps": 2, "initial_cash": 50_000},
                        "data": {"start": "2020-01-02T00:00:00"}})  # fmt: skip
    assert cfg.execution.commission_bps == 2.0 and isinstance(cfg.execution.initial_cash, float)
    assert cfg.data.start == datetime(2020, 1, 2)  # type: ignore[union-attr]
    assert parse_config({"data": {"start": datetime(2020, 1, 2)}}) == cfg.model_copy(
        update={"execution": parse_config({}).execution}
    )
    assert parse_config(cfg.model_dump(mode="json")) == cfg
    with pytest.raises(ConfigError, match=r"data\.start"):
        parse_config({"data": {"start": "not a date"}})
    with pytest.raises(ConfigError, match=r"data\.start"):
        parse_config({"data": {"start": 1_600_000_000}})
