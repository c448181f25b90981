"""The `btlab` command line: run a preset or a request, list presets; service commands plug in.

`btlab run` with no argument runs the default preset on the embedded synthetic dataset.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from .cli_sweep import add_grid_arguments
from .cli_walkforward import add_walkforward_arguments
from .errors import BtlabError, ConfigError, DataError, NotFoundError, RunError
from .metric_registry import METRICS, SWEEP_COLUMNS
from .plugins import ENV, add_plugin_argument, env_plugins, load_plugins
from .presets import DEFAULT_PRESET, list_presets, resolve_request
from .runtime import tune_allocator
from .store import DB_NAME, Store, default_home
from .timeframes import data_name, data_summary

# soft_wrap: a message is one line however narrow the terminal or pipe (CI logs, grep)
console = Console(stderr=True, soft_wrap=True)
out_console = Console(soft_wrap=True)


def _parse_value(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text  # a bare word is a string: --set strategy.name=ma_trend


def parse_set(items: Sequence[str]) -> dict[str, Any]:
    """`a.b.c=VALUE` pairs (VALUE as JSON, else a string) as one nested mapping."""
    # here, not at the top: `btlab --help` and `btlab presets` start without numba and pandas
    from .config import merge_overrides

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


_PARQUET_SUFFIXES = (".parquet", ".pq")


def _file_format(path: Path) -> str:
    """csv or parquet: a file's by its extension; a folder's by the data files it holds."""
    if not path.is_dir():
        return "parquet" if path.name.lower().endswith(_PARQUET_SUFFIXES) else "csv"
    suffixes = {
        p.suffix.lower() for p in path.iterdir() if p.is_file() and not p.name.startswith(".")
    }
    has_csv, has_parquet = ".csv" in suffixes, bool(suffixes & set(_PARQUET_SUFFIXES))
    if has_csv and has_parquet:
        raise ConfigError("invalid --data", [(
            "data", f"the folder {path} holds both CSV and Parquet files; a portfolio's files "
            "share one format: move one kind out or name the files with --data each",
        )])  # fmt: skip
    return "parquet" if has_parquet else "csv"


def data_section(paths: Sequence[Path]) -> dict[str, Any]:
    """The request's data section for `--data` given once (a file, a long file or a folder) or
    several times (one file per symbol, or long files: a portfolio)."""
    if len(paths) == 1:
        return {"source": _file_format(paths[0]), "path": str(paths[0])}
    formats = {str(p): _file_format(p) for p in paths}
    if len(set(formats.values())) > 1:
        listed = ", ".join(f"{p} ({f})" for p, f in formats.items())
        raise ConfigError("invalid --data", [(
            "data", f"the files of one portfolio share one format, and these do not: {listed}",
        )])  # fmt: skip
    return {"source": next(iter(formats.values())), "paths": [str(p) for p in paths]}


def build_request(args: argparse.Namespace) -> dict[str, Any]:
    """The request body `btlab run` sends to the pipeline, with --data, --seed and --set applied."""
    # here, not at the top: `btlab --help` and `btlab presets` start without numba and pandas
    from .config import merge_overrides

    body = load_request(args.request)
    extra: dict[str, Any] = parse_set(args.set or [])
    if args.data:
        extra = merge_overrides(extra, {"data": data_section(args.data)})
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
        if math.isnan(value):
            return "undefined"  # the reason is in the run's warnings
        return f"{value:,.4f}" if abs(value) < 1e6 else f"{value:,.0f}"
    return "—" if value is None else str(value)


def _defined(value: Any) -> bool:
    return isinstance(value, int | float) and math.isfinite(value)


def metrics_table(metrics: dict[str, Any], title: str, status: str | None = None) -> Table:
    """The headline metrics; `status` (a ruin or halt, `run_warnings.halt_status`) as a first row."""
    table = Table(title=title, show_header=True, header_style="bold")
    table.add_column("metric")
    table.add_column("value", justify="right")
    if status is not None:
        table.add_row(Text("status", style="bold red"), Text(status, style="bold red"))
    for m in METRICS:  # the ruin and halt flags are the status row
        if m.headline and m.kind != "flag":
            table.add_row(m.name, _fmt(metrics.get(m.name)))
    return table


def print_warnings(warnings: Sequence[Any]) -> None:
    """One `warning: code: message` line per run warning, on stderr (never parsed as markup)."""
    for warning in warnings:
        console.print(Text.assemble(("warning: ", "bold yellow"), str(warning)))


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


def home_datasets(args: argparse.Namespace) -> Callable[[str], Any]:
    """The `resolve_stored` of a CLI run: stored datasets (`data.source = "dataset"`) come from
    the home's store, as in the service. Read-only: a missing home is an error naming it, never
    created."""
    home = Path(args.home).expanduser() if args.home else None

    def resolve(dataset_id: str) -> Any:
        folder = home or default_home()
        if not (folder / DB_NAME).is_file():
            raise DataError(
                "no_store",
                f"data.source 'dataset' reads stored datasets from the btlab home {folder}, "
                "and there is no home there; import the file first with `btlab data import FILE` "
                "(or name another home with --home / BTLAB_HOME)",
            )
        store = Store(folder)
        try:
            return store.load_dataset(dataset_id)  # the service's own path to a stored dataset
        except NotFoundError as exc:
            raise NotFoundError(f"{exc} in home {folder}") from None
        finally:
            store.close()

    return resolve


def home_portfolios(args: argparse.Namespace) -> Callable[[str], Any]:
    """The `resolve_portfolio` of a CLI run: a stored portfolio's id (`btlab data import` of a
    folder or a long file) runs that portfolio, from the home's store as in the service.
    NotFoundError where the id names none (it may be a stored dataset's); read-only."""
    home = Path(args.home).expanduser() if args.home else None

    def resolve(portfolio_id: str) -> Any:
        folder = home or default_home()
        if not (folder / DB_NAME).is_file():
            raise NotFoundError(f"no btlab home at {folder}")  # home_datasets names the fix
        store = Store(folder)
        try:
            return store.load_portfolio(portfolio_id)  # the service's own path to a portfolio
        finally:
            store.close()

    return resolve


def check_out_folder(
    out: Path, force: bool, config_hash: str | None = None, request: Any = None
) -> None:  # request: the request as hashed (`pipeline.hashed_request`)
    """Refuse, before any work, an output folder holding anything but this very run (README,
    "Output folders"): the rule for the default folder and for --out alike. Without a config
    hash (before the data is read) only a folder that holds no run at all is refused."""
    # here, not at the top: `btlab --help` and `btlab presets` start without numba and pandas
    from .artifacts import OutputFolderTaken, folder_conflict, folder_identity

    if force:
        return
    identity = {} if config_hash is None else folder_identity(config_hash, request)
    reason = folder_conflict(out, identity)
    if reason is not None:
        raise OutputFolderTaken(out, reason, "--force")


@contextmanager
def force_hint() -> Iterator[None]:
    """An OutputFolderTaken raised while writing names the CLI's flag, not the Python argument."""
    # here, not at the top: `btlab --help` and `btlab presets` start without numba and pandas
    from .artifacts import OutputFolderTaken

    try:
        yield
    except OutputFolderTaken as exc:
        raise OutputFolderTaken(exc.folder, exc.reason, "--force") from None


def cmd_run(args: argparse.Namespace) -> int:
    # here, not at the top: `btlab --help` and `btlab presets` start without numba and pandas
    from .artifacts import write_artifacts
    from .pipeline import RunCache, hashed_request, resolve_config, run, run_identity
    from .run_result import halt_status

    if args.out:  # stray files in --out: said before the data is even read
        check_out_folder(Path(args.out), args.force)
    resolve_stored, resolve_portfolio = home_datasets(args), home_portfolios(args)
    cache = RunCache(max_datasets=1)  # the data that names the folder, kept for the run
    config, dataset, chash = resolve_config(
        resolve_request(build_request(args)), resolve_stored=resolve_stored,
        resolve_portfolio=resolve_portfolio, cache=cache,
    )  # fmt: skip
    out = Path(args.out) if args.out else Path("btlab-out") / chash[:12]
    check_out_folder(out, args.force, chash, hashed_request(config, run_identity(config, dataset)))
    with stage_progress(args.quiet, "{task.percentage:>3.0f}%") as on_event:
        result = run(
            config, on_event=on_event, resolve_stored=resolve_stored,
            resolve_portfolio=resolve_portfolio, cache=cache,
        )  # fmt: skip
    with force_hint():
        manifest = write_artifacts(result, out, overwrite=args.force, replace_same_run=True)
    report = None if args.no_report else write_run_report(out)
    print_warnings(result.warnings)
    if args.json:
        out_console.print_json(
            json.dumps(
                {"out": str(out), "run_hash": manifest["run_hash"], "metrics": result.metrics,
                 "warnings": manifest["warnings"], "report": None if report is None else str(report),
                 "data": result.dataset.meta.model_dump(mode="json")},
                default=str,
            )
        )  # fmt: skip
        return 0
    meta = result.dataset.meta
    symbols = getattr(meta, "symbols", None)
    on = getattr(meta, "symbol", "") if symbols is None else f"{len(symbols):,} symbols"
    title = f"{config.strategy.name} on {on}"
    out_console.print(metrics_table(result.metrics, title, halt_status(result)))
    for line in data_summary(result.dataset.meta, warnings=False):
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
    # here, not at the top: `btlab --help` and `btlab presets` start without numba and pandas
    from .report import write_report

    try:
        return write_report(folder)
    except Exception as exc:
        raise RunError(
            f"the artifacts are in {folder}, but the report failed: {exc} (--no-report skips it)"
        ) from exc


def validation_summary(validation: dict[str, Any]) -> str:
    """One line: the statistics that are defined, then those computed but undefined (the
    warnings say why); sections not computed (disabled) are left out."""
    parts: list[str] = []
    undefined: list[str] = []

    def show(label: str, value: Any, text: Callable[[], str]) -> None:
        if _defined(value):
            parts.append(text())
        else:
            undefined.append(label)

    psr = validation.get("psr")
    if psr is not None:
        show("PSR", psr.get("psr"), lambda: f"PSR {psr['psr']:.3f}")
        show("DSR", psr.get("dsr"), lambda: f"DSR {psr['dsr']:.3f}")
    boot = validation.get("bootstrap")
    if boot is not None:
        ci = list(boot.get("sharpe_ci") or [None, None])
        lo, hi = ci[0], ci[-1]
        both = lo if _defined(lo) and _defined(hi) else None
        show("Sharpe CI", both, lambda: f"Sharpe CI [{_fmt(lo)}, {_fmt(hi)}]")
    perm = validation.get("permutation")
    if perm is not None:
        show("permutation p", perm.get("p_value"), lambda: f"permutation p {perm['p_value']:.3f}")
    if undefined:
        parts.append(f"undefined: {', '.join(undefined)} (see the warnings)")
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
    """The sweep request `btlab sweep` runs: `build_request` plus the grid options
    (`cli_sweep.with_grid_options`)."""
    from .cli_sweep import with_grid_options

    return with_grid_options(build_request(args), args)


def sweep_table(result: Any, top: int = 10) -> Table:
    """The best `top` combinations by the objective, ranked (#), with their index in the grid
    (combo, as in the sweep's table artifact) and a few headline metrics."""
    objective = result.request.objective
    frame = result.table.sort_values(objective, ascending=False, kind="stable", na_position="last")
    axes = list(result.expansion.axes)
    shown = [objective, *(m for m in SWEEP_COLUMNS if m != objective)]
    columns = [c for c in shown if c in frame.columns]  # as the report's sweep table
    total = len(result.expansion)  # a streamed sweep's table holds its `keep` best only
    table = Table(
        title=f"top {min(top, len(frame))} of {total} by {objective}", header_style="bold"
    )
    for name in ["#", "combo", *axes, *columns]:  # the rank, then the index in the grid
        table.add_column(name, justify="right")
    for rank, values in enumerate(frame.head(top).to_dict("records"), start=1):
        table.add_row(
            str(rank),
            str(values["combo"]),
            *(str(values[a]) for a in axes),
            *(_fmt(values[c]) for c in columns),
        )
    return table


def run_grid_job(args: argparse.Namespace, kind: str, request: Any) -> tuple[Any, Any, Path, Any]:
    """A sweep's or walk-forward's (`kind`) run: data, hash, output folder, the run with its
    progress bar (its batches on the cluster `BTLAB_CLUSTER` names, else here), artifacts,
    report, warnings: (result, manifest, out, report)."""
    # here, not at the top: `btlab --help` and `btlab presets` start without numba and pandas
    from .executors import executor_from_env
    from .pipeline import RunCache, hashed_request, load_dataset, run_identity
    from .run_kinds import run_kind

    if args.out:
        check_out_folder(Path(args.out), args.force)
    resolve_stored, resolve_portfolio = home_datasets(args), home_portfolios(args)
    cache = RunCache(max_datasets=1)
    dataset = load_dataset(
        request, resolve_stored=resolve_stored, resolve_portfolio=resolve_portfolio, cache=cache
    )
    identity = run_identity(request, dataset)
    chash = run_kind(kind).config_hash(request, identity)
    prefix = {"sweep": "sweep", "walkforward": "wfo"}[kind]
    out = Path(args.out) if args.out else Path("btlab-out") / f"{prefix}-{chash[:12]}"
    check_out_folder(out, args.force, chash, hashed_request(request, identity))
    with stage_progress(args.quiet, "{task.completed}/{task.total}") as on_event:
        result = run_kind(kind).execute(
            request.model_dump(mode="json"), on_event=on_event, should_cancel=lambda: False,
            resolve_stored=resolve_stored, resolve_portfolio=resolve_portfolio, cache=cache,
            batches=executor_from_env(),
        )  # fmt: skip
    with force_hint():
        manifest = result.write_artifacts(out, overwrite=args.force, replace_same_run=True)
    report = None if args.no_report else write_run_report(out)
    print_warnings(result.warnings)
    return result, manifest, out, report


def cmd_wfo(args: argparse.Namespace) -> int:
    from .cli_walkforward import print_walkforward, walkforward_request
    from .walkforward import parse_walkforward_request

    request = parse_walkforward_request(walkforward_request(build_sweep_request(args), args))
    result, manifest, out, report = run_grid_job(args, "walkforward", request)
    print_walkforward(out_console, result, manifest, out, report, as_json=args.json)
    return 0


def cmd_sweep(args: argparse.Namespace) -> int:
    # here, not at the top: `btlab --help` and `btlab presets` start without numba and pandas
    from .sweep import parse_sweep_request

    request = parse_sweep_request(build_sweep_request(args))
    result, manifest, out, report = run_grid_job(args, "sweep", request)
    summary = result.summary()
    best = result.best_point()
    objective = request.objective
    if args.json:
        out_console.print_json(
            json.dumps(
                {"out": str(out), "run_hash": manifest["run_hash"], "objective": objective,
                 "n_combinations": summary["n_combinations"], "n_valid": summary["n_valid"],
                 "n_skipped": summary["n_skipped"], "best": result.best,
                 "warnings": manifest["warnings"], "report": None if report is None else str(report)},
                default=str,
            )
        )  # fmt: skip
        return 0
    out_console.print(
        f"{request.strategy.name} on {data_name(result.dataset.meta)}: {summary['n_valid']} of "
        f"{summary['n_combinations']} combinations ({summary['n_skipped']} skipped)"
    )
    for line in data_summary(result.dataset.meta, warnings=False):
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
        "--data",
        type=Path,
        action="append",
        help="CSV or Parquet file replacing the request's data source; a long file (with a "
        "symbol column) or a folder of files is a portfolio, and so is --data given again",
    )
    parser.add_argument("--out", help=f"artifact folder (default: {default_out})")
    parser.add_argument(
        "--force",
        action="store_true",
        help="replace an output folder holding another run or other files",
    )
    parser.add_argument(
        "--home",
        help="home of stored datasets, for data.source 'dataset' (default: $BTLAB_HOME or ~/.btlab)",
    )
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
    add_plugin_argument(parser)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="btlab", description="Deterministic backtests with reproducible artifacts."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    run_p = sub.add_parser("run", help="run a preset or a JSON request and write its artifacts")
    add_request_arguments(run_p, "", "btlab-out/<config hash>")
    run_p.add_argument("--json", action="store_true", help="print the metrics as JSON")
    run_p.set_defaults(func=cmd_run)
    sweep_p = sub.add_parser(
        "sweep", help="run every combination of a grid (strategy parameters, request fields)"
    )
    add_request_arguments(sweep_p, ", may hold 'grid'", "btlab-out/sweep-<config hash>")
    wfo_p = sub.add_parser("wfo", help="walk forward: re-fit a grid per window, trade the next")
    add_request_arguments(wfo_p, ", may hold 'grid', 'walkforward'", "btlab-out/wfo-<config hash>")
    add_walkforward_arguments(wfo_p)
    for p, json_help, func in (
        (sweep_p, "the best combination", cmd_sweep), (wfo_p, "the windows and metrics", cmd_wfo)
    ):  # fmt: skip
        add_grid_arguments(p)
        p.add_argument("--json", action="store_true", help=f"print {json_help} as JSON")
        p.set_defaults(func=func)
    presets_p = sub.add_parser("presets", help="list the presets")
    presets_p.add_argument("--json", action="store_true")
    presets_p.set_defaults(func=cmd_presets)
    try:  # here, not at the top: the service commands are optional (absent in a partial install)
        from .service_cli import add_service_commands  # type: ignore[import-not-found,unused-ignore]
    except ImportError:  # the service commands are optional in a partial install
        pass
    else:
        add_service_commands(sub)
    return parser


def load_command_plugins(args: argparse.Namespace) -> None:
    """For the commands that take `--plugin` (run, sweep, serve): import $BTLAB_PLUGINS, then
    the --plugin modules, before the request is resolved."""
    if not hasattr(args, "plugin"):
        return
    load_plugins(env_plugins(), ENV)
    load_plugins(args.plugin or [], "--plugin")


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    tune_allocator()  # this process runs btlab's work: keep freed arrays for reuse
    try:
        load_command_plugins(args)
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
