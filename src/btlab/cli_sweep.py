"""`btlab sweep`'s and `btlab wfo`'s grid options: the arguments (--grid, --objective,
--samples, --keep) and the request they make. Needs nothing of `btlab.cli`."""

from __future__ import annotations

import argparse
from typing import Any

from .errors import ConfigError

__all__ = ["add_grid_arguments", "with_grid_options"]


def add_grid_arguments(parser: argparse.ArgumentParser) -> None:
    """The grid's arguments of `btlab sweep` and `btlab wfo`."""
    parser.add_argument(
        "--grid", action="append", metavar="NAME=VALUES",
        help="an axis: NAME=START:STOP:STEP (inclusive), NAME=V1,V2,... or, with --samples, "
        "NAME=uniform:LOW:HIGH, loguniform:LOW:HIGH or randint:LOW:HIGH; NAME is a strategy "
        "parameter or a request field (execution.commission_bps); repeat per axis",
    )  # fmt: skip
    parser.add_argument("--objective", help="the metric the best combination maximizes (sharpe)")
    parser.add_argument(
        "--samples", type=int, metavar="N", help="random search: N distinct draws from the axes"
    )
    parser.add_argument(
        "--keep", type=int, metavar="K",
        help="past 10,000 combinations a sweep streams its rows to sweep.parquet and keeps the "
        "K best in memory (default 100)",
    )  # fmt: skip


def with_grid_options(body: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    """The request `body` with the command's --grid axes (each replacing the request's axis of
    that name, as --set does), --objective, --samples and --keep."""
    # here, not at the top: `btlab --help` and `btlab presets` start without numba and pandas
    from .sweep import parse_grid_option

    grid = dict(body.get("grid") or {})
    given: set[str] = set()
    for item in args.grid or []:
        name, axis = parse_grid_option(item)
        if name in given:  # the last one silently winning hides a typo; merging guesses
            raise ConfigError(
                "invalid --grid",
                [
                    (
                        f"grid.{name}",
                        "given twice; list every value in one --grid, e.g. fast=5,10,20",
                    )
                ],
            )
        given.add(name)
        grid[name] = axis
    if grid:
        body["grid"] = grid
    if args.objective:
        body["objective"] = args.objective
    if args.samples is not None:
        body["samples"] = args.samples
    if getattr(args, "keep", None) is not None:
        body["keep"] = args.keep
    return body
