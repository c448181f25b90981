"""The report of a portfolio folder (SPEC §8): the portfolio curve, the weights over time, the
per-symbol and trades tables, with the run report's metrics, monthly returns and validation."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import btlab
from btlab.cli import main
from btlab.report import REPORT_NAME, render_report, write_report
from btlab.report.portfolio import MAX_SERIES, MAX_TRADES, chart_bands
from tests.test_report import Node, element, parse_report, value

LONG_SHORT: dict[str, Any] = {
    "data": {"symbols": 15, "bars": 1500, "seed": 5, "list_within": 0.2, "delist_within": 0.2},
    "strategy": {"name": "xs_momentum", "params": {"lookback": 40, "top": 3, "bottom": 3}},
    "execution": {"rebalance": "weekly", "spread_bps": 2.0, "commission_bps": 1.0,
                  "borrow_rate_annual": 0.03},
    "validation": {"permutation": {"enabled": False}, "bootstrap": {"n_resamples": 200}},
}  # fmt: skip


@pytest.fixture(scope="module")
def port_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("report") / "portfolio"
    btlab.write_artifacts(btlab.run(LONG_SHORT), out)
    write_report(out)
    return out


@pytest.fixture(scope="module")
def page(port_dir: Path) -> Node:
    return parse_report((port_dir / REPORT_NAME).read_text(encoding="utf-8"))


def _json(folder: Path, name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((folder / name).read_text(encoding="utf-8"))
    return data


def test_every_portfolio_chart_and_table_is_there(page: Node) -> None:
    for chart_id in ("chart-equity", "chart-drawdown", "chart-weights"):
        figure = element(page, chart_id)
        assert len(figure.find("svg").find_all("path")) > 10, chart_id
        assert figure.find("figcaption").text().strip()
    for table_id in ("table-identity", "table-metrics-performance", "table-metrics-trading",
                     "table-metrics-capital", "table-symbols", "table-trades", "table-monthly",
                     "table-validation", "table-folds"):  # fmt: skip
        assert element(page, table_id).find_all("tr"), table_id
    assert not page.find_all(id="chart-position")  # a single-symbol chart: no target column


def test_identity_names_the_portfolio(port_dir: Path, page: Node) -> None:
    manifest = _json(port_dir, "manifest.json")
    shown = {
        tr.attrs["data-key"]: tr.find("td").text()
        for tr in element(page, "table-identity").find_all("tr")
    }
    assert shown["kind"] == "portfolio run" and shown["rebalance"] == "weekly"
    assert shown["symbols"].startswith("15: SYN01, SYN02,") and "and 5 more" in shown["symbols"]
    assert shown["run_hash"] == manifest["run_hash"]
    assert page.find("h1").text() == "xs_momentum on 15 symbols 1d"


def test_symbol_table_shows_symbols_parquet(port_dir: Path, page: Node) -> None:
    symbols = pd.read_parquet(port_dir / "symbols.parquet")
    positions = pd.read_parquet(port_dir / "positions.parquet")
    table = element(page, "table-symbols")
    rows = {tr.attrs["data-symbol"]: tr for tr in table.find_all("tr") if "data-symbol" in tr.attrs}
    assert list(rows)[:-1] == list(symbols["symbol"]) and "" in rows  # "" is the total row
    columns = ["net_pnl", "costs", "borrow", "traded", "turnover", "fills", "trades"]
    for rec in symbols.to_dict("records"):
        cells = rows[rec["symbol"]].find_all("td")
        assert [value(c) for c in cells[: len(columns)]] == pytest.approx(
            [rec[c] for c in columns], rel=1e-12
        )
        own = positions.loc[positions["symbol"] == rec["symbol"], "weight"]
        assert value(cells[len(columns)]) == pytest.approx(own.mean(), rel=1e-12)
        assert value(cells[len(columns) + 1]) == pytest.approx(own.abs().max(), rel=1e-12)
    # the P&L of the symbols adds up to the account's (SPEC §8 conservation)
    metrics = _json(port_dir, "metrics.json")
    total = value(rows[""].find_all("td")[0])
    assert total == pytest.approx(metrics["final_equity"] - metrics["initial_cash"], rel=1e-9)


def test_trades_table_lists_trades_with_their_symbol(port_dir: Path, page: Node) -> None:
    trades = pd.read_parquet(port_dir / "trades.parquet")
    table = element(page, "table-trades")
    rows = [tr for tr in table.find_all("tr") if "data-trade" in tr.attrs]
    assert len(trades) > MAX_TRADES and len(rows) == MAX_TRADES
    assert f"first {MAX_TRADES} of {len(trades):,}" in table.find("caption").text()
    shown = [(tr.find_all("td")[0].text(), tr.find_all("td")[1].text()) for tr in rows]
    assert shown == list(
        zip(trades["symbol"][:MAX_TRADES], trades["side"][:MAX_TRADES], strict=True)
    )
    first = rows[0].find_all("td")
    assert value(first[8]) == pytest.approx(trades["net_pnl"].iloc[0], rel=1e-12)


def test_weights_chart_has_at_most_twelve_bands(page: Node) -> None:
    figure = element(page, "chart-weights")
    text = figure.text()
    assert "other (4 symbols)" in text and "net exposure" in text
    names = set(re.findall(r"SYN\d\d", text))
    assert len(names) == MAX_SERIES - 1
    assert "of 1,500 bars drawn" in figure.find("figcaption").text()


def test_chart_bands_keep_longs_and_shorts_of_other_apart() -> None:
    symbols = [f"S{i:02d}" for i in range(14)]
    weights = np.zeros((3, 14))
    weights[:, :11] = 0.05  # the eleven largest
    weights[:, 11], weights[:, 12], weights[:, 13] = 0.02, -0.02, 0.01  # "other": net 0.01
    labels, longs, shorts = chart_bands(symbols, weights)
    assert labels == [*symbols[:11], "other (3 symbols)"]
    assert longs[:, -1] == pytest.approx(0.03) and shorts[:, -1] == pytest.approx(-0.02)
    assert (longs[:, :11] == 0.05).all() and (shorts[:, :11] == 0.0).all()
    few_labels, few_longs, _ = chart_bands(symbols[:3], weights[:, 11:14])
    assert few_labels == symbols[:3] and few_longs[:, 1].tolist() == [0.0, 0.0, 0.0]


def test_a_long_portfolio_run_is_downsampled_and_small(tmp_path: Path) -> None:
    out = tmp_path / "big"
    result = btlab.run({
        "data": {"symbols": 40, "bars": 8000, "seed": 2}, "strategy": {"name": "inverse_vol"},
        "execution": {"rebalance": "every_bar"}, "validation": {"enabled": False},
    })  # fmt: skip
    btlab.write_artifacts(result, out)
    text = render_report(out)
    assert len(text.encode()) < 1_000_000
    figure = element(parse_report(text), "chart-weights")
    drawn = re.search(r"\(([\d,]+) of 8,000 bars drawn\)", figure.find("figcaption").text())
    assert drawn is not None and int(drawn.group(1).replace(",", "")) < 4000
    longest = max(len(p.attrs.get("d", "").split("L")) for p in figure.find_all("path"))
    assert longest < 8000


def test_the_same_folder_gives_the_same_bytes_and_no_urls(port_dir: Path) -> None:
    text = render_report(port_dir)
    assert render_report(port_dir) == text
    bare = re.sub(r"data:image/png;base64,[A-Za-z0-9+/=\s]*", "", text)
    assert "http" not in bare and "//" not in bare and "<script" not in text


def test_btlab_report_renders_a_portfolio_folder(
    port_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "page.html"
    assert main(["report", str(port_dir), "--out", str(out)]) == 0
    assert out.read_text(encoding="utf-8") == render_report(port_dir)


def test_a_portfolio_folder_without_its_symbol_table_is_named(
    port_dir: Path, tmp_path: Path
) -> None:
    copy = tmp_path / "copy"
    copy.mkdir()
    for item in port_dir.iterdir():
        if item.name not in ("symbols.parquet", REPORT_NAME):
            (copy / item.name).write_bytes(item.read_bytes())
    with pytest.raises(btlab.errors.RunError, match=r"symbols\.parquet is missing"):
        render_report(copy)
