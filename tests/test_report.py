"""The offline HTML report: every chart and table is there with the run's numbers, offline,
small, deterministic; `btlab run` writes it and `btlab report` renders a folder."""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import btlab
from btlab.artifacts import verify_artifacts
from btlab.cli import main
from btlab.errors import NotFoundError, RunError
from btlab.metric_registry import FOLD
from btlab.report import (
    BUCKETS,
    REPORT_NAME,
    cached_report,
    generator_tag,
    minmax_indices,
    render_report,
    write_report,
)
from btlab.sweep import run_sweep

# ---------------------------------------------------------------- a small DOM of the page

VOID = {"area", "base", "br", "col", "hr", "img", "input", "link", "meta", "source", "wbr"}


@dataclass(eq=False)
class Node:
    tag: str
    attrs: dict[str, str]
    children: list[Node | str] = field(default_factory=list)

    def text(self) -> str:
        return "".join(c if isinstance(c, str) else c.text() for c in self.children)

    def iter(self) -> Iterator[Node]:
        yield self
        for child in self.children:
            if isinstance(child, Node):
                yield from child.iter()

    def find_all(self, tag: str | None = None, **attrs: str) -> list[Node]:
        return [
            n
            for n in self.iter()
            if (tag is None or n.tag == tag)
            and all(n.attrs.get(k.replace("_", "-")) == v for k, v in attrs.items())
        ]

    def find(self, tag: str | None = None, **attrs: str) -> Node:
        found = self.find_all(tag, **attrs)
        assert found, f"no <{tag or '*'}> with {attrs}"
        return found[0]


class _Builder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Node("#document", {})
        self.stack = [self.root]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        node = Node(tag, {k: v or "" for k, v in attrs})
        self.stack[-1].children.append(node)
        if tag not in VOID:
            self.stack.append(node)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.stack[-1].children.append(Node(tag, {k: v or "" for k, v in attrs}))

    def handle_endtag(self, tag: str) -> None:
        for i in range(len(self.stack) - 1, 0, -1):
            if self.stack[i].tag == tag:
                del self.stack[i:]
                return
        raise AssertionError(f"</{tag}> closes nothing")

    def handle_data(self, data: str) -> None:
        self.stack[-1].children.append(data)


def parse_report(text: str) -> Node:
    """The page as a tree; every element the page opens is closed."""
    builder = _Builder()
    builder.feed(text)
    builder.close()
    assert builder.stack == [builder.root], [n.tag for n in builder.stack]
    return builder.root


def element(page: Node, element_id: str) -> Node:
    found = page.find_all(id=element_id)
    assert len(found) == 1, f"{len(found)} elements with id {element_id!r}"
    return found[0]


def value(cell: Node) -> Any:
    return json.loads(cell.attrs["data-value"])


def same(a: Any, b: Any) -> bool:
    """Equal, with NaN/inf written as null (as canonical JSON has them)."""
    if isinstance(b, float) and not math.isfinite(b):
        return a is None
    return bool(a == b)


CHARTS = ("chart-equity", "chart-drawdown", "chart-price", "chart-position", "chart-rolling",
          "chart-histogram")  # fmt: skip
RUN_TABLES = ("table-identity", "table-metrics-performance", "table-metrics-trading",
              "table-metrics-capital", "table-monthly", "table-validation", "table-folds",
              "table-returns", "table-drawdowns", "table-trades")  # fmt: skip


# ---------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The default preset (validation on) written as artifacts, with its report."""
    result = btlab.run(btlab.load_preset("sma_cross_daily"))
    out = tmp_path_factory.mktemp("report") / "run"
    btlab.write_artifacts(result, out)
    write_report(out)
    return out


@pytest.fixture(scope="module")
def page(run_dir: Path) -> Node:
    return parse_report((run_dir / REPORT_NAME).read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def big_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """100,000 bars of 15 minutes, long/short: over a thousand trades."""
    result = btlab.run({
        "data": {"bars": 100_000, "timeframe": "15m"},
        "strategy": {"name": "sma_cross", "params": {"fast": 20, "slow": 100, "long_short": True}},
        "validation": {"enabled": False},
    })  # fmt: skip
    out = tmp_path_factory.mktemp("report") / "big"
    btlab.write_artifacts(result, out)
    return out


@pytest.fixture(scope="module")
def sweep_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    result = run_sweep({
        "preset": "sma_cross_daily",
        "overrides": {"validation": {"permutation": {"n_permutations": 20}}},
        "grid": {"fast": [5, 10, 20, 40], "slow": [50, 100, 200]},
    })  # fmt: skip
    out = tmp_path_factory.mktemp("report") / "sweep"
    result.write_artifacts(out)
    return out


def _json(folder: Path, name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((folder / name).read_text(encoding="utf-8"))
    return data


# ---------------------------------------------------------------- the run report


def test_every_chart_and_table_is_there(page: Node) -> None:
    for chart_id in CHARTS:
        figure = element(page, chart_id)
        assert figure.tag == "figure"
        svg = figure.find("svg")
        assert svg.attrs["viewbox"] and len(svg.find_all("path")) > 10, chart_id
        assert figure.find("figcaption").text().strip()
    for table_id in RUN_TABLES:
        table = element(page, table_id)
        assert table.tag == "table" and table.find_all("tr"), table_id
    assert not page.find_all(id="chart-heatmap")


def test_identity_names_the_run(run_dir: Path, page: Node) -> None:
    manifest = _json(run_dir, "manifest.json")
    identity = element(page, "table-identity")
    shown = {tr.attrs["data-key"]: tr.find("td").text() for tr in identity.find_all("tr")}
    assert shown["config_hash"] == manifest["config_hash"]
    assert shown["run_hash"] == manifest["run_hash"]
    assert shown["strategy"] == "sma_cross" and shown["symbol"] == "SYN"
    assert shown["timeframe"] == "1d"
    assert "fast=20" in shown["params"] and "slow=100" in shown["params"]
    assert shown["range"] == "2015-01-02 → 2024-08-29 UTC"
    assert page.find("title").text().startswith("sma_cross on SYN 1d")


def test_metrics_tables_show_metrics_json(run_dir: Path, page: Node) -> None:
    metrics = _json(run_dir, "metrics.json")
    rows = {tr.attrs["data-metric"]: tr for tr in page.find_all("tr") if "data-metric" in tr.attrs}
    assert set(rows) == set(metrics)  # every metric, none invented
    for key, row in rows.items():
        assert same(value(row.find("td")), metrics[key]), key
    assert rows["sharpe"].find("td").text() == f"{metrics['sharpe']:.3f}"
    assert rows["max_drawdown"].find("td").text() == f"{metrics['max_drawdown'] * 100:.2f}%"
    assert rows["final_equity"].find("td").text() == f"{metrics['final_equity']:,.2f}"
    assert rows["trade_count"].find("td").text() == str(metrics["trade_count"])


def test_charts_carry_the_runs_numbers(run_dir: Path, page: Node) -> None:
    metrics = _json(run_dir, "metrics.json")
    drawdown = element(page, "chart-drawdown")
    assert f"max {metrics['max_drawdown'] * 100:.2f}%" in drawdown.find("svg").text()
    assert f"of {metrics['n_bars']:,} bars drawn" in element(page, "chart-equity").text()
    position = element(page, "chart-position")
    assert f"{metrics['trade_count']:,} trades; every entry and exit is marked" in position.text()
    legend = position.find("svg").text()
    assert "target" in legend and "long entry" in legend and "exit" in legend


def test_validation_summary_shows_validation_json(run_dir: Path, page: Node) -> None:
    v = _json(run_dir, "validation.json")
    rows = {tr.attrs["data-key"]: tr for tr in element(page, "table-validation").find_all("tr")
            if "data-key" in tr.attrs}  # fmt: skip
    assert {
        "psr",
        "dsr",
        "min_trl",
        "bootstrap_ci",
        "p_sharpe_le_0",
        "permutation",
        "folds",
    } <= set(rows)
    p = v["permutation"]["p_value"]
    assert value(rows["permutation"].find("td")) == p
    assert rows["permutation"].find("td").text() == f"{p:.4f}"
    lo, hi = v["bootstrap"]["sharpe_ci"]
    assert value(rows["bootstrap_ci"].find("td")) == [lo, hi]
    assert rows["bootstrap_ci"].find("td").text() == f"[{lo:.3f}, {hi:.3f}]"
    assert value(rows["p_sharpe_le_0"].find("td")) == v["bootstrap"]["p_sharpe_le_0"]
    assert value(rows["psr"].find("td")) == v["psr"]["psr"]
    assert value(rows["dsr"].find("td")) == v["dsr"]["dsr"]
    assert value(rows["min_trl"].find("td")) == v["psr"]["min_trl"]
    folds = element(page, "table-folds").find("tbody").find_all("tr")
    assert len(folds) == v["folds"]["k"] == len(v["folds"]["folds"])
    for tr, fold in zip(folds, v["folds"]["folds"], strict=True):
        cells = tr.find_all("td")[2:]  # after from and to: the fold metrics, in registry order
        assert [value(c) for c in cells] == [fold[name] for name in FOLD]


@pytest.mark.parametrize("which", ["run_dir", "big_dir"])
def test_monthly_table_matches_pandas(which: str, request: pytest.FixtureRequest) -> None:
    run_dir: Path = request.getfixturevalue(which)
    page = parse_report(render_report(run_dir))
    equity = pd.read_parquet(run_dir / "equity.parquet").set_index("ts")["equity"]
    cash = _json(run_dir, "metrics.json")["initial_cash"]
    if which == "big_dir":  # trades from its first day: the first month is measured from the cash
        assert equity[equity.index.month == equity.index[0].month].iloc[-1] != cash

    def compounded(rule: str) -> pd.Series:
        ends = equity.resample(rule).last().dropna()
        return ends / ends.shift(1).fillna(cash) - 1.0

    months, years = compounded("ME"), compounded("YE")
    table = element(page, "table-monthly")
    cells = {
        (int(tr.attrs["data-year"]), td.attrs["data-month"]): td
        for tr in table.find("tbody").find_all("tr")
        for td in tr.find_all("td")
        if "data-month" in td.attrs
    }
    assert len(cells) == len(months) + len(years)
    for ts, expected in months.items():
        td = cells[(ts.year, str(ts.month))]
        assert value(td) == pytest.approx(expected, rel=1e-12, abs=1e-15)
        assert td.text() == f"{expected * 100:.1f}".replace("-0.0", "0.0")
    for ts, expected in years.items():
        assert value(cells[(ts.year, "year")]) == pytest.approx(expected, rel=1e-12, abs=1e-15)
    # all months compounded give the total return
    total = float(np.prod([1 + value(td) for (_, m), td in cells.items() if m != "year"]) - 1)
    assert total == pytest.approx(_json(run_dir, "metrics.json")["total_return"], rel=1e-9)


def test_no_external_references(run_dir: Path, big_dir: Path, sweep_dir: Path) -> None:
    for folder in (run_dir, big_dir, sweep_dir):
        text = render_report(folder)
        page = parse_report(text)
        for node in page.iter():
            assert node.tag not in ("script", "link", "iframe", "img", "object", "embed"), node.tag
            for name, attr in node.attrs.items():
                if name in ("href", "xlink:href"):  # in-page references or embedded images only
                    assert attr.startswith(("#", "data:image/png;base64,")), attr[:40]
                assert name != "src", node.tag
        # no URL at all outside the embedded images' base64
        bare = re.sub(r"data:image/png;base64,[A-Za-z0-9+/=\s]*", "", text)
        assert "http" not in bare and "//" not in bare
        assert "@import" not in text and "@font-face" not in text
        assert set(re.findall(r"url\((.)", text)) <= {"#"}


def test_a_large_run_stays_small_and_draws_a_few_thousand_points(big_dir: Path) -> None:
    text = render_report(big_dir)
    # ~400 KB: seven charts of ~1,200 points or a few hundred markers, 200 trades, 5 years of months
    assert len(text.encode()) < 450_000
    page = parse_report(text)
    equity = element(page, "chart-equity")
    assert "of 100,000 bars drawn" in equity.text()
    longest = max(len(p.attrs.get("d", "").split("L")) for p in equity.find_all("path"))
    assert 1000 < longest <= 2 * BUCKETS + 2
    position = element(page, "chart-position")
    trades = len(pd.read_parquet(big_dir / "trades.parquet"))
    markers = len(position.find_all("use"))
    assert trades > 1000 and markers < trades  # thinned markers, still many
    assert "entry/exit markers drawn" in position.text()
    assert element(page, "table-monthly").find_all("td")
    assert "Validation was not enabled" in element(page, "validation").text()


def test_same_artifacts_give_the_same_bytes(run_dir: Path, tmp_path: Path) -> None:
    first = render_report(run_dir)
    assert render_report(run_dir) == first
    # another process, another hash seed
    code = "import sys; from btlab.report import render_report; sys.stdout.write(render_report(sys.argv[1]))"
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    other = subprocess.run([sys.executable, "-c", code, str(run_dir)], env=env,
                           capture_output=True, check=True).stdout.decode("utf-8")  # fmt: skip
    assert other == first
    # the same run written again (another created_at) renders the same page
    copy = tmp_path / "copy"
    copy.mkdir()
    for name in (
        "equity.parquet",
        "fills.parquet",
        "trades.parquet",
        "metrics.json",
        "validation.json",
    ):
        (copy / name).write_bytes((run_dir / name).read_bytes())
    manifest = _json(run_dir, "manifest.json") | {"created_at": "2000-01-01T00:00:00+00:00"}
    (copy / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    assert render_report(copy) == first


def test_the_report_is_not_an_artifact(run_dir: Path) -> None:
    assert (run_dir / REPORT_NAME).is_file()
    assert REPORT_NAME not in _json(run_dir, "manifest.json")["artifacts"]
    assert verify_artifacts(run_dir) == []


def test_cached_report_is_reused_until_the_renderer_changes(run_dir: Path, tmp_path: Path) -> None:
    folder = tmp_path / "run"
    folder.mkdir()
    for path in run_dir.iterdir():
        if path.name != REPORT_NAME:
            (folder / path.name).write_bytes(path.read_bytes())
    written = cached_report(folder)
    assert written == folder / REPORT_NAME and generator_tag() in written.read_text()
    written.write_text(written.read_text().replace("<h1>", "<h1>kept "), encoding="utf-8")
    assert "<h1>kept " in cached_report(folder).read_text()  # served as it is
    stale = written.read_text().replace(generator_tag(), "btlab-report/0 btlab/0 matplotlib/0")
    written.write_text(stale, encoding="utf-8")
    assert cached_report(folder).read_text() == render_report(folder)  # rendered again
    assert [p.name for p in folder.iterdir() if p.name.startswith(".")] == []  # no temp left


def test_missing_artifacts_are_named(run_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(NotFoundError, match=r"manifest\.json"):
        render_report(tmp_path)
    (tmp_path / "manifest.json").write_bytes((run_dir / "manifest.json").read_bytes())
    for name in ("metrics.json", "validation.json"):
        (tmp_path / name).write_bytes((run_dir / name).read_bytes())
    with pytest.raises(RunError, match=r"equity\.parquet is missing"):
        render_report(tmp_path)
    (tmp_path / "equity.parquet").write_bytes(b"not parquet")
    with pytest.raises(RunError, match=r"equity\.parquet is unreadable"):
        write_report(tmp_path)
    assert not (tmp_path / REPORT_NAME).exists()


# ---------------------------------------------------------------- downsampling


def test_minmax_indices_keep_every_extreme() -> None:
    rng = np.random.default_rng(3)
    values = rng.standard_normal(100_000).cumsum()
    values[12_345] = -1e6  # a spike down and one up, one bar each
    values[87_654] = 1e6
    keep = minmax_indices(values, 500)
    assert keep.size <= 2 * 500 + 2 and np.all(np.diff(keep) > 0)
    assert {0, 12_345, 87_654, 99_999} <= set(keep.tolist())
    size = -(-values.size // 500)
    for start in range(0, values.size, size):  # each bucket's low and high are drawn
        chunk = values[start : start + size]
        assert start + int(chunk.argmin()) in keep and start + int(chunk.argmax()) in keep
    assert np.array_equal(minmax_indices(values[:900], 500), np.arange(900))  # short: whole
    with_nan = values.copy()
    with_nan[:5000] = np.nan
    assert np.isfinite(with_nan[minmax_indices(with_nan, 500)][1:]).sum() > 900


# ---------------------------------------------------------------- sweeps


def test_sweep_report_has_heatmap_best_and_pbo(sweep_dir: Path) -> None:
    page = parse_report(render_report(sweep_dir))
    summary, heatmap = _json(sweep_dir, "sweep.json"), _json(sweep_dir, "heatmap.json")
    v, metrics = _json(sweep_dir, "validation.json"), _json(sweep_dir, "metrics.json")
    chart = element(page, "chart-heatmap")
    svg_text = chart.find("svg").text()
    assert chart.find("svg").find_all("image")  # the grid of colours
    for row in heatmap["z"]:  # every cell annotated with its value
        for z in row:
            assert z is None or f"{z:.2f}" in svg_text
    best = {tr.attrs["data-param"]: tr for tr in element(page, "table-best").find_all("tr")}
    for name, param in summary["best"]["params"].items():
        assert value(best[name].find("td")) == param
    assert value(best["objective"].find("td")) == metrics["sharpe"]
    top = element(page, "table-top").find("tbody").find_all("tr")
    assert int(top[0].attrs["data-combo"]) == summary["best"]["combo"]
    table = pd.read_parquet(sweep_dir / "sweep.parquet")
    assert len(top) == min(10, len(table))
    shown = [value(tr.find_all("td")[2]) for tr in top]  # fast, slow, then the objective
    assert shown == sorted(table["sharpe"], reverse=True)[: len(top)]
    rows = {tr.attrs["data-key"]: tr for tr in element(page, "table-validation").find_all("tr")
            if "data-key" in tr.attrs}  # fmt: skip
    assert value(rows["pbo"].find("td")) == v["pbo"]["pbo"]
    assert value(rows["dsr"].find("td")) == v["dsr"]["dsr"]
    assert "best sharpe over the grid" in rows["permutation"].text()
    identity = element(page, "table-identity").text()
    assert "12 valid of 12" in identity and "maximize sharpe" in identity
    for chart_id in CHARTS:
        assert not page.find_all(id=chart_id)


# ---------------------------------------------------------------- the command line


def test_btlab_run_writes_the_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out, bare = tmp_path / "with", tmp_path / "without"
    assert main(["run", "--quiet", "--json", "--no-validation", "--out", str(out)]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["report"] == str(out / REPORT_NAME)
    page = parse_report((out / REPORT_NAME).read_text(encoding="utf-8"))
    for chart_id in CHARTS:
        element(page, chart_id)
    # readable as the artifacts beside it are, not private to its writer as a temporary file is
    mode = (out / REPORT_NAME).stat().st_mode & 0o777
    assert mode == 0o644, oct(mode)
    assert (
        main(["run", "--quiet", "--json", "--no-validation", "--no-report", "--out", str(bare)])
        == 0
    )
    assert json.loads(capsys.readouterr().out)["report"] is None
    assert not (bare / REPORT_NAME).exists()
    # the report changes nothing that is hashed
    assert _json(out, "manifest.json")["run_hash"] == _json(bare, "manifest.json")["run_hash"]


def test_btlab_report_renders_a_folder(
    run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "elsewhere" / "r.html"
    assert main(["report", str(run_dir), "--out", str(target)]) == 0
    assert str(target) in capsys.readouterr().out
    assert target.read_text(encoding="utf-8") == render_report(run_dir)
    assert main(["report", str(tmp_path)]) == 2
    assert "has no manifest.json" in capsys.readouterr().err
    assert main(["report", "0123abcd", "--home", str(tmp_path / "home")]) == 2
    assert "unknown run id" in capsys.readouterr().err


def test_sweep_fold_labels_are_dates(sweep_dir: Path) -> None:
    """A sweep folder has no equity table: its folds are dated from sweep.json, not bar numbers."""
    page = parse_report(render_report(sweep_dir))
    folds = _json(sweep_dir, "validation.json")["folds"]["folds"]
    ts = btlab.synthetic().ts  # the preset's data: the embedded synthetic default
    rows = element(page, "table-folds").find("tbody").find_all("tr")
    assert len(rows) == len(folds) > 1
    for tr, fold in zip(rows, folds, strict=True):
        start, end = (td.text() for td in tr.find_all("td")[:2])
        assert start == str(pd.Timestamp(int(ts[fold["start_bar"]]), tz="UTC").date()), start
        assert end == str(pd.Timestamp(int(ts[fold["end_bar"]]), tz="UTC").date()), end


def test_identity_shows_the_data_facts(run_dir: Path, page: Node) -> None:
    manifest = _json(run_dir, "manifest.json")
    identity = element(page, "table-identity")
    shown = {tr.attrs["data-key"]: tr.find("td").text() for tr in identity.find_all("tr")}
    assert shown["calendar"] == "equities (declared)"
    assert shown["periods_per_year"] == "252"
    assert manifest["dataset"]["periods_per_year"] == 252
    assert "bars on Mon, Tue, Wed, Thu, Fri" in shown["inference"]
    assert shown["gaps"] == "0"
    assert not page.find_all(attrs={"data-code": "timeframe_mismatch"})
