"""`btlab wfo`: the walk-forward's command-line pieces that need nothing of `btlab.cli` (its
request from --train/--test/--anchored, its arguments and what it prints); `btlab.cli` runs
the command as `btlab sweep`'s (`cli.run_grid_job`)."""

from __future__ import annotations

import argparse
import json
import math
from typing import Any

from rich.console import Console
from rich.table import Table

__all__ = ["add_walkforward_arguments", "print_walkforward", "walkforward_request"]


def _length(text: str) -> int | str:
    """A window length as given: bars (an integer) or a calendar length such as 2Y."""
    return int(text) if text.strip().isdigit() else text.strip()


def add_walkforward_arguments(parser: argparse.ArgumentParser) -> None:
    """The arguments `btlab wfo` adds to `btlab sweep`'s."""
    parser.add_argument(
        "--train", type=_length, help="train part: bars (504) or a calendar length (2Y)"
    )
    parser.add_argument(
        "--test", type=_length, help="test part and step: bars (126) or a calendar length (6M)"
    )
    parser.add_argument(
        "--anchored", action="store_true", help="train from the first bar on (default: rolling)"
    )


def walkforward_request(body: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    """The sweep request of the command (`cli.build_sweep_request`) with its `walkforward`:
    the request's own, with --train, --test and --anchored over it."""
    spec = dict(body.get("walkforward") or {})
    if args.train is not None:
        spec["train"] = args.train
    if args.test is not None:
        spec["test"] = args.test
    if args.anchored:
        spec["mode"] = "anchored"
    return {**body, "walkforward": spec} if spec else body


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return "undefined" if math.isnan(value) else f"{value:,.4f}"
    return "—" if value is None else str(value)


def windows_table(result: Any) -> Table:
    """One row a window: its test dates, the chosen parameters, in- and out-of-sample numbers."""
    objective = result.request.objective
    axes = list(result.expansion.axes)
    table = Table(
        title=f"{len(result.windows)} windows, chosen by {objective}", header_style="bold"
    )
    columns = ["window", "test_start", "test_end", *axes, "is_objective", "is_sharpe", "oos_sharpe",
               "oos_total_return"]  # fmt: skip
    for name in columns:
        table.add_column(name.replace("is_objective", f"is_{objective}"), justify="right")
    for row in result.table.to_dict("records"):
        # an axis's value as the grid has it (the table holds a None, e.g. no stop, as NaN)
        point = dict(zip(axes, result.expansion.points[int(row["combo"])], strict=True))
        table.add_row(*(
            f"{row[c]:%Y-%m-%d}" if c in ("test_start", "test_end")
            else _cell(point[c] if c in point else row[c])
            for c in columns
        ))  # fmt: skip
    return table


def print_walkforward(
    console: Console, result: Any, manifest: dict[str, Any], out: Any, report: Any, *, as_json: bool
) -> None:
    """What `btlab wfo` prints: JSON (--json) or the windows table and the headline numbers."""
    eff = result.efficiency
    if as_json:
        console.print_json(
            json.dumps(
                {"out": str(out), "run_hash": manifest["run_hash"], "windows": result.summary()["windows"],
                 "metrics": result.metrics, "efficiency": eff, "stability": result.stability,
                 "warnings": manifest["warnings"], "report": None if report is None else str(report)},
                default=str,
            )
        )  # fmt: skip
        return
    console.print(windows_table(result))
    m = result.metrics
    console.print(
        f"out of sample: {m['n_bars']} bars, Sharpe {_cell(m['sharpe'])}, CAGR {_cell(m['cagr'])}, "
        f"total return {_cell(m['total_return'])}; WFE {_cell(eff['wfe'])}",
        highlight=False,
    )
    psr = (result.validation or {}).get("psr") or {}
    if psr:
        console.print(
            f"validation: PSR {_cell(psr.get('psr'))}, DSR {_cell(psr.get('dsr'))} "
            f"({psr.get('n_trials')} trials)",
            highlight=False,
        )
    console.print(f"artifacts: [bold]{out}[/]  run_hash {manifest['run_hash'][:16]}…")
    if report is not None:
        console.print(f"report: [bold]{report}[/]")
