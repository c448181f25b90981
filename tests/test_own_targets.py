"""Your own targets and signals (SPEC §9): `btlab.run(..., targets=...)` through the whole
pipeline, the targets' hash in the config hash, the skipped permutation test, and the signal
state machine against its plain-Python twin."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import btlab
from btlab.artifacts import write_artifacts
from btlab.errors import ConfigError
from btlab.identity import hashed_request
from btlab.pipeline import resolve_config
from btlab.targets import PERMUTATION_SKIPPED, caller_targets
from tests.reference import signals as ref
from tests.strategies import bools

BASE: dict[str, Any] = {
    "data": {"bars": 400, "seed": 5},
    "strategy": {"name": "sma_cross", "params": {"fast": 5, "slow": 20, "long_short": True}},
    "execution": {"spread_bps": 2.0, "commission_bps": 1.0},
    "validation": {"permutation": {"n_permutations": 19}, "bootstrap": {"n_resamples": 50}},
}


def _own(config: dict[str, Any]) -> dict[str, Any]:
    """The request without its strategy: what a run of the caller's targets is asked with."""
    return {k: v for k, v in config.items() if k != "strategy"}


def _stamps(dataset: Any) -> pd.DatetimeIndex:
    return pd.DatetimeIndex(dataset.ts.astype("datetime64[ns]"), tz="UTC")


@pytest.fixture(scope="module")
def strategy_run() -> btlab.RunResult:
    result = btlab.run(BASE)
    assert isinstance(result, btlab.RunResult)
    return result


def test_a_strategys_targets_handed_back_give_the_same_run_bit_for_bit(
    strategy_run: btlab.RunResult,
) -> None:
    own = btlab.run(_own(BASE), targets=strategy_run.target)
    assert isinstance(own, btlab.RunResult)
    assert own.metrics == strategy_run.metrics
    assert own.target.tobytes() == strategy_run.target.tobytes()
    assert own.equity.equals(strategy_run.equity) and own.fills.equals(strategy_run.fills)
    assert own.trades.equals(strategy_run.trades)
    for section in ("psr", "dsr", "bootstrap", "folds"):
        assert own.validation is not None and strategy_run.validation is not None
        assert own.validation[section] == strategy_run.validation[section], section
    assert strategy_run.validation is not None and strategy_run.validation["permutation"]
    assert own.config.strategy.name == "targets" and own.config.strategy.params == {"column": None}
    assert own.config_hash != strategy_run.config_hash


def test_the_permutation_test_is_skipped_with_its_reason(strategy_run: btlab.RunResult) -> None:
    own = btlab.run(_own(BASE), targets=strategy_run.target)
    assert own.validation is not None
    assert own.validation["permutation"] is None
    assert own.validation["skipped"] == {"permutation": PERMUTATION_SKIPPED}
    skipped = [w for w in own.warnings if w.code == "validation_skipped"]
    assert len(skipped) == 1 and "permutation" in skipped[0].message
    assert "skipped" not in (strategy_run.validation or {})
    off = btlab.run(
        {**_own(BASE), "validation": {"permutation": {"enabled": False}}},
        targets=strategy_run.target,
    )
    assert "skipped" not in (off.validation or {})
    assert not [w for w in off.warnings if w.code == "validation_skipped"]


def test_the_manifest_records_the_targets_strategy_and_hash(
    strategy_run: btlab.RunResult, tmp_path: Any
) -> None:
    own = btlab.run(_own(BASE), targets=strategy_run.target)
    manifest = write_artifacts(own, tmp_path / "own")
    request = manifest["request"]
    assert request["strategy"] == {"name": "targets", "params": {"column": None}}
    assert request["targets"]["shape"] == [400] and len(request["targets"]["hash"]) == 64
    # a request without caller targets hashes as it always has: no "targets" key
    assert "targets" not in hashed_request(strategy_run.config, strategy_run.identity)  # type: ignore[arg-type]


def test_array_series_and_dataframe_in_any_order_are_the_same_run(
    strategy_run: btlab.RunResult,
) -> None:
    target = strategy_run.target
    index = _stamps(strategy_run.dataset)
    series = pd.Series(target, index=index)
    shuffled = series.sample(frac=1.0, random_state=1)
    naive = pd.Series(target, index=index.tz_localize(None))  # naive timestamps are UTC
    frame = pd.DataFrame({"anything": target}, index=index)
    hashes = {
        btlab.run(_own(BASE), targets=form).config_hash
        for form in (target, list(target), series, shuffled, naive, frame)
    }
    assert len(hashes) == 1


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_hash_is_stable_for_equal_targets_and_differs_for_others(data: st.DataObject) -> None:
    n = 60
    config = {"data": {"bars": n}, "validation": {"enabled": False}}
    values = np.array(data.draw(st.lists(st.sampled_from([-1.0, -0.5, 0.0, 0.5, 1.0]),
                                         min_size=n, max_size=n)))  # fmt: skip
    i = data.draw(st.integers(0, n - 1))
    other = values.copy()
    other[i] = values[i] + 0.25
    _, _, a = resolve_config(config, targets=values)
    _, _, again = resolve_config(config, targets=values.copy() * 1.0 - 0.0)
    _, _, b = resolve_config(config, targets=other)
    assert a == again and a != b
    assert btlab.run(config, targets=values).config_hash == a


def test_caller_targets_are_not_shifted(strategy_run: btlab.RunResult) -> None:
    """A target of 1 from bar j on buys at bar j's open: the strategy's convention (its
    target[j] is decided before bar j opens), with no further bar of delay."""
    n, j = 400, 37
    target = np.zeros(n)
    target[j:] = 1.0
    own = btlab.run({"data": {"bars": n, "seed": 5}, "validation": {"enabled": False}},
                    targets=target)  # fmt: skip
    first = own.fill_records[0]
    assert int(first["bar"]) == j and first["units"] > 0
    assert first["price"] == strategy_run.dataset.open[j]


def test_sizing_applies_as_for_a_strategys_targets() -> None:
    config = {**BASE, "risk": {"sizing": "vol_target", "vol_target_annual": 0.1},
              "validation": {"enabled": False}}  # fmt: skip
    by_strategy = btlab.run(config)
    own = btlab.run(_own(config), targets=by_strategy.target)
    assert own.metrics == by_strategy.metrics


@pytest.mark.parametrize(
    ("targets", "field", "words"),
    [
        (np.zeros(399), "targets", "expected shape (400,)"),
        (np.full(400, np.nan), "targets", "NaN or infinite, the first at bar 0"),
        (np.zeros((400, 2)), "targets", "expected shape (400,)"),
        ("series_short", "targets", "3 bar(s) of the run's clock are missing"),
        ("series_extra", "targets", "1 timestamp(s) are not bars of the run"),
        ("series_twice", "targets", "timestamps given more than once"),
        ("series_text_index", "targets", "a DatetimeIndex"),
    ],
)
def test_bad_targets_are_named(
    strategy_run: btlab.RunResult, targets: Any, field: str, words: str
) -> None:
    index = _stamps(strategy_run.dataset)
    series = pd.Series(strategy_run.target, index=index)
    forms = {
        "series_short": series.iloc[:-3],
        "series_extra": pd.concat([series, pd.Series([0.0], [index[-1] + pd.Timedelta("1D")])]),
        "series_twice": pd.concat([series.iloc[:-1], series.iloc[:1]]),
        "series_text_index": pd.Series(strategy_run.target, index=[str(t) for t in index]),
    }
    given_targets = forms.get(targets, targets) if isinstance(targets, str) else targets
    with pytest.raises(ConfigError) as caught:
        btlab.run(_own(BASE), targets=given_targets)
    assert caught.value.errors[0][0] == field and words in caught.value.errors[0][1]


def test_a_request_naming_a_strategy_and_targets_is_refused(
    strategy_run: btlab.RunResult,
) -> None:
    with pytest.raises(ConfigError, match="names strategy 'sma_cross'"):
        btlab.run(BASE, targets=strategy_run.target)
    with pytest.raises(ConfigError, match="a data column"):
        btlab.run({**_own(BASE), "strategy": {"name": "targets"}})
    both = {**_own(BASE), "strategy": {"name": "targets", "params": {"column": "x"}}}
    with pytest.raises(ConfigError, match="not both"):
        btlab.run(both, targets=strategy_run.target)
    # naming the reserved strategy with targets handed in is the same run as leaving it out
    named = btlab.run({**_own(BASE), "strategy": {"name": "targets"}}, targets=strategy_run.target)
    assert named.config_hash == btlab.run(_own(BASE), targets=strategy_run.target).config_hash


# --------------------------------------------------------------------------- signals


@st.composite
def four_signals(draw: st.DrawFn, n: int) -> tuple[np.ndarray, ...]:
    return tuple(draw(bools(n)) for _ in range(4))


@settings(max_examples=100, deadline=None)
@given(signals=four_signals(80), size=st.sampled_from([0.5, 1.0, 2.0]))
def test_signals_become_the_twins_held_state_times_size(
    signals: tuple[np.ndarray, ...], size: float
) -> None:
    dataset = btlab.synthetic(bars=80, seed=2)
    el, xl, es, xs = signals
    got = caller_targets(
        btlab.signals(entries=el, exits=xl, short_entries=es, short_exits=xs, size=size), dataset
    )
    want = ref.hold_state(el.tolist(), xl.tolist(), es.tolist(), xs.tolist()) * size + 0.0
    assert got.tobytes() == want.tobytes()


def test_signal_conflicts_on_one_bar_leave_the_position_flat() -> None:
    dataset = btlab.synthetic(bars=6, seed=2)
    on = np.array([1, 0, 0, 1, 0, 0], dtype=bool)
    both = caller_targets(btlab.signals(entries=on, exits=on), dataset)
    assert both.tolist() == [0.0] * 6  # an entry with its own exit on one bar: flat
    long_and_short = caller_targets(btlab.signals(entries=on, short_entries=on), dataset)
    assert long_and_short.tolist() == [0.0] * 6
    entries = np.array([1, 0, 0, 0, 0, 0], dtype=bool)
    exits = np.array([0, 0, 1, 0, 0, 0], dtype=bool)
    shorts = np.array([0, 0, 0, 0, 1, 0], dtype=bool)
    held = caller_targets(btlab.signals(entries, exits, shorts, size=0.5), dataset)
    assert held.tolist() == [0.5, 0.5, 0.0, 0.0, -0.5, -0.5]


def test_signals_from_pandas_as_a_strategy_would_trade_them(
    strategy_run: btlab.RunResult,
) -> None:
    """sma_cross long/short is "long while fast > slow, short while below" on features shifted
    one bar: the same rule as signals, shifted by the caller, trades the same run."""
    index = _stamps(strategy_run.dataset)
    close = pd.Series(strategy_run.dataset.close, index=index)
    fast, slow = close.rolling(5).mean(), close.rolling(20).mean()
    above, below = (fast > slow).shift(1), (fast < slow).shift(1)  # NaN at bar 0: False
    signals = btlab.signals(entries=above, exits=~above.fillna(False).astype(bool),
                            short_entries=below, short_exits=~below.fillna(False).astype(bool))  # fmt: skip
    own = btlab.run(_own(BASE), targets=signals)
    assert own.target.tobytes() == strategy_run.target.tobytes()
    assert own.metrics == strategy_run.metrics


def test_bad_signals_are_named() -> None:
    with pytest.raises(ConfigError, match="entries"):
        btlab.signals(exits=np.zeros(3, dtype=bool))
    with pytest.raises(ConfigError, match="size"):
        btlab.signals(entries=np.zeros(3, dtype=bool), size=0.0)
    dataset = btlab.synthetic(bars=3, seed=2)
    with pytest.raises(ConfigError, match=r"booleans .* holds 2\.0"):
        caller_targets(btlab.signals(entries=np.array([0, 2, 1])), dataset)


# --------------------------------------------------------------------------- portfolios

PORTFOLIO: dict[str, Any] = {
    "data": {"symbols": 3, "bars": 250, "seed": 9},
    "strategy": {"name": "xs_momentum", "params": {"lookback": 20, "top": 1}},
    "validation": {"permutation": {"n_permutations": 9}, "bootstrap": {"n_resamples": 30}},
}


def test_a_portfolios_targets_as_a_frame_give_the_same_run() -> None:
    by_strategy = btlab.run(PORTFOLIO)
    assert isinstance(by_strategy, btlab.PortfolioResult)
    symbols = list(by_strategy.symbols)
    frame = pd.DataFrame(by_strategy.target, index=_stamps(by_strategy.dataset), columns=symbols)
    own = btlab.run(_own(PORTFOLIO), targets=frame[symbols[::-1]])  # columns by name
    assert isinstance(own, btlab.PortfolioResult)
    assert own.metrics == by_strategy.metrics
    assert own.target.tobytes() == by_strategy.target.tobytes()
    assert own.validation is not None and own.validation["permutation"] is None
    assert own.validation["skipped"] == {"permutation": PERMUTATION_SKIPPED}
    assert [w.code for w in own.warnings].count("validation_skipped") == 1
    with pytest.raises(ConfigError, match=r"missing: \['SYN03'\]"):
        btlab.run(_own(PORTFOLIO), targets=frame[symbols[:2]])


def test_a_symbol_not_listed_has_target_zero_whatever_is_given() -> None:
    late = btlab.synthetic(bars=120, seed=3).to_frame()
    early = btlab.synthetic(bars=120, seed=4).to_frame()
    data = {"A": early, "B": late.iloc[40:]}
    ones = np.ones((120, 2))
    ones[:40, 1] = np.nan  # B is not listed before its first bar: NaN is fine there
    own = btlab.run({"validation": {"enabled": False}}, data, targets=ones)
    assert isinstance(own, btlab.PortfolioResult)
    assert (own.target[:40, 1] == 0.0).all() and (own.target[40:, 1] == 1.0).all()
    listed_nan = np.ones((120, 2))
    listed_nan[50, 1] = np.nan
    with pytest.raises(ConfigError, match=r"bar 50 .*symbol 'B'"):
        btlab.run({"validation": {"enabled": False}}, data, targets=listed_nan)


def test_the_report_says_why_there_is_no_permutation_p_value(
    strategy_run: btlab.RunResult, tmp_path: Any
) -> None:
    from btlab.report import write_report

    own = btlab.run(_own(BASE), targets=strategy_run.target)
    write_artifacts(own, tmp_path / "own")
    page = write_report(tmp_path / "own").read_text(encoding="utf-8")
    assert f"not computed: {PERMUTATION_SKIPPED}" in page
    assert "<h1>targets on " in page


def test_a_shared_run_cache_never_serves_one_targets_run_for_another() -> None:
    cache = btlab.RunCache()
    config = {"data": {"bars": 200}, "validation": {"enabled": False}}
    long = btlab.run(config, targets=np.ones(200), cache=cache)
    short = btlab.run(config, targets=-np.ones(200), cache=cache)
    assert long.config_hash != short.config_hash
    assert long.metrics["total_return"] != short.metrics["total_return"]
    assert (short.units[:-1] < 0).all() and (long.units[:-1] > 0).all()  # flat at the end
    again = btlab.run(config, targets=np.ones(200), cache=cache)
    assert again.config_hash == long.config_hash and again.metrics == long.metrics
