"""Service commands of the `btlab` CLI: serve, runs list|show|rm, data import|list|tag|rm.

`btlab.cli` adds them with `add_service_commands(subparsers)`. The `runs` and `data` commands
work on the home folder directly (``--home``, else ``BTLAB_HOME``, else ``~/.btlab``), so they
need no running server; they never run crash recovery (only `serve` does, at start-up). The
commands that only read (`runs list|show|rm`, `report`) never create a home: where there is none
they say so, naming the folder they looked in.
"""

from __future__ import annotations

import argparse
import errno
import json
import socket
import sys
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from .errors import BtlabError, NotFoundError
from .plugins import add_plugin_argument
from .store import DB_NAME, RUN_STATUSES, RunStateError, Store, default_home
from .timeframes import CALENDARS, data_summary

# soft_wrap: a message is one line however narrow the terminal or pipe (CI logs, grep)
out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)

LOOPBACK = ("127.0.0.1", "localhost", "::1")


def _home(args: argparse.Namespace) -> Path:
    return Path(args.home).expanduser() if args.home else default_home()


def _store(args: argparse.Namespace) -> Store:
    return Store(_home(args))


def _existing_store(args: argparse.Namespace) -> Store | None:
    """The home's store where the home exists; None (and nothing created) where it does not."""
    home = _home(args)
    return Store(home) if (home / DB_NAME).is_file() else None


def _get_run(store: Store | None, args: argparse.Namespace, run_id: str) -> Any:
    """A stored run; NotFoundError naming the home searched (also where there is no home)."""
    if store is None:
        raise NotFoundError(f"unknown run id {run_id!r}: there is no btlab home at {_home(args)}")
    try:
        return store.get_run(run_id)
    except NotFoundError as exc:
        raise NotFoundError(f"{exc} in home {store.home}") from None


def _print_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on `host`:`port` (port 0: a free one); BtlabError naming the
    address when it is busy or cannot be bound."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise BtlabError(f"cannot serve on host {host!r}: {exc.strerror}") from None
    family, _, _, _, address = infos[0]
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise BtlabError(
                f"port {port} on {host} is busy (another process listens there); "
                "choose another with --port"
            ) from None
        raise BtlabError(f"cannot listen on {host} port {port}: {exc.strerror}") from None
    sock.set_inheritable(True)
    return sock


def cmd_serve(args: argparse.Namespace) -> int:
    # here, not at the top: only `btlab serve` needs the server and the API (start-up time)
    import uvicorn

    from .api import Settings, create_app

    settings = Settings.from_env(home=args.home, workers=args.workers)
    if args.host not in LOOPBACK and not settings.token:
        err.print(
            f"[yellow]warning:[/] serving on {args.host} without BTLAB_TOKEN: anyone who can "
            "reach this port can run backtests and read results"
        )
    sock = bind(args.host, args.port)  # before the banner: a busy port is named, not announced
    port = sock.getsockname()[1]
    shown = f"[{args.host}]" if ":" in args.host else args.host
    config = uvicorn.Config(
        create_app(settings), log_level=args.log_level, timeout_graceful_shutdown=10
    )
    err.print(
        f"btlab serving {settings.home} on http://{shown}:{port}  (docs: /docs)", soft_wrap=True
    )
    try:
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        sock.close()
    return 0


def _run_dict(run: Any, *, full: bool) -> dict[str, Any]:
    keys = ["id", "kind", "status", "created_at", "started_at", "finished_at", "error",
            "config_hash", "dataset_hash", "run_hash", "metrics"]  # fmt: skip
    if full:
        keys += ["request", "config"]
    return {k: getattr(run, k) for k in keys}


def cmd_runs_list(args: argparse.Namespace) -> int:
    store = _existing_store(args)
    runs: list[Any] = []
    total = 0
    symbols: dict[str, str] = {}  # a stored dataset's symbol, by id
    if store is not None:
        try:
            runs, total = store.list_runs(limit=args.limit, status=args.status)
            if any((r.config.get("data") or {}).get("id") for r in runs):
                symbols = {d.id: d.symbol for d in store.list_datasets()}
        finally:
            store.close()
    if args.json:
        _print_json({"total": total, "items": [_run_dict(r, full=False) for r in runs]})
        return 0
    where = f"{_home(args)}" + (" (no btlab home there yet)" if store is None else "")
    out.print(runs_table(runs, f"{len(runs)} of {total} runs in {where}", symbols))
    for line in runs_errors(runs):
        out.print(line, highlight=False, markup=False)
    return 0


def _symbol(config: dict[str, Any], symbols: dict[str, str]) -> str:
    """The symbol of a run's data: as the request names it, else a file's stem (as the loader
    infers it), else a stored dataset's symbol from the home."""
    data = config.get("data") or {}
    if data.get("symbol"):
        return str(data["symbol"])
    if data.get("path"):
        return Path(str(data["path"])).stem
    return symbols.get(str(data.get("id")), "—")


def runs_table(runs: list[Any], title: str, symbols: dict[str, str] | None = None) -> Table:
    """Runs as a table that fits 80 columns: id and status never cut (users copy and grep
    them); a failed run's error goes on a line of its own below (`runs_errors`)."""
    table = Table(title=title, header_style="bold", box=None, pad_edge=False, padding=(0, 1))
    table.add_column("id", no_wrap=True, min_width=16)
    table.add_column("status", no_wrap=True, min_width=9)
    table.add_column("strategy", no_wrap=True, overflow="ellipsis", min_width=9, max_width=24)
    table.add_column("symbol", no_wrap=True, overflow="ellipsis", min_width=6, max_width=12)
    table.add_column("created", no_wrap=True, min_width=11)
    table.add_column("sharpe", justify="right", no_wrap=True, min_width=6)
    table.add_column("return", justify="right", no_wrap=True, min_width=6)
    for r in runs:
        m = r.metrics or {}
        strategy = str((r.config.get("strategy") or {}).get("name", "—"))
        ret = m.get("total_return")
        table.add_row(
            r.id, r.status, ("sweep " if r.kind == "sweep" else "") + strategy, _symbol(r.config, symbols or {}),
            r.created_at[5:16].replace("T", " "), _num(m.get("sharpe"), 2),
            f"{ret:.1%}" if isinstance(ret, int | float) and not isinstance(ret, bool) else "—",
        )  # fmt: skip
    return table


def runs_errors(runs: list[Any]) -> list[str]:
    """One line per run that failed: its id and its error, uncut."""
    return [f"{r.id} {r.status}: {r.error}" for r in runs if r.error]


def _num(value: Any, digits: int = 4) -> str:
    return (
        f"{value:.{digits}f}"
        if isinstance(value, int | float) and not isinstance(value, bool)
        else "—"
    )


def cmd_runs_show(args: argparse.Namespace) -> int:
    store = _existing_store(args)
    try:
        run = _get_run(store, args, args.run_id)
        assert store is not None  # _get_run raised otherwise
        events = store.events_after(run.id) if args.events else []
        folder = store.run_dir(run.id)
    finally:
        if store is not None:
            store.close()
    info = _run_dict(run, full=True)
    info["artifacts"] = str(folder) if folder.is_dir() else None
    if args.events:
        info["events"] = [
            {"seq": e.seq, "type": e.type, "data": e.data, "created_at": e.created_at}
            for e in events
        ]
    _print_json(info)
    return 0


def cmd_runs_rm(args: argparse.Namespace) -> int:
    store = _existing_store(args)
    try:
        run_ids = list(dict.fromkeys(args.run_ids))
        for run_id in run_ids:  # all or nothing: every id must name a finished run
            run = _get_run(store, args, run_id)
            if not run.finished:
                raise RunStateError(f"run {run_id} is {run.status}; cancel it before deleting it")
        assert store is not None  # _get_run raised otherwise
        for run_id in run_ids:
            store.delete_run(run_id)
            out.print(f"deleted {run_id}")
    finally:
        if store is not None:
            store.close()
    return 0


def cmd_data_import_portfolio(args: argparse.Namespace) -> int:
    """Import a folder of files or a long file (a `symbol` column) as one stored portfolio."""
    from .portfolio import load_path

    portfolio = load_path(
        args.file, timeframe=args.timeframe, calendar=args.calendar, symbol=args.symbol
    )
    store = _store(args)
    try:
        row, created = store.add_portfolio(portfolio)
    finally:
        store.close()
    if args.json:
        _print_json({"created": created, "kind": "portfolio", **row.__dict__})
        return 0
    verb = "imported" if created else "already stored"
    out.print(
        f"{verb}: portfolio of {row.symbols} symbols, {row.timeframe}, {row.rows} clock bars",
        soft_wrap=True,
    )
    out.print(f'id: {row.id}  (use it as data.source "dataset", data.id)', soft_wrap=True)
    return 0


def cmd_data_import(args: argparse.Namespace) -> int:
    # here, not at the top: the other commands start without the engine (start-up time)
    from .data import load_file
    from .errors import DataError

    path = Path(args.file)
    if path.is_dir():
        return cmd_data_import_portfolio(args)
    try:
        dataset = load_file(
            path, symbol=args.symbol, timeframe=args.timeframe, calendar=args.calendar
        )
    except DataError as exc:
        if exc.rule != "many_symbols":
            raise
        return cmd_data_import_portfolio(args)  # a long file: one portfolio
    store = _store(args)
    try:
        row, created = store.add_dataset(dataset)
    finally:
        store.close()
    if args.json:
        _print_json({"created": created, **row.__dict__})
        return 0
    verb = "imported" if created else "already stored"
    out.print(f"{verb}: {row.symbol} {row.timeframe}, {row.rows} bars, {row.gaps} gaps")
    if created:
        for line in data_summary(dataset.meta):
            out.print(line, markup=False, highlight=False, soft_wrap=True)

    if not created and args.symbol and args.symbol != row.symbol:
        out.print(
            f"these bars are stored as {row.symbol}; rename them with "
            f"`btlab data tag {row.id} {args.symbol}`",
            soft_wrap=True,
        )
    out.print(
        f'dataset id {row.id}\nuse it as  {{"data": {{"source": "dataset", "id": "{row.id}"}}}}'
    )
    return 0


def cmd_data_list(args: argparse.Namespace) -> int:
    store = _store(args)
    try:
        rows = store.list_datasets()
        portfolios = store.list_portfolios()
    finally:
        store.close()
    if args.json:
        _print_json([r.__dict__ for r in rows])
        return 0
    table = Table(header_style="bold")
    table.add_column("id", no_wrap=True, min_width=64)  # never cut: runs name it in full
    for col in ("symbol", "timeframe", "rows", "start", "end", "gaps"):
        table.add_column(col)
    for r in rows:
        table.add_row(r.id, r.symbol, r.timeframe, str(r.rows), (r.start or "")[:19],
                      (r.end or "")[:19], str(r.gaps))  # fmt: skip
    # room for the 64-digit ids even where the terminal (or a pipe's 80 columns) is narrower
    console = Console(width=max(out.width, 150), file=out.file)
    console.print(table)
    if portfolios:
        held = Table(title="portfolios", header_style="bold")
        held.add_column("id", no_wrap=True, min_width=64)
        for col in ("symbols", "timeframe", "clock bars", "start", "end"):
            held.add_column(col)
        for p in portfolios:
            held.add_row(p.id, str(p.symbols), p.timeframe, str(p.rows), (p.start or "")[:19],
                         (p.end or "")[:19])  # fmt: skip
        console.print(held)
    return 0


def cmd_data_rm(args: argparse.Namespace) -> int:
    store = _store(args)
    try:
        ids = list(dict.fromkeys(args.dataset_ids))
        for dataset_id in ids:  # all known before any goes
            store.get_dataset(dataset_id)
        for dataset_id in ids:
            row = store.delete_dataset(dataset_id)
            out.print(f"deleted {row.id} ({row.symbol})", soft_wrap=True)
    finally:
        store.close()
    return 0


def cmd_data_tag(args: argparse.Namespace) -> int:
    store = _store(args)
    try:
        before = store.get_dataset(args.dataset_id)
        row = store.set_dataset_symbol(args.dataset_id, args.symbol)
    finally:
        store.close()
    if args.json:
        _print_json(row.__dict__)
        return 0
    out.print(f"{row.id}: {before.symbol} -> {row.symbol}", soft_wrap=True)
    return 0


def report_folder(args: argparse.Namespace) -> Path:
    """The artifact folder `btlab report` renders: a path holding a manifest, else a stored
    run's folder (NotFoundError for an unknown run, RunStateError for one not completed)."""
    # here, not at the top: the other commands start without the engine (start-up time)
    from .run_folders import run_folder

    store = _existing_store(args)
    try:
        return run_folder(args.run, store, _home(args))
    finally:
        if store is not None:
            store.close()


def cmd_report(args: argparse.Namespace) -> int:
    folder = report_folder(args)  # before importing the report: a mistake is told at once
    # here, not at the top: the other commands start without the engine (start-up time)
    from .report import write_report

    path = write_report(folder, Path(args.out).expanduser() if args.out else None)
    out.print(f"report: {path}")
    return 0


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {value}")
    return value


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"port must be an integer, got {text!r}") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"port must be in 0..65535, got {port}")
    return port


def add_service_commands(sub: Any) -> None:
    """Add `serve`, `runs`, `data` and `report` to the `btlab` subparsers."""
    home_help = "home folder (default: $BTLAB_HOME or ~/.btlab)"

    serve = sub.add_parser("serve", help="run the HTTP service (SPEC §7)")
    serve.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1)")
    serve.add_argument("--port", type=_port, default=8000, help="port (default 8000)")
    serve.add_argument("--home", help=home_help)
    serve.add_argument("--workers", type=int, help="runs executing at once (default: up to 2)")
    serve.add_argument("--log-level", default="info",
                       choices=["critical", "error", "warning", "info", "debug"])  # fmt: skip
    add_plugin_argument(serve)
    serve.set_defaults(func=cmd_serve)

    runs = sub.add_parser("runs", help="list, show or delete stored runs")
    runs_sub = runs.add_subparsers(dest="runs_command", required=True, metavar="ACTION")
    lst = runs_sub.add_parser("list", help="runs, newest first")
    lst.add_argument("--limit", type=_positive, default=20, help="at most this many (default 20)")
    lst.add_argument("--status", choices=RUN_STATUSES)
    lst.add_argument("--json", action="store_true")
    lst.add_argument("--home", help=home_help)
    lst.set_defaults(func=cmd_runs_list)
    show = runs_sub.add_parser("show", help="one run as JSON")
    show.add_argument("run_id")
    show.add_argument("--events", action="store_true", help="include its events")
    show.add_argument("--home", help=home_help)
    show.set_defaults(func=cmd_runs_show)
    rm = runs_sub.add_parser("rm", help="delete finished runs and their artifacts")
    rm.add_argument("run_ids", nargs="+", metavar="RUN_ID")
    rm.add_argument("--home", help=home_help)
    rm.set_defaults(func=cmd_runs_rm)

    data = sub.add_parser("data", help="import, list, re-tag or delete datasets")
    data_sub = data.add_subparsers(dest="data_command", required=True, metavar="ACTION")
    imp = data_sub.add_parser(
        "import",
        help="validate a CSV/Parquet file and store it by content hash (a folder of files or a "
        "long file with a symbol column: one portfolio)",
    )
    imp.add_argument("file")
    imp.add_argument("--symbol", help="symbol (default: the file name's stem)")
    imp.add_argument("--timeframe", help="bar length, e.g. 1d, 1h, 1mo (default: inferred)")
    imp.add_argument("--calendar", choices=CALENDARS,
                     help="equities, 24x5 or 24x7 (default: inferred from the timestamps)")  # fmt: skip
    imp.add_argument("--json", action="store_true")
    imp.add_argument("--home", help=home_help)
    imp.set_defaults(func=cmd_data_import)
    dl = data_sub.add_parser("list", help="stored datasets")
    dl.add_argument("--json", action="store_true")
    dl.add_argument("--home", help=home_help)
    dl.set_defaults(func=cmd_data_list)
    drm = data_sub.add_parser(
        "rm", help="delete stored datasets (not while an active run reads one)"
    )
    drm.add_argument("dataset_ids", nargs="+", metavar="DATASET_ID")
    drm.add_argument("--home", help=home_help)
    drm.set_defaults(func=cmd_data_rm)
    tag = data_sub.add_parser("tag", help="set a stored dataset's symbol (its bars and id stay)")
    tag.add_argument("dataset_id", metavar="DATASET_ID")
    tag.add_argument("symbol", metavar="SYMBOL")
    tag.add_argument("--json", action="store_true")
    tag.add_argument("--home", help=home_help)
    tag.set_defaults(func=cmd_data_tag)

    report = sub.add_parser(
        "report", help="write the HTML report of a stored run, or of an artifact folder"
    )
    report.add_argument("run", metavar="RUN_ID", help="a run id, or an artifact folder's path")
    report.add_argument(
        "--out", help="the HTML file to write (default: report.html in the run's folder)"
    )
    report.add_argument("--home", help=home_help)
    report.set_defaults(func=cmd_report)
