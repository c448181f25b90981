"""The `btlab` command line: run a preset or a request, list presets; service commands plug in.

`btlab run` with no argument runs the default preset on the embedded synthetic dataset.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from .config import merge_overrides
from .errors import BtlabError, ConfigError, RunError
from .presets import DEFAULT_PRESET, list_presets, resolve_request
from .runtime import tune_allocator

console = Console(stderr=True)
out_console = Console()


def _parse_value(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text  # a bare word is a string: --set strategy.name=ma_trend


def parse_set(items: Sequence[str]) -> dict[str, Any]:
    """`a.b.c=VALUE` pairs (VALUE as JSON, else a string) as one nested mapping."""
    overrides: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(
                "invalid --set", [(item, "expected KEY.PATH=VALUE, e.g. strategy.params.fast=10")]
            )
        node: dict[str, Any] = {}
        leaf = node
        *parents, last = key.split(".")
        for part in parents:
            leaf[part] = {}
            leaf = leaf[part]
        leaf[last] = _parse_value(value)
        overrides = merge_overrides(overrides, node)
    return overrides


def load_request(source: str | None) -> dict[str, Any]:
    """A request body from a preset name, a JSON file, or inline JSON (default: the default preset)."""
    if source is None:
        return {"preset": DEFAULT_PRESET}
    text: str | None = None
    if source.lstrip().startswith("{"):
        text = source
    elif source.endswith(".json") or Path(source).is_file():
        path = Path(source)
        if not path.is_file():
            raise ConfigError("invalid request", [("request", f"no such file: {source}")])
        text = path.read_text(encoding="utf-8")
    if text is None:
        return {"preset": source}
    try:
        body = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError("invalid request", [("request", f"not valid JSON: {exc}")]) from None
    if not isinstance(body, dict):
        raise ConfigError("invalid request", [("request", "expected a JSON object")])
    return body


def build_request(args: argparse.Namespace) -> dict[str, Any]:
    """The request body `btlab run` sends to the pipeline, with --data, --seed and --set applied."""
    body = load_request(args.request)
    extra: dict[str, Any] = parse_set(args.set or [])
    if args.data:
        fmt = "parquet" if str(args.data).lower().endswith((".parquet", ".pq")) else "csv"
        extra = merge_overrides(extra, {"data": {"source": fmt, "path": str(args.data)}})
    if args.seed is not None:
        extra["seed"] = args.seed
    if args.no_validation:
        extra = merge_overrides(extra, {"validation": {"enabled": False}})
    if not extra:
        return body
    if "preset" in body:
        return {
            "preset": body["preset"],
            "overrides": merge_overrides(body.get("overrides") or {}, extra),
        }
    if "data" in extra and "data" in body:
        body = {**body, "data": {}}  # a new data source replaces the old one whole
    return merge_overrides(body, extra)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.4f}" if abs(value) < 1e6 else f"{value:,.0f}"
    return "—" if value is None else str(value)


def metrics_table(metrics: dict[str, Any], title: str) -> Table:
    table = Table(title=title, show_header=True, header_style="bold")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key in (
        "total_return", "cagr", "sharpe", "sortino", "annual_volatility", "max_drawdown", "calmar",
        "trade_count", "win_rate", "profit_factor", "exposure", "total_costs", "final_equity",
    ):  # fmt: skip
        table.add_row(key, _fmt(metrics.get(key)))
    return table


@contextmanager
def stage_progress(
    quiet: bool, count_column: str
) -> Iterator[Callable[[str, dict[str, Any]], None]]:
    """A transient progress bar fed by a run's or sweep's events: the stage as its description,
    `progress` events as its count (shown with `count_column`); yields the event sink."""
    with Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), TextColumn(count_column),
        TimeElapsedColumn(), console=console, transient=True, disable=quiet,
    ) as progress:  # fmt: skip
        task = progress.add_task("starting", total=None)

        def on_event(kind: str, data: dict[str, Any]) -> None:
            if kind == "stage" and data["status"] == "started":
                progress.update(task, description=data["stage"], total=None, completed=0)
            elif kind == "progress":
                progress.update(task, total=data["total"], completed=data["done"])

        yield on_event


def cmd_run(args: argparse.Namespace) -> int:
    from .artifacts import write_artifacts
    from .pipeline import run

    config = resolve_request(build_request(args))
    with stage_progress(args.quiet, "{task.percentage:>3.0f}%") as on_event:
        result = run(config, on_event=on_event)
    out = Path(args.out) if args.out else Path("btlab-out") / result.config_hash[:12]
    manifest = write_artifacts(result, out, overwrite=args.force or not args.out)
    report = None if args.no_report else write_run_report(out)
    if args.json:
        out_console.print_json(
            json.dumps(
                {"out": str(out), "run_hash": manifest["run_hash"], "metrics": result.metrics,
                 "report": None if report is None else str(report),
                 "data": result.dataset.meta.model_dump(mode="json")},
                default=str,
            )
        )  # fmt: skip
        return 0
    out_console.print(
        metrics_table(result.metrics, f"{config.strategy.name} on {result.dataset.meta.symbol}")
    )
    for line in data_summary(result.dataset.meta):
        out_console.print(line, markup=False, highlight=False, soft_wrap=True)
    if result.validation:
        summary = validation_summary(result.validation)
        if summary:
            out_console.print(summary)
    out_console.print(f"artifacts: [bold]{out}[/]  run_hash {manifest['run_hash'][:16]}…")
    if report is not None:
        out_console.print(f"report: [bold]{report}[/]")
    return 0


def write_run_report(folder: Path) -> Path:
    """Write `report.html` into an artifact folder just written (the artifacts stay if it fails)."""
    from .report import write_report

    try:
        return write_report(folder)
    except Exception as exc:
        raise RunError(
            f"the artifacts are in {folder}, but the report failed: {exc} (--no-report skips it)"
        ) from exc


def data_summary(meta: Any) -> list[str]:
    """What the run took the data to be (timeframe, calendar, annualisation, range) and the
    data's warnings, one line each."""
    from .timeframes import inference_text

    def how(declared: bool) -> str:
        return "declared" if declared else "inferred"

    line = (
        f"data: {meta.symbol} {meta.timeframe} ({how(meta.timeframe_declared)}), calendar "
        f"{meta.calendar} ({how(meta.calendar_declared)}), periods_per_year "
        f"{meta.periods_per_year:g}, {meta.start:%Y-%m-%d %H:%M} -> {meta.end:%Y-%m-%d %H:%M} UTC, "
        f"{meta.rows:,} bars, {meta.gaps:,} gaps"
    )
    lines = [line]
    if meta.inference is not None:
        lines.append(
            "  evidence: " + inference_text(meta.calendar, meta.inference, meta.bars_per_day)
        )
    lines += [f"warning: {w}" for w in meta.warnings]
    return lines


def validation_summary(validation: dict[str, Any]) -> str:
    parts = []
    psr = validation.get("psr") or {}
    if psr.get("psr") is not None:
        parts.append(f"PSR {psr['psr']:.3f}")
    if psr.get("dsr") is not None:
        parts.append(f"DSR {psr['dsr']:.3f}")
    boot = validation.get("bootstrap") or {}
    if boot.get("sharpe_ci"):
        lo, hi = boot["sharpe_ci"]
        parts.append(f"Sharpe CI [{_fmt(lo)}, {_fmt(hi)}]")
    perm = validation.get("permutation") or {}
    if perm.get("p_value") is not None:
        parts.append(f"permutation p {perm['p_value']:.3f}")
    return "validation: " + ", ".join(parts) if parts else ""


def cmd_presets(args: argparse.Namespace) -> int:
    presets = list_presets()
    if args.json:
        out_console.print_json(json.dumps(presets))
        return 0
    table = Table(show_header=True, header_style="bold")
    table.add_column("preset")
    table.add_column("description")
    for name, preset in presets.items():
        table.add_row(
            name + (" (default)" if name == DEFAULT_PRESET else ""), preset.get("description", "")
        )
    out_console.print(table)
    return 0


def build_sweep_request(args: argparse.Namespace) -> dict[str, Any]:
    """The sweep request `btlab sweep` runs: `build_request` plus --grid axes and --objective."""
    from .sweep import parse_grid_option

    body = build_request(args)
    grid = dict(body.get("grid") or {})
    for item in args.grid or []:
        name, axis = parse_grid_option(item)
        grid[name] = axis
    if grid:
        body["grid"] = grid
    if args.objective:
        body["objective"] = args.objective
    return body


def sweep_table(result: Any, top: int = 10) -> Table:
    """The best `top` combinations by the objective, with a few headline metrics."""
    objective = result.request.objective
    frame = result.table.sort_values(objective, ascending=False, kind="stable", na_position="last")
    axes = list(result.expansion.axes)
    columns = [
        objective,
        *(m for m in ("sharpe", "total_return", "max_drawdown", "trade_count") if m != objective),
    ]
    table = Table(
        title=f"top {min(top, len(frame))} of {len(frame)} by {objective}", header_style="bold"
    )
    for name in ["#", *axes, *columns]:
        table.add_column(name, justify="right")
    for values in frame.head(top).to_dict("records"):
        table.add_row(
            str(values["combo"]),
            *(str(values[a]) for a in axes),
            *(_fmt(values[c]) for c in columns),
        )
    return table


def cmd_sweep(args: argparse.Namespace) -> int:
    from .sweep import parse_sweep_request, run_sweep

    request = parse_sweep_request(build_sweep_request(args))
    with stage_progress(args.quiet, "{task.completed}/{task.total}") as on_event:
        result = run_sweep(request, on_event=on_event)
    out = Path(args.out) if args.out else Path("btlab-out") / f"sweep-{result.config_hash[:12]}"
    manifest = result.write_artifacts(out, overwrite=args.force or not args.out)
    report = None if args.no_report else write_run_report(out)
    summary = result.summary()
    best = {k: result.best["params"][k] for k in result.expansion.axes}
    objective = request.objective
    if args.json:
        out_console.print_json(
            json.dumps(
                {"out": str(out), "run_hash": manifest["run_hash"], "objective": objective,
                 "n_combinations": summary["n_combinations"], "n_valid": summary["n_valid"],
                 "n_skipped": summary["n_skipped"], "best": result.best,
                 "report": None if report is None else str(report)},
                default=str,
            )
        )  # fmt: skip
        return 0
    out_console.print(
        f"{request.strategy.name} on {result.dataset.meta.symbol}: {summary['n_valid']} of "
        f"{summary['n_combinations']} combinations ({summary['n_skipped']} skipped)"
    )
    for line in data_summary(result.dataset.meta):
        out_console.print(line, markup=False, highlight=False, soft_wrap=True)
    out_console.print(sweep_table(result))
    best_text = " ".join(f"{k}={v}" for k, v in best.items())
    value = _fmt(result.best["metrics"].get(objective))
    out_console.print(f"best: [bold]{best_text}[/]  {objective} {value}", highlight=False)
    if result.validation:
        line = validation_summary(result.validation)
        trials = (result.validation.get("dsr") or {}).get("n_trials")
        pbo = (result.validation.get("pbo") or {}).get("pbo")
        extra = [f"DSR trials {trials}"] if trials else []
        extra += [f"PBO {pbo:.3f}"] if pbo is not None else []
        parts = [line.removeprefix("validation: ")] if line else []
        if parts or extra:
            out_console.print("validation: " + ", ".join(parts + extra), highlight=False)
    out_console.print(f"artifacts: [bold]{out}[/]  run_hash {manifest['run_hash'][:16]}…")
    if report is not None:
        out_console.print(f"report: [bold]{report}[/]")
    return 0


def add_request_arguments(parser: argparse.ArgumentParser, holds: str, default_out: str) -> None:
    """The arguments `btlab run` and `btlab sweep` share: the request, its overrides, the output."""
    parser.add_argument(
        "request",
        nargs="?",
        help=f"preset name, JSON file or inline JSON{holds} (default: {DEFAULT_PRESET})",
    )
    parser.add_argument(
        "--data", type=Path, help="CSV or Parquet file replacing the request's data source"
    )
    parser.add_argument("--out", help=f"artifact folder (default: {default_out})")
    parser.add_argument("--force", action="store_true", help="replace a non-empty --out folder")
    parser.add_argument(
        "--set",
        action="append",
        metavar="KEY=VALUE",
        help="override a field, e.g. strategy.params.fast=10",
    )
    parser.add_argument("--seed", type=int, help="root seed")
    parser.add_argument(
        "--no-validation", action="store_true", help="skip the validation statistics"
    )
    parser.add_argument(
        "--no-report", action="store_true", help="do not write report.html beside the artifacts"
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="btlab", description="Deterministic backtests with reproducible artifacts."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    run_p = sub.add_parser("run", help="run a preset or a JSON request and write its artifacts")
    add_request_arguments(run_p, "", "btlab-out/<config hash>")
    run_p.add_argument("--json", action="store_true", help="print the metrics as JSON")
    run_p.set_defaults(func=cmd_run)
    sweep_p = sub.add_parser("sweep", help="run every combination of a grid of strategy parameters")
    add_request_arguments(sweep_p, ", may hold 'grid'", "btlab-out/sweep-<config hash>")
    sweep_p.add_argument(
        "--grid",
        action="append",
        metavar="NAME=VALUES",
        help="an axis: NAME=START:STOP:STEP (inclusive) or NAME=V1,V2,... (repeat per parameter)",
    )
    sweep_p.add_argument(
        "--objective", help="the metric the best combination maximizes (default: sharpe)"
    )
    sweep_p.add_argument("--json", action="store_true", help="print the best combination as JSON")
    sweep_p.set_defaults(func=cmd_sweep)
    presets_p = sub.add_parser("presets", help="list the presets")
    presets_p.add_argument("--json", action="store_true")
    presets_p.set_defaults(func=cmd_presets)
    try:
        from .service_cli import add_service_commands  # type: ignore[import-not-found,unused-ignore]
    except ImportError:  # the service commands are optional in a partial install
        pass
    else:
        add_service_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    tune_allocator()  # this process runs btlab's work: keep freed arrays for reuse
    try:
        code: int = args.func(args)
        return code
    except BtlabError as exc:
        console.print(f"[red]error:[/] {exc}")
        return 2
    except KeyboardInterrupt:
        console.print("[yellow]interrupted[/]")
        return 130


if __name__ == "__main__":
    sys.exit(main())
