"""`btlab.load`: a run, a portfolio run and a sweep come back from their artifacts (a folder or
a stored run's id) as the results computed in-process; a folder that does not match its
manifest, or bars that are not the run's any more, are said."""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import btlab
import btlab.artifacts
from btlab.artifacts import write_artifacts
from btlab.errors import DataError, NotFoundError
from btlab.hashing import canonicalize
from btlab.orchestrator import Orchestrator
from btlab.reload import ArtifactError
from btlab.run_result import returns_series
from btlab.store import Store
from btlab.validation.run import bar_returns
from tests.golden import EVERY_OPTION, SWEEP

#: The tables' floats are rounded to 12 significant digits: a reloaded number is the in-process
#: one to that precision (a derived column, as the exposure, to a few units more of the last).
RTOL = 1e-10

QUICK_VALIDATION: dict[str, Any] = {"permutation": {"n_permutations": 10}}
SINGLE: dict[str, Any] = {**EVERY_OPTION, "validation": QUICK_VALIDATION}
HALTED: dict[str, Any] = {**SINGLE, "risk": {**EVERY_OPTION["risk"], "max_drawdown": 0.3}}
PORTFOLIO: dict[str, Any] = {
    "data": {"symbols": 4, "bars": 400, "seed": 3},
    "strategy": {"name": "sma_cross", "params": {"fast": 5, "slow": 20}},
    "execution": {"commission_bps": 1.0, "spread_bps": 2.0},
    "validation": QUICK_VALIDATION,
}
SHORT_PORTFOLIO: dict[str, Any] = {
    **PORTFOLIO,
    "strategy": {"name": "sma_cross", "params": {"fast": 5, "slow": 20, "long_short": True}},
    "execution": {"borrow_rate_annual": 0.05, "fill": "close"},
}


def assert_records_equal(got: np.ndarray, want: np.ndarray) -> None:
    """Record arrays equal field by field, dtype included (floats to the tables' digits)."""
    assert got.dtype == want.dtype and got.shape == want.shape
    for name in want.dtype.names or ():
        if want.dtype[name].kind == "f":
            np.testing.assert_allclose(got[name], want[name], rtol=RTOL, atol=1e-9, err_msg=name)
        else:
            np.testing.assert_array_equal(got[name], want[name], err_msg=name)


def assert_frames_equal(got: pd.DataFrame, want: pd.DataFrame, rtol: float = RTOL) -> None:
    assert list(got.columns) == list(want.columns)
    for column in want.columns:  # column by column, dtype included
        assert got[column].dtype == want[column].dtype, column
        pd.testing.assert_series_equal(
            got[column], want[column], check_exact=False, rtol=rtol, atol=1e-9
        )


def assert_metrics_equal(got: dict[str, Any], want: dict[str, Any]) -> None:
    """The metrics as metrics.json holds them: 12 significant digits, NaN where undefined."""
    assert list(got) == list(want)
    for key, value in want.items():
        if isinstance(value, float) and math.isnan(value):
            assert isinstance(got[key], float) and math.isnan(got[key]), key
        else:
            same = canonicalize(got[key]) == canonicalize(value)
            assert same and type(got[key]) is type(value), key


def assert_same_run(got: Any, want: Any) -> None:
    assert type(got) is type(want)
    assert got.config == want.config and got.config_hash == want.config_hash
    assert got.identity == want.identity and got.dataset.hash == want.dataset.hash
    assert_metrics_equal(got.metrics, want.metrics)
    assert got.validation == canonicalize(want.validation)
    assert (got.flags, got.halt_bar) == (want.flags, want.halt_bar)
    for name in ("target", "units", "cash", "equity_values", "borrow"):
        held, computed = getattr(got, name), getattr(want, name)
        assert held.dtype == computed.dtype and held.shape == computed.shape, name
        np.testing.assert_allclose(held, computed, rtol=RTOL, atol=1e-9, err_msg=name)
    assert_records_equal(got.fill_records, want.fill_records)
    assert_records_equal(got.trade_records, want.trade_records)
    for table in getattr(want, "tables", ("equity", "fills", "trades")):
        frame = want.table(table) if hasattr(want, "table") else getattr(want, table)
        held = got.table(table) if hasattr(got, "table") else getattr(got, table)
        # a symbol's net P&L sums its cash flows: their 12 digits, not the small total's
        assert_frames_equal(held, frame, rtol=1e-8 if table == "symbols" else RTOL)
    pd.testing.assert_series_equal(got.returns, want.returns, check_exact=False, rtol=RTOL)


#: Ruined on its first bar (a commission beyond the capital).
RUINED: dict[str, Any] = {
    "data": {"bars": 300},
    "strategy": {"name": "buy_and_hold"},
    "execution": {"commission_fixed": 1e9},
    "validation": {"enabled": False},
}


@pytest.mark.parametrize(
    "request_", [SINGLE, HALTED, RUINED], ids=["every_option", "halted", "ruined"]
)
def test_a_run_comes_back_from_its_folder(request_: dict[str, Any], tmp_path: Path) -> None:
    result = btlab.run(request_)
    write_artifacts(result, tmp_path / "run")
    back = btlab.load(tmp_path / "run")
    assert_same_run(back, result)
    assert back.warnings == result.warnings
    assert back.dataset.hash == result.dataset.hash  # the synthetic bars generated again
    np.testing.assert_array_equal(back.dataset.close, result.dataset.close)
    if request_ is HALTED:
        assert back.halted and back.halt_bar >= 0
    if request_ is RUINED:
        assert back.ruined and back.halt_bar == 0


def test_a_portfolio_run_comes_back(tmp_path: Path) -> None:
    result = btlab.run(PORTFOLIO)
    assert isinstance(result, btlab.PortfolioResult)
    write_artifacts(result, tmp_path / "p")
    back = btlab.load(str(tmp_path / "p"))
    assert_same_run(back, result)
    assert back.warnings == result.warnings and back.symbols == result.symbols


def test_a_portfolio_with_shorts_gets_each_symbols_borrow_back(tmp_path: Path) -> None:
    """The artifacts hold each bar's borrow of all symbols: its split by symbol is derived (the
    shorts held over the bar, by value) and checked against the symbols table."""
    result = btlab.run(SHORT_PORTFOLIO)
    assert result.metrics["total_borrow"] > 0 and (result.borrow > 0).sum(axis=1).max() > 1
    write_artifacts(result, tmp_path / "p")
    back = btlab.load(tmp_path / "p")
    assert back.warnings == result.warnings
    assert_same_run(back, result)
    # a split that does not add up to the symbols' totals is said, not passed off
    table = back.symbols_table.assign(borrow=back.symbols_table["borrow"][::-1].to_numpy())
    payload = btlab.artifacts.table_bytes(table)
    (tmp_path / "p" / "symbols.parquet").write_bytes(payload)
    manifest = json.loads((tmp_path / "p" / "manifest.json").read_text())
    manifest["artifacts"]["symbols.parquet"] = {
        "bytes": len(payload),
        "sha256": hashlib.sha256(payload).hexdigest(),
    }
    manifest["run_hash"] = btlab.artifacts.run_hash(manifest)
    (tmp_path / "p" / "manifest.json").write_text(json.dumps(manifest))
    assert btlab.verify_artifacts(tmp_path / "p") == []
    assert btlab.load(tmp_path / "p").warnings[-1].code == "borrow_apportioned"


def test_a_sweep_comes_back_with_its_best_run(tmp_path: Path) -> None:
    result = btlab.run_sweep({**SWEEP, "validation": QUICK_VALIDATION})
    result.write_artifacts(tmp_path / "s")
    back = btlab.load(tmp_path / "s")
    assert isinstance(back, btlab.SweepResult)
    assert back.request == result.request and back.config_hash == result.config_hash
    assert back.warnings == result.warnings and back.identity == result.identity
    assert back.best["combo"] == result.best["combo"]
    assert back.best["params"] == result.best["params"]
    assert_metrics_equal(back.best["metrics"], result.best["metrics"])
    assert back.heatmap_json == canonicalize(result.heatmap_json)
    assert back.validation == canonicalize(result.validation)
    assert_frames_equal(back.table, result.table)
    assert_same_run(back.best_run, result.best_run)
    assert back.artifact_payloads() == result.artifact_payloads()  # writes the same bytes
    pd.testing.assert_series_equal(back.returns, result.best_run.returns)


def test_stored_runs_come_back_by_id(tmp_path: Path) -> None:
    home = tmp_path / "home"
    store = Store(home)
    orch = Orchestrator(store)
    try:
        run, _ = orch.submit({**PORTFOLIO, "data": {**PORTFOLIO["data"], "bars": 200}})
        sweep, _ = orch.submit({**SWEEP, "validation": {"enabled": False}}, kind="sweep")
        assert orch.wait(run.id, 120).status == "completed"
        assert orch.wait(sweep.id, 120).status == "completed"
    finally:
        orch.shutdown()
        store.close()
    back = btlab.load(run.id, store=home)
    assert isinstance(back, btlab.PortfolioResult) and back.metrics["sharpe"] is not None
    same = btlab.load(home / "runs" / run.id)  # its folder, the same result
    assert_same_run(same, back)
    opened = Store(home)
    try:
        swept = btlab.load(sweep.id, store=opened)  # a Store, left open
        assert isinstance(swept, btlab.SweepResult) and opened.get_run(sweep.id)
    finally:
        opened.close()
    with pytest.raises(NotFoundError, match=f"unknown run id '0123456789abcdef' in home {home}"):
        btlab.load("0123456789abcdef", store=home)
    with pytest.raises(NotFoundError, match="there is no btlab home at"):
        btlab.load("0123456789abcdef", store=tmp_path / "none")
    assert not (tmp_path / "none").exists()


def test_a_run_on_a_stored_dataset_reads_it_from_the_store(tmp_path: Path) -> None:
    store = Store(tmp_path / "home")
    try:
        row, _ = store.add_dataset(btlab.synthetic(bars=200, seed=8))
        result = btlab.run(
            {"data": {"source": "dataset", "id": row.id}, "validation": {"enabled": False}},
            resolve_stored=store.load_dataset,
        )
        write_artifacts(result, tmp_path / "run")
        back = btlab.load(tmp_path / "run", store=store)
        assert back.dataset.hash == result.dataset.hash and back.warnings == result.warnings
        assert_same_run(back, result)
    finally:
        store.close()
    without = btlab.load(tmp_path / "run", store=tmp_path / "elsewhere")  # no home there
    assert without.warnings[-1].code == "bars_not_reloaded"
    assert "need the btlab service or a Store" in without.warnings[-1].message


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, Path]:
    result = btlab.run({"data": {"bars": 300}, "validation": {"enabled": False}})
    folder = tmp_path_factory.mktemp("reload") / "run"
    write_artifacts(result, folder)
    return result, folder


@pytest.mark.parametrize("name", ["equity.parquet", "metrics.json", "trades.parquet"])
def test_a_changed_or_missing_artifact_is_an_error_naming_it(
    written: tuple[Any, Path], tmp_path: Path, name: str
) -> None:
    _, folder = written
    for change in ("tamper", "remove"):
        copy = tmp_path / change
        copy.mkdir()
        for f in folder.iterdir():
            (copy / f.name).write_bytes(f.read_bytes())
        if change == "remove":
            (copy / name).unlink()
            expected = f"{name}: missing"
        else:
            data = bytearray((copy / name).read_bytes())
            data[len(data) // 2] ^= 0x01
            (copy / name).write_bytes(bytes(data))
            expected = f"{name}: bytes or sha256 differ"
        with pytest.raises(ArtifactError, match=expected):
            btlab.load(copy)


def test_a_folder_without_a_manifest_is_not_a_run(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError, match=r"it has no manifest\.json"):
        btlab.load(tmp_path)
    with pytest.raises(NotFoundError, match="no such artifact folder"):
        btlab.load(tmp_path / "nothing")


def test_returns_are_the_validations_per_bar_returns(written: tuple[Any, Path]) -> None:
    result, folder = written
    back = btlab.load(folder)
    for res in (result, back):
        r = res.returns
        assert isinstance(r, pd.Series) and r.name == "returns" and r.dtype == np.float64
        assert isinstance(r.index, pd.DatetimeIndex) and r.index.tz is None  # naive UTC
        np.testing.assert_array_equal(r.to_numpy(), bar_returns(res.equity_values))
        ts = pd.DatetimeIndex(res.equity["ts"]).tz_convert("UTC").tz_localize(None)
        assert r.index.equals(ts[1:])
    r.iloc[0] = 99.0  # a new Series each time: changing one changes nothing held
    assert back.returns.iloc[0] != 99.0


def test_returns_leave_out_the_undefined_returns_of_a_ruin() -> None:
    equity = np.array([100.0, 50.0, 0.0, 0.0, -5.0])
    ts = np.arange(5, dtype=np.int64) * 86_400 * 10**9
    r = returns_series(ts, equity)
    np.testing.assert_array_equal(r.to_numpy(), bar_returns(equity))
    assert list(r.to_numpy()) == [-0.5, -1.0]
    assert list(r.index.asi8) == list(ts[1:3])


def test_bars_handed_in_come_back_as_the_artifacts_hold_them(tmp_path: Path) -> None:
    bars = btlab.synthetic(bars=250, seed=4).to_frame()
    result = btlab.run({"validation": {"enabled": False}}, data=bars)
    write_artifacts(result, tmp_path / "run")
    back = btlab.load(tmp_path / "run")
    assert back.warnings[-1].code == "bars_not_reloaded"
    assert "handed to run()" in back.warnings[-1].message
    assert back.config == result.config and back.config_hash == result.config_hash
    assert back.identity == result.identity
    assert [w.code for w in back.warnings] == [
        *(w.code for w in result.warnings),
        "bars_not_reloaded",
    ]
    assert back.dataset.hash != result.dataset.hash  # the bars held are not the run's bars
    np.testing.assert_array_equal(back.dataset.ts, result.dataset.ts)
    if "close" in back.equity.columns:
        np.testing.assert_allclose(back.dataset.close, result.dataset.close, rtol=RTOL)
    else:
        assert np.isnan(back.dataset.close).all()
    assert np.isnan(back.dataset.open).all()
    assert_metrics_equal(back.metrics, result.metrics)
    assert_records_equal(back.fill_records, result.fill_records)
    assert_frames_equal(back.fills, result.fills)
    pd.testing.assert_series_equal(back.returns, result.returns, check_exact=False, rtol=RTOL)


def test_a_file_changed_since_the_run_is_said(tmp_path: Path) -> None:
    csv = tmp_path / "bars.csv"
    btlab.synthetic(bars=250).to_frame().to_csv(csv, index=False)
    result = btlab.run(
        {"data": {"source": "csv", "path": str(csv)}, "validation": {"enabled": False}}
    )
    write_artifacts(result, tmp_path / "run")
    assert btlab.load(tmp_path / "run").dataset.hash == result.dataset.hash  # read again
    frame = pd.read_csv(csv)
    frame.loc[100, "volume"] += 1.0
    frame.to_csv(csv, index=False)
    back = btlab.load(tmp_path / "run")
    assert back.warnings[-1].code == "bars_not_reloaded"
    assert "not the run's any more" in back.warnings[-1].message
    csv.unlink()
    back = btlab.load(tmp_path / "run")
    assert "could not be loaded again" in back.warnings[-1].message
    assert_metrics_equal(back.metrics, result.metrics)


def test_a_portfolio_without_its_bars_is_an_error_saying_why(tmp_path: Path) -> None:
    frames = {s: btlab.synthetic(bars=120, seed=i).to_frame() for i, s in enumerate("AB")}
    result = btlab.run({"validation": {"enabled": False}}, data=frames)
    write_artifacts(result, tmp_path / "p")
    with pytest.raises(DataError, match=r"a portfolio run cannot be reloaded without its bars"):
        btlab.load(tmp_path / "p")


def test_load_is_a_lazy_public_name() -> None:
    assert "load" in btlab.__all__ and "load" in dir(btlab)
    from btlab.reload import load

    assert btlab.load is load


def test_a_manifest_without_the_data_section_says_what_is_placeholder(
    written: tuple[Any, Path], tmp_path: Path
) -> None:
    """A folder written before the manifest recorded `labels.data` (labels are outside the run
    hash, so the folder still verifies): config.data is a placeholder, and said to be."""
    result, folder = written
    copy = tmp_path / "old"
    copy.mkdir()
    for f in folder.iterdir():
        (copy / f.name).write_bytes(f.read_bytes())
    manifest = json.loads((copy / "manifest.json").read_text())
    del manifest["labels"]["data"]
    (copy / "manifest.json").write_text(json.dumps(manifest))
    back = btlab.load(copy)
    assert [w.code for w in back.warnings] == ["data_unknown", "bars_not_reloaded"]
    assert back.config.data.timeframe == result.config.data.timeframe
    assert back.config_hash == result.config_hash and back.identity == result.identity
    assert_metrics_equal(back.metrics, result.metrics)
    assert_frames_equal(back.trades, result.trades)
