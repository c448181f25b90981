"""Extra dataset columns (SPEC §9): numeric columns beyond OHLCV kept on the Dataset, in its
content hash (only where present), in stored files, and read as the `column` feature shifted
+1 like every feature; a data column as the run's own targets (strategy `targets`)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import btlab
from btlab import strategies as registry
from btlab.data import adjust, dataset_hash, from_dataframe, load_bytes, load_parquet, save_parquet
from btlab.errors import ConfigError, DataError
from btlab.features import FeatureSpec, FeatureStore, Params
from btlab.store import Store
from btlab.strategies import Strategy, compute_target

N = 160


def _frame(n: int = N, seed: int = 1) -> pd.DataFrame:
    frame = btlab.synthetic(bars=n, seed=seed).to_frame()
    frame["adj_close"] = frame["close"] * 0.9
    return frame


def _with_signal(n: int = N, seed: int = 1) -> pd.DataFrame:
    frame = _frame(n, seed)
    frame["mySignal"] = np.sin(np.arange(n) / 7.0)
    return frame


def test_numeric_extra_columns_are_kept_in_their_own_spelling() -> None:
    frame = _with_signal()
    frame["flag"] = frame["close"] > frame["open"]
    frame.loc[3, "mySignal"] = np.nan  # missing values are kept as NaN
    frame["as_text"] = frame["volume"].astype(str)  # numbers written as text are numbers
    ds = from_dataframe(frame)
    assert list(ds.extra) == ["as_text", "flag", "mySignal"] == ds.meta.extra_columns
    assert ds.extra["flag"].tolist() == (frame["close"] > frame["open"]).astype(float).tolist()
    assert np.isnan(ds.extra["mySignal"][3]) and ds.extra["mySignal"][4] == frame["mySignal"][4]
    assert not ds.extra["mySignal"].flags.writeable
    assert ds.meta.warnings == [] or all("ignored" not in w for w in ds.meta.warnings)


def test_non_numeric_columns_are_left_out_with_a_warning() -> None:
    frame = _with_signal()
    frame["sector"] = "tech"
    frame["Unnamed: 0"] = np.arange(N)  # pandas' saved index
    ds = from_dataframe(frame)
    assert list(ds.extra) == ["mySignal"]
    (warning,) = [w for w in ds.meta.warnings if w.startswith("ignored_columns:")]
    assert "'sector'" in warning and "'Unnamed: 0'" in warning
    run = btlab.run({"validation": {"enabled": False}}, ds)
    assert [w.code for w in run.warnings].count("ignored_columns") == 1


def test_an_infinite_extra_value_is_a_data_error() -> None:
    frame = _with_signal()
    frame.loc[7, "mySignal"] = np.inf
    with pytest.raises(DataError) as caught:
        from_dataframe(frame)
    assert caught.value.rule == "non_finite_column" and caught.value.rows == [7]


def test_the_hash_holds_extra_columns_only_where_there_are_some() -> None:
    plain = from_dataframe(_frame())
    cols = [plain.ts, plain.open, plain.high, plain.low, plain.close, plain.volume]
    # data without extra columns hashes as it did before they existed
    assert (
        plain.hash
        == dataset_hash(*cols, plain.adj_close)
        == dataset_hash(*cols, plain.adj_close, {})
    )
    with_signal = from_dataframe(_with_signal())
    assert with_signal.hash != plain.hash and with_signal.meta.id == with_signal.hash
    other = _with_signal()
    other.loc[N - 1, "mySignal"] += 1e-9
    assert from_dataframe(other).hash != with_signal.hash
    renamed = _with_signal().rename(columns={"mySignal": "other"})
    assert from_dataframe(renamed).hash != with_signal.hash
    assert from_dataframe(_with_signal()).hash == with_signal.hash
    # the run's config hash follows the data: a different signal column is another run
    config = {"validation": {"enabled": False}}
    assert btlab.run(config, with_signal).config_hash != btlab.run(config, plain).config_hash


def test_extra_columns_survive_parquet_the_store_and_adjustment(tmp_path: Any) -> None:
    ds = from_dataframe(_with_signal())
    save_parquet(ds, tmp_path / "x.parquet")
    again = load_parquet(tmp_path / "x.parquet")
    assert (
        again.hash == ds.hash
        and again.extra["mySignal"].tobytes() == ds.extra["mySignal"].tobytes()
    )
    store = Store(tmp_path / "home")
    try:
        row, _ = store.add_dataset(ds)
        assert row.meta["extra_columns"] == ["mySignal"]
        loaded = store.load_dataset(row.id)
        assert loaded.hash == ds.hash and list(loaded.extra) == ["mySignal"]
    finally:
        store.close()
    csv = load_bytes(_with_signal().to_csv(index=False).encode(), fmt="csv")
    assert list(csv.extra) == ["mySignal"]
    adjusted = adjust(ds)
    assert adjusted.extra["mySignal"].tobytes() == ds.extra["mySignal"].tobytes()
    assert from_dataframe(ds.to_frame()).hash == ds.hash


def test_the_column_feature_is_the_column_one_bar_late() -> None:
    ds = from_dataframe(_with_signal())
    got = FeatureStore(ds).get(FeatureSpec(name="column", params={"name": "mySignal"}))
    raw = ds.extra["mySignal"]
    assert np.isnan(got[0]) and got[1:].tobytes() == raw[:-1].tobytes()
    assert not got.flags.writeable
    with pytest.raises(ConfigError) as caught:
        FeatureStore(ds).get(FeatureSpec(name="column", params={"name": "signal"}))
    assert caught.value.errors[0][0] == "params.name"
    assert "no extra column 'signal'; its extra columns: 'mySignal'" in caught.value.errors[0][1]


class _AboveParams(Params):
    threshold: float = 0.0


class _ColumnAbove(Strategy[_AboveParams]):
    """Long while the (shifted) data column is above a threshold: reads it by name."""

    name: ClassVar[str] = "test_column_above"
    description: ClassVar[str] = "test only"
    Params = _AboveParams

    @classmethod
    def features(cls, p: _AboveParams) -> dict[str, FeatureSpec]:
        return {"signal": FeatureSpec(name="column", params={"name": "mySignal"})}

    @classmethod
    def target(cls, f: Mapping[str, np.ndarray], p: _AboveParams, n: int) -> np.ndarray:
        signal = f["signal"]
        return np.where(np.isfinite(signal) & (signal > p.threshold), 1.0, 0.0)


@contextmanager
def _registered() -> Iterator[None]:
    """The test strategy in the registry for the block only (others list every strategy)."""
    registry._REGISTRY[_ColumnAbove.name] = _ColumnAbove
    try:
        yield
    finally:
        del registry._REGISTRY[_ColumnAbove.name]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(i=st.integers(0, N - 1), bump=st.floats(-5, 5, allow_nan=False))
def test_changing_the_column_at_bar_i_never_changes_targets_before_i_plus_1(
    i: int, bump: float
) -> None:
    base = _with_signal()
    changed = base.copy()
    changed.loc[i, "mySignal"] += bump
    with _registered():
        a = compute_target(FeatureStore(from_dataframe(base)), _ColumnAbove.name, {}, N)
        b = compute_target(FeatureStore(from_dataframe(changed)), _ColumnAbove.name, {}, N)
    assert a[: i + 1].tobytes() == b[: i + 1].tobytes()


def test_a_registered_strategy_reads_the_column_through_a_run() -> None:
    ds = from_dataframe(_with_signal())
    with _registered():
        run = btlab.run({"strategy": {"name": _ColumnAbove.name},
                         "validation": {"permutation": {"n_permutations": 9}}}, ds)  # fmt: skip
    raw = ds.extra["mySignal"]
    want = np.concatenate([[0.0], np.where(raw[:-1] > 0.0, 1.0, 0.0)])
    assert run.target.tobytes() == want.tobytes()
    assert run.validation is not None and run.validation["permutation"] is not None


# --------------------------------------------------------------------------- a column as targets


def test_a_data_column_as_targets_is_taken_unshifted() -> None:
    frame = _frame()
    position = np.where(np.arange(N) % 30 < 15, 1.0, -0.5)
    frame["position"] = position
    ds = from_dataframe(frame)
    config = {"strategy": {"name": "targets", "params": {"column": "position"}},
              "validation": {"permutation": {"n_permutations": 9}}}  # fmt: skip
    by_column = btlab.run(config, ds)
    assert by_column.target.tobytes() == (position + 0.0).tobytes()
    handed = btlab.run({"validation": config["validation"]}, ds, targets=position)
    assert by_column.metrics == handed.metrics
    assert by_column.validation is not None and by_column.validation["permutation"] is None
    assert "permutation" in by_column.validation["skipped"]
    other = frame.copy()
    other.loc[N - 1, "position"] = 0.0
    assert btlab.run(config, from_dataframe(other)).config_hash != by_column.config_hash
    with pytest.raises(ConfigError, match="no extra column 'nope'"):
        btlab.run({"strategy": {"name": "targets", "params": {"column": "nope"}}}, ds)
    frame.loc[5, "position"] = np.nan
    with pytest.raises(ConfigError, match="bar 5"):
        btlab.run(config, from_dataframe(frame))


def test_a_portfolio_reads_each_symbols_column_as_its_targets() -> None:
    a, b = _frame(seed=1), _frame(seed=2).iloc[30:]
    a["w"], b["w"] = 0.5, -0.25
    run = btlab.run({"strategy": {"name": "targets", "params": {"column": "w"}},
                     "validation": {"enabled": False}}, {"A": a, "B": b})  # fmt: skip
    assert isinstance(run, btlab.PortfolioResult)
    assert (run.target[:, 0] == 0.5).all()
    assert (run.target[:30, 1] == 0.0).all() and (run.target[30:, 1] == -0.25).all()
